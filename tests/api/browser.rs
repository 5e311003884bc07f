//! The playground and the portal in a real headless Chromium (Debian's `chromium`, driven by
//! `tests/browser/run.mjs` through playwright-core), against the demo with every other host
//! blocked. Each scenario's findings come back as JSON and are checked here against what the
//! GraphQL API says.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use idp_graph::demo::DemoOptions;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::helpers::{post_as, spawn_with, wait_for, TestApp};

fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

fn chromium() -> String {
    let path = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&path).exists(),
        "no Chromium at {path}: apt-get install chromium (.ci/run does), or set CHROMIUM"
    );
    assert!(
        browser_dir().join("node_modules/playwright-core").is_dir(),
        "npm ci in tests/browser first (.ci/run does)"
    );
    path
}

/// Runs one scenario; `on_wait` is called (and awaited) each time the page asks the test to
/// change the world. Returns the scenario's final JSON, which must say `ok`.
async fn scenario<F, Fut>(app: &TestApp, name: &str, token: Option<&str>, mut on_wait: F) -> Value
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(browser_dir().join("run.mjs"))
        .arg(name)
        .arg(&app.url)
        .env("CHROMIUM", chromium())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    if let Some(t) = token {
        cmd.arg(t);
    }
    let mut child = cmd.spawn().expect("node runs");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        let line = tokio::time::timeout(Duration::from_secs(90), lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("{name}: the browser said nothing for 90 s"))
            .unwrap()
            .unwrap_or_else(|| panic!("{name}: run.mjs ended without a result"));
        let v: Value = serde_json::from_str(&line).unwrap_or(json!({ "log": line }));
        if let Some(w) = v.get("wait").and_then(Value::as_str) {
            on_wait(w.to_string()).await;
            stdin.write_all(b"go\n").await.unwrap();
            continue;
        }
        if v.get("ok").is_some() {
            assert_eq!(v["ok"], true, "{name}: {v}");
            assert_eq!(v["foreign"], json!([]), "{name} asked other hosts: {v}");
            assert_eq!(v["errors"], json!([]), "{name}: page errors: {v}");
            return v;
        }
    }
}

async fn no_wait(_: String) {}

async fn demo() -> TestApp {
    spawn_with(
        DemoOptions {
            auth: true,
            ..DemoOptions::for_tests()
        },
        |_| {},
    )
    .await
}

fn alice(app: &TestApp) -> String {
    app.world.persona_tokens()[0].2.clone()
}

#[tokio::test]
async fn the_playground_runs_queries_and_subscriptions_with_every_other_host_blocked() {
    let app = demo().await;
    let v = scenario(&app, "playground", None, no_wait).await;
    let csp = v["csp"].as_str().unwrap();
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert_eq!(v["tabCount"], 6, "the examples open in tabs");
    assert_eq!(v["queryHasData"], true);
    assert!(v["subscriptionEvents"].as_u64().unwrap() >= 2, "{v}");
    assert_eq!(v["liveShowsEvent"], true);
}

