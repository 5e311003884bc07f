//! Health and freshness of every configured upstream instance: what `Query.sources`, `/readyz`,
//! `/metrics` and each node's `freshness` report. Sources write it; everything else reads.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::{Mutex, RwLock};

// The one list of upstream kinds: config, health, logs, metrics and the GraphQL enum
// (`SourceStatus.kind`, names spelt as users know them) all use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, async_graphql::Enum)]
pub enum SourceKind {
    Backstage,
    #[graphql(name = "ARGOCD")]
    ArgoCd,
    Kubernetes,
    #[graphql(name = "GITHUB")]
    GitHub,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Backstage => "backstage",
            Self::ArgoCd => "argocd",
            Self::Kubernetes => "kubernetes",
            Self::GitHub => "github",
        }
    }
}

/// A point-in-time copy of one source's health.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct SourceSnapshot {
    pub connected: bool,
    pub first_sync_done: bool,
    /// The first sync did not finish within the readiness bound; readiness stops waiting.
    pub gave_up_waiting: bool,
    /// Set for kinds this build cannot read yet: reported, never waited for.
    pub unsupported: bool,
    pub last_sync_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub object_count: u64,
    pub sync_count: u64,
    pub error_count: u64,
    pub last_sync_duration_ms: Option<f64>,
    /// GitHub: the rate-limit window as last reported.
    pub rate_limit: Option<u64>,
    pub rate_remaining: Option<u64>,
    pub rate_reset: Option<i64>,
}

/// One upstream instance. The `Mutex` guards a small struct copied out on read; it is never
/// held across an await.
#[derive(Debug)]
pub struct SourceHealth {
    pub name: String,
    pub kind: SourceKind,
    pub url: String,
    state: Mutex<SourceSnapshot>,
}

impl SourceHealth {
    pub fn snapshot(&self) -> SourceSnapshot {
        // Health moves with time and every sync: an answer showing it is good for a second.
        super::reads::note_max_age(std::time::Duration::from_secs(1));
        self.state.lock().clone()
    }

    pub fn record_success(&self, object_count: u64, duration_ms: f64) {
        let now = Utc::now();
        let mut s = self.state.lock();
        s.connected = true;
        s.first_sync_done = true;
        s.last_sync_at = Some(now);
        s.last_attempt_at = Some(now);
        s.last_error = None;
        s.object_count = object_count;
        s.sync_count += 1;
        s.last_sync_duration_ms = Some(duration_ms);
    }

    /// `message` is shown to users: it must carry no credential (callers pass our own error
    /// texts, which never include tokens).
    pub fn record_failure(&self, message: String) {
        let mut s = self.state.lock();
        s.connected = false;
        s.last_attempt_at = Some(Utc::now());
        s.last_error = Some(message);
        s.error_count += 1;
    }

    pub fn set_rate_limit(&self, limit: Option<u64>, remaining: Option<u64>, reset: Option<i64>) {
        let mut s = self.state.lock();
        s.rate_limit = limit;
        s.rate_remaining = remaining;
        s.rate_reset = reset;
    }

    /// Takes the owning replica's view of the source (read from the shared change log).
    pub fn adopt(&self, snapshot: SourceSnapshot) {
        *self.state.lock() = snapshot;
    }

    /// `<kind>/<name>` (`ownership::source_id`).
    pub fn id(&self) -> String {
        super::ownership::source_id(self.kind, &self.name)
    }

    pub fn set_object_count(&self, n: u64) {
        self.state.lock().object_count = n;
    }

    pub fn give_up_waiting(&self) {
        let mut s = self.state.lock();
        if !s.first_sync_done {
            s.gave_up_waiting = true;
        }
    }

    pub fn mark_unsupported(&self, message: &str) {
        let mut s = self.state.lock();
        s.unsupported = true;
        s.last_error = Some(message.to_string());
    }

    /// Serving from a snapshot that the source could not refresh on its last attempt.
    pub fn is_stale(&self) -> bool {
        // Health moves with time and every sync: an answer showing it is good for a second.
        super::reads::note_max_age(std::time::Duration::from_secs(1));
        !self.state.lock().connected
    }
}

#[derive(Debug, Default)]
pub struct SourceRegistry {
    /// Written only at start-up; a `RwLock` keeps reads cheap and uncontended.
    entries: RwLock<Vec<Arc<SourceHealth>>>,
}

impl SourceRegistry {
    pub fn register(&self, name: &str, kind: SourceKind, url: &str) -> Arc<SourceHealth> {
        let health = Arc::new(SourceHealth {
            name: name.to_string(),
            kind,
            url: url.to_string(),
            state: Mutex::new(SourceSnapshot::default()),
        });
        self.entries.write().push(health.clone());
        health
    }

    pub fn all(&self) -> Vec<Arc<SourceHealth>> {
        self.entries.read().clone()
    }

    pub fn find(&self, kind: SourceKind, name: &str) -> Option<Arc<SourceHealth>> {
        self.entries
            .read()
            .iter()
            .find(|h| h.kind == kind && h.name == name)
            .cloned()
    }

    /// Names of sources that still hold readiness back.
    pub fn not_ready(&self) -> Vec<String> {
        self.all()
            .iter()
            .filter(|h| {
                let s = h.snapshot();
                !(s.first_sync_done || s.gave_up_waiting || s.unsupported)
            })
            .map(|h| format!("{}/{}", h.kind.as_str(), h.name))
            .collect()
    }
}
