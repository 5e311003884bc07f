//! The measuring client: one thread, one epoll loop over every socket, websocket frames parsed by
//! hand (server frames are unmasked; ours carry a zero mask). Ten thousand tokio-tungstenite
//! clients cost more CPU than the server they measure on a two-core machine; this one reads a
//! message in a few microseconds, so what the table shows is mostly the server's fan-out.
//! Shared by `subscribers` (latency at 1,000 / 10,000) and `soak` (30 minutes, counters).
//!
//! Nothing is dropped silently: an event is a `next` with a timestamp and no `errors`; a `next`
//! carrying `errors` is a field error, an `error` message an error, a failed read a read error
//! (the socket is then given up), and what each subscriber received is counted on its own, so
//! a run can tell "every subscriber got every event" from "the total looks right".

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream as StdStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

/// Running totals a long run samples while `run` goes on.
#[derive(Default)]
pub struct Counters {
    /// `next` messages with a timestamp and no `errors`.
    pub events: std::sync::atomic::AtomicU64,
    /// `error` messages (the subscription ended with an error).
    pub errors: std::sync::atomic::AtomicU64,
    /// `next` messages carrying `errors` (a field failed): not events.
    pub field_errors: std::sync::atomic::AtomicU64,
    /// Reads that failed (reset, broken pipe...): the socket is given up.
    pub read_errors: std::sync::atomic::AtomicU64,
    /// Sockets the server closed.
    pub closed: std::sync::atomic::AtomicU64,
}

/// What `run` saw, in the end.
pub struct Received {
    /// Delivery latencies (ms) recorded while `record` was set.
    pub latencies: Vec<f64>,
    /// The last measured message's size.
    pub bytes: usize,
    /// Events per subscriber while `record` was set, in connection order.
    pub per_subscriber: Vec<u64>,
    pub field_errors: u64,
    pub errors: u64,
    pub read_errors: u64,
    pub closed: u64,
}

impl Received {
    /// Subscribers that received fewer than `want` events.
    pub fn short_of(&self, want: u64) -> usize {
        self.per_subscriber.iter().filter(|&&n| n < want).count()
    }

    /// The fewest events any subscriber received.
    pub fn fewest(&self) -> u64 {
        self.per_subscriber.iter().copied().min().unwrap_or(0)
    }
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

/// Reads until `stop`; every event (a `next` with an `"at":"…"` timestamp and no `errors`)
/// becomes a latency (ms) and counts for its subscriber while `record` is set. Returns
/// everything it saw (`Received`).
pub fn run(
    mut c: Clients,
    record: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    counters: Option<Arc<Counters>>,
) -> Received {
    let mut events = Events::with_capacity(1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let (mut lat, mut bytes) = (Vec::new(), 0);
    let mut per_subscriber = vec![0u64; c.conns.len()];
    let (mut field_errors, mut errors, mut read_errors, mut closed) = (0, 0, 0, 0);
    let count = |f: fn(&Counters) -> &std::sync::atomic::AtomicU64| {
        if let Some(k) = &counters {
            f(k).fetch_add(1, Ordering::Relaxed);
        }
    };
    while !stop.load(Ordering::Relaxed) {
        c.poll
            .poll(&mut events, Some(Duration::from_millis(50)))
            .unwrap();
        for ev in events.iter() {
            let who = ev.token().0;
            let (s, buf) = &mut c.conns[who];
            loop {
                match s.read(&mut chunk) {
                    Ok(0) => {
                        // The server closed this subscriber's socket.
                        closed += 1;
                        count(|k| &k.closed);
                        let _ = c.poll.registry().deregister(s);
                        break;
                    }
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => {
                        // Reset or broken: counted, and this subscriber is given up.
                        read_errors += 1;
                        count(|k| &k.read_errors);
                        let _ = c.poll.registry().deregister(s);
                        break;
                    }
                }
            }
            let recording = record.load(Ordering::Relaxed);
            let reply = drain(buf, |t| {
                let at = t
                    .split_once("\"at\":\"")
                    .and_then(|(_, rest)| rest.split_once('"'))
                    .and_then(|(at, _)| chrono::DateTime::parse_from_rfc3339(at).ok());
                if t.contains("\"type\":\"error\"") {
                    errors += 1;
                    count(|k| &k.errors);
                    None
                } else if t.contains("\"errors\"") {
                    // A `next` whose fields failed: the subscriber did not get the event.
                    field_errors += 1;
                    count(|k| &k.field_errors);
                    None
                } else if let Some(at) = at {
                    count(|k| &k.events);
                    if recording {
                        per_subscriber[who] += 1;
                        lat.push(now_ms() - at.timestamp_micros() as f64 / 1000.0);
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
    Received {
        latencies: lat,
        bytes,
        per_subscriber,
        field_errors,
        errors,
        read_errors,
        closed,
    }
}
