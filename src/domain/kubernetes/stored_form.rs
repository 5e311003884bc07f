//! The form a stored object takes between replicas (the shared change log and its snapshots):
//! the projection's own fields, not the Kubernetes wire shape its `Deserialize` reads. Each
//! mirror below lists its type's fields; serde's `remote` derive builds the type from them, so a
//! field added to a projection and forgotten here does not compile.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{
    ConditionInfo, ConfigMapInfo, ContainerInfo, DeploymentInfo, EventInfo, KubeObject, PodInfo,
    ReplicaCounts, ReplicaSetInfo, SecretInfo, StrategyInfo,
};

#[derive(Serialize, Deserialize)]
#[serde(remote = "DeploymentInfo")]
struct DeploymentForm {
    metadata: ObjectMeta,
    replicas: ReplicaCounts,
    observed_generation: Option<i64>,
    conditions: Vec<ConditionInfo>,
    strategy: Option<StrategyInfo>,
    images: Vec<String>,
    restarted_at: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "ReplicaSetInfo")]
struct ReplicaSetForm {
    metadata: ObjectMeta,
    desired: i32,
    ready: i32,
    available: i32,
    images: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "PodInfo")]
struct PodForm {
    metadata: ObjectMeta,
    phase: Option<String>,
    node_name: Option<String>,
    pod_ip: Option<String>,
    pod_ips: Vec<String>,
    host_ip: Option<String>,
    start_time: Option<chrono::DateTime<chrono::Utc>>,
    conditions: Vec<ConditionInfo>,
    containers: Vec<ContainerInfo>,
}

/// Key names only: a Secret's values were never read, so they cannot travel either.
#[derive(Serialize, Deserialize)]
#[serde(remote = "SecretInfo")]
struct SecretForm {
    metadata: ObjectMeta,
    type_: Option<String>,
    keys: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "ConfigMapInfo")]
struct ConfigMapForm {
    metadata: ObjectMeta,
    keys: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "EventInfo")]
struct EventForm {
    metadata: ObjectMeta,
    involved: Option<(String, String, String)>,
    type_: Option<String>,
    reason: Option<String>,
    message: Option<String>,
    count: Option<i32>,
    first_seen: Option<chrono::DateTime<chrono::Utc>>,
    last_seen: Option<chrono::DateTime<chrono::Utc>>,
    source: Option<String>,
}

/// `KubeObject` tagged by kind.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", content = "object")]
enum Form {
    Namespace(Namespace),
    Deployment(#[serde(with = "DeploymentForm")] DeploymentInfo),
    ReplicaSet(#[serde(with = "ReplicaSetForm")] ReplicaSetInfo),
    StatefulSet(StatefulSet),
    DaemonSet(DaemonSet),
    Pod(#[serde(with = "PodForm")] PodInfo),
    Service(Service),
    Ingress(Ingress),
    ConfigMap(#[serde(with = "ConfigMapForm")] ConfigMapInfo),
    Secret(#[serde(with = "SecretForm")] SecretInfo),
    Event(#[serde(with = "EventForm")] EventInfo),
}

impl Serialize for KubeObject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let form = match self {
            KubeObject::Namespace(o) => Form::Namespace((**o).clone()),
            KubeObject::Deployment(o) => Form::Deployment((**o).clone()),
            KubeObject::ReplicaSet(o) => Form::ReplicaSet((**o).clone()),
            KubeObject::StatefulSet(o) => Form::StatefulSet((**o).clone()),
            KubeObject::DaemonSet(o) => Form::DaemonSet((**o).clone()),
            KubeObject::Pod(o) => Form::Pod((**o).clone()),
            KubeObject::Service(o) => Form::Service((**o).clone()),
            KubeObject::Ingress(o) => Form::Ingress((**o).clone()),
            KubeObject::ConfigMap(o) => Form::ConfigMap((**o).clone()),
            KubeObject::Secret(o) => Form::Secret((**o).clone()),
            KubeObject::Event(o) => Form::Event((**o).clone()),
        };
        form.serialize(s)
    }
}

impl<'de> Deserialize<'de> for KubeObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Form::deserialize(d)? {
            Form::Namespace(o) => KubeObject::Namespace(Arc::new(o)),
            Form::Deployment(o) => KubeObject::Deployment(Arc::new(o)),
            Form::ReplicaSet(o) => KubeObject::ReplicaSet(Arc::new(o)),
            Form::StatefulSet(o) => KubeObject::StatefulSet(Arc::new(o)),
            Form::DaemonSet(o) => KubeObject::DaemonSet(Arc::new(o)),
            Form::Pod(o) => KubeObject::Pod(Arc::new(o)),
            Form::Service(o) => KubeObject::Service(Arc::new(o)),
            Form::Ingress(o) => KubeObject::Ingress(Arc::new(o)),
            Form::ConfigMap(o) => KubeObject::ConfigMap(Arc::new(o)),
            Form::Secret(o) => KubeObject::Secret(Arc::new(o)),
            Form::Event(o) => KubeObject::Event(Arc::new(o)),
        })
    }
}

/// A `DeploymentInfo` in its stored form (a rollout change carries one).
pub mod deployment {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Arc<DeploymentInfo>, s: S) -> Result<S::Ok, S::Error> {
        DeploymentForm::serialize(d, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<DeploymentInfo>, D::Error> {
        DeploymentForm::deserialize(d).map(Arc::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_and_a_secret_survive_the_stored_form_and_a_secret_carries_no_value() {
        let pod: PodInfo = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "n", "resourceVersion": "7"},
            "spec": {"containers": [{"name": "c", "image": "i:1"}]},
            "status": {"phase": "Running", "containerStatuses": [{"name": "c", "ready": true,
                "restartCount": 3, "image": "i:1", "imageID": "", "state": {"running": {}}}]}
        }))
        .unwrap();
        let obj = KubeObject::Pod(Arc::new(pod));
        let text = serde_json::to_string(&obj).unwrap();
        let back: KubeObject = serde_json::from_str(&text).unwrap();
        let KubeObject::Pod(p) = back else {
            panic!("a pod comes back as a pod")
        };
        assert_eq!(p.phase.as_deref(), Some("Running"));
        assert_eq!(p.containers[0].restart_count, 3);
        assert_eq!(serde_json::to_string(&KubeObject::Pod(p)).unwrap(), text);

        let secret: SecretInfo = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "s", "namespace": "n"}, "type": "Opaque",
            "data": {"password": "aHVudGVyMg=="}
        }))
        .unwrap();
        let text = serde_json::to_string(&KubeObject::Secret(Arc::new(secret))).unwrap();
        assert!(
            text.contains("password") && !text.contains("aHVudGVyMg"),
            "{text}"
        );
    }
}
