//! Kubernetes through the graph: the server's kube-rs watchers against the API simulation.

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine as _;
use futures::{SinkExt, StreamExt};
use idp_graph::demo::kubernetes::{seed_objects, KubeSim};
use idp_graph::demo::DemoOptions;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{spawn_demo, spawn_with, wait_for, TestApp};

const WAIT: Duration = Duration::from_secs(15);

fn pod(ns: &str, name: &str, reason: Option<&str>) -> Value {
    let state = match reason {
        Some(r) => {
            json!({"waiting": {"reason": r, "message": "back-off 10s restarting failed container"}})
        }
        None => json!({"running": {"startedAt": "2026-11-26T00:00:00Z"}}),
    };
    json!({"metadata": {"name": name, "namespace": ns, "uid": uuid::Uuid::new_v4().to_string(),
                        "labels": {"app.kubernetes.io/name": "probe"},
                        "creationTimestamp": "2026-11-26T00:00:00Z"},
           "spec": {"nodeName": "demo-node-1", "containers": [{"name": "probe", "image": "busybox:1.36"}]},
           "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if reason.is_some() { "False" } else { "True" }}],
                      "containerStatuses": [{"name": "probe", "ready": reason.is_none(), "restartCount": if reason.is_some() { 4 } else { 0 },
                                             "image": "busybox:1.36", "state": state}]}})
}

