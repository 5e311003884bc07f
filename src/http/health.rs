//! Liveness and readiness. `/healthz` says the process serves; `/readyz` says every configured
//! source finished its first sync (or readiness stopped waiting for it), and names the rest.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;

use super::HttpState;

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
    (
        status,
        Json(serde_json::json!({ "ready": pending.is_empty(), "waitingFor": pending })),
    )
}
