//! 10,000 pods + 2,000 Deployments (+ their ReplicaSets) in the Kubernetes simulation, which
//! runs in its own process. Each variant runs in a fresh child process, so each resident-memory
//! figure is its own: the shipped source (projections, `managedFields` / last-applied
//! stripped), the same without stripping, and the unpruned store — kube-runtime reflectors of
//! the generated `k8s_openapi` types, every object as the API server sent it. Measured: memory
//! after sync, peak during a forced full re-list (410 for every watch), time to ready, and a
//! namespace-filtered pod query answered from memory beside asking the API server.
//!
//! `cargo bench --bench kube_scale` prints a table; numbers go to BENCHMARKS.md.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use idp_graph::graph::{build_schema, GraphContext, Limits};
use idp_graph::sources::kubernetes::ClusterSource;
use idp_graph::state::{ClusterStore, SourceKind, State};

fn status_kib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .unwrap_or(f64::NAN)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One variant, in this (child) process: sync, measure, re-list, measure; prints JSON.
async fn measure(url: String, strip: bool, runs: usize, ns: String) -> serde_json::Value {
    let base_rss = status_kib("VmRSS:");
    let state = State::new();
    let health = state
        .sources
        .register("bench", SourceKind::Kubernetes, &url);
    let cluster = Arc::new(ClusterStore::new("bench", &url, vec![], health));
    state.clusters.add(cluster.clone());
    let client = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
    let token = tokio_util::sync::CancellationToken::new();
    let source = ClusterSource {
        client,
        cluster: cluster.clone(),
        state: state.clone(),
        page_size: 500,
        max_backoff: Duration::from_secs(1),
        strip,
    };
    let started = Instant::now();
    tokio::spawn(source.run(token.clone()));
    while !cluster.synced() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ready = started.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_synced = status_kib("VmRSS:") - base_rss;
    // Peak during a full re-list: reset the high-water mark, then expire every watch.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let lists_done = cluster.lists.load(std::sync::atomic::Ordering::Relaxed);
    let http = reqwest::Client::new();
    http.post(format!("{url}/_sim/expire"))
        .send()
        .await
        .unwrap();
    let relist_started = Instant::now();
    // Every kind re-lists.
    while cluster.lists.load(std::sync::atomic::Ordering::Relaxed) < lists_done + 11 {
        if relist_started.elapsed() > Duration::from_secs(60) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let relist = relist_started.elapsed();
    let peak = status_kib("VmHWM:") - base_rss;
    let schema = build_schema(GraphContext::bare(state.clone(), Limits::default()));
    let q = format!(
        r#"{{ pods(filter: {{namespace: "{ns}"}}, first: 1000) {{ totalCount nodes {{ name ready phase }} }} }}"#
    );
    let mut ours = Vec::new();
    let mut count = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let r = schema
            .execute(
                async_graphql::Request::new(q.as_str())
                    .data(idp_graph::auth::Principal::unrestricted()),
            )
            .await;
        ours.push(t.elapsed());
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        count = r.data.into_json().unwrap()["pods"]["totalCount"]
            .as_u64()
            .unwrap();
    }
    // Baseline: what a client without a cache does per page view: ask the API server.
    let mut base = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let v: serde_json::Value = http
            .get(format!("{url}/api/v1/namespaces/{ns}/pods"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        base.push(t.elapsed());
        assert_eq!(v["items"].as_array().unwrap().len() as u64, count);
    }
    token.cancel();
    serde_json::json!({
        "strip": strip, "objects": cluster.object_count(), "ready_ms": ms(ready),
        "rss_mib": rss_synced / 1024.0, "relist_peak_mib": peak / 1024.0, "relist_ms": ms(relist),
        "pods_in_namespace": count, "query_ms": ms(median(ours)), "api_server_ms": ms(median(base)),
    })
}

/// The unpruned store: one kube-runtime reflector per kind over the generated types.
async fn measure_reflectors(url: String) -> serde_json::Value {
    use futures::StreamExt;
    use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
    use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Pod, Secret, Service};
    use k8s_openapi::api::networking::v1::Ingress;
    use kube::runtime::{reflector, watcher, WatchStreamExt};

    async fn reflect<K>(client: kube::Client) -> usize
    where
        K: kube::Resource<DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug
            + Send
            + Sync
            + 'static,
    {
        let (reader, writer) = reflector::store::<K>();
        let api: kube::Api<K> = kube::Api::all(client);
        let stream = reflector(
            writer,
            watcher(api, watcher::Config::default().page_size(500)),
        )
        .applied_objects();
        tokio::spawn(stream.for_each(|_| async {}));
        reader.wait_until_ready().await.unwrap();
        // The objects live on in the reflector task's writer, which runs until the process
        // ends: what the measurement counts.
        reader.state().len()
    }
    let base_rss = status_kib("VmRSS:");
    let client = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
    let started = Instant::now();
    let c = || client.clone();
    let counts = futures::join!(
        reflect::<Namespace>(c()),
        reflect::<Deployment>(c()),
        reflect::<ReplicaSet>(c()),
        reflect::<StatefulSet>(c()),
        reflect::<DaemonSet>(c()),
        reflect::<Pod>(c()),
        reflect::<Service>(c()),
        reflect::<Ingress>(c()),
        reflect::<ConfigMap>(c()),
        reflect::<Secret>(c()),
        reflect::<Event>(c()),
    );
    let ready = started.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let objects = counts.0
        + counts.1
        + counts.2
        + counts.3
        + counts.4
        + counts.5
        + counts.6
        + counts.7
        + counts.8
        + counts.9
        + counts.10;
    serde_json::json!({
        "variant": "unpruned (kube-runtime reflectors, generated types)", "objects": objects,
        "ready_ms": ms(ready), "rss_mib": (status_kib("VmRSS:") - base_rss) / 1024.0,
    })
}

