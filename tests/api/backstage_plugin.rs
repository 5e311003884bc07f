//! The idp-graph Backstage plugin (`plugins/backstage`) end to end: a real Backstage app (new
//! frontend system, built by `@backstage/cli` in `plugins/backstage/e2e-app`) served by the
//! real Backstage backend (`tests/peers/backstage`: app, catalog, auth with the guest provider
//! signing in as carol of app-team), idp-graph using that backend as its catalog and identity
//! provider and the simulations for ArgoCD, Kubernetes and GitHub, in trusted-documents mode
//! with the plugin's own manifest. Debian's headless Chromium drives the app
//! (`tests/browser/backstage.mjs`); what it reads is checked here against the GraphQL API.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use idp_graph::auth::{AuthMode, AuthSettings, IssuerSettings, JwtSettings};
use idp_graph::http::persisted::{PersistedMode, PersistedSettings};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::backstage_real::{free_port, guest_token, start_peer_as, Reaper};
use crate::helpers::{wait_for, wait_ready_at, TestApp};

const TOKEN: &str = "idp-graph-plugin-e2e-token-5d0a";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Everything this test needs that `cargo` does not build; says how to get what is missing.
fn prerequisites() -> (PathBuf, String) {
    let app = repo().join("plugins/backstage/e2e-app");
    assert!(
        app.join("dist/index.html").is_file(),
        "no built Backstage app at {}: run `npm ci && npm run build:app` in plugins/backstage (.ci/run does)",
        app.display()
    );
    assert!(
        repo()
            .join("tests/browser/node_modules/playwright-core")
            .is_dir(),
        "npm ci in tests/browser first (.ci/run does)"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "no Chromium at {chromium}: apt-get install chromium (.ci/run does), or set CHROMIUM"
    );
    (app, chromium)
}

/// Starts the real Backstage backend serving the built app, with the guest provider signing
/// in as carol and `discovery.endpoints` pointing the plugin at idp-graph.
fn start_backstage(port: u16, app: &std::path::Path, graph_url: &str) -> Reaper {
    let discovery = json!([{ "target": graph_url, "plugins": ["idp-graph"] }]).to_string();
    let pid = start_peer_as(
        port,
        TOKEN,
        "catalog,auth,app",
        &[
            ("PEER_APP", app.as_os_str()),
            (
                "APP_CONFIG_auth_providers_guest_userEntityRef",
                OsStr::new("user:default/carol"),
            ),
            ("APP_CONFIG_discovery_endpoints", OsStr::new(&discovery)),
        ],
    );
    Reaper(vec![pid], vec![])
}

