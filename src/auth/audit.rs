//! The audit trail of mutations and denied attempts: who (subject and groups) did or tried
//! what to which object, when, in which request, the policy's decision and how it ended.
//! Every entry goes to the log (target `audit`) and to a bounded in-memory ring that
//! `Query.auditLog` reads.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;

const KEEP: usize = 1000;

#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub id: u64,
    pub at: DateTime<Utc>,
    pub principal: String,
    /// The caller's groups when it acted.
    pub groups: Vec<String>,
    /// `allowed`, or `denied` by the policy.
    pub decision: &'static str,
    /// The request's id (also in the response's `x-request-id` and the log).
    pub request_id: Option<String>,
    pub action: String,
    pub target: String,
    /// `ok`, or the error code.
    pub result: String,
    pub message: Option<String>,
}

#[derive(Default)]
pub struct AuditLog {
    /// Newest last. A `Mutex`: one short push per mutation, never held across an await.
    entries: Mutex<(u64, VecDeque<AuditEntry>)>,
}

impl AuditLog {
    /// Records one attempt: `result` is `ok` or an error code; `FORBIDDEN` is a denial.
    pub fn record(
        &self,
        principal: &super::Principal,
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
            groups: principal.groups.clone(),
            decision: if result == "FORBIDDEN" {
                "denied"
            } else {
                "allowed"
            },
            request_id: request_id.map(str::to_string),
            action: action.to_string(),
            target: target.to_string(),
            result: result.to_string(),
            message,
        };
        tracing::info!(target: "audit", id = entry.id, principal = %entry.principal,
            groups = ?entry.groups, action = %entry.action, object = %entry.target,
            decision = entry.decision, result = %entry.result,
            request_id = entry.request_id.as_deref().unwrap_or(""), "mutation");
        if guard.1.len() == KEEP {
            guard.1.pop_front();
        }
        guard.1.push_back(entry);
        guard.0
    }

    /// Newest first.
    pub fn recent(&self, n: usize) -> Vec<AuditEntry> {
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
