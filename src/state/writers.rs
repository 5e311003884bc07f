//! Where a change is written: one writer per store, the only way into it — as kube-runtime's
//! `reflector::store::Writer` is the only way into its `Store`.
//!
//! Sources and mutations hand a writer what they observed and do nothing else. The writer
//! applies it to its store, decides whether anything the graph exposes changed (an ArgoCD
//! application's state, a Kubernetes object's `resourceVersion`, a catalog entity's etag, a
//! GitHub value), moves the store's generation only then (so a re-list that observes nothing
//! new keeps every cached answer, `state::reads`), publishes each change on the bus (every kind,
//! Pods and Events included) and updates the source's object count. Anything that must see
//! every change — a subscription, a shared change log — hooks in here, at `publish`.
//!
//! | store | writer | fed by |
//! |---|---|---|
//! | `CatalogStore` | [`CatalogWriter`] | `sources::backstage::poller` |
//! | `AppStore` (per ArgoCD instance) | [`AppWriter`] | `sources::argocd::watcher`, `graph::mutation` |
//! | `ClusterStore`, one per kind | [`KindWriter`] (buffers a list until it is complete) | `sources::kubernetes`, `restartDeployment` |
//! | GitHub's response cache (held by `sources::github`) | [`GitHubWriter`] | webhooks, safety-net rounds |

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::Utc;

use super::kubernetes::{obj_key, Changed, ClusterStore, ObjKey, Stored};
use super::ownership::source_id;
use super::{CatalogSnapshot, LogBody, SourceHealth, SourceKind, State};
use crate::domain::argocd::{AppKey, Application, Project};
use crate::domain::Entity;
use crate::events::{AppChange, Change, ChangeKind, EntityChange, ObjectChange, RepositoryChange};

/// Publishes changes in order; an empty batch publishes nothing. With replicas sharing one
/// change log, appends them there instead: the log gives them their positions, and every
/// replica, this one too, publishes them as it reads them back (`LogApplier`).
fn publish(state: &State, source: &str, changes: Vec<Change>) {
    if changes.is_empty() {
        return;
    }
    match state.change_log.get() {
        Some(log) => log.append(
            source,
            LogBody::Changes {
                changes,
                github_values: false,
            },
        ),
        None => state.bus.publish(changes),
    }
}

/// The catalog's writer: each complete listing becomes a snapshot; what differs from the
/// previous one becomes entity changes.
pub struct CatalogWriter {
    state: Arc<State>,
    health: Arc<SourceHealth>,
}

impl CatalogWriter {
    pub fn new(state: Arc<State>, health: Arc<SourceHealth>) -> Self {
        Self { state, health }
    }

    /// One complete listing. Returns the number of changes; a listing equal to the held one
    /// only refreshes the snapshot's `observed_at` (kept answers stay valid).
    pub fn observe_list(&self, entities: Vec<Entity>, duration_ms: f64) -> usize {
        let old = self.state.catalog.snapshot();
        let new = CatalogSnapshot::build(entities, Utc::now());
        let changes = diff(&old, &new);
        let count = new.len() as u64;
        if changes.is_empty() {
            self.state.catalog.refresh(new);
        } else {
            self.state.catalog.replace(new);
        }
        let n = changes.len();
        publish(
            &self.state,
            SourceKind::Backstage.as_str(),
            changes.into_iter().map(Change::Entity).collect(),
        );
        self.health.record_success(count, duration_ms);
        n
    }
}

/// The identity of an entity across polls: its uid, or its ref where the catalog sends none.
fn identity(e: &Entity) -> &str {
    e.uid.as_deref().unwrap_or(&e.ref_string)
}

fn entity_changed(a: &Entity, b: &Entity) -> bool {
    match (&a.etag, &b.etag) {
        (Some(x), Some(y)) => x != y,
        _ => a != b,
    }
}

/// Added, Modified and Deleted between two snapshots, in ref order.
pub fn diff(old: &CatalogSnapshot, new: &CatalogSnapshot) -> Vec<EntityChange> {
    let old_by_id: HashMap<&str, &Arc<Entity>> =
        old.entities.iter().map(|e| (identity(e), e)).collect();
    let mut seen = HashSet::with_capacity(new.len());
    let mut changes = Vec::new();
    for e in &new.entities {
        let id = identity(e);
        seen.insert(id);
        match old_by_id.get(id) {
            None => changes.push(EntityChange {
                kind: ChangeKind::Added,
                entity_ref: e.ref_string.clone(),
                previous: None,
                current: Some(e.clone()),
            }),
            Some(prev) if entity_changed(prev, e) => changes.push(EntityChange {
                kind: ChangeKind::Modified,
                entity_ref: e.ref_string.clone(),
                previous: Some((*prev).clone()),
                current: Some(e.clone()),
            }),
            Some(_) => {}
        }
    }
    for e in &old.entities {
        if !seen.contains(identity(e)) {
            changes.push(EntityChange {
                kind: ChangeKind::Deleted,
                entity_ref: e.ref_string.clone(),
                previous: Some(e.clone()),
                current: None,
            });
        }
    }
    changes
}

/// One ArgoCD instance's writer (the watcher's, and a mutation's for the upstream's answer).
pub struct AppWriter {
    state: Arc<State>,
    instance: String,
    /// `argocd/<instance>`.
    source: String,
    /// The instance's health, for its object count (none in tests without a registered source).
    health: Option<Arc<SourceHealth>>,
}

