//! Deployments and ReplicaSets as this server holds them, and a Deployment's rollout as
//! `kubectl rollout status` computes it. Like [`super::PodInfo`], the projections keep what the
//! graph shows: the generated `Deployment` and `ReplicaSet` carry a whole pod template (a
//! `PodSpec` plus ~2 KiB per container before any data), of which only the images are read.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Deserialize;

use super::{ConditionInfo, RESTARTED_AT};

/// A Deployment's replica counts: the spec's desire, the status's counts (absent = 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReplicaCounts {
    pub desired: i32,
    pub current: i32,
    pub updated: i32,
    pub ready: i32,
    pub available: i32,
    pub unavailable: i32,
}

/// `spec.strategy`; surge and unavailability as written (`25%` or `1`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StrategyInfo {
    pub type_: String,
    pub max_surge: Option<String>,
    pub max_unavailable: Option<String>,
}

/// A Deployment as this server holds it.
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "Deployment")]
pub struct DeploymentInfo {
    pub metadata: ObjectMeta,
    pub replicas: ReplicaCounts,
    pub observed_generation: Option<i64>,
    pub conditions: Vec<ConditionInfo>,
    pub strategy: Option<StrategyInfo>,
    /// The pod template's container images.
    pub images: Vec<String>,
    /// The pod template's `kubectl.kubernetes.io/restartedAt`.
    pub restarted_at: Option<String>,
}

/// `1` or `25%`, as written.
pub fn int_or_string(v: &IntOrString) -> String {
    match v {
        IntOrString::Int(i) => i.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

/// The container images of a pod template.
pub fn template_images(t: Option<&PodTemplateSpec>) -> Vec<String> {
    t.and_then(|t| t.spec.as_ref())
        .map(|s| {
            s.containers
                .iter()
                .filter_map(|c| c.image.clone())
                .collect()
        })
        .unwrap_or_default()
}

impl From<Deployment> for DeploymentInfo {
    fn from(d: Deployment) -> Self {
        let spec = d.spec.unwrap_or_default();
        let st = d.status.unwrap_or_default();
        Self {
            metadata: d.metadata,
            replicas: ReplicaCounts {
                desired: spec.replicas.unwrap_or(1),
                current: st.replicas.unwrap_or(0),
                updated: st.updated_replicas.unwrap_or(0),
                ready: st.ready_replicas.unwrap_or(0),
                available: st.available_replicas.unwrap_or(0),
                unavailable: st.unavailable_replicas.unwrap_or(0),
            },
            observed_generation: st.observed_generation,
            conditions: st
                .conditions
                .into_iter()
                .flatten()
                .map(ConditionInfo::from)
                .collect(),
            strategy: spec.strategy.map(|s| {
                let ru = s.rolling_update.unwrap_or_default();
                StrategyInfo {
                    type_: s.type_.unwrap_or_else(|| "RollingUpdate".into()),
                    max_surge: ru.max_surge.as_ref().map(int_or_string),
                    max_unavailable: ru.max_unavailable.as_ref().map(int_or_string),
                }
            }),
            images: template_images(Some(&spec.template)),
            restarted_at: spec
                .template
                .metadata
                .and_then(|m| m.annotations)
                .and_then(|mut a| a.remove(RESTARTED_AT)),
        }
    }
}

projection_resource!(DeploymentInfo, "apps", "Deployment", "deployments");

/// A ReplicaSet as this server holds it.
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "ReplicaSet")]
pub struct ReplicaSetInfo {
    pub metadata: ObjectMeta,
    pub desired: i32,
    pub ready: i32,
    pub available: i32,
    pub images: Vec<String>,
}

impl From<ReplicaSet> for ReplicaSetInfo {
    fn from(r: ReplicaSet) -> Self {
        let spec = r.spec.unwrap_or_default();
        let st = r.status.unwrap_or_default();
        Self {
            metadata: r.metadata,
            desired: spec.replicas.unwrap_or(1),
            ready: st.ready_replicas.unwrap_or(0),
            available: st.available_replicas.unwrap_or(0),
            images: template_images(spec.template.as_ref()),
        }
    }
}

projection_resource!(ReplicaSetInfo, "apps", "ReplicaSet", "replicasets");

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RolloutState {
    Complete,
    Progressing,
    Stalled,
}

/// Where a Deployment's rollout stands, computed as `kubectl rollout status` does.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

pub fn rollout(d: &DeploymentInfo) -> Rollout {
    let r = d.replicas;
    let (spec_replicas, updated, ready, available, current) =
        (r.desired, r.updated, r.ready, r.available, r.current);
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
    if d.metadata.generation.unwrap_or(0) > d.observed_generation.unwrap_or(0) {
        return mk(
            RolloutState::Progressing,
            None,
            "waiting for the deployment spec update to be observed".into(),
        );
    }
    let progressing = d.conditions.iter().find(|c| c.type_ == "Progressing");
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

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(v: serde_json::Value) -> DeploymentInfo {
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
    fn workloads_are_kept_as_what_the_graph_shows() {
        let d = deployment(
            serde_json::json!({"metadata": {"name": "web", "namespace": "a"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                     "template": {"metadata": {"annotations": {RESTARTED_AT: "2026-11-30T10:00:00Z", "other": "x"}},
                                  "spec": {"containers": [{"name": "app", "image": "web:2"}, {"name": "proxy", "image": "envoy:1"}]}}},
            "status": {"replicas": 4, "updatedReplicas": 2, "unavailableReplicas": 1}}),
        );
        assert_eq!(
            d.replicas,
            ReplicaCounts {
                desired: 3,
                current: 4,
                updated: 2,
                ready: 0,
                available: 0,
                unavailable: 1
            }
        );
        assert_eq!(d.images, ["web:2", "envoy:1"]);
        assert_eq!(d.restarted_at.as_deref(), Some("2026-11-30T10:00:00Z"));
        let s = d.strategy.unwrap();
        assert_eq!(
            (s.max_surge.as_deref(), s.max_unavailable.as_deref()),
            (Some("25%"), Some("1"))
        );
        let r: ReplicaSetInfo = serde_json::from_value(serde_json::json!({"metadata": {"name": "web-1"},
            "spec": {"replicas": 2, "selector": {}, "template": {"spec": {"containers": [{"name": "app", "image": "web:2"}]}}},
            "status": {"replicas": 2, "readyReplicas": 1}}))
        .unwrap();
        assert_eq!(
            (r.desired, r.ready, r.available, r.images.as_slice()),
            (2, 1, 0, &["web:2".to_string()][..])
        );
        assert!(std::mem::size_of::<DeploymentInfo>() < std::mem::size_of::<Deployment>() / 3);
        assert!(std::mem::size_of::<ReplicaSetInfo>() < std::mem::size_of::<ReplicaSet>() / 3);
    }
}
