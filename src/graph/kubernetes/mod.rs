//! Kubernetes in the graph: clusters, namespaces and the workload kinds, answered from the
//! watch-fed store (never a call to the API server per query); the joins to catalog entities
//! (`backstage.io/kubernetes-id`, `-label-selector`, `-namespace`) and ArgoCD applications
//! (`app.kubernetes.io/instance`, `argocd.argoproj.io/tracking-id`, the app's resource list)
//! and back (Pod → ReplicaSet → Deployment → Application → Component) through the store's
//! indexes; `restartDeployment`.
//!
//! A cluster that is down or not yet listed adds one error per field that reads it
//! (`extensions.code` UPSTREAM_UNAVAILABLE, `extensions.source` the cluster's name); the other
//! clusters still answer, and a cluster that was listed before serves its last known state.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_graphql::{Context, Enum, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::application::ApplicationNode;
use super::entity::{EntityItem, EntityNode, KeyValue};
use super::error::{bad_input, forbidden, not_found};
use super::paging::{encode_cursor, paginate, PageInfo, PageRequest};
use super::{gctx, Viewer};
use crate::domain::argocd::Application;
use crate::domain::kubernetes::{
    self as k8s, int_or_string, to_chrono as ts, ConfigMapInfo as ConfigMap, DeploymentInfo,
    EventInfo, PodInfo as Pod, ReplicaSetInfo, SecretInfo,
};
use crate::domain::Entity;
use crate::state::kubernetes::{ClusterStore, IndexKey, Kind, ObjRef, Stored};

// ---------------------------------------------------------------------------------------------
// Shared pieces

fn kv(m: &Option<BTreeMap<String, String>>) -> Vec<KeyValue> {
    m.iter()
        .flatten()
        .map(|(k, v)| KeyValue {
            key: k.clone(),
            value: v.clone(),
        })
        .collect()
}

/// The key connections sort and page by: cluster, namespace, name, separated by a character
/// that sorts below every character a name may hold, so string order equals tuple order.
fn sort_key(cluster: &str, meta: &ObjectMeta) -> String {
    format!(
        "{cluster}\u{1}{}\u{1}{}",
        meta.namespace.as_deref().unwrap_or(""),
        meta.name.as_deref().unwrap_or("")
    )
}

// ---------------------------------------------------------------------------------------------
// Joins

/// The visible applications that own an object (`State::apps_of_object`).
fn apps_of_object(ctx: &Context<'_>, c: &ClusterStore, meta: &ObjectMeta) -> Vec<ApplicationNode> {
    let viewer = Viewer::of(ctx);
    gctx(ctx)
        .state
        .apps_of_object(c, meta)
        .into_iter()
        .filter(|a| viewer.sees_app(a))
        .map(ApplicationNode)
        .collect()
}

