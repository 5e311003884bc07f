//! `Query`: the read side of the graph.

use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Object, Result};

use super::entity::{EntityConnection, EntityItem, EntityNode};
use super::error::bad_input;
use super::filter::{EntityFilter, EntityMatcher};
use super::loaders::CatalogLookup;
use super::paging::PageRequest;
use super::sources::SourceStatus;
use super::{gctx, Viewer};
use crate::domain::EntityRef;

pub struct Query;

#[Object]
impl Query {
    /// Catalog entities, sorted by ref, filtered on the server.
    async fn entities(
        &self,
        ctx: &Context<'_>,
        filter: Option<EntityFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<EntityConnection> {
        let g = gctx(ctx);
        let req = PageRequest::new(first, after, g.limits.max_page_size)?;
        let matcher = EntityMatcher::new(filter)?;
        let viewer = Viewer::of(ctx);
        let snapshot = g.state.catalog.snapshot();
        let matching = snapshot
            .entities
            .iter()
            .filter(|e| matcher.matches(e, &snapshot) && viewer.sees_entity(e))
            .cloned();
        Ok(EntityConnection::from_sorted(matching, &snapshot, &req))
    }

    /// One entity by ref (`component:default/sample-app`; namespace defaults to `default`).
    /// Null when there is no such entity or it is not visible to the caller.
    async fn entity(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "ref")] entity_ref: String,
    ) -> Result<Option<EntityItem>> {
        let parsed = EntityRef::parse(&entity_ref).map_err(|e| bad_input(e.to_string()))?;
        let key = parsed.to_string();
        let g = gctx(ctx);
        let viewer = Viewer::of(ctx);
        let snapshot = g.state.catalog.snapshot();
        if let Some(e) = snapshot.get(&key) {
            return Ok(viewer
                .sees_entity(e)
                .then(|| EntityItem::from(EntityNode::new(e.clone(), snapshot.clone()))));
        }
        // Not in the last poll: it may have been registered since. Ask the catalog (batched,
        // cached); if Backstage is unreachable, the last poll's answer — absent — stands.
        let Some(loader) = ctx.data_opt::<DataLoader<CatalogLookup>>() else {
            return Ok(None);
        };
        match loader.load_one(key).await {
            Ok(Some(Some(e))) if viewer.sees_entity(&e) => {
                Ok(Some(EntityItem::from(EntityNode::new(e, snapshot))))
            }
            Ok(_) => Ok(None),
            Err(err) => {
                tracing::debug!(error = %err, "on-demand catalog lookup failed");
                Ok(None)
            }
        }
    }

    /// Every configured upstream instance and its health.
    async fn sources(&self, ctx: &Context<'_>) -> Vec<SourceStatus> {
        gctx(ctx)
            .state
            .sources
            .all()
            .into_iter()
            .map(SourceStatus::from)
            .collect()
    }
}
