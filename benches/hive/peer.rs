//! Hive Gateway + GraphQL Mesh as the load harness's peer: composes `mesh.config.ts` (beside
//! this file) over the demo world's simulated ArgoCD and Backstage, then runs the gateway plain
//! or with its response cache, each as its own `node` process (killed on drop).
//!
//! Each runs as Hive documents for production: `NODE_ENV=production` and one worker per core
//! (`--fork N`, N = the cores this machine offers), the same cores idp-graph's two workers get.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The folder holding package.json, mesh.config.ts and the OpenAPI subsets.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/hive")
}

/// Installs the pinned packages (`npm ci`) unless they are there; false if npm fails.
pub fn install() -> bool {
    if dir().join("node_modules/@graphql-hive/gateway").is_dir() {
        return true;
    }
    println!("load: installing Hive Gateway + Mesh (npm ci in benches/hive, ~500 MB)");
    Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir())
        .status()
        .is_ok_and(|s| s.success())
}

/// Composes the supergraph over the simulations at `argocd` and `backstage` into `out`.
pub fn compose(argocd: &str, backstage: &str, token: &str, out: &Path) {
    let status = Command::new("node")
        .arg(dir().join("node_modules/@graphql-mesh/compose-cli/esm/bin.js"))
        .arg("-o")
        .arg(out)
        .current_dir(dir())
        .env("ARGOCD_URL", argocd)
        .env("BACKSTAGE_URL", backstage)
        .env("UPSTREAM_TOKEN", token)
        .stdout(Stdio::null())
        .status()
        .expect("node runs mesh-compose");
    assert!(status.success(), "mesh-compose failed");
}

/// One running gateway process.
pub struct Gateway {
    pub addr: SocketAddr,
    child: Child,
}

impl Gateway {
    /// Starts a gateway on `supergraph`; `cached` adds the response-cache config. Waits (up to
    /// a minute) for its `/readiness`.
    pub async fn start(supergraph: &Path, cached: bool, log: &Path) -> Gateway {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut cmd = Command::new("node");
        cmd.arg(dir().join("node_modules/@graphql-hive/gateway/dist/bin.js"))
            .arg("supergraph")
            .arg(supergraph)
            .args([
                "--port",
                &port.to_string(),
                "--host",
                "127.0.0.1",
                "--fork",
                &forks().to_string(),
            ])
            .env("NODE_ENV", "production")
            .current_dir(dir())
            .stdout(Stdio::from(std::fs::File::create(log).expect("log file")))
            .stderr(Stdio::null());
        if cached {
            cmd.args(["-c", "gateway.cache.ts"]);
        }
        let child = cmd.spawn().expect("node starts the gateway");
        let gw = Gateway {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = format!("http://{}/readiness", gw.addr);
        while !reqwest::get(&url).await.is_ok_and(|r| r.status() == 200) {
            assert!(
                Instant::now() < deadline,
                "Hive Gateway not ready; see {}",
                log.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        gw
    }

    /// Peak resident memory of the gateway so far (MiB): its primary process and every
    /// worker it forked, summed.
    pub fn peak_rss_mib(&self) -> f64 {
        std::iter::once(self.child.id())
            .chain(self.workers())
            .map(|pid| super::peak_rss_mib(&format!("/proc/{pid}/status")))
            .filter(|m| m.is_finite())
            .sum()
    }

    /// The worker processes the primary forked.
    fn workers(&self) -> Vec<u32> {
        let pid = self.child.id();
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }
}

/// Workers per gateway: one per core.
pub fn forks() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Hive's settings, for the report.
pub fn settings() -> String {
    format!("NODE_ENV=production, --fork {}", forks())
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // The workers first (by their own ids: they are this gateway's), then the primary.
        for pid in self.workers() {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
