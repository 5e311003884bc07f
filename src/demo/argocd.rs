//! A simulated ArgoCD API server, faithful to the real one on the wire (grpc-gateway v1 REST;
//! see `fixtures`-derived notes in the module tests):
//!
//! - `GET /api/v1/applications` (unpaginated `{metadata:{resourceVersion},items}`),
//!   `GET /api/v1/applications/{name}[?refresh=normal|hard]`, `POST .../sync`,
//!   `POST .../rollback`, `DELETE .../operation`, `GET .../resource-tree`,
//!   `GET /api/v1/projects`, `GET /api/version`.
//! - `GET /api/v1/stream/applications`: an ADDED burst of every app (sorted), then live
//!   `{"result":{"type","application"}}` lines; NDJSON, or `text/event-stream` (`data: ... \n\n`
//!   plus `:` keepalives) when asked. Identical consecutive messages per app are suppressed;
//!   a subscriber that falls behind loses events silently, as ArgoCD's buffered channel does.
//! - Errors as grpc-gateway writes them: `{"error","code","message"}` with the HTTP status of
//!   the gRPC code; an unknown app without `project` is 403 "permission denied".
//! - Behaviour: a sync runs (operation Running), then Succeeds (Synced, history grows, health
//!   Progressing), then the app turns Healthy; auto-sync apps sync themselves after a push and
//!   refuse rollbacks; terminate stops a running operation.
//!
//! Test knobs: `faults` (latency, errors, down), `drop_streams`, `inject_garbage`,
//! `push_commit`, `set_health`, `delete_app`.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use super::faults::{self, Faults};
use super::git::GitWorld;

/// How fast simulated operations move.
#[derive(Debug, Clone)]
pub struct ArgoTiming {
    /// Operation Running → Succeeded.
    pub sync: Duration,
    /// Health Progressing → Healthy after a sync.
    pub rollout: Duration,
    /// A push to an auto-sync app's repo → ArgoCD starts syncing it.
    pub auto_sync_delay: Duration,
    /// SSE keepalive comment interval.
    pub keepalive: Duration,
}

impl Default for ArgoTiming {
    fn default() -> Self {
        Self {
            sync: Duration::from_secs(2),
            rollout: Duration::from_secs(3),
            auto_sync_delay: Duration::from_secs(3),
            keepalive: Duration::from_secs(15),
        }
    }
}

/// What the seed says about one app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSpec {
    pub name: String,
    pub project: String,
    pub repo_slug: String,
    pub path: String,
    pub dest_namespace: String,
    pub auto_sync: bool,
    pub labels: BTreeMap<String, String>,
    pub image: String,
}

#[derive(Debug, Clone)]
struct Hist {
    id: i64,
    revision: String,
    deployed_at: DateTime<Utc>,
    started_at: DateTime<Utc>,
    initiated_by: String,
    automated: bool,
}

#[derive(Debug, Clone)]
struct Op {
    /// Distinguishes this operation from later ones in the delayed steps.
    seq: u64,
    revision: String,
    initiated_by: String,
    automated: bool,
    phase: &'static str,
    message: String,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    prune: bool,
    dry_run: bool,
}

