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
    let epoch = |v: &Value| {
        v["cursor"]
            .as_str()
            .unwrap()
            .split_once('-')
            .unwrap()
            .0
            .to_string()
    };
    assert_ne!(epoch(&first), epoch(&third));
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
