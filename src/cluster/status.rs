//! What `/readyz`, `/metrics` and `sources` report of the replicas' shared state: whether the
//! change log is reachable, how far this replica has applied it, which sources it owns, and
//! Redis round trips.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;

/// Upper bounds (seconds) of the Redis round-trip histogram.
const RTT_BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.0,
];

#[derive(Default)]
pub struct ClusterStatus {
    pub replica: String,
    available: AtomicBool,
    /// When the log became unreachable (None while it is reachable).
    unavailable_since: Mutex<Option<DateTime<Utc>>>,
    /// Highest log position applied here.
    pub applied: AtomicU64,
    /// The log's end as last read from Redis.
    pub end: AtomicU64,
    /// Records refused because this replica's lease had lapsed.
    pub fenced: AtomicU64,
    /// Records dropped because Redis stayed away longer than the queue holds.
    pub dropped: AtomicU64,
    /// Source ids this replica owns now.
    pub owned: Mutex<Vec<String>>,
    /// Live replicas in the membership set, as last read.
    pub members: Mutex<Vec<String>>,
    rtt: Mutex<([u64; RTT_BUCKETS.len()], u64, f64)>,
}

impl ClusterStatus {
    pub fn new(replica: &str) -> Self {
        Self {
            replica: replica.to_string(),
            ..Default::default()
        }
    }

    pub fn set_available(&self, up: bool) {
        let was = self.available.swap(up, Ordering::AcqRel);
        let mut since = self.unavailable_since.lock();
        if up {
            *since = None;
        } else if was || since.is_none() {
            since.get_or_insert_with(Utc::now);
        }
    }

    pub fn available(&self) -> bool {
        self.available.load(Ordering::Acquire)
    }

    pub fn unavailable_since(&self) -> Option<DateTime<Utc>> {
        *self.unavailable_since.lock()
    }

    pub fn observe_rtt(&self, d: std::time::Duration) {
        let secs = d.as_secs_f64();
        let mut h = self.rtt.lock();
        for (i, b) in RTT_BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.0[i] += 1;
            }
        }
        h.1 += 1;
        h.2 += secs;
    }

    /// Prometheus text for the replica's shared state.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let applied = self.applied.load(Ordering::Relaxed);
        let end = self.end.load(Ordering::Relaxed).max(applied);
        let _ = writeln!(out, "# HELP idp_graph_cluster_log_available 1 while the shared change log (Redis) is reachable.\n# TYPE idp_graph_cluster_log_available gauge\nidp_graph_cluster_log_available {}", u8::from(self.available()));
        let _ = writeln!(out, "# HELP idp_graph_cluster_log_position Highest change log position applied by this replica.\n# TYPE idp_graph_cluster_log_position gauge\nidp_graph_cluster_log_position {applied}");
        let _ = writeln!(out, "# HELP idp_graph_cluster_log_lag Changes in the log this replica has not applied yet.\n# TYPE idp_graph_cluster_log_lag gauge\nidp_graph_cluster_log_lag {}", end - applied);
        let _ = writeln!(out, "# HELP idp_graph_cluster_fenced_total Records refused because this replica's lease had lapsed.\n# TYPE idp_graph_cluster_fenced_total counter\nidp_graph_cluster_fenced_total {}", self.fenced.load(Ordering::Relaxed));
        let _ = writeln!(out, "# HELP idp_graph_cluster_dropped_total Records dropped after Redis stayed away longer than the queue holds.\n# TYPE idp_graph_cluster_dropped_total counter\nidp_graph_cluster_dropped_total {}", self.dropped.load(Ordering::Relaxed));
        let _ = writeln!(out, "# HELP idp_graph_cluster_lease_owned 1 for each upstream instance this replica ingests (holds the lease of).\n# TYPE idp_graph_cluster_lease_owned gauge");
        for id in self.owned.lock().iter() {
            let _ = writeln!(
                out,
                "idp_graph_cluster_lease_owned{{source=\"{id}\",replica=\"{}\"}} 1",
                self.replica
            );
        }
        let _ = writeln!(out, "# HELP idp_graph_cluster_members Live replicas in the membership set.\n# TYPE idp_graph_cluster_members gauge\nidp_graph_cluster_members {}", self.members.lock().len());
        let h = self.rtt.lock();
        let _ = writeln!(out, "# HELP idp_graph_cluster_redis_seconds Redis round trips (log appends and reads, leases).\n# TYPE idp_graph_cluster_redis_seconds histogram");
        for (i, b) in RTT_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "idp_graph_cluster_redis_seconds_bucket{{le=\"{b}\"}} {}",
                h.0[i]
            );
        }
        let _ = writeln!(
            out,
            "idp_graph_cluster_redis_seconds_bucket{{le=\"+Inf\"}} {}\nidp_graph_cluster_redis_seconds_sum {}\nidp_graph_cluster_redis_seconds_count {}",
            h.1, h.2, h.1
        );
    }
}
