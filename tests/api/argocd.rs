//! ArgoCD in the graph: live applications from list + stream, joins, actions and refusals,
//! several instances, and the stream dropping.

use std::collections::BTreeMap;
use std::time::Duration;

use idp_graph::config::{ArgoCdSettings, TokenSource};
use idp_graph::demo::{argocd, ArgoCdSim, DemoOptions, DemoWorld, DEMO_TOKEN};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::helpers::{first_code, node_json, npm_peer, spawn_app, spawn_demo, wait_for, TestApp};

const T: Duration = Duration::from_secs(15);

async fn app_state(app: &TestApp, name: &str) -> Value {
    app.data(&format!(
        r#"{{ application(name: "{name}") {{ sync {{ status revision }} health {{ status }} operationState {{ phase }} history {{ historyId revision }} }} }}"#
    ))
    .await["application"]
        .clone()
}

#[tokio::test]
async fn the_sample_app_query_answers_and_the_component_reaches_it() {
    let app = spawn_demo().await;
    let d = app
        .data(r#"{ application(name:"sample-app") { project sync { status revision comparedTo { sources { repoURL path } destination { namespace } } } health { status } lastSyncedAt history { id revision deployedAt } }
                  entity(ref:"component:default/sample-app") { ... on Component { applications { name instance project } deploymentStatus { applications worstHealth anyOutOfSync latestRevision } } } }"#)
        .await;
    let a = &d["application"];
    assert_eq!(a["project"], "applications");
    assert_eq!(a["sync"]["status"], "SYNCED");
    assert_eq!(
        a["sync"]["comparedTo"]["sources"][0]["repoURL"],
        "https://github.com/yourcompany/sample-app.git"
    );
    assert_eq!(
        a["sync"]["comparedTo"]["destination"]["namespace"],
        "sample-app"
    );
    assert_eq!(a["health"]["status"], "HEALTHY");
    assert!(a["lastSyncedAt"].is_string());
    let history = a["history"].as_array().unwrap();
    assert_eq!(history.len(), 3);
    assert_eq!(history.last().unwrap()["revision"], a["sync"]["revision"]);
    let sim = app.world.argocd.apps_json();
    assert_eq!(
        a["sync"]["revision"],
        sim["sample-app"]["status"]["sync"]["revision"]
    );
    let c = &d["entity"];
    assert_eq!(
        c["applications"],
        json!([{"name": "sample-app", "instance": "main", "project": "applications"}])
    );
    assert_eq!(c["deploymentStatus"]["applications"], 1);
    assert_eq!(
        c["deploymentStatus"]["latestRevision"],
        a["sync"]["revision"]
    );
    // and back: application → entity
    let back = app
        .data(r#"{ application(name:"my-app") { entity { ref } } }"#)
        .await;
    assert_eq!(
        back["application"]["entity"]["ref"],
        "component:default/my-app"
    );
}

#[tokio::test]
async fn a_change_in_argocd_arrives_through_the_stream_without_polling() {
    // Re-list only hourly: only the stream can deliver the change in time.
    let app = spawn_relist(3600.0).await;
    let sha = app.world.argocd.push_commit("app-2", "Bump app-2").unwrap();
    let a = wait_for("OutOfSync in the graph", T, || async {
        let a = app_state(&app, "app-2").await;
        (a["sync"]["status"] == "OUT_OF_SYNC").then_some(a)
    })
    .await;
    assert_eq!(a["sync"]["revision"], sha);
    app.world
        .argocd
        .set_health("app-2", "Degraded", Some("crash looping"));
    wait_for("Degraded in the graph", T, || async {
        (app_state(&app, "app-2").await["health"]["status"] == "DEGRADED").then_some(())
    })
    .await;
}

async fn spawn_relist(relist: f64) -> TestApp {
    crate::helpers::spawn_with(DemoOptions::for_tests(), |s| {
        s.argocd[0].relist_interval_secs = relist;
    })
    .await
}

/// What both sides must agree on, per app.
fn summary_of_sim(sim: &BTreeMap<String, Value>) -> BTreeMap<String, Value> {
    sim.iter()
        .map(|(n, a)| {
            let hist: Vec<Value> = a["status"]["history"].as_array().unwrap().iter().map(|h| h["id"].clone()).collect();
            (n.clone(), json!({
                "sync": a["status"]["sync"]["status"].as_str().unwrap().to_uppercase().replace("OUTOFSYNC", "OUT_OF_SYNC"),
                "revision": a["status"]["sync"]["revision"],
                "health": a["status"]["health"]["status"].as_str().unwrap().to_uppercase(),
                "history": hist,
            }))
        })
        .collect()
}

async fn summary_of_graph(app: &TestApp) -> BTreeMap<String, Value> {
    let d = app
        .data("{ applications(first: 1000) { nodes { name sync { status revision } health { status } history { historyId } } } }")
        .await;
    d["applications"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let hist: Vec<Value> = a["history"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["historyId"].clone())
                .collect();
            (
                a["name"].as_str().unwrap().to_string(),
                json!({
                    "sync": a["sync"]["status"], "revision": a["sync"]["revision"],
                    "health": a["health"]["status"], "history": hist,
                }),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_stream_killed_repeatedly_still_ends_equal_to_argocd() {
    let app = spawn_relist(3600.0).await;
    let sim = &app.world.argocd;
    // One app deleted per round: a stream's opening burst names only the apps that exist, so
    // only a re-list can tell the watcher one is gone.
    let doomed: Vec<String> = sim
        .apps_json()
        .into_keys()
        .filter(|n| n != "app-2" && n != "backstage")
        .take(5)
        .collect();
    assert_eq!(doomed.len(), 5, "apps enough to delete one per round");
    for (round, gone) in doomed.iter().enumerate() {
        wait_for("a stream to be open", T, || async {
            (sim.open_streams() > 0).then_some(())
        })
        .await;
        // The changes are made while no stream is open and none can open (ArgoCD down), so
        // no live event carries them: the watcher must re-list after it reconnects.
        sim.faults.set_down(true);
        sim.drop_streams();
        wait_for("every stream closed", T, || async {
            (sim.open_streams() == 0).then_some(())
        })
        .await;
        let lists = sim.list_count();
        sim.push_commit("app-2", &format!("round {round}"));
        sim.set_health(
            "backstage",
            if round % 2 == 0 {
                "Degraded"
            } else {
                "Healthy"
            },
            None,
        );
        assert!(sim.delete_app(gone));
        if round == 3 {
            sim.inject_garbage();
        }
        sim.faults.set_down(false);
        // The re-list is observed: a list answered after the changes, then the deletion in
        // the graph (before any periodic re-list: those are an hour apart here).
        wait_for("a re-list after the changes", T, || async {
            (sim.list_count() > lists).then_some(())
        })
        .await;
        wait_for("the deleted app gone from the graph", T, || async {
            let have = summary_of_graph(&app).await;
            (!have.contains_key(gone.as_str())).then_some(())
        })
        .await;
    }
    wait_for("the graph to equal the simulation", T, || async {
        let have = summary_of_graph(&app).await;
        (have == summary_of_sim(&sim.apps_json())).then_some(())
    })
    .await;
}

#[tokio::test]
async fn sync_and_rollback_drive_the_simulated_app_and_history_grows() {
    let app = spawn_demo().await;
    let sim = &app.world.argocd;
    let head = sim.push_commit("sample-app", "Feature X").unwrap();
    wait_for("OutOfSync", T, || async {
        (app_state(&app, "sample-app").await["sync"]["status"] == "OUT_OF_SYNC").then_some(())
    })
    .await;
    let r = app
        .data(r#"mutation { syncApplication(input: {name: "sample-app", prune: true}) { application { name operationState { phase } } auditId upstreamResponse } }"#)
        .await;
    assert_eq!(
        r["syncApplication"]["application"]["operationState"]["phase"],
        "RUNNING"
    );
    assert_eq!(
        r["syncApplication"]["upstreamResponse"]["operation"]["sync"]["prune"],
        true
    );
    let a = wait_for("Synced and Healthy", T, || async {
        let a = app_state(&app, "sample-app").await;
        (a["sync"]["status"] == "SYNCED" && a["health"]["status"] == "HEALTHY").then_some(a)
    })
    .await;
    let history = a["history"].as_array().unwrap().clone();
    assert_eq!(history.len(), 4);
    assert_eq!(history.last().unwrap()["revision"], head);
    assert_eq!(a["operationState"]["phase"], "SUCCEEDED");

    let first = history[0].clone();
    app.data(&format!(r#"mutation {{ rollbackApplication(input: {{name: "sample-app", id: {}}}) {{ auditId }} }}"#, first["historyId"])).await;
    let a = wait_for("history to grow with the rollback", T, || async {
        let a = app_state(&app, "sample-app").await;
        (a["history"].as_array().unwrap().len() == 5 && a["operationState"]["phase"] == "SUCCEEDED")
            .then_some(a)
    })
    .await;
    assert_eq!(
        a["history"].as_array().unwrap().last().unwrap()["revision"],
        first["revision"]
    );
    // The older revision is deployed; git's head is newer, so ArgoCD says OutOfSync.
    assert_eq!(a["sync"]["status"], "OUT_OF_SYNC");
    let audit = app
        .data("{ auditLog(first: 2) { action target result principal } }")
        .await;
    assert_eq!(
        audit["auditLog"][0],
        json!({"action": "rollbackApplication", "target": "main/argocd/sample-app", "result": "ok", "principal": "anonymous"})
    );
    assert_eq!(audit["auditLog"][1]["action"], "syncApplication");
}

async fn mutation_code(app: &TestApp, m: &str) -> (String, Value) {
    let body = app.gql(m).await;
    assert_eq!(body["data"], Value::Null, "{m}: {body}");
    (first_code(&body), body["errors"][0].clone())
}

#[tokio::test]
async fn refused_actions_give_the_right_codes() {
    let app = spawn_demo().await;
    let sim = &app.world.argocd;
    // Auto-sync apps refuse rollback.
    let (code, err) = mutation_code(
        &app,
        r#"mutation { rollbackApplication(input: {name: "my-app", id: 0}) { auditId } }"#,
    )
    .await;
    assert_eq!(code, "CONFLICT");
    assert!(
        err["message"].as_str().unwrap().contains("auto-sync"),
        "{err}"
    );
    assert_eq!(err["extensions"]["source"], "main");
    // An unknown history id.
    let (code, _) = mutation_code(
        &app,
        r#"mutation { rollbackApplication(input: {name: "sample-app", id: 999}) { auditId } }"#,
    )
    .await;
    assert_eq!(code, "BAD_USER_INPUT");
    // Nothing to terminate.
    let (code, _) = mutation_code(
        &app,
        r#"mutation { terminateApplicationOperation(input: {name: "app-2"}) { auditId } }"#,
    )
    .await;
    assert_eq!(code, "CONFLICT");
    // A second sync while one runs.
    app.data(r#"mutation { syncApplication(input: {name: "app-2"}) { auditId } }"#)
        .await;
    let (code, err) = mutation_code(
        &app,
        r#"mutation { syncApplication(input: {name: "app-2"}) { auditId } }"#,
    )
    .await;
    assert_eq!(code, "CONFLICT", "{err}");
    // ...which can be terminated.
    let r = app.data(r#"mutation { terminateApplicationOperation(input: {name: "app-2"}) { application { operationState { phase message } } } }"#).await;
    assert_eq!(
        r["terminateApplicationOperation"]["application"]["operationState"]["phase"],
        "FAILED"
    );
    // ArgoCD's RBAC says no.
    sim.deny_actions(true);
    let (code, _) = mutation_code(
        &app,
        r#"mutation { syncApplication(input: {name: "sample-app"}) { auditId } }"#,
    )
    .await;
    assert_eq!(code, "FORBIDDEN");
    sim.deny_actions(false);
    // Unknown app, empty name.
    let (code, _) = mutation_code(
        &app,
        r#"mutation { syncApplication(input: {name: "nope"}) { auditId } }"#,
    )
    .await;
    assert_eq!(code, "NOT_FOUND");
    let (code, _) = mutation_code(
        &app,
        r#"mutation { refreshApplication(input: {name: " "}) { auditId } }"#,
    )
    .await;
    assert_eq!(code, "BAD_USER_INPUT");
    // ArgoCD unreachable.
    sim.faults.set_down(true);
    let (code, err) = mutation_code(
        &app,
        r#"mutation { refreshApplication(input: {name: "sample-app", hard: true}) { auditId } }"#,
    )
    .await;
    assert_eq!(code, "UPSTREAM_UNAVAILABLE", "{err}");
    sim.faults.set_down(false);
    // Failures are audited too.
    let audit = app.data("{ auditLog(first: 20) { action result } }").await;
    let results: Vec<&str> = audit["auditLog"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["result"].as_str().unwrap())
        .collect();
    assert!(
        results.contains(&"FORBIDDEN")
            && results.contains(&"CONFLICT")
            && results.contains(&"UPSTREAM_UNAVAILABLE"),
        "{results:?}"
    );
}

#[tokio::test]
async fn refresh_asks_argocd_to_reconcile() {
    let app = spawn_demo().await;
    let before = app
        .data(r#"{ application(name: "app-3") { reconciledAt } }"#)
        .await;
    let r = app
        .data(r#"mutation { refreshApplication(input: {name: "app-3", hard: true}) { application { reconciledAt } upstreamResponse } }"#)
        .await;
    assert_eq!(
        r["refreshApplication"]["upstreamResponse"]["refresh"],
        "hard"
    );
    assert!(
        r["refreshApplication"]["application"]["reconciledAt"].as_str()
            >= before["application"]["reconciledAt"].as_str()
    );
}

#[tokio::test]
async fn two_instances_with_same_named_apps_stay_apart() {
    let opts = DemoOptions::for_tests();
    let world = DemoWorld::start(&opts).await.unwrap();
    let token = CancellationToken::new();
    let edge = ArgoCdSim::start(
        argocd::seed_apps(0),
        world.git.clone(),
        "edge-token",
        opts.argo_timing.clone(),
        token.clone(),
    )
    .await
    .unwrap();
    let (mut settings, mut secrets) = world.settings(&opts);
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.argocd.push(ArgoCdSettings {
        name: "edge".into(),
        url: edge.url(),
        token: TokenSource::default(),
        relist_interval_secs: 300.0,
        timeout_secs: 5.0,
        max_backoff_secs: 30.0,
    });
    secrets.insert(
        idp_graph::state::SourceKind::ArgoCd,
        "edge",
        "edge-token".to_string().into(),
    );
    let app = spawn_app(settings, secrets, world).await;
    app.wait_ready().await;

    let body = app
        .gql(r#"{ application(name: "sample-app") { id } }"#)
        .await;
    assert_eq!(first_code(&body), "BAD_USER_INPUT");
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("edge/argocd/sample-app"));
    let d = app
        .data(r#"{ m: application(name: "sample-app", instance: "main") { key instance } e: application(name: "sample-app", instance: "edge") { key instance }
                  all: applications { totalCount } edge: applications(filter: {instance: "edge"}) { totalCount } }"#)
        .await;
    assert_eq!(d["m"]["key"], "main/argocd/sample-app");
    assert_eq!(d["e"]["key"], "edge/argocd/sample-app");
    assert_eq!(d["all"]["totalCount"], 16);
    assert_eq!(d["edge"]["totalCount"], 8);
    // A change on one instance does not touch the other. (The repos are shared, so pause the
    // push's effect on edge by changing only health.)
    edge.set_health("app-3", "Degraded", Some("edge only"));
    wait_for("edge app-3 degraded", T, || async {
        let d = app.data(r#"{ e: application(name: "app-3", instance: "edge") { health { status } } m: application(name: "app-3", instance: "main") { health { status } } }"#).await;
        (d["e"]["health"]["status"] == "DEGRADED").then_some(d)
    })
    .await;
    let d = app
        .data(r#"{ m: application(name: "app-3", instance: "main") { health { status } } }"#)
        .await;
    assert_eq!(d["m"]["health"]["status"], "HEALTHY");
    // Actions go to the named instance.
    app.data(r#"mutation { syncApplication(input: {name: "app-2", instance: "edge"}) { application { id } } }"#).await;
    let apps = edge.apps_json();
    assert!(apps["app-2"]["status"]["operationState"].is_object());
    assert!(app.world.argocd.apps_json()["app-2"]["status"]["operationState"].is_null());
    let (code, _) = mutation_code(
        &app,
        r#"mutation { syncApplication(input: {name: "app-2"}) { auditId } }"#,
    )
    .await;
    assert_eq!(code, "BAD_USER_INPUT", "ambiguous without an instance");
    token.cancel();
}

#[tokio::test]
async fn unknown_instances_and_apps_are_null_or_not_found_never_a_500() {
    let app = spawn_demo().await;
    let d = app
        .data(r#"{ a: application(name: "nope") { id } b: application(name: "sample-app", instance: "nope") { id } c: application(name: "sample-app", namespace: "elsewhere") { id } d: applications(filter: {instance: "nope"}) { totalCount } }"#)
        .await;
    assert_eq!(d["a"], Value::Null);
    assert_eq!(d["b"], Value::Null);
    assert_eq!(d["c"], Value::Null);
    assert_eq!(d["d"]["totalCount"], 0);
    let (code, _) = mutation_code(&app, r#"mutation { syncApplication(input: {name: "sample-app", instance: "nope"}) { auditId } }"#).await;
    assert_eq!(code, "NOT_FOUND");
}

#[tokio::test]
async fn application_filters_select_on_the_server() {
    let app = spawn_demo().await;
    app.world.argocd.push_commit("app-2", "x");
    app.world.argocd.set_health("sample-app", "Degraded", None);
    wait_for("changes to arrive", T, || async {
        let d = app
            .data(r#"{ applications(filter: {healthStatus: DEGRADED}) { nodes { name } } }"#)
            .await;
        (d["applications"]["nodes"] == json!([{"name": "sample-app"}])).then_some(())
    })
    .await;
    let count = |f: &'static str| {
        let app = &app;
        async move {
            app.data(&format!("{{ applications(filter: {f}) {{ totalCount }} }}"))
                .await["applications"]["totalCount"]
                .as_u64()
                .unwrap()
        }
    };
    assert_eq!(count("{project: \"platform\"}").await, 4);
    assert_eq!(count("{syncStatus: OUT_OF_SYNC}").await, 1);
    assert_eq!(count("{names: [\"my-app\", \"app-3\", \"nope\"]}").await, 2);
    assert_eq!(count("{name: \"APP\"}").await, 4);
    assert_eq!(count("{labelSelector: \"team=platform-team\"}").await, 4);
    assert_eq!(
        count("{labelSelector: \"team in (app-team),app.kubernetes.io/part-of\"}").await,
        4
    );
    assert_eq!(
        count("{repoURL: \"https://github.com/yourcompany/idp\"}").await,
        4
    );
    assert_eq!(count("{destinationNamespace: \"my-app\"}").await, 1);
    assert_eq!(
        count(
            "{destinationCluster: \"https://kubernetes.default.svc\", project: \"applications\"}"
        )
        .await,
        4
    );
    let body = app
        .gql(r#"{ applications(filter: {labelSelector: "team in app"}) { totalCount } }"#)
        .await;
    assert_eq!(first_code(&body), "BAD_USER_INPUT");
    let p = app.data("{ platform { applications health { status count } projects { name applications sync { status count } } } }").await;
    assert_eq!(p["platform"]["applications"], 8);
    assert!(p["platform"]["health"]
        .as_array()
        .unwrap()
        .contains(&json!({"status": "DEGRADED", "count": 1})));
}

#[tokio::test]
async fn the_resource_tree_is_fetched_on_demand_and_cached_briefly() {
    let app = spawn_demo().await;
    let before = app.world.argocd.faults.request_count();
    let q = r#"{ application(name: "my-app") { resourceTree { nodes { kind name parentRefs { kind name } } } } }"#;
    let d = app.data(q).await;
    let nodes = d["application"]["resourceTree"]["nodes"]
        .as_array()
        .unwrap();
    assert!(nodes
        .iter()
        .any(|n| n["kind"] == "Pod" && n["parentRefs"][0]["kind"] == "ReplicaSet"));
    app.data(q).await;
    assert_eq!(
        app.world.argocd.faults.request_count() - before,
        1,
        "second ask is cached"
    );
    app.world.argocd.faults.set_down(true);
    let body = app
        .gql(r#"{ application(name: "sample-app") { name resourceTree { nodes { kind } } } }"#)
        .await;
    assert_eq!(
        body["data"]["application"]["name"], "sample-app",
        "the rest of the answer stands"
    );
    // The spec's "handled as though the field returned null": present, and null.
    assert_eq!(
        body["data"]["application"].get("resourceTree"),
        Some(&Value::Null),
        "{body}"
    );
    assert_eq!(first_code(&body), "UPSTREAM_UNAVAILABLE");
    assert_eq!(body["errors"][0]["extensions"]["source"], "main");
}

/// The same for a subscription's events: an event whose on-demand field failed carries the
/// field, null, beside the error.
#[tokio::test]
async fn a_subscription_event_has_its_errored_field_present_and_null() {
    let app = spawn_demo().await;
    let mut ws = crate::helpers::ws_subscribe(
        &app.addr.to_string(),
        r#"subscription { applicationEvents(filter: {names: ["sample-app"]}) { type application { name resourceTree { nodes { kind } } } } }"#,
    )
    .await;
    // The open watch stream still carries the change; the tree is a new request, refused.
    app.world.argocd.faults.set_down(true);
    app.world
        .argocd
        .set_health("sample-app", "Degraded", Some("subscription test"));
    let event = crate::helpers::next_for(&mut ws, "1").await;
    let application = &event["data"]["applicationEvents"]["application"];
    assert_eq!(application["name"], "sample-app", "{event}");
    assert_eq!(
        application.get("resourceTree"),
        Some(&Value::Null),
        "{event}"
    );
    assert_eq!(first_code(&event), "UPSTREAM_UNAVAILABLE", "{event}");
}

#[tokio::test]
async fn argocd_down_keeps_the_last_state_marked_stale() {
    let app = spawn_relist(0.3).await;
    app.world.argocd.faults.set_down(true);
    app.world.argocd.drop_streams();
    let s = wait_for("sources to flip", T, || async {
        let d = app
            .data("{ sources { kind name connected stale lastError } }")
            .await;
        let s = d["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["kind"] == "ARGOCD")
            .cloned()
            .unwrap();
        (s["connected"] == false).then_some(s)
    })
    .await;
    assert_eq!(s["stale"], true);
    let d = app.data(r#"{ applications { totalCount } application(name: "sample-app") { freshness { stale source observedAt } } }"#).await;
    assert_eq!(d["applications"]["totalCount"], 8);
    assert_eq!(d["application"]["freshness"]["stale"], true);
    assert_eq!(d["application"]["freshness"]["source"], "main");
    app.world.argocd.faults.set_down(false);
    wait_for("reconnect", T, || async {
        let d = app
            .data(r#"{ application(name: "sample-app") { freshness { stale } } }"#)
            .await;
        (d["application"]["freshness"]["stale"] == false).then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_simulation_speaks_argocd_errors_and_both_stream_framings() {
    let world = DemoWorld::start(&DemoOptions::for_tests()).await.unwrap();
    let url = world.argocd.url();
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{url}/api/v1/applications"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "no session information", "code": 16, "message": "no session information"})
    );
    let r = http
        .get(format!("{url}/api/v1/applications/nope"))
        .bearer_auth(DEMO_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = http
        .get(format!(
            "{url}/api/v1/applications/nope?project=applications"
        ))
        .bearer_auth(DEMO_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let list: Value = http
        .get(format!("{url}/api/v1/applications"))
        .bearer_auth(DEMO_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 8);
    assert!(list["metadata"]["resourceVersion"].is_string());
    // NDJSON: the ADDED burst, one compact object per line.
    let mut r = http
        .get(format!("{url}/api/v1/stream/applications"))
        .bearer_auth(DEMO_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/json");
    let mut buf = String::new();
    while buf.lines().count() < 8 {
        buf.push_str(std::str::from_utf8(&r.chunk().await.unwrap().unwrap()).unwrap());
    }
    let first: Value = serde_json::from_str(buf.lines().next().unwrap()).unwrap();
    assert_eq!(first["result"]["type"], "ADDED");
    assert_eq!(first["result"]["application"]["metadata"]["name"], "app-2");
    // SSE: `data: ... ` frames and `:` keepalives.
    let mut r = http
        .get(format!("{url}/api/v1/stream/applications"))
        .bearer_auth(DEMO_TOKEN)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let mut buf = String::new();
    while !buf.contains("\n:\n") {
        buf.push_str(std::str::from_utf8(&r.chunk().await.unwrap().unwrap()).unwrap());
    }
    assert!(
        buf.starts_with("data: {\"result\":{\"application\""),
        "{}",
        &buf[..80]
    );
}

/// Every Application (listed and fetched one by one, the seed and 25 generated, one of them
/// mid-sync with its `operation` and running `operationState`) and every AppProject the
/// simulation serves passes Argo CD's own CRD schemas (`@kubernetes-models/argo-cd`) — as
/// seeded, in the middle of the demo's weather (pushes, auto-syncs running, app-3 degraded),
/// and once the weather has settled (histories grown).
#[tokio::test]
async fn every_application_and_project_served_passes_argocds_crd_schemas() {
    let peer = npm_peer("argocd", "@kubernetes-models/argo-cd");
    let opts = DemoOptions {
        scale: 25,
        ..DemoOptions::for_tests()
    };
    let world = DemoWorld::start(&opts).await.unwrap();
    let validate = |when: &'static str| {
        let (peer, url) = (peer.clone(), world.argocd.url());
        async move {
            let (_, v) = node_json(
                &peer,
                "validate-applications.mjs",
                &[&url, idp_graph::demo::DEMO_TOKEN],
            )
            .await;
            assert_eq!(v["violations"], serde_json::json!([]), "{when}: {v}");
            assert!(v["applications"].as_u64().unwrap() >= 33, "{v}");
            assert!(v["projects"].as_u64().unwrap() >= 1, "{v}");
            println!(
                "argocd schema ({when}): {} applications (each listed and fetched), {} projects, 0 violations",
                v["applications"], v["projects"]
            );
        }
    };
    assert!(world.argocd.start_sync("sample-app"));
    validate("seeded").await;

    let histories = |world: &DemoWorld| -> usize {
        world
            .argocd
            .apps_json()
            .values()
            .map(|a| a["status"]["history"].as_array().map_or(0, Vec::len))
            .sum()
    };
    let before = histories(&world);
    world.weather_now(9, Duration::from_secs(1));
    validate("mid-weather").await;
    wait_for(
        "the weather's syncs to finish and app-3 to recover",
        T,
        || {
            let apps = world.argocd.apps_json();
            let settled = histories(&world) > before
                && apps
                    .values()
                    .all(|a| a["status"]["operationState"]["phase"] != "Running")
                && apps
                    .get("app-3")
                    .is_some_and(|a| a["status"]["health"]["status"] == "Healthy");
            async move { settled.then_some(()) }
        },
    )
    .await;
    validate("after the weather").await;
    world.stop();
}
