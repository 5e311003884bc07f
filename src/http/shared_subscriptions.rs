//! Shared subscription execution: subscribers of the same subscription (document, operation,
//! variables) who may see the same (the response cache's visibility class) share one execution.
//! Per event the selection is executed and serialized once, and the same bytes go to every
//! member of the group; a thousand dashboards watching `applicationEvents` cost one.
//!
//! Not shared, because the answer is the subscriber's own: a subscription resuming from a
//! cursor (`after`, a replay) or asking for `initial` events (a snapshot at its start), and one
//! that shows who asks (`viewer`). A member that falls behind the group (its socket is slower
//! than the events) is not silently skipped ahead: it gets a `RESYNC_REQUIRED` error and its
//! subscription ends, so it resubscribes from its last cursor (privately, with replay).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use parking_lot::Mutex;
use tokio::sync::broadcast;

use super::error::RequestError;
use super::pipeline::Prepared;
use super::response_cache::{Key, ResponseCache};

/// One item for a subscriber.
pub enum Item {
    /// A serialized GraphQL response (the `payload` of a `next`/`data` message).
    Payload(Bytes),
    /// The subscriber fell behind its group: tell it to resubscribe from its cursor.
    Lagged,
}

#[derive(Clone)]
enum Msg {
    Payload(Bytes),
    End,
}

struct Group {
    tx: broadcast::Sender<Msg>,
    /// The source stream ended: do not join.
    ended: Arc<AtomicBool>,
    pump: tokio::task::AbortHandle,
}

impl Drop for Group {
    fn drop(&mut self) {
        // The last member left: stop executing.
        self.pump.abort();
    }
}

pub struct SubscriptionHub {
    /// Events a member may lag behind its group before it must resync (`events.capacity`,
    /// as for a subscriber of its own).
    buffer: usize,
    /// Live groups by key; an entry whose group is gone is replaced on the next start.
    groups: Mutex<HashMap<Key, Weak<Group>>>,
    /// Executions started (one per group).
    pub groups_started: AtomicU64,
    /// Subscribers that joined a running group instead of executing.
    pub joined: AtomicU64,
}

fn serialize(r: &async_graphql::Response) -> Bytes {
    serde_json::to_vec(r)
        .map(Bytes::from)
        .unwrap_or_else(|_| Bytes::from_static(b"{\"errors\":[{\"message\":\"internal error\",\"extensions\":{\"code\":\"INTERNAL_SERVER_ERROR\"}}]}"))
}

/// The group key of a subscription that may be shared, or `None`.
fn shareable(p: &Prepared) -> Option<Key> {
    use async_graphql::parser::types::OperationType;
    if p.operation_type != OperationType::Subscription {
        return None;
    }
    let query = &p.request.query;
    if query.contains("initial") || query.contains("viewer") {
        return None;
    }
    let variables = serde_json::to_value(&p.request.variables).ok()?;
    if variables.get("after").is_some_and(|a| !a.is_null()) {
        return None;
    }
    Some(ResponseCache::key(
        query,
        p.request.operation_name.as_deref(),
        Some(&variables),
        &p.principal,
    ))
}

impl SubscriptionHub {
    pub fn new(buffer: usize) -> Self {
        Self {
            buffer: buffer.max(1),
            groups: Default::default(),
            groups_started: AtomicU64::new(0),
            joined: AtomicU64::new(0),
        }
    }

    /// Subscribes: joins the running group of the same subscription, or starts it (through
    /// `start`, the pipeline's own stream, which refuses what it would refuse anyway).
    pub async fn subscribe<F, Fut>(
        &self,
        p: Prepared,
        start: F,
    ) -> Result<BoxStream<'static, Item>, RequestError>
    where
        F: FnOnce(Prepared) -> Fut,
        Fut: std::future::Future<
            Output = Result<BoxStream<'static, async_graphql::Response>, RequestError>,
        >,
    {
        let Some(key) = shareable(&p) else {
            let results = start(p).await?;
            return Ok(results.map(|r| Item::Payload(serialize(&r))).boxed());
        };
        let running = self
            .groups
            .lock()
            .get(&key)
            .and_then(Weak::upgrade)
            .filter(|g| !g.ended.load(Ordering::Acquire));
        if let Some(group) = running {
            self.joined.fetch_add(1, Ordering::Relaxed);
            let rx = group.tx.subscribe();
            return Ok(member(group, rx));
        }
        let results = start(p).await?;
        let (tx, rx) = broadcast::channel(self.buffer);
        let ended = Arc::new(AtomicBool::new(false));
        let pump = tokio::spawn({
            let (tx, ended) = (tx.clone(), ended.clone());
            async move {
                let mut results = results;
                while let Some(r) = results.next().await {
                    // No receiver right now is fine: members come and go.
                    let _ = tx.send(Msg::Payload(serialize(&r)));
                }
                ended.store(true, Ordering::Release);
                let _ = tx.send(Msg::End);
            }
        });
        let group = Arc::new(Group {
            tx,
            ended,
            pump: pump.abort_handle(),
        });
        self.groups_started.fetch_add(1, Ordering::Relaxed);
        {
            let mut groups = self.groups.lock();
            groups.retain(|_, g| g.strong_count() > 0);
            groups.insert(key, Arc::downgrade(&group));
        }
        Ok(member(group, rx))
    }

    /// Groups running now.
    pub fn groups(&self) -> usize {
        self.groups
            .lock()
            .values()
            .filter(|g| g.strong_count() > 0)
            .count()
    }
}

/// One member's view of its group: the group lives while it is held.
fn member(group: Arc<Group>, rx: broadcast::Receiver<Msg>) -> BoxStream<'static, Item> {
    futures::stream::unfold(Some((group, rx)), |state| async move {
        let (group, mut rx) = state?;
        match rx.recv().await {
            Ok(Msg::Payload(b)) => Some((Item::Payload(b), Some((group, rx)))),
            Ok(Msg::End) | Err(broadcast::error::RecvError::Closed) => None,
            Err(broadcast::error::RecvError::Lagged(_)) => Some((Item::Lagged, None)),
        }
    })
    .boxed()
}
