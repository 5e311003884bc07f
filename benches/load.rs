//! The load harness: the same queries against idp-graph (response cache on and off), a
//! static-bytes server (axum answering the very bytes idp-graph answered: the ceiling) and Hive
//! Gateway composed by GraphQL Mesh over the same simulated ArgoCD and Backstage (plain, and
//! with its response cache), driven by `wrk` (Debian's), every server's answer checked against
//! idp-graph's first. One command:
//!
//! ```sh
//! cargo bench --bench load          # 10 s per row, 20 connections; npm ci in benches/hive once
//! ```
//!
//! `IDP_LOAD_ONLY=<text>` keeps only the rows whose "query / server" contains the text (to
//! profile one row, e.g. `IDP_LOAD_ONLY="service page / idp-graph, cache on"`).
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) it is a 1-second smoke run without
//! Hive, and it skips itself when `wrk` is missing. The world: the demo's simulations with 100
//! generated services (108 ArgoCD applications, 100 components with one each). Everything runs
//! on this machine, so only ratios within one run mean anything.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

#[path = "hive/peer.rs"]
mod hive;
// Shared with other benches; this one uses part of it.
#[path = "support/static_bytes.rs"]
mod static_bytes;
#[allow(dead_code)]
#[path = "support/wrk.rs"]
mod wrk;
use static_bytes::static_server;
use wrk::{peak_rss_mib, wrk, WrkReport};

use idp_graph::app::App;
use idp_graph::demo::{DemoOptions, DemoWorld};
use serde_json::{json, Value};

const LIST: &str =
    "{ applications(first: 200) { nodes { name sync { status } health { status } } } }";
const CROSS: &str = r#"{ entities(filter: {kind: "Component"}, first: 100) { nodes { name ... on Component { applications { name health { status } } } } } }"#;
const SERVICE: &str = r#"query ServicePage { entity(ref: "component:default/sample-app") { ref ... on Component { lifecycle owner { ref } system { ref }
  applications { name sync { status revision } health { status } operationState { phase } history { historyId revision deployedAt } viewerCan { sync } }
  kubernetes { deployments { name rollout { state ready desired } } pods { name phase restarts } } } } }"#;

/// The same questions in the schema Mesh generates from the OpenAPI subsets (no Kubernetes
/// there: the service page asks the catalog and ArgoCD parts only).
const HIVE_LIST: &str =
    "{ applications { items { metadata { name } status { sync { status } health { status } } } } }";
const HIVE_CROSS: &str = r#"{ entities(filter: "kind=component", limit: 100) { items { metadata { name } application { metadata { name } status { health { status } } } } } }"#;
const HIVE_SERVICE: &str = r#"{ entity(kind: "component", namespace: "default", name: "sample-app") { metadata { name } spec { lifecycle owner system }
  application { metadata { name } status { sync { status revision } health { status } operationState { phase } history { id revision deployedAt } } } } }"#;

/// One benchmarked question: idp-graph's text, Hive's, and the check that Hive answered the
/// same facts idp-graph did.
struct Case {
    name: &'static str,
    ours: &'static str,
    hive: &'static str,
    agrees: fn(&Value, &Value) -> Result<(), String>,
}

/// A string field; statuses compared without case (our enums are `SYNCED`, ArgoCD's `Synced`).
fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_lowercase()
}

fn same_list(ours: &Value, hive: &Value) -> Result<(), String> {
    let mut a: Vec<_> = ours["data"]["applications"]["nodes"]
        .as_array()
        .ok_or("no nodes")?
        .iter()
        .map(|n| {
            (
                s(&n["name"]),
                s(&n["sync"]["status"]),
                s(&n["health"]["status"]),
            )
        })
        .collect();
    let mut b: Vec<_> = hive["data"]["applications"]["items"]
        .as_array()
        .ok_or("no items")?
        .iter()
        .map(|n| {
            let st = &n["status"];
            (
                s(&n["metadata"]["name"]),
                s(&st["sync"]["status"]),
                s(&st["health"]["status"]),
            )
        })
        .collect();
    a.sort();
    b.sort();
    (a == b)
        .then_some(())
        .ok_or_else(|| format!("apps differ: {a:?} vs {b:?}"))
}

