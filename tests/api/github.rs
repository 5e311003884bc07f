//! GitHub in the graph: repositories and commits behind ArgoCD revisions, on a budget.

use std::time::Duration;

use idp_graph::demo::DemoOptions;
use serde_json::Value;

use crate::helpers::{first_code, spawn_demo, spawn_with, wait_for, TestApp};

const T: Duration = Duration::from_secs(15);

async fn metric(app: &TestApp, name: &str) -> u64 {
    let m = app
        .http
        .get(format!("{}/metrics", app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    m.lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} in {m}"))
}

#[tokio::test]
async fn the_component_shows_its_repository_and_the_commit_behind_the_deployed_revision() {
    let app = spawn_demo().await;
    let d = app
        .data(r#"{ entity(ref:"component:default/sample-app") { ... on Component { repository { slug defaultBranch latestCommit { sha message } components { ref } }
                   applications { sync { revision commit { sha message author { name login } url } } history { revision commit { sha } } } } } }"#)
        .await;
    let c = &d["entity"];
    let head = app.world.git.head("yourcompany/sample-app").unwrap();
    assert_eq!(c["repository"]["slug"], "yourcompany/sample-app");
    assert_eq!(c["repository"]["defaultBranch"], "main");
    assert_eq!(c["repository"]["latestCommit"]["sha"], head.sha);
    assert_eq!(c["repository"]["latestCommit"]["message"], head.message);
    assert_eq!(
        c["repository"]["components"][0]["ref"],
        "component:default/sample-app"
    );
    let sync = &c["applications"][0]["sync"];
    let deployed = app
        .world
        .git
        .commit("yourcompany/sample-app", sync["revision"].as_str().unwrap())
        .unwrap();
    assert_eq!(sync["commit"]["sha"], deployed.sha);
    assert_eq!(sync["commit"]["message"], deployed.message);
    assert_eq!(sync["commit"]["author"]["name"], deployed.author_name);
    assert_eq!(sync["commit"]["author"]["login"], deployed.author_login);
    for h in c["applications"][0]["history"].as_array().unwrap() {
        assert_eq!(h["commit"]["sha"], h["revision"]);
    }
}

#[tokio::test]
async fn a_second_query_within_the_ttl_makes_no_github_request() {
    let app = spawn_demo().await;
    let q = r#"{ repository(slug: "yourcompany/my-app") { slug stars latestCommit { sha } pullRequests { number } workflowRuns(branch: "main") { conclusion } } }"#;
    let first = app.data(q).await;
    let (requests, _) = app.world.github.counters();
    assert!(requests >= 4);
    let second = app.data(q).await;
    assert_eq!(first, second);
    assert_eq!(app.world.github.counters().0, requests, "served from cache");
}

#[tokio::test]
async fn after_the_ttl_the_refresh_is_a_304_that_costs_no_rate_limit() {
    let app = spawn_with(DemoOptions::for_tests(), |s| {
        if let Some(g) = s.github.as_mut() {
            g.ttl.repository_secs = 0.2;
        }
    })
    .await;
    let q = r#"{ repository(slug: "yourcompany/app-2") { slug description freshness { stale } } }"#;
    let first = app.data(q).await;
    let used = app.world.github.used();
    // Ask until the TTL has passed and a refresh happened: it must be a 304.
    wait_for("a conditional refresh", T, || async {
        assert_eq!(app.data(q).await, first);
        (app.world.github.counters().1 >= 1).then_some(())
    })
    .await;
    assert_eq!(app.world.github.used(), used, "304s are free");
    assert!(metric(&app, "idp_github_not_modified_total").await >= 1);
}

