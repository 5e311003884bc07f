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
mod wire;

pub use batch::BatchRound;
pub use cache::{Fetched, GitHubSource, GitHubTtls};
pub use client::{GitHubClient, RateBudget};
pub use settings::{GitHubSettings, GitHubTtlSettings};
