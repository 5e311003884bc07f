//! Kubernetes filters: `ObjectFilter` (cluster, namespace, label selector, name) flattened into
//! the workload and pod filters, parsed once into a matcher for lists (`Matcher`) and for the
//! `rolloutEvents` subscription (`RolloutMatcher`, judged per event).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_graphql::{Context, InputObject, Result};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::domain::argocd::Application;
use crate::domain::kubernetes as k8s;
use crate::domain::selector::LabelSelector;
use crate::graph::error::bad_input;
use crate::graph::kubernetes::scope::{clusters_for, labels, sees};
use crate::graph::kubernetes::status::{PodPhase, RolloutStateCode};
use crate::graph::{gctx, Viewer};
use crate::state::kubernetes::{ClusterStore, Kind, ObjRef, Stored};

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
    pub fn new(
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
    pub fn collect<K: Stored>(
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

    /// Any object (a pod, an event's object) with the applications and entities the joins
    /// found for it; `rollout` does not apply.
    pub fn matches_object(
        &self,
        cluster: &str,
        meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
        apps: &[Arc<crate::domain::argocd::Application>],
        entities: &[Arc<crate::domain::Entity>],
    ) -> bool {
        self.base.matches(cluster, meta)
            && self
                .application
                .as_deref()
                .is_none_or(|app| apps.iter().any(|a| a.key.name == app))
            && self
                .entity
                .as_ref()
                .is_none_or(|e| entities.iter().any(|ent| &ent.ref_string == e))
    }

    pub fn matches(&self, cluster: &str, d: &k8s::DeploymentInfo) -> bool {
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
