//! `idp-graph serve` against a real Backstage catalog backend (npm packages, started by
//! `tests/peers/backstage/start.sh`): the graph must hold the same entities and relations the
//! real catalog holds.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::helpers::wait_for;

const TOKEN: &str = "idp-graph-peer-token-7c1e";

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Stops a process when dropped, even if the test fails.
pub struct Reaper(pub Vec<u32>, pub Vec<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for pid in &self.0 {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
        for c in &mut self.1 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start_peer(port: u16) -> u32 {
    start_peer_with(port, "catalog,scaffolder")
}

/// Starts the peer with `plugins` (`catalog`, `scaffolder`, `auth`); returns its PID.
fn start_peer_with(port: u16, plugins: &str) -> u32 {
    start_peer_as(port, TOKEN, plugins, &[])
}

/// Starts the peer (`tests/peers/backstage/start.sh`) with `plugins` (`catalog`, `scaffolder`,
/// `auth`, `app`), the static service token `token` and more environment (`PEER_APP`,
/// `APP_CONFIG_*` overrides); returns its PID once it is ready.
pub fn start_peer_as(port: u16, token: &str, plugins: &str, env: &[(&str, &OsStr)]) -> u32 {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/peers/backstage/start.sh"
    );
    let out = Command::new("bash")
        .env("PEER_PLUGINS", plugins)
        .envs(env.iter().copied())
        .arg(script)
        .arg(port.to_string())
        .arg(token)
        .stderr(Stdio::inherit())
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "the real Backstage peer did not start"
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .expect("start.sh prints the PID")
}

type Relations = BTreeSet<(String, String)>;
/// A Backstage user token as a frontend's guest sign-in gets it (`/api/auth/guest/refresh`),
/// once it is `user`'s and the catalog has related that user to `group` (a refresh before the
/// catalog has read the user still answers 200, with only the user in it).
pub async fn guest_token(peer: &str, user: &str, group: &str) -> String {
    let http = reqwest::Client::new();
    wait_for(
        &format!("a guest token of {user} that knows {group}"),
        Duration::from_secs(60),
        || {
            let http = http.clone();
            async move {
                let v: Value = http
                    .get(format!("{peer}/api/auth/guest/refresh"))
                    .header("X-Requested-With", "XMLHttpRequest")
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                let identity = v.pointer("/backstageIdentity/identity")?;
                (identity["userEntityRef"] == user
                    && identity["ownershipEntityRefs"]
                        .as_array()?
                        .iter()
                        .any(|r| r == group))
                .then(|| {
                    v.pointer("/backstageIdentity/token")?
                        .as_str()
                        .map(str::to_string)
                })
                .flatten()
            }
        },
    )
    .await
}

/// Everything the real catalog holds: ref → relations, via its own API.
async fn real_catalog(base: &str) -> BTreeMap<String, Relations> {
    let http = reqwest::Client::new();
    let mut out = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut req = http
            .get(format!("{base}/api/catalog/entities/by-query"))
            .bearer_auth(TOKEN)
            .query(&[("limit", "5")]);
        if let Some(c) = &cursor {
            req = req.query(&[("cursor", c)]);
        }
        let page: Value = req.send().await.unwrap().json().await.unwrap();
        for e in page["items"].as_array().unwrap() {
            let r = format!(
                "{}:{}/{}",
                e["kind"].as_str().unwrap(),
                e["metadata"]["namespace"].as_str().unwrap_or("default"),
                e["metadata"]["name"].as_str().unwrap()
            )
            .to_lowercase();
            let rels = e["relations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r["type"].as_str().unwrap().to_string(),
                        r["targetRef"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            out.insert(r, rels);
        }
        match page["pageInfo"]["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

#[tokio::test]
async fn serve_against_real_backstage_holds_the_same_entities_and_relations() {
    let peer_port = free_port();
    let pid = start_peer(peer_port);
    let mut reaper = Reaper(vec![pid], vec![]);
    let peer = format!("http://127.0.0.1:{peer_port}");

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    let port = free_port();
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:{port}\nbackstage:\n  url: {peer}\n  token_env: IDP_TEST_REAL_BACKSTAGE_TOKEN\n  poll_interval_secs: 1\n  page_size: 4\nauth: {{ mode: none }}\n"
        ),
    )
    .unwrap();
    let server = Command::new(env!("CARGO_BIN_EXE_idp-graph"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("IDP_TEST_REAL_BACKSTAGE_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    reaper.1.push(server);
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    crate::helpers::wait_ready_at(&url, Duration::from_secs(30)).await;

    let real = real_catalog(&peer).await;
    assert!(real.len() >= 14, "the peer loaded catalog.yaml: {real:?}");

    let body: Value = http
        .post(format!("{url}/graphql"))
        .json(&serde_json::json!({"query": "{ sources { kind connected objectCount } entities(first: 1000) { totalCount nodes { ref relations { type targetRef } } } }"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body.get("errors").is_none(), "{body}");
    let d = &body["data"];
    assert_eq!(d["sources"][0]["connected"], true);
    assert_eq!(
        d["sources"][0]["objectCount"].as_u64().unwrap() as usize,
        real.len()
    );
    assert_eq!(
        d["entities"]["totalCount"].as_u64().unwrap() as usize,
        real.len()
    );
    let ours: BTreeMap<String, Relations> = d["entities"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let rels = n["relations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r["type"].as_str().unwrap().to_string(),
                        r["targetRef"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            (n["ref"].as_str().unwrap().to_string(), rels)
        })
        .collect();
    assert_eq!(
        ours, real,
        "the graph holds exactly what the real catalog holds"
    );

    // Typed traversal agrees with the real relations.
    let body: Value = http
        .post(format!("{url}/graphql"))
        .json(&serde_json::json!({"query": r#"{
            c: entity(ref: "component:default/my-app") { ... on Component { owner { ref } system { ref } consumesApis { ref } dependsOn { nodes { ref } } argocdAppNames githubSlug } }
            g: entity(ref: "group:app-team") { ... on Group { parent { ref } members { nodes { ref } } owns { totalCount } } }
            a: entity(ref: "api:sample-api") { ... on API { apiProvidedBy { ref } apiConsumedBy { ref } definition } }
            x: entity(ref: "component:default/not-there") { ref }
        }"#}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body.get("errors").is_none(), "{body}");
    let d = &body["data"];
    assert_eq!(d["c"]["owner"]["ref"], "group:default/app-team");
    assert_eq!(d["c"]["system"]["ref"], "system:default/idp");
    assert_eq!(d["c"]["consumesApis"][0]["ref"], "api:default/sample-api");
    assert_eq!(d["c"]["dependsOn"]["nodes"].as_array().unwrap().len(), 2);
    assert_eq!(
        d["c"]["argocdAppNames"],
        serde_json::json!(["my-app", "my-app-canary"])
    );
    assert_eq!(d["c"]["githubSlug"], "yourcompany/my-app");
    assert_eq!(d["g"]["parent"]["ref"], "group:default/engineering");
    assert_eq!(d["g"]["members"]["nodes"][0]["ref"], "user:default/carol");
    assert_eq!(d["g"]["owns"]["totalCount"], 4);
    assert_eq!(
        d["a"]["apiProvidedBy"][0]["ref"],
        "component:default/sample-app"
    );
    assert_eq!(
        d["a"]["apiConsumedBy"][0]["ref"],
        "component:default/my-app"
    );
    assert!(d["a"]["definition"].as_str().unwrap().contains("openapi"));
    assert_eq!(d["x"], Value::Null);

    // The real scaffolder: a task from the template, followed through `templateTask`.
    let body: Value = http
        .post(format!("{url}/graphql"))
        .json(&serde_json::json!({"query": r#"mutation { createFromTemplate(input: {templateRef: "template:default/hello-template", values: {name: "world"}}) { id } }"#}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body.get("errors").is_none(), "{body}");
    let id = body["data"]["createFromTemplate"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let app = crate::helpers::TestAppUrl {
        addr: format!("127.0.0.1:{port}"),
    };
    let events = crate::templates::follow_task_at(&app.addr, &id).await;
    let last = events.last().unwrap();
    assert_eq!(last["type"], "COMPLETION", "{events:?}");
    assert_eq!(last["output"]["text"][0]["content"], "Said hello to world");
    assert!(
        events.iter().any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.contains("Hello, world!"))),
        "{events:?}"
    );
    // A missing required parameter is refused by the real scaffolder, as a user error.
    let body: Value = http
        .post(format!("{url}/graphql"))
        .json(&serde_json::json!({"query": r#"mutation { createFromTemplate(input: {templateRef: "hello-template", values: {}}) { id } }"#}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{body}"
    );
}

/// The real auth backend (guest provider) issues an ES256 user token; idp-graph verifies it by
/// discovery + JWKS, reads the user's direct groups from userinfo, adds the parent group only
/// the catalog knows, and that parent group's binding decides what the user sees.
#[tokio::test]
async fn a_real_backstage_user_token_is_accepted_and_a_catalog_parent_group_drives_visibility() {
    use idp_graph::auth::{
        policy::Binding, AuthMode, AuthSettings, IssuerSettings, JwtSettings, Policy,
    };
    let peer_port = free_port();
    let pid = start_peer_with(peer_port, "catalog,auth");
    let _reaper = Reaper(vec![pid], vec![]);
    let peer = format!("http://127.0.0.1:{peer_port}");
    let http = reqwest::Client::new();
    // Sign in as a frontend does; wait until the catalog has related the user to its group.
    let token = guest_token(&peer, "user:default/guest", "group:default/app-team").await;
    // The backend itself lists only the direct group.
    let info: Value = http
        .get(format!("{peer}/api/auth/v1/userinfo"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        info["claims"]["ent"],
        serde_json::json!(["user:default/guest", "group:default/app-team"])
    );

    // idp-graph: catalog from the real backend, ArgoCD from the simulation, tokens from the
    // real auth backend; group `engineering` (app-team's parent) is bound to `admin`.
    let opts = idp_graph::demo::DemoOptions::for_tests();
    let world = idp_graph::demo::DemoWorld::start(&opts).await.unwrap();
    let (mut settings, mut secrets) = world.settings(&opts);
    settings.listen = "127.0.0.1:0".parse().unwrap();
    if let Some(b) = settings.backstage.as_mut() {
        b.url = peer.clone();
    }
    secrets.insert(
        idp_graph::state::SourceKind::Backstage,
        "backstage",
        TOKEN.to_string().into(),
    );
    let policy = Policy {
        bindings: vec![
            Binding {
                group: Some("engineering".into()),
                subject: None,
                authenticated: false,
                role: "admin".into(),
            },
            Binding {
                group: None,
                subject: None,
                authenticated: true,
                role: "member".into(),
            },
        ],
        ..Policy::default()
    };
    settings.auth = AuthSettings {
        mode: AuthMode::Jwt,
        anonymous: None,
        jwt: JwtSettings {
            issuers: vec![IssuerSettings::backstage(&peer)],
        },
        policy: Some(policy),
    };
    let app = crate::helpers::spawn_app(settings, secrets, world).await;
    app.wait_ready().await;
    let ask = |t: String| {
        let (http, url) = (app.http.clone(), format!("{}/graphql", app.url));
        async move {
            let r = http
                .post(url)
                .bearer_auth(t)
                .json(&serde_json::json!({"query": "{ viewer { subject groups roles admin } applications { totalCount } }"}))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = ask(token.clone()).await;
    assert_eq!(status, 200, "{body}");
    let v = &body["data"]["viewer"];
    assert_eq!(v["subject"], "user:default/guest");
    assert_eq!(
        v["groups"],
        serde_json::json!(["group:default/app-team", "group:default/engineering"]),
        "the parent group comes from the catalog"
    );
    assert_eq!(v["admin"], true, "{body}");
    assert_eq!(body["data"]["applications"]["totalCount"], 8, "{body}");
    // The same token with one byte of its signature changed is refused.
    let mut tampered = token.into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let (status, body) = ask(String::from_utf8(tampered).unwrap()).await;
    assert_eq!(status, 401, "{body}");
}
