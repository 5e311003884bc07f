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

mod settings;

pub use settings::ClusterSettings;

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
