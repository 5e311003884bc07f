//! `idp-graph watch`: one JSON line per event, and a reconnect that resumes from its cursor.

use std::process::Stdio;
use std::time::Duration;

use idp_graph::app::App;
use idp_graph::demo::{DemoOptions, DemoWorld};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

const Q: &str = r#"subscription($after: String) { applicationEvents(filter: {names: ["app-2"]}, after: $after) { cursor type current { health } } }"#;

/// Flips app-2's health every 100 ms until the watcher prints a line.
async fn next_line(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    world: &DemoWorld,
) -> Value {
    let mut healthy = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        tokio::select! {
            line = lines.next_line() => return serde_json::from_str(&line.unwrap().expect("watch printed a line")).unwrap(),
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                assert!(tokio::time::Instant::now() < deadline, "no event printed");
                healthy = !healthy;
                world.argocd.set_health("app-2", if healthy { "Healthy" } else { "Degraded" }, None);
            }
        }
    }
}

#[tokio::test]
async fn watch_prints_json_lines_and_resumes_after_the_server_restarts() {
    let opts = DemoOptions::for_tests();
    let world = DemoWorld::start(&opts).await.unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (mut settings, secrets) = world.settings(&opts);
    settings.listen = format!("127.0.0.1:{port}").parse().unwrap();
    settings.shutdown_grace_secs = 2;
    let app = App::build(settings.clone(), secrets.clone()).await.unwrap();
    let stop = app.shutdown_token();
    let server = tokio::spawn(app.run_until_stopped());

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_idp-graph"))
        .args([
            "watch",
            "--url",
            &format!("http://127.0.0.1:{port}"),
            "--max-events",
            "3",
            Q,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = next_line(&mut lines, &world).await;
    assert_eq!(first["type"], "MODIFIED", "{first}");

    // Restart the server on the same port: a new process has a new event epoch.
    stop.cancel();
    server.await.unwrap().unwrap();
    let app = App::build(settings, secrets).await.unwrap();
    let stop = app.shutdown_token();
    let server = tokio::spawn(app.run_until_stopped());

    let second = next_line(&mut lines, &world).await;
    assert_eq!(
        second["type"], "RESYNC_REQUIRED",
        "the old cursor cannot be replayed: {second}"
    );
    let third = next_line(&mut lines, &world).await;
    assert_eq!(third["type"], "MODIFIED");
    // Another process: its own cursors (opaque, so compared whole).
    assert_ne!(first["cursor"], third["cursor"]);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exits 0 after --max-events");
    stop.cancel();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn watch_refuses_bad_input_with_exit_64() {
    for args in [
        vec!["watch", "subscription {"],
        vec![
            "watch",
            "--url",
            "ftp://x",
            "subscription { entityEvents { cursor } }",
        ],
        vec![
            "watch",
            "--variables",
            "[1]",
            "subscription { entityEvents { cursor } }",
        ],
    ] {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_idp-graph"))
            .args(&args)
            .output()
            .await
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(64),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Runs `watch --persisted --max-events 1 Q` against `app` and returns its one line.
async fn watch_persisted_once(app: &crate::helpers::TestApp) -> Value {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_idp-graph"))
        .args([
            "watch",
            "--persisted",
            "--url",
            &app.url,
            "--max-events",
            "1",
            Q,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = next_line(&mut lines, &app.world).await;
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    line
}

/// The APQ answer for `Q` sent as its hash alone over POST.
async fn hash_only_code(app: &crate::helpers::TestApp) -> String {
    let hash = idp_graph::http::persisted::sha256_hex(Q);
    let body: Value = app
        .http
        .post(format!("{}/graphql", app.url))
        .json(&serde_json::json!({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": hash}}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    crate::helpers::first_code(&body)
}

#[tokio::test]
async fn watch_persisted_sends_the_hash_and_the_text_only_when_asked() {
    // APQ: unknown hash → the text follows once and registers it.
    let app = crate::helpers::spawn_demo().await;
    assert_eq!(hash_only_code(&app).await, "PERSISTED_QUERY_NOT_FOUND");
    let line = watch_persisted_once(&app).await;
    assert!(line["cursor"].is_string(), "{line}");
    // Registered: hash alone now names the subscription (refused over POST for what it is).
    assert_eq!(hash_only_code(&app).await, "BAD_REQUEST");

    // Trusted documents: the hash alone is all a server in that mode accepts.
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("manifest.json");
    std::fs::write(
        &manifest,
        serde_json::json!({"format": "apollo-persisted-query-manifest", "version": 1,
               "operations": [{"id": "w", "name": "Watch", "type": "subscription", "body": Q}]})
        .to_string(),
    )
    .unwrap();
    let trusted = crate::helpers::spawn_with(DemoOptions::for_tests(), move |s| {
        s.persisted.manifest = Some(manifest);
        s.persisted.apq = false;
        s.persisted.mode = idp_graph::http::persisted::PersistedMode::Trusted;
    })
    .await;
    let line = watch_persisted_once(&trusted).await;
    assert!(line["cursor"].is_string(), "{line}");
}
