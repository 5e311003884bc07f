//! TTL caches over the GitHub client with conditional refresh, merged concurrent refreshes
//! and stale-if-error (moka's `try_get_with` never stores errors, so stale-if-error is ours).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;

use super::client::{GetOutcome, GitHubClient};
use super::wire::{self, WireCommit, WirePull, WireRepo, WireRun, WireRuns};
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
        }
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
        let Some(slug) = payload
            .pointer("/repository/full_name")
            .and_then(|v| v.as_str())
        else {
            return 0;
        };
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
                Entry {
                    body: e.body.clone(),
                    etag: e.etag.clone(),
                    next: None,
                    fetched: Instant::now(),
                    observed_at: e.observed_at,
                }
            }
            _ => Entry {
                body,
                etag: None,
                next: None,
                fetched: Instant::now(),
                observed_at: Utc::now(),
            },
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
        let fresh = |e: &Entry| !force && e.fetched.elapsed() < ttl;
        let cached = self.entries.lock().get(path).cloned();
        if let Some(e) = cached.as_ref().filter(|e| fresh(e)) {
            keep_for(ttl.saturating_sub(e.fetched.elapsed()));
            return Ok(Fetched {
                value: e.body.clone(),
                stale: false,
                error: None,
                observed_at: e.observed_at,
                next_page: e.next.clone(),
            });
        }
        let lock = self
            .refreshing
            .lock()
            .entry(path.to_string())
            .or_default()
            .clone();
        let _guard = lock.lock().await;
        let cached = self.entries.lock().get(path).cloned();
        if let Some(e) = cached.as_ref() {
            // Someone refreshed it while we waited.
            if e.fetched.elapsed() < ttl
                && (!force || e.fetched.elapsed() < Duration::from_millis(50))
            {
                keep_for(ttl.saturating_sub(e.fetched.elapsed()));
                return Ok(Fetched {
                    value: e.body.clone(),
                    stale: false,
                    error: None,
                    observed_at: e.observed_at,
                    next_page: e.next.clone(),
                });
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
                Some(e) => Entry {
                    body: e.body.clone(),
                    etag: e.etag.clone(),
                    next: e.next.clone(),
                    fetched: now.0,
                    observed_at: now.1,
                },
                None => Entry {
                    body: None,
                    etag: None,
                    next: None,
                    fetched: now.0,
                    observed_at: now.1,
                },
            },
            Ok(GetOutcome::Modified { body, etag, next }) => Entry {
                body: Some(body),
                etag,
                next,
                fetched: now.0,
                observed_at: now.1,
            },
            Ok(GetOutcome::NotFound) => Entry {
                body: None,
                etag: None,
                next: None,
                fetched: now.0,
                observed_at: now.1,
            },
            Err(err) => {
                // Failures must not leave the per-key lock behind (it is removed on success
                // only after the new entry is stored, so no caller refetches in between).
                self.refreshing.lock().remove(path);
                self.record(&Err(err.clone()));
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
        {
            let mut entries = self.entries.lock();
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(path.to_string(), entry.clone());
        }
        self.refreshing.lock().remove(path);
        self.record(&Ok(()));
        keep_for(ttl);
        Ok(Fetched {
            value: entry.body.clone(),
            stale: false,
            error: None,
            observed_at: entry.observed_at,
            next_page: entry.next.clone(),
        })
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
        if e.fetched.elapsed() >= ttl {
            return None;
        }
        keep_for(ttl.saturating_sub(e.fetched.elapsed()));
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
