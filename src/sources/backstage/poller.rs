//! The polling loop: list, then hand the listing to the catalog's writer (which diffs,
//! publishes and swaps). Runs as one task per Backstage source until
//! the shutdown token fires.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::client::BackstageClient;
use crate::state::{CatalogWriter, SourceHealth};

pub struct BackstagePoller {
    pub client: BackstageClient,
    /// Every listing goes to the catalog's writer (`state::writers`).
    pub writer: CatalogWriter,
    pub health: Arc<SourceHealth>,
    pub interval: Duration,
    /// Lets tests and mutations ask for a poll now instead of at the next tick.
    pub wake: Arc<Notify>,
}

impl BackstagePoller {
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            self.poll_once().await;
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.interval) => {}
                _ = self.wake.notified() => {}
            }
        }
    }

    /// One poll. Failure leaves the previous snapshot in place.
    #[tracing::instrument(name = "source.sync", parent = None, skip_all, fields(otel.name = "backstage sync", source = "backstage"))]
    pub async fn poll_once(&self) {
        let started = Instant::now();
        match self.client.list_all().await {
            Ok(listing) => {
                let n_changes = self
                    .writer
                    .observe_list(listing.entities, started.elapsed().as_secs_f64() * 1e3);
                tracing::debug!(
                    source = %self.health.name,
                    changes = n_changes,
                    skipped = listing.skipped,
                    "catalog poll complete"
                );
            }
            Err(e) => {
                tracing::warn!(source = %self.health.name, error = %e, "catalog poll failed; serving last snapshot");
                self.health.record_failure(e.to_string());
            }
        }
    }
}
