//! The response cache: kept answers are served again (`x-idp-cache: hit`), an upstream change is
//! in the very next answer once the state has applied it, callers who see different things
//! never share an entry, on-demand values are not kept past their TTL, and a polling GET gets
//! `304 Not Modified` until its answer changes.

use std::time::Duration;

use idp_graph::demo::DemoOptions;
use serde_json::{json, Value};

use crate::helpers::{next_for, spawn_demo, spawn_with, wait_for, ws_subscribe, TestApp};

const T: Duration = Duration::from_secs(10);

/// POSTs a query as `token`'s bearer: (`x-idp-cache`, body).
async fn ask(app: &TestApp, token: Option<&str>, query: &str) -> (String, Value) {
    let mut r = app
        .http
        .post(format!("{}/graphql", app.url))
        .json(&json!({ "query": query }));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    assert_eq!(r.status(), 200);
    let cache = r.headers()["x-idp-cache"].to_str().unwrap().to_string();
    (cache, r.json().await.unwrap())
}

/// Subscribes to sample-app's events; returns the socket, past `connection_ack`.
async fn follow_sample_app(app: &TestApp) -> crate::helpers::Ws {
    ws_subscribe(
        &app.addr.to_string(),
        r#"subscription { applicationEvents(filter: {names: ["sample-app"]}) { type current { health } } }"#,
    )
    .await
}

