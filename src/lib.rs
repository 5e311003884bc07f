//! idp-graph: one GraphQL endpoint over Backstage, ArgoCD, Kubernetes and GitHub.
//!
//! Imports point one way: down this list. A module imports only modules below it, so there is
//! no circle between the top-level modules (within a module, files may still point at each
//! other where GraphQL object types are each other's fields: `graph::application`,
//! `graph::entity`, `graph::kubernetes`, ...):
//!
//! ```text
//!  main ─► app  demo  watch   the binary; wiring and lifecycle │ the simulated upstreams │
//!          notify             the `watch` client (imports only `http`) │ the chatops bot
//!                             (imports only `watch`, and `auth` for one header name)
//!          config             assembles every feature's settings type into `Settings`, loads it
//!          http               routes over the one request pipeline; cache, webhooks, metrics
//!          graph              the schema: visibility, nodes, actions through `sources::Upstreams`
//!          auth  sources      who may see and do what │ one module per upstream (neither
//!                             imports the other)
//!          cluster            replicas on Redis: leases per upstream, the shared change log,
//!                             the shared Redis handle (only with `cluster:` configured)
//!          state              live indexes per source, freshness, the joins
//!          events             change types, transitions derived once, the bus
//!          domain             pure types and the join rules
//!          settings telemetry leaves that any layer may use: `ConfigError`, the key-naming
//!                             helpers and `TokenSource` │ logs and traces
//! ```
//!
//! Settings sit at the bottom and `config` on top: each feature keeps its settings type beside
//! its code (`sources/<name>/settings.rs`, `auth/settings.rs`, `graph/limits.rs`,
//! `http/settings.rs`, ...), built from [`settings`]; only the top (`main`, `app`, `demo`)
//! and `config` itself see the whole `Settings`.
//!
//! Data flows the other way, from the upstreams up to the caller:
//!
//! ```text
//!  upstreams ─► sources/<name>/   settings + `Source::start` (one entry point per source),
//!                  │               wire protocol, retries; handles for actions → `Upstreams`
//!                  │ domain values + change events
//!                  ▼
//!               state/            live indexes per source, freshness; `state::joins`: every
//!                  │               cross-source relation as a plain `State` method
//!                  ├──────────► events/   change types, transitions derived once, the bus
//!                  ▼                │
//!               graph/            schema: visibility + nodes over state and events; actions
//!                  │               through `sources::Upstreams`; filters in `graph::filter`
//!                  ▼
//!               http/             `http::pipeline`: one request pipeline for POST, GET,
//!                                  websockets (both protocols) and SSE; health, metrics
//! ```
//!
//! - [`domain`]: pure types and the join rules (entity refs, annotations, selectors). No I/O.
//! - [`sources`]: one module per upstream with one entry point ([`sources::Source`]).
//! - [`cluster`]: several replicas sharing one change log on Redis: one owner per upstream
//!   instance, the log every replica applies and publishes from, snapshots for late starters.
//! - [`state`]: live in-memory indexes, per-source health and the joins ([`state::joins`]);
//!   [`state::reads`]: what an execution read and each store's change count (the cache's truth).
//! - [`events`]: change types with derived transitions, and the bounded, ordered bus.
//! - [`auth`]: principals, authentication and the policy (the one visibility and action seam).
//! - [`graph`]: the async-graphql schema; resolvers read `state`, act through `Upstreams`;
//!   `graph::node` resolves global ids (`domain::node_id`), `graph::federation` is the subgraph mode.
//! - [`http`]: axum routes over [`http::pipeline`]: the response cache
//!   ([`http::response_cache`]), shared subscription execution
//!   ([`http::shared_subscriptions`]), GitHub webhooks, the embedded playground and portal
//!   ([`http::ui`], built from `ui/` by `build.rs`), health, metrics.
//! - [`telemetry`]: logs and OpenTelemetry traces (OTLP), `traceparent` in and out.
//! - [`demo`]: simulated upstreams (real HTTP servers on loopback) for the demo and tests.
//! - [`app`]: wiring and lifecycle; [`config`]: the typed `Settings` (defaults → file → env,
//!   validated at start), assembled from the features' own settings types; [`settings`]: the
//!   leaf they are built from; [`watch`]: the `watch` client; [`notify`]: the chatops bot
//!   (`idp-graph notify`), a client of the public API built on `watch`.

/// jemalloc (default feature `jemalloc`), for every program built on this crate — the server,
/// its tests and its benchmarks measure the same allocator (BENCHMARKS.md, "Allocators again").
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

pub mod app;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod demo;
pub mod domain;
pub mod events;
pub mod graph;
pub mod http;
pub mod notify;
pub mod settings;
pub mod sources;
pub mod state;
pub mod telemetry;
pub mod watch;
