//! Search across what the state holds: catalog entities, ArgoCD applications, Kubernetes
//! workloads (Deployments, StatefulSets, DaemonSets) and the GitHub repositories the catalog
//! names. Ranked: exact name, then name prefix, then a substring of the name, title,
//! description or tags; ties by kind, then name. Visibility is the caller's business
//! (`graph::search` filters); this ranks everything.
//!
//! Every item's searchable text is already lower-cased in the stores (entities: `search_text`),
//! so one query is a single pass of `contains` over in-memory strings, no upstream call.

use std::sync::Arc;

use super::kubernetes::ClusterStore;
use super::State;
use crate::domain::argocd::Application;
use crate::domain::Entity;

/// What a hit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, async_graphql::Enum)]
pub enum SearchKind {
    Entity,
    Application,
    Workload,
    Repository,
}

/// How well a hit matches (higher first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rank {
    Substring = 1,
    Prefix = 2,
    Exact = 3,
}

#[derive(Clone)]
pub enum HitItem {
    Entity(Arc<Entity>),
    Application(Arc<Application>),
    /// A Deployment, StatefulSet or DaemonSet: (cluster, kind, namespace, name).
    Workload(Arc<ClusterStore>, &'static str, String, String),
    /// `owner/repo`, as the catalog names it.
    Repository(String),
}

#[derive(Clone)]
pub struct Hit {
    pub rank: Rank,
    pub kind: SearchKind,
    pub name: String,
    /// The order: rank (best first), kind, name, identity — also the paging key.
    pub key: String,
    pub item: HitItem,
}

/// The rank of `name` (and the other texts), all lower-case, for a lower-cased query.
fn rank(query: &str, name: &str, rest: &[&str]) -> Option<Rank> {
    if name == query {
        Some(Rank::Exact)
    } else if name.starts_with(query) {
        Some(Rank::Prefix)
    } else if name.contains(query) || rest.iter().any(|t| t.contains(query)) {
        Some(Rank::Substring)
    } else {
        None
    }
}

fn hit(rank: Rank, kind: SearchKind, name: &str, identity: &str, item: HitItem) -> Hit {
    Hit {
        key: format!(
            "{}:{}:{}:{identity}",
            4 - rank as u8,
            kind as u8,
            name.to_lowercase()
        ),
        rank,
        kind,
        name: name.to_string(),
        item,
    }
}

impl State {
    /// Everything matching `text` (case-insensitive) of the given kinds (all when empty),
    /// best first.
    pub fn search(&self, text: &str, kinds: &[SearchKind]) -> Vec<Hit> {
        let query = text.trim().to_lowercase();
        if query.is_empty() {
            return Vec::new();
        }
        let wants = |k: SearchKind| kinds.is_empty() || kinds.contains(&k);
        let mut hits = Vec::new();
        let snapshot = self.catalog.snapshot();
        if wants(SearchKind::Entity) {
            for i in 0..snapshot.len() {
                let Some(e) = snapshot.at(i) else { continue };
                // `search_text` starts with the lower-cased name; Backstage tags are
                // lower-case by the catalog's own rules.
                let name = e.search_text.split('\n').next().unwrap_or_default();
                let found = rank(&query, name, &[&e.search_text]).or_else(|| {
                    e.tags
                        .iter()
                        .any(|t| t.contains(&query))
                        .then_some(Rank::Substring)
                });
                if let Some(r) = found {
                    hits.push(hit(
                        r,
                        SearchKind::Entity,
                        &e.name,
                        &e.ref_string,
                        HitItem::Entity(e.clone()),
                    ));
                }
            }
        }
        if wants(SearchKind::Repository) {
            // The catalog's slug index is lower-cased already.
            for slug in snapshot.github_slugs() {
                let name = slug.rsplit('/').next().unwrap_or(slug);
                if let Some(r) = rank(&query, name, &[slug]) {
                    hits.push(hit(
                        r,
                        SearchKind::Repository,
                        name,
                        slug,
                        HitItem::Repository(slug.to_string()),
                    ));
                }
            }
        }
        if wants(SearchKind::Application) {
            for a in self.apps.select(|_| true) {
                // Application names are DNS labels: lower-case already.
                if let Some(r) = rank(&query, &a.key.name, &[]) {
                    hits.push(hit(
                        r,
                        SearchKind::Application,
                        &a.key.name,
                        &a.key_string,
                        HitItem::Application(a.clone()),
                    ));
                }
            }
        }
        if wants(SearchKind::Workload) {
            for c in self.clusters.all() {
                let key = |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
                    (
                        m.namespace.clone().unwrap_or_default(),
                        m.name.clone().unwrap_or_default(),
                    )
                };
                let objects = c
                    .deployments
                    .list(None)
                    .iter()
                    .map(|d| ("Deployment", key(&d.metadata)))
                    .chain(
                        c.stateful_sets
                            .list(None)
                            .iter()
                            .map(|s| ("StatefulSet", key(&s.metadata))),
                    )
                    .chain(
                        c.daemon_sets
                            .list(None)
                            .iter()
                            .map(|s| ("DaemonSet", key(&s.metadata))),
                    )
                    .collect::<Vec<_>>();
                for (kind, (ns, name)) in objects {
                    // Kubernetes names are lower-case DNS names.
                    if let Some(r) = rank(&query, &name, &[]) {
                        let identity = format!("{}/{kind}/{ns}/{name}", c.name);
                        hits.push(hit(
                            r,
                            SearchKind::Workload,
                            &name,
                            &identity,
                            HitItem::Workload(c.clone(), kind, ns, name.clone()),
                        ));
                    }
                }
            }
        }
        hits.sort_by(|a, b| a.key.cmp(&b.key));
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_come_exact_then_prefix_then_substring_and_by_kind_and_name_within() {
        let state = crate::state::joins::tests::world();
        let hits = state.search("SVC-1", &[]);
        // Exact: the entity, the app and the Deployments (two clusters) named svc-1.
        let exact: Vec<(SearchKind, String)> = hits
            .iter()
            .take_while(|h| h.rank == Rank::Exact)
            .map(|h| (h.kind, h.name.clone()))
            .collect();
        assert_eq!(
            exact,
            [
                (SearchKind::Entity, "svc-1".to_string()),
                (SearchKind::Application, "svc-1".to_string()),
                (SearchKind::Workload, "svc-1".to_string()),
                (SearchKind::Workload, "svc-1".to_string()),
                (SearchKind::Repository, "svc-1".to_string()),
            ]
        );
        // Then every svc-1x / svc-1xx by prefix, ranks never increase, names sorted per kind.
        assert!(hits.windows(2).all(|w| w[0].rank >= w[1].rank));
        assert!(hits.windows(2).all(|w| w[0].key <= w[1].key));
        let prefixed = hits.iter().filter(|h| h.rank == Rank::Prefix).count();
        // svc-10..19 and svc-100..199 (110 names): entity, app, 2 deployments, and a repo for
        // two of every three (the rest share the monorepo).
        assert_eq!(
            hits.iter()
                .filter(|h| h.rank == Rank::Prefix && h.kind == SearchKind::Entity)
                .count(),
            110
        );
        assert!(prefixed > 400, "{prefixed}");
        // A substring only: "vc-99" is inside svc-99 and svc-990.. but starts none of them.
        let inner = state.search("vc-99", &[SearchKind::Application]);
        assert!(
            !inner.is_empty()
                && inner
                    .iter()
                    .all(|h| h.rank == Rank::Substring && h.kind == SearchKind::Application)
        );
        assert!(state.search("  ", &[]).is_empty());
        assert!(state.search("no-such-thing", &[]).is_empty());
    }
}
