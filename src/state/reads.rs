//! What one execution read, for the response cache (`http::response_cache`): the state it
//! touched (catalog, ArgoCD, Kubernetes), whether it asked an upstream on demand or used the
//! clock (which caps how long its answer may be kept), and whether it showed the caller's own
//! identity. The stores note their reads here themselves, so resolvers need not.
//!
//! Recording is task-local: `recording(fut)` scopes a fresh [`ReadSet`] around one execution;
//! outside such a scope (background tasks, subscriptions) `note*` do nothing. Each store also
//! counts its changes ([`Generation`]): an answer is served again only while every store it
//! read is at the generation it was read at — never after a change, without any TTL.

use std::cell::RefCell;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The in-memory state an answer can depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Catalog = 0,
    ArgoCd = 1,
    Kubernetes = 2,
    /// GitHub's response cache (changed by webhook deliveries).
    GitHub = 3,
}

pub const SECTIONS: usize = 4;

impl Section {
    pub const ALL: [Section; SECTIONS] = [
        Section::Catalog,
        Section::ArgoCd,
        Section::Kubernetes,
        Section::GitHub,
    ];
}

/// A store's change counter: bumped by every write, read before an execution starts.
#[derive(Debug, Default)]
pub struct Generation(AtomicU64);

impl Generation {
    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::Release);
    }
    /// Bumps when dropped: hold it across a write, so that the count moves after the data
    /// (a reader that saw the old data also saw the old count).
    pub fn after_write(&self) -> BumpOnDrop<'_> {
        BumpOnDrop(self)
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

pub struct BumpOnDrop<'a>(&'a Generation);

impl Drop for BumpOnDrop<'_> {
    fn drop(&mut self) {
        self.0.bump();
    }
}

/// What one execution read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadSet {
    /// Bit `Section as u8`: that section was read.
    pub sections: u8,
    /// The shortest life one of its reads allows (on-demand upstream values, the clock);
    /// `Some(ZERO)`: not to be kept at all.
    pub max_age: Option<Duration>,
    /// The answer shows who the caller is (`viewer`): it is theirs alone.
    pub personal: bool,
}

impl ReadSet {
    pub fn reads(&self, s: Section) -> bool {
        self.sections & (1 << s as u8) != 0
    }
}

tokio::task_local! {
    static READS: RefCell<ReadSet>;
}

/// Runs `fut`, recording what it reads.
pub async fn recording<F: Future>(fut: F) -> (F::Output, ReadSet) {
    READS
        .scope(RefCell::new(ReadSet::default()), async {
            let out = fut.await;
            (out, READS.with(|r| r.take()))
        })
        .await
}

/// A store was read.
pub fn note(section: Section) {
    let _ = READS.try_with(|r| r.borrow_mut().sections |= 1 << section as u8);
}

/// A value that is only good for `ttl` went into the answer (an on-demand upstream value, the
/// clock); `Duration::ZERO`: the answer must not be kept.
pub fn note_max_age(ttl: Duration) {
    let _ = READS.try_with(|r| {
        let mut r = r.borrow_mut();
        r.max_age = Some(r.max_age.map_or(ttl, |m| m.min(ttl)));
    });
}

/// The answer shows the caller's identity.
pub fn note_personal() {
    let _ = READS.try_with(|r| r.borrow_mut().personal = true);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_are_recorded_inside_the_scope_only() {
        note(Section::Catalog); // outside: ignored, no panic
        let ((), reads) = recording(async {
            note(Section::ArgoCd);
            note_max_age(Duration::from_secs(10));
            note_max_age(Duration::from_secs(3));
            tokio::task::yield_now().await;
            note(Section::Kubernetes);
        })
        .await;
        assert!(reads.reads(Section::ArgoCd) && reads.reads(Section::Kubernetes));
        assert!(!reads.reads(Section::Catalog));
        assert_eq!(reads.max_age, Some(Duration::from_secs(3)));
        assert!(!reads.personal);
    }
}
