//! Membership and one owner per upstream instance.
//!
//! Every replica heartbeats into a sorted set (`members`, scored by when its entry expires).
//! Each source id is owned by the live member that ranks it highest under rendezvous hashing
//! (SHA-256 of source and replica) — ownership spreads over the replicas and moves as little
//! as possible when one joins or leaves, like ArgoCD's controller sharding by cluster. The owner
//! holds `lease:<source>` (`<replica>|<fence>`, expiring after `lease_secs`), renewed every third
//! of it; the fencing number comes from a counter that only grows. A replica that is no longer
//! the best choice hands over: it stops ingesting, lets its queued records reach the log, then
//! deletes its lease; the new owner waits until it has applied the log up to where the lease
//! changed hands, then starts its source — which lists its upstream afresh and publishes only
//! what differs from the state the log already gave every replica.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::changelog::Progress;
use super::status::ClusterStatus;
use super::Shared;
use crate::state::State;

pub(super) fn lease_value(replica: &str, fence: u64) -> String {
    format!("{replica}|{fence}")
}

/// The member that ranks `source` highest (rendezvous hashing).
pub(super) fn owner_of<'a>(source: &str, members: &'a [String]) -> Option<&'a str> {
    members
        .iter()
        .max_by_key(|m| {
            let d = Sha256::digest(format!("{source}\n{m}").as_bytes());
            u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
        })
        .map(String::as_str)
}

const ACQUIRE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local f = redis.call('INCR', KEYS[2])
local floor = tonumber(ARGV[3])
if f <= floor then
  f = floor + 1
  redis.call('SET', KEYS[2], f)
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. f, 'PX', ARGV[2])
local clean = redis.call('GET', KEYS[4])
redis.call('DEL', KEYS[4])
local handed = 0
if clean or f == 1 then handed = 1 end
return {f, tonumber(redis.call('GET', KEYS[3]) or '0'), handed}
"#;

const RENEW: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"#;

const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[1])
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

fn script(
    source: &'static str,
    cell: &'static std::sync::OnceLock<redis::Script>,
) -> &'static redis::Script {
    cell.get_or_init(|| redis::Script::new(source))
}
static ACQUIRE_SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
static RENEW_SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
static RELEASE_SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();

pub(super) struct LeaseManager {
    pub shared: Shared,
    pub replica: String,
    pub state: Arc<State>,
    pub progress: Arc<Progress>,
    pub status: Arc<ClusterStatus>,
    pub lease: Duration,
    /// Records queued for the log (a handover waits for them).
    pub queued: Arc<AtomicUsize>,
}

