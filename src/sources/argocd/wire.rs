//! ArgoCD's JSON (Go encoding/json of the CRD types: camelCase, RFC3339 times, omitempty), as
//! sent by the REST API and the stream. Private to this source; converted here.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::domain::argocd::*;

#[derive(Debug, Deserialize)]
pub(super) struct AppList {
    /// Raw items: each is parsed straight into the typed app, never into a `Value` tree
    /// (an 8,000-app list is ~17 MB; a `Value` tree of it is several times that).
    #[serde(default)]
    pub items: Option<Vec<Box<serde_json::value::RawValue>>>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ProjectList {
    #[serde(default)]
    pub items: Option<Vec<WireProject>>,
}

/// One line of `/api/v1/stream/applications`.
#[derive(Debug, Deserialize)]
pub(super) struct StreamLine {
    #[serde(default)]
    pub result: Option<WatchEvent>,
    #[serde(default)]
    pub error: Option<StreamError>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WatchEvent {
    #[serde(rename = "type")]
    pub kind: String,
    pub application: Box<serde_json::value::RawValue>,
}

#[derive(Debug, Deserialize)]
pub(super) struct StreamError {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub http_code: Option<u16>,
}

/// grpc-gateway v1 error body: `{"error","code","message"}`.
#[derive(Debug, Deserialize)]
pub(super) struct ErrorBody {
    #[serde(default)]
    pub code: Option<i32>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    name: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    uid: Option<String>,
    #[serde(default)]
    resource_version: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    creation_timestamp: Option<DateTime<Utc>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireSource {
    #[serde(default, rename = "repoURL")]
    repo_url: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    chart: Option<String>,
    #[serde(default)]
    target_revision: Option<String>,
}

impl From<WireSource> for AppSource {
    fn from(s: WireSource) -> Self {
        Self {
            repo_url: s.repo_url,
            path: s.path,
            chart: s.chart,
            target_revision: s.target_revision,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct WireDestination {
    #[serde(default)]
    server: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireSpec {
    #[serde(default)]
    project: String,
    #[serde(default)]
    source: Option<WireSource>,
    #[serde(default)]
    sources: Vec<WireSource>,
    #[serde(default)]
    destination: WireDestination,
    #[serde(default)]
    sync_policy: Option<WireSyncPolicy>,
}

#[derive(Debug, Default, Deserialize)]
struct WireSyncPolicy {
    #[serde(default)]
    automated: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireStatus {
    #[serde(default)]
    sync: WireSync,
    #[serde(default)]
    health: WireHealth,
    #[serde(default)]
    operation_state: Option<WireOperationState>,
    #[serde(default)]
    reconciled_at: Option<DateTime<Utc>>,
    #[serde(default)]
    history: Vec<WireHistory>,
    #[serde(default)]
    resources: Vec<WireResource>,
    #[serde(default)]
    conditions: Vec<WireCondition>,
    #[serde(default)]
    summary: WireSummary,
}

#[derive(Debug, Default, Deserialize)]
struct WireSummary {
    #[serde(default)]
    images: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
struct WireSync {
    #[serde(default)]
    status: String,
    #[serde(default, rename = "comparedTo")]
    compared_to: Option<WireComparedTo>,
    #[serde(default)]
    revision: Option<String>,
    #[serde(default)]
    revisions: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
struct WireComparedTo {
    #[serde(default)]
    source: Option<WireSource>,
    #[serde(default)]
    sources: Vec<WireSource>,
    #[serde(default)]
    destination: WireDestination,
}

#[derive(Debug, Default, Deserialize)]
struct WireHealth {
    #[serde(default)]
    status: String,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireOperationState {
    #[serde(default)]
    phase: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    finished_at: Option<DateTime<Utc>>,
    #[serde(default)]
    sync_result: Option<WireSyncResult>,
    #[serde(default)]
    operation: Option<WireOperation>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireOperation {
    #[serde(default)]
    initiated_by: Option<WireInitiatedBy>,
}

#[derive(Debug, Default, Deserialize)]
struct WireInitiatedBy {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    automated: bool,
}

#[derive(Debug, Default, Deserialize)]
struct WireSyncResult {
    #[serde(default)]
    revision: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireHistory {
    #[serde(default)]
    id: i64,
    #[serde(default)]
    revision: Option<String>,
    #[serde(default)]
    revisions: Vec<String>,
    #[serde(default)]
    deployed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    deploy_started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    source: Option<WireSource>,
    #[serde(default)]
    initiated_by: Option<WireInitiatedBy>,
}

#[derive(Debug, Default, Deserialize)]
struct WireResource {
    #[serde(default)]
    group: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    health: Option<WireHealth>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireCondition {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    last_transition_time: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
struct WireApp {
    metadata: Meta,
    #[serde(default)]
    spec: WireSpec,
    #[serde(default)]
    status: WireStatus,
    #[serde(default)]
    operation: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireProject {
    metadata: Meta,
    #[serde(default)]
    spec: WireProjectSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireProjectSpec {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    source_repos: Vec<String>,
    #[serde(default)]
    destinations: Vec<WireDestination>,
    #[serde(default)]
    cluster_resource_whitelist: Vec<WireGroupKind>,
}

#[derive(Debug, Default, Deserialize)]
struct WireGroupKind {
    #[serde(default)]
    group: String,
    #[serde(default)]
    kind: String,
}

/// Converts one Application. `Err` carries a reason for the log.
pub(super) fn to_application(instance: &str, json: &str) -> Result<Application, String> {
    let w: WireApp = serde_json::from_str(json).map_err(|e| e.to_string())?;
    if w.metadata.name.is_empty() {
        return Err("application without a name".into());
    }
    let namespace = w
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "argocd".into());
    let key = AppKey {
        instance: instance.to_string(),
        namespace,
        name: w.metadata.name.clone(),
    };
    let mut sources: Vec<AppSource> = w.spec.sources.into_iter().map(AppSource::from).collect();
    if let Some(s) = w.spec.source {
        sources.insert(0, s.into());
    }
    let operation_state = w.status.operation_state.and_then(|o| {
        Some(OperationState {
            phase: OperationPhase::parse(&o.phase)?,
            message: o.message,
            started_at: o.started_at,
            finished_at: o.finished_at,
            sync_result_revision: o.sync_result.and_then(|r| r.revision),
            initiated_by: o
                .operation
                .as_ref()
                .and_then(|op| op.initiated_by.as_ref())
                .and_then(|i| i.username.clone()),
            automated: o
                .operation
                .as_ref()
                .and_then(|op| op.initiated_by.as_ref())
                .is_some_and(|i| i.automated),
        })
    });
    Ok(Application {
        key_string: key.render(),
        key,
        project: if w.spec.project.is_empty() {
            "default".into()
        } else {
            w.spec.project
        },
        uid: w.metadata.uid,
        resource_version: w.metadata.resource_version,
        labels: w.metadata.labels,
        annotations: w.metadata.annotations,
        sources,
        destination: Destination {
            server: w.spec.destination.server,
            name: w.spec.destination.name,
            namespace: w.spec.destination.namespace,
        },
        auto_sync: w
            .spec
            .sync_policy
            .and_then(|p| p.automated)
            .is_some_and(|a| !a.is_null()),
        sync_status: SyncStatus::parse(&w.status.sync.status),
        sync_revision: w.status.sync.revision,
        sync_revisions: w.status.sync.revisions,
        compared_to: w.status.sync.compared_to.map(|c| {
            let mut sources: Vec<AppSource> = c.sources.into_iter().map(AppSource::from).collect();
            if let Some(s) = c.source {
                sources.insert(0, s.into());
            }
            (
                sources,
                Destination {
                    server: c.destination.server,
                    name: c.destination.name,
                    namespace: c.destination.namespace,
                },
            )
        }),
        health: HealthStatus::parse(&w.status.health.status),
        health_message: w.status.health.message,
        operation_state,
        operation_pending: w.operation.is_some_and(|o| !o.is_null()),
        reconciled_at: w.status.reconciled_at,
        history: w
            .status
            .history
            .into_iter()
            .map(|h| HistoryEntry {
                id: h.id,
                revision: h.revision,
                revisions: h.revisions,
                deployed_at: h.deployed_at,
                deploy_started_at: h.deploy_started_at,
                source: h.source.map(AppSource::from),
                initiated_by: h.initiated_by.as_ref().and_then(|i| i.username.clone()),
                automated: h.initiated_by.is_some_and(|i| i.automated),
            })
            .collect(),
        resources: w
            .status
            .resources
            .into_iter()
            .map(|r| ResourceStatus {
                group: r.group,
                version: r.version,
                kind: r.kind,
                namespace: r.namespace.filter(|n| !n.is_empty()),
                name: r.name,
                status: r.status,
                health_message: r.health.as_ref().and_then(|h| h.message.clone()),
                health: r.health.map(|h| HealthStatus::parse(&h.status)),
            })
            .collect(),
        conditions: w
            .status
            .conditions
            .into_iter()
            .map(|c| Condition {
                kind: c.kind,
                message: c.message,
                last_transition_time: c.last_transition_time,
            })
            .collect(),
        images: w.status.summary.images,
        created_at: w.metadata.creation_timestamp,
        observed_at: Utc::now(),
    })
}

pub(super) fn to_project(instance: &str, p: WireProject) -> Project {
    Project {
        instance: instance.to_string(),
        name: p.metadata.name,
        description: p.spec.description,
        source_repos: p.spec.source_repos,
        destinations: p
            .spec
            .destinations
            .into_iter()
            .map(|d| ProjectDestination {
                server: d.server,
                name: d.name,
                namespace: d.namespace,
            })
            .collect(),
        cluster_resource_whitelist: p
            .spec
            .cluster_resource_whitelist
            .into_iter()
            .map(|g| format!("{}/{}", g.group, g.kind))
            .collect(),
    }
}

/// An application's resource tree (`GET .../resource-tree`), read leniently: nodes keep what
/// they have, missing strings become empty, unknown health is `None`.
pub(super) fn to_resource_tree(v: &Value) -> crate::domain::argocd::ResourceTree {
    use crate::domain::argocd::{HealthStatus, ResourceNode, ResourceRef, ResourceTree};
    fn s(v: &Value, k: &str) -> Option<String> {
        v.get(k).and_then(Value::as_str).map(str::to_string)
    }
    fn non_empty(v: &Value, k: &str) -> Option<String> {
        s(v, k).filter(|g| !g.is_empty())
    }
    fn list<'a>(v: &'a Value, k: &str) -> &'a [Value] {
        v.get(k)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
    let nodes = list(v, "nodes")
        .iter()
        .map(|n| ResourceNode {
            group: non_empty(n, "group"),
            version: s(n, "version"),
            kind: s(n, "kind").unwrap_or_default(),
            namespace: non_empty(n, "namespace"),
            name: s(n, "name").unwrap_or_default(),
            uid: s(n, "uid"),
            health: n
                .pointer("/health/status")
                .and_then(Value::as_str)
                .map(HealthStatus::parse),
            health_message: n
                .pointer("/health/message")
                .and_then(Value::as_str)
                .map(str::to_string),
            parent_refs: list(n, "parentRefs")
                .iter()
                .map(|p| ResourceRef {
                    group: s(p, "group").unwrap_or_default(),
                    kind: s(p, "kind").unwrap_or_default(),
                    namespace: non_empty(p, "namespace"),
                    name: s(p, "name").unwrap_or_default(),
                })
                .collect(),
            images: list(n, "images")
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            created_at: s(n, "createdAt"),
        })
        .collect();
    ResourceTree { nodes }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_application_with_status_converts() {
        let v = serde_json::json!({
            "metadata": {"name": "velero-test", "namespace": "argo-cd", "resourceVersion": "722811357", "labels": {"foo": "bar"}},
            "spec": {"project": "sre", "destination": {"name": "gke", "namespace": "test-lla"},
                     "source": {"repoURL": "https://github.com/foo/manifests-velero.git", "path": "instances/test", "targetRevision": "test-lla"}},
            "status": {"health": {"status": "Healthy"},
                "history": [{"id": 17, "revision": "ea87", "deployedAt": "2024-03-04T22:11:41Z", "deployStartedAt": "2024-03-04T22:11:41Z"}],
                "operationState": {"phase": "Succeeded", "startedAt": "2024-03-05T07:33:03Z", "finishedAt": "2024-03-05T07:33:04Z",
                                   "syncResult": {"revision": "ea87"}, "operation": {"initiatedBy": {"username": "foo@example.com"}}},
                "sync": {"status": "Synced", "revision": "ea87"},
                "resources": [{"group": "apps", "kind": "Deployment", "name": "test-lla", "namespace": "test-lla", "status": "Synced", "version": "v1", "health": {"status": "Healthy"}}]}
        });
        let a = to_application("main", &v.to_string()).unwrap();
        assert_eq!(a.key_string, "main/argo-cd/velero-test");
        assert_eq!(a.sync_status, SyncStatus::Synced);
        assert_eq!(a.health, HealthStatus::Healthy);
        assert_eq!(a.history[0].id, 17);
        assert_eq!(
            a.operation_state.as_ref().unwrap().initiated_by.as_deref(),
            Some("foo@example.com")
        );
        assert_eq!(
            a.last_synced_at().unwrap().to_rfc3339(),
            "2024-03-05T07:33:04+00:00"
        );
        assert!(!a.auto_sync);
    }

    #[test]
    fn multi_source_apps_keep_every_source() {
        let v = serde_json::json!({"metadata": {"name": "m"}, "spec": {"sources": [{"repoURL": "a"}, {"repoURL": "b", "chart": "c"}]}});
        let a = to_application("main", &v.to_string()).unwrap();
        assert_eq!(a.repo_urls().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(a.key.namespace, "argocd");
    }
}
