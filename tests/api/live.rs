//! Live updates through real clients: graphql-ws (graphql-transport-ws), graphql-sse and the
//! legacy subscriptions-transport-ws, plus the protocol's close codes and cursor resume.

use std::process::Stdio;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{spawn_demo, wait_for, TestApp};

const T: Duration = Duration::from_secs(20);

fn js_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/js")
}

/// Runs `follow.mjs`, waits for its first result, runs `trigger`, and returns the results after.
async fn follow<F, Fut>(
    app: &TestApp,
    transport: &str,
    count: usize,
    query: &str,
    trigger: F,
) -> Vec<Value>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    assert!(
        js_dir().join("node_modules/graphql-ws").is_dir(),
        "npm ci in tests/js first (.ci/run does)"
    );
    let mut child = tokio::process::Command::new("node")
        .arg(js_dir().join("follow.mjs"))
        .args([transport, &app.url, &count.to_string(), query])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(
        &tokio::time::timeout(T, lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .expect("a line"),
    )
    .unwrap();
    assert_eq!(first["ready"], true, "{first}");
    trigger().await;
    let mut out = vec![first["result"].clone()];
    while let Ok(Ok(Some(line))) = tokio::time::timeout(T, lines.next_line()).await {
        let v: Value = serde_json::from_str(&line).unwrap();
        assert!(v.get("error").is_none(), "{transport}: {v}");
        out.push(v);
    }
    let status = child.wait().await.unwrap();
    assert!(
        status.success(),
        "{transport} client exited with {status}: {out:?}"
    );
    out
}

const TRANSITIONS: &str = r#"subscription { healthTransitions(filter: {names: ["sample-app"]}, kinds: [SYNC, HEALTH], initial: true) { type kind from to cursor application { name } entity { ref } } }"#;

