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

use async_graphql::{Context, Enum, ErrorExtensions, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::application::ApplicationNode;
use super::entity::{EntityItem, EntityNode, KeyValue};
use super::error::{bad_input, coded, FORBIDDEN, NOT_FOUND};
use super::paging::{encode_cursor, paginate, PageInfo, PageRequest};
use super::{gctx, Viewer};
use crate::domain::argocd::Application;
use crate::domain::kubernetes::{
    self as k8s, to_chrono as ts, ConfigMapInfo as ConfigMap, PodInfo as Pod, RolloutState,
    SecretInfo,
};
use crate::domain::selector::LabelSelector;
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

fn labels(meta: &ObjectMeta) -> BTreeMap<String, String> {
    meta.labels.clone().unwrap_or_default()
}

fn int_or_string(v: &IntOrString) -> String {
    match v {
        IntOrString::Int(i) => i.to_string(),
        IntOrString::String(s) => s.clone(),
    }
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

/// The error a field gets for a cluster it could not read (or reads from an old snapshot).
pub fn cluster_error(c: &ClusterStore) -> async_graphql::Error {
    let snap = c.health.snapshot();
    let why = snap
        .last_error
        .clone()
        .unwrap_or_else(|| "first list not finished".into());
    let message = if c.synced() {
        format!(
            "cluster `{}` is unreachable ({why}); showing its state as of {}",
            c.name,
            snap.last_sync_at
                .map(|t| t.to_rfc3339())
                .unwrap_or_else(|| "the last sync".into())
        )
    } else {
        format!(
            "cluster `{}` has not been listed yet ({why}); its objects are missing",
            c.name
        )
    };
    let name = c.name.clone();
    async_graphql::Error::new(message).extend_with(move |_, e| {
        e.set("code", "UPSTREAM_UNAVAILABLE");
        e.set("source", name.as_str());
    })
}

/// The clusters a field reads (one, when `cluster` is given), with an error added to the
/// response for each one that is down; clusters never listed are left out.
fn clusters_for(ctx: &Context<'_>, cluster: Option<&str>) -> Result<Vec<Arc<ClusterStore>>> {
    let all = gctx(ctx).state.clusters.all();
    let chosen: Vec<Arc<ClusterStore>> = match cluster {
        None => all,
        Some(name) => {
            let c = all
                .iter()
                .find(|c| c.name == name)
                .cloned()
                .ok_or_else(|| {
                    bad_input(format!(
                        "unknown cluster `{name}`; configured: {}",
                        all.iter()
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
            vec![c]
        }
    };
    Ok(chosen
        .into_iter()
        .filter(|c| {
            let healthy = !c.health.is_stale() && c.synced();
            if !healthy {
                report(ctx, cluster_error(c));
            }
            c.synced()
        })
        .collect())
}

fn report(ctx: &Context<'_>, e: async_graphql::Error) {
    let err = e.into_server_error(ctx.item.pos);
    ctx.add_error(ctx.set_error_path(err));
}

fn sees(ctx: &Context<'_>, cluster: &str, meta: &ObjectMeta) -> bool {
    Viewer::of(ctx).sees_namespace(cluster, meta.namespace.as_deref().unwrap_or(""))
}

// ---------------------------------------------------------------------------------------------
// Filters

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum RolloutStateCode {
    /// Every replica runs the current template and is available.
    Complete,
    /// Updating (x of y), or waiting for old replicas to go.
    Progressing,
    /// The progress deadline passed (`ProgressDeadlineExceeded`).
    Stalled,
}

impl From<RolloutState> for RolloutStateCode {
    fn from(s: RolloutState) -> Self {
        match s {
            RolloutState::Complete => Self::Complete,
            RolloutState::Progressing => Self::Progressing,
            RolloutState::Stalled => Self::Stalled,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum PodPhase {
    Pending,
    Running,
    Succeeded,
    Failed,
    Unknown,
}

impl PodPhase {
    fn of(p: &Pod) -> Self {
        match p.phase.as_deref() {
            Some("Pending") => Self::Pending,
            Some("Running") => Self::Running,
            Some("Succeeded") => Self::Succeeded,
            Some("Failed") => Self::Failed,
            _ => Self::Unknown,
        }
    }
}

/// For every kind: services, ingresses, config maps, secrets, stateful and daemon sets.
#[derive(InputObject, Default, Clone, Debug)]
pub struct ObjectFilter {
    pub cluster: Option<String>,
    pub namespace: Option<String>,
    /// A Kubernetes label selector (`app=web,tier in (a,b),!canary`).
    pub label_selector: Option<String>,
    /// Case-insensitive substring of the name.
    pub name: Option<String>,
}

/// Which workloads (Deployments, and the `rolloutEvents` subscription).
#[derive(InputObject, Default, Clone, Debug)]
pub struct WorkloadFilter {
    #[graphql(flatten)]
    pub object: ObjectFilter,
    /// Owned by this ArgoCD application (by name).
    pub application: Option<String>,
    /// Belongs to this catalog entity (`component:default/sample-app`).
    pub entity: Option<String>,
    pub rollout: Option<RolloutStateCode>,
}

#[derive(InputObject, Default, Clone, Debug)]
pub struct PodFilter {
    #[graphql(flatten)]
    pub object: ObjectFilter,
    /// Owned by this ArgoCD application (by name).
    pub application: Option<String>,
    /// Belongs to this catalog entity (`component:default/sample-app`).
    pub entity: Option<String>,
    pub phase: Option<PodPhase>,
    pub ready: Option<bool>,
    /// A container waiting with this reason (`CrashLoopBackOff`, `ImagePullBackOff`).
    pub waiting_reason: Option<String>,
}

/// The fields every filter has, parsed once; judged on an object's metadata.
struct ObjectMatch {
    cluster: Option<String>,
    namespace: Option<String>,
    selector: Option<LabelSelector>,
    /// Lower-cased.
    name: Option<String>,
}

impl ObjectMatch {
    fn parse(f: ObjectFilter) -> Result<Self> {
        Ok(Self {
            selector: f
                .label_selector
                .as_deref()
                .map(LabelSelector::parse)
                .transpose()
                .map_err(|e| bad_input(format!("`labelSelector`: {e}")))?,
            cluster: f.cluster,
            namespace: f.namespace,
            name: f.name.map(|n| n.to_lowercase()),
        })
    }

    fn matches(&self, cluster: &str, meta: &ObjectMeta) -> bool {
        self.cluster.as_deref().is_none_or(|c| c == cluster)
            && self
                .namespace
                .as_deref()
                .is_none_or(|n| meta.namespace.as_deref() == Some(n))
            && self
                .selector
                .as_ref()
                .is_none_or(|s| s.matches(&labels(meta)))
            && self.name.as_ref().is_none_or(|n| {
                meta.name
                    .as_deref()
                    .unwrap_or("")
                    .to_lowercase()
                    .contains(n.as_str())
            })
    }
}

/// An `entity` filter argument as a ref string (kind defaults to component).
fn entity_ref(e: &str) -> Result<String> {
    crate::domain::EntityRef::parse_with_defaults(e, Some("component"), "default")
        .map(|r| r.to_string())
        .map_err(|err| bad_input(format!("`entity`: {err}")))
}

/// A list filter: the common fields plus ownership by an application / entity, resolved to
/// the owned objects once per query.
pub struct Matcher {
    base: ObjectMatch,
    /// Objects owned by the application / entity, per cluster.
    owned: Option<BTreeMap<String, BTreeSet<ObjRef>>>,
}

impl Matcher {
    fn new(
        ctx: &Context<'_>,
        object: ObjectFilter,
        application: Option<String>,
        entity: Option<String>,
    ) -> Result<Self> {
        let base = ObjectMatch::parse(object)?;
        let mut owned: Option<BTreeMap<String, BTreeSet<ObjRef>>> = None;
        let mut intersect = |set: BTreeMap<String, BTreeSet<ObjRef>>| {
            owned = Some(match owned.take() {
                None => set,
                Some(prev) => prev
                    .into_iter()
                    .filter_map(|(c, refs)| {
                        let other = set.get(&c)?;
                        Some((c, refs.intersection(other).cloned().collect()))
                    })
                    .collect(),
            });
        };
        if let Some(app) = &application {
            let viewer = Viewer::of(ctx);
            let apps: Vec<Arc<Application>> = gctx(ctx)
                .state
                .apps
                .by_name(app)
                .into_iter()
                .filter(|a| viewer.sees_app(a))
                .collect();
            let mut set: BTreeMap<String, BTreeSet<ObjRef>> = BTreeMap::new();
            for a in &apps {
                for (c, refs) in gctx(ctx).state.objects_of_app(a) {
                    set.entry(c).or_default().extend(refs);
                }
            }
            intersect(set);
        }
        if let Some(e) = &entity {
            let r = entity_ref(e)?;
            let snapshot = gctx(ctx).state.catalog.snapshot();
            let set = match snapshot.get(&r) {
                Some(ent) if Viewer::of(ctx).sees_entity(ent) => {
                    gctx(ctx).state.objects_of_entity(ent)
                }
                _ => BTreeMap::new(),
            };
            intersect(set);
        }
        Ok(Self { base, owned })
    }

    fn matches(&self, c: &ClusterStore, kind: Kind, meta: &ObjectMeta) -> bool {
        self.base.matches(&c.name, meta)
            && self.owned.as_ref().is_none_or(|owned| {
                let r = (
                    kind,
                    meta.namespace.clone().unwrap_or_default(),
                    meta.name.clone().unwrap_or_default(),
                );
                owned.get(&c.name).is_some_and(|s| s.contains(&r))
            })
    }

    /// Visible objects of one kind that match, across the chosen clusters, in key order.
    fn collect<K: Stored>(
        &self,
        ctx: &Context<'_>,
        extra: impl Fn(&K) -> bool,
    ) -> Result<Vec<(Arc<ClusterStore>, Arc<K>)>> {
        let mut out = Vec::new();
        for c in clusters_for(ctx, self.base.cluster.as_deref())? {
            for o in K::store(&c).list(self.base.namespace.as_deref()) {
                if self.matches(&c, K::KIND, o.meta()) && sees(ctx, &c.name, o.meta()) && extra(&o)
                {
                    out.push((c.clone(), o));
                }
            }
        }
        Ok(out)
    }
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
            /// `cluster/Kind/namespace/name`.
            async fn id(&self) -> String {
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
        .lookup_kind::<k8s_openapi::api::core::v1::Event>(&key)
        .into_iter()
        .map(|e| {
            let last = e.last_timestamp.as_ref().and_then(ts).or_else(|| {
                e.event_time
                    .as_ref()
                    .and_then(|t| DateTime::from_timestamp(t.0.as_second(), 0))
            });
            KubeEvent {
                kind: e.type_.clone(),
                reason: e.reason.clone(),
                message: e.message.clone(),
                count: e.count,
                first_seen: e.first_timestamp.as_ref().and_then(ts),
                last_seen: last,
                source: e
                    .source
                    .as_ref()
                    .and_then(|s| s.component.clone())
                    .or_else(|| e.reporting_component.clone()),
            }
        })
        .collect();
    out.sort_by_key(|e| std::cmp::Reverse(e.last_seen));
    out
}

#[derive(SimpleObject, Clone)]
pub struct Condition {
    #[graphql(name = "type")]
    pub kind: String,
    pub status: String,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub last_transition_time: Option<DateTime<Utc>>,
}

#[derive(SimpleObject, Clone)]
pub struct Replicas {
    pub desired: i32,
    pub current: i32,
    pub updated: i32,
    pub ready: i32,
    pub available: i32,
    pub unavailable: i32,
}

#[derive(SimpleObject, Clone)]
pub struct DeploymentStrategy {
    #[graphql(name = "type")]
    pub kind: String,
    pub max_surge: Option<String>,
    pub max_unavailable: Option<String>,
}

#[derive(SimpleObject, Clone)]
pub struct RolloutStatus {
    pub state: RolloutStateCode,
    pub desired: i32,
    pub updated: i32,
    pub ready: i32,
    pub available: i32,
    /// `ProgressDeadlineExceeded` when stalled.
    pub reason: Option<String>,
    /// As `kubectl rollout status` says it.
    pub message: String,
}

impl From<k8s::Rollout> for RolloutStatus {
    fn from(r: k8s::Rollout) -> Self {
        Self {
            state: r.state.into(),
            desired: r.desired,
            updated: r.updated,
            ready: r.ready,
            available: r.available,
            reason: r.reason,
            message: r.message,
        }
    }
}

fn images(spec: Option<&k8s_openapi::api::core::v1::PodSpec>) -> Vec<String> {
    spec.map(|s| {
        s.containers
            .iter()
            .filter_map(|c| c.image.clone())
            .collect()
    })
    .unwrap_or_default()
}

k8s_object!(
    DeploymentNode,
    Deployment,
    "Deployment",
    "An apps/v1 Deployment.",
    {
        async fn replicas(&self) -> Replicas {
            let st = self.obj.status.clone().unwrap_or_default();
            Replicas {
                desired: self.obj.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                current: st.replicas.unwrap_or(0),
                updated: st.updated_replicas.unwrap_or(0),
                ready: st.ready_replicas.unwrap_or(0),
                available: st.available_replicas.unwrap_or(0),
                unavailable: st.unavailable_replicas.unwrap_or(0),
            }
        }
        async fn conditions(&self) -> Vec<Condition> {
            self.obj
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .map(|c| Condition {
                    kind: c.type_.clone(),
                    status: c.status.clone(),
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                    last_transition_time: c.last_transition_time.as_ref().and_then(ts),
                })
                .collect()
        }
        async fn images(&self) -> Vec<String> {
            images(
                self.obj
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.spec.as_ref()),
            )
        }
        async fn strategy(&self) -> Option<DeploymentStrategy> {
            let s = self.obj.spec.as_ref()?.strategy.as_ref()?;
            Some(DeploymentStrategy {
                kind: s.type_.clone().unwrap_or_else(|| "RollingUpdate".into()),
                max_surge: s
                    .rolling_update
                    .as_ref()
                    .and_then(|r| r.max_surge.as_ref())
                    .map(int_or_string),
                max_unavailable: s
                    .rolling_update
                    .as_ref()
                    .and_then(|r| r.max_unavailable.as_ref())
                    .map(int_or_string),
            })
        }
        async fn generation(&self) -> Option<i64> {
            self.obj.metadata.generation
        }
        async fn observed_generation(&self) -> Option<i64> {
            self.obj.status.as_ref().and_then(|s| s.observed_generation)
        }
        /// The rollout, computed as `kubectl rollout status` does.
        async fn rollout(&self) -> RolloutStatus {
            k8s::rollout(&self.obj).into()
        }
        /// When it was last restarted (`kubectl.kubernetes.io/restartedAt` on the pod template).
        async fn restarted_at(&self) -> Option<&str> {
            self.obj
                .spec
                .as_ref()?
                .template
                .metadata
                .as_ref()?
                .annotations
                .as_ref()?
                .get(k8s::RESTARTED_AT)
                .map(String::as_str)
        }
        /// Its ReplicaSets, newest revision first.
        async fn replica_sets(&self) -> Vec<ReplicaSetNode> {
            let ns = self.meta().namespace.clone().unwrap_or_default();
            let mut rs = self.cluster.owned::<ReplicaSet>(
                &ns,
                "Deployment",
                self.meta().name.as_deref().unwrap_or(""),
            );
            rs.sort_by_key(|r| std::cmp::Reverse(revision(&r.metadata)));
            rs.into_iter()
                .map(|r| ReplicaSetNode::new(self.cluster.clone(), r))
                .collect()
        }
        /// Pods of all its ReplicaSets.
        async fn pods(&self) -> Vec<PodNode> {
            let ns = self.meta().namespace.clone().unwrap_or_default();
            let mut pods = Vec::new();
            for rs in self.cluster.owned::<ReplicaSet>(
                &ns,
                "Deployment",
                self.meta().name.as_deref().unwrap_or(""),
            ) {
                pods.extend(self.cluster.owned::<Pod>(
                    &ns,
                    "ReplicaSet",
                    rs.metadata.name.as_deref().unwrap_or(""),
                ));
            }
            pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
            pods.into_iter()
                .map(|p| PodNode::new(self.cluster.clone(), p))
                .collect()
        }
        /// The ArgoCD application that deploys it.
        async fn application(&self, ctx: &Context<'_>) -> Option<ApplicationNode> {
            apps_of_object(ctx, &self.cluster, self.meta())
                .into_iter()
                .next()
        }
        /// The catalog entity it belongs to.
        async fn entity(&self, ctx: &Context<'_>) -> Option<EntityItem> {
            entities_of_object(ctx, &self.cluster, self.meta())
                .into_iter()
                .next()
        }
    }
);

fn revision(meta: &ObjectMeta) -> i64 {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get("deployment.kubernetes.io/revision"))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

k8s_object!(
    ReplicaSetNode,
    ReplicaSet,
    "ReplicaSet",
    "An apps/v1 ReplicaSet.",
    {
        /// `deployment.kubernetes.io/revision`.
        async fn revision(&self) -> i64 {
            revision(self.meta())
        }
        async fn desired(&self) -> i32 {
            self.obj.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
        }
        async fn ready(&self) -> i32 {
            self.obj
                .status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0)
        }
        async fn available(&self) -> i32 {
            self.obj
                .status
                .as_ref()
                .and_then(|s| s.available_replicas)
                .unwrap_or(0)
        }
        async fn images(&self) -> Vec<String> {
            images(
                self.obj
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .and_then(|t| t.spec.as_ref()),
            )
        }
        async fn pods(&self) -> Vec<PodNode> {
            let ns = self.meta().namespace.clone().unwrap_or_default();
            self.cluster
                .owned::<Pod>(&ns, "ReplicaSet", self.meta().name.as_deref().unwrap_or(""))
                .into_iter()
                .map(|p| PodNode::new(self.cluster.clone(), p))
                .collect()
        }
        async fn deployment(&self) -> Option<DeploymentNode> {
            controller(self.meta(), "Deployment")
                .and_then(|name| {
                    self.cluster
                        .deployments
                        .get(self.meta().namespace.as_deref().unwrap_or(""), &name)
                })
                .map(|d| DeploymentNode::new(self.cluster.clone(), d))
        }
    }
);

fn controller(meta: &ObjectMeta, kind: &str) -> Option<String> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true) && o.kind == kind)
        .map(|o| o.name.clone())
}

k8s_object!(
    StatefulSetNode,
    StatefulSet,
    "StatefulSet",
    "An apps/v1 StatefulSet.",
    {
        async fn desired(&self) -> i32 {
            self.obj.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
        }
        async fn ready(&self) -> i32 {
            self.obj
                .status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0)
        }
        async fn images(&self) -> Vec<String> {
            images(
                self.obj
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.spec.as_ref()),
            )
        }
        async fn pods(&self) -> Vec<PodNode> {
            let ns = self.meta().namespace.clone().unwrap_or_default();
            self.cluster
                .owned::<Pod>(
                    &ns,
                    "StatefulSet",
                    self.meta().name.as_deref().unwrap_or(""),
                )
                .into_iter()
                .map(|p| PodNode::new(self.cluster.clone(), p))
                .collect()
        }
    }
);

k8s_object!(
    DaemonSetNode,
    DaemonSet,
    "DaemonSet",
    "An apps/v1 DaemonSet.",
    {
        async fn desired(&self) -> i32 {
            self.obj
                .status
                .as_ref()
                .map(|s| s.desired_number_scheduled)
                .unwrap_or(0)
        }
        async fn ready(&self) -> i32 {
            self.obj
                .status
                .as_ref()
                .map(|s| s.number_ready)
                .unwrap_or(0)
        }
        async fn images(&self) -> Vec<String> {
            images(
                self.obj
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.spec.as_ref()),
            )
        }
        async fn pods(&self) -> Vec<PodNode> {
            let ns = self.meta().namespace.clone().unwrap_or_default();
            self.cluster
                .owned::<Pod>(&ns, "DaemonSet", self.meta().name.as_deref().unwrap_or(""))
                .into_iter()
                .map(|p| PodNode::new(self.cluster.clone(), p))
                .collect()
        }
    }
);

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ContainerStateCode {
    Waiting,
    Running,
    Terminated,
    Unknown,
}

#[derive(SimpleObject, Clone)]
pub struct ContainerStatus {
    pub name: String,
    pub image: Option<String>,
    pub ready: bool,
    pub restart_count: i32,
    pub state: ContainerStateCode,
    /// Why it waits (`CrashLoopBackOff`, `ImagePullBackOff`) or terminated (`Error`, `OOMKilled`).
    pub reason: Option<String>,
    pub message: Option<String>,
    pub exit_code: Option<i32>,
    pub started_at: Option<DateTime<Utc>>,
    /// How the previous run ended (after a restart).
    pub last_exit_code: Option<i32>,
    pub last_reason: Option<String>,
    pub init: bool,
}

fn container_statuses(p: &Pod) -> Vec<ContainerStatus> {
    p.containers
        .iter()
        .map(|c| ContainerStatus {
            name: c.name.clone(),
            image: c.image.clone(),
            ready: c.ready,
            restart_count: c.restart_count,
            state: match c.state {
                k8s::ContainerState::Waiting => ContainerStateCode::Waiting,
                k8s::ContainerState::Running => ContainerStateCode::Running,
                k8s::ContainerState::Terminated => ContainerStateCode::Terminated,
                k8s::ContainerState::Unknown => ContainerStateCode::Unknown,
            },
            reason: c.reason.clone(),
            message: c.message.clone(),
            exit_code: c.exit_code,
            started_at: c.started_at,
            last_exit_code: c.last_exit_code,
            last_reason: c.last_reason.clone(),
            init: c.init,
        })
        .collect()
}

fn waiting_reasons(p: &Pod) -> Vec<String> {
    container_statuses(p)
        .into_iter()
        .filter(|c| c.state == ContainerStateCode::Waiting)
        .filter_map(|c| c.reason)
        .collect()
}

#[derive(SimpleObject, Clone)]
pub struct OwnerRef {
    pub kind: String,
    pub name: String,
}

k8s_object!(PodNode, Pod, "Pod", "A core/v1 Pod.", {
    async fn phase(&self) -> PodPhase {
        PodPhase::of(&self.obj)
    }
    /// The Ready condition.
    async fn ready(&self) -> bool {
        k8s::pod_ready(&self.obj)
    }
    /// Restarts of all containers.
    async fn restarts(&self) -> i32 {
        k8s::pod_restarts(&self.obj)
    }
    async fn containers(&self) -> Vec<ContainerStatus> {
        container_statuses(&self.obj)
    }
    async fn node(&self) -> Option<&str> {
        self.obj.node_name.as_deref()
    }
    #[graphql(name = "podIP")]
    async fn pod_ip(&self) -> Option<&str> {
        self.obj.pod_ip.as_deref()
    }
    #[graphql(name = "podIPs")]
    async fn pod_ips(&self) -> &[String] {
        &self.obj.pod_ips
    }
    #[graphql(name = "hostIP")]
    async fn host_ip(&self) -> Option<&str> {
        self.obj.host_ip.as_deref()
    }
    async fn started_at(&self) -> Option<DateTime<Utc>> {
        self.obj.start_time
    }
    async fn conditions(&self) -> Vec<Condition> {
        self.obj
            .conditions
            .iter()
            .map(|c| Condition {
                kind: c.type_.clone(),
                status: c.status.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
                last_transition_time: c.last_transition_time,
            })
            .collect()
    }
    /// The controller that owns it.
    async fn owner(&self) -> Option<OwnerRef> {
        self.meta()
            .owner_references
            .as_ref()?
            .iter()
            .find(|o| o.controller == Some(true))
            .map(|o| OwnerRef {
                kind: o.kind.clone(),
                name: o.name.clone(),
            })
    }
    async fn replica_set(&self) -> Option<ReplicaSetNode> {
        self.replica_set_node()
    }
    /// The Deployment behind its ReplicaSet.
    async fn deployment(&self) -> Option<DeploymentNode> {
        self.deployment_node()
    }
    /// The ArgoCD application (its own labels, else its controller's).
    async fn application(&self, ctx: &Context<'_>) -> Option<ApplicationNode> {
        apps_of_object(ctx, &self.cluster, self.meta())
            .into_iter()
            .next()
    }
    /// The catalog entity (its own labels, else its controller's).
    async fn entity(&self, ctx: &Context<'_>) -> Option<EntityItem> {
        entities_of_object(ctx, &self.cluster, self.meta())
            .into_iter()
            .next()
    }
});

impl PodNode {
    fn replica_set_node(&self) -> Option<ReplicaSetNode> {
        let name = controller(self.meta(), "ReplicaSet")?;
        let rs = self
            .cluster
            .replica_sets
            .get(self.meta().namespace.as_deref().unwrap_or(""), &name)?;
        Some(ReplicaSetNode::new(self.cluster.clone(), rs))
    }
    fn deployment_node(&self) -> Option<DeploymentNode> {
        let rs = self.replica_set_node()?;
        let name = controller(&rs.obj.metadata, "Deployment")?;
        let d = self
            .cluster
            .deployments
            .get(self.meta().namespace.as_deref().unwrap_or(""), &name)?;
        Some(DeploymentNode::new(self.cluster.clone(), d))
    }
}

#[derive(SimpleObject, Clone)]
pub struct ServicePort {
    pub name: Option<String>,
    pub port: i32,
    pub target_port: Option<String>,
    pub protocol: Option<String>,
    pub node_port: Option<i32>,
}

fn selector_matches(
    selector: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

k8s_object!(ServiceNode, Service, "Service", "A core/v1 Service.", {
    #[graphql(name = "type")]
    async fn service_type(&self) -> Option<&str> {
        self.obj.spec.as_ref()?.type_.as_deref()
    }
    #[graphql(name = "clusterIP")]
    async fn cluster_ip(&self) -> Option<&str> {
        self.obj.spec.as_ref()?.cluster_ip.as_deref()
    }
    async fn ports(&self) -> Vec<ServicePort> {
        self.obj
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_ref())
            .into_iter()
            .flatten()
            .map(|p| ServicePort {
                name: p.name.clone(),
                port: p.port,
                target_port: p.target_port.as_ref().map(int_or_string),
                protocol: p.protocol.clone(),
                node_port: p.node_port,
            })
            .collect()
    }
    async fn selector(&self) -> Vec<KeyValue> {
        kv(&self.obj.spec.as_ref().and_then(|s| s.selector.clone()))
    }
    /// Load balancer ingress addresses.
    async fn external_addresses(&self) -> Vec<String> {
        self.obj
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|l| l.ingress.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|i| i.ip.clone().or_else(|| i.hostname.clone()))
            .collect()
    }
    /// The pods its selector picks (same namespace).
    async fn pods(&self) -> Vec<PodNode> {
        self.pod_nodes()
    }
});

impl ServiceNode {
    fn pod_nodes(&self) -> Vec<PodNode> {
        let Some(sel) = self.obj.spec.as_ref().and_then(|s| s.selector.clone()) else {
            return Vec::new();
        };
        self.cluster
            .pods
            .list(Some(self.meta().namespace.as_deref().unwrap_or("")))
            .into_iter()
            .filter(|p| selector_matches(&sel, &labels(&p.metadata)))
            .map(|p| PodNode::new(self.cluster.clone(), p))
            .collect()
    }
}

#[derive(SimpleObject, Clone)]
pub struct IngressBackend {
    pub service_name: Option<String>,
    /// Port number or name.
    pub service_port: Option<String>,
    /// A non-service backend (`apiGroup/kind/name`).
    pub resource: Option<String>,
}

#[derive(SimpleObject, Clone)]
pub struct IngressPath {
    pub path: Option<String>,
    pub path_type: String,
    pub backend: IngressBackend,
}

#[derive(SimpleObject, Clone)]
pub struct IngressRule {
    pub host: Option<String>,
    pub paths: Vec<IngressPath>,
}

#[derive(SimpleObject, Clone)]
pub struct IngressTls {
    pub hosts: Vec<String>,
    pub secret_name: Option<String>,
}

fn backend(b: &k8s_openapi::api::networking::v1::IngressBackend) -> IngressBackend {
    IngressBackend {
        service_name: b.service.as_ref().map(|s| s.name.clone()),
        service_port: b
            .service
            .as_ref()
            .and_then(|s| s.port.as_ref())
            .and_then(|p| p.number.map(|n| n.to_string()).or_else(|| p.name.clone())),
        resource: b.resource.as_ref().map(|r| {
            format!(
                "{}/{}/{}",
                r.api_group.as_deref().unwrap_or(""),
                r.kind,
                r.name
            )
        }),
    }
}

k8s_object!(
    IngressNode,
    Ingress,
    "Ingress",
    "A networking.k8s.io/v1 Ingress.",
    {
        async fn class_name(&self) -> Option<&str> {
            self.obj.spec.as_ref()?.ingress_class_name.as_deref()
        }
        async fn hosts(&self) -> Vec<String> {
            let mut h: Vec<String> = self
                .obj
                .spec
                .as_ref()
                .and_then(|s| s.rules.as_ref())
                .into_iter()
                .flatten()
                .filter_map(|r| r.host.clone())
                .collect();
            h.dedup();
            h
        }
        async fn rules(&self) -> Vec<IngressRule> {
            self.obj
                .spec
                .as_ref()
                .and_then(|s| s.rules.as_ref())
                .into_iter()
                .flatten()
                .map(|r| IngressRule {
                    host: r.host.clone(),
                    paths: r
                        .http
                        .as_ref()
                        .map(|h| {
                            h.paths
                                .iter()
                                .map(|p| IngressPath {
                                    path: p.path.clone(),
                                    path_type: p.path_type.clone(),
                                    backend: backend(&p.backend),
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                })
                .collect()
        }
        async fn default_backend(&self) -> Option<IngressBackend> {
            self.obj
                .spec
                .as_ref()?
                .default_backend
                .as_ref()
                .map(backend)
        }
        async fn tls(&self) -> Vec<IngressTls> {
            self.obj
                .spec
                .as_ref()
                .and_then(|s| s.tls.as_ref())
                .into_iter()
                .flatten()
                .map(|t| IngressTls {
                    hosts: t.hosts.clone().unwrap_or_default(),
                    secret_name: t.secret_name.clone(),
                })
                .collect()
        }
        /// Load balancer addresses.
        async fn addresses(&self) -> Vec<String> {
            self.obj
                .status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|l| l.ingress.as_ref())
                .into_iter()
                .flatten()
                .filter_map(|i| i.ip.clone().or_else(|| i.hostname.clone()))
                .collect()
        }
        /// The Services its rules and default backend point at (those that exist).
        async fn services(&self) -> Vec<ServiceNode> {
            let Some(spec) = self.obj.spec.as_ref() else {
                return Vec::new();
            };
            let names: BTreeSet<String> = spec
                .rules
                .iter()
                .flatten()
                .filter_map(|r| r.http.as_ref())
                .flat_map(|h| h.paths.iter())
                .map(|p| &p.backend)
                .chain(spec.default_backend.iter())
                .filter_map(|b| b.service.as_ref().map(|s| s.name.clone()))
                .collect();
            let ns = self.meta().namespace.clone().unwrap_or_default();
            names
                .iter()
                .filter_map(|n| self.cluster.services.get(&ns, n))
                .map(|s| ServiceNode::new(self.cluster.clone(), s))
                .collect()
        }
    }
);

k8s_object!(
    ConfigMapNode,
    ConfigMap,
    "ConfigMap",
    "A core/v1 ConfigMap (key names; values are not served).",
    {
        /// Keys of `data` and `binaryData`.
        async fn keys(&self) -> &[String] {
            &self.obj.keys
        }
    }
);

k8s_object!(
    SecretNode,
    SecretInfo,
    "Secret",
    "A core/v1 Secret: type and key names. Values are never read into memory nor served.",
    {
        #[graphql(name = "type")]
        async fn secret_type(&self) -> Option<&str> {
            self.obj.type_.as_deref()
        }
        async fn keys(&self) -> &[String] {
            &self.obj.keys
        }
    }
);

k8s_object!(
    NamespaceNode,
    Namespace,
    "Namespace",
    "A core/v1 Namespace.",
    {
        async fn phase(&self) -> Option<&str> {
            self.obj.status.as_ref()?.phase.as_deref()
        }
    }
);

// ---------------------------------------------------------------------------------------------
// Clusters, connections, workloads

/// One configured cluster.
pub struct ClusterNode(pub Arc<ClusterStore>);

#[Object(name = "Cluster")]
impl ClusterNode {
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The API server URL.
    async fn url(&self) -> &str {
        &self.0.url
    }
    /// Every watch answers.
    async fn connected(&self) -> bool {
        !self.0.health.is_stale() && self.0.synced()
    }
    /// Every kind has been listed at least once.
    async fn synced(&self) -> bool {
        self.0.synced()
    }
    async fn last_error(&self) -> Option<String> {
        self.0.health.snapshot().last_error
    }
    async fn last_sync_at(&self) -> Option<DateTime<Utc>> {
        self.0.health.snapshot().last_sync_at
    }
    /// Names ArgoCD applications use for it as destination.
    async fn argocd_destinations(&self) -> &[String] {
        &self.0.argocd_destinations
    }
    async fn namespaces(&self, ctx: &Context<'_>) -> Vec<NamespaceNode> {
        self.0
            .namespaces
            .list(None)
            .into_iter()
            .filter(|n| {
                Viewer::of(ctx)
                    .sees_namespace(&self.0.name, n.metadata.name.as_deref().unwrap_or(""))
            })
            .map(|n| NamespaceNode::new(self.0.clone(), n))
            .collect()
    }
    async fn deployment_count(&self) -> usize {
        self.0.deployments.len()
    }
    async fn pod_count(&self) -> usize {
        self.0.pods.len()
    }
}

macro_rules! connection {
    ($conn:ident, $edge:ident, $node:ident, $gql:literal, $gql_edge:literal) => {
        #[derive(SimpleObject)]
        #[graphql(name = $gql_edge)]
        pub struct $edge {
            pub cursor: String,
            pub node: $node,
        }

        #[derive(SimpleObject)]
        #[graphql(name = $gql)]
        pub struct $conn {
            pub total_count: usize,
            pub edges: Vec<$edge>,
            pub nodes: Vec<$node>,
            pub page_info: PageInfo,
        }

        impl $conn {
            fn page<K: Stored>(
                items: Vec<(Arc<ClusterStore>, Arc<K>)>,
                req: &PageRequest,
                make: impl Fn(Arc<ClusterStore>, Arc<K>) -> $node,
            ) -> Self {
                let keyed: Vec<(String, Arc<ClusterStore>, Arc<K>)> = items
                    .into_iter()
                    .map(|(c, o)| (sort_key(&c.name, o.meta()), c, o))
                    .collect();
                let page = paginate(keyed, |(k, _, _)| k.as_str(), req);
                let mut info = page.page_info;
                info.start_cursor = page.items.first().map(|(k, _, _)| encode_cursor(k));
                info.end_cursor = page.items.last().map(|(k, _, _)| encode_cursor(k));
                let nodes: Vec<$node> = page
                    .items
                    .iter()
                    .map(|(_, c, o)| make(c.clone(), o.clone()))
                    .collect();
                Self {
                    total_count: page.total,
                    edges: page
                        .items
                        .iter()
                        .zip(nodes.iter())
                        .map(|((k, _, _), n)| $edge {
                            cursor: encode_cursor(k),
                            node: n.clone(),
                        })
                        .collect(),
                    nodes,
                    page_info: info,
                }
            }
        }
    };
}

connection!(
    DeploymentConnection,
    DeploymentEdge,
    DeploymentNode,
    "DeploymentConnection",
    "DeploymentEdge"
);
connection!(
    StatefulSetConnection,
    StatefulSetEdge,
    StatefulSetNode,
    "StatefulSetConnection",
    "StatefulSetEdge"
);
connection!(
    DaemonSetConnection,
    DaemonSetEdge,
    DaemonSetNode,
    "DaemonSetConnection",
    "DaemonSetEdge"
);
connection!(PodConnection, PodEdge, PodNode, "PodConnection", "PodEdge");
connection!(
    ServiceConnection,
    ServiceEdge,
    ServiceNode,
    "ServiceConnection",
    "ServiceEdge"
);
connection!(
    IngressConnection,
    IngressEdge,
    IngressNode,
    "IngressConnection",
    "IngressEdge"
);
connection!(
    ConfigMapConnection,
    ConfigMapEdge,
    ConfigMapNode,
    "ConfigMapConnection",
    "ConfigMapEdge"
);
connection!(
    SecretConnection,
    SecretEdge,
    SecretNode,
    "SecretConnection",
    "SecretEdge"
);

/// What a catalog entity or an application has running, across clusters.
#[derive(SimpleObject, Default)]
pub struct Workloads {
    pub deployments: Vec<DeploymentNode>,
    pub stateful_sets: Vec<StatefulSetNode>,
    pub daemon_sets: Vec<DaemonSetNode>,
    pub pods: Vec<PodNode>,
    pub services: Vec<ServiceNode>,
    pub ingresses: Vec<IngressNode>,
    pub config_maps: Vec<ConfigMapNode>,
    pub secrets: Vec<SecretNode>,
}

/// The objects `refs` names, per cluster; each cluster in `relevant` that is down adds an error.
fn workloads(
    ctx: &Context<'_>,
    refs: BTreeMap<String, BTreeSet<ObjRef>>,
    relevant: &[Arc<ClusterStore>],
) -> Workloads {
    let mut w = Workloads::default();
    for c in gctx(ctx).state.clusters.all() {
        let is_relevant = relevant.iter().any(|r| r.name == c.name);
        if is_relevant && (!c.health.snapshot().connected || !c.synced()) {
            report(ctx, cluster_error(&c));
        }
        let Some(refs) = refs.get(&c.name) else {
            continue;
        };
        for (kind, ns, name) in refs {
            if !Viewer::of(ctx).sees_namespace(&c.name, ns) {
                continue;
            }
            let c2 = c.clone();
            match kind {
                Kind::Deployment => w.deployments.extend(
                    c.deployments
                        .get(ns, name)
                        .map(|o| DeploymentNode::new(c2, o)),
                ),
                Kind::StatefulSet => w.stateful_sets.extend(
                    c.stateful_sets
                        .get(ns, name)
                        .map(|o| StatefulSetNode::new(c2, o)),
                ),
                Kind::DaemonSet => w.daemon_sets.extend(
                    c.daemon_sets
                        .get(ns, name)
                        .map(|o| DaemonSetNode::new(c2, o)),
                ),
                Kind::Pod => w
                    .pods
                    .extend(c.pods.get(ns, name).map(|o| PodNode::new(c2, o))),
                Kind::Service => w
                    .services
                    .extend(c.services.get(ns, name).map(|o| ServiceNode::new(c2, o))),
                Kind::Ingress => w
                    .ingresses
                    .extend(c.ingresses.get(ns, name).map(|o| IngressNode::new(c2, o))),
                Kind::ConfigMap => w.config_maps.extend(
                    c.config_maps
                        .get(ns, name)
                        .map(|o| ConfigMapNode::new(c2, o)),
                ),
                Kind::Secret => w
                    .secrets
                    .extend(c.secrets.get(ns, name).map(|o| SecretNode::new(c2, o))),
                _ => {}
            }
        }
    }
    w
}

pub fn workloads_of_app(ctx: &Context<'_>, app: &Application) -> Workloads {
    let state = &gctx(ctx).state;
    workloads(ctx, state.objects_of_app(app), &state.clusters_of_app(app))
}

/// An entity without Kubernetes annotations reads no cluster (and hears of no outage).
pub fn workloads_of_entity(ctx: &Context<'_>, e: &Entity) -> Workloads {
    let joined = e.join.kubernetes_id.is_some() || e.join.kubernetes_label_selector.is_some();
    let relevant = if joined {
        gctx(ctx).state.clusters.all()
    } else {
        Vec::new()
    };
    workloads(ctx, gctx(ctx).state.objects_of_entity(e), &relevant)
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
    let items = m.collect::<Deployment>(ctx, |d| {
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

// ---------------------------------------------------------------------------------------------
// restartDeployment

#[derive(SimpleObject)]
pub struct RestartResult {
    /// The Deployment as the API server returned it after the patch.
    pub deployment: DeploymentNode,
    /// The `kubectl.kubernetes.io/restartedAt` value set.
    pub restarted_at: String,
    pub audit_id: u64,
}

/// `kubectl rollout restart`: a strategic-merge patch of the pod template's
/// `kubectl.kubernetes.io/restartedAt` annotation, which makes the Deployment roll.
pub async fn restart_deployment(
    ctx: &Context<'_>,
    cluster: String,
    namespace: String,
    name: String,
) -> Result<RestartResult> {
    let g = gctx(ctx);
    let viewer = Viewer::of(ctx);
    let target = format!("{cluster}/deployments/{namespace}/{name}");
    let audit = |result: &str, message: Option<String>| {
        g.audit.record(
            viewer.principal.display_name(),
            "restartDeployment",
            &target,
            result,
            message,
        )
    };
    if name.trim().is_empty() || namespace.trim().is_empty() {
        return Err(bad_input("`namespace` and `name` must not be empty"));
    }
    let store = g
        .state
        .clusters
        .get(&cluster)
        .ok_or_else(|| bad_input(format!("unknown cluster `{cluster}`")))?;
    let scope = crate::auth::Scope::KubernetesNamespace {
        cluster: &cluster,
        namespace: &namespace,
    };
    if !viewer.sees_namespace(&cluster, &namespace) {
        return Err(coded(
            NOT_FOUND,
            format!("no deployment `{namespace}/{name}` in `{cluster}`"),
        ));
    }
    if !viewer
        .policy
        .can_act(viewer.principal, crate::auth::Action::Restart, scope)
    {
        audit(FORBIDDEN, None);
        return Err(coded(
            FORBIDDEN,
            format!("not allowed to restart `{namespace}/{name}`"),
        ));
    }
    let Some((client, url)) = g.kubernetes.get(&cluster) else {
        return Err(coded(
            NOT_FOUND,
            format!("cluster `{cluster}` has no client"),
        ));
    };
    let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let patch = serde_json::json!({"spec": {"template": {"metadata": {"annotations": {k8s::RESTARTED_AT: now}}}}});
    let api: kube::Api<Deployment> = kube::Api::namespaced(client.clone(), &namespace);
    let params = kube::api::PatchParams {
        field_manager: Some("idp-graph".into()),
        ..Default::default()
    };
    match api
        .patch(&name, &params, &kube::api::Patch::Strategic(&patch))
        .await
    {
        Ok(mut d) => {
            k8s::strip(&mut d.metadata);
            let stored = crate::sources::kubernetes::apply_and_publish(&g.state, &store, d);
            let audit_id = audit("ok", None);
            Ok(RestartResult {
                deployment: DeploymentNode::new(store.clone(), stored),
                restarted_at: now,
                audit_id,
            })
        }
        Err(e) => {
            let err = crate::sources::kubernetes::client_error(url, &e);
            audit(err.code(), Some(err.to_string()));
            Err(super::error::upstream(&cluster, &err))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// rolloutEvents

/// `WorkloadFilter` for a subscription: judged per event against the Deployment as it is then
/// (the owning application and entity by labels, so new Deployments match too).
pub struct RolloutMatcher {
    state: Arc<crate::state::State>,
    base: ObjectMatch,
    application: Option<String>,
    /// An entity ref.
    entity: Option<String>,
    rollout: Option<RolloutStateCode>,
}

impl RolloutMatcher {
    pub fn new(state: Arc<crate::state::State>, f: Option<WorkloadFilter>) -> Result<Self> {
        let f = f.unwrap_or_default();
        if let Some(c) = &f.object.cluster {
            if state.clusters.get(c).is_none() {
                return Err(bad_input(format!("unknown cluster `{c}`")));
            }
        }
        Ok(Self {
            entity: f.entity.as_deref().map(entity_ref).transpose()?,
            base: ObjectMatch::parse(f.object)?,
            state,
            application: f.application,
            rollout: f.rollout,
        })
    }

    pub fn matches(&self, cluster: &str, d: &Deployment) -> bool {
        let meta = &d.metadata;
        self.base.matches(cluster, meta)
            && self
                .rollout
                .is_none_or(|r| RolloutStateCode::from(k8s::rollout(d).state) == r)
            && self
                .application
                .as_deref()
                .is_none_or(|app| k8s::argocd_apps_of(meta).contains(&app))
            && self.entity.as_ref().is_none_or(|e| {
                self.state
                    .catalog
                    .snapshot()
                    .get(e)
                    .is_some_and(|ent| k8s::entity_claims(&ent.join, meta))
            })
    }
}
