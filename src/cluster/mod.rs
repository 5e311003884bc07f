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
