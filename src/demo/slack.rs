//! The simulated Slack Web API (what `idp-graph notify` talks to in the demo and the tests), on
//! Slack's real paths and shapes: `POST /api/chat.postMessage` (JSON or form body, Block Kit
//! `blocks`, message `metadata`), `/api/users.info` (`user` → `profile.email`),
//! `/api/conversations.history` (`include_all_metadata`), the `{"ok": false, "error": ...}`
//! answers (`not_authed`, `invalid_auth`, `channel_not_found`, `user_not_found`,
//! `invalid_blocks`), and rate limiting as Slack does it: HTTP 429, `Retry-After` in seconds,
//! `{"ok": false, "error": "ratelimited"}`. Plus the `response_url` side of slash commands:
//! `POST /commands/{id}` takes a message as Slack's response URLs do.
//!
//! It keeps every message it accepted (and every attempt, accepted or not) so tests can compare
//! what was posted with what the server sent. It does not render anything; the tests check the
//! posted blocks with Slack's own SDK (`tests/python/slack_check.py`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::faults::{self, Faults};

/// The bot token the simulation accepts (`Authorization: Bearer xoxb-...`). Demo only.
pub const DEMO_BOT_TOKEN: &str = "xoxb-idp-demo-token";
/// The signing secret the demo's slash commands are signed with. Demo only.
pub const DEMO_SIGNING_SECRET: &str = "idp-demo-signing-secret";

/// One message the simulation accepted.
#[derive(Debug, Clone)]
pub struct PostedMessage {
    /// The channel's id (`C...`).
    pub channel: String,
    /// The channel as the poster named it (`#app-team`, or an id).
    pub channel_name: String,
    pub ts: String,
    pub text: String,
    /// The `blocks` array as posted (`Null` when none).
    pub blocks: Value,
    /// `metadata` as posted (`Null` when none).
    pub metadata: Value,
    /// The whole request body, as JSON.
    pub body: Value,
}

/// One `chat.postMessage` request, answered or refused.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub at: std::time::Instant,
    pub status: u16,
}

#[derive(Default)]
struct Inner {
    /// Accepted messages, oldest first. A `parking_lot` lock: short pushes and copies only.
    messages: Mutex<Vec<PostedMessage>>,
    attempts: Mutex<Vec<Attempt>>,
    /// Answers to send to the next `chat.postMessage` calls instead of accepting them:
    /// (HTTP status, `Retry-After` seconds).
    scripted: Mutex<std::collections::VecDeque<(u16, Option<u64>)>>,
    /// Slack user id → (name, e-mail).
    users: BTreeMap<String, (String, String)>,
    /// Messages posted to `response_url`s, by the URL's id.
    responses: Mutex<Vec<(String, Value)>>,
    next_ts: Mutex<u64>,
}

/// The running simulation.
#[derive(Clone)]
pub struct SlackSim {
    addr: std::net::SocketAddr,
    inner: Arc<Inner>,
}

/// The demo workspace's people: Slack user id, name, e-mail (the catalog's users' e-mails, so
/// `notify` maps them to catalog users), plus `mallory`, whom the catalog does not know.
pub const DEMO_SLACK_USERS: [(&str, &str, &str); 6] = [
    ("U0ALICE", "alice", "alice@yourcompany.example"),
    ("U0BOB", "bob", "bob@yourcompany.example"),
    ("U0CAROL", "carol", "carol@yourcompany.example"),
    ("U0DAVE", "dave", "dave@yourcompany.example"),
    ("U0ERIN", "erin", "erin@yourcompany.example"),
    ("U0MALLORY", "mallory", "mallory@elsewhere.example"),
];

impl SlackSim {
    pub async fn start(shutdown: CancellationToken) -> std::io::Result<Self> {
        let inner = Arc::new(Inner {
            users: DEMO_SLACK_USERS
                .iter()
                .map(|(id, name, email)| (id.to_string(), (name.to_string(), email.to_string())))
                .collect(),
            next_ts: Mutex::new(1_700_000_000_000_000),
            ..Default::default()
        });
        let router = Router::new()
            .route("/api/chat.postMessage", post(post_message))
            .route("/api/users.info", post(users_info).get(users_info_get))
            .route("/api/conversations.history", post(history).get(history_get))
            .route("/commands/{id}", post(response_url))
            .fallback(|| async {
                (
                    StatusCode::NOT_FOUND,
                    Json(json!({"ok": false, "error": "unknown_method"})),
                )
            })
            .with_state(inner.clone());
        let addr = faults::serve(router, Arc::new(Faults::default()), shutdown).await?;
        Ok(Self { addr, inner })
    }

