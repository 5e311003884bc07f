//! The change log: one Redis Stream every replica appends to and reads in order.
//!
//! **Positions.** Each entry is stored under the id `<last>-<n>`, where `<last>` is the log
//! position of its last change (a counter in Redis, bumped by the entry's change count in the
//! same Lua step as the `XADD`) and `<n>` Redis' own sequence within that position (entries with
//! no change, such as AppProjects, take none). So every change has one position, the same on every
//! replica — the sequence number its event carries and its cursor seals.
//!
//! **Fencing.** The owner of a source appends only while its lease still holds the value it
//! acquired (checked in the same Lua step); a replica whose lease lapsed is refused (`FENCED`)
//! and its record dropped. Readers also skip a record whose fencing number is below one already
//! seen for that source. Action answers (a sync's result, on whichever replica ran it) carry no
//! fence and are always applied.
//!
//! **Outages.** Appends that Redis does not take are kept in order and retried (bounded); the
//! reader reconnects and resumes after the last entry it applied.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use redis::AsyncCommands;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use super::status::ClusterStatus;
use super::Shared;
use crate::state::replica::LogApplier;
use crate::state::{ChangeLog, LogBody, State};

/// One entry's record.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct Record {
    /// The source id (`kubernetes/demo`).
    pub s: String,
    /// The replica that appended it.
    pub r: String,
    /// The lease's fencing number; 0 for an action's answer.
    pub f: u64,
    pub b: LogBody,
}

/// A stream id, `<ms>-<seq>`, as two numbers (ours: `<position>-<n>`).
pub(super) type EntryId = (u64, u64);

