//! A simulated Kubernetes API server, faithful enough that real clients work against it
//! (`kubectl get`, `kubectl get -w`): legacy discovery (`/api`, `/apis`, `/api/v1`,
//! `/apis/{group}/{version}`), list with `labelSelector`, `fieldSelector` (`metadata.name`,
//! `metadata.namespace`), `limit`/`continue` and the list `resourceVersion`, get, and watch
//! (`watch=true`, `resourceVersion`, `allowWatchBookmarks`, `timeoutSeconds`) as newline-delimited
//! `{"type","object"}` lines. A watch from a resourceVersion older than the retained history is
//! answered **in-stream** with an `ERROR` event carrying the 410 `Expired` Status, as the real
//! API server does. Errors are `Status` objects. A bearer token is required when configured.
//!
//! Part of the Kubernetes issue: the kube-rs source and the graph are not built yet.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine as _;
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::faults::{self, Faults};
use crate::domain::selector::LabelSelector;

/// (group, version, resource, kind, namespaced, short names)
type ResourceInfo = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    &'static [&'static str],
);

const RESOURCES: &[ResourceInfo] = &[
    ("", "v1", "namespaces", "Namespace", false, &["ns"]),
    ("", "v1", "pods", "Pod", true, &["po"]),
    ("", "v1", "services", "Service", true, &["svc"]),
    ("", "v1", "configmaps", "ConfigMap", true, &["cm"]),
    ("", "v1", "secrets", "Secret", true, &[]),
    ("", "v1", "events", "Event", true, &["ev"]),
    ("apps", "v1", "deployments", "Deployment", true, &["deploy"]),
    ("apps", "v1", "replicasets", "ReplicaSet", true, &["rs"]),
    ("apps", "v1", "statefulsets", "StatefulSet", true, &["sts"]),
    ("apps", "v1", "daemonsets", "DaemonSet", true, &["ds"]),
    (
        "networking.k8s.io",
        "v1",
        "ingresses",
        "Ingress",
        true,
        &["ing"],
    ),
];

/// How many past changes a watch can resume from.
const HISTORY: usize = 1000;

type Key = (String, String, String); // resource, namespace ("" if cluster-scoped), name

struct Change {
    rv: u64,
    kind: &'static str,
    resource: String,
    object: Value,
}

struct Store {
    rv: u64,
    items: BTreeMap<Key, Value>,
    history: VecDeque<Arc<Change>>,
}

struct Inner {
    /// `None`: no authentication, like the API server's old insecure HTTP port (client-go
    /// sends bearer tokens only over TLS, so kubectl against plain HTTP needs this).
    token: Option<String>,
    store: Mutex<Store>,
    changes: broadcast::Sender<Arc<Change>>,
}

#[derive(Clone)]
pub struct KubeSim {
    addr: std::net::SocketAddr,
    pub faults: Arc<Faults>,
    inner: Arc<Inner>,
}

fn api_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

fn status(code: u16, reason: &str, message: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": message, "reason": reason, "code": code});
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, "application/json")],
        format!("{body}\n"),
    )
        .into_response()
}

impl Inner {
    fn apply(&self, kind: &'static str, resource: &str, mut object: Value) -> Value {
        let mut s = self.store.lock();
        s.rv += 1;
        let rv = s.rv;
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        let ns = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let key = (resource.to_string(), ns, name);
        if kind == "DELETED" {
            s.items.remove(&key);
        } else {
            s.items.insert(key, object.clone());
        }
        let change = Arc::new(Change {
            rv,
            kind,
            resource: resource.to_string(),
            object: object.clone(),
        });
        if s.history.len() == HISTORY {
            s.history.pop_front();
        }
        s.history.push_back(change.clone());
        let _ = self.changes.send(change);
        object
    }
}

