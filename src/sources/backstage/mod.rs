//! The Backstage catalog source: polls `GET /api/catalog/entities/by-query` page by page (cursor
//! paging), diffs each complete poll against the last snapshot by uid and etag, publishes the
//! differences as `EntityChange` events and swaps the snapshot in. A failed poll keeps the last
//! good snapshot serving and flips the source's health. `client` also answers on-demand batch
//! lookups through `POST /api/catalog/entities/by-refs`.

mod client;
mod lookup;
mod poller;
pub mod scaffolder;
mod settings;
mod wire;

use std::sync::Arc;

pub use client::BackstageClient;
pub use lookup::CatalogLookup;
pub use poller::BackstagePoller;
pub use scaffolder::TaskEvent;
pub use settings::BackstageSettings;

use crate::sources::SourceError;

/// The started catalog source, as the graph uses it.
pub struct BackstageHandle {
    client: BackstageClient,
    lookup: Arc<CatalogLookup>,
    /// Wakes the poller now (after a template registered something; tests).
    pub wake: Arc<tokio::sync::Notify>,
}

impl BackstageHandle {
    /// On-demand lookups of entities the last poll did not hold.
    pub fn lookup(&self) -> &Arc<CatalogLookup> {
        &self.lookup
    }

    /// Starts a scaffolder task from a template; returns its id.
    pub async fn create_task(
        &self,
        template_ref: &str,
        values: &serde_json::Value,
    ) -> Result<String, SourceError> {
        self.client.create_task(template_ref, values).await
    }

    /// A scaffolder task by id; `None` when unknown.
    pub async fn task(&self, id: &str) -> Result<Option<scaffolder::TaskInfo>, SourceError> {
        self.client.task(id).await
    }

    /// A scaffolder task's events from the start until it ends.
    pub async fn task_events(
        &self,
        id: &str,
    ) -> Result<
        impl futures::Stream<Item = Result<TaskEvent, SourceError>> + Send + 'static,
        SourceError,
    > {
        self.client.task_events(id).await
    }

    /// Polls the catalog now instead of at the next tick.
    pub fn poll_now(&self) {
        self.wake.notify_one();
    }
}

/// Converts one catalog entity from Backstage's JSON (used by the benchmarks and tools that
/// read catalog dumps); `Err` says why it cannot be read.
pub fn parse_entity(value: serde_json::Value) -> Result<crate::domain::Entity, String> {
    wire::to_entity(value)
}