pub(super) fn parse_id(id: &str) -> Option<EntryId> {
    let (a, b) = id.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

pub(super) fn render_id(id: EntryId) -> String {
    format!("{}-{}", id.0, id.1)
}

/// How far this replica has read and applied the log.
#[derive(Default)]
pub(super) struct Progress {
    /// The last entry applied, `(0, 0)` before any.
    pub last: Mutex<EntryId>,
    /// The highest position applied (every change at or before it is in this replica's state).
    pub position: AtomicU64,
    /// The reader reached the log's end as it was when this replica joined.
    pub caught_up: AtomicBool,
    pub caught_up_notify: Notify,
    /// Highest fencing number seen per source (records below it are a lapsed owner's).
    pub fences: Mutex<HashMap<String, u64>>,
    /// `position`, for those who wait for it to reach a point.
    applied: tokio::sync::watch::Sender<u64>,
}

impl Progress {
    /// Waits until the reader has applied every change up to `position` (bounded).
    pub async fn wait_for(&self, position: u64, within: Duration) -> bool {
        let mut applied = self.applied.subscribe();
        tokio::time::timeout(within, applied.wait_for(|p| *p >= position))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Waits until the reader has caught up with the log as it was at joining.
    pub async fn wait_caught_up(&self) {
        loop {
            let notified = self.caught_up_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.caught_up.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }

    /// Records that every change up to `position` is applied here.
    fn applied_up_to(&self, position: u64) {
        let now = self
            .position
            .fetch_max(position, Ordering::AcqRel)
            .max(position);
        self.applied.send_if_modified(|p| {
            let moved = *p != now;
            *p = now;
            moved
        });
    }
}

/// The writers' way into the log (`state::ChangeLog`): queued, appended in order by one task.
pub(super) struct LogWriter {
    tx: mpsc::UnboundedSender<(String, LogBody)>,
    pub queued: Arc<AtomicUsize>,
}

impl ChangeLog for LogWriter {
    fn append(&self, source: &str, body: LogBody) {
        self.queued.fetch_add(1, Ordering::Relaxed);
        if self.tx.send((source.to_string(), body)).is_err() {
            self.queued.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Records kept while Redis does not take them; beyond this the oldest are dropped (counted,
/// logged) and their sources re-published from the owners' next re-list.
const MAX_PENDING: usize = 50_000;

const APPEND: &str = r#"
if ARGV[1] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[1] then
  return redis.error_reply('FENCED lease lapsed')
end
local cur = tonumber(redis.call('GET', KEYS[2]) or '0')
local floor = tonumber(ARGV[2])
if floor > cur then cur = floor end
local n = tonumber(ARGV[3])
local last = cur + n
redis.call('SET', KEYS[2], last)
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], last .. '-*', 'p', cur + 1, 'n', n, 'd', ARGV[5])
"#;

pub(super) struct Appender {
    pub shared: Shared,
    pub replica: String,
    pub state: Arc<State>,
    pub progress: Arc<Progress>,
    pub status: Arc<ClusterStatus>,
    pub max_entries: usize,
}

impl Appender {
    pub fn channel() -> (
        LogWriter,
        mpsc::UnboundedReceiver<(String, LogBody)>,
        Arc<AtomicUsize>,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        (
            LogWriter {
                tx,
                queued: queued.clone(),
            },
            rx,
            queued,
        )
    }

    pub async fn run(
        self,
        mut rx: mpsc::UnboundedReceiver<(String, LogBody)>,
        queued: Arc<AtomicUsize>,
        token: CancellationToken,
    ) {
        let script = redis::Script::new(APPEND);
        let mut pending: VecDeque<(String, LogBody)> = VecDeque::new();
        let mut backoff = Duration::from_millis(50);
        loop {
            if pending.is_empty() {
                tokio::select! {
                    _ = token.cancelled() => return,
                    item = rx.recv() => match item {
                        Some(item) => pending.push_back(item),
                        None => return,
                    },
                }
            }
            while let Ok(item) = rx.try_recv() {
                pending.push_back(item);
            }
            while pending.len() > MAX_PENDING {
                pending.pop_front();
                queued.fetch_sub(1, Ordering::Relaxed);
                self.status.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    "change log unreachable too long: dropped the oldest unsent record"
                );
            }
            let Some((source, body)) = pending.front() else {
                continue;
            };
            match self.append(&script, source, body).await {
                Ok(()) => {
                    pending.pop_front();
                    queued.fetch_sub(1, Ordering::Relaxed);
                    backoff = Duration::from_millis(50);
                    self.status.set_available(true);
                }
                Err(e) if e.to_string().contains("FENCED") => {
                    tracing::warn!(source = %source, "lease lapsed: this replica's record is refused and dropped");
                    self.status.fenced.fetch_add(1, Ordering::Relaxed);
                    self.state.ownership.set(source, None);
                    pending.pop_front();
                    queued.fetch_sub(1, Ordering::Relaxed);
                }
                Err(e) => {
                    self.status.set_available(false);
                    tracing::warn!(error = %e, pending = pending.len(), "cannot append to the change log; retrying");
                    tokio::select! {
                        _ = token.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    async fn append(
        &self,
        script: &redis::Script,
        source: &str,
        body: &LogBody,
    ) -> redis::RedisResult<()> {
        let fence = self.state.ownership.fence(source).unwrap_or(0);
        // What this replica appends while it owns the source is fenced; an action's answer on a
        // replica that does not own the instance is not (fence 0).
        let owner_record = fence > 0;
        let expected = if owner_record {
            super::lease::lease_value(&self.replica, fence)
        } else {
            String::new()
        };
        let n = match body {
            LogBody::Changes { changes, .. } => changes.len(),
            LogBody::Projects { .. } | LogBody::State(_) => 0,
        };
        let record = Record {
            s: source.to_string(),
            r: self.replica.clone(),
            f: if owner_record { fence } else { 0 },
            b: body.clone(),
        };
        let data = serde_json::to_string(&record).map_err(|e| {
            redis::RedisError::from((
                redis::ErrorKind::Client,
                "cannot encode a log record",
                e.to_string(),
            ))
        })?;
        let floor = self.progress.position.load(Ordering::Acquire);
        let mut conn = self.shared.conn.clone();
        let started = Instant::now();
        let mut invocation = script.prepare_invoke();
        invocation
            .key(self.shared.key("log"))
            .key(self.shared.key("pos"))
            .key(self.shared.key(&format!("lease:{source}")))
            .arg(expected)
            .arg(floor)
            .arg(n)
            .arg(self.max_entries)
            .arg(data);
        let append = invocation.invoke_async::<String>(&mut conn);
        let r = tokio::time::timeout(Duration::from_secs(5), append)
            .await
            .unwrap_or_else(|_| {
                Err(redis::RedisError::from((
                    redis::ErrorKind::Io,
                    "append timed out",
                )))
            });
        self.status.observe_rtt(started.elapsed());
        r.map(|_| ())
    }
}

/// Reads the log from where this replica's snapshots left off, applies and publishes.
pub(super) struct Reader {
    pub shared: Shared,
    /// Its own connection: a blocking read would hold up every other command on a shared one.
    pub conn: redis::aio::ConnectionManager,
    pub replica: String,
    pub applier: LogApplier,
    pub progress: Arc<Progress>,
    pub status: Arc<ClusterStatus>,
    /// Per source: the entry its snapshot covers (entries up to it are already in the state).
    pub covered: HashMap<String, EntryId>,
    /// The log's end when this replica joined (caught up once applied).
    pub join_end: u64,
}

impl Reader {
    pub async fn run(mut self, start: EntryId, token: CancellationToken) {
        *self.progress.last.lock() = start;
        if self.join_end <= self.progress.position.load(Ordering::Acquire) {
            self.mark_caught_up();
        }
        let key = self.shared.key("log");
        let opts = redis::streams::StreamReadOptions::default()
            .block(1000)
            .count(512);
        let mut backoff = Duration::from_millis(50);
        loop {
            if token.is_cancelled() {
                return;
            }
            let after = render_id(*self.progress.last.lock());
            let started = Instant::now();
            let keys = [&key];
            let ids = [&after];
            let reply: redis::RedisResult<Option<redis::streams::StreamReadReply>> = tokio::select! {
                _ = token.cancelled() => return,
                r = tokio::time::timeout(Duration::from_secs(5), self.conn.xread_options(&keys, &ids, &opts)) => r.unwrap_or_else(|_| Err(redis::RedisError::from((redis::ErrorKind::Io, "log read timed out")))),
            };
            match reply {
                Ok(reply) => {
                    self.status.observe_rtt(started.elapsed());
                    self.status.set_available(true);
                    backoff = Duration::from_millis(50);
                    let entries = reply
                        .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect::<Vec<_>>())
                        .unwrap_or_default();
                    if entries.is_empty() {
                        // Nothing new: everything there was has been applied.
                        self.mark_caught_up();
                    }
                    for entry in entries {
                        self.apply(entry);
                    }
                }
                Err(e) => {
                    self.status.set_available(false);
                    tracing::warn!(error = %e, "cannot read the change log; retrying");
                    tokio::select! {
                        _ = token.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    fn mark_caught_up(&self) {
        if !self.progress.caught_up.swap(true, Ordering::AcqRel) {
            tracing::info!(
                position = self.progress.position.load(Ordering::Acquire),
                "caught up with the change log"
            );
            self.progress.caught_up_notify.notify_waiters();
        }
    }

    fn apply(&mut self, entry: redis::streams::StreamId) {
        let Some(id) = parse_id(&entry.id) else {
            return;
        };
        *self.progress.last.lock() = id;
        let first: u64 = entry.get("p").unwrap_or(0);
        let n: u64 = entry.get("n").unwrap_or(0);
        let last_position = if n == 0 {
            first.saturating_sub(1)
        } else {
            first + n - 1
        };
        let data: Option<String> = entry.get("d");
        let record = data.and_then(|d| match serde_json::from_str::<Record>(&d) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::error!(entry = %entry.id, error = %e, "a change log record this replica cannot read (another version?); skipped");
                None
            }
        });
        if let Some(record) = record {
            let stale = {
                let mut fences = self.progress.fences.lock();
                let seen = fences.entry(record.s.clone()).or_insert(0);
                if record.f > *seen {
                    *seen = record.f;
                }
                record.f > 0 && record.f < *seen
            };
            let covered = self.covered.get(&record.s).is_some_and(|c| id <= *c);
            if stale {
                tracing::warn!(source = %record.s, fence = record.f, "skipped a record of a lapsed owner");
            } else {
                let own = record.r == self.replica;
                self.applier.apply(first, record.b, own || covered, true);
            }
        }
        self.progress.applied_up_to(last_position);
        self.status.applied.store(
            self.progress.position.load(Ordering::Acquire),
            Ordering::Relaxed,
        );
        if self.progress.position.load(Ordering::Acquire) >= self.join_end {
            self.mark_caught_up();
        }
    }
}

/// The log's current end (the position counter).
pub(super) async fn end_position(shared: &Shared) -> redis::RedisResult<u64> {
    let mut conn = shared.conn.clone();
    let v: Option<u64> = conn.get(shared.key("pos")).await?;
    Ok(v.unwrap_or(0))
}
