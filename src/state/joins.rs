//! Every cross-source relation, in one place: plain `State` methods over the in-memory stores
//! that take no GraphQL context and return plain values. The rules (which annotation or label
//! means what) are pure functions in `domain::joins` and `domain::kubernetes`; the indexes that
//! make them cheap are kept by the stores. Visibility is not applied here: `graph/` filters what
//! these return for the caller, so a join means the same for everyone and can be tested alone.
//!
//! | forward                         | reverse                          |
//! |---------------------------------|----------------------------------|
//! | `apps_of_entity`                | `entities_of_app`                |
//! | `objects_of_entity`             | `entities_of_object`             |
//! | `objects_of_app`                | `apps_of_object`                 |
//! | `Entity.join.github_slug`       | `entities_of_repository`         |
//! | `commit_of_revision` (app → commit, by repo URL + revision)         |

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::kubernetes::{obj_key, ClusterStore, IndexKey, Kind, ObjRef, Stored};
use super::State;
use crate::domain::argocd::Application;
use crate::domain::joins::{entity_has_app, github_slug_of_repo_url};
use crate::domain::kubernetes::{
    argocd_apps_of, entity_claims, ConfigMapInfo, DeploymentInfo, PodInfo, ReplicaSetInfo,
    SecretInfo, KUBERNETES_ID_LABEL,
};
use crate::domain::selector::LabelSelector;
use crate::domain::Entity;

/// Objects per cluster name.
pub type ObjectsByCluster = BTreeMap<String, BTreeSet<ObjRef>>;

impl State {
    /// Applications an entity claims (`argocd/app-name`, `argocd/app-selector`, narrowed by
    /// instance, project and app namespace), sorted by key.
    pub fn apps_of_entity(&self, e: &Entity) -> Vec<Arc<Application>> {
        let mut apps: Vec<Arc<Application>> = e
            .join
            .argocd_app_names
            .iter()
            .flat_map(|n| self.apps.by_name(n))
            .collect();
        if e.join.argocd_app_selector.is_some() {
            apps.extend(self.apps.select(|a| entity_has_app(&e.join, a)));
        }
        apps.retain(|a| entity_has_app(&e.join, a));
        apps.sort_by(|a, b| a.key_string.cmp(&b.key_string));
        apps.dedup_by(|a, b| a.key_string == b.key_string);
        apps
    }

    /// Entities that claim an application, sorted by ref.
    pub fn entities_of_app(&self, app: &Application) -> Vec<Arc<Entity>> {
        let snapshot = self.catalog.snapshot();
        let mut found: Vec<Arc<Entity>> = snapshot
            .argocd_candidates(&app.key.name)
            .filter(|e| entity_has_app(&e.join, app))
            .cloned()
            .collect();
        found.sort_by(|a, b| a.ref_string.cmp(&b.ref_string));
        found.dedup_by(|a, b| a.ref_string == b.ref_string);
        found
    }

    /// Clusters an application deploys to (by `destination.server` / `destination.name`).
    pub fn clusters_of_app(&self, app: &Application) -> Vec<Arc<ClusterStore>> {
        self.clusters
            .all()
            .into_iter()
            .filter(|c| {
                c.is_destination(
                    app.destination.server.as_deref(),
                    app.destination.name.as_deref(),
                )
            })
            .collect()
    }

    /// What an application owns, per cluster: objects labelled or annotated with its name,
    /// the objects in its resource list, and the ReplicaSets and pods under its workloads.
    pub fn objects_of_app(&self, app: &Application) -> ObjectsByCluster {
        let mut out = BTreeMap::new();
        for c in self.clusters_of_app(app) {
            let mut refs: BTreeSet<ObjRef> = c
                .lookup(&IndexKey::ArgoApp(app.key.name.clone()))
                .into_iter()
                .collect();
            let dest_ns = app.destination.namespace.clone().unwrap_or_default();
            for r in app.resources.iter() {
                if let Some(kind) = Kind::parse(&r.kind) {
                    let ns = if kind == Kind::Namespace {
                        String::new()
                    } else {
                        r.namespace.clone().unwrap_or_else(|| dest_ns.clone())
                    };
                    refs.insert((kind, ns, r.name.clone()));
                }
            }
            with_children(&c, &mut refs);
            out.insert(c.name.clone(), refs);
        }
        out
    }

