//! The GitHub source: REST with one backend credential, spent carefully.
//!
//! - Every cacheable GET is conditional (`If-None-Match` with the stored ETag): a 304 costs no
//!   rate limit. Commits by SHA are immutable and cached for good (bounded LRU).
//! - TTLs per kind (`GitHubTtls`); concurrent requests for the same thing are merged (one
//!   refresh per key at a time); the graph batches lookups of one request (dataloader).
//! - The rate-limit headers are tracked; below a low-water mark refreshes slow down; at zero,
//!   or after a secondary-limit 403/429 (`Retry-After`), nothing is sent until the reset and
//!   the last known data is served, marked stale, with `RATE_LIMITED`.
//! - `Link` headers are followed for paginated lists.
//! - With webhooks, deliveries update or drop exactly what changed, and a safety net refreshes
//!   every repository in batches of 100 over the GraphQL API (`batch.rs`).

mod batch;
mod cache;
mod client;
mod settings;
mod shared;
mod wire;

/// The wire decoders on raw upstream text, for the generative tests (`tests/decoders.rs`).
/// Not an API.
#[doc(hidden)]
pub mod fuzz {
    use super::wire;

    fn decode<W: serde::de::DeserializeOwned, T: From<W>>(json: &str) -> bool {
        serde_json::from_str::<W>(json).map(T::from).is_ok()
    }
    pub fn repository(json: &str) -> bool {
        decode::<wire::WireRepo, crate::domain::github::Repository>(json)
    }
    pub fn commit(json: &str) -> bool {
        decode::<wire::WireCommit, crate::domain::github::Commit>(json)
    }
    pub fn pull_request(json: &str) -> bool {
        decode::<wire::WirePull, crate::domain::github::PullRequest>(json)
    }
    pub fn workflow_runs(json: &str) -> bool {
        serde_json::from_str::<wire::WireRuns>(json)
            .map(|r| {
                r.workflow_runs
                    .into_iter()
                    .map(crate::domain::github::WorkflowRun::from)
                    .count()
            })
            .is_ok()
    }
    /// A `push` delivery's payload: the repository and branch head it carries.
    pub fn push_payload(json: &str) -> bool {
        serde_json::from_str::<serde_json::Value>(json)
            .map(|v| wire::push_repository_body(&v).is_some() | wire::push_head_body(&v).is_some())
            .unwrap_or(false)
    }
}

pub use batch::BatchRound;
pub use cache::{Fetched, GitHubSource, GitHubTtls};
pub use client::{GitHubClient, RateBudget};
pub use settings::{GitHubSettings, GitHubTtlSettings};
