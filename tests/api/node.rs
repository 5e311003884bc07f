//! Global object identification: every object with an `id` comes back through `node(id:)` and
//! `nodes(ids:)`; ids are equal across two server processes over the same upstreams; bad ids
//! are `BAD_USER_INPUT`, unknown or invisible ones `null`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use idp_graph::demo::DemoOptions;
use serde_json::{json, Value};

use crate::helpers::{
    first_code, post_as, post_json, serve_process, spawn_demo, spawn_with, wait_for, wait_ready_at,
    TestApp,
};

const WAIT: Duration = Duration::from_secs(10);

/// Every id-bearing type reachable from the demo, in one query.
const ALL_IDS: &str = r#"{
  entities(first: 500) { nodes { __typename id } }
  applications(first: 500) { nodes { __typename id history { __typename id } } }
  clusters { __typename id }
  namespaces { __typename id }
  deployments(first: 500) { nodes { __typename id replicaSets { __typename id } } }
  pods(first: 500) { nodes { __typename id } }
  statefulSets(first: 100) { nodes { __typename id } }
  daemonSets(first: 100) { nodes { __typename id } }
  services(first: 100) { nodes { __typename id } }
  ingresses(first: 100) { nodes { __typename id } }
  configMaps(first: 100) { nodes { __typename id } }
  secrets(first: 100) { nodes { __typename id } }
  repository(slug: "yourcompany/sample-app") {
    __typename id
    latestCommit { __typename id }
    pullRequests(state: ALL, first: 3) { __typename id }
    workflowRuns(first: 3) { __typename id }
  }
}"#;

