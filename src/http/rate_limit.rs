//! The per-caller rate limit (`limits.requests_per_minute`): a token bucket per principal
//! (its token subject; all anonymous callers share one), refilled continuously, so a caller may
//! burst up to a minute's budget and then runs at the configured rate. Buckets of idle callers
//! expire (moka), so memory stays bounded by the active callers.
//!
//! Replicas (`cluster:`) share one budget per caller on Redis: each request is one atomic
//! step of GCRA (the generic cell rate algorithm, the same burst and rate as the bucket) in a
//! Lua script keyed `<prefix>:rate:<caller>`, timed by Redis' own clock. When Redis fails or
//! is slow, that request is counted by this replica's bucket instead (`fallbacks`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::cluster::Shared;

/// How long a request waits for Redis before its own replica's bucket decides.
const SHARED_STEP: Duration = Duration::from_millis(250);

/// One GCRA step. KEYS[1]: the caller's theoretical arrival time (µs, Redis clock).
/// ARGV[1]: µs between requests at the sustained rate; ARGV[2]: the burst (a minute's budget).
/// Returns `{1, 0}` when admitted, `{0, µs until the next one would be}` when not.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - interval * burst
if now < allow_at then
  return {0, math.ceil(allow_at - now)}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, 0}
";

pub struct RateLimiter {
    per_minute: f64,
    /// Tokens left and when they were counted; a `parking_lot` lock per caller, held for a
    /// few arithmetic steps, never across an await.
    buckets: moka::sync::Cache<String, Arc<Mutex<(f64, Instant)>>>,
    /// The budget shared by replicas; `None`: this process alone.
    shared: Option<(Shared, redis::Script)>,
    /// Requests decided by the local bucket because Redis failed (`/metrics`).
    fallbacks: AtomicU64,
}

impl RateLimiter {
    /// `None` when unlimited (0).
    pub fn new(per_minute: u32) -> Option<Self> {
        (per_minute > 0).then(|| Self {
            per_minute: f64::from(per_minute),
            buckets: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(120))
                .build(),
            shared: None,
            fallbacks: AtomicU64::new(0),
        })
    }

    /// Shares the budget with the other replicas through Redis.
    pub fn with_shared(mut self, shared: Option<Shared>) -> Self {
        self.shared = shared.map(|s| (s, redis::Script::new(GCRA)));
        self
    }

    /// Requests this replica decided alone because Redis failed.
    pub fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    /// [`check`](Self::check) against the replicas' shared budget, or this replica's own
    /// when there is none or Redis does not answer in time.
    pub async fn admit(&self, caller: &str) -> Result<(), Duration> {
        let Some((shared, script)) = &self.shared else {
            return self.check(caller);
        };
        let key = shared.key(&format!("rate:{caller}"));
        let interval_us = (60_000_000.0 / self.per_minute).round() as u64;
        let burst = self.per_minute as u64;
        let step = shared
            .attempt("rate limit", SHARED_STEP, |mut conn| async move {
                let mut call = script.key(key);
                call.arg(interval_us).arg(burst);
                call.invoke_async::<(i64, i64)>(&mut conn).await
            })
            .await;
        match step {
            Some((1, _)) => Ok(()),
            Some((_, wait_us)) => Err(Duration::from_micros(wait_us.max(1) as u64)),
            None => {
                self.fallbacks.fetch_add(1, Ordering::Relaxed);
                self.check(caller)
            }
        }
    }

    /// Takes one token from `caller`'s bucket, or says how long until one is there.
    pub fn check(&self, caller: &str) -> Result<(), Duration> {
        let bucket = self.buckets.get_with(caller.to_string(), || {
            Arc::new(Mutex::new((self.per_minute, Instant::now())))
        });
        let mut b = bucket.lock();
        let now = Instant::now();
        let per_sec = self.per_minute / 60.0;
        b.0 = (b.0 + now.duration_since(b.1).as_secs_f64() * per_sec).min(self.per_minute);
        b.1 = now;
        if b.0 >= 1.0 {
            b.0 -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.0) / per_sec))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_gets_its_budget_then_waits_and_others_are_not_affected() {
        let l = RateLimiter::new(3).expect("limited");
        for _ in 0..3 {
            assert!(l.check("carol").is_ok());
        }
        let wait = l.check("carol").unwrap_err();
        assert!(
            wait > Duration::from_secs(15) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(l.check("alice").is_ok());
        assert!(RateLimiter::new(0).is_none());
    }
}
