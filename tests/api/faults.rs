//! The fault matrix, as one test: each upstream (ArgoCD, Backstage, GitHub, Kubernetes) × each
//! fault (down, slower than the timeout, 5xx, malformed/truncated bodies and streams, credentials
//! revoked (401), rate limited (429), and per upstream its stream's own failure: garbage in
//! ArgoCD's event stream, a 410 storm on Kubernetes' watches) × {list query, cross-source query,
//! mutation, subscription}.
//!
//! For every case: the answers are HTTP 200 with their data (never a whole-query failure); every
//! error carries `extensions.code` and `extensions.source`; a mutation against the faulty
//! upstream is refused with a code (or succeeds — never hangs or 5xxs); `/readyz` stays 200 (a
//! synced replica keeps serving its last state); `sources` tells the truth for the faulty
//! upstream; the list query still carries the upstream's last known objects (not a null field);
//! after the fault clears, the upstream recovers within one backoff cycle (`recovery`: its
//! source reconnects, a subscription opened before the fault delivers the next change — for
//! Kubernetes the very revision deployed), and the graph's state equals the upstreams' truth,
//! object by object.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use idp_graph::demo::DemoOptions;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{spawn_with, ws_connect, TestApp, Ws};
use crate::truth;

const T: Duration = Duration::from_secs(20);
/// Longer than every source's request timeout in this test (0.5 s).
const SLOW: Duration = Duration::from_millis(1_200);
/// One backoff cycle, as the test's sources are set up: the longest wait before a retry
/// (`max_backoff_secs` 1 s with up to 1.5x jitter), one request timeout (0.5 s) and one poll
/// (0.1 s) — plus 1.5 s for a 2-core machine shared with compilers. Recovery is measured from
/// the fault's clearing to the subscription's event for the change made then; the whole state
/// then converges within `T` (a Kubernetes rollout takes its own steps).
const RECOVERY: Duration = Duration::from_millis(1_500 + 500 + 100 + 1_500);
/// Kubernetes: during a fault every watch ends as soon as it starts (refused, cut, expired), and
/// the client's churn layer (`sources/kubernetes/churn.rs`) spaces such watches out, doubling
/// up to 5 s — that is its backoff cycle, plus the same request timeout and slack.
const RECOVERY_AFTER_WATCH_CHURN: Duration = Duration::from_millis(5_000 + 500 + 1_500);

/// One backoff cycle for this case.
fn recovery(u: Upstream) -> Duration {
    if u == Upstream::Kubernetes {
        RECOVERY_AFTER_WATCH_CHURN
    } else {
        RECOVERY
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Upstream {
    ArgoCd,
    Backstage,
    GitHub,
    Kubernetes,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    Down,
    Slow,
    ServerError,
    Malformed,
    Unauthorized,
    RateLimited,
    /// ArgoCD: a line that is not JSON in the event stream. Kubernetes: every watch cut after a
    /// compaction, so each resume is answered `410 Expired`, several times over.
    StreamFailure,
}

const FAULTS: [Fault; 7] = [
    Fault::Down,
    Fault::Slow,
    Fault::ServerError,
    Fault::Malformed,
    Fault::Unauthorized,
    Fault::RateLimited,
    Fault::StreamFailure,
];

const CROSS: &str = r#"{ entity(ref: "component:default/sample-app") { name ... on Component {
  repository { slug latestCommit { sha } }
  applications { name sync { status } health { status } resourceTree { nodes { kind } } }
  kubernetes { deployments { name } pods { name phase } } } } }"#;

/// The upstream's own query. GitHub is asked on demand and its answers are cached for their
/// TTL, so each GitHub case asks for a repository nobody asked for before (`slug`): a cached
/// answer would be served without asking, and rightly so.
fn list_query(u: Upstream, slug: &str) -> String {
    match u {
        Upstream::ArgoCd => {
            "{ applications(first: 100) { totalCount nodes { name health { status } } } }".into()
        }
        Upstream::Backstage => "{ entities(first: 100) { totalCount nodes { ref } } }".into(),
        Upstream::GitHub => format!(
            r#"{{ repository(slug: "{slug}") {{ slug defaultBranch latestCommit {{ sha }} }} applications {{ totalCount }} }}"#
        ),
        Upstream::Kubernetes => "{ pods(first: 100) { totalCount nodes { name phase } } }".into(),
    }
}

