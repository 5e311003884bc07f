//! Replicas sharing state on a real Redis (`cluster:`): two `idp-graph serve` processes against
//! one demo world and one `redis-server`. An APQ registration made on one runs on the other;
//! one rate-limit budget per caller across both; a webhook delivery is applied once; a GitHub
//! answer fetched by one is served by the other without asking GitHub again; and with Redis
//! stopped both keep answering from what each holds, then share again once it is back.
//!
//! Skipped (with a note) where `redis-server` is not installed.

use std::path::Path;
use std::time::Duration;

use futures::future::join_all;
use idp_graph::demo::github::{push_payload, sign};
use idp_graph::demo::{DemoOptions, DemoWorld};
use idp_graph::http::persisted::sha256_hex;
use serde_json::{json, Value};

use crate::helpers::{serve_process_with_github, wait_for, wait_ready_at, RedisServer};

const T: Duration = Duration::from_secs(30);
const HOOK_SECRET: &str = "shared-hook-secret";
const SLUG: &str = "yourcompany/sample-app";

fn redis() -> Option<RedisServer> {
    let r = RedisServer::start(false);
    if r.is_none() {
        eprintln!("skipped: redis-server is not installed (apt-get install redis-server)");
    }
    r
}

/// The `cluster:` and `events:` config of replica `id` on `redis` (secrets in files in `dir`),
/// plus `extra` YAML.
fn cluster_yaml(dir: &Path, redis: &RedisServer, id: &str, extra: &str) -> String {
    let url = dir.join("redis-url");
    let key = dir.join("cursor-key");
    std::fs::write(&url, redis.url()).unwrap();
    std::fs::write(&key, "a-cursor-key-shared-by-all-replicas-0123456789").unwrap();
    format!(
        "cluster: {{ redis_url_file: '{}', replica_id: {id} }}\nevents: {{ cursor_key_file: '{}' }}\n{extra}",
        url.display(),
        key.display()
    )
}

/// The `github:` additions for webhooks (the secret in a file in `dir`).
fn github_hooks(dir: &Path) -> String {
    let path = dir.join("hook-secret");
    std::fs::write(&path, HOOK_SECRET).unwrap();
    format!(", webhook_secret_file: '{}'", path.display())
}

/// Two replicas' base URLs (`http://host:port`); the processes are killed on drop.
struct Pair {
    a: String,
    b: String,
    _children: [crate::helpers::ServeChild; 2],
    _dir: tempfile::TempDir,
}

/// Two replicas on `redis`, against `world`, with `extra` YAML; ready.
async fn pair(world: &DemoWorld, redis: &RedisServer, hooks: bool, extra: &str) -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let gh = if hooks {
        github_hooks(dir.path())
    } else {
        String::new()
    };
    let a = serve_process_with_github(world, &gh, &cluster_yaml(dir.path(), redis, "a", extra));
    let b = serve_process_with_github(world, &gh, &cluster_yaml(dir.path(), redis, "b", extra));
    wait_ready_at(&a.base, T).await;
    wait_ready_at(&b.base, T).await;
    Pair {
        a: a.base.clone(),
        b: b.base.clone(),
        _children: [a, b],
        _dir: dir,
    }
}

/// POSTs a GraphQL body to `base`: status and JSON answer.
async fn post(base: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}/graphql"))
        .json(&body)
        .send()
        .await
        .expect("request sent");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn apq(hash: &str) -> Value {
    json!({"persistedQuery": {"version": 1, "sha256Hash": hash}})
}

async fn metrics(base: &str) -> String {
    reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn fallbacks(metrics: &str, step: &str) -> u64 {
    let prefix = format!("idp_shared_state_fallbacks_total{{step=\"{step}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in {metrics}"))
}

