//! Websockets at `/graphql/ws`, by subprotocol:
//!
//! - `graphql-transport-ws` (the `graphql-ws` library's protocol), implemented here because the
//!   close codes matter to clients and the stock handler differs: 4400 invalid message, 4401
//!   subscribe before the connection is acknowledged, 4403 forbidden (init refused), 4408 no
//!   `connection_init` in time, 4409 duplicate subscription id, 4429 a second `connection_init`.
//!   The server pings on an interval; on shutdown every socket is closed with 1001.
//! - `graphql-ws` (the legacy subscriptions-transport-ws protocol that many bots still speak),
//!   delegated to async-graphql's implementation behind the same shutdown handling.
//!
//! Sockets use small buffers: an idle subscriber costs kilobytes, not axum's 128 KiB default.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::Variables;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::HttpState;
use crate::auth::Principal;

/// How long a client has to send `connection_init`.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(3);
/// Server keepalive ping interval.
pub const PING_EVERY: Duration = Duration::from_secs(15);

pub async fn upgrade(
    State(http): State<HttpState>,
    headers: HeaderMap,
    protocol: Result<GraphQLProtocol, axum::http::StatusCode>,
    ws: WebSocketUpgrade,
) -> Response {
    let requested = headers
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let legacy = !requested.contains("graphql-transport-ws")
        && requested.split(',').any(|p| p.trim() == "graphql-ws");
    ws.protocols(["graphql-transport-ws", "graphql-ws"])
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(http.limits.max_body_bytes)
        .on_upgrade(move |socket| async move {
            match protocol {
                Ok(p) if legacy => serve_legacy(socket, http, p).await,
                _ => serve_transport(socket, http).await,
            }
        })
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

/// The principal a connection acts as. Anonymous until the security issue reads the init
/// payload's bearer token here.
fn principal_from_init(_payload: &Value) -> Result<Arc<Principal>, &'static str> {
    Ok(Principal::anonymous())
}

