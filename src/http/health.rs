//! Liveness and readiness. `/healthz` says the process serves; `/readyz` says every configured
//! source finished its first sync (or readiness stopped waiting for it), and names the rest.
//! `readiness:` in the config says how long it waits (`App::build` stops waiting then).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;

use super::HttpState;
use crate::settings::{positive, ConfigError};

/// How long `/readyz` waits for the sources' first syncs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Readiness {
    /// A source that has not finished its first sync after this long is marked failed and no
    /// longer holds `/readyz` back.
    pub initial_sync_timeout_secs: f64,
}

impl Default for Readiness {
    fn default() -> Self {
        Self {
            initial_sync_timeout_secs: 60.0,
        }
    }
}

impl Readiness {
    /// What serde cannot check; errors name `key` (`readiness`) and the sub-key.
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        positive(
            &format!("{key}.initial_sync_timeout_secs"),
            self.initial_sync_timeout_secs,
        )
    }
}

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn readyz(State(http): State<HttpState>) -> impl IntoResponse {
    let pending = http.state.sources.not_ready();
    let status = if pending.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = serde_json::json!({ "ready": pending.is_empty(), "waitingFor": pending });
    // Replicas: the shared log's state. An unreachable log does not make a replica unready —
    // it keeps answering from what it applied (every replica would otherwise leave the Service
    // at once); the body and `sources` say how stale that is.
    if let Some(c) = &http.cluster {
        body["cluster"] = serde_json::json!({
            "replica": c.replica,
            "logAvailable": c.available(),
            "logUnavailableSince": c.unavailable_since(),
            "applied": c.applied.load(std::sync::atomic::Ordering::Relaxed),
            "owns": *c.owned.lock(),
            "members": *c.members.lock(),
        });
    }
    (status, Json(body))
}
