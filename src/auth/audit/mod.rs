//! The audit trail of mutations and denied attempts: who (subject and groups) did or tried
//! what to which object, when, in which request, the policy's decision and how it ended.
//! Every entry goes to the log (target `audit`), to a bounded in-memory ring, and — with
//! `audit.postgres_url_env` — to PostgreSQL (`store.rs`), which `Query.auditLog` then
//! reads, so the trail survives restarts and is shared by replicas.
//!
//! Arrows point one way: this module uses `entry.rs` (the record), `store.rs` (the durable
//! sink) and `settings.rs` (`audit:` in the config); the store uses only the entry, and none
//! of them imports this module back.

mod entry;
mod settings;
mod store;

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::Utc;
use parking_lot::Mutex;

pub use entry::AuditEntry;
pub use settings::AuditSettings;
pub use store::{AuditStore, AuditStoreError};

use crate::auth::Principal;

const KEEP: usize = 1000;

#[derive(Default)]
pub struct AuditLog {
    /// Newest last. A `Mutex`: one short push per mutation, never held across an await.
    entries: Mutex<(u64, VecDeque<AuditEntry>)>,
    /// The durable sink, when configured.
    store: Option<Arc<AuditStore>>,
}

/// The durable audit sink's buffer is full: the action is refused rather than run unaudited.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the audit trail cannot take more records now; try again shortly")]
pub struct AuditUnavailable;

impl AuditLog {
    pub fn with_store(store: Arc<AuditStore>) -> Self {
        Self {
            entries: Default::default(),
            store: Some(store),
        }
    }

    /// May an action run now? Only if its record will find room (asked before acting).
    pub fn admit(&self) -> Result<(), AuditUnavailable> {
        match &self.store {
            Some(s) if !s.has_room() => Err(AuditUnavailable),
            _ => Ok(()),
        }
    }

    /// Records waiting for the durable sink (`idp_audit_backlog`).
    pub fn backlog(&self) -> usize {
        self.store.as_ref().map_or(0, |s| s.backlog())
    }

    /// Records one attempt: `result` is `ok` or an error code; `FORBIDDEN` is a denial.
    pub fn record(
        &self,
        principal: &Principal,
        request_id: Option<&str>,
        action: &str,
        target: &str,
        result: &str,
        message: Option<String>,
    ) -> u64 {
        let mut guard = self.entries.lock();
        guard.0 += 1;
        let entry = AuditEntry {
            id: guard.0,
            at: Utc::now(),
            principal: principal.display_name().to_string(),
            delegate: principal.delegate.clone(),
            groups: principal.groups().to_vec(),
            decision: if result == "FORBIDDEN" {
                "denied"
            } else {
                "allowed"
            }
            .to_string(),
            request_id: request_id.map(str::to_string),
            action: action.to_string(),
            target: target.to_string(),
            result: result.to_string(),
            message,
        };
        tracing::info!(target: "audit", id = entry.id, principal = %entry.principal,
            delegate = entry.delegate.as_deref().unwrap_or(""),
            groups = ?entry.groups, action = %entry.action, object = %entry.target,
            decision = %entry.decision, result = %entry.result,
            request_id = entry.request_id.as_deref().unwrap_or(""), "mutation");
        if guard.1.len() == KEEP {
            guard.1.pop_front();
        }
        if let Some(store) = &self.store {
            store.push(entry.clone());
        }
        guard.1.push_back(entry);
        guard.0
    }

    /// Newest first: from the durable sink (every replica's records, plus this one's not yet
    /// written) when there is one and it answers, else from this process's ring.
    pub async fn recent(&self, n: usize) -> Vec<AuditEntry> {
        if let Some(store) = &self.store {
            match store.recent(n).await {
                Ok(mut rows) => {
                    let pending = store.pending();
                    rows.retain(|r| {
                        !pending.iter().any(|p| {
                            p.at == r.at && p.principal == r.principal && p.target == r.target
                        })
                    });
                    rows.extend(pending);
                    rows.sort_by_key(|r| std::cmp::Reverse(r.at));
                    rows.truncate(n);
                    return rows;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "audit database unreadable; serving this replica's records")
                }
            }
        }
        self.entries
            .lock()
            .1
            .iter()
            .rev()
            .take(n)
            .cloned()
            .collect()
    }
}
