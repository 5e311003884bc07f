//! Soak: query load, 1,000 subscribers and the demo weather together for 30 minutes.
//!
//! The demo world (100 generated services on top of the seed, with its weather: a commit every
//! 20 s, auto-syncs following, an app that degrades and recovers) runs in this process;
//! `idp-graph serve` runs as a child process against it (cache on), so its memory is its own.
//! 1,000 websocket subscribers follow every application's events (one epoll client thread);
//! wrk sends a mix of the 100-app list, the cross-source component list and the service page
//! (10 connections) for most of every minute, and every answer's body is checked for GraphQL
//! errors (wrk's Lua `response` hook, `support/wrk.rs`); besides the weather, app-2's health
//! flips once a minute. One row per minute: server RSS, req/s, p50/p99, non-2xx answers, socket
//! errors, timeouts, GraphQL errors, events delivered, subscriber failures (error messages,
//! field errors, read errors, sockets closed by the server), and the server's event bus (events
//! published that minute, events held for replay). Every subscriber follows the same
//! subscription, so each must receive every event stamped inside the measured window: the
//! summary gives the events missed per subscriber (the most any one missed, and how many
//! missed any). The summary compares RSS after the first measured
//! minute with the end (and, as well, the very first warm-up minute with the end), and p99 of
//! the first five measured minutes with the last five.
//!
//! `cargo bench --bench soak` runs 6 minutes of warm-up and then the 30 measured minutes
//! (`-- --bench --minutes N --warmup M` for other lengths); without `--bench` (as
//! `cargo test --all-targets` runs it) one warm-up and two measured 5-second slices.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use idp_graph::demo::{DemoOptions, DemoWorld};
use serde_json::{json, Value};

// Shared with `subscribers`; this one reads the counters and per-subscriber counts.
#[allow(dead_code)]
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

