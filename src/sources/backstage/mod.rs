//! The Backstage catalog source: polls `GET /api/catalog/entities/by-query` page by page (cursor
//! paging), diffs each complete poll against the last snapshot by uid and etag, publishes the
//! differences as `EntityChange` events and swaps the snapshot in. A failed poll keeps the last
//! good snapshot serving and flips the source's health. `client` also answers on-demand batch
//! lookups through `POST /api/catalog/entities/by-refs`.

mod client;
mod poller;
pub mod scaffolder;
mod wire;

pub use client::BackstageClient;
pub use poller::{diff, BackstagePoller};

/// Converts one catalog entity from Backstage's JSON (used by the benchmarks and tools that
/// read catalog dumps); `Err` says why it cannot be read.
pub fn parse_entity(value: serde_json::Value) -> Result<crate::domain::Entity, String> {
    wire::to_entity(value)
}
