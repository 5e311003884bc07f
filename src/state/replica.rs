//! What a replica applies from the shared change log (`cluster`): the records other replicas'
//! writers appended — applied here to the same stores through the same store methods — and the
//! per-source snapshots a replica starts from. Every record's changes are published on this
//! process's bus at their log positions, whoever appended them, so a cursor names the same
//! event on every replica.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;

use super::kubernetes::ClusterStore;
use super::{CatalogSnapshot, LogBody, SourceKind, State};
use crate::domain::argocd::{Application, Project};
use crate::domain::kubernetes::KubeObject;
use crate::domain::Entity;
use crate::events::{Change, EntityChange, ObjectChange};

/// One source's whole state, as its owner writes it for replicas that start later.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum SourceState {
    Catalog {
        entities: Vec<Arc<Entity>>,
    },
    ArgoCd {
        instance: String,
        apps: Vec<Arc<Application>>,
        projects: Vec<Arc<Project>>,
    },
    Kubernetes {
        cluster: String,
        objects: Vec<KubeObject>,
    },
    /// GitHub keeps no store of its own (its response cache is shared separately).
    GitHub,
}

pub struct LogApplier {
    state: Arc<State>,
}

macro_rules! each_kind {
    ($obj:expr, $o:ident => $body:expr) => {
        match $obj {
            KubeObject::Namespace($o) => $body,
            KubeObject::Deployment($o) => $body,
            KubeObject::ReplicaSet($o) => $body,
            KubeObject::StatefulSet($o) => $body,
            KubeObject::DaemonSet($o) => $body,
            KubeObject::Pod($o) => $body,
            KubeObject::Service($o) => $body,
            KubeObject::Ingress($o) => $body,
            KubeObject::ConfigMap($o) => $body,
            KubeObject::Secret($o) => $body,
            KubeObject::Event($o) => $body,
        }
    };
}

impl LogApplier {
    pub fn new(state: Arc<State>) -> Self {
        Self { state }
    }

    /// One record read from the log. `own`: this process appended it, so its writer applied it
    /// already. `first`: the log position of its first change. `publish`: false for records a
    /// starting replica applies before its bus joins the log.
    pub fn apply(&self, first: u64, body: LogBody, own: bool, publish: bool) {
        match body {
            LogBody::Projects { instance, projects } => {
                if !own {
                    self.state.apps.set_projects(&instance, projects);
                }
            }
            LogBody::State(s) => {
                if !own {
                    self.import(s);
                }
            }
            LogBody::Changes {
                changes,
                github_values,
            } => {
                if !own {
                    if github_values {
                        self.state.github_cache.bump();
                    }
                    self.apply_changes(&changes);
                }
                if publish && !changes.is_empty() {
                    self.state.bus.publish_at(first, changes);
                }
            }
        }
    }

    fn apply_changes(&self, changes: &[Change]) {
        let mut entities = Vec::new();
        for c in changes {
            match c {
                Change::Entity(e) => entities.push(e),
                Change::Application(a) => match &a.current {
                    Some(app) => {
                        self.state.apps.upsert((**app).clone());
                    }
                    None => {
                        self.state.apps.remove(&a.key);
                    }
                },
                Change::Object(o) => self.apply_object(o),
                Change::Rollout(_) | Change::Repository(_) | Change::Gap { .. } => {}
            }
        }
        if !entities.is_empty() {
            self.apply_entities(&entities);
        }
    }

    fn apply_object(&self, o: &ObjectChange) {
        let Some(cluster) = self.state.clusters.get(&o.cluster) else {
            return;
        };
        match (&o.current, &o.previous) {
            (Some(current), _) => each_kind!(current, x => {
                cluster.apply((**x).clone());
            }),
            (None, Some(previous)) => each_kind!(previous, x => {
                cluster.delete(&**x);
            }),
            (None, None) => {}
        }
    }

    fn apply_entities(&self, changes: &[&EntityChange]) {
        let old = self.state.catalog.snapshot();
        let mut by_ref: BTreeMap<&str, &Arc<Entity>> = old
            .entities
            .iter()
            .map(|e| (e.ref_string.as_str(), e))
            .collect();
        for c in changes {
            match &c.current {
                Some(e) => {
                    if let Some(p) = &c.previous {
                        by_ref.remove(p.ref_string.as_str());
                    }
                    by_ref.insert(e.ref_string.as_str(), e);
                }
                None => {
                    by_ref.remove(c.entity_ref.as_str());
                }
            }
        }
        let entities = by_ref.into_values().map(|e| (**e).clone()).collect();
        self.state
            .catalog
            .replace(CatalogSnapshot::build(entities, Utc::now()));
    }

    /// The owning replica's view of a source's health. A cluster whose owner finished its first
    /// list counts as synced here too (its objects arrive through the log, not a list).
    pub fn adopt_health(&self, health: &super::SourceHealth, s: super::SourceSnapshot) {
        if health.kind == SourceKind::Kubernetes && s.first_sync_done {
            if let Some(c) = self.state.clusters.get(&health.name) {
                c.mark_synced();
            }
        }
        health.adopt(s);
    }

    /// The state of one source, for a replica that starts later (`None`: not held here).
    pub fn export(&self, kind: SourceKind, name: &str) -> Option<SourceState> {
        Some(match kind {
            SourceKind::Backstage => SourceState::Catalog {
                entities: self.state.catalog.snapshot().entities.clone(),
            },
            SourceKind::ArgoCd => SourceState::ArgoCd {
                instance: name.to_string(),
                apps: self.state.apps.select(|a| a.key.instance == name),
                projects: self
                    .state
                    .apps
                    .projects()
                    .into_iter()
                    .filter(|p| p.instance == name)
                    .collect(),
            },
            SourceKind::Kubernetes => {
                let cluster: Arc<ClusterStore> = self.state.clusters.get(name)?;
                SourceState::Kubernetes {
                    cluster: name.to_string(),
                    objects: cluster.all_objects(),
                }
            }
            SourceKind::GitHub => SourceState::GitHub,
        })
    }

    /// Makes one source's state exactly `s` (publishing nothing: nobody has a cursor here yet,
    /// or the state is being put right after this replica's own lease lapsed).
    pub fn import(&self, s: SourceState) {
        match s {
            SourceState::Catalog { entities } => {
                let entities = entities.into_iter().map(Arc::unwrap_or_clone).collect();
                self.state
                    .catalog
                    .replace(CatalogSnapshot::build(entities, Utc::now()));
            }
            SourceState::ArgoCd {
                instance,
                apps,
                projects,
            } => {
                let apps = apps.into_iter().map(Arc::unwrap_or_clone).collect();
                self.state.apps.replace_instance(&instance, apps);
                let projects = projects.into_iter().map(Arc::unwrap_or_clone).collect();
                self.state.apps.set_projects(&instance, projects);
            }
            SourceState::Kubernetes { cluster, objects } => {
                if let Some(c) = self.state.clusters.get(&cluster) {
                    c.import_objects(objects);
                }
            }
            SourceState::GitHub => {}
        }
    }
}
