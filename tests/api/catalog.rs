//! The catalog in the graph: listing, paging, filters, relations, lookups, freshness.

use std::collections::BTreeSet;
use std::time::Duration;

use idp_graph::demo::DemoOptions;
use serde_json::{json, Value};

use crate::helpers::{first_code, refs, spawn_demo, spawn_with, wait_for};

const COMPONENTS_QUERY: &str = r#"{ entities(filter:{kind:"Component"}) { totalCount nodes { ref name ... on Component { owner { ref } system { ref } } } } }"#;

#[tokio::test]
async fn the_components_query_returns_the_demo_components_with_owner_and_system() {
    let app = spawn_demo().await;
    let data = app.data(COMPONENTS_QUERY).await;
    let e = &data["entities"];
    assert_eq!(e["totalCount"], 8);
    let names: BTreeSet<&str> = e["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    let expected: BTreeSet<&str> = [
        "argocd",
        "ingress-nginx",
        "namespaces",
        "backstage",
        "sample-app",
        "my-app",
        "app-2",
        "app-3",
    ]
    .into();
    assert_eq!(names, expected);
    for n in e["nodes"].as_array().unwrap() {
        assert_eq!(n["system"]["ref"], "system:default/idp", "{n}");
        let owner = n["owner"]["ref"].as_str().unwrap();
        let want = if ["argocd", "ingress-nginx", "namespaces", "backstage"]
            .contains(&n["name"].as_str().unwrap())
        {
            "group:default/platform-team"
        } else {
            "group:default/app-team"
        };
        assert_eq!(owner, want, "{n}");
    }
}

async fn all_refs_by_paging(app: &crate::helpers::TestApp, page: usize) -> (Vec<String>, usize) {
    let mut seen = Vec::new();
    let mut after: Value = Value::Null;
    let mut pages = 0;
    loop {
        let body = app
            .gql_vars(
                "query($first:Int,$after:String){ entities(first:$first, after:$after) { totalCount edges { cursor node { ref } } pageInfo { hasNextPage endCursor } } }",
                json!({"first": page, "after": after}),
            )
            .await;
        assert!(body.get("errors").is_none(), "{body}");
        let conn = &body["data"]["entities"];
        let edges = conn["edges"].as_array().unwrap();
        assert!(edges.len() <= page);
        seen.extend(
            edges
                .iter()
                .map(|e| e["node"]["ref"].as_str().unwrap().to_string()),
        );
        pages += 1;
        if !conn["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            assert_eq!(conn["totalCount"].as_u64().unwrap() as usize, seen.len());
            return (seen, pages);
        }
        assert_eq!(
            edges.last().unwrap()["cursor"],
            conn["pageInfo"]["endCursor"]
        );
        after = conn["pageInfo"]["endCursor"].clone();
    }
}

#[tokio::test]
async fn paging_through_all_entities_yields_each_exactly_once() {
    let app = spawn_with(
        DemoOptions {
            scale: 40,
            catalog_poll_secs: 0.1,
            ..DemoOptions::for_tests()
        },
        |_| {},
    )
    .await;
    let in_simulation = app.world.backstage.entities().len();
    assert!(in_simulation > 60);
    for page in [1, 7, 50, 1000] {
        let (seen, pages) = all_refs_by_paging(&app, page).await;
        let unique: BTreeSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "duplicates with page size {page}");
        assert_eq!(seen.len(), in_simulation, "page size {page}");
        assert_eq!(pages, in_simulation.div_ceil(page).max(1));
        let mut sorted = seen.clone();
        sorted.sort();
        assert_eq!(sorted, seen, "listing is sorted by ref");
    }
}

