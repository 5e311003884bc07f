//! What the Kubernetes source last observed, per cluster: one ordered map per kind, keyed by
//! (namespace, name) so a namespace is a range scan, plus the join indexes (the catalog's
//! `backstage.io/kubernetes-id` label, ArgoCD's `app.kubernetes.io/instance` label and
//! `argocd.argoproj.io/tracking-id` annotation, and owner references) kept up to date on every
//! watch event instead of being recomputed per query.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use parking_lot::RwLock;

use super::sources::SourceHealth;
use crate::domain::kubernetes::{
    argocd_apps_of, rollout, ConfigMapInfo, DeploymentInfo, EventInfo, PodInfo, ReplicaSetInfo,
    SecretInfo, KUBERNETES_ID_LABEL,
};
pub use crate::domain::kubernetes::{Kind, KubeObject};
use crate::events::RolloutChange;

/// (namespace, name); the namespace is "" for cluster-scoped kinds.
pub type ObjKey = (String, String);

/// (before, after) of one object that changed: `None` before when it appeared, after when it
/// went.
pub type Changed<K> = (Option<Arc<K>>, Option<Arc<K>>);

/// One object in one cluster, as the indexes refer to it.
pub type ObjRef = (Kind, String, String);

/// What the join indexes are keyed by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IndexKey {
    /// `backstage.io/kubernetes-id=<id>`.
    KubernetesId(String),
    /// `app.kubernetes.io/instance=<app>` or the app of `argocd.argoproj.io/tracking-id`.
    ArgoApp(String),
    /// The controller owner: (namespace, owner kind, owner name).
    Owner(String, String, String),
    /// Events about an object: (namespace, kind, name) of `involvedObject`.
    Involved(String, String, String),
}

/// Every index key of an object: from its metadata, and for Events their `involvedObject`.
fn keys_of<K: Stored>(o: &K) -> Vec<IndexKey> {
    let mut keys = index_keys(o.meta());
    keys.extend(o.own_index_keys());
    keys
}

fn index_keys(meta: &ObjectMeta) -> Vec<IndexKey> {
    let mut out: Vec<IndexKey> = argocd_apps_of(meta)
        .into_iter()
        .map(|a| IndexKey::ArgoApp(a.to_string()))
        .collect();
    if let Some(id) = meta
        .labels
        .as_ref()
        .and_then(|l| l.get(KUBERNETES_ID_LABEL))
    {
        out.push(IndexKey::KubernetesId(id.clone()));
    }
    if let Some(owner) = meta
        .owner_references
        .as_ref()
        .and_then(|o| o.iter().find(|r| r.controller == Some(true)))
    {
        out.push(IndexKey::Owner(
            meta.namespace.clone().unwrap_or_default(),
            owner.kind.clone(),
            owner.name.clone(),
        ));
    }
    out
}

pub fn obj_key(meta: &ObjectMeta) -> ObjKey {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// The objects of one kind in one cluster.
pub struct KindStore<K> {
    map: RwLock<BTreeMap<ObjKey, Arc<K>>>,
    synced: AtomicBool,
}

impl<K> Default for KindStore<K> {
    fn default() -> Self {
        Self {
            map: RwLock::new(BTreeMap::new()),
            synced: AtomicBool::new(false),
        }
    }
}

impl<K> KindStore<K> {
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        self.map
            .read()
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Everything, or one namespace (a range scan), in (namespace, name) order.
    pub fn list(&self, namespace: Option<&str>) -> Vec<Arc<K>> {
        let map = self.map.read();
        match namespace {
            None => map.values().cloned().collect(),
            Some(ns) => map
                .range((ns.to_string(), String::new())..)
                .take_while(|((n, _), _)| n == ns)
                .map(|(_, v)| v.clone())
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.map.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.read().is_empty()
    }

    /// The first complete list has been stored.
    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }
}

/// A kind the source keeps: where its store is in a [`ClusterStore`].
pub trait Stored:
    kube::Resource<DynamicType = ()>
    + Clone
    + serde::de::DeserializeOwned
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    const KIND: Kind;
    fn store(c: &ClusterStore) -> &KindStore<Self>;
    /// The object as the bus carries it.
    fn object(o: Arc<Self>) -> KubeObject;
    /// Index keys the kind adds to its metadata's (Events: the object they are about).
    fn own_index_keys(&self) -> Vec<IndexKey> {
        Vec::new()
    }
    /// How a change of this kind moved a rollout (Deployments only; other kinds have none).
    fn rollout_change(
        _cluster: &str,
        _old: Option<&Arc<Self>>,
        _new: Option<&Arc<Self>>,
    ) -> Option<RolloutChange> {
        None
    }
}

