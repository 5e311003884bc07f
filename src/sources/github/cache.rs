//! TTL caches over the GitHub client with conditional refresh, merged concurrent refreshes
//! and stale-if-error (moka's `try_get_with` never stores errors, so stale-if-error is ours).
//!
//! Replicas (`cluster:`) share the raw answers on Redis (`shared.rs`): what this replica holds
//! is served for at most [`HORIZON`] before it looks at the shared copy again (a newer copy
//! replaces it, a delivery's tombstone drops it), a value it does not hold fresh is taken from
//! the shared copy when that is within its TTL, and otherwise one replica revalidates it (with
//! the shared ETag) while the others wait briefly for its copy. Redis failing means exactly
//! the behaviour without `cluster:`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;

use super::client::{GetOutcome, GitHubClient};
use super::shared::{self as gh_shared, Copy};
use super::wire::{self, WireCommit, WirePull, WireRepo, WireRun, WireRuns};
use crate::cluster::Shared;
use crate::domain::github::{Commit, PullRequest, Repository, WorkflowRun};
use crate::events::{RepositoryCause, RepositoryChange};
use crate::sources::SourceError;
use crate::state::SourceHealth;

/// An answer built from a cached value may be kept (by the response cache) only as long as the
/// value stays fresh here. Commits by SHA never change and need no such note.
fn keep_for(remaining: Duration) {
    crate::state::reads::note(crate::state::reads::Section::GitHub);
    crate::state::reads::note_max_age(remaining);
}

/// How long each kind is served before a (conditional) refresh.
#[derive(Debug, Clone)]
pub struct GitHubTtls {
    pub repository: Duration,
    /// The head of the default branch.
    pub latest_commit: Duration,
    pub pull_requests: Duration,
    pub workflow_runs: Duration,
}

impl Default for GitHubTtls {
    fn default() -> Self {
        Self {
            repository: Duration::from_secs(300),
            latest_commit: Duration::from_secs(60),
            pull_requests: Duration::from_secs(60),
            workflow_runs: Duration::from_secs(30),
        }
    }
}

/// A value with its freshness. `value: None` means GitHub says 404.
/// What a webhook delivery about a repository drops: `(slug, "/repos/{slug}", path prefixes,
/// whether the repository itself)`; `None` for a delivery without a repository or an event
/// that changes nothing held.
fn webhook_scope(
    event: &str,
    payload: &serde_json::Value,
) -> Option<(String, String, Vec<String>, bool)> {
    let slug = payload
        .pointer("/repository/full_name")
        .and_then(|v| v.as_str())?;
    let repo = format!("/repos/{slug}");
    let prefixes: Vec<String> = match event {
        "push" => vec![repo.clone() + "/commits"],
        "pull_request" => vec![repo.clone() + "/pulls"],
        "workflow_run" | "workflow_job" | "check_suite" => {
            vec![repo.clone() + "/actions/runs"]
        }
        "repository" | "issues" => vec![repo.clone() + "/"],
        _ => vec![],
    };
    let exact = matches!(event, "push" | "repository" | "issues");
    Some((slug.to_string(), repo, prefixes, exact))
}

#[derive(Debug, Clone)]
pub struct Fetched<T> {
    pub value: Option<T>,
    /// Served from cache after a failed or refused refresh.
    pub stale: bool,
    /// Why the refresh failed, when `stale`.
    pub error: Option<SourceError>,
    pub observed_at: DateTime<Utc>,
    /// `Link: rel="next"` of a list page.
    pub next_page: Option<String>,
}

struct Entry {
    body: Option<Bytes>,
    etag: Option<String>,
    next: Option<String>,
    fetched: Instant,
    observed_at: DateTime<Utc>,
    /// When this replica last fetched it or saw that the shared copy is not newer
    /// (`cluster:` only).
    checked: Mutex<Instant>,
}

/// With `cluster:`, how long a value is served from this replica's memory before the shared
/// copy is looked at again (what another replica's webhook delivery changed shows within it).
pub const HORIZON: Duration = Duration::from_secs(1);

