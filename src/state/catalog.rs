//! The catalog as last observed: an immutable snapshot swapped whole on each poll.
//!
//! Readers take an `Arc` to the current snapshot (`arc_swap`, lock-free) and keep it for the
//! whole request, so one answer never mixes two polls. The snapshot is built once per poll with
//! the indexes the graph walks: by ref, by uid, and the relation edges in both directions
//! (Backstage usually sends both sides; we add the inverse of every edge so a catalog that sends
//! only one side still traverses both ways).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};

use crate::domain::{Entity, Relation, RelationType};

/// One edge of the relation index, its target resolved once when the snapshot is built.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edge {
    pub kind: RelationType,
    /// Canonical ref of the target, rendered once.
    pub target_ref: String,
    /// Position of the target in `entities`, when the catalog has it.
    pub target: Option<usize>,
}

#[derive(Debug, Default)]
pub struct CatalogSnapshot {
    /// Sorted by `ref_string`: the order of every listing and the key of every cursor.
    pub entities: Vec<Arc<Entity>>,
    by_ref: HashMap<String, usize>,
    /// Every edge touching an entity, both directions, deduplicated, sorted by type then target.
    edges: HashMap<String, Vec<Edge>>,
    /// `argocd/app-name` value → entities naming it (the join index for applications).
    by_argocd_app: HashMap<String, Vec<usize>>,
    /// Entities that select applications by label (`argocd/app-selector`).
    argocd_selectors: Vec<usize>,
    /// `github.com/project-slug` (lower-cased) → entities.
    by_github_slug: HashMap<String, Vec<usize>>,
    by_kubernetes_id: HashMap<String, Vec<usize>>,
    /// Entities that name their Kubernetes objects by `backstage.io/kubernetes-label-selector`
    /// (no index can answer "which selectors match these labels"; they are few).
    kubernetes_selectors: Vec<usize>,
    /// When the poll that produced this snapshot finished.
    pub observed_at: Option<DateTime<Utc>>,
}

impl CatalogSnapshot {
    pub fn build(mut entities: Vec<Entity>, observed_at: DateTime<Utc>) -> Self {
        entities.sort_by(|a, b| a.ref_string.cmp(&b.ref_string));
        entities.dedup_by(|a, b| a.ref_string == b.ref_string);
        let entities: Vec<Arc<Entity>> = entities.into_iter().map(Arc::new).collect();
        let mut by_ref = HashMap::with_capacity(entities.len());
        let mut edges: HashMap<String, BTreeSet<Relation>> = HashMap::new();
        let mut by_argocd_app: HashMap<String, Vec<usize>> = HashMap::new();
        let mut argocd_selectors = Vec::new();
        let mut by_github_slug: HashMap<String, Vec<usize>> = HashMap::new();
        let mut by_kubernetes_id: HashMap<String, Vec<usize>> = HashMap::new();
        let mut kubernetes_selectors = Vec::new();
        for (i, e) in entities.iter().enumerate() {
            if e.join.kubernetes_label_selector.is_some() {
                kubernetes_selectors.push(i);
            }
            if let Some(id) = &e.join.kubernetes_id {
                by_kubernetes_id.entry(id.clone()).or_default().push(i);
            }
            if let Some(slug) = &e.join.github_slug {
                by_github_slug
                    .entry(slug.to_lowercase())
                    .or_default()
                    .push(i);
            }
            for name in &e.join.argocd_app_names {
                by_argocd_app.entry(name.clone()).or_default().push(i);
            }
            if e.join.argocd_app_selector.is_some() {
                argocd_selectors.push(i);
            }
            by_ref.insert(e.ref_string.clone(), i);
            for rel in &e.relations {
                edges
                    .entry(e.ref_string.clone())
                    .or_default()
                    .insert(rel.clone());
                if let Some(inverse) = rel.kind.inverse() {
                    edges
                        .entry(rel.target.to_string())
                        .or_default()
                        .insert(Relation {
                            kind: inverse,
                            target: e.entity_ref.clone(),
                        });
                }
            }
        }
        let edges = edges
            .into_iter()
            .map(|(k, rels)| {
                let resolved = rels
                    .into_iter()
                    .map(|r| {
                        let target_ref = r.target.to_string();
                        Edge {
                            target: by_ref.get(&target_ref).copied(),
                            kind: r.kind,
                            target_ref,
                        }
                    })
                    .collect();
                (k, resolved)
            })
            .collect();
        Self {
            entities,
            by_ref,
            edges,
            by_argocd_app,
            argocd_selectors,
            by_github_slug,
            by_kubernetes_id,
            kubernetes_selectors,
            observed_at: Some(observed_at),
        }
    }