macro_rules! stored {
    ($($ty:ty => $kind:ident, $field:ident $({ $($own:item)* })?;)*) => {
        /// Everything observed in one cluster.
        pub struct ClusterStore {
            pub name: String,
            /// The API server URL (what `sources.url` shows; kubectl can use it).
            pub url: String,
            /// Names and server URLs ArgoCD applications use for this cluster as destination.
            pub argocd_destinations: Vec<String>,
            pub health: Arc<SourceHealth>,
            $(pub $field: KindStore<$ty>,)*
            index: RwLock<HashMap<IndexKey, BTreeSet<ObjRef>>>,
            /// Complete (re-)lists stored, all kinds together.
            pub lists: std::sync::atomic::AtomicU64,
            /// Bumped by every write (the response cache compares it).
            pub generation: super::reads::Generation,
        }

        impl ClusterStore {
            pub fn new(name: &str, url: &str, argocd_destinations: Vec<String>, health: Arc<SourceHealth>) -> Self {
                Self {
                    name: name.to_string(),
                    url: url.to_string(),
                    argocd_destinations,
                    health,
                    $($field: KindStore::default(),)*
                    index: RwLock::new(HashMap::new()),
                    lists: Default::default(),
                    generation: Default::default(),
                }
            }

            fn synced_of(&self, kind: Kind) -> bool {
                match kind { $(Kind::$kind => self.$field.synced(),)* }
            }

            pub fn object_count(&self) -> usize {
                0 $(+ self.$field.len())*
            }

            /// Every kind counts as listed (a replica that receives this cluster through the
            /// shared log once its owner has listed it).
            pub(super) fn mark_synced(&self) {
                $(self.$field.synced.store(true, Ordering::Release);)*
            }

            /// Every stored object, kind by kind (a replica's snapshot of this cluster).
            pub fn all_objects(&self) -> Vec<KubeObject> {
                let mut out = Vec::with_capacity(self.object_count());
                $(out.extend(self.$field.list(None).into_iter().map(KubeObject::$kind));)*
                out
            }

            /// Makes every kind exactly what `objects` holds, marked synced (a replica starting
            /// from another's snapshot). Publishes nothing; the generation moves if anything changed.
            pub(super) fn import_objects(&self, objects: Vec<KubeObject>) {
                $(let mut $field: BTreeMap<ObjKey, Arc<$ty>> = BTreeMap::new();)*
                for o in objects {
                    match o {
                        $(KubeObject::$kind(o) => { $field.insert(obj_key(kube::Resource::meta(&*o)), o); })*
                    }
                }
                $(self.replace_all($field);)*
            }

            /// Namespaced objects of every kind in one namespace (range scans).
            pub fn objects_in_namespace(&self, namespace: &str) -> usize {
                0 $(+ self.$field.list(Some(namespace)).len())*
            }
        }

        $(impl Stored for $ty {
            const KIND: Kind = Kind::$kind;
            fn store(c: &ClusterStore) -> &KindStore<Self> {
                &c.$field
            }
            fn object(o: Arc<Self>) -> KubeObject {
                KubeObject::$kind(o)
            }
            $($($own)*)?
        })*
    };
}

stored! {
    Namespace => Namespace, namespaces;
    DeploymentInfo => Deployment, deployments {
        fn rollout_change(
            cluster: &str,
            old: Option<&Arc<Self>>,
            new: Option<&Arc<Self>>,
        ) -> Option<RolloutChange> {
            let before = old.map(|d| rollout(d));
            let after = new.map(|d| rollout(d));
            if before == after {
                return None;
            }
            let deployment = new.or(old)?.clone();
            Some(RolloutChange::new(cluster, before, after, deployment))
        }
    };
    ReplicaSetInfo => ReplicaSet, replica_sets;
    StatefulSet => StatefulSet, stateful_sets;
    DaemonSet => DaemonSet, daemon_sets;
    PodInfo => Pod, pods;
    Service => Service, services;
    Ingress => Ingress, ingresses;
    ConfigMapInfo => ConfigMap, config_maps;
    SecretInfo => Secret, secrets;
    EventInfo => Event, events {
        fn own_index_keys(&self) -> Vec<IndexKey> {
            self.involved
                .clone()
                .map(|(ns, kind, name)| IndexKey::Involved(ns, kind, name))
                .into_iter()
                .collect()
        }
    };
}

impl ClusterStore {
    /// Every kind has had its first complete list.
    pub fn synced(&self) -> bool {
        Kind::ALL.iter().all(|k| self.synced_of(*k))
    }

    fn reindex<K: Stored>(&self, old: Option<&K>, new: Option<&K>) {
        let old_keys = old.map(keys_of).unwrap_or_default();
        let new_keys = new.map(keys_of).unwrap_or_default();
        let (old_at, new_at) = (
            old.map(|o| obj_key(o.meta())),
            new.map(|n| obj_key(n.meta())),
        );
        if old_keys == new_keys && old_at == new_at {
            return;
        }
        let mut index = self.index.write();
        if let Some((ns, name)) = old_at {
            let r = (K::KIND, ns, name);
            for k in old_keys {
                if let Some(set) = index.get_mut(&k) {
                    set.remove(&r);
                    if set.is_empty() {
                        index.remove(&k);
                    }
                }
            }
        }
        if let Some((ns, name)) = new_at {
            for k in new_keys {
                index
                    .entry(k)
                    .or_default()
                    .insert((K::KIND, ns.clone(), name.clone()));
            }
        }
    }