impl AppWriter {
    pub fn new(state: Arc<State>, instance: &str) -> Self {
        let health = state.sources.find(SourceKind::ArgoCd, instance);
        Self {
            state,
            instance: instance.to_string(),
            source: source_id(SourceKind::ArgoCd, instance),
            health,
        }
    }

    /// One observed state of one application (a stream event, an action's answer). Returns
    /// what is stored (the caller reads its own write).
    pub fn observe(&self, app: Application) -> Arc<Application> {
        let (stored, change) = self.state.apps.upsert(app);
        self.publish(change.into_iter().collect());
        stored
    }

    pub fn observe_deleted(&self, key: &AppKey) {
        let change = self.state.apps.remove(key);
        self.publish(change.into_iter().collect());
    }

    /// A complete list of the instance's applications and projects. Returns the number of
    /// application changes.
    pub fn observe_list(&self, apps: Vec<Application>, projects: Vec<Project>) -> usize {
        let changes = self.state.apps.replace_instance(&self.instance, apps);
        if self
            .state
            .apps
            .set_projects(&self.instance, projects.clone())
        {
            if let Some(log) = self.state.change_log.get() {
                let instance = self.instance.clone();
                log.append(&self.source, LogBody::Projects { instance, projects });
            }
        }
        let n = changes.len();
        self.publish(changes);
        n
    }

    /// The instance's application count.
    pub fn count(&self) -> u64 {
        self.state.apps.count(&self.instance) as u64
    }

    fn publish(&self, changes: Vec<AppChange>) {
        if changes.is_empty() {
            return;
        }
        publish(
            &self.state,
            &self.source,
            changes.into_iter().map(Change::Application).collect(),
        );
        if let Some(h) = &self.health {
            h.set_object_count(self.count());
        }
    }
}

/// One kind's writer in one cluster. A watch's initial list (or re-list) is buffered here until
/// it is complete, then swapped in whole: readers never see half a list.
pub struct KindWriter<K: Stored> {
    state: Arc<State>,
    cluster: Arc<ClusterStore>,
    /// `kubernetes/<cluster>`.
    source: String,
    buffer: Option<BTreeMap<ObjKey, Arc<K>>>,
}

impl<K: Stored> KindWriter<K> {
    pub fn new(state: Arc<State>, cluster: Arc<ClusterStore>) -> Self {
        Self {
            source: source_id(SourceKind::Kubernetes, &cluster.name),
            state,
            cluster,
            buffer: None,
        }
    }

    /// A (re-)list starts.
    pub fn list_started(&mut self) {
        self.buffer = Some(BTreeMap::new());
    }

    /// One object of the list under way.
    pub fn listed(&mut self, o: K) {
        self.buffer
            .get_or_insert_with(BTreeMap::new)
            .insert(obj_key(o.meta()), Arc::new(o));
    }

    /// The list is complete: it replaces the kind's content. Returns the number of changes.
    pub fn list_done(&mut self) -> usize {
        let items = self.buffer.take().unwrap_or_default();
        let changed = self.cluster.replace_all(items);
        let n = changed.len();
        self.publish(changed);
        n
    }

    /// An object was added or modified. Returns what is stored.
    pub fn observe(&self, o: K) -> Arc<K> {
        let (stored, change) = self.cluster.apply(o);
        self.publish(change.into_iter().collect());
        stored
    }

    pub fn observe_deleted(&self, o: &K) {
        let change = self.cluster.delete(o);
        self.publish(change.into_iter().collect());
    }

    fn publish(&self, changed: Vec<Changed<K>>) {
        if changed.is_empty() {
            return;
        }
        let cluster = &self.cluster.name;
        let mut out = Vec::with_capacity(changed.len());
        for (old, new) in changed {
            let kind = match (&old, &new) {
                (None, _) => ChangeKind::Added,
                (Some(_), Some(_)) => ChangeKind::Modified,
                (Some(_), None) => ChangeKind::Deleted,
            };
            let rollout = K::rollout_change(cluster, old.as_ref(), new.as_ref());
            out.push(Change::Object(ObjectChange::new(
                cluster,
                kind,
                old.map(K::object),
                new.map(K::object),
            )));
            out.extend(rollout.map(Change::Rollout));
        }
        publish(&self.state, &self.source, out);
        self.cluster
            .health
            .set_object_count(self.cluster.object_count() as u64);
    }
}

/// GitHub's writer. The response cache itself is the GitHub source's (it holds bodies and
/// ETags); what kept answers and subscribers must learn of passes through here.
pub struct GitHubWriter {
    state: Arc<State>,
}

impl GitHubWriter {
    pub fn new(state: Arc<State>) -> Self {
        Self { state }
    }

    /// Repositories changed; `values_changed`: a value the graph reads was replaced in the
    /// cache (only then are kept answers dropped).
    pub fn observe(&self, changes: Vec<RepositoryChange>, values_changed: bool) {
        if values_changed {
            self.state.github_cache.bump();
        }
        let changes: Vec<Change> = changes.into_iter().map(Change::Repository).collect();
        match self.state.change_log.get() {
            Some(log) if values_changed || !changes.is_empty() => log.append(
                SourceKind::GitHub.as_str(),
                LogBody::Changes {
                    changes,
                    github_values: values_changed,
                },
            ),
            Some(_) => {}
            None => publish(&self.state, SourceKind::GitHub.as_str(), changes),
        }
    }
}
