//! Prometheus text exposition, written by hand: a few counters and one histogram do not need a
//! metrics framework, and the per-source numbers are read straight from `state::sources`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use parking_lot::Mutex;

use super::HttpState;

/// Upper bounds of the latency buckets, seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
pub struct Metrics {
    /// (operation kind, HTTP status) → count. A `Mutex` over a tiny Vec: a handful of distinct
    /// keys, updated once per request, never held across an await.
    requests: Mutex<Vec<((&'static str, u16), u64)>>,
    /// Requests whose latency fell in bucket `i` and no lower one (summed when rendered: one
    /// atomic add per request, not one per bucket).
    buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    /// Sum of latencies in microseconds (integer so it can be atomic).
    latency_sum_us: AtomicU64,
    /// `extensions.code` → count.
    errors: Mutex<Vec<(String, u64)>>,
}

impl Metrics {
    pub fn observe(&self, operation: &'static str, status: u16, seconds: f64) {
        {
            let mut r = self.requests.lock();
            match r.iter_mut().find(|(k, _)| *k == (operation, status)) {
                Some((_, n)) => *n += 1,
                None => r.push(((operation, status), 1)),
            }
        }
        if let Some(i) = BUCKETS.iter().position(|le| seconds <= *le) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    pub fn error(&self, code: &str) {
        let mut e = self.errors.lock();
        match e.iter_mut().find(|(k, _)| k == code) {
            Some((_, n)) => *n += 1,
            None => e.push((code.to_string(), 1)),
        }
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub async fn render(State(http): State<HttpState>) -> impl IntoResponse {
    let m = &http.metrics;
    let mut out = String::with_capacity(4096);
    out.push_str("# HELP idp_graphql_requests_total GraphQL HTTP requests by operation type and status.\n# TYPE idp_graphql_requests_total counter\n");
    for ((op, status), n) in m.requests.lock().iter() {
        let _ = writeln!(
            out,
            "idp_graphql_requests_total{{operation=\"{op}\",status=\"{status}\"}} {n}"
        );
    }
    out.push_str("# HELP idp_graphql_request_duration_seconds Time to answer a GraphQL HTTP request.\n# TYPE idp_graphql_request_duration_seconds histogram\n");
    let mut cumulative = 0;
    for (i, le) in BUCKETS.iter().enumerate() {
        cumulative += m.buckets[i].load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "idp_graphql_request_duration_seconds_bucket{{le=\"{le}\"}} {cumulative}"
        );
    }
    let count = m.latency_count.load(Ordering::Relaxed);
    let _ = writeln!(
        out,
        "idp_graphql_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}\nidp_graphql_request_duration_seconds_sum {}\nidp_graphql_request_duration_seconds_count {count}",
        m.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6
    );
    {
        let h = &http.pipeline.subscriptions;
        let _ = writeln!(
            out,
            "# HELP idp_subscription_executions_total Subscription executions started (one per group of identical subscribers).\n# TYPE idp_subscription_executions_total counter\nidp_subscription_executions_total {}\n\
             # HELP idp_subscription_joined_total Subscribers that joined a running execution.\n# TYPE idp_subscription_joined_total counter\nidp_subscription_joined_total {}\n\
             # HELP idp_subscription_groups Shared executions running now.\n# TYPE idp_subscription_groups gauge\nidp_subscription_groups {}",
            h.groups_started.load(Ordering::Relaxed),
            h.joined.load(Ordering::Relaxed),
            h.groups(),
        );
    }
    {
        let (published, buffered) = http.state.bus.counts();
        let _ = writeln!(
            out,
            "# HELP idp_events_published_total Changes published on the event bus.\n# TYPE idp_events_published_total counter\nidp_events_published_total {published}\n\
             # HELP idp_events_buffered Events a reconnecting subscriber can resume from now (events.replay, events.replay_secs).\n# TYPE idp_events_buffered gauge\nidp_events_buffered {buffered}",
        );
    }
    if let Some(c) = &http.cluster {
        c.render(&mut out);
    }
    if let Some(c) = &http.pipeline.cache {
        let _ = writeln!(
            out,
            "# HELP idp_response_cache_hits_total Queries answered from the response cache.\n# TYPE idp_response_cache_hits_total counter\nidp_response_cache_hits_total {}\n\
             # HELP idp_response_cache_misses_total Queries the response cache could not answer.\n# TYPE idp_response_cache_misses_total counter\nidp_response_cache_misses_total {}\n\
             # HELP idp_response_cache_invalidated_total Kept answers dropped because what they read changed.\n# TYPE idp_response_cache_invalidated_total counter\nidp_response_cache_invalidated_total {}\n\
             # HELP idp_response_cache_evictions_total Kept answers dropped for room.\n# TYPE idp_response_cache_evictions_total counter\nidp_response_cache_evictions_total {}\n\
             # HELP idp_response_cache_entries Answers kept now.\n# TYPE idp_response_cache_entries gauge\nidp_response_cache_entries {}",
            c.hits.load(Ordering::Relaxed),
            c.misses.load(Ordering::Relaxed),
            c.invalidated.load(Ordering::Relaxed),
            c.evictions.load(Ordering::Relaxed),
            c.len(),
        );
    }
    {
        // Replicas (`cluster:`): steps decided by this replica alone because Redis failed.
        let p = &http.pipeline;
        out.push_str("# HELP idp_shared_state_fallbacks_total Steps of the replicas' shared state (Redis) that failed and were decided by this replica alone.\n# TYPE idp_shared_state_fallbacks_total counter\n");
        let github = http.upstreams.github().map(|g| g.shared_fallbacks());
        for (step, n) in [
            ("rate_limit", p.rate.as_ref().map(|r| r.fallbacks())),
            ("apq", Some(p.persisted.fallbacks())),
            ("github", github),
        ] {
            if let Some(n) = n {
                let _ = writeln!(
                    out,
                    "idp_shared_state_fallbacks_total{{step=\"{step}\"}} {n}"
                );
            }
        }
    }
    out.push_str("# HELP idp_graphql_errors_total GraphQL errors by extensions.code.\n# TYPE idp_graphql_errors_total counter\n");
    for (code, n) in m.errors.lock().iter() {
        let _ = writeln!(
            out,
            "idp_graphql_errors_total{{code=\"{}\"}} {n}",
            escape(code)
        );
    }
    let sources = http.state.sources.all();
    for (name, help, kind) in [
        (
            "idp_source_syncs_total",
            "Successful syncs per source.",
            "counter",
        ),
        (
            "idp_source_errors_total",
            "Failed sync attempts per source.",
            "counter",
        ),
        (
            "idp_source_connected",
            "1 when the last attempt succeeded.",
            "gauge",
        ),
        (
            "idp_source_objects",
            "Objects held from the source.",
            "gauge",
        ),
        (
            "idp_source_last_sync_timestamp_seconds",
            "Unix time of the last successful sync.",
            "gauge",
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for s in &sources {
            let snap = s.snapshot();
            let v = match name {
                "idp_source_syncs_total" => snap.sync_count as f64,
                "idp_source_errors_total" => snap.error_count as f64,
                "idp_source_connected" => f64::from(u8::from(snap.connected)),
                "idp_source_objects" => snap.object_count as f64,
                _ => snap
                    .last_sync_at
                    .map(|t| t.timestamp_millis() as f64 / 1e3)
                    .unwrap_or(0.0),
            };
            let _ = writeln!(
                out,
                "{name}{{source=\"{}\",kind=\"{}\"}} {v}",
                escape(&s.name),
                s.kind.as_str()
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP idp_audit_backlog Audit records waiting for the durable sink (PostgreSQL).\n# TYPE idp_audit_backlog gauge\nidp_audit_backlog {}",
        http.audit.backlog()
    );
    if let Some(gh) = http.upstreams.github() {
        let b = gh.client().budget();
        for (name, help, kind, v) in [
            (
                "idp_github_requests_total",
                "Requests sent to GitHub.",
                "counter",
                Some(b.requests),
            ),
            (
                "idp_github_not_modified_total",
                "GitHub answers that were 304 (free).",
                "counter",
                Some(b.not_modified),
            ),
            (
                "idp_github_batches_total",
                "Batched lookup passes made by the graph's loaders.",
                "counter",
                Some(gh.batches()),
            ),
            (
                "idp_github_rate_remaining",
                "Rate-limit points left in the window.",
                "gauge",
                b.remaining,
            ),
        ] {
            if let Some(v) = v {
                let _ = writeln!(
                    out,
                    "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
                );
            }
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
}