/// Walks a response and collects every `{__typename, id}` pair.
fn collect(v: &Value, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(m) => {
            if let (Some(Value::String(t)), Some(Value::String(id))) =
                (m.get("__typename"), m.get("id"))
            {
                out.insert(id.clone(), t.clone());
            }
            m.values().for_each(|x| collect(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect(x, out)),
        _ => {}
    }
}

async fn ids_of(base: &str) -> BTreeMap<String, String> {
    let body = post_json(&format!("{base}/graphql"), json!({ "query": ALL_IDS })).await;
    assert!(body["errors"].is_null(), "{body}");
    let mut out = BTreeMap::new();
    collect(&body["data"], &mut out);
    out
}

#[tokio::test]
async fn every_type_with_an_id_round_trips_through_node_and_nodes() {
    let app = spawn_demo().await;
    // The seed has no Ingress, StatefulSet or DaemonSet: add one of each.
    let sim = &app.world.kubernetes;
    sim.upsert(
        "ingresses",
        json!({"metadata": {"name": "web", "namespace": "sample-app", "uid": "n-i1"},
        "spec": {"rules": [{"host": "sample.example.com"}]}}),
    );
    sim.upsert("statefulsets", json!({"metadata": {"name": "db", "namespace": "sample-app", "uid": "n-s1"},
        "spec": {"replicas": 1, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                 "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "postgres:16"}]}}}}));
    sim.upsert("daemonsets", json!({"metadata": {"name": "agent", "namespace": "kube-system", "uid": "n-d1"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
                 "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "agent", "image": "agent:1"}]}}}}));
    let mut ids = wait_for("the added objects", WAIT, || async {
        let ids = ids_of(&app.url).await;
        let types: BTreeSet<&str> = ids.values().map(String::as_str).collect();
        ["Ingress", "StatefulSet", "DaemonSet"]
            .iter()
            .all(|t| types.contains(t))
            .then_some(ids)
    })
    .await;
    // A scaffolder task too.
    let d = app
        .data(r#"mutation { createFromTemplate(input: {templateRef: "template:default/service-template", values: {name: "node-test", owner: "app-team"}}) { __typename id taskId } }"#)
        .await;
    collect(&d, &mut ids);

    let types: BTreeSet<&str> = ids.values().map(String::as_str).collect();
    for t in [
        "Component",
        "API",
        "System",
        "Domain",
        "Group",
        "User",
        "Resource",
        "Template",
        "Location",
        "Application",
        "HistoryEntry",
        "Cluster",
        "Namespace",
        "Deployment",
        "ReplicaSet",
        "Pod",
        "Service",
        "Ingress",
        "StatefulSet",
        "DaemonSet",
        "ConfigMap",
        "Secret",
        "Repository",
        "Commit",
        "PullRequestNode",
        "WorkflowRunNode",
        "TemplateTask",
    ] {
        assert!(types.contains(t), "no {t} in the demo's ids: {types:?}");
    }

    // node(id:), one by one: the same type and id come back.
    for (id, typename) in &ids {
        let body = app
            .gql_vars(
                "query($id: ID!) { node(id: $id) { __typename id } }",
                json!({ "id": id }),
            )
            .await;
        assert!(body["errors"].is_null(), "{typename} {id}: {body}");
        assert_eq!(body["data"]["node"]["__typename"], *typename, "{body}");
        assert_eq!(body["data"]["node"]["id"], *id);
    }

    // nodes(ids:), 100 at a time, in order, with type-specific fields through fragments.
    let all: Vec<(&String, &String)> = ids.iter().collect();
    for chunk in all.chunks(100) {
        let list: Vec<&String> = chunk.iter().map(|(id, _)| *id).collect();
        let body = app
            .gql_vars(
                r#"query($ids: [ID!]!) { nodes(ids: $ids) { __typename id
                    ... on Entity { ref } ... on Application { key } ... on Deployment { key }
                    ... on Repository { slug } ... on Commit { sha } ... on HistoryEntry { historyId } } }"#,
                json!({ "ids": list }),
            )
            .await;
        assert!(body["errors"].is_null(), "{body}");
        let got = body["data"]["nodes"].as_array().unwrap();
        assert_eq!(got.len(), chunk.len());
        for ((id, typename), n) in chunk.iter().zip(got) {
            assert_eq!(n["id"], **id);
            assert_eq!(n["__typename"], **typename);
        }
    }

    // A node answers like the typed root field does.
    let d = app
        .data(r#"{ application(name: "sample-app") { id key } entity(ref: "component:default/sample-app") { id } }"#)
        .await;
    let body = app
        .gql_vars(
            "query($a: ID!, $e: ID!) { a: node(id: $a) { ... on Application { key } } e: node(id: $e) { ... on Component { ref lifecycle } } }",
            json!({ "a": d["application"]["id"], "e": d["entity"]["id"] }),
        )
        .await;
    assert_eq!(body["data"]["a"]["key"], d["application"]["key"]);
    assert_eq!(body["data"]["e"]["ref"], "component:default/sample-app");
    assert!(body["data"]["e"]["lifecycle"].is_string());
}

#[tokio::test]
async fn bad_ids_are_bad_user_input_and_unknown_ids_are_null() {
    let app = spawn_demo().await;
    use base64::Engine;
    let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    for bad in [
        String::new(),
        "not base64 ☃".to_string(),
        "x".repeat(5000),
        enc("{}"),
        enc(r#"["Spaceship","x"]"#),
        enc(r#"["Application","only-one"]"#),
        enc(r#"["PullRequest","a/b","-1"]"#),
    ] {
        let body = app
            .gql_vars(
                "query($id: ID!) { node(id: $id) { id } }",
                json!({ "id": bad }),
            )
            .await;
        assert_eq!(first_code(&body), "BAD_USER_INPUT", "{bad}: {body}");
        assert!(body["data"]["node"].is_null());
    }
    // Well-formed, but nothing there.
    for unknown in [
        enc(r#"["Entity","component:default/nope"]"#),
        enc(r#"["Entity","::not a ref"]"#),
        enc(r#"["Application","main","argocd","nope"]"#),
        enc(r#"["HistoryEntry","main","argocd","sample-app","999999"]"#),
        enc(r#"["Deployment","demo","nope","nope"]"#),
        enc(r#"["Deployment","no-such-cluster","a","b"]"#),
        enc(r#"["Cluster","no-such-cluster"]"#),
        enc(r#"["Repository","yourcompany/nope"]"#),
        enc(r#"["Repository","not a slug"]"#),
        enc(r#"["PullRequest","yourcompany/sample-app","9999"]"#),
        enc(r#"["WorkflowRun","yourcompany/sample-app","1"]"#),
        enc(r#"["TemplateTask","no-such-task"]"#),
    ] {
        let body = app
            .gql_vars(
                "query($id: ID!) { node(id: $id) { id } }",
                json!({ "id": unknown }),
            )
            .await;
        assert!(body["errors"].is_null(), "{unknown}: {body}");
        assert!(body["data"]["node"].is_null(), "{unknown}: {body}");
    }
    // nodes: one bad id fails the field and names it; more than 100 ids is refused.
    let body = app
        .gql_vars(
            "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
            json!({ "ids": [enc(r#"["Cluster","demo"]"#), "garbage!"] }),
        )
        .await;
    assert_eq!(first_code(&body), "BAD_USER_INPUT");
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("ids[1]"));
    let many: Vec<String> = (0..101).map(|_| enc(r#"["Cluster","demo"]"#)).collect();
    let body = app
        .gql_vars(
            "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
            json!({ "ids": many }),
        )
        .await;
    assert_eq!(first_code(&body), "BAD_USER_INPUT");
}

#[tokio::test]
async fn an_object_the_caller_may_not_see_is_null_by_id() {
    let app: TestApp = spawn_with(
        DemoOptions {
            auth: true,
            ..DemoOptions::for_tests()
        },
        |_| {},
    )
    .await;
    let personas = app.world.persona_tokens();
    let alice = &personas[0].2;
    let carol = &personas[1].2;
    let (_, _, all) = post_as(
        &app,
        Some(alice),
        r#"{ argocd: application(name: "argocd") { id } team: application(name: "sample-app") { id }
             deployments(first: 1000) { nodes { id namespace } } }"#,
    )
    .await;
    let platform_app = all["data"]["argocd"]["id"].as_str().unwrap();
    let team_app = all["data"]["team"]["id"].as_str().unwrap();
    let platform_deployment = all["data"]["deployments"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["namespace"] == "argocd")
        .unwrap()["id"]
        .as_str()
        .unwrap();
    let q = format!(
        r#"{{ a: node(id: "{platform_app}") {{ id }} b: node(id: "{team_app}") {{ id }} c: node(id: "{platform_deployment}") {{ id }} }}"#
    );
    let (_, _, as_carol) = post_as(&app, Some(carol), &q).await;
    assert!(as_carol["errors"].is_null(), "{as_carol}");
    assert!(as_carol["data"]["a"].is_null(), "{as_carol}");
    assert_eq!(as_carol["data"]["b"]["id"], team_app);
    assert!(as_carol["data"]["c"].is_null(), "{as_carol}");
    let (_, _, as_alice) = post_as(&app, Some(alice), &q).await;
    assert_eq!(as_alice["data"]["a"]["id"], platform_app);
    assert_eq!(as_alice["data"]["c"]["id"], platform_deployment);
}

#[tokio::test]
async fn ids_are_equal_across_two_server_processes_over_the_same_upstreams() {
    // No weather (the default for tests): both read the same, unchanging world.
    let app = spawn_with(DemoOptions::for_tests(), |_| {}).await;
    let other = serve_process(&app.world, "");
    wait_ready_at(&other.base, Duration::from_secs(30)).await;
    let here = ids_of(&app.url).await;
    let there = ids_of(&other.base).await;
    assert!(here.len() > 100, "{}", here.len());
    assert_eq!(here, there);
    // And an id from one process resolves on the other.
    let (id, typename) = here.iter().find(|(_, t)| *t == "Pod").unwrap();
    let body = post_json(
        &format!("{}/graphql", other.base),
        json!({"query": "query($id: ID!) { node(id: $id) { __typename id } }", "variables": {"id": id}}),
    )
    .await;
    assert_eq!(body["data"]["node"]["__typename"], *typename);
}
