//! Slash commands on `listen`: Slack posts `/idp status <app>`, `/idp sync <app>` and
//! `/idp rollback <app> <historyId>` to `POST /slack/commands`.
//!
//! 1. The request is Slack's: `X-Slack-Signature` must be `v0=` + hex HMAC-SHA256 of
//!    `v0:{X-Slack-Request-Timestamp}:{body}` under the signing secret (compared in constant
//!    time), and the timestamp at most 5 minutes away from now — else 401 and nothing runs.
//! 2. The Slack user becomes a catalog user: `users.info` gives the e-mail, the catalog's User
//!    whose `spec.profile.email` matches is the user (asked as the bot).
//! 3. The command runs as that user: the bot calls idp-graph with `X-Idp-Acting-For`, so the
//!    server's policy decides as the user and its audit trail records both.
//! 4. The answer goes back in the HTTP response (`response_type: in_channel`); if the work
//!    takes longer than Slack waits (3 s), the response says so and the result follows through
//!    the command's `response_url`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use super::graph::{GraphClient, GraphClientError};
use super::slack::SlackClient;

/// How far a request's timestamp may be from now (Slack's advice: 5 minutes).
const MAX_SKEW_SECS: u64 = 300;
/// How long a command may take before the answer moves to `response_url`.
const ANSWER_WITHIN: Duration = Duration::from_millis(2500);

pub struct Commands {
    pub signing_secret: SecretString,
    pub slack: Arc<SlackClient>,
    pub graph: Arc<GraphClient>,
    pub http: reqwest::Client,
    /// Signatures of the requests run in the last [`MAX_SKEW_SECS`] (→ their timestamp): a
    /// captured request re-posted within that window is refused, not run twice.
    pub seen: parking_lot::Mutex<std::collections::HashMap<String, i64>>,
}

impl Commands {
    /// Is this the first time this signed request arrives? (Remembers it; forgets what is too
    /// old to pass `verify` anyway.)
    fn first_delivery(&self, headers: &HeaderMap, now: i64) -> bool {
        let Some(sig) = headers
            .get("x-slack-signature")
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let mut seen = self.seen.lock();
        seen.retain(|_, at| now.abs_diff(*at) <= MAX_SKEW_SECS);
        seen.insert(sig.to_string(), now).is_none()
    }
}

pub fn router(commands: Arc<Commands>) -> Router {
    Router::new()
        .route("/slack/commands", post(slash_command))
        .with_state(commands)
}

/// Is this Slack's request? (Signature over the exact body, timestamp fresh.)
pub fn verify(secret: &[u8], headers: &HeaderMap, body: &[u8], now: i64) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(ts), Some(sig)) = (
        header("x-slack-request-timestamp"),
        header("x-slack-signature"),
    ) else {
        return false;
    };
    let Ok(ts_n) = ts.trim().parse::<i64>() else {
        return false;
    };
    if now.abs_diff(ts_n) > MAX_SKEW_SECS {
        return false;
    }
    sig.strip_prefix("v0=").is_some_and(|hex| {
        crate::auth::signature::verify_hex(secret, &[b"v0:", ts.as_bytes(), b":", body], hex)
    })
}

/// A parsed `/idp` command.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Status(String),
    Sync(String),
    Rollback(String, i64),
    Help,
}

pub fn parse(text: &str) -> Command {
    let words: Vec<&str> = text.split_whitespace().collect();
    // ArgoCD application names are DNS subdomains: anything else (`<!channel>`, markup) is
    // not an app, and is never echoed back into the channel.
    let is_app = |a: &str| {
        !a.is_empty()
            && a.len() <= 253
            && a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
    };
    if words.get(1).is_some_and(|a| !is_app(a)) {
        return Command::Help;
    }
    match words.as_slice() {
        ["status", app] => Command::Status(app.to_string()),
        ["sync", app] => Command::Sync(app.to_string()),
        ["rollback", app, id] => match id.trim_start_matches('#').parse() {
            Ok(id) => Command::Rollback(app.to_string(), id),
            Err(_) => Command::Help,
        },
        _ => Command::Help,
    }
}

fn reply(text: &str) -> Value {
    json!({
        "response_type": "in_channel",
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
    })
}

fn ephemeral(text: &str) -> Value {
    json!({"response_type": "ephemeral", "text": text})
}