    pub fn get(&self, entity_ref: &str) -> Option<&Arc<Entity>> {
        self.by_ref.get(entity_ref).map(|&i| &self.entities[i])
    }

    pub fn position(&self, entity_ref: &str) -> Option<usize> {
        self.by_ref.get(entity_ref).copied()
    }

    /// All edges of an entity, both directions.
    pub fn edges(&self, entity_ref: &str) -> &[Edge] {
        self.edges.get(entity_ref).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Entities that may own an application of this name: those naming it, and those that
    /// select applications by label (the caller applies `domain::joins::entity_has_app`).
    pub fn argocd_candidates(&self, app_name: &str) -> impl Iterator<Item = &Arc<Entity>> {
        self.by_argocd_app
            .get(app_name)
            .into_iter()
            .flatten()
            .chain(self.argocd_selectors.iter())
            .map(|&i| &self.entities[i])
    }

    /// Every GitHub slug the catalog names (lower-cased), in no particular order.
    pub fn github_slugs(&self) -> impl Iterator<Item = &str> {
        self.by_github_slug.keys().map(String::as_str)
    }

    /// Entities whose `github.com/project-slug` is `slug` (case-insensitive).
    pub fn by_github_slug(&self, slug: &str) -> impl Iterator<Item = &Arc<Entity>> {
        self.by_github_slug
            .get(&slug.to_lowercase())
            .into_iter()
            .flatten()
            .map(|&i| &self.entities[i])
    }

    /// Entities that may claim an object with this `backstage.io/kubernetes-id` label (if any):
    /// those with that id, and those that select by labels (the caller applies
    /// `domain::kubernetes::entity_claims`).
    pub fn kubernetes_candidates<'a>(
        &'a self,
        id: Option<&str>,
    ) -> impl Iterator<Item = &'a Arc<Entity>> + 'a {
        id.and_then(|id| self.by_kubernetes_id.get(id))
            .into_iter()
            .flatten()
            .chain(self.kubernetes_selectors.iter())
            .filter_map(|i| self.entities.get(*i))
    }

    /// Entities whose `backstage.io/kubernetes-id` is `id`.
    pub fn by_kubernetes_id(&self, id: &str) -> impl Iterator<Item = &Arc<Entity>> {
        self.by_kubernetes_id
            .get(id)
            .into_iter()
            .flatten()
            .filter_map(|i| self.entities.get(*i))
    }

    pub fn at(&self, index: usize) -> Option<&Arc<Entity>> {
        self.entities.get(index)
    }

    pub fn len(&self) -> usize {
        self.entities.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }
}

#[derive(Default)]
pub struct CatalogStore {
    current: ArcSwap<CatalogSnapshot>,
    /// Bumped by every `replace` (the response cache compares it).
    pub generation: super::reads::Generation,
}

impl CatalogStore {
    pub fn snapshot(&self) -> Arc<CatalogSnapshot> {
        super::reads::note(super::reads::Section::Catalog);
        self.current.load_full()
    }

    pub(super) fn replace(&self, snapshot: CatalogSnapshot) {
        self.current.store(Arc::new(snapshot));
        self.generation.bump();
    }

    /// Swaps in a poll's snapshot that holds the same entities as the current one (only its
    /// `observed_at` is newer): kept answers stay valid — the freshness fields that show the
    /// time cap their own answers at a second.
    pub(super) fn refresh(&self, snapshot: CatalogSnapshot) {
        self.current.store(Arc::new(snapshot));
    }
}
