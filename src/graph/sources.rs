//! `SourceStatus`: one row of `Query.sources`.

use std::sync::Arc;

use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};

use crate::state::{SourceHealth, SourceKind};

/// One upstream instance as this server sees it.
#[derive(SimpleObject)]
pub struct SourceStatus {
    pub name: String,
    pub kind: SourceKind,
    /// The upstream's URL (admins only; null for others).
    pub url: Option<String>,
    /// The last attempt to read it succeeded.
    pub connected: bool,
    /// Its first sync completed (or readiness stopped waiting for it).
    pub ready: bool,
    /// Values from it are the last known ones, not current (last attempt failed).
    pub stale: bool,
    pub last_sync_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub object_count: u64,
    pub sync_count: u64,
    pub error_count: u64,
    pub last_sync_duration_ms: Option<f64>,
    /// Seconds since the last successful sync.
    pub lag_seconds: Option<f64>,
    /// GitHub: the rate-limit budget as last reported.
    pub rate_limit: Option<RateLimit>,
}

#[derive(SimpleObject)]
pub struct RateLimit {
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    pub resets_at: Option<DateTime<Utc>>,
}

impl SourceStatus {
    /// One source as `admin` may see it: others get no URL and no raw upstream error text.
    pub fn of(h: Arc<SourceHealth>, admin: bool) -> Self {
        let s = h.snapshot();
        let last_error = match (s.last_error, admin) {
            (Some(e), true) => Some(e),
            (Some(_), false) => Some("the upstream is unavailable".to_string()),
            (None, _) => None,
        };
        Self {
            name: h.name.clone(),
            kind: h.kind,
            url: admin.then(|| h.url.clone()),
            connected: s.connected,
            ready: s.first_sync_done || s.gave_up_waiting,
            stale: !s.connected && s.first_sync_done,
            last_sync_at: s.last_sync_at,
            last_attempt_at: s.last_attempt_at,
            lag_seconds: s
                .last_sync_at
                .map(|t| (Utc::now() - t).num_milliseconds() as f64 / 1000.0),
            last_error,
            object_count: s.object_count,
            sync_count: s.sync_count,
            error_count: s.error_count,
            last_sync_duration_ms: s.last_sync_duration_ms,
            rate_limit: (s.rate_limit.is_some() || s.rate_remaining.is_some()).then(|| RateLimit {
                limit: s.rate_limit,
                remaining: s.rate_remaining,
                resets_at: s.rate_reset.and_then(|r| DateTime::from_timestamp(r, 0)),
            }),
        }
    }
}
