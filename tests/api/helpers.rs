//! Spawning the app against a demo world, and waiting for conditions instead of sleeping.

use std::future::Future;
use std::time::Duration;

use idp_graph::app::App;
use idp_graph::config::{ResolvedSecrets, Settings};
use idp_graph::demo::{DemoOptions, DemoWorld};
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub struct TestApp {
    pub url: String,
    pub addr: std::net::SocketAddr,
    pub http: reqwest::Client,
    pub world: DemoWorld,
    pub shutdown: CancellationToken,
    pub server: Option<JoinHandle<Result<(), idp_graph::app::AppError>>>,
}

/// A demo world polled every 100 ms, and the server on 127.0.0.1:0, ready.
pub async fn spawn_demo() -> TestApp {
    spawn_with(
        DemoOptions {
            scale: 0,
            catalog_poll_secs: 0.1,
            ..DemoOptions::for_tests()
        },
        |_| {},
    )
    .await
}

pub async fn spawn_with(opts: DemoOptions, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let world = DemoWorld::start(&opts).await.expect("demo world starts");
    let (mut settings, secrets) = world.settings(&opts);
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.shutdown_grace_secs = 3;
    tweak(&mut settings);
    let app = spawn_app(settings, secrets, world).await;
    app.wait_ready().await;
    app
}

pub async fn spawn_app(settings: Settings, secrets: ResolvedSecrets, world: DemoWorld) -> TestApp {
    let app = App::build(settings, secrets).await.expect("app builds");
    let addr = app.local_addr();
    let shutdown = app.shutdown_token();
    let server = tokio::spawn(app.run_until_stopped());
    TestApp {
        url: format!("http://{addr}"),
        addr,
        http: reqwest::Client::new(),
        world,
        shutdown,
        server: Some(server),
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Polls `check` every 20 ms until it returns `Some`, or panics with `what` after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the server at `base` (`http://host:port`) answers `/readyz` with success.
pub async fn wait_ready_at(base: &str, timeout: Duration) {
    let http = reqwest::Client::new();
    let url = format!("{base}/readyz");
    wait_for("readiness", timeout, || {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let r = http.get(&url).send().await.ok()?;
            r.status().is_success().then_some(())
        }
    })
    .await;
}

impl TestApp {
    pub async fn wait_ready(&self) {
        wait_ready_at(&self.url, Duration::from_secs(20)).await;
    }

    /// POSTs a query; asserts HTTP 200 and a JSON body; returns the body.
    pub async fn gql(&self, query: &str) -> Value {
        self.gql_vars(query, json!({})).await
    }

    pub async fn gql_vars(&self, query: &str, variables: Value) -> Value {
        let r = self
            .http
            .post(format!("{}/graphql", self.url))
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("request sent");
        assert_eq!(r.status(), 200, "status of {query}");
        r.json().await.expect("JSON body")
    }

    /// POSTs a query that must succeed without errors; returns `data`.
    pub async fn data(&self, query: &str) -> Value {
        let body = self.gql(query).await;
        assert!(body.get("errors").is_none(), "errors for {query}: {body}");
        body["data"].clone()
    }
}

/// `extensions.code` of the first error.
pub fn first_code(body: &Value) -> String {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
        .to_string()
}

/// The `ref` strings of a list of nodes.
pub fn refs(nodes: &Value) -> Vec<String> {
    nodes
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {nodes}"))
        .iter()
        .map(|n| n["ref"].as_str().expect("ref").to_string())
        .collect()
}

/// A server started some other way (e.g. the `serve` binary), known by address.
pub struct TestAppUrl {
    pub addr: String,
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A graphql-transport-ws connection to `addr` (`host:port`), not yet initialised.
pub async fn ws_connect(addr: &str) -> Ws {
    ws_connect_with(addr, "graphql-transport-ws").await
}

/// A websocket to `addr` speaking `subprotocol` (`graphql-transport-ws` or the legacy
/// `graphql-ws`), not yet initialised.
pub async fn ws_connect_with(addr: &str, subprotocol: &str) -> Ws {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{addr}/graphql/ws")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", subprotocol.parse().unwrap());
    tokio_tungstenite::connect_async(req).await.unwrap().0
}

/// A connection that sent `connection_init` (the ack follows as the first message).
pub async fn ws_init(addr: &str) -> Ws {
    use futures::SinkExt;
    let mut ws = ws_connect(addr).await;
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        serde_json::json!({"type": "connection_init"}).to_string(),
    ))
    .await
    .unwrap();
    ws
}

