//! The measuring client: one thread, one epoll loop over every socket, websocket frames parsed by
//! hand (server frames are unmasked; ours carry a zero mask). Ten thousand tokio-tungstenite
//! clients cost more CPU than the server they measure on a two-core machine; this one reads a
//! message in a few microseconds, so what the table shows is mostly the server's fan-out.
//! Shared by `subscribers` (latency at 1,000 / 10,000) and `soak` (30 minutes, counters).

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream as StdStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

/// Running totals a long run samples (events, error messages, sockets the server closed).
#[derive(Default)]
pub struct Counters {
    pub events: std::sync::atomic::AtomicU64,
    pub errors: std::sync::atomic::AtomicU64,
    pub closed: std::sync::atomic::AtomicU64,
}

fn now_ms() -> f64 {
    chrono::Utc::now().timestamp_micros() as f64 / 1000.0
}

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
        127 if buf.len() >= 10 => (u64::from_be_bytes(buf[2..10].try_into().ok()?) as usize, 10),
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

fn handshake(port: u16, graphql: bool, subscribe: &str) -> std::io::Result<(StdStream, Vec<u8>)> {
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
    counters: Option<Arc<Counters>>,
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
                    Ok(0) => {
                        // The server closed this subscriber's socket.
                        if let Some(k) = &counters {
                            k.closed.fetch_add(1, Ordering::Relaxed);
                        }
                        let _ = c.poll.registry().deregister(s);
                        break;
                    }
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
                    if let Some(k) = &counters {
                        k.events.fetch_add(1, Ordering::Relaxed);
                    }
                    if recording {
                        lat.push(now_ms() - at.timestamp_micros() as f64 / 1000.0);
                        bytes = t.len();
                    }
                    None
                } else if t.contains("\"type\":\"error\"") {
                    if let Some(k) = &counters {
                        k.errors.fetch_add(1, Ordering::Relaxed);
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