fn same_cross(ours: &Value, hive: &Value) -> Result<(), String> {
    let known: std::collections::HashMap<String, (String, String)> = ours["data"]["entities"]
        ["nodes"]
        .as_array()
        .ok_or("no nodes")?
        .iter()
        .map(|n| {
            let app = &n["applications"][0];
            (
                s(&n["name"]),
                (s(&app["name"]), s(&app["health"]["status"])),
            )
        })
        .collect();
    let items = hive["data"]["entities"]["items"]
        .as_array()
        .ok_or("no items")?;
    if items.len() != known.len() {
        return Err(format!("{} components vs {}", items.len(), known.len()));
    }
    for i in items {
        let app = &i["application"];
        let got = (
            s(&app["metadata"]["name"]),
            s(&app["status"]["health"]["status"]),
        );
        match known.get(&s(&i["metadata"]["name"])) {
            Some(want) if *want != got => return Err(format!("{i} vs {want:?}")),
            _ => {}
        }
    }
    Ok(())
}

fn same_service(ours: &Value, hive: &Value) -> Result<(), String> {
    let a = &ours["data"]["entity"]["applications"][0];
    let b = &hive["data"]["entity"]["application"]["status"];
    let revs = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|h| s(&h["revision"]))
            .collect()
    };
    let same = s(&a["sync"]["revision"]) == s(&b["sync"]["revision"])
        && s(&a["health"]["status"]) == s(&b["health"]["status"])
        && revs(&a["history"]) == revs(&b["history"])
        && ours["data"]["entity"]["lifecycle"] == hive["data"]["entity"]["spec"]["lifecycle"];
    same.then_some(()).ok_or_else(|| format!("{a} vs {b}"))
}

const CASES: [Case; 3] = [
    Case {
        name: "application list (108 apps)",
        ours: LIST,
        hive: HIVE_LIST,
        agrees: same_list,
    },
    Case {
        name: "100 components + their app",
        ours: CROSS,
        hive: HIVE_CROSS,
        agrees: same_cross,
    },
    Case {
        name: "service page",
        ours: SERVICE,
        hive: HIVE_SERVICE,
        agrees: same_service,
    },
];