    /// What a catalog entity names in every cluster, as the Backstage Kubernetes plugin reads
    /// it: `backstage.io/kubernetes-label-selector` if set, else the label
    /// `backstage.io/kubernetes-id=<id>`; `backstage.io/kubernetes-namespace` narrows to one
    /// namespace. The id is an index lookup; a selector is a scan (of one namespace when given).
    /// Pods and ReplicaSets under the named workloads come along.
    pub fn objects_of_entity(&self, e: &Entity) -> ObjectsByCluster {
        let mut out = BTreeMap::new();
        let selector = e
            .join
            .kubernetes_label_selector
            .as_deref()
            .and_then(|s| LabelSelector::parse(s).ok());
        if selector.is_none() && e.join.kubernetes_id.is_none() {
            return out;
        }
        let ns = e.join.kubernetes_namespace.as_deref();
        for c in self.clusters.all() {
            let mut refs: BTreeSet<ObjRef> = BTreeSet::new();
            if let Some(sel) = &selector {
                scan::<DeploymentInfo>(&c, ns, sel, &mut refs);
                scan::<StatefulSet>(&c, ns, sel, &mut refs);
                scan::<DaemonSet>(&c, ns, sel, &mut refs);
                scan::<ReplicaSetInfo>(&c, ns, sel, &mut refs);
                scan::<PodInfo>(&c, ns, sel, &mut refs);
                scan::<Service>(&c, ns, sel, &mut refs);
                scan::<Ingress>(&c, ns, sel, &mut refs);
                scan::<ConfigMapInfo>(&c, ns, sel, &mut refs);
                scan::<SecretInfo>(&c, ns, sel, &mut refs);
            } else if let Some(id) = &e.join.kubernetes_id {
                refs.extend(
                    c.lookup(&IndexKey::KubernetesId(id.clone()))
                        .into_iter()
                        .filter(|(_, n, _)| ns.is_none_or(|ns| ns == n)),
                );
            }
            with_children(&c, &mut refs);
            if !refs.is_empty() {
                out.insert(c.name.clone(), refs);
            }
        }
        out
    }

    /// ArgoCD applications that own an object: by its instance label / tracking id (deploying
    /// to its cluster), else by its controller's (a pod → its ReplicaSet → its Deployment).
    pub fn apps_of_object(&self, c: &ClusterStore, meta: &ObjectMeta) -> Vec<Arc<Application>> {
        up_the_controllers(c, meta, |m| self.tracked_apps(c, m))
    }

    /// Catalog entities an object belongs to: those whose Kubernetes annotations claim it (the
    /// `backstage.io/kubernetes-id` label or a label selector, narrowed by namespace), else
    /// those of its applications; then the same for its controller.
    pub fn entities_of_object(&self, c: &ClusterStore, meta: &ObjectMeta) -> Vec<Arc<Entity>> {
        let snapshot = self.catalog.snapshot();
        up_the_controllers(c, meta, |m| {
            let id = m
                .labels
                .as_ref()
                .and_then(|l| l.get(KUBERNETES_ID_LABEL))
                .map(String::as_str);
            let mut found: Vec<Arc<Entity>> = snapshot
                .kubernetes_candidates(id)
                .filter(|e| entity_claims(&e.join, m))
                .cloned()
                .collect();
            if found.is_empty() {
                for app in self.tracked_apps(c, m) {
                    found.extend(self.entities_of_app(&app));
                }
            }
            found.sort_by(|a, b| a.ref_string.cmp(&b.ref_string));
            found.dedup_by(|a, b| a.ref_string == b.ref_string);
            found
        })
    }

    /// Apps an object's own instance label / tracking id names, deploying to its cluster.
    fn tracked_apps(&self, c: &ClusterStore, meta: &ObjectMeta) -> Vec<Arc<Application>> {
        let mut apps: Vec<Arc<Application>> = argocd_apps_of(meta)
            .iter()
            .flat_map(|n| self.apps.by_name(n))
            .filter(|a| {
                c.is_destination(
                    a.destination.server.as_deref(),
                    a.destination.name.as_deref(),
                )
            })
            .collect();
        apps.sort_by(|a, b| a.key_string.cmp(&b.key_string));
        apps.dedup_by(|a, b| a.key_string == b.key_string);
        apps
    }