/// The upstream's own body for a refusal, as it would send it.
fn refusal(u: Upstream, status: u16) -> String {
    let message = if status == 401 {
        "Unauthorized"
    } else {
        "Too Many Requests"
    };
    match u {
        Upstream::ArgoCd => json!({"error": message, "code": if status == 401 { 16 } else { 8 }, "message": message}),
        Upstream::Backstage => json!({"error": {"name": if status == 401 { "AuthenticationError" } else { "TooManyRequests" }, "message": message}, "response": {"statusCode": status}}),
        Upstream::GitHub => json!({"message": if status == 401 { "Bad credentials" } else { "You have exceeded a secondary rate limit." }, "documentation_url": "https://docs.github.com/rest", "status": status.to_string()}),
        Upstream::Kubernetes => json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": message.replace(' ', ""), "code": status}),
    }
    .to_string()
}

fn faults_of(app: &TestApp, u: Upstream) -> &idp_graph::demo::faults::Faults {
    match u {
        Upstream::ArgoCd => &app.world.argocd.faults,
        Upstream::Backstage => &app.world.backstage.faults,
        Upstream::GitHub => &app.world.github.faults,
        Upstream::Kubernetes => &app.world.kubernetes.faults,
    }
}

/// Turns the fault on; `false` when it does not apply to this upstream.
fn apply(app: &TestApp, u: Upstream, f: Fault) -> bool {
    let faults = faults_of(app, u);
    match f {
        Fault::Down => faults.set_down(true),
        Fault::Slow => faults.set_latency(SLOW),
        Fault::ServerError => faults.set_error_rate(1.0),
        Fault::Malformed => faults.set_malformed(true),
        Fault::Unauthorized => faults.set_answer(Some((401, &refusal(u, 401)))),
        Fault::RateLimited => faults.set_answer(Some((429, &refusal(u, 429)))),
        Fault::StreamFailure => match u {
            Upstream::ArgoCd => app.world.argocd.inject_garbage(),
            Upstream::Kubernetes => {}
            _ => return false,
        },
    }
    kick(app, u, f);
    true
}

/// Makes the watchers notice: streams and watches are cut (they reconnect into the fault).
fn kick(app: &TestApp, u: Upstream, f: Fault) {
    match u {
        Upstream::ArgoCd => app.world.argocd.drop_streams(),
        Upstream::Kubernetes => {
            if f == Fault::StreamFailure {
                app.world.kubernetes.compact();
            }
            app.world.kubernetes.drop_watches();
        }
        _ => {}
    }
}

fn source_name(u: Upstream) -> &'static str {
    match u {
        Upstream::ArgoCd => "main",
        Upstream::Backstage => "backstage",
        Upstream::GitHub => "github",
        Upstream::Kubernetes => "demo",
    }
}

fn kind(u: Upstream) -> &'static str {
    match u {
        Upstream::ArgoCd => "ARGOCD",
        Upstream::Backstage => "BACKSTAGE",
        Upstream::GitHub => "GITHUB",
        Upstream::Kubernetes => "KUBERNETES",
    }
}

/// Posts a query: the answer must be HTTP 200 with data, and every error coded and sourced.
async fn ask(app: &TestApp, case: &str, what: &str, query: &str) -> Value {
    let r = app
        .http
        .post(format!("{}/graphql", app.url))
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{case} {what}: {body}");
    for e in body["errors"].as_array().into_iter().flatten() {
        assert!(
            e["extensions"]["code"].is_string(),
            "{case} {what}: uncoded {e}"
        );
        if what != "mutation"
            || e["extensions"]["code"]
                .as_str()
                .unwrap()
                .starts_with("UPSTREAM")
        {
            assert!(
                e["extensions"]["source"].is_string(),
                "{case} {what}: no source in {e}"
            );
        }
    }
    body
}

