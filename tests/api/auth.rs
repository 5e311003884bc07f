//! Who may see and do what, black-box: bearer tokens refused on every transport, the demo's
//! personas each seeing exactly their slice, actions allowed and denied by ownership, denials in
//! the audit log, a websocket closed when its token expires, and `serve` with `auth.mode: jwt`
//! answering 401 everywhere but health.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use idp_graph::auth::{AuthMode, AuthSettings, IssuerSettings, JwtSettings};
use idp_graph::demo::DemoOptions;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{spawn_with, ws_connect_with, TestApp, Ws};

const ISS: &str = "https://login.example.test/";
const KEY_A: &[u8] = include_bytes!("../fixtures/auth/issuer-a.key.pem");
const PUB_A: &[u8] = include_bytes!("../fixtures/auth/issuer-a.pub.pem");
const KEY_OTHER: &[u8] = include_bytes!("../fixtures/auth/other.key.pem");
const T: Duration = Duration::from_secs(10);

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn rs256(key: &[u8], kid: &str, claims: Value) -> String {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some(kid.into());
    jsonwebtoken::encode(&h, &claims, &EncodingKey::from_rsa_pem(key).unwrap()).unwrap()
}

fn claims(sub: &str, groups: &[&str]) -> Value {
    json!({"iss": ISS, "aud": ["idp-graph"], "sub": sub, "groups": groups, "iat": now(), "exp": now() + 600})
}

/// A JWKS server for issuer A (key id `k1`), on a port of its own.
async fn jwks_server() -> String {
    jwks_server_counted().await.0
}

/// The same, with a count of the fetches it served and a switch that makes it answer 503.
async fn jwks_server_counted() -> (
    String,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let fetches = Arc::new(AtomicUsize::new(0));
    let down = Arc::new(AtomicBool::new(false));
    let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(
        &EncodingKey::from_rsa_pem(KEY_A).unwrap(),
        Algorithm::RS256,
    )
    .unwrap();
    let mut v = serde_json::to_value(&jwk).unwrap();
    v["kid"] = json!("k1");
    let body = json!({ "keys": [v] });
    let (f, d) = (fetches.clone(), down.clone());
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let (b, f, d) = (body.clone(), f.clone(), d.clone());
            async move {
                use axum::response::IntoResponse;
                if d.load(Ordering::SeqCst) {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response();
                }
                f.fetch_add(1, Ordering::SeqCst);
                axum::Json(b).into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/jwks.json"), fetches, down)
}

fn issuer_a(jwks_url: &str) -> IssuerSettings {
    IssuerSettings {
        kind: idp_graph::auth::IssuerKind::Jwt,
        issuer: Some(ISS.into()),
        url: None,
        audiences: vec!["idp-graph".into()],
        jwks_url: Some(jwks_url.into()),
        public_key_file: None,
        secret_env: None,
        secret_file: None,
        algorithms: vec!["RS256".into()],
        groups_claim: "groups".into(),
        leeway_secs: 0,
    }
}

/// The demo world with `auth.mode: jwt`, anonymous denied, issuer A and the demo's Backstage.
async fn spawn_jwt(jwks_url: &str) -> TestApp {
    let jwks_url = jwks_url.to_string();
    let opts = DemoOptions {
        auth: true,
        ..DemoOptions::for_tests()
    };
    spawn_with(opts, move |s| {
        let backstage = s.auth.jwt.issuers[0].clone();
        s.auth = AuthSettings {
            mode: AuthMode::Jwt,
            anonymous: None,
            jwt: JwtSettings {
                issuers: vec![issuer_a(&jwks_url), backstage],
            },
            policy: None,
        };
    })
    .await
}

const Q: &str = "{ applications { totalCount } }";

/// POST /graphql with a token: (status, WWW-Authenticate, body).
async fn post(app: &TestApp, token: Option<&str>) -> (u16, Option<String>, Value) {
    let mut r = app
        .http
        .post(format!("{}/graphql", app.url))
        .json(&json!({ "query": Q }));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let www = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    (status, www, r.json().await.unwrap())
}

async fn sse(app: &TestApp, token: Option<&str>) -> (u16, Value) {
    let mut r = app
        .http
        .post(format!("{}/graphql/sse", app.url))
        .json(&json!({ "query": "subscription { applicationEvents { cursor } }" }));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let body = if status == 200 {
        Value::Null
    } else {
        r.json().await.unwrap()
    };
    (status, body)
}

/// Next non-keepalive message, or the close code.
async fn next(ws: &mut Ws) -> Result<Value, u16> {
    loop {
        match tokio::time::timeout(T, ws.next()).await.expect("in time") {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if !matches!(v["type"].as_str(), Some("ping" | "ka")) {
                    return Ok(v);
                }
            }
            Some(Ok(Message::Close(Some(f)))) => return Err(f.code.into()),
            Some(Ok(Message::Close(None))) | None => return Err(1005),
            Some(Ok(_)) => {}
            Some(Err(_)) => return Err(1006),
        }
    }
}

