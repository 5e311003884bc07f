//! The Backstage simulation behaves like the real catalog backend on the wire (the same
//! checks run against the real one in `backstage_real.rs` where they can).

use idp_graph::demo::{seed, BackstageSim, DEMO_TOKEN};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::helpers::{node_json, npm_peer};

async fn sim(scale: usize) -> (BackstageSim, CancellationToken) {
    let token = CancellationToken::new();
    let sim = BackstageSim::start(seed::catalog(scale), DEMO_TOKEN, token.clone())
        .await
        .unwrap();
    (sim, token)
}

async fn get(sim: &BackstageSim, path_and_query: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!("{}{}", sim.url(), path_and_query))
        .bearer_auth(DEMO_TOKEN)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn by_query_pages_with_cursors_that_carry_the_filter() {
    let (sim, _t) = sim(0).await;
    let q = "/api/catalog/entities/by-query?filter=kind=component&orderField=metadata.name,asc&limit=3&fields=metadata.name";
    let (s, p1) = get(&sim, q).await;
    assert_eq!(s, 200);
    assert_eq!(p1["totalItems"], 8);
    assert_eq!(names(&p1), ["app-2", "app-3", "argocd"]);
    assert!(p1["pageInfo"].get("prevCursor").is_none());
    let next = p1["pageInfo"]["nextCursor"].as_str().unwrap();
    // The filter in this request is ignored: the cursor carries kind=component.
    let (_, p2) = get(&sim, &format!("/api/catalog/entities/by-query?cursor={}&limit=3&filter=kind=group&fields=metadata.name", urlencode(next))).await;
    assert_eq!(names(&p2), ["backstage", "ingress-nginx", "my-app"]);
    let prev = p2["pageInfo"]["prevCursor"].as_str().unwrap();
    let (_, back) = get(
        &sim,
        &format!(
            "/api/catalog/entities/by-query?cursor={}&limit=3&fields=metadata.name",
            urlencode(prev)
        ),
    )
    .await;
    assert_eq!(names(&back), names(&p1));
    let next = p2["pageInfo"]["nextCursor"].as_str().unwrap();
    let (_, p3) = get(
        &sim,
        &format!(
            "/api/catalog/entities/by-query?cursor={}&limit=3&fields=metadata.name",
            urlencode(next)
        ),
    )
    .await;
    assert_eq!(names(&p3), ["namespaces", "sample-app"]);
    assert!(p3["pageInfo"].get("nextCursor").is_none());
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn filters_are_or_across_params_and_and_inside_one() {
    let (sim, _t) = sim(0).await;
    let (_, v) = get(
        &sim,
        "/api/catalog/entities/by-query?filter=kind=api&filter=kind=resource&limit=50",
    )
    .await;
    assert_eq!(v["totalItems"], 2);
    let (_, v) = get(
        &sim,
        "/api/catalog/entities/by-query?filter=kind=Component,spec.type=WEBSITE&limit=50",
    )
    .await;
    assert_eq!(names(&v), ["my-app"]);
    let (_, v) = get(&sim, "/api/catalog/entities/by-query?filter=relations.ownedBy=group:default/platform-team,kind=component&limit=50").await;
    assert_eq!(v["totalItems"], 4);
    let (_, v) = get(
        &sim,
        "/api/catalog/entities/by-query?filter=spec.definition&limit=50",
    )
    .await;
    assert_eq!(names(&v), ["sample-api"]);
    let (_, v) = get(
        &sim,
        "/api/catalog/entities/by-query?fullTextFilterTerm=developer%20PORTAL&limit=50",
    )
    .await;
    assert_eq!(names(&v), ["backstage"]);
}

#[tokio::test]
async fn entities_carry_uid_etag_and_relations_both_ways() {
    let (sim, _t) = sim(0).await;
    let (_, v) = get(&sim, "/api/catalog/entities/by-name/group/default/app-team").await;
    assert!(v["metadata"]["uid"].is_string() && v["metadata"]["etag"].is_string());
    let rels: Vec<(String, String)> = v["relations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["type"].as_str().unwrap().into(),
                r["targetRef"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(rels.contains(&("ownerOf".into(), "component:default/sample-app".into())));
    assert!(rels.contains(&("hasMember".into(), "user:default/carol".into())));
    assert!(rels.contains(&("childOf".into(), "group:default/engineering".into())));
    let etag = v["metadata"]["etag"].clone();
    let mut def = sim.definition("group:default/app-team").unwrap();
    def["metadata"]["description"] = json!("changed");
    sim.upsert(def);
    let (_, v2) = get(&sim, "/api/catalog/entities/by-name/group/default/app-team").await;
    assert_ne!(v2["metadata"]["etag"], etag);
    assert_eq!(v2["metadata"]["uid"], v["metadata"]["uid"]);
}

#[tokio::test]
async fn errors_have_the_backstage_shape_and_status() {
    let (sim, _t) = sim(0).await;
    let r = reqwest::get(format!(
        "{}/api/catalog/entities/by-query?limit=2",
        sim.url()
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v,
        json!({"error": {"name": "AuthenticationError", "message": "Missing credentials"},
        "request": {"method": "GET", "url": "/entities/by-query?limit=2"}, "response": {"statusCode": 401}})
    );
    let r = reqwest::Client::new()
        .get(format!("{}/api/catalog/entities/by-query", sim.url()))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (s, v) = get(&sim, "/api/catalog/entities/by-name/component/default/nope").await;
    assert_eq!(s, 404);
    assert_eq!(v["error"]["name"], "NotFoundError");
    assert_eq!(
        v["error"]["message"],
        "No entity named 'nope' found, with kind 'component' in namespace 'default'"
    );
    let (s, v) = get(&sim, "/api/catalog/entities/by-query?cursor=garbage").await;
    assert_eq!(
        (s, v["error"]["name"].as_str().unwrap()),
        (400, "InputError")
    );
    let (s, v) = get(&sim, "/api/catalog/entities/by-query?limit=-1").await;
    assert_eq!(
        (s, v["error"]["message"].as_str().unwrap()),
        (400, "request/query/limit must be >= 0")
    );
}

#[tokio::test]
async fn by_refs_answers_in_request_order_with_null_for_unknown() {
    let (sim, _t) = sim(0).await;
    let r = reqwest::Client::new()
        .post(format!("{}/api/catalog/entities/by-refs", sim.url()))
        .bearer_auth(DEMO_TOKEN)
        .json(&json!({"entityRefs": ["component:default/my-app", "component:default/nope", "api:sample-api"], "fields": ["metadata.name"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v,
        json!({"items": [{"metadata": {"name": "my-app"}}, null, {"metadata": {"name": "sample-api"}}]})
    );
}

#[tokio::test]
async fn facets_count_values() {
    let (sim, _t) = sim(3).await;
    let (_, v) = get(&sim, "/api/catalog/entity-facets?facet=kind").await;
    let kinds = v["facets"]["kind"].as_array().unwrap();
    let component = kinds.iter().find(|f| f["value"] == "Component").unwrap();
    assert_eq!(component["count"], 11);
}

/// The real `@backstage/catalog-client` (from the Backstage peer's packages) reads the
/// simulated catalog: `getEntities` (the older list endpoint, with filter, fields, order,
/// offset and limit), `getEntityByRef` and `queryEntities`.
#[tokio::test]
async fn the_real_catalog_client_reads_the_simulated_catalog() {
    let peer = npm_peer("backstage", "@backstage/catalog-client");
    let world = idp_graph::demo::DemoWorld::start(&idp_graph::demo::DemoOptions::for_tests())
        .await
        .unwrap();
    let (ok, v) = node_json(
        &peer,
        "catalog-client.mjs",
        &[&world.backstage.url(), idp_graph::demo::DEMO_TOKEN],
    )
    .await;
    assert!(ok, "{v}");
    let components: Vec<&str> = v["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let mut sorted = components.clone();
    sorted.sort();
    assert_eq!(components, sorted, "ordered by metadata.name");
    assert!(components.contains(&"sample-app"));
    assert_eq!(
        v["fieldsOnly"],
        serde_json::json!(["kind", "metadata", "spec"])
    );
    assert_eq!(
        v["page"],
        serde_json::json!(components[2..5].to_vec()),
        "offset 2, limit 3"
    );
    assert_eq!(v["one"], "sample-app");
    assert_eq!(v["total"].as_u64().unwrap() as usize, components.len());
    assert!(v["all"].as_u64().unwrap() as usize > components.len());
}

/// Every entity the simulated catalog serves — the seed and generated services — passes
/// `@backstage/catalog-model`'s own envelope, entity and kind validators.
#[tokio::test]
async fn every_entity_served_passes_the_catalog_models_validators() {
    let peer = npm_peer("backstage", "@backstage/catalog-model");
    let opts = idp_graph::demo::DemoOptions {
        scale: 25,
        ..idp_graph::demo::DemoOptions::for_tests()
    };
    let world = idp_graph::demo::DemoWorld::start(&opts).await.unwrap();
    let (ok, v) = node_json(
        &peer,
        "validate-entities.mjs",
        &[&world.backstage.url(), idp_graph::demo::DEMO_TOKEN],
    )
    .await;
    assert!(ok, "violations: {}", v["violations"]);
    assert_eq!(v["violations"], serde_json::json!([]));
    assert!(v["entities"].as_u64().unwrap() >= 47, "{v}");
    println!(
        "backstage schema: {} entities {}, 0 violations",
        v["entities"], v["byKind"]
    );
    world.stop();
}
