//! `idp-graph notify` as its own process against the real server and the simulated Slack: the
//! catalog routes each notification (app-3 → `#app-team`, a platform app's crash loop →
//! `#platform`), a `kill -9` mid-weather neither loses nor repeats one, Slack's 429 is honoured,
//! and slash commands run as the Slack user's catalog user through delegation. Every posted
//! message is parsed by Slack's own Block Kit models, and every slash-command request is signed
//! by Slack's own `SignatureVerifier` (`tests/python/slack_check.py`, PyPI `slack_sdk`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use idp_graph::demo::slack::{DEMO_BOT_TOKEN, DEMO_SIGNING_SECRET};
use idp_graph::demo::DemoOptions;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{spawn_with, wait_for, TestApp};

/// The world with authentication on (the bot is the demo's `notify-bot` persona).
async fn world() -> TestApp {
    spawn_with(
        DemoOptions {
            auth: true,
            ..DemoOptions::for_tests()
        },
        |_| {},
    )
    .await
}

fn token_of(app: &TestApp, persona: &str) -> String {
    app.world
        .persona_tokens()
        .into_iter()
        .find(|(p, _, _)| *p == persona)
        .map(|(_, _, t)| t)
        .expect("a demo persona")
}

/// The secret of the tests' webhook (`webhooks[].secret_env: IDP_WEBHOOK_SECRET`).
const WEBHOOK_SECRET: &str = "hook-secret";

