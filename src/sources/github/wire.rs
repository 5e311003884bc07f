//! GitHub REST JSON, as sent. Private; converted here.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::domain::github::*;

#[derive(Deserialize)]
pub(super) struct WireRepo {
    full_name: String,
    html_url: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    default_branch: Option<String>,
    #[serde(default)]
    visibility: Option<String>,
    #[serde(default)]
    private: bool,
    #[serde(default)]
    archived: bool,
    #[serde(default)]
    stargazers_count: u64,
    #[serde(default)]
    forks_count: u64,
    #[serde(default)]
    open_issues_count: u64,
    #[serde(default)]
    topics: Vec<String>,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    pushed_at: Option<DateTime<Utc>>,
}

impl From<WireRepo> for Repository {
    fn from(r: WireRepo) -> Self {
        Self {
            slug: r.full_name,
            url: r.html_url,
            description: r.description,
            default_branch: r.default_branch.unwrap_or_else(|| "main".into()),
            visibility: r.visibility.unwrap_or_else(|| {
                if r.private {
                    "private".into()
                } else {
                    "public".into()
                }
            }),
            archived: r.archived,
            stars: r.stargazers_count,
            forks: r.forks_count,
            open_issues: r.open_issues_count,
            topics: r.topics,
            language: r.language,
            pushed_at: r.pushed_at,
        }
    }
}

#[derive(Deserialize)]
struct WireGitPerson {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    date: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct WireGitCommit {
    #[serde(default)]
    message: String,
    #[serde(default)]
    author: Option<WireGitPerson>,
}

#[derive(Deserialize)]
struct WireUser {
    login: String,
}

#[derive(Deserialize)]
pub(super) struct WireCommit {
    sha: String,
    commit: WireGitCommit,
    #[serde(default)]
    author: Option<WireUser>,
    #[serde(default)]
    html_url: String,
}

impl From<WireCommit> for Commit {
    fn from(c: WireCommit) -> Self {
        let a = c.commit.author;
        Self {
            sha: c.sha,
            message: c.commit.message,
            author_name: a.as_ref().and_then(|a| a.name.clone()),
            author_email: a.as_ref().and_then(|a| a.email.clone()),
            date: a.and_then(|a| a.date),
            author_login: c.author.map(|u| u.login),
            url: c.html_url,
        }
    }
}

#[derive(Deserialize)]
struct WireRef {
    #[serde(rename = "ref")]
    name: String,
}

#[derive(Deserialize)]
pub(super) struct WirePull {
    number: u64,
    #[serde(default)]
    title: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    draft: bool,
    #[serde(default)]
    user: Option<WireUser>,
    #[serde(default)]
    html_url: String,
    head: WireRef,
    base: WireRef,
    #[serde(default)]
    created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    updated_at: Option<DateTime<Utc>>,
    #[serde(default)]
    merged_at: Option<DateTime<Utc>>,
}

impl From<WirePull> for PullRequest {
    fn from(p: WirePull) -> Self {
        Self {
            number: p.number,
            title: p.title,
            state: p.state,
            draft: p.draft,
            author_login: p.user.map(|u| u.login),
            url: p.html_url,
            head_ref: p.head.name,
            base_ref: p.base.name,
            created_at: p.created_at,
            updated_at: p.updated_at,
            merged_at: p.merged_at,
        }
    }
}

#[derive(Deserialize)]
pub(super) struct WireRuns {
    #[serde(default)]
    pub workflow_runs: Vec<WireRun>,
}

#[derive(Deserialize)]
pub(super) struct WireRun {
    id: u64,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    conclusion: Option<String>,
    #[serde(default)]
    head_branch: Option<String>,
    #[serde(default)]
    head_sha: String,
    #[serde(default)]
    event: String,
    #[serde(default)]
    html_url: String,
    #[serde(default)]
    created_at: Option<DateTime<Utc>>,
}

impl From<WireRun> for WorkflowRun {
    fn from(r: WireRun) -> Self {
        Self {
            id: r.id,
            name: r.name,
            status: r.status,
            conclusion: r.conclusion,
            branch: r.head_branch,
            head_sha: r.head_sha,
            event: r.event,
            url: r.html_url,
            created_at: r.created_at,
        }
    }
}

/// A `push` delivery's repository as the REST `GET /repos/{slug}` body it stands for: push
/// payloads carry the full repository, but with `created_at` / `pushed_at` as Unix seconds.
/// `None` when the payload lacks what the graph shows (then the entry is dropped instead).
pub(super) fn push_repository_body(payload: &serde_json::Value) -> Option<serde_json::Value> {
    let mut repo = payload.get("repository")?.clone();
    for key in ["stargazers_count", "html_url", "default_branch"] {
        repo.get(key)?;
    }
    for key in ["created_at", "pushed_at"] {
        if let Some(secs) = repo[key].as_i64() {
            repo[key] = DateTime::<Utc>::from_timestamp(secs, 0)
                .map(|t| serde_json::json!(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
                .unwrap_or_default();
        }
    }
    Some(repo)
}

/// A `push` delivery's new head as (branch, the REST `GET /repos/{slug}/commits/{branch}`
/// body), when the push moved a branch to a commit.
pub(super) fn push_head_body(payload: &serde_json::Value) -> Option<(String, serde_json::Value)> {
    let branch = payload["ref"].as_str()?.strip_prefix("refs/heads/")?;
    let c = payload.get("head_commit").filter(|c| !c.is_null())?;
    let a = &c["author"];
    Some((
        branch.to_string(),
        serde_json::json!({
            "sha": c["id"], "html_url": c["url"],
            "commit": {"message": c["message"], "author": {"name": a["name"], "email": a["email"], "date": c["timestamp"]}},
            "author": a["username"].as_str().map(|l| serde_json::json!({"login": l})),
        }),
    ))
}

/// Whether two REST repository bodies say the same to the graph (bytes differ between a REST
/// answer, a webhook payload and a GraphQL-built body).
pub(super) fn same_repo(a: &[u8], b: &[u8]) -> bool {
    let parse = |x: &[u8]| {
        serde_json::from_slice::<WireRepo>(x)
            .ok()
            .map(Repository::from)
    };
    matches!((parse(a), parse(b)), (Some(x), Some(y)) if x == y)
}

/// Whether two REST commit bodies say the same to the graph.
pub(super) fn same_commit(a: &[u8], b: &[u8]) -> bool {
    let parse = |x: &[u8]| {
        serde_json::from_slice::<WireCommit>(x)
            .ok()
            .map(Commit::from)
    };
    matches!((parse(a), parse(b)), (Some(x), Some(y)) if x == y)
}
