//! Soak: query load, 1,000 subscribers and the demo weather together for 30 minutes.
//!
//! The demo world (100 generated services on top of the seed, with its weather: a commit every
//! 20 s, auto-syncs following, an app that degrades and recovers) runs in this process;
//! `idp-graph serve` runs as a child process against it (cache on), so its memory is its own.
//! 1,000 websocket subscribers follow every application's events (one epoll client thread);
//! wrk sends a mix of the 100-app list, the cross-source component list and the service page
//! (10 connections) for most of every minute, and each query is also checked once a minute for
//! GraphQL errors; besides the weather, app-2's health flips once a minute. One row per minute: server RSS, req/s, p50/p99, non-2xx answers, GraphQL
//! errors, events delivered, subscriber error messages and sockets closed by the server. The
//! summary compares RSS after the first minute with the end, and p99 of the first five minutes
//! with the last five.
//!
//! `cargo bench --bench soak` runs 30 minutes (`-- --bench --minutes N` for another length);
//! without `--bench` (as `cargo test --all-targets` runs it) two 5-second slices.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use idp_graph::demo::{DemoOptions, DemoWorld};
use serde_json::{json, Value};

#[path = "support/lean_ws.rs"]
mod lean;
#[path = "support/serve.rs"]
mod serve;
// Shared with other benches; this one uses part of it.
#[allow(dead_code)]
#[path = "support/wrk.rs"]
mod wrk;

const LIST: &str =
    "{ applications(first: 100) { nodes { name sync { status revision } health { status } } } }";
const CROSS: &str = r#"{ entities(filter: {kind: "Component"}, first: 100) { nodes { name ... on Component { applications { name health { status } } } } } }"#;
const SERVICE: &str = r#"query ServicePage { entity(ref: "component:default/sample-app") { ref ... on Component { lifecycle owner { ref } system { ref }
  applications { name sync { status revision } health { status } operationState { phase } history { historyId revision deployedAt } }
  kubernetes { deployments { name rollout { state ready desired } } pods { name phase restarts } } } } }"#;
const SUBSCRIPTION: &str =
    "subscription { applicationEvents { at type application { name health { status } } } }";