/// The next event's `current.health`.
async fn next_health(ws: &mut crate::helpers::Ws) -> String {
    next_for(ws, "1").await["data"]["applicationEvents"]["current"]["health"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn an_upstream_change_is_in_the_very_next_answer_once_the_state_has_it() {
    let app = spawn_demo().await;
    let q =
        r#"{ application(name: "sample-app") { health { status } } applications { totalCount } }"#;
    let (first, a) = ask(&app, None, q).await;
    let (second, b) = ask(&app, None, q).await;
    assert_eq!((first.as_str(), second.as_str()), ("miss", "hit"));
    assert_eq!(a, b);

    // Flip health back and forth; after each event (published once the state applied the
    // change), the very next answer shows it — never the kept one.
    let mut ws = follow_sample_app(&app).await;
    for (i, health) in ["Degraded", "Healthy"].iter().cycle().take(20).enumerate() {
        app.world
            .argocd
            .set_health("sample-app", health, Some("cache test"));
        let seen = next_health(&mut ws).await;
        assert_eq!(seen, health.to_uppercase(), "flip {i}");
        let (_, body) = ask(&app, None, q).await;
        assert_eq!(
            body["data"]["application"]["health"]["status"],
            health.to_uppercase(),
            "flip {i}: {body}"
        );
        // And it is kept again until the next change.
        assert_eq!(ask(&app, None, q).await.0, "hit", "flip {i}");
    }
    // Mutations are never kept.
    let m = r#"mutation { refreshApplication(input: {name: "sample-app"}) { auditId } }"#;
    let misses = app.metric("idp_response_cache_misses_total").await;
    assert!(misses >= 21, "the first ask and one per flip: {misses}");
    assert_eq!(ask(&app, None, m).await.0, "miss");
    assert_eq!(ask(&app, None, m).await.0, "miss");
    assert_eq!(
        app.metric("idp_response_cache_misses_total").await,
        misses,
        "a mutation is not a cache miss (it was never a candidate)"
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("idp_response_cache_hits_total "),
        "{metrics}"
    );
    assert!(metrics.contains("idp_response_cache_invalidated_total "));
}

#[tokio::test]
async fn callers_who_see_different_things_never_share_an_answer() {
    let app = spawn_with(
        DemoOptions {
            auth: true,
            ..DemoOptions::for_tests()
        },
        |_| {},
    )
    .await;
    let personas = app.world.persona_tokens();
    let (alice, carol) = (personas[0].2.clone(), personas[1].2.clone());
    let dave = app.world.backstage.user_token("user:default/dave", 3600);
    let q = "{ applications { totalCount nodes { name viewerCan { sync } } } }";
    let count = |v: &Value| v["data"]["applications"]["totalCount"].as_u64().unwrap();

    let (c, a) = ask(&app, Some(&alice), q).await;
    assert_eq!((c.as_str(), count(&a)), ("miss", 8));
    let (c, b) = ask(&app, Some(&carol), q).await;
    assert_eq!(
        (c.as_str(), count(&b)),
        ("miss", 4),
        "carol got alice's answer"
    );
    let (c, anon) = ask(&app, None, q).await;
    assert_eq!(
        c, "miss",
        "anonymous sees the public boundary read-only: not carol's answer"
    );
    assert_eq!(count(&anon), 4);
    assert_ne!(anon, b, "viewerCan differs");
    // Dave is in carol's groups: same grants, so the same answer, shared.
    let (c, d) = ask(&app, Some(&dave), q).await;
    assert_eq!((c.as_str(), &d), ("hit", &b));
    assert_eq!(ask(&app, Some(&alice), q).await, ("hit".to_string(), a));

    // An answer that shows who is asking is the asker's alone, even within a class.
    let who = "{ viewer { subject } }";
    let (_, c1) = ask(&app, Some(&carol), who).await;
    let (c2, d1) = ask(&app, Some(&dave), who).await;
    assert_eq!(c1["data"]["viewer"]["subject"], "user:default/carol");
    assert_eq!(c2, "miss");
    assert_eq!(d1["data"]["viewer"]["subject"], "user:default/dave");
}

#[tokio::test]
async fn on_demand_values_are_not_kept_past_their_ttl() {
    let app = spawn_with(DemoOptions::for_tests(), |s| {
        if let Some(g) = s.github.as_mut() {
            g.ttl.pull_requests_secs = 1.0;
        }
    })
    .await;
    let q = r#"{ repository(slug: "yourcompany/sample-app") { pullRequests { number } } }"#;
    assert_eq!(ask(&app, None, q).await.0, "miss");
    assert_eq!(ask(&app, None, q).await.0, "hit");
    // Once the pull requests' TTL has passed, the answer is made again (asking GitHub again).
    let asked = app.world.github.faults.request_count();
    wait_for("the kept answer to expire", T, || async {
        (ask(&app, None, q).await.0 == "miss").then_some(())
    })
    .await;
    assert!(app.world.github.faults.request_count() > asked);
    // Resource trees come from ArgoCD on demand each time: never kept.
    let tree = r#"{ application(name: "sample-app") { resourceTree { nodes { kind name } } } }"#;
    assert_eq!(ask(&app, None, tree).await.0, "miss");
    assert_eq!(ask(&app, None, tree).await.0, "miss");
}

#[tokio::test]
async fn a_polling_get_gets_304_until_its_answer_changes() {
    let app = spawn_demo().await;
    let url = format!(
        "{}/graphql?query={}",
        app.url,
        url::form_urlencoded::byte_serialize(
            br#"{ application(name: "sample-app") { health { status } } }"#
        )
        .collect::<String>()
    );
    let get = |etag: Option<String>| {
        let (http, url) = (app.http.clone(), url.clone());
        async move {
            let mut r = http.get(url);
            if let Some(e) = etag {
                r = r.header("if-none-match", e);
            }
            let r = r.send().await.unwrap();
            let etag = r
                .headers()
                .get("etag")
                .map(|v| v.to_str().unwrap().to_string());
            let cc = r
                .headers()
                .get("cache-control")
                .map(|v| v.to_str().unwrap().to_string());
            (r.status().as_u16(), etag, cc, r.text().await.unwrap())
        }
    };
    let (status, etag, cc, body) = get(None).await;
    assert_eq!(status, 200);
    assert_eq!(cc.as_deref(), Some("private, no-cache"));
    let etag = etag.expect("an ETag");
    let (status, again, _, empty) = get(Some(etag.clone())).await;
    assert_eq!(
        (status, again.as_ref(), empty.as_str()),
        (304, Some(&etag), "")
    );

    let mut ws = follow_sample_app(&app).await;
    app.world.argocd.set_health("sample-app", "Degraded", None);
    assert_eq!(next_health(&mut ws).await, "DEGRADED");
    let (status, new_etag, _, new_body) = get(Some(etag.clone())).await;
    assert_eq!(status, 200);
    assert_ne!(new_etag.unwrap(), etag);
    assert_ne!(new_body, body);
    assert!(new_body.contains("DEGRADED"));
}

/// `sources`' `lastSyncAt` of the ArgoCD instance `main` (moves with every completed list).
async fn argocd_last_sync(app: &TestApp) -> String {
    let d = app.data("{ sources { name kind lastSyncAt } }").await;
    d["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "ARGOCD" && s["name"] == "main")
        .and_then(|s| s["lastSyncAt"].as_str())
        .expect("main has synced")
        .to_string()
}

#[tokio::test]
async fn an_argocd_relist_that_observes_nothing_new_keeps_the_cached_answer() {
    let app = spawn_with(DemoOptions::for_tests(), |s| {
        s.argocd[0].relist_interval_secs = 0.2;
    })
    .await;
    let q = r#"{ applications { totalCount nodes { name health { status } sync { status } } } }"#;
    let (_, first) = ask(&app, None, q).await;
    assert_eq!(ask(&app, None, q).await.0, "hit");
    // Several complete re-lists of the same objects happen (observed, not slept for) ...
    for round in 0..3 {
        let before = argocd_last_sync(&app).await;
        wait_for("a completed ArgoCD re-list", T, || async {
            (argocd_last_sync(&app).await != before).then_some(())
        })
        .await;
        // ... and the kept answer is still served, unchanged.
        let (cache, body) = ask(&app, None, q).await;
        assert_eq!(cache, "hit", "after re-list {round}");
        assert_eq!(body, first);
    }
    // A real change drops it: the next answer is computed afresh and shows the change.
    app.world
        .argocd
        .set_health("sample-app", "Degraded", Some("relist test"));
    let changed = wait_for("the change in an answer", T, || async {
        let (cache, body) = ask(&app, None, q).await;
        let degraded = body["data"]["applications"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "sample-app" && a["health"]["status"] == "DEGRADED");
        degraded.then_some(cache)
    })
    .await;
    assert_eq!(
        changed, "miss",
        "the first answer with the change is computed afresh"
    );
    assert_eq!(ask(&app, None, q).await.0, "hit");
}
