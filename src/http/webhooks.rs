//! `POST /webhooks/github`: GitHub's webhook deliveries. Authenticated by the
//! `X-Hub-Signature-256` HMAC-SHA256 of the exact body with the configured secret (compared in
//! constant time), not by a bearer token — GitHub sends none. A delivery that fails the check
//! is refused with 401 and changes nothing. A verified one drops exactly the cached GitHub
//! responses its event makes stale (`GitHubSource::apply_webhook`), and with them every kept
//! answer that showed GitHub values.
//!
//! Replicas (`cluster:`) apply each delivery once: its `X-GitHub-Delivery` id is claimed on
//! Redis (`SET NX`, a day); a delivery already claimed is answered 200 `duplicate` and not
//! applied. Redis failing means applying it (at least once).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde_json::json;

use super::HttpState;

/// GitHub caps deliveries at 25 MB; the events we use are far smaller.
pub const MAX_DELIVERY_BYTES: usize = 5 << 20;

/// How long replicas remember a delivery id (GitHub redelivers within days at most on request;
/// a day covers its automatic retries).
const DELIVERY_SEEN_SECS: u64 = 86_400;

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
    signature
        .strip_prefix("sha256=")
        .is_some_and(|hex| crate::auth::signature::verify_hex(secret, &[body], hex))
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
    // Replicas: a delivery is applied once, whichever replica it reaches and however often
    // GitHub redelivers it. Redis failing means applying it (at least once).
    if let (Some(shared), Some(id)) = (source.shared(), header("x-github-delivery")) {
        let key = shared.key(&format!("delivery:{id}"));
        let first = shared
            .attempt(
                "webhook delivery",
                std::time::Duration::from_secs(1),
                |mut conn| async move {
                    redis::cmd("SET")
                        .arg(key)
                        .arg(1)
                        .arg("NX")
                        .arg("EX")
                        .arg(DELIVERY_SEEN_SECS)
                        .query_async::<Option<String>>(&mut conn)
                        .await
                },
            )
            .await;
        match first {
            Some(Some(_)) => {}
            Some(None) => {
                tracing::info!(
                    event,
                    delivery = id,
                    "a webhook delivery seen before; not applied again"
                );
                return (
                    StatusCode::OK,
                    axum::Json(
                        json!({ "ok": true, "event": event, "duplicate": true, "delivery": id }),
                    ),
                )
                    .into_response();
            }
            None => {
                source.fell_back();
                tracing::warn!(event, delivery = id, "cannot tell whether this webhook delivery was applied before (Redis failed); applying it");
            }
        }
    }
    let dropped = source.apply_webhook_shared(event, &payload).await;
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