/// Initialises a websocket with the token in the init payload; the first answer.
async fn ws_init(
    app: &TestApp,
    subprotocol: &str,
    token: Option<&str>,
) -> (Ws, Result<Value, u16>) {
    let mut ws = ws_connect_with(&app.addr.to_string(), subprotocol).await;
    let payload = match token {
        Some(t) => json!({ "Authorization": format!("Bearer {t}") }),
        None => json!({}),
    };
    ws.send(Message::text(
        json!({"type": "connection_init", "payload": payload}).to_string(),
    ))
    .await
    .unwrap();
    let first = next(&mut ws).await;
    (ws, first)
}

/// Every bad token is refused with no data on POST, SSE and both websocket protocols.
async fn assert_refused_everywhere(app: &TestApp, what: &str, token: Option<&str>) {
    let (status, www, body) = post(app, token).await;
    assert_eq!(status, 401, "{what}: POST {body}");
    assert_eq!(
        www.as_deref(),
        Some("Bearer error=\"invalid_token\""),
        "{what}"
    );
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{what}"
    );
    assert!(
        body.get("data").is_none_or(Value::is_null),
        "{what}: {body}"
    );
    let (status, body) = sse(app, token).await;
    assert_eq!(status, 401, "{what}: SSE");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{what}"
    );
    let (_, first) = ws_init(app, "graphql-transport-ws", token).await;
    assert_eq!(first, Err(4403), "{what}: graphql-transport-ws");
    let (mut ws, first) = ws_init(app, "graphql-ws", token).await;
    let m = first.expect("the legacy protocol says why first");
    assert_eq!(m["type"], "connection_error", "{what}: {m}");
    assert_eq!(
        m["payload"]["extensions"]["code"], "UNAUTHENTICATED",
        "{what}"
    );
    assert_eq!(next(&mut ws).await, Err(4403), "{what}: legacy close");
}