/// Subscriber failures so far: (all, "message, field, read" for the table).
fn sub_failures(k: &lean::Counters) -> (u64, String) {
    let (m, f, r) = (
        k.errors.load(Ordering::Relaxed),
        k.field_errors.load(Ordering::Relaxed),
        k.read_errors.load(Ordering::Relaxed),
    );
    (m + f + r, format!("{m}, {f}, {r}"))
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
    // Warm-up slices run the same load but are not part of the measured window: the server's
    // time-bounded buffers (five minutes of events for replay, the cluster's Events with their
    // TTL) fill during them.
    let warmup: u64 = args
        .iter()
        .position(|a| a == "--warmup")
        .and_then(|i| args.get(i + 1))
        .and_then(|m| m.parse().ok())
        .unwrap_or(if full { 6 } else { 1 });
    let (slices, slice_secs, load_secs, subscribers) = if full {
        (minutes, 60, 55, 1_000)
    } else {
        (2, 5, 4, 50)
    };
    let slices = warmup + slices;
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
        // Per-subscriber counts are kept while `window` is set: the measured slices.
        let window = Arc::new(AtomicBool::new(false));
        let client = {
            let (stop, counters, window) = (stop.clone(), counters.clone(), window.clone());
            std::thread::spawn(move || {
                let clients = lean::connect(addr.port(), subscribers, true, &subscribe);
                let _ = connected.send(());
                lean::run(clients, window, stop, Some(counters))
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
        println!("| minute | RSS MiB | req/s | p50 ms | p99 ms | non-2xx | socket errors | timeouts | GraphQL errors | answers checked | events delivered | subscriber errors (message, field, read) | sockets closed | bus events | buffered |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        let (mut rss_rows, mut p99s, mut first_rss) = (Vec::new(), Vec::new(), 0.0);
        let (mut total_errors, mut last_events, mut last_published) = (0u64, 0u64, 0u64);
        let started = Instant::now();
        for slice in 1..=slices {
            let slice_start = Instant::now();
            // Besides the weather, one change a slice that every subscriber is told about.
            world.argocd.set_health("app-2", if slice % 2 == 1 { "Degraded" } else { "Healthy" }, None);
            let w = if has_wrk {
                let script = script.clone();
                tokio::task::spawn_blocking(move || wrk::wrk_script(addr, &script, load_secs, 10))
                    .await
                    .unwrap()
            } else {
                wrk::WrkReport::skipped()
            };
            // wrk checked every answer; these three are asked once more outside the load, so a
            // slice without wrk still checks something.
            let gql = w.graphql_errors + graphql_errors(&http, addr).await;
            let left = Duration::from_secs(slice_secs).saturating_sub(slice_start.elapsed());
            tokio::time::sleep(left).await;
            let events = counters.events.load(Ordering::Relaxed);
            let sub_errors = sub_failures(&counters);
            let closed = counters.closed.load(Ordering::Relaxed);
            let r = rss();
            let (published, buffered) = bus_counts(&http, addr).await;
            let label = if slice <= warmup {
                format!("warm-up {slice}")
            } else {
                (slice - warmup).to_string()
            };
            println!(
                "| {label} | {r:.1} | {:.0} | {:.2} | {:.2} | {} | {} | {} | {gql} | {} | {} | {} | {closed} | {} | {buffered} |",
                w.rps,
                w.p50_ms,
                w.p99_ms,
                w.non_2xx,
                w.socket_errors,
                w.timeouts,
                w.checked,
                events - last_events,
                sub_errors.1,
                published - last_published
            );
            last_events = events;
            last_published = published;
            total_errors += w.non_2xx + w.socket_errors + w.timeouts + gql;
            if slice == 1 {
                first_rss = r;
            }
            if slice == warmup {
                // The measured window opens: from here every subscriber must get every event.
                window.store(true, Ordering::Relaxed);
            }
            if slice > warmup {
                rss_rows.push(r);
                p99s.push(w.p99_ms);
            }
        }
        // The window closes; what is in flight arrives before the clients stop. An event being
        // fanned out as the window opens or closes counts for some subscribers and not others:
        // one at each edge, so a subscriber may be two short and no more.
        window.store(false, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(2)).await;
        stop.store(true, Ordering::Relaxed);
        let got = client.join().expect("the subscriber thread");
        let (sub_errors, closed) = (sub_failures(&counters).0, got.closed);
        let most = got.per_subscriber.iter().copied().max().unwrap_or(0);
        let missed: Vec<u64> = got.per_subscriber.iter().map(|&n| most - n).collect();
        let (worst, missing) = (
            missed.iter().copied().max().unwrap_or(0),
            missed.iter().filter(|&&m| m > 0).count(),
        );
        let (first, last) = (rss_rows[0], *rss_rows.last().unwrap());
        let window = p99s.len().min(5);
        let (p99_start, p99_end) = (
            median(&p99s[..window]),
            median(&p99s[p99s.len() - window..]),
        );
        println!(
            "soak summary: {:.1} min ({warmup} of warm-up); RSS over the measured minutes {first:.1} → {last:.1} MiB ({:+.1} %), from the very first minute {first_rss:.1} → {last:.1} MiB ({:+.1} %); p99 median first {window} slices {p99_start:.2} ms, last {window} {p99_end:.2} ms ({:.2}×); errors: {total_errors} query (non-2xx, socket, timeout, GraphQL), {sub_errors} subscriber (message, field, read), {closed} sockets closed; {last_events} events delivered; in the measured window each of {} subscribers got {most} events, the most any one missed {worst} (up to 2 are the window's edges), {missing} missed any",
            started.elapsed().as_secs_f64() / 60.0,
            (last - first) / first * 100.0,
            (last - first_rss) / first_rss * 100.0,
            p99_end / p99_start,
            got.per_subscriber.len(),
        );
        assert_eq!(total_errors + sub_errors + closed, 0, "the soak saw errors");
        assert!(most > 0, "no event in the measured window");
        assert!(
            worst <= 2,
            "{missing} subscribers missed events, one missed {worst} (one at each edge of the window may be in flight)"
        );
        assert!(last_events > 0, "no event reached the subscribers");
        drop(server);
        world.stop();
    });
}

/// The server's event bus from `/metrics`: events published so far, and held for replay now.
async fn bus_counts(http: &reqwest::Client, addr: std::net::SocketAddr) -> (u64, u64) {
    let text = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /metrics"))
    };
    (
        value("idp_events_published_total"),
        value("idp_events_buffered"),
    )
}