#[tokio::test]
async fn an_apq_hash_registered_on_one_replica_runs_on_the_other() {
    let Some(redis) = redis() else { return };
    let world = DemoWorld::start(&DemoOptions::for_tests()).await.unwrap();
    let p = pair(&world, &redis, false, "").await;
    let doc = "query SharedApq { sources { name } }";
    let hash = sha256_hex(doc);

    let (status, before) = post(&p.b, json!({"extensions": apq(&hash)})).await;
    assert_eq!(status, 200, "{before}");
    assert_eq!(
        before["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_FOUND"
    );
    let (status, registered) = post(&p.a, json!({"query": doc, "extensions": apq(&hash)})).await;
    assert_eq!(status, 200);
    assert!(registered["errors"].is_null(), "{registered}");

    let (status, on_b) = post(&p.b, json!({"extensions": apq(&hash)})).await;
    assert_eq!(status, 200);
    assert!(on_b["errors"].is_null(), "{on_b}");
    assert_eq!(on_b["data"], registered["data"]);
    // A document that does not match its hash is still refused, and registers nothing.
    let (status, _) = post(
        &p.a,
        json!({"query": "{ __typename }", "extensions": apq(&"0".repeat(64))}),
    )
    .await;
    assert_eq!(status, 400);
    let (_, none) = post(&p.b, json!({"extensions": apq(&"0".repeat(64))})).await;
    assert_eq!(
        none["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_FOUND"
    );
}

#[tokio::test]
async fn two_replicas_share_one_rate_limit_per_caller() {
    let Some(redis) = redis() else { return };
    let world = DemoWorld::start(&DemoOptions::for_tests()).await.unwrap();
    let p = pair(
        &world,
        &redis,
        false,
        "limits: { requests_per_minute: 30 }\n",
    )
    .await;
    // 30 to each replica, all at once.
    let answers = join_all((0..60).map(|i| {
        let base = if i % 2 == 0 { &p.a } else { &p.b };
        post(base, json!({"query": "{ __typename }"}))
    }))
    .await;
    let accepted = answers.iter().filter(|(s, _)| *s == 200).count();
    assert!(
        (30..=33).contains(&accepted),
        "{accepted} of 60 accepted with a budget of 30/min"
    );
    for (status, body) in answers.iter().filter(|(s, _)| *s != 200) {
        assert_eq!(*status, 429, "{body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
    }
    // The budget was decided on Redis, not by each replica alone.
    for base in [&p.a, &p.b] {
        assert_eq!(fallbacks(&metrics(base).await, "rate_limit"), 0);
    }
}

#[tokio::test]
async fn a_webhook_delivery_is_applied_once_and_its_effect_reaches_every_replica() {
    let Some(redis) = redis() else { return };
    let world = DemoWorld::start(&DemoOptions::for_tests()).await.unwrap();
    let p = pair(&world, &redis, true, "").await;
    let q = json!({"query": format!(r#"{{ repository(slug: "{SLUG}") {{ latestCommit {{ sha message }} }} }}"#)});
    let head = |v: &Value| v["data"]["repository"]["latestCommit"]["sha"].clone();
    let before = world.git.head(SLUG).unwrap();
    for base in [&p.a, &p.b] {
        let (status, v) = post(base, q.clone()).await;
        assert_eq!(status, 200);
        assert_eq!(head(&v), before.sha.as_str(), "{v}");
    }
    let rest = || {
        world
            .github
            .requests_to(&format!("/repos/{SLUG}/commits/main"))
    };
    let asked = rest();

    // Pushed on GitHub; its delivery reaches A, then is redelivered to B and to A again.
    let commit = world.git.push(SLUG, "Applied once", "alice").unwrap();
    let body = push_payload(&world.git.repo(SLUG).unwrap(), &before.sha, &commit).to_string();
    let deliver = |base: String| {
        let body = body.clone();
        async move {
            let r = reqwest::Client::new()
                .post(format!("{base}/webhooks/github"))
                .header("content-type", "application/json")
                .header("x-github-event", "push")
                .header("x-github-delivery", "7f1e6a10-0000-4000-8000-shared-test")
                .header("x-hub-signature-256", sign(HOOK_SECRET, body.as_bytes()))
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, first) = deliver(p.a.clone()).await;
    assert_eq!(status, 202, "{first}");
    assert!(first["invalidated"].as_u64().unwrap() > 0, "{first}");
    for base in [&p.b, &p.a] {
        let (status, again) = deliver(base.clone()).await;
        assert_eq!(status, 200, "{again}");
        assert_eq!(again["duplicate"], true, "{again}");
        assert!(
            again.get("invalidated").is_none(),
            "not applied again: {again}"
        );
    }

    // A shows the new head at once; B, which did not apply the delivery, from the shared copy.
    let (_, on_a) = post(&p.a, q.clone()).await;
    assert_eq!(head(&on_a), commit.sha.as_str());
    wait_for("replica B to show the pushed head", T, || async {
        let (_, v) = post(&p.b, q.clone()).await;
        (head(&v) == commit.sha.as_str()).then_some(())
    })
    .await;
    assert_eq!(
        rest(),
        asked,
        "the payload said it all; GitHub was not asked"
    );
}

#[tokio::test]
async fn a_github_answer_fetched_by_one_replica_is_served_by_the_other_without_asking_again() {
    let Some(redis) = redis() else { return };
    let world = DemoWorld::start(&DemoOptions::for_tests()).await.unwrap();
    let p = pair(&world, &redis, false, "").await;
    let q = json!({"query": r#"{ repository(slug: "yourcompany/my-app") { slug stars latestCommit { sha } pullRequests { number } workflowRuns(branch: "main") { conclusion } } }"#});
    let before = world.github.counters().0;
    let (status, on_a) = post(&p.a, q.clone()).await;
    assert_eq!(status, 200);
    assert!(on_a["errors"].is_null(), "{on_a}");
    let asked = world.github.counters().0;
    assert!(asked >= before + 4, "A asked GitHub ({before} → {asked})");

    let (status, on_b) = post(&p.b, q.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(on_b, on_a);
    if world.github.counters().0 != asked {
        panic!(
            "B asked GitHub ({asked} → {}) instead of serving A's answers from the shared cache; fallbacks on A: {}, on B: {}",
            world.github.counters().0,
            fallbacks(&metrics(&p.a).await, "github"),
            fallbacks(&metrics(&p.b).await, "github"),
        );
    }
    // And the budget A saw is what B's `sources` shows.
    let budget = |base: String| async move {
        let (_, v) = post(
            &base,
            json!({"query": "{ sources { name rateLimit { limit remaining } } }"}),
        )
        .await;
        v["data"]["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "github")
            .map(|s| s["rateLimit"].clone())
            .unwrap()
    };
    let on_a = budget(p.a.clone()).await;
    assert!(on_a["remaining"].as_u64().is_some(), "{on_a}");
    assert_eq!(budget(p.b.clone()).await, on_a);
}

#[tokio::test]
async fn with_redis_stopped_each_replica_answers_alone_and_shares_again_once_it_is_back() {
    let Some(mut redis) = redis() else { return };
    let world = DemoWorld::start(&DemoOptions::for_tests()).await.unwrap();
    let p = pair(
        &world,
        &redis,
        false,
        "limits: { requests_per_minute: 60 }\n",
    )
    .await;
    let held =
        json!({"query": r#"{ repository(slug: "yourcompany/app-3") { slug description } }"#});
    let (status, first) = post(&p.b, held.clone()).await;
    assert_eq!(status, 200);
    assert!(first["errors"].is_null(), "{first}");
    let asked = world.github.counters().0;
    redis.stop();

    // What B holds still serves until its TTL, past the horizon after which it would have
    // looked at the shared copy: GitHub is not asked again (no more than without `cluster:`).
    let since = std::time::Instant::now();
    while since.elapsed() < Duration::from_millis(2500) {
        let (status, again) = post(&p.b, held.clone()).await;
        assert_eq!(status, 200);
        assert_eq!(again, first);
        assert_eq!(world.github.counters().0, asked, "GitHub asked again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // APQ: what A registers runs on A; B, which cannot see it, says so — no 5xx anywhere.
    let doc = "query WhileRedisIsAway { sources { name } }";
    let hash = sha256_hex(doc);
    let (status, v) = post(&p.a, json!({"query": doc, "extensions": apq(&hash)})).await;
    assert_eq!(status, 200, "{v}");
    assert!(v["errors"].is_null(), "{v}");
    let (status, v) = post(&p.a, json!({"extensions": apq(&hash)})).await;
    assert_eq!(status, 200);
    assert!(v["errors"].is_null(), "{v}");
    let (status, v) = post(&p.b, json!({"extensions": apq(&hash)})).await;
    assert_eq!(status, 200);
    assert_eq!(
        v["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_FOUND"
    );
    // GitHub still answers (each replica asks it itself).
    let (status, v) = post(
        &p.b,
        json!({"query": r#"{ repository(slug: "yourcompany/app-2") { slug } }"#}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(v["data"]["repository"]["slug"], "yourcompany/app-2", "{v}");

    // The rate limit: A's own bucket (60/min, 2 spent above while Redis was away) decides.
    let answers = join_all((0..70).map(|_| post(&p.a, json!({"query": "{ __typename }"})))).await;
    let accepted = answers.iter().filter(|(s, _)| *s == 200).count();
    assert!(
        (58..=60).contains(&accepted),
        "{accepted} accepted by A alone"
    );
    assert!(answers.iter().all(|(s, _)| *s == 200 || *s == 429));
    let m = metrics(&p.a).await;
    assert!(fallbacks(&m, "rate_limit") >= 70, "{m}");
    assert!(fallbacks(&m, "apq") >= 1, "{m}");

    // Redis back (empty): a registration on A is shared again. (Each try spends two requests
    // of the shared budget: paced so that the budget outlasts the replicas' reconnection.)
    redis.restart();
    wait_for("APQ shared again after Redis came back", T, || async {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let (status, _) = post(&p.a, json!({"query": doc, "extensions": apq(&hash)})).await;
        if status != 200 {
            return None;
        }
        let (_, v) = post(&p.b, json!({"extensions": apq(&hash)})).await;
        v["errors"].is_null().then_some(())
    })
    .await;
}
