//! The event bus: every change a source observes, in one ordered, bounded stream.
//!
//! It is a `tokio::sync::broadcast` channel: bounded, so a slow subscriber cannot grow memory;
//! a subscriber that falls behind loses the oldest events *and is told so* (`RecvError::Lagged`),
//! which the subscription layer turns into an explicit resync. Every event gets a sequence number
//! from one counter, assigned under the same lock as the send, so sequence order is delivery order.
//! The change types, and the transitions derived from them once per change, are in `changes.rs`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use tokio::sync::broadcast;

mod changes;
mod cursor;
mod settings;
pub mod workload;

pub use cursor::CursorKey;

pub use changes::{
    app_transitions, AppChange, AppTransition, Change, ChangeKind, EntityChange, ObjectChange,
    RepositoryCause, RepositoryChange, RolloutChange, RolloutTransition,
};
pub use settings::{EventSettings, REPLAY_AGE};

#[derive(Debug, Clone)]
pub struct Event {
    /// Strictly increasing per process; subscribers use it as a cursor.
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub change: Change,
}

pub struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
    /// Next sequence number and the replay buffer (the newest `replay` events). One `Mutex`
    /// for both, because numbering, buffering and sending must happen together or a publisher
    /// could deliver out of order, and a subscriber joining with a cursor must see the buffer
    /// and the live channel meet without a gap. Never held across an await.
    inner: Mutex<Inner>,
    replay: usize,
    /// How old a buffered event may get before it is dropped (a cursor reaches back this far at
    /// most): the buffer's memory settles within this window instead of filling for hours.
    replay_age: chrono::Duration,
    /// Random per process: sequence numbers only mean something within one epoch, so a cursor
    /// from before a restart (or from another replica) is recognised instead of misread.
    epoch: u32,
    /// Seals positions into opaque cursors (`cursor.rs`).
    cursor_key: CursorKey,
}

struct Inner {
    /// The sequence number the next event gets (at least).
    next: u64,
    buffer: std::collections::VecDeque<Arc<Event>>,
    /// Every event at or before this position is gone from the buffer, or was never held here
    /// (a replica that joined the shared log later): a cursor before it must resync.
    floor: u64,
}

/// A string that is not a cursor this server (or another epoch of it) issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a cursor")]
pub struct NotACursor;

/// Where a subscription starts.
pub struct Subscription {
    /// Events after the cursor that are still in the replay buffer, oldest first.
    pub backlog: Vec<Arc<Event>>,
    /// More was missed than the buffer holds: the client must re-read its state.
    pub gap: bool,
    pub live: broadcast::Receiver<Arc<Event>>,
}

impl EventBus {
    /// `capacity`: how far one live subscriber may fall behind before it is told to resync.
    /// `replay`: how many past events a reconnecting subscriber can ask for by cursor.
    pub fn new(capacity: usize) -> Self {
        Self::with_replay(capacity, capacity, REPLAY_AGE)
    }

