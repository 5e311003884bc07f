//! 1,000 and 10,000 concurrent websocket subscribers on loopback, one event per second to all:
//! delivery latency p50/p99, server memory per idle subscriber and server CPU, beside a bare
//! tokio-tungstenite broadcast server sending messages of the same size.
//!
//! Both servers run as child processes so their memory and CPU are theirs alone; the clients are
//! one epoll thread in this process (see `lean`), the same for both rows.
//! `cargo bench --bench subscribers` prints the table.

use std::sync::Arc;
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicBool, Ordering};

use futures::SinkExt;
use serde_json::json;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

/// What every graphql-transport-ws client subscribes to.
const SUBSCRIPTION: &str = r#"subscription { applicationEvents(filter: {names: ["app-2"]}) { at type application { name reconciledAt sync { status } health { status } } } }"#;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn proc_stat(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields
        .get(11)
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
    (rss_kb / 1024.0, ticks / 100.0)
}

/// The baseline: accept websockets, broadcast the same bytes to all every second.
async fn baseline_server(port: u16, size: usize) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let (tx, _) = tokio::sync::broadcast::channel::<Arc<String>>(16);
    let sender = tx.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let mut msg = json!({"at": chrono::Utc::now().to_rfc3339(), "pad": ""}).to_string();
            let pad = size.saturating_sub(msg.len());
            msg =
                json!({"at": chrono::Utc::now().to_rfc3339(), "pad": "x".repeat(pad)}).to_string();
            let _ = sender.send(Arc::new(msg));
        }
    });
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        let _ = stream.set_nodelay(true);
        let mut rx = tx.subscribe();
        tokio::spawn(async move {
            let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                return;
            };
            while let Ok(m) = rx.recv().await {
                if ws.send(Message::text(m.as_str())).await.is_err() {
                    return;
                }
            }
        });
    }
}

// Shared with other benches; this one uses part of it.
#[allow(dead_code)]
#[path = "support/lean_ws.rs"]
mod lean;

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v.get(((v.len() as f64 - 1.0) * p) as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

async fn wait_http(port: u16) {
    let http = reqwest::Client::new();
    for _ in 0..600 {
        if http
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server not ready");
}

/// One measurement: returns (p50 ms, p99 ms, KiB per subscriber, server CPU %, message bytes).
async fn measure(n: usize, graphql: bool, seconds: u64, size: usize) -> Measured {
    let port = free_port();
    let mut child: Child = if graphql {
        Command::new(env!("CARGO_BIN_EXE_idp-graph"))
            .args([
                "demo",
                "--no-weather",
                "--no-auth",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    } else {
        Command::new(std::env::current_exe().unwrap())
            .args(["--baseline-server", &port.to_string(), &size.to_string()])
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    let pid = child.id().unwrap();
    if graphql {
        wait_http(port).await;
    } else {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss0, _) = proc_stat(pid);
    let (record, stop) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (connected, clients_ready) = tokio::sync::oneshot::channel();
    let subscribe =
        json!({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}}).to_string();
    let client = {
        let (record, stop) = (record.clone(), stop.clone());
        std::thread::spawn(move || {
            let clients = lean::connect(port, n, graphql, &subscribe);
            let _ = connected.send(());
            lean::run(clients, record, stop, None)
        })
    };
    clients_ready.await.expect("the clients connected");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss1, cpu0) = proc_stat(pid);
    record.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let http = reqwest::Client::new();
    for _ in 0..seconds {
        if graphql {
            let _ = http
                .post(format!("http://127.0.0.1:{port}/graphql"))
                .json(&json!({"query": r#"mutation { refreshApplication(input: {name: "app-2"}) { auditId } }"#}))
                .send()
                .await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, cpu1) = proc_stat(pid);
    let cpu_pct = (cpu1 - cpu0) / started.elapsed().as_secs_f64() * 100.0;
    stop.store(true, Ordering::Relaxed);
    let got = client.join().expect("the client thread");
    let _ = child.kill().await;
    // Every subscriber on its own, not the total: one that received nothing must show.
    let want = seconds - 1;
    let short = got.short_of(want);
    let failures = got.field_errors + got.errors + got.read_errors + got.closed;
    assert_eq!(
        short,
        0,
        "{short} of {n} subscribers received fewer than {want} events (fewest: {})",
        got.fewest()
    );
    assert_eq!(
        failures, 0,
        "field errors {}, error messages {}, read errors {}, sockets closed {}",
        got.field_errors, got.errors, got.read_errors, got.closed
    );
    let fewest = got.fewest();
    let mut lat = got.latencies;
    Measured {
        p50: pct(&mut lat, 0.5),
        p99: pct(&mut lat, 0.99),
        kib_per_subscriber: (rss1 - rss0) * 1024.0 / n as f64,
        cpu_pct,
        bytes: got.bytes,
        fewest,
        short,
        failures,
    }
}

/// One row of the table.
struct Measured {
    p50: f64,
    p99: f64,
    kib_per_subscriber: f64,
    cpu_pct: f64,
    bytes: usize,
    /// The fewest events any one subscriber received.
    fewest: u64,
    /// Subscribers that received fewer events than were sent (minus one for the edges).
    short: usize,
    /// Field errors, error messages, read errors and closed sockets, together.
    failures: u64,
}

impl Measured {
    fn row(&self, n: usize, server: &str) -> String {
        format!(
            "| {n} | {server} | {:.2} | {:.2} | {:.1} | {:.1} | {} | {} | {} | {} |",
            self.p50,
            self.p99,
            self.kib_per_subscriber,
            self.cpu_pct,
            self.bytes,
            self.fewest,
            self.short,
            self.failures
        )
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if let Some(i) = args.iter().position(|a| a == "--baseline-server") {
        let port: u16 = args[i + 1].parse().unwrap();
        let size: usize = args[i + 2].parse().unwrap();
        rt.block_on(baseline_server(port, size));
        return;
    }
    let full = args.iter().any(|a| a == "--bench");
    let (sizes, seconds): (Vec<usize>, u64) = if full {
        (vec![1_000, 10_000], 10)
    } else {
        (vec![20], 3)
    };
    rt.block_on(async move {
        println!("subscribers: one event per second to all, {seconds} s per run");
        println!("| subscribers | server | p50 ms | p99 ms | KiB/subscriber | server CPU % | message bytes | fewest events per subscriber | subscribers short | errors (field, message, read, closed) |");
        println!("|---|---|---|---|---|---|---|---|---|---|");
        for n in sizes {
            let ours = measure(n, true, seconds, 0).await;
            println!("{}", ours.row(n, "idp-graph"));
            let base = measure(n, false, seconds, ours.bytes).await;
            println!("{}", base.row(n, "bare tokio-tungstenite"));
        }
    });
}
