//! GitHub in the graph: `Repository`, `Commit`, pull requests and workflow runs, the joins from
//! components (`github.com/project-slug`) and from ArgoCD revisions, and the loaders that batch
//! one request's lookups into one concurrent pass.
//!
//! Stale data is served with its freshness: when a refresh failed or the budget is spent, the
//! field still answers with the last known value, and an error with `RATE_LIMITED` /
//! `UPSTREAM_UNAVAILABLE` and the field's path is added beside it.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{ComplexObject, Context, Enum, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};

use super::entity::{EntityItem, EntityNode, Freshness};
use super::error::{bad_input, upstream};
use super::{gctx, Viewer};
use crate::domain::github::{Commit, PullRequest, Repository, WorkflowRun};
use crate::domain::node_id::NodeId;
use crate::sources::github::{Fetched, GitHubSource};
use crate::sources::SourceError;

const SOURCE: &str = "github";

/// Turns a fetch into a field value: an error when there is nothing to serve; the value plus a
/// non-fatal error when it is stale.
pub fn deliver<T>(
    ctx: &Context<'_>,
    fetched: Result<Fetched<T>, SourceError>,
) -> Result<Option<(T, bool, DateTime<Utc>)>> {
    match fetched {
        Err(e) => Err(upstream(SOURCE, &e)),
        Ok(f) => {
            if f.stale {
                if let Some(e) = &f.error {
                    let err = upstream(SOURCE, e).into_server_error(ctx.item.pos);
                    ctx.add_error(ctx.set_error_path(err));
                }
            }
            Ok(f.value.map(|v| (v, f.stale, f.observed_at)))
        }
    }
}

#[derive(Clone)]
pub struct RepoLoader(pub Arc<GitHubSource>);

impl Loader<String> for RepoLoader {
    type Value = Result<Fetched<Repository>, SourceError>;
    type Error = std::convert::Infallible;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        self.0.note_batch();
        let fetched =
            futures::future::join_all(keys.iter().map(|k| self.0.repository(k, false))).await;
        Ok(keys.iter().cloned().zip(fetched).collect())
    }
}

#[derive(Clone)]
pub struct CommitLoader(pub Arc<GitHubSource>);

impl Loader<(String, String)> for CommitLoader {
    type Value = Result<Fetched<Commit>, SourceError>;
    type Error = std::convert::Infallible;

    async fn load(
        &self,
        keys: &[(String, String)],
    ) -> Result<HashMap<(String, String), Self::Value>, Self::Error> {
        self.0.note_batch();
        let fetched =
            futures::future::join_all(keys.iter().map(|(slug, sha)| self.0.commit(slug, sha)))
                .await;
        Ok(keys.iter().cloned().zip(fetched).collect())
    }
}

/// Cache hits never reach the loaders (see `load_repository`), so the loaders only see misses,
/// each of which costs a round trip to GitHub (tens to hundreds of ms): a 20 ms window to gather
/// a whole list's misses into one concurrent pass is cheap next to that, and wide enough that a
/// briefly descheduled thread (2 busy cores) does not split the pass (5 ms did, measured).
pub fn loaders(source: &Arc<GitHubSource>) -> (DataLoader<RepoLoader>, DataLoader<CommitLoader>) {
    let window = std::time::Duration::from_millis(20);
    (
        DataLoader::new(RepoLoader(source.clone()), super::spawn_in_span).delay(window),
        DataLoader::new(CommitLoader(source.clone()), super::spawn_in_span).delay(window),
    )
}

/// Who may see a repository's data (its fields, commits, pull requests, runs) follows
/// GitHub's own `visibility`: `public` to everyone, `internal` to every signed-in caller,
/// `private` (or anything else) only to platform-team, the owners of a component naming the
/// repository, and callers who see an application deploying from it. A repository the caller
/// may not see answers as a missing one does (`null`).
pub fn sees_repository(
    viewer: &Viewer<'_>,
    source: Option<&GitHubSource>,
    slug: &str,
    visibility: Option<&str>,
) -> bool {
    match visibility {
        Some("public") => true,
        Some("internal") if viewer.principal.subject.is_some() => true,
        _ => sees_private_repository(viewer, source, slug),
    }
}