async fn source(app: &TestApp, u: Upstream) -> Value {
    let d = app
        .data("{ sources { kind name connected stale lastError errorCount } }")
        .await;
    d["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == kind(u))
        .cloned()
        .unwrap_or_else(|| panic!("no {u:?} in {d}"))
}

/// A subscription to the upstream's changes, registered before the fault.
async fn subscribe(app: &TestApp, u: Upstream) -> Ws {
    let q = match u {
        Upstream::ArgoCd | Upstream::GitHub => "subscription { applicationEvents(filter: {names: [\"app-2\"]}) { type current { health } } }",
        Upstream::Backstage => "subscription { entityEvents { type entity { ref } } }",
        Upstream::Kubernetes => "subscription { rolloutEvents { type deployment { images } } }",
    };
    let mut ws = ws_connect(&app.addr.to_string()).await;
    for m in [
        json!({"type": "connection_init"}),
        json!({"id": "f", "type": "subscribe", "payload": {"query": q}}),
        json!({"type": "ping"}),
    ] {
        ws.send(Message::text(m.to_string())).await.unwrap();
    }
    loop {
        let v = next(&mut ws).await;
        if v["type"] == "pong" {
            return ws;
        }
    }
}

async fn next(ws: &mut Ws) -> Value {
    loop {
        match tokio::time::timeout(T, ws.next())
            .await
            .expect("a message in time")
        {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] != "ping" {
                    return v;
                }
            }
            Some(Ok(_)) => {}
            other => panic!("the subscription ended: {other:?}"),
        }
    }
}

/// A change at the upstream that its subscription reports; returns a check for the event.
fn change(app: &TestApp, u: Upstream, round: usize) -> impl Fn(&Value) -> bool {
    let health = ["Degraded", "Healthy"][round % 2];
    // Seven characters: the simulated Deployment's image tag is the revision's first seven.
    let revision = format!("f{round:06}");
    match u {
        Upstream::ArgoCd | Upstream::GitHub => {
            assert!(app.world.argocd.set_health("app-2", health, None));
        }
        Upstream::Backstage => {
            app.world.backstage.upsert(json!({
                "apiVersion": "backstage.io/v1alpha1", "kind": "Component",
                "metadata": {"name": format!("fault-probe-{round}"), "namespace": "default"},
                "spec": {"type": "service", "lifecycle": "experimental", "owner": "group:default/app-team"}}));
        }
        Upstream::Kubernetes => {
            assert!(app
                .world
                .kubernetes
                .deploy_revision("sample-app", "sample-app", &revision));
        }
    }
    move |v: &Value| {
        let d = &v["payload"]["data"];
        match u {
            Upstream::ArgoCd | Upstream::GitHub => {
                d["applicationEvents"]["current"]["health"] == truth::enum_name(health)
            }
            Upstream::Backstage => {
                d["entityEvents"]["entity"]["ref"]
                    == format!("component:default/fault-probe-{round}")
            }
            // The rollout of the revision just deployed, not any rollout event.
            Upstream::Kubernetes => d["rolloutEvents"]["deployment"]["images"]
                .as_array()
                .is_some_and(|i| {
                    i.iter().any(|i| {
                        i.as_str()
                            .is_some_and(|i| i.ends_with(&format!(":{revision}")))
                    })
                }),
        }
    }
}

/// The mutation that goes to the upstream (GitHub has none: an ArgoCD one shows isolation).
/// Each template run names a new service (a name already taken is refused up front).
fn mutation(u: Upstream) -> String {
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    match u {
        Upstream::ArgoCd | Upstream::GitHub => {
            r#"mutation { refreshApplication(input: {name: "sample-app"}) { auditId } }"#.into()
        }
        Upstream::Backstage => {
            let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            format!(
                r#"mutation {{ createFromTemplate(input: {{templateRef: "template:default/service-template", values: {{name: "fault-probe-{n}"}}}}) {{ id }} }}"#
            )
        }
        Upstream::Kubernetes => {
            r#"mutation { restartDeployment(cluster: "demo", namespace: "sample-app", name: "sample-app") { restartedAt } }"#.into()
        }
    }
}

