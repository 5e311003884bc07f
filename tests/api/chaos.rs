//! Chaos under load: 100 upstream stream and watch kills in a row — ArgoCD's event stream cut,
//! garbage written into it, Kubernetes watches cut, and cut after a compaction (so the resume is
//! answered 410 and the watcher re-lists) — with an application change in every round, while
//! 1,000 subscribers with cursors follow the application, a few of them dropping their own
//! connection and resuming from their last cursor now and then.
//!
//! Every Kubernetes kill is followed by a pod change made while the watches are down (a label
//! changed, or after a compaction a pod replaced), so the watchers must come back — through a
//! re-list after the 410 — for the pods to match upstream in the end.
//!
//! Must hold: every subscriber's sequence equals the changes made, in order (gap-free) — or
//! carries an explicit `RESYNC_REQUIRED`, which at most `MAX_RESYNCS` subscribers may get (a
//! resync is the honest answer to a subscriber that fell behind, not a way to pass); the
//! reconnects with cursors happen; no cursor is delivered twice to one subscriber; and
//! afterwards the graph's state equals the upstreams', object by object.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{spawn_demo, ws_connect};
use crate::truth::{applications, enum_name, pods};

const SUBSCRIBERS: usize = 1_000;
const ROUNDS: usize = 100;
const HEALTHS: [&str; 4] = ["Degraded", "Progressing", "Suspended", "Healthy"];
const T: Duration = Duration::from_secs(30);
/// Subscribers that may be told to resync: 1 %. (One group executes for all of them, so a
/// subscriber lags only when its own socket is slower than the events; on a loaded 2-core
/// machine a few do.)
const MAX_RESYNCS: usize = SUBSCRIBERS / 100;

/// (cursor, event type, health) as a subscriber saw it.
type Seen = (String, String, String);

const QUERY: &str = "subscription($after: String) { applicationEvents(filter: {names: [\"app-2\"]}, after: $after) { cursor type current { health } } }";

/// Connects, subscribes from `after`, and returns once the subscription is registered (a
/// ping sent after it is answered), with the messages that came before that (a resumed
/// subscription's backlog comes at once).
async fn subscribe(addr: &str, after: Option<&str>) -> (crate::helpers::Ws, Vec<Value>) {
    let mut ws = ws_connect(addr).await;
    for m in [
        json!({"type": "connection_init"}),
        json!({"id": "s", "type": "subscribe", "payload": {"query": QUERY, "variables": {"after": after}}}),
        json!({"type": "ping"}),
    ] {
        ws.send(Message::text(m.to_string())).await.unwrap();
    }
    let mut early = Vec::new();
    loop {
        let m = tokio::time::timeout(T, ws.next())
            .await
            .expect("registered in time");
        let Some(Ok(Message::Text(t))) = m else {
            panic!("the subscription ended before it was registered: {m:?}")
        };
        let v: Value = serde_json::from_str(&t).unwrap();
        match v["type"].as_str() {
            Some("pong") => return (ws, early),
            Some("connection_ack" | "ping") => {}
            _ => early.push(v),
        }
    }
}

/// What one message means to a follower.
enum Got {
    Event(Seen),
    Resync,
    Other,
}

fn read(me: usize, v: &Value) -> Got {
    match v["type"].as_str() {
        Some("next") => {
            let e = &v["payload"]["data"]["applicationEvents"];
            let ty = e["type"].as_str().unwrap_or("").to_string();
            if ty == "RESYNC_REQUIRED" {
                return Got::Resync;
            }
            Got::Event((
                e["cursor"].as_str().unwrap().into(),
                ty,
                e["current"]["health"].as_str().unwrap_or("").into(),
            ))
        }
        Some("error") if v["payload"][0]["extensions"]["code"] == "RESYNC_REQUIRED" => Got::Resync,
        Some("ping" | "pong" | "connection_ack") => Got::Other,
        _ => panic!("subscriber {me}: unexpected {v}"),
    }
}

