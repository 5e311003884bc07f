//! Websockets at `/graphql/ws`, both protocols served by one connection loop over the shared
//! request pipeline (so an operation is checked exactly as over HTTP, with the same codes):
//!
//! - `graphql-transport-ws` (the `graphql-ws` library's protocol), with the close codes clients
//!   rely on (the stock handler differs): 4400 invalid message, 4401 subscribe before the
//!   connection is acknowledged, 4403 forbidden (credentials refused), 4408 no
//!   `connection_init` in time, 4409 duplicate subscription id, 4429 a second `connection_init`.
//! - `graphql-ws` (the legacy subscriptions-transport-ws protocol that many bots still speak):
//!   `start`/`stop`/`data`/`ka`/`connection_error`, with the same close codes where the
//!   connection must end.
//!
//! The server keeps the connection alive (`ping` / `ka`) on an interval; on shutdown every socket
//! is closed with 1001. Credentials come from the `connection_init` payload (`Authorization`,
//! `authorization` or `headers.Authorization`), else from the upgrade request's header.
//! Sockets use small buffers: an idle subscriber costs kilobytes, not axum's 128 KiB default.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use parking_lot::Mutex;
use serde_json::{json, Value};

use super::error::RequestError;
use super::pipeline::{Operation, Transport};
use super::shared_subscriptions::Item;
use super::HttpState;
use crate::auth::Principal;

/// How long a client has to send `connection_init`.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(3);
/// Server keepalive interval.
pub const PING_EVERY: Duration = Duration::from_secs(15);

/// The two subprotocols differ only in message names; the loop is shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// `graphql-transport-ws`.
    Transport,
    /// `graphql-ws` (subscriptions-transport-ws).
    Legacy,
}

impl Protocol {
    fn result_type(self) -> &'static str {
        match self {
            Self::Transport => "next",
            Self::Legacy => "data",
        }
    }

    fn keepalive(self) -> Value {
        match self {
            Self::Transport => json!({"type": "ping"}),
            Self::Legacy => json!({"type": "ka"}),
        }
    }
}

pub async fn upgrade(
    State(http): State<HttpState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let requested = headers
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let protocol = if !requested.contains("graphql-transport-ws")
        && requested.split(',').any(|p| p.trim() == "graphql-ws")
    {
        Protocol::Legacy
    } else {
        Protocol::Transport
    };
    let upgrade_authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    ws.protocols(["graphql-transport-ws", "graphql-ws"])
        // Idle subscribers dominate: 1 KiB read buffers (a larger frame still reads, in more
        // steps; subscribe messages are a few hundred bytes).
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_message_size(http.limits.max_body_bytes)
        .on_upgrade(move |socket| serve(socket, http, protocol, upgrade_authorization))
}