/// Whether the fault breaks requests to the upstream (so its mutation must be refused): all
/// but the stream's own failures (every source times out at 0.5 s here; Kubernetes: writes).
fn breaks_requests(f: Fault) -> bool {
    f != Fault::StreamFailure
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_upstream_under_every_fault_degrades_one_field_and_recovers_to_the_truth() {
    let app = spawn_with(
        DemoOptions {
            catalog_poll_secs: 0.1,
            // Repositories enough for each GitHub case to ask for one nobody asked for.
            scale: 10,
            ..DemoOptions::for_tests()
        },
        |s| {
            for a in &mut s.argocd {
                a.timeout_secs = 0.5;
            }
            if let Some(b) = s.backstage.as_mut() {
                b.timeout_secs = 0.5;
            }
            if let Some(g) = s.github.as_mut() {
                g.timeout_secs = 0.5;
            }
            for k in &mut s.kubernetes {
                k.timeout_secs = 0.5;
            }
            s.limits.requests_per_minute = 0;
        },
    )
    .await;
    let started = Instant::now();
    let (mut cases, mut requests) = (0, 0);
    let mut round = 0;
    let mut fresh_slugs = app
        .world
        .git
        .slugs()
        .into_iter()
        .filter(|s| s != "yourcompany/sample-app");
    for u in [
        Upstream::ArgoCd,
        Upstream::Backstage,
        Upstream::GitHub,
        Upstream::Kubernetes,
    ] {
        for f in FAULTS {
            let case = format!("{u:?} × {f:?}");
            let slug = if u == Upstream::GitHub && f != Fault::StreamFailure {
                fresh_slugs.next().expect("a repository per GitHub case")
            } else {
                "yourcompany/sample-app".to_string()
            };
            let mut ws = subscribe(&app, u).await;
            let errors_before = source(&app, u).await["errorCount"].as_u64().unwrap_or(0);
            // What the state-backed upstreams serve before the fault. (Not GitHub: asking would
            // cache the fresh repository, and the fault would go unnoticed.)
            let before = if matches!(u, Upstream::ArgoCd | Upstream::Backstage) {
                ask(&app, &case, "list", &list_query(u, &slug)).await
            } else {
                Value::Null
            };
            if !apply(&app, u, f) {
                continue;
            }
            cases += 1;
            // List and cross-source queries: answered, with their data — the upstream's last
            // known objects, not a null field.
            let list = ask(&app, &case, "list", &list_query(u, &slug)).await;
            let (field, nodes) = match u {
                Upstream::ArgoCd => (
                    "applications",
                    list["data"]["applications"]["nodes"].clone(),
                ),
                Upstream::Backstage => ("entities", list["data"]["entities"]["nodes"].clone()),
                // GitHub is asked on demand: its field may be null (with a coded error), the
                // rest of the answer may not.
                Upstream::GitHub => (
                    "applications",
                    json!([list["data"]["applications"]["totalCount"]]),
                ),
                Upstream::Kubernetes => ("pods", list["data"]["pods"]["nodes"].clone()),
            };
            assert!(
                nodes
                    .as_array()
                    .is_some_and(|n| !n.is_empty() && n.iter().all(|n| !n.is_null())),
                "{case}: `{field}` has no data during the fault: {list}"
            );
            if matches!(u, Upstream::ArgoCd | Upstream::Backstage) {
                assert_eq!(
                    list["data"], before["data"],
                    "{case}: the last known state is served"
                );
            }
            let cross = ask(&app, &case, "cross-source query", CROSS).await;
            assert_eq!(
                cross["data"]["entity"]["name"], "sample-app",
                "{case}: the rest of the answer stands: {cross}"
            );
            // The mutation: refused with a code and the source, or done.
            let m = ask(&app, &case, "mutation", &mutation(u)).await;
            if breaks_requests(f) && u != Upstream::GitHub {
                let e = &m["errors"][0];
                assert!(
                    e["extensions"]["code"]
                        .as_str()
                        .is_some_and(|c| c.starts_with("UPSTREAM") || c == "RATE_LIMITED"),
                    "{case}: {m}"
                );
                assert_eq!(e["extensions"]["source"], source_name(u), "{case}: {m}");
            } else if u == Upstream::GitHub {
                assert!(
                    m["errors"].is_null(),
                    "{case}: a GitHub fault must not touch ArgoCD's mutation: {m}"
                );
            }
            requests += 3;
            // `sources` tells the truth about the faulty upstream.
            // Kubernetes × malformed: kube reads a watch body cut off mid-line as a cut
            // connection and re-watches at once, with no error; the client's churn layer spaces
            // those re-watches out and reports them. Measured here: watch requests in a second.
            if u == Upstream::Kubernetes && f == Fault::Malformed {
                let before = faults_of(&app, u).request_count();
                tokio::time::sleep(Duration::from_secs(1)).await;
                let rate = faults_of(&app, u).request_count() - before;
                println!("fault matrix: {case}: {rate} watch requests in 1 s (11 kinds)");
                assert!(
                    rate < 200,
                    "{case}: re-watching in a hot loop: {rate} requests in 1 s"
                );
            }
            if breaks_requests(f) && !(u == Upstream::Kubernetes && f == Fault::Slow) {
                // (Kubernetes × slow: watches have no short read timeout — the data still flows,
                // late — so "connected" is the truth there; only writes time out.)
                let deadline = Instant::now() + T;
                loop {
                    // GitHub is asked on demand: a query that needs it makes the attempt.
                    if u == Upstream::GitHub {
                        ask(&app, &case, "list", &list_query(u, &slug)).await;
                        requests += 1;
                    }
                    let s = source(&app, u).await;
                    // (Kubernetes × malformed: each cut watch is re-opened at once and the
                    // reopening clears `lastError` for a moment; the count has moved by then.)
                    if (s["connected"] == false
                        || s["errorCount"].as_u64().unwrap_or(0) > errors_before)
                        && s["lastError"].is_string()
                    {
                        break;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "{case}: sources still says all is well: {s}"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            // A synced replica keeps serving through an upstream fault.
            let ready = app
                .http
                .get(format!("{}/readyz", app.url))
                .send()
                .await
                .unwrap();
            assert_eq!(ready.status(), 200, "{case}: /readyz");
            // A Kubernetes 410 storm: several more cuts while the watches resume.
            if u == Upstream::Kubernetes && f == Fault::StreamFailure {
                for _ in 0..5 {
                    kick(&app, u, f);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }

            // The fault clears: recovery within a backoff cycle, nothing lost.
            faults_of(&app, u).clear();
            kick(&app, u, Fault::Down);
            let cleared = Instant::now();
            let seen = change(&app, u, round);
            round += 1;
            loop {
                let v = next(&mut ws).await;
                assert_ne!(v["type"], "error", "{case}: the subscription failed: {v}");
                if seen(&v) {
                    break;
                }
            }
            // Recovered: the source is back and delivered the change made after the fault.
            let delivered = cleared.elapsed();
            let cycle = recovery(u);
            assert!(
                delivered <= cycle,
                "{case}: the change after the fault arrived in {delivered:?}, more than one backoff cycle ({cycle:?})"
            );
            // Then the whole state converges (a Kubernetes rollout takes its own steps).
            let deadline = Instant::now() + T;
            loop {
                let s = source(&app, u).await;
                let same = match u {
                    Upstream::ArgoCd | Upstream::GitHub => {
                        let (a, b) = truth::applications(&app).await;
                        a == b
                    }
                    Upstream::Backstage => {
                        let (a, b) = truth::entities(&app).await;
                        a == b
                    }
                    Upstream::Kubernetes => {
                        let (a, b) = truth::pods(&app).await;
                        a == b
                    }
                };
                let answered =
                    ask(&app, &case, "list", &list_query(u, &slug)).await["errors"].is_null();
                requests += 1;
                if s["connected"] == true && same && answered {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{case}: not recovered: source {s}, state equal {same}, answered {answered}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            println!(
                "fault matrix: {case}: recovered (change delivered) in {delivered:?}, state equal to upstream after {:?}",
                cleared.elapsed()
            );
        }
    }
    println!(
        "fault matrix: {cases} cases (upstream × fault) × 4 operations, {requests} queries, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
