//! The upstreams' truth beside the graph's state, object by object: what the chaos and fault
//! tests compare once the weather has cleared. The graph's side may come with an error (a
//! source still recovering serves its last state with one); only the data is compared.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::helpers::TestApp;

/// An upstream's CamelCase status as the graph's enum (`OutOfSync` → `OUT_OF_SYNC`).
pub fn enum_name(argo: &str) -> String {
    let mut out = String::new();
    for (i, c) in argo.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Every application's (sync, revision, health) as ArgoCD has it and as the graph has it.
pub async fn applications(app: &TestApp) -> (BTreeMap<String, Value>, BTreeMap<String, Value>) {
    let upstream = app
        .world
        .argocd
        .apps_json()
        .into_iter()
        .map(|(name, a)| {
            let s = |p: &str| {
                a.pointer(p)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            (
                name,
                json!([
                    enum_name(&s("/status/sync/status")),
                    s("/status/sync/revision"),
                    enum_name(&s("/status/health/status"))
                ]),
            )
        })
        .collect();
    let d = app
        .gql("{ applications(first: 1000) { nodes { name sync { status revision } health { status } } } }")
        .await["data"].clone();
    let graph = d["applications"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_string(),
                json!([
                    a["sync"]["status"],
                    a["sync"]["revision"],
                    a["health"]["status"]
                ]),
            )
        })
        .collect();
    (upstream, graph)
}

/// The query whose answer [`graph_pods`] reads.
pub const PODS_QUERY: &str = r#"{ pods(filter: {cluster: "demo"}, first: 1000) { nodes { namespace name resourceVersion } } }"#;

/// `namespace/name@resourceVersion` of every pod the simulated cluster holds.
pub fn upstream_pods(kube: &idp_graph::demo::kubernetes::KubeSim) -> BTreeSet<String> {
    kube.list("pods")
        .iter()
        .map(|p| {
            let s = |k: &str| {
                p.pointer(k)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            format!(
                "{}/{}@{}",
                s("/metadata/namespace"),
                s("/metadata/name"),
                s("/metadata/resourceVersion")
            )
        })
        .collect()
}

/// The same of every pod in an answer to [`PODS_QUERY`] (its `data`).
pub fn graph_pods(data: &Value) -> BTreeSet<String> {
    data["pods"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            format!(
                "{}/{}@{}",
                p["namespace"].as_str().unwrap(),
                p["name"].as_str().unwrap(),
                p["resourceVersion"].as_str().unwrap()
            )
        })
        .collect()
}

/// `namespace/name@resourceVersion` of every pod, upstream and in the graph.
pub async fn pods(app: &TestApp) -> (BTreeSet<String>, BTreeSet<String>) {
    let upstream = upstream_pods(&app.world.kubernetes);
    let d = app.gql(PODS_QUERY).await["data"].clone();
    (upstream, graph_pods(&d))
}

/// Every catalog entity's ref, upstream and in the graph.
pub async fn entities(app: &TestApp) -> (BTreeSet<String>, BTreeSet<String>) {
    let upstream = app
        .world
        .backstage
        .entities()
        .iter()
        .map(|e| {
            let s = |k: &str| {
                e.pointer(k)
                    .and_then(Value::as_str)
                    .unwrap_or("default")
                    .to_string()
            };
            format!(
                "{}:{}/{}",
                s("/kind").to_lowercase(),
                s("/metadata/namespace"),
                s("/metadata/name")
            )
        })
        .collect();
    let d = app.gql("{ entities(first: 1000) { nodes { ref } } }").await["data"].clone();
    let graph = d["entities"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["ref"].as_str().unwrap().to_string())
        .collect();
    (upstream, graph)
}
