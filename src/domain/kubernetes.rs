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

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
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
        let mut keys: Vec<String> = w
            .data
            .into_iter()
            .chain(w.string_data)
            .flat_map(|m| m.into_keys())
            .collect();
        keys.sort();
        keys.dedup();
        Self {
            metadata: w.metadata,
            type_: w.type_,
            keys,
        }
    }
}

impl kube::Resource for SecretInfo {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;
    fn kind(_: &()) -> std::borrow::Cow<'_, str> {
        "Secret".into()
    }
    fn group(_: &()) -> std::borrow::Cow<'_, str> {
        "".into()
    }
    fn version(_: &()) -> std::borrow::Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> std::borrow::Cow<'_, str> {
        "secrets".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloutState {
    Complete,
    Progressing,
    Stalled,
}

/// Where a Deployment's rollout stands, computed as `kubectl rollout status` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    pub state: RolloutState,
    pub desired: i32,
    pub updated: i32,
    pub ready: i32,
    pub available: i32,
    /// The Progressing condition's reason when stalled (`ProgressDeadlineExceeded`).
    pub reason: Option<String>,
    pub message: String,
}

pub fn rollout(d: &Deployment) -> Rollout {
    let spec_replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let st = d.status.clone().unwrap_or_default();
    let (updated, ready, available, current) = (
        st.updated_replicas.unwrap_or(0),
        st.ready_replicas.unwrap_or(0),
        st.available_replicas.unwrap_or(0),
        st.replicas.unwrap_or(0),
    );
    let mk = |state, reason: Option<String>, message: String| Rollout {
        state,
        desired: spec_replicas,
        updated,
        ready,
        available,
        reason,
        message,
    };
    let name = d.metadata.name.as_deref().unwrap_or("");
    if d.metadata.generation.unwrap_or(0) > st.observed_generation.unwrap_or(0) {
        return mk(
            RolloutState::Progressing,
            None,
            "waiting for the deployment spec update to be observed".into(),
        );
    }
    let progressing = st
        .conditions
        .as_ref()
        .and_then(|c| c.iter().find(|c| c.type_ == "Progressing"));
    if let Some(c) = progressing {
        if c.reason.as_deref() == Some("ProgressDeadlineExceeded") {
            return mk(
                RolloutState::Stalled,
                c.reason.clone(),
                format!("deployment \"{name}\" exceeded its progress deadline"),
            );
        }
    }
    if updated < spec_replicas {
        return mk(
            RolloutState::Progressing,
            None,
            format!("{updated} of {spec_replicas} updated replicas are available"),
        );
    }
    if current > updated {
        return mk(
            RolloutState::Progressing,
            None,
            format!("{} old replicas are pending termination", current - updated),
        );
    }
    if available < updated {
        return mk(
            RolloutState::Progressing,
            None,
            format!("{available} of {updated} updated replicas are available"),
        );
    }
    mk(
        RolloutState::Complete,
        None,
        format!("deployment \"{name}\" successfully rolled out"),
    )
}

/// A pod's Ready condition.
pub fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True")
}

pub fn pod_restarts(p: &Pod) -> i32 {
    p.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|c| c.iter().map(|c| c.restart_count).sum())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(v: serde_json::Value) -> Deployment {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn rollout_follows_kubectl_rollout_status() {
        let base = serde_json::json!({"metadata": {"name": "web", "generation": 2},
            "spec": {"replicas": 3, "selector": {}, "template": {}},
            "status": {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3}});
        assert_eq!(
            rollout(&deployment(base.clone())).state,
            RolloutState::Complete
        );
        let mut v = base.clone();
        v["metadata"]["generation"] = 3.into();
        assert_eq!(rollout(&deployment(v)).state, RolloutState::Progressing);
        let mut v = base.clone();
        v["status"]["updatedReplicas"] = 1.into();
        let r = rollout(&deployment(v));
        assert_eq!(
            (r.state, r.updated, r.desired),
            (RolloutState::Progressing, 1, 3)
        );
        let mut v = base.clone();
        v["status"]["replicas"] = 4.into();
        assert!(rollout(&deployment(v)).message.contains("1 old replicas"));
        let mut v = base;
        v["status"]["conditions"] = serde_json::json!([{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]);
        let r = rollout(&deployment(v));
        assert_eq!(r.state, RolloutState::Stalled);
        assert_eq!(r.reason.as_deref(), Some("ProgressDeadlineExceeded"));
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
