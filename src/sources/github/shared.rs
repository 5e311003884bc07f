//! GitHub's conditional-request cache shared by replicas (`cluster:`) on Redis.
//!
//! - `<prefix>:gh:<path>`: the raw upstream answer for a path (ETag, `Link: next`, body bytes,
//!   when it was fetched), kept a little longer than its kind's TTL so that a replica past
//!   the TTL can still revalidate with the ETag (a 304 is free) or serve it stale. A webhook
//!   delivery replaces what it drops with a *tombstone* (a record without a value, stamped
//!   with the delivery's time), so that a replica still holding the old value sees it is gone.
//! - `<prefix>:gh-index:<owner>/<name>`: the paths held for a repository (what a delivery
//!   about it may drop).
//! - `<prefix>:gh-lock:<path>`: one replica refreshes a path at a time (`SET NX`, a few
//!   seconds); the others wait briefly for its copy.
//! - `<prefix>:gh-budget`: GitHub's rate-limit headers as the last replica saw them.
//!
//! Every step is bounded ([`STEP`]); a failed one means the replica's own cache, as without
//! `cluster:`.

use std::time::Duration;

use bytes::Bytes;

use crate::cluster::Shared;

/// How long a step waits for Redis (a GitHub request takes longer; after a failure Redis is
/// left alone for a moment, so this is not paid on every read while it is away).
pub(super) const STEP: Duration = Duration::from_millis(750);
/// How long a refresh lock lasts (released as soon as the copy is written).
const LOCK: Duration = Duration::from_secs(3);
/// How long a tombstone and a repository's index live (longer than any TTL).
const TOMBSTONE_SECS: u64 = 24 * 3600;

/// One path's answer as replicas share it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Copy {
    /// `None`: a 404 (`tombstone: false`) or dropped by a delivery (`tombstone: true`).
    pub body: Option<Bytes>,
    pub etag: Option<String>,
    pub next: Option<String>,
    /// Unix milliseconds when it was fetched (or dropped).
    pub fetched_ms: i64,
    /// Unix milliseconds of `observed_at`.
    pub observed_ms: i64,
    pub tombstone: bool,
}

/// The budget as some replica last saw it (`x-ratelimit-*`).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Budget {
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    pub reset: Option<i64>,
}

pub(super) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// `v1 <fetched> <observed> <b|n|t> <etag> <next>` (tab-separated), a newline, the body.
fn encode(c: &Copy) -> Vec<u8> {
    let kind = match (&c.body, c.tombstone) {
        (_, true) => "t",
        (Some(_), false) => "b",
        (None, false) => "n",
    };
    let clean = |s: &Option<String>| s.as_deref().unwrap_or("").replace(['\t', '\n'], " ");
    let mut out = format!(
        "v1\t{}\t{}\t{kind}\t{}\t{}\n",
        c.fetched_ms,
        c.observed_ms,
        clean(&c.etag),
        clean(&c.next)
    )
    .into_bytes();
    if let (Some(b), false) = (&c.body, c.tombstone) {
        out.extend_from_slice(b);
    }
    out
}

fn decode(raw: &[u8]) -> Option<Copy> {
    let nl = raw.iter().position(|b| *b == b'\n')?;
    let head = std::str::from_utf8(&raw[..nl]).ok()?;
    let f: Vec<&str> = head.split('\t').collect();
    let [v, fetched, observed, kind, etag, next] = f.as_slice() else {
        return None;
    };
    if *v != "v1" {
        return None;
    }
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
    Some(Copy {
        body: (*kind == "b").then(|| Bytes::copy_from_slice(&raw[nl + 1..])),
        etag: opt(etag),
        next: opt(next),
        fetched_ms: fetched.parse().ok()?,
        observed_ms: observed.parse().ok()?,
        tombstone: *kind == "t",
    })
}

/// `owner/name` of a path (`/repos/o/r/...`) or a `Link` URL (`https://host/repos/o/r/...`).
pub(super) fn slug_of(path: &str) -> Option<String> {
    let rest = &path[path.find("/repos/")? + "/repos/".len()..];
    let mut parts = rest.split(['/', '?']);
    let (owner, name) = (parts.next()?, parts.next()?);
    (!owner.is_empty() && !name.is_empty()).then(|| format!("{owner}/{name}"))
}

fn value_key(shared: &Shared, path: &str) -> String {
    shared.key(&format!("gh:{path}"))
}

/// `limit`, `remaining`, `reset` as stored.
type RawBudget = (Option<u64>, Option<u64>, Option<i64>);

/// The shared copy of `path` (`Some(None)`: Redis holds none) and the shared budget; `None`
/// when Redis failed.
pub(super) async fn load(shared: &Shared, path: &str) -> Option<(Option<Copy>, Budget)> {
    let (key, budget) = (value_key(shared, path), shared.key("gh-budget"));
    let (raw, b): (Option<Vec<u8>>, RawBudget) = shared
        .attempt("github cache read", STEP, |mut conn| async move {
            redis::pipe()
                .get(key)
                .hmget(budget, &["limit", "remaining", "reset"])
                .query_async(&mut conn)
                .await
        })
        .await?;
    Some((
        raw.as_deref().and_then(decode),
        Budget {
            limit: b.0,
            remaining: b.1,
            reset: b.2,
        },
    ))
}