impl LeaseManager {
    pub async fn run(self, token: CancellationToken) {
        // Own nothing before the log has been applied: a new owner's first list is compared
        // with the state every replica got from the log.
        tokio::select! {
            _ = token.cancelled() => return,
            _ = self.progress.wait_caught_up() => {}
        }
        let tick = self.lease / 3;
        let mut last_ok = Instant::now();
        loop {
            // Bounded as a whole: a round that hangs (Redis half away) must not keep this
            // replica ingesting on a lease it can no longer renew.
            let round = tokio::time::timeout(self.lease / 2, self.round())
                .await
                .unwrap_or_else(|_| {
                    Err(redis::RedisError::from((
                        redis::ErrorKind::Io,
                        "lease round timed out",
                    )))
                });
            match round {
                Ok(()) => last_ok = Instant::now(),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot renew leases; Redis unreachable");
                    if last_ok.elapsed() >= self.lease {
                        // The leases have lapsed in Redis by now: another replica may own
                        // these sources. Stop ingesting them.
                        self.close_all();
                    }
                }
            }
            tokio::select! {
                _ = token.cancelled() => break,
                _ = tokio::time::sleep(tick) => {}
            }
        }
        self.leave().await;
    }

    fn close_all(&self) {
        for id in self.state.ownership.ids() {
            self.state.ownership.set(&id, None);
        }
        self.status.owned.lock().clear();
    }

    fn lease_ms(&self) -> u64 {
        self.lease.as_millis() as u64
    }

    async fn round(&self) -> redis::RedisResult<()> {
        let mut conn = self.shared.conn.clone();
        let members_key = self.shared.key("members");
        let now = chrono::Utc::now().timestamp_millis();
        let started = Instant::now();
        let (_, _, members): ((), (), Vec<String>) = redis::pipe()
            .zadd(&members_key, &self.replica, now + self.lease_ms() as i64)
            .zrembyscore(&members_key, "-inf", now)
            .zrangebyscore(&members_key, now, "+inf")
            .query_async(&mut conn)
            .await?;
        self.status.observe_rtt(started.elapsed());
        *self.status.members.lock() = members.clone();
        let mut owned = Vec::new();
        for id in self.state.ownership.ids() {
            let best = owner_of(&id, &members) == Some(self.replica.as_str());
            let lease_key = self.shared.key(&format!("lease:{id}"));
            match self.state.ownership.fence(&id) {
                Some(fence) => {
                    let mine = lease_value(&self.replica, fence);
                    if best {
                        let renewed: i64 = script(RENEW, &RENEW_SCRIPT)
                            .key(&lease_key)
                            .arg(&mine)
                            .arg(self.lease_ms())
                            .invoke_async(&mut conn)
                            .await?;
                        if renewed == 1 {
                            owned.push(id);
                        } else {
                            tracing::warn!(source = %id, "lease lost; stop ingesting");
                            self.state.ownership.set(&id, None);
                        }
                    } else {
                        tracing::info!(source = %id, "handing the source over to another replica");
                        self.state.ownership.set(&id, None);
                        self.drain().await;
                        let _: i64 = script(RELEASE, &RELEASE_SCRIPT)
                            .key(&lease_key)
                            .key(self.shared.key(&format!("clean:{id}")))
                            .arg(&mine)
                            .invoke_async(&mut conn)
                            .await?;
                    }
                }
                None if best => {
                    let seen = self.progress.fences.lock().get(&id).copied().unwrap_or(0);
                    let got: Option<(u64, u64, u8)> = script(ACQUIRE, &ACQUIRE_SCRIPT)
                        .key(&lease_key)
                        .key(self.shared.key(&format!("fence:{id}")))
                        .key(self.shared.key("pos"))
                        .key(self.shared.key(&format!("clean:{id}")))
                        .arg(&self.replica)
                        .arg(self.lease_ms())
                        .arg(seen)
                        .invoke_async(&mut conn)
                        .await?;
                    if let Some((fence, end, handed_over)) = got {
                        // Apply what the previous owner appended before listing afresh.
                        if !self.progress.wait_for(end, self.lease).await {
                            tracing::warn!(source = %id, "log not applied up to the handover in time; starting anyway");
                        }
                        if handed_over == 0 {
                            // The previous owner's lease lapsed (it died or lost Redis): what
                            // changed upstream meanwhile was not observed one change at a time.
                            // Subscribers are told so, before this owner's list shows the
                            // differences.
                            tracing::warn!(source = %id, "taking over after a lapsed lease: subscribers resync");
                            if let Some(log) = self.state.change_log.get() {
                                log.append(
                                    &id,
                                    crate::state::LogBody::Changes {
                                        changes: vec![crate::events::Change::Gap {
                                            source: id.clone(),
                                        }],
                                        github_values: false,
                                    },
                                );
                                if let Some(s) = self.export(&id) {
                                    log.append(&id, crate::state::LogBody::State(s));
                                }
                            }
                        }
                        tracing::info!(source = %id, fence, "lease acquired; ingesting");
                        self.state.ownership.set(&id, Some(fence));
                        owned.push(id);
                    }
                }
                None => {}
            }
        }
        *self.status.owned.lock() = owned;
        Ok(())
    }

    /// This replica's whole state of one source.
    fn export(&self, id: &str) -> Option<crate::state::replica::SourceState> {
        let h = self
            .state
            .sources
            .all()
            .into_iter()
            .find(|h| h.id() == id)?;
        crate::state::replica::LogApplier::new(self.state.clone()).export(h.kind, &h.name)
    }

    /// Waits (bounded) until this replica's queued records have reached the log.
    async fn drain(&self) {
        let deadline = Instant::now() + self.lease / 2;
        while self.queued.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Shutdown: hand every source over at once instead of letting the leases lapse.
    async fn leave(&self) {
        let owned: Vec<(String, u64)> = self
            .state
            .ownership
            .ids()
            .into_iter()
            .filter_map(|id| self.state.ownership.fence(&id).map(|f| (id, f)))
            .collect();
        self.close_all();
        self.drain().await;
        let mut conn = self.shared.conn.clone();
        for (id, fence) in owned {
            let _: redis::RedisResult<i64> = script(RELEASE, &RELEASE_SCRIPT)
                .key(self.shared.key(&format!("lease:{id}")))
                .key(self.shared.key(&format!("clean:{id}")))
                .arg(lease_value(&self.replica, fence))
                .invoke_async(&mut conn)
                .await;
        }
        let _: redis::RedisResult<i64> = conn.zrem(self.shared.key("members"), &self.replica).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ownership_spreads_and_moves_only_what_the_leaving_replica_owned() {
        let three: Vec<String> = ["r1", "r2", "r3"].map(String::from).to_vec();
        let sources: Vec<String> = (0..60).map(|i| format!("kubernetes/c{i}")).collect();
        let before: Vec<&str> = sources
            .iter()
            .map(|s| owner_of(s, &three).unwrap())
            .collect();
        for r in &three {
            let n = before.iter().filter(|o| *o == r).count();
            assert!((10..=30).contains(&n), "{r} owns {n} of 60");
        }
        let two: Vec<String> = ["r1", "r3"].map(String::from).to_vec();
        for (s, b) in sources.iter().zip(&before) {
            let after = owner_of(s, &two).unwrap();
            if *b != "r2" {
                assert_eq!(after, *b, "{s} moved although its owner stayed");
            }
        }
    }
}