struct Row {
    query: &'static str,
    server: String,
    wrk: WrkReport,
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

async fn measure(addr: SocketAddr, query: &str, seconds: u64, dir: &std::path::Path) -> WrkReport {
    let (q, d) = (query.to_string(), dir.to_path_buf());
    tokio::task::spawn_blocking(move || wrk(addr, &q, seconds, 20, &d))
        .await
        .unwrap()
}

/// The Hive peers (plain, cached), composed over `world`, or why not.
async fn start_hive(
    world: &DemoWorld,
    dir: &std::path::Path,
) -> Result<(hive::Gateway, hive::Gateway), String> {
    if !hive::install() {
        return Err("npm ci in benches/hive failed".into());
    }
    let supergraph = dir.join("supergraph.graphql");
    hive::compose(
        &world.argocd.url(),
        &world.backstage.url(),
        idp_graph::demo::DEMO_TOKEN,
        &supergraph,
    );
    let plain = hive::Gateway::start(&supergraph, false, &dir.join("hive-plain.log")).await;
    let cached = hive::Gateway::start(&supergraph, true, &dir.join("hive-cached.log")).await;
    Ok((plain, cached))
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    if Command::new("wrk").arg("--version").output().is_err() {
        println!("load: wrk is not installed (apt-get install wrk); skipped");
        return;
    }
    let seconds = if full { 10 } else { 1 };
    let only = std::env::var("IDP_LOAD_ONLY").ok();
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
        let peers = if only.as_ref().is_some_and(|o| !o.contains("Hive")) {
            Err("IDP_LOAD_ONLY leaves them out".into())
        } else if full {
            start_hive(&world, dir.path()).await
        } else {
            Err("smoke run (cargo bench runs it)".into())
        };
        if let Err(why) = &peers {
            println!("load: Hive Gateway rows skipped: {why}");
        }
        let mut rows = Vec::new();
        for case in &CASES {
            let body = post_body(cached, case.ours).await;
            assert_eq!(post_body(uncached, case.ours).await, body, "cache on and off answer alike");
            let ours: Value = serde_json::from_slice(&body).unwrap();
            let ceiling = static_server(body).await;
            let mut servers = vec![
                ("static bytes", ceiling, case.ours),
                ("idp-graph, cache on", cached, case.ours),
                ("idp-graph, cache off", uncached, case.ours),
            ];
            if let Ok((plain, hive_cached)) = &peers {
                for (label, gw) in [("Hive Gateway, plain", plain), ("Hive Gateway, response cache", hive_cached)] {
                    let theirs: Value = serde_json::from_slice(&post_body(gw.addr, case.hive).await).unwrap();
                    if let Err(e) = (case.agrees)(&ours, &theirs) {
                        panic!("{label} disagrees with idp-graph on {}: {e}", case.name);
                    }
                    servers.push((label, gw.addr, case.hive));
                }
            }
            for (server, addr, query) in servers {
                if only.as_ref().is_some_and(|o| !format!("{} / {server}", case.name).contains(o.as_str())) {
                    continue;
                }
                let wrk = measure(addr, query, seconds, dir.path()).await;
                rows.push(Row { query: case.name, server: server.into(), wrk });
            }
        }
        println!("load: wrk -t2 -c20 -d{seconds}s --timeout 10s, POST /graphql; demo world with 100 services; peak RSS: this process (idp-graph x2, static server, simulations) {:.0} MiB", peak_rss_mib("/proc/self/status"));
        if let Ok((plain, hive_cached)) = &peers {
            println!("  Hive Gateway ({}): plain {:.0} MiB, cached {:.0} MiB (primary + workers)", hive::settings(), plain.peak_rss_mib(), hive_cached.peak_rss_mib());
        }
        println!("  every answer's body is checked for GraphQL errors (wrk Lua `response`)");
        println!("| query | server | req/s | p50 ms | p99 ms | non-2xx | socket errors | timeouts | GraphQL errors | answers checked | vs static |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|");
        for r in &rows {
            // Against the static-bytes row of the same query, when it ran.
            let ceiling = rows
                .iter()
                .find(|c| c.query == r.query && c.server == "static bytes")
                .map(|c| format!("{:.3}x", r.wrk.rps / c.wrk.rps.max(1.0)))
                .unwrap_or_else(|| "-".into());
            let w = &r.wrk;
            println!(
                "| {} | {} | {:.0} | {:.2} | {:.2} | {} | {} | {} | {} | {} | {ceiling} |",
                r.query, r.server, w.rps, w.p50_ms, w.p99_ms, w.non_2xx, w.socket_errors, w.timeouts, w.graphql_errors, w.checked
            );
            assert_eq!(w.failures(), 0, "{} failed under load: {w:?}", r.server);
            assert!(w.checked > 0, "{}: no answer was checked", r.server);
        }
        // Every row ran: five per query, in the order above. The fair pairs: each of our modes
        // against Hive's same mode (cache on vs its response cache, cache off vs plain).
        if peers.is_ok() && only.is_none() {
            let per_case = rows.len() / CASES.len();
            println!("\n| query | cache on vs Hive cached, req/s | cache off vs Hive plain, req/s | p99 cache on vs Hive cached's | p99 cache off vs Hive plain's | cache on vs Hive plain, req/s |");
            println!("|---|---|---|---|---|---|");
            for chunk in rows.chunks(per_case) {
                let (on, off, plain, hc) = (&chunk[1].wrk, &chunk[2].wrk, &chunk[3].wrk, &chunk[4].wrk);
                println!(
                    "| {} | {:.1}x | {:.1}x | {:.3}x | {:.3}x | {:.0}x |",
                    chunk[0].query,
                    on.rps / hc.rps.max(0.01),
                    off.rps / plain.rps.max(0.01),
                    on.p99_ms / hc.p99_ms.max(0.001),
                    off.p99_ms / plain.p99_ms.max(0.001),
                    on.rps / plain.rps.max(0.01)
                );
            }
        }
        world.stop();
    });
}
