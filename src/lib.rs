//! idp-graph: one GraphQL endpoint over Backstage, ArgoCD, Kubernetes and GitHub.
//!
//! The crate mirrors the data flow (see DESIGN.md); dependencies point one way,
//! `http → graph → {state, events, auth} → sources → domain`:
//!
//! - [`domain`]: pure types and the join rules (entity refs, annotations). No I/O.
//! - [`sources`]: one module per upstream; wire protocols, auth, paging, retries.
//! - [`state`]: live in-memory indexes and per-source health.
//! - [`events`]: the bounded, ordered bus of changes.
//! - [`auth`]: principals and the policy (the one visibility and action seam).
//! - [`graph`]: the async-graphql schema; resolvers read `state` only.
//! - [`http`]: axum routes: GraphQL over HTTP, websockets, GraphiQL, health, metrics.
//! - [`demo`]: simulated upstreams (real HTTP servers on loopback) for the demo and tests.
//! - [`app`]: wiring and lifecycle; [`config`]: typed settings.

pub mod app;
pub mod auth;
pub mod config;
pub mod demo;
pub mod domain;
pub mod events;
pub mod graph;
pub mod http;
pub mod sources;
pub mod state;
pub mod telemetry;
pub mod watch;
