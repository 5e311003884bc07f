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
}

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
        }
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
