//! Global object identification (the Relay server specification): the `Node` interface every
//! type with an identity implements, and `node(id:)` / `nodes(ids:)`, which turn an id back
//! into the object — for the caller, through the same lookups and visibility checks as the
//! typed root fields (`entity`, `application`, `deployment`, `repository`...). What an id
//! contains lives in `domain::node_id`; this file only resolves.
//!
//! A malformed id is `BAD_USER_INPUT`; a well-formed id of something that no longer exists, or
//! that the caller may not see, is `null` (the two are indistinguishable on purpose).

use async_graphql::{Context, Interface, Result, ID};

use super::application::{visible_app, ApplicationNode, HistoryEntry};
use super::entity::{
    ApiEntity, Component, Domain, EntityItem, GenericEntity, Group, Location, Resource, System,
    Template, User,
};
use super::error::{bad_input, upstream};
use super::gctx;
use super::github::{CommitNode, PullRequestNode, RepositoryNode, WorkflowRunNode};
use super::kubernetes as k8s;
use super::mutation::TemplateTask;
use crate::domain::argocd::AppKey;
use crate::domain::node_id::NodeId;
use crate::domain::EntityRef;

/// `nodes(ids:)` takes at most this many ids.
pub const MAX_IDS: usize = 100;

impl From<NodeId> for ID {
    fn from(id: NodeId) -> Self {
        ID(id.encode())
    }
}

/// An object with a global id.
#[derive(Interface)]
#[graphql(
    name = "Node",
    field(
        name = "id",
        ty = "ID",
        desc = "Opaque, stable across restarts and replicas"
    )
)]
pub enum Node {
    Component(Component),
    Api(ApiEntity),
    System(System),
    Domain(Domain),
    Group(Group),
    User(User),
    Resource(Resource),
    Template(Template),
    Location(Location),
    Generic(GenericEntity),
    Application(ApplicationNode),
    HistoryEntry(HistoryEntry),
    Cluster(k8s::ClusterNode),
    Namespace(k8s::NamespaceNode),
    Deployment(k8s::DeploymentNode),
    ReplicaSet(k8s::ReplicaSetNode),
    StatefulSet(k8s::StatefulSetNode),
    DaemonSet(k8s::DaemonSetNode),
    Pod(k8s::PodNode),
    Service(k8s::ServiceNode),
    Ingress(k8s::IngressNode),
    ConfigMap(k8s::ConfigMapNode),
    Secret(k8s::SecretNode),
    Repository(RepositoryNode),
    Commit(CommitNode),
    PullRequest(PullRequestNode),
    WorkflowRun(WorkflowRunNode),
    TemplateTask(TemplateTask),
}

impl From<EntityItem> for Node {
    fn from(e: EntityItem) -> Self {
        match e {
            EntityItem::Component(v) => Node::Component(v),
            EntityItem::Api(v) => Node::Api(v),
            EntityItem::System(v) => Node::System(v),
            EntityItem::Domain(v) => Node::Domain(v),
            EntityItem::Group(v) => Node::Group(v),
            EntityItem::User(v) => Node::User(v),
            EntityItem::Resource(v) => Node::Resource(v),
            EntityItem::Template(v) => Node::Template(v),
            EntityItem::Location(v) => Node::Location(v),
            EntityItem::Generic(v) => Node::Generic(v),
        }
    }
}

/// `Query.node(id:)`.
pub async fn node(ctx: &Context<'_>, id: &str) -> Result<Option<Node>> {
    let parsed = NodeId::decode(id).map_err(|e| bad_input(e.to_string()))?;
    resolve(ctx, parsed).await
}

/// `Query.nodes(ids:)`: every id decoded first (one malformed id fails the field), then
/// resolved concurrently, so on-demand lookups share the request's loaders.
pub async fn nodes(ctx: &Context<'_>, ids: &[ID]) -> Result<Vec<Option<Node>>> {
    if ids.len() > MAX_IDS {
        return Err(bad_input(format!("at most {MAX_IDS} ids at once")));
    }
    let parsed = ids
        .iter()
        .enumerate()
        .map(|(i, id)| NodeId::decode(id).map_err(|e| bad_input(format!("ids[{i}]: {e}"))))
        .collect::<Result<Vec<_>>>()?;
    futures::future::try_join_all(parsed.into_iter().map(|id| resolve(ctx, id))).await
}

