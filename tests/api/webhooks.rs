//! GitHub webhooks: the simulated GitHub delivers `push` events (GitHub's headers, payload and
//! `X-Hub-Signature-256`) to `POST /webhooks/github`; a verified delivery makes the very next
//! answer show the new commit, from the payload alone (TTLs are ten times longer with webhooks,
//! and GitHub is not asked, so only the delivery can explain it); a delivery with a bad or
//! missing signature is refused and changes nothing; a push whose delivery never arrived is
//! caught by the batched GraphQL safety net.

use idp_graph::demo::github::{push_payload, sign};
use idp_graph::demo::DemoOptions;
use serde_json::{json, Value};

use crate::helpers::{spawn_demo, spawn_with, TestApp};

const SECRET: &str = "s3cret-hook";
const SLUG: &str = "yourcompany/sample-app";
const Q: &str =
    r#"{ repository(slug: "yourcompany/sample-app") { latestCommit { sha message } } }"#;

async fn spawn_with_webhooks() -> (TestApp, tempfile::TempDir) {
    spawn_with_safety_net(600.0).await
}

async fn spawn_with_safety_net(every_secs: f64) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("webhook-secret");
    std::fs::write(&path, format!("{SECRET}\n")).unwrap();
    let app = spawn_with(DemoOptions::for_tests(), move |s| {
        let g = s.github.as_mut().unwrap();
        g.webhook_secret_file = Some(path);
        g.safety_net_secs = every_secs;
    })
    .await;
    app.world
        .github
        .register_webhook(&format!("{}/webhooks/github", app.url), SECRET);
    (app, dir)
}

async fn ask(app: &TestApp) -> (String, Value) {
    let r = app
        .http
        .post(format!("{}/graphql", app.url))
        .json(&json!({ "query": Q }))
        .send()
        .await
        .unwrap();
    let cache = r.headers()["x-idp-cache"].to_str().unwrap().to_string();
    let v: Value = r.json().await.unwrap();
    assert!(v["errors"].is_null(), "{v}");
    (cache, v["data"]["repository"]["latestCommit"].clone())
}

/// REST requests for the repository and its branch head (the safety net's GraphQL rounds
/// are not these).
fn rest_asked(app: &TestApp) -> u64 {
    app.world.github.requests_to(&format!("/repos/{SLUG}"))
        + app
            .world
            .github
            .requests_to(&format!("/repos/{SLUG}/commits/main"))
}