/// A graphql-transport-ws connection to `addr`, past `connection_ack`, subscribed to `query`
/// under id `1`.
pub async fn ws_subscribe(addr: &str, query: &str) -> Ws {
    use futures::{SinkExt, StreamExt};
    let mut ws = ws_init(addr).await;
    ws.next().await; // connection_ack
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        json!({"id": "1", "type": "subscribe", "payload": {"query": query}}).to_string(),
    ))
    .await
    .unwrap();
    ws
}

/// Reads messages until a `next` for `id` and returns its payload (skipping pings and other
/// operations' messages); an `error` for `id` fails the test with it.
pub async fn next_for(ws: &mut Ws, id: &str) -> Value {
    use futures::StreamExt;
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message in time")
            .unwrap()
            .unwrap();
        if let tokio_tungstenite::tungstenite::Message::Text(t) = m {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["id"] == id {
                assert_ne!(v["type"], "error", "{v}");
                if v["type"] == "next" {
                    return v["payload"].clone();
                }
            }
        }
    }
}

/// POSTs a GraphQL request body to `url` (any server: ours, another process, a gateway) and
/// returns the JSON answer.
pub async fn post_json(url: &str, body: Value) -> Value {
    reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .expect("request sent")
        .json()
        .await
        .expect("JSON body")
}

impl TestApp {
    /// `/metrics` as text.
    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .expect("request sent")
            .text()
            .await
            .expect("a body")
    }

    /// One unlabelled metric's value.
    pub async fn metric(&self, name: &str) -> u64 {
        let text = self.metrics().await;
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /metrics"))
    }
}

/// POSTs `query` to `/graphql` as the bearer of `token` (anonymous without one): status,
/// `Retry-After`, body.
pub async fn post_as(
    app: &TestApp,
    token: Option<&str>,
    query: &str,
) -> (u16, Option<String>, Value) {
    let mut r = app
        .http
        .post(format!("{}/graphql", app.url))
        .json(&json!({ "query": query }));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.expect("request sent");
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, retry, r.json().await.expect("JSON body"))
}

#[path = "../support/serve_child.rs"]
pub mod serve_child;
pub use serve_child::ServeChild;

#[path = "../support/redis_server.rs"]
pub mod redis_server;

/// A server as its own OS process (`idp-graph serve --config`), against `world`'s simulated
/// upstreams (the catalog polled every 0.2 s), with `extra` YAML appended to the config.
/// Killed on drop.
pub fn serve_process(world: &DemoWorld, extra: &str) -> serve_child::ServeChild {
    serve_child::spawn(world, 0.2, extra)
}

/// [`serve_process`] with `github_extra` (`, key: value` pairs) in its `github:` mapping.
pub fn serve_process_with_github(
    world: &DemoWorld,
    github_extra: &str,
    extra: &str,
) -> serve_child::ServeChild {
    serve_child::spawn_with_github(world, 0.2, github_extra, extra)
}

pub use redis_server::RedisServer;

/// One of the project's npm peers (`tests/peers/<name>`), after checking `npm ci` installed
/// `module` there (`.ci/run` does).
pub fn npm_peer(name: &str, module: &str) -> std::path::PathBuf {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/peers")
        .join(name);
    assert!(
        dir.join("node_modules").join(module).is_dir(),
        "npm ci in tests/peers/{name} first (.ci/run does)"
    );
    dir
}

/// Runs a peer's node script (in the peer's directory) that prints one JSON document; returns
/// whether it exited successfully and what it printed. Panics with its stderr when it printed
/// no JSON.
pub async fn node_json(peer: &std::path::Path, script: &str, args: &[&str]) -> (bool, Value) {
    let out = tokio::process::Command::new("node")
        .arg(peer.join(script))
        .args(args)
        .current_dir(peer)
        .output()
        .await
        .expect("node runs");
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{script}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.success(), v)
}
