//! Hostile input: a generated corpus of more than 10,000 HTTP requests (mutated valid
//! operations, random token soup, deep nesting, alias and fragment bombs, huge strings and
//! numbers, invalid UTF-8, wrong content types, truncated and non-object bodies, oversized
//! bodies and URLs), garbage websocket frames and slowloris connections, all against one
//! server. Every answer must be a clear refusal or an answer — never a 5xx, never a dropped
//! connection (a panic) — and the server must still answer a normal query quickly afterwards,
//! with its memory bounded. The corpus is deterministic (a fixed seed) and its counts printed.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::spawn_demo;

#[path = "../support/rng.rs"]
mod rng;
use rng::Rng;

const VALID: [&str; 8] = [
    r#"{ entities(filter: {kind: "Component"}, first: 5) { totalCount nodes { ref name ... on Component { owner { ref } } } } }"#,
    r#"{ applications(first: 3) { nodes { name sync { status revision } health { status } history { historyId revision } } } }"#,
    r#"query Q($r: String!) { entity(ref: $r) { ref ... on Component { applications { name } kubernetes { pods { name phase } } } } }"#,
    r#"{ repository(slug: "yourcompany/sample-app") { latestCommit { sha message } pullRequests(first: 2) { nodes { number title } } } }"#,
    r#"{ pods(filter: {namespace: "sample-app"}) { nodes { name ready restarts containers { name image } } } }"#,
    r#"{ search(text: "sample", first: 5) { nodes { __typename } } sources { name state } }"#,
    r#"mutation { refreshApplication(input: {name: "sample-app"}) { auditId } }"#,
    r#"{ node(id: "WyJBcHBsaWNhdGlvbiIsIm1haW4iLCJhcmdvY2QiLCJzYW1wbGUtYXBwIl0") { id } nodes(ids: ["x", "", "WyJ"]) { id } }"#,
];

const TOKENS: [&str; 28] = [
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ":",
    "...",
    "$",
    "@",
    "!",
    "=",
    "query",
    "mutation",
    "subscription",
    "fragment",
    "on",
    "entities",
    "applications",
    "name",
    "\"",
    "\"\"\"",
    "1e999",
    "-0",
    "null",
    "true",
    "\u{0}",
    "\u{1F600}",
];

fn mutate(rng: &mut Rng, s: &str) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    for _ in 0..1 + rng.below(4) {
        if chars.is_empty() {
            break;
        }
        let i = rng.below(chars.len());
        match rng.below(6) {
            0 => {
                chars.remove(i);
            }
            1 => chars.insert(
                i,
                *rng.pick(&['{', '}', '(', ')', '"', '$', '\\', '\u{0}', 'é', '…']),
            ),
            2 => {
                let j = (i + rng.below(20)).min(chars.len());
                let span: Vec<char> = chars[i..j].to_vec();
                chars.splice(i..i, span);
            }
            3 => chars.truncate(i),
            4 => {
                let j = rng.below(chars.len());
                chars.swap(i, j);
            }
            _ => {
                let t: Vec<char> = rng.pick(&TOKENS).chars().collect();
                chars.splice(i..i, t);
            }
        }
    }
    chars.into_iter().collect()
}

/// What came back: (status, body), or why nothing did.
type Answer = Result<(u16, Vec<u8>), String>;

/// One request of the corpus: (what kind, content type, body bytes).
type Case = (&'static str, &'static str, Vec<u8>);

fn gql(query: &str) -> Vec<u8> {
    json!({ "query": query }).to_string().into_bytes()
}

