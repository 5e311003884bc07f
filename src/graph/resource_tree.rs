//! `Application.resourceTree`: ArgoCD's live resource tree, fetched on demand through the
//! ArgoCD handle (cached there for a few seconds) and shown as it is.

use async_graphql::{Context, Result, SimpleObject};

use super::application::HealthStatusCode;
use super::error::upstream;
use super::gctx;
use crate::domain::argocd::{self as argo, Application};

#[derive(SimpleObject, Clone)]
pub struct ResourceNodeRef {
    pub group: Option<String>,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

#[derive(SimpleObject, Clone)]
pub struct ResourceNode {
    pub group: Option<String>,
    pub version: Option<String>,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: Option<String>,
    pub health: Option<HealthStatusCode>,
    pub health_message: Option<String>,
    pub parent_refs: Vec<ResourceNodeRef>,
    pub images: Vec<String>,
    pub created_at: Option<String>,
}

#[derive(SimpleObject, Clone)]
pub struct ResourceTree {
    pub nodes: Vec<ResourceNode>,
}

impl From<&argo::ResourceNode> for ResourceNode {
    fn from(n: &argo::ResourceNode) -> Self {
        Self {
            group: n.group.clone(),
            version: n.version.clone(),
            kind: n.kind.clone(),
            namespace: n.namespace.clone(),
            name: n.name.clone(),
            uid: n.uid.clone(),
            health: n.health.map(Into::into),
            health_message: n.health_message.clone(),
            parent_refs: n
                .parent_refs
                .iter()
                .map(|p| ResourceNodeRef {
                    group: Some(p.group.clone()).filter(|g| !g.is_empty()),
                    kind: p.kind.clone(),
                    namespace: p.namespace.clone(),
                    name: p.name.clone(),
                })
                .collect(),
            images: n.images.clone(),
            created_at: n.created_at.clone(),
        }
    }
}

/// The tree of `app`; `None` when its ArgoCD instance is not configured here.
pub async fn resource_tree(ctx: &Context<'_>, app: &Application) -> Result<Option<ResourceTree>> {
    let Some(argocd) = gctx(ctx).upstreams.argocd(&app.key.instance) else {
        return Ok(None);
    };
    let tree = argocd
        .resource_tree(app)
        .await
        .map_err(|e| upstream(&app.key.instance, &e))?;
    Ok(Some(ResourceTree {
        nodes: tree.nodes.iter().map(Into::into).collect(),
    }))
}
