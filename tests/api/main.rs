//! Black-box tests: the real server on port 0 against the simulated upstreams (and the real
//! Backstage backend where available), spoken to over HTTP and websockets.

mod argocd;
mod audit_pg;
mod auth;
mod backstage_real;
mod backstage_sim;
mod boundary;
mod browser;
mod cache;
mod catalog;
mod chaos;
mod cli;
mod faults;
mod federation;
mod github;
mod github_schema;
mod hardening;
mod helpers;
mod hostile;
mod http;
mod kubernetes;
mod kubernetes_sim;
mod live;
mod node;
mod persisted;
mod pipeline;
mod subscriptions;
mod telemetry;
mod templates;
mod truth;
mod watch;
mod webhooks;
mod world;
