//! 1,000 repositories read every 5 minutes for an hour (12 rounds; simulated time). Between
//! rounds, 2 % of the repositories get a push. Three GitHubs over one git world count requests
//! and rate-limit points (REST and GraphQL) for:
//! - naive polling: unconditional GETs, what a plugin without a cache does;
//! - idp-graph without webhooks: each round forces the conditional refresh the TTL triggers;
//! - idp-graph with webhooks: pushes arrive as `push` deliveries (one in twenty is lost on the
//!   way), reads are answered from the cache, and the safety net runs every 10 minutes — a
//!   batched GraphQL round over all 1,000 repositories (the first fills the cache). At the end
//!   every repository's cached head must equal GitHub's.
//!
//! `cargo bench --bench github_economy` prints the table.

use std::sync::Arc;

use futures::StreamExt;
use idp_graph::demo::git::GitWorld;
use idp_graph::demo::github::{push_payload, GitHubSim};
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
        let hooked_sim = GitHubSim::start(git.clone(), TOKEN, 1_000_000, stop.clone()).await.unwrap();
        let registry = SourceRegistry::default();
        let health = registry.register("github", SourceKind::GitHub, &ours_sim.url());
        let source = Arc::new(GitHubSource::new(GitHubClient::new(&ours_sim.url(), Some(TOKEN.to_string().into()), 30.0).unwrap(), GitHubTtls::default(), health));
        let hooked_health = registry.register("github-hooked", SourceKind::GitHub, &hooked_sim.url());
        let hooked = Arc::new(
            GitHubSource::new(GitHubClient::new(&hooked_sim.url(), Some(TOKEN.to_string().into()), 30.0).unwrap(), GitHubTtls::default(), hooked_health)
                .with_webhooks(Some("hook-secret".to_string().into()), idp_graph::state::State::new()),
        );
        let naive = reqwest::Client::new();
        let (mut deliveries, mut lost, mut net_rounds) = (0usize, 0usize, 0usize);
        let slugs: Vec<String> = (0..repos).map(|i| format!("yourcompany/svc-{i:05}")).collect();
        for round in 0..rounds {
            if round > 0 {
                for (i, slug) in slugs.iter().enumerate() {
                    if (i + round * 7) % 50 == 0 {
                        let before = git.head(slug).unwrap();
                        let c = git.push(slug, &format!("round {round}"), "alice").unwrap();
                        deliveries += 1;
                        if deliveries % 20 == 0 {
                            lost += 1;
                        } else {
                            hooked.apply_webhook("push", &push_payload(&git.repo(slug).unwrap(), &before.sha, &c));
                        }
                    }
                }
            }
            // With webhooks: the safety net every 10 minutes (the first fills the cache); reads
            // in between come from the cache.
            if round % 2 == 0 {
                hooked.refresh_batch(&slugs).await.unwrap();
                net_rounds += 1;
            }
            futures::stream::iter(slugs.iter())
                .map(|s| { let hooked = hooked.clone(); async move { hooked.repository(s, false).await.unwrap() } })
                .buffer_unordered(16)
                .collect::<Vec<_>>()
                .await;
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
        // The hour ends with the safety net's seventh round (minute 60).
        hooked.refresh_batch(&slugs).await.unwrap();
        net_rounds += 1;
        for slug in &slugs {
            let head = git.head(slug).unwrap();
            let repo = hooked.repository(slug, false).await.unwrap().value.unwrap();
            let cached = hooked.latest_commit(slug, &repo.default_branch).await.unwrap().value.unwrap();
            assert_eq!(cached.sha, head.sha, "{slug}: the cached head is GitHub's");
            // GitHub shows times to the second.
            assert_eq!(repo.pushed_at.map(|t| t.timestamp()), Some(head.date.timestamp()), "{slug}");
        }
        let (hooked_req, _) = hooked_sim.counters();
        let hooked_pts = hooked_sim.used() + hooked_sim.graphql_used();
        let (ours_req, ours_304) = ours_sim.counters();
        let (naive_req, _) = naive_sim.counters();
        let (ours_pts, naive_pts) = (ours_sim.used(), naive_sim.used());
        println!("github_economy: {repos} repositories x {rounds} refreshes (every 5 min for {} min)", rounds * 5);
        println!("  idp-graph: {ours_req} requests, {ours_304} of them 304, {ours_pts} rate-limit points");
        println!("  naive:     {naive_req} requests, {naive_pts} rate-limit points");
        println!("  points ratio naive/idp-graph: {:.1}x", naive_pts as f64 / ours_pts.max(1) as f64);
        println!(
            "  idp-graph with webhooks: {hooked_req} requests ({} GraphQL, {net_rounds} safety-net rounds), {hooked_pts} rate-limit points ({} REST + {} GraphQL); {deliveries} pushes delivered, {lost} lost and caught by the safety net",
            hooked_sim.requests_to("/graphql"), hooked_sim.used(), hooked_sim.graphql_used()
        );
        println!("  with webhooks vs naive: {:.4}x the points", hooked_pts as f64 / naive_pts.max(1) as f64);
        stop.cancel();
    });
}
