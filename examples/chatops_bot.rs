//! A chatops bot: follows `healthTransitions` and posts to a Slack-compatible incoming webhook
//! when an application becomes Degraded, when a sync fails, and when it recovers.
//!
//!     cargo run --example chatops_bot -- http://127.0.0.1:8080 https://hooks.slack.com/services/...
//!
//! It is built on `idp_graph::watch`, so it reconnects and resumes from its last cursor.

use std::io::Write;

use serde_json::{json, Value};

const SUBSCRIPTION: &str = r#"subscription($after: String) {
  healthTransitions(kinds: [HEALTH, OPERATION], after: $after) {
    cursor type kind from to
    application { name instance health { message } operationState { message } }
    entity { ref }
  }
}"#;

/// The message for one transition, or `None` when it is not worth a post.
fn message_for(t: &Value) -> Option<String> {
    if t["type"] == "RESYNC_REQUIRED" {
        return Some(
            ":warning: idp-graph: some status changes were missed; check the dashboard".into(),
        );
    }
    let app = t["application"]["name"].as_str().unwrap_or("?");
    let instance = t["application"]["instance"].as_str().unwrap_or("?");
    let owner = t["entity"]["ref"]
        .as_str()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    match (t["kind"].as_str(), t["from"].as_str(), t["to"].as_str()) {
        (Some("HEALTH"), _, Some("DEGRADED")) => {
            let why = t["application"]["health"]["message"]
                .as_str()
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            Some(format!(
                ":red_circle: {app}{owner} on {instance} is Degraded{why}"
            ))
        }
        (Some("HEALTH"), Some("DEGRADED" | "MISSING"), Some("HEALTHY")) => Some(format!(
            ":large_green_circle: {app}{owner} on {instance} recovered: Healthy"
        )),
        (Some("OPERATION"), _, Some("FAILED" | "ERROR")) => {
            let why = t["application"]["operationState"]["message"]
                .as_str()
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            Some(format!(
                ":x: sync of {app}{owner} on {instance} failed{why}"
            ))
        }
        _ => None,
    }
}

