//! Clusters, the Relay connections of every kind, and the `Workloads` of an entity or app.

use super::*;

// ---------------------------------------------------------------------------------------------
// Clusters, connections, workloads

/// One configured cluster.
pub struct ClusterNode(pub Arc<ClusterStore>);

#[Object(name = "Cluster")]
impl ClusterNode {
    pub async fn id(&self) -> async_graphql::ID {
        crate::domain::node_id::NodeId::Cluster {
            name: self.0.name.clone(),
        }
        .into()
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The API server URL (admins only; null for others).
    async fn url(&self, ctx: &Context<'_>) -> Option<&str> {
        Viewer::of(ctx).is_admin().then_some(self.0.url.as_str())
    }
    /// Every watch answers.
    async fn connected(&self) -> bool {
        !self.0.health.is_stale() && self.0.synced()
    }
    /// Every kind has been listed at least once.
    async fn synced(&self) -> bool {
        self.0.synced()
    }
    /// What failed last (the raw upstream text for admins only).
    async fn last_error(&self, ctx: &Context<'_>) -> Option<String> {
        let e = self.0.health.snapshot().last_error?;
        Some(if Viewer::of(ctx).is_admin() {
            e
        } else {
            "the cluster is unavailable".into()
        })
    }
    async fn last_sync_at(&self) -> Option<DateTime<Utc>> {
        self.0.health.snapshot().last_sync_at
    }
    /// Names ArgoCD applications use for it as destination.
    async fn argocd_destinations(&self) -> &[String] {
        &self.0.argocd_destinations
    }
    async fn namespaces(&self, ctx: &Context<'_>) -> Vec<NamespaceNode> {
        self.0
            .namespaces
            .list(None)
            .into_iter()
            .filter(|n| {
                Viewer::of(ctx)
                    .sees_namespace(&self.0.name, n.metadata.name.as_deref().unwrap_or(""))
            })
            .map(|n| NamespaceNode::new(self.0.clone(), n))
            .collect()
    }
    /// Deployments the caller may see.
    async fn deployment_count(&self, ctx: &Context<'_>) -> usize {
        visible_count(ctx, &self.0, &self.0.deployments)
    }
    /// Pods the caller may see.
    async fn pod_count(&self, ctx: &Context<'_>) -> usize {
        visible_count(ctx, &self.0, &self.0.pods)
    }
}

/// How many objects of a kind the caller may see (all of them, without a scan, for admins).
fn visible_count<K: Stored>(
    ctx: &Context<'_>,
    c: &ClusterStore,
    store: &crate::state::kubernetes::KindStore<K>,
) -> usize {
    if Viewer::of(ctx).principal.grants().all_namespaces || Viewer::of(ctx).is_admin() {
        return store.len();
    }
    store
        .list(None)
        .iter()
        .filter(|o| sees(ctx, &c.name, o.meta()))
        .count()
}

macro_rules! connection {
    ($conn:ident, $edge:ident, $node:ident, $gql:literal, $gql_edge:literal) => {
        #[derive(SimpleObject)]
        #[graphql(name = $gql_edge)]
        pub struct $edge {
            pub cursor: String,
            pub node: $node,
        }

        #[derive(SimpleObject)]
        #[graphql(name = $gql)]
        pub struct $conn {
            pub total_count: usize,
            pub edges: Vec<$edge>,
            pub nodes: Vec<$node>,
            pub page_info: PageInfo,
        }

        impl $conn {
            pub(super) fn page<K: Stored>(
                items: Vec<(Arc<ClusterStore>, Arc<K>)>,
                req: &PageRequest,
                make: impl Fn(Arc<ClusterStore>, Arc<K>) -> $node,
            ) -> Self {
                let keyed: Vec<(String, Arc<ClusterStore>, Arc<K>)> = items
                    .into_iter()
                    .map(|(c, o)| (sort_key(&c.name, o.meta()), c, o))
                    .collect();
                let page = paginate(keyed, |(k, _, _)| k.as_str(), req);
                let mut info = page.page_info;
                info.start_cursor = page.items.first().map(|(k, _, _)| encode_cursor(k));
                info.end_cursor = page.items.last().map(|(k, _, _)| encode_cursor(k));
                let nodes: Vec<$node> = page
                    .items
                    .iter()
                    .map(|(_, c, o)| make(c.clone(), o.clone()))
                    .collect();
                Self {
                    total_count: page.total,
                    edges: page
                        .items
                        .iter()
                        .zip(nodes.iter())
                        .map(|((k, _, _), n)| $edge {
                            cursor: encode_cursor(k),
                            node: n.clone(),
                        })
                        .collect(),
                    nodes,
                    page_info: info,
                }
            }
        }
    };
}

connection!(
    DeploymentConnection,
    DeploymentEdge,
    DeploymentNode,
    "DeploymentConnection",
    "DeploymentEdge"
);
connection!(
    StatefulSetConnection,
    StatefulSetEdge,
    StatefulSetNode,
    "StatefulSetConnection",
    "StatefulSetEdge"
);
connection!(
    DaemonSetConnection,
    DaemonSetEdge,
    DaemonSetNode,
    "DaemonSetConnection",
    "DaemonSetEdge"
);
connection!(PodConnection, PodEdge, PodNode, "PodConnection", "PodEdge");
connection!(
    ServiceConnection,
    ServiceEdge,
    ServiceNode,
    "ServiceConnection",
    "ServiceEdge"
);
connection!(
    IngressConnection,
    IngressEdge,
    IngressNode,
    "IngressConnection",
    "IngressEdge"
);
connection!(
    ConfigMapConnection,
    ConfigMapEdge,
    ConfigMapNode,
    "ConfigMapConnection",
    "ConfigMapEdge"
);
connection!(
    SecretConnection,
    SecretEdge,
    SecretNode,
    "SecretConnection",
    "SecretEdge"
);

/// What a catalog entity or an application has running, across clusters.
#[derive(SimpleObject, Default)]
pub struct Workloads {
    pub deployments: Vec<DeploymentNode>,
    pub stateful_sets: Vec<StatefulSetNode>,
    pub daemon_sets: Vec<DaemonSetNode>,
    pub pods: Vec<PodNode>,
    pub services: Vec<ServiceNode>,
    pub ingresses: Vec<IngressNode>,
    pub config_maps: Vec<ConfigMapNode>,
    pub secrets: Vec<SecretNode>,
}

/// The objects `refs` names, per cluster; each cluster in `relevant` that is down adds an error.
fn workloads(
    ctx: &Context<'_>,
    refs: BTreeMap<String, BTreeSet<ObjRef>>,
    relevant: &[Arc<ClusterStore>],
) -> Workloads {
    let mut w = Workloads::default();
    for c in gctx(ctx).state.clusters.all() {
        let is_relevant = relevant.iter().any(|r| r.name == c.name);
        if is_relevant && (!c.health.snapshot().connected || !c.synced()) {
            report(ctx, cluster_error(&c));
        }
        let Some(refs) = refs.get(&c.name) else {
            continue;
        };
        for (kind, ns, name) in refs {
            if !Viewer::of(ctx).sees_namespace(&c.name, ns) {
                continue;
            }
            let c2 = c.clone();
            match kind {
                Kind::Deployment => w.deployments.extend(
                    c.deployments
                        .get(ns, name)
                        .map(|o| DeploymentNode::new(c2, o)),
                ),
                Kind::StatefulSet => w.stateful_sets.extend(
                    c.stateful_sets
                        .get(ns, name)
                        .map(|o| StatefulSetNode::new(c2, o)),
                ),
                Kind::DaemonSet => w.daemon_sets.extend(
                    c.daemon_sets
                        .get(ns, name)
                        .map(|o| DaemonSetNode::new(c2, o)),
                ),
                Kind::Pod => w
                    .pods
                    .extend(c.pods.get(ns, name).map(|o| PodNode::new(c2, o))),
                Kind::Service => w
                    .services
                    .extend(c.services.get(ns, name).map(|o| ServiceNode::new(c2, o))),
                Kind::Ingress => w
                    .ingresses
                    .extend(c.ingresses.get(ns, name).map(|o| IngressNode::new(c2, o))),
                Kind::ConfigMap => w.config_maps.extend(
                    c.config_maps
                        .get(ns, name)
                        .map(|o| ConfigMapNode::new(c2, o)),
                ),
                Kind::Secret => w
                    .secrets
                    .extend(c.secrets.get(ns, name).map(|o| SecretNode::new(c2, o))),
                _ => {}
            }
        }
    }
    w
}

pub fn workloads_of_app(ctx: &Context<'_>, app: &Application) -> Workloads {
    let state = &gctx(ctx).state;
    workloads(ctx, state.objects_of_app(app), &state.clusters_of_app(app))
}

/// An entity without Kubernetes annotations reads no cluster (and hears of no outage).
pub fn workloads_of_entity(ctx: &Context<'_>, e: &Entity) -> Workloads {
    let joined = e.join.kubernetes_id.is_some() || e.join.kubernetes_label_selector.is_some();
    let relevant = if joined {
        gctx(ctx).state.clusters.all()
    } else {
        Vec::new()
    };
    workloads(ctx, gctx(ctx).state.objects_of_entity(e), &relevant)
}
