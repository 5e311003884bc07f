//! Change-to-subscriber latency through the replicas' shared log (Redis) vs in-process.
//!
//! One simulated world; three `idp-graph serve` processes: a plain one (its own in-process bus)
//! and two replicas sharing a change log on a real `redis-server`. A subscriber on each follows
//! one application; each round changes its health upstream once and times, from that moment,
//! when each subscriber gets the event. On a replica that does not own ArgoCD the change travels
//! owner → Redis Stream → this replica's reader → its bus → the websocket.
//!
//! `cargo bench --bench replicas` runs 300 rounds; without `--bench` (as
//! `cargo test --all-targets` runs it) a 5-round smoke run that checks every subscriber got every
//! change. Needs `redis-server` (Debian's; `.ci/run` installs it).

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use idp_graph::demo::{DemoOptions, DemoWorld};

#[path = "../tests/support/redis_server.rs"]
#[allow(dead_code)] // `restart` is the tests'.
mod redis_server;
#[path = "../tests/support/serve_child.rs"]
mod serve_child;
#[path = "support/static_bytes.rs"]
mod static_bytes;
#[path = "support/wrk.rs"]
#[allow(dead_code)] // The memory readers are `load`'s and `soak`'s.
mod wrk;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const Q: &str =
    r#"subscription { applicationEvents(filter: {names: ["app-2"]}) { type current { health } } }"#;

async fn ready(base: &str) {
    let started = Instant::now();
    while !reqwest::get(format!("{base}/readyz"))
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{base} not ready"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn subscribe(base: &str) -> Ws {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("{}/graphql/ws", base.replace("http://", "ws://"))
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let mut ws = tokio_tungstenite::connect_async(req).await.unwrap().0;
    for m in [
        json!({"type": "connection_init"}),
        json!({"id": "1", "type": "subscribe", "payload": {"query": Q}}),
        json!({"type": "ping"}),
    ] {
        ws.send(Message::text(m.to_string())).await.unwrap();
    }
    // Registered once the pong after the subscribe is back.
    loop {
        let m = ws.next().await.unwrap().unwrap();
        if m.to_text().unwrap_or("").contains("pong") {
            return ws;
        }
    }
}

