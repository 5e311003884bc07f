//! axum routes: GraphQL over HTTP (`/graphql`), websockets (`/graphql/ws`), GraphiQL (`/`),
//! `/healthz`, `/readyz` and `/metrics`. One clone-cheap `HttpState` serves them all.

pub mod error;
mod graphql;
mod health;
pub mod metrics;
pub mod pipeline;
mod sse;
pub mod ws;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;

use crate::config::Limits;
use crate::state::State;

pub use metrics::Metrics;

#[derive(Clone)]
pub struct HttpState {
    /// Every transport's way in: caller, parsing, limits, execution, error codes.
    pub pipeline: Arc<pipeline::Pipeline>,
    pub state: Arc<State>,
    pub metrics: Arc<Metrics>,
    pub limits: Arc<Limits>,
    /// The started sources (GitHub's request economy in `/metrics`).
    pub upstreams: Arc<crate::sources::Upstreams>,
    /// Fires on shutdown: websockets and SSE streams end cleanly.
    pub shutdown: tokio_util::sync::CancellationToken,
}

pub fn router(http: HttpState) -> Router {
    // Pages that are not GraphQL requests still need a caller when anonymous access is denied.
    let guarded = Router::new()
        .route("/", get(graphql::graphiql))
        .route("/metrics", get(metrics::render))
        .route_layer(axum::middleware::from_fn_with_state(
            http.clone(),
            require_caller,
        ));
    Router::new()
        .route(
            "/graphql",
            get(graphql::graphql_get).post(graphql::graphql_post),
        )
        .route("/graphql/ws", get(ws::upgrade))
        .route(
            "/graphql/sse",
            axum::routing::post(sse::stream).get(sse::stream_get),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .merge(guarded)
        .with_state(http)
}

/// 401 (with `WWW-Authenticate`) unless the request's bearer token is good or anonymous
/// callers are allowed.
async fn require_caller(
    axum::extract::State(http): axum::extract::State<HttpState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let authorization = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match http.pipeline.principal(authorization).await {
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