/// Writes `copy` for `path` (kept `expiry`), indexes it under its repository, and records
/// `budget`. False when Redis failed.
pub(super) async fn store(
    shared: &Shared,
    path: &str,
    copy: Option<&Copy>,
    expiry: Duration,
    budget: Budget,
) -> bool {
    let mut pipe = redis::pipe();
    if let Some(c) = copy {
        pipe.cmd("SET")
            .arg(value_key(shared, path))
            .arg(encode(c))
            .arg("PX")
            .arg(expiry.as_millis().max(1) as u64)
            .ignore();
        if let Some(slug) = slug_of(path) {
            let index = shared.key(&format!("gh-index:{slug}"));
            pipe.sadd(&index, path)
                .ignore()
                .expire(&index, TOMBSTONE_SECS as i64)
                .ignore();
        }
    }
    let b = shared.key("gh-budget");
    let mut fields = Vec::new();
    if let Some(v) = budget.limit {
        fields.push(("limit", v.to_string()));
    }
    if let Some(v) = budget.remaining {
        fields.push(("remaining", v.to_string()));
    }
    if let Some(v) = budget.reset {
        fields.push(("reset", v.to_string()));
    }
    if !fields.is_empty() {
        pipe.hset_multiple(&b, &fields)
            .ignore()
            .expire(&b, 2 * 3600)
            .ignore();
    }
    shared
        .attempt("github cache write", STEP, |mut conn| async move {
            pipe.query_async::<()>(&mut conn).await
        })
        .await
        .is_some()
}

/// Takes the refresh lock of `path`: `Some(true)` taken, `Some(false)` another replica holds
/// it, `None` Redis failed.
pub(super) async fn lock(shared: &Shared, path: &str) -> Option<bool> {
    let key = shared.key(&format!("gh-lock:{path}"));
    shared
        .attempt("github refresh lock", STEP, |mut conn| async move {
            redis::cmd("SET")
                .arg(key)
                .arg(1)
                .arg("NX")
                .arg("PX")
                .arg(LOCK.as_millis() as u64)
                .query_async::<Option<String>>(&mut conn)
                .await
        })
        .await
        .map(|r| r.is_some())
}

pub(super) async fn unlock(shared: &Shared, path: &str) {
    let key = shared.key(&format!("gh-lock:{path}"));
    shared
        .attempt("github refresh unlock", STEP, |mut conn| async move {
            redis::cmd("DEL")
                .arg(key)
                .query_async::<()>(&mut conn)
                .await
        })
        .await;
}

/// How long a replica waits for another's refresh of the same path before asking itself.
pub(super) const WAIT_FOR_OTHER: Duration = Duration::from_secs(2);

/// A delivery about `slug` dropped the paths `drop` selects: each shared copy becomes a
/// tombstone stamped now (other replicas drop their own copies when they next look). False
/// when Redis failed.
pub(super) async fn drop_paths(shared: &Shared, slug: &str, drop: impl Fn(&str) -> bool) -> bool {
    let index = shared.key(&format!("gh-index:{slug}"));
    let Some(paths) = shared
        .attempt("github index read", STEP, |mut conn| async move {
            redis::cmd("SMEMBERS")
                .arg(index)
                .query_async::<Vec<String>>(&mut conn)
                .await
        })
        .await
    else {
        return false;
    };
    let now = now_ms();
    let mut pipe = redis::pipe();
    let mut any = false;
    for p in paths.iter().filter(|p| drop(p)) {
        any = true;
        let tomb = Copy {
            body: None,
            etag: None,
            next: None,
            fetched_ms: now,
            observed_ms: now,
            tombstone: true,
        };
        pipe.cmd("SET")
            .arg(value_key(shared, p))
            .arg(encode(&tomb))
            .arg("EX")
            .arg(TOMBSTONE_SECS)
            .ignore();
    }
    if !any {
        return true;
    }
    shared
        .attempt("github invalidate", STEP, |mut conn| async move {
            pipe.query_async::<()>(&mut conn).await
        })
        .await
        .is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_survive_the_round_trip_and_slugs_are_found() {
        let c = Copy {
            body: Some(Bytes::from_static(b"{\"a\":\"x\ny\"}")),
            etag: Some("W/\"abc\"".into()),
            next: Some("https://api.github.com/repos/o/r/pulls?page=2".into()),
            fetched_ms: 1_700_000_000_123,
            observed_ms: 1_700_000_000_100,
            tombstone: false,
        };
        assert_eq!(decode(&encode(&c)), Some(c.clone()));
        let n = Copy {
            body: None,
            etag: None,
            next: None,
            tombstone: false,
            ..c.clone()
        };
        assert_eq!(decode(&encode(&n)), Some(n));
        let t = Copy {
            body: None,
            tombstone: true,
            ..c
        };
        assert_eq!(decode(&encode(&t)), Some(t));
        assert_eq!(decode(b"garbage"), None);
        assert_eq!(slug_of("/repos/o/r").as_deref(), Some("o/r"));
        assert_eq!(
            slug_of("/repos/o/r/pulls?state=open").as_deref(),
            Some("o/r")
        );
        assert_eq!(
            slug_of("http://127.0.0.1:9/repos/o/r?x=1").as_deref(),
            Some("o/r")
        );
        assert_eq!(slug_of("/rate_limit"), None);
    }
}
