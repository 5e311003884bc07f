//! What the bus carries: one change per upstream observation, with the transitions people
//! follow derived once, when the change is made — not again by every subscriber.
//!
//! - `EntityChange`: a catalog entity appeared, changed or disappeared between two polls.
//! - `AppChange`: an ArgoCD application changed; `transitions` are its sync, health and
//!   operation-phase moves (`OUT_OF_SYNC → SYNCED`, `HEALTHY → DEGRADED`, `RUNNING → FAILED`).
//! - `RolloutChange`: a Deployment's rollout moved; `transition` says how (progress, complete,
//!   stalled, deleted).
//! - `ObjectChange`: any Kubernetes object of a kept kind (Pods and Events included) appeared,
//!   changed (another `resourceVersion`) or went.

use std::sync::Arc;

use crate::domain::argocd::{AppKey, Application, HealthStatus, OperationPhase, SyncStatus};
use crate::domain::kubernetes::{DeploymentInfo, KubeObject, Rollout, RolloutState};
use crate::domain::Entity;

/// What happened to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

/// A catalog entity appeared, changed or disappeared between two polls.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EntityChange {
    pub kind: ChangeKind,
    pub entity_ref: String,
    pub previous: Option<Arc<Entity>>,
    pub current: Option<Arc<Entity>>,
}

/// One status move of an application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AppTransition {
    Sync {
        from: SyncStatus,
        to: SyncStatus,
    },
    Health {
        from: HealthStatus,
        to: HealthStatus,
    },
    /// An operation started (`from: None`) or changed phase.
    Operation {
        from: Option<OperationPhase>,
        to: OperationPhase,
    },
}

/// An application appeared, changed or disappeared.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AppChange {
    pub kind: ChangeKind,
    pub key: AppKey,
    pub previous: Option<Arc<Application>>,
    pub current: Option<Arc<Application>>,
    /// Its status moves, in a fixed order: sync, health, operation (empty unless modified).
    pub transitions: Vec<AppTransition>,
}

impl AppChange {
    pub fn new(
        kind: ChangeKind,
        key: AppKey,
        previous: Option<Arc<Application>>,
        current: Option<Arc<Application>>,
    ) -> Self {
        let transitions = match (&previous, &current) {
            (Some(p), Some(c)) => app_transitions(p, c),
            _ => Vec::new(),
        };
        Self {
            kind,
            key,
            previous,
            current,
            transitions,
        }
    }
}

/// The status moves between two states of an app, in a fixed order: sync, health, operation.
pub fn app_transitions(prev: &Application, cur: &Application) -> Vec<AppTransition> {
    let mut out = Vec::new();
    if prev.sync_status != cur.sync_status {
        out.push(AppTransition::Sync {
            from: prev.sync_status,
            to: cur.sync_status,
        });
    }
    if prev.health != cur.health {
        out.push(AppTransition::Health {
            from: prev.health,
            to: cur.health,
        });
    }
    let phase = |a: &Application| a.operation_state.as_ref().map(|o| o.phase);
    if let (from, Some(to)) = (phase(prev), phase(cur)) {
        if from != Some(to) {
            out.push(AppTransition::Operation { from, to });
        }
    }
    out
}

/// How a rollout moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RolloutTransition {
    /// Under way (x of y updated, old replicas terminating).
    Progress,
    Complete,
    /// The progress deadline passed.
    Stalled,
    Deleted,
}

impl RolloutTransition {
    /// The transition into `current` (`None`: the Deployment is gone).
    pub fn of(current: Option<&Rollout>) -> Self {
        match current.map(|r| r.state) {
            None => Self::Deleted,
            Some(RolloutState::Progressing) => Self::Progress,
            Some(RolloutState::Complete) => Self::Complete,
            Some(RolloutState::Stalled) => Self::Stalled,
        }
    }
}

/// A Deployment's rollout moved (the `rolloutEvents` subscription's input).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RolloutChange {
    pub cluster: String,
    pub previous: Option<Rollout>,
    /// `None` when the Deployment was deleted.
    pub current: Option<Rollout>,
    #[serde(with = "crate::domain::kubernetes::deployment_stored_form")]
    pub deployment: Arc<DeploymentInfo>,
    pub transition: RolloutTransition,
}

impl RolloutChange {
    pub fn new(
        cluster: &str,
        previous: Option<Rollout>,
        current: Option<Rollout>,
        deployment: Arc<DeploymentInfo>,
    ) -> Self {
        Self {
            cluster: cluster.to_string(),
            transition: RolloutTransition::of(current.as_ref()),
            previous,
            current,
            deployment,
        }
    }
}

