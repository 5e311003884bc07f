//! `idp-graph serve` as a child process against a demo world running in the bench's process,
//! so the server's resident memory and CPU are its own. Shared by `scale` and `soak`.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use idp_graph::demo::{DemoWorld, DEMO_TOKEN};

pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `idp-graph serve` against `world`; returns once `/readyz` says 200, with the time it took.
pub async fn serve(world: &DemoWorld, cache: bool) -> (Server, Duration) {
    let config = format!(
        "backstage: {{ url: '{}', token_env: IDP_BENCH_TOKEN, poll_interval_secs: 30 }}\n\
         argocd: [{{ name: main, url: '{}', token_env: IDP_BENCH_TOKEN }}]\n\
         github: {{ url: '{}', token_env: IDP_BENCH_TOKEN }}\n\
         kubernetes: [{{ name: demo, url: '{}', argocd_destinations: [in-cluster, 'https://kubernetes.default.svc'] }}]\n\
         auth: {{ mode: none }}\n\
         limits: {{ requests_per_minute: 0 }}\n\
         readiness: {{ initial_sync_timeout_secs: 300 }}\n\
         cache: {{ enabled: {cache} }}\n",
        world.backstage.url(),
        world.argocd.url(),
        world.github.url(),
        world.kubernetes.url(),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, config).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_idp-graph"))
        .args(["serve", "--config"])
        .arg(&path)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("IDP_BENCH_TOKEN", DEMO_TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("idp-graph serve starts");
    let server = Server {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        _dir: dir,
    };
    let url = format!("http://{}/readyz", server.addr);
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