async fn deploy_follower(transport: &str) {
    let app = spawn_demo().await;
    app.world
        .argocd
        .push_commit("sample-app", "Feature Y")
        .unwrap();
    wait_for("OutOfSync", T, || async {
        let d = app
            .data(r#"{ application(name: "sample-app") { sync { status } } }"#)
            .await;
        (d["application"]["sync"]["status"] == "OUT_OF_SYNC").then_some(())
    })
    .await;
    let results = follow(&app, transport, 4, TRANSITIONS, || async {
        app.data(r#"mutation { syncApplication(input: {name: "sample-app"}) { auditId } }"#)
            .await;
    })
    .await;
    let events: Vec<(String, String, String, String)> = results
        .iter()
        .map(|r| {
            let t = &r["data"]["healthTransitions"];
            (
                t["type"].as_str().unwrap().into(),
                t["kind"].as_str().unwrap().into(),
                t["from"].as_str().unwrap_or("").into(),
                t["to"].as_str().unwrap().into(),
            )
        })
        .collect();
    let s = |a: &str, b: &str, c: &str, d: &str| {
        (a.to_string(), b.to_string(), c.to_string(), d.to_string())
    };
    assert_eq!(
        events,
        vec![
            s("INITIAL", "SYNC", "", "OUT_OF_SYNC"),
            s("INITIAL", "HEALTH", "", "HEALTHY"),
            s("TRANSITION", "SYNC", "OUT_OF_SYNC", "SYNCED"),
            s("TRANSITION", "HEALTH", "HEALTHY", "PROGRESSING"),
            s("TRANSITION", "HEALTH", "PROGRESSING", "HEALTHY"),
        ],
        "{transport}"
    );
    let last = &results[4]["data"]["healthTransitions"];
    assert_eq!(last["application"]["name"], "sample-app");
    assert_eq!(last["entity"]["ref"], "component:default/sample-app");
    // Cursors are opaque (sealed positions): every transition carries one, of a cursor's shape.
    let cursors: Vec<&str> = results[2..]
        .iter()
        .map(|r| {
            r["data"]["healthTransitions"]["cursor"]
                .as_str()
                .expect("a cursor")
        })
        .collect();
    assert!(
        cursors
            .iter()
            .all(|c| c.len() > 40 && !c.contains(['.', '/', '+', '='])),
        "opaque base64url cursors: {cursors:?}"
    );
}

#[tokio::test]
async fn a_deploy_is_followed_over_graphql_ws() {
    deploy_follower("graphql-ws").await;
}

#[tokio::test]
async fn a_deploy_is_followed_over_graphql_sse() {
    deploy_follower("graphql-sse").await;
}

#[tokio::test]
async fn a_deploy_is_followed_over_the_legacy_protocol() {
    deploy_follower("legacy").await;
}

use crate::helpers::Ws;

async fn connect(app: &TestApp) -> Ws {
    crate::helpers::ws_connect(&app.addr.to_string()).await
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

/// The next JSON message of a type (skipping server pings), or the close code.
async fn next(ws: &mut Ws) -> Result<Value, u16> {
    loop {
        match tokio::time::timeout(T, ws.next())
            .await
            .expect("a message in time")
        {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] != "ping" {
                    return Ok(v);
                }
            }
            Some(Ok(Message::Close(Some(f)))) => return Err(f.code.into()),
            Some(Ok(Message::Close(None))) | None => return Err(1005),
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("{e}"),
        }
    }
}

async fn close_code(ws: &mut Ws) -> u16 {
    loop {
        match next(ws).await {
            Err(code) => return code,
            Ok(_) => continue,
        }
    }
}

#[tokio::test]
async fn graphql_transport_ws_close_codes_follow_the_protocol() {
    let app = spawn_demo().await;
    let sub = |id: &str| json!({"id": id, "type": "subscribe", "payload": {"query": "subscription { entityEvents { cursor } }"}});
    // 4401: subscribe before init.
    let mut ws = connect(&app).await;
    send(&mut ws, sub("1")).await;
    assert_eq!(close_code(&mut ws).await, 4401);
    // 4400: not JSON, unknown type, subscribe without a query.
    for bad in [
        Message::text("{nope"),
        Message::text(json!({"type": "frobnicate"}).to_string()),
        Message::text(json!({"type": "subscribe", "id": "1"}).to_string()),
    ] {
        let mut ws = connect(&app).await;
        send(&mut ws, json!({"type": "connection_init"})).await;
        assert_eq!(next(&mut ws).await.unwrap()["type"], "connection_ack");
        ws.send(bad).await.unwrap();
        assert_eq!(close_code(&mut ws).await, 4400);
    }
    // 4429: a second init.
    let mut ws = connect(&app).await;
    send(&mut ws, json!({"type": "connection_init"})).await;
    assert_eq!(next(&mut ws).await.unwrap()["type"], "connection_ack");
    send(&mut ws, json!({"type": "connection_init"})).await;
    assert_eq!(close_code(&mut ws).await, 4429);
    // 4409: the same id twice while the first is running.
    let mut ws = connect(&app).await;
    send(&mut ws, json!({"type": "connection_init"})).await;
    next(&mut ws).await.unwrap();
    send(&mut ws, sub("dup")).await;
    send(&mut ws, sub("dup")).await;
    assert_eq!(close_code(&mut ws).await, 4409);
    // 4408: no init at all (the server waits 3 s).
    let mut ws = connect(&app).await;
    assert_eq!(close_code(&mut ws).await, 4408);
    // Ping is answered with pong; a validation error is an `error` message, not a close.
    let mut ws = connect(&app).await;
    send(&mut ws, json!({"type": "connection_init"})).await;
    next(&mut ws).await.unwrap();
    send(&mut ws, json!({"type": "ping", "payload": {"x": 1}})).await;
    assert_eq!(
        next(&mut ws).await.unwrap(),
        json!({"type": "pong", "payload": {"x": 1}})
    );
    send(
        &mut ws,
        json!({"id": "q", "type": "subscribe", "payload": {"query": "subscription { nope }"}}),
    )
    .await;
    let e = next(&mut ws).await.unwrap();
    assert_eq!(
        (e["type"].as_str(), e["id"].as_str()),
        (Some("error"), Some("q"))
    );
    // Queries work over the socket too: next, then complete.
    send(&mut ws, json!({"id": "q2", "type": "subscribe", "payload": {"query": "{ applications { totalCount } }"}})).await;
    let n = next(&mut ws).await.unwrap();
    assert_eq!(n["payload"]["data"]["applications"]["totalCount"], 8);
    assert_eq!(
        next(&mut ws).await.unwrap(),
        json!({"id": "q2", "type": "complete"})
    );
}

/// Subscribes to app-2's events; returns the socket and what arrived before the subscription
/// was known to be registered (a resumed subscription's backlog comes at once).
async fn subscribe_app2(app: &TestApp, after: Option<&str>) -> (Ws, Vec<Value>) {
    let mut ws = connect(app).await;
    send(&mut ws, json!({"type": "connection_init"})).await;
    next(&mut ws).await.unwrap();
    let q = "subscription($after: String) { applicationEvents(filter: {names: [\"app-2\"]}, after: $after) { cursor type current { health sync } } }";
    send(&mut ws, json!({"id": "s", "type": "subscribe", "payload": {"query": q, "variables": {"after": after}}})).await;
    // Registered once a ping sent after it is answered.
    send(&mut ws, json!({"type": "ping"})).await;
    let mut early = Vec::new();
    loop {
        let m = next(&mut ws).await.unwrap();
        if m["type"] == "pong" {
            return (ws, early);
        }
        early.push(m);
    }
}

fn event(m: &Value) -> (String, String, String) {
    let e = &m["payload"]["data"]["applicationEvents"];
    assert!(e.is_object(), "{m}");
    (
        e["cursor"].as_str().unwrap().into(),
        e["type"].as_str().unwrap().into(),
        e["current"]["health"].as_str().unwrap_or("").into(),
    )
}

#[tokio::test]
async fn a_reconnect_with_the_last_cursor_loses_no_event() {
    let app = spawn_demo().await;
    let sim = &app.world.argocd;
    let (mut steady, _) = subscribe_app2(&app, None).await;
    let (mut flaky, _) = subscribe_app2(&app, None).await;
    sim.set_health("app-2", "Degraded", Some("one"));
    let first = event(&next(&mut flaky).await.unwrap());
    assert_eq!(first.2, "DEGRADED");
    drop(flaky);
    // While it is away:
    sim.set_health("app-2", "Progressing", None);
    sim.set_health("app-2", "Healthy", None);
    sim.push_commit("app-2", "while away");
    let mut all = Vec::new();
    for _ in 0..4 {
        all.push(event(&next(&mut steady).await.unwrap()));
    }
    let (mut resumed, early) = subscribe_app2(&app, Some(&first.0)).await;
    let mut got = vec![first];
    got.extend(early.iter().map(event));
    while got.len() < 4 {
        got.push(event(&next(&mut resumed).await.unwrap()));
    }
    assert_eq!(
        got, all,
        "the resumed subscriber saw exactly what the steady one saw"
    );
    // A cursor that is not one of ours is a user error on that subscription.
    let mut ws = connect(&app).await;
    send(&mut ws, json!({"type": "connection_init"})).await;
    next(&mut ws).await.unwrap();
    send(&mut ws, json!({"id": "x", "type": "subscribe", "payload": {"query": "subscription { applicationEvents(after: \"yesterday\") { cursor } }"}})).await;
    let m = next(&mut ws).await.unwrap();
    assert_eq!(
        m["payload"]["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{m}"
    );
}

#[tokio::test]
async fn shutdown_ends_every_stream_within_the_grace_period() {
    let mut app = spawn_demo().await;
    let (mut ws, _) = subscribe_app2(&app, None).await;
    let mut legacy_child = tokio::process::Command::new("node")
        .arg(js_dir().join("follow.mjs"))
        .args([
            "legacy",
            &app.url,
            "100",
            "subscription { applicationEvents(initial: true) { type } }",
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(legacy_child.stdout.take().unwrap()).lines();
    assert!(lines.next_line().await.unwrap().unwrap().contains("ready"));
    let started = std::time::Instant::now();
    app.shutdown.cancel();
    assert_eq!(close_code(&mut ws).await, 1001);
    tokio::time::timeout(Duration::from_secs(10), app.server.take().unwrap())
        .await
        .expect("server stops")
        .unwrap()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    // The legacy client sees its socket end.
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("disconnected") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(ended, Ok(true), "legacy client told of the end");
}

#[tokio::test]
async fn a_stalled_subscriber_gets_resync_required_while_others_keep_receiving() {
    let app = crate::helpers::spawn_with(idp_graph::demo::DemoOptions::for_tests(), |s| {
        s.events.capacity = 256;
        s.events.replay = 256;
    })
    .await;
    // Heavy events, so a client that stops reading fills its socket quickly.
    let heavy: String = (0..8)
        .map(|i| format!("a{i}: application {{ name annotations {{ key value }} labels {{ key value }} history {{ id revision deployedAt source {{ repoURL path }} }} resources {{ kind name status health }} }}"))
        .collect::<Vec<_>>()
        .join(" ");
    let q = format!("subscription {{ applicationEvents {{ cursor type {heavy} }} }}");
    let sub = |id: &str| json!({"id": id, "type": "subscribe", "payload": {"query": q.clone()}});
    // The stalled client: a 4 KiB receive buffer, and it never reads after subscribing.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(app.addr).await.unwrap();
    let mut req = format!("ws://{}/graphql/ws", app.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut stalled, _) =
        tokio_tungstenite::client_async(req, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await
            .unwrap();
    send(&mut stalled, json!({"type": "connection_init"})).await;
    next(&mut stalled).await.unwrap();
    send(&mut stalled, sub("s")).await;
    send(&mut stalled, json!({"type": "ping"})).await;
    assert_eq!(next(&mut stalled).await.unwrap()["type"], "pong");
    let mut healthy = connect(&app).await;
    send(&mut healthy, json!({"type": "connection_init"})).await;
    next(&mut healthy).await.unwrap();
    send(&mut healthy, json!({"id": "h", "type": "subscribe", "payload": {"query": "subscription { applicationEvents { cursor type } }"}})).await;
    send(&mut healthy, json!({"type": "ping"})).await;
    assert_eq!(next(&mut healthy).await.unwrap()["type"], "pong");

    // A storm of changes while the stalled client does not read; the healthy one keeps up.
    let changes = 3000usize;
    let storm = {
        let sim = app.world.argocd.clone();
        tokio::spawn(async move {
            for i in 0..changes {
                sim.set_health(
                    "app-3",
                    if i % 2 == 0 { "Degraded" } else { "Healthy" },
                    None,
                );
                if i % 50 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    let mut received = 0usize;
    let mut resyncs_healthy = 0usize;
    while received < changes {
        let m = next(&mut healthy).await.unwrap();
        match m["payload"]["data"]["applicationEvents"]["type"].as_str() {
            Some("RESYNC_REQUIRED") => resyncs_healthy += 1,
            Some(_) => received += 1,
            None => {}
        }
    }
    storm.await.unwrap();
    assert_eq!(
        resyncs_healthy, 0,
        "the healthy subscriber was never slowed into a resync"
    );
    // The stalled one, when it reads again, finds an explicit RESYNC_REQUIRED — never a silent
    // gap. Its subscription runs in a shared execution (nothing else is like it), so the signal
    // is the protocol's `error` message with that code, which ends the subscription: the
    // client resubscribes from its last cursor (`idp-graph watch` and the portal do).
    let mut seen = 0usize;
    let mut last_cursor = None;
    loop {
        let m = next(&mut stalled).await.unwrap();
        seen += 1;
        if m["type"] == "error" {
            assert_eq!(m["id"], "s");
            assert_eq!(
                m["payload"][0]["extensions"]["code"], "RESYNC_REQUIRED",
                "{m}"
            );
            break;
        }
        if m["payload"]["data"]["applicationEvents"]["type"] == "RESYNC_REQUIRED" {
            break;
        }
        last_cursor = m["payload"]["data"]["applicationEvents"]["cursor"]
            .as_str()
            .map(str::to_string);
        assert!(seen < changes, "no RESYNC_REQUIRED after {seen} events");
    }
    assert!(
        seen < changes,
        "it lost events ({seen} seen before the resync)"
    );
    if let Some(c) = &last_cursor {
        assert!(!c.is_empty(), "the events before it carried cursors");
    }
}

#[tokio::test]
async fn a_cursor_from_another_replica_gets_resync_required_never_a_wrong_event() {
    let app = spawn_demo().await;
    let (mut ws, _) = subscribe_app2(&app, None).await;
    app.world
        .argocd
        .set_health("app-2", "Degraded", Some("replica test"));
    let (cursor, _, health) = event(&next(&mut ws).await.unwrap());
    assert_eq!(health, "DEGRADED");
    // A second replica over the same upstreams: its own process, its own event sequence.
    let other = crate::helpers::serve_process(&app.world, "");
    crate::helpers::wait_ready_at(&other.base, T).await;
    let mut ws2 = crate::helpers::ws_init(other.base.trim_start_matches("http://")).await;
    next(&mut ws2).await.unwrap(); // ack
    let q = "subscription($after: String) { applicationEvents(filter: {names: [\"app-2\"]}, after: $after) { cursor type current { health sync } } }";
    send(&mut ws2, json!({"id": "s", "type": "subscribe", "payload": {"query": q, "variables": {"after": cursor}}})).await;
    let first = next(&mut ws2).await.unwrap();
    assert_eq!(
        first["payload"]["data"]["applicationEvents"]["type"], "RESYNC_REQUIRED",
        "the other replica cannot know what follows this cursor: {first}"
    );
    // Then it follows live, with its own cursors.
    app.world.argocd.set_health("app-2", "Healthy", None);
    let (cursor2, kind, health) = loop {
        let e = event(&next(&mut ws2).await.unwrap());
        if e.2 == "HEALTHY" {
            break e;
        }
    };
    assert_ne!(kind, "RESYNC_REQUIRED");
    assert_ne!(cursor2, cursor, "its own cursors");
    assert_eq!(health, "HEALTHY");
}