#[tokio::test]
async fn an_exhausted_budget_serves_stale_data_marked_stale_with_rate_limited() {
    let app = spawn_with(DemoOptions::for_tests(), |s| {
        if let Some(g) = s.github.as_mut() {
            g.ttl.repository_secs = 0.2;
        }
    })
    .await;
    let q = r#"{ repository(slug: "yourcompany/app-3") { slug description freshness { stale } } }"#;
    let fresh = app.data(q).await;
    assert_eq!(fresh["repository"]["freshness"]["stale"], false);
    app.world.github.exhaust();
    let body = wait_for("a stale answer", T, || async {
        let body = app.gql(q).await;
        (body["data"]["repository"]["freshness"]["stale"] == true).then_some(body)
    })
    .await;
    assert_eq!(
        body["data"]["repository"]["description"],
        fresh["repository"]["description"]
    );
    assert_eq!(first_code(&body), "RATE_LIMITED");
    assert_eq!(body["errors"][0]["path"][0], "repository");
    assert_eq!(body["errors"][0]["extensions"]["source"], "github");
    // While blocked, nothing more is sent.
    let sent = app.world.github.counters().0;
    app.gql(q).await;
    app.gql(r#"{ repository(slug: "yourcompany/never-seen") { slug } }"#)
        .await;
    assert_eq!(app.world.github.counters().0, sent);
    let s = app
        .data(r#"{ sources { kind rateLimit { limit remaining resetsAt } } }"#)
        .await;
    let gh = s["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "GITHUB")
        .unwrap()
        .clone();
    assert_eq!(gh["rateLimit"]["remaining"], 0);
    assert_eq!(gh["rateLimit"]["limit"], 5000);
}

#[tokio::test]
async fn a_secondary_limit_is_honoured_with_retry_after() {
    let app = spawn_demo().await;
    app.world.github.secondary_limit(1, 3600, 429);
    let body = app
        .gql(r#"{ repository(slug: "yourcompany/idp") { slug } }"#)
        .await;
    assert_eq!(first_code(&body), "RATE_LIMITED");
    assert_eq!(body["data"]["repository"], Value::Null);
    let sent = app.world.github.counters().0;
    let body = app
        .gql(r#"{ repository(slug: "yourcompany/idp") { slug } }"#)
        .await;
    assert_eq!(first_code(&body), "RATE_LIMITED");
    assert_eq!(
        app.world.github.counters().0,
        sent,
        "nothing is sent before Retry-After"
    );
}

#[tokio::test]
async fn fifty_components_cost_one_batched_pass() {
    let app = spawn_with(
        DemoOptions {
            scale: 50,
            ..DemoOptions::for_tests()
        },
        |_| {},
    )
    .await;
    let before = metric(&app, "idp_github_batches_total").await;
    let d = app
        .data(r#"{ entities(filter: {kind: "Component"}, first: 100) { totalCount nodes { ... on Component { repository { slug } } } } }"#)
        .await;
    assert_eq!(d["entities"]["totalCount"], 58);
    let slugs: std::collections::BTreeSet<&str> = d["entities"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["repository"]["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs.len(), 55, "54 app repos + the shared GitOps repo");
    assert_eq!(metric(&app, "idp_github_batches_total").await - before, 1);
    assert_eq!(
        app.world.github.counters().0,
        55,
        "one request per distinct repo, no repeats"
    );
}

#[tokio::test]
async fn bad_slugs_are_user_errors_and_unknown_repos_are_null() {
    let app = spawn_demo().await;
    for bad in ["nope", "a/b/c", "", "a b/c"] {
        let body = app
            .gql(&format!(r#"{{ repository(slug: "{bad}") {{ slug }} }}"#))
            .await;
        assert_eq!(first_code(&body), "BAD_USER_INPUT", "{bad}");
    }
    let d = app
        .data(r#"{ repository(slug: "yourcompany/does-not-exist") { slug } }"#)
        .await;
    assert_eq!(d["repository"], Value::Null);
    let body = app
        .gql(r#"{ repository(slug: "yourcompany/idp") { commit(sha: "xyz") { sha } } }"#)
        .await;
    assert_eq!(first_code(&body), "BAD_USER_INPUT");
    let d = app
        .data(r#"{ repository(slug: "yourcompany/idp") { commit(sha: "0000000000") { sha } } }"#)
        .await;
    assert_eq!(d["repository"]["commit"], Value::Null);
}

#[tokio::test]
async fn long_lists_follow_link_headers() {
    let app = spawn_with(DemoOptions::for_tests(), |s| {
        if let Some(g) = s.github.as_mut() {
            g.page_size = 5;
        }
    })
    .await;
    let d = app.data(r#"{ repository(slug: "yourcompany/sample-app") { pullRequests(state: ALL, first: 12) { number state } } }"#).await;
    let prs = d["repository"]["pullRequests"].as_array().unwrap();
    assert_eq!(prs.len(), 12);
    assert_eq!(prs[0]["number"], 12);
    assert_eq!(prs[11]["number"], 1);
    assert_eq!(
        app.world
            .github
            .requests_to("/repos/yourcompany/sample-app/pulls"),
        3
    );
}

#[tokio::test]
async fn github_unreachable_degrades_one_field_not_the_answer() {
    let app = spawn_demo().await;
    app.world.github.faults.set_down(true);
    let body = app
        .gql(r#"{ application(name: "sample-app") { name sync { status commit { sha } } } }"#)
        .await;
    assert_eq!(body["data"]["application"]["name"], "sample-app");
    assert_eq!(body["data"]["application"]["sync"]["status"], "SYNCED");
    assert_eq!(body["data"]["application"]["sync"]["commit"], Value::Null);
    assert_eq!(first_code(&body), "UPSTREAM_UNAVAILABLE");
    assert_eq!(body["errors"][0]["extensions"]["source"], "github");
}

#[tokio::test]
async fn the_simulated_github_sends_the_headers_github_sends() {
    let app = spawn_demo().await;
    let gh = app.world.github.url();
    let http = reqwest::Client::new();
    let get = |path: &str| {
        http.get(format!("{gh}{path}"))
            .bearer_auth(idp_graph::demo::DEMO_TOKEN)
            .send()
    };
    let r = get("/repos/yourcompany/sample-app").await.unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    for name in [
        "etag",
        "last-modified",
        "cache-control",
        "vary",
        "x-github-request-id",
        "x-github-media-type",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-used",
        "x-ratelimit-reset",
        "x-ratelimit-resource",
    ] {
        assert!(h.contains_key(name), "{name} missing: {h:?}");
    }
    assert!(h["cache-control"].to_str().unwrap().starts_with("private"));
    assert!(h["vary"].to_str().unwrap().contains("Authorization"));
    let v: serde_json::Value = r.json().await.unwrap();
    let pushed = chrono::DateTime::parse_from_rfc3339(v["pushed_at"].as_str().unwrap()).unwrap();
    let lm = chrono::DateTime::parse_from_rfc2822(h["last-modified"].to_str().unwrap()).unwrap();
    assert_eq!(lm, pushed, "Last-Modified is the push time");
    // Errors carry a request id too; /rate_limit is free and carries the core window's headers
    // and every window (core, graphql) in its body.
    let missing = get("/repos/yourcompany/nope").await.unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.headers().contains_key("x-github-request-id"));
    let before = app.world.github.used();
    let rl = get("/rate_limit").await.unwrap();
    assert_eq!(rl.headers()["x-ratelimit-resource"], "core");
    let body: serde_json::Value = rl.json().await.unwrap();
    assert!(body["resources"]["graphql"]["limit"].as_u64().unwrap() > 0);
    assert_eq!(app.world.github.used(), before, "/rate_limit costs nothing");
}