fn main() {
    let rt = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    };
    // Child: one variant.
    if let (Ok(url), Ok(strip)) = (
        std::env::var("IDP_KUBE_BENCH_URL"),
        std::env::var("IDP_KUBE_BENCH_STRIP"),
    ) {
        if strip == "reflectors" {
            println!("{}", rt().block_on(measure_reflectors(url)));
            return;
        }
        let runs: usize = std::env::var("IDP_KUBE_BENCH_RUNS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(50);
        let ns = std::env::var("IDP_KUBE_BENCH_NS").unwrap_or_else(|_| "ns-042".into());
        let out = rt().block_on(measure(url, strip == "1", runs, ns));
        println!("{out}");
        return;
    }
    // `cargo test --benches` runs this without `--bench`: a small world, same code paths.
    let full = std::env::args().any(|a| a == "--bench");
    let deployments = if full { 2_000 } else { 40 };
    let mut sim = Command::new(env!("CARGO_BIN_EXE_idp-graph"))
        .args(["simulate", "--kube-scale", &deployments.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("idp-graph simulate starts");
    let mut line = String::new();
    std::io::BufReader::new(sim.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let urls: serde_json::Value = serde_json::from_str(&line).expect("simulate prints its URLs");
    let url = urls["kubernetes"].as_str().unwrap().to_string();
    // Baseline for time to ready: one plain paged list of pods and deployments into JSON values.
    let baseline_list = rt().block_on(async {
        let http = reqwest::Client::new();
        let t = Instant::now();
        for path in ["/api/v1/pods", "/apis/apps/v1/deployments"] {
            let mut cont: Option<String> = None;
            loop {
                let mut u = format!("{url}{path}?limit=500");
                if let Some(c) = &cont {
                    u.push_str(&format!("&continue={c}"));
                }
                let v: serde_json::Value = http.get(&u).send().await.unwrap().json().await.unwrap();
                cont = v["metadata"]["continue"]
                    .as_str()
                    .map(|c| url::form_urlencoded::byte_serialize(c.as_bytes()).collect());
                if cont.is_none() {
                    break;
                }
            }
        }
        t.elapsed()
    });
    let mut results = Vec::new();
    for strip in ["1", "0", "reflectors"] {
        let out = Command::new(std::env::current_exe().unwrap())
            .env("IDP_KUBE_BENCH_URL", &url)
            .env("IDP_KUBE_BENCH_STRIP", strip)
            .env("IDP_KUBE_BENCH_RUNS", if full { "50" } else { "3" })
            .env(
                "IDP_KUBE_BENCH_NS",
                format!("ns-{:03}", 42 % deployments.min(100)),
            )
            .stderr(Stdio::inherit())
            .output()
            .expect("the measuring child runs");
        assert!(out.status.success(), "child failed");
        let v: serde_json::Value = serde_json::from_slice(
            out.stdout
                .split(|b| *b == b'\n')
                .find(|l| l.starts_with(b"{"))
                .unwrap(),
        )
        .unwrap();
        results.push(v);
    }
    let _ = sim.kill();
    let _ = sim.wait();
    println!("Kubernetes source, {deployments} Deployments × 5 pods (+ ReplicaSets, namespaces)");
    println!(
        "plain paged list of pods+deployments (baseline for ready): {:.0} ms",
        ms(baseline_list)
    );
    for r in results.iter().filter(|r| r["variant"].is_null()) {
        println!(
            "strip={} objects={} ready={:.0} ms rss={:.1} MiB relist_peak={:.1} MiB relist={:.0} ms | ns query ({} pods) ours={:.3} ms api-server={:.3} ms",
            r["strip"], r["objects"], r["ready_ms"].as_f64().unwrap(), r["rss_mib"].as_f64().unwrap(),
            r["relist_peak_mib"].as_f64().unwrap(), r["relist_ms"].as_f64().unwrap(), r["pods_in_namespace"],
            r["query_ms"].as_f64().unwrap(), r["api_server_ms"].as_f64().unwrap()
        );
    }
    let unpruned = &results[2];
    println!(
        "{}: objects={} ready={:.0} ms rss={:.1} MiB",
        unpruned["variant"].as_str().unwrap(),
        unpruned["objects"],
        unpruned["ready_ms"].as_f64().unwrap(),
        unpruned["rss_mib"].as_f64().unwrap()
    );
    println!(
        "shipped vs unpruned store: {:.2}x the memory after sync",
        results[0]["rss_mib"].as_f64().unwrap() / unpruned["rss_mib"].as_f64().unwrap()
    );
}
