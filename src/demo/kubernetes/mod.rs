//! A simulated Kubernetes API server, faithful enough that real clients work against it
//! (`kubectl get`, `kubectl get -w`): legacy discovery (`/api`, `/apis`, `/api/v1`,
//! `/apis/{group}/{version}`), list with `labelSelector`, `fieldSelector` (the labels the real
//! API server supports per resource — e.g. pods' `status.phase` / `spec.nodeName`, events'
//! `involvedObject.*` — others refused with its 400), `limit`/`continue` and the list `resourceVersion`, get, and watch
//! (`watch=true`, `resourceVersion`, `allowWatchBookmarks`, `timeoutSeconds`) as newline-delimited
//! `{"type","object"}` lines. A watch from a resourceVersion older than the retained history is
//! answered **in-stream** with an `ERROR` event carrying the 410 `Expired` Status, as the real
//! API server does. Errors are `Status` objects. A bearer token is required when configured.
//!
//! Part of the Kubernetes issue: the kube-rs source and the graph are not built yet.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
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

mod table;

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

/// The API server's default `--event-ttl`.
const EVENT_TTL: Duration = Duration::from_secs(3600);

/// `spec.revisionHistoryLimit`'s default: old ReplicaSets a Deployment keeps.
const REVISION_HISTORY_LIMIT: usize = 10;

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
    /// Cancelled (and replaced) to cut every open watch.
    cut: Mutex<CancellationToken>,
    /// The simulated controller's pace: one rollout step (a pod started, one retired).
    step: Mutex<Duration>,
    /// How long a recorded Event lives (the API server's `--event-ttl`, 1 h by default), and
    /// the recorded Events by expiry, oldest first.
    event_ttl: Mutex<Duration>,
    events_due: Mutex<VecDeque<(std::time::Instant, String, String)>>,
    /// Watches answered with the in-stream `410 Expired`.
    expired: std::sync::atomic::AtomicU64,
    /// List requests served (pages count one each).
    lists: std::sync::atomic::AtomicU64,
    /// Watch requests answered.
    watches: std::sync::atomic::AtomicU64,
    /// Impersonated writes seen (`Impersonate-User`, `Impersonate-Group`s), and the users the
    /// cluster's RBAC refuses to let patch (a stand-in for RoleBindings).
    impersonation: Mutex<Impersonation>,
}

