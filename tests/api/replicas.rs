//! Three `idp-graph serve` processes sharing one change log on a real Redis (`cluster:`),
//! against one simulated world: one owner per upstream, cursors and state the same on every
//! replica, failover when an owner dies.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{next_for, post_json, wait_for, wait_ready_at, ws_init, Ws};
use idp_graph::demo::{DemoOptions, DemoWorld};

#[path = "../support/redis_server.rs"]
mod redis_server;
#[path = "../support/serve_child.rs"]
mod serve_child;

use redis_server::RedisServer;
use serve_child::ServeChild;

const T: Duration = Duration::from_secs(30);
/// Every upstream instance of the test world (GitHub's: its safety-net rounds).
const SOURCES: [&str; 4] = ["argocd/main", "backstage", "github", "kubernetes/demo"];

pub struct Replicas {
    pub redis: RedisServer,
    pub world: DemoWorld,
    pub servers: Vec<Option<ServeChild>>,
    dir: tempfile::TempDir,
}

impl Replicas {
    /// `None` (and a note) where `redis-server` is not installed.
    pub async fn start(n: usize, opts: DemoOptions) -> Option<Self> {
        let Some(redis) = RedisServer::start(true) else {
            eprintln!("redis-server is not installed (.ci/run installs it): replica tests skipped");
            return None;
        };
        let world = DemoWorld::start(&opts).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("redis-url"), redis.url()).unwrap();
        std::fs::write(
            dir.path().join("cursor-key"),
            "a cursor key every replica of this test shares, 44 chars",
        )
        .unwrap();
        let mut r = Self {
            redis,
            world,
            servers: Vec::new(),
            dir,
        };
        for i in 0..n {
            r.add(i);
        }
        for s in r.servers.iter().flatten() {
            wait_ready_at(&s.base, T).await;
        }
        Some(r)
    }

    /// Starts replica `r<i>` (a new process).
    pub fn add(&mut self, i: usize) {
        let extra = format!(
            "cluster: {{ redis_url_file: '{}', replica_id: r{i}, lease_secs: 3, snapshot_secs: 2 }}\n\
             events: {{ cursor_key_file: '{}' }}\n",
            self.dir.path().join("redis-url").display(),
            self.dir.path().join("cursor-key").display(),
        );
        let child = serve_child::spawn(&self.world, 0.2, &extra);
        if self.servers.len() <= i {
            self.servers.resize_with(i + 1, || None);
        }
        self.servers[i] = Some(child);
    }

    pub fn base(&self, i: usize) -> &str {
        &self.servers[i].as_ref().expect("replica running").base
    }

    pub fn live(&self) -> Vec<usize> {
        (0..self.servers.len())
            .filter(|i| self.servers[*i].is_some())
            .collect()
    }

    /// `/readyz`'s `cluster` part.
    pub async fn cluster(&self, i: usize) -> Value {
        let r = reqwest::get(format!("{}/readyz", self.base(i))).await;
        match r {
            Ok(r) => r.json::<Value>().await.unwrap_or(Value::Null)["cluster"].clone(),
            Err(_) => Value::Null,
        }
    }

    /// Which replica owns each source, once every source has exactly one owner.
    pub async fn owners(&self) -> Vec<(String, usize)> {
        wait_for("one owner per source", T, || async {
            let mut owners = Vec::new();
            for i in self.live() {
                for s in self.cluster(i).await["owns"].as_array()?.iter() {
                    owners.push((s.as_str()?.to_string(), i));
                }
            }
            owners.sort();
            let ids: Vec<&str> = owners.iter().map(|(s, _)| s.as_str()).collect();
            if ids != SOURCES {
                for i in self.live() {
                    eprintln!("r{i}: {}", self.cluster(i).await);
                }
            }
            (ids == SOURCES).then_some(owners)
        })
        .await
    }

    pub async fn data(&self, i: usize, query: &str) -> Value {
        let body = post_json(
            &format!("{}/graphql", self.base(i)),
            json!({"query": query}),
        )
        .await;
        assert!(body.get("errors").is_none(), "errors on r{i}: {body}");
        body["data"].clone()
    }

    /// Waits until every live replica answers `query` with the same data; returns it.
    pub async fn agree(&self, query: &str) -> Value {
        wait_for("every replica answers alike", T, || async {
            let mut answers = Vec::new();
            for i in self.live() {
                answers.push(self.data(i, query).await);
            }
            answers
                .windows(2)
                .all(|w| w[0] == w[1])
                .then(|| answers[0].clone())
        })
        .await
    }
}

const APPS: &str =
    "{ applications(first: 1000) { nodes { name sync { status revision } health { status } } } }";

async fn subscribe(addr: &str, query: &str, after: Option<&str>) -> Ws {
    let mut ws = ws_init(addr).await;
    ws.next().await; // connection_ack
    ws.send(Message::text(
        json!({"id": "1", "type": "subscribe", "payload": {"query": query, "variables": {"after": after}}})
            .to_string(),
    ))
    .await
    .unwrap();
    ws
}

fn addr(base: &str) -> String {
    base.trim_start_matches("http://").to_string()
}

#[tokio::test]
async fn three_replicas_own_each_upstream_once_and_a_cursor_resumes_on_every_other() {
    let Some(r) = Replicas::start(3, DemoOptions::for_tests()).await else {
        return;
    };
    let owners = r.owners().await;
    let owning: BTreeSet<usize> = owners.iter().map(|(_, i)| *i).collect();
    eprintln!("owners: {owners:?}");
    assert!(!owning.is_empty());
    let apps = r.agree(APPS).await;
    assert!(
        apps["applications"]["nodes"].as_array().unwrap().len() >= 3,
        "{apps}"
    );

    // An event seen on r0 resumes on r1 and r2 by its cursor: the same next event, no resync.
    const Q: &str = "subscription($after: String) { applicationEvents(filter: {names: [\"app-3\"]}, after: $after) { cursor type current { health } } }";
    let mut live = subscribe(&addr(r.base(0)), Q, None).await;
    // Registered once a ping's pong comes back after the subscribe.
    live.send(Message::text(json!({"type": "ping"}).to_string()))
        .await
        .unwrap();
    loop {
        let m = tokio::time::timeout(T, live.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if m.to_text().unwrap_or("").contains("pong") {
            break;
        }
    }
    r.world.argocd.set_health("app-3", "Degraded", Some("one"));
    let first = next_for(&mut live, "1").await;
    let c1 = first["data"]["applicationEvents"]["cursor"]
        .as_str()
        .unwrap()
        .to_string();
    r.world.argocd.set_health("app-3", "Healthy", Some("two"));
    let second = next_for(&mut live, "1").await;
    assert_eq!(
        second["data"]["applicationEvents"]["current"]["health"],
        "HEALTHY"
    );
    for i in [1, 2] {
        let mut ws = subscribe(&addr(r.base(i)), Q, Some(&c1)).await;
        let replayed = next_for(&mut ws, "1").await;
        assert_eq!(
            replayed, second,
            "r{i} resumed the cursor of r0's first event with something else"
        );
    }
    // And the state agrees everywhere.
    let after = r.agree(APPS).await;
    let app3 = after["applications"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "app-3")
        .cloned();
    assert_eq!(app3.unwrap()["health"]["status"], "HEALTHY");
}
