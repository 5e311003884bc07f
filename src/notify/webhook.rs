//! Generic webhooks: every notification as one JSON document (`id` = the notification key, for
//! receivers to drop a repeat; the trigger, app, channel, component, owner, commit, facts,
//! links), signed like GitHub signs its deliveries: `X-Idp-Signature-256: sha256=<hex>` is the
//! HMAC-SHA256 of the exact body under the webhook's secret. Retries are `retry.rs`'s.

use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use super::retry::{self, DeliveryError};
use super::settings::RetrySettings;
use super::triggers::Notice;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-idp-signature-256";

pub struct Webhook {
    pub url: String,
    pub secret: Option<SecretString>,
}

/// `sha256=<hex HMAC-SHA256 of body>`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    format!(
        "sha256={}",
        crate::auth::signature::sign_hex(secret, &[body])
    )
}

/// The JSON a webhook receives for `notice`.
pub fn payload(notice: &Notice, channel: Option<&str>) -> Value {
    json!({
        "id": notice.key,
        "trigger": notice.trigger,
        "app": notice.app,
        "channel": channel,
        "notice": notice,
    })
}

impl Webhook {
    pub async fn deliver(
        &self,
        http: &reqwest::Client,
        retry: &RetrySettings,
        body: &Value,
    ) -> Result<(), DeliveryError> {
        let bytes = body.to_string();
        let sig = self
            .secret
            .as_ref()
            .map(|s| signature(s.expose_secret().as_bytes(), bytes.as_bytes()));
        let answer = retry::send(retry, "webhook", || {
            let mut r = http
                .post(&self.url)
                .header("content-type", "application/json")
                .header("x-idp-delivery", body["id"].as_str().unwrap_or_default())
                .body(bytes.clone());
            if let Some(sig) = &sig {
                r = r.header(SIGNATURE_HEADER, sig);
            }
            r
        })
        .await?;
        if (200..300).contains(&answer.status) {
            Ok(())
        } else {
            Err(DeliveryError::Refused {
                status: answer.status,
                body: String::from_utf8_lossy(&answer.body)
                    .chars()
                    .take(200)
                    .collect(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_githubs_hmac_sha256_form() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
