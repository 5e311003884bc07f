//! ArgoCD applications of every instance, live: replaced per instance by each list, patched by
//! each stream event. Kept in a `BTreeMap` under a `parking_lot::RwLock` (writes are single
//! events, reads copy out the `Arc`s they need and release the lock before any await), with a
//! by-name index so a lookup never scans or fans out.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::domain::argocd::{AppKey, Application, Project};
use crate::events::{AppChange, ChangeKind};

#[derive(Default)]
struct Inner {
    /// By `AppKey::render()`: sorted by instance, namespace, name.
    apps: BTreeMap<String, Arc<Application>>,
    /// App name → keys (the same name can live in several instances and namespaces).
    by_name: HashMap<String, BTreeSet<String>>,
    projects: BTreeMap<(String, String), Arc<Project>>,
    /// Apps per instance, kept on insert/remove so `count` is O(1) on the stream's hot path.
    counts: HashMap<String, usize>,
    /// Destination namespace → keys: who deploys into a namespace (the policy's
    /// `destinations` grant asks this for every Kubernetes object it filters).
    by_destination: HashMap<String, BTreeSet<String>>,
}

fn destination_of(app: &Application) -> &str {
    app.destination.namespace.as_deref().unwrap_or("")
}

fn unindex(index: &mut HashMap<String, BTreeSet<String>>, at: &str, key: &str) {
    if let Some(keys) = index.get_mut(at) {
        keys.remove(key);
        if keys.is_empty() {
            index.remove(at);
        }
    }
}

#[derive(Default)]
pub struct AppStore {
    inner: RwLock<Inner>,
    /// Bumped by every write (the response cache compares it).
    pub generation: super::reads::Generation,
}

impl Inner {
    fn insert(&mut self, app: Arc<Application>) -> Option<Arc<Application>> {
        self.by_name
            .entry(app.key.name.clone())
            .or_default()
            .insert(app.key_string.clone());
        self.by_destination
            .entry(destination_of(&app).to_string())
            .or_default()
            .insert(app.key_string.clone());
        let instance = app.key.instance.clone();
        let previous = self.apps.insert(app.key_string.clone(), app.clone());
        match &previous {
            None => *self.counts.entry(instance).or_default() += 1,
            Some(p) if destination_of(p) != destination_of(&app) => {
                unindex(&mut self.by_destination, destination_of(p), &app.key_string)
            }
            Some(_) => {}
        }
        previous
    }

    fn remove(&mut self, key_string: &str) -> Option<Arc<Application>> {
        let old = self.apps.remove(key_string)?;
        if let Some(n) = self.counts.get_mut(&old.key.instance) {
            *n = n.saturating_sub(1);
        }
        unindex(&mut self.by_name, &old.key.name, key_string);
        unindex(&mut self.by_destination, destination_of(&old), key_string);
        Some(old)
    }
}

impl AppStore {
    /// Applies one observed state of an application (the writer's way in). Returns what is
    /// now stored, and a change only when it differs from before; only then does the
    /// generation move (a re-list that observes nothing new keeps every cached answer).
    pub(super) fn upsert(&self, app: Application) -> (Arc<Application>, Option<AppChange>) {
        let (stored, change) = self.upsert_quietly(app);
        if change.is_some() {
            self.generation.bump();
        }
        (stored, change)
    }

    /// Stores without moving the generation (the caller does, once).
    fn upsert_quietly(&self, mut app: Application) -> (Arc<Application>, Option<AppChange>) {
        if let Some(older) = self.inner.read().apps.get(&app.key_string) {
            app.share_unchanged(older);
        }
        let app = Arc::new(app);
        let previous = self.inner.write().insert(app.clone());
        let change = match previous {
            Some(prev) if prev.same_state(&app) => None,
            prev => Some(AppChange::new(
                if prev.is_some() {
                    ChangeKind::Modified
                } else {
                    ChangeKind::Added
                },
                app.key.clone(),
                prev,
                Some(app.clone()),
            )),
        };
        (app, change)
    }

    pub(super) fn remove(&self, key: &AppKey) -> Option<AppChange> {
        let previous = self.inner.write().remove(&key.render())?;
        self.generation.bump();
        Some(AppChange::new(
            ChangeKind::Deleted,
            key.clone(),
            Some(previous),
            None,
        ))
    }

    /// Makes an instance's apps exactly `apps` (a full list), returning what changed.
    pub(super) fn replace_instance(
        &self,
        instance: &str,
        apps: Vec<Application>,
    ) -> Vec<AppChange> {
        let mut changes = Vec::new();
        let mut fresh = BTreeSet::new();
        for app in apps {
            fresh.insert(app.key_string.clone());
            changes.extend(self.upsert_quietly(app).1);
        }
        let stale: Vec<String> = self
            .inner
            .read()
            .apps
            .values()
            .filter(|a| a.key.instance == instance && !fresh.contains(&a.key_string))
            .map(|a| a.key_string.clone())
            .collect();
        for key in stale {
            if let Some(previous) = self.inner.write().remove(&key) {
                changes.push(AppChange::new(
                    ChangeKind::Deleted,
                    previous.key.clone(),
                    Some(previous),
                    None,
                ));
            }
        }
        if !changes.is_empty() {
            self.generation.bump();
        }
        changes
    }