    /// Catalog entities whose `github.com/project-slug` names a repository.
    pub fn entities_of_repository(&self, slug: &str) -> Vec<Arc<Entity>> {
        self.catalog
            .snapshot()
            .by_github_slug(slug)
            .cloned()
            .collect()
    }
}

/// The GitHub commit (`owner/repo`, SHA) an ArgoCD revision of a source repo URL names, when
/// the repo is on one of `github_hosts` and the revision is a commit SHA (not a branch or tag).
pub fn commit_of_revision(
    repo_url: &str,
    revision: &str,
    github_hosts: &[&str],
) -> Option<(String, String)> {
    let is_sha =
        (7..=40).contains(&revision.len()) && revision.chars().all(|c| c.is_ascii_hexdigit());
    if !is_sha {
        return None;
    }
    let slug = github_slug_of_repo_url(repo_url, github_hosts)?;
    Some((slug, revision.to_string()))
}

fn scan<K: Stored>(
    c: &ClusterStore,
    ns: Option<&str>,
    sel: &LabelSelector,
    refs: &mut BTreeSet<ObjRef>,
) {
    let empty = BTreeMap::new();
    for o in K::store(c).list(ns) {
        if sel.matches(o.meta().labels.as_ref().unwrap_or(&empty)) {
            let (n, name) = obj_key(o.meta());
            refs.insert((K::KIND, n, name));
        }
    }
}

/// Adds the pods (and ReplicaSets) under the Deployments, StatefulSets and DaemonSets in `refs`.
fn with_children(c: &ClusterStore, refs: &mut BTreeSet<ObjRef>) {
    let owners: Vec<ObjRef> = refs
        .iter()
        .filter(|(k, _, _)| matches!(k, Kind::Deployment | Kind::StatefulSet | Kind::DaemonSet))
        .cloned()
        .collect();
    for (kind, ns, name) in owners {
        let mut pod_owners = vec![(kind.as_str(), name.clone())];
        if kind == Kind::Deployment {
            for rs in c.owned::<ReplicaSetInfo>(&ns, "Deployment", &name) {
                let rs_name = rs.metadata.name.clone().unwrap_or_default();
                refs.insert((Kind::ReplicaSet, ns.clone(), rs_name.clone()));
                pod_owners.push(("ReplicaSet", rs_name));
            }
        }
        for (okind, oname) in pod_owners {
            for p in c.owned::<PodInfo>(&ns, okind, &oname) {
                refs.insert((
                    Kind::Pod,
                    ns.clone(),
                    p.metadata.name.clone().unwrap_or_default(),
                ));
            }
        }
    }
}

/// `join` of the object, else of its controller, its controller's controller (a pod →
/// ReplicaSet → Deployment): the first answer that is not empty.
fn up_the_controllers<T>(
    c: &ClusterStore,
    meta: &ObjectMeta,
    join: impl Fn(&ObjectMeta) -> Vec<T>,
) -> Vec<T> {
    let mut meta = std::borrow::Cow::Borrowed(meta);
    for _ in 0..3 {
        let found = join(&meta);
        if !found.is_empty() {
            return found;
        }
        match controller_meta(c, &meta) {
            Some(parent) => meta = std::borrow::Cow::Owned(parent),
            None => break,
        }
    }
    Vec::new()
}

/// The metadata of an object's controller (ReplicaSet, Deployment, StatefulSet, DaemonSet),
/// if the cluster holds it.
fn controller_meta(c: &ClusterStore, meta: &ObjectMeta) -> Option<ObjectMeta> {
    let owner = meta
        .owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true))?;
    let ns = meta.namespace.as_deref().unwrap_or("");
    let name = owner.name.as_str();
    match owner.kind.as_str() {
        "ReplicaSet" => c.replica_sets.get(ns, name).map(|o| o.metadata.clone()),
        "Deployment" => c.deployments.get(ns, name).map(|o| o.metadata.clone()),
        "StatefulSet" => c.stateful_sets.get(ns, name).map(|o| o.metadata.clone()),
        "DaemonSet" => c.daemon_sets.get(ns, name).map(|o| o.metadata.clone()),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests;