/// A GitHub repository changed, as a webhook delivery told or a safety-net round found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RepositoryChange {
    pub slug: String,
    pub cause: RepositoryCause,
    /// The branch a push moved (or the default branch whose head the safety net saw move).
    pub branch: Option<String>,
    pub head_sha: Option<String>,
    pub head_message: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RepositoryCause {
    Push,
    PullRequest,
    WorkflowRun,
    /// `repository` or `issues`: the repository's own fields.
    Repository,
    /// A safety-net round found a change no delivery told of.
    Detected,
}

/// A Kubernetes object appeared, changed or went (every kept kind; a Deployment whose rollout
/// moved also gives a `RolloutChange`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ObjectChange {
    pub cluster: String,
    pub kind: ChangeKind,
    /// `None` when it appeared.
    pub previous: Option<KubeObject>,
    /// `None` when it went.
    pub current: Option<KubeObject>,
    /// What went wrong with it, derived once (`workload.rs`): pods and Warning events only.
    pub troubles: Vec<super::workload::Trouble>,
}

impl ObjectChange {
    pub fn new(
        cluster: &str,
        kind: ChangeKind,
        previous: Option<KubeObject>,
        current: Option<KubeObject>,
    ) -> Self {
        let troubles = match (&previous, &current) {
            (p, Some(KubeObject::Pod(c))) => super::workload::pod_troubles(
                match p {
                    Some(KubeObject::Pod(p)) => Some(p),
                    _ => None,
                },
                c,
            ),
            (p, Some(KubeObject::Event(c))) => super::workload::event_trouble(
                match p {
                    Some(KubeObject::Event(p)) => Some(p),
                    _ => None,
                },
                c,
            )
            .into_iter()
            .collect(),
            _ => Vec::new(),
        };
        Self {
            cluster: cluster.to_string(),
            kind,
            previous,
            current,
            troubles,
        }
    }

    /// The object as it is now, or as it was when it went.
    pub fn object(&self) -> &KubeObject {
        self.current
            .as_ref()
            .or(self.previous.as_ref())
            .expect("BUG: an ObjectChange has a previous or a current object")
    }
}

/// Everything the bus carries.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum Change {
    Entity(EntityChange),
    Application(AppChange),
    Rollout(RolloutChange),
    Repository(RepositoryChange),
    Object(ObjectChange),
    /// Changes of this source may have been missed (replicas: its owner died and another took
    /// over after the lease lapsed, listing the upstream afresh). Every subscriber is told to
    /// re-read its state (`RESYNC_REQUIRED`); what the new owner's list finds follows.
    Gap {
        source: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::argocd::OperationState;

    fn app(sync: SyncStatus, health: HealthStatus, phase: Option<OperationPhase>) -> Application {
        let key = AppKey {
            instance: "main".into(),
            namespace: "argocd".into(),
            name: "a".into(),
        };
        Application {
            sync_status: sync,
            health,
            operation_state: phase.map(|phase| OperationState {
                phase,
                message: None,
                started_at: None,
                finished_at: None,
                sync_result_revision: None,
                initiated_by: None,
                automated: false,
            }),
            ..Application::named(key)
        }
    }

    #[test]
    fn transitions_are_derived_once_sync_then_health_then_operation() {
        let before = Arc::new(app(SyncStatus::OutOfSync, HealthStatus::Healthy, None));
        let after = Arc::new(app(
            SyncStatus::Synced,
            HealthStatus::Progressing,
            Some(OperationPhase::Running),
        ));
        let c = AppChange::new(
            ChangeKind::Modified,
            before.key.clone(),
            Some(before),
            Some(after),
        );
        assert_eq!(
            c.transitions,
            [
                AppTransition::Sync {
                    from: SyncStatus::OutOfSync,
                    to: SyncStatus::Synced
                },
                AppTransition::Health {
                    from: HealthStatus::Healthy,
                    to: HealthStatus::Progressing
                },
                AppTransition::Operation {
                    from: None,
                    to: OperationPhase::Running
                },
            ]
        );
        // An app that appears or disappears has no transitions, only the change.
        let gone = AppChange::new(ChangeKind::Deleted, c.key.clone(), c.current.clone(), None);
        assert!(gone.transitions.is_empty());
    }

    #[test]
    fn a_finished_operation_that_clears_is_not_a_transition() {
        let running = app(
            SyncStatus::Synced,
            HealthStatus::Healthy,
            Some(OperationPhase::Succeeded),
        );
        let cleared = app(SyncStatus::Synced, HealthStatus::Healthy, None);
        assert!(app_transitions(&running, &cleared).is_empty());
        assert!(app_transitions(&running, &running).is_empty());
    }
}