    /// An instance's projects; true when they differ from what was held (then the generation
    /// moves).
    pub(super) fn set_projects(&self, instance: &str, projects: Vec<Project>) -> bool {
        let mut inner = self.inner.write();
        let held: Vec<&Arc<Project>> = inner
            .projects
            .iter()
            .filter(|((i, _), _)| i == instance)
            .map(|(_, p)| p)
            .collect();
        let mut sorted: Vec<&Project> = projects.iter().collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        if held.len() == sorted.len() && held.iter().zip(&sorted).all(|(a, b)| ***a == **b) {
            return false;
        }
        inner.projects.retain(|(i, _), _| i != instance);
        for p in projects {
            inner
                .projects
                .insert((p.instance.clone(), p.name.clone()), Arc::new(p));
        }
        drop(inner);
        self.generation.bump();
        true
    }

    /// One project of one instance.
    pub fn project(&self, instance: &str, name: &str) -> Option<Arc<Project>> {
        super::reads::note(super::reads::Section::ArgoCd);
        self.inner
            .read()
            .projects
            .get(&(instance.to_string(), name.to_string()))
            .cloned()
    }

    /// Does the app's project permit its destination? (Unknown project: no.)
    pub fn destination_permitted(&self, app: &Application) -> bool {
        self.project(&app.key.instance, &app.project)
            .is_some_and(|p| p.permits(&app.destination))
    }

    pub fn projects(&self) -> Vec<Arc<Project>> {
        super::reads::note(super::reads::Section::ArgoCd);
        self.inner.read().projects.values().cloned().collect()
    }

    /// Apps passing `keep`, sorted by key.
    pub fn select(&self, keep: impl Fn(&Application) -> bool) -> Vec<Arc<Application>> {
        super::reads::note(super::reads::Section::ArgoCd);
        self.inner
            .read()
            .apps
            .values()
            .filter(|a| keep(a))
            .cloned()
            .collect()
    }

    /// Apps with this name in any instance and namespace, sorted by key.
    pub fn by_name(&self, name: &str) -> Vec<Arc<Application>> {
        super::reads::note(super::reads::Section::ArgoCd);
        let inner = self.inner.read();
        inner
            .by_name
            .get(name)
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| inner.apps.get(k).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Apps deploying into a namespace (of any cluster), sorted by key.
    pub fn deploying_to(&self, namespace: &str) -> Vec<Arc<Application>> {
        super::reads::note(super::reads::Section::ArgoCd);
        let inner = self.inner.read();
        inner
            .by_destination
            .get(namespace)
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| inner.apps.get(k).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn get(&self, key: &AppKey) -> Option<Arc<Application>> {
        super::reads::note(super::reads::Section::ArgoCd);
        self.inner.read().apps.get(&key.render()).cloned()
    }

    pub fn count(&self, instance: &str) -> usize {
        super::reads::note(super::reads::Section::ArgoCd);
        self.inner.read().counts.get(instance).copied().unwrap_or(0)
    }

    pub fn len(&self) -> usize {
        super::reads::note(super::reads::Section::ArgoCd);
        self.inner.read().apps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::argocd::{AppKey, HealthStatus, HistoryEntry};

    fn entry(id: i64) -> HistoryEntry {
        HistoryEntry {
            id,
            revision: Some(format!("{id:040x}")),
            revisions: Vec::new(),
            deployed_at: None,
            deploy_started_at: None,
            source: None,
            initiated_by: None,
            automated: true,
        }
    }

    #[test]
    fn versions_share_an_unchanged_history_and_copy_a_changed_one() {
        let store = AppStore::default();
        let key = AppKey {
            instance: "main".into(),
            namespace: "argocd".into(),
            name: "a".into(),
        };
        let v1 = Application {
            history: vec![entry(1), entry(2)].into(),
            ..Application::named(key.clone())
        };
        let (first, _) = store.upsert(v1.clone());
        // A health flip, parsed afresh from the wire: an equal history in new memory.
        let fresh = Application {
            health: HealthStatus::Degraded,
            history: vec![entry(1), entry(2)].into(),
            resources: Vec::new().into(),
            ..v1.clone()
        };
        assert!(!Arc::ptr_eq(&fresh.history, &first.history));
        let (second, change) = store.upsert(fresh);
        assert!(change.is_some(), "a health flip is a change");
        assert!(Arc::ptr_eq(&first.history, &second.history), "shared");
        assert!(Arc::ptr_eq(&first.resources, &second.resources));
        // A sync appends an entry: that version has its own.
        let (third, _) = store.upsert(Application {
            history: vec![entry(1), entry(2), entry(3)].into(),
            ..(*second).clone()
        });
        assert!(!Arc::ptr_eq(&second.history, &third.history));
        assert_eq!(third.history.len(), 3);
        assert_eq!(second.history.len(), 2, "older versions keep theirs");
    }
}