/// A webhook receiver on loopback: its URL and every delivery (signature header, body).
async fn webhook_receiver() -> (
    String,
    std::sync::Arc<parking_lot::Mutex<Vec<(String, String)>>>,
) {
    use axum::http::HeaderMap;
    let got = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    let sink = got.clone();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let sink = sink.clone();
            async move {
                let sig = headers
                    .get("x-idp-signature-256")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                sink.lock().push((sig, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (url, got)
}

/// A running `idp-graph notify`; killed (SIGKILL) on drop.
struct Bot {
    child: Child,
    dir: PathBuf,
    /// `http://127.0.0.1:<port>` of its slash-command listener.
    listen: String,
}

impl Bot {
    /// Starts the bot with its state in `dir` and `extra` YAML appended to its config.
    fn start(app: &TestApp, dir: &std::path::Path, extra: &str) -> Bot {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = format!(
            "server: {{ url: '{}', token_env: IDP_GRAPH_TOKEN }}\n\
             slack: {{ api_url: '{}', bot_token_env: SLACK_BOT_TOKEN, signing_secret_env: SLACK_SIGNING_SECRET }}\n\
             listen: 127.0.0.1:{port}\n\
             state_dir: '{}'\n\
             retry: {{ max_attempts: 6, max_backoff_secs: 5 }}\n{extra}",
            app.url,
            app.world.slack.api_url(),
            dir.join("state").display(),
        );
        let path = dir.join("notify.yaml");
        std::fs::write(&path, config).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("notify.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_idp-graph"))
            .args(["notify", "--config"])
            .arg(&path)
            .env("IDP_GRAPH_TOKEN", token_of(app, "notify-bot"))
            .env("SLACK_BOT_TOKEN", DEMO_BOT_TOKEN)
            .env("SLACK_SIGNING_SECRET", DEMO_SIGNING_SECRET)
            .env("IDP_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("idp-graph notify starts");
        Bot {
            child,
            dir: dir.to_path_buf(),
            listen: format!("http://127.0.0.1:{port}"),
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("notify.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// `kill -9`.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until the server runs `n` shared subscription executions (a fresh bot's streams
/// subscribe without a cursor, so each starts one): from then on it misses nothing.
async fn wait_subscribed(app: &TestApp, n: u64, bot: &Bot) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let alice = token_of(app, "alice");
    let groups = || async {
        let text = app
            .http
            .get(format!("{}/metrics", app.url))
            .bearer_auth(&alice)
            .send()
            .await
            .expect("/metrics answers")
            .text()
            .await
            .unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix("idp_subscription_groups "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    while groups().await < n {
        assert!(
            Instant::now() < deadline,
            "the bot did not subscribe: {}",
            bot.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The posted messages that carry the bot's key (`metadata.event_payload`).
fn payload(m: &idp_graph::demo::slack::PostedMessage) -> &Value {
    &m.metadata["event_payload"]
}

/// Slack's own SDK checks every posted message's blocks; panics with its reasons.
async fn check_with_slack_sdk(app: &TestApp) {
    let bodies: Vec<Value> = app
        .world
        .slack
        .messages()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert!(!bodies.is_empty(), "nothing was posted");
    let out = python(&["messages"], Value::Array(bodies.clone()).to_string()).await;
    assert_eq!(out["checked"], bodies.len(), "{out}");
}

/// Runs `tests/python/slack_check.py` with `stdin`; its JSON answer. Fails (never skips) when
/// `slack_sdk` is missing.
async fn python(args: &[&str], stdin: String) -> Value {
    use tokio::io::AsyncWriteExt;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/slack_check.py");
    let mut child = tokio::process::Command::new("python3")
        .arg(&script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let out = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'slack_sdk'"),
        "pip install slack_sdk==3.36.0 first (.ci/run does)"
    );
    assert!(out.status.success(), "slack_sdk refused: {stderr}");
    serde_json::from_slice(&out.stdout).expect("the script prints JSON")
}

#[tokio::test]
async fn notifications_reach_the_channel_the_catalog_names_once_with_owner_commit_and_links() {
    let app = world().await;
    let dir = tempfile::tempdir().unwrap();
    let bot = Bot::start(&app, dir.path(), "");
    wait_subscribed(&app, 4, &bot).await;
    let slack = app.world.slack.clone();
    let argo = &app.world.argocd;

    // app-3 degrades, recovers, degrades again within the dedupe window, recovers.
    argo.set_health(
        "app-3",
        "Degraded",
        Some("Deployment \"app-3\" exceeded its progress deadline"),
    );
    let degraded = wait_for(
        "app-3's degradation in #app-team",
        Duration::from_secs(20),
        || {
            let slack = slack.clone();
            async move {
                slack
                    .messages()
                    .into_iter()
                    .find(|m| payload(m)["app"] == "app-3" && payload(m)["trigger"] == "degraded")
            }
        },
    )
    .await;
    assert_eq!(degraded.channel_name, "#app-team");
    let blocks = degraded.blocks.to_string();
    assert!(blocks.contains("app-team"), "the owner: {blocks}");
    assert!(blocks.contains("*Commit*"), "the commit: {blocks}");
    assert!(
        blocks.contains("https://github.com/yourcompany/app-3/commit/"),
        "a commit link: {blocks}"
    );
    assert!(
        blocks.contains(&format!("{}/ui/entity/component/default/app-3", app.url)),
        "a portal link: {blocks}"
    );
    assert!(
        blocks.contains("exceeded its progress deadline"),
        "{blocks}"
    );
    argo.set_health("app-3", "Healthy", None);
    argo.set_health("app-3", "Degraded", Some("again"));
    argo.set_health("app-3", "Healthy", None);
    // The health stream is handled in order: once app-2's degradation is posted, app-3's
    // second one has been handled (and suppressed).
    argo.set_health("app-2", "Degraded", Some("probe failed"));
    wait_for("app-2's degradation", Duration::from_secs(20), || {
        let slack = slack.clone();
        async move {
            slack
                .messages()
                .iter()
                .any(|m| payload(m)["app"] == "app-2" && payload(m)["trigger"] == "degraded")
                .then_some(())
        }
    })
    .await;
    let app3_degraded = slack
        .messages()
        .iter()
        .filter(|m| payload(m)["app"] == "app-3" && payload(m)["trigger"] == "degraded")
        .count();
    assert_eq!(
        app3_degraded, 1,
        "app-3's degradation reaches #app-team once"
    );

    // A platform app's pod crash-loops: #platform, naming the app and the component.
    assert!(app
        .world
        .kubernetes
        .set_crashloop("backstage", "backstage", true));
    let crash = wait_for(
        "backstage's crash loop in #platform",
        Duration::from_secs(20),
        || {
            let slack = slack.clone();
            async move {
                slack.messages().into_iter().find(|m| {
                    payload(m)["app"] == "backstage" && payload(m)["trigger"] == "crash_loop"
                })
            }
        },
    )
    .await;
    assert_eq!(crash.channel_name, "#platform");
    let blocks = crash.blocks.to_string();
    assert!(
        blocks.contains("A pod of backstage is crash-looping"),
        "{blocks}"
    );
    assert!(blocks.contains("*Component*"), "{blocks}");
    assert!(
        blocks.contains("/ui/entity/component/default/backstage"),
        "the component: {blocks}"
    );
    assert!(
        blocks.contains("application `backstage` on main/platform"),
        "{blocks}"
    );

    // The other workload triggers, each to its team's channel.
    let kube = &app.world.kubernetes;
    assert!(kube.set_pod_trouble("app-2", "app-2", "ErrImagePull"));
    assert!(kube.set_pod_trouble("ingress-nginx", "ingress-nginx", "OOMKilled"));
    assert!(kube.stall("sample-app", "sample-app"));
    for (app_name, trigger, channel, says) in [
        (
            "app-2",
            "image_pull",
            "#app-team",
            "A pod of app-2 cannot pull its image",
        ),
        (
            "ingress-nginx",
            "oom_killed",
            "#platform",
            "A pod of ingress-nginx was OOMKilled",
        ),
        (
            "sample-app",
            "rollout_stalled",
            "#app-team",
            "The rollout of sample-app stalled",
        ),
    ] {
        let m = wait_for(trigger, Duration::from_secs(20), || {
            let slack = slack.clone();
            async move {
                slack
                    .messages()
                    .into_iter()
                    .find(|m| payload(m)["app"] == app_name && payload(m)["trigger"] == trigger)
            }
        })
        .await;
        assert_eq!(m.channel_name, channel, "{trigger}");
        assert!(m.blocks.to_string().contains(says), "{}", m.blocks);
    }

    // A sync that succeeds is a deploy: the revision's commit, its author, the pull request.
    assert!(app.world.argocd.start_sync("my-app"));
    let deployed = wait_for("my-app's deploy", Duration::from_secs(20), || {
        let slack = slack.clone();
        async move {
            slack
                .messages()
                .into_iter()
                .find(|m| payload(m)["app"] == "my-app" && payload(m)["trigger"] == "deployed")
        }
    })
    .await;
    let head = app.world.git.head("yourcompany/my-app").unwrap();
    let blocks = deployed.blocks.to_string();
    assert!(
        blocks.contains(&format!("my-app deployed {}", &head.sha[..7])),
        "{blocks}"
    );
    assert!(blocks.contains("Pull request"), "{blocks}");
    assert!(
        blocks.contains(&format!(
            "https://github.com/yourcompany/my-app/pulls?q=is%3Apr+{}",
            head.sha
        )),
        "{blocks}"
    );

    check_with_slack_sdk(&app).await;
}

#[tokio::test]
async fn slack_answering_429_gets_the_message_once_after_retry_after_and_a_webhook_a_signed_copy() {
    let app = world().await;
    let dir = tempfile::tempdir().unwrap();
    let (hook, deliveries) = webhook_receiver().await;
    let bot = Bot::start(
        &app,
        dir.path(),
        &format!("webhooks: [{{ url: '{hook}', secret_env: IDP_WEBHOOK_SECRET }}]\n"),
    );
    wait_subscribed(&app, 4, &bot).await;
    let slack = app.world.slack.clone();
    slack.script_answers(&[(429, Some(2))]);
    app.world
        .argocd
        .set_health("my-app", "Degraded", Some("readiness probe failed"));
    wait_for("my-app's degradation", Duration::from_secs(20), || {
        let slack = slack.clone();
        async move { (!slack.messages().is_empty()).then_some(()) }
    })
    .await;
    let attempts = slack.attempts();
    assert_eq!(
        attempts.iter().map(|a| a.status).collect::<Vec<_>>(),
        [429, 200],
        "{}",
        bot.log_tail()
    );
    let waited = attempts[1].at.duration_since(attempts[0].at);
    assert!(
        waited >= Duration::from_millis(1950),
        "Retry-After: 2 honoured, waited {waited:?}"
    );
    // Nothing else comes: the message was delivered once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(slack.messages().len(), 1);
    assert_eq!(payload(&slack.messages()[0])["app"], "my-app");
    check_with_slack_sdk(&app).await;

    // The webhook got the same notification once, as JSON, signed over the exact body.
    let deliveries = deliveries.lock().clone();
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    let (sig, body) = &deliveries[0];
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(sig, &format!("sha256={hex}"));
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["id"], payload(&slack.messages()[0])["key"]);
    assert_eq!(
        (body["trigger"].clone(), body["channel"].clone()),
        (json!("degraded"), json!("#app-team"))
    );
}

/// A websocket subscriber as the bot's persona: the list of transitions the server sent.
async fn record_transitions(
    app: &TestApp,
    token: String,
) -> tokio::sync::mpsc::UnboundedReceiver<Value> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{}/graphql/ws", app.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws.send(Message::text(
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}})
            .to_string(),
    ))
    .await
    .unwrap();
    // A query of its own (not the bot's), so it is its own shared execution.
    let q = "subscription { healthTransitions(kinds: [HEALTH, OPERATION]) { cursor type kind from to application { name } } }";
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(m)) = ws.next().await {
            let Message::Text(t) = m else { continue };
            let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
            match v["type"].as_str() {
                Some("connection_ack") => {
                    let sub = json!({"id": "1", "type": "subscribe", "payload": {"query": q}});
                    let _ = ws.send(Message::text(sub.to_string())).await;
                }
                Some("ping") => {
                    let _ = ws
                        .send(Message::text(json!({"type": "pong"}).to_string()))
                        .await;
                }
                Some("next") => {
                    let _ = tx.send(v["payload"]["data"]["healthTransitions"].clone());
                }
                _ => {}
            }
        }
    });
    rx
}

/// The notification key the bot gives a transition it notifies about (`triggers.rs`).
fn expected_key(t: &Value) -> Option<String> {
    let (kind, from, to) = (t["kind"].as_str()?, t["from"].as_str(), t["to"].as_str()?);
    let notified = matches!(
        (kind, from, to),
        ("HEALTH", _, "DEGRADED")
            | ("HEALTH", Some("DEGRADED" | "MISSING"), "HEALTHY")
            | ("OPERATION", _, "FAILED" | "ERROR" | "SUCCEEDED")
    );
    (t["type"] == "TRANSITION" && notified).then(|| {
        format!(
            "healthTransitions|{}|{kind}|{to}",
            t["cursor"].as_str().unwrap_or("")
        )
    })
}

#[tokio::test]
async fn a_kill_9_mid_weather_neither_loses_nor_repeats_a_notification() {
    let app = world().await;
    let dir = tempfile::tempdir().unwrap();
    let mut transitions = record_transitions(&app, token_of(&app, "notify-bot")).await;
    // No dedupe, no rate limit: every transition is a message.
    let limits = "limits: { dedupe_secs: 0, per_app_per_minute: 0 }\n";
    let mut bot = Bot::start(&app, dir.path(), limits);
    wait_subscribed(&app, 5, &bot).await;

    // The weather: four team apps flip between Degraded and Healthy, 60 flips 50 ms apart.
    let argo = app.world.argocd.clone();
    let weather = tokio::spawn(async move {
        let apps = ["sample-app", "my-app", "app-2", "app-3"];
        for round in 0..15 {
            for app in apps {
                let degraded = round % 2 == 0;
                argo.set_health(
                    app,
                    if degraded { "Degraded" } else { "Healthy" },
                    degraded.then_some("weather"),
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    // Mid-weather, once some messages are out: kill -9, then the same state_dir again.
    let slack = app.world.slack.clone();
    wait_for("the first messages", Duration::from_secs(20), || {
        let slack = slack.clone();
        async move { (slack.messages().len() >= 6).then_some(()) }
    })
    .await;
    bot.kill();
    let posted_before_kill = slack.messages().len();
    // `kill` waited for the process to end; the bot now stays away for a few weather steps
    // (pacing: the transitions meanwhile must come from the replay, not a wait for a state).
    tokio::time::sleep(Duration::from_millis(400)).await;
    let bot = Bot::start(&app, dir.path(), limits);
    weather.await.unwrap();

    // What the server sent (read until it has been quiet a while).
    let mut expected = BTreeSet::new();
    while let Ok(Some(t)) = tokio::time::timeout(Duration::from_secs(2), transitions.recv()).await {
        if let Some(k) = expected_key(&t) {
            expected.insert(k);
        }
    }
    assert!(
        expected.len() >= 40,
        "the weather made {} transitions",
        expected.len()
    );
    let keys = || {
        slack
            .messages()
            .iter()
            .filter_map(|m| payload(m)["key"].as_str().map(str::to_string))
            .collect::<Vec<_>>()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while keys().len() < expected.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A repeat would come after the last expected message: a quiet window is the only way to
    // see that none does.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let posted = keys();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for k in &posted {
        *counts.entry(k).or_default() += 1;
    }
    let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "repeated: {repeated:?}\n{}",
        bot.log_tail()
    );
    let posted: BTreeSet<String> = posted.into_iter().collect();
    let lost: Vec<_> = expected.difference(&posted).collect();
    assert!(
        lost.is_empty(),
        "lost {} of {}: {lost:?}\n{}",
        lost.len(),
        expected.len(),
        bot.log_tail()
    );
    let extra: Vec<_> = posted.difference(&expected).collect();
    assert!(extra.is_empty(), "never sent by the server: {extra:?}");
    assert!(
        posted_before_kill < expected.len(),
        "the kill came mid-weather ({posted_before_kill} of {} before it)",
        expected.len()
    );
    println!(
        "notify: {} transitions, {} messages ({posted_before_kill} before the kill -9), none lost or repeated",
        expected.len(),
        posted.len()
    );
    check_with_slack_sdk(&app).await;
}

/// A slash command as Slack sends it, signed by `slack_sdk` at `timestamp`.
async fn slash(bot: &Bot, user_id: &str, text: &str, timestamp: i64, secret: &str) -> (u16, Value) {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("token", "deprecated-verification-token")
        .append_pair("team_id", "T0IDPGRAPH")
        .append_pair("team_domain", "yourcompany")
        .append_pair("channel_id", "C0APPTEAM")
        .append_pair("channel_name", "app-team")
        .append_pair("user_id", user_id)
        .append_pair("user_name", "someone")
        .append_pair("command", "/idp")
        .append_pair("text", text)
        .append_pair("api_app_id", "A0IDPGRAPH")
        .append_pair("response_url", "http://127.0.0.1:9/commands/unused")
        .append_pair("trigger_id", "1.2.3")
        .finish();
    let ts = timestamp.to_string();
    let sig = python(&["sign", secret, &ts], body.clone()).await;
    let r = reqwest::Client::new()
        .post(format!("{}/slack/commands", bot.listen))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", &ts)
        .header("x-slack-signature", sig["signature"].as_str().unwrap())
        .body(body)
        .send()
        .await
        .expect("the bot answers");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn audit_log(app: &TestApp) -> Vec<Value> {
    let alice = token_of(app, "alice");
    let r: Value = app
        .http
        .post(format!("{}/graphql", app.url))
        .bearer_auth(alice)
        .json(&json!({"query": "{ auditLog(first: 20) { principal delegate action target result decision } }"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["data"]["auditLog"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn slash_commands_run_as_the_slack_users_catalog_user_and_bad_signatures_do_nothing() {
    let app = world().await;
    let dir = tempfile::tempdir().unwrap();
    let bot = Bot::start(&app, dir.path(), "");
    let bot_url = format!("{}/slack/commands", bot.listen);
    wait_for(
        "the slash-command listener",
        Duration::from_secs(20),
        || {
            let url = bot_url.clone();
            async move {
                reqwest::Client::new()
                    .post(&url)
                    .send()
                    .await
                    .ok()
                    .map(|_| ())
            }
        },
    )
    .await;
    let now = chrono::Utc::now().timestamp();

    // A bad signature and a stale (but well-signed) one: 401, and nothing runs.
    let before = audit_log(&app).await.len();
    let (status, _) = slash(&bot, "U0CAROL", "sync sample-app", now, "not-the-secret").await;
    assert_eq!(status, 401);
    let (status, _) = slash(
        &bot,
        "U0CAROL",
        "sync sample-app",
        now - 600,
        DEMO_SIGNING_SECRET,
    )
    .await;
    assert_eq!(status, 401, "a timestamp older than 5 minutes is refused");
    assert_eq!(audit_log(&app).await.len(), before, "nothing ran");

    // carol syncs her team's app: it runs as carol, the audit trail names carol and the bot.
    let (status, answer) =
        slash(&bot, "U0CAROL", "sync sample-app", now, DEMO_SIGNING_SECRET).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["response_type"], "in_channel", "{answer}");
    assert!(
        answer["text"]
            .as_str()
            .unwrap()
            .contains("started for carol"),
        "{answer}"
    );
    let log = audit_log(&app).await;
    let record = log
        .iter()
        .find(|r| r["action"] == "syncApplication" && r["result"] == "ok")
        .unwrap_or_else(|| panic!("no sync in {log:?}"));
    assert_eq!(record["principal"], "user:default/carol");
    assert_eq!(record["delegate"], "user:default/notify-bot");
    assert!(
        record["target"].as_str().unwrap().contains("sample-app"),
        "{record}"
    );

    // The very same signed request posted again (captured and replayed within the 5 minutes):
    // 401, and it does not run a second time.
    let syncs = |log: &[Value]| {
        log.iter()
            .filter(|r| r["action"] == "syncApplication")
            .count()
    };
    let before = syncs(&log);
    let (status, _) = slash(&bot, "U0CAROL", "sync sample-app", now, DEMO_SIGNING_SECRET).await;
    assert_eq!(status, 401, "a replayed request is refused");
    assert_eq!(
        syncs(&audit_log(&app).await),
        before,
        "the replay ran nothing"
    );

    // carol may not sync the platform's argocd: refused in the channel.
    let (status, answer) = slash(&bot, "U0CAROL", "sync argocd", now, DEMO_SIGNING_SECRET).await;
    assert_eq!(status, 200);
    assert_eq!(answer["response_type"], "in_channel");
    assert!(
        answer["text"]
            .as_str()
            .unwrap()
            .contains("carol may not sync `argocd`"),
        "{answer}"
    );
    // A Slack user the catalog does not know: a clear refusal.
    let (_, answer) = slash(
        &bot,
        "U0MALLORY",
        "sync sample-app",
        now,
        DEMO_SIGNING_SECRET,
    )
    .await;
    assert!(
        answer["text"]
            .as_str()
            .unwrap()
            .contains("matches no user in the catalog"),
        "{answer}"
    );
    // Status, as carol (who sees the applications project).
    let (_, answer) = slash(&bot, "U0CAROL", "status app-2", now, DEMO_SIGNING_SECRET).await;
    assert!(
        answer["text"]
            .as_str()
            .unwrap()
            .contains("*app-2* (applications)"),
        "{answer}"
    );
    // The answers are messages too: Slack's Block Kit models take them.
    python(&["messages"], json!([answer]).to_string()).await;

    // Delegation on the server: only a principal granted `delegate` may name a user, and
    // only one the catalog knows.
    let ask = |token: String, user: &'static str| {
        let (http, url) = (app.http.clone(), format!("{}/graphql", app.url));
        async move {
            let r = http
                .post(url)
                .bearer_auth(token)
                .header("x-idp-acting-for", user)
                .json(&json!({"query": "{ viewer { subject } }"}))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = ask(token_of(&app, "carol"), "user:default/alice").await;
    assert_eq!(
        (status, body["errors"][0]["extensions"]["code"].clone()),
        (403, json!("DELEGATION_FORBIDDEN")),
        "{body}"
    );
    let (status, body) = ask(token_of(&app, "notify-bot"), "user:default/nobody").await;
    assert_eq!(
        (status, body["errors"][0]["extensions"]["code"].clone()),
        (400, json!("UNKNOWN_USER")),
        "{body}"
    );
    let (status, body) = ask(token_of(&app, "notify-bot"), "user:default/carol").await;
    assert_eq!(status, 200);
    assert_eq!(
        body["data"]["viewer"]["subject"], "user:default/carol",
        "{body}"
    );
}

/// The crash window between Slack's answer and the state write: a post left pending is looked
/// up in its channel by the key in its metadata — there, it counts as sent (no repeat); not
/// there, it is sent again when its event is replayed (no loss).
#[tokio::test]
async fn a_post_pending_at_a_crash_is_settled_by_its_key_in_the_channel() {
    use idp_graph::notify::settings::RetrySettings;
    use idp_graph::notify::slack::SlackClient;
    use idp_graph::notify::state::{NotifyState, Pending};
    let stop = tokio_util::sync::CancellationToken::new();
    let sim = idp_graph::demo::slack::SlackSim::start(stop.clone())
        .await
        .unwrap();
    let slack = SlackClient::new(
        reqwest::Client::new(),
        &sim.api_url(),
        DEMO_BOT_TOKEN.to_string().into(),
        RetrySettings::default(),
    );
    let dir = tempfile::tempdir().unwrap();
    let state = NotifyState::open(dir.path()).unwrap();
    for key in ["went-through", "never-sent"] {
        state
            .begin(Pending {
                key: key.into(),
                channel: "#app-team".into(),
            })
            .unwrap();
    }
    // The post whose answer the crash swallowed.
    slack
        .post_message(&json!({"channel": "#app-team", "text": "x",
            "metadata": {"event_type": idp_graph::notify::slack::EVENT_TYPE, "event_payload": {"key": "went-through"}}}))
        .await
        .unwrap();
    idp_graph::notify::settle_pending(&state, &slack)
        .await
        .unwrap();
    assert!(
        state.handled("went-through"),
        "found in the channel: not sent again"
    );
    assert!(
        !state.handled("never-sent"),
        "not found: sent again on replay"
    );
    assert!(state.pending().is_empty());
    assert_eq!(sim.messages().len(), 1);
    stop.cancel();
}

/// A config `notify` cannot use stops it at once with exit 64 and the key that is wrong.
#[test]
fn a_bad_notify_config_exits_64_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let run = |yaml: &str| {
        let path = dir.path().join("notify.yaml");
        std::fs::write(&path, yaml).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_idp-graph"))
            .args(["notify", "--config"])
            .arg(&path)
            .env_remove("NOTIFY_TEST_UNSET")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let good = "server: { url: http://127.0.0.1:8080, token_env: NOTIFY_TEST_UNSET }\n\
                slack: { api_url: https://slack.com/api, bot_token_env: NOTIFY_TEST_UNSET, signing_secret_env: NOTIFY_TEST_UNSET }\n\
                listen: 127.0.0.1:3000\nstate_dir: ./notify-state\n";
    let (code, err) = run(&good.replace("state_dir", "state_directory"));
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("state_directory"), "{err}");
    let (code, err) = run(good);
    assert_eq!(code, Some(64), "{err}");
    assert!(
        err.contains("server.token_env") && err.contains("NOTIFY_TEST_UNSET is not set"),
        "{err}"
    );
}
