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

/// Subscribes `ws` under `id` and returns once the server has registered it (it answers a ping
/// sent after the subscribe only once the subscribe is processed).
async fn subscribe_registered(ws: &mut crate::helpers::Ws, id: &str, payload: Value) {
    ws.send(Message::text(
        json!({"id": id, "type": "subscribe", "payload": payload}).to_string(),
    ))
    .await
    .unwrap();
    ws.send(Message::text(json!({"type": "ping"}).to_string()))
        .await
        .unwrap();
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a pong in time")
            .unwrap()
            .unwrap();
        if m.to_text().unwrap_or("").contains("pong") {
            return;
        }
    }
}

#[tokio::test]
async fn a_subscription_resuming_from_a_cursor_in_any_form_replays_on_its_own() {
    let app = spawn_demo().await;
    let addr = app.addr.to_string();
    let live_q = r#"subscription { applicationEvents(filter: {names: ["app-3"]}) { cursor type current { health } } }"#;
    let mut live = crate::helpers::ws_init(&addr).await;
    live.next().await; // connection_ack
    subscribe_registered(&mut live, "1", json!({"query": live_q})).await;
    // Two changes: the cursor of the first is where every resumer starts, so each must be
    // replayed the second (and only a private execution can replay it).
    let argocd = &app.world.argocd;
    argocd.set_health("app-3", "Degraded", Some("one"));
    let first = next_for(&mut live, "1").await;
    let c1 = first["data"]["applicationEvents"]["cursor"]
        .as_str()
        .expect("a cursor")
        .to_string();
    argocd.set_health("app-3", "Healthy", Some("two"));
    let second = next_for(&mut live, "1").await;
    let c2 = second["data"]["applicationEvents"]["cursor"].clone();
    assert_eq!(
        second["data"]["applicationEvents"]["current"]["health"],
        "HEALTHY"
    );

    let select = "{ cursor type current { health } }";
    let forms = [
        (
            "inline",
            json!({"query": format!(r#"subscription {{ applicationEvents(filter: {{names: ["app-3"]}}, after: "{c1}") {select} }}"#)}),
        ),
        (
            "a variable named $cursor",
            json!({"query": format!(r#"subscription Resume($cursor: String) {{ applicationEvents(filter: {{names: ["app-3"]}}, after: $cursor) {select} }}"#),
                   "variables": {"cursor": c1}}),
        ),
        (
            "a variable's default",
            json!({"query": format!(r#"subscription Resume($c: String = "{c1}") {{ applicationEvents(filter: {{names: ["app-3"]}}, after: $c) {select} }}"#)}),
        ),
    ];
    let mut resumers = Vec::new();
    for (form, payload) in &forms {
        // Two identical resumers one after the other: the second must not join the first's
        // execution, whose replay is already sent.
        for n in 0..2 {
            let mut ws = crate::helpers::ws_init(&addr).await;
            ws.next().await; // connection_ack
            ws.send(Message::text(
                json!({"id": "r", "type": "subscribe", "payload": payload}).to_string(),
            ))
            .await
            .unwrap();
            // The replay is due at once; a member of a running group would wait for the next
            // live change, which does not come.
            let replayed = tokio::time::timeout(Duration::from_secs(5), next_for(&mut ws, "r"))
                .await
                .unwrap_or_else(|_| {
                    panic!("resumer {n} with the cursor given {form} got no replay of {c2}")
                });
            assert_eq!(
                replayed["data"]["applicationEvents"]["cursor"], c2,
                "resumer {n} with the cursor given {form} got {replayed} instead of the replay of {c2}"
            );
            resumers.push(ws);
        }
    }
    assert_eq!(
        app.metric("idp_subscription_joined_total").await,
        0,
        "no resumer joined a running group"
    );
}
