//! Apollo Federation v2 subgraph mode: `_service { sdl }` and `_entities` by every key, off by
//! default; and the proof a user would want — idp-graph composed with a second subgraph by a
//! real composition library, served by a real gateway, answering a query that crosses both.

use std::process::Stdio;
use std::time::Duration;

use idp_graph::demo::DemoOptions;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::{first_code, spawn_demo, spawn_with, TestApp};

fn federation_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/federation")
}

async fn spawn_subgraph() -> TestApp {
    spawn_with(DemoOptions::for_tests(), |s| s.federation.enabled = true).await
}

#[tokio::test]
async fn without_the_switch_there_are_no_federation_fields() {
    let app = spawn_demo().await;
    for q in [
        "{ _service { sdl } }",
        r#"{ _entities(representations: [{__typename: "Component", ref: "component:default/sample-app"}]) { __typename } }"#,
    ] {
        let body = app.gql(q).await;
        assert_eq!(first_code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
    }
}

#[tokio::test]
async fn the_subgraph_serves_its_sdl_and_resolves_entities_by_every_key() {
    let app = spawn_subgraph().await;
    let sdl = app.data("{ _service { sdl } }").await["_service"]["sdl"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        sdl.contains("@link(") && sdl.contains("federation/v2"),
        "{sdl}"
    );
    for line in [
        r#"type Component implements Entity & Node @key(fields: "ref")"#,
        r#"type Application implements Node @key(fields: "instance namespace name")"#,
        r#"type Repository implements Node @key(fields: "slug")"#,
        r#"type Deployment implements Node @key(fields: "cluster namespace name")"#,
    ] {
        assert!(sdl.contains(line), "missing `{line}`");
    }
    // The plain fields are all still there.
    assert!(sdl.contains("node(id: ID!): Node"));

    let d = app
        .gql_vars(
            r#"query($r: [_Any!]!) { _entities(representations: $r) {
                __typename
                ... on Component { ref lifecycle }
                ... on Application { key health { status } }
                ... on Deployment { key replicas { desired } }
                ... on Repository { slug defaultBranch }
            } }"#,
            json!({"r": [
                {"__typename": "Component", "ref": "component:default/sample-app"},
                {"__typename": "Application", "instance": "main", "namespace": "argocd", "name": "sample-app"},
                {"__typename": "Deployment", "cluster": "demo", "namespace": "sample-app", "name": "sample-app"},
                {"__typename": "Repository", "slug": "yourcompany/sample-app"},
                {"__typename": "Component", "ref": "component:default/no-such-thing"},
                {"__typename": "Component", "ref": "api:default/sample-api"},
            ]}),
        )
        .await;
    assert!(d["errors"].is_null(), "{d}");
    let e = &d["data"]["_entities"];
    assert_eq!(e[0]["ref"], "component:default/sample-app");
    assert!(e[0]["lifecycle"].is_string());
    assert_eq!(e[1]["key"], "main/argocd/sample-app");
    assert!(e[1]["health"]["status"].is_string());
    assert_eq!(e[2]["key"], "demo/Deployment/sample-app/sample-app");
    assert_eq!(e[3]["slug"], "yourcompany/sample-app");
    // Unknown, or a ref of another kind under `Component`: null, as the spec wants.
    assert!(e[4].is_null() && e[5].is_null(), "{e}");

    // Garbage representations are refused with a code, not a panic.
    for bad in [
        json!([{"ref": "component:default/sample-app"}]),
        json!([{"__typename": "Spaceship", "id": 1}]),
        json!([{"__typename": "Component"}]),
        json!(["just a string"]),
    ] {
        let body = app
            .gql_vars(
                "query($r: [_Any!]!) { _entities(representations: $r) { __typename } }",
                json!({ "r": bad }),
            )
            .await;
        assert!(!body["errors"].is_null(), "{bad}: {body}");
        assert!(
            body["errors"][0]["extensions"]["code"].is_string(),
            "{bad}: {body}"
        );
    }
}

/// The gateway process (`tests/federation/supergraph.mjs`), killed on drop.
struct Supergraph {
    _child: tokio::process::Child,
    url: String,
}

async fn start_supergraph(subgraph: &TestApp) -> Supergraph {
    assert!(
        federation_dir()
            .join("node_modules/@apollo/gateway")
            .is_dir(),
        "npm ci in tests/federation first (.ci/run does)"
    );
    let mut child = tokio::process::Command::new("node")
        .arg(federation_dir().join("supergraph.mjs"))
        .arg(&subgraph.url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    // Its one JSON line, past whatever the libraries print on their own.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut other = Vec::new();
    let v: Value = loop {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("the supergraph starts within a minute")
            .unwrap()
            .unwrap_or_else(|| panic!("supergraph.mjs ended: {other:?}"));
        match serde_json::from_str::<Value>(&line) {
            Ok(v) if v.get("gateway").is_some() || v.get("errors").is_some() => break v,
            _ => other.push(line),
        }
    };
    assert!(v["errors"].is_null(), "composition failed: {v}");
    Supergraph {
        _child: child,
        url: v["gateway"].as_str().unwrap().to_string(),
    }
}

async fn ask(url: &str, query: &str) -> Value {
    let body = crate::helpers::post_json(url, json!({ "query": query })).await;
    assert!(body["errors"].is_null(), "{query}: {body}");
    body["data"].clone()
}

#[tokio::test]
async fn a_real_gateway_answers_queries_that_cross_idp_graph_and_another_subgraph() {
    let app = spawn_subgraph().await;
    let gateway = start_supergraph(&app).await;
    let direct = app
        .data(r#"{ entity(ref: "component:default/sample-app") { ... on Component { lifecycle owner { ref } } }
                   application(name: "sample-app") { health { status } } }"#)
        .await;

    // reviews → idp-graph: the gateway asks idp-graph's `_entities` for the catalog fields.
    let d = ask(
        &gateway.url,
        "{ topRated { ref reviewScore reviewers lifecycle owner { ref } } }",
    )
    .await;
    let top = &d["topRated"];
    assert_eq!(top[0]["ref"], "component:default/sample-app");
    assert_eq!(top[0]["reviewScore"], 5);
    assert_eq!(top[0]["reviewers"], json!(["alice", "carol"]));
    assert_eq!(top[0]["lifecycle"], direct["entity"]["lifecycle"]);
    assert_eq!(top[0]["owner"], direct["entity"]["owner"]);
    assert_eq!(top[1]["ref"], "component:default/my-app");

    // idp-graph → reviews: a catalog list, with the other subgraph's field on each component,
    // and an ArgoCD field beside it.
    let d = ask(
        &gateway.url,
        r#"{ entities(filter: {kind: "Component"}, first: 50) { nodes { ref ... on Component { reviewScore } } }
             application(name: "sample-app") { key health { status } } }"#,
    )
    .await;
    let nodes = d["entities"]["nodes"].as_array().unwrap();
    assert!(nodes.len() >= 2);
    for n in nodes {
        let expected = match n["ref"].as_str().unwrap() {
            "component:default/sample-app" => 5,
            "component:default/my-app" => 4,
            _ => 0,
        };
        assert_eq!(n["reviewScore"], expected, "{n}");
    }
    assert_eq!(d["application"]["key"], "main/argocd/sample-app");
    assert_eq!(d["application"]["health"], direct["application"]["health"]);
}
