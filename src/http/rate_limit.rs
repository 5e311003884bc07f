//! The per-caller rate limit (`limits.requests_per_minute`): a token bucket per principal
//! (its token subject; all anonymous callers share one), refilled continuously, so a caller may
//! burst up to a minute's budget and then runs at the configured rate. Buckets of idle callers
//! expire (moka), so memory stays bounded by the active callers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

pub struct RateLimiter {
    per_minute: f64,
    /// Tokens left and when they were counted; a `parking_lot` lock per caller, held for a
    /// few arithmetic steps, never across an await.
    buckets: moka::sync::Cache<String, Arc<Mutex<(f64, Instant)>>>,
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
        })
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
