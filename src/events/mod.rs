//! The event bus: every change a source observes, in one ordered, bounded stream.
//!
//! It is a `tokio::sync::broadcast` channel: bounded, so a slow subscriber cannot grow memory;
//! a subscriber that falls behind loses the oldest events *and is told so* (`RecvError::Lagged`),
//! which the subscription layer turns into an explicit resync. Every event gets a sequence number
//! from one counter, assigned under the same lock as the send, so sequence order is delivery order.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use tokio::sync::broadcast;

use crate::domain::Entity;

/// What happened to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

/// A catalog entity appeared, changed or disappeared between two polls.
#[derive(Debug, Clone)]
pub struct EntityChange {
    pub kind: ChangeKind,
    pub entity_ref: String,
    pub previous: Option<Arc<Entity>>,
    pub current: Option<Arc<Entity>>,
}

/// Everything the bus carries. Later sources add variants.
#[derive(Debug, Clone)]
pub enum Change {
    Entity(EntityChange),
    Application(crate::state::AppChange),
}

#[derive(Debug, Clone)]
pub struct Event {
    /// Strictly increasing per process; subscribers use it as a cursor.
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub change: Change,
}

pub struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
    /// Next sequence number. A `Mutex`, not an atomic, because the number and the send must
    /// happen together or two publishers could deliver out of order; it is never held across
    /// an await (send is synchronous).
    next_seq: Mutex<u64>,
}

impl EventBus {
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Self {
            tx,
            next_seq: Mutex::new(1),
        }
    }

    /// Publishes changes in order. Having no subscriber is normal, not an error.
    pub fn publish(&self, changes: impl IntoIterator<Item = Change>) {
        let mut seq = self.next_seq.lock();
        for change in changes {
            let event = Arc::new(Event {
                seq: *seq,
                at: Utc::now(),
                change,
            });
            *seq += 1;
            let _ = self.tx.send(event);
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// The sequence number the next event will get.
    pub fn next_seq(&self) -> u64 {
        *self.next_seq.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(n: &str) -> Change {
        Change::Entity(EntityChange {
            kind: ChangeKind::Added,
            entity_ref: n.into(),
            previous: None,
            current: None,
        })
    }

    #[tokio::test]
    async fn events_arrive_in_sequence_order() {
        let bus = EventBus::new(8);
        let mut rx = bus.subscribe();
        bus.publish([change("a"), change("b")]);
        let a = rx.recv().await.unwrap();
        let b = rx.recv().await.unwrap();
        assert_eq!((a.seq, b.seq), (1, 2));
    }

    #[tokio::test]
    async fn a_lagging_subscriber_is_told_it_lost_events() {
        let bus = EventBus::new(2);
        let mut rx = bus.subscribe();
        bus.publish((0..5).map(|i| change(&i.to_string())));
        assert!(matches!(
            rx.recv().await,
            Err(broadcast::error::RecvError::Lagged(3))
        ));
    }
}
