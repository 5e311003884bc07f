//! The response cache: executed query answers, kept as the bytes that were sent, and sent again
//! to the next caller who asks the same thing and may see the same — until the state the answer
//! read changes. Never stale: no TTL decides freshness, the stores' change counts do.
//!
//! - Key: the document, the operation name, the variables and the caller's *visibility class*
//!   (groups and grants, which decide everything the graph shows; two callers share an entry
//!   only when those are equal). An answer that shows the caller's identity (`viewer`) is kept
//!   for that subject alone.
//! - Validity: each entry remembers which sections of the state it read (`state::reads`) and
//!   their change counts when its execution began; any write since makes it a miss (and drops
//!   it). Values from upstreams asked on demand and from the clock cap its life (`max_age`);
//!   some (resource trees, the audit log, on-demand catalog lookups) opt out entirely.
//! - Only queries, only answers without errors. Bounded by entries and bytes (`moka`).
//! - `ETag` on every cached answer; a `GET` with a matching `If-None-Match` gets `304`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::auth::Principal;
use crate::state::reads::{ReadSet, Section, SECTIONS};
use crate::state::State;

/// `cache:` in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSettings {
    pub enabled: bool,
    /// Answers kept at most.
    pub max_entries: u64,
    /// Bytes of answers kept at most.
    pub max_bytes: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            max_entries: 10_000,
            max_bytes: 64 << 20,
        }
    }
}

/// One kept answer.
pub struct Entry {
    pub body: Bytes,
    /// A strong validator of `body` (quoted, as the header carries it).
    pub etag: String,
    reads: ReadSet,
    generations: [u64; SECTIONS],
    stored: Instant,
    /// Set when the answer shows who asked: served to that subject only.
    subject: Option<Option<String>>,
}

/// What a lookup found.
pub enum Lookup {
    Hit(Arc<Entry>),
    Miss,
}

/// The key of an answer: 128 bits of SHA-256 over everything that decides it.
pub type Key = u128;

pub struct ResponseCache {
    entries: moka::sync::Cache<Key, Arc<Entry>>,
    state: Arc<State>,
    pub hits: AtomicU64,
    /// Queries executed afresh (mutations, subscriptions and documents that do not parse are
    /// neither hits nor misses).
    pub misses: AtomicU64,
    /// Entries dropped because the state they read changed (or their values expired).
    pub invalidated: AtomicU64,
    /// Entries dropped for room.
    pub evictions: Arc<AtomicU64>,
}

impl ResponseCache {
    pub fn new(settings: &CacheSettings, state: Arc<State>) -> Option<Self> {
        if !settings.enabled {
            return None;
        }
        let evictions = Arc::new(AtomicU64::new(0));
        let counter = evictions.clone();
        // Weighed in bytes, and no entry counts for less than the average allowed size, so
        // both limits hold.
        let floor = settings_floor(settings.max_entries, settings.max_bytes) as usize;
        let entries = moka::sync::Cache::builder()
            .max_capacity(settings.max_bytes.max(1))
            .weigher(move |_k: &Key, e: &Arc<Entry>| {
                e.body.len().max(floor).min(u32::MAX as usize) as u32
            })
            .eviction_listener(move |_k, _v, cause| {
                if cause == moka::notification::RemovalCause::Size {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
            .build();
        Some(Self {
            entries,
            state,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            invalidated: AtomicU64::new(0),
            evictions,
        })
    }

    /// The key of an operation for a caller.
    pub fn key(
        query: &str,
        operation_name: Option<&str>,
        variables: Option<&serde_json::Value>,
        principal: &Principal,
    ) -> Key {
        let mut h = Sha256::new();
        let variables = variables.filter(|v| !v.is_null()).map(|v| v.to_string());
        for part in [
            query.as_bytes(),
            operation_name.unwrap_or("").as_bytes(),
            variables.as_deref().unwrap_or("").as_bytes(),
            &principal.visibility_class().to_le_bytes(),
        ] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        let d = h.finalize();
        u128::from_le_bytes(d[..16].try_into().expect("BUG: 32-byte digest"))
    }

    /// The state's change counts now: taken before an execution that may be kept.
    pub fn generations(&self) -> [u64; SECTIONS] {
        self.state.generations()
    }

    /// A kept answer for `key`, if it is still valid and `principal` may have it. A miss is
    /// counted by `record_miss` once the operation proves to be a query.
    pub fn get(&self, key: Key, principal: &Principal) -> Lookup {
        let Some(e) = self.entries.get(&key) else {
            return Lookup::Miss;
        };
        if !self.valid(&e) {
            self.entries.invalidate(&key);
            self.invalidated.fetch_add(1, Ordering::Relaxed);
            return Lookup::Miss;
        }
        if e.subject
            .as_ref()
            .is_some_and(|s| s.as_deref() != principal.subject.as_deref())
        {
            return Lookup::Miss;
        }
        self.hits.fetch_add(1, Ordering::Relaxed);
        Lookup::Hit(e)
    }

    /// A query that was not served from here is executed.
    pub fn record_miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }

    fn valid(&self, e: &Entry) -> bool {
        if e.reads.max_age.is_some_and(|m| e.stored.elapsed() >= m) {
            return false;
        }
        let now = self.generations();
        Section::ALL
            .into_iter()
            .all(|s| !e.reads.reads(s) || now[s as usize] == e.generations[s as usize])
    }

    /// Keeps an answer, unless what it read forbids it. Returns it either way.
    pub fn insert(
        &self,
        key: Key,
        body: Bytes,
        reads: ReadSet,
        generations: [u64; SECTIONS],
        principal: &Principal,
    ) -> Arc<Entry> {
        let etag = etag_of(&body);
        let keep = reads.max_age != Some(Duration::ZERO);
        let subject = reads.personal.then(|| principal.subject.clone());
        let entry = Arc::new(Entry {
            body,
            etag,
            reads,
            generations,
            stored: Instant::now(),
            subject,
        });
        if keep {
            self.entries.insert(key, entry.clone());
        }
        entry
    }

    pub fn len(&self) -> u64 {
        self.entries.entry_count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The smallest weight of an entry: `max_bytes / max_entries`, so that at most `max_entries`
/// fit even when all are small.
fn settings_floor(max_entries: u64, max_bytes: u64) -> u64 {
    (max_bytes / max_entries.max(1)).max(1)
}

/// A strong `ETag` for a body.
pub fn etag_of(body: &[u8]) -> String {
    let d = Sha256::digest(body);
    let hex: String = d[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// Does an `If-None-Match` header value match `etag`?
pub fn matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match.trim() == "*"
        || if_none_match
            .split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_lists_and_weak_tags_match() {
        let tag = etag_of(b"{}");
        assert!(matches(&tag, &tag));
        assert!(matches(&format!("\"x\", W/{tag}"), &tag));
        assert!(matches("*", &tag));
        assert!(!matches("\"other\"", &tag));
    }

    #[test]
    fn callers_with_other_grants_get_other_keys() {
        let a = Principal::unrestricted();
        let b = Principal::nobody();
        let k = |p: &Principal| ResponseCache::key("{ a }", None, None, p);
        assert_ne!(k(&a), k(&b));
        assert_eq!(k(&a), k(&Principal::unrestricted()));
        assert_ne!(
            ResponseCache::key("{ a }", None, Some(&serde_json::json!({"x": 1})), &a),
            k(&a)
        );
    }
}
