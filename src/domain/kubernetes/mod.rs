//! What the Kubernetes source reads, as RBAC sees it. The ClusterRole in `deploy/` must grant
//! exactly this (tests/deploy.rs checks), so widening either side is a visible, reviewed change.

/// `(API group, resource, verbs)`. Secrets: list and watch only (no `get`). RBAC cannot grant
/// "metadata only": the source parses Secrets into [`SecretInfo`], which skips the values while
/// reading, so only names, labels, annotations, type and key names are ever held.
pub const READ_ACCESS: &[(&str, &str, &[&str])] = &[
    ("", "namespaces", &["get", "list", "watch"]),
    ("", "pods", &["get", "list", "watch"]),
    ("", "services", &["get", "list", "watch"]),
    ("", "configmaps", &["get", "list", "watch"]),
    ("", "events", &["get", "list", "watch"]),
    ("", "secrets", &["list", "watch"]),
    ("apps", "deployments", &["get", "list", "watch"]),
    ("apps", "replicasets", &["get", "list", "watch"]),
    ("apps", "statefulsets", &["get", "list", "watch"]),
    ("apps", "daemonsets", &["get", "list", "watch"]),
    ("networking.k8s.io", "ingresses", &["get", "list", "watch"]),
];

/// What `restartDeployment` needs, granted only by the opt-in `restart` component.
pub const RESTART_ACCESS: &[(&str, &str, &[&str])] = &[("apps", "deployments", &["patch"])];

/// What writing as the caller needs (`impersonate: true`), granted only by the opt-in
/// `impersonate` component.
pub const IMPERSONATE_ACCESS: &[(&str, &str, &[&str])] = &[
    ("", "users", &["impersonate"]),
    ("", "groups", &["impersonate"]),
];

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::IgnoredAny;
use serde::Deserialize;

/// The label the Backstage Kubernetes plugin joins on.
pub const KUBERNETES_ID_LABEL: &str = "backstage.io/kubernetes-id";
/// ArgoCD's default tracking label.
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
/// ArgoCD's annotation tracking (`<app>:<group>/<kind>:<namespace>/<name>`).
pub const TRACKING_ID: &str = "argocd.argoproj.io/tracking-id";
/// What `kubectl rollout restart` sets on the pod template.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The ArgoCD applications an object says it belongs to: its `app.kubernetes.io/instance`
/// label and the app of its `argocd.argoproj.io/tracking-id` annotation (deduplicated).
pub fn argocd_apps_of(meta: &ObjectMeta) -> Vec<&str> {
    let mut apps = Vec::new();
    if let Some(app) = meta.labels.as_ref().and_then(|l| l.get(INSTANCE_LABEL)) {
        apps.push(app.as_str());
    }
    if let Some(app) = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(TRACKING_ID))
        .and_then(|t| t.split(':').next())
        .filter(|a| !a.is_empty())
    {
        if !apps.contains(&app) {
            apps.push(app);
        }
    }
    apps
}

/// Whether a catalog entity claims an object, as the Backstage Kubernetes plugin reads its
/// annotations: the label selector if set, else the `backstage.io/kubernetes-id` label; the
/// namespace annotation narrows.
pub fn entity_claims(join: &crate::domain::annotations::JoinKeys, meta: &ObjectMeta) -> bool {
    let ns = meta.namespace.as_deref().unwrap_or("");
    if join
        .kubernetes_namespace
        .as_deref()
        .is_some_and(|n| n != ns)
    {
        return false;
    }
    let labels = meta.labels.clone().unwrap_or_default();
    match (
        join.kubernetes_label_selector
            .as_deref()
            .and_then(|s| crate::domain::selector::LabelSelector::parse(s).ok()),
        &join.kubernetes_id,
    ) {
        (Some(sel), _) => sel.matches(&labels),
        (None, Some(id)) => labels.get(KUBERNETES_ID_LABEL) == Some(id),
        (None, None) => false,
    }
}

