//! `Subscription`: live changes from the event bus, filtered on the server.

use std::sync::Arc;

use async_graphql::{Context, Enum, Object, Result, Subscription as SubscriptionMacro};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use tokio::sync::broadcast::error::RecvError;

use super::entity::{EntityItem, EntityNode};
use super::filter::{EntityFilter, EntityMatcher};
use super::{gctx, Viewer};
use crate::domain::Entity;
use crate::events::{Change, ChangeKind};
use crate::state::State;

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum EntityEventType {
    Added,
    Modified,
    Removed,
    /// Events were lost (this subscriber fell behind): re-read what you display.
    ResyncRequired,
}

pub struct EntityEvent {
    seq: u64,
    at: DateTime<Utc>,
    kind: EntityEventType,
    entity_ref: Option<String>,
    current: Option<Arc<Entity>>,
    previous: Option<Arc<Entity>>,
    state: Arc<State>,
}

#[Object]
impl EntityEvent {
    /// Position in the server's event sequence.
    async fn cursor(&self) -> String {
        self.seq.to_string()
    }
    #[graphql(name = "type")]
    async fn event_type(&self) -> EntityEventType {
        self.kind
    }
    async fn at(&self) -> DateTime<Utc> {
        self.at
    }
    #[graphql(name = "ref")]
    async fn entity_ref(&self) -> Option<&str> {
        self.entity_ref.as_deref()
    }
    /// The entity after the change (null when removed).
    async fn entity(&self) -> Option<EntityItem> {
        let e = self.current.clone()?;
        Some(EntityItem::from(EntityNode::new(
            e,
            self.state.catalog.snapshot(),
        )))
    }
    /// The entity before the change (null when added).
    async fn previous(&self) -> Option<EntityItem> {
        let e = self.previous.clone()?;
        Some(EntityItem::from(EntityNode::new(
            e,
            self.state.catalog.snapshot(),
        )))
    }
}

pub struct Subscription;

#[SubscriptionMacro]
impl Subscription {
    /// Catalog entities added, modified or removed, as each poll finds them.
    async fn entity_events(
        &self,
        ctx: &Context<'_>,
        filter: Option<EntityFilter>,
    ) -> Result<impl Stream<Item = EntityEvent>> {
        let matcher = EntityMatcher::new(filter)?;
        let state = gctx(ctx).state.clone();
        let policy = gctx(ctx).policy.clone();
        let principal = Viewer::of(ctx).principal.clone();
        let rx = state.bus.subscribe();
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            let item = rx.recv().await;
            match item {
                Err(RecvError::Closed) => None,
                other => Some((other, rx)),
            }
        })
        .filter_map(move |item| {
            let state = state.clone();
            let out = match item {
                Err(RecvError::Lagged(_)) => Some(EntityEvent {
                    seq: state.bus.next_seq().saturating_sub(1),
                    at: Utc::now(),
                    kind: EntityEventType::ResyncRequired,
                    entity_ref: None,
                    current: None,
                    previous: None,
                    state,
                }),
                Err(RecvError::Closed) => None,
                Ok(event) => match &event.change {
                    Change::Entity(c) => {
                        let snap = state.catalog.snapshot();
                        let viewer = Viewer {
                            policy: &policy,
                            principal: &principal,
                        };
                        let relevant = [&c.current, &c.previous]
                            .into_iter()
                            .flatten()
                            .any(|e| matcher.matches(e, &snap) && viewer.sees_entity(e));
                        relevant.then(|| EntityEvent {
                            seq: event.seq,
                            at: event.at,
                            kind: match c.kind {
                                ChangeKind::Added => EntityEventType::Added,
                                ChangeKind::Modified => EntityEventType::Modified,
                                ChangeKind::Deleted => EntityEventType::Removed,
                            },
                            entity_ref: Some(c.entity_ref.clone()),
                            current: c.current.clone(),
                            previous: c.previous.clone(),
                            state,
                        })
                    }
                    _ => None,
                },
            };
            futures::future::ready(out)
        });
        Ok(stream)
    }
}