/// The `private` rule: platform-team, a component's owners, an application's viewers.
fn sees_private_repository(viewer: &Viewer<'_>, source: Option<&GitHubSource>, slug: &str) -> bool {
    if viewer.is_admin() {
        return true;
    }
    if viewer.owns_any(&viewer.state().entities_of_repository(slug)) {
        return true;
    }
    let Some(source) = source else {
        return false;
    };
    let host = source.web_host();
    let hosts = [host.as_str(), "github.com"];
    !viewer
        .state()
        .apps
        .select(|a| {
            viewer.sees_app(a)
                && a.repo_urls().any(|u| {
                    crate::domain::joins::github_slug_of_repo_url(u, &hosts).as_deref()
                        == Some(slug)
                })
        })
        .is_empty()
}

/// May the caller see data of `slug` at all? Cheap when the joins say yes (the caller owns
/// or deploys from it); otherwise asks the repository's visibility (cached like any read).
pub async fn may_see_repository(ctx: &Context<'_>, slug: &str) -> Result<bool> {
    let source = ctx.data_opt::<Arc<GitHubSource>>().map(|s| &**s);
    if sees_private_repository(&Viewer::of(ctx), source, slug) {
        return Ok(true);
    }
    Ok(load_repository(ctx, slug).await?.is_some())
}

/// A repository via the loader, as the caller may see it; `None` when GitHub is not
/// configured, the repo is unknown, or hidden from the caller.
pub async fn load_repository(ctx: &Context<'_>, slug: &str) -> Result<Option<RepositoryNode>> {
    Ok(load_any_repository(ctx, slug).await?.filter(|r| {
        let source = ctx.data_opt::<Arc<GitHubSource>>().map(|s| &**s);
        sees_repository(&Viewer::of(ctx), source, slug, Some(&r.repo.visibility))
    }))
}

async fn load_any_repository(ctx: &Context<'_>, slug: &str) -> Result<Option<RepositoryNode>> {
    let Some(loader) = ctx.data_opt::<DataLoader<RepoLoader>>() else {
        return Ok(None);
    };
    if let Some(f) = ctx
        .data_opt::<Arc<GitHubSource>>()
        .and_then(|s| s.repository_if_fresh(slug))
    {
        return Ok(f.value.map(|repo| RepositoryNode {
            repo: Arc::new(repo),
            stale: false,
            observed_at: f.observed_at,
        }));
    }
    let fetched = loader
        .load_one(slug.to_string())
        .await
        .unwrap_or_else(|never| match never {})
        .unwrap_or_else(|| {
            Err(SourceError::Malformed {
                url: slug.into(),
                reason: "loader lost the key".into(),
            })
        });
    // The loader ran in its own task, out of this answer's read record: note the value's
    // remaining freshness here (none when stale).
    if let (Some(source), Ok(f)) = (ctx.data_opt::<Arc<GitHubSource>>(), &fetched) {
        let age = (Utc::now() - f.observed_at).to_std().unwrap_or_default();
        crate::state::reads::note_max_age(if f.stale {
            std::time::Duration::ZERO
        } else {
            source.repository_ttl().saturating_sub(age)
        });
    }
    Ok(
        deliver(ctx, fetched)?.map(|(repo, stale, observed_at)| RepositoryNode {
            repo: Arc::new(repo),
            stale,
            observed_at,
        }),
    )
}

/// A commit of a repository via the loader (`None` too when the repository is hidden from
/// the caller).
pub async fn load_commit(ctx: &Context<'_>, slug: &str, sha: &str) -> Result<Option<CommitNode>> {
    let Some(loader) = ctx.data_opt::<DataLoader<CommitLoader>>() else {
        return Ok(None);
    };
    if !may_see_repository(ctx, slug).await? {
        return Ok(None);
    }
    if let Some(c) = ctx
        .data_opt::<Arc<GitHubSource>>()
        .and_then(|s| s.commit_if_known(slug, sha))
    {
        return Ok(Some(CommitNode::new(slug, c)));
    }
    let fetched = loader
        .load_one((slug.to_string(), sha.to_string()))
        .await
        .unwrap_or_else(|never| match never {})
        .unwrap_or_else(|| {
            Err(SourceError::Malformed {
                url: slug.into(),
                reason: "loader lost the key".into(),
            })
        });
    Ok(deliver(ctx, fetched)?.map(|(c, _, _)| CommitNode::new(slug, c)))
}

/// The commit an ArgoCD revision of a source repo URL names, when the repo is on the
/// configured GitHub (`state::joins::commit_of_revision`).
pub fn commit_of_revision(
    ctx: &Context<'_>,
    repo_url: &str,
    revision: &str,
) -> Option<(String, String)> {
    let source = ctx.data_opt::<Arc<GitHubSource>>()?;
    let host = source.web_host();
    crate::state::joins::commit_of_revision(repo_url, revision, &[host.as_str(), "github.com"])
}

