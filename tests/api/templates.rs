//! Seed flow 1: create a service from a template and watch it appear in the catalog, in ArgoCD
//! and synced — one mutation plus one subscription.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{first_code, spawn_demo, wait_for, TestApp};

const T: Duration = Duration::from_secs(20);

/// Subscribes to `templateTask(id)` over graphql-transport-ws and collects every event.
pub async fn follow_task(app: &TestApp, id: &str) -> Vec<Value> {
    follow_task_at(&app.addr.to_string(), id).await
}

pub async fn follow_task_at(addr: &str, id: &str) -> Vec<Value> {
    let mut ws = crate::helpers::ws_init(addr).await;
    let q = "subscription($id: ID!) { templateTask(id: $id) { id type message stepId status output failed } }";
    ws.send(Message::text(
        json!({"id": "t", "type": "subscribe", "payload": {"query": q, "variables": {"id": id}}})
            .to_string(),
    ))
    .await
    .unwrap();
    let mut events = Vec::new();
    loop {
        let m = tokio::time::timeout(T, ws.next())
            .await
            .expect("task events in time")
            .unwrap()
            .unwrap();
        let Message::Text(t) = m else { continue };
        let v: Value = serde_json::from_str(&t).unwrap();
        match v["type"].as_str() {
            Some("next") => {
                assert!(v["payload"].get("errors").is_none(), "{v}");
                events.push(v["payload"]["data"]["templateTask"].clone());
            }
            Some("complete") => return events,
            Some("error") => panic!("{v}"),
            _ => {}
        }
    }
}

#[tokio::test]
async fn a_service_created_from_a_template_appears_in_the_catalog_and_in_argocd() {
    let app = spawn_demo().await;
    let d = app
        .data(r#"mutation { createFromTemplate(input: {templateRef: "template:default/service-template", values: {name: "payments", owner: "app-team"}}) { id templateRef auditId } }"#)
        .await;
    let id = d["createFromTemplate"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        d["createFromTemplate"]["templateRef"],
        "template:default/service-template"
    );
    let events = follow_task(&app, &id).await;
    let last = events.last().unwrap();
    assert_eq!(last["type"], "COMPLETION");
    assert_eq!(last["failed"], false);
    assert!(last["output"]["links"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["entityRef"] == "component:default/payments"));
    let steps: Vec<&str> = events
        .iter()
        .filter(|e| e["status"] == "completed")
        .map(|e| e["stepId"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["fetch", "publish", "register"]);
    // The component is in the graph, joined to its new app and repo, and the app syncs.
    let d = wait_for("the new service live", T, || async {
        let d = app
            .data(r#"{ entity(ref: "component:default/payments") { ... on Component { owner { ref } repository { slug } applications { name sync { status } health { status } } } } }"#)
            .await;
        let apps = &d["entity"]["applications"];
        (apps[0]["sync"]["status"] == "SYNCED" && apps[0]["health"]["status"] == "HEALTHY").then_some(d)
    })
    .await;
    assert_eq!(d["entity"]["owner"]["ref"], "group:default/app-team");
    assert_eq!(d["entity"]["repository"]["slug"], "yourcompany/payments");
    let audit = app
        .data("{ auditLog(first: 1) { action target result } }")
        .await;
    assert_eq!(
        audit["auditLog"][0],
        json!({"action": "createFromTemplate", "target": "template:default/service-template", "result": "ok"})
    );
}

#[tokio::test]
async fn bad_template_requests_get_clear_codes() {
    let app = spawn_demo().await;
    let m = |input: &str| format!("mutation {{ createFromTemplate(input: {input}) {{ id }} }}");
    for (input, code) in [
        (
            r#"{templateRef: "component:default/sample-app", values: {name: "x"}}"#,
            "BAD_USER_INPUT",
        ),
        (
            r#"{templateRef: "not a ref!", values: {name: "x"}}"#,
            "BAD_USER_INPUT",
        ),
        (
            r#"{templateRef: "service-template", values: "x"}"#,
            "BAD_USER_INPUT",
        ),
        (
            r#"{templateRef: "service-template", values: {owner: "app-team"}}"#,
            "BAD_USER_INPUT",
        ),
        (
            r#"{templateRef: "service-template", values: {name: "Not Valid"}}"#,
            "BAD_USER_INPUT",
        ),
        (
            r#"{templateRef: "template:default/nope", values: {name: "x"}}"#,
            "NOT_FOUND",
        ),
    ] {
        let body = app.gql(&m(input)).await;
        assert_eq!(first_code(&body), code, "{input}: {body}");
    }
    // An unknown task: the subscription answers with NOT_FOUND from Backstage.
    let mut ws = crate::helpers::ws_init(&app.addr.to_string()).await;
    ws.send(Message::text(json!({"id": "t", "type": "subscribe", "payload": {"query": "subscription { templateTask(id: \"nope\") { id } }"}}).to_string())).await.unwrap();
    let reply = loop {
        let Message::Text(t) = tokio::time::timeout(T, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        else {
            continue;
        };
        let v: Value = serde_json::from_str(&t).unwrap();
        if v["id"] == "t" {
            break v;
        }
    };
    assert_eq!(
        reply["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{reply}"
    );
}
