//! Production switches: introspection and field suggestions off, a CORS allow-list, a
//! per-caller rate limit (429 + Retry-After), `/metrics` on a listener of its own.

use idp_graph::demo::DemoOptions;
use serde_json::Value;

use crate::helpers::{spawn_with, TestApp};

async fn post(app: &TestApp, token: Option<&str>, query: &str) -> (u16, Option<String>, Value) {
    crate::helpers::post_as(app, token, query).await
}

#[tokio::test]
async fn introspection_and_suggestions_can_be_switched_off() {
    let app = spawn_with(DemoOptions::for_tests(), |s| {
        s.limits.introspection = false;
        s.limits.field_suggestions = false;
    })
    .await;
    for q in [
        "{ __schema { types { name } } }",
        r#"{ __type(name: "Query") { name } }"#,
        "query { ...F } fragment F on Query { __schema { queryType { name } } }",
    ] {
        let (_, _, body) = post(&app, None, q).await;
        assert!(body["data"].is_null(), "{body}");
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "INTROSPECTION_DISABLED",
            "{q}"
        );
    }
    // `__typename` is not introspection.
    let (_, _, body) = post(&app, None, "{ __typename }").await;
    assert_eq!(body["data"]["__typename"], "Query");
    let (_, _, body) = post(&app, None, "{ entitie { totalCount } }").await;
    let msg = body["errors"][0]["message"].as_str().unwrap();
    assert!(!msg.contains("Did you mean"), "{msg}");
    // Normal queries are unaffected.
    let (status, _, body) = post(&app, None, "{ entities { totalCount } }").await;
    assert_eq!(status, 200);
    assert!(body["data"]["entities"]["totalCount"].as_u64().unwrap() > 0);

    // With the defaults, both are on (the baseline the switch changes).
    let open = crate::helpers::spawn_demo().await;
    let (_, _, body) = post(&open, None, "{ __schema { queryType { name } } }").await;
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query");
    let (_, _, body) = post(&open, None, "{ entitie { totalCount } }").await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Did you mean"),
        "{body}"
    );
}

#[tokio::test]
async fn only_allowed_origins_get_cors_headers() {
    let app = spawn_with(DemoOptions::for_tests(), |s| {
        s.http.cors_origins = vec!["https://portal.example.com".into()];
    })
    .await;
    let preflight = |origin: &'static str| {
        let (http, url) = (app.http.clone(), format!("{}/graphql", app.url));
        async move {
            http.request(reqwest::Method::OPTIONS, url)
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header(
                    "access-control-request-headers",
                    "authorization,content-type",
                )
                .send()
                .await
                .unwrap()
        }
    };
    let ok = preflight("https://portal.example.com").await;
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://portal.example.com"
    );
    let allowed = ok.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(allowed.contains("authorization"), "{allowed}");
    let evil = preflight("https://evil.example").await;
    assert!(evil.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn a_caller_over_its_rate_gets_429_with_retry_after_and_others_go_on() {
    let app = spawn_with(
        DemoOptions {
            auth: true,
            ..DemoOptions::for_tests()
        },
        |s| s.limits.requests_per_minute = 3,
    )
    .await;
    let tokens = app.world.persona_tokens();
    let (carol, alice) = (tokens[1].2.clone(), tokens[0].2.clone());
    for _ in 0..3 {
        assert_eq!(
            post(&app, Some(&carol), "{ viewer { subject } }").await.0,
            200
        );
    }
    let (status, retry, body) = post(&app, Some(&carol), "{ viewer { subject } }").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
    let secs: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=20).contains(&secs), "{secs}");
    // Another caller has its own budget.
    assert_eq!(
        post(&app, Some(&alice), "{ viewer { subject } }").await.0,
        200
    );
}

#[tokio::test]
async fn metrics_can_live_on_a_listener_of_its_own() {
    let opts = DemoOptions::for_tests();
    let world = idp_graph::demo::DemoWorld::start(&opts).await.unwrap();
    let (mut settings, secrets) = world.settings(&opts);
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.http.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    let app = idp_graph::app::App::build(settings, secrets).await.unwrap();
    let (addr, metrics) = (
        app.local_addr(),
        app.metrics_addr().expect("its own listener"),
    );
    let token = app.shutdown_token();
    tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::new();
    let on_main = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(on_main.status(), 404);
    let text = http
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("idp_"), "{text}");
    token.cancel();
    drop(world);
}