/// Hands each printed event line to the async side. Writes arrive in pieces; a line is
/// complete at its newline.
struct Lines(tokio::sync::mpsc::UnboundedSender<String>, Vec<u8>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.1.extend_from_slice(buf);
        while let Some(pos) = self.1.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.1.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line).trim().to_string();
            if !line.is_empty() {
                let _ = self.0.send(line);
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Follows the server and posts to the webhook until the subscription ends.
pub async fn run(server: &str, webhook: &str, max_events: Option<usize>) -> Result<(), String> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let http = reqwest::Client::new();
    let hook = webhook.to_string();
    let poster = tokio::spawn(async move {
        while let Some(line) = rx.recv().await {
            let Ok(t) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if let Some(text) = message_for(&t) {
                // A webhook that is down must not stop the bot: log and go on.
                if let Err(e) = http
                    .post(&hook)
                    .json(&json!({ "text": text }))
                    .send()
                    .await
                    .and_then(|r| r.error_for_status())
                {
                    eprintln!("webhook post failed: {e}");
                }
            }
        }
    });
    let opts = idp_graph::watch::WatchOptions {
        url: server.to_string(),
        token: std::env::var("IDP_GRAPH_TOKEN").ok().map(Into::into),
        query: SUBSCRIPTION.to_string(),
        variables: json!({}),
        max_events,
        // A bot runs one known operation: send its hash (the text only when the server asks),
        // so it also works against a server that only runs trusted documents.
        persisted: true,
        after: None,
    };
    let mut lines = Lines(tx, Vec::new());
    let result = idp_graph::watch::run(opts, &mut lines)
        .await
        .map_err(|e| e.to_string());
    drop(lines);
    let _ = poster.await;
    result
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(server), Some(webhook)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: chatops_bot <idp-graph URL> <incoming-webhook URL>");
        std::process::exit(64);
    };
    if let Err(e) = run(server, webhook, None).await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use axum::routing::post;
    use idp_graph::app::App;
    use idp_graph::demo::{DemoOptions, DemoWorld};
    use parking_lot::Mutex;

    use super::*;

    #[test]
    fn only_what_matters_is_posted() {
        let t = |kind: &str, from: &str, to: &str| json!({"type": "TRANSITION", "kind": kind, "from": from, "to": to, "application": {"name": "a", "instance": "main"}});
        assert!(message_for(&t("HEALTH", "HEALTHY", "DEGRADED"))
            .unwrap()
            .contains("Degraded"));
        assert!(message_for(&t("HEALTH", "DEGRADED", "HEALTHY"))
            .unwrap()
            .contains("recovered"));
        assert!(message_for(&t("OPERATION", "RUNNING", "FAILED"))
            .unwrap()
            .contains("failed"));
        assert!(message_for(&t("HEALTH", "HEALTHY", "PROGRESSING")).is_none());
        assert!(
            message_for(&t("HEALTH", "PROGRESSING", "HEALTHY")).is_none(),
            "a normal rollout is not news"
        );
        assert!(message_for(&t("OPERATION", "RUNNING", "SUCCEEDED")).is_none());
    }

    #[tokio::test]
    async fn the_bot_posts_degraded_failed_and_recovered_to_the_webhook() {
        // A local Slack-compatible incoming webhook.
        let posts: Arc<Mutex<Vec<Value>>> = Default::default();
        let store = posts.clone();
        let hook = axum::Router::new().route(
            "/services/T000/B000/XXXX",
            post(move |axum::Json(v): axum::Json<Value>| {
                let store = store.clone();
                async move {
                    store.lock().push(v);
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hook_url = format!(
            "http://{}/services/T000/B000/XXXX",
            listener.local_addr().unwrap()
        );
        tokio::spawn(async move { axum::serve(listener, hook).await });

        let opts = DemoOptions::for_tests();
        let world = DemoWorld::start(&opts).await.unwrap();
        let (mut settings, secrets) = world.settings(&opts);
        settings.listen = "127.0.0.1:0".parse().unwrap();
        let app = App::build(settings, secrets).await.unwrap();
        let server = format!("http://{}", app.local_addr());
        let stop = app.shutdown_token();
        tokio::spawn(app.run_until_stopped());
        let http = reqwest::Client::new();
        while !http
            .get(format!("{server}/readyz"))
            .send()
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        let bot = tokio::spawn({
            let (server, hook_url) = (server.clone(), hook_url.clone());
            async move { run(&server, &hook_url, None).await }
        });
        let posted = |needle: &'static str| {
            let posts = posts.clone();
            move || {
                posts
                    .lock()
                    .iter()
                    .any(|p| p["text"].as_str().is_some_and(|t| t.contains(needle)))
            }
        };
        // Until the bot is subscribed nothing is posted: flip app-3 until a post arrives.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let mut degraded = false;
        while posts.lock().is_empty() {
            assert!(tokio::time::Instant::now() < deadline, "no post");
            degraded = !degraded;
            if degraded {
                world
                    .argocd
                    .set_health("app-3", "Degraded", Some("crash looping"));
            } else {
                world.argocd.set_health("app-3", "Healthy", None);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Now subscribed: one clean degrade-and-recover, and a failed sync.
        world
            .argocd
            .set_health("app-3", "Degraded", Some("crash looping"));
        world.argocd.set_health("app-3", "Healthy", None);
        let gql = |q: &'static str| {
            let (http, server) = (http.clone(), server.clone());
            async move {
                http.post(format!("{server}/graphql"))
                    .json(&json!({ "query": q }))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap()
            }
        };
        gql(r#"mutation { syncApplication(input: {name: "app-2"}) { auditId } }"#).await;
        gql(r#"mutation { terminateApplicationOperation(input: {name: "app-2"}) { auditId } }"#)
            .await;
        let (deg, rec, fail) = (
            posted("Degraded: crash looping"),
            posted("recovered"),
            posted("Operation terminated"),
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !(deg() && rec() && fail()) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "posts: {:?}",
                posts.lock()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let texts: Vec<String> = posts
            .lock()
            .iter()
            .map(|p| p["text"].as_str().unwrap().to_string())
            .collect();
        assert!(
            texts
                .iter()
                .any(|t| t.contains("app-3 (component:default/app-3) on main is Degraded")),
            "{texts:?}"
        );
        assert!(
            texts.iter().any(|t| t.starts_with(":x: sync of app-2")),
            "{texts:?}"
        );
        assert!(
            texts.iter().all(|t| !t.contains("PROGRESSING")),
            "routine changes are not posted"
        );
        bot.abort();
        stop.cancel();
    }
}
