//! Several replicas sharing one change log on Redis (`cluster:` in the config).
//!
//! - `lease.rs`: membership and one owner per upstream instance (a lease with a fencing number,
//!   spread over live replicas by rendezvous hashing); it opens and closes the gates in
//!   `state::ownership`, so a source ingests only on its owner.
//! - `log.rs`: the change log, a Redis Stream. Writers append (`state::ChangeLog`); every replica
//!   reads it in order, applies other replicas' records (`state::replica::LogApplier`) and
//!   publishes every record's changes on its own bus at their log positions — the cursors.
//!   Owners write per-source snapshots that a replica starting later loads first.
//! - [`Shared`]: the Redis handle the rest of the server uses for what replicas share besides
//!   the log (persisted operations, rate-limit buckets, GitHub's conditional-request cache and
//!   webhook deliveries).

mod changelog;
mod lease;
mod settings;
mod snapshots;
mod status;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use settings::ClusterSettings;
pub use status::ClusterStatus;

use crate::state::replica::LogApplier;
use crate::state::State;

/// Joins the replicas: the log's writer goes into `state` (writers append there from now on),
/// and the tasks start — the reader (after loading the snapshots), leases, the appender, the
/// sharing of snapshots and health. Nothing here waits for Redis: a replica that cannot reach
/// it serves what it has and keeps trying.
pub fn start(
    settings: &ClusterSettings,
    url: &secrecy::SecretString,
    shared: Shared,
    state: &Arc<State>,
    tasks: &mut JoinSet<()>,
    shutdown: &CancellationToken,
) -> Result<Arc<ClusterStatus>, redis::RedisError> {
    let replica = settings.replica_id();
    let lease = Duration::from_secs_f64(settings.lease_secs);
    let status = Arc::new(ClusterStatus::new(&replica));
    let progress = Arc::new(changelog::Progress::default());
    let (writer, rx, queued) = changelog::Appender::channel();
    if state.change_log.set(Arc::new(writer)).is_err() {
        tracing::error!("the change log was already set; replicas started twice?");
    }
    tasks.spawn(
        changelog::Appender {
            shared: shared.clone(),
            replica: replica.clone(),
            state: state.clone(),
            progress: progress.clone(),
            status: status.clone(),
            max_entries: settings.log_max_entries,
        }
        .run(rx, queued.clone(), shutdown.clone()),
    );
    // The reader blocks up to a second per read: its own connection, a longer timeout.
    let reader_conn = Shared::connect(url, &settings.key_prefix, Duration::from_secs(5))?.conn;
    tasks.spawn(join_then_read(
        shared.clone(),
        reader_conn,
        replica.clone(),
        state.clone(),
        progress.clone(),
        status.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(
        lease::LeaseManager {
            shared: shared.clone(),
            replica: replica.clone(),
            state: state.clone(),
            progress: progress.clone(),
            status: status.clone(),
            lease,
            queued,
        }
        .run(shutdown.clone()),
    );
    tasks.spawn(
        snapshots::Sharer {
            shared,
            state: state.clone(),
            applier: LogApplier::new(state.clone()),
            progress,
            status: status.clone(),
            every: Duration::from_secs_f64(settings.snapshot_secs),
        }
        .run(shutdown.clone()),
    );
    tracing::info!(replica = %replica, "replica mode: sharing one change log on Redis");
    Ok(status)
}

/// Loads every source's snapshot, then reads the log from the oldest entry they cover.
async fn join_then_read(
    shared: Shared,
    reader_conn: redis::aio::ConnectionManager,
    replica: String,
    state: Arc<State>,
    progress: Arc<changelog::Progress>,
    status: Arc<ClusterStatus>,
    token: CancellationToken,
) {
    let ids = state.ownership.ids();
    let mut backoff = Duration::from_millis(100);
    let (snaps, end) = loop {
        let attempt = async {
            let end = changelog::end_position(&shared).await?;
            let snaps = snapshots::load(&shared, &ids).await?;
            Ok::<_, redis::RedisError>((snaps, end))
        };
        match attempt.await {
            Ok(x) => break x,
            Err(e) => {
                status.set_available(false);
                tracing::warn!(error = %e, "cannot reach Redis to join the replicas; retrying");
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    };
    status.set_available(true);
    let applier = LogApplier::new(state.clone());
    let mut covered: HashMap<String, changelog::EntryId> = HashMap::new();
    let mut newest = 0;
    for (id, snap) in snaps {
        let Some(entry) = changelog::parse_id(&snap.entry) else {
            continue;
        };
        applier.import(snap.state);
        covered.insert(id, entry);
        newest = newest.max(snap.position);
    }
    // Every source has a snapshot: read from the oldest entry one covers. Otherwise from the
    // log's start (what it still holds).
    let start = if !ids.is_empty() && covered.len() == ids.len() {
        covered.values().min().copied().unwrap_or((0, 0))
    } else {
        (0, 0)
    };
    // Events up to the newest snapshot are not all applied here as events: a cursor before it
    // resyncs on this replica; after it, every event is published as on every other replica.
    if newest > 0 {
        state.bus.start_at(newest);
    }
    tracing::info!(
        snapshots = covered.len(),
        from = %changelog::render_id(start),
        end,
        "joining the change log"
    );
    changelog::Reader {
        shared,
        conn: reader_conn,
        replica,
        applier,
        progress,
        status,
        covered,
        join_end: end,
    }
    .run(start, token)
    .await;
}

/// The Redis connection and key prefix shared by everything replicas keep in common. Cheap to
/// clone (the connection manager multiplexes one connection and reconnects by itself).
#[derive(Clone)]
pub struct Shared {
    pub conn: redis::aio::ConnectionManager,
    prefix: String,
    /// After a failed step, Redis is not tried again before this instant (milliseconds since
    /// `started`): while it is away every request falls back at once instead of each waiting
    /// for its own timeout.
    down_until: std::sync::Arc<std::sync::atomic::AtomicU64>,
    started: std::time::Instant,
}

/// How long Redis is left alone after a failed step.
const BACK_OFF: std::time::Duration = std::time::Duration::from_secs(1);

impl Shared {
    /// A connection manager that connects on first use and reconnects by itself; commands time
    /// out after `timeout` instead of hanging while Redis is away.
    pub fn connect(
        url: &secrecy::SecretString,
        prefix: &str,
        timeout: std::time::Duration,
    ) -> Result<Self, redis::RedisError> {
        use secrecy::ExposeSecret;
        let client = redis::Client::open(url.expose_secret())?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_min_delay(std::time::Duration::from_millis(50))
            .set_max_delay(std::time::Duration::from_secs(2))
            .set_number_of_retries(3);
        let conn = redis::aio::ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self::new(conn, prefix))
    }

    pub fn new(conn: redis::aio::ConnectionManager, prefix: &str) -> Self {
        Self {
            conn,
            prefix: prefix.to_string(),
            down_until: Default::default(),
            started: std::time::Instant::now(),
        }
    }

    /// One step against Redis (`step` gets a clone of the connection), bounded by `limit`.
    /// `None` when it failed or timed out, or when a recent failure says Redis is away (then
    /// without trying): the caller falls back to what this replica knows alone. A failure is
    /// logged once per outage, not once per request.
    pub async fn attempt<T, F, Fut>(
        &self,
        what: &'static str,
        limit: std::time::Duration,
        step: F,
    ) -> Option<T>
    where
        F: FnOnce(redis::aio::ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        use std::sync::atomic::Ordering;
        let now = self.started.elapsed().as_millis() as u64;
        if now < self.down_until.load(Ordering::Relaxed) {
            return None;
        }
        let failure = match tokio::time::timeout(limit, step(self.conn.clone())).await {
            Ok(Ok(v)) => {
                self.down_until.store(0, Ordering::Relaxed);
                return Some(v);
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {limit:?}"),
        };
        let until = self.started.elapsed().as_millis() as u64 + BACK_OFF.as_millis() as u64;
        if self.down_until.swap(until, Ordering::Relaxed) == 0 {
            tracing::warn!(step = what, error = %failure, "shared state on Redis unavailable; this replica falls back to its own");
        }
        None
    }

    /// Whether the last step failed (Redis is being left alone for a moment).
    pub fn is_down(&self) -> bool {
        let now = self.started.elapsed().as_millis() as u64;
        now < self.down_until.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A key under this deployment's prefix: `key("apq:abc")` → `idp-graph:apq:abc`.
    pub fn key(&self, suffix: &str) -> String {
        format!("{}:{suffix}", self.prefix)
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// The cursor epoch of every replica sharing the log under `prefix` (cursors are log positions,
/// the same on every replica).
pub fn epoch(prefix: &str) -> u32 {
    use sha2::Digest;
    let d = sha2::Sha256::digest(format!("idp-graph cluster {prefix}").as_bytes());
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}
