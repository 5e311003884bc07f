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
    Router::new()
        .route("/", get(graphql::graphiql))
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
        .route("/metrics", get(metrics::render))
        .with_state(http)
}