#[derive(Debug, Clone)]
struct SimApp {
    spec: AppSpec,
    namespace: String,
    uid: String,
    created: DateTime<Utc>,
    resource_version: u64,
    sync_status: &'static str,
    /// Resolved target revision (head of the repo's default branch).
    sync_revision: String,
    health: &'static str,
    health_message: Option<String>,
    /// The operation in flight (top-level `operation`), if any.
    running: Option<Op>,
    /// `status.operationState`: the last operation, running or finished.
    op_state: Option<Op>,
    history: Vec<Hist>,
    reconciled_at: DateTime<Utc>,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn repo_url(slug: &str) -> String {
    format!("https://github.com/{slug}.git")
}

impl SimApp {
    fn to_json(&self) -> Value {
        let s = &self.spec;
        let source =
            json!({"repoURL": repo_url(&s.repo_slug), "path": s.path, "targetRevision": "HEAD"});
        let destination =
            json!({"server": "https://kubernetes.default.svc", "namespace": s.dest_namespace});
        let mut spec = json!({"project": s.project, "source": source, "destination": destination,
            "syncPolicy": {"syncOptions": ["CreateNamespace=true"]}});
        if s.auto_sync {
            spec["syncPolicy"]["automated"] = json!({"prune": true, "selfHeal": true});
        }
        let mut health = json!({"status": self.health});
        if let Some(m) = &self.health_message {
            health["message"] = json!(m);
        }
        let resources = json!([
            {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": s.dest_namespace, "name": s.name,
             "status": self.sync_status, "health": {"status": self.health}},
            {"version": "v1", "kind": "Service", "namespace": s.dest_namespace, "name": s.name,
             "status": "Synced", "health": {"status": "Healthy"}},
        ]);
        let history: Vec<Value> = self.history.iter().map(|h| {
            let mut by = json!({"username": h.initiated_by});
            if h.automated { by = json!({"automated": true}); }
            json!({"id": h.id, "revision": h.revision, "deployedAt": ts(h.deployed_at), "deployStartedAt": ts(h.started_at),
                   "source": source, "initiatedBy": by})
        }).collect();
        let mut status = json!({
            "sync": {"status": self.sync_status, "revision": self.sync_revision,
                     "comparedTo": {"source": source, "destination": destination}},
            "health": health,
            "history": history,
            "reconciledAt": ts(self.reconciled_at),
            "resources": resources,
            "sourceType": "Kustomize",
            "summary": {"images": [s.image]},
            "controllerNamespace": "argocd",
        });
        if let Some(op) = &self.op_state {
            status["operationState"] = op_state_json(op, &source);
        }
        let mut app = json!({
            "metadata": {"name": s.name, "namespace": self.namespace, "uid": self.uid,
                "resourceVersion": self.resource_version.to_string(), "generation": self.history.len() + 1,
                "creationTimestamp": ts(self.created), "labels": s.labels,
                "finalizers": ["resources-finalizer.argocd.argoproj.io"]},
            "spec": spec,
            "status": status,
        });
        if let Some(op) = &self.running {
            app["operation"] = operation_json(op);
        }
        app
    }
}

fn operation_json(op: &Op) -> Value {
    let by = if op.automated {
        json!({"automated": true})
    } else {
        json!({"username": op.initiated_by})
    };
    json!({"sync": {"revision": op.revision, "prune": op.prune, "dryRun": op.dry_run, "syncStrategy": {"hook": {}}},
           "initiatedBy": by, "retry": {}})
}

fn op_state_json(op: &Op, source: &Value) -> Value {
    let mut v = json!({"operation": operation_json(op), "phase": op.phase, "message": op.message,
        "startedAt": ts(op.started_at)});
    if let Some(f) = op.finished_at {
        v["finishedAt"] = json!(ts(f));
    }
    if op.phase == "Succeeded" {
        v["syncResult"] = json!({"revision": op.revision, "source": source, "resources": []});
    }
    v
}

struct Inner {
    token: String,
    git: Arc<GitWorld>,
    timing: ArgoTiming,
    apps: Mutex<BTreeMap<String, SimApp>>,
    projects: Vec<Value>,
    next_rv: Mutex<u64>,
    next_op: Mutex<u64>,
    /// Live events for the stream handlers: (type, app JSON).
    events: broadcast::Sender<Arc<(String, String, Value)>>,
    /// Bumped to close every open stream.
    drop_gen: watch::Sender<u64>,
    /// Lines to write raw into every open stream (malformed-chunk knob).
    garbage: broadcast::Sender<String>,
    /// When set, actions answer 403 "permission denied" (an RBAC policy that refuses us).
    deny_actions: std::sync::atomic::AtomicBool,
    /// Published when an operation succeeds: (app name, revision). The Kubernetes simulation
    /// rolls the app's Deployment on it.
    synced: broadcast::Sender<(String, String)>,
    /// The destination cluster's objects of a namespace (kind, object), when the world has a
    /// cluster: resource trees are then built from it, with its names and UIDs.
    live: Mutex<Option<LiveObjects>>,
    /// List requests answered (`GET /api/v1/applications`): how a test sees a re-list.
    lists: std::sync::atomic::AtomicU64,
    /// Stream connections accepted (`/api/v1/stream/applications`).
    streams: std::sync::atomic::AtomicU64,
}

/// The objects of one namespace in the destination cluster, as (kind, object).
pub type LiveObjects = Arc<dyn Fn(&str) -> Vec<(&'static str, Value)> + Send + Sync>;

#[derive(Clone)]
pub struct ArgoCdSim {
    addr: std::net::SocketAddr,
    pub faults: Arc<Faults>,
    inner: Arc<Inner>,
}

fn grpc_error(code: i32, message: &str) -> Response {
    let status = match code {
        3 | 9 | 11 => StatusCode::BAD_REQUEST,
        5 => StatusCode::NOT_FOUND,
        6 | 10 => StatusCode::CONFLICT,
        7 => StatusCode::FORBIDDEN,
        16 => StatusCode::UNAUTHORIZED,
        14 => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (
        status,
        Json(json!({"error": message, "code": code, "message": message})),
    )
        .into_response()
}

fn check_token(inner: &Inner, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match auth.and_then(|a| a.strip_prefix("Bearer ")) {
        None => Err(Box::new(grpc_error(16, "no session information"))),
        Some(t) if t != inner.token => Err(Box::new(grpc_error(
            16,
            "invalid session: failed to verify the token",
        ))),
        Some(_) => Ok(()),
    }
}

/// What every action checks first: the token, the RBAC knob, and the JSON body (if any).
fn action_request(
    inner: &Inner,
    headers: &HeaderMap,
    body: Option<&[u8]>,
) -> Result<Value, Box<Response>> {
    check_token(inner, headers)?;
    if inner.deny_actions.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(Box::new(grpc_error(7, "permission denied")));
    }
    match body {
        None => Ok(Value::Null),
        Some(b) => serde_json::from_slice(b).map_err(|e| {
            Box::new(grpc_error(
                3,
                &format!("invalid character in request body: {e}"),
            ))
        }),
    }
}

fn query_pairs(raw: &Option<String>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

impl Inner {
    fn bump(&self) -> u64 {
        let mut rv = self.next_rv.lock();
        *rv += 1;
        *rv
    }

    /// Applies `f` to an app, bumps its resourceVersion and publishes MODIFIED.
    fn modify(&self, name: &str, f: impl FnOnce(&mut SimApp)) -> Option<Value> {
        let mut apps = self.apps.lock();
        let app = apps.get_mut(name)?;
        f(app);
        app.resource_version = self.bump();
        let v = app.to_json();
        let _ = self
            .events
            .send(Arc::new(("MODIFIED".into(), name.to_string(), v.clone())));
        Some(v)
    }

    /// Starts an operation; the steps that follow run on their own.
    fn start_op(
        self: &Arc<Self>,
        name: &str,
        revision: String,
        by: &str,
        automated: bool,
        prune: bool,
        dry_run: bool,
    ) -> Option<Value> {
        let seq = {
            let mut n = self.next_op.lock();
            *n += 1;
            *n
        };
        let now = Utc::now();
        let op = Op {
            seq,
            revision,
            initiated_by: by.to_string(),
            automated,
            phase: "Running",
            message: "one or more tasks are running".into(),
            started_at: now,
            finished_at: None,
            prune,
            dry_run,
        };
        let v = self.modify(name, |a| {
            a.running = Some(op.clone());
            a.op_state = Some(op);
        })?;
        let (inner, name) = (self.clone(), name.to_string());
        tokio::spawn(async move {
            tokio::time::sleep(inner.timing.sync).await;
            let mut synced = None;
            inner.modify(&name, |a| {
                let Some(op) = a.running.take().filter(|o| o.seq == seq) else {
                    return;
                };
                let now = Utc::now();
                let mut done = op.clone();
                done.phase = "Succeeded";
                done.finished_at = Some(now);
                done.message = "successfully synced (all tasks run)".into();
                if !op.dry_run {
                    let id = a.history.last().map(|h| h.id + 1).unwrap_or(0);
                    a.history.push(Hist {
                        id,
                        revision: op.revision.clone(),
                        deployed_at: now,
                        started_at: op.started_at,
                        initiated_by: op.initiated_by.clone(),
                        automated: op.automated,
                    });
                    if a.history.len() > 10 {
                        a.history.remove(0);
                    }
                    a.sync_status = if op.revision == a.sync_revision {
                        "Synced"
                    } else {
                        "OutOfSync"
                    };
                    a.health = "Progressing";
                    a.health_message = Some(format!(
                        "Waiting for rollout of deployment \"{}\" to finish",
                        a.spec.name
                    ));
                    synced = Some(op.revision.clone());
                }
                a.op_state = Some(done);
            });
            let Some(revision) = synced else { return };
            let _ = inner.synced.send((name.clone(), revision));
            tokio::time::sleep(inner.timing.rollout).await;
            inner.modify(&name, |a| {
                if a.health == "Progressing" && a.running.is_none() {
                    a.health = "Healthy";
                    a.health_message = None;
                }
            });
        });
        Some(v)
    }
}

/// The seed's applications: platform apps from the GitOps repo, application apps from their
/// own repos, plus `scale` generated services.
pub fn seed_apps(scale: usize) -> Vec<AppSpec> {
    let mut out = Vec::new();
    let label = |team: &str| -> BTreeMap<String, String> {
        [
            ("team".to_string(), team.to_string()),
            ("app.kubernetes.io/part-of".into(), "idp".into()),
        ]
        .into()
    };
    for name in super::seed::PLATFORM_APPS {
        out.push(AppSpec {
            name: name.into(),
            project: "platform".into(),
            repo_slug: super::seed::GITOPS_REPO.into(),
            path: format!("platform/{name}"),
            dest_namespace: if name == "namespaces" {
                "default".into()
            } else {
                name.into()
            },
            auto_sync: true,
            labels: label("platform-team"),
            image: format!("registry.yourcompany.example/{name}:1.0.0"),
        });
    }
    for name in super::seed::APPLICATION_APPS {
        out.push(AppSpec {
            name: name.into(),
            project: "applications".into(),
            repo_slug: format!("yourcompany/{name}"),
            path: "deploy".into(),
            dest_namespace: name.into(),
            // sample-app and app-2 are synced by hand (so rollback works); my-app and app-3 auto.
            auto_sync: matches!(name, "my-app" | "app-3"),
            labels: label("app-team"),
            image: format!("registry.yourcompany.example/{name}:1.4.2"),
        });
    }
    for i in 1..=scale {
        let name = format!("svc-{i:05}");
        out.push(AppSpec {
            name: name.clone(),
            project: "applications".into(),
            repo_slug: format!("yourcompany/{name}"),
            path: "deploy".into(),
            dest_namespace: name.clone(),
            auto_sync: false,
            labels: label("app-team"),
            image: format!("registry.yourcompany.example/{name}:0.1.0"),
        });
    }
    out
}

fn projects() -> Vec<Value> {
    // Application teams deploy anywhere in the cluster except where the platform lives (deny
    // rules, `!`, as ArgoCD reads them): a new service's namespace needs no project change,
    // and no app spec can claim a platform namespace.
    let in_cluster = "https://kubernetes.default.svc";
    let apps_dest: Vec<Value> = std::iter::once(json!({"server": in_cluster, "namespace": "*"}))
        .chain(
            super::seed::PLATFORM_APPS
                .iter()
                .map(|n| if *n == "namespaces" { "default" } else { n })
                .chain(["kube-system", "kube-public", "kube-node-lease"])
                .map(|n| json!({"server": "*", "namespace": format!("!{n}")})),
        )
        .collect();
    vec![
        json!({"metadata": {"name": "default", "namespace": "argocd"},
               "spec": {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}],
                        "clusterResourceWhitelist": [{"group": "*", "kind": "*"}]}}),
        json!({"metadata": {"name": "platform", "namespace": "argocd"},
               "spec": {"description": "Platform components: full cluster access",
                        "sourceRepos": [format!("https://github.com/{}.git", super::seed::GITOPS_REPO)],
                        "destinations": [{"server": "https://kubernetes.default.svc", "namespace": "*"}],
                        "clusterResourceWhitelist": [{"group": "*", "kind": "*"}]}}),
        json!({"metadata": {"name": "applications", "namespace": "argocd"},
               "spec": {"description": "Application teams: any namespace but the platform's",
                        "sourceRepos": ["https://github.com/yourcompany/*"],
                        "destinations": apps_dest}}),
    ]
}

impl ArgoCdSim {
    pub async fn start(
        specs: Vec<AppSpec>,
        git: Arc<GitWorld>,
        token: &str,
        timing: ArgoTiming,
        shutdown: CancellationToken,
    ) -> std::io::Result<Self> {
        let faults = Arc::new(Faults::default());
        let (events, _) = broadcast::channel(1000);
        let (garbage, _) = broadcast::channel(16);
        let (synced, _) = broadcast::channel(256);
        let (drop_gen, _) = watch::channel(0);
        let now = Utc::now();
        let mut apps = BTreeMap::new();
        let mut rv = 1000u64;
        for spec in specs {
            if git.head(&spec.repo_slug).is_none() {
                git.create(
                    &spec.repo_slug,
                    &format!("{} deployment manifests", spec.name),
                    Some("YAML"),
                    4,
                );
            }
            let repo = git.repo(&spec.repo_slug).expect("BUG: repo just created");
            let head = repo
                .commits
                .last()
                .expect("BUG: repos have commits")
                .sha
                .clone();
            let history = repo
                .commits
                .iter()
                .rev()
                .take(3)
                .rev()
                .enumerate()
                .map(|(i, c)| Hist {
                    id: i as i64,
                    revision: c.sha.clone(),
                    deployed_at: c.date + chrono::Duration::minutes(2),
                    started_at: c.date + chrono::Duration::minutes(1),
                    initiated_by: "alice@yourcompany.example".into(),
                    automated: spec.auto_sync,
                })
                .collect();
            rv += 1;
            apps.insert(
                spec.name.clone(),
                SimApp {
                    namespace: "argocd".into(),
                    uid: uuid::Uuid::new_v4().to_string(),
                    created: now - chrono::Duration::days(30),
                    resource_version: rv,
                    sync_status: "Synced",
                    sync_revision: head,
                    health: "Healthy",
                    health_message: None,
                    running: None,
                    op_state: None,
                    history,
                    reconciled_at: now,
                    spec,
                },
            );
        }
        let inner = Arc::new(Inner {
            token: token.to_string(),
            git,
            timing,
            apps: Mutex::new(apps),
            projects: projects(),
            next_rv: Mutex::new(rv),
            next_op: Mutex::new(0),
            events,
            drop_gen,
            garbage,
            synced,
            live: Mutex::new(None),
            lists: Default::default(),
            streams: Default::default(),
            deny_actions: Default::default(),
        });
        let router = Router::new()
            .route("/api/version", get(version))
            .route("/api/v1/applications", get(list))
            .route("/api/v1/applications/{name}", get(get_app))
            .route("/api/v1/applications/{name}/sync", post(sync))
            .route("/api/v1/applications/{name}/rollback", post(rollback))
            .route("/api/v1/applications/{name}/operation", delete(terminate))
            .route(
                "/api/v1/applications/{name}/resource-tree",
                get(resource_tree),
            )
            .route("/api/v1/stream/applications", get(stream))
            .route("/api/v1/projects", get(list_projects))
            .fallback(|| async { grpc_error(5, "Not Found") })
            .with_state(inner.clone());
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

    /// Pushes a commit to the app's repo; the app goes OutOfSync (and auto-sync apps then sync).
    /// Returns the new head SHA.
    pub fn push_commit(&self, app: &str, message: &str) -> Option<String> {
        let slug = self.inner.apps.lock().get(app)?.spec.repo_slug.clone();
        let commit = self.inner.git.push(&slug, message, "carol")?;
        let mut auto = Vec::new();
        let apps: Vec<String> = self
            .inner
            .apps
            .lock()
            .iter()
            .filter(|(_, a)| a.spec.repo_slug == slug)
            .map(|(n, _)| n.clone())
            .collect();
        for name in apps {
            self.inner.modify(&name, |a| {
                a.sync_revision = commit.sha.clone();
                a.sync_status = "OutOfSync";
                a.reconciled_at = Utc::now();
                if a.spec.auto_sync {
                    auto.push(a.spec.name.clone());
                }
            });
        }
        for name in auto {
            let (inner, sha) = (self.inner.clone(), commit.sha.clone());
            tokio::spawn(async move {
                tokio::time::sleep(inner.timing.auto_sync_delay).await;
                let idle = inner
                    .apps
                    .lock()
                    .get(&name)
                    .is_some_and(|a| a.running.is_none());
                if idle {
                    inner.start_op(&name, sha, "", true, true, false);
                }
            });
        }
        Some(commit.sha)
    }

    /// Sets an app's health (the weather's "degrades and recovers").
    pub fn set_health(&self, app: &str, health: &'static str, message: Option<&str>) -> bool {
        self.inner
            .modify(app, |a| {
                a.health = health;
                a.health_message = message.map(str::to_string);
            })
            .is_some()
    }

    pub fn delete_app(&self, app: &str) -> bool {
        let removed = self.inner.apps.lock().remove(app);
        match removed {
            Some(mut a) => {
                a.resource_version = self.inner.bump();
                let _ = self.inner.events.send(Arc::new((
                    "DELETED".into(),
                    app.to_string(),
                    a.to_json(),
                )));
                true
            }
            None => false,
        }
    }

    /// Adds an application (the template flow's "adds an ArgoCD app"), as `argocd app create`
    /// without `--upsert` does: an existing application with the same spec is left as it is,
    /// one with a different spec is refused with ArgoCD's own words.
    pub fn add_app(&self, spec: AppSpec) -> Result<(), String> {
        if let Some(existing) = self.inner.apps.lock().get(&spec.name) {
            if existing.spec == spec {
                return Ok(());
            }
            return Err(
                "rpc error: code = InvalidArgument desc = existing application spec is different, use upsert flag to force update"
                    .into(),
            );
        }
        if self.inner.git.head(&spec.repo_slug).is_none() {
            self.inner.git.create(
                &spec.repo_slug,
                &format!("{} deployment manifests", spec.name),
                Some("YAML"),
                1,
            );
        }
        let head = self
            .inner
            .git
            .head(&spec.repo_slug)
            .map(|c| c.sha)
            .unwrap_or_default();
        let name = spec.name.clone();
        let app = SimApp {
            namespace: "argocd".into(),
            uid: uuid::Uuid::new_v4().to_string(),
            created: Utc::now(),
            resource_version: self.inner.bump(),
            sync_status: "OutOfSync",
            sync_revision: head,
            health: "Missing",
            health_message: None,
            running: None,
            op_state: None,
            history: Vec::new(),
            reconciled_at: Utc::now(),
            spec,
        };
        let v = app.to_json();
        self.inner.apps.lock().insert(name.clone(), app);
        let _ = self.inner.events.send(Arc::new(("ADDED".into(), name, v)));
        Ok(())
    }

    /// Starts a sync of an app to its current head, as auto-sync would.
    pub fn start_sync(&self, app: &str) -> bool {
        let head = self
            .inner
            .apps
            .lock()
            .get(app)
            .map(|a| a.sync_revision.clone());
        match head {
            Some(h) => self.inner.start_op(app, h, "", true, true, false).is_some(),
            None => false,
        }
    }

    /// Every application as the API serves it, by name.
    pub fn apps_json(&self) -> BTreeMap<String, Value> {
        self.inner
            .apps
            .lock()
            .iter()
            .map(|(n, a)| (n.clone(), a.to_json()))
            .collect()
    }

    /// Closes every open stream now (as a proxy timeout would).
    pub fn drop_streams(&self) {
        self.inner.drop_gen.send_modify(|g| *g += 1);
    }

    /// Writes a line that is not JSON into every open stream.
    pub fn inject_garbage(&self) {
        let _ = self
            .inner
            .garbage
            .send("{\"result\": {\"type\": \"MODIFIED\", \"application\": {broken\n".into());
    }

    /// Makes ArgoCD's RBAC refuse every action (sync, rollback, terminate).
    pub fn deny_actions(&self, deny: bool) {
        self.inner
            .deny_actions
            .store(deny, std::sync::atomic::Ordering::SeqCst);
    }

    /// List requests answered so far (a watcher's re-lists among them).
    pub fn list_count(&self) -> u64 {
        self.inner.lists.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Stream connections accepted so far.
    pub fn stream_count(&self) -> u64 {
        self.inner.streams.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Open stream connections right now.
    pub fn open_streams(&self) -> usize {
        self.inner.events.receiver_count()
    }

    /// Builds resource trees from the destination cluster's objects from now on.
    pub fn attach_cluster(&self, live: LiveObjects) {
        *self.inner.live.lock() = Some(live);
    }

    /// Successful syncs, for the Kubernetes simulation's rollouts.
    pub fn synced_events(&self) -> broadcast::Receiver<(String, String)> {
        self.inner.synced.subscribe()
    }

    pub fn git(&self) -> Arc<GitWorld> {
        self.inner.git.clone()
    }
}

async fn version(State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    if let Err(r) = check_token(&inner, &headers) {
        return *r;
    }
    Json(json!({"Version": "v2.13.3+idp-graph-sim", "BuildDate": "2026-01-01T00:00:00Z", "GoVersion": "go1.23.4",
                "Compiler": "gc", "Platform": "linux/amd64"})).into_response()
}

fn selected(inner: &Inner, raw: &Option<String>) -> Vec<Value> {
    let q = query_pairs(raw);
    let projects: Vec<&str> = q
        .iter()
        .filter(|(k, _)| k == "projects" || k == "project")
        .map(|(_, v)| v.as_str())
        .collect();
    let name = q.iter().find(|(k, _)| k == "name").map(|(_, v)| v.clone());
    let selector = q
        .iter()
        .find(|(k, _)| k == "selector")
        .and_then(|(_, v)| crate::domain::selector::LabelSelector::parse(v).ok());
    inner
        .apps
        .lock()
        .values()
        .filter(|a| projects.is_empty() || projects.contains(&a.spec.project.as_str()))
        .filter(|a| name.as_deref().is_none_or(|n| n == a.spec.name))
        .filter(|a| selector.as_ref().is_none_or(|s| s.matches(&a.spec.labels)))
        .map(SimApp::to_json)
        .collect()
}

async fn list(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(r) = check_token(&inner, &headers) {
        return *r;
    }
    let items = selected(&inner, &raw);
    let rv = *inner.next_rv.lock();
    inner
        .lists
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    Json(json!({"metadata": {"resourceVersion": rv.to_string()}, "items": items})).into_response()
}

async fn get_app(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(r) = check_token(&inner, &headers) {
        return *r;
    }
    let q = query_pairs(&raw);
    let with_project = q.iter().any(|(k, _)| k == "project");
    let refresh = q
        .iter()
        .find(|(k, _)| k == "refresh")
        .map(|(_, v)| v.clone());
    let exists = inner.apps.lock().contains_key(&name);
    if !exists {
        return if with_project {
            grpc_error(5, &format!("applications.argoproj.io \"{name}\" not found"))
        } else {
            grpc_error(7, "permission denied")
        };
    }
    let v = match refresh.as_deref() {
        Some("normal" | "hard") => inner.modify(&name, |a| a.reconciled_at = Utc::now()),
        Some(other) => return grpc_error(3, &format!("unknown refresh type: {other}")),
        None => inner.apps.lock().get(&name).map(SimApp::to_json),
    };
    match v {
        Some(v) => Json(v).into_response(),
        None => grpc_error(7, "permission denied"),
    }
}

async fn sync(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let req = match action_request(&inner, &headers, Some(&body)) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let (busy, head) = match inner.apps.lock().get(&name) {
        None => return grpc_error(7, "permission denied"),
        Some(a) => (a.running.is_some(), a.sync_revision.clone()),
    };
    if busy {
        return grpc_error(9, "another operation is already in progress");
    }
    let revision = match req
        .get("revision")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
    {
        None => head,
        Some(r) => {
            let slug = inner
                .apps
                .lock()
                .get(&name)
                .map(|a| a.spec.repo_slug.clone())
                .unwrap_or_default();
            match inner.git.commit(&slug, r) {
                Some(c) => c.sha,
                None => {
                    return grpc_error(
                        2,
                        &format!(
                        "rpc error: code = Unknown desc = unable to resolve '{r}' to a commit SHA"
                    ),
                    )
                }
            }
        }
    };
    let prune = req.get("prune").and_then(Value::as_bool).unwrap_or(false);
    let dry_run = req.get("dryRun").and_then(Value::as_bool).unwrap_or(false);
    match inner.start_op(&name, revision, "admin", false, prune, dry_run) {
        Some(v) => Json(v).into_response(),
        None => grpc_error(7, "permission denied"),
    }
}

async fn rollback(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let req = match action_request(&inner, &headers, Some(&body)) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let Some(id) = req.get("id").and_then(|v| {
        v.as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    }) else {
        return grpc_error(3, "id is required");
    };
    let revision = {
        let apps = inner.apps.lock();
        let Some(a) = apps.get(&name) else {
            return grpc_error(7, "permission denied");
        };
        if a.spec.auto_sync {
            return grpc_error(9, "rollback cannot be initiated when auto-sync is enabled");
        }
        if a.running.is_some() {
            return grpc_error(9, "another operation is already in progress");
        }
        match a.history.iter().find(|h| h.id == id) {
            Some(h) => h.revision.clone(),
            None => {
                return grpc_error(
                    3,
                    &format!("application {name} does not have deployment with id {id}"),
                )
            }
        }
    };
    let prune = req.get("prune").and_then(Value::as_bool).unwrap_or(false);
    let dry_run = req.get("dryRun").and_then(Value::as_bool).unwrap_or(false);
    match inner.start_op(&name, revision, "admin", false, prune, dry_run) {
        Some(v) => Json(v).into_response(),
        None => grpc_error(7, "permission denied"),
    }
}

async fn terminate(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    if let Err(r) = action_request(&inner, &headers, None) {
        return *r;
    }
    let running = match inner.apps.lock().get(&name) {
        None => return grpc_error(7, "permission denied"),
        Some(a) => a.running.is_some(),
    };
    if !running {
        return grpc_error(
            9,
            "Unable to terminate operation. No operation is in progress",
        );
    }
    inner.modify(&name, |a| {
        a.running = None;
        if let Some(op) = a.op_state.as_mut() {
            op.phase = "Failed";
            op.message = "Operation terminated".into();
            op.finished_at = Some(Utc::now());
        }
    });
    Json(json!({})).into_response()
}

async fn resource_tree(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    if let Err(r) = check_token(&inner, &headers) {
        return *r;
    }
    let apps = inner.apps.lock();
    let Some(a) = apps.get(&name) else {
        return grpc_error(7, "permission denied");
    };
    let ns = &a.spec.dest_namespace;
    if let Some(live) = inner.live.lock().clone() {
        let objects = live(ns);
        return Json(json!({"nodes": tree_of(&objects, a.health), "hosts": []})).into_response();
    }
    let rs = format!(
        "{}-{}",
        a.spec.name,
        &a.sync_revision[..a.sync_revision.len().min(10)]
    );
    let health = json!({"status": a.health});
    let nodes = json!([
        {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": ns, "name": a.spec.name, "uid": format!("{}-deploy", a.uid), "health": health, "createdAt": ts(a.created)},
        {"group": "apps", "version": "v1", "kind": "ReplicaSet", "namespace": ns, "name": rs, "uid": format!("{}-rs", a.uid), "health": health,
         "parentRefs": [{"group": "apps", "kind": "Deployment", "namespace": ns, "name": a.spec.name, "uid": format!("{}-deploy", a.uid)}]},
        {"version": "v1", "kind": "Pod", "namespace": ns, "name": format!("{rs}-x7k2p"), "uid": format!("{}-pod", a.uid), "health": health,
         "images": [a.spec.image], "parentRefs": [{"group": "apps", "kind": "ReplicaSet", "namespace": ns, "name": rs, "uid": format!("{}-rs", a.uid)}]},
        {"version": "v1", "kind": "Service", "namespace": ns, "name": a.spec.name, "uid": format!("{}-svc", a.uid), "health": {"status": "Healthy"}},
    ]);
    Json(json!({"nodes": nodes, "hosts": []})).into_response()
}

/// ArgoCD's resource tree over the cluster's objects: Deployments, their ReplicaSets and pods
/// (parents from owner references), Services; UIDs and names as the cluster has them.
fn tree_of(objects: &[(&'static str, Value)], app_health: &str) -> Vec<Value> {
    objects
        .iter()
        .map(|(kind, o)| {
            let m = &o["metadata"];
            let (g, v) = group_version(kind);
            let health = match *kind {
                "Pod" => {
                    let ready = o["status"]["conditions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True");
                    if ready { "Healthy" } else { "Progressing" }
                }
                "Service" => "Healthy",
                _ => app_health,
            };
            let mut node = json!({
                "version": v, "kind": kind, "namespace": m["namespace"], "name": m["name"],
                "uid": m["uid"], "resourceVersion": m["resourceVersion"],
                "createdAt": m["creationTimestamp"], "health": {"status": health},
            });
            if !g.is_empty() {
                node["group"] = json!(g);
            }
            let parents: Vec<Value> = m["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    let g = r["apiVersion"].as_str().unwrap_or("v1").rsplit_once('/').map_or("", |(g, _)| g);
                    json!({"group": g, "kind": r["kind"], "namespace": m["namespace"], "name": r["name"], "uid": r["uid"]})
                })
                .collect();
            if !parents.is_empty() {
                node["parentRefs"] = json!(parents);
            }
            if *kind == "Pod" {
                let images: Vec<Value> = o["spec"]["containers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| c["image"].clone())
                    .collect();
                node["images"] = json!(images);
            }
            node
        })
        .collect()
}

fn group_version(kind: &str) -> (&'static str, &'static str) {
    match kind {
        "Deployment" | "ReplicaSet" => ("apps", "v1"),
        _ => ("", "v1"),
    }
}

async fn list_projects(State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    if let Err(r) = check_token(&inner, &headers) {
        return *r;
    }
    Json(json!({"metadata": {}, "items": inner.projects})).into_response()
}

async fn stream(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(r) = check_token(&inner, &headers) {
        return *r;
    }
    inner
        .streams
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let sse = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"));
    // Subscribe before the snapshot so nothing falls between them.
    let mut events = inner.events.subscribe();
    let mut garbage = inner.garbage.subscribe();
    let mut dropper = inner.drop_gen.subscribe();
    dropper.mark_unchanged();
    let initial: Vec<Value> = selected(&inner, &raw);
    let keepalive = inner.timing.keepalive;
    let frame = move |v: &Value| -> Bytes {
        let line = json!({"result": v}).to_string();
        if sse {
            Bytes::from(format!("data: {line} \n\n\n"))
        } else {
            Bytes::from(format!("{line}\n"))
        }
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(64);
    tokio::spawn(async move {
        let mut last: HashMap<String, String> = HashMap::new();
        for app in initial {
            let name = app
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let ev = json!({"type": "ADDED", "application": app});
            last.insert(name, ev["application"].to_string());
            if tx.send(Ok(frame(&ev))).await.is_err() {
                return;
            }
        }
        let mut tick = tokio::time::interval(keepalive);
        tick.tick().await;
        loop {
            let out = tokio::select! {
                _ = dropper.changed() => return,
                _ = tick.tick() => {
                    if !sse { continue; }
                    Bytes::from_static(b":\n")
                }
                g = garbage.recv() => match g {
                    Ok(line) => Bytes::from(line),
                    Err(_) => continue,
                },
                e = events.recv() => match e {
                    Ok(ev) => {
                        let (kind, name, app) = (&ev.0, &ev.1, &ev.2);
                        let text = app.to_string();
                        if kind != "DELETED" && last.get(name) == Some(&text) {
                            continue;
                        }
                        last.insert(name.clone(), text);
                        frame(&json!({"type": kind, "application": app}))
                    }
                    // ArgoCD drops events for a subscriber whose buffer is full, silently.
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            };
            if tx.send(Ok(out)).await.is_err() {
                return;
            }
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let ct = if sse {
        "text/event-stream"
    } else {
        "application/json"
    };
    ([(header::CONTENT_TYPE, ct)], body).into_response()
}