#[tokio::test]
async fn bad_tokens_are_refused_on_every_transport_and_good_ones_pass() {
    let jwks = jwks_server().await;
    let app = spawn_jwt(&jwks).await;
    let good = rs256(KEY_A, "k1", claims("user:default/carol", &["app-team"]));
    // A good token (and a real Backstage user token) passes everywhere: the table below is
    // refused for its own reasons, not because nothing passes.
    let (status, _, body) = post(&app, Some(&good)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["applications"]["totalCount"], 4, "{body}");
    assert_eq!(sse(&app, Some(&good)).await.0, 200);
    let (_, first) = ws_init(&app, "graphql-transport-ws", Some(&good)).await;
    assert_eq!(first.unwrap()["type"], "connection_ack");
    let personas = app.world.persona_tokens();
    let carol = personas[1].2.clone();
    assert_eq!(post(&app, Some(&carol)).await.0, 200);

    let b64 = |v: &Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let mut c = claims("user:default/alice", &["platform-team"]);
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&c)
    );
    let hs_with_public_key = {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("k1".into());
        jsonwebtoken::encode(&h, &c, &EncodingKey::from_secret(PUB_A)).unwrap()
    };
    let other_key = rs256(KEY_OTHER, "k1", c.clone());
    c["exp"] = json!(now() - 3600);
    let expired = rs256(KEY_A, "k1", c.clone());
    c["exp"] = json!(now() + 600);
    c["nbf"] = json!(now() + 3600);
    let not_yet = rs256(KEY_A, "k1", c.clone());
    c.as_object_mut().unwrap().remove("nbf");
    c["aud"] = json!(["someone-else"]);
    let wrong_aud = rs256(KEY_A, "k1", c.clone());
    c["aud"] = json!(["idp-graph"]);
    c["iss"] = json!("https://evil.example/");
    let wrong_iss = rs256(KEY_A, "k1", c.clone());
    c["iss"] = json!(ISS);
    let unknown_kid = rs256(KEY_A, "k9", c.clone());
    // Carol's Backstage token, with its subject changed to alice and the signature kept.
    let tampered = {
        use base64::Engine;
        let parts: Vec<&str> = carol.split('.').collect();
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap();
        let mut v: Value = serde_json::from_slice(&payload).unwrap();
        v["sub"] = json!("user:default/alice");
        format!("{}.{}.{}", parts[0], b64(&v), parts[2])
    };
    let table: Vec<(&str, Option<String>)> = vec![
        ("missing (anonymous denied)", None),
        ("garbage", Some("not-a-jwt".into())),
        ("alg none", Some(alg_none)),
        (
            "HS256 signed with the RS256 public key",
            Some(hs_with_public_key),
        ),
        ("a valid token from another key", Some(other_key)),
        ("expired", Some(expired)),
        ("not yet valid", Some(not_yet)),
        ("wrong aud", Some(wrong_aud)),
        ("wrong iss", Some(wrong_iss)),
        ("unknown kid", Some(unknown_kid)),
        ("tampered Backstage token", Some(tampered)),
    ];
    for (what, token) in &table {
        assert_refused_everywhere(&app, what, token.as_deref()).await;
    }
    println!(
        "bad-token table: {} rows × 4 transports refused",
        table.len()
    );

    // JWKS unreachable and never fetched: a good token cannot be verified, so it is refused.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = l.local_addr().unwrap();
        drop(l);
        format!("http://{a}/jwks.json")
    };
    let unreachable = spawn_jwt(&closed).await;
    assert_refused_everywhere(&unreachable, "JWKS unreachable, never fetched", Some(&good)).await;
}