/// The visible catalog entities an object belongs to (`State::entities_of_object`).
fn entities_of_object(ctx: &Context<'_>, c: &ClusterStore, meta: &ObjectMeta) -> Vec<EntityItem> {
    let state = &gctx(ctx).state;
    let snapshot = state.catalog.snapshot();
    let viewer = Viewer::of(ctx);
    state
        .entities_of_object(c, meta)
        .into_iter()
        .filter(|e| viewer.sees_entity(e))
        .map(|e| EntityItem::from(EntityNode::new(e, snapshot.clone())))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Object types

macro_rules! k8s_object {
    ($node:ident, $ty:ty, $gql:literal, $doc:literal, { $($extra:tt)* }) => {
        #[doc = $doc]
        #[derive(Clone)]
        pub struct $node {
            pub cluster: Arc<ClusterStore>,
            pub obj: Arc<$ty>,
        }

        impl $node {
            pub fn new(cluster: Arc<ClusterStore>, obj: Arc<$ty>) -> Self {
                Self { cluster, obj }
            }
            #[allow(dead_code)]
            fn meta(&self) -> &ObjectMeta {
                kube::Resource::meta(&*self.obj)
            }
        }

        #[Object(name = $gql)]
        impl $node {
            pub async fn id(&self) -> async_graphql::ID {
                crate::domain::node_id::NodeId::Kubernetes {
                    kind: $gql.to_string(),
                    cluster: self.cluster.name.clone(),
                    namespace: self.meta().namespace.clone().unwrap_or_default(),
                    name: self.meta().name.clone().unwrap_or_default(),
                }
                .into()
            }
            /// `cluster/Kind/namespace/name`, readable.
            async fn key(&self) -> String {
                format!("{}/{}/{}/{}", self.cluster.name, $gql, self.meta().namespace.as_deref().unwrap_or(""), self.meta().name.as_deref().unwrap_or(""))
            }
            async fn cluster(&self) -> &str { &self.cluster.name }
            async fn namespace(&self) -> Option<&str> { self.meta().namespace.as_deref() }
            async fn name(&self) -> &str { self.meta().name.as_deref().unwrap_or("") }
            async fn uid(&self) -> Option<&str> { self.meta().uid.as_deref() }
            async fn labels(&self) -> Vec<KeyValue> { kv(&self.meta().labels) }
            /// Annotations (the `last-applied-configuration` copy is not kept).
            async fn annotations(&self) -> Vec<KeyValue> { kv(&self.meta().annotations) }
            async fn created_at(&self) -> Option<DateTime<Utc>> {
                self.meta().creation_timestamp.as_ref().and_then(ts)
            }
            /// Seconds since creation.
            async fn age_seconds(&self) -> Option<i64> {
                // Moves with the clock: an answer showing it is good for a second.
                crate::state::reads::note_max_age(std::time::Duration::from_secs(1));
                self.meta().creation_timestamp.as_ref().and_then(ts).map(|t| (Utc::now() - t).num_seconds())
            }
            async fn resource_version(&self) -> Option<&str> { self.meta().resource_version.as_deref() }
            /// Kubernetes Events about this object, newest first.
            async fn events(&self) -> Vec<KubeEvent> {
                events_of(&self.cluster, $gql, self.meta())
            }
            $($extra)*
        }
    };
}

/// A core/v1 Event about an object (`kubectl describe`'s Events section).
#[derive(SimpleObject, Clone)]
#[graphql(name = "KubernetesEvent")]
pub struct KubeEvent {
    /// `Normal` or `Warning`.
    #[graphql(name = "type")]
    pub kind: Option<String>,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub count: Option<i32>,
    pub first_seen: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
    /// The component that reported it (`deployment-controller`, `kubelet`).
    pub source: Option<String>,
}

fn events_of(c: &ClusterStore, kind: &str, meta: &ObjectMeta) -> Vec<KubeEvent> {
    let key = IndexKey::Involved(
        meta.namespace.clone().unwrap_or_default(),
        kind.to_string(),
        meta.name.clone().unwrap_or_default(),
    );
    let mut out: Vec<KubeEvent> = c
        .lookup_kind::<EventInfo>(&key)
        .into_iter()
        .map(|e| KubeEvent {
            kind: e.type_.clone(),
            reason: e.reason.clone(),
            message: e.message.clone(),
            count: e.count,
            first_seen: e.first_seen,
            last_seen: e.last_seen,
            source: e.source.clone(),
        })
        .collect();
    out.sort_by_key(|e| std::cmp::Reverse(e.last_seen));
    out
}

// ---------------------------------------------------------------------------------------------
// Query fields (called from `Query`)

pub fn clusters(ctx: &Context<'_>) -> Vec<ClusterNode> {
    gctx(ctx)
        .state
        .clusters
        .all()
        .into_iter()
        .map(ClusterNode)
        .collect()
}

pub fn namespaces(ctx: &Context<'_>, cluster: Option<String>) -> Result<Vec<NamespaceNode>> {
    let object = ObjectFilter {
        cluster,
        ..Default::default()
    };
    let m = Matcher::new(ctx, object, None, None)?;
    Ok(m.collect::<Namespace>(ctx, |_| true)?
        .into_iter()
        .map(|(c, o)| NamespaceNode::new(c, o))
        .collect())
}

pub fn deployments(
    ctx: &Context<'_>,
    filter: Option<WorkloadFilter>,
    first: Option<i32>,
    after: Option<String>,
) -> Result<DeploymentConnection> {
    let req = PageRequest::new(first, after, gctx(ctx).limits.max_page_size)?;
    let f = filter.unwrap_or_default();
    let m = Matcher::new(ctx, f.object, f.application, f.entity)?;
    let rollout = f.rollout;
    let items = m.collect::<DeploymentInfo>(ctx, |d| {
        rollout.is_none_or(|r| RolloutStateCode::from(k8s::rollout(d).state) == r)
    })?;
    Ok(DeploymentConnection::page(items, &req, DeploymentNode::new))
}

pub fn pods(
    ctx: &Context<'_>,
    filter: Option<PodFilter>,
    first: Option<i32>,
    after: Option<String>,
) -> Result<PodConnection> {
    let req = PageRequest::new(first, after, gctx(ctx).limits.max_page_size)?;
    let f = filter.unwrap_or_default();
    let m = Matcher::new(ctx, f.object, f.application, f.entity)?;
    let (phase, ready, reason) = (f.phase, f.ready, f.waiting_reason);
    let items = m.collect::<Pod>(ctx, |p| {
        phase.is_none_or(|ph| PodPhase::of(p) == ph)
            && ready.is_none_or(|r| k8s::pod_ready(p) == r)
            && reason
                .as_ref()
                .is_none_or(|r| waiting_reasons(p).iter().any(|w| w == r))
    })?;
    Ok(PodConnection::page(items, &req, PodNode::new))
}

macro_rules! object_list {
    ($fn:ident, $ty:ty, $conn:ident, $node:ident) => {
        pub fn $fn(
            ctx: &Context<'_>,
            filter: Option<ObjectFilter>,
            first: Option<i32>,
            after: Option<String>,
        ) -> Result<$conn> {
            let req = PageRequest::new(first, after, gctx(ctx).limits.max_page_size)?;
            let f = filter.unwrap_or_default();
            let m = Matcher::new(ctx, f, None, None)?;
            Ok($conn::page(
                m.collect::<$ty>(ctx, |_| true)?,
                &req,
                $node::new,
            ))
        }
    };
}

object_list!(
    stateful_sets,
    StatefulSet,
    StatefulSetConnection,
    StatefulSetNode
);
object_list!(daemon_sets, DaemonSet, DaemonSetConnection, DaemonSetNode);
object_list!(services, Service, ServiceConnection, ServiceNode);
object_list!(ingresses, Ingress, IngressConnection, IngressNode);
object_list!(config_maps, ConfigMap, ConfigMapConnection, ConfigMapNode);
object_list!(secrets, SecretInfo, SecretConnection, SecretNode);

/// One object by cluster, namespace and name (null when absent or not visible).
pub fn one<K: Stored, N>(
    ctx: &Context<'_>,
    cluster: &str,
    namespace: &str,
    name: &str,
    make: impl Fn(Arc<ClusterStore>, Arc<K>) -> N,
) -> Result<Option<N>> {
    let Some(c) = clusters_for(ctx, Some(cluster))?.into_iter().next() else {
        return Ok(None);
    };
    Ok(K::store(&c)
        .get(namespace, name)
        .filter(|o| sees(ctx, &c.name, o.meta()))
        .map(|o| make(c.clone(), o)))
}

mod cluster;
mod configuration;
mod network;
mod pods;
mod restart;
pub(crate) mod scope;
pub(crate) mod status;
mod workloads;

use crate::graph::filter::kubernetes::Matcher;
pub use crate::graph::filter::kubernetes::{
    ObjectFilter, PodFilter, RolloutMatcher, WorkloadFilter,
};
pub use cluster::*;
pub use configuration::*;
pub use network::*;
pub use pods::*;
pub use restart::*;
pub use scope::cluster_error;
use scope::report;
pub(crate) use scope::{clusters_for, labels, sees};
pub use status::{PodPhase, RolloutStateCode};
pub use workloads::*;