/// Drops what costs memory and is never shown: `managedFields` (often larger than the object)
/// and the client-side-apply copy of the whole manifest.
pub fn strip(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    if let Some(a) = &mut meta.annotations {
        a.remove(LAST_APPLIED);
        if a.is_empty() {
            meta.annotations = None;
        }
    }
}

/// `kube::Resource` for a namespaced kind (`$group` "" is core) kept as our own projection
/// (the API paths are the kind's; only the Rust type is ours).
macro_rules! projection_resource {
    ($ty:ty, $group:literal, $kind:literal, $plural:literal) => {
        impl kube::Resource for $ty {
            type DynamicType = ();
            type Scope = k8s_openapi::NamespaceResourceScope;
            fn kind(_: &()) -> std::borrow::Cow<'_, str> {
                $kind.into()
            }
            fn group(_: &()) -> std::borrow::Cow<'_, str> {
                $group.into()
            }
            fn version(_: &()) -> std::borrow::Cow<'_, str> {
                "v1".into()
            }
            fn plural(_: &()) -> std::borrow::Cow<'_, str> {
                $plural.into()
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

// After the macro: the workload projections use it.
mod kind;
mod stored_form;
pub use stored_form::deployment as deployment_stored_form;
mod workloads;
pub use kind::{Kind, KubeObject};
pub use workloads::*;

/// The keys of maps whose values were skipped while parsing, sorted and unique.
fn key_names(maps: impl IntoIterator<Item = Option<BTreeMap<String, IgnoredAny>>>) -> Vec<String> {
    let mut keys: Vec<String> = maps
        .into_iter()
        .flatten()
        .flat_map(|m| m.into_keys())
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// A Secret as this server holds it: metadata, type and key names. The values are skipped
/// while the JSON is parsed (`IgnoredAny` reads past them without allocating), so no value is
/// ever stored, shown or logged. `Debug` is safe for the same reason.
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "SecretWire")]
pub struct SecretInfo {
    pub metadata: ObjectMeta,
    pub type_: Option<String>,
    pub keys: Vec<String>,
}

#[derive(Deserialize)]
struct SecretWire {
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(rename = "type", default)]
    type_: Option<String>,
    #[serde(default)]
    data: Option<BTreeMap<String, IgnoredAny>>,
    #[serde(rename = "stringData", default)]
    string_data: Option<BTreeMap<String, IgnoredAny>>,
}

impl From<SecretWire> for SecretInfo {
    fn from(w: SecretWire) -> Self {
        Self {
            metadata: w.metadata,
            type_: w.type_,
            keys: key_names([w.data, w.string_data]),
        }
    }
}

projection_resource!(SecretInfo, "", "Secret", "secrets");

/// A ConfigMap as this server holds it: metadata and key names. The graph serves keys only,
/// so the values (often whole config files) are skipped while parsing, not kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "ConfigMapWire")]
pub struct ConfigMapInfo {
    pub metadata: ObjectMeta,
    /// Keys of `data` and `binaryData`, sorted.
    pub keys: Vec<String>,
}

#[derive(Deserialize)]
struct ConfigMapWire {
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    data: Option<BTreeMap<String, IgnoredAny>>,
    #[serde(rename = "binaryData", default)]
    binary_data: Option<BTreeMap<String, IgnoredAny>>,
}

impl From<ConfigMapWire> for ConfigMapInfo {
    fn from(w: ConfigMapWire) -> Self {
        Self {
            metadata: w.metadata,
            keys: key_names([w.data, w.binary_data]),
        }
    }
}

projection_resource!(ConfigMapInfo, "", "ConfigMap", "configmaps");

