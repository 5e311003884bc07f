//! The polling loop: list, diff, publish, swap. Runs as one task per Backstage source until
//! the shutdown token fires.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::client::BackstageClient;
use crate::domain::Entity;
use crate::events::{Change, ChangeKind, EntityChange};
use crate::state::{CatalogSnapshot, SourceHealth, State};

pub struct BackstagePoller {
    pub client: BackstageClient,
    pub state: Arc<State>,
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
                let old = self.state.catalog.snapshot();
                let new = CatalogSnapshot::build(listing.entities, Utc::now());
                let changes = diff(&old, &new);
                let count = new.len() as u64;
                if changes.is_empty() {
                    self.state.catalog.refresh(new);
                } else {
                    self.state.catalog.replace(new);
                }
                let n_changes = changes.len();
                self.state
                    .bus
                    .publish(changes.into_iter().map(Change::Entity));
                self.health
                    .record_success(count, started.elapsed().as_secs_f64() * 1e3);
                tracing::debug!(
                    source = %self.health.name,
                    entities = count,
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

/// The identity of an entity across polls: its uid, or its ref where the catalog sends none.
fn identity(e: &Entity) -> &str {
    e.uid.as_deref().unwrap_or(&e.ref_string)
}

fn changed(a: &Entity, b: &Entity) -> bool {
    match (&a.etag, &b.etag) {
        (Some(x), Some(y)) => x != y,
        _ => a != b,
    }
}

/// Added, Modified and Deleted between two snapshots, in ref order.
pub fn diff(old: &CatalogSnapshot, new: &CatalogSnapshot) -> Vec<EntityChange> {
    let old_by_id: HashMap<&str, &Arc<Entity>> =
        old.entities.iter().map(|e| (identity(e), e)).collect();
    let mut seen = std::collections::HashSet::with_capacity(new.len());
    let mut changes = Vec::new();
    for e in &new.entities {
        let id = identity(e);
        seen.insert(id);
        match old_by_id.get(id) {
            None => changes.push(EntityChange {
                kind: ChangeKind::Added,
                entity_ref: e.ref_string.clone(),
                previous: None,
                current: Some(e.clone()),
            }),
            Some(prev) if changed(prev, e) => changes.push(EntityChange {
                kind: ChangeKind::Modified,
                entity_ref: e.ref_string.clone(),
                previous: Some((*prev).clone()),
                current: Some(e.clone()),
            }),
            Some(_) => {}
        }
    }
    for e in &old.entities {
        if !seen.contains(identity(e)) {
            changes.push(EntityChange {
                kind: ChangeKind::Deleted,
                entity_ref: e.ref_string.clone(),
                previous: Some(e.clone()),
                current: None,
            });
        }
    }
    changes
}
