//! 1,000 repositories refreshed every 5 minutes for an hour (12 rounds; simulated time: each
//! round forces the refresh the TTL would trigger). Between rounds, 2 % of the repositories get
//! a push. Counts GitHub requests and rate-limit points spent by idp-graph's conditional
//! refreshes, beside naive polling of the same data (unconditional GETs, what a plugin without
//! a cache does). `cargo bench --bench github_economy` prints the table.

use std::sync::Arc;

use futures::StreamExt;
use idp_graph::demo::git::GitWorld;
use idp_graph::demo::github::GitHubSim;
use idp_graph::sources::github::{GitHubClient, GitHubSource, GitHubTtls};
use idp_graph::state::{SourceKind, SourceRegistry};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "bench-token";

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (repos, rounds) = if full { (1_000usize, 12usize) } else { (50, 3) };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let git = Arc::new(GitWorld::default());
        for i in 0..repos {
            git.create(&format!("yourcompany/svc-{i:05}"), "generated", Some("Rust"), 3);
        }
        let stop = CancellationToken::new();
        let ours_sim = GitHubSim::start(git.clone(), TOKEN, 1_000_000, stop.clone()).await.unwrap();
        let naive_sim = GitHubSim::start(git.clone(), TOKEN, 1_000_000, stop.clone()).await.unwrap();
        let registry = SourceRegistry::default();
        let health = registry.register("github", SourceKind::GitHub, &ours_sim.url());
        let source = Arc::new(GitHubSource::new(GitHubClient::new(&ours_sim.url(), Some(TOKEN.to_string().into()), 30.0).unwrap(), GitHubTtls::default(), health));
        let naive = reqwest::Client::new();
        let slugs: Vec<String> = (0..repos).map(|i| format!("yourcompany/svc-{i:05}")).collect();
        for round in 0..rounds {
            if round > 0 {
                for (i, slug) in slugs.iter().enumerate() {
                    if (i + round * 7) % 50 == 0 {
                        git.push(slug, &format!("round {round}"), "alice");
                    }
                }
            }
            // Ours: conditional refresh, 16 in flight.
            futures::stream::iter(slugs.iter())
                .map(|s| { let source = source.clone(); async move { source.repository(s, true).await.unwrap() } })
                .buffer_unordered(16)
                .collect::<Vec<_>>()
                .await;
            // Naive: unconditional GET of the same resource.
            futures::stream::iter(slugs.iter())
                .map(|s| { let (naive, url) = (naive.clone(), format!("{}/repos/{s}", naive_sim.url())); async move {
                    naive.get(url).bearer_auth(TOKEN).send().await.unwrap().bytes().await.unwrap()
                } })
                .buffer_unordered(16)
                .collect::<Vec<_>>()
                .await;
        }
        let (ours_req, ours_304) = ours_sim.counters();
        let (naive_req, _) = naive_sim.counters();
        let (ours_pts, naive_pts) = (ours_sim.used(), naive_sim.used());
        println!("github_economy: {repos} repositories x {rounds} refreshes (every 5 min for {} min)", rounds * 5);
        println!("  idp-graph: {ours_req} requests, {ours_304} of them 304, {ours_pts} rate-limit points");
        println!("  naive:     {naive_req} requests, {naive_pts} rate-limit points");
        println!("  points ratio naive/idp-graph: {:.1}x", naive_pts as f64 / ours_pts.max(1) as f64);
        stop.cancel();
    });
}
