//! `POST /webhooks/github`: GitHub's webhook deliveries. Authenticated by the
//! `X-Hub-Signature-256` HMAC-SHA256 of the exact body with the configured secret (compared in
//! constant time), not by a bearer token — GitHub sends none. A delivery that fails the check
//! is refused with 401 and changes nothing. A verified one drops exactly the cached GitHub
//! responses its event makes stale (`GitHubSource::apply_webhook`), and with them every kept
//! answer that showed GitHub values.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde_json::json;
use sha2::Sha256;

use super::HttpState;

/// GitHub caps deliveries at 25 MB; the events we use are far smaller.
pub const MAX_DELIVERY_BYTES: usize = 5 << 20;

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [("content-type", "application/json")],
        json!({ "error": { "code": code, "message": message } }).to_string(),
    )
        .into_response()
}

/// Is `signature` (`sha256=<hex>`) the HMAC-SHA256 of `body` under `secret`?
pub fn verify(secret: &[u8], body: &[u8], signature: &str) -> bool {
    let Some(hex) = signature.strip_prefix("sha256=") else {
        return false;
    };
    let Some(expected) = decode_hex(hex) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

pub async fn github(State(http): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(source) = http.upstreams.github() else {
        return refuse(
            StatusCode::NOT_FOUND,
            "NOT_CONFIGURED",
            "GitHub is not configured",
        );
    };
    let Some(secret) = source.webhook_secret() else {
        return refuse(
            StatusCode::NOT_FOUND,
            "NOT_CONFIGURED",
            "GitHub webhooks are not configured on this server",
        );
    };
    if body.len() > MAX_DELIVERY_BYTES {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            "the delivery is too large",
        );
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // Checked before anything else is read from the delivery.
    let signed = header("x-hub-signature-256")
        .is_some_and(|sig| verify(secret.expose_secret().as_bytes(), &body, sig));
    if !signed {
        tracing::warn!(
            delivery = header("x-github-delivery").unwrap_or(""),
            "refused a webhook delivery with a missing or wrong signature"
        );
        return refuse(
            StatusCode::UNAUTHORIZED,
            "INVALID_SIGNATURE",
            "X-Hub-Signature-256 is missing or does not match the body",
        );
    }
    let Some(event) = header("x-github-event") else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "X-GitHub-Event is missing",
        );
    };
    let payload: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                "the body is not JSON",
            )
        }
    };
    if event == "ping" {
        return (
            StatusCode::OK,
            axum::Json(json!({ "ok": true, "event": "ping" })),
        )
            .into_response();
    }
    let dropped = source.apply_webhook(event, &payload);
    tracing::info!(
        event,
        delivery = header("x-github-delivery").unwrap_or(""),
        dropped,
        "applied a webhook delivery"
    );
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({ "ok": true, "event": event, "invalidated": dropped })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_checked_exactly() {
        // GitHub's documented example: secret "It's a Secret to Everybody", body "Hello, World!".
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(verify(b"It's a Secret to Everybody", b"Hello, World!", sig));
        assert!(!verify(
            b"It's a Secret to Everybody",
            b"Hello, World?",
            sig
        ));
        assert!(!verify(b"another secret", b"Hello, World!", sig));
        assert!(!verify(b"x", b"y", "sha1=abc"));
        assert!(!verify(b"x", b"y", "sha256=zz"));
        assert!(!verify(b"x", b"y", ""));
    }
}