    /// `http://127.0.0.1:<port>/api` — what `slack.api_url` points at.
    pub fn api_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    /// A `response_url` for one slash command.
    pub fn response_url(&self, id: &str) -> String {
        format!("http://{}/commands/{id}", self.addr)
    }

    /// Every accepted message, oldest first.
    pub fn messages(&self) -> Vec<PostedMessage> {
        self.inner.messages.lock().clone()
    }

    /// Every `chat.postMessage` request, oldest first.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.inner.attempts.lock().clone()
    }

    /// Messages posted to `response_url`s: (the URL's id, the body).
    pub fn responses(&self) -> Vec<(String, Value)> {
        self.inner.responses.lock().clone()
    }

    /// The next `chat.postMessage` calls get these answers instead: `(429, Some(2))` is Slack's
    /// rate limit with `Retry-After: 2`; `(503, None)` a server error.
    pub fn script_answers(&self, answers: &[(u16, Option<u64>)]) {
        self.inner.scripted.lock().extend(answers.iter().copied());
    }
}

/// A channel's id: stable per name, of Slack's shape.
pub fn channel_id(name: &str) -> String {
    if name.starts_with('C') && !name.contains('#') {
        return name.to_string();
    }
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(name.trim_start_matches('#').as_bytes());
    let hex: String = d[..5].iter().map(|b| format!("{b:02X}")).collect();
    format!("C{hex}")
}

fn slack_error(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({"ok": false, "error": error}))).into_response()
}

/// The refusal of a call without the bot token, if it is one.
fn unauthorized(headers: &HeaderMap) -> Option<Response> {
    let Some(value) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Some(slack_error(StatusCode::OK, "not_authed"));
    };
    (value.strip_prefix("Bearer ") != Some(DEMO_BOT_TOKEN))
        .then(|| slack_error(StatusCode::OK, "invalid_auth"))
}

/// The arguments of a Web API call: a JSON body, or form fields (Slack takes both).
fn arguments(headers: &HeaderMap, body: &[u8]) -> Option<Value> {
    let ct = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.starts_with("application/json") {
        return serde_json::from_slice(body).ok();
    }
    let mut out = serde_json::Map::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        let (k, v) = (k.into_owned(), v.into_owned());
        // Form calls carry `blocks` and `metadata` as JSON text.
        let value = if k == "blocks" || k == "metadata" {
            serde_json::from_str(&v).unwrap_or(Value::String(v))
        } else {
            Value::String(v)
        };
        out.insert(k, value);
    }
    Some(Value::Object(out))
}

async fn post_message(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let scripted = inner.scripted.lock().pop_front();
    if let Some((status, retry_after)) = scripted {
        inner.attempts.lock().push(Attempt {
            at: std::time::Instant::now(),
            status,
        });
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let error = if status == 429 {
            "ratelimited"
        } else {
            "internal_error"
        };
        let mut r = slack_error(code, error);
        if let Some(secs) = retry_after {
            if let Ok(v) = secs.to_string().parse() {
                r.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
            }
        }
        return r;
    }
    inner.attempts.lock().push(Attempt {
        at: std::time::Instant::now(),
        status: 200,
    });
    if let Some(r) = unauthorized(&headers) {
        return r;
    }
    let Some(args) = arguments(&headers, &body) else {
        return slack_error(StatusCode::OK, "invalid_arguments");
    };
    let Some(channel_name) = args["channel"].as_str().filter(|c| !c.is_empty()) else {
        return slack_error(StatusCode::OK, "channel_not_found");
    };
    let text = args["text"].as_str().unwrap_or("").to_string();
    let blocks = args.get("blocks").cloned().unwrap_or(Value::Null);
    if text.is_empty() && blocks.is_null() {
        return slack_error(StatusCode::OK, "no_text");
    }
    if !(blocks.is_null() || blocks.as_array().is_some_and(|b| b.len() <= 50)) {
        return slack_error(StatusCode::OK, "invalid_blocks");
    }
    let metadata = args.get("metadata").cloned().unwrap_or(Value::Null);
    let channel = channel_id(channel_name);
    let ts = {
        let mut n = inner.next_ts.lock();
        *n += 1;
        format!("{}.{:06}", *n / 1_000_000, *n % 1_000_000)
    };
    let mut message = json!({
        "type": "message", "subtype": "bot_message", "text": text, "ts": ts,
        "bot_id": "B0IDPGRAPH", "app_id": "A0IDPGRAPH",
    });
    if !blocks.is_null() {
        message["blocks"] = blocks.clone();
    }
    if !metadata.is_null() {
        message["metadata"] = metadata.clone();
    }
    inner.messages.lock().push(PostedMessage {
        channel: channel.clone(),
        channel_name: channel_name.to_string(),
        ts: ts.clone(),
        text,
        blocks,
        metadata,
        body: args,
    });
    Json(json!({"ok": true, "channel": channel, "ts": ts, "message": message})).into_response()
}

