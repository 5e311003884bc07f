//! GraphQL over HTTP as the spec says, and the operational endpoints.

use std::time::Duration;

use idp_graph::demo::DemoOptions;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{json, Value};

use crate::helpers::{first_code, spawn_demo, spawn_with, wait_for};

const Q: &str = "{ entities(first: 1) { totalCount } }";

#[tokio::test]
async fn get_runs_queries_and_refuses_mutations() {
    let app = spawn_demo().await;
    let r = app
        .http
        .get(format!("{}/graphql", app.url))
        .query(&[
            (
                "query",
                "query($k:String){ entities(filter:{kind:$k}) { totalCount } }",
            ),
            ("variables", r#"{"k":"API"}"#),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["data"]["entities"]["totalCount"], 1);

    let r = app
        .http
        .get(format!("{}/graphql", app.url))
        .query(&[("query", "mutation { anything }")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "POST");
    let body: Value = r.json().await.unwrap();
    assert_eq!(first_code(&body), "METHOD_NOT_ALLOWED");

    let r = app
        .http
        .get(format!("{}/graphql", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = app
        .http
        .get(format!("{}/graphql", app.url))
        .query(&[("query", Q), ("variables", "[1]")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn post_takes_only_json_so_a_form_post_cannot_run_anything() {
    let app = spawn_demo().await;
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ] {
        let r = app
            .http
            .post(format!("{}/graphql", app.url))
            .header(CONTENT_TYPE, ct)
            .body(json!({ "query": Q }).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 415, "{ct}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(first_code(&body), "UNSUPPORTED_MEDIA_TYPE");
    }
}

async fn post(
    app: &crate::helpers::TestApp,
    accept: Option<&str>,
    body: String,
) -> (u16, String, Value) {
    let mut req = app
        .http
        .post(format!("{}/graphql", app.url))
        .header(CONTENT_TYPE, "application/json")
        .body(body);
    if let Some(a) = accept {
        req = req.header(ACCEPT, a);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, ct, v)
}

#[tokio::test]
async fn the_accept_header_picks_media_type_and_status_codes() {
    let app = spawn_demo().await;
    let gr = Some("application/graphql-response+json");
    let (s, ct, v) = post(&app, gr, json!({"query": Q}).to_string()).await;
    assert_eq!(
        (s, ct.as_str()),
        (200, "application/graphql-response+json; charset=utf-8")
    );
    assert!(v["data"]["entities"]["totalCount"].as_u64().unwrap() > 0);

    // Validation failure: 400 with graphql-response+json, 200 with application/json.
    let bad = json!({"query": "{ nope }"}).to_string();
    let (s, _, v) = post(&app, gr, bad.clone()).await;
    assert_eq!(s, 400);
    assert_eq!(first_code(&v), "GRAPHQL_VALIDATION_FAILED");
    assert!(v.get("data").is_none() || v["data"].is_null());
    let (s, ct, v) = post(&app, Some("application/json"), bad).await;
    assert_eq!((s, ct.as_str()), (200, "application/json; charset=utf-8"));
    assert_eq!(first_code(&v), "GRAPHQL_VALIDATION_FAILED");

    // Parse failure likewise.
    let (s, _, v) = post(&app, gr, json!({"query": "{ entities { "}).to_string()).await;
    assert_eq!(s, 400);
    assert_eq!(first_code(&v), "GRAPHQL_PARSE_FAILED");
    let (s, _, _) = post(&app, None, json!({"query": "{ entities { "}).to_string()).await;
    assert_eq!(s, 200);

    // Nothing acceptable.
    let r = app
        .http
        .post(format!("{}/graphql", app.url))
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT, "text/html")
        .body(json!({"query": Q}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 406);
}

#[tokio::test]
async fn malformed_requests_get_a_clear_error_never_a_panic() {
    let app = spawn_demo().await;
    let gr = Some("application/graphql-response+json");
    for (body, code) in [
        ("{not json".to_string(), "BAD_REQUEST"),
        ("[]".to_string(), "BATCH_NOT_SUPPORTED"),
        (
            json!([{"query": Q}, {"query": Q}]).to_string(),
            "BATCH_NOT_SUPPORTED",
        ),
        ("\"just a string\"".to_string(), "BAD_REQUEST"),
        (json!({}).to_string(), "BAD_REQUEST"),
        (json!({"query": 5}).to_string(), "BAD_REQUEST"),
        (
            json!({"query": Q, "variables": [1]}).to_string(),
            "BAD_REQUEST",
        ),
        (
            json!({"query": Q, "operationName": 7}).to_string(),
            "BAD_REQUEST",
        ),
    ] {
        let (s, _, v) = post(&app, gr, body.clone()).await;
        assert_eq!(s, 400, "{body}");
        assert_eq!(first_code(&v), code, "{body}");
    }
    // Variables of the wrong type are a request error with a code.
    let (s, _, v) = post(&app, gr, json!({"query": "query($f:Int){ entities(first:$f) { totalCount } }", "variables": {"f": "ten"}}).to_string()).await;
    assert_eq!(s, 400, "{v}");
    assert!(v["errors"][0]["extensions"]["code"].is_string(), "{v}");
    // Subscriptions belong on the websocket.
    let (s, _, v) = post(
        &app,
        gr,
        json!({"query": "subscription { entityEvents { cursor } }"}).to_string(),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(first_code(&v), "BAD_REQUEST");
    // The server is still fine.
    assert!(
        app.data(Q).await["entities"]["totalCount"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[tokio::test]
async fn limits_bound_body_size_depth_and_aliases() {
    let app = spawn_with(
        DemoOptions {
            scale: 0,
            catalog_poll_secs: 0.1,
            ..DemoOptions::for_tests()
        },
        |s| {
            s.limits.max_body_bytes = 4096;
            s.limits.max_depth = 6;
            s.limits.max_aliases = 5;
        },
    )
    .await;
    let huge =
        json!({"query": format!("{{ entities {{ totalCount }} }} # {}", "x".repeat(10_000))})
            .to_string();
    let (s, _, v) = post(&app, None, huge).await;
    assert_eq!(s, 413);
    assert_eq!(first_code(&v), "PAYLOAD_TOO_LARGE");

    let deep = r#"{ entity(ref:"group:app-team") { owner { owner { owner { owner { owner { owner { ref } } } } } } } }"#;
    let (s, _, v) = post(
        &app,
        Some("application/graphql-response+json"),
        json!({"query": deep}).to_string(),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(first_code(&v), "QUERY_TOO_COMPLEX");

    let aliased = format!(
        "{{ {} }}",
        (0..6)
            .map(|i| format!("a{i}: sources {{ name }}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let (s, _, v) = post(
        &app,
        Some("application/graphql-response+json"),
        json!({"query": aliased}).to_string(),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(first_code(&v), "QUERY_TOO_COMPLEX");
}

#[tokio::test]
async fn graphiql_healthz_and_metrics_are_served() {
    let app = spawn_demo().await;
    let r = app.http.get(&app.url).send().await.unwrap();
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    let page = r.text().await.unwrap();
    // The page loads only its own script, which has both endpoints wired.
    let script = page
        .split("<script src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a script tag");
    assert!(script.starts_with("/assets/playground.js?v="), "{script}");
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "{page}"
    );
    let js = app
        .http
        .get(format!("{}{script}", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let js = js.text().await.unwrap();
    assert!(js.contains("/graphql/ws") && js.contains("/graphql"));
    let h = app
        .http
        .get(format!("{}/healthz", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(h.status(), 200);
    app.data(Q).await;
    let _ = app.gql("{ nope }").await;
    let m = app
        .http
        .get(format!("{}/metrics", app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("idp_graphql_requests_total{operation=\"query\",status=\"200\"}"),
        "{m}"
    );
    // The histogram is cumulative: each bucket holds the ones below it, `+Inf` all requests.
    let value = |prefix: &str| -> Vec<f64> {
        m.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
            .collect()
    };
    let buckets = value("idp_graphql_request_duration_seconds_bucket");
    let count = value("idp_graphql_request_duration_seconds_count")[0];
    assert!(count >= 2.0, "{m}");
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    assert_eq!(*buckets.last().unwrap(), count, "{m}");
    assert_eq!(
        buckets[buckets.len() - 2],
        count,
        "every request took under 5 s: {m}"
    );
    let published = value("idp_events_published_total")[0];
    let buffered = value("idp_events_buffered")[0];
    assert!(buffered <= published, "{m}");
    assert!(
        m.contains("idp_graphql_errors_total{code=\"GRAPHQL_VALIDATION_FAILED\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("idp_source_connected{source=\"backstage\",kind=\"backstage\"} 1"),
        "{m}"
    );
    let syncs: f64 = m
        .lines()
        .find(|l| l.starts_with("idp_source_syncs_total{source=\"backstage\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(syncs >= 1.0);
}

#[tokio::test]
async fn readyz_waits_for_the_first_sync_and_names_what_it_waits_for() {
    let opts = DemoOptions {
        scale: 0,
        catalog_poll_secs: 0.1,
        ..DemoOptions::for_tests()
    };
    let world = idp_graph::demo::DemoWorld::start(&opts).await.unwrap();
    world.backstage.faults.set_down(true);
    let (mut settings, secrets) = world.settings(&opts);
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.readiness.initial_sync_timeout_secs = 60.0;
    let app = crate::helpers::spawn_app(settings, secrets, world).await;
    // ArgoCD syncs at once; Backstage is down, so readiness names it alone.
    let body: Value = wait_for(
        "only backstage pending",
        Duration::from_secs(10),
        || async {
            let r = app
                .http
                .get(format!("{}/readyz", app.url))
                .send()
                .await
                .ok()?;
            assert_eq!(r.status(), 503);
            let body: Value = r.json().await.ok()?;
            (body["waitingFor"] == json!(["backstage/backstage"])).then_some(body)
        },
    )
    .await;
    assert_eq!(body["ready"], false);
    app.world.backstage.faults.set_down(false);
    app.wait_ready().await;
}

#[tokio::test]
async fn readiness_stops_waiting_for_a_source_that_never_syncs() {
    let opts = DemoOptions {
        scale: 0,
        catalog_poll_secs: 0.1,
        ..DemoOptions::for_tests()
    };
    let world = idp_graph::demo::DemoWorld::start(&opts).await.unwrap();
    world.backstage.faults.set_down(true);
    let (mut settings, secrets) = world.settings(&opts);
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.readiness.initial_sync_timeout_secs = 0.5;
    let app = crate::helpers::spawn_app(settings, secrets, world).await;
    app.wait_ready().await;
    let d = app.data("{ sources { ready connected lastError } }").await;
    assert_eq!(d["sources"][0]["ready"], true);
    assert_eq!(d["sources"][0]["connected"], false);
}

#[tokio::test]
async fn shutdown_finishes_within_the_grace_period() {
    let mut app = spawn_demo().await;
    app.data(Q).await;
    app.shutdown.cancel();
    let server = app.server.take().unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server stops within the grace period")
        .expect("server task did not panic");
    assert!(result.is_ok());
    wait_for("the port to close", Duration::from_secs(5), || async {
        reqwest::get(format!("{}/healthz", app.url))
            .await
            .is_err()
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn shutdown_under_load_answers_every_request_already_in_flight() {
    let mut app = spawn_demo().await;
    // Each request waits on GitHub for 800 ms, so they are in flight when the signal comes.
    app.world
        .github
        .faults
        .set_latency(Duration::from_millis(800));
    let slugs = app.world.git.slugs();
    let asked = app.world.github.faults.request_count();
    let tasks: Vec<_> = (0..48)
        .map(|i| {
            let (url, slug) = (
                format!("{}/graphql", app.url),
                slugs[i % slugs.len()].clone(),
            );
            tokio::spawn(async move {
                let q = format!(
                    r#"{{ repository(slug: "{slug}") {{ slug latestCommit {{ sha }} }} }}"#
                );
                crate::helpers::post_json(&url, serde_json::json!({ "query": q })).await
            })
        })
        .collect();
    wait_for(
        "requests in flight at GitHub",
        Duration::from_secs(10),
        || async { (app.world.github.faults.request_count() > asked).then_some(()) },
    )
    .await;
    app.shutdown.cancel();
    for t in tasks {
        let v = t.await.expect("an answer, not a dropped connection");
        assert!(v["errors"].is_null(), "{v}");
        assert!(
            v["data"]["repository"]["latestCommit"]["sha"].is_string(),
            "{v}"
        );
    }
    tokio::time::timeout(Duration::from_secs(10), app.server.take().unwrap())
        .await
        .expect("server stops within the grace period")
        .unwrap()
        .unwrap();
}
