//! `entityEvents` over the graphql-transport-ws protocol: catalog changes arrive live.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{next_for, spawn_demo};

#[tokio::test]
async fn catalog_changes_arrive_as_entity_events() {
    let app = spawn_demo().await;
    let mut ws = crate::helpers::ws_init(&app.addr.to_string()).await;
    let ack = ws.next().await.unwrap().unwrap();
    assert!(ack.to_text().unwrap().contains("connection_ack"));
    ws.send(Message::text(json!({"id": "1", "type": "subscribe", "payload": {"query":
        r#"subscription { entityEvents(filter: {kind: "Component"}) { type ref cursor entity { name description } } }"#}}).to_string()))
        .await
        .unwrap();
    // The subscription is registered once the server answers a ping after it.
    ws.send(Message::text(json!({"type": "ping"}).to_string()))
        .await
        .unwrap();
    loop {
        let m = ws.next().await.unwrap().unwrap();
        if m.to_text().unwrap_or("").contains("pong") {
            break;
        }
    }
    let sim = &app.world.backstage;
    // A change to a group is filtered out; a change to a component comes through.
    let mut g = sim.definition("group:default/app-team").unwrap();
    g["metadata"]["description"] = json!("group change");
    sim.upsert(g);
    let mut c = sim.definition("component:default/sample-app").unwrap();
    c["metadata"]["description"] = json!("live edit");
    sim.upsert(c);
    let event: Value = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let m = ws.next().await.unwrap().unwrap();
            let v: Value = serde_json::from_str(m.to_text().unwrap()).unwrap();
            if v["type"] == "next" {
                return v;
            }
        }
    })
    .await
    .expect("an event within 10 s");
    let e = &event["payload"]["data"]["entityEvents"];
    assert_eq!(e["type"], "MODIFIED");
    assert_eq!(e["ref"], "component:default/sample-app");
    assert_eq!(e["entity"]["description"], "live edit");
    // Opaque: base64url, no sequence number in sight.
    let cursor = e["cursor"].as_str().unwrap();
    assert!(cursor.len() > 40, "{cursor}");
    assert!(
        cursor
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "{cursor}"
    );
}

#[tokio::test]
async fn identical_subscribers_share_one_execution_and_get_the_same_bytes() {
    let app = spawn_demo().await;
    let q = r#"subscription { applicationEvents(filter: {names: ["app-3"]}) { cursor type current { health } } }"#;
    let mut sockets = Vec::new();
    for i in 0..10 {
        let mut ws = crate::helpers::ws_init(&app.addr.to_string()).await;
        ws.next().await; // connection_ack
        ws.send(Message::text(
            json!({"id": format!("s{i}"), "type": "subscribe", "payload": {"query": q}})
                .to_string(),
        ))
        .await
        .unwrap();
        sockets.push(ws);
    }
    // One that asks for a snapshot at its start (`initial`) executes on its own.
    let mut resuming = crate::helpers::ws_init(&app.addr.to_string()).await;
    resuming.next().await;
    resuming
        .send(Message::text(
            json!({"id": "r", "type": "subscribe", "payload": {
                "query": r#"subscription { applicationEvents(filter: {names: ["app-3"]}, initial: true) { cursor type current { health } } }"#}})
            .to_string(),
        ))
        .await
        .unwrap();
    let first = next_for(&mut resuming, "r").await;
    assert_eq!(first["data"]["applicationEvents"]["type"], "INITIAL");
    crate::helpers::wait_for(
        "ten subscribers in one group",
        Duration::from_secs(10),
        || async {
            (app.metric("idp_subscription_joined_total").await == 9
                && app.metric("idp_subscription_groups").await == 1)
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        app.metric("idp_subscription_executions_total").await,
        1,
        "the initial one is not a group"
    );

    app.world
        .argocd
        .set_health("app-3", "Degraded", Some("shared"));
    let mut payloads = Vec::new();
    for (i, ws) in sockets.iter_mut().enumerate() {
        payloads.push(next_for(ws, &format!("s{i}")).await);
    }
    assert_eq!(
        payloads[0]["data"]["applicationEvents"]["current"]["health"],
        "DEGRADED"
    );
    assert!(payloads.iter().all(|p| p == &payloads[0]), "{payloads:?}");
    let r = next_for(&mut resuming, "r").await;
    assert_eq!(
        r["data"]["applicationEvents"]["current"]["health"],
        "DEGRADED"
    );

    // The group ends with its last member.
    drop(sockets);
    crate::helpers::wait_for("the group to end", Duration::from_secs(10), || async {
        (app.metric("idp_subscription_groups").await == 0).then_some(())
    })
    .await;
}