/// `namespace/name@resourceVersion` of every pod the graph holds for `cluster`.
async fn graph_pods(app: &TestApp, cluster: &str) -> BTreeSet<String> {
    // Errors are allowed here: while a cluster recovers, its last state comes with one.
    let d = app
        .gql(&format!(
            r#"{{ pods(filter: {{cluster: "{cluster}"}}, first: 1000) {{ nodes {{ namespace name resourceVersion }} }} }}"#
        ))
        .await["data"]
        .clone();
    d["pods"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
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

fn sim_pods(sim: &KubeSim) -> BTreeSet<String> {
    sim.list("pods")
        .iter()
        .map(|p| {
            format!(
                "{}/{}@{}",
                p["metadata"]["namespace"].as_str().unwrap(),
                p["metadata"]["name"].as_str().unwrap(),
                p["metadata"]["resourceVersion"].as_str().unwrap()
            )
        })
        .collect()
}

async fn converge(app: &TestApp, what: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (g, s) = (
            graph_pods(app, "demo").await,
            sim_pods(&app.world.kubernetes),
        );
        if g == s {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: graph-only {:?}, simulation-only {:?}",
            g.difference(&s).collect::<Vec<_>>(),
            s.difference(&g).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_pod_change_reaches_the_graph_by_watch() {
    let app = spawn_demo().await;
    let lists_before = app.world.kubernetes.list_count();
    let sim = &app.world.kubernetes;
    sim.upsert("pods", pod("sample-app", "probe-1", None));
    let q = r#"{ pods(filter: {namespace: "sample-app", name: "probe"}) { totalCount nodes { name ready restarts phase containers { state reason } } } }"#;
    wait_for("the new pod in the graph", WAIT, || async {
        (app.data(q).await["pods"]["totalCount"] == 1).then_some(())
    })
    .await;
    sim.upsert(
        "pods",
        pod("sample-app", "probe-1", Some("CrashLoopBackOff")),
    );
    let d = wait_for("the crash loop in the graph", WAIT, || async {
        let d = app.data(q).await;
        (d["pods"]["nodes"][0]["containers"][0]["reason"] == "CrashLoopBackOff").then_some(d)
    })
    .await;
    let p = &d["pods"]["nodes"][0];
    assert_eq!(p["ready"], false);
    assert_eq!(p["restarts"], 4);
    assert_eq!(p["containers"][0]["state"], "WAITING");
    // Filter by waiting reason.
    let d = app
        .data(r#"{ pods(filter: {waitingReason: "CrashLoopBackOff"}) { nodes { name } } }"#)
        .await;
    assert_eq!(d["pods"]["nodes"], json!([{"name": "probe-1"}]));
    sim.delete("pods", "sample-app", "probe-1");
    wait_for("the pod gone", WAIT, || async {
        (app.data(q).await["pods"]["totalCount"] == 0).then_some(())
    })
    .await;
    // All of that came by watch: no list was needed.
    assert_eq!(app.world.kubernetes.list_count(), lists_before);
}

#[tokio::test]
async fn a_dropped_watch_and_a_forced_410_both_end_equal_to_the_simulation() {
    let app = spawn_demo().await;
    converge(&app, "initial sync").await;
    let sim = &app.world.kubernetes;

    // Dropped: connections cut while changes happen; the watchers resume from their
    // resourceVersion and receive what they missed.
    sim.faults.set_down(true);
    sim.drop_watches();
    sim.upsert("pods", pod("my-app", "missed-1", None));
    sim.delete("pods", "sample-app", "sample-app-5d9c7b8f6-x7k2p");
    sim.upsert("pods", pod("app-2", "missed-2", Some("ImagePullBackOff")));
    sim.faults.set_down(false);
    converge(&app, "the graph after a dropped watch").await;
    assert_eq!(sim.expired_count(), 0, "the history covered the gap");

    // Forced 410: the history is compacted while the watchers are away, so resuming is
    // answered in-stream with 410 Expired and they must re-list.
    sim.faults.set_down(true);
    sim.drop_watches();
    sim.delete("pods", "my-app", "missed-1");
    sim.upsert("pods", pod("my-app", "after-compaction", None));
    sim.compact();
    sim.faults.set_down(false);
    converge(&app, "the graph after a 410").await;
    assert!(sim.expired_count() >= 1, "a watch was answered with 410");
    let d = app
        .data(r#"{ sources { name kind connected lastError } }"#)
        .await;
    let demo = d["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "KUBERNETES")
        .unwrap()
        .clone();
    wait_for("the cluster connected again", WAIT, || async {
        let d = app.data(r#"{ clusters { name connected } }"#).await;
        (d["clusters"][0]["connected"] == true).then_some(())
    })
    .await;
    assert_eq!(demo["name"], "demo");
}

#[tokio::test]
async fn a_secret_value_never_reaches_any_response() {
    let app = spawn_demo().await;
    let value = format!("hunter2-{}", uuid::Uuid::new_v4());
    let b64 = base64::engine::general_purpose::STANDARD.encode(&value);
    // kubectl apply keeps the whole manifest, values included, in last-applied-configuration.
    let last_applied = json!({"apiVersion": "v1", "kind": "Secret", "data": {"token": b64},
                              "metadata": {"name": "api-token", "namespace": "sample-app"}})
    .to_string();
    app.world.kubernetes.upsert(
        "secrets",
        json!({"metadata": {"name": "api-token", "namespace": "sample-app", "uid": "5b1e",
                            "labels": {"backstage.io/kubernetes-id": "sample-app", "app.kubernetes.io/instance": "sample-app"},
                            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": last_applied, "team": "a"}},
               "type": "Opaque", "data": {"token": b64}, "stringData": {"plain": value}}),
    );
    let q = r#"{ secrets(filter: {name: "api-token"}) { nodes { name type keys } } }"#;
    let d = wait_for("the secret in the graph", WAIT, || async {
        let d = app.data(q).await;
        (d["secrets"]["nodes"].as_array().unwrap().len() == 1).then_some(d)
    })
    .await;
    assert_eq!(d["secrets"]["nodes"][0]["keys"], json!(["plain", "token"]));
    // Every field the Secret type has, from introspection, so a field added later is covered.
    let everything = all_fields(&app, "Secret", 2).await;
    let queries = [
        format!("{{ secrets(first: 1000) {{ nodes {{ {everything} }} }} }}"),
        format!(
            r#"{{ entity(ref: "component:default/sample-app") {{ ... on Component {{ kubernetes {{ secrets {{ {everything} }} }} }} }} }}"#
        ),
        format!(
            r#"{{ application(name: "sample-app") {{ workloads {{ secrets {{ {everything} }} }} }} }}"#
        ),
        r#"{ namespaces { name labels { value } annotations { value } } }"#.to_string(),
    ];
    for q in &queries {
        let body = app.gql(q).await;
        assert!(body.get("errors").is_none(), "{q}: {body}");
        let text = body.to_string();
        assert!(
            text.contains("api-token") || q.contains("namespaces"),
            "{q} reads the secret: {text}"
        );
        assert!(!text.contains(&value), "value leaked by {q}");
        assert!(!text.contains(&b64), "base64 value leaked by {q}");
    }
    let annotations = app
        .data(r#"{ secrets(filter: {name: "api-token"}) { nodes { annotations { key } } } }"#)
        .await;
    assert_eq!(
        annotations["secrets"]["nodes"][0]["annotations"],
        json!([{"key": "team"}])
    );
    // And not on /metrics either.
    let metrics = app
        .http
        .get(format!("{}/metrics", app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!metrics.contains(&value) && !metrics.contains(&b64));
}

/// A selection of every field of a type (object fields expanded `depth` levels, by
/// introspection), so a test reading "everything" keeps doing so as the schema grows.
async fn all_fields(app: &TestApp, type_name: &str, depth: usize) -> String {
    let q = format!(
        r#"{{ __type(name: "{type_name}") {{ fields {{ name args {{ name }} type {{ kind name ofType {{ kind name ofType {{ kind name ofType {{ kind name }} }} }} }} }} }} }}"#
    );
    let intro = app.data(&q).await;
    let mut selection = Vec::new();
    for f in intro["__type"]["fields"].as_array().unwrap() {
        if !f["args"].as_array().unwrap().is_empty() {
            continue;
        }
        let name = f["name"].as_str().unwrap().to_string();
        let mut t = &f["type"];
        while matches!(t["kind"].as_str(), Some("NON_NULL" | "LIST")) {
            t = &t["ofType"];
        }
        match t["kind"].as_str() {
            Some("SCALAR" | "ENUM") => selection.push(name),
            Some("OBJECT") if depth > 0 => {
                let inner = Box::pin(all_fields(app, t["name"].as_str().unwrap(), depth - 1)).await;
                if !inner.is_empty() {
                    selection.push(format!("{name} {{ {inner} }}"));
                }
            }
            _ => {}
        }
    }
    selection.join(" ")
}

#[tokio::test]
async fn component_to_pods_and_pod_to_component_agree() {
    let app = spawn_demo().await;
    let d = app
        .data(r#"{ entities(filter: {kind: "Component"}, first: 1000) { nodes { ref ... on Component { kubernetes { deployments { id pods { id } } pods { id } } } } } }"#)
        .await;
    let mut forward = BTreeSet::new();
    for c in d["entities"]["nodes"].as_array().unwrap() {
        for dep in c["kubernetes"]["deployments"].as_array().unwrap() {
            for p in dep["pods"].as_array().unwrap() {
                forward.insert((
                    c["ref"].as_str().unwrap().to_string(),
                    dep["id"].as_str().unwrap().to_string(),
                    p["id"].as_str().unwrap().to_string(),
                ));
                // The component's own pod list holds the deployment's pods.
                assert!(c["kubernetes"]["pods"]
                    .as_array()
                    .unwrap()
                    .contains(&json!({"id": p["id"]})));
            }
        }
    }
    assert!(
        forward.len() >= 8,
        "the seed's components have pods: {forward:?}"
    );
    let d = app
        .data(r#"{ pods(first: 1000) { nodes { id deployment { id application { name entity { ref } } entity { ref } } } } }"#)
        .await;
    let mut reverse = BTreeSet::new();
    for p in d["pods"]["nodes"].as_array().unwrap() {
        let dep = &p["deployment"];
        if dep.is_null() {
            continue;
        }
        let via_app = dep["application"]["entity"]["ref"].as_str();
        let direct = dep["entity"]["ref"].as_str();
        assert_eq!(
            via_app, direct,
            "Pod→Deployment→Application→Component agrees with the label join for {p}"
        );
        if let Some(r) = direct {
            reverse.insert((
                r.to_string(),
                dep["id"].as_str().unwrap().to_string(),
                p["id"].as_str().unwrap().to_string(),
            ));
        }
    }
    assert_eq!(forward, reverse);
    // The application's workloads are the same deployments.
    let d = app
        .data(r#"{ application(name: "sample-app") { workloads { deployments { name } services { name } pods { name } } } }"#)
        .await;
    assert_eq!(
        d["application"]["workloads"]["deployments"],
        json!([{"name": "sample-app"}])
    );
    assert_eq!(
        d["application"]["workloads"]["services"],
        json!([{"name": "sample-app"}])
    );
    assert_eq!(
        d["application"]["workloads"]["pods"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn a_cluster_that_is_down_degrades_to_a_field_error_and_the_other_answers() {
    let stop = tokio_util::sync::CancellationToken::new();
    let edge = KubeSim::start(seed_objects(&["edge-app"]), None, stop.clone())
        .await
        .unwrap();
    edge.faults.set_down(true);
    let edge_url = edge.url();
    let app = spawn_with(DemoOptions::for_tests(), |s| {
        let mut k = s.kubernetes[0].clone();
        k.name = "edge".into();
        k.url = Some(edge_url.clone());
        k.argocd_destinations = vec!["edge".into()];
        s.kubernetes.push(k);
        s.readiness.initial_sync_timeout_secs = 1.0;
    })
    .await;
    let q = r#"{ deployments(first: 1000) { nodes { cluster name } } }"#;
    let body = app.gql(q).await;
    let names: Vec<&str> = body["data"]["deployments"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["cluster"].as_str().unwrap())
        .collect();
    assert!(
        names.iter().all(|c| *c == "demo") && names.len() >= 4,
        "{body}"
    );
    let err = &body["errors"][0];
    assert_eq!(err["extensions"]["source"], "edge", "{body}");
    assert_eq!(err["extensions"]["code"], "UPSTREAM_UNAVAILABLE");
    assert_eq!(err["path"], json!(["deployments"]));
    // Asking for the down cluster alone: no data, the error.
    let body = app
        .gql(r#"{ deployments(filter: {cluster: "edge"}) { totalCount } }"#)
        .await;
    assert_eq!(body["data"]["deployments"]["totalCount"], 0);
    assert_eq!(body["errors"][0]["extensions"]["source"], "edge");
    // A join that reads every cluster: the healthy one's objects, the down one's error.
    let body = app
        .gql(r#"{ entity(ref: "component:default/sample-app") { ... on Component { kubernetes { deployments { cluster name } } } } }"#)
        .await;
    assert_eq!(
        body["data"]["entity"]["kubernetes"]["deployments"],
        json!([{"cluster": "demo", "name": "sample-app"}]),
        "{body}"
    );
    assert_eq!(body["errors"][0]["extensions"]["source"], "edge");
    assert_eq!(body["errors"][0]["path"], json!(["entity", "kubernetes"]));
    // Unknown cluster: a clear input error.
    let body = app
        .gql(r#"{ deployments(filter: {cluster: "nope"}) { totalCount } }"#)
        .await;
    assert_eq!(crate::helpers::first_code(&body), "BAD_USER_INPUT");
    drop(stop);
}

#[tokio::test]
async fn a_cluster_that_goes_down_serves_its_last_state_with_an_error_and_recovers() {
    let app = spawn_demo().await;
    let sim = &app.world.kubernetes;
    sim.faults.set_down(true);
    sim.drop_watches();
    let q = r#"{ deployments(filter: {namespace: "sample-app"}) { totalCount nodes { name } } }"#;
    let body = wait_for("the cluster reported down", WAIT, || async {
        let b = app.gql(q).await;
        b.get("errors").is_some().then_some(b)
    })
    .await;
    assert_eq!(
        body["data"]["deployments"]["totalCount"], 1,
        "last known state: {body}"
    );
    assert_eq!(body["errors"][0]["extensions"]["source"], "demo");
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("showing its state as of"));
    sim.faults.set_down(false);
    wait_for("the error gone", WAIT, || async {
        app.gql(q).await.get("errors").is_none().then_some(())
    })
    .await;
}

/// Subscribes; returns the connection and the events sent before the server answered a ping
/// (the `initial: true` state).
async fn subscribe(app: &TestApp, query: &str) -> (crate::helpers::Ws, Vec<Value>) {
    let mut ws = crate::helpers::ws_init(&app.addr.to_string()).await;
    let ack = ws.next().await.unwrap().unwrap();
    assert!(ack.to_text().unwrap().contains("connection_ack"));
    ws.send(Message::text(
        json!({"id": "1", "type": "subscribe", "payload": {"query": query}}).to_string(),
    ))
    .await
    .unwrap();
    ws.send(Message::text(json!({"type": "ping"}).to_string()))
        .await
        .unwrap();
    let mut early = Vec::new();
    loop {
        let m = ws.next().await.unwrap().unwrap();
        let v: Value = serde_json::from_str(m.to_text().unwrap()).unwrap();
        match v["type"].as_str() {
            Some("pong") => return (ws, early),
            Some("next") => early.push(v),
            _ => {}
        }
    }
}

/// Rollout events until COMPLETE (or the wait runs out).
async fn rollout_until_complete(ws: &mut crate::helpers::Ws) -> Vec<Value> {
    tokio::time::timeout(WAIT, async {
        let mut events = Vec::new();
        loop {
            let m = ws.next().await.unwrap().unwrap();
            let v: Value = serde_json::from_str(m.to_text().unwrap()).unwrap();
            if v["type"] != "next" {
                continue;
            }
            let e = v["payload"]["data"]["rolloutEvents"].clone();
            let done = e["type"] == "COMPLETE";
            events.push(e);
            if done {
                return events;
            }
        }
    })
    .await
    .expect("the rollout completes")
}

#[tokio::test]
async fn restart_deployment_rolls_pods_and_rollout_events_follow_it() {
    let app = spawn_demo().await;
    let (mut ws, _) = subscribe(
        &app,
        r#"subscription { rolloutEvents(filter: {namespace: "app-2"}) { type cursor name cluster current { state updated desired message } deployment { replicaSets { name } } } }"#,
    )
    .await;
    let before: BTreeSet<String> = app
        .world
        .kubernetes
        .list("pods")
        .iter()
        .filter(|p| p["metadata"]["namespace"] == "app-2")
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    let d = app
        .data(r#"mutation { restartDeployment(cluster: "demo", namespace: "app-2", name: "app-2") { restartedAt auditId deployment { name restartedAt rollout { state } } } }"#)
        .await;
    let r = &d["restartDeployment"];
    assert_eq!(r["deployment"]["restartedAt"], r["restartedAt"]);
    assert_eq!(r["deployment"]["rollout"]["state"], "PROGRESSING");
    let events = rollout_until_complete(&mut ws).await;
    assert!(events
        .iter()
        .all(|e| e["name"] == "app-2" && e["cluster"] == "demo"));
    assert!(
        events.iter().any(|e| e["type"] == "PROGRESS"
            && e["current"]["updated"] == 1
            && e["current"]["desired"] == 2),
        "x/y progress: {events:?}"
    );
    let last = events.last().unwrap();
    assert_eq!(last["current"]["updated"], 2);
    assert_eq!(
        last["deployment"]["replicaSets"].as_array().unwrap().len(),
        2
    );
    // The pods were replaced.
    let after = wait_for("old pods retired in the graph", WAIT, || async {
        let d = app.data(r#"{ deployment(cluster: "demo", namespace: "app-2", name: "app-2") { pods { name ready } } }"#).await;
        let pods = d["deployment"]["pods"].as_array().unwrap().clone();
        (pods.len() == 2 && pods.iter().all(|p| p["ready"] == true)).then_some(pods)
    })
    .await;
    for p in after {
        assert!(!before.contains(p["name"].as_str().unwrap()));
    }
    // Audited.
    let d = app.data(r#"{ auditLog { action target result } }"#).await;
    assert!(d["auditLog"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["action"] == "restartDeployment"
            && a["target"] == "demo/deployments/app-2/app-2"
            && a["result"] == "ok"));
    // Bad input: clear errors.
    let body = app.gql(r#"mutation { restartDeployment(cluster: "demo", namespace: "app-2", name: "nope") { auditId } }"#).await;
    assert_eq!(crate::helpers::first_code(&body), "NOT_FOUND", "{body}");
    let body = app.gql(r#"mutation { restartDeployment(cluster: "mars", namespace: "a", name: "b") { auditId } }"#).await;
    assert_eq!(crate::helpers::first_code(&body), "BAD_USER_INPUT");
}

#[tokio::test]
async fn an_argocd_sync_rolls_the_deployment_and_rollout_events_report_it() {
    let app = spawn_demo().await;
    let (mut ws, initial) = subscribe(
        &app,
        r#"subscription { rolloutEvents(filter: {application: "sample-app"}, initial: true) { type name current { state updated desired } deployment { images } } }"#,
    )
    .await;
    app.world.argocd.push_commit("sample-app", "Release 2");
    app.data(r#"mutation { syncApplication(input: {name: "sample-app"}) { auditId } }"#)
        .await;
    // The current state first.
    assert_eq!(initial.len(), 1, "{initial:?}");
    let first = &initial[0]["payload"]["data"]["rolloutEvents"];
    assert_eq!(first["type"], "INITIAL");
    assert_eq!(first["current"]["state"], "COMPLETE");
    let events = rollout_until_complete(&mut ws).await;
    assert!(events.iter().any(|e| e["type"] == "PROGRESS"), "{events:?}");
    let last = events.last().unwrap();
    assert_eq!(last["type"], "COMPLETE");
    let head = app.world.git.head("yourcompany/sample-app").unwrap().sha;
    let image = last["deployment"]["images"][0].as_str().unwrap();
    assert!(
        image.ends_with(&head[..7]),
        "{image} is the synced revision {head}"
    );
}

#[tokio::test]
async fn filters_paging_and_joins_of_the_other_kinds() {
    let app = spawn_demo().await;
    let sim = &app.world.kubernetes;
    sim.upsert("ingresses", json!({"metadata": {"name": "web", "namespace": "sample-app", "uid": "i1"},
        "spec": {"ingressClassName": "nginx", "tls": [{"hosts": ["sample.example.com"], "secretName": "sample-tls"}],
                 "rules": [{"host": "sample.example.com", "http": {"paths": [
                     {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "sample-app", "port": {"number": 80}}}}]}}]}}));
    let d = wait_for("the ingress", WAIT, || async {
        let d = app.data(r#"{ ingresses(filter: {namespace: "sample-app"}) { nodes { hosts className tls { hosts secretName } rules { host paths { path pathType backend { serviceName servicePort } } } services { name pods { name } } } } }"#).await;
        (d["ingresses"]["nodes"].as_array().unwrap().len() == 1).then_some(d)
    })
    .await;
    let ing = &d["ingresses"]["nodes"][0];
    assert_eq!(ing["hosts"], json!(["sample.example.com"]));
    assert_eq!(
        ing["rules"][0]["paths"][0]["backend"],
        json!({"serviceName": "sample-app", "servicePort": "80"})
    );
    assert_eq!(ing["services"][0]["pods"].as_array().unwrap().len(), 2);
    // Label selector, name text, application filters; keyset paging over every deployment.
    let d = app.data(r#"{ deployments(filter: {labelSelector: "app.kubernetes.io/name in (sample-app,my-app)"}) { nodes { name } } }"#).await;
    assert_eq!(
        d["deployments"]["nodes"],
        json!([{"name": "my-app"}, {"name": "sample-app"}])
    );
    let d = app.data(r#"{ pods(filter: {application: "my-app"}) { totalCount } configMaps(filter: {name: "MY-APP"}) { nodes { keys } } }"#).await;
    assert_eq!(d["pods"]["totalCount"], 2);
    assert_eq!(
        d["configMaps"]["nodes"][0]["keys"],
        json!(["FEATURE_X", "LOG_LEVEL"])
    );
    let total = app.data(r#"{ deployments { totalCount } }"#).await["deployments"]["totalCount"]
        .as_u64()
        .unwrap();
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let d = app.gql_vars(r#"query($a: String) { deployments(first: 3, after: $a) { nodes { id } pageInfo { hasNextPage endCursor } } }"#, json!({"a": after})).await;
        let c = &d["data"]["deployments"];
        seen.extend(
            c["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["id"].as_str().unwrap().to_string()),
        );
        if c["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = c["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen.len() as u64, total);
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), seen.len());
    let body = app
        .gql(r#"{ pods(filter: {labelSelector: "in in in"}) { totalCount } }"#)
        .await;
    assert_eq!(crate::helpers::first_code(&body), "BAD_USER_INPUT");
}

#[tokio::test]
async fn a_crash_loop_shows_on_the_pod_with_its_events_and_clears() {
    let app = spawn_demo().await;
    assert!(app.world.kubernetes.set_crashloop("app-3", "app-3", true));
    let q = r#"{ pods(filter: {namespace: "app-3", waitingReason: "CrashLoopBackOff"}) { nodes { name ready restarts containers { lastExitCode lastReason } events { type reason source } deployment { replicas { ready desired } } } } }"#;
    let d = wait_for("the crash loop in the graph", WAIT, || async {
        let d = app.data(q).await;
        let n = d["pods"]["nodes"].as_array().unwrap();
        (n.len() == 1
            && n[0]["deployment"]["replicas"]["ready"] == 1
            && !n[0]["events"].as_array().unwrap().is_empty())
        .then_some(d)
    })
    .await;
    let p = &d["pods"]["nodes"][0];
    assert_eq!(p["ready"], false);
    assert_eq!(p["containers"][0]["lastExitCode"], 1);
    assert_eq!(
        p["events"][0],
        json!({"type": "Warning", "reason": "BackOff", "source": "kubelet"})
    );
    assert!(app.world.kubernetes.set_crashloop("app-3", "app-3", false));
    wait_for("the crash loop cleared", WAIT, || async {
        (app.data(q).await["pods"]["nodes"]
            .as_array()
            .unwrap()
            .is_empty())
        .then_some(())
    })
    .await;
    // A rollout leaves the controller's events on the Deployment.
    app.data(r#"mutation { restartDeployment(cluster: "demo", namespace: "my-app", name: "my-app") { auditId } }"#).await;
    wait_for("scaling events on the deployment", WAIT, || async {
        let d = app.data(r#"{ deployment(cluster: "demo", namespace: "my-app", name: "my-app") { events { reason source } rollout { state } } }"#).await;
        let ev = d["deployment"]["events"].as_array().unwrap();
        (d["deployment"]["rollout"]["state"] == "COMPLETE"
            && ev.iter().any(|e| e["reason"] == "ScalingReplicaSet" && e["source"] == "deployment-controller"))
            .then_some(())
    })
    .await;
}