/// One of the plugin's own operations as carol, by its hash: idp-graph runs in trusted-documents
/// mode with the plugin's manifest, so nothing else would run.
async fn as_carol(app: &TestApp, token: &str, operation: &str, variables: Value) -> Value {
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(manifest_path()).expect("the plugin's manifest"),
    )
    .unwrap();
    let id = manifest["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == operation)
        .unwrap_or_else(|| panic!("{operation} is in the manifest"))["id"]
        .clone();
    let body: Value = app
        .http
        .post(format!("{}/graphql", app.url))
        .bearer_auth(token)
        .json(&json!({
            "operationName": operation,
            "variables": variables,
            "extensions": { "persistedQuery": { "version": 1, "sha256Hash": id } },
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body.get("errors").is_none(), "{operation}: {body}");
    body["data"].clone()
}

fn manifest_path() -> PathBuf {
    repo().join("plugins/backstage/plugin/persisted-operations.json")
}

/// sample-app as the plugin's own query shows it to carol.
async fn sample_app(app: &TestApp, token: &str) -> Value {
    let d = as_carol(
        app,
        token,
        "IdpGraphEntity",
        json!({ "ref": "component:default/sample-app" }),
    )
    .await;
    d["entity"]["applications"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["name"] == "sample-app"))
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn the_plugin_in_a_real_backstage_app_shows_live_state_with_carols_visibility() {
    let (app_dir, chromium) = prerequisites();
    let backstage_port = free_port();
    let backstage = format!("http://127.0.0.1:{backstage_port}");

    // idp-graph first (its port goes into Backstage's discovery config), on the real
    // Backstage as catalog and identity provider, the simulations for the rest.
    let opts = idp_graph::demo::DemoOptions::for_tests();
    let world = idp_graph::demo::DemoWorld::start(&opts).await.unwrap();
    let (mut settings, mut secrets) = world.settings(&opts);
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.shutdown_grace_secs = 3;
    if let Some(b) = settings.backstage.as_mut() {
        b.url = backstage.clone();
        b.poll_interval_secs = 1.0;
    }
    secrets.insert(
        idp_graph::state::SourceKind::Backstage,
        "backstage",
        TOKEN.to_string().into(),
    );
    settings.auth = AuthSettings {
        mode: AuthMode::Jwt,
        anonymous: None,
        jwt: JwtSettings {
            issuers: vec![IssuerSettings::backstage(&backstage)],
        },
        // The seed's boundary: carol (app-team) sees the applications project, acts on what
        // app-team owns.
        policy: None,
    };
    // The app's origin may call idp-graph.
    settings.http.cors_origins = vec![backstage.clone()];
    // Trusted documents: only the plugin's shipped manifest runs (the test's own checks use
    // the same operations).
    settings.persisted = PersistedSettings {
        apq: false,
        manifest: Some(manifest_path()),
        mode: PersistedMode::Trusted,
    };
    let app = crate::helpers::spawn_app(settings, secrets, world).await;
    let graph = app.url.clone();

    let _peer = start_backstage(backstage_port, &app_dir, &graph);
    wait_ready_at(&graph, Duration::from_secs(60)).await;
    let token = guest_token(&backstage, "user:default/carol", "group:default/app-team").await;
    // idp-graph has read the real catalog: sample-app is known, with its application.
    wait_for(
        "idp-graph to hold the real catalog",
        Duration::from_secs(30),
        || async { (sample_app(&app, &token).await["name"] == "sample-app").then_some(()) },
    )
    .await;

    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("backstage-card.png");
    let mut child = tokio::process::Command::new("node")
        .arg(repo().join("tests/browser/backstage.mjs"))
        .arg(&backstage)
        .arg(&graph)
        .env("CHROMIUM", chromium)
        .env("SCREENSHOT", &screenshot)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let result = loop {
        let line = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
            .await
            .expect("the browser said nothing for 120 s")
            .unwrap()
            .expect("backstage.mjs ended without a result");
        let v: Value = serde_json::from_str(&line).unwrap_or(json!({ "log": line }));
        match v.get("wait").and_then(Value::as_str) {
            Some("push") => {
                // The card shows what the API shows.
                let truth = sample_app(&app, &token).await;
                let a = &truth;
                let seen = &v["initial"];
                assert_eq!(seen["sync"], a["sync"]["status"], "{v} vs {truth}");
                assert_eq!(seen["health"], a["health"]["status"], "{v} vs {truth}");
                assert_eq!(
                    seen["title"], a["sync"]["commit"]["title"],
                    "{v} vs {truth}"
                );
                let revision = seen["revision"].as_str().unwrap();
                assert!(
                    revision.contains(a["sync"]["commit"]["shortSha"].as_str().unwrap()),
                    "{revision} vs {truth}"
                );
                assert_eq!(
                    seen["actions"],
                    json!(["sync", "refresh"]),
                    "carol may act: {v}"
                );
                app.world
                    .argocd
                    .push_commit("sample-app", "e2e: follow this commit")
                    .expect("sample-app exists");
            }
            Some("sync") => {
                let d = as_carol(
                    &app,
                    &token,
                    "IdpGraphSync",
                    json!({ "name": "sample-app" }),
                )
                .await;
                assert!(d["syncApplication"]["auditId"].is_number(), "{d}");
            }
            Some("argocd-down") => {
                app.world.argocd.faults.set_down(true);
                app.world.argocd.drop_streams();
                wait_for(
                    "the API to say ArgoCD is down",
                    Duration::from_secs(30),
                    || async {
                        let d = as_carol(&app, &token, "IdpGraphSources", json!({})).await;
                        d["sources"]
                            .as_array()?
                            .iter()
                            .any(|s| s["kind"] == "ARGOCD" && s["connected"] == false)
                            .then_some(())
                    },
                )
                .await;
            }
            Some(other) => panic!("unknown wait {other}: {v}"),
            None if v.get("ok").is_some() => break v,
            None => {}
        }
        stdin.write_all(b"go\n").await.unwrap();
    };
    assert_eq!(result["ok"], true, "{result}");
    eprintln!(
        "backstage plugin e2e: sync reached the card in {} ms, ArgoCD down named in {} ms, {} GraphQL POSTs",
        result["syncSeenMs"], result["downSeenMs"], result["graphRequests"]["total"]
    );
    assert_eq!(result["foreign"], json!([]), "asked other hosts: {result}");
    assert_eq!(result["errors"], json!([]), "page errors: {result}");

    // Live: the pushed commit, then the sync, reached the card without a reload.
    assert_eq!(
        result["pushed"]["title"], "e2e: follow this commit",
        "{result}"
    );
    assert_eq!(result["synced"]["sync"], "SYNCED", "{result}");
    assert_eq!(result["sameDocument"], true, "the page reloaded: {result}");
    let seen_ms = result["syncSeenMs"].as_u64().unwrap();
    assert!(
        seen_ms <= 5_000,
        "the sync took {seen_ms} ms to reach the card"
    );
    let after = sample_app(&app, &token).await;
    assert_eq!(after["sync"]["status"], "SYNCED");
    assert_eq!(result["synced"]["title"], after["sync"]["commit"]["title"]);

    // carol is not shown the platform's argocd app, and is offered no action there; the card
    // says it is not shown to her rather than that it does not exist.
    assert_eq!(result["argocd"]["actions"], json!([]), "{result}");
    assert_eq!(result["argocd"]["apps"], json!([]), "{result}");
    assert!(
        result["argocd"]["hidden"]
            .as_str()
            .unwrap()
            .contains("not shown to you: argocd"),
        "{result}"
    );

    // The tab shows what the API shows: every history entry, every pod, the open pull
    // requests; carol may sync, refresh, roll back and restart sample-app's workloads.
    let tab = &result["tab"];
    assert_eq!(
        tab["history"].as_u64().unwrap() as usize,
        after["history"].as_array().unwrap().len(),
        "{result}"
    );
    assert_eq!(
        tab["pods"].as_u64().unwrap() as usize,
        after["workloads"]["pods"].as_array().unwrap().len(),
        "{result}"
    );
    assert!(tab["pods"].as_u64().unwrap() >= 1, "{result}");
    assert!(!tab["prs"].as_array().unwrap().is_empty(), "{result}");
    assert_eq!(
        tab["actions"],
        json!(["refresh", "restart", "rollback", "sync"]),
        "{result}"
    );

    assert_eq!(tab["refresh"]["outcome"], "ok", "{result}");

    // ArgoCD down: named, and the last known state kept.
    let down = &result["down"];
    assert!(
        down["notice"]
            .as_str()
            .unwrap()
            .starts_with("ArgoCD (main) is unavailable: showing the last known state"),
        "{result}"
    );
    assert_eq!(down["sync"], "SYNCED", "{result}");
    assert_eq!(down["health"], result["beforeDown"]["health"], "{result}");
    assert_eq!(down["title"], "e2e: follow this commit", "{result}");
    assert!(
        down["stale"]
            .as_str()
            .is_some_and(|s| s.contains("last known, observed")),
        "the app's own line says its state is the last known one: {result}"
    );

    // Every request carried carol's Backstage token, as a persisted-operation hash; the
    // websocket's connection_init carried it too.
    let g = &result["graphRequests"];
    assert!(g["total"].as_u64().unwrap() >= 2, "{result}");
    assert_eq!(g["withToken"], g["total"], "{result}");
    assert_eq!(g["persisted"], g["total"], "{result}");
    assert_eq!(result["wsInitHasToken"], true, "{result}");
}