#[tokio::test]
async fn the_catalog_lists_the_demo_components_with_their_badges_and_filters() {
    let app = demo().await;
    let truth = app
        .data(r#"{ entities(filter: {kind: "Component"}, first: 100) { nodes { ref owner { name } ... on Component { applications { name sync { status } health { status } } } } } }"#)
        .await;
    let v = scenario(&app, "catalog", None, no_wait).await;
    let want: Vec<Value> = truth["entities"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            json!({
                "ref": e["ref"], "owner": e["owner"]["name"],
                "badges": e["applications"].as_array().unwrap().iter()
                    .map(|a| json!({"app": a["name"], "sync": a["sync"]["status"], "health": a["health"]["status"]}))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    assert!(want.len() >= 8);
    assert_eq!(v["all"], json!(want));
    let platform: Vec<&Value> = want
        .iter()
        .filter(|e| e["owner"] == "platform-team")
        .collect();
    assert_eq!(v["platform"], json!(platform));
    let refs: Vec<&str> = v["text"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ref"].as_str().unwrap())
        .collect();
    assert_eq!(refs, ["component:default/ingress-nginx"]);
    assert!(v["url"].as_str().unwrap().contains("owner=platform-team"));
}

#[tokio::test]
async fn the_service_page_shows_all_four_cards_with_the_demos_data() {
    let app = demo().await;
    let t = app
        .data(r#"{ entity(ref: "component:default/sample-app") { owner { name } ... on Component { system { name } githubSlug
            applications { sync { status commit { shortSha title } } health { status } history { historyId } }
            kubernetes { deployments { name } pods { name } }
            repository { pullRequests(first: 5) { number } workflowRuns(first: 5) { runId } } } } }"#)
        .await["entity"]
        .clone();
    let v = scenario(&app, "service", None, no_wait).await;
    assert_eq!(
        v["cards"],
        json!(["Overview", "ArgoCD", "Kubernetes", "GitHub"])
    );
    assert_eq!(v["owner"], t["owner"]["name"]);
    assert_eq!(v["system"], t["system"]["name"]);
    assert_eq!(v["repository"], t["githubSlug"]);
    let app0 = &t["applications"][0];
    let revision = v["revision"].as_str().unwrap();
    assert!(
        revision.contains(app0["sync"]["commit"]["shortSha"].as_str().unwrap())
            && revision.contains(app0["sync"]["commit"]["title"].as_str().unwrap()),
        "{revision}"
    );
    assert_eq!(v["sync"], app0["sync"]["status"]);
    assert_eq!(v["health"], app0["health"]["status"]);
    assert_eq!(
        v["history"].as_u64().unwrap() as usize,
        app0["history"].as_array().unwrap().len()
    );
    let deployments: Vec<&Value> = t["kubernetes"]["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["name"])
        .collect();
    assert_eq!(v["deployments"], json!(deployments));
    assert!(v["rollout"].as_str().unwrap().contains("2/2 updated"));
    assert_eq!(
        v["pods"].as_u64().unwrap() as usize,
        t["kubernetes"]["pods"].as_array().unwrap().len()
    );
    let prs: Vec<&Value> = t["repository"]["pullRequests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["number"])
        .collect();
    assert_eq!(v["prs"], json!(prs));
    assert_eq!(
        v["runs"].as_u64().unwrap() as usize,
        t["repository"]["workflowRuns"].as_array().unwrap().len()
    );
    // Anonymous callers are read-only: the server says so, and no action is offered.
    assert_eq!(v["actions"], json!([]));
}

#[tokio::test]
async fn clicking_sync_changes_the_argocd_card_live_without_a_reload() {
    let app = demo().await;
    let token = alice(&app);
    let v = scenario(&app, "sync", Some(&token), no_wait).await;
    assert_eq!(v["sameDocument"], true, "the page reloaded: {v}");
    assert_eq!(
        v["after"].as_u64().unwrap(),
        v["before"].as_u64().unwrap() + 1,
        "{v}"
    );
    let phases: BTreeSet<&str> = v["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(phases.contains("SUCCEEDED"), "{v}");
    // And it was alice who synced, by the audit log.
    let (_, _, log) = post_as(
        &app,
        Some(&token),
        "{ auditLog { principal action target result } }",
    )
    .await;
    assert!(
        log["data"]["auditLog"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["action"] == "syncApplication"
                && r["principal"] == "user:default/alice"
                && r["result"] == "ok"),
        "{log}"
    );
}

#[tokio::test]
async fn the_template_flow_creates_a_component_whose_page_then_opens() {
    let app = demo().await;
    let v = scenario(&app, "template", Some(&alice(&app)), no_wait).await;
    assert_eq!(v["invalid"], 1, "the pattern is checked before sending");
    assert_eq!(v["done"], "ok");
    assert!(v["logLines"].as_u64().unwrap() >= 3, "{v}");
    assert!(v["url"]
        .as_str()
        .unwrap()
        .ends_with("/ui/entity/component/default/browser-svc"));
    assert_eq!(v["title"], "browser-svc");
    let d = app
        .data(r#"{ entity(ref: "component:default/browser-svc") { ref } }"#)
        .await;
    assert_eq!(d["entity"]["ref"], "component:default/browser-svc");
}

#[tokio::test]
async fn a_dropped_websocket_reconnects_and_the_page_catches_up() {
    let app = demo().await;
    let v = scenario(&app, "reconnect", None, |_| async {
        // While the page is offline, sample-app degrades; the server has the event before the
        // page comes back, so only resuming from its cursor can bring it.
        app.world
            .argocd
            .set_health("sample-app", "Degraded", Some("browser test"));
        wait_for("the server to see it", Duration::from_secs(10), || async {
            let d = app
                .data(r#"{ application(name: "sample-app") { health { status } } }"#)
                .await;
            (d["application"]["health"]["status"] == "DEGRADED").then_some(())
        })
        .await;
    })
    .await;
    assert_eq!(v["before"], "HEALTHY");
    assert_eq!(v["sameDocument"], true);
}

/// The playground's example tabs are the README's tour: each must run as written.
#[tokio::test]
async fn every_playground_example_runs() {
    let app = demo().await;
    let token = alice(&app);
    let source = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ui/src/examples.js"),
    )
    .unwrap();
    let examples: Vec<String> = source
        .split("query: `")
        .skip(1)
        .map(|rest| rest.split("`,\n").next().unwrap().replace("\\`", "`"))
        .collect();
    assert_eq!(examples.len(), 6);
    for doc in &examples {
        if doc.contains("subscription ") {
            // Over a websocket: the first event arrives (`initial: true`).
            let mut ws = crate::helpers::ws_init(&app.addr.to_string()).await;
            use futures::{SinkExt, StreamExt};
            ws.send(tokio_tungstenite::tungstenite::Message::text(
                json!({"id": "1", "type": "subscribe", "payload": {"query": doc}}).to_string(),
            ))
            .await
            .unwrap();
            let first = loop {
                let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
                    .await
                    .unwrap()
                    .unwrap()
                    .unwrap();
                if let tokio_tungstenite::tungstenite::Message::Text(t) = m {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    if v["type"] == "next" || v["type"] == "error" {
                        break v;
                    }
                }
            };
            assert_eq!(first["type"], "next", "{doc}: {first}");
            assert!(first["payload"]["errors"].is_null(), "{doc}: {first}");
        } else {
            let (status, _, body) = post_as(&app, Some(&token), doc).await;
            assert_eq!(status, 200, "{doc}: {body}");
            assert!(body["errors"].is_null(), "{doc}: {body}");
        }
    }
}