impl Entry {
    fn new(
        body: Option<Bytes>,
        etag: Option<String>,
        next: Option<String>,
        fetched: Instant,
        observed_at: DateTime<Utc>,
    ) -> Self {
        Self {
            body,
            etag,
            next,
            fetched,
            observed_at,
            checked: Mutex::new(Instant::now()),
        }
    }

    fn fetched_ms(&self) -> i64 {
        gh_shared::now_ms() - self.fetched.elapsed().as_millis() as i64
    }

    fn to_copy(&self) -> Copy {
        Copy {
            body: self.body.clone(),
            etag: self.etag.clone(),
            next: self.next.clone(),
            fetched_ms: self.fetched_ms(),
            observed_ms: self.observed_at.timestamp_millis(),
            tombstone: false,
        }
    }

    /// `None` when it was fetched before this machine's monotonic clock began (too old to
    /// matter).
    fn from_copy(c: &Copy) -> Option<Self> {
        let age = Duration::from_millis((gh_shared::now_ms() - c.fetched_ms).max(0) as u64);
        Some(Self::new(
            c.body.clone(),
            c.etag.clone(),
            c.next.clone(),
            Instant::now().checked_sub(age)?,
            DateTime::from_timestamp_millis(c.observed_ms).unwrap_or_else(Utc::now),
        ))
    }
}

pub struct GitHubSource {
    client: GitHubClient,
    ttls: GitHubTtls,
    health: Arc<SourceHealth>,
    entries: Mutex<HashMap<String, Arc<Entry>>>,
    /// One refresh per key at a time; others wait for it and read its result.
    refreshing: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Commits by SHA never change: kept for good, bounded.
    commits: moka::sync::Cache<String, Arc<Commit>>,
    /// Batched passes made by the graph's loaders (for tests and metrics).
    batches: std::sync::atomic::AtomicU64,
    /// Items per list page (`per_page`, at most 100).
    page_size: usize,
    /// The webhook secret; `None`: deliveries are refused.
    webhook_secret: Option<secrecy::SecretString>,
    /// Where a delivery's invalidation is counted (`State::github_cache`), so that kept
    /// answers that showed GitHub values go too.
    state: Option<Arc<crate::state::State>>,
    /// The answers and budget shared by replicas (`cluster:`).
    shared: Option<Shared>,
    /// Shared steps that failed (Redis away): this replica answered from its own cache.
    shared_fallbacks: std::sync::atomic::AtomicU64,
}

const MAX_ENTRIES: usize = 50_000;

impl GitHubSource {
    pub fn new(client: GitHubClient, ttls: GitHubTtls, health: Arc<SourceHealth>) -> Self {
        Self {
            client,
            ttls,
            health,
            entries: Default::default(),
            refreshing: Default::default(),
            commits: moka::sync::Cache::new(10_000),
            batches: Default::default(),
            page_size: 100,
            webhook_secret: None,
            state: None,
            shared: None,
            shared_fallbacks: Default::default(),
        }
    }

    /// Shares the answers and the budget with the other replicas through Redis.
    pub fn with_shared(mut self, shared: Option<Shared>) -> Self {
        self.shared = shared;
        self
    }

    /// The replicas' shared Redis, when there is one (webhook deliveries are applied once).
    pub fn shared(&self) -> Option<&Shared> {
        self.shared.as_ref()
    }

