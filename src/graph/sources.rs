//! `SourceStatus`: one row of `Query.sources`.

use std::sync::Arc;

use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};

use super::Viewer;
use crate::state::{SourceHealth, SourceKind};

/// How many of a source's objects the caller sees: the catalog whole (or nothing), an ArgoCD
/// instance's visible applications, a cluster's objects in visible namespaces. `None` for
/// GitHub (its cache holds what any caller asked for; no per-caller count exists).
pub fn visible_count(viewer: &Viewer<'_>, h: &SourceHealth) -> Option<u64> {
    let state = viewer.state();
    match h.kind {
        SourceKind::Backstage => {
            let g = viewer.principal.grants();
            Some(if g.catalog || g.admin {
                state.catalog.snapshot().len() as u64
            } else {
                0
            })
        }
        SourceKind::ArgoCd => Some(
            state
                .apps
                .select(|a| a.key.instance == h.name && viewer.sees_app(a))
                .len() as u64,
        ),
        SourceKind::Kubernetes => {
            let c = state.clusters.get(&h.name)?;
            let mut n = 0u64;
            for ns in c.namespaces.list(None) {
                let name = ns.metadata.name.clone().unwrap_or_default();
                if viewer.sees_namespace(&c.name, &name) {
                    n += 1 + c.objects_in_namespace(&name) as u64;
                }
            }
            Some(n)
        }
        SourceKind::GitHub => None,
    }
}

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
    /// Objects held from it that the caller may see (null where that cannot be told).
    pub object_count: Option<u64>,
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
    /// One source as `admin` may see it: others get no URL and no raw upstream error text,
    /// and `visible` (what they may see of it) as the count.
    pub fn of(h: Arc<SourceHealth>, admin: bool, visible: Option<u64>) -> Self {
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
            object_count: if admin { Some(s.object_count) } else { visible },
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
