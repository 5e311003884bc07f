//! `Query.search`: one box for everything (`state::search` ranks; this applies visibility and
//! pages). A hit says what it is and carries the matching node.

use async_graphql::{Context, Object, Result, SimpleObject};

use super::application::ApplicationNode;
use super::entity::{EntityItem, EntityNode};
use super::kubernetes::{DaemonSetNode, DeploymentNode, StatefulSetNode};
use super::paging::{paginate, PageInfo, PageRequest};
use super::{gctx, Viewer};
use crate::state::search::{Hit, HitItem, SearchKind};

pub struct SearchHit(Hit);

#[Object]
impl SearchHit {
    async fn kind(&self) -> SearchKind {
        self.0.kind
    }
    /// 3 exact name, 2 name prefix, 1 substring of name, title, description or tags.
    async fn rank(&self) -> i32 {
        self.0.rank as i32
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn entity(&self, ctx: &Context<'_>) -> Option<EntityItem> {
        match &self.0.item {
            HitItem::Entity(e) => Some(EntityItem::from(EntityNode::new(
                e.clone(),
                gctx(ctx).state.catalog.snapshot(),
            ))),
            _ => None,
        }
    }
    async fn application(&self) -> Option<ApplicationNode> {
        match &self.0.item {
            HitItem::Application(a) => Some(ApplicationNode(a.clone())),
            _ => None,
        }
    }
    async fn deployment(&self) -> Option<DeploymentNode> {
        match &self.0.item {
            HitItem::Workload(c, "Deployment", ns, name) => c
                .deployments
                .get(ns, name)
                .map(|d| DeploymentNode::new(c.clone(), d)),
            _ => None,
        }
    }
    async fn stateful_set(&self) -> Option<StatefulSetNode> {
        match &self.0.item {
            HitItem::Workload(c, "StatefulSet", ns, name) => c
                .stateful_sets
                .get(ns, name)
                .map(|s| StatefulSetNode::new(c.clone(), s)),
            _ => None,
        }
    }
    async fn daemon_set(&self) -> Option<DaemonSetNode> {
        match &self.0.item {
            HitItem::Workload(c, "DaemonSet", ns, name) => c
                .daemon_sets
                .get(ns, name)
                .map(|s| DaemonSetNode::new(c.clone(), s)),
            _ => None,
        }
    }
    /// `owner/repo` (the repository itself: `Query.repository(slug:)`).
    async fn repository_slug(&self) -> Option<&str> {
        match &self.0.item {
            HitItem::Repository(slug) => Some(slug),
            _ => None,
        }
    }
}

#[derive(SimpleObject)]
pub struct SearchEdge {
    pub cursor: String,
    pub node: SearchHit,
}

#[derive(SimpleObject)]
pub struct SearchConnection {
    pub total_count: usize,
    pub edges: Vec<SearchEdge>,
    pub page_info: PageInfo,
}

/// The visible hits for `text`, best first, one page.
pub fn search(
    ctx: &Context<'_>,
    text: String,
    kinds: Option<Vec<SearchKind>>,
    first: Option<i32>,
    after: Option<String>,
) -> Result<SearchConnection> {
    let text = text.trim();
    if text.is_empty() || text.len() > 200 {
        return Err(super::error::bad_input(
            "`text` must have 1 to 200 characters",
        ));
    }
    let g = gctx(ctx);
    let req = PageRequest::new(first, after, g.limits.max_page_size)?;
    let viewer = Viewer::of(ctx);
    let hits = g
        .state
        .search(text, kinds.as_deref().unwrap_or_default())
        .into_iter()
        .filter(|h| match &h.item {
            HitItem::Entity(e) => viewer.sees_entity(e),
            HitItem::Application(a) => viewer.sees_app(a),
            HitItem::Workload(c, _, ns, _) => viewer.sees_namespace(&c.name, ns),
            HitItem::Repository(slug) => g
                .state
                .entities_of_repository(slug)
                .iter()
                .any(|e| viewer.sees_entity(e)),
        });
    let page = paginate(hits, |h| h.key.as_str(), &req);
    Ok(SearchConnection {
        total_count: page.total,
        page_info: page.page_info,
        edges: page
            .items
            .into_iter()
            .map(|h| SearchEdge {
                cursor: super::paging::encode_cursor(&h.key),
                node: SearchHit(h),
            })
            .collect(),
    })
}