/// Impersonated writes seen (user, groups), and the users refused.
#[derive(Default)]
struct Impersonation {
    seen: Vec<(String, Vec<String>)>,
    denied: BTreeSet<String>,
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

/// The Status an expired watch ends with, in-stream.
fn expired_status(message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": "Expired", "code": 410})
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
    fn drop_watches(&self) {
        let mut cut = self.cut.lock();
        cut.cancel();
        *cut = CancellationToken::new();
    }

    /// Forgets the change history, as etcd compaction does; other writes move the cluster's
    /// resourceVersion on meanwhile.
    /// Deletes the recorded Events whose time is up.
    fn expire_events(&self) {
        let now = std::time::Instant::now();
        loop {
            let due = {
                let mut q = self.events_due.lock();
                match q.front() {
                    Some((at, _, _)) if *at <= now => q.pop_front(),
                    _ => None,
                }
            };
            let Some((_, ns, name)) = due else { return };
            let key = ("events".to_string(), ns, name);
            let gone = self.store.lock().items.get(&key).cloned();
            if let Some(o) = gone {
                self.apply("DELETED", "events", o);
            }
        }
    }

    fn compact(&self) {
        let mut s = self.store.lock();
        s.history.clear();
        s.rv += 1;
    }

    fn apply(&self, kind: &'static str, resource: &str, mut object: Value) -> Value {
        let mut s = self.store.lock();
        s.rv += 1;
        let rv = s.rv;
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        let ns = text(&object, "/metadata/namespace").to_string();
        let name = text(&object, "/metadata/name").to_string();
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

/// The string at a JSON pointer, "" when absent.
fn text<'a>(o: &'a Value, pointer: &str) -> &'a str {
    o.pointer(pointer).and_then(Value::as_str).unwrap_or("")
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
/// A container's `imageID` as the kubelet reports it once the image is pulled: the image by
/// digest (empty while it is still being created, as the API server sends it).
fn image_id(image: &str) -> String {
    use sha2::Digest;
    let repo = image.split(':').next().unwrap_or(image);
    let digest: String = sha2::Sha256::digest(image.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{repo}@sha256:{digest}")
}

/// A running container's `containerID` (`containerd://<64 hex>`).
fn container_id(pod: &str) -> String {
    use sha2::Digest;
    let digest: String = sha2::Sha256::digest(pod.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("containerd://{digest}")
}

pub fn seed_objects(apps: &[&str]) -> Vec<(&'static str, Value)> {
    let mut out = Vec::new();
    for ns in ["default", "kube-system"].iter().chain(apps.iter()) {
        out.push(("namespaces", json!({"metadata": meta(ns, None, json!({"kubernetes.io/metadata.name": ns})), "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})));
    }
    for app in apps {
        let labels = json!({"app.kubernetes.io/name": app, "app.kubernetes.io/instance": app, "backstage.io/kubernetes-id": app});
        let image = format!("registry.yourcompany.example/{app}:1.4.2");
        let rs = format!("{app}-5d9c7b8f6");
        let mut dmeta = meta(app, Some(app), labels.clone());
        dmeta["generation"] = json!(1);
        dmeta["annotations"] = json!({"deployment.kubernetes.io/revision": "1"});
        let mut pod_labels = labels.clone();
        pod_labels["pod-template-hash"] = json!("5d9c7b8f6");
        out.push(("deployments", json!({"metadata": dmeta.clone(),
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app.kubernetes.io/name": app}},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": app, "image": image, "ports": [{"containerPort": 8080}]}]}}},
            "status": {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2,
                       "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                                      {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}})));
        let mut rs_meta = meta(&rs, Some(app), pod_labels.clone());
        rs_meta["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": app, "uid": dmeta["uid"], "controller": true, "blockOwnerDeletion": true}]);
        let rs_uid = rs_meta["uid"].clone();
        rs_meta["annotations"] = json!({"deployment.kubernetes.io/revision": "1"});
        out.push(("replicasets", json!({"metadata": rs_meta, "spec": {"replicas": 2, "selector": {"matchLabels": pod_labels}, "template": {"metadata": {"labels": pod_labels}, "spec": {"containers": [{"name": app, "image": image}]}}}, "status": {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2}})));
        for suffix in ["x7k2p", "q9v4m"] {
            let mut m = meta(&format!("{rs}-{suffix}"), Some(app), pod_labels.clone());
            m["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs, "uid": rs_uid, "controller": true, "blockOwnerDeletion": true}]);
            out.push(("pods", json!({"metadata": m,
                "spec": {"nodeName": "demo-node-1", "containers": [{"name": app, "image": image}]},
                "status": {"phase": "Running", "podIP": "10.244.0.10", "conditions": [{"type": "Ready", "status": "True"}],
                           "containerStatuses": [{"name": app, "ready": true, "restartCount": 0, "image": image, "imageID": image_id(&image),
                                              "containerID": container_id(&format!("{rs}-{suffix}")), "started": true, "state": {"running": {"startedAt": "2026-11-26T00:00:00Z"}}}]}})));
        }
        out.push(("services", json!({"metadata": meta(app, Some(app), labels.clone()),
            "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.20", "selector": {"app.kubernetes.io/name": app}, "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}})));
        out.push(("configmaps", json!({"metadata": meta(&format!("{app}-config"), Some(app), labels.clone()), "data": {"LOG_LEVEL": "info", "FEATURE_X": "on"}})));
        out.push(("secrets", json!({"metadata": meta(&format!("{app}-db"), Some(app), labels.clone()), "type": "Opaque",
            "data": {"password": base64::engine::general_purpose::STANDARD.encode(format!("s3cr3t-{app}"))}})));
    }
    out
}

/// `managedFields` as a real API server writes them for an object two managers touched.
fn managed_fields(kind_fields: Value) -> Value {
    json!([
        {"apiVersion": "v1", "fieldsType": "FieldsV1", "manager": "kubectl-client-side-apply", "operation": "Update",
         "time": "2026-11-20T10:00:00Z", "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}},
                                                                     "f:labels": {".": {}, "f:app.kubernetes.io/name": {}, "f:app.kubernetes.io/instance": {}}},
                                                       "f:spec": kind_fields}},
        {"apiVersion": "v1", "fieldsType": "FieldsV1", "manager": "kube-controller-manager", "operation": "Update", "subresource": "status",
         "time": "2026-11-20T10:00:05Z", "fieldsV1": {"f:status": {"f:conditions": {".": {}, "k:{\"type\":\"Ready\"}": {".": {}, "f:lastProbeTime": {}, "f:lastTransitionTime": {}, "f:status": {}, "f:type": {}},
                                                                                  "k:{\"type\":\"Available\"}": {".": {}, "f:lastTransitionTime": {}, "f:message": {}, "f:reason": {}, "f:status": {}, "f:type": {}}},
                                                                   "f:observedGeneration": {}, "f:readyReplicas": {}, "f:replicas": {}, "f:phase": {}, "f:podIP": {}, "f:startTime": {}}}}
    ])
}

/// `deployments` Deployments (with a ReplicaSet and `pods_each` pods each) over 100 namespaces,
/// carrying `managedFields` and the last-applied annotation like objects applied with kubectl.
pub fn bulk_objects(deployments: usize, pods_each: usize) -> Vec<(&'static str, Value)> {
    let mut out = Vec::new();
    if deployments == 0 {
        return out;
    }
    let spec_fields = json!({"f:replicas": {}, "f:selector": {}, "f:strategy": {"f:rollingUpdate": {".": {}, "f:maxSurge": {}, "f:maxUnavailable": {}}, "f:type": {}},
        "f:template": {"f:metadata": {"f:labels": {".": {}, "f:app.kubernetes.io/name": {}}}, "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {}, "f:ports": {}, "f:resources": {}}}}}});
    let namespaces = deployments.min(100);
    for n in 0..namespaces {
        let ns = format!("ns-{n:03}");
        out.push(("namespaces", json!({"metadata": meta(&ns, None, json!({"kubernetes.io/metadata.name": ns})), "status": {"phase": "Active"}})));
    }
    for i in 0..deployments {
        let ns = format!("ns-{:03}", i % namespaces);
        let name = format!("svc-{i:05}");
        let labels = json!({"app.kubernetes.io/name": name, "app.kubernetes.io/instance": name});
        let image = format!("registry.yourcompany.example/{name}:1.0.{i}");
        let container = json!({"name": "app", "image": image, "imagePullPolicy": "IfNotPresent", "ports": [{"containerPort": 8080, "protocol": "TCP"}],
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}}, "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"});
        let spec = json!({"replicas": pods_each, "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}});
        let last_applied = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns, "labels": labels}, "spec": spec}).to_string();
        let mut m = meta(&name, Some(&ns), labels.clone());
        m["generation"] = json!(1);
        m["annotations"] = json!({"kubectl.kubernetes.io/last-applied-configuration": last_applied, "deployment.kubernetes.io/revision": "1"});
        m["managedFields"] = managed_fields(spec_fields.clone());
        let duid = m["uid"].clone();
        out.push(("deployments", json!({"metadata": m, "spec": spec,
            "status": {"observedGeneration": 1, "replicas": pods_each, "updatedReplicas": pods_each, "readyReplicas": pods_each, "availableReplicas": pods_each,
                       "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}, {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}})));
        let rs = format!("{name}-7c9d8f6b5");
        let mut rm = meta(&rs, Some(&ns), labels.clone());
        rm["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": duid, "controller": true, "blockOwnerDeletion": true}]);
        rm["managedFields"] =
            managed_fields(json!({"f:replicas": {}, "f:selector": {}, "f:template": {}}));
        let rsuid = rm["uid"].clone();
        out.push(("replicasets", json!({"metadata": rm, "spec": {"replicas": pods_each, "selector": {"matchLabels": labels}}, "status": {"replicas": pods_each, "readyReplicas": pods_each}})));
        for p in 0..pods_each {
            let mut pm = meta(&format!("{rs}-p{p:04}"), Some(&ns), labels.clone());
            pm["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs, "uid": rsuid, "controller": true, "blockOwnerDeletion": true}]);
            pm["managedFields"] = managed_fields(
                json!({"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:name": {}, "f:ports": {}, "f:resources": {}}}, "f:nodeName": {}}),
            );
            out.push(("pods", json!({"metadata": pm,
                "spec": {"nodeName": format!("node-{}", p % 20), "containers": [container], "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "serviceAccountName": "default"},
                "status": {"phase": "Running", "podIP": format!("10.{}.{}.{}", i / 250 % 250, i % 250, p + 2), "hostIP": "192.168.0.10", "startTime": "2026-11-20T10:00:05Z",
                           "conditions": [{"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"}, {"type": "PodScheduled", "status": "True"}],
                           "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "image": image, "imageID": format!("registry.yourcompany.example/{name}@sha256:{:064x}", i),
                                                  "containerID": format!("containerd://{:064x}", i * 100 + p), "state": {"running": {"startedAt": "2026-11-20T10:00:05Z"}}}]}})));
        }
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
            cut: Mutex::new(CancellationToken::new()),
            step: Mutex::new(Duration::from_millis(500)),
            event_ttl: Mutex::new(EVENT_TTL),
            events_due: Default::default(),
            expired: Default::default(),
            lists: Default::default(),
            watches: Default::default(),
            impersonation: Default::default(),
        });
        for (resource, obj) in objects {
            inner.apply("ADDED", resource, obj);
        }
        // Expired Events are deleted (watchers see `DELETED`), as etcd's leases do.
        {
            let inner = Arc::downgrade(&inner);
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                    match inner.upgrade() {
                        Some(inner) => inner.expire_events(),
                        None => return,
                    }
                }
            });
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

    /// The impersonated writes seen so far: (user, groups), oldest first.
    pub fn impersonations(&self) -> Vec<(String, Vec<String>)> {
        self.inner.impersonation.lock().seen.clone()
    }

    /// Makes the cluster's RBAC refuse patches by this (impersonated) user, as a missing
    /// RoleBinding would.
    pub fn deny_patches_by(&self, user: &str) {
        self.inner
            .impersonation
            .lock()
            .denied
            .insert(user.to_string());
    }

    /// Creates or replaces an object (`resource` is the plural, e.g. `pods`).
    pub fn upsert(&self, resource: &str, object: Value) -> Value {
        let ns = text(&object, "/metadata/namespace").to_string();
        let name = text(&object, "/metadata/name").to_string();
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

/// One `fieldSelector` requirement: (field, value, negated).
type FieldRequirement = (String, String, bool);

/// The field labels the real API server accepts for a resource (every resource: the name and
/// namespace; pods, events, secrets, namespaces and ReplicaSets: their own), with the value an
/// object has for one. `None`: the API server would refuse the label.
fn field_value(resource: &str, field: &str, o: &Value) -> Option<String> {
    let at = |p: &str| -> String {
        match o.pointer(p) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(v) => v.to_string(),
        }
    };
    let v = match (resource, field) {
        (_, "metadata.name") => at("/metadata/name"),
        (_, "metadata.namespace") => at("/metadata/namespace"),
        ("pods", "spec.nodeName") => at("/spec/nodeName"),
        ("pods", "spec.restartPolicy") => at("/spec/restartPolicy"),
        ("pods", "spec.schedulerName") => at("/spec/schedulerName"),
        ("pods", "spec.serviceAccountName") => at("/spec/serviceAccountName"),
        ("pods", "spec.hostNetwork") => match o.pointer("/spec/hostNetwork") {
            Some(Value::Bool(true)) => "true".into(),
            _ => "false".into(),
        },
        ("pods", "status.phase") => at("/status/phase"),
        ("pods", "status.podIP") => at("/status/podIP"),
        ("pods", "status.nominatedNodeName") => at("/status/nominatedNodeName"),
        ("events", f) if f.starts_with("involvedObject.") => at(&format!(
            "/involvedObject/{}",
            &f["involvedObject.".len()..]
        )),
        ("events", "reason") => at("/reason"),
        ("events", "reportingComponent") => at("/reportingComponent"),
        ("events", "source") => at("/source/component"),
        ("events", "type") => at("/type"),
        ("secrets", "type") => at("/type"),
        ("namespaces", "status.phase") => at("/status/phase"),
        ("replicasets", "status.replicas") => at("/status/replicas"),
        _ => return None,
    };
    Some(v)
}

const INVOLVED_OBJECT_FIELDS: [&str; 7] = [
    "kind",
    "namespace",
    "name",
    "uid",
    "apiVersion",
    "resourceVersion",
    "fieldPath",
];

/// Parses a `fieldSelector` as the API server does: `a=b`, `a==b`, `a!=b`, comma-separated;
/// a label the resource does not support is refused with the API server's message.
fn parse_field_selector(resource: &str, selector: &str) -> Result<Vec<FieldRequirement>, String> {
    let probe = json!({});
    selector
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|part| {
            let (k, v, neg) = match part.split_once("!=") {
                Some((k, v)) => (k, v, true),
                None => match part.split_once('=') {
                    Some((k, v)) => (k, v.trim_start_matches('='), false),
                    None => {
                        return Err(format!(
                            "invalid selector: '{selector}'; can't understand '{part}'"
                        ))
                    }
                },
            };
            let k = k.trim();
            let involved_ok = k
                .strip_prefix("involvedObject.")
                .is_none_or(|f| INVOLVED_OBJECT_FIELDS.contains(&f));
            let known = involved_ok && field_value(resource, k, &probe).is_some();
            if !known {
                return Err(format!("field label not supported: {k}"));
            }
            Ok((k.to_string(), v.trim().to_string(), neg))
        })
        .collect()
}

fn field_matches(resource: &str, reqs: &[FieldRequirement], obj: &Value) -> bool {
    reqs.iter()
        .all(|(k, v, neg)| (field_value(resource, k, obj).as_deref() == Some(v.as_str())) != *neg)
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    if let Err(r) = check_token(&inner, &headers) {
        return *r;
    }
    let path = uri.path();
    let json_ok =
        |v: Value| ([(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response();
    match path.trim_end_matches('/') {
        // Not a Kubernetes path: the knob a benchmark in another process uses to force every
        // watcher into a full re-list (history compacted, watches cut).
        "/_sim/expire" if method == Method::POST => {
            inner.compact();
            inner.drop_watches();
            return StatusCode::NO_CONTENT.into_response();
        }
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
        return patch(&inner, &t, &headers, body).await;
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
    let field_sel =
        match parse_field_selector(t.resource, &param("fieldSelector").unwrap_or_default()) {
            Ok(r) => r,
            Err(message) => return status(400, "BadRequest", &message),
        };
    // Server-side printing (`kubectl get`): lists, GETs and watches answer Tables together.
    let as_table = table::wanted(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let include = match table::Include::parse(param("includeObject").as_deref()) {
        Ok(i) => i,
        Err(message) if as_table => return status(400, "BadRequest", &message),
        Err(_) => table::Include::Metadata,
    };
    let matches = |o: &Value| {
        t.namespace
            .as_deref()
            .is_none_or(|n| text(o, "/metadata/namespace") == n)
            && label_sel.as_ref().is_none_or(|s| {
                let labels: BTreeMap<String, String> = o
                    .pointer("/metadata/labels")
                    .and_then(|l| serde_json::from_value(l.clone()).ok())
                    .unwrap_or_default();
                s.matches(&labels)
            })
            && field_matches(t.resource, &field_sel, o)
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
            Some(o) if as_table => json_ok(table::table(
                t.resource,
                &[with_kind(o.clone())],
                include,
                json!({"resourceVersion": text(o, "/metadata/resourceVersion")}),
                true,
            )),
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
    if watching {
        inner
            .watches
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    if !watching {
        inner
            .lists
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let limit = param("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|l| *l > 0);
        // The continue token names the last key served (as the real server's does), so
        // paging stays exact while objects come and go between pages.
        let after: Option<(String, String)> = match param("continue") {
            Some(c) => match base64::engine::general_purpose::STANDARD
                .decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| {
                    s.split_once('\u{0}')
                        .map(|(a, b)| (a.to_string(), b.to_string()))
                }) {
                Some(k) => Some(k),
                None => return status(400, "BadRequest", "continue key is not valid"),
            },
            None => None,
        };
        let s = inner.store.lock();
        let start = match &after {
            Some((ns, name)) => {
                std::ops::Bound::Excluded((t.resource.to_string(), ns.clone(), name.clone()))
            }
            None => {
                std::ops::Bound::Included((t.resource.to_string(), String::new(), String::new()))
            }
        };
        let mut items: Vec<Value> = Vec::new();
        let mut total = 0usize;
        let mut last_key = None;
        for (k, o) in s
            .items
            .range((start, std::ops::Bound::Unbounded))
            .take_while(|(k, _)| k.0 == t.resource)
        {
            if !matches(o) {
                continue;
            }
            total += 1;
            if limit.is_none_or(|l| items.len() < l) {
                items.push(o.clone());
                last_key = Some(k);
            }
        }
        let cont = (total > items.len()).then(|| {
            let k = last_key.expect("BUG: a page with more to come has a last item");
            base64::engine::general_purpose::STANDARD.encode(format!("{}\u{0}{}", k.1, k.2))
        });
        let mut meta = json!({"resourceVersion": s.rv.to_string()});
        if let Some(c) = cont {
            meta["continue"] = json!(c);
            meta["remainingItemCount"] = json!(total - items.len());
        }
        if as_table {
            let objects: Vec<Value> = items.into_iter().map(with_kind).collect();
            return json_ok(table::table(t.resource, &objects, include, meta, true));
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
        // The first change still known; with none retained, only "now" can be resumed from.
        let oldest = s.history.front().map(|c| c.rv).unwrap_or(s.rv + 1);
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
    let cut = inner.cut.lock().clone();
    let counter = inner.clone();
    let expired = move || {
        counter
            .expired
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    };
    let (tx, body_rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(64);
    let resource = t.resource.to_string();
    let (kind, api_v2) = (t.kind.to_string(), api_v.clone());
    let ns_filter = t.namespace.clone();
    let (live_labels, live_fields) = (label_sel.clone(), field_sel.clone());
    tokio::spawn(async move {
        let line =
            |ty: &str, obj: Value| Bytes::from(format!("{}\n", json!({"type": ty, "object": obj})));
        // With Tables, each object event carries a one-row Table; only the first has the
        // column definitions.
        let mut headers_sent = false;
        let mut add_kind = |mut o: Value| {
            o["kind"] = json!(kind);
            o["apiVersion"] = json!(api_v2);
            if !as_table {
                return o;
            }
            let meta = json!({"resourceVersion": text(&o, "/metadata/resourceVersion")});
            let t = table::table(&resource, &[o], include, meta, !headers_sent);
            headers_sent = true;
            t
        };
        match first {
            Err((rv, oldest)) => {
                expired();
                let msg = format!("too old resource version: {rv} ({oldest})");
                let _ = tx.send(Ok(line("ERROR", expired_status(&msg)))).await;
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
                _ = cut.cancelled() => return,
                _ = tick.tick(), if bookmarks => {
                    if last_rv == 0 { continue; }
                    line("BOOKMARK", json!({"kind": kind, "apiVersion": api_v2, "metadata": {"resourceVersion": last_rv.to_string()}}))
                }
                c = rx.recv() => match c {
                    Ok(c) => {
                        last_rv = c.rv;
                        if c.resource != resource { continue; }
                        let ns = text(&c.object, "/metadata/namespace");
                        if ns_filter.as_deref().is_some_and(|n| n != ns) { continue; }
                        let labels: BTreeMap<String, String> = c.object.pointer("/metadata/labels")
                            .and_then(|l| serde_json::from_value(l.clone()).ok()).unwrap_or_default();
                        if live_labels.as_ref().is_some_and(|s| !s.matches(&labels)) || !field_matches(&resource, &live_fields, &c.object) {
                            continue;
                        }
                        line(c.kind, add_kind(c.object.clone()))
                    }
                    // Fell behind the history: the client must re-list, as with a 410.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        expired();
                        let st = expired_status("too old resource version");
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

/// RFC 7386 JSON merge patch (what a strategic-merge patch of maps amounts to, too).
fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            let t = target.as_object_mut().expect("BUG: made an object above");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

async fn patch(inner: &Arc<Inner>, t: &Target<'_>, headers: &HeaderMap, body: Bytes) -> Response {
    let Some(name) = &t.name else {
        return status(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        );
    };
    if t.resource != "deployments" {
        return status(
            403,
            "Forbidden",
            &format!(
                "{} \"{name}\" is forbidden: this simulation patches deployments only",
                t.resource
            ),
        );
    }
    // Impersonation: the API server authorizes the impersonated user instead of the caller.
    let user = headers
        .get("impersonate-user")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(user) = user {
        let groups: Vec<String> = headers
            .get_all("impersonate-group")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect();
        let mut imp = inner.impersonation.lock();
        imp.seen.push((user.clone(), groups));
        if imp.denied.contains(&user) {
            let ns = t.namespace.as_deref().unwrap_or("");
            return status(
                403,
                "Forbidden",
                &format!("deployments.apps \"{name}\" is forbidden: User \"{user}\" cannot patch resource \"deployments\" in API group \"apps\" in the namespace \"{ns}\""),
            );
        }
    }
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !(ctype.starts_with("application/strategic-merge-patch+json")
        || ctype.starts_with("application/merge-patch+json"))
    {
        return status(
            415,
            "UnsupportedMediaType",
            &format!("the body of the request was in an unknown format - accepted media types include: application/strategic-merge-patch+json, application/merge-patch+json (got {ctype:?})"),
        );
    }
    let p: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return status(
                400,
                "BadRequest",
                "error decoding patch: invalid JSON object",
            )
        }
    };
    let ns = t.namespace.clone().unwrap_or_default();
    let key = (t.resource.to_string(), ns.clone(), name.clone());
    let Some(mut obj) = inner.store.lock().items.get(&key).cloned() else {
        return status(
            404,
            "NotFound",
            &format!("deployments.apps \"{name}\" not found"),
        );
    };
    if let Some(rv) = p
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
    {
        if Some(rv)
            != obj
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
        {
            return status(409, "Conflict", &format!("Operation cannot be fulfilled on deployments.apps \"{name}\": the object has been modified; please apply your changes to the latest version and try again"));
        }
    }
    let before_spec = obj.get("spec").cloned();
    merge_patch(&mut obj, &p);
    if obj.pointer("/metadata/name").and_then(Value::as_str) != Some(name.as_str()) {
        return status(422, "Invalid", &format!("Deployment.apps \"{name}\" is invalid: metadata.name: Invalid value: field is immutable"));
    }
    if obj
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .is_some_and(|r| r < 0)
    {
        return status(422, "Invalid", &format!("Deployment.apps \"{name}\" is invalid: spec.replicas: Invalid value: must be greater than or equal to 0"));
    }
    let spec_changed = obj.get("spec") != before_spec.as_ref();
    if spec_changed {
        let g = obj
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        obj["metadata"]["generation"] = json!(g + 1);
    }
    let stored = inner.apply("MODIFIED", "deployments", obj);
    if spec_changed {
        tokio::spawn(rollout(inner.clone(), ns, name.clone()));
    }
    let mut out = stored;
    out["kind"] = json!("Deployment");
    out["apiVersion"] = json!("apps/v1");
    (
        [(header::CONTENT_TYPE, "application/json")],
        out.to_string(),
    )
        .into_response()
}

fn owned_by(o: &Value, kind: &str, name: &str) -> bool {
    o.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter()
                .any(|r| r["kind"] == kind && r["name"] == name && r["controller"] == true)
        })
}

fn items_of(inner: &Inner, resource: &str, ns: &str) -> Vec<Value> {
    inner
        .store
        .lock()
        .items
        .range((resource.to_string(), ns.to_string(), String::new())..)
        .take_while(|(k, _)| k.0 == resource && k.1 == ns)
        .map(|(_, v)| v.clone())
        .collect()
}

/// A Deployment's pods (through its ReplicaSets, by owner references), each with the name of
/// the ReplicaSet that owns it.
fn pods_of(inner: &Inner, ns: &str, deployment: &str) -> Vec<(String, Value)> {
    let sets: std::collections::HashSet<String> = items_of(inner, "replicasets", ns)
        .iter()
        .filter(|r| owned_by(r, "Deployment", deployment))
        .map(|r| text(r, "/metadata/name").to_string())
        .collect();
    items_of(inner, "pods", ns)
        .into_iter()
        .filter_map(|p| {
            let rs = text(&p, "/metadata/ownerReferences/0/name").to_string();
            sets.contains(&rs).then_some((rs, p))
        })
        .collect()
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Records a core/v1 Event about an object, as a controller or the kubelet does.
fn record_event(
    inner: &Inner,
    about: &Value,
    kind: &str,
    warning: bool,
    reason: &str,
    message: &str,
    component: &str,
) {
    let ns = about
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let name = text(about, "/metadata/name");
    let api_version = if kind == "Pod" { "v1" } else { "apps/v1" };
    let ev_name = format!("{name}.{:016x}", rand::random::<u64>());
    let ttl = *inner.event_ttl.lock();
    inner.events_due.lock().push_back((
        std::time::Instant::now() + ttl,
        ns.to_string(),
        ev_name.clone(),
    ));
    inner.apply("ADDED", "events", json!({
        "metadata": {"name": ev_name, "namespace": ns, "uid": uuid::Uuid::new_v4().to_string(), "creationTimestamp": now()},
        "involvedObject": {"kind": kind, "namespace": ns, "name": name, "apiVersion": api_version,
                           "uid": about.pointer("/metadata/uid").cloned().unwrap_or(Value::Null)},
        "reason": reason, "message": message, "type": if warning { "Warning" } else { "Normal" },
        "count": 1, "firstTimestamp": now(), "lastTimestamp": now(),
        "source": {"component": component}, "reportingComponent": component}));
}

/// The Deployment controller, simulated: a new ReplicaSet for the new template, then one pod
/// at a time started (Pending, then Running and Ready) and one old pod retired, with the
/// Deployment's and ReplicaSets' status following. A newer generation ends an older rollout.
async fn rollout(inner: Arc<Inner>, ns: String, name: String) {
    let step = *inner.step.lock();
    let Some(dep) = inner
        .store
        .lock()
        .items
        .get(&("deployments".into(), ns.clone(), name.clone()))
        .cloned()
    else {
        return;
    };
    let generation = dep
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let desired = dep
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let template = dep.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let hash = {
        let h = sha1_smol::Sha1::from(template.to_string())
            .digest()
            .to_string();
        h[..10].to_string()
    };
    let rs_name = format!("{name}-{hash}");
    let all_rs: Vec<Value> = items_of(&inner, "replicasets", &ns)
        .into_iter()
        .filter(|r| owned_by(r, "Deployment", &name))
        .collect();
    let revision = all_rs
        .iter()
        .filter_map(|r| {
            r.pointer("/metadata/annotations/deployment.kubernetes.io~1revision")
                .and_then(Value::as_str)
        })
        .filter_map(|r| r.parse::<i64>().ok())
        .max()
        .unwrap_or(0)
        + 1;
    let mut pod_labels = template
        .pointer("/metadata/labels")
        .cloned()
        .unwrap_or(json!({}));
    pod_labels["pod-template-hash"] = json!(hash);
    let dep_uid = dep.pointer("/metadata/uid").cloned().unwrap_or(Value::Null);
    let rs_uid = match all_rs
        .iter()
        .find(|r| r.pointer("/metadata/name").and_then(Value::as_str) == Some(rs_name.as_str()))
    {
        Some(r) => r.pointer("/metadata/uid").cloned().unwrap_or(Value::Null),
        None => {
            let mut m = meta(&rs_name, Some(&ns), pod_labels.clone());
            m["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": dep_uid, "controller": true, "blockOwnerDeletion": true}]);
            m["annotations"] = json!({"deployment.kubernetes.io/revision": revision.to_string()});
            let uid = m["uid"].clone();
            let mut tpl = template.clone();
            tpl["metadata"]["labels"] = pod_labels.clone();
            inner.apply("ADDED", "replicasets", json!({"metadata": m, "spec": {"replicas": 0, "selector": {"matchLabels": pod_labels}, "template": tpl}, "status": {"replicas": 0}}));
            uid
        }
    };
    let still_current = |inner: &Inner| {
        inner
            .store
            .lock()
            .items
            .get(&("deployments".into(), ns.clone(), name.clone()))
            .and_then(|d| d.pointer("/metadata/generation").and_then(Value::as_i64))
            == Some(generation)
    };
    let set_status = |inner: &Inner, progressing_reason: &str| {
        let ours = pods_of(inner, &ns, &name);
        let ready = |p: &Value| p.pointer("/status/conditions/0/status") == Some(&json!("True"));
        let updated = ours.iter().filter(|(rs, _)| *rs == rs_name).count();
        let ready_n = ours.iter().filter(|(_, p)| ready(p)).count();
        let Some(mut d) = inner
            .store
            .lock()
            .items
            .get(&("deployments".into(), ns.clone(), name.clone()))
            .cloned()
        else {
            return;
        };
        if d.pointer("/metadata/generation").and_then(Value::as_i64) != Some(generation) {
            return;
        }
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] =
            json!(revision.to_string());
        let complete = progressing_reason == "NewReplicaSetAvailable";
        d["status"] = json!({
            "observedGeneration": generation,
            "replicas": ours.len(), "updatedReplicas": updated, "readyReplicas": ready_n,
            "availableReplicas": ready_n, "unavailableReplicas": (desired - ready_n as i64).max(0),
            "conditions": [
                {"type": "Available", "status": if ready_n as i64 >= desired - desired / 4 { "True" } else { "False" },
                 "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability.", "lastTransitionTime": now()},
                {"type": "Progressing", "status": "True", "reason": progressing_reason,
                 "message": if complete { format!("ReplicaSet \"{rs_name}\" has successfully progressed.") } else { format!("ReplicaSet \"{rs_name}\" is progressing.") },
                 "lastTransitionTime": now()}]});
        inner.apply("MODIFIED", "deployments", d);
        // ReplicaSet counts follow their pods.
        for r in items_of(inner, "replicasets", &ns)
            .into_iter()
            .filter(|r| owned_by(r, "Deployment", &name))
        {
            let rname = text(&r, "/metadata/name").to_string();
            let mine: Vec<&Value> = ours
                .iter()
                .filter(|(rs, _)| *rs == rname)
                .map(|(_, p)| p)
                .collect();
            let n = mine.len();
            let rdy = mine.iter().filter(|p| ready(p)).count();
            // Old sets are scaled down to what they still run (0 at the end), even one a newer
            // rollout superseded before it started a pod.
            let spec = if rname == rs_name { desired } else { n as i64 };
            if r.pointer("/status/replicas").and_then(Value::as_u64) != Some(n as u64)
                || r.pointer("/status/readyReplicas").and_then(Value::as_u64) != Some(rdy as u64)
                || r.pointer("/spec/replicas").and_then(Value::as_i64) != Some(spec)
            {
                let mut r = r.clone();
                r["spec"]["replicas"] = json!(spec);
                r["status"] =
                    json!({"replicas": n, "readyReplicas": rdy, "availableReplicas": rdy});
                inner.apply("MODIFIED", "replicasets", r);
            }
        }
    };
    set_status(&inner, "ReplicaSetUpdated");
    let image = template
        .pointer("/spec/containers/0/image")
        .cloned()
        .unwrap_or(Value::Null);
    let container = template
        .pointer("/spec/containers/0/name")
        .cloned()
        .unwrap_or(json!(name));
    for up in 1..=desired {
        tokio::time::sleep(step).await;
        if !still_current(&inner) {
            return;
        }
        let suffix: String = (0..5)
            .map(|_| (b'a' + rand::random_range(0..26u8)) as char)
            .collect();
        let mut m = meta(
            &format!("{rs_name}-{suffix}"),
            Some(&ns),
            pod_labels.clone(),
        );
        m["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs_name, "uid": rs_uid, "controller": true, "blockOwnerDeletion": true}]);
        let mut pod = json!({"metadata": m,
            "spec": {"nodeName": "demo-node-1", "containers": [{"name": container, "image": image}]},
            "status": {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}],
                       "containerStatuses": [{"name": container, "ready": false, "restartCount": 0, "image": image,
                                              "imageID": "", "started": false, "state": {"waiting": {"reason": "ContainerCreating"}}}]}});
        pod = inner.apply("ADDED", "pods", pod);
        record_event(
            &inner,
            &dep,
            "Deployment",
            false,
            "ScalingReplicaSet",
            &format!("Scaled up replica set {rs_name} to {up}"),
            "deployment-controller",
        );
        let pod_name = text(&pod, "/metadata/name").to_string();
        record_event(
            &inner,
            &pod,
            "Pod",
            false,
            "Scheduled",
            &format!("Successfully assigned {ns}/{pod_name} to demo-node-1"),
            "default-scheduler",
        );
        set_status(&inner, "ReplicaSetUpdated");
        tokio::time::sleep(step).await;
        if !still_current(&inner) {
            return;
        }
        pod["status"] = json!({"phase": "Running", "podIP": format!("10.244.0.{}", rand::random_range(11..250)), "startTime": now(),
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": container, "ready": true, "restartCount": 0, "image": image, "imageID": image_id(image.as_str().unwrap_or("")),
                                   "containerID": container_id(&pod_name), "started": true, "state": {"running": {"startedAt": now()}}}]});
        let pod = inner.apply("MODIFIED", "pods", pod);
        record_event(
            &inner,
            &pod,
            "Pod",
            false,
            "Started",
            &format!("Started container {}", container.as_str().unwrap_or("app")),
            "kubelet",
        );
        // Retire one old pod.
        let old = pods_of(&inner, &ns, &name)
            .into_iter()
            .find(|(rs, _)| *rs != rs_name);
        if let Some((owner, o)) = old {
            inner.apply("DELETED", "pods", o);
            record_event(
                &inner,
                &dep,
                "Deployment",
                false,
                "ScalingReplicaSet",
                &format!("Scaled down replica set {owner} by 1"),
                "deployment-controller",
            );
        }
        set_status(&inner, "ReplicaSetUpdated");
    }
    // Whatever old pods are left go too (scale-down).
    for (_, o) in pods_of(&inner, &ns, &name)
        .into_iter()
        .filter(|(rs, _)| *rs != rs_name)
    {
        inner.apply("DELETED", "pods", o);
    }
    set_status(&inner, "NewReplicaSetAvailable");
    clean_up_replicasets(&inner, &ns, &name, &rs_name);
}

/// The Deployment controller's clean-up: old ReplicaSets scaled to zero beyond the
/// Deployment's `spec.revisionHistoryLimit` (10 unless set) are deleted, oldest revision first.
fn clean_up_replicasets(inner: &Inner, ns: &str, name: &str, current: &str) {
    let limit = inner
        .store
        .lock()
        .items
        .get(&("deployments".into(), ns.to_string(), name.to_string()))
        .and_then(|d| {
            d.pointer("/spec/revisionHistoryLimit")
                .and_then(Value::as_u64)
        })
        .map_or(REVISION_HISTORY_LIMIT, |l| l as usize);
    let revision = |r: &Value| {
        r.pointer("/metadata/annotations/deployment.kubernetes.io~1revision")
            .and_then(Value::as_str)
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let mut old: Vec<Value> = items_of(inner, "replicasets", ns)
        .into_iter()
        .filter(|r| owned_by(r, "Deployment", name) && text(r, "/metadata/name") != current)
        .filter(|r| {
            r.pointer("/spec/replicas").and_then(Value::as_i64) == Some(0)
                && r.pointer("/status/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
                    == 0
        })
        .collect();
    if old.len() <= limit {
        return;
    }
    old.sort_by_key(revision);
    let excess = old.len() - limit;
    for r in old.into_iter().take(excess) {
        inner.apply("DELETED", "replicasets", r);
    }
}

impl KubeSim {
    /// How long Events recorded from now on live (the API server's `--event-ttl`).
    pub fn set_event_ttl(&self, ttl: Duration) {
        *self.inner.event_ttl.lock() = ttl;
    }

    /// Cuts every open watch (the connection ends), as a load balancer or API server restart
    /// does. Clients must resume from their last resourceVersion.
    pub fn drop_watches(&self) {
        self.inner.drop_watches();
    }

    /// Watches answered with the in-stream `410 Expired` so far.
    pub fn expired_count(&self) -> u64 {
        self.inner.expired.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// List requests served so far.
    pub fn list_count(&self) -> u64 {
        self.inner.lists.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Watch requests answered so far.
    pub fn watch_count(&self) -> u64 {
        self.inner.watches.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// What an ArgoCD application's resource tree shows of one namespace: its Deployments,
    /// ReplicaSets, pods and Services, as (kind, object).
    pub fn app_objects(&self, namespace: &str) -> Vec<(&'static str, Value)> {
        let store = self.inner.store.lock();
        [
            ("deployments", "Deployment"),
            ("replicasets", "ReplicaSet"),
            ("pods", "Pod"),
            ("services", "Service"),
        ]
        .into_iter()
        .flat_map(|(resource, kind)| {
            store
                .items
                .iter()
                .filter(move |(k, v)| k.0 == resource && v["metadata"]["namespace"] == namespace)
                .map(move |(_, v)| (kind, v.clone()))
        })
        .collect()
    }

    /// Every object of one resource (plural), as the API server holds it.
    pub fn list(&self, resource: &str) -> Vec<Value> {
        self.inner
            .store
            .lock()
            .items
            .iter()
            .filter(|(k, _)| k.0 == resource)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Forgets the change history (as etcd compaction does): a watch resumed from an older
    /// resourceVersion is answered with the in-stream `410 Expired`.
    pub fn compact(&self) {
        self.inner.compact();
    }

    /// Sets the simulated controller's pace (one step: a pod started or retired).
    pub fn set_rollout_step(&self, step: Duration) {
        *self.inner.step.lock() = step;
    }

    /// Changes a Deployment's pod template (a new image tag and a revision annotation), as
    /// applying a new revision from git does, and lets the controller roll it out.
    pub fn deploy_revision(&self, namespace: &str, name: &str, revision: &str) -> bool {
        let key = (
            "deployments".to_string(),
            namespace.to_string(),
            name.to_string(),
        );
        let Some(mut d) = self.inner.store.lock().items.get(&key).cloned() else {
            return false;
        };
        if d.pointer("/spec/template/metadata/annotations/idp-graph.demo~1revision")
            .and_then(Value::as_str)
            == Some(revision)
        {
            return false;
        }
        d["spec"]["template"]["metadata"]["annotations"]["idp-graph.demo/revision"] =
            json!(revision);
        if let Some(img) = d
            .pointer("/spec/template/spec/containers/0/image")
            .and_then(Value::as_str)
        {
            let base = img
                .rsplit_once(':')
                .map(|(b, _)| b)
                .unwrap_or(img)
                .to_string();
            d["spec"]["template"]["spec"]["containers"][0]["image"] =
                json!(format!("{base}:{}", &revision[..revision.len().min(7)]));
        }
        let g = d
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        d["metadata"]["generation"] = json!(g + 1);
        self.inner.apply("MODIFIED", "deployments", d);
        tokio::spawn(rollout(
            self.inner.clone(),
            namespace.to_string(),
            name.to_string(),
        ));
        true
    }

    /// The first pod of a Deployment and what its first container is (by the pod's spec and
    /// status), for the kubelet troubles below.
    fn first_container(&self, namespace: &str, deployment: &str) -> Option<FirstContainer> {
        let (_, pod) = pods_of(&self.inner, namespace, deployment)
            .into_iter()
            .next()?;
        let container = pod
            .pointer("/spec/containers/0/name")
            .and_then(Value::as_str)
            .unwrap_or(deployment)
            .to_string();
        let image = pod
            .pointer("/spec/containers/0/image")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let restarts = pod
            .pointer("/status/containerStatuses/0/restartCount")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        Some(FirstContainer {
            pod,
            container,
            image,
            restarts,
        })
    }

    /// Writes the pod's Ready condition and its one container's status as the kubelet reports
    /// them, and applies the change (a `MODIFIED` watch event); returns the pod as stored.
    #[allow(clippy::too_many_arguments)]
    fn set_container_status(
        &self,
        mut pod: Value,
        container: &str,
        image: &str,
        ready: bool,
        restarts: i64,
        state: Value,
        last: Value,
    ) -> Value {
        pod["status"]["conditions"] =
            json!([{"type": "Ready", "status": if ready { "True" } else { "False" }}]);
        pod["status"]["containerStatuses"] = json!([{"name": container, "image": image,
            "imageID": image_id(image), "ready": ready, "restartCount": restarts, "state": state,
            "lastState": last}]);
        self.inner.apply("MODIFIED", "pods", pod)
    }

    /// Puts the first pod of a Deployment into CrashLoopBackOff (or back to running), with
    /// the kubelet's Warning events and the Deployment's ready counts following.
    pub fn set_crashloop(&self, namespace: &str, deployment: &str, on: bool) -> bool {
        let Some(FirstContainer {
            pod,
            container,
            image,
            restarts,
        }) = self.first_container(namespace, deployment)
        else {
            return false;
        };
        let (ready, state, restarts) = if on {
            (
                false,
                json!({"waiting": {"reason": "CrashLoopBackOff", "message": format!("back-off 40s restarting failed container={} pod={}", container, pod["metadata"]["name"].as_str().unwrap_or(""))}}),
                restarts + 3,
            )
        } else {
            (true, json!({"running": {"startedAt": now()}}), restarts)
        };
        let last = if on {
            json!({"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": now()}})
        } else {
            json!({})
        };
        let pod = self.set_container_status(pod, &container, &image, ready, restarts, state, last);
        if on {
            record_event(
                &self.inner,
                &pod,
                "Pod",
                true,
                "BackOff",
                "Back-off restarting failed container",
                "kubelet",
            );
        }
        let key = (
            "deployments".to_string(),
            namespace.to_string(),
            deployment.to_string(),
        );
        let current = self.inner.store.lock().items.get(&key).cloned();
        if let Some(mut d) = current {
            let desired = d
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let n = if on { desired - 1 } else { desired };
            d["status"]["readyReplicas"] = json!(n);
            d["status"]["availableReplicas"] = json!(n);
            d["status"]["unavailableReplicas"] = json!(desired - n);
            self.inner.apply("MODIFIED", "deployments", d);
        }
        true
    }

    /// Puts the first pod of a Deployment into a trouble the kubelet reports, as it reports
    /// it: `OOMKilled` (the container was killed for memory, exit 137, and restarted: running
    /// again, `lastState.terminated.reason: OOMKilled`, one more restart) or `ErrImagePull`
    /// (waiting on an image that cannot be pulled, with the kubelet's `Failed` Warning event).
    /// Other reasons are refused (`false`), like a Deployment without pods.
    pub fn set_pod_trouble(&self, namespace: &str, deployment: &str, reason: &str) -> bool {
        let Some(FirstContainer {
            pod,
            container,
            image,
            restarts,
        }) = self.first_container(namespace, deployment)
        else {
            return false;
        };
        let (ready, state, last, restarts) = match reason {
            "OOMKilled" => (
                true,
                json!({"running": {"startedAt": now()}}),
                json!({"terminated": {"exitCode": 137, "reason": "OOMKilled", "startedAt": now(), "finishedAt": now()}}),
                restarts + 1,
            ),
            "ErrImagePull" => (
                false,
                json!({"waiting": {"reason": "ErrImagePull", "message": format!("rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\": not found")}}),
                json!({}),
                restarts,
            ),
            _ => return false,
        };
        let pod = self.set_container_status(pod, &container, &image, ready, restarts, state, last);
        if reason == "ErrImagePull" {
            record_event(
                &self.inner,
                &pod,
                "Pod",
                true,
                "Failed",
                &format!("Failed to pull image \"{image}\": not found"),
                "kubelet",
            );
        }
        true
    }

    /// Marks a Deployment's rollout as stalled (`ProgressDeadlineExceeded`).
    pub fn stall(&self, namespace: &str, name: &str) -> bool {
        let key = (
            "deployments".to_string(),
            namespace.to_string(),
            name.to_string(),
        );
        let Some(mut d) = self.inner.store.lock().items.get(&key).cloned() else {
            return false;
        };
        d["status"]["conditions"] = json!([{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
            "message": format!("ReplicaSet \"{name}\" has timed out progressing."), "lastTransitionTime": now()}]);
        self.inner.apply("MODIFIED", "deployments", d);
        true
    }
}

/// The first pod of a Deployment with its first container's name, image and restart count.
struct FirstContainer {
    pod: Value,
    container: String,
    image: String,
    restarts: i64,
}
