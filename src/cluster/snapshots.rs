//! What an owner shares besides its changes: each source's whole state now and then (a
//! snapshot, tagged with the log entry it covers, for replicas that start later) and its
//! health every second (so every replica's `sources` and `/readyz` tell how fresh each source
//! is, whoever ingests it).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use tokio_util::sync::CancellationToken;

use super::changelog::{render_id, EntryId, Progress};
use super::status::ClusterStatus;
use super::Shared;
use crate::state::replica::{LogApplier, SourceState};
use crate::state::{SourceSnapshot, State};

/// One source's snapshot as stored (`snap:<source>`).
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct Snapshot {
    /// The last log entry applied when it was taken.
    pub entry: String,
    /// The highest log position applied then.
    pub position: u64,
    pub state: SourceState,
}

pub(super) struct Sharer {
    pub shared: Shared,
    pub state: Arc<State>,
    pub applier: LogApplier,
    pub progress: Arc<Progress>,
    pub status: Arc<ClusterStatus>,
    pub every: Duration,
}

impl Sharer {
    pub async fn run(self, token: CancellationToken) {
        let mut written: HashMap<String, Instant> = HashMap::new();
        loop {
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            let round = tokio::time::timeout(Duration::from_secs(5), self.round(&mut written))
                .await
                .unwrap_or_else(|_| {
                    Err(redis::RedisError::from((
                        redis::ErrorKind::Io,
                        "sharing round timed out",
                    )))
                });
            if let Err(e) = round {
                tracing::debug!(error = %e, "cannot share snapshots and health this round");
                self.mark_log_away();
            }
        }
    }

    async fn round(&self, written: &mut HashMap<String, Instant>) -> redis::RedisResult<()> {
        let mut conn = self.shared.conn.clone();
        let health_key = self.shared.key("health");
        let caught_up = self.progress.caught_up.load(Ordering::Acquire);
        for h in self.state.sources.all() {
            let id = h.id();
            if self.state.ownership.fence(&id).is_none() {
                written.remove(&id);
                continue;
            }
            let snap = h.snapshot();
            let json = serde_json::to_string(&snap).unwrap_or_default();
            let _: () = conn.hset(&health_key, &id, json).await?;
            let due = written.get(&id).is_none_or(|t| t.elapsed() >= self.every);
            if due && snap.first_sync_done {
                self.write_snapshot(&mut conn, &h).await?;
                written.insert(id, Instant::now());
            }
        }
        let all: HashMap<String, String> = conn.hgetall(&health_key).await?;
        let end: Option<u64> = conn.get(self.shared.key("pos")).await?;
        self.status.end.store(end.unwrap_or(0), Ordering::Relaxed);
        if caught_up {
            for h in self.state.sources.all() {
                let id = h.id();
                if self.state.ownership.fence(&id).is_some() {
                    continue;
                }
                if let Some(s) = all
                    .get(&id)
                    .and_then(|j| serde_json::from_str::<SourceSnapshot>(j).ok())
                {
                    self.applier.adopt_health(&h, s);
                }
            }
        }
        Ok(())
    }

    async fn write_snapshot(
        &self,
        conn: &mut redis::aio::ConnectionManager,
        h: &crate::state::SourceHealth,
    ) -> redis::RedisResult<()> {
        let entry: EntryId = *self.progress.last.lock();
        let position = self.progress.position.load(Ordering::Acquire);
        let Some(state) = self.applier.export(h.kind, &h.name) else {
            return Ok(());
        };
        let snapshot = Snapshot {
            entry: render_id(entry),
            position,
            state,
        };
        let json = serde_json::to_string(&snapshot).unwrap_or_default();
        let _: () = conn
            .set(self.shared.key(&format!("snap:{}", h.id())), json)
            .await?;
        Ok(())
    }

    /// The log is away: sources this replica does not ingest are served as last applied; say
    /// so in their health (`sources.lastError`, `connected: false`).
    fn mark_log_away(&self) {
        let since = self
            .status
            .unavailable_since()
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_else(|| "now".into());
        for h in self.state.sources.all() {
            if self.state.ownership.fence(&h.id()).is_some() {
                continue;
            }
            let mut s = h.snapshot();
            s.connected = false;
            s.last_error = Some(format!(
                "the shared change log (Redis) is unreachable since {since}; serving what was applied before"
            ));
            h.adopt(s);
        }
    }
}

/// Reads every configured source's snapshot (those that have one).
pub(super) async fn load(
    shared: &Shared,
    ids: &[String],
) -> redis::RedisResult<Vec<(String, Snapshot)>> {
    let mut conn = shared.conn.clone();
    let mut out = Vec::new();
    for id in ids {
        let v: Option<String> = conn.get(shared.key(&format!("snap:{id}"))).await?;
        if let Some(v) = v {
            match serde_json::from_str::<Snapshot>(&v) {
                Ok(s) => out.push((id.clone(), s)),
                Err(e) => tracing::warn!(source = %id, error = %e, "unreadable snapshot ignored"),
            }
        }
    }
    Ok(out)
}