#[tokio::test]
async fn serve_with_jwt_answers_401_everywhere_but_health() {
    let jwks = jwks_server().await;
    let app = spawn_jwt(&jwks).await;
    let get = |path: &str| {
        let (http, url) = (app.http.clone(), format!("{}{path}", app.url));
        async move { http.get(url).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(get("/healthz").await, 200);
    assert_eq!(get("/readyz").await, 200);
    for path in [
        "/",
        "/metrics",
        "/graphql?query=%7B__typename%7D",
        "/graphql/sse?query=%7B__typename%7D",
    ] {
        assert_eq!(get(path).await, 401, "{path}");
    }
    assert_eq!(post(&app, None).await.0, 401);
    // On the main listener /metrics is platform-team's: a member's good token is refused.
    let metrics_as = |groups: &'static [&'static str]| {
        let token = rs256(KEY_A, "k1", claims("user:default/someone", groups));
        let (http, url) = (app.http.clone(), format!("{}/metrics", app.url));
        async move {
            let r = http.get(url).bearer_auth(token).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (member, body) = metrics_as(&["app-team"]).await;
    assert_eq!(member, 403, "{body}");
    assert!(body.contains("FORBIDDEN"), "{body}");
    let (admin, body) = metrics_as(&["platform-team"]).await;
    assert_eq!(admin, 200);
    assert!(body.contains("idp_"), "{body}");
}

#[tokio::test]
async fn a_websocket_closes_when_its_token_expires_and_sends_nothing_after() {
    let jwks = jwks_server().await;
    let app = spawn_jwt(&jwks).await;
    let mut c = claims("user:default/alice", &["platform-team"]);
    let exp = now() + 2;
    c["exp"] = json!(exp);
    let token = rs256(KEY_A, "k1", c);
    let expires = chrono::DateTime::from_timestamp(exp, 0).unwrap();
    let (mut ws, first) = ws_init(&app, "graphql-transport-ws", Some(&token)).await;
    assert_eq!(first.unwrap()["type"], "connection_ack");
    ws.send(Message::text(
        json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { applicationEvents(initial: true) { type application { name } } }"}}).to_string(),
    ))
    .await
    .unwrap();
    let mut closed = None;
    let mut events = 0;
    while closed.is_none() {
        match next(&mut ws).await {
            Ok(m) => {
                // Nothing arrives after the token expired (a little slack for the wire).
                assert!(
                    chrono::Utc::now() < expires + chrono::Duration::milliseconds(500),
                    "{m}"
                );
                assert_eq!(m["type"], "next", "{m}");
                events += 1;
            }
            Err(code) => closed = Some(code),
        }
    }
    assert_eq!(closed, Some(4403));
    assert!(events > 0, "the subscription worked before expiry");
    assert!(
        chrono::Utc::now() >= expires - chrono::Duration::milliseconds(500),
        "not closed early"
    );
}

/// The demo world with its own auth (the `demo` command's): personas by Backstage token.
pub(crate) async fn spawn_demo_auth() -> (TestApp, Vec<(String, Option<String>)>) {
    let app = spawn_with(
        DemoOptions {
            auth: true,
            ..DemoOptions::for_tests()
        },
        |_| {},
    )
    .await;
    let mut who: Vec<(String, Option<String>)> = app
        .world
        .persona_tokens()
        .into_iter()
        .map(|(n, _, t)| (n.to_string(), Some(t)))
        .collect();
    who.push(("anonymous".into(), None));
    (app, who)
}

pub(crate) async fn gql_as(app: &TestApp, token: Option<&str>, query: &str) -> Value {
    let (status, _, body) = crate::helpers::post_as(app, token, query).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn names(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_string())
        .collect()
}

const TEAM_APPS: [&str; 4] = ["app-2", "app-3", "my-app", "sample-app"];

#[tokio::test]
async fn each_persona_sees_exactly_its_slice_of_the_demo() {
    let (app, who) = spawn_demo_auth().await;
    let everything = gql_as(
        &app,
        who[0].1.as_deref(),
        r#"{
        applications { totalCount nodes { name } }
        deployments(first: 1000) { totalCount nodes { namespace name } }
        pods(first: 1000) { totalCount nodes { namespace } }
        sources { name url }
    }"#,
    )
    .await["data"]
        .clone();
    let team: BTreeSet<String> = TEAM_APPS.iter().map(|s| s.to_string()).collect();
    let all_apps = names(&everything["applications"]["nodes"]);
    assert_eq!(all_apps.len(), 8);
    let in_team_ns = |list: &Value| -> BTreeSet<String> {
        list.as_array()
            .unwrap()
            .iter()
            .filter(|n| team.contains(n["namespace"].as_str().unwrap()))
            .map(|n| n.to_string())
            .collect()
    };
    for (persona, token) in &who {
        let d = gql_as(
            &app,
            token.as_deref(),
            r#"{
            viewer { subject groups roles admin }
            applications { totalCount nodes { name viewerCan { sync } } }
            deployments(first: 1000) { totalCount nodes { namespace name } }
            pods(first: 1000) { totalCount nodes { namespace } }
            sources { name url }
            a: application(name: "argocd") { name }
            n: namespaces { name }
        }"#,
        )
        .await;
        let d = &d["data"];
        let apps = names(&d["applications"]["nodes"]);
        let deployments: BTreeSet<String> = d["deployments"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.to_string())
            .collect();
        match persona.as_str() {
            "alice" => {
                assert_eq!(apps, all_apps, "{persona}");
                assert_eq!(d["deployments"], everything["deployments"], "{persona}");
                assert_eq!(d["pods"]["totalCount"], everything["pods"]["totalCount"]);
                assert_eq!(d["a"]["name"], "argocd");
            }
            // The chatops bot sees everything (to route every app's notifications), is no
            // admin and acts on nothing by itself (only for a user: delegation).
            "notify-bot" => {
                assert_eq!(apps, all_apps, "{persona}");
                assert_eq!(d["deployments"], everything["deployments"], "{persona}");
                assert_eq!(d["a"]["name"], "argocd");
            }
            // Anonymous callers get the public boundary: what a member sees, no actions.
            "carol" | "erin" | "anonymous" => {
                assert_eq!(apps, team, "{persona}");
                assert_eq!(d["applications"]["totalCount"], 4);
                // Exactly the objects in the team apps' destination namespaces.
                assert_eq!(
                    deployments,
                    in_team_ns(&everything["deployments"]["nodes"]),
                    "{persona}"
                );
                assert_eq!(
                    d["deployments"]["totalCount"].as_u64().unwrap() as usize,
                    deployments.len()
                );
                let pods = in_team_ns(&everything["pods"]["nodes"]).len();
                assert!(pods > 0);
                assert_eq!(
                    d["pods"]["nodes"].as_array().unwrap().len(),
                    everything["pods"]["nodes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|n| team.contains(n["namespace"].as_str().unwrap()))
                        .count()
                );
                assert_eq!(
                    d["pods"]["totalCount"].as_u64().unwrap() as usize,
                    d["pods"]["nodes"].as_array().unwrap().len()
                );
                // An invisible app is indistinguishable from a missing one.
                assert!(d["a"].is_null(), "{persona}: {d}");
                let ns = names(&d["n"]);
                assert_eq!(ns, team, "{persona}");
            }
            other => panic!("unexpected persona {other}"),
        }
        let admin = persona == "alice";
        assert_eq!(d["viewer"]["admin"], admin, "{persona}");
        for s in d["sources"].as_array().unwrap() {
            assert_eq!(s["url"].is_string(), admin, "{persona}: {s}");
        }
        let can_sync: BTreeSet<String> = d["applications"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["viewerCan"]["sync"] == true)
            .map(|n| n["name"].as_str().unwrap().to_string())
            .collect();
        let expected: BTreeSet<String> = match persona.as_str() {
            "alice" => all_apps.clone(),
            "carol" => team.clone(),
            _ => BTreeSet::new(),
        };
        assert_eq!(can_sync, expected, "{persona}");
    }
    // Backstage groups come with the catalog's parents.
    let v = gql_as(
        &app,
        who[1].1.as_deref(),
        "{ viewer { subject groups roles } }",
    )
    .await;
    assert_eq!(v["data"]["viewer"]["subject"], "user:default/carol");
    assert_eq!(
        v["data"]["viewer"]["groups"],
        json!(["group:default/app-team", "group:default/engineering"])
    );
}

#[tokio::test]
async fn actions_follow_ownership_and_every_denial_is_audited() {
    let (app, who) = spawn_demo_auth().await;
    let token = |name: &str| {
        who.iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, t)| t.clone())
    };
    let sync = |app_name: &str| {
        format!(
            r#"mutation {{ syncApplication(input: {{name: "{app_name}"}}) {{ auditId application {{ name }} }} }}"#
        )
    };
    let code = |v: &Value| {
        v["errors"][0]["extensions"]["code"]
            .as_str()
            .map(str::to_string)
    };

    let ok = gql_as(&app, token("carol").as_deref(), &sync("sample-app")).await;
    assert_eq!(
        ok["data"]["syncApplication"]["application"]["name"], "sample-app",
        "{ok}"
    );
    for (persona, target) in [
        ("carol", "argocd"),
        ("erin", "sample-app"),
        ("erin", "argocd"),
        ("anonymous", "sample-app"),
    ] {
        let r = gql_as(&app, token(persona).as_deref(), &sync(target)).await;
        assert_eq!(
            code(&r).as_deref(),
            Some("FORBIDDEN"),
            "{persona} → {target}: {r}"
        );
        assert!(r["data"].is_null(), "{r}");
    }
    // Restart: carol's team owns my-app; the platform's argocd namespace is not hers to see.
    let restart = |ns: &str| {
        format!(
            r#"mutation {{ restartDeployment(cluster: "demo", namespace: "{ns}", name: "{ns}") {{ auditId }} }}"#
        )
    };
    let r = gql_as(&app, token("carol").as_deref(), &restart("my-app")).await;
    assert!(r["errors"].is_null(), "{r}");
    let r = gql_as(&app, token("erin").as_deref(), &restart("my-app")).await;
    assert_eq!(code(&r).as_deref(), Some("FORBIDDEN"), "{r}");
    // A Deployment in a namespace carol cannot see: refused like a missing one, and audited.
    let r = gql_as(&app, token("carol").as_deref(), &restart("argocd")).await;
    assert_eq!(code(&r).as_deref(), Some("FORBIDDEN"), "{r}");

    // The audit log is for admins; it holds every denial with who, groups and decision.
    let r = gql_as(&app, token("carol").as_deref(), "{ auditLog { id } }").await;
    assert_eq!(code(&r).as_deref(), Some("FORBIDDEN"));
    let log = gql_as(
        &app,
        token("alice").as_deref(),
        "{ auditLog { principal groups action target result decision requestId } }",
    )
    .await;
    let entries = log["data"]["auditLog"].as_array().unwrap().clone();
    let denied: Vec<(String, String)> = entries
        .iter()
        .filter(|e| e["decision"] == "denied")
        .map(|e| {
            (
                e["principal"].as_str().unwrap().to_string(),
                e["target"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (who, target) in [
        ("user:default/carol", "argocd"),
        ("user:default/erin", "main/argocd/sample-app"),
        ("user:default/erin", "argocd"),
        ("anonymous", "main/argocd/sample-app"),
        ("user:default/erin", "demo/deployments/my-app/my-app"),
        ("user:default/carol", "demo/deployments/argocd/argocd"),
    ] {
        assert!(
            denied.iter().any(|(p, t)| p == who && t == target),
            "no denial of {who} on {target} in {denied:?}"
        );
    }
    assert!(entries.iter().all(|e| e["requestId"].is_string()));
    let carol_ok = entries
        .iter()
        .find(|e| e["principal"] == "user:default/carol" && e["result"] == "ok")
        .expect("carol's sync is audited");
    assert_eq!(
        carol_ok["groups"],
        json!(["group:default/app-team", "group:default/engineering"])
    );
}

#[tokio::test]
async fn subscribers_get_only_the_events_they_may_see() {
    let (app, who) = spawn_demo_auth().await;
    let token = |name: &str| {
        who.iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, t)| t.clone())
    };
    let q = json!({"query": "subscription { applicationEvents(initial: true) { type application { name } } }"});
    let event_app = |m: &Value| {
        m["payload"]["data"]["applicationEvents"]["application"]["name"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let mut subs = Vec::new();
    for (persona, visible) in [("alice", 8), ("carol", 4)] {
        let (mut ws, first) =
            ws_init(&app, "graphql-transport-ws", token(persona).as_deref()).await;
        assert_eq!(first.unwrap()["type"], "connection_ack");
        ws.send(Message::text(
            json!({"id": "s", "type": "subscribe", "payload": q}).to_string(),
        ))
        .await
        .unwrap();
        // The initial state: exactly what the persona sees; once it is here, the
        // subscription is live.
        let mut initial = BTreeSet::new();
        for _ in 0..visible {
            let m = next(&mut ws).await.expect("an initial event");
            assert_eq!(m["payload"]["data"]["applicationEvents"]["type"], "INITIAL");
            initial.insert(event_app(&m));
        }
        if persona == "carol" {
            assert_eq!(initial, TEAM_APPS.iter().map(|s| s.to_string()).collect());
        }
        subs.push((persona, ws));
    }
    // A platform app changes, then a team app: alice hears both, carol only the team app.
    let alice = token("alice");
    for name in ["argocd", "sample-app"] {
        let r = gql_as(
            &app,
            alice.as_deref(),
            &format!(r#"mutation {{ refreshApplication(input: {{name: "{name}", hard: true}}) {{ auditId }} }}"#),
        )
        .await;
        assert!(r["errors"].is_null(), "{r}");
        app.world.argocd.set_health(name, "Progressing", None);
    }
    for (persona, ws) in subs.iter_mut() {
        let mut seen = Vec::new();
        // Read until the team app's event arrives (it was changed last).
        while !seen.contains(&"sample-app".to_string()) {
            let m = next(ws).await.expect("an event");
            seen.push(event_app(&m));
        }
        match *persona {
            "alice" => assert!(seen.contains(&"argocd".to_string()), "{seen:?}"),
            _ => assert!(
                seen.iter().all(|n| TEAM_APPS.contains(&n.as_str())),
                "{persona}: {seen:?}"
            ),
        }
    }
}

#[tokio::test]
async fn a_restart_impersonates_the_caller_so_the_clusters_rbac_decides_too() {
    let (app, who) = spawn_demo_auth().await;
    let token = |name: &str| {
        who.iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, t)| t.clone())
    };
    let restart = |ns: &str| {
        format!(
            r#"mutation {{ restartDeployment(cluster: "demo", namespace: "{ns}", name: "{ns}") {{ auditId }} }}"#
        )
    };
    let r = gql_as(&app, token("carol").as_deref(), &restart("my-app")).await;
    assert!(r["errors"].is_null(), "{r}");
    assert_eq!(
        app.world.kubernetes.impersonations().last(),
        Some(&(
            "user:default/carol".to_string(),
            vec![
                "group:default/app-team".to_string(),
                "group:default/engineering".to_string()
            ]
        ))
    );
    // Our policy lets carol restart her team's app-2, but the cluster's RBAC says no: the
    // cluster's refusal is hers, attributed to the cluster, and audited.
    app.world.kubernetes.deny_patches_by("user:default/carol");
    let r = gql_as(&app, token("carol").as_deref(), &restart("app-2")).await;
    assert_eq!(r["errors"][0]["extensions"]["code"], "FORBIDDEN", "{r}");
    assert_eq!(r["errors"][0]["extensions"]["source"], "demo", "{r}");
    let log = gql_as(
        &app,
        token("alice").as_deref(),
        "{ auditLog { principal target result decision } }",
    )
    .await;
    assert!(
        log["data"]["auditLog"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["principal"] == "user:default/carol"
                && e["target"] == "demo/deployments/app-2/app-2"
                && e["decision"] == "denied"),
        "{log}"
    );
    // Others are unaffected.
    let r = gql_as(&app, token("alice").as_deref(), &restart("app-2")).await;
    assert!(r["errors"].is_null(), "{r}");
}

#[tokio::test]
async fn random_kids_cannot_make_us_hammer_the_idp_and_cached_keys_outlive_its_outage() {
    use std::sync::atomic::Ordering;
    let (jwks, fetches, down) = jwks_server_counted().await;
    let app = spawn_jwt(&jwks).await;
    let good = rs256(KEY_A, "k1", claims("user:default/carol", &["app-team"]));
    assert_eq!(post(&app, Some(&good)).await.0, 200);
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    // Fifty tokens with kids the IdP never issued: refused, with at most one re-fetch
    // (re-fetches are at most one per 10 s).
    for i in 0..50 {
        let t = rs256(
            KEY_A,
            &format!("random-{i}"),
            claims("user:default/carol", &["app-team"]),
        );
        assert_eq!(post(&app, Some(&t)).await.0, 401);
    }
    assert!(
        fetches.load(Ordering::SeqCst) <= 2,
        "{} fetches",
        fetches.load(Ordering::SeqCst)
    );
    // The IdP goes down: tokens signed with the keys we have still verify (a new token, so
    // it is not the remembered verification of the first one).
    down.store(true, Ordering::SeqCst);
    let fresh = rs256(KEY_A, "k1", claims("user:default/dave", &["app-team"]));
    let (status, _, body) = post(&app, Some(&fresh)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["applications"]["totalCount"], 4);
}

#[tokio::test]
async fn search_ranks_and_shows_each_persona_only_what_it_may_see() {
    let (app, who) = spawn_demo_auth().await;
    let token = |name: &str| {
        who.iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, t)| t.clone())
    };
    let q = r#"{ search(text: "argocd") { totalCount edges { node { kind rank name application { name } deployment { namespace } } } } }"#;
    let kinds = |v: &Value| -> BTreeSet<String> {
        v["data"]["search"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["node"]["name"] == "argocd")
            .map(|e| e["node"]["kind"].as_str().unwrap().to_string())
            .collect()
    };
    let alice = gql_as(&app, token("alice").as_deref(), q).await;
    assert_eq!(
        kinds(&alice),
        ["APPLICATION", "ENTITY", "WORKLOAD"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    let first = &alice["data"]["search"]["edges"][0]["node"];
    assert_eq!(
        (first["rank"].as_i64(), first["kind"].as_str()),
        (Some(3), Some("ENTITY")),
        "{alice}"
    );
    // carol sees the catalog, but neither the platform app nor its namespace.
    let carol = gql_as(&app, token("carol").as_deref(), q).await;
    assert_eq!(kinds(&carol), ["ENTITY".to_string()].into_iter().collect());
    assert!(
        carol["data"]["search"]["totalCount"].as_u64()
            < alice["data"]["search"]["totalCount"].as_u64()
    );
    let r = gql_as(
        &app,
        token("carol").as_deref(),
        r#"{ search(text: "") { totalCount } }"#,
    )
    .await;
    assert_eq!(r["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
}
