//! `idp-graph watch`: follows one subscription over graphql-transport-ws and prints each event
//! as one JSON line on stdout, for scripts and bots. When the connection drops it reconnects
//! with backoff and, if the subscription declares `$after`, resumes from the last `cursor` it
//! printed (the server answers RESYNC_REQUIRED when it cannot replay that far).
//!
//! With `persisted`, it sends the operation's SHA-256 instead of its text (Apollo's APQ
//! protocol, and what a server in trusted-documents mode requires); the text follows only when
//! the server answers `PERSISTED_QUERY_NOT_FOUND`, registering it for the next connection.

use std::io::Write;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("{0}")]
    Usage(String),
    #[error("the server refused the subscription: {0}")]
    Refused(String),
    #[error("cannot write the output: {0}")]
    Output(std::io::Error),
}

pub struct WatchOptions {
    /// `http://host:port` (or `ws://...`); `/graphql/ws` is appended unless a path is given.
    pub url: String,
    pub token: Option<SecretString>,
    pub query: String,
    pub variables: Value,
    /// Stop after this many events (for scripts and tests).
    pub max_events: Option<usize>,
    /// Send the operation's hash, and its text only when asked (APQ / trusted documents).
    pub persisted: bool,
    /// Resume from this cursor (a bot's durable position) when the operation declares `$after`.
    pub after: Option<String>,
}

fn ws_url(url: &str) -> Result<String, WatchError> {
    let mut u =
        url::Url::parse(url).map_err(|e| WatchError::Usage(format!("--url `{url}`: {e}")))?;
    let scheme = match u.scheme() {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        other => {
            return Err(WatchError::Usage(format!(
                "--url: unsupported scheme `{other}`"
            )))
        }
    };
    u.set_scheme(scheme)
        .map_err(|_| WatchError::Usage("--url: cannot use this URL".into()))?;
    if u.path() == "/" || u.path().is_empty() {
        u.set_path("/graphql/ws");
    }
    Ok(u.to_string())
}

/// Does the operation declare a `$after` variable?
fn declares_after(query: &str) -> Result<bool, WatchError> {
    let doc = async_graphql::parser::parse_query(query)
        .map_err(|e| WatchError::Usage(format!("the subscription does not parse: {e}")))?;
    Ok(doc.operations.iter().any(|(_, op)| {
        op.node
            .variable_definitions
            .iter()
            .any(|v| v.node.name.node.as_str() == "after")
    }))
}

enum Ended {
    /// Done: `complete`, or `max_events` reached.
    Finished,
    /// The connection dropped: try again.
    Dropped,
}

pub async fn run(opts: WatchOptions, out: &mut (impl Write + Send)) -> Result<(), WatchError> {
    let url = ws_url(&opts.url)?;
    let resumable = declares_after(&opts.query)?;
    if !opts.variables.is_object() {
        return Err(WatchError::Usage(
            "--variables must be a JSON object".into(),
        ));
    }
    let mut cursor: Option<String> = opts.after.clone();
    let mut printed = 0usize;
    let mut attempt = 0u32;
    loop {
        match session(&url, &opts, resumable, &mut cursor, &mut printed, out).await? {
            Ended::Finished => return Ok(()),
            Ended::Dropped => {
                attempt += 1;
                let wait = Duration::from_millis((250u64 << attempt.min(5)).min(8_000));
                tracing::info!(
                    attempt,
                    wait_ms = wait.as_millis() as u64,
                    "connection lost; reconnecting"
                );
                tokio::time::sleep(wait).await;
            }
        }
        if printed > 0 {
            attempt = attempt.min(1);
        }
    }
}