    /// Shared steps that failed, answered from this replica's own cache (`/metrics`).
    pub fn shared_fallbacks(&self) -> u64 {
        self.shared_fallbacks
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn fell_back(&self) {
        self.shared_fallbacks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// An answer built from a value may be kept that long — with `cluster:` no longer than
    /// the horizon, after which another replica's change may show.
    fn keep(&self, remaining: Duration) {
        keep_for(match &self.shared {
            Some(_) => remaining.min(HORIZON),
            None => remaining,
        });
    }

    /// Whether a held value may be served without looking at the shared copy: always without
    /// `cluster:` or while Redis is away; else within the horizon of the last look.
    fn confirmed(&self, e: &Entry) -> bool {
        match &self.shared {
            None => true,
            Some(s) => s.is_down() || e.checked.lock().elapsed() < HORIZON,
        }
    }

    fn insert_local(&self, path: &str, entry: Arc<Entry>) {
        let mut entries = self.entries.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(path.to_string(), entry);
    }

    /// Looks at the shared copy of `path`: a newer one replaces `cached` (and what is held
    /// here), a newer tombstone drops what is held here (`cached` stays for its ETag and for
    /// stale-if-error); an older or missing one confirms what is held. Takes the shared
    /// budget. `Some(true)` when `cached` may now be served as fresh; `None` when Redis failed.
    async fn look_shared(
        &self,
        shared: &Shared,
        path: &str,
        cached: &mut Option<Arc<Entry>>,
        ttl: Duration,
        force: bool,
    ) -> Option<bool> {
        let Some((copy, budget)) = gh_shared::load(shared, path).await else {
            self.fell_back();
            return None;
        };
        self.client
            .merge_budget(budget.limit, budget.remaining, budget.reset);
        let b = self.client.budget();
        self.health.set_rate_limit(b.limit, b.remaining, b.reset);
        let held_ms = cached.as_ref().map(|e| e.fetched_ms());
        match copy {
            Some(c) if held_ms.is_none_or(|h| c.fetched_ms > h) => {
                if c.tombstone {
                    self.entries.lock().remove(path);
                    return Some(false);
                }
                if let Some(e) = Entry::from_copy(&c) {
                    let e = Arc::new(e);
                    self.insert_local(path, e.clone());
                    *cached = Some(e);
                }
            }
            _ => {
                if let Some(e) = cached.as_ref() {
                    *e.checked.lock() = Instant::now();
                }
            }
        }
        Some(cached.as_ref().is_some_and(|e| {
            e.fetched.elapsed() < ttl && (!force || e.fetched.elapsed() < Duration::from_millis(50))
        }))
    }

    /// How long Redis keeps a shared answer: past its TTL, so that an expired one can still be
    /// revalidated with its ETag or served stale.
    fn shared_expiry(ttl: Duration) -> Duration {
        (ttl * 2 + Duration::from_secs(60)).min(Duration::from_secs(24 * 3600))
    }

    fn shared_budget(&self) -> gh_shared::Budget {
        let b = self.client.budget();
        gh_shared::Budget {
            limit: b.limit,
            remaining: b.remaining,
            reset: b.reset,
        }
    }

    /// [`apply_webhook`](Self::apply_webhook), and with `cluster:` the same on the shared
    /// copies: what it drops becomes a tombstone, what a push stores is shared as fresh.
    pub async fn apply_webhook_shared(&self, event: &str, payload: &serde_json::Value) -> usize {
        let touched = self.apply_webhook(event, payload);
        let Some(shared) = &self.shared else {
            return touched;
        };
        let Some((slug, repo, prefixes, exact)) = webhook_scope(event, payload) else {
            return touched;
        };
        let dropped = gh_shared::drop_paths(shared, &slug, |path| {
            (exact && path == repo) || prefixes.iter().any(|p| path.starts_with(p.as_str()))
        })
        .await;
        let mut ok = dropped;
        if event == "push" {
            // Exactly what `apply_webhook` stored from the payload.
            let mut paths = Vec::new();
            if wire::push_repository_body(payload).is_some() {
                paths.push(repo.clone());
            }
            if let Some((branch, _)) = wire::push_head_body(payload) {
                paths.push(format!("{repo}/commits/{branch}"));
            }
            let fresh: Vec<(String, Arc<Entry>)> = {
                let entries = self.entries.lock();
                paths
                    .into_iter()
                    .filter_map(|p| entries.get(&p).cloned().map(|e| (p, e)))
                    .collect()
            };
            for (path, e) in fresh {
                let expiry = Self::shared_expiry(self.ttls.repository.max(self.ttls.latest_commit));
                ok &= gh_shared::store(
                    shared,
                    &path,
                    Some(&e.to_copy()),
                    expiry,
                    gh_shared::Budget::default(),
                )
                .await;
            }
        }
        if !ok {
            tracing::warn!(
                event,
                "a webhook delivery was applied here but not on the shared cache (Redis failed)"
            );
        }
        touched
    }

    /// Items per list page; lists longer than this follow `Link: rel="next"`.
    pub fn with_webhooks(
        mut self,
        secret: Option<secrecy::SecretString>,
        state: Arc<crate::state::State>,
    ) -> Self {
        self.webhook_secret = secret;
        self.state = Some(state);
        self
    }

    pub fn webhook_secret(&self) -> Option<&secrecy::SecretString> {
        self.webhook_secret.as_ref()
    }

    /// Applies a verified webhook delivery. A push stores the repository and the branch's new
    /// head from the payload (no request to GitHub) and drops that repository's commit lists;
    /// a pull request drops its pull request lists and the pull request; a workflow run the
    /// run lists and the run; a repository or issues event everything under the repository.
    /// Returns the number of entries dropped or replaced.
    pub fn apply_webhook(&self, event: &str, payload: &serde_json::Value) -> usize {
        let Some((slug, repo, prefixes, exact)) = webhook_scope(event, payload) else {
            return 0;
        };
        let slug = slug.as_str();
        let cause = match event {
            "push" => RepositoryCause::Push,
            "pull_request" => RepositoryCause::PullRequest,
            "workflow_run" | "workflow_job" | "check_suite" => RepositoryCause::WorkflowRun,
            "repository" | "issues" => RepositoryCause::Repository,
            _ => return 0,
        };
        let mut change = RepositoryChange {
            slug: slug.to_string(),
            cause,
            branch: None,
            head_sha: None,
            head_message: None,
        };
        let mut touched = {
            let mut entries = self.entries.lock();
            let before = entries.len();
            entries.retain(|path, _| {
                let hit = (exact && path == &repo)
                    || prefixes.iter().any(|p| path.starts_with(p.as_str()));
                !hit
            });
            before - entries.len()
        };
        if event == "push" {
            if let Some(body) = wire::push_repository_body(payload) {
                self.store_fresh(repo.clone(), Some(body.to_string().into()), wire::same_repo);
                touched += 1;
            }
            if let Some((branch, body)) = wire::push_head_body(payload) {
                if let Ok(c) = serde_json::from_value::<WireCommit>(body.clone()) {
                    let c = Commit::from(c);
                    change.head_sha = Some(c.sha.clone());
                    change.head_message = Some(c.message.clone());
                    self.learn_commit(slug, c);
                }
                change.branch = Some(branch.clone());
                self.store_fresh(
                    format!("{repo}/commits/{branch}"),
                    Some(body.to_string().into()),
                    wire::same_commit,
                );
                touched += 1;
            }
        }
        // Kept answers can only hold GitHub values that came from the entries just changed.
        self.observed(vec![change], touched > 0);
        touched
    }

    /// The body held at `path` (`Some(None)`: held as a 404).
    pub(super) fn held(&self, path: &str) -> Option<Option<Bytes>> {
        self.entries.lock().get(path).map(|e| e.body.clone())
    }

    /// Repositories held (`/repos/{owner}/{name}` entries).
    pub(super) fn held_repositories(&self) -> Vec<String> {
        self.entries
            .lock()
            .keys()
            .filter_map(|p| p.strip_prefix("/repos/"))
            .filter(|rest| rest.matches('/').count() == 1)
            .map(str::to_string)
            .collect()
    }

    /// Stores a body learned another way (a batched GraphQL refresh, a webhook payload) as
    /// fresh now. When what is held says the same (`same`: compares the values the graph reads,
    /// not the bytes), it is kept with its ETag and only marked fresh. True when it replaced a
    /// different value (an entry that was not held cannot be behind any kept answer).
    pub(super) fn store_fresh(
        &self,
        path: String,
        body: Option<Bytes>,
        same: fn(&[u8], &[u8]) -> bool,
    ) -> bool {
        let mut entries = self.entries.lock();
        let held = entries.get(&path).cloned();
        let entry = match &held {
            Some(e)
                if matches!((&e.body, &body), (None, None))
                    || matches!((&e.body, &body), (Some(a), Some(b)) if same(a, b)) =>
            {
                Entry::new(
                    e.body.clone(),
                    e.etag.clone(),
                    None,
                    Instant::now(),
                    e.observed_at,
                )
            }
            _ => Entry::new(body, None, None, Instant::now(), Utc::now()),
        };
        let changed = held.is_some_and(|h| h.body != entry.body);
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(path, Arc::new(entry));
        changed
    }

    /// A commit now known by SHA (from a batch or a webhook).
    pub(super) fn learn_commit(&self, slug: &str, c: Commit) {
        self.commits
            .insert(format!("{slug}@{}", c.sha), Arc::new(c));
    }

    /// Hands what changed to GitHub's writer (`state::writers`): `values_changed` drops kept
    /// answers showing GitHub values; each change reaches `repositoryEvents` subscribers.
    pub(super) fn observed(&self, changes: Vec<RepositoryChange>, values_changed: bool) {
        if let Some(s) = &self.state {
            crate::state::GitHubWriter::new(s.clone()).observe(changes, values_changed);
        }
    }

    /// The state this source serves (set with webhooks).
    pub(super) fn state(&self) -> Option<&Arc<crate::state::State>> {
        self.state.as_ref()
    }

    pub fn with_page_size(mut self, n: usize) -> Self {
        self.page_size = n.clamp(1, 100);
        self
    }

    pub fn client(&self) -> &GitHubClient {
        &self.client
    }

    pub fn health(&self) -> &Arc<SourceHealth> {
        &self.health
    }

    /// The web host repository URLs on this GitHub use (`github.com`, or the Enterprise host).
    pub fn web_host(&self) -> String {
        self.client.web_host()
    }

    pub fn note_batch(&self) {
        self.batches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn batches(&self) -> u64 {
        self.batches.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn effective(&self, ttl: Duration) -> Duration {
        if self.client.budget().is_low() {
            ttl * 4
        } else {
            ttl
        }
    }

    fn record(&self, result: &Result<(), SourceError>) {
        let b = self.client.budget();
        match result {
            Ok(()) => self
                .health
                .record_success(self.entries.lock().len() as u64, 0.0),
            Err(e) => self.health.record_failure(e.to_string()),
        }
        self.health.set_rate_limit(b.limit, b.remaining, b.reset);
    }

    /// The body at `path`, refreshed if older than `ttl` (`force`: refresh now).
    pub async fn get_raw(
        &self,
        path: &str,
        ttl: Duration,
        force: bool,
    ) -> Result<Fetched<Bytes>, SourceError> {
        let ttl = self.effective(ttl);
        let served = |e: &Entry| Fetched {
            value: e.body.clone(),
            stale: false,
            error: None,
            observed_at: e.observed_at,
            next_page: e.next.clone(),
        };
        let fresh = |e: &Entry| !force && e.fetched.elapsed() < ttl && self.confirmed(e);
        let cached = self.entries.lock().get(path).cloned();
        if let Some(e) = cached.as_ref().filter(|e| fresh(e)) {
            self.keep(ttl.saturating_sub(e.fetched.elapsed()));
            return Ok(served(e));
        }
        let lock = self
            .refreshing
            .lock()
            .entry(path.to_string())
            .or_default()
            .clone();
        let _guard = lock.lock().await;
        let mut cached = self.entries.lock().get(path).cloned();
        if let Some(e) = cached.as_ref() {
            // Someone refreshed it while we waited.
            if e.fetched.elapsed() < ttl
                && (!force || e.fetched.elapsed() < Duration::from_millis(50))
                && self.confirmed(e)
            {
                self.keep(ttl.saturating_sub(e.fetched.elapsed()));
                return Ok(served(e));
            }
        }
        // Replicas: the shared copy, or another replica's refresh of it.
        let mut shared_lock = None;
        if let Some(shared) = &self.shared {
            let mut fresh_now = self
                .look_shared(shared, path, &mut cached, ttl, force)
                .await;
            if fresh_now == Some(false) {
                match gh_shared::lock(shared, path).await {
                    Some(true) => shared_lock = Some(shared),
                    Some(false) => {
                        // Another replica is asking GitHub: wait a little for its copy.
                        let deadline = Instant::now() + gh_shared::WAIT_FOR_OTHER;
                        while fresh_now == Some(false) && Instant::now() < deadline {
                            tokio::time::sleep(Duration::from_millis(25)).await;
                            fresh_now = self
                                .look_shared(shared, path, &mut cached, ttl, false)
                                .await;
                        }
                    }
                    None => self.fell_back(),
                }
            }
            let serve_held = match fresh_now {
                Some(fresh) => fresh,
                // Redis failed: as without `cluster:`, what is held serves until its TTL.
                None => cached.as_ref().is_some_and(|e| {
                    e.fetched.elapsed() < ttl
                        && (!force || e.fetched.elapsed() < Duration::from_millis(50))
                }),
            };
            if serve_held {
                if let Some(e) = cached.as_ref() {
                    self.refreshing.lock().remove(path);
                    self.keep(ttl.saturating_sub(e.fetched.elapsed()));
                    return Ok(served(e));
                }
            }
        }
        let etag = cached.as_ref().and_then(|e| e.etag.clone());
        let outcome = match self.client.get(path, etag.as_deref()).await {
            // A body that is not JSON (cut off on the way) is a failed fetch: it must not
            // replace a good entry, nor be served from the cache until its TTL ends.
            Ok(GetOutcome::Modified { body, .. })
                if serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err() =>
            {
                Err(SourceError::Malformed {
                    url: format!("{}{}", self.client.base_url(), path),
                    reason: "the body is not JSON (cut off?)".into(),
                })
            }
            other => other,
        };
        let now = (Instant::now(), Utc::now());
        let entry = match outcome {
            Ok(GetOutcome::NotModified) => match cached {
                Some(e) => Entry::new(e.body.clone(), e.etag.clone(), e.next.clone(), now.0, now.1),
                None => Entry::new(None, None, None, now.0, now.1),
            },
            Ok(GetOutcome::Modified { body, etag, next }) => {
                Entry::new(Some(body), etag, next, now.0, now.1)
            }
            Ok(GetOutcome::NotFound) => Entry::new(None, None, None, now.0, now.1),
            Err(err) => {
                // Failures must not leave the per-key lock behind (it is removed on success
                // only after the new entry is stored, so no caller refetches in between).
                self.refreshing.lock().remove(path);
                self.record(&Err(err.clone()));
                if let Some(shared) = &self.shared {
                    // The budget (a rate limit, say) is every replica's news.
                    gh_shared::store(shared, path, None, Duration::ZERO, self.shared_budget())
                        .await;
                    if shared_lock.is_some() {
                        gh_shared::unlock(shared, path).await;
                    }
                }
                // A stale value must not outlive this answer.
                keep_for(Duration::ZERO);
                return match cached {
                    Some(e) => Ok(Fetched {
                        value: e.body.clone(),
                        stale: true,
                        error: Some(err),
                        observed_at: e.observed_at,
                        next_page: e.next.clone(),
                    }),
                    None => Err(err),
                };
            }
        };
        let entry = Arc::new(entry);
        self.insert_local(path, entry.clone());
        if let Some(shared) = &self.shared {
            let stored = gh_shared::store(
                shared,
                path,
                Some(&entry.to_copy()),
                Self::shared_expiry(ttl),
                self.shared_budget(),
            )
            .await;
            if !stored {
                self.fell_back();
            }
            if shared_lock.is_some() {
                gh_shared::unlock(shared, path).await;
            }
        }
        self.refreshing.lock().remove(path);
        self.record(&Ok(()));
        self.keep(ttl);
        Ok(served(&entry))
    }

    async fn get_typed<W: DeserializeOwned, T>(
        &self,
        path: &str,
        ttl: Duration,
        force: bool,
        map: impl FnOnce(W) -> T,
    ) -> Result<Fetched<T>, SourceError> {
        let f = self.get_raw(path, ttl, force).await?;
        let value = match f.value {
            None => None,
            Some(body) => match serde_json::from_slice::<W>(&body) {
                Ok(w) => Some(map(w)),
                Err(e) => {
                    // JSON of the wrong shape: not kept, and GitHub's health says so.
                    self.entries.lock().remove(path);
                    let err = SourceError::Malformed {
                        url: format!("{}{}", self.client.base_url(), path),
                        reason: e.to_string(),
                    };
                    self.record(&Err(err.clone()));
                    return Err(err);
                }
            },
        };
        Ok(Fetched {
            value,
            stale: f.stale,
            error: f.error,
            observed_at: f.observed_at,
            next_page: f.next_page,
        })
    }

    /// A repository from cache if it is still fresh: no request, no await on the network.
    /// The repository's `visibility` as last fetched, however old (visibility decisions of
    /// pushed events, which must not wait on GitHub).
    pub fn held_visibility(&self, slug: &str) -> Option<String> {
        let e = self
            .entries
            .lock()
            .get(&format!("/repos/{slug}"))
            .cloned()?;
        let body = e.body.as_ref()?;
        Some(Repository::from(serde_json::from_slice::<WireRepo>(body).ok()?).visibility)
    }

    pub fn repository_if_fresh(&self, slug: &str) -> Option<Fetched<Repository>> {
        let path = format!("/repos/{slug}");
        let e = self.entries.lock().get(&path).cloned()?;
        let ttl = self.repository_ttl();
        if e.fetched.elapsed() >= ttl || !self.confirmed(&e) {
            return None;
        }
        self.keep(ttl.saturating_sub(e.fetched.elapsed()));
        let value = match &e.body {
            None => None,
            Some(b) => Some(Repository::from(
                serde_json::from_slice::<WireRepo>(b).ok()?,
            )),
        };
        Some(Fetched {
            value,
            stale: false,
            error: None,
            observed_at: e.observed_at,
            next_page: None,
        })
    }

    /// How long a fetched repository is served from cache (longer while the budget is low).
    pub fn repository_ttl(&self) -> Duration {
        self.effective(self.ttls.repository)
    }

    /// A commit already known by SHA.
    pub fn commit_if_known(&self, slug: &str, sha: &str) -> Option<Commit> {
        self.commits
            .get(&format!("{slug}@{sha}"))
            .map(|c| (*c).clone())
    }

    pub async fn repository(
        &self,
        slug: &str,
        force: bool,
    ) -> Result<Fetched<Repository>, SourceError> {
        self.get_typed::<WireRepo, _>(
            &format!("/repos/{slug}"),
            self.ttls.repository,
            force,
            Repository::from,
        )
        .await
    }

    /// The head commit of `branch`.
    pub async fn latest_commit(
        &self,
        slug: &str,
        branch: &str,
    ) -> Result<Fetched<Commit>, SourceError> {
        let f = self
            .get_typed::<WireCommit, _>(
                &format!("/repos/{slug}/commits/{branch}"),
                self.ttls.latest_commit,
                false,
                Commit::from,
            )
            .await?;
        if let Some(c) = &f.value {
            self.commits
                .insert(format!("{slug}@{}", c.sha), Arc::new(c.clone()));
        }
        Ok(f)
    }

    /// A commit by SHA: immutable, so cached for good once seen.
    pub async fn commit(&self, slug: &str, sha: &str) -> Result<Fetched<Commit>, SourceError> {
        if let Some(c) = self.commits.get(&format!("{slug}@{sha}")) {
            return Ok(Fetched {
                value: Some((*c).clone()),
                stale: false,
                error: None,
                observed_at: Utc::now(),
                next_page: None,
            });
        }
        let f = self
            .get_typed::<WireCommit, _>(
                &format!("/repos/{slug}/commits/{sha}"),
                Duration::from_secs(u64::MAX / 4),
                false,
                Commit::from,
            )
            .await?;
        if let Some(c) = &f.value {
            if c.sha == sha {
                self.commits
                    .insert(format!("{slug}@{sha}"), Arc::new(c.clone()));
                self.entries
                    .lock()
                    .remove(&format!("/repos/{slug}/commits/{sha}"));
            }
        }
        Ok(f)
    }

    /// Pull requests, following `Link` pages until `first` are collected.
    pub async fn pull_requests(
        &self,
        slug: &str,
        state: &str,
        first: usize,
    ) -> Result<Fetched<Vec<PullRequest>>, SourceError> {
        self.paged::<Vec<WirePull>, PullRequest>(
            &format!(
                "/repos/{slug}/pulls?state={state}&per_page={}",
                first.clamp(1, self.page_size)
            ),
            self.ttls.pull_requests,
            first,
            |v: Vec<WirePull>| v.into_iter().map(Into::into).collect(),
        )
        .await
    }

    /// One pull request by number (`GET /repos/{slug}/pulls/{number}`).
    pub async fn pull_request(
        &self,
        slug: &str,
        number: u64,
    ) -> Result<Fetched<PullRequest>, SourceError> {
        self.get_typed::<WirePull, _>(
            &format!("/repos/{slug}/pulls/{number}"),
            self.ttls.pull_requests,
            false,
            PullRequest::from,
        )
        .await
    }

    /// One workflow run by id (`GET /repos/{slug}/actions/runs/{id}`).
    pub async fn workflow_run(
        &self,
        slug: &str,
        run_id: u64,
    ) -> Result<Fetched<WorkflowRun>, SourceError> {
        self.get_typed::<WireRun, _>(
            &format!("/repos/{slug}/actions/runs/{run_id}"),
            self.ttls.workflow_runs,
            false,
            WorkflowRun::from,
        )
        .await
    }

    pub async fn workflow_runs(
        &self,
        slug: &str,
        branch: Option<&str>,
        first: usize,
    ) -> Result<Fetched<Vec<WorkflowRun>>, SourceError> {
        let mut path = format!(
            "/repos/{slug}/actions/runs?per_page={}",
            first.clamp(1, self.page_size)
        );
        if let Some(b) = branch {
            path.push_str(&format!(
                "&branch={}",
                url::form_urlencoded::byte_serialize(b.as_bytes()).collect::<String>()
            ));
        }
        self.paged::<WireRuns, WorkflowRun>(&path, self.ttls.workflow_runs, first, |v: WireRuns| {
            v.workflow_runs.into_iter().map(Into::into).collect()
        })
        .await
    }

    async fn paged<W: DeserializeOwned, T>(
        &self,
        first_path: &str,
        ttl: Duration,
        want: usize,
        map: impl Fn(W) -> Vec<T>,
    ) -> Result<Fetched<Vec<T>>, SourceError> {
        let mut out = Vec::new();
        let mut path = first_path.to_string();
        let mut stale = false;
        let mut error = None;
        let mut observed_at = Utc::now();
        for _ in 0..10 {
            let f = self.get_raw(&path, ttl, false).await?;
            stale |= f.stale;
            error = error.or(f.error);
            observed_at = observed_at.min(f.observed_at);
            let Some(body) = f.value else {
                return Ok(Fetched {
                    value: None,
                    stale,
                    error,
                    observed_at,
                    next_page: None,
                });
            };
            let page: W = serde_json::from_slice(&body).map_err(|e| SourceError::Malformed {
                url: path.clone(),
                reason: e.to_string(),
            })?;
            out.extend(map(page));
            match f.next_page {
                Some(next) if out.len() < want => path = next,
                _ => break,
            }
        }
        out.truncate(want);
        Ok(Fetched {
            value: Some(out),
            stale,
            error,
            observed_at,
            next_page: None,
        })
    }
}