/// An Event as this server holds it: what an object's `events` field shows and the object it
/// is about. Events are the most numerous and most often replaced objects of a busy cluster
/// (every rollout and restart writes several, and they live an hour), so the generated type
/// (`series`, `related`, `reportingInstance`, two object references…) is dropped at parse time.
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "k8s_openapi::api::core::v1::Event")]
pub struct EventInfo {
    pub metadata: ObjectMeta,
    /// `involvedObject`: (namespace, kind, name).
    pub involved: Option<(String, String, String)>,
    /// `Normal` or `Warning`.
    pub type_: Option<String>,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub count: Option<i32>,
    pub first_seen: Option<chrono::DateTime<chrono::Utc>>,
    /// `lastTimestamp`, else `eventTime` (events.k8s.io writers set only that).
    pub last_seen: Option<chrono::DateTime<chrono::Utc>>,
    /// `source.component`, else `reportingComponent`.
    pub source: Option<String>,
}

impl From<k8s_openapi::api::core::v1::Event> for EventInfo {
    fn from(e: k8s_openapi::api::core::v1::Event) -> Self {
        let io = e.involved_object;
        let last_seen = e.last_timestamp.as_ref().and_then(to_chrono).or_else(|| {
            e.event_time.as_ref().and_then(|t| {
                chrono::DateTime::from_timestamp(
                    t.0.as_second(),
                    t.0.subsec_nanosecond().max(0) as u32,
                )
            })
        });
        Self {
            metadata: e.metadata,
            involved: io
                .kind
                .zip(io.name)
                .map(|(kind, name)| (io.namespace.unwrap_or_default(), kind, name)),
            type_: e.type_,
            reason: e.reason,
            message: e.message,
            count: e.count,
            first_seen: e.first_timestamp.as_ref().and_then(to_chrono),
            last_seen,
            source: e
                .source
                .and_then(|s| s.component)
                .filter(|c| !c.is_empty())
                .or(e.reporting_component)
                .filter(|c| !c.is_empty()),
        }
    }
}

projection_resource!(EventInfo, "", "Event", "events");

/// Kubernetes times (jiff) as chrono times.
pub fn to_chrono(
    t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(t.0.as_second(), t.0.subsec_nanosecond().max(0) as u32)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ContainerState {
    Waiting,
    Running,
    Terminated,
    Unknown,
}

/// One container of a pod, as the graph shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ContainerInfo {
    pub name: String,
    pub image: Option<String>,
    pub ready: bool,
    pub restart_count: i32,
    pub state: ContainerState,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub exit_code: Option<i32>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_exit_code: Option<i32>,
    pub last_reason: Option<String>,
    pub init: bool,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ConditionInfo {
    pub type_: String,
    pub status: String,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub last_transition_time: Option<chrono::DateTime<chrono::Utc>>,
}

/// One `status.conditions` item; pods and Deployments write the same fields.
macro_rules! condition_info_from {
    ($($ty:ty),*) => {$(
        impl From<$ty> for ConditionInfo {
            fn from(c: $ty) -> Self {
                Self {
                    last_transition_time: c.last_transition_time.as_ref().and_then(to_chrono),
                    type_: c.type_,
                    status: c.status,
                    reason: c.reason,
                    message: c.message,
                }
            }
        }
    )*};
}
condition_info_from!(
    k8s_openapi::api::core::v1::PodCondition,
    k8s_openapi::api::apps::v1::DeploymentCondition
);

/// A Pod as this server holds it: what the graph shows, not the whole generated `Pod` (whose
/// structs are ~2 KiB each before any data, and most of a pod spec is never read). Parsed from
/// the full object, which is dropped at once.
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "Pod")]
pub struct PodInfo {
    pub metadata: ObjectMeta,
    pub phase: Option<String>,
    pub node_name: Option<String>,
    pub pod_ip: Option<String>,
    pub pod_ips: Vec<String>,
    pub host_ip: Option<String>,
    pub start_time: Option<chrono::DateTime<chrono::Utc>>,
    pub conditions: Vec<ConditionInfo>,
    /// Init containers first, then the others.
    pub containers: Vec<ContainerInfo>,
}

