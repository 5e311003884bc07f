//! One process with the whole large world: 8,000 ArgoCD applications, 10,000 pods (2,000
//! Deployments × 5), ~10,000 catalog entities (8,000 services + 2,000 APIs + the seed) and
//! 8,000 repositories. The simulations run in this process; `idp-graph serve` runs as its own
//! child process against them, so its resident memory is its own. Measured: time to ready
//! (`/readyz` 200: every source listed), memory after ready and at peak, and the service-page
//! query under load (wrk, 20 connections) with the response cache on and off.
//!
//! `cargo bench --bench scale`; without `--bench` (as `cargo test --all-targets` runs it) a
//! small world, and without `wrk` the load rows are skipped.

use std::net::SocketAddr;
use std::process::Command;

use idp_graph::demo::{DemoOptions, DemoWorld};
use serde_json::{json, Value};

#[path = "support/serve.rs"]
mod serve;
// Shared with other benches; this one uses part of it.
#[allow(dead_code)]
#[path = "support/wrk.rs"]
mod wrk;

use serve::serve;

fn status_mib(pid: u32, field: &str) -> f64 {
    wrk::status_mib(&format!("/proc/{pid}/status"), field)
}

const SERVICE: &str = r#"query ServicePage { entity(ref: "component:default/sample-app") { ref ... on Component { lifecycle owner { ref } system { ref }
  applications { name sync { status revision } health { status } operationState { phase } history { historyId revision deployedAt } viewerCan { sync } }
  kubernetes { deployments { name rollout { state ready desired } } pods { name phase restarts } } } } }"#;

async fn gql(addr: SocketAddr, query: &str) -> Value {
    let v: Value = reqwest::Client::new()
        .post(format!("http://{addr}/graphql"))
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(v["errors"].is_null(), "{query}: {v}");
    v
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (services, deployments, apis) = if full {
        (8_000, 2_000, 2_000)
    } else {
        (100, 20, 20)
    };
    let seconds = if full { 10 } else { 1 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let opts = DemoOptions {
            scale: services,
            kube_scale: deployments,
            weather: false,
            auth: false,
            ..DemoOptions::default()
        };
        let world = DemoWorld::start(&opts).await.expect("demo world");
        for i in 0..apis {
            world.backstage.upsert(json!({
                "apiVersion": "backstage.io/v1alpha1", "kind": "API",
                "metadata": {"name": format!("api-{i:05}"), "description": "Generated API"},
                "spec": {"type": "openapi", "lifecycle": "production", "owner": "app-team",
                         "definition": "openapi: 3.0.0"},
            }));
        }
        let (server, ready) = serve(&world, true).await;
        let pid = server.child.id();
        let counts = gql(server.addr, "{ applications { totalCount } entities { totalCount } pods { totalCount } }").await;
        let (apps, entities, pods) = (
            &counts["data"]["applications"]["totalCount"],
            &counts["data"]["entities"]["totalCount"],
            &counts["data"]["pods"]["totalCount"],
        );
        let repos = world.git.slugs().len();
        let rss_ready = status_mib(pid, "VmRSS:");
        gql(server.addr, SERVICE).await;
        println!("scale: one idp-graph serve process over {apps} applications, {entities} entities, {pods} pods, {repos} repositories");
        println!("  time to ready: {:.1} s; resident memory after ready: {rss_ready:.0} MiB", ready.as_secs_f64());
        let has_wrk = Command::new("wrk").arg("--version").output().is_ok();
        if !has_wrk {
            println!("  wrk is not installed: load rows skipped");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let mut rows = Vec::new();
        let on = tokio::task::spawn_blocking({
            let (addr, d) = (server.addr, dir.path().to_path_buf());
            move || wrk::wrk(addr, SERVICE, seconds, 20, &d)
        })
        .await
        .unwrap();
        rows.push(("cache on", on));
        let peak = wrk::peak_rss_mib(&format!("/proc/{pid}/status"));
        drop(server);
        let (uncached, _) = serve(&world, false).await;
        let off = tokio::task::spawn_blocking({
            let (addr, d) = (uncached.addr, dir.path().to_path_buf());
            move || wrk::wrk(addr, SERVICE, seconds, 20, &d)
        })
        .await
        .unwrap();
        rows.push(("cache off", off));
        println!("  peak resident memory (cache on, after load): {peak:.0} MiB");
        println!("| service page, wrk -c20 -d{seconds}s | req/s | p50 ms | p99 ms | non-2xx | socket errors | timeouts | GraphQL errors | answers checked |");
        println!("|---|---|---|---|---|---|---|---|---|");
        for (name, w) in rows {
            println!(
                "| {name} | {:.0} | {:.2} | {:.2} | {} | {} | {} | {} | {} |",
                w.rps, w.p50_ms, w.p99_ms, w.non_2xx, w.socket_errors, w.timeouts, w.graphql_errors, w.checked
            );
            assert_eq!(w.failures(), 0, "{name}: failures under load: {w:?}");
            assert!(w.checked > 0, "{name}: no answer was checked");
        }
        world.stop();
    });
}
