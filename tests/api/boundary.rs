//! The security boundary at its edges, persona by persona (alice: platform-team, carol:
//! app-team, erin: no group, anonymous): repositories by GitHub's visibility and the catalog,
//! template tasks on every door, templates themselves. Each test replays an attack as a caller
//! would send it and asserts the caller gets nothing (or the refusal) and the owner gets it.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::auth::{gql_as, spawn_demo_auth};
use crate::helpers::TestApp;

const T: Duration = Duration::from_secs(20);

fn token<'a>(who: &'a [(String, Option<String>)], name: &str) -> Option<&'a str> {
    who.iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, t)| t.as_deref())
}

#[tokio::test]
async fn repositories_follow_githubs_visibility_and_the_catalog() {
    let (app, who) = spawn_demo_auth().await;
    let q = r#"{
        secrets: repository(slug: "yourcompany/infra-secrets") { slug }
        gitops: repository(slug: "yourcompany/idp") { slug latestCommit { id } }
        private_team: repository(slug: "yourcompany/app-3") { slug visibility }
        public: repository(slug: "yourcompany/sample-app") { slug visibility }
        internal: repository(slug: "yourcompany/my-app") { slug visibility }
        platform: entity(ref: "component:default/argocd") { ... on Component { repository { slug } } }
        deployed: application(name: "sample-app") { sync { commit { sha } } }
    }"#;
    let alice = gql_as(&app, token(&who, "alice"), q).await;
    let d = &alice["data"];
    assert!(alice.get("errors").is_none(), "{alice}");
    for k in ["secrets", "gitops", "private_team", "public", "internal"] {
        assert!(d[k]["slug"].is_string(), "alice sees {k}: {d}");
    }
    assert_eq!(d["private_team"]["visibility"], "private");
    assert_eq!(d["public"]["visibility"], "public");
    assert_eq!(d["internal"]["visibility"], "internal");
    let gitops_commit = d["gitops"]["latestCommit"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // (persona, sees infra-secrets, idp, app-3, sample-app, my-app)
    let table = [
        ("carol", [false, false, true, true, true]),
        ("erin", [false, false, true, true, true]),
        // Anonymous sees my-app's application, which deploys from it.
        ("anonymous", [false, false, true, true, true]),
    ];
    for (persona, expected) in table {
        let body = gql_as(&app, token(&who, persona), q).await;
        let d = &body["data"];
        let seen: Vec<bool> = ["secrets", "gitops", "private_team", "public", "internal"]
            .iter()
            .map(|k| !d[k].is_null())
            .collect();
        assert_eq!(seen, expected, "{persona}: {body}");
        // A private repository through the catalog's join: the same null.
        assert!(
            d["platform"].is_null() || d["platform"]["repository"].is_null(),
            "{persona}: {body}"
        );
        // The GitOps repository's history by node id: as missing as a made-up one.
        let n = gql_as(
            &app,
            token(&who, persona),
            &format!(r#"{{ node(id: "{gitops_commit}") {{ id }} nodes(ids: ["{gitops_commit}"]) {{ id }} }}"#),
        )
        .await;
        assert!(n["data"]["node"].is_null(), "{persona}: {n}");
        assert_eq!(n["data"]["nodes"], json!([null]), "{persona}: {n}");
    }
    // Carol sees her team's repositories, and the commit her app deployed.
    let carol = gql_as(&app, token(&who, "carol"), q).await;
    assert_eq!(carol["data"]["private_team"]["slug"], "yourcompany/app-3");
    assert!(
        carol["data"]["deployed"]["sync"]["commit"]["sha"].is_string(),
        "{carol}"
    );
}

/// Reads until `connection_ack` (a subscribe before it would be refused).
async fn await_ack(ws: &mut crate::helpers::Ws) {
    loop {
        let m = tokio::time::timeout(T, ws.next())
            .await
            .expect("connection_ack in time")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(&t).unwrap();
            assert_ne!(v["type"], "connection_error", "{v}");
            if v["type"] == "connection_ack" {
                return;
            }
        }
    }
}

