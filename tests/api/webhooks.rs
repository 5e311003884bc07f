//! GitHub webhooks: the simulated GitHub delivers `push` events (GitHub's headers, payload and
//! `X-Hub-Signature-256`) to `POST /webhooks/github`; a verified delivery makes the very next
//! answer show the new commit (TTLs are ten times longer with webhooks, so only the delivery can
//! explain it); a delivery with a bad or missing signature is refused and changes nothing.

use idp_graph::demo::github::{push_payload, sign};
use idp_graph::demo::DemoOptions;
use serde_json::{json, Value};

use crate::helpers::{spawn_demo, spawn_with, TestApp};

const SECRET: &str = "s3cret-hook";
const SLUG: &str = "yourcompany/sample-app";
const Q: &str =
    r#"{ repository(slug: "yourcompany/sample-app") { latestCommit { sha message } } }"#;

async fn spawn_with_webhooks() -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("webhook-secret");
    std::fs::write(&path, format!("{SECRET}\n")).unwrap();
    let app = spawn_with(DemoOptions::for_tests(), move |s| {
        s.github.as_mut().unwrap().webhook_secret_file = Some(path);
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
    let asked = app.world.github.faults.request_count();

    // A forged push naming a commit GitHub never had.
    let forged = push_payload(
        SLUG,
        "main",
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
    assert_eq!(app.world.github.faults.request_count(), asked);

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