impl From<Pod> for PodInfo {
    fn from(p: Pod) -> Self {
        let spec = p.spec.unwrap_or_default();
        let status = p.status.unwrap_or_default();
        let images: BTreeMap<String, String> = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .filter_map(|c| Some((c.name.clone(), c.image.clone()?)))
            .collect();
        let conv = |c: k8s_openapi::api::core::v1::ContainerStatus, init: bool| {
            let s = c.state.unwrap_or_default();
            let (state, reason, message, exit_code, started_at) = if let Some(w) = s.waiting {
                (ContainerState::Waiting, w.reason, w.message, None, None)
            } else if let Some(r) = s.running {
                (
                    ContainerState::Running,
                    None,
                    None,
                    None,
                    r.started_at.as_ref().and_then(to_chrono),
                )
            } else if let Some(t) = s.terminated {
                let started = t.started_at.as_ref().and_then(to_chrono);
                (
                    ContainerState::Terminated,
                    t.reason,
                    t.message,
                    Some(t.exit_code),
                    started,
                )
            } else {
                (ContainerState::Unknown, None, None, None, None)
            };
            let last = c.last_state.and_then(|l| l.terminated);
            ContainerInfo {
                image: Some(c.image)
                    .filter(|i| !i.is_empty())
                    .or_else(|| images.get(&c.name).cloned()),
                name: c.name,
                ready: c.ready,
                restart_count: c.restart_count,
                state,
                reason,
                message,
                exit_code,
                started_at,
                last_exit_code: last.as_ref().map(|t| t.exit_code),
                last_reason: last.and_then(|t| t.reason),
                init,
            }
        };
        let mut containers: Vec<ContainerInfo> = status
            .init_container_statuses
            .into_iter()
            .flatten()
            .map(|c| conv(c, true))
            .chain(
                status
                    .container_statuses
                    .into_iter()
                    .flatten()
                    .map(|c| conv(c, false)),
            )
            .collect();
        // Containers without a status yet (just scheduled) still show, as Unknown.
        for c in &spec.containers {
            if !containers.iter().any(|k| k.name == c.name) {
                containers.push(ContainerInfo {
                    name: c.name.clone(),
                    image: c.image.clone(),
                    ready: false,
                    restart_count: 0,
                    state: ContainerState::Unknown,
                    reason: None,
                    message: None,
                    exit_code: None,
                    started_at: None,
                    last_exit_code: None,
                    last_reason: None,
                    init: false,
                });
            }
        }
        Self {
            metadata: p.metadata,
            phase: status.phase,
            node_name: spec.node_name,
            pod_ip: status.pod_ip,
            pod_ips: status.pod_ips.into_iter().flatten().map(|i| i.ip).collect(),
            host_ip: status.host_ip,
            start_time: status.start_time.as_ref().and_then(to_chrono),
            conditions: status
                .conditions
                .into_iter()
                .flatten()
                .map(ConditionInfo::from)
                .collect(),
            containers,
        }
    }
}

projection_resource!(PodInfo, "", "Pod", "pods");

/// A pod's Ready condition.
pub fn pod_ready(p: &PodInfo) -> bool {
    p.conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .is_some_and(|c| c.status == "True")
}

