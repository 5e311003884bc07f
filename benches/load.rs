//! The load harness: the same queries against idp-graph (response cache on and off) and a
//! static-bytes server (axum answering the very bytes idp-graph answered: the ceiling), driven
//! by `wrk` (Debian's), every response checked first. One command:
//!
//! ```sh
//! cargo bench --bench load          # 10 s per row, 20 connections
//! ```
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) it is a 1-second smoke run, and it
//! skips itself when `wrk` is missing. The world: the demo's simulations with 100 generated
//! services (100 components, 100 ArgoCD applications). Everything runs on this machine, so
//! only ratios within one run mean anything.

use std::io::Write;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use axum::routing::post;
use idp_graph::app::App;
use idp_graph::demo::{DemoOptions, DemoWorld};
use serde_json::{json, Value};

const LIST: &str =
    "{ applications(first: 100) { nodes { name sync { status } health { status } } } }";
const CROSS: &str = r#"{ entities(filter: {kind: "Component"}, first: 100) { nodes { name ... on Component { applications { name health { status } } } } } }"#;
const SERVICE: &str = r#"query ServicePage { entity(ref: "component:default/sample-app") { ref ... on Component { lifecycle owner { ref } system { ref }
  applications { name sync { status revision } health { status } operationState { phase } history { historyId revision deployedAt } viewerCan { sync } }
  kubernetes { deployments { name rollout { state ready desired } } pods { name phase restarts } } } } }"#;

struct Row {
    query: &'static str,
    server: String,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

async fn start_app(
    world: &DemoWorld,
    opts: &DemoOptions,
    cache: bool,
) -> (SocketAddr, tokio_util::sync::CancellationToken) {
    let (mut settings, secrets) = world.settings(opts);
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.cache.enabled = cache;
    // The harness measures serving, not the rate limit or the log.
    settings.limits.requests_per_minute = 0;
    let app = App::build(settings, secrets).await.expect("app builds");
    let addr = app.local_addr();
    let stop = app.shutdown_token();
    tokio::spawn(app.run_until_stopped());
    let base = format!("http://{addr}");
    for _ in 0..200 {
        if reqwest::get(format!("{base}/readyz"))
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (addr, stop)
}

async fn post_body(addr: SocketAddr, query: &str) -> Vec<u8> {
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/graphql"))
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = r.bytes().await.unwrap().to_vec();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert!(v["errors"].is_null(), "{query}: {v}");
    body
}

/// An axum server answering every POST with `body`: the ceiling for that answer.
async fn static_server(body: Vec<u8>) -> SocketAddr {
    let body = bytes::Bytes::from(body);
    let app = axum::Router::new().route(
        "/graphql",
        post(move || {
            let body = body.clone();
            async move { ([("content-type", "application/json")], body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Runs wrk against `addr` with `query` and parses its report.
fn wrk(
    addr: SocketAddr,
    query: &str,
    seconds: u64,
    connections: u32,
    dir: &std::path::Path,
) -> (f64, f64, f64, u64) {
    let script = dir.join("post.lua");
    let body = json!({ "query": query }).to_string();
    let mut f = std::fs::File::create(&script).unwrap();
    writeln!(
        f,
        "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = {}",
        serde_json::to_string(&body).unwrap()
    )
    .unwrap();
    let out = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(&script)
        .arg(format!("http://{addr}/graphql"))
        .output()
        .expect("wrk runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |prefix: &str| -> Option<String> {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
    };
    let ms = |s: Option<String>| -> f64 {
        let s = s.unwrap_or_default();
        if let Some(v) = s.strip_suffix("us") {
            v.parse::<f64>().unwrap_or(0.0) / 1000.0
        } else if let Some(v) = s.strip_suffix("ms") {
            v.parse().unwrap_or(0.0)
        } else if let Some(v) = s.strip_suffix('s') {
            v.parse::<f64>().unwrap_or(0.0) * 1000.0
        } else {
            0.0
        }
    };
    let rps = text
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let errors = text
        .lines()
        .find(|l| l.contains("Non-2xx or 3xx responses:"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    (rps, ms(field("50%")), ms(field("99%")), errors)
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(0.0)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    if Command::new("wrk").arg("--version").output().is_err() {
        println!("load: wrk is not installed (apt-get install wrk); skipped");
        return;
    }
    let seconds = if full { 10 } else { 1 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let opts = DemoOptions {
            scale: 100,
            catalog_poll_secs: 2.0,
            weather: false,
            auth: false,
            ..DemoOptions::default()
        };
        let world = DemoWorld::start(&opts).await.expect("demo world");
        let (cached, _s1) = start_app(&world, &opts, true).await;
        let (uncached, _s2) = start_app(&world, &opts, false).await;
        let dir = tempfile::tempdir().unwrap();
        let mut rows = Vec::new();
        for (name, query) in [("100-app list", LIST), ("100 components + their app", CROSS), ("service page", SERVICE)] {
            let body = post_body(cached, query).await;
            assert_eq!(post_body(uncached, query).await, body, "cache on and off answer alike");
            let ceiling = static_server(body).await;
            for (server, addr) in [("static bytes", ceiling), ("idp-graph, cache on", cached), ("idp-graph, cache off", uncached)] {
                let (rps, p50, p99, errors) = tokio::task::spawn_blocking({
                    let (q, d) = (query.to_string(), dir.path().to_path_buf());
                    move || wrk(addr, &q, seconds, 20, &d)
                })
                .await
                .unwrap();
                rows.push(Row { query: name, server: server.into(), rps, p50_ms: p50, p99_ms: p99, errors });
            }
        }
        println!("load: wrk -t2 -c20 -d{seconds}s, POST /graphql; demo world with 100 services; one process (RSS high-water mark {:.0} MiB, all servers and simulations together)", rss_mib());
        println!("| query | server | req/s | p50 ms | p99 ms | non-2xx | vs static |");
        println!("|---|---|---|---|---|---|---|");
        for chunk in rows.chunks(3) {
            let ceiling = chunk[0].rps.max(1.0);
            for r in chunk {
                println!(
                    "| {} | {} | {:.0} | {:.2} | {:.2} | {} | {:.2}x |",
                    r.query, r.server, r.rps, r.p50_ms, r.p99_ms, r.errors, r.rps / ceiling
                );
                assert_eq!(r.errors, 0, "{} answered errors under load", r.server);
            }
        }
        world.stop();
    });
}
