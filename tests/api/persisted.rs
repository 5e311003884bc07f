//! Persisted operations on every transport: the APQ flow (hash only → PERSISTED_QUERY_NOT_FOUND
//! → hash + document → hash only works) and trusted-documents mode, which refuses anything
//! outside the manifest.

use futures::{SinkExt, StreamExt};
use idp_graph::demo::DemoOptions;
use idp_graph::http::persisted::{sha256_hex, PersistedMode};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{spawn_demo, spawn_with, ws_init, TestApp, Ws};

const DOC: &str = "query Sources { sources { name } }";

fn ext(hash: &str) -> Value {
    json!({"persistedQuery": {"version": 1, "sha256Hash": hash}})
}

async fn post(app: &TestApp, body: Value) -> Value {
    app.http
        .post(format!("{}/graphql", app.url))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn get(app: &TestApp, hash: &str) -> Value {
    app.http
        .get(format!("{}/graphql", app.url))
        .query(&[("extensions", ext(hash).to_string())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// SSE: the first `next` event's data, or the refusal body.
async fn sse(app: &TestApp, body: Value) -> Value {
    let r = app
        .http
        .post(format!("{}/graphql/sse", app.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    if r.status() != 200 {
        return r.json().await.unwrap();
    }
    let text = r.text().await.unwrap();
    let data = text
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .expect("a next event");
    serde_json::from_str(data).unwrap()
}

/// graphql-transport-ws: the `payload` of the answer (`next`) or the errors (`error`).
async fn ws(socket: &mut Ws, id: &str, payload: Value) -> Value {
    socket
        .send(Message::text(
            json!({"id": id, "type": "subscribe", "payload": payload}).to_string(),
        ))
        .await
        .unwrap();
    loop {
        let m = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(&t).unwrap();
            match v["type"].as_str() {
                Some("next") => return v["payload"].clone(),
                Some("error") => return json!({ "errors": v["payload"] }),
                _ => {}
            }
        }
    }
}

fn code(v: &Value) -> Option<&str> {
    v["errors"][0]["extensions"]["code"].as_str()
}

#[tokio::test]
async fn the_apq_flow_works_on_every_transport() {
    let app = spawn_demo().await;
    let hash = sha256_hex(DOC);
    let mut socket = ws_init(&app.addr.to_string()).await;
    socket.next().await; // connection_ack
                         // Unknown hash: not found, on every transport.
    assert_eq!(
        code(&post(&app, json!({"extensions": ext(&hash)})).await),
        Some("PERSISTED_QUERY_NOT_FOUND")
    );
    assert_eq!(
        code(&get(&app, &hash).await),
        Some("PERSISTED_QUERY_NOT_FOUND")
    );
    assert_eq!(
        code(&sse(&app, json!({"extensions": ext(&hash)})).await),
        Some("PERSISTED_QUERY_NOT_FOUND")
    );
    assert_eq!(
        code(&ws(&mut socket, "a", json!({"extensions": ext(&hash)})).await),
        Some("PERSISTED_QUERY_NOT_FOUND")
    );
    // A hash that does not match its document is refused, not registered.
    let wrong = post(
        &app,
        json!({"query": "{ sources { url } }", "extensions": ext(&hash)}),
    )
    .await;
    assert_eq!(code(&wrong), Some("BAD_REQUEST"), "{wrong}");
    // Hash + document registers it ...
    let first = post(&app, json!({"query": DOC, "extensions": ext(&hash)})).await;
    assert!(first["data"]["sources"].is_array(), "{first}");
    // ... and then the hash alone works everywhere (GET: a cacheable URL).
    for (transport, v) in [
        ("POST", post(&app, json!({"extensions": ext(&hash)})).await),
        ("GET", get(&app, &hash).await),
        ("SSE", sse(&app, json!({"extensions": ext(&hash)})).await),
        (
            "ws",
            ws(&mut socket, "b", json!({"extensions": ext(&hash)})).await,
        ),
    ] {
        assert!(v["data"]["sources"].is_array(), "{transport}: {v}");
    }
}

#[tokio::test]
async fn trusted_documents_mode_runs_only_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("manifest.json");
    std::fs::write(
        &manifest,
        json!({"format": "apollo-persisted-query-manifest", "version": 1,
               "operations": [{"id": "x", "name": "Sources", "type": "query", "body": DOC}]})
        .to_string(),
    )
    .unwrap();
    let app = spawn_with(DemoOptions::for_tests(), move |s| {
        s.persisted.manifest = Some(manifest);
        s.persisted.mode = PersistedMode::Trusted;
    })
    .await;
    let hash = sha256_hex(DOC);
    let mut socket = ws_init(&app.addr.to_string()).await;
    socket.next().await;
    let other = json!({"query": "{ sources { name url } }"});
    for (transport, v) in [
        ("POST", post(&app, other.clone()).await),
        ("SSE", sse(&app, other.clone()).await),
        ("ws", ws(&mut socket, "a", other.clone()).await),
    ] {
        assert_eq!(
            code(&v),
            Some("PERSISTED_QUERY_NOT_IN_LIST"),
            "{transport}: {v}"
        );
        assert!(v["data"].is_null(), "{transport}: {v}");
    }
    // The listed operation runs, by hash (no registration needed) or in full.
    assert!(post(&app, json!({"extensions": ext(&hash)})).await["data"]["sources"].is_array());
    assert!(post(&app, json!({"query": DOC})).await["data"]["sources"].is_array());
    assert!(
        ws(&mut socket, "b", json!({"extensions": ext(&hash)})).await["data"]["sources"].is_array()
    );
}
