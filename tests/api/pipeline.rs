//! One request pipeline: the same malformed, invalid and over-limit operations get the same
//! `extensions.code` over POST, GET, graphql-transport-ws, the legacy protocol and SSE.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{spawn_demo, ws_connect_with, TestApp, Ws};

const T: Duration = Duration::from_secs(10);

/// (what, document, variables, expected code)
fn bad_operations() -> Vec<(&'static str, String, Value, &'static str)> {
    let aliases = (0..70)
        .map(|i| format!("a{i}: sources {{ name }}"))
        .collect::<Vec<_>>()
        .join(" ");
    let deep = format!(
        "{{ entity(ref: \"group:app-team\") {} ref{} }}",
        "{ owner ".repeat(20),
        " }".repeat(20)
    );
    vec![
        (
            "malformed",
            "{ entities { totalCount ".into(),
            json!({}),
            "GRAPHQL_PARSE_FAILED",
        ),
        (
            "unknown field",
            "{ noSuchField }".into(),
            json!({}),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            "variable of the wrong type",
            "query($f: Int) { entities(first: $f) { totalCount } }".into(),
            json!({"f": "ten"}),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            "unknown operation name",
            "query A { sources { name } } query B { sources { name } }".into(),
            json!({}),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            "too many aliases",
            format!("{{ {aliases} }}"),
            json!({}),
            "QUERY_TOO_COMPLEX",
        ),
        ("too deep", deep, json!({}), "QUERY_TOO_COMPLEX"),
    ]
}

fn payload(query: &str, variables: &Value) -> Value {
    let mut p = json!({ "query": query, "variables": variables });
    if query.starts_with("query A") {
        p["operationName"] = json!("C");
    }
    p
}

fn code_of(errors: &Value) -> String {
    errors[0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no code in {errors}"))
        .to_string()
}

async fn over_post(app: &TestApp, p: &Value) -> String {
    let r = app
        .http
        .post(format!("{}/graphql", app.url))
        .header("accept", "application/graphql-response+json")
        .json(p)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "{p}");
    code_of(&r.json::<Value>().await.unwrap()["errors"])
}

async fn over_get(app: &TestApp, p: &Value) -> String {
    let mut params = vec![
        ("query", p["query"].as_str().unwrap().to_string()),
        ("variables", p["variables"].to_string()),
    ];
    if let Some(name) = p["operationName"].as_str() {
        params.push(("operationName", name.to_string()));
    }
    let r = app
        .http
        .get(format!("{}/graphql", app.url))
        .header("accept", "application/graphql-response+json")
        .query(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "{p}");
    code_of(&r.json::<Value>().await.unwrap()["errors"])
}

async fn over_sse(app: &TestApp, p: &Value) -> String {
    let r = app
        .http
        .post(format!("{}/graphql/sse", app.url))
        .json(p)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "{p}");
    code_of(&r.json::<Value>().await.unwrap()["errors"])
}

/// The next message that is not a keepalive.
async fn next(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(T, ws.next())
            .await
            .expect("a message in time")
            .expect("socket open")
            .expect("frame");
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(&t).unwrap();
            if !matches!(v["type"].as_str(), Some("ping" | "ka")) {
                return v;
            }
        }
    }
}

async fn over_ws(ws: &mut Ws, start: &str, id: &str, p: &Value) -> String {
    ws.send(Message::text(
        json!({"id": id, "type": start, "payload": p}).to_string(),
    ))
    .await
    .unwrap();
    let m = next(ws).await;
    assert_eq!(m["type"], "error", "{m}");
    assert_eq!(m["id"], id, "{m}");
    code_of(&m["payload"])
}

async fn initialised(app: &TestApp, subprotocol: &str) -> Ws {
    let mut ws = ws_connect_with(&app.addr.to_string(), subprotocol).await;
    ws.send(Message::text(
        json!({"type": "connection_init"}).to_string(),
    ))
    .await
    .unwrap();
    assert_eq!(next(&mut ws).await["type"], "connection_ack");
    ws
}

#[tokio::test]
async fn the_same_bad_operation_gets_the_same_code_on_every_transport() {
    let app = spawn_demo().await;
    let mut modern = initialised(&app, "graphql-transport-ws").await;
    let mut legacy = initialised(&app, "graphql-ws").await;
    for (i, (what, query, variables, code)) in bad_operations().into_iter().enumerate() {
        let p = payload(&query, &variables);
        let id = format!("op{i}");
        let got = [
            ("POST", over_post(&app, &p).await),
            ("GET", over_get(&app, &p).await),
            ("SSE", over_sse(&app, &p).await),
            (
                "graphql-transport-ws",
                over_ws(&mut modern, "subscribe", &id, &p).await,
            ),
            ("legacy", over_ws(&mut legacy, "start", &id, &p).await),
        ];
        for (transport, got) in got {
            assert_eq!(got, code, "{what} over {transport}");
        }
    }
    // Both sockets are still usable after every refusal.
    let ok = json!({"query": "{ sources { name } }"});
    modern
        .send(Message::text(
            json!({"id": "fine", "type": "subscribe", "payload": ok}).to_string(),
        ))
        .await
        .unwrap();
    let m = next(&mut modern).await;
    assert_eq!(m["type"], "next", "{m}");
    assert!(m["payload"]["data"]["sources"].is_array(), "{m}");
    legacy
        .send(Message::text(
            json!({"id": "fine", "type": "start", "payload": ok}).to_string(),
        ))
        .await
        .unwrap();
    let m = next(&mut legacy).await;
    assert_eq!(m["type"], "data", "{m}");
    assert!(m["payload"]["data"]["sources"].is_array(), "{m}");
}