fn meta(name: &str, ns: Option<&str>, labels: Value) -> Value {
    let mut m = json!({"name": name, "uid": uuid::Uuid::new_v4().to_string(),
        "creationTimestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true), "labels": labels});
    if let Some(ns) = ns {
        m["namespace"] = json!(ns);
    }
    m
}

/// The seed's cluster: namespaces and, per app, a Deployment, its ReplicaSet and pods, a
/// Service, a ConfigMap and a Secret.
pub fn seed_objects(apps: &[&str]) -> Vec<(&'static str, Value)> {
    let mut out = Vec::new();
    for ns in ["default", "kube-system"].iter().chain(apps.iter()) {
        out.push(("namespaces", json!({"metadata": meta(ns, None, json!({"kubernetes.io/metadata.name": ns})), "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})));
    }
    for app in apps {
        let labels = json!({"app.kubernetes.io/name": app, "app.kubernetes.io/instance": app, "backstage.io/kubernetes-id": app});
        let image = format!("registry.yourcompany.example/{app}:1.4.2");
        let rs = format!("{app}-5d9c7b8f6");
        out.push(("deployments", json!({"metadata": meta(app, Some(app), labels.clone()),
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app.kubernetes.io/name": app}},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": app, "image": image, "ports": [{"containerPort": 8080}]}]}}},
            "status": {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2,
                       "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                                      {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}})));
        let mut rs_meta = meta(&rs, Some(app), labels.clone());
        rs_meta["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": app, "controller": true}]);
        out.push(("replicasets", json!({"metadata": rs_meta, "spec": {"replicas": 2}, "status": {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2}})));
        for suffix in ["x7k2p", "q9v4m"] {
            let mut m = meta(&format!("{rs}-{suffix}"), Some(app), labels.clone());
            m["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs, "controller": true}]);
            out.push(("pods", json!({"metadata": m,
                "spec": {"nodeName": "demo-node-1", "containers": [{"name": app, "image": image}]},
                "status": {"phase": "Running", "podIP": "10.244.0.10", "conditions": [{"type": "Ready", "status": "True"}],
                           "containerStatuses": [{"name": app, "ready": true, "restartCount": 0, "image": image, "state": {"running": {"startedAt": "2026-11-26T00:00:00Z"}}}]}})));
        }
        out.push(("services", json!({"metadata": meta(app, Some(app), labels.clone()),
            "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.20", "selector": {"app.kubernetes.io/name": app}, "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}})));
        out.push(("configmaps", json!({"metadata": meta(&format!("{app}-config"), Some(app), labels.clone()), "data": {"LOG_LEVEL": "info", "FEATURE_X": "on"}})));
        out.push(("secrets", json!({"metadata": meta(&format!("{app}-db"), Some(app), labels.clone()), "type": "Opaque",
            "data": {"password": base64::engine::general_purpose::STANDARD.encode(format!("s3cr3t-{app}"))}})));
    }
    out
}

impl KubeSim {
    pub async fn start(
        objects: Vec<(&'static str, Value)>,
        token: Option<&str>,
        shutdown: CancellationToken,
    ) -> std::io::Result<Self> {
        let (changes, _) = broadcast::channel(1024);
        let inner = Arc::new(Inner {
            token: token.map(str::to_string),
            store: Mutex::new(Store {
                rv: 100,
                items: BTreeMap::new(),
                history: VecDeque::new(),
            }),
            changes,
        });
        for (resource, obj) in objects {
            inner.apply("ADDED", resource, obj);
        }
        let faults = Arc::new(Faults::default());
        let router = Router::new().fallback(handle).with_state(inner.clone());
        let addr = faults::serve(router, faults.clone(), shutdown).await?;
        Ok(Self {
            addr,
            faults,
            inner,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Creates or replaces an object (`resource` is the plural, e.g. `pods`).
    pub fn upsert(&self, resource: &str, object: Value) -> Value {
        let ns = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let exists = self
            .inner
            .store
            .lock()
            .items
            .contains_key(&(resource.to_string(), ns, name));
        self.inner
            .apply(if exists { "MODIFIED" } else { "ADDED" }, resource, object)
    }

    pub fn delete(&self, resource: &str, namespace: &str, name: &str) -> bool {
        let obj = self
            .inner
            .store
            .lock()
            .items
            .get(&(
                resource.to_string(),
                namespace.to_string(),
                name.to_string(),
            ))
            .cloned();
        match obj {
            Some(o) => {
                self.inner.apply("DELETED", resource, o);
                true
            }
            None => false,
        }
    }

    pub fn get(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        self.inner
            .store
            .lock()
            .items
            .get(&(
                resource.to_string(),
                namespace.to_string(),
                name.to_string(),
            ))
            .cloned()
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.inner.store.lock().rv
    }
}

fn check_token(inner: &Inner, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let Some(token) = &inner.token else {
        return Ok(());
    };
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match auth.and_then(|a| a.strip_prefix("Bearer ")) {
        Some(t) if t == token => Ok(()),
        _ => Err(Box::new(status(401, "Unauthorized", "Unauthorized"))),
    }
}

fn discovery_list(group: &str, version: &str) -> Value {
    let resources: Vec<Value> = RESOURCES
        .iter()
        .filter(|r| r.0 == group && r.1 == version)
        .map(|(_, _, res, kind, namespaced, short)| {
            let verbs = if *res == "deployments" { json!(["get", "list", "watch", "patch"]) } else { json!(["get", "list", "watch"]) };
            json!({"name": res, "singularName": kind.to_lowercase(), "namespaced": namespaced, "kind": kind, "verbs": verbs, "shortNames": short})
        })
        .collect();
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": api_version(group, version), "resources": resources})
}

struct Target<'a> {
    group: &'a str,
    version: &'a str,
    resource: &'a str,
    kind: &'a str,
    namespace: Option<String>,
    name: Option<String>,
}

/// Parses `/api/v1/...` and `/apis/{g}/{v}/...` paths.
fn target(path: &str) -> Option<Target<'static>> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    let (ns, res, name) = match rest {
        ["namespaces", ns, res, name] => (Some(ns.to_string()), *res, Some(name.to_string())),
        ["namespaces", ns, res] => (Some(ns.to_string()), *res, None),
        ["namespaces", name] => (None, "namespaces", Some(name.to_string())),
        [res, name] => (None, *res, Some(name.to_string())),
        [res] => (None, *res, None),
        _ => return None,
    };
    let r = RESOURCES
        .iter()
        .find(|r| r.0 == group && r.1 == version && r.2 == res)?;
    Some(Target {
        group: r.0,
        version: r.1,
        resource: r.2,
        kind: r.3,
        namespace: ns,
        name,
    })
}

fn field_matches(selector: &str, obj: &Value) -> bool {
    selector.split(',').filter(|p| !p.is_empty()).all(|part| {
        let (k, v, neg) = match part.split_once("!=") {
            Some((k, v)) => (k, v, true),
            None => match part.split_once('=') {
                Some((k, v)) => (k, v.trim_start_matches('='), false),
                None => return false,
            },
        };
        let have = match k.trim() {
            "metadata.name" => obj.pointer("/metadata/name"),
            "metadata.namespace" => obj.pointer("/metadata/namespace"),
            _ => return false,
        }
        .and_then(Value::as_str)
        .unwrap_or("");
        (have == v.trim()) != neg
    })
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(r) = check_token(&inner, &headers) {
        return *r;
    }
    let path = uri.path();
    let json_ok =
        |v: Value| ([(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response();
    match path.trim_end_matches('/') {
        "/version" => {
            return json_ok(
                json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0-idp-graph-sim", "platform": "linux/amd64"}),
            )
        }
        "/api" => {
            return json_ok(
                json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}),
            )
        }
        "/apis" => {
            let groups: Vec<Value> = ["apps", "networking.k8s.io"]
                .iter()
                .map(|g| json!({"name": g, "versions": [{"groupVersion": format!("{g}/v1"), "version": "v1"}], "preferredVersion": {"groupVersion": format!("{g}/v1"), "version": "v1"}}))
                .collect();
            return json_ok(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}));
        }
        "/api/v1" => return json_ok(discovery_list("", "v1")),
        "/apis/apps/v1" => return json_ok(discovery_list("apps", "v1")),
        "/apis/networking.k8s.io/v1" => return json_ok(discovery_list("networking.k8s.io", "v1")),
        _ => {}
    }
    let Some(t) = target(path) else {
        return status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
    };
    let q: Vec<(String, String)> =
        url::form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let param = |k: &str| q.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    if method == Method::PATCH {
        return status(
            405,
            "MethodNotAllowed",
            "patch is not supported by this simulation yet",
        );
    }
    if method != Method::GET {
        return status(
            405,
            "MethodNotAllowed",
            &format!("{} is not supported", method),
        );
    }
    let label_sel = match param("labelSelector")
        .as_deref()
        .map(LabelSelector::parse)
        .transpose()
    {
        Ok(s) => s,
        Err(e) => {
            return status(
                400,
                "BadRequest",
                &format!("unable to parse requirement: {e}"),
            )
        }
    };
    let field_sel = param("fieldSelector").unwrap_or_default();
    let ns_of = |o: &Value| {
        o.pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let matches = |o: &Value| {
        t.namespace.as_deref().is_none_or(|n| ns_of(o) == n)
            && label_sel.as_ref().is_none_or(|s| {
                let labels: BTreeMap<String, String> = o
                    .pointer("/metadata/labels")
                    .and_then(|l| serde_json::from_value(l.clone()).ok())
                    .unwrap_or_default();
                s.matches(&labels)
            })
            && field_matches(&field_sel, o)
    };
    let api_v = api_version(t.group, t.version);
    let with_kind = |mut o: Value| {
        o["kind"] = json!(t.kind);
        o["apiVersion"] = json!(api_v);
        o
    };
    if let Some(name) = &t.name {
        let ns = if t.resource == "namespaces" {
            String::new()
        } else {
            t.namespace.clone().unwrap_or_default()
        };
        return match inner
            .store
            .lock()
            .items
            .get(&(t.resource.to_string(), ns, name.clone()))
        {
            Some(o) => json_ok(with_kind(o.clone())),
            None => status(
                404,
                "NotFound",
                &format!(
                    "{}{} \"{name}\" not found",
                    t.resource,
                    if t.group.is_empty() {
                        String::new()
                    } else {
                        format!(".{}", t.group)
                    }
                ),
            ),
        };
    }
    let watching = matches!(param("watch").as_deref(), Some("true" | "1"));
    if !watching {
        let s = inner.store.lock();
        let mut items: Vec<Value> = s
            .items
            .iter()
            .filter(|(k, _)| k.0 == t.resource)
            .map(|(_, o)| o)
            .filter(|o| matches(o))
            .cloned()
            .collect();
        let limit = param("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|l| *l > 0);
        let start = match param("continue") {
            Some(c) => match base64::engine::general_purpose::STANDARD
                .decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.parse::<usize>().ok())
            {
                Some(n) => n,
                None => return status(400, "BadRequest", "continue key is not valid"),
            },
            None => 0,
        };
        let total = items.len();
        let mut cont = None;
        if let Some(l) = limit {
            let end = (start + l).min(total);
            items = items.drain(start.min(total)..end).collect();
            if end < total {
                cont = Some(base64::engine::general_purpose::STANDARD.encode(end.to_string()));
            }
        }
        let mut meta = json!({"resourceVersion": s.rv.to_string()});
        if let Some(c) = cont {
            meta["continue"] = json!(c);
            meta["remainingItemCount"] = json!(total - start - items.len());
        }
        return json_ok(
            json!({"kind": format!("{}List", t.kind), "apiVersion": api_v, "metadata": meta, "items": items}),
        );
    }
    // Watch.
    let from: Option<u64> = param("resourceVersion")
        .and_then(|v| v.parse().ok())
        .filter(|v| *v > 0);
    let bookmarks = param("allowWatchBookmarks").as_deref() == Some("true");
    let timeout = param("timeoutSeconds")
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs);
    let (first, mut rx) = {
        let s = inner.store.lock();
        let rx = inner.changes.subscribe();
        let oldest = s.history.front().map(|c| c.rv).unwrap_or(s.rv);
        let first: Result<Vec<(String, Value)>, u64> = match from {
            Some(rv) if rv + 1 < oldest => Err(rv),
            Some(rv) => Ok(s
                .history
                .iter()
                .filter(|c| c.rv > rv && c.resource == t.resource && matches(&c.object))
                .map(|c| (c.kind.to_string(), c.object.clone()))
                .collect()),
            None => Ok(s
                .items
                .iter()
                .filter(|(k, _)| k.0 == t.resource)
                .map(|(_, o)| o)
                .filter(|o| matches(o))
                .map(|o| ("ADDED".to_string(), o.clone()))
                .collect()),
        };
        (first.map_err(|rv| (rv, oldest)), rx)
    };
    let (tx, body_rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(64);
    let resource = t.resource.to_string();
    let (kind, api_v2) = (t.kind.to_string(), api_v.clone());
    let ns_filter = t.namespace.clone();
    let (live_labels, live_fields) = (label_sel.clone(), field_sel.clone());
    tokio::spawn(async move {
        let line =
            |ty: &str, obj: Value| Bytes::from(format!("{}\n", json!({"type": ty, "object": obj})));
        let add_kind = |mut o: Value| {
            o["kind"] = json!(kind);
            o["apiVersion"] = json!(api_v2);
            o
        };
        match first {
            Err((rv, oldest)) => {
                let st = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": format!("too old resource version: {rv} ({oldest})"), "reason": "Expired", "code": 410});
                let _ = tx.send(Ok(line("ERROR", st))).await;
                return;
            }
            Ok(events) => {
                for (ty, o) in events {
                    if tx.send(Ok(line(&ty, add_kind(o)))).await.is_err() {
                        return;
                    }
                }
            }
        }
        let deadline = timeout.map(|d| tokio::time::Instant::now() + d);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut last_rv = 0u64;
        loop {
            let sleep_until =
                deadline.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            let out = tokio::select! {
                _ = tokio::time::sleep_until(sleep_until) => return,
                _ = tick.tick(), if bookmarks => {
                    if last_rv == 0 { continue; }
                    line("BOOKMARK", json!({"kind": kind, "apiVersion": api_v2, "metadata": {"resourceVersion": last_rv.to_string()}}))
                }
                c = rx.recv() => match c {
                    Ok(c) => {
                        last_rv = c.rv;
                        if c.resource != resource { continue; }
                        let ns = c.object.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("");
                        if ns_filter.as_deref().is_some_and(|n| n != ns) { continue; }
                        let labels: BTreeMap<String, String> = c.object.pointer("/metadata/labels")
                            .and_then(|l| serde_json::from_value(l.clone()).ok()).unwrap_or_default();
                        if live_labels.as_ref().is_some_and(|s| !s.matches(&labels)) || !field_matches(&live_fields, &c.object) {
                            continue;
                        }
                        line(c.kind, add_kind(c.object.clone()))
                    }
                    // Fell behind the history: the client must re-list, as with a 410.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let st = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": "too old resource version", "reason": "Expired", "code": 410});
                        let _ = tx.send(Ok(line("ERROR", st))).await;
                        return;
                    }
                    Err(_) => return,
                },
            };
            if tx.send(Ok(out)).await.is_err() {
                return;
            }
        }
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(body_rx)),
    )
        .into_response()
}