/// Reads one subscriber's events until it has `want` of them (the watch says how many the
/// reference saw in the end) or a RESYNC_REQUIRED arrives. Every `reconnect` generation that
/// names it, it drops its socket and resumes from its last cursor.
async fn follow(
    addr: String,
    me: usize,
    registered: Arc<tokio::sync::Semaphore>,
    mut reconnect: watch::Receiver<usize>,
    mut want: watch::Receiver<Option<usize>>,
) -> (Vec<Seen>, bool, usize) {
    let mut seen: Vec<Seen> = Vec::new();
    let mut resumes = 0;
    let (mut ws, mut backlog) = subscribe(&addr, None).await;
    registered.add_permits(1);
    loop {
        for v in backlog.drain(..) {
            match read(me, &v) {
                Got::Event(e) => seen.push(e),
                Got::Resync => return (seen, true, resumes),
                Got::Other => {}
            }
        }
        if want.borrow().is_some_and(|w| seen.len() >= w) {
            return (seen, false, resumes);
        }
        tokio::select! {
            Ok(()) = reconnect.changed() => {
                let generation = *reconnect.borrow_and_update();
                // (Before its first event a subscriber has no cursor to resume from.)
                if generation % 20 == me % 20 && !seen.is_empty() {
                    drop(ws);
                    (ws, backlog) = subscribe(&addr, seen.last().map(|s| s.0.as_str())).await;
                    resumes += 1;
                }
            }
            Ok(()) = want.changed() => {}
            m = tokio::time::timeout(T, ws.next()) => {
                let Ok(Some(Ok(Message::Text(t)))) = m else {
                    panic!("subscriber {me}: the stream ended or went quiet after {} events: {m:?}", seen.len());
                };
                let v: Value = serde_json::from_str(&t).unwrap();
                if matches!(v["type"].as_str(), Some("ping")) {
                    ws.send(Message::text(json!({"type": "pong"}).to_string())).await.unwrap();
                }
                backlog.push(v);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_upstream_kills_under_a_thousand_subscribers_lose_and_repeat_nothing() {
    let app = spawn_demo().await;
    let addr = app.addr.to_string();
    let (reconnect_tx, reconnect_rx) = watch::channel(0usize);
    let (want_tx, want_rx) = watch::channel(None::<usize>);
    let registered = Arc::new(tokio::sync::Semaphore::new(0));
    let mut followers = Vec::new();
    for me in 0..SUBSCRIBERS {
        followers.push(tokio::spawn(follow(
            addr.clone(),
            me,
            registered.clone(),
            reconnect_rx.clone(),
            want_rx.clone(),
        )));
    }
    let lists_before = app.world.kubernetes.list_count();
    // The reference: one more subscriber, read here, round by round.
    let (mut reference, _) = subscribe(&addr, None).await;
    let _ = tokio::time::timeout(T, registered.acquire_many(SUBSCRIBERS as u32))
        .await
        .expect("every subscriber registered");
    let mut expected: Vec<Seen> = Vec::new();
    let (argocd, kube) = (&app.world.argocd, &app.world.kubernetes);
    let mut kills = BTreeMap::<&str, usize>::new();
    for round in 0..ROUNDS {
        let kill = match round % 4 {
            0 => {
                argocd.drop_streams();
                "argocd stream cut"
            }
            1 => {
                argocd.inject_garbage();
                "argocd stream garbage"
            }
            2 => {
                kube.drop_watches();
                relabel_a_pod(kube, round);
                "kubernetes watches cut, a pod relabelled"
            }
            _ => {
                kube.compact();
                kube.drop_watches();
                replace_a_pod(kube, round);
                "kubernetes watches cut after compaction (410), a pod replaced"
            }
        };
        *kills.entry(kill).or_default() += 1;
        let health = HEALTHS[round % HEALTHS.len()];
        assert!(argocd.set_health("app-2", health, None));
        if round % 10 == 5 {
            reconnect_tx.send_modify(|g| *g += 1);
        }
        // The change arrives at the reference (gap-free: exactly this one, next).
        let want = enum_name(health);
        loop {
            let m = tokio::time::timeout(T, reference.next())
                .await
                .unwrap_or_else(|_| panic!("round {round}: no event for {health} after {kill}"))
                .unwrap()
                .unwrap();
            let Message::Text(t) = m else { continue };
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] != "next" {
                continue;
            }
            let e = &v["payload"]["data"]["applicationEvents"];
            let seen: Seen = (
                e["cursor"].as_str().unwrap().into(),
                e["type"].as_str().unwrap().into(),
                e["current"]["health"].as_str().unwrap_or("").into(),
            );
            assert_ne!(
                seen.1, "RESYNC_REQUIRED",
                "round {round}: the reference was told to resync"
            );
            let done = seen.2 == want;
            expected.push(seen);
            if done {
                break;
            }
        }
    }
    want_tx.send_replace(Some(expected.len()));
    let (mut resyncs, mut resumes) = (0, 0);
    for (me, f) in followers.into_iter().enumerate() {
        let (seen, resync, resumed) = f.await.unwrap();
        resumes += resumed;
        let cursors: BTreeSet<&String> = seen.iter().map(|s| &s.0).collect();
        assert_eq!(
            cursors.len(),
            seen.len(),
            "subscriber {me} got a cursor twice"
        );
        if resync {
            resyncs += 1;
            assert_eq!(
                seen[..],
                expected[..seen.len()],
                "subscriber {me} before its RESYNC_REQUIRED"
            );
        } else {
            assert_eq!(seen, expected, "subscriber {me}");
        }
    }
    // Every round's change is in the sequence, in order.
    let healths: Vec<&str> = expected.iter().map(|s| s.2.as_str()).collect();
    let mut at = 0;
    for round in 0..ROUNDS {
        let want = enum_name(HEALTHS[round % HEALTHS.len()]);
        at += healths[at..]
            .iter()
            .position(|h| *h == want)
            .unwrap_or_else(|| panic!("round {round}'s {want} missing from {healths:?}"))
            + 1;
    }
    // The graph converges to the upstreams' truth, object by object.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let (a, p) = loop {
        let (a, p) = (applications(&app).await, pods(&app).await);
        if (a.0 == a.1 && p.0 == p.1) || tokio::time::Instant::now() > deadline {
            break (a, p);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(a.0, a.1, "applications: upstream vs graph");
    assert_eq!(p.0, p.1, "pods: upstream vs graph");
    // The pods compared are the ones the kills changed: the last replacement is there.
    let last = format!("sample-app/chaos-{}@", ROUNDS - 1);
    assert!(
        p.1.iter().any(|p| p.starts_with(&last)),
        "the last replaced pod {last} is not in the graph: {:?}",
        p.1
    );
    let relists = app.world.kubernetes.list_count() - lists_before;
    assert!(
        relists >= (ROUNDS / 4) as u64,
        "each of the {} compactions forces a re-list; saw {relists} lists",
        ROUNDS / 4
    );
    assert!(
        resyncs <= MAX_RESYNCS,
        "{resyncs} of {SUBSCRIBERS} subscribers were told to resync (at most {MAX_RESYNCS})"
    );
    assert!(
        resumes >= SUBSCRIBERS / 2,
        "only {resumes} reconnects with cursors happened"
    );
    println!(
        "chaos: {ROUNDS} kills {kills:?}, {SUBSCRIBERS} subscribers (+1 reference) each got {} events in order, {resyncs} RESYNC_REQUIRED (at most {MAX_RESYNCS}), {} reconnects with cursors, {relists} Kubernetes lists, {} applications and {} pods equal upstream",
        expected.len(),
        resumes,
        a.0.len(),
        p.0.len()
    );
}

/// Changes a label of one pod (a different one each round) while the watches are down.
fn relabel_a_pod(kube: &idp_graph::demo::kubernetes::KubeSim, round: usize) {
    let mut pods = kube.list("pods");
    pods.sort_by_key(|p| p["metadata"]["name"].as_str().unwrap_or("").to_string());
    let mut pod = pods[round % pods.len()].clone();
    pod["metadata"]["labels"]["chaos-round"] = json!(round.to_string());
    kube.upsert("pods", pod);
}

/// Deletes the pod the previous compaction round added (or a seeded one) and adds
/// `chaos-{round}` in `sample-app`: after a compaction only a re-list tells of both.
fn replace_a_pod(kube: &idp_graph::demo::kubernetes::KubeSim, round: usize) {
    let template = kube
        .list("pods")
        .into_iter()
        .find(|p| p["metadata"]["namespace"] == "sample-app")
        .expect("a pod in sample-app");
    if round >= 4 {
        assert!(kube.delete("pods", "sample-app", &format!("chaos-{}", round - 4)));
    }
    let mut pod = template;
    pod["metadata"]["name"] = json!(format!("chaos-{round}"));
    pod["metadata"]["uid"] = json!(format!("chaos-uid-{round}"));
    kube.upsert("pods", pod);
}