async fn resolve(ctx: &Context<'_>, id: NodeId) -> Result<Option<Node>> {
    let g = gctx(ctx);
    Ok(match id {
        NodeId::Entity { entity_ref } => {
            let Ok(parsed) = EntityRef::parse(&entity_ref) else {
                return Ok(None);
            };
            super::entity::lookup(ctx, parsed.to_string())
                .await
                .map(Node::from)
        }
        NodeId::Application {
            instance,
            namespace,
            name,
        } => visible_app(
            ctx,
            AppKey {
                instance,
                namespace,
                name,
            },
        )
        .map(|a| Node::Application(ApplicationNode(a))),
        NodeId::HistoryEntry {
            instance,
            namespace,
            name,
            history_id,
        } => visible_app(
            ctx,
            AppKey {
                instance,
                namespace,
                name,
            },
        )
        .and_then(|app| {
            let index = app.history.iter().position(|h| h.id == history_id)?;
            Some(Node::HistoryEntry(HistoryEntry { app, index }))
        }),
        NodeId::Cluster { name } => g
            .state
            .clusters
            .get(&name)
            .map(|c| Node::Cluster(k8s::ClusterNode(c))),
        NodeId::Kubernetes {
            kind,
            cluster,
            namespace,
            name,
        } => {
            if g.state.clusters.get(&cluster).is_none() {
                return Ok(None);
            }
            kubernetes_object(ctx, &kind, &cluster, &namespace, &name)?
        }
        NodeId::Repository { slug } => {
            if !crate::domain::annotations::is_github_slug(&slug) {
                return Ok(None);
            }
            super::github::load_repository(ctx, &slug)
                .await?
                .map(Node::Repository)
        }
        NodeId::Commit { slug, sha } => {
            if !crate::domain::annotations::is_github_slug(&slug) || !super::github::valid_sha(&sha)
            {
                return Ok(None);
            }
            super::github::load_commit(ctx, &slug, &sha)
                .await?
                .map(Node::Commit)
        }
        NodeId::PullRequest { slug, number } => {
            let Some(source) = github_for(ctx, &slug) else {
                return Ok(None);
            };
            if !super::github::may_see_repository(ctx, &slug).await? {
                return Ok(None);
            }
            let f = source.pull_request(&slug, number).await;
            super::github::deliver(ctx, f)?
                .map(|(p, _, _)| Node::PullRequest(PullRequestNode::new(&slug, p)))
        }
        NodeId::WorkflowRun { slug, run_id } => {
            let Some(source) = github_for(ctx, &slug) else {
                return Ok(None);
            };
            if !super::github::may_see_repository(ctx, &slug).await? {
                return Ok(None);
            }
            let f = source.workflow_run(&slug, run_id).await;
            super::github::deliver(ctx, f)?
                .map(|(r, _, _)| Node::WorkflowRun(WorkflowRunNode::new(&slug, r)))
        }
        NodeId::TemplateTask { task_id } => {
            // A task's status moves on in the scaffolder: not kept.
            crate::state::reads::note_max_age(std::time::Duration::ZERO);
            let Some(backstage) = g.upstreams.backstage() else {
                return Ok(None);
            };
            // Another caller's task is as missing as one that does not exist.
            if task_id.is_empty()
                || task_id.len() > 200
                || !super::Viewer::of(ctx).sees_template_task(&task_id)
            {
                return Ok(None);
            }
            backstage
                .task(&task_id)
                .await
                .map_err(|e| upstream("backstage", &e))?
                .map(|t| {
                    Node::TemplateTask(TemplateTask {
                        task_id: t.id,
                        template_ref: t.template_ref,
                        audit_id: None,
                        status: Some(t.status),
                    })
                })
        }
    })
}

fn github_for<'a>(
    ctx: &Context<'a>,
    slug: &str,
) -> Option<&'a std::sync::Arc<crate::sources::github::GitHubSource>> {
    if !crate::domain::annotations::is_github_slug(slug) {
        return None;
    }
    ctx.data_opt::<std::sync::Arc<crate::sources::github::GitHubSource>>()
}

/// A Kubernetes object by its GraphQL type name, through `kubernetes::one` (visibility included).
fn kubernetes_object(
    ctx: &Context<'_>,
    kind: &str,
    cluster: &str,
    namespace: &str,
    name: &str,
) -> Result<Option<Node>> {
    macro_rules! one {
        ($node:ident, $variant:ident) => {
            k8s::one(ctx, cluster, namespace, name, k8s::$node::new)?.map(Node::$variant)
        };
    }
    Ok(match kind {
        "Namespace" => one!(NamespaceNode, Namespace),
        "Deployment" => one!(DeploymentNode, Deployment),
        "ReplicaSet" => one!(ReplicaSetNode, ReplicaSet),
        "StatefulSet" => one!(StatefulSetNode, StatefulSet),
        "DaemonSet" => one!(DaemonSetNode, DaemonSet),
        "Pod" => one!(PodNode, Pod),
        "Service" => one!(ServiceNode, Service),
        "Ingress" => one!(IngressNode, Ingress),
        "ConfigMap" => one!(ConfigMapNode, ConfigMap),
        "Secret" => one!(SecretNode, Secret),
        _ => None,
    })
}
