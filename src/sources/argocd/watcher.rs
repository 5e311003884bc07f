//! The per-instance loop: list (apps and projects) → stream → on any end of the stream,
//! back off with jitter and list again. A periodic re-list bounds what a silently lossy stream
//! can hide. Never gives up; every failure is recorded in the source's health.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::client::{ArgoCdClient, StreamItem};
use crate::state::{AppWriter, SourceHealth};

pub struct ArgoCdWatcher {
    pub client: ArgoCdClient,
    /// Every observation goes to the instance's writer (`state::writers`).
    pub writer: AppWriter,
    pub health: Arc<SourceHealth>,
    /// Re-list this often even while the stream looks healthy.
    pub relist_every: Duration,
    pub max_backoff: Duration,
}

/// Exponential backoff with ±50 % jitter: 100 ms, 200 ms, ... capped at `max` (30 s unless
/// configured).
fn backoff(attempt: u32, max: Duration) -> Duration {
    let base = 100u64
        .saturating_mul(1 << attempt.min(9))
        .min(max.as_millis() as u64);
    let jitter = rand::random_range(0.5..1.5);
    Duration::from_millis((base as f64 * jitter) as u64)
}

impl ArgoCdWatcher {
    pub async fn run(self, shutdown: CancellationToken) {
        let mut attempt = 0u32;
        loop {
            if attempt > 0 {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff(attempt - 1, self.max_backoff)) => {}
                }
            }
            attempt = attempt.saturating_add(1);
            if let Err(e) = self.relist().await {
                tracing::warn!(instance = %self.client.instance(), error = %e, "ArgoCD list failed; serving last known state");
                self.health.record_failure(e.to_string());
                continue;
            }
            let stream = match self.client.stream().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(instance = %self.client.instance(), error = %e, "ArgoCD stream did not open");
                    self.health.record_failure(e.to_string());
                    continue;
                }
            };
            let mut stream = std::pin::pin!(stream);
            let relist_at = tokio::time::sleep(self.relist_every);
            tokio::pin!(relist_at);
            let opened = Instant::now();
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = &mut relist_at => {
                        tracing::debug!(instance = %self.client.instance(), "periodic re-list");
                        attempt = 0;
                        break;
                    }
                    item = stream.next() => match item {
                        Some(Ok(StreamItem::Upsert(app))) => {
                            self.writer.observe(app);
                        }
                        Some(Ok(StreamItem::Delete(app))) => {
                            self.writer.observe_deleted(&app.key);
                        }
                        Some(Err(e)) => {
                            tracing::warn!(instance = %self.client.instance(), error = %e, "ArgoCD stream broke; re-listing");
                            break;
                        }
                        None => {
                            tracing::info!(instance = %self.client.instance(), "ArgoCD stream ended; re-listing");
                            break;
                        }
                    }
                }
            }
            // A stream that lived a while earns a fast reconnect.
            if opened.elapsed() > Duration::from_secs(10) {
                attempt = 1;
            }
        }
    }

    #[tracing::instrument(name = "source.sync", parent = None, skip_all, fields(otel.name = "argocd sync", source = %self.client.instance()))]
    async fn relist(&self) -> Result<(), crate::sources::SourceError> {
        let started = Instant::now();
        let (apps, projects) =
            tokio::try_join!(self.client.list_applications(), self.client.list_projects())?;
        let (apps, skipped) = apps;
        let n = self.writer.observe_list(apps, projects);
        self.health
            .record_success(self.writer.count(), started.elapsed().as_secs_f64() * 1e3);
        tracing::debug!(instance = %self.client.instance(), changes = n, skipped, "ArgoCD list applied");
        Ok(())
    }
}
