//! Three `idp-graph serve` processes sharing one change log on a real Redis (`cluster:`),
//! against one simulated world: one owner per upstream, cursors and state the same on every
//! replica, failover when an owner dies.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{next_for, post_json, wait_for, wait_ready_at, ws_init, Ws};
use idp_graph::demo::{DemoOptions, DemoWorld};

use crate::helpers::redis_server::RedisServer;
use crate::helpers::serve_child::{self, ServeChild};

const T: Duration = Duration::from_secs(30);
/// Every upstream instance of the test world (GitHub's: its safety-net rounds).
const SOURCES: [&str; 4] = ["argocd/main", "backstage", "github", "kubernetes/demo"];

/// The replica tests run one at a time: each starts three server processes and a Redis, and
/// the machine has two cores.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub struct Replicas {
    _turn: tokio::sync::MutexGuard<'static, ()>,
    pub redis: RedisServer,
    pub world: DemoWorld,
    pub servers: Vec<Option<ServeChild>>,
    dir: tempfile::TempDir,
}

impl Replicas {
    /// `None` (and a note) where `redis-server` is not installed.
    pub async fn start(n: usize, opts: DemoOptions) -> Option<Self> {
        let turn = ONE_AT_A_TIME.lock().await;
        let Some(redis) = RedisServer::start(true) else {
            eprintln!("redis-server is not installed (.ci/run installs it): replica tests skipped");
            return None;
        };
        let world = DemoWorld::start(&opts).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("redis-url"), redis.url()).unwrap();
        std::fs::write(
            dir.path().join("cursor-key"),
            "a cursor key every replica of this test shares, 44 chars",
        )
        .unwrap();
        let mut r = Self {
            _turn: turn,
            redis,
            world,
            servers: Vec::new(),
            dir,
        };
        for i in 0..n {
            r.add(i);
        }
        for s in r.servers.iter().flatten() {
            wait_ready_at(&s.base, T).await;
        }
        Some(r)
    }

    /// Starts replica `r<i>` (a new process).
    pub fn add(&mut self, i: usize) {
        let extra = format!(
            "cluster: {{ redis_url_file: '{}', replica_id: r{i}, lease_secs: 3, snapshot_secs: 2 }}\n\
             events: {{ cursor_key_file: '{}' }}\n",
            self.dir.path().join("redis-url").display(),
            self.dir.path().join("cursor-key").display(),
        );
        let child = serve_child::spawn(&self.world, 0.2, &extra);
        if self.servers.len() <= i {
            self.servers.resize_with(i + 1, || None);
        }
        self.servers[i] = Some(child);
    }

    pub fn base(&self, i: usize) -> &str {
        &self.servers[i].as_ref().expect("replica running").base
    }

    pub fn live(&self) -> Vec<usize> {
        (0..self.servers.len())
            .filter(|i| self.servers[*i].is_some())
            .collect()
    }

    /// `/readyz`'s `cluster` part.
    pub async fn cluster(&self, i: usize) -> Value {
        let r = reqwest::get(format!("{}/readyz", self.base(i))).await;
        match r {
            Ok(r) => r.json::<Value>().await.unwrap_or(Value::Null)["cluster"].clone(),
            Err(_) => Value::Null,
        }
    }

    /// Which replica owns each source, once every source has exactly one owner.
    pub async fn owners(&self) -> Vec<(String, usize)> {
        wait_for("one owner per source", T, || async {
            let mut owners = Vec::new();
            for i in self.live() {
                for s in self.cluster(i).await["owns"].as_array()?.iter() {
                    owners.push((s.as_str()?.to_string(), i));
                }
            }
            owners.sort();
            let ids: Vec<&str> = owners.iter().map(|(s, _)| s.as_str()).collect();
            (ids == SOURCES).then_some(owners)
        })
        .await
    }

    pub async fn data(&self, i: usize, query: &str) -> Value {
        let body = post_json(
            &format!("{}/graphql", self.base(i)),
            json!({"query": query}),
        )
        .await;
        assert!(
            body.get("errors").is_none(),
            "errors on r{i}: {}",
            body["errors"]
        );
        body["data"].clone()
    }

    /// `app`'s health once every live replica answers the application list alike.
    /// Waits until every live replica shows `app` with `health` (an answer carrying a stale
    /// source's error counts as not yet). Agreement alone is not enough: right after an
    /// outage or a takeover every replica may still agree on the state before the new owner's
    /// first list.
    pub async fn wait_health(&self, app: &str, health: &str) {
        let deadline = tokio::time::Instant::now() + T;
        loop {
            let mut seen = Vec::new();
            for i in self.live() {
                let body = post_json(
                    &format!("{}/graphql", self.base(i)),
                    json!({ "query": APPS }),
                )
                .await;
                let status = body["data"]["applications"]["nodes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|a| a["name"] == app)
                    .and_then(|a| a["health"]["status"].as_str())
                    .map(str::to_string);
                seen.push((status, body.get("errors").is_some()));
            }
            if seen
                .iter()
                .all(|(s, errors)| !errors && s.as_deref() == Some(health))
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out after {T:?} waiting for every replica to show {app} {health}; \
                 last seen (status, with errors) per replica: {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until every live replica answers `query` with the same data; returns it.
    pub async fn agree(&self, query: &str) -> Value {
        wait_for("every replica answers alike", T, || async {
            let mut answers = Vec::new();
            for i in self.live() {
                answers.push(self.data(i, query).await);
            }
            answers
                .windows(2)
                .all(|w| w[0] == w[1])
                .then(|| answers[0].clone())
        })
        .await
    }
}

const APPS: &str =
    "{ applications(first: 1000) { nodes { name sync { status revision } health { status } } } }";

async fn subscribe(addr: &str, query: &str, after: Option<&str>) -> Ws {
    let mut ws = ws_init(addr).await;
    ws.next().await; // connection_ack
    ws.send(Message::text(
        json!({"id": "1", "type": "subscribe", "payload": {"query": query, "variables": {"after": after}}})
            .to_string(),
    ))
    .await
    .unwrap();
    ws
}

fn addr(base: &str) -> String {
    base.trim_start_matches("http://").to_string()
}

#[tokio::test]
async fn three_replicas_own_each_upstream_once_and_a_cursor_resumes_on_every_other() {
    let Some(r) = Replicas::start(3, DemoOptions::for_tests()).await else {
        return;
    };
    let owners = r.owners().await;
    let owning: BTreeSet<usize> = owners.iter().map(|(_, i)| *i).collect();
    eprintln!("owners: {owners:?}");
    assert!(!owning.is_empty());
    let apps = r.agree(APPS).await;
    assert!(
        apps["applications"]["nodes"].as_array().unwrap().len() >= 3,
        "{apps}"
    );

    // An event seen on r0 resumes on r1 and r2 by its cursor: the same next event, no resync.
    const Q: &str = "subscription($after: String) { applicationEvents(filter: {names: [\"app-3\"]}, after: $after) { cursor type current { health } } }";
    let mut live = subscribe(&addr(r.base(0)), Q, None).await;
    // Registered once a ping's pong comes back after the subscribe.
    live.send(Message::text(json!({"type": "ping"}).to_string()))
        .await
        .unwrap();
    loop {
        let m = tokio::time::timeout(T, live.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if m.to_text().unwrap_or("").contains("pong") {
            break;
        }
    }
    r.world.argocd.set_health("app-3", "Degraded", Some("one"));
    let first = next_for(&mut live, "1").await;
    let c1 = first["data"]["applicationEvents"]["cursor"]
        .as_str()
        .unwrap()
        .to_string();
    r.world.argocd.set_health("app-3", "Healthy", Some("two"));
    let second = next_for(&mut live, "1").await;
    assert_eq!(
        second["data"]["applicationEvents"]["current"]["health"],
        "HEALTHY"
    );
    for i in [1, 2] {
        let mut ws = subscribe(&addr(r.base(i)), Q, Some(&c1)).await;
        let replayed = next_for(&mut ws, "1").await;
        assert_eq!(
            replayed, second,
            "r{i} resumed the cursor of r0's first event with something else"
        );
    }
    // And the state agrees everywhere.
    r.wait_health("app-3", "HEALTHY").await;
}

const HEALTHS: [&str; 4] = ["Degraded", "Progressing", "Suspended", "Healthy"];
const EVENTS_Q: &str = "subscription($after: String) { applicationEvents(filter: {names: [\"app-2\"]}, after: $after) { cursor type current { health } } }";

/// What one subscriber received, in order: `Some((cursor, health))` per event, `None` per
/// RESYNC_REQUIRED.
type Received = Vec<Option<(String, String)>>;

/// Subscribes (registered when this returns), then reads until `stop` is set and its last
/// item is the final health or a resync.
async fn follower(
    addr: String,
    registered: std::sync::Arc<tokio::sync::Semaphore>,
    stop: tokio::sync::watch::Receiver<Option<String>>,
) -> Received {
    let mut ws = subscribe(&addr, EVENTS_Q, None).await;
    ws.send(Message::text(json!({"type": "ping"}).to_string()))
        .await
        .unwrap();
    let mut got: Received = Vec::new();
    let mut pong = false;
    loop {
        if let Some(last) = stop.borrow().clone() {
            match got.last() {
                Some(None) => return got,
                Some(Some((_, h))) if *h == last => return got,
                _ => {}
            }
        }
        let m = tokio::time::timeout(Duration::from_millis(500), ws.next()).await;
        let Ok(m) = m else { continue };
        let Some(Ok(Message::Text(t))) = m else {
            panic!(
                "a subscriber's stream ended after {} items: {m:?}",
                got.len()
            )
        };
        let v: Value = serde_json::from_str(&t).unwrap();
        match v["type"].as_str() {
            Some("pong") if !pong => {
                pong = true;
                registered.add_permits(1);
            }
            Some("next") => {
                let e = &v["payload"]["data"]["applicationEvents"];
                if e["type"] == "RESYNC_REQUIRED" {
                    got.push(None);
                } else {
                    got.push(Some((
                        e["cursor"].as_str().unwrap().to_string(),
                        e["current"]["health"].as_str().unwrap().to_string(),
                    )));
                }
            }
            Some("error") if v["payload"][0]["extensions"]["code"] == "RESYNC_REQUIRED" => {
                got.push(None)
            }
            Some("ping" | "pong" | "connection_ack") => {}
            _ => panic!("unexpected {v}"),
        }
    }
}

fn graph_health(h: &str) -> String {
    h.to_uppercase()
}

/// Every pod of the cluster as `namespace/name@resourceVersion`, upstream and on replica `i`
/// (`None` while the replica's answer carries an error, e.g. a stale source's).
async fn pods_on(r: &Replicas, i: usize) -> Option<(BTreeSet<String>, BTreeSet<String>)> {
    let upstream = crate::truth::upstream_pods(&r.world.kubernetes);
    let body = post_json(
        &format!("{}/graphql", r.base(i)),
        json!({"query": crate::truth::PODS_QUERY}),
    )
    .await;
    if body.get("errors").is_some() {
        return None;
    }
    Some((upstream, crate::truth::graph_pods(&body["data"])))
}

/// Changes one pod upstream (a label `key: round`), round by round a different one.
fn touch_pod(r: &Replicas, key: &str, round: usize) {
    let mut pods = r.world.kubernetes.list("pods");
    pods.sort_by_key(|p| p["metadata"]["name"].as_str().unwrap_or("").to_string());
    let mut pod = pods[round % pods.len()].clone();
    pod["metadata"]["labels"][key] = json!(round.to_string());
    r.world.kubernetes.upsert("pods", pod);
}

#[tokio::test]
async fn killing_the_kubernetes_owner_moves_it_and_no_subscriber_misses_a_change_silently() {
    const SUBSCRIBERS: usize = 1_000;
    const ROUNDS: usize = 40;
    const KILL_AT: usize = 8;
    let Some(mut r) = Replicas::start(3, DemoOptions::for_tests()).await else {
        return;
    };
    let owners = r.owners().await;
    let dead = owners
        .iter()
        .find(|(s, _)| s == "kubernetes/demo")
        .map(|(_, i)| *i)
        .unwrap();
    let survivors: Vec<usize> = (0..3).filter(|i| *i != dead).collect();
    let dead_owned: Vec<&str> = owners
        .iter()
        .filter(|(_, i)| *i == dead)
        .map(|(s, _)| s.as_str())
        .collect();
    eprintln!("killing r{dead}, the owner of {dead_owned:?}");

    let registered = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(None::<String>);
    let mut followers = Vec::new();
    for n in 0..SUBSCRIBERS {
        let a = addr(r.base(survivors[n % survivors.len()]));
        followers.push(tokio::spawn(follower(
            a,
            registered.clone(),
            stop_rx.clone(),
        )));
    }
    let _ = tokio::time::timeout(T, registered.acquire_many(SUBSCRIBERS as u32))
        .await
        .expect("every subscriber registered");

    // The weather: app-2's health moves every round and a pod changes; the owner of the
    // Kubernetes source dies in the middle.
    let mut sequence = Vec::new();
    let mut takeover = None;
    for round in 0..ROUNDS {
        if round == KILL_AT {
            let mut child = r.servers[dead].take().unwrap();
            // SIGKILL: no lease is released, nothing is flushed.
            child.child.kill().unwrap();
            let _ = child.child.wait();
            let at = std::time::Instant::now();
            // Watched while the weather goes on: when a survivor owns the cluster again.
            let bases: Vec<String> = survivors.iter().map(|i| r.base(*i).to_string()).collect();
            takeover = Some(tokio::spawn(async move {
                loop {
                    for b in &bases {
                        let v: Value = match reqwest::get(format!("{b}/readyz")).await {
                            Ok(resp) => resp.json().await.unwrap_or(Value::Null),
                            Err(_) => Value::Null,
                        };
                        if v["cluster"]["owns"]
                            .as_array()
                            .is_some_and(|o| o.iter().any(|s| s == "kubernetes/demo"))
                        {
                            return at.elapsed();
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }));
        }
        let health = HEALTHS[round % HEALTHS.len()];
        assert!(r.world.argocd.set_health("app-2", health, None));
        sequence.push(graph_health(health));
        touch_pod(&r, "replica-round", round);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Another replica owns the Kubernetes source within lease_secs (3) + 5 s of the kill.
    let took = tokio::time::timeout(T, takeover.unwrap())
        .await
        .expect("a survivor owns kubernetes/demo")
        .unwrap();
    eprintln!("kubernetes/demo owned again {took:?} after the kill");
    assert!(took <= Duration::from_secs(3 + 5), "took {took:?}");
    let final_health = sequence.last().unwrap().clone();
    stop_tx.send(Some(final_health.clone())).unwrap();

    let mut resyncs = 0;
    let mut events = 0;
    for (n, f) in followers.into_iter().enumerate() {
        let got = tokio::time::timeout(T, f)
            .await
            .unwrap_or_else(|_| panic!("subscriber {n} never saw the final health"))
            .unwrap();
        // Between resyncs each event is the next health of the cycle (nothing skipped), and no
        // cursor comes twice or goes back.
        let mut last: Option<(String, String)> = None;
        let mut cursors = BTreeSet::new();
        for item in &got {
            match item {
                None => {
                    resyncs += 1;
                    last = None;
                }
                Some((cursor, health)) => {
                    events += 1;
                    assert!(
                        cursors.insert(cursor.clone()),
                        "subscriber {n}: {cursor} twice"
                    );
                    if let Some((_, prev)) = &last {
                        let at = HEALTHS
                            .iter()
                            .position(|h| graph_health(h) == *prev)
                            .unwrap();
                        assert_eq!(
                            *health,
                            graph_health(HEALTHS[(at + 1) % HEALTHS.len()]),
                            "subscriber {n} skipped a change silently: {got:?}"
                        );
                    }
                    last = Some((cursor.clone(), health.clone()));
                }
            }
        }
        let without_resync = got.iter().all(Option::is_some);
        if without_resync {
            assert_eq!(got.len(), ROUNDS, "subscriber {n} got {got:?}");
        }
        let pattern: String = got
            .iter()
            .map(|g| match g {
                None => "R".to_string(),
                Some((c, h)) => format!("{}:{} ", &h[..1], &c[..6]),
            })
            .collect();
        // One resync per source that changed hands after a lapsed lease (the dead replica's
        // sources), and at most as many again for a subscriber that fell behind meanwhile.
        assert!(
            got.iter().filter(|g| g.is_none()).count() <= 2 * dead_owned.len(),
            "subscriber {n} resynced more than twice per takeover: {pattern}"
        );
    }
    eprintln!(
        "{SUBSCRIBERS} subscribers on r{survivors:?}: {events} events, {resyncs} resyncs ({} rounds)",
        ROUNDS
    );
    // Every survivor's state equals the upstream's, object by object.
    for i in survivors {
        wait_for("pods equal upstream on a survivor", T, || async {
            let (up, graph) = pods_on(&r, i).await?;
            (up == graph).then_some(())
        })
        .await;
    }
    r.wait_health("app-2", &final_health).await;
}

/// A replica's raw answer to `query` (bytes as sent).
async fn raw(r: &Replicas, i: usize, query: &str) -> String {
    reqwest::Client::new()
        .post(format!("{}/graphql", r.base(i)))
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

const FIXED: [&str; 4] = [
    APPS,
    r#"{ pods(filter: {cluster: "demo"}, first: 1000) { nodes { namespace name resourceVersion phase } } }"#,
    "{ entities(first: 1000) { nodes { ref } } }",
    r#"{ deployments(filter: {cluster: "demo"}, first: 100) { nodes { namespace name replicas { desired ready } } } }"#,
];

#[tokio::test]
async fn a_replica_started_later_answers_like_the_others_within_ten_seconds_of_readyz() {
    let Some(mut r) = Replicas::start(2, DemoOptions::for_tests()).await else {
        return;
    };
    r.owners().await;
    // Changes before the newcomer starts: in the snapshots and the log it loads.
    for (n, h) in ["Degraded", "Healthy", "Progressing"].iter().enumerate() {
        assert!(r.world.argocd.set_health("app-3", h, None));
        touch_pod(&r, "before-r2", n);
    }
    r.agree(APPS).await;
    r.add(2);
    wait_ready_at(r.base(2), T).await;
    let ready = std::time::Instant::now();
    let alike = wait_for("r2 answers byte for byte like r0 and r1", T, || async {
        for q in FIXED {
            let (a, b, c) = (
                raw(&r, 0, q).await,
                raw(&r, 1, q).await,
                raw(&r, 2, q).await,
            );
            if !(a == b && b == c) || a.contains("\"errors\"") {
                return None;
            }
        }
        Some(ready.elapsed())
    })
    .await;
    eprintln!("r2 answered alike {alike:?} after its /readyz");
    assert!(alike <= Duration::from_secs(10), "took {alike:?}");
}

#[tokio::test]
async fn redis_away_for_twenty_seconds_under_load_gives_no_5xx_and_every_replica_converges() {
    let Some(mut r) = Replicas::start(3, DemoOptions::for_tests()).await else {
        return;
    };
    r.owners().await;
    let bases: Vec<String> = (0..3).map(|i| r.base(i).to_string()).collect();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut load = Vec::new();
    for base in bases.clone() {
        let stop = stop_rx.clone();
        load.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let (mut ok, mut stale, mut failed) = (0u64, 0u64, Vec::new());
            let mut n = 0;
            while !*stop.borrow() {
                let q = FIXED[n % FIXED.len()];
                n += 1;
                match http
                    .post(format!("{base}/graphql"))
                    .json(&json!({ "query": q }))
                    .send()
                    .await
                {
                    Ok(resp) if resp.status().is_success() => {
                        let body: Value = resp.json().await.unwrap();
                        let codes: Vec<&str> = body["errors"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|e| e["extensions"]["code"].as_str())
                            .collect();
                        let has_data = body["data"]
                            .as_object()
                            .is_some_and(|d| d.values().all(|v| !v.is_null()));
                        if !has_data || codes.iter().any(|c| *c != "UPSTREAM_UNAVAILABLE") {
                            failed.push(body.to_string());
                        } else if codes.is_empty() {
                            ok += 1;
                        } else {
                            // Served from the last applied state, and said so.
                            stale += 1;
                        }
                    }
                    Ok(resp) => failed.push(format!("HTTP {}", resp.status())),
                    Err(e) => failed.push(e.to_string()),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (ok, stale, failed)
        }));
    }
    r.redis.stop();
    let away = std::time::Instant::now();
    // The world keeps changing while Redis is away.
    let mut round = 0;
    while away.elapsed() < Duration::from_secs(20) {
        let h = HEALTHS[round % HEALTHS.len()];
        assert!(r.world.argocd.set_health("app-2", h, None));
        touch_pod(&r, "redis-away", round);
        round += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Every replica says the log is away.
    for i in 0..3 {
        assert_eq!(r.cluster(i).await["logAvailable"], false, "r{i}");
    }
    r.redis.restart();
    let back = std::time::Instant::now();
    for i in 0..3 {
        loop {
            match pods_on(&r, i).await {
                Some((up, graph)) if up == graph => break,
                other => {
                    if back.elapsed() > T {
                        let diff = other.map(|(up, graph)| {
                            (
                                up.difference(&graph).cloned().collect::<Vec<_>>(),
                                graph.difference(&up).cloned().collect::<Vec<_>>(),
                            )
                        });
                        for j in 0..3 {
                            eprintln!("r{j}: {}", r.cluster(j).await);
                            let log = r.servers[j].as_ref().unwrap().log_tail(400);
                            let keep: Vec<&str> = log
                                .lines()
                                .filter(|l| !l.contains("graphql") && !l.contains("request"))
                                .collect();
                            eprintln!(
                                "--- r{j} log\n{}",
                                keep[keep.len().saturating_sub(40)..].join("\n")
                            );
                        }
                        panic!("r{i} did not converge after Redis came back: {diff:?}");
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    eprintln!(
        "every replica equals the upstream {:?} after Redis came back",
        back.elapsed()
    );
    r.wait_health("app-2", &graph_health(HEALTHS[(round - 1) % HEALTHS.len()]))
        .await;
    stop_tx.send(true).unwrap();
    let mut total = 0;
    for (i, l) in load.into_iter().enumerate() {
        let (ok, stale, failed) = l.await.unwrap();
        eprintln!(
            "r{i}: {ok} answers, {stale} answers with a stale-source note (data present), {} failures (5xx, transport, no data)",
            failed.len()
        );
        assert!(
            failed.is_empty(),
            "r{i}: {:?}",
            &failed[..failed.len().min(3)]
        );
        total += ok;
    }
    assert!(total > 100, "the load ran ({total} answers)");
    r.servers.clear();
}

/// What the upstreams served: Kubernetes lists + watches, ArgoCD lists + stream connections,
/// GitHub rate-limit points (requests that were not a free 304).
fn upstream_counts(world: &DemoWorld) -> [u64; 3] {
    let (gh_requests, gh_304) = world.github.counters();
    [
        world.kubernetes.list_count() + world.kubernetes.watch_count(),
        world.argocd.list_count() + world.argocd.stream_count(),
        gh_requests - gh_304,
    ]
}

/// A cross-source page (catalog, ArgoCD, GitHub) every 500 ms on each server, for `secs`.
async fn page_load(bases: Vec<String>, secs: u64) {
    const PAGE: &str = "{ entities(first: 50) { nodes { ref ... on Component { repository { stars latestCommit { sha } } applications { name health { status } } } } } }";
    let until = std::time::Instant::now() + Duration::from_secs(secs);
    while std::time::Instant::now() < until {
        for b in &bases {
            let body = post_json(&format!("{b}/graphql"), json!({"query": PAGE})).await;
            assert!(body["data"]["entities"].is_object(), "{body}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn three_replicas_load_the_upstreams_about_as_much_as_one() {
    const SECS: u64 = 20;
    let opts = DemoOptions {
        weather: true,
        ..DemoOptions::for_tests()
    };
    // One replica (a plain process, no `cluster:`) over SECS seconds of weather and pages.
    let Some(mut r) = Replicas::start(0, opts).await else {
        return;
    };
    let start = upstream_counts(&r.world);
    let single = serve_child::spawn(&r.world, 0.2, "");
    wait_ready_at(&single.base, T).await;
    let before = upstream_counts(&r.world);
    page_load(vec![single.base.clone()], SECS).await;
    let after = upstream_counts(&r.world);
    let one: Vec<u64> = (0..3).map(|k| after[k] - before[k]).collect();
    let one_from_start: Vec<u64> = (0..3).map(|k| after[k] - start[k]).collect();
    let one_streams = r.world.argocd.open_streams();
    drop(single);
    wait_for("the single server's stream closed", T, || async {
        (r.world.argocd.open_streams() == 0).then_some(())
    })
    .await;
    let start = upstream_counts(&r.world);

    // Three replicas sharing the log, once each source has its owner: the same minutes again.
    for i in 0..3 {
        r.add(i);
    }
    for i in 0..3 {
        wait_ready_at(r.base(i), T).await;
    }
    r.owners().await;
    let before = upstream_counts(&r.world);
    page_load((0..3).map(|i| r.base(i).to_string()).collect(), SECS).await;
    let after = upstream_counts(&r.world);
    let three: Vec<u64> = (0..3).map(|k| after[k] - before[k]).collect();
    let three_from_start: Vec<u64> = (0..3).map(|k| after[k] - start[k]).collect();
    let three_streams = r.world.argocd.open_streams();
    eprintln!(
        "kubernetes lists+watches, argocd lists+streams, github points over {SECS} s of weather and pages: \
         1 replica {one:?}, 3 replicas {three:?}; from process start (initial lists, startup handovers): \
         1 replica {one_from_start:?}, 3 replicas {three_from_start:?}; open ArgoCD streams {one_streams} vs {three_streams}"
    );
    assert_eq!(
        (one_streams, three_streams),
        (1, 1),
        "one ArgoCD stream, held by its owner only"
    );
    for (k, what) in [
        "Kubernetes list/watch requests",
        "ArgoCD lists and stream connections",
        "GitHub points",
    ]
    .iter()
    .enumerate()
    {
        // Within 1.2× (and one request of slack for a count as small as a single watch).
        assert!(
            three[k] as f64 <= one[k] as f64 * 1.2 + 1.0,
            "{what}: 3 replicas {} vs 1 replica {}",
            three[k],
            one[k]
        );
    }
}
