//! `workloadEvents`: pods and Warning events in trouble reach subscribers, joined to their
//! application, component and owner, and only those who may see the namespace.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::auth::spawn_demo_auth;
use crate::helpers::{next_for, Ws};

const Q: &str = r#"subscription($kinds: [WorkloadEventType!]) {
  workloadEvents(kinds: $kinds) {
    cursor type cluster namespace objectKind objectName container reason message count
    pod { name } applications { name project } entities { ref } owners
  }
}"#;

/// A graphql-transport-ws subscription to `workloadEvents` as `token`'s bearer.
async fn subscribe(addr: &str, token: &str, kinds: Value) -> Ws {
    let mut ws = crate::helpers::ws_connect(addr).await;
    ws.send(Message::text(
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}})
            .to_string(),
    ))
    .await
    .unwrap();
    loop {
        let m = ws.next().await.unwrap().unwrap();
        if m.to_text().unwrap().contains("connection_ack") {
            break;
        }
    }
    ws.send(Message::text(
        json!({"id": "w", "type": "subscribe", "payload": {"query": Q, "variables": {"kinds": kinds}}})
            .to_string(),
    ))
    .await
    .unwrap();
    ws
}

/// Events until one about `namespace` arrives (others are collected too).
async fn until_namespace(ws: &mut Ws, namespace: &str) -> (Value, Vec<Value>) {
    let mut seen = Vec::new();
    loop {
        let ev = next_for(ws, "w").await["data"]["workloadEvents"].clone();
        if ev["namespace"] == namespace {
            return (ev, seen);
        }
        seen.push(ev);
    }
}

#[tokio::test]
async fn a_crash_looping_pod_reaches_who_may_see_it_with_its_app_component_and_owner() {
    let (app, who) = spawn_demo_auth().await;
    let token = |n: &str| who.iter().find(|(p, _)| p == n).unwrap().1.clone().unwrap();
    let addr = app.addr.to_string();
    let mut alice = subscribe(&addr, &token("alice"), json!(["CRASH_LOOP"])).await;
    let mut carol = subscribe(&addr, &token("carol"), json!(null)).await;
    // Let both subscriptions start before anything breaks: a round trip on each socket.
    for ws in [&mut alice, &mut carol] {
        ws.send(Message::text(json!({"type": "ping"}).to_string()))
            .await
            .unwrap();
        loop {
            let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            if m.to_text().unwrap().contains("pong") {
                break;
            }
        }
    }
    // A platform app's pod crash-loops.
    assert!(app
        .world
        .kubernetes
        .set_crashloop("ingress-nginx", "ingress-nginx", true));
    let (ev, _) = until_namespace(&mut alice, "ingress-nginx").await;
    assert_eq!(ev["type"], "CRASH_LOOP", "{ev}");
    assert_eq!(ev["objectKind"], "Pod");
    assert_eq!(ev["reason"], "CrashLoopBackOff");
    assert!(
        ev["pod"]["name"]
            .as_str()
            .unwrap()
            .starts_with("ingress-nginx"),
        "{ev}"
    );
    assert_eq!(ev["applications"][0]["name"], "ingress-nginx", "{ev}");
    assert_eq!(
        ev["entities"][0]["ref"], "component:default/ingress-nginx",
        "{ev}"
    );
    assert_eq!(ev["owners"], json!(["group:default/platform-team"]), "{ev}");

    // Then a team app's: carol hears of it (and of its Warning events), never of the
    // platform's.
    assert!(app.world.kubernetes.set_crashloop("app-3", "app-3", true));
    let (ev, before) = until_namespace(&mut carol, "app-3").await;
    assert!(
        before.is_empty(),
        "nothing of another namespace first: {before:?}"
    );
    assert!(
        matches!(ev["type"].as_str(), Some("CRASH_LOOP" | "WARNING")),
        "{ev}"
    );
    assert_eq!(ev["applications"][0]["name"], "app-3", "{ev}");
    assert_eq!(ev["owners"], json!(["group:default/app-team"]), "{ev}");
    let mut types = vec![ev["type"].as_str().unwrap().to_string()];
    while !(types.contains(&"CRASH_LOOP".to_string()) && types.contains(&"WARNING".to_string())) {
        let (ev, before) = until_namespace(&mut carol, "app-3").await;
        assert!(before.is_empty(), "{before:?}");
        types.push(ev["type"].as_str().unwrap().to_string());
    }
    // Alice asked for crash loops only: the next one she hears of is app-3's, no Warnings.
    let (ev, before) = until_namespace(&mut alice, "app-3").await;
    assert_eq!(ev["type"], "CRASH_LOOP", "{ev}");
    assert!(
        before.iter().all(|e| e["type"] == "CRASH_LOOP"),
        "{before:?}"
    );
}