    /// `replay_age`: how old a buffered event may get (`events.replay_secs`).
    pub fn with_replay(capacity: usize, replay: usize, replay_age: std::time::Duration) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Self {
            tx,
            inner: Mutex::new(Inner {
                next: 1,
                buffer: std::collections::VecDeque::with_capacity(replay.min(1 << 16)),
                floor: 0,
            }),
            replay: replay.max(1),
            replay_age: chrono::Duration::from_std(replay_age).unwrap_or(chrono::Duration::MAX),
            epoch: rand::random::<u32>(),
            cursor_key: CursorKey::random(),
        }
    }

    /// Cursors sealed with `key` (from the configuration, shared by replicas).
    pub fn with_cursor_key(mut self, key: CursorKey) -> Self {
        self.cursor_key = key;
        self
    }

    /// The epoch cursors carry: replicas sharing one change log share it, so a cursor taken on
    /// one resumes on another (its sequence numbers are log positions).
    pub fn with_epoch(mut self, epoch: u32) -> Self {
        self.epoch = epoch;
        self
    }

    /// Publishes changes in order. Having no subscriber is normal, not an error.
    pub fn publish(&self, changes: impl IntoIterator<Item = Change>) {
        let mut inner = self.inner.lock();
        let first = inner.next;
        self.push(&mut inner, first, changes);
    }

    /// Publishes changes at positions the shared change log gave them: `first`, `first + 1`…
    /// Positions at or before the last one published are skipped (a log entry read twice).
    pub fn publish_at(&self, first: u64, changes: impl IntoIterator<Item = Change>) {
        let mut inner = self.inner.lock();
        self.push(&mut inner, first, changes);
    }

    /// This bus joins the shared log at `position`: nothing at or before it is held here.
    pub fn start_at(&self, position: u64) {
        let mut inner = self.inner.lock();
        if position >= inner.next {
            inner.next = position + 1;
            inner.floor = inner.floor.max(position);
        }
    }

    fn push(&self, inner: &mut Inner, first: u64, changes: impl IntoIterator<Item = Change>) {
        self.drop_aged(inner);
        for (i, change) in changes.into_iter().enumerate() {
            let seq = first + i as u64;
            if seq < inner.next {
                continue;
            }
            let event = Arc::new(Event {
                seq,
                at: Utc::now(),
                change,
            });
            inner.next = seq + 1;
            if inner.buffer.len() == self.replay {
                if let Some(gone) = inner.buffer.pop_front() {
                    inner.floor = gone.seq;
                }
            }
            inner.buffer.push_back(event.clone());
            let _ = self.tx.send(event);
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Subscribes from a cursor: the buffered events after `after`, then live ones, with no
    /// gap and no duplicate between them. `after: None` starts live.
    pub fn subscribe_after(&self, after: Option<u64>) -> Subscription {
        let mut inner = self.inner.lock();
        self.drop_aged(&mut inner);
        let live = self.tx.subscribe();
        let Some(after) = after else {
            return Subscription {
                backlog: Vec::new(),
                gap: false,
                live,
            };
        };
        // Events after `after` that are gone (or were never held here): some were missed.
        let gap = after < inner.floor;
        let backlog = inner
            .buffer
            .iter()
            .filter(|e| e.seq > after)
            .cloned()
            .collect();
        Subscription { backlog, gap, live }
    }

    /// Drops buffered events older than `replay_age`.
    fn drop_aged(&self, inner: &mut Inner) {
        let Some(oldest_kept) = Utc::now().checked_sub_signed(self.replay_age) else {
            return;
        };
        while inner.buffer.front().is_some_and(|e| e.at < oldest_kept) {
            if let Some(gone) = inner.buffer.pop_front() {
                inner.floor = gone.seq;
            }
        }
    }

    /// The cursor clients see for a sequence number: opaque (`cursor.rs`).
    pub fn cursor(&self, seq: u64) -> String {
        self.cursor_key.seal(self.epoch, seq)
    }

    /// The sequence number in a cursor of this epoch; `Ok(None)` for a cursor of another epoch
    /// (the caller resyncs), `Err` for something that is not a cursor sealed with our key.
    pub fn parse_cursor(&self, cursor: &str) -> Result<Option<u64>, NotACursor> {
        Ok(self
            .cursor_key
            .open(cursor)?
            .and_then(|(epoch, seq)| (epoch == self.epoch).then_some(seq)))
    }

    /// The sequence number the next event will get.
    pub fn next_seq(&self) -> u64 {
        self.inner.lock().next
    }

    /// Events published so far, and how many the replay buffer holds now (`/metrics`).
    pub fn counts(&self) -> (u64, usize) {
        let inner = self.inner.lock();
        (inner.next - 1, inner.buffer.len())
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
    async fn a_cursor_resumes_without_gap_or_duplicate() {
        let bus = EventBus::with_replay(16, 4, REPLAY_AGE);
        bus.publish((0..3).map(|i| change(&i.to_string())));
        let mut sub = bus.subscribe_after(Some(1));
        assert!(!sub.gap);
        assert_eq!(
            sub.backlog.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [2, 3]
        );
        bus.publish([change("x")]);
        assert_eq!(sub.live.recv().await.unwrap().seq, 4);
        // Too far back: the buffer holds 4 events (2..=5 after one more), so cursor 0 has a gap.
        bus.publish([change("y")]);
        assert!(bus.subscribe_after(Some(0)).gap);
        assert!(!bus.subscribe_after(Some(1)).gap);
    }

    /// Makes every buffered event `by` older, as if that time had passed.
    fn age_buffer(bus: &EventBus, by: chrono::Duration) {
        let mut inner = bus.inner.lock();
        for e in inner.buffer.iter_mut() {
            *e = Arc::new(Event {
                at: e.at - by,
                ..(**e).clone()
            });
        }
    }

    #[test]
    fn events_older_than_the_replay_age_are_dropped_and_their_cursors_resync() {
        let bus = EventBus::with_replay(16, 16, REPLAY_AGE);
        bus.publish([change("a"), change("b")]);
        assert!(!bus.subscribe_after(Some(0)).gap, "young events resume");
        age_buffer(&bus, chrono::Duration::from_std(REPLAY_AGE).unwrap() / 2);
        assert!(!bus.subscribe_after(Some(0)).gap, "within the window still");
        age_buffer(&bus, chrono::Duration::from_std(REPLAY_AGE).unwrap());
        bus.publish([change("c")]);
        let sub = bus.subscribe_after(Some(0));
        assert!(sub.gap, "a cursor before the window resyncs");
        assert_eq!(sub.backlog.iter().map(|e| e.seq).collect::<Vec<_>>(), [3]);
        assert!(
            !bus.subscribe_after(Some(2)).gap,
            "the newest cursor still resumes"
        );
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