async fn serve_transport(socket: WebSocket, http: HttpState) {
    let (mut sink, mut incoming) = socket.split();
    // Everything bound for the client goes through one bounded queue and one writer, so
    // subscription tasks never block each other and a slow client backs up only itself.
    let (out, mut out_rx) = mpsc::channel::<Message>(64);
    let writer = tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            let is_close = matches!(m, Message::Close(_));
            if sink.send(m).await.is_err() || is_close {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let subs: Arc<Mutex<HashMap<String, tokio::task::AbortHandle>>> = Default::default();
    let mut principal: Option<Arc<Principal>> = None;
    let mut init_seen = false;
    let init_deadline = tokio::time::sleep(INIT_TIMEOUT);
    tokio::pin!(init_deadline);
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let shutdown = http.shutdown.clone();
    let ending: Option<Message> = loop {
        tokio::select! {
            _ = shutdown.cancelled() => break Some(close(1001, "Server shutting down")),
            _ = &mut init_deadline, if !init_seen => break Some(close(4408, "Connection initialisation timeout")),
            _ = ping.tick() => {
                if out.send(text(json!({"type": "ping"}))).await.is_err() { break None; }
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
                match m.get("type").and_then(Value::as_str) {
                    Some("connection_init") => {
                        if init_seen {
                            break Some(close(4429, "Too many initialisation requests"));
                        }
                        init_seen = true;
                        let payload = m.get("payload").cloned().unwrap_or(Value::Null);
                        if !(payload.is_null() || payload.is_object()) {
                            break Some(close(4400, "Invalid connection_init payload"));
                        }
                        match principal_from_init(&payload) {
                            Ok(p) => principal = Some(p),
                            Err(_) => break Some(close(4403, "Forbidden")),
                        }
                        if out.send(text(json!({"type": "connection_ack"}))).await.is_err() { break None; }
                    }
                    Some("ping") => {
                        let mut pong = json!({"type": "pong"});
                        if let Some(p) = m.get("payload") { pong["payload"] = p.clone(); }
                        if out.send(text(pong)).await.is_err() { break None; }
                    }
                    Some("pong") => {}
                    Some("subscribe") => {
                        let Some(p) = principal.clone() else {
                            break Some(close(4401, "Unauthorized"));
                        };
                        let (Some(id), Some(payload)) = (m.get("id").and_then(Value::as_str), m.get("payload")) else {
                            break Some(close(4400, "Invalid message received"));
                        };
                        let Some(query) = payload.get("query").and_then(Value::as_str) else {
                            break Some(close(4400, "Invalid message received"));
                        };
                        if id.is_empty() {
                            break Some(close(4400, "Invalid message received"));
                        }
                        if subs.lock().contains_key(id) {
                            break Some(close(4409, &format!("Subscriber for {id} already exists")));
                        }
                        let mut req = async_graphql::Request::new(query).data(p);
                        if let Some(op) = payload.get("operationName").and_then(Value::as_str) {
                            req = req.operation_name(op);
                        }
                        if let Some(v) = payload.get("variables").filter(|v| v.is_object()) {
                            req = req.variables(Variables::from_json(v.clone()));
                        }
                        let task = tokio::spawn(run_operation(http.clone(), req, id.to_string(), out.clone(), subs.clone()));
                        subs.lock().insert(id.to_string(), task.abort_handle());
                    }
                    Some("complete") => {
                        if let Some(id) = m.get("id").and_then(Value::as_str) {
                            if let Some(h) = subs.lock().remove(id) { h.abort(); }
                        }
                    }
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
    drop(out);
    let _ = writer.await;
}

/// Runs one operation: `next` per result, then `complete`; a request that fails before
/// execution (validation) is one `error` message instead.
async fn run_operation(
    http: HttpState,
    req: async_graphql::Request,
    id: String,
    out: mpsc::Sender<Message>,
    subs: Arc<Mutex<HashMap<String, tokio::task::AbortHandle>>>,
) {
    let mut stream = http.schema.execute_stream(req);
    let mut first = true;
    while let Some(resp) = stream.next().await {
        let failed_early = first
            && resp.data == async_graphql::Value::Null
            && !resp.errors.is_empty()
            && resp.errors.iter().all(|e| e.path.is_empty());
        first = false;
        let msg = if failed_early {
            json!({"id": id, "type": "error", "payload": resp.errors})
        } else {
            json!({"id": id, "type": "next", "payload": resp})
        };
        if out.send(text(msg)).await.is_err() {
            subs.lock().remove(&id);
            return;
        }
        if failed_early {
            subs.lock().remove(&id);
            return;
        }
    }
    subs.lock().remove(&id);
    let _ = out.send(text(json!({"id": id, "type": "complete"}))).await;
}

async fn serve_legacy(socket: WebSocket, http: HttpState, protocol: GraphQLProtocol) {
    let (mut sink, incoming) = socket.split();
    let (out, mut out_rx) = mpsc::channel::<Message>(64);
    let shutdown = http.shutdown.clone();
    let writer = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => {
                    let _ = sink.send(close(1001, "Server shutting down")).await;
                    break;
                }
                m = out_rx.recv() => match m {
                    Some(m) => if sink.send(m).await.is_err() { break },
                    None => break,
                }
            }
        }
        let _ = sink.close().await;
    });
    let shutdown = http.shutdown.clone();
    let incoming = incoming.take_until(async move { shutdown.cancelled().await });
    let sink = tokio_util::sync::PollSender::new(out);
    GraphQLWebSocket::new_with_pair(sink, incoming, http.schema.clone(), protocol)
        .on_connection_init(|payload| async move {
            let principal = principal_from_init(&payload).map_err(async_graphql::Error::new)?;
            let mut data = async_graphql::Data::default();
            data.insert(principal);
            Ok(data)
        })
        .keepalive_timeout(None)
        .serve()
        .await;
    let _ = writer.await;
}
