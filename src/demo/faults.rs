//! Fault knobs shared by every simulated upstream: latency, an error rate, "down" (new
//! connections are dropped, requests on pooled connections get 503 and a closed connection),
//! malformed (truncated) bodies, and a fixed answer for every request (401, 429...). Tests turn them at run time through the simulation's handle. The same
//! middleware remembers the W3C `traceparent` headers it saw, so a test can check that a trace
//! reached the upstream.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

#[derive(Debug, Default)]
pub struct Faults {
    latency_ms: AtomicU64,
    /// Share of requests answered with a 500, in thousandths.
    error_permille: AtomicU32,
    down: AtomicBool,
    malformed: AtomicBool,
    /// Every request answered with this status and body instead (credentials revoked, rate
    /// limited...): (status, JSON body).
    answer: parking_lot::Mutex<Option<(u16, String)>>,
    /// Requests that reached the simulation (after the down check).
    requests: AtomicU64,
    /// The last `traceparent` headers received (newest last, at most 256): what a real
    /// upstream's tracing would have joined. A mutex: written once per request, read by tests.
    traceparents: parking_lot::Mutex<std::collections::VecDeque<String>>,
}

impl Faults {
    pub fn set_latency(&self, d: Duration) {
        self.latency_ms
            .store(d.as_millis() as u64, Ordering::SeqCst);
    }
    /// `rate` in 0.0..=1.0.
    pub fn set_error_rate(&self, rate: f64) {
        self.error_permille
            .store((rate.clamp(0.0, 1.0) * 1000.0) as u32, Ordering::SeqCst);
    }
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }
    /// Answers with a truncated JSON body.
    pub fn set_malformed(&self, on: bool) {
        self.malformed.store(on, Ordering::SeqCst);
    }
    /// Answers every request with `status` and the JSON `body` (e.g. 401 once the token is
    /// revoked, 429 with `Retry-After: 1` when rate limited); `None` ends it.
    pub fn set_answer(&self, answer: Option<(u16, &str)>) {
        *self.answer.lock() = answer.map(|(s, b)| (s, b.to_string()));
    }
    pub fn clear(&self) {
        self.set_latency(Duration::ZERO);
        self.set_error_rate(0.0);
        self.set_down(false);
        self.set_malformed(false);
        self.set_answer(None);
    }
    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
    /// The `traceparent` headers received so far (at most the last 256).
    pub fn traceparents(&self) -> Vec<String> {
        self.traceparents.lock().iter().cloned().collect()
    }
}

/// axum middleware applying the knobs before the simulation's own handlers.
pub async fn apply(State(faults): State<Arc<Faults>>, req: Request, next: Next) -> Response {
    if faults.is_down() {
        let mut r = (StatusCode::SERVICE_UNAVAILABLE, "upstream down").into_response();
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return r;
    }
    faults.requests.fetch_add(1, Ordering::SeqCst);
    if let Some(tp) = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
    {
        let mut seen = faults.traceparents.lock();
        if seen.len() == 256 {
            seen.pop_front();
        }
        seen.push_back(tp.to_string());
    }
    let latency = faults.latency_ms.load(Ordering::SeqCst);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    if let Some((status, body)) = faults.answer.lock().clone() {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut r = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
        if status == StatusCode::TOO_MANY_REQUESTS {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        return r;
    }
    let permille = faults.error_permille.load(Ordering::SeqCst);
    if permille > 0 && rand::random_range(0..1000) < permille {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"error":{"name":"Error","message":"simulated failure"},"response":{"statusCode":500}}"#,
        )
            .into_response();
    }
    let response = next.run(req).await;
    if faults.malformed.load(Ordering::SeqCst) {
        let (mut parts, _) = response.into_parts();
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, Body::from(r#"{"items":[{"metadata":"#));
    }
    response
}

/// A listener that drops new connections while the upstream is "down", so clients see a
/// refused/reset connection as they would from a dead host.
pub struct FaultyListener {
    pub inner: tokio::net::TcpListener,
    pub faults: Arc<Faults>,
}

impl axum::serve::Listener for FaultyListener {
    type Io = tokio::net::TcpStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (io, addr) = axum::serve::Listener::accept(&mut self.inner).await;
            if self.faults.is_down() {
                drop(io);
                continue;
            }
            return (io, addr);
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// Serves a simulation's router on 127.0.0.1:0 behind the fault knobs until `shutdown`.
pub async fn serve(
    app: axum::Router,
    faults: Arc<Faults>,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let app = app.layer(axum::middleware::from_fn_with_state(faults.clone(), apply));
    let listener = FaultyListener {
        inner: listener,
        faults,
    };
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
    });
    Ok(addr)
}
