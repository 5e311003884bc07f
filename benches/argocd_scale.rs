//! 8,000 ArgoCD applications: memory held, time to first ready, and a filtered query
//! (3 apps of 8,000) answered from memory, beside the time the simulation takes to serve the
//! full unpaginated list (what every consumer without a cache pays per page view).
//!
//! `cargo bench --bench argocd_scale` prints a table; numbers go to BENCHMARKS.md.

use std::time::{Duration, Instant};

use std::io::BufRead;
use std::process::{Command, Stdio};

use idp_graph::app::App;
use idp_graph::config::{ArgoCdSettings, ResolvedSecrets, Settings, TokenSource};

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    // `cargo test --benches` runs this with no `--bench`: do a tiny run so it stays quick.
    let full = std::env::args().any(|a| a == "--bench");
    let total = if full { 8_000 } else { 200 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        // The simulation runs in its own process so that its memory is not counted as ours.
        let mut sim = Command::new(env!("CARGO_BIN_EXE_idp-graph"))
            .args(["simulate", "--scale", &(total - 8).to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("idp-graph simulate starts");
        let mut line = String::new();
        std::io::BufReader::new(sim.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let urls: serde_json::Value = serde_json::from_str(&line).expect("simulate prints its URLs");
        let (argocd_url, token) = (urls["argocd"].as_str().unwrap().to_string(), urls["token"].as_str().unwrap().to_string());
        let http = reqwest::Client::new();
        let list_url = format!("{argocd_url}/api/v1/applications");
        // Warm the simulation once, then settle memory before measuring ours.
        let body = http.get(&list_url).bearer_auth(&token).send().await.unwrap().bytes().await.unwrap();
        let list_bytes = body.len();
        drop(body);
        let rss_before = rss_mib();

        let mut settings = Settings::empty();
        settings.listen = "127.0.0.1:0".parse().unwrap();
        settings.argocd = vec![ArgoCdSettings {
            name: "main".into(),
            url: argocd_url.clone(),
            token: TokenSource::default(),
            relist_interval_secs: 300.0,
            timeout_secs: 30.0,
            max_backoff_secs: 30.0,
        }];
        let secrets = ResolvedSecrets::default().with(
            idp_graph::state::SourceKind::ArgoCd,
            "main",
            token.clone(),
        );
        let started = Instant::now();
        let app = App::build(settings, secrets).await.unwrap();
        let url = format!("http://{}", app.local_addr());
        let state = app.state();
        tokio::spawn(app.run_until_stopped());
        loop {
            if http.get(format!("{url}/readyz")).send().await.map(|r| r.status().is_success()).unwrap_or(false) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let ready = started.elapsed();
        assert_eq!(state.apps.len(), total);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let rss_after = rss_mib();

        let runs = if full { 200 } else { 5 };
        // A scan that keeps exactly three: `svc-0799x` of svc-00001..svc-07992.
        let needle = format!("{:04}", (total - 8) / 10);
        let query = serde_json::json!({"query": format!("{{ applications(filter: {{name: \"svc-{needle}\", project: \"applications\", syncStatus: SYNCED}}) {{ totalCount nodes {{ name sync {{ status revision }} health {{ status }} lastSyncedAt }} }} }}")});
        let by_name = serde_json::json!({"query": "{ applications(filter: {names: [\"svc-00007\", \"svc-00042\", \"svc-00099\"]}) { totalCount nodes { name sync { status revision } health { status } lastSyncedAt } } }"});
        let mut scan = Vec::new();
        let mut indexed = Vec::new();
        for _ in 0..runs {
            for (q, out) in [(&query, &mut scan), (&by_name, &mut indexed)] {
                let t = Instant::now();
                let v: serde_json::Value = http.post(format!("{url}/graphql")).json(q).send().await.unwrap().json().await.unwrap();
                out.push(t.elapsed());
                assert_eq!(v["data"]["applications"]["totalCount"], 3, "{v}");
            }
        }
        let mut lists = Vec::new();
        for _ in 0..(if full { 20 } else { 2 }) {
            let t = Instant::now();
            let b = http.get(&list_url).bearer_auth(&token).send().await.unwrap().bytes().await.unwrap();
            lists.push(t.elapsed());
            assert_eq!(b.len() / 1000, list_bytes / 1000);
        }
        let _ = sim.kill();
        let _ = sim.wait();
        let (scan, indexed, list) = (median(scan), median(indexed), median(lists));
        println!("argocd_scale: {total} applications");
        println!("  full list from the simulation: {:.1} MiB JSON, median {:.1} ms", list_bytes as f64 / 1048576.0, list.as_secs_f64() * 1e3);
        println!("  time to first ready (list + projects + stream open): {:.0} ms", ready.as_secs_f64() * 1e3);
        println!("  resident memory held by idp-graph's copy: {:.1} MiB ({:.1} KiB per app)", rss_after - rss_before, (rss_after - rss_before) * 1024.0 / total as f64);
        println!("  filtered query, 3 of {total} by name substring (scan), HTTP round trip: median {:.3} ms  (list/query = {:.0}x)", scan.as_secs_f64() * 1e3, list.as_secs_f64() / scan.as_secs_f64());
        println!("  filtered query, 3 of {total} by exact names (index), HTTP round trip:  median {:.3} ms  (list/query = {:.0}x)", indexed.as_secs_f64() * 1e3, list.as_secs_f64() / indexed.as_secs_f64());
    });
}
