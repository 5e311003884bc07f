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

fn now_ms() -> f64 {
    chrono::Utc::now().timestamp_micros() as f64 / 1000.0
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

/// The measuring client: one thread, one epoll loop over every socket, websocket frames parsed by
/// hand (server frames are unmasked; ours carry a zero mask). Ten thousand tokio-tungstenite
/// clients cost more CPU than the server they measure on a two-core machine; this one reads a
/// message in a few microseconds, so what the table shows is mostly the server's fan-out.
mod lean {
    use std::io::{ErrorKind, Read, Write};
    use std::net::TcpStream as StdStream;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use mio::net::TcpStream;
    use mio::{Events, Interest, Poll, Token};

    pub struct Clients {
        poll: Poll,
        conns: Vec<(TcpStream, Vec<u8>)>,
    }

    /// A masked client text frame (mask key zero, so the payload is sent as is).
    fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n if n < 65_536 => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&[0, 0, 0, 0]);
        f.extend_from_slice(payload);
        f
    }

    /// The next whole server frame in `buf`: (opcode, payload range, bytes used).
    fn next_frame(buf: &[u8]) -> Option<(u8, std::ops::Range<usize>, usize)> {
        if buf.len() < 2 {
            return None;
        }
        let (len, head) = match buf[1] & 0x7f {
            126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
            127 if buf.len() >= 10 => {
                (u64::from_be_bytes(buf[2..10].try_into().ok()?) as usize, 10)
            }
            126 | 127 => return None,
            n => (n as usize, 2),
        };
        (buf.len() >= head + len).then_some((buf[0] & 0x0f, head..head + len, head + len))
    }

    /// Handles every whole frame in `buf`; returns what must be written back.
    fn drain(buf: &mut Vec<u8>, mut on_text: impl FnMut(&str) -> Option<Vec<u8>>) -> Vec<u8> {
        let mut reply = Vec::new();
        let mut used = 0;
        while let Some((op, range, n)) = next_frame(&buf[used..]) {
            let payload = &buf[used + range.start..used + range.end];
            match op {
                1 => {
                    if let Some(r) = on_text(std::str::from_utf8(payload).unwrap_or("")) {
                        reply.extend(r);
                    }
                }
                9 => reply.extend(frame(0xA, payload)),
                _ => {}
            }
            used += n;
        }
        buf.drain(..used);
        reply
    }

    fn handshake(
        port: u16,
        graphql: bool,
        subscribe: &str,
    ) -> std::io::Result<(StdStream, Vec<u8>)> {
        let mut s = StdStream::connect(("127.0.0.1", port))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let protocol = if graphql {
            "Sec-WebSocket-Protocol: graphql-transport-ws\r\n"
        } else {
            ""
        };
        write!(
            s,
            "GET /graphql/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n{protocol}\r\n"
        )?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let end = loop {
            let n = s.read(&mut chunk)?;
            if n == 0 {
                return Err(ErrorKind::UnexpectedEof.into());
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        if !buf.starts_with(b"HTTP/1.1 101") {
            return Err(ErrorKind::ConnectionRefused.into());
        }
        buf.drain(..end);
        if graphql {
            s.write_all(&frame(1, br#"{"type":"connection_init"}"#))?;
            s.write_all(&frame(1, subscribe.as_bytes()))?;
            s.write_all(&frame(1, br#"{"type":"ping"}"#))?;
            // Subscribed once the pong (sent after the subscribe was handled) is here.
            let mut ready = false;
            while !ready {
                let reply = drain(&mut buf, |t| {
                    ready |= t.contains("\"pong\"");
                    None
                });
                s.write_all(&reply)?;
                if !ready {
                    let n = s.read(&mut chunk)?;
                    if n == 0 {
                        return Err(ErrorKind::UnexpectedEof.into());
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
            }
        }
        Ok((s, buf))
    }

    /// Opens `n` sockets one after another, each subscribed before the next opens.
    pub fn connect(port: u16, n: usize, graphql: bool, subscribe: &str) -> Clients {
        let poll = Poll::new().unwrap();
        let mut conns = Vec::with_capacity(n);
        for i in 0..n {
            let (s, buf) = handshake(port, graphql, subscribe)
                .unwrap_or_else(|e| panic!("client {i} could not subscribe: {e}"));
            s.set_nonblocking(true).unwrap();
            let mut s = TcpStream::from_std(s);
            poll.registry()
                .register(&mut s, Token(i), Interest::READABLE)
                .unwrap();
            conns.push((s, buf));
        }
        Clients { poll, conns }
    }

    /// Reads until `stop`; every text frame with an `"at":"…"` timestamp becomes a latency (ms)
    /// while `record` is set. Returns the latencies and the last measured message's size.
    pub fn run(
        mut c: Clients,
        record: Arc<AtomicBool>,
        stop: Arc<AtomicBool>,
    ) -> (Vec<f64>, usize) {
        let mut events = Events::with_capacity(1024);
        let mut chunk = vec![0u8; 64 * 1024];
        let (mut lat, mut bytes) = (Vec::new(), 0);
        while !stop.load(Ordering::Relaxed) {
            c.poll
                .poll(&mut events, Some(Duration::from_millis(50)))
                .unwrap();
            for ev in events.iter() {
                let (s, buf) = &mut c.conns[ev.token().0];
                loop {
                    match s.read(&mut chunk) {
                        Ok(0) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(_) => break,
                    }
                }
                let recording = record.load(Ordering::Relaxed);
                let reply = drain(buf, |t| {
                    if let Some(at) = t
                        .split_once("\"at\":\"")
                        .and_then(|(_, rest)| rest.split_once('"'))
                        .and_then(|(at, _)| chrono::DateTime::parse_from_rfc3339(at).ok())
                    {
                        if recording {
                            lat.push(super::now_ms() - at.timestamp_micros() as f64 / 1000.0);
                            bytes = t.len();
                        }
                        None
                    } else if t.contains("\"ping\"") {
                        Some(frame(1, br#"{"type":"pong"}"#))
                    } else {
                        None
                    }
                });
                if !reply.is_empty() {
                    let _ = s.write_all(&reply);
                }
            }
        }
        (lat, bytes)
    }
}

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
async fn measure(
    n: usize,
    graphql: bool,
    seconds: u64,
    size: usize,
) -> (f64, f64, f64, f64, usize) {
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
            lean::run(clients, record, stop)
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
    let (mut lat, bytes) = client.join().expect("the client thread");
    let _ = child.kill().await;
    let got = lat.len();
    assert!(
        got >= n * (seconds as usize - 1),
        "delivered {got} of ~{} events",
        n * seconds as usize
    );
    (
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99),
        (rss1 - rss0) * 1024.0 / n as f64,
        cpu_pct,
        bytes,
    )
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
        println!("| subscribers | server | p50 ms | p99 ms | KiB/subscriber | server CPU % | message bytes |");
        println!("|---|---|---|---|---|---|---|");
        for n in sizes {
            let ours = measure(n, true, seconds, 0).await;
            println!("| {n} | idp-graph | {:.2} | {:.2} | {:.1} | {:.1} | {} |", ours.0, ours.1, ours.2, ours.3, ours.4);
            let base = measure(n, false, seconds, ours.4).await;
            println!("| {n} | bare tokio-tungstenite | {:.2} | {:.2} | {:.1} | {:.1} | {} |", base.0, base.1, base.2, base.3, base.4);
        }
    });
}
