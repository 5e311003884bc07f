//! One record of the audit trail: what the in-memory ring keeps, the durable store writes
//! and `Query.auditLog` answers. A leaf: the log (`mod.rs`) and the store (`store.rs`) both
//! use it, and it uses neither.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub id: u64,
    pub at: DateTime<Utc>,
    /// Whom the policy decided as (for a delegated call: the user named by the delegate).
    pub principal: String,
    /// The caller that acted for `principal` (a principal granted `delegate`); `None` when
    /// the principal called itself.
    pub delegate: Option<String>,
    /// The caller's groups when it acted.
    pub groups: Vec<String>,
    /// `allowed`, or `denied` (by the policy or the upstream's own authorization).
    pub decision: String,
    /// The id the pipeline gave the request (also in the log line).
    pub request_id: Option<String>,
    pub action: String,
    pub target: String,
    /// `ok`, or the error code.
    pub result: String,
    pub message: Option<String>,
}
