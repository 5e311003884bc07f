//! One retry policy for every delivery (Slack's Web API and webhooks): retry on transport
//! errors, HTTP 5xx and 429 — and on Slack's `{"ok": false, "error": "ratelimited"}` — with
//! exponential backoff, honouring `Retry-After` (seconds) up to `retry.max_backoff_secs`;
//! give up after `retry.max_attempts`. Anything else is final and returned as it is.

use std::time::Duration;

use super::settings::RetrySettings;

/// Why a delivery did not go through.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("gave up after {attempts} attempts: {last}")]
    GaveUp { attempts: u32, last: String },
    #[error("refused: HTTP {status}: {body}")]
    Refused { status: u16, body: String },
}

/// The answer of a request that was not retried further.
pub struct Answer {
    pub status: u16,
    pub body: bytes::Bytes,
}

/// Sends `make()` until it is answered with something final.
pub async fn send(
    retry: &RetrySettings,
    what: &'static str,
    make: impl Fn() -> reqwest::RequestBuilder,
) -> Result<Answer, DeliveryError> {
    let max_wait = Duration::from_secs_f64(retry.max_backoff_secs);
    let mut last = String::new();
    for attempt in 1..=retry.max_attempts {
        let backoff = Duration::from_millis(250u64 << (attempt - 1).min(10)).min(max_wait);
        let wait = match make().send().await {
            Err(e) => {
                last = format!("transport: {e}");
                backoff
            }
            Ok(r) => {
                let status = r.status().as_u16();
                let retry_after = r
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    // Any number a peer sends (`1e30`, `-1`, `NaN`) is refused, not a panic.
                    .and_then(|s| Duration::try_from_secs_f64(s).ok());
                let body = r.bytes().await.unwrap_or_default();
                let slack_ratelimited = status == 200
                    && serde_json::from_slice::<serde_json::Value>(&body)
                        .is_ok_and(|v| v["ok"] == false && v["error"] == "ratelimited");
                if status == 429 || status >= 500 || slack_ratelimited {
                    last = format!("HTTP {status}");
                    retry_after.map_or(backoff, |d| d.min(max_wait))
                } else {
                    return Ok(Answer { status, body });
                }
            }
        };
        if attempt < retry.max_attempts {
            tracing::info!(what, attempt, wait_ms = wait.as_millis() as u64, last = %last, "delivery retried");
            tokio::time::sleep(wait).await;
        }
    }
    Err(DeliveryError::GaveUp {
        attempts: retry.max_attempts,
        last,
    })
}
