//! axum routes: GraphQL over HTTP (`/graphql`), websockets (`/graphql/ws`), the playground (`/`)
//! and portal (`/ui`, files under `/assets`),
//! `/healthz`, `/readyz` and `/metrics`. One clone-cheap `HttpState` serves them all.

pub mod error;
pub mod field_errors;
mod graphql;
mod health;
pub mod metrics;
pub mod persisted;
pub mod pipeline;
pub mod rate_limit;
pub mod response_cache;
mod settings;
pub mod shared_subscriptions;
mod sse;
pub mod ui;
pub mod upstream_errors;
pub mod webhooks;
pub mod ws;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;

use crate::graph::Limits;
use crate::state::State;

pub use health::Readiness;
pub use metrics::Metrics;
pub use settings::HttpSettings;

#[derive(Clone)]
pub struct HttpState {
    /// Every transport's way in: caller, parsing, limits, execution, error codes.
    pub pipeline: Arc<pipeline::Pipeline>,
    pub state: Arc<State>,
    pub metrics: Arc<Metrics>,
    pub limits: Arc<Limits>,
    /// The started sources (GitHub's request economy in `/metrics`).
    pub upstreams: Arc<crate::sources::Upstreams>,
    /// For the audit backlog in `/metrics`.
    pub audit: Arc<crate::auth::audit::AuditLog>,
    /// Fires on shutdown: websockets and SSE streams end cleanly.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// The replicas' shared state (`cluster:`), for `/readyz` and `/metrics`.
    pub cluster: Option<Arc<crate::cluster::ClusterStatus>>,
}

/// The main router; `/metrics` is on it unless `http.metrics_listen` moves it to its own
/// listener (`metrics_router`). `cors_origins` may call it from other origins' pages.
pub fn router(http: HttpState, settings: &HttpSettings) -> Router {
    // Pages that are not GraphQL requests still need a caller when anonymous access is denied.
    let mut guarded = Router::new()
        .route("/", get(ui::playground))
        .route("/ui", get(ui::portal))
        .route("/ui/{*path}", get(ui::portal))
        .route("/assets/{name}", get(ui::file));
    if settings.metrics_listen.is_none() {
        // On the main listener the numbers (sources, rates, the audit backlog) are
        // platform-team's: a token with admin grants, or auth mode `none`.
        guarded = guarded.route(
            "/metrics",
            get(metrics::render).route_layer(axum::middleware::from_fn_with_state(
                http.clone(),
                require_admin,
            )),
        );
    }
    let guarded = guarded.route_layer(axum::middleware::from_fn_with_state(
        http.clone(),
        require_caller,
    ));
    let router = Router::new()
        .route(
            "/graphql",
            get(graphql::graphql_get).post(graphql::graphql_post),
        )
        .route("/graphql/ws", get(ws::upgrade))
        .route(
            "/graphql/sse",
            axum::routing::post(sse::stream).get(sse::stream_get),
        )
        // Authenticated by its HMAC signature, not by a caller's token.
        .route(
            "/webhooks/github",
            axum::routing::post(webhooks::github).layer(axum::extract::DefaultBodyLimit::max(
                webhooks::MAX_DELIVERY_BYTES + 1,
            )),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .merge(guarded)
        .with_state(http);
    if settings.cors_origins.is_empty() {
        return router;
    }
    use axum::http::{header, HeaderValue, Method};
    let origins: Vec<HeaderValue> = settings
        .cors_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    router.layer(
        tower_http::cors::CorsLayer::new()
            .allow_origin(tower_http::cors::AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

/// `/metrics` alone, for a listener of its own (scraped on an internal port; not guarded).
pub fn metrics_router(http: HttpState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::render))
        .with_state(http)
}

/// The request's `Authorization` header, as text.
fn authorization(request: &axum::extract::Request) -> Option<&str> {
    request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

/// Lets only callers with admin grants through (401 without a usable token, 403 with one
/// that is not platform-team's).
async fn require_admin(
    axum::extract::State(http): axum::extract::State<HttpState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let has_token = authorization(&request).is_some();
    match http.pipeline.principal(authorization(&request)).await {
        Ok(p) if p.grants().admin => next.run(request).await,
        Ok(_) => {
            let (status, code, message) = if has_token {
                (
                    axum::http::StatusCode::FORBIDDEN,
                    "FORBIDDEN",
                    "/metrics is for platform-team",
                )
            } else {
                (
                    axum::http::StatusCode::UNAUTHORIZED,
                    "UNAUTHENTICATED",
                    "/metrics needs a platform-team token (or http.metrics_listen)",
                )
            };
            (
                status,
                [(
                    axum::http::header::CONTENT_TYPE,
                    "application/json; charset=utf-8",
                )],
                serde_json::json!({ "errors": [{"message": message, "extensions": {"code": code}}] })
                    .to_string(),
            )
                .into_response()
        }
        // The outer guard answers bad tokens; this is only reached with a good one.
        Err(e) => (
            e.status(),
            [(
                axum::http::header::CONTENT_TYPE,
                "application/json; charset=utf-8",
            )],
            serde_json::json!({ "errors": e.errors_json() }).to_string(),
        )
            .into_response(),
    }
}

/// 401 (with `WWW-Authenticate`) unless the request's bearer token is good or anonymous
/// callers are allowed.
async fn require_caller(
    axum::extract::State(http): axum::extract::State<HttpState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match http.pipeline.principal(authorization(&request)).await {
        Ok(_) => next.run(request).await,
        Err(e) => (
            e.status(),
            [
                (
                    axum::http::header::CONTENT_TYPE,
                    "application/json; charset=utf-8",
                ),
                (
                    axum::http::header::WWW_AUTHENTICATE,
                    "Bearer error=\"invalid_token\"",
                ),
            ],
            serde_json::json!({ "errors": e.errors_json() }).to_string(),
        )
            .into_response(),
    }
}