async fn slash_command(
    State(c): State<Arc<Commands>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = chrono::Utc::now().timestamp();
    if !verify(
        c.signing_secret.expose_secret().as_bytes(),
        &headers,
        &body,
        now,
    ) {
        tracing::warn!("slash command refused: bad or stale signature");
        return (StatusCode::UNAUTHORIZED, "invalid signature").into_response();
    }
    if !c.first_delivery(&headers, now) {
        tracing::warn!("slash command refused: a request already run was sent again");
        return (StatusCode::UNAUTHORIZED, "request already received").into_response();
    }
    let form: std::collections::BTreeMap<String, String> =
        url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |k: &str| form.get(k).cloned().unwrap_or_default();
    let (user_id, text, response_url) = (field("user_id"), field("text"), field("response_url"));
    let command = parse(&text);
    if command == Command::Help {
        return Json(ephemeral(
            "Usage: `/idp status <app>`, `/idp sync <app>`, `/idp rollback <app> <historyId>`",
        ))
        .into_response();
    }
    // The work answers through `tx`; once the handler stopped waiting (`rx` dropped), the
    // send fails and the answer goes to `response_url` instead.
    let (tx, rx) = tokio::sync::oneshot::channel::<String>();
    {
        use tracing::Instrument;
        let c = c.clone();
        let span = tracing::info_span!("slash_command", user = %user_id);
        tokio::spawn(
            async move {
                let answer = run(&c, &user_id, command).await;
                if let Err(answer) = tx.send(answer) {
                    let r = c
                        .http
                        .post(&response_url)
                        .json(&reply(&answer))
                        .send()
                        .await;
                    if let Err(e) = r {
                        tracing::warn!(error = %e, "cannot answer through response_url");
                    }
                }
            }
            .instrument(span),
        );
    }
    match tokio::time::timeout(ANSWER_WITHIN, rx).await {
        Ok(Ok(answer)) => Json(reply(&answer)).into_response(),
        Ok(Err(_)) => Json(ephemeral("The command failed; see the bot's log.")).into_response(),
        Err(_) => Json(ephemeral("Working on it…")).into_response(),
    }
}

/// Runs one command for the Slack user `user_id`; the text to answer with.
async fn run(c: &Commands, user_id: &str, command: Command) -> String {
    let user = match catalog_user(c, user_id).await {
        Ok(Some(u)) => u,
        Ok(None) => {
            tracing::warn!(slack_user = %user_id, "slash command from a Slack user the catalog does not know");
            return "Sorry, I cannot tell who you are: your Slack e-mail matches no user in the catalog, so I run nothing for you.".into();
        }
        Err(e) => {
            // The cause (an address, a transport error) goes to the log, not to the channel.
            tracing::warn!(slack_user = %user_id, error = %e, "cannot look up the Slack user");
            return "Sorry, I cannot look you up right now; the bot's log says why.".into();
        }
    };
    tracing::info!(slack_user = %user_id, user = %user, command = ?command, "slash command");
    match command {
        Command::Status(app) => status(c, &user, &app).await,
        Command::Sync(app) => {
            let q = "mutation($name: String!) { syncApplication(input: {name: $name}) { auditId application { name operationState { phase } } } }";
            act(c, &user, "sync", &app, q, json!({"name": app})).await
        }
        Command::Rollback(app, id) => {
            let q = "mutation($name: String!, $id: Int!) { rollbackApplication(input: {name: $name, id: $id}) { auditId application { name operationState { phase } } } }";
            act(
                c,
                &user,
                &format!("roll back (to #{id})"),
                &app,
                q,
                json!({"name": app, "id": id}),
            )
            .await
        }
        Command::Help => String::new(),
    }
}

/// The catalog user (`user:default/carol`) whose e-mail is the Slack user's.
async fn catalog_user(c: &Commands, slack_user: &str) -> Result<Option<String>, String> {
    let Some(email) = c
        .slack
        .user_email(slack_user)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let q = r#"query { entities(filter: {kind: "User"}, first: 1000) { nodes { ref ... on User { email } } } }"#;
    let body = c
        .graph
        .run(q, json!({}), None)
        .await
        .map_err(|e| e.to_string())?;
    Ok(body["data"]["entities"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|n| {
            n["email"]
                .as_str()
                .is_some_and(|m| m.eq_ignore_ascii_case(email.trim()))
        })
        .and_then(|n| n["ref"].as_str())
        .map(str::to_string))
}

fn who(user: &str) -> &str {
    user.rsplit('/').next().unwrap_or(user)
}

