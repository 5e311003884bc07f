//! The durable audit sink: PostgreSQL (`audit.postgres_url_env`), so records survive restarts
//! and every replica writes to and reads from one trail.
//!
//! Records are queued in a bounded buffer and written by one task, so a mutation never waits
//! for the database. While the database is down the buffer holds them (the backlog is the
//! `idp_audit_backlog` metric) and they are written, in order, when it returns; once the buffer
//! is full, `admit` refuses new mutations (`AUDIT_UNAVAILABLE`) rather than let them run
//! unaudited. Schema changes are the SQL files in `migrations/`, applied at start in order.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Row;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::entry::AuditEntry;

/// The migrations, in order (version, SQL); the files live in `migrations/`.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../../../migrations/0001_audit_log.sql")),
    (
        2,
        include_str!("../../../migrations/0002_audit_delegate.sql"),
    ),
];

/// Why the durable sink could not start.
#[derive(Debug, thiserror::Error)]
#[error("audit database: {0}")]
pub struct AuditStoreError(String);

pub struct AuditStore {
    pool: PgPool,
    /// Records not yet written, oldest first. A `parking_lot` lock: short pushes and pops,
    /// never held across an await (the writer copies a batch out, writes, then pops it).
    queue: Mutex<VecDeque<AuditEntry>>,
    capacity: usize,
    wake: Notify,
    /// Random per process: with `local_id`, the row's identity across replicas.
    pub replica: String,
}

impl AuditStore {
    /// Connects lazily (the database may be down at start; records then queue) and applies
    /// the migrations when it first can.
    pub fn new(url: &str, capacity: usize) -> Result<Arc<Self>, AuditStoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(3))
            .connect_lazy(url)
            .map_err(|e| AuditStoreError(e.to_string()))?;
        Ok(Arc::new(Self {
            pool,
            queue: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            wake: Notify::new(),
            replica: format!("{:08x}", rand::random::<u32>()),
        }))
    }

    /// Room for one more record? (Asked before a mutation runs.)
    pub fn has_room(&self) -> bool {
        self.queue.lock().len() < self.capacity
    }

    /// Records waiting to be written.
    pub fn backlog(&self) -> usize {
        self.queue.lock().len()
    }

    /// Copies of the records not yet written.
    pub fn pending(&self) -> Vec<AuditEntry> {
        self.queue.lock().iter().cloned().collect()
    }

    pub fn push(&self, entry: AuditEntry) {
        self.queue.lock().push_back(entry);
        self.wake.notify_one();
    }

    /// Writes the queue until `shutdown`, retrying while the database is down.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut migrated = false;
        let mut backoff = Duration::from_millis(200);
        loop {
            if !migrated {
                match self.migrate().await {
                    Ok(()) => migrated = true,
                    Err(e) => {
                        tracing::warn!(error = %e, "audit database not ready; records are queued");
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
                }
            }
            let batch: Vec<AuditEntry> = self.queue.lock().iter().take(100).cloned().collect();
            if batch.is_empty() {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                continue;
            }
            match self.write(&batch).await {
                Ok(()) => {
                    let mut q = self.queue.lock();
                    for _ in 0..batch.len() {
                        q.pop_front();
                    }
                    backoff = Duration::from_millis(200);
                }
                Err(e) => {
                    tracing::warn!(error = %e, backlog = self.backlog(), "audit write failed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn migrate(&self) -> Result<(), sqlx::Error> {
        sqlx::query("CREATE TABLE IF NOT EXISTS idp_graph_migrations (version INT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
            .execute(&self.pool)
            .await?;
        for (version, sql) in MIGRATIONS {
            let done: Option<i32> =
                sqlx::query_scalar("SELECT version FROM idp_graph_migrations WHERE version = $1")
                    .bind(version)
                    .fetch_optional(&self.pool)
                    .await?;
            if done.is_none() {
                // Each migration is idempotent (IF NOT EXISTS), so a crash between the two
                // statements only repeats it.
                sqlx::raw_sql(sql).execute(&self.pool).await?;
                sqlx::query(
                    "INSERT INTO idp_graph_migrations (version) VALUES ($1) ON CONFLICT DO NOTHING",
                )
                .bind(version)
                .execute(&self.pool)
                .await?;
            }
        }
        Ok(())
    }

    /// Writes a batch in order; a retry after a partial write skips what is there already
    /// (unique replica + local id).
    async fn write(&self, batch: &[AuditEntry]) -> Result<(), sqlx::Error> {
        for e in batch {
            sqlx::query(
                "INSERT INTO audit_log (replica, local_id, at, principal, groups, action, target, decision, result, message, request_id, delegate)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (replica, local_id) DO NOTHING",
            )
            .bind(&self.replica)
            .bind(e.id as i64)
            .bind(e.at)
            .bind(&e.principal)
            .bind(&e.groups)
            .bind(&e.action)
            .bind(&e.target)
            .bind(&e.decision)
            .bind(&e.result)
            .bind(&e.message)
            .bind(&e.request_id)
            .bind(&e.delegate)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    /// The newest `n` records of every replica, newest first; `Err` while the database is down.
    pub async fn recent(&self, n: usize) -> Result<Vec<AuditEntry>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT seq, at, principal, groups, action, target, decision, result, message, request_id, delegate
             FROM audit_log ORDER BY seq DESC LIMIT $1",
        )
        .bind(n as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get::<i64, _>("seq")? as u64,
                    at: r.try_get("at")?,
                    principal: r.try_get("principal")?,
                    delegate: r.try_get("delegate")?,
                    groups: r.try_get("groups")?,
                    decision: r.try_get("decision")?,
                    request_id: r.try_get("request_id")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    result: r.try_get("result")?,
                    message: r.try_get("message")?,
                })
            })
            .collect()
    }
}
