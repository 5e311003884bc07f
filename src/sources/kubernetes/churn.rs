//! Backoff for watches that end as soon as they start. kube's watcher treats a watch stream
//! that ends — including one whose last line was cut off — as a normal end and re-watches at
//! once, without an error and without backoff. An API server or proxy that answers every watch
//! with a cut-off body (or an empty one) would then be asked thousands of times a second. This
//! layer, on the client the watchers use, spaces out watch requests on a path whose previous
//! watch started moments ago: after a few quick ones, 200 ms doubling up to `MAX_DELAY`, reset
//! once a watch lives longer than `QUICK` — and tells the source's health, since no error does.

use std::collections::HashMap;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use http::Request;
use kube::client::Body;
use parking_lot::Mutex;
use tower::{Layer, Service, ServiceExt};

use crate::state::SourceHealth;

/// A watch that restarts within this of the previous start counts as a quick one.
const QUICK: Duration = Duration::from_secs(1);
/// Quick restarts allowed before spacing begins (a 410 and its re-list take a couple).
const FREE: u32 = 3;
const MAX_DELAY: Duration = Duration::from_secs(5);

#[derive(Clone, Default)]
pub struct WatchChurnLayer {
    /// Per watched path: when its last watch started, and how many quick restarts in a row.
    recent: Arc<Mutex<HashMap<String, (Instant, u32)>>>,
    /// The source's health: churning watches are a failure `sources` must show (the watcher
    /// sees no error), recorded on every spaced-out watch; it recovers with the next event or
    /// re-list, as after any watch error, until the next quick restart records it again.
    health: Option<Arc<SourceHealth>>,
}

impl WatchChurnLayer {
    pub fn new(health: Option<Arc<SourceHealth>>) -> Self {
        Self {
            health,
            ..Self::default()
        }
    }

    /// How long a request must wait before it goes out (zero for anything but a churning watch).
    fn delay_for<B>(&self, req: &Request<B>) -> Duration {
        let query = req.uri().query().unwrap_or("");
        let watching = query
            .split('&')
            .any(|kv| kv == "watch=true" || kv == "watch=1");
        if !watching {
            return Duration::ZERO;
        }
        let now = Instant::now();
        let mut recent = self.recent.lock();
        let entry = recent
            .entry(req.uri().path().to_string())
            .or_insert((now.checked_sub(QUICK * 2).unwrap_or(now), 0));
        entry.1 = if now.duration_since(entry.0) < QUICK {
            entry.1.saturating_add(1)
        } else {
            0
        };
        let quick = entry.1;
        let delay = match quick.checked_sub(FREE + 1) {
            None => Duration::ZERO,
            Some(n) => (Duration::from_millis(200) * 2u32.saturating_pow(n.min(8))).min(MAX_DELAY),
        };
        // The next start is measured from when this one really goes out.
        entry.0 = now + delay;
        if quick > FREE {
            let path = req.uri().path();
            if quick == FREE + 1 {
                tracing::warn!(path, "watches end as soon as they start; spacing them out");
            }
            // On every spaced-out watch, not only the first: a line or two that arrives before
            // the cut counts as an event and clears the failure, and `sources` must not then
            // say all is well while the watches still churn.
            if let Some(h) = &self.health {
                h.record_failure(format!(
                    "watches of {path} end as soon as they start (cut-off or empty bodies?); spaced out"
                ));
            }
        }
        delay
    }
}

impl<S> Layer<S> for WatchChurnLayer {
    type Service = WatchChurn<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WatchChurn {
            inner: Arc::new(tokio::sync::Mutex::new(inner)),
            layer: self.clone(),
        }
    }
}

pub struct WatchChurn<S> {
    inner: Arc<tokio::sync::Mutex<S>>,
    layer: WatchChurnLayer,
}

impl<S> Service<Request<Body>> for WatchChurn<S>
where
    S: Service<Request<Body>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    S::Response: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    /// Readiness is taken in `call` (after the wait), on the shared inner service.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let delay = self.layer.delay_for(&req);
        let inner = self.inner.clone();
        Box::pin(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let response = {
                let mut service = inner.lock().await;
                service.ready().await?.call(req)
            };
            response.await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(path: &str) -> Request<()> {
        Request::get(format!("http://x{path}?watch=true&resourceVersion=1"))
            .body(())
            .unwrap()
    }

    #[test]
    fn quick_restarts_of_one_watch_are_spaced_out_and_others_are_not() {
        let layer = WatchChurnLayer::default();
        let delays: Vec<Duration> = (0..8)
            .map(|_| layer.delay_for(&watch("/api/v1/pods")))
            .collect();
        assert!(
            delays[..=FREE as usize].iter().all(Duration::is_zero),
            "{delays:?}"
        );
        assert!(
            delays[FREE as usize + 1] >= Duration::from_millis(200),
            "{delays:?}"
        );
        assert!(
            delays
                .windows(2)
                .skip(FREE as usize + 1)
                .all(|w| w[1] >= w[0]),
            "{delays:?}"
        );
        assert!(delays.iter().all(|d| *d <= MAX_DELAY));
        // Another path, and a list on the same one, go out at once.
        assert!(layer.delay_for(&watch("/api/v1/services")).is_zero());
        let list = Request::get("http://x/api/v1/pods?limit=500")
            .body(())
            .unwrap();
        assert!(layer.delay_for(&list).is_zero());
    }
}