/// Queries answered with `errors` (each of the three asked once).
async fn graphql_errors(http: &reqwest::Client, addr: std::net::SocketAddr) -> u64 {
    let mut errors = 0;
    for q in [LIST, CROSS, SERVICE] {
        let ok = match http
            .post(format!("http://{addr}/graphql"))
            .json(&json!({ "query": q }))
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => r
                .json::<Value>()
                .await
                .is_ok_and(|v| v["errors"].is_null() && !v["data"].is_null()),
            _ => false,
        };
        errors += u64::from(!ok);
    }
    errors
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|a| a == "--bench");
    let minutes: u64 = args
        .iter()
        .position(|a| a == "--minutes")
        .and_then(|i| args.get(i + 1))
        .and_then(|m| m.parse().ok())
        .unwrap_or(30);
    let (slices, slice_secs, load_secs, subscribers) = if full {
        (minutes, 60, 55, 1_000)
    } else {
        (2, 5, 4, 50)
    };
    let has_wrk = std::process::Command::new("wrk")
        .arg("--version")
        .output()
        .is_ok();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let opts = DemoOptions {
            scale: 100,
            weather: true,
            auth: false,
            ..DemoOptions::default()
        };
        let world = DemoWorld::start(&opts).await.expect("demo world");
        // The cluster's Events expire after 5 minutes here (a real API server's default is an
        // hour): the world stops growing within the soak, so what grows is the server's own.
        let event_ttl = std::env::var("IDP_SOAK_EVENT_TTL_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(300.0);
        world.kubernetes.set_event_ttl(Duration::from_secs_f64(event_ttl));
        let (server, _) = serve::serve(&world, true).await;
        let (addr, pid) = (server.addr, server.child.id());
        let rss = || wrk::status_mib(&format!("/proc/{pid}/status"), "VmRSS:");

        // The subscribers: one epoll thread.
        let counters = Arc::new(lean::Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (connected, clients_ready) = tokio::sync::oneshot::channel();
        let subscribe = json!({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}}).to_string();
        let client = {
            let (stop, counters) = (stop.clone(), counters.clone());
            std::thread::spawn(move || {
                let clients = lean::connect(addr.port(), subscribers, true, &subscribe);
                let _ = connected.send(());
                lean::run(clients, Arc::new(AtomicBool::new(false)), stop, Some(counters))
            })
        };
        clients_ready.await.expect("the subscribers connected");

        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("mix.lua");
        let bodies: Vec<String> = [LIST, CROSS, SERVICE]
            .iter()
            .map(|q| serde_json::to_string(&json!({ "query": q }).to_string()).unwrap())
            .collect();
        let mut f = std::fs::File::create(&script).unwrap();
        writeln!(
            f,
            "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n\
             local bodies = {{ {} }}\nlocal i = 0\n\
             request = function()\n  i = i + 1\n  return wrk.format(nil, nil, nil, bodies[(i % #bodies) + 1])\nend",
            bodies.join(", ")
        )
        .unwrap();

        let http = reqwest::Client::new();
        println!("soak: {slices} × {slice_secs} s, {subscribers} subscribers, wrk {load_secs} s per slice (10 connections), demo weather on");
        println!("| minute | RSS MiB | req/s | p50 ms | p99 ms | non-2xx | GraphQL errors | events delivered | subscriber errors | sockets closed |");
        println!("|---|---|---|---|---|---|---|---|---|---|");
        let (mut rss_rows, mut p99s) = (Vec::new(), Vec::new());
        let (mut total_errors, mut last_events) = (0u64, 0u64);
        let started = Instant::now();
        for slice in 1..=slices {
            let slice_start = Instant::now();
            // Besides the weather, one change a slice that every subscriber is told about.
            world.argocd.set_health("app-2", if slice % 2 == 1 { "Degraded" } else { "Healthy" }, None);
            let (rps, p50, p99, non2xx) = if has_wrk {
                let script = script.clone();
                tokio::task::spawn_blocking(move || wrk::wrk_script(addr, &script, load_secs, 10))
                    .await
                    .unwrap()
            } else {
                (f64::NAN, f64::NAN, f64::NAN, 0)
            };
            let gql = graphql_errors(&http, addr).await;
            let left = Duration::from_secs(slice_secs).saturating_sub(slice_start.elapsed());
            tokio::time::sleep(left).await;
            let events = counters.events.load(Ordering::Relaxed);
            let (sub_errors, closed) = (
                counters.errors.load(Ordering::Relaxed),
                counters.closed.load(Ordering::Relaxed),
            );
            let r = rss();
            println!(
                "| {slice} | {r:.1} | {rps:.0} | {p50:.2} | {p99:.2} | {non2xx} | {gql} | {} | {sub_errors} | {closed} |",
                events - last_events
            );
            last_events = events;
            total_errors += non2xx + gql;
            rss_rows.push(r);
            p99s.push(p99);
        }
        stop.store(true, Ordering::Relaxed);
        let _ = client.join();
        let (sub_errors, closed) = (
            counters.errors.load(Ordering::Relaxed),
            counters.closed.load(Ordering::Relaxed),
        );
        let (first, last) = (rss_rows[0], *rss_rows.last().unwrap());
        let window = p99s.len().min(5);
        let (p99_start, p99_end) = (
            median(&p99s[..window]),
            median(&p99s[p99s.len() - window..]),
        );
        println!(
            "soak summary: {:.1} min; RSS {first:.1} → {last:.1} MiB ({:+.1} %); p99 median first {window} slices {p99_start:.2} ms, last {window} {p99_end:.2} ms ({:.2}×); errors: {total_errors} query, {sub_errors} subscriber, {closed} sockets closed; {last_events} events delivered",
            started.elapsed().as_secs_f64() / 60.0,
            (last - first) / first * 100.0,
            p99_end / p99_start,
        );
        assert_eq!(total_errors + sub_errors + closed, 0, "the soak saw errors");
        assert!(last_events > 0, "no event reached the subscribers");
        drop(server);
        world.stop();
    });
}