async fn deliver_raw(app: &TestApp, signature: Option<String>, body: &str) -> (u16, Value) {
    let mut r = app
        .http
        .post(format!("{}/webhooks/github", app.url))
        .header("content-type", "application/json")
        .header("x-github-event", "push")
        .header("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
        .body(body.to_string());
    if let Some(s) = signature {
        r = r.header("x-hub-signature-256", s);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_push_delivery_makes_the_very_next_answer_show_the_new_commit() {
    let (app, _dir) = spawn_with_webhooks().await;
    let (c1, before) = ask(&app).await;
    let (c2, again) = ask(&app).await;
    assert_eq!((c1.as_str(), c2.as_str()), ("miss", "hit"));
    assert_eq!(before, again);
    let asked = rest_asked(&app);

    let (commit, statuses) = app
        .world
        .github
        .push(SLUG, "Add the webhook receiver", "alice")
        .await
        .unwrap();
    assert_eq!(statuses, [202], "the delivery was accepted");
    let (cache, after) = ask(&app).await;
    assert_eq!(cache, "miss");
    assert_eq!(after["sha"], commit.sha.as_str());
    assert_eq!(after["message"], "Add the webhook receiver");
    assert_eq!(
        rest_asked(&app),
        asked,
        "the payload said it all; GitHub was not asked"
    );
    // And kept again from there.
    assert_eq!(ask(&app).await, ("hit".to_string(), after));

    // GitHub's `ping` on hook creation is answered.
    let statuses = app
        .world
        .github
        .deliver("ping", &json!({"zen": "Keep it logically awesome.", "hook_id": 1, "repository": {"full_name": SLUG}}))
        .await;
    assert_eq!(statuses, [200]);
}

#[tokio::test]
async fn a_delivery_with_a_bad_or_missing_signature_is_refused_and_changes_nothing() {
    let (app, _dir) = spawn_with_webhooks().await;
    let (_, before) = ask(&app).await;
    assert_eq!(ask(&app).await.0, "hit");
    let asked = rest_asked(&app);

    // A forged push naming a commit GitHub never had.
    let forged = push_payload(
        &app.world.git.repo(SLUG).unwrap(),
        before["sha"].as_str().unwrap(),
        &idp_graph::demo::git::Commit {
            sha: "f".repeat(40),
            message: "forged".into(),
            author_name: "Mallory".into(),
            author_login: "mallory".into(),
            author_email: "mallory@example.com".into(),
            date: chrono::Utc::now(),
        },
    )
    .to_string();
    for signature in [
        None,
        Some(sign("wrong secret", forged.as_bytes())),
        Some(sign(SECRET, b"a different body")),
        Some("sha256=".to_string()),
        Some(format!("sha1={}", "0".repeat(40))),
    ] {
        let (status, body) = deliver_raw(&app, signature.clone(), &forged).await;
        assert_eq!(status, 401, "{signature:?}: {body}");
        assert_eq!(body["error"]["code"], "INVALID_SIGNATURE");
    }
    // Nothing changed: the kept answer still stands, GitHub was not asked again.
    assert_eq!(ask(&app).await, ("hit".to_string(), before));
    assert_eq!(rest_asked(&app), asked);

    // Correctly signed but not JSON, or without an event: 400, still nothing changed.
    let (status, _) = deliver_raw(&app, Some(sign(SECRET, b"not json")), "not json").await;
    assert_eq!(status, 400);
    assert_eq!(ask(&app).await.0, "hit");
}

#[tokio::test]
async fn without_a_secret_deliveries_are_not_accepted() {
    let app = spawn_demo().await;
    let body = json!({"repository": {"full_name": SLUG}}).to_string();
    let (status, v) = deliver_raw(&app, Some(sign("anything", body.as_bytes())), &body).await;
    assert_eq!(status, 404, "{v}");
    assert_eq!(v["error"]["code"], "NOT_CONFIGURED");
}

#[tokio::test]
async fn a_push_whose_delivery_never_came_is_caught_by_the_batched_safety_net() {
    let (app, _dir) = spawn_with_safety_net(0.3).await;
    let (_, before) = ask(&app).await;
    // Pushed on GitHub, but the delivery is lost (no hook is told).
    let commit = app
        .world
        .git
        .push(SLUG, "Pushed while the hook was down", "bob")
        .unwrap();
    let rest_before = app
        .world
        .github
        .requests_to(&format!("/repos/{SLUG}/commits/main"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, now) = ask(&app).await;
        if now["sha"] == commit.sha.as_str() {
            assert_eq!(now["message"], "Pushed while the hook was down");
            break;
        }
        assert_eq!(now, before, "only the old or the new head, nothing else");
        assert!(
            std::time::Instant::now() < deadline,
            "the safety net never caught the push"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // It came over GraphQL, in batches, not by asking the branch again over REST.
    assert!(app.world.github.requests_to("/graphql") > 0);
    assert_eq!(
        app.world
            .github
            .requests_to(&format!("/repos/{SLUG}/commits/main")),
        rest_before
    );
    assert!(app.world.github.graphql_used() > 0);
}

/// The next `next` message on `ws`, within ten seconds.
async fn next_event(ws: &mut crate::helpers::Ws) -> Value {
    use futures::StreamExt;
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let m = ws.next().await.unwrap().unwrap();
            let v: Value = serde_json::from_str(m.to_text().unwrap_or("{}")).unwrap_or_default();
            if v["type"] == "next" {
                return v["payload"]["data"]["repositoryEvents"].clone();
            }
            assert_ne!(v["type"], "error", "{v}");
        }
    })
    .await
    .expect("a repository event within 10 s")
}

#[tokio::test]
async fn subscribers_hear_of_pushes_delivered_and_of_pushes_the_safety_net_found() {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let (app, _dir) = spawn_with_safety_net(0.3).await;
    let mut ws = crate::helpers::ws_init(&app.addr.to_string()).await;
    let _ack = next_message(&mut ws).await;
    ws.send(Message::text(json!({"id": "1", "type": "subscribe", "payload": {"query":
        format!(r#"subscription {{ repositoryEvents(slugs: ["{SLUG}"]) {{ type slug branch headSha headMessage cursor }} }}"#)}}).to_string()))
        .await
        .unwrap();
    // Registered once a ping after it is answered.
    ws.send(Message::text(json!({"type": "ping"}).to_string()))
        .await
        .unwrap();
    while !next_message(&mut ws).await.contains("pong") {}

    // Another repository's push is filtered out; ours comes through as PUSH.
    app.world
        .github
        .push("yourcompany/my-app", "elsewhere", "bob")
        .await
        .unwrap();
    let (commit, _) = app
        .world
        .github
        .push(SLUG, "Delivered", "alice")
        .await
        .unwrap();
    let e = next_event(&mut ws).await;
    assert_eq!(
        (
            e["type"].as_str(),
            e["slug"].as_str(),
            e["branch"].as_str(),
            e["headSha"].as_str()
        ),
        (
            Some("PUSH"),
            Some(SLUG),
            Some("main"),
            Some(commit.sha.as_str())
        ),
        "{e}"
    );
    assert_eq!(e["headMessage"], "Delivered");

    // A push whose delivery is lost: the safety net finds it and says so.
    let lost = app.world.git.push(SLUG, "Never delivered", "bob").unwrap();
    let e = next_event(&mut ws).await;
    assert_eq!(e["type"], "DETECTED", "{e}");
    assert_eq!(e["headSha"], lost.sha.as_str());

    // Garbage slugs are refused.
    ws.send(Message::text(
        json!({"id": "2", "type": "subscribe", "payload": {"query":
        r#"subscription { repositoryEvents(slugs: ["not a slug"]) { type } }"#}})
        .to_string(),
    ))
    .await
    .unwrap();
    let refused: Value = serde_json::from_str(&next_message(&mut ws).await).unwrap();
    assert_eq!(refused["id"], "2", "{refused}");
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"],
        "BAD_USER_INPUT"
    );
}

async fn next_message(ws: &mut crate::helpers::Ws) -> String {
    use futures::StreamExt;
    tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
        .await
        .expect("a message within 10 s")
        .unwrap()
        .unwrap()
        .to_text()
        .unwrap_or("")
        .to_string()
}
