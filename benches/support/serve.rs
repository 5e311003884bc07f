//! `idp-graph serve` as a child process against a demo world running in the bench's process,
//! so the server's resident memory and CPU are its own. Shared by `scale` and `soak`.

use std::time::{Duration, Instant};

use idp_graph::demo::DemoWorld;

#[path = "../../tests/support/serve_child.rs"]
mod serve_child;
pub use serve_child::ServeChild as Server;

/// `idp-graph serve` against `world`; returns once `/readyz` says 200, with the time it took.
pub async fn serve(world: &DemoWorld, cache: bool) -> (Server, Duration) {
    let started = Instant::now();
    let server = serve_child::spawn(
        world,
        30.0,
        &format!(
            "limits: {{ requests_per_minute: 0 }}\n\
             readiness: {{ initial_sync_timeout_secs: 300 }}\n\
             cache: {{ enabled: {cache} }}\n"
        ),
    );
    let url = format!("{}/readyz", server.base);
    while !reqwest::get(&url).await.is_ok_and(|r| r.status() == 200) {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "not ready in 5 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ready = started.elapsed();
    (server, ready)
}