/// Completes at `at` (never, for `None`): when a caller's token expires.
pub(super) async fn until(at: Option<chrono::DateTime<chrono::Utc>>) {
    match at {
        None => std::future::pending().await,
        Some(at) => {
            let left = (at - chrono::Utc::now()).to_std().unwrap_or_default();
            tokio::time::sleep(left).await
        }
    }
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

fn text(v: Value) -> Message {
    Message::Text(v.to_string().into())
}

/// The `Authorization` value a `connection_init` payload carries, if any.
fn init_authorization(payload: &Value) -> Option<&str> {
    payload
        .get("Authorization")
        .or_else(|| payload.get("authorization"))
        .or_else(|| payload.pointer("/headers/Authorization"))
        .or_else(|| payload.pointer("/headers/authorization"))
        .and_then(Value::as_str)
}

type Running = Arc<Mutex<HashMap<String, tokio::task::AbortHandle>>>;

/// Everything bound for the client: one sink behind an async lock, so messages never
/// interleave, a slow client backs up only its own senders, and an event goes from its
/// subscription task straight to the socket (no writer task, no queue hop per message).
#[derive(Clone)]
struct Out {
    sink: Arc<tokio::sync::Mutex<Option<SplitSink<WebSocket, Message>>>>,
    expires_at: Arc<Mutex<Option<chrono::DateTime<chrono::Utc>>>>,
}

impl Out {
    /// Sends one message; `Err` once the socket is gone or closed. Past the token's expiry
    /// only a close frame goes out (anything else is dropped).
    async fn send(&self, m: Message) -> Result<(), ()> {
        let is_close = matches!(m, Message::Close(_));
        let expired = self
            .expires_at
            .lock()
            .is_some_and(|at| at <= chrono::Utc::now());
        if expired && !is_close {
            return Ok(());
        }
        let mut guard = self.sink.lock().await;
        let sink = guard.as_mut().ok_or(())?;
        let sent = sink.send(m).await;
        if sent.is_err() || is_close {
            if let Some(mut s) = guard.take() {
                let _ = s.close().await;
            }
        }
        sent.map_err(|_| ())
    }

    /// Closes the socket (after the close frame, if one was sent).
    async fn finish(&self) {
        if let Some(mut s) = self.sink.lock().await.take() {
            let _ = s.close().await;
        }
    }
}

async fn serve(
    socket: WebSocket,
    http: HttpState,
    protocol: Protocol,
    upgrade_authorization: Option<String>,
) {
    let (sink, mut incoming) = socket.split();
    // Set at init: past it, nothing but the close frame goes out (no event after expiry).
    let expires_at: Arc<Mutex<Option<chrono::DateTime<chrono::Utc>>>> = Default::default();
    let out = Out {
        sink: Arc::new(tokio::sync::Mutex::new(Some(sink))),
        expires_at: expires_at.clone(),
    };
    let subs: Running = Default::default();
    let mut principal = None;
    let mut init_seen = false;
    let init_deadline = tokio::time::sleep(INIT_TIMEOUT);
    tokio::pin!(init_deadline);
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let shutdown = http.shutdown.clone();
    // Armed at init with the token's expiry: the socket closes then, and no event follows.
    let expiry = until(None);
    tokio::pin!(expiry);
    let ending: Option<Message> = loop {
        tokio::select! {
            _ = shutdown.cancelled() => break Some(close(1001, "Server shutting down")),
            _ = &mut expiry => break Some(close(4403, "Forbidden: the token has expired")),
            _ = &mut init_deadline, if !init_seen => break Some(close(4408, "Connection initialisation timeout")),
            _ = ping.tick() => {
                if out.send(text(protocol.keepalive())).await.is_err() { break None; }
            }
            msg = incoming.next() => {
                let raw = match msg {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break None,
                    Some(Ok(Message::Text(t))) => t.to_string(),
                    Some(Ok(Message::Binary(_))) => break Some(close(4400, "Binary messages are not supported")),
                    Some(Ok(_)) => continue,
                };
                let Ok(m) = serde_json::from_str::<Value>(&raw) else {
                    break Some(close(4400, "Invalid message received"));
                };
                match (protocol, m.get("type").and_then(Value::as_str)) {
                    (_, Some("connection_init")) => {
                        if init_seen {
                            break Some(close(4429, "Too many initialisation requests"));
                        }
                        init_seen = true;
                        let payload = m.get("payload").cloned().unwrap_or(Value::Null);
                        if !(payload.is_null() || payload.is_object()) {
                            break Some(close(4400, "Invalid connection_init payload"));
                        }
                        let authorization = init_authorization(&payload).or(upgrade_authorization.as_deref());
                        match http.pipeline.principal(authorization).await {
                            Ok(p) => {
                                *expires_at.lock() = p.expires_at;
                                expiry.set(until(p.expires_at));
                                principal = Some(p);
                            }
                            Err(e) => {
                                if protocol == Protocol::Legacy {
                                    let _ = out.send(text(json!({"type": "connection_error", "payload": {"message": e.to_string(), "extensions": {"code": e.code()}}}))).await;
                                }
                                break Some(close(4403, "Forbidden"));
                            }
                        }
                        if out.send(text(json!({"type": "connection_ack"}))).await.is_err() { break None; }
                        if protocol == Protocol::Legacy && out.send(text(protocol.keepalive())).await.is_err() { break None; }
                    }
                    (Protocol::Transport, Some("ping")) => {
                        let mut pong = json!({"type": "pong"});
                        if let Some(p) = m.get("payload") { pong["payload"] = p.clone(); }
                        if out.send(text(pong)).await.is_err() { break None; }
                    }
                    (Protocol::Transport, Some("pong")) => {}
                    (Protocol::Transport, Some("subscribe")) | (Protocol::Legacy, Some("start")) => {
                        let Some(p) = principal.clone() else {
                            break Some(close(4401, "Unauthorized"));
                        };
                        let (Some(id), Some(payload)) = (m.get("id").and_then(Value::as_str), m.get("payload")) else {
                            break Some(close(4400, "Invalid message received"));
                        };
                        let named = payload.get("query").and_then(Value::as_str).is_some()
                            || payload.pointer("/extensions/persistedQuery").is_some();
                        if id.is_empty() || !named {
                            break Some(close(4400, "Invalid message received"));
                        }
                        if subs.lock().contains_key(id) {
                            break Some(close(4409, &format!("Subscriber for {id} already exists")));
                        }
                        // Prepared in the operation's task: the rate limit and a persisted
                        // operation may ask Redis (`cluster:`), which must not hold this loop.
                        let op = Operation::from_json(payload.clone());
                        // Registered before the task can end and remove itself (a refusal).
                        let mut running = subs.lock();
                        let task = tokio::spawn(run_operation(http.clone(), protocol, op, p, id.to_string(), out.clone(), subs.clone()));
                        running.insert(id.to_string(), task.abort_handle());
                        drop(running);
                    }
                    (Protocol::Transport, Some("complete")) | (Protocol::Legacy, Some("stop")) => {
                        if let Some(id) = m.get("id").and_then(Value::as_str) {
                            if let Some(h) = subs.lock().remove(id) { h.abort(); }
                        }
                    }
                    (Protocol::Legacy, Some("connection_terminate")) => break Some(close(1000, "Normal Closure")),
                    _ => break Some(close(4400, "Invalid message received")),
                }
            }
        }
    };
    for (_, h) in subs.lock().drain() {
        h.abort();
    }
    if let Some(m) = ending {
        let _ = out.send(m).await;
    }
    out.finish().await;
}

/// Runs one operation: a result message per result, then `complete`; an operation the
/// pipeline refuses is one `error` message with the same codes HTTP would give.
async fn run_operation(
    http: HttpState,
    protocol: Protocol,
    op: Result<Operation, RequestError>,
    principal: Arc<Principal>,
    id: String,
    out: Out,
    subs: Running,
) {
    let stream = match op {
        Ok(op) => match http
            .pipeline
            .prepare(op, principal, Transport::WebSocket)
            .await
        {
            Ok(p) => http.pipeline.subscribe(p).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    let mut results = match stream {
        Ok(results) => results,
        Err(e) => {
            subs.lock().remove(&id);
            let _ = out
                .send(text(
                    json!({"id": id, "type": "error", "payload": e.errors_json()}),
                ))
                .await;
            return;
        }
    };
    // The payload is serialized once per group of subscribers; only the envelope is ours.
    let head = format!(
        "{{\"id\":{},\"type\":\"{}\",\"payload\":",
        Value::String(id.clone()),
        protocol.result_type()
    );
    while let Some(item) = results.next().await {
        let payload = match item {
            Item::Payload(p) => p,
            Item::Lagged => {
                subs.lock().remove(&id);
                let _ = out
                    .send(text(json!({"id": id, "type": "error", "payload": [{
                        "message": "this subscription fell behind its events; resubscribe from your last cursor",
                        "extensions": {"code": "RESYNC_REQUIRED"}}]})))
                    .await;
                return;
            }
        };
        let mut msg = String::with_capacity(head.len() + payload.len() + 1);
        msg.push_str(&head);
        msg.push_str(std::str::from_utf8(&payload).unwrap_or("null"));
        msg.push('}');
        if out.send(Message::text(msg)).await.is_err() {
            subs.lock().remove(&id);
            return;
        }
    }
    subs.lock().remove(&id);
    let _ = out.send(text(json!({"id": id, "type": "complete"}))).await;
}