pub(crate) fn valid_sha(s: &str) -> bool {
    (7..=40).contains(&s.len()) && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// A commit of a repository (the repository is part of its identity).
pub struct CommitNode {
    pub slug: String,
    pub commit: Commit,
}

impl CommitNode {
    pub fn new(slug: &str, commit: Commit) -> Self {
        Self {
            slug: slug.to_string(),
            commit,
        }
    }
}

#[derive(SimpleObject)]
pub struct CommitAuthor {
    pub name: Option<String>,
    pub email: Option<String>,
    /// GitHub login, when the author is a GitHub user.
    pub login: Option<String>,
}

#[Object(name = "Commit")]
impl CommitNode {
    pub async fn id(&self) -> ID {
        NodeId::Commit {
            slug: self.slug.clone(),
            sha: self.commit.sha.clone(),
        }
        .into()
    }
    /// The repository's `owner/name`.
    async fn repository_slug(&self) -> &str {
        &self.slug
    }
    async fn sha(&self) -> &str {
        &self.commit.sha
    }
    async fn short_sha(&self) -> &str {
        self.commit.sha.get(..7).unwrap_or(&self.commit.sha)
    }
    async fn message(&self) -> &str {
        &self.commit.message
    }
    /// The first line of the message.
    async fn title(&self) -> &str {
        self.commit.message.lines().next().unwrap_or("")
    }
    async fn author(&self) -> CommitAuthor {
        CommitAuthor {
            name: self.commit.author_name.clone(),
            email: self.commit.author_email.clone(),
            login: self.commit.author_login.clone(),
        }
    }
    async fn date(&self) -> Option<DateTime<Utc>> {
        self.commit.date
    }
    async fn url(&self) -> &str {
        &self.commit.url
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum PullRequestState {
    Open,
    Closed,
    All,
}

#[derive(SimpleObject)]
#[graphql(complex, name = "PullRequestNode")]
pub struct PullRequestNode {
    /// The repository's `owner/name`.
    pub repository_slug: String,
    pub number: u64,
    pub title: String,
    pub state: String,
    pub draft: bool,
    pub author_login: Option<String>,
    pub url: String,
    pub head_ref: String,
    pub base_ref: String,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub merged_at: Option<DateTime<Utc>>,
}

#[ComplexObject]
impl PullRequestNode {
    pub async fn id(&self) -> ID {
        NodeId::PullRequest {
            slug: self.repository_slug.clone(),
            number: self.number,
        }
        .into()
    }
}

impl PullRequestNode {
    pub fn new(slug: &str, p: PullRequest) -> Self {
        Self {
            repository_slug: slug.to_string(),
            number: p.number,
            title: p.title,
            state: p.state,
            draft: p.draft,
            author_login: p.author_login,
            url: p.url,
            head_ref: p.head_ref,
            base_ref: p.base_ref,
            created_at: p.created_at,
            updated_at: p.updated_at,
            merged_at: p.merged_at,
        }
    }
}

#[derive(SimpleObject)]
#[graphql(complex, name = "WorkflowRunNode")]
pub struct WorkflowRunNode {
    /// The repository's `owner/name`.
    pub repository_slug: String,
    /// GitHub's run id.
    pub run_id: u64,
    pub name: Option<String>,
    /// `queued`, `in_progress`, `completed`...
    pub status: Option<String>,
    /// `success`, `failure`, `cancelled`... (null while running)
    pub conclusion: Option<String>,
    pub branch: Option<String>,
    pub head_sha: String,
    pub event: String,
    pub url: String,
    pub created_at: Option<DateTime<Utc>>,
}

#[ComplexObject]
impl WorkflowRunNode {
    pub async fn id(&self) -> ID {
        NodeId::WorkflowRun {
            slug: self.repository_slug.clone(),
            run_id: self.run_id,
        }
        .into()
    }
}

impl WorkflowRunNode {
    pub fn new(slug: &str, r: WorkflowRun) -> Self {
        Self {
            repository_slug: slug.to_string(),
            run_id: r.id,
            name: r.name,
            status: r.status,
            conclusion: r.conclusion,
            branch: r.branch,
            head_sha: r.head_sha,
            event: r.event,
            url: r.url,
            created_at: r.created_at,
        }
    }
}

pub struct RepositoryNode {
    pub repo: Arc<Repository>,
    pub stale: bool,
    pub observed_at: DateTime<Utc>,
}

fn source<'a>(ctx: &Context<'a>) -> Result<&'a Arc<GitHubSource>> {
    ctx.data_opt::<Arc<GitHubSource>>()
        .ok_or_else(|| super::error::not_configured("GitHub is not configured"))
}

fn bounded(first: i32) -> Result<usize> {
    if !(1..=100).contains(&first) {
        return Err(bad_input("`first` must be between 1 and 100"));
    }
    Ok(first as usize)
}

#[Object(name = "Repository")]
impl RepositoryNode {
    pub async fn id(&self) -> ID {
        NodeId::Repository {
            slug: self.repo.slug.clone(),
        }
        .into()
    }
    /// `owner/name`.
    async fn slug(&self) -> &str {
        &self.repo.slug
    }
    async fn url(&self) -> &str {
        &self.repo.url
    }
    async fn description(&self) -> Option<&str> {
        self.repo.description.as_deref()
    }
    async fn default_branch(&self) -> &str {
        &self.repo.default_branch
    }
    async fn visibility(&self) -> &str {
        &self.repo.visibility
    }
    async fn archived(&self) -> bool {
        self.repo.archived
    }
    async fn stars(&self) -> u64 {
        self.repo.stars
    }
    async fn forks(&self) -> u64 {
        self.repo.forks
    }
    async fn open_issues(&self) -> u64 {
        self.repo.open_issues
    }
    async fn topics(&self) -> &[String] {
        &self.repo.topics
    }
    async fn primary_language(&self) -> Option<&str> {
        self.repo.language.as_deref()
    }
    async fn pushed_at(&self) -> Option<DateTime<Utc>> {
        self.repo.pushed_at
    }
    async fn freshness(&self) -> Freshness {
        Freshness {
            source: SOURCE.into(),
            observed_at: Some(self.observed_at),
            stale: self.stale,
        }
    }
    /// The head of the default branch.
    async fn latest_commit(&self, ctx: &Context<'_>) -> Result<Option<CommitNode>> {
        let f = source(ctx)?
            .latest_commit(&self.repo.slug, &self.repo.default_branch)
            .await;
        Ok(deliver(ctx, f)?.map(|(c, _, _)| CommitNode::new(&self.repo.slug, c)))
    }
    /// A commit by SHA (7 to 40 hex digits).
    async fn commit(&self, ctx: &Context<'_>, sha: String) -> Result<Option<CommitNode>> {
        if !valid_sha(&sha) {
            return Err(bad_input("`sha` must be 7 to 40 hexadecimal digits"));
        }
        load_commit(ctx, &self.repo.slug, &sha).await
    }
    async fn pull_requests(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "PullRequestState::Open")] state: PullRequestState,
        #[graphql(default = 10)] first: i32,
    ) -> Result<Vec<PullRequestNode>> {
        let state = match state {
            PullRequestState::Open => "open",
            PullRequestState::Closed => "closed",
            PullRequestState::All => "all",
        };
        let f = source(ctx)?
            .pull_requests(&self.repo.slug, state, bounded(first)?)
            .await;
        Ok(deliver(ctx, f)?
            .map(|(v, _, _)| {
                v.into_iter()
                    .map(|x| PullRequestNode::new(&self.repo.slug, x))
                    .collect()
            })
            .unwrap_or_default())
    }
    async fn workflow_runs(
        &self,
        ctx: &Context<'_>,
        branch: Option<String>,
        #[graphql(default = 10)] first: i32,
    ) -> Result<Vec<WorkflowRunNode>> {
        let f = source(ctx)?
            .workflow_runs(&self.repo.slug, branch.as_deref(), bounded(first)?)
            .await;
        Ok(deliver(ctx, f)?
            .map(|(v, _, _)| {
                v.into_iter()
                    .map(|x| WorkflowRunNode::new(&self.repo.slug, x))
                    .collect()
            })
            .unwrap_or_default())
    }
    /// Catalog entities whose `github.com/project-slug` names this repository.
    async fn components(&self, ctx: &Context<'_>) -> Vec<EntityItem> {
        let state = &gctx(ctx).state;
        let snapshot = state.catalog.snapshot();
        let viewer = Viewer::of(ctx);
        state
            .entities_of_repository(&self.repo.slug)
            .into_iter()
            .filter(|e| viewer.sees_entity(e))
            .map(|e| EntityItem::from(EntityNode::new(e, snapshot.clone())))
            .collect()
    }
}