#[tokio::test]
async fn paging_bounds_and_garbage_cursors_are_user_errors() {
    let app = spawn_demo().await;
    for q in [
        "{ entities(first: -1) { totalCount } }",
        "{ entities(first: 100000) { totalCount } }",
        r#"{ entities(after: "not-a-cursor") { totalCount } }"#,
        r#"{ entities(after: "aGVsbG8") { totalCount } }"#,
    ] {
        let body = app.gql(q).await;
        assert_eq!(first_code(&body), "BAD_USER_INPUT", "{q}: {body}");
        assert_eq!(body["data"], Value::Null, "{q}");
    }
}

async fn filtered(app: &crate::helpers::TestApp, filter: &str) -> Vec<String> {
    let data = app
        .data(&format!(
            "{{ entities(filter: {filter}, first: 1000) {{ totalCount nodes {{ ref }} }} }}"
        ))
        .await;
    let r = refs(&data["entities"]["nodes"]);
    assert_eq!(
        data["entities"]["totalCount"].as_u64().unwrap() as usize,
        r.len()
    );
    r
}

#[tokio::test]
async fn every_filter_narrows_the_listing() {
    let app = spawn_demo().await;
    assert_eq!(
        filtered(&app, r#"{kind: "api"}"#).await,
        ["api:default/sample-api"]
    );
    assert_eq!(filtered(&app, r#"{kind: "Group"}"#).await.len(), 3);
    assert_eq!(
        filtered(&app, r#"{namespace: "default"}"#).await.len(),
        app.world.backstage.entities().len()
    );
    assert!(filtered(&app, r#"{namespace: "nope"}"#).await.is_empty());
    // owner: short form, full form and user owner all work
    let by_team = filtered(&app, r#"{owner: "app-team"}"#).await;
    assert_eq!(
        by_team,
        filtered(&app, r#"{owner: "group:default/app-team"}"#).await
    );
    assert_eq!(
        by_team,
        [
            "api:default/sample-api",
            "component:default/app-2",
            "component:default/app-3",
            "component:default/my-app",
            "component:default/sample-app",
            "resource:default/app-db"
        ]
    );
    assert_eq!(
        filtered(&app, r#"{system: "idp", kind: "resource"}"#).await,
        ["resource:default/app-db"]
    );
    assert_eq!(
        filtered(&app, r#"{lifecycle: "PRODUCTION", kind: "component"}"#)
            .await
            .len(),
        8
    );
    assert_eq!(
        filtered(&app, r#"{type: "website"}"#).await,
        ["component:default/my-app"]
    );
    assert_eq!(filtered(&app, r#"{tag: "platform"}"#).await.len(), 4);
    assert_eq!(
        filtered(
            &app,
            r#"{annotation: {key: "argocd/app-name", value: "my-app"}}"#
        )
        .await,
        ["component:default/my-app"]
    );
    assert_eq!(
        filtered(&app, r#"{annotation: {key: "github.com/project-slug"}}"#)
            .await
            .len(),
        8
    );
    assert_eq!(
        filtered(&app, r#"{text: "developer PORTAL"}"#).await,
        ["component:default/backstage"]
    );
    assert_eq!(
        filtered(
            &app,
            r#"{text: "app", kind: "component", owner: "app-team", type: "service"}"#
        )
        .await,
        [
            "component:default/app-2",
            "component:default/app-3",
            "component:default/sample-app"
        ]
    );
    let body = app
        .gql(r#"{ entities(filter: {owner: "bad ref!"}) { totalCount } }"#)
        .await;
    assert_eq!(first_code(&body), "BAD_USER_INPUT");
}

#[tokio::test]
async fn relations_are_walked_both_ways() {
    let app = spawn_demo().await;
    let d = app
        .data(
            r#"{
          c: entity(ref: "component:default/sample-app") { ... on Component {
               owner { ref } system { ref } providesApis { ref } dependencyOf { nodes { ref } } } }
          g: entity(ref: "group:default/app-team") { ... on Group {
               owns(first: 100) { nodes { ref } } members { nodes { ref } } parent { ref } } }
          e: entity(ref: "group:engineering") { ... on Group { children { ref } } }
          s: entity(ref: "system:idp") { ... on System { domain { ref } components(first: 100) { totalCount nodes { ref } } apis { nodes { ref } } resources { nodes { ref } } } }
          d: entity(ref: "domain:platform") { ... on Domain { systems { nodes { ref } } } }
          a: entity(ref: "api:sample-api") { ... on API { apiProvidedBy { ref } apiConsumedBy { ref } } }
          m: entity(ref: "component:my-app") { ... on Component { consumesApis { ref } dependsOn { nodes { ref } } } }
          r: entity(ref: "resource:app-db") { dependencyOf { nodes { ref } } }
          u: entity(ref: "user:carol") { ... on User { memberOf { ref } } }
        }"#,
        )
        .await;
    // owner / owns
    assert_eq!(d["c"]["owner"]["ref"], "group:default/app-team");
    assert!(refs(&d["g"]["owns"]["nodes"]).contains(&"component:default/sample-app".to_string()));
    // partOf / hasPart
    assert_eq!(d["c"]["system"]["ref"], "system:default/idp");
    assert_eq!(d["s"]["components"]["totalCount"], 8);
    assert!(
        refs(&d["s"]["components"]["nodes"]).contains(&"component:default/sample-app".to_string())
    );
    assert_eq!(refs(&d["s"]["apis"]["nodes"]), ["api:default/sample-api"]);
    assert_eq!(
        refs(&d["s"]["resources"]["nodes"]),
        ["resource:default/app-db"]
    );
    assert_eq!(d["s"]["domain"]["ref"], "domain:default/platform");
    assert_eq!(refs(&d["d"]["systems"]["nodes"]), ["system:default/idp"]);
    // providesApi / apiProvidedBy, consumesApi / apiConsumedBy
    assert_eq!(refs(&d["c"]["providesApis"]), ["api:default/sample-api"]);
    assert_eq!(
        refs(&d["a"]["apiProvidedBy"]),
        ["component:default/sample-app"]
    );
    assert_eq!(refs(&d["m"]["consumesApis"]), ["api:default/sample-api"]);
    assert_eq!(refs(&d["a"]["apiConsumedBy"]), ["component:default/my-app"]);
    // dependsOn / dependencyOf
    assert_eq!(
        refs(&d["m"]["dependsOn"]["nodes"]),
        ["resource:default/app-db"]
    );
    assert_eq!(
        refs(&d["r"]["dependencyOf"]["nodes"]),
        ["component:default/my-app"]
    );
    assert_eq!(
        refs(&d["c"]["dependencyOf"]["nodes"]),
        ["component:default/app-2"]
    );
    // memberOf / members, parent / children
    assert_eq!(refs(&d["u"]["memberOf"]), ["group:default/app-team"]);
    assert_eq!(
        refs(&d["g"]["members"]["nodes"]),
        ["user:default/carol", "user:default/dave"]
    );
    assert_eq!(d["g"]["parent"]["ref"], "group:default/engineering");
    assert_eq!(
        refs(&d["e"]["children"]),
        ["group:default/app-team", "group:default/platform-team"]
    );
}

#[tokio::test]
async fn entity_lookup_answers_null_for_missing_and_bad_user_input_for_malformed_refs() {
    let app = spawn_demo().await;
    let d = app
        .data(r#"{ a: entity(ref: "component:default/nope") { ref } b: entity(ref: "Component:Default/Sample-App") { ref name kind } }"#)
        .await;
    assert_eq!(d["a"], Value::Null);
    assert_eq!(d["b"]["ref"], "component:default/sample-app");
    assert_eq!(d["b"]["kind"], "Component");
    for bad in [
        "sample-app",
        "",
        "component:",
        "component:default/a/b",
        "comp onent:x",
    ] {
        let body = app
            .gql_vars(
                "query($r:String!){ entity(ref:$r) { ref } }",
                json!({ "r": bad }),
            )
            .await;
        assert_eq!(first_code(&body), "BAD_USER_INPUT", "{bad:?}: {body}");
        assert_eq!(body["errors"][0]["path"], json!(["entity"]));
    }
}

#[tokio::test]
async fn join_annotations_are_typed() {
    let app = spawn_demo().await;
    let d = app
        .data(r#"{ entity(ref: "component:sample-app") { argocdAppNames argocdInstanceName kubernetesId kubernetesNamespace githubSlug annotation(key: "argocd/app-name") links { url } spec } }"#)
        .await;
    let e = &d["entity"];
    assert_eq!(e["argocdAppNames"], json!(["sample-app"]));
    assert_eq!(e["argocdInstanceName"], "main");
    assert_eq!(e["kubernetesId"], "sample-app");
    assert_eq!(e["kubernetesNamespace"], "sample-app");
    assert_eq!(e["githubSlug"], "yourcompany/sample-app");
    assert_eq!(e["annotation"], "sample-app");
    assert_eq!(e["spec"]["type"], "service");
}

async fn backstage_source(app: &crate::helpers::TestApp) -> Value {
    let d = app
        .data("{ sources { name kind url connected stale lastSyncAt lastError objectCount errorCount } }")
        .await;
    d["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "BACKSTAGE")
        .cloned()
        .expect("backstage in sources")
}

#[tokio::test]
async fn sources_lists_the_simulated_backstage() {
    let app = spawn_demo().await;
    let s = backstage_source(&app).await;
    assert_eq!(s["url"], app.world.backstage.url());
    assert_eq!(s["connected"], true);
    assert_eq!(
        s["objectCount"].as_u64().unwrap() as usize,
        app.world.backstage.entities().len()
    );
    assert!(s["lastSyncAt"].is_string());
}

#[tokio::test]
async fn the_last_snapshot_keeps_serving_while_backstage_is_down() {
    let app = spawn_demo().await;
    let before = app.data(COMPONENTS_QUERY).await;
    app.world.backstage.faults.set_down(true);
    let s = wait_for("sources to flip", Duration::from_secs(10), || async {
        let s = backstage_source(&app).await;
        (s["connected"] == false).then_some(s)
    })
    .await;
    assert_eq!(s["stale"], true);
    assert!(
        s["lastError"]
            .as_str()
            .unwrap()
            .contains(&app.world.backstage.url()),
        "{s}"
    );
    assert!(s["errorCount"].as_u64().unwrap() >= 1);
    // Same answer as before, marked stale.
    assert_eq!(app.data(COMPONENTS_QUERY).await, before);
    let f = app
        .data(
            r#"{ entity(ref: "component:sample-app") { freshness { source stale observedAt } } }"#,
        )
        .await;
    assert_eq!(f["entity"]["freshness"]["stale"], true);
    assert_eq!(f["entity"]["freshness"]["source"], "backstage");
    // And recovers.
    app.world.backstage.faults.set_down(false);
    wait_for("reconnect", Duration::from_secs(10), || async {
        (backstage_source(&app).await["connected"] == true).then_some(())
    })
    .await;
}

#[tokio::test]
async fn errors_and_malformed_bodies_from_backstage_keep_the_snapshot() {
    let app = spawn_demo().await;
    let before = app.data(COMPONENTS_QUERY).await;
    for fault in ["error", "malformed"] {
        match fault {
            "error" => app.world.backstage.faults.set_error_rate(1.0),
            _ => app.world.backstage.faults.set_malformed(true),
        }
        let s = wait_for("a failed poll", Duration::from_secs(10), || async {
            let s = backstage_source(&app).await;
            (s["connected"] == false).then_some(s)
        })
        .await;
        let err = s["lastError"].as_str().unwrap().to_string();
        assert!(
            if fault == "error" {
                err.contains("HTTP 500")
            } else {
                err.contains("cannot read")
            },
            "{err}"
        );
        assert_eq!(app.data(COMPONENTS_QUERY).await, before);
        app.world.backstage.faults.clear();
        wait_for("recovery", Duration::from_secs(10), || async {
            (backstage_source(&app).await["connected"] == true).then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn a_backstage_edit_shows_up_after_the_next_poll() {
    let app = spawn_demo().await;
    let sim = &app.world.backstage;
    let mut def = sim.definition("component:default/app-3").unwrap();
    def["metadata"]["description"] = json!("Edited in Backstage");
    def["spec"]["owner"] = json!("platform-team");
    sim.upsert(def);
    sim.upsert(json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
        "metadata": {"name": "brand-new"}, "spec": {"type": "service", "lifecycle": "beta", "owner": "app-team"}}));
    assert!(sim.remove("resource:default/app-db"));
    let d = wait_for("the edit in the graph", Duration::from_secs(10), || async {
        let d = app
            .data(r#"{ e: entity(ref: "component:app-3") { description owner { ref } } n: entity(ref: "component:brand-new") { ref } r: entities(filter: {kind: "resource"}) { totalCount } }"#)
            .await;
        (d["e"]["description"] == "Edited in Backstage").then_some(d)
    })
    .await;
    assert_eq!(d["e"]["owner"]["ref"], "group:default/platform-team");
    assert_eq!(d["n"]["ref"], "component:default/brand-new");
    assert_eq!(d["r"]["totalCount"], 0);
    let owns = app
        .data(r#"{ entity(ref: "group:platform-team") { owns(first: 100) { nodes { ref } } } }"#)
        .await;
    assert!(refs(&owns["entity"]["owns"]["nodes"]).contains(&"component:default/app-3".to_string()));
}

#[tokio::test]
async fn an_entity_registered_since_the_last_poll_is_found_through_by_refs() {
    // Poll once an hour: only the on-demand lookup can find the new entity.
    let app = spawn_with(
        DemoOptions {
            scale: 0,
            catalog_poll_secs: 3600.0,
            ..DemoOptions::for_tests()
        },
        |_| {},
    )
    .await;
    app.world.backstage.upsert(json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
        "metadata": {"name": "just-registered"}, "spec": {"type": "service", "owner": "app-team", "system": "idp"}}));
    let before = app.world.backstage.faults.request_count();
    let d = app
        .data(r#"{ a: entity(ref: "component:just-registered") { ref owner { ref } } b: entity(ref: "component:still-missing") { ref } c: entity(ref: "component:also-missing") { ref } }"#)
        .await;
    assert_eq!(d["a"]["ref"], "component:default/just-registered");
    assert_eq!(d["a"]["owner"]["ref"], "group:default/app-team");
    assert_eq!(d["b"], Value::Null);
    // Three misses in one request: one batched by-refs call.
    assert_eq!(app.world.backstage.faults.request_count() - before, 1);
    // Asked again right away: answered from the cache, no upstream call.
    app.data(r#"{ b: entity(ref: "component:still-missing") { ref } }"#)
        .await;
    assert_eq!(app.world.backstage.faults.request_count() - before, 1);
}

#[tokio::test]
async fn a_wrong_backstage_token_is_reported_in_sources_without_the_token() {
    let opts = DemoOptions::for_tests();
    let world = idp_graph::demo::DemoWorld::start(&opts).await.unwrap();
    let (mut settings, _) = world.settings(&opts);
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.readiness.initial_sync_timeout_secs = 0.3;
    let secrets = idp_graph::config::ResolvedSecrets::default().with(
        idp_graph::state::SourceKind::Backstage,
        "backstage",
        "wrong-token-value-123",
    );
    let app = crate::helpers::spawn_app(settings, secrets, world).await;
    app.wait_ready().await;
    let s = backstage_source(&app).await;
    assert_eq!(s["connected"], false);
    let err = s["lastError"].as_str().unwrap();
    assert!(err.contains("rejected the credentials (HTTP 401)"), "{err}");
    assert!(!s.to_string().contains("wrong-token-value-123"));
    assert_eq!(
        app.data("{ entities { totalCount } }").await["entities"]["totalCount"],
        0
    );
}
