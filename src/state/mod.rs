//! Live in-memory state: what every source last observed, indexed for the joins the graph
//! walks, plus each source's health. Resolvers read from here and never wait on an upstream.

pub mod apps;
pub mod catalog;
pub mod joins;
pub mod kubernetes;
pub mod ownership;
pub mod reads;
pub mod replica;
pub mod search;
pub mod sources;
pub mod template_tasks;
pub mod writers;

use std::sync::{Arc, OnceLock};

use crate::events::{Change, EventBus};

pub use apps::AppStore;
pub use catalog::{CatalogSnapshot, CatalogStore, Edge};
pub use kubernetes::{ClusterStore, Clusters};
pub use sources::{SourceHealth, SourceKind, SourceRegistry, SourceSnapshot};
pub use writers::{AppWriter, CatalogWriter, GitHubWriter, KindWriter};

/// Where writers hand their changes when replicas share one change log. The changes are
/// already applied to this process's stores; the log gives them their positions and every
/// replica (this one too) publishes them on its bus in log order.
pub trait ChangeLog: Send + Sync {
    /// `source`: the instance the changes are of ([`ownership::source_id`]).
    fn append(&self, source: &str, record: LogBody);
}

/// What a writer appends to the shared log.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum LogBody {
    /// Changes in order; `github_values`: a GitHub value the graph reads was replaced.
    Changes {
        changes: Vec<Change>,
        #[serde(default)]
        github_values: bool,
    },
    /// An ArgoCD instance's AppProjects (no event of their own; the policy reads them).
    Projects {
        instance: String,
        projects: Vec<crate::domain::argocd::Project>,
    },
    /// A new owner's whole state of the source, after a lapsed lease: every replica takes it
    /// as it is (what the previous owner observed but never got into the log is put right
    /// everywhere), before the new owner's list publishes what changed upstream.
    State(replica::SourceState),
}

/// Shared by every request and every source task; clone the `Arc`.
pub struct State {
    pub catalog: CatalogStore,
    pub apps: AppStore,
    pub sources: SourceRegistry,
    pub clusters: Clusters,
    pub bus: EventBus,
    /// Which upstream instances this process ingests (all of them, unless replicas share a log).
    pub ownership: ownership::Ownership,
    /// Set when replicas share one change log (`cluster`): writers append there instead of
    /// publishing on the bus themselves; every replica publishes what it reads back.
    pub change_log: OnceLock<Arc<dyn ChangeLog>>,
    /// Bumped when a GitHub webhook drops cached GitHub responses.
    pub github_cache: reads::Generation,
    /// Who started each scaffolder task (template tasks are their creator's).
    pub task_creators: template_tasks::TaskCreators,
}

impl State {
    pub fn new() -> Arc<Self> {
        Self::with_bus(EventBus::new(4096))
    }

    /// Each section's change count (Kubernetes: summed over clusters), for the response cache.
    pub fn generations(&self) -> [u64; reads::SECTIONS] {
        [
            self.catalog.generation.get(),
            self.apps.generation.get(),
            self.clusters.generation(),
            self.github_cache.get(),
        ]
    }

    pub fn with_bus(bus: EventBus) -> Arc<Self> {
        Self::build(bus, ownership::Ownership::single())
    }

    /// A replica's state: every source's gate starts closed until its lease is held.
    pub fn replicated(bus: EventBus) -> Arc<Self> {
        Self::build(bus, ownership::Ownership::shared())
    }

    fn build(bus: EventBus, ownership: ownership::Ownership) -> Arc<Self> {
        Arc::new(Self {
            catalog: CatalogStore::default(),
            apps: AppStore::default(),
            sources: SourceRegistry::default(),
            clusters: Clusters::default(),
            bus,
            ownership,
            change_log: OnceLock::new(),
            github_cache: Default::default(),
            task_creators: Default::default(),
        })
    }
}
