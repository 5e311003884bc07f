//! Live in-memory state: what every source last observed, indexed for the joins the graph
//! walks, plus each source's health. Resolvers read from here and never wait on an upstream.

pub mod apps;
pub mod catalog;
pub mod joins;
pub mod kubernetes;
pub mod reads;
pub mod search;
pub mod sources;
pub mod template_tasks;
pub mod writers;

use std::sync::Arc;

use crate::events::EventBus;

pub use apps::AppStore;
pub use catalog::{CatalogSnapshot, CatalogStore, Edge};
pub use kubernetes::{ClusterStore, Clusters};
pub use sources::{SourceHealth, SourceKind, SourceRegistry, SourceSnapshot};
pub use writers::{AppWriter, CatalogWriter, GitHubWriter, KindWriter};

/// Shared by every request and every source task; clone the `Arc`.
pub struct State {
    pub catalog: CatalogStore,
    pub apps: AppStore,
    pub sources: SourceRegistry,
    pub clusters: Clusters,
    pub bus: EventBus,
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
        Arc::new(Self {
            catalog: CatalogStore::default(),
            apps: AppStore::default(),
            sources: SourceRegistry::default(),
            clusters: Clusters::default(),
            bus,
            github_cache: Default::default(),
            task_creators: Default::default(),
        })
    }
}
