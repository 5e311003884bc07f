//! The GraphQL enums of a Kubernetes object's status — a Deployment's rollout state, a Pod's
//! phase — shown on the objects and matched by the filters (`graph::filter::kubernetes`). A
//! leaf within the graph: it imports only domain types.

use async_graphql::Enum;

use crate::domain::kubernetes::{PodInfo as Pod, RolloutState};

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
    pub(crate) fn of(p: &Pod) -> Self {
        match p.phase.as_deref() {
            Some("Pending") => Self::Pending,
            Some("Running") => Self::Running,
            Some("Succeeded") => Self::Succeeded,
            Some("Failed") => Self::Failed,
            _ => Self::Unknown,
        }
    }
}