/// Waits for the next event carrying `health`; the time since `t0`.
async fn next_event(ws: &mut Ws, health: &str, t0: Instant) -> Duration {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .unwrap();
        let Ok(t) = m.to_text() else { continue };
        let v: Value = serde_json::from_str(t).unwrap_or(Value::Null);
        if v["type"] == "next"
            && v["payload"]["data"]["applicationEvents"]["current"]["health"] == health
        {
            return t0.elapsed();
        }
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let rounds = if full { 300 } else { 5 };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let Some(redis) = redis_server::RedisServer::start(false) else {
            println!("replicas: skipped (redis-server not installed)");
            return;
        };
        let world = DemoWorld::start(&DemoOptions::for_tests()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("redis-url"), redis.url()).unwrap();
        std::fs::write(dir.path().join("key"), "a cursor key both replicas of this bench share").unwrap();
        let quiet = "limits: { requests_per_minute: 0 }\n";
        let plain = serve_child::spawn(&world, 30.0, quiet);
        let replica = |id: &str| {
            serve_child::spawn(
                &world,
                30.0,
                &format!(
                    "{quiet}cluster: {{ redis_url_file: '{}', replica_id: {id}, lease_secs: 3 }}\nevents: {{ cursor_key_file: '{}' }}\n",
                    dir.path().join("redis-url").display(),
                    dir.path().join("key").display()
                ),
            )
        };
        let (b1, b2) = (replica("b1"), replica("b2"));
        for s in [&plain, &b1, &b2] {
            ready(&s.base).await;
        }
        // Which replica owns ArgoCD (the other receives every change through Redis), once both
        // are members and a lease round has passed (a replica that joins second may take
        // sources over: not part of what is measured).
        loop {
            let mut members = 0;
            for s in [&b1, &b2] {
                let v: Value = reqwest::get(format!("{}/readyz", s.base)).await.unwrap().json().await.unwrap();
                members += usize::from(v["cluster"]["members"].as_array().is_some_and(|m| m.len() == 2));
            }
            if members == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let owner_of_argocd = loop {
            let mut found = None;
            for (i, s) in [&b1, &b2].iter().enumerate() {
                let v: Value = reqwest::get(format!("{}/readyz", s.base)).await.unwrap().json().await.unwrap();
                if v["cluster"]["owns"].as_array().is_some_and(|o| o.iter().any(|x| x == "argocd/main")) {
                    found = Some(i);
                }
            }
            if let Some(i) = found {
                break i;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let (owner, other) = if owner_of_argocd == 0 { (&b1, &b2) } else { (&b2, &b1) };
        let mut subs = [
            subscribe(&plain.base).await,
            subscribe(&owner.base).await,
            subscribe(&other.base).await,
        ];
        let healths = ["Degraded", "Healthy"];
        let mut samples: [Vec<f64>; 3] = Default::default();
        let mut added = Vec::new();
        for round in 0..rounds {
            let h = healths[round % 2];
            let t0 = Instant::now();
            assert!(world.argocd.set_health("app-2", h, None));
            let want = h.to_uppercase();
            let [s0, s1, s2] = &mut subs;
            let (a, b, c) = tokio::join!(
                next_event(s0, &want, t0),
                next_event(s1, &want, t0),
                next_event(s2, &want, t0),
            );
            for (k, d) in [a, b, c].into_iter().enumerate() {
                samples[k].push(d.as_secs_f64() * 1e3);
            }
            added.push((c.as_secs_f64() - a.as_secs_f64()) * 1e3);
            // Let every process settle between rounds.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for s in samples.iter_mut() {
            s.sort_by(f64::total_cmp);
        }
        added.sort_by(f64::total_cmp);
        println!("replicas: {rounds} upstream changes of one application, each timed from the change to the subscriber's event (ms)");
        println!("| subscriber on | p50 | p99 | max |\n|---|---|---|---|");
        for (name, s) in [
            ("one process (in-process bus)", &samples[0]),
            ("replica owning ArgoCD (its change back from Redis)", &samples[1]),
            ("replica not owning ArgoCD (owner → Redis → reader)", &samples[2]),
        ] {
            println!("| {name} | {:.2} | {:.2} | {:.2} |", pct(s, 0.5), pct(s, 0.99), s[s.len() - 1]);
        }
        println!(
            "added by the shared log (other replica minus one process, per change): p50 {:.2} ms, p99 {:.2} ms",
            pct(&added, 0.5),
            pct(&added, 0.99)
        );

        // Cached reads: the same query against the static-bytes ceiling, the plain process and
        // the replica that owns nothing of ArgoCD (each serves from its own memory and cache).
        const READ: &str = "{ applications(first: 200) { nodes { name sync { status revision } health { status } } } }";
        let body = reqwest::Client::new()
            .post(format!("{}/graphql", plain.base))
            .json(&json!({ "query": READ }))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec();
        let ceiling = static_bytes::static_server(body).await;
        let secs = if full { 10 } else { 1 };
        let tmp = tempfile::tempdir().unwrap();
        let mut rows = Vec::new();
        for (name, addr) in [
            ("static bytes", ceiling),
            ("one process, cache on", plain.addr),
            ("replica not owning ArgoCD, cache on", other.addr),
        ] {
            let d = tmp.path().to_path_buf();
            let report = tokio::task::spawn_blocking(move || wrk::wrk(addr, READ, secs, 20, &d))
                .await
                .unwrap();
            rows.push((name, report));
        }
        println!("cached reads (wrk -t2 -c20 -d{secs}s, POST /graphql, the application list):");
        println!("| server | req/s | p50 ms | p99 ms | failures (non-2xx, socket, timeout, GraphQL) | vs static |\n|---|---|---|---|---|---|");
        let ceiling_rps = rows[0].1.rps;
        for (name, r) in &rows {
            println!(
                "| {name} | {:.0} | {:.2} | {:.2} | {} | {:.3}x |",
                r.rps,
                r.p50_ms,
                r.p99_ms,
                r.failures(),
                r.rps / ceiling_rps
            );
            if !r.rps.is_nan() {
                assert_eq!(r.failures(), 0, "{name}: {r:?}");
            }
        }
        world.stop();
    });
}