async fn status(c: &Commands, user: &str, app: &str) -> String {
    let q = "query($name: String!) { application(name: $name) { name project health { status message } sync { status revision commit { shortSha title author { name } } } operationState { phase message } lastSyncedAt } }";
    match c.graph.run(q, json!({"name": app}), Some(user)).await {
        Ok(body) => {
            let a = &body["data"]["application"];
            if a.is_null() {
                return format!(
                    "{}: there is no application `{app}` that you can see.",
                    who(user)
                );
            }
            let commit = a["sync"]["commit"]["shortSha"]
                .as_str()
                .map(|s| {
                    format!(
                        ", commit `{s}` {} by {}",
                        a["sync"]["commit"]["title"].as_str().unwrap_or(""),
                        a["sync"]["commit"]["author"]["name"]
                            .as_str()
                            .unwrap_or("?")
                    )
                })
                .unwrap_or_default();
            format!(
                "*{app}* ({}): {} and {}{commit}; last operation {}.",
                a["project"].as_str().unwrap_or("?"),
                a["health"]["status"].as_str().unwrap_or("?"),
                a["sync"]["status"].as_str().unwrap_or("?"),
                a["operationState"]["phase"].as_str().unwrap_or("none"),
            )
        }
        Err(e) => refusal(user, "see", app, &e),
    }
}

async fn act(c: &Commands, user: &str, verb: &str, app: &str, q: &str, vars: Value) -> String {
    match c.graph.run(q, vars, Some(user)).await {
        Ok(body) => {
            if let Some(err) = body["errors"].as_array().and_then(|e| e.first()) {
                let code = err["extensions"]["code"].as_str().unwrap_or("ERROR");
                return match code {
                    "FORBIDDEN" | "NOT_FOUND" => format!(
                        ":no_entry: {} may not {verb} `{app}`: the policy does not allow it (or there is no such application).",
                        who(user)
                    ),
                    _ => format!(
                        ":x: {verb} `{app}` for {} failed: {code}: {}",
                        who(user),
                        err["message"].as_str().unwrap_or("")
                    ),
                };
            }
            let root = body["data"]
                .as_object()
                .and_then(|o| o.values().next())
                .cloned()
                .unwrap_or(Value::Null);
            format!(
                ":white_check_mark: {verb} `{app}` started for {} (operation {}, audit record {}).",
                who(user),
                root["application"]["operationState"]["phase"]
                    .as_str()
                    .unwrap_or("?"),
                root["auditId"]
            )
        }
        Err(e) => refusal(user, verb, app, &e),
    }
}

fn refusal(user: &str, verb: &str, app: &str, e: &GraphClientError) -> String {
    match e {
        GraphClientError::Refused { code, .. } if code == "UNKNOWN_USER" => format!(
            ":no_entry: I cannot act for {}: idp-graph does not know this user.",
            who(user)
        ),
        GraphClientError::Refused { code, .. } if code == "DELEGATION_FORBIDDEN" => {
            ":no_entry: This bot may not act for users (its role lacks `delegate`).".into()
        }
        // The server's own refusal (`FORBIDDEN`, `NOT_FOUND`…) is written for its caller.
        GraphClientError::Refused { code, message } => {
            format!(
                ":x: cannot {verb} `{app}` for {}: {code}: {message}",
                who(user)
            )
        }
        GraphClientError::Unreachable(cause) => {
            tracing::warn!(%cause, verb, app, "idp-graph unreachable for a slash command");
            format!(
                ":x: cannot {verb} `{app}` for {}: idp-graph is unreachable right now.",
                who(user)
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(secret: &str, ts: i64, body: &str) -> HeaderMap {
        let hex = crate::auth::signature::sign_hex(
            secret.as_bytes(),
            &[format!("v0:{ts}:{body}").as_bytes()],
        );
        let mut h = HeaderMap::new();
        h.insert("x-slack-request-timestamp", ts.to_string().parse().unwrap());
        h.insert("x-slack-signature", format!("v0={hex}").parse().unwrap());
        h
    }

    #[test]
    fn only_fresh_requests_signed_with_the_secret_pass() {
        let now = 1_700_000_000;
        let body = "command=%2Fidp&text=sync+sample-app";
        assert!(verify(
            b"s3cret",
            &signed("s3cret", now, body),
            body.as_bytes(),
            now
        ));
        assert!(!verify(
            b"s3cret",
            &signed("other", now, body),
            body.as_bytes(),
            now
        ));
        assert!(!verify(
            b"s3cret",
            &signed("s3cret", now - 301, body),
            body.as_bytes(),
            now
        ));
        assert!(!verify(
            b"s3cret",
            &signed("s3cret", now, body),
            b"tampered",
            now
        ));
        assert!(!verify(b"s3cret", &HeaderMap::new(), body.as_bytes(), now));
    }

    #[test]
    fn commands_parse_or_fall_back_to_help() {
        assert_eq!(parse("sync sample-app"), Command::Sync("sample-app".into()));
        assert_eq!(parse(" status  app-2 "), Command::Status("app-2".into()));
        assert_eq!(
            parse("rollback app-2 3"),
            Command::Rollback("app-2".into(), 3)
        );
        assert_eq!(parse("rollback app-2 x"), Command::Help);
        assert_eq!(parse("delete everything"), Command::Help);
        assert_eq!(parse("status <!channel>"), Command::Help);
    }
}