    /// Stores an added or modified object (the writer's way in). Returns what is stored and,
    /// when it differs from what was (another `resourceVersion`), the change; only then does
    /// the generation move.
    pub(super) fn apply<K: Stored>(&self, obj: K) -> (Arc<K>, Option<Changed<K>>) {
        let key = obj_key(obj.meta());
        let obj = Arc::new(obj);
        let old = {
            let mut map = K::store(self).map.write();
            match map.get(&key) {
                Some(o)
                    if o.meta().resource_version.is_some()
                        && o.meta().resource_version == obj.meta().resource_version =>
                {
                    return (o.clone(), None);
                }
                _ => map.insert(key, obj.clone()),
            }
        };
        self.reindex(old.as_deref(), Some(&*obj));
        self.generation.bump();
        (obj.clone(), Some((old, Some(obj))))
    }

    /// Removes an object (the writer's way in); the change, if it was stored.
    pub(super) fn delete<K: Stored>(&self, obj: &K) -> Option<Changed<K>> {
        let key = obj_key(obj.meta());
        let old = K::store(self).map.write().remove(&key)?;
        self.reindex(Some(&*old), None);
        self.generation.bump();
        Some((Some(old), None))
    }

    /// Replaces a kind's whole content after a (re-)list (the writer's way in); returns
    /// (before, after) of every object that changed, appeared or disappeared. A list that
    /// changes nothing leaves the generation where it was.
    pub(super) fn replace_all<K: Stored>(
        &self,
        items: BTreeMap<ObjKey, Arc<K>>,
    ) -> Vec<Changed<K>> {
        let store = K::store(self);
        let mut changed = Vec::new();
        {
            // Compared and swapped under one lock, without copying the new list.
            let mut map = store.map.write();
            for (k, o) in map.iter() {
                match items.get(k) {
                    None => changed.push((Some(o.clone()), None)),
                    Some(n) if n.meta().resource_version != o.meta().resource_version => {
                        changed.push((Some(o.clone()), Some(n.clone())))
                    }
                    Some(_) => {}
                }
            }
            for (k, n) in &items {
                if !map.contains_key(k) {
                    changed.push((None, Some(n.clone())));
                }
            }
            *map = items;
        }
        store.synced.store(true, Ordering::Release);
        self.lists.fetch_add(1, Ordering::Relaxed);
        for (o, n) in &changed {
            self.reindex(o.as_deref(), n.as_deref());
        }
        if !changed.is_empty() {
            self.generation.bump();
        }
        changed
    }

    /// The objects filed under an index key, in (kind, namespace, name) order.
    pub fn lookup(&self, key: &IndexKey) -> Vec<ObjRef> {
        self.index
            .read()
            .get(key)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Objects of one kind filed under an index key.
    pub fn lookup_kind<K: Stored>(&self, key: &IndexKey) -> Vec<Arc<K>> {
        let refs = self.lookup(key);
        let store = K::store(self);
        refs.into_iter()
            .filter(|(k, _, _)| *k == K::KIND)
            .filter_map(|(_, ns, name)| store.get(&ns, &name))
            .collect()
    }

    /// Objects of one kind whose controller is `owner_kind/owner_name` in `namespace`.
    pub fn owned<K: Stored>(&self, namespace: &str, owner_kind: &str, owner: &str) -> Vec<Arc<K>> {
        self.lookup_kind(&IndexKey::Owner(
            namespace.to_string(),
            owner_kind.to_string(),
            owner.to_string(),
        ))
    }

    /// Whether ArgoCD applications with this destination deploy into this cluster.
    pub fn is_destination(&self, server: Option<&str>, name: Option<&str>) -> bool {
        self.argocd_destinations
            .iter()
            .any(|d| Some(d.as_str()) == server || Some(d.as_str()) == name)
    }
}

/// Every configured cluster, in name order.
#[derive(Default)]
pub struct Clusters {
    entries: RwLock<Vec<Arc<ClusterStore>>>,
}

impl Clusters {
    pub fn add(&self, c: Arc<ClusterStore>) {
        let mut e = self.entries.write();
        e.push(c);
        e.sort_by(|a, b| a.name.cmp(&b.name));
    }

    pub fn all(&self) -> Vec<Arc<ClusterStore>> {
        super::reads::note(super::reads::Section::Kubernetes);
        self.entries.read().clone()
    }

    pub fn get(&self, name: &str) -> Option<Arc<ClusterStore>> {
        super::reads::note(super::reads::Section::Kubernetes);
        self.entries.read().iter().find(|c| c.name == name).cloned()
    }

    /// All clusters' change counts, summed (each only grows, so any write changes the sum).
    pub fn generation(&self) -> u64 {
        self.entries
            .read()
            .iter()
            .map(|c| c.generation.get())
            .fold(0, u64::wrapping_add)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.read().is_empty()
    }
}