async fn session(
    url: &str,
    opts: &WatchOptions,
    resumable: bool,
    cursor: &mut Option<String>,
    printed: &mut usize,
    out: &mut (impl Write + Send),
) -> Result<Ended, WatchError> {
    let mut req = url
        .into_client_request()
        .map_err(|e| WatchError::Usage(e.to_string()))?;
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().expect("BUG: static header"),
    );
    let Ok(Ok((mut ws, _))) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(req),
    )
    .await
    else {
        return Ok(Ended::Dropped);
    };
    let mut init = json!({"type": "connection_init"});
    if let Some(t) = &opts.token {
        init["payload"] = json!({"Authorization": format!("Bearer {}", t.expose_secret())});
    }
    if ws.send(Message::text(init.to_string())).await.is_err() {
        return Ok(Ended::Dropped);
    }
    let mut variables = opts.variables.clone();
    if resumable {
        if let Some(c) = cursor.as_ref() {
            variables["after"] = json!(c);
        }
    }
    let hash = crate::http::persisted::sha256_hex(&opts.query);
    let subscribe = |with_text: bool| {
        let mut payload = json!({"variables": variables});
        if with_text {
            payload["query"] = json!(opts.query);
        }
        if opts.persisted {
            payload["extensions"] = json!({"persistedQuery": {"version": 1, "sha256Hash": hash}});
        }
        Message::text(json!({"id": "1", "type": "subscribe", "payload": payload}).to_string())
    };
    let mut subscribed = false;
    let mut sent_text = !opts.persisted;
    while let Some(msg) = ws.next().await {
        let msg = match msg {
            Ok(m) => m,
            Err(_) => return Ok(Ended::Dropped),
        };
        let text = match msg {
            Message::Text(t) => t.to_string(),
            Message::Close(frame) => {
                let code = frame.as_ref().map(|f| f.code);
                return match code.map(u16::from) {
                    Some(c @ (4400 | 4401 | 4403 | 4409 | 4429)) => {
                        Err(WatchError::Refused(format!(
                            "closed with {c}: {}",
                            frame.map(|f| f.reason.to_string()).unwrap_or_default()
                        )))
                    }
                    _ if code == Some(CloseCode::Normal) => Ok(Ended::Dropped),
                    _ => Ok(Ended::Dropped),
                };
            }
            _ => continue,
        };
        let Ok(m) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        match m["type"].as_str() {
            Some("connection_ack") if !subscribed => {
                subscribed = true;
                if ws.send(subscribe(sent_text)).await.is_err() {
                    return Ok(Ended::Dropped);
                }
            }
            Some("ping") => {
                let _ = ws
                    .send(Message::text(json!({"type": "pong"}).to_string()))
                    .await;
            }
            Some("next") => {
                let payload = &m["payload"];
                if let Some(errors) = payload.get("errors") {
                    if payload["data"].is_null() {
                        return Err(WatchError::Refused(errors.to_string()));
                    }
                    eprintln!("{errors}");
                }
                // One line per event: the root field's value.
                let event = payload["data"]
                    .as_object()
                    .and_then(|o| o.values().next().cloned())
                    .unwrap_or(Value::Null);
                if let Some(c) = event.get("cursor").and_then(Value::as_str) {
                    *cursor = Some(c.to_string());
                }
                writeln!(out, "{event}").map_err(WatchError::Output)?;
                out.flush().map_err(WatchError::Output)?;
                *printed += 1;
                if opts.max_events.is_some_and(|n| *printed >= n) {
                    let _ = ws
                        .send(Message::text(
                            json!({"id": "1", "type": "complete"}).to_string(),
                        ))
                        .await;
                    let _ = ws.close(None).await;
                    return Ok(Ended::Finished);
                }
            }
            // The server does not know the hash yet: send the text with it, once.
            Some("error")
                if !sent_text
                    && m["payload"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND" =>
            {
                sent_text = true;
                if ws.send(subscribe(true)).await.is_err() {
                    return Ok(Ended::Dropped);
                }
            }
            // Fell behind a shared execution: resubscribe from the last cursor printed.
            Some("error") if m["payload"][0]["extensions"]["code"] == "RESYNC_REQUIRED" => {
                return Ok(Ended::Dropped)
            }
            Some("error") => return Err(WatchError::Refused(m["payload"].to_string())),
            Some("complete") => return Ok(Ended::Finished),
            _ => {}
        }
    }
    Ok(Ended::Dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_become_websocket_urls() {
        assert_eq!(
            ws_url("http://127.0.0.1:8080").unwrap(),
            "ws://127.0.0.1:8080/graphql/ws"
        );
        assert_eq!(
            ws_url("https://idp.example/custom/ws").unwrap(),
            "wss://idp.example/custom/ws"
        );
        assert!(ws_url("ftp://x").is_err());
    }

    #[test]
    fn after_is_detected() {
        assert!(declares_after(
            "subscription($after: String) { applicationEvents(after: $after) { cursor } }"
        )
        .unwrap());
        assert!(!declares_after("subscription { applicationEvents { cursor } }").unwrap());
        assert!(declares_after("subscription {").is_err());
    }
}