#[tokio::test]
async fn a_template_task_is_its_creators_and_platform_teams_on_every_door() {
    let (app, who) = spawn_demo_auth().await;
    let created = gql_as(
        &app,
        token(&who, "carol"),
        r#"mutation { createFromTemplate(input: {templateRef: "service-template", values: {name: "carols-svc", owner: "app-team"}}) { id taskId } }"#,
    )
    .await;
    let id = created["data"]["createFromTemplate"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("carol may create: {created}"))
        .to_string();
    let task_id = created["data"]["createFromTemplate"]["taskId"]
        .as_str()
        .unwrap()
        .to_string();
    let lookup = format!(r#"{{ node(id: "{id}") {{ id }} nodes(ids: ["{id}"]) {{ id }} }}"#);
    for (persona, sees) in [
        ("carol", true),
        ("alice", true),
        ("erin", false),
        ("anonymous", false),
    ] {
        let body = gql_as(&app, token(&who, persona), &lookup).await;
        assert_eq!(!body["data"]["node"].is_null(), sees, "{persona}: {body}");
        assert_eq!(
            !body["data"]["nodes"][0].is_null(),
            sees,
            "{persona}: {body}"
        );
        // The subscription door, by node id and by the scaffolder's task id.
        let q = "subscription($id: ID!) { templateTask(id: $id) { id type message } }";
        for door in [id.as_str(), task_id.as_str()] {
            let m = first_result(
                &app,
                "graphql-transport-ws",
                token(&who, persona),
                q,
                json!({"id": door}),
            )
            .await;
            if sees {
                assert!(m["errors"].is_null(), "{persona} follows the task: {m}");
                assert!(
                    m["data"]["templateTask"]["type"].is_string(),
                    "{persona}: {m}"
                );
            } else {
                // Exactly what a task that does not exist answers.
                let missing = first_result(
                    &app,
                    "graphql-transport-ws",
                    token(&who, persona),
                    q,
                    json!({"id": "no-such-task"}),
                )
                .await;
                assert_eq!(
                    m["errors"][0]["extensions"]["code"], "NOT_FOUND",
                    "{persona}: {m}"
                );
                assert_eq!(
                    m["errors"][0]["message"], missing["errors"][0]["message"],
                    "{persona}: hidden and missing alike"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_template_cannot_take_over_a_platform_app_or_its_namespace() {
    let (app, who) = spawn_demo_auth().await;
    let take_over = r#"mutation { createFromTemplate(input: {templateRef: "service-template", values: {name: "ingress-nginx"}}) { id } }"#;
    let erin = gql_as(&app, token(&who, "erin"), take_over).await;
    assert_eq!(crate::helpers::first_code(&erin), "FORBIDDEN", "{erin}");
    for persona in ["carol", "alice"] {
        let b = gql_as(&app, token(&who, persona), take_over).await;
        assert_eq!(crate::helpers::first_code(&b), "CONFLICT", "{persona}: {b}");
    }
    // A member still creates a new service.
    let fresh = gql_as(
        &app,
        token(&who, "carol"),
        r#"mutation { createFromTemplate(input: {templateRef: "service-template", values: {name: "carol-new"}}) { id } }"#,
    )
    .await;
    assert!(
        fresh["data"]["createFromTemplate"]["id"].is_string(),
        "{fresh}"
    );

    // The simulated ArgoCD refuses to replace an application with another spec, as
    // `argocd app create` without --upsert does; the same spec again is a no-op.
    let mut spec = idp_graph::demo::argocd::seed_apps(0)
        .into_iter()
        .find(|a| a.name == "ingress-nginx")
        .unwrap();
    assert_eq!(app.world.argocd.add_app(spec.clone()), Ok(()));
    spec.project = "applications".into();
    let refused = app.world.argocd.add_app(spec.clone()).unwrap_err();
    assert!(
        refused.contains("existing application spec is different"),
        "{refused}"
    );

    // Even an application that claims a platform namespace (its project denies it) grants
    // nothing there: carol sees and may touch nothing in ingress-nginx.
    spec.name = "claims-ingress".into();
    spec.labels.insert("team".into(), "app-team".into());
    app.world.argocd.add_app(spec).unwrap();
    let q = r#"{
        claim: application(name: "claims-ingress") { name project destinationPermitted }
        own: application(name: "sample-app") { destinationPermitted }
        namespaces { name }
        deployments(filter: {namespace: "ingress-nginx"}) { totalCount }
        pods(filter: {namespace: "ingress-nginx"}) { totalCount }
        secrets(filter: {namespace: "ingress-nginx"}) { totalCount }
    }"#;
    let carol = crate::helpers::wait_for("the claiming app in carol's view", T, || async {
        let b = gql_as(&app, token(&who, "carol"), q).await;
        (!b["data"]["claim"].is_null()).then_some(b)
    })
    .await;
    let d = &carol["data"];
    assert_eq!(d["claim"]["project"], "applications");
    assert_eq!(d["claim"]["destinationPermitted"], false, "{carol}");
    assert_eq!(d["own"]["destinationPermitted"], true);
    assert!(
        !d["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["name"] == "ingress-nginx"),
        "{carol}"
    );
    for k in ["deployments", "pods", "secrets"] {
        assert_eq!(d[k]["totalCount"], 0, "{k}: {carol}");
    }
    // Alice (platform-team) still sees the namespace's objects.
    let alice = gql_as(&app, token(&who, "alice"), q).await;
    assert!(
        alice["data"]["pods"]["totalCount"].as_u64().unwrap() > 0,
        "{alice}"
    );
}

/// The simulated scaffolder refuses a run whose catalog:register would take over an entity
/// ref another location owns, as Backstage does (ConflictError): the run fails.
#[tokio::test]
async fn the_scaffolder_fails_a_run_that_would_take_over_a_registered_entity() {
    let (app, _) = spawn_demo_auth().await;
    let base = app.world.backstage.url();
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{base}/api/scaffolder/v2/tasks"))
        .bearer_auth(idp_graph::demo::DEMO_TOKEN)
        .json(&json!({"templateRef": "template:default/service-template", "values": {"name": "ingress-nginx"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    let task = crate::helpers::wait_for("the run to end", T, || {
        let (http, url) = (http.clone(), format!("{base}/api/scaffolder/v2/tasks/{id}"));
        async move {
            let t: Value = http
                .get(url)
                .bearer_auth(idp_graph::demo::DEMO_TOKEN)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            matches!(t["status"].as_str(), Some("failed" | "completed")).then_some(t)
        }
    })
    .await;
    assert_eq!(task["status"], "failed", "{task}");
    // The platform's component and application are untouched.
    let apps = app.world.argocd.apps_json();
    assert_eq!(apps["ingress-nginx"]["spec"]["project"], "platform");
}

#[tokio::test]
async fn sources_count_only_what_the_caller_sees() {
    let (app, who) = spawn_demo_auth().await;
    let q = "{ sources { name kind objectCount } applications { totalCount } namespaces { name } }";
    let count = |b: &Value, kind: &str| {
        b["data"]["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["kind"] == kind)
            .map(|s| s["objectCount"].clone())
            .unwrap()
    };
    let alice = gql_as(&app, token(&who, "alice"), q).await;
    assert_eq!(count(&alice, "ARGOCD"), 8, "{alice}");
    for persona in ["carol", "erin", "anonymous"] {
        let b = gql_as(&app, token(&who, persona), q).await;
        assert_eq!(
            count(&b, "ARGOCD"),
            b["data"]["applications"]["totalCount"],
            "{persona}: {b}"
        );
        assert_eq!(count(&b, "ARGOCD"), 4, "{persona}: {b}");
        assert!(
            count(&b, "KUBERNETES").as_u64().unwrap()
                < count(&alice, "KUBERNETES").as_u64().unwrap(),
            "{persona}: {b}"
        );
        assert!(count(&b, "GITHUB").is_null(), "{persona}: {b}");
    }
}

#[tokio::test]
async fn upstream_urls_and_raw_text_reach_platform_team_only() {
    let (app, who) = spawn_demo_auth().await;
    let sync = |name: &str| {
        format!(
            r#"mutation {{ syncApplication(input: {{name: "{name}"}}) {{ auditId upstreamResponse }} }}"#
        )
    };
    // A sync that works: carol's copy of ArgoCD's answer names nobody; alice's is ArgoCD's own.
    let ok = gql_as(&app, token(&who, "carol"), &sync("app-3")).await;
    assert!(ok["data"]["syncApplication"]["auditId"].is_number(), "{ok}");
    let raw = ok["data"]["syncApplication"]["upstreamResponse"].to_string();
    assert!(
        !raw.contains("initiatedBy") && !raw.contains("username"),
        "{raw}"
    );
    let admin = gql_as(&app, token(&who, "alice"), &sync("app-2")).await;
    let admin_raw = admin["data"]["syncApplication"]["upstreamResponse"].to_string();
    assert!(admin_raw.contains("initiatedBy"), "{admin}");
    let sync = sync("my-app");

    // ArgoCD fails every request: the member gets a fixed sentence, the code, the source and
    // a request id; platform-team gets ArgoCD's own words.
    app.world.argocd.faults.set_error_rate(1.0);
    let carol = gql_as(&app, token(&who, "carol"), &sync).await;
    let e = &carol["errors"][0];
    let message = e["message"].as_str().unwrap();
    assert!(
        !message.contains("http://") && !message.contains("127.0.0.1"),
        "{carol}"
    );
    assert!(!carol.to_string().contains("answered HTTP"), "{carol}");
    assert_eq!(e["extensions"]["source"], "main", "{carol}");
    assert!(e["extensions"]["requestId"].is_string(), "{carol}");
    assert!(e["extensions"].get("detail").is_none(), "{carol}");
    let alice = gql_as(&app, token(&who, "alice"), &sync).await;
    assert!(
        alice["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("http://"),
        "{alice}"
    );
    app.world.argocd.faults.set_error_rate(0.0);
}

#[tokio::test]
async fn anonymous_callers_get_the_public_boundary_and_no_metrics() {
    let (app, who) = spawn_demo_auth().await;
    let q = "{ applications { nodes { name project } } namespaces { name } secrets(first: 1000) { nodes { namespace } } }";
    let anon = gql_as(&app, None, q).await;
    let d = &anon["data"];
    let projects: Vec<&str> = d["applications"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["project"].as_str().unwrap())
        .collect();
    assert_eq!(projects.len(), 4, "{anon}");
    assert!(projects.iter().all(|p| *p == "applications"), "{anon}");
    for platform in ["argocd", "ingress-nginx", "backstage"] {
        assert!(
            !anon
                .to_string()
                .contains(&format!("\"namespace\":\"{platform}\"")),
            "{platform}: {anon}"
        );
        assert!(
            !d["namespaces"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["name"] == platform),
            "{anon}"
        );
    }
    let metrics = |t: Option<String>| {
        let (http, url) = (app.http.clone(), format!("{}/metrics", app.url));
        async move {
            let mut r = http.get(url);
            if let Some(t) = t {
                r = r.bearer_auth(t);
            }
            r.send().await.unwrap().status().as_u16()
        }
    };
    assert_eq!(metrics(None).await, 401);
    assert_eq!(metrics(token(&who, "carol").map(str::to_string)).await, 403);
    assert_eq!(metrics(token(&who, "alice").map(str::to_string)).await, 200);
}

/// Carol's cursors while platform apps change: opaque, unlinkable, resumable on every
/// transport — and they do not count the events she may not see.
#[tokio::test]
async fn cursors_are_opaque_and_still_resume() {
    let (app, who) = spawn_demo_auth().await;
    let carol = token(&who, "carol").unwrap().to_string();
    let mut ws = tokio_tungstenite::connect_async({
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut r = format!("ws://{}/graphql/ws", app.addr)
            .into_client_request()
            .unwrap();
        r.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        r
    })
    .await
    .unwrap()
    .0;
    ws.send(Message::text(
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {carol}")}})
            .to_string(),
    ))
    .await
    .unwrap();
    await_ack(&mut ws).await;
    let q = "subscription($after: String, $initial: Boolean! = false) { applicationEvents(after: $after, initial: $initial) { cursor type application { name } } }";
    ws.send(Message::text(
        json!({"id": "a", "type": "subscribe", "payload": {"query": q, "variables": {"initial": true}}}).to_string(),
    ))
    .await
    .unwrap();
    // The initial states (carol's four apps) prove the subscription is live before anything
    // changes.
    for _ in 0..4 {
        let ev = crate::helpers::next_for(&mut ws, "a").await;
        assert_eq!(ev["data"]["applicationEvents"]["type"], "INITIAL", "{ev}");
    }
    // Platform apps change in between carol's own: she must not be able to tell.
    let mut cursors = Vec::new();
    for (i, health) in ["Degraded", "Healthy"].iter().enumerate() {
        for platform in ["argocd", "backstage"] {
            app.world.argocd.set_health(platform, health, None);
        }
        app.world
            .argocd
            .set_health("app-3", health, Some("cursor test"));
        let ev = crate::helpers::next_for(&mut ws, "a").await;
        let e = &ev["data"]["applicationEvents"];
        assert_eq!(e["application"]["name"], "app-3", "round {i}: {ev}");
        cursors.push(e["cursor"].as_str().unwrap().to_string());
    }
    for c in &cursors {
        assert!(!c.contains('-') || c.len() > 40, "opaque: {c}");
        assert!(c.parse::<u64>().is_err());
    }
    // Resuming from the first cursor replays carol's second event, on SSE too.
    let body = app
        .http
        .post(format!("{}/graphql/sse", app.url))
        .bearer_auth(&carol)
        .header("accept", "text/event-stream")
        .json(&json!({"query": q, "variables": {"after": cursors[0]}}))
        .send()
        .await
        .unwrap();
    let mut stream = body.bytes_stream();
    let mut text = String::new();
    let found = tokio::time::timeout(T, async {
        while let Some(chunk) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            if text.contains(&cursors[1]) || text.contains("RESYNC") {
                return true;
            }
            if text.contains("\"name\":\"app-3\"") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(found, "{text}");
    assert!(text.contains("\"name\":\"app-3\""), "{text}");
    assert!(!text.contains("\"name\":\"argocd\""), "{text}");
}

/// The first result of a subscription over `transport` (`graphql-transport-ws`, the legacy
/// `graphql-ws`, or `sse`), as `{data, errors}`: the door is the same on every transport.
async fn first_result(
    app: &TestApp,
    transport: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> Value {
    if transport == "sse" {
        let mut r = app
            .http
            .post(format!("{}/graphql/sse", app.url))
            .header("accept", "text/event-stream")
            .json(&json!({"query": query, "variables": variables}));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let mut body = r.send().await.unwrap().bytes_stream();
        let mut text = String::new();
        return tokio::time::timeout(T, async {
            loop {
                let chunk = body.next().await.expect("an event").unwrap();
                text.push_str(&String::from_utf8_lossy(&chunk));
                for line in text.lines() {
                    if let Some(data) = line.strip_prefix("data:") {
                        if let Ok(v) = serde_json::from_str::<Value>(data.trim()) {
                            if v.get("data").is_some() || v.get("errors").is_some() {
                                return json!({"data": v["data"], "errors": v["errors"]});
                            }
                        }
                    }
                }
            }
        })
        .await
        .expect("an SSE result in time");
    }
    let mut ws = crate::helpers::ws_connect_with(&app.addr.to_string(), transport).await;
    let payload = match token {
        Some(t) => json!({ "Authorization": format!("Bearer {t}") }),
        None => json!({}),
    };
    ws.send(Message::text(
        json!({"type": "connection_init", "payload": payload}).to_string(),
    ))
    .await
    .unwrap();
    await_ack(&mut ws).await;
    let start = if transport == "graphql-ws" {
        "start"
    } else {
        "subscribe"
    };
    ws.send(Message::text(
        json!({"id": "d", "type": start, "payload": {"query": query, "variables": variables}})
            .to_string(),
    ))
    .await
    .unwrap();
    loop {
        let m = tokio::time::timeout(T, ws.next())
            .await
            .expect("a result in time")
            .unwrap()
            .unwrap();
        let Message::Text(t) = m else { continue };
        let v: Value = serde_json::from_str(&t).unwrap();
        match v["type"].as_str() {
            Some("next" | "data") => {
                return json!({"data": v["payload"]["data"], "errors": v["payload"]["errors"]})
            }
            Some("error") => {
                let errors = if v["payload"].is_array() {
                    v["payload"].clone()
                } else {
                    json!([v["payload"]])
                };
                return json!({"data": null, "errors": errors});
            }
            _ => {}
        }
    }
}

const TRANSPORTS: [&str; 3] = ["graphql-transport-ws", "graphql-ws", "sse"];

#[tokio::test]
async fn another_callers_template_task_is_missing_on_every_subscription_transport() {
    let (app, who) = spawn_demo_auth().await;
    let created = gql_as(
        &app,
        token(&who, "alice"),
        r#"mutation { createFromTemplate(input: {templateRef: "service-template", values: {name: "alices-svc"}}) { id } }"#,
    )
    .await;
    let id = created["data"]["createFromTemplate"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let q = "subscription($id: ID!) { templateTask(id: $id) { id type message } }";
    for transport in TRANSPORTS {
        let mine = first_result(&app, transport, token(&who, "alice"), q, json!({"id": id})).await;
        assert!(
            mine["errors"].is_null(),
            "{transport}: alice follows hers: {mine}"
        );
        assert!(
            mine["data"]["templateTask"]["type"].is_string(),
            "{transport}: {mine}"
        );
        for persona in ["carol", "erin"] {
            let hidden =
                first_result(&app, transport, token(&who, persona), q, json!({"id": id})).await;
            let missing = first_result(
                &app,
                transport,
                token(&who, persona),
                q,
                json!({"id": "no-such-task"}),
            )
            .await;
            assert!(
                hidden["data"]["templateTask"].is_null(),
                "{transport} {persona}: {hidden}"
            );
            assert_eq!(
                hidden["errors"][0]["extensions"]["code"], "NOT_FOUND",
                "{transport} {persona}: {hidden}"
            );
            assert_eq!(
                hidden["errors"][0]["message"], missing["errors"][0]["message"],
                "{transport} {persona}: hidden and missing alike"
            );
        }
    }
}

#[tokio::test]
async fn repository_events_of_a_private_repository_reach_only_who_may_see_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("webhook-secret");
    std::fs::write(&path, "boundary-secret\n").unwrap();
    let app = crate::helpers::spawn_with(
        idp_graph::demo::DemoOptions {
            auth: true,
            ..idp_graph::demo::DemoOptions::for_tests()
        },
        move |s| {
            s.github.as_mut().unwrap().webhook_secret_file = Some(path);
        },
    )
    .await;
    app.world
        .github
        .register_webhook(&format!("{}/webhooks/github", app.url), "boundary-secret");
    let personas = app.world.persona_tokens();
    let tok = |n: &str| personas.iter().find(|p| p.0 == n).unwrap().2.clone();
    // A starting cursor: alice's first event of a push to the public repository (pushed again
    // until her subscription, registered at some point, hears one).
    let q = "subscription($after: String) { repositoryEvents(after: $after) { cursor type slug headMessage } }";
    let alice = tok("alice");
    let start = {
        let first = first_result(&app, "graphql-transport-ws", Some(&alice), q, json!({}));
        tokio::pin!(first);
        loop {
            app.world
                .github
                .push("yourcompany/sample-app", "warm up", "carol")
                .await;
            tokio::select! {
                r = &mut first => break r,
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
        }
    };
    let cursor = start["data"]["repositoryEvents"]["cursor"]
        .as_str()
        .unwrap()
        .to_string();
    // After it: a push to the private GitOps repository, then one to the public sample-app.
    app.world
        .github
        .push("yourcompany/idp", "rotate the platform's keys", "alice")
        .await;
    app.world
        .github
        .push("yourcompany/sample-app", "hello again", "carol")
        .await;
    // Replayed from that cursor on every transport: alice's next event is the GitOps repo's,
    // erin's is sample-app's — she never hears of the private one.
    for transport in TRANSPORTS {
        for (persona, expected, message) in [
            ("alice", "yourcompany/idp", "rotate the platform's keys"),
            ("erin", "yourcompany/sample-app", "hello again"),
        ] {
            let first = first_result(
                &app,
                transport,
                Some(&tok(persona)),
                q,
                json!({"after": cursor}),
            )
            .await;
            let e = &first["data"]["repositoryEvents"];
            assert_eq!(e["slug"], expected, "{transport} {persona}: {first}");
            assert_eq!(e["headMessage"], message, "{transport} {persona}: {first}");
        }
    }
}
