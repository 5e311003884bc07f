//! The Kubernetes kinds the graph keeps, and one observed object of any of them
//! ([`KubeObject`]) as the event bus carries it. Pure types: the store (`state::kubernetes`)
//! keeps objects by kind, the writer (`state::writers`) wraps each change in a `KubeObject`.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;

use super::{ConfigMapInfo, DeploymentInfo, EventInfo, PodInfo, ReplicaSetInfo, SecretInfo};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Kind {
    Namespace,
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
    Pod,
    Service,
    Ingress,
    ConfigMap,
    Secret,
    Event,
}

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::Namespace,
        Kind::Deployment,
        Kind::ReplicaSet,
        Kind::StatefulSet,
        Kind::DaemonSet,
        Kind::Pod,
        Kind::Service,
        Kind::Ingress,
        Kind::ConfigMap,
        Kind::Secret,
        Kind::Event,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Namespace => "Namespace",
            Kind::Deployment => "Deployment",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::StatefulSet => "StatefulSet",
            Kind::DaemonSet => "DaemonSet",
            Kind::Pod => "Pod",
            Kind::Service => "Service",
            Kind::Ingress => "Ingress",
            Kind::ConfigMap => "ConfigMap",
            Kind::Secret => "Secret",
            Kind::Event => "Event",
        }
    }

    pub fn parse(kind: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == kind)
    }
}

/// One stored object of any kept kind, shared with the store (an `Arc`, never a copy).
#[derive(Debug, Clone)]
pub enum KubeObject {
    Namespace(Arc<Namespace>),
    Deployment(Arc<DeploymentInfo>),
    ReplicaSet(Arc<ReplicaSetInfo>),
    StatefulSet(Arc<StatefulSet>),
    DaemonSet(Arc<DaemonSet>),
    Pod(Arc<PodInfo>),
    Service(Arc<Service>),
    Ingress(Arc<Ingress>),
    ConfigMap(Arc<ConfigMapInfo>),
    Secret(Arc<SecretInfo>),
    Event(Arc<EventInfo>),
}

impl KubeObject {
    pub fn kind(&self) -> Kind {
        match self {
            KubeObject::Namespace(_) => Kind::Namespace,
            KubeObject::Deployment(_) => Kind::Deployment,
            KubeObject::ReplicaSet(_) => Kind::ReplicaSet,
            KubeObject::StatefulSet(_) => Kind::StatefulSet,
            KubeObject::DaemonSet(_) => Kind::DaemonSet,
            KubeObject::Pod(_) => Kind::Pod,
            KubeObject::Service(_) => Kind::Service,
            KubeObject::Ingress(_) => Kind::Ingress,
            KubeObject::ConfigMap(_) => Kind::ConfigMap,
            KubeObject::Secret(_) => Kind::Secret,
            KubeObject::Event(_) => Kind::Event,
        }
    }

    pub fn meta(&self) -> &ObjectMeta {
        match self {
            KubeObject::Namespace(o) => o.meta(),
            KubeObject::Deployment(o) => o.meta(),
            KubeObject::ReplicaSet(o) => o.meta(),
            KubeObject::StatefulSet(o) => o.meta(),
            KubeObject::DaemonSet(o) => o.meta(),
            KubeObject::Pod(o) => o.meta(),
            KubeObject::Service(o) => o.meta(),
            KubeObject::Ingress(o) => o.meta(),
            KubeObject::ConfigMap(o) => o.meta(),
            KubeObject::Secret(o) => o.meta(),
            KubeObject::Event(o) => o.meta(),
        }
    }
}
