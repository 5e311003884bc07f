//! `idp-graph serve` as its own OS process against the simulated upstreams of a demo world that
//! runs in the calling process, so the server's memory and CPU are its own. The tests
//! (`tests/api/helpers.rs`) and the benchmarks (`benches/support/serve.rs`) start one only
//! through here.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use idp_graph::demo::{DemoWorld, DEMO_TOKEN};

/// A started server; killed on drop.
#[allow(dead_code)] // The tests read `base`, the benchmarks `addr`.
pub struct ServeChild {
    pub child: Child,
    pub addr: SocketAddr,
    /// `http://<addr>`.
    pub base: String,
    _dir: tempfile::TempDir,
}

impl ServeChild {
    /// The last `lines` lines the server logged.
    #[allow(dead_code)] // Not every test binary shows logs.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self._dir.path().join("stderr.log")).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for ServeChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the server (it is not ready yet when this returns): the catalog polled every
/// `poll_secs`, authentication off, and `extra` YAML appended to the config.
pub fn spawn(world: &DemoWorld, poll_secs: f64, extra: &str) -> ServeChild {
    spawn_with_github(world, poll_secs, "", extra)
}

/// [`spawn`], with `github_extra` (`, key: value` pairs) added to the `github:` mapping.
#[allow(dead_code)] // The benchmarks do not use it.
pub fn spawn_with_github(
    world: &DemoWorld,
    poll_secs: f64,
    github_extra: &str,
    extra: &str,
) -> ServeChild {
    let config = format!(
        "backstage: {{ url: '{}', token_env: IDP_CHILD_TOKEN, poll_interval_secs: {poll_secs} }}\n\
         argocd: [{{ name: main, url: '{}', token_env: IDP_CHILD_TOKEN }}]\n\
         github: {{ url: '{}', token_env: IDP_CHILD_TOKEN{github_extra} }}\n\
         kubernetes: [{{ name: demo, url: '{}', argocd_destinations: [in-cluster, 'https://kubernetes.default.svc'] }}]\n\
         auth: {{ mode: none }}\n{extra}",
        world.backstage.url(),
        world.argocd.url(),
        world.github.url(),
        world.kubernetes.url(),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, config).unwrap();
    // A free port: bind, read, release (the child binds it right after).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_idp-graph"))
        .args(["serve", "--config"])
        .arg(&path)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("IDP_CHILD_TOKEN", DEMO_TOKEN)
        .stdout(Stdio::null())
        // Kept in the child's directory: a failing test can show it (`log_tail`).
        .stderr(Stdio::from(
            std::fs::File::create(dir.path().join("stderr.log")).unwrap(),
        ))
        .spawn()
        .expect("idp-graph serve starts");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    ServeChild {
        child,
        addr,
        base: format!("http://{addr}"),
        _dir: dir,
    }
}