async fn users_info_get(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    user_answer(&inner, &headers, q.get("user").map(String::as_str))
}

async fn users_info(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let args = arguments(&headers, &body).unwrap_or(Value::Null);
    user_answer(&inner, &headers, args["user"].as_str())
}

/// `users.info`: the user object with `profile.email` (the bot has `users:read.email`).
fn user_answer(inner: &Inner, headers: &HeaderMap, user: Option<&str>) -> Response {
    if let Some(r) = unauthorized(headers) {
        return r;
    }
    let Some(id) = user else {
        return slack_error(StatusCode::OK, "user_not_found");
    };
    let Some((name, email)) = inner.users.get(id) else {
        return slack_error(StatusCode::OK, "user_not_found");
    };
    Json(json!({"ok": true, "user": {
        "id": id, "team_id": "T0IDPGRAPH", "name": name, "deleted": false, "real_name": name,
        "is_bot": false, "tz": "Europe/Berlin",
        "profile": {"real_name": name, "display_name": name, "email": email},
    }}))
    .into_response()
}

async fn history_get(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let args = json!(q);
    history_answer(&inner, &headers, &args)
}

async fn history(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let args = arguments(&headers, &body).unwrap_or(Value::Null);
    history_answer(&inner, &headers, &args)
}

/// `conversations.history`: newest first; `metadata` only with `include_all_metadata`.
fn history_answer(inner: &Inner, headers: &HeaderMap, args: &Value) -> Response {
    if let Some(r) = unauthorized(headers) {
        return r;
    }
    let Some(channel) = args["channel"].as_str() else {
        return slack_error(StatusCode::OK, "channel_not_found");
    };
    let channel = channel_id(channel);
    let with_metadata = matches!(
        &args["include_all_metadata"],
        Value::Bool(true) | Value::String(_)
    ) && args["include_all_metadata"] != "false";
    let limit = args["limit"]
        .as_str()
        .and_then(|l| l.parse().ok())
        .or_else(|| args["limit"].as_u64())
        .unwrap_or(100)
        .clamp(1, 999) as usize;
    let messages: Vec<Value> = inner
        .messages
        .lock()
        .iter()
        .rev()
        .filter(|m| m.channel == channel)
        .take(limit)
        .map(|m| {
            let mut v = json!({"type": "message", "subtype": "bot_message", "text": m.text, "ts": m.ts, "bot_id": "B0IDPGRAPH"});
            if !m.blocks.is_null() {
                v["blocks"] = m.blocks.clone();
            }
            if with_metadata && !m.metadata.is_null() {
                v["metadata"] = m.metadata.clone();
            }
            v
        })
        .collect();
    Json(json!({"ok": true, "messages": messages, "has_more": false, "pin_count": 0}))
        .into_response()
}

/// A slash command's `response_url`: takes one message (JSON), answers `ok`.
async fn response_url(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "invalid_payload").into_response();
    };
    inner.responses.lock().push((id, v));
    (StatusCode::OK, "ok").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_ids_are_stable_and_of_slacks_shape() {
        let id = channel_id("#app-team");
        assert_eq!(id, channel_id("app-team"));
        assert_eq!(id, channel_id(&id));
        assert!(id.starts_with('C') && id.len() == 11, "{id}");
        assert_ne!(id, channel_id("#platform"));
    }
}