fn corpus(rng: &mut Rng) -> Vec<Case> {
    let mut out: Vec<Case> = Vec::new();
    for _ in 0..6_500 {
        let base = *rng.pick(&VALID);
        let q = mutate(rng, base);
        let vars = match rng.below(4) {
            0 => json!({"r": "component:default/sample-app"}),
            1 => json!({"r": 1e300}),
            2 => json!({"r": "x".repeat(rng.below(10_000))}),
            _ => Value::Null,
        };
        out.push((
            "mutated",
            "application/json",
            json!({"query": q, "variables": vars})
                .to_string()
                .into_bytes(),
        ));
    }
    for _ in 0..2_500 {
        let n = 1 + rng.below(60);
        let soup: Vec<&str> = (0..n).map(|_| *rng.pick(&TOKENS)).collect();
        out.push(("token soup", "application/json", gql(&soup.join(" "))));
    }
    for depth in [10, 50, 100, 500, 2_000, 20_000] {
        let q = format!(
            "{}{}",
            "{ entities { nodes { ".repeat(depth),
            "} } }".repeat(depth)
        );
        out.push(("deep nesting", "application/json", gql(&q)));
        let v = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        out.push((
            "deep JSON",
            "application/json",
            format!(r#"{{"query":"{{ __typename }}","variables":{{"x":{v}}}}}"#).into_bytes(),
        ));
    }
    for n in [100, 1_000, 10_000] {
        let aliases: String = (0..n)
            .map(|i| format!("a{i}: entities {{ totalCount }} "))
            .collect();
        out.push((
            "alias bomb",
            "application/json",
            gql(&format!("{{ {aliases} }}")),
        ));
        let dups: String = (0..n).map(|_| "__typename ").collect();
        out.push((
            "field repetition",
            "application/json",
            gql(&format!("{{ {dups} }}")),
        ));
    }
    // Fragment bombs: each level spreads the next twice (2^30 fields if expanded), and a cycle.
    let mut frags = String::from("{ ...F0 }");
    for i in 0..30 {
        frags.push_str(&format!(
            " fragment F{i} on Query {{ ...F{} ...F{} }}",
            i + 1,
            i + 1
        ));
    }
    frags.push_str(" fragment F30 on Query { entities { totalCount } }");
    out.push(("fragment bomb", "application/json", gql(&frags)));
    out.push((
        "fragment cycle",
        "application/json",
        gql("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }"),
    ));
    for size in [10_000usize, 500_000, 2_000_000] {
        out.push((
            "huge string",
            "application/json",
            gql(&format!(
                r#"{{ entity(ref: "{}") {{ ref }} }}"#,
                "a".repeat(size)
            )),
        ));
    }
    for n in [
        "99999999999999999999",
        "-1",
        "2147483648",
        "1e400",
        "-0.5",
        "NaN",
    ] {
        out.push((
            "huge number",
            "application/json",
            gql(&format!("{{ entities(first: {n}) {{ totalCount }} }}")),
        ));
    }
    let valid = gql(VALID[0]);
    for _ in 0..500 {
        let cut = rng.below(valid.len());
        out.push(("truncated body", "application/json", valid[..cut].to_vec()));
        let mut bad = valid.clone();
        let i = rng.below(bad.len());
        bad[i] = *rng.pick(&[0xff, 0xfe, 0xc0, 0x80, 0xed]);
        out.push(("invalid UTF-8", "application/json", bad));
    }
    for ct in [
        "text/plain",
        "application/xml",
        "multipart/form-data; boundary=x",
        "",
        "application/json; charset=latin1",
        "application/graphql-response+json",
    ] {
        out.push(("content type", ct, valid.clone()));
    }
    for body in [
        "[]",
        "null",
        "1",
        "\"q\"",
        "{}",
        r#"{"query": null}"#,
        r#"{"query": 1}"#,
        r#"{"query": "{ __typename }", "variables": []}"#,
        r#"{"query": "{ __typename }", "extensions": {"persistedQuery": {"version": 1, "sha256Hash": "zz"}}}"#,
    ] {
        out.push((
            "not an operation",
            "application/json",
            body.as_bytes().to_vec(),
        ));
    }
    let batch: Vec<Value> = (0..1_000)
        .map(|_| json!({"query": "{ __typename }"}))
        .collect();
    out.push((
        "batch of 1000",
        "application/json",
        serde_json::to_vec(&batch).unwrap(),
    ));
    out
}

#[tokio::test]
async fn a_hostile_corpus_gets_clear_refusals_and_the_server_stays_up() {
    let app = spawn_demo().await;
    let rss_before = rss_kib();
    let mut rng = Rng(0x1d9_67a9_2a3b);
    let cases = corpus(&mut rng);
    let url = format!("{}/graphql", app.url);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let results: Vec<(&'static str, Answer)> = futures::stream::iter(cases.into_iter())
        .map(|(kind, ct, body)| {
            let (client, url) = (client.clone(), url.clone());
            async move {
                let mut req = client.post(&url).body(body);
                if !ct.is_empty() {
                    req = req.header("content-type", ct);
                }
                let r = match req.send().await {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        r.bytes()
                            .await
                            .map(|b| (status, b.to_vec()))
                            .map_err(|e| e.to_string())
                    }
                    Err(e) => Err(e.to_string()),
                };
                (kind, r)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    // GETs with hostile query strings, and an over-long URL.
    let mut gets = 0;
    for q in [
        "%ZZ",
        "query=%7B",
        "query=%00",
        "query={__typename}&variables=%7B",
        "variables=[]",
    ] {
        let r = client.get(format!("{url}?{q}")).send().await.unwrap();
        assert!(r.status().as_u16() < 500, "GET ?{q}: {}", r.status());
        gets += 1;
    }
    let long = client
        .get(format!("{url}?query={}", "a".repeat(60_000)))
        .send()
        .await
        .unwrap();
    assert!(long.status().as_u16() < 500, "long URL: {}", long.status());
    gets += 1;

    let mut by_kind: BTreeMap<&str, BTreeMap<u16, usize>> = BTreeMap::new();
    for (kind, r) in &results {
        let (status, body) = r
            .as_ref()
            .unwrap_or_else(|e| panic!("{kind}: no answer ({e}): a panic or a hang"));
        *by_kind.entry(kind).or_default().entry(*status).or_default() += 1;
        assert!(
            *status < 500,
            "{kind}: {status} {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        );
        // Every refusal is a GraphQL error with a code (or an HTTP-level error body).
        if *status != 200 || !body.starts_with(b"[") {
            let v: Value = serde_json::from_slice(body).unwrap_or_else(|_| {
                panic!(
                    "{kind}: {status} body is not JSON: {}",
                    String::from_utf8_lossy(&body[..body.len().min(300)])
                )
            });
            if let Some(errors) = v["errors"].as_array() {
                for e in errors {
                    assert!(
                        e["extensions"]["code"].is_string(),
                        "{kind}: {status} error without a code: {e}"
                    );
                }
            } else {
                assert!(
                    v["data"].is_object() || v["error"]["code"].is_string(),
                    "{kind}: {status} {v}"
                );
            }
        }
    }
    let ws = websocket_garbage(&app.addr.to_string()).await;
    let slow = slowloris(&app.addr.to_string(), &app.url).await;

    // Still up, still right, still quick.
    let started = std::time::Instant::now();
    let v = app
        .gql(r#"{ entity(ref: "component:default/sample-app") { ref } }"#)
        .await;
    assert_eq!(v["data"]["entity"]["ref"], "component:default/sample-app");
    assert!(started.elapsed() < Duration::from_secs(5));
    let grown_mib = (rss_kib() - rss_before) / 1024.0;
    assert!(grown_mib < 512.0, "memory grew by {grown_mib:.0} MiB");
    println!(
        "hostile: {} POST requests + {gets} GETs, {ws} websocket frames, {slow} slowloris connections; 0 5xx, 0 dropped; memory +{grown_mib:.0} MiB",
        results.len()
    );
    for (kind, statuses) in by_kind {
        println!("  {kind}: {statuses:?}");
    }
    assert!(results.len() + gets >= 10_000);
}

fn rss_kib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0.0)
}

/// Garbage over websockets: each connection gets one kind of abuse and must end with a
/// protocol answer (an error message or a close), never a crash. Returns frames sent.
async fn websocket_garbage(addr: &str) -> usize {
    let abuse: Vec<Vec<Message>> = vec![
        vec![Message::text("not json")],
        vec![Message::binary(vec![0xff; 64])],
        vec![Message::text(json!({"type": "subscribe", "id": "1", "payload": {"query": "subscription { entityEvents { type } }"}}).to_string())],
        vec![Message::text(json!({"type": "connection_init"}).to_string()), Message::text(json!({"type": "connection_init"}).to_string())],
        vec![Message::text(json!({"type": "connection_init"}).to_string()), Message::text(json!({"type": "subscribe", "id": "1", "payload": {"query": "subscription { entityEvents { type"}}).to_string())],
        vec![Message::text(json!({"type": "connection_init"}).to_string()), Message::text(json!({"type": "nonsense"}).to_string())],
        vec![Message::text(json!({"type": "connection_init"}).to_string()), Message::text("x".repeat(4 << 20))],
        vec![Message::text(json!({"type": "connection_init", "payload": "x".repeat(100_000)}).to_string())],
    ];
    let mut frames = 0;
    for round in 0..25 {
        for msgs in &abuse {
            let mut ws = crate::helpers::ws_connect(addr).await;
            for m in msgs.clone() {
                frames += 1;
                if ws.send(m).await.is_err() {
                    break;
                }
            }
            // The server answers (ack, error, close) or closes; it never just goes away.
            let answered = tokio::time::timeout(Duration::from_secs(10), async {
                loop {
                    match ws.next().await {
                        None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return true,
                        Some(Ok(Message::Text(t)))
                            if t.contains("\"error\"") || t.contains("connection_ack") =>
                        {
                            return true
                        }
                        Some(Ok(_)) => {}
                    }
                }
            })
            .await;
            assert!(answered.is_ok(), "round {round}: no answer to {msgs:?}");
        }
    }
    // 1,000 subscribes with one id on one connection: the second is refused (4409), which
    // closes the connection (the rest may not even be sent).
    let mut ws = crate::helpers::ws_init(addr).await;
    ws.next().await;
    for _ in 0..1_000 {
        frames += 1;
        if ws
            .send(Message::text(json!({"type": "subscribe", "id": "same", "payload": {"query": "subscription { entityEvents { type } }"}}).to_string()))
            .await
            .is_err()
        {
            break;
        }
    }
    let close = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                other => panic!("the connection ended without a close frame: {other:?}"),
            }
        }
    })
    .await
    .expect("a close in time");
    assert_eq!(
        close,
        Some(4409),
        "a duplicate subscription id closes with 4409"
    );
    frames
}

/// 200 connections that send a request line and then a header byte now and then, held while
/// a normal request must still be answered; returns how many were held.
async fn slowloris(addr: &str, base: &str) -> usize {
    let mut held = Vec::new();
    for _ in 0..200 {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"POST /graphql HTTP/1.1\r\nHost: x\r\nX-a: ")
            .await
            .unwrap();
        held.push(s);
    }
    for round in 0..3 {
        for s in held.iter_mut() {
            let _ = s.write_all(b"a").await;
        }
        let started = std::time::Instant::now();
        let v = crate::helpers::post_json(
            &format!("{base}/graphql"),
            json!({"query": "{ __typename }"}),
        )
        .await;
        assert_eq!(v["data"]["__typename"], "Query", "round {round}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "a held connection slowed others"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    held.len()
}