pub fn pod_restarts(p: &PodInfo) -> i32 {
    p.containers
        .iter()
        .filter(|c| !c.init)
        .map(|c| c.restart_count)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_kept_as_what_the_graph_shows() {
        // A core/v1 Event written through events.k8s.io: no lastTimestamp, no source.
        let e: EventInfo = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-1.18a", "namespace": "a"},
            "involvedObject": {"kind": "Pod", "namespace": "a", "name": "web-1", "uid": "u1", "fieldPath": "spec.containers{app}"},
            "type": "Warning", "reason": "BackOff", "message": "Back-off restarting failed container",
            "eventTime": "2026-11-26T10:00:00.250000Z", "reportingComponent": "kubelet", "reportingInstance": "n1",
            "source": {}, "series": {"count": 4, "lastObservedTime": "2026-11-26T10:01:00.000000Z"}
        }))
        .unwrap();
        assert_eq!(e.involved, Some(("a".into(), "Pod".into(), "web-1".into())));
        assert_eq!(e.source.as_deref(), Some("kubelet"));
        assert_eq!(
            e.last_seen.unwrap().to_rfc3339(),
            "2026-11-26T10:00:00.250+00:00"
        );
        assert_eq!((e.first_seen, e.count), (None, None));
        // The classic form: timestamps and source.component.
        let e: EventInfo = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web.17", "namespace": "a"},
            "involvedObject": {"kind": "Deployment", "name": "web"},
            "reason": "ScalingReplicaSet", "count": 2,
            "firstTimestamp": "2026-11-26T09:00:00Z", "lastTimestamp": "2026-11-26T10:00:00Z",
            "source": {"component": "deployment-controller"}, "reportingComponent": ""
        }))
        .unwrap();
        assert_eq!(
            e.involved,
            Some(("".into(), "Deployment".into(), "web".into()))
        );
        assert_eq!(e.source.as_deref(), Some("deployment-controller"));
        assert!(e.first_seen < e.last_seen);
    }

    #[test]
    fn a_pod_is_kept_as_what_the_graph_shows() {
        let p: PodInfo = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-1", "namespace": "a", "managedFields": []},
            "spec": {"nodeName": "n1", "containers": [{"name": "app", "image": "web:1"}, {"name": "sidecar", "image": "proxy:2"}],
                     "initContainers": [{"name": "migrate", "image": "web:1"}], "volumes": [{"name": "v", "emptyDir": {}}]},
            "status": {"phase": "Running", "podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}], "startTime": "2026-11-26T10:00:00Z",
                       "conditions": [{"type": "Ready", "status": "False"}],
                       "initContainerStatuses": [{"name": "migrate", "image": "web:1", "imageID": "", "ready": true, "restartCount": 0,
                                                  "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}],
                       "containerStatuses": [{"name": "app", "image": "web:1", "imageID": "", "ready": false, "restartCount": 7,
                                              "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                                              "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}
        }))
        .unwrap();
        assert!(!pod_ready(&p));
        assert_eq!(pod_restarts(&p), 7);
        assert_eq!(p.pod_ips, ["10.0.0.1"]);
        let names: Vec<(&str, ContainerState, bool)> = p
            .containers
            .iter()
            .map(|c| (c.name.as_str(), c.state, c.init))
            .collect();
        assert_eq!(
            names,
            [
                ("migrate", ContainerState::Terminated, true),
                ("app", ContainerState::Waiting, false),
                ("sidecar", ContainerState::Unknown, false)
            ]
        );
        assert_eq!(p.containers[1].last_exit_code, Some(137));
        assert_eq!(p.containers[2].image.as_deref(), Some("proxy:2"));
        assert!(std::mem::size_of::<PodInfo>() < std::mem::size_of::<Pod>() / 3);
    }

    #[test]
    fn secrets_keep_key_names_and_never_values() {
        let s: SecretInfo = serde_json::from_str(
            r#"{"metadata": {"name": "db", "namespace": "a"}, "type": "Opaque",
                "data": {"password": "aHVudGVyMg==", "user": "YWRtaW4="}}"#,
        )
        .unwrap();
        assert_eq!(s.keys, ["password", "user"]);
        let debug = format!("{s:?}");
        assert!(!debug.contains("aHVudGVyMg") && !debug.contains("hunter2"));
    }

    #[test]
    fn stripping_drops_managed_fields_and_last_applied() {
        let mut m: ObjectMeta = serde_json::from_value(serde_json::json!({"name": "x",
            "annotations": {LAST_APPLIED: "{}", "keep": "1"},
            "managedFields": [{"manager": "kubectl", "operation": "Apply"}]}))
        .unwrap();
        strip(&mut m);
        assert!(m.managed_fields.is_none());
        assert_eq!(m.annotations.unwrap().keys().collect::<Vec<_>>(), ["keep"]);
    }
}
