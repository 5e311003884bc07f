//! The safety net when webhooks are on: repositories refreshed in batches over GitHub's GraphQL
//! API instead of one REST request each. A round asks, 100 repositories per request, the
//! fields that cost nothing extra (no connections: 1 point per request); a repository whose
//! answer matches what is held is marked fresh as it is, one that changed (a missed webhook)
//! or is not held yet is asked again with its topics and open counts (connections: 3 points
//! per 100). Both land in the same REST-shaped entries the graph reads, so reads between
//! rounds cost nothing.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::cache::GitHubSource;
use super::wire::{self, WireCommit};
use crate::domain::annotations::is_github_slug;
use crate::events::{RepositoryCause, RepositoryChange};
use crate::sources::SourceError;

/// Repositories per GraphQL request (GitHub's node limit is far above; 100 keeps the cost of
/// the connections of a full request at 3 points).
const BATCH: usize = 100;

/// What every repository is asked: scalars and the default branch's head.
const LIGHT: &str = "nameWithOwner url description isPrivate isArchived visibility \
    stargazerCount forkCount pushedAt primaryLanguage { name } \
    defaultBranchRef { name target { oid ... on Commit { message committedDate url \
    author { name email date user { login } } } } }";

/// What a changed or new repository is asked besides: three connections.
const FULL: &str = "repositoryTopics(first: 20) { nodes { topic { name } } } \
    issues(states: OPEN) { totalCount } pullRequests(states: OPEN) { totalCount }";

/// The outcome of one round.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchRound {
    /// Repositories confirmed unchanged.
    pub unchanged: usize,
    /// Repositories stored anew (changed, new, or gone).
    pub updated: usize,
    /// GraphQL requests sent.
    pub requests: usize,
    /// Points GitHub charged (`rateLimit { cost }`).
    pub points: u64,
}

fn query(slugs: &[&str], full: bool) -> String {
    let mut q = String::from("query {");
    for (i, slug) in slugs.iter().enumerate() {
        let (owner, name) = slug.split_once('/').unwrap_or((slug, ""));
        // Slugs are checked (`is_github_slug`): no quotes or backslashes to escape.
        q.push_str(&format!(
            " r{i}: repository(owner: \"{owner}\", name: \"{name}\") {{ {LIGHT}{}{} }}",
            if full { " " } else { "" },
            if full { FULL } else { "" }
        ));
    }
    q.push_str(" rateLimit { cost remaining } }");
    q
}

/// The REST `GET /repos/{slug}` body this GraphQL repository stands for; `extra` = topics and
/// `open_issues_count` (REST counts open pull requests as issues).
fn repo_body(r: &Value, extra: (Value, Value)) -> Value {
    json!({
        "full_name": r["nameWithOwner"], "html_url": r["url"], "description": r["description"],
        "private": r["isPrivate"], "archived": r["isArchived"],
        "visibility": r["visibility"].as_str().map(str::to_lowercase),
        "stargazers_count": r["stargazerCount"], "forks_count": r["forkCount"],
        "pushed_at": r["pushedAt"], "language": r["primaryLanguage"]["name"],
        "default_branch": r["defaultBranchRef"]["name"],
        "topics": extra.0, "open_issues_count": extra.1,
    })
}

/// The REST `GET /repos/{slug}/commits/{branch}` body of the head commit.
fn commit_body(t: &Value) -> Value {
    let a = &t["author"];
    json!({
        "sha": t["oid"], "html_url": t["url"],
        "commit": {"message": t["message"], "author": {"name": a["name"], "email": a["email"], "date": a["date"]}},
        "author": a["user"]["login"].as_str().map(|l| json!({"login": l})),
    })
}

fn full_extra(r: &Value) -> (Value, Value) {
    let topics: Vec<Value> = r["repositoryTopics"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| n["topic"]["name"].clone())
        .collect();
    let open = r["issues"]["totalCount"].as_u64().unwrap_or(0)
        + r["pullRequests"]["totalCount"].as_u64().unwrap_or(0);
    (Value::Array(topics), json!(open))
}

impl GitHubSource {
    /// One safety-net round over `slugs` (invalid ones skipped).
    pub async fn refresh_batch(&self, slugs: &[String]) -> Result<BatchRound, SourceError> {
        let slugs: BTreeSet<&str> = slugs
            .iter()
            .map(String::as_str)
            .filter(|s| is_github_slug(s))
            .collect();
        let slugs: Vec<&str> = slugs.into_iter().collect();
        let mut round = BatchRound::default();
        let mut changed_any = false;
        let mut changes = Vec::new();
        let mut again = Vec::new();
        for chunk in slugs.chunks(BATCH) {
            // Nothing held yet: ask everything at once.
            let (held, new): (Vec<&str>, Vec<&str>) = chunk
                .iter()
                .partition(|s| self.held(&format!("/repos/{s}")).is_some());
            if !held.is_empty() {
                let data = self.ask(&held, false, &mut round).await?;
                for (i, slug) in held.iter().enumerate() {
                    if !self.confirm(slug, &data[format!("r{i}")]) {
                        again.push(*slug);
                    }
                }
            }
            again.extend(new);
        }
        round.unchanged = slugs.len() - again.len();
        for chunk in again.chunks(BATCH) {
            let data = match self.ask(chunk, true, &mut round).await {
                Ok(data) => data,
                Err(e) => {
                    // What earlier chunks stored must still reach kept answers and subscribers.
                    self.observed(changes, changed_any);
                    return Err(e);
                }
            };
            for (i, slug) in chunk.iter().enumerate() {
                let r = &data[format!("r{i}")];
                if self.store(slug, r) {
                    changed_any = true;
                    let head = &r["defaultBranchRef"];
                    changes.push(RepositoryChange {
                        slug: slug.to_string(),
                        cause: RepositoryCause::Detected,
                        branch: head["name"].as_str().map(str::to_string),
                        head_sha: head["target"]["oid"].as_str().map(str::to_string),
                        head_message: head["target"]["message"].as_str().map(str::to_string),
                    });
                }
                round.updated += 1;
            }
        }
        self.observed(changes, changed_any);
        Ok(round)
    }

    async fn ask(
        &self,
        slugs: &[&str],
        full: bool,
        round: &mut BatchRound,
    ) -> Result<Value, SourceError> {
        let data = self.client().graphql(&query(slugs, full)).await?;
        round.requests += 1;
        round.points += data["rateLimit"]["cost"].as_u64().unwrap_or(1);
        Ok(data)
    }

    /// Whether the light answer `r` matches what is held for `slug`; if so, marks it fresh.
    fn confirm(&self, slug: &str, r: &Value) -> bool {
        let path = format!("/repos/{slug}");
        let held = match self.held(&path) {
            Some(Some(body)) => body,
            // Held as a 404: confirmed if GitHub still has no such repository.
            Some(None) => return r.is_null(),
            None => return false,
        };
        if r.is_null() {
            return false;
        }
        let Ok(held_json) = serde_json::from_slice::<Value>(&held) else {
            return false;
        };
        let extra = (
            held_json["topics"].clone(),
            held_json["open_issues_count"].clone(),
        );
        let candidate = serde_json::to_vec(&repo_body(r, extra)).unwrap_or_default();
        if !wire::same_repo(&candidate, &held) {
            return false;
        }
        let branch = r["defaultBranchRef"]["name"].as_str().unwrap_or("");
        let commit_path = format!("/repos/{slug}/commits/{branch}");
        let head_same = match self.held(&commit_path) {
            Some(Some(b)) => serde_json::from_slice::<Value>(&b)
                .is_ok_and(|c| c["sha"] == r["defaultBranchRef"]["target"]["oid"]),
            // Not held: nothing to be stale.
            Some(None) | None => true,
        };
        if !head_same {
            return false;
        }
        self.store_fresh(path, Some(held), wire::same_repo);
        if let Some(Some(b)) = self.held(&commit_path) {
            self.store_fresh(commit_path, Some(b), wire::same_commit);
        }
        true
    }

    /// Stores a full answer for `slug`: the repository and its head commit. True if either
    /// differs from what was held.
    fn store(&self, slug: &str, r: &Value) -> bool {
        let path = format!("/repos/{slug}");
        if r.is_null() {
            return self.store_fresh(path, None, wire::same_repo);
        }
        let body = serde_json::to_vec(&repo_body(r, full_extra(r))).unwrap_or_default();
        let mut changed = self.store_fresh(path, Some(body.into()), wire::same_repo);
        let target = &r["defaultBranchRef"]["target"];
        if let Some(branch) = r["defaultBranchRef"]["name"].as_str() {
            let body = commit_body(target);
            if let Ok(c) = serde_json::from_value::<WireCommit>(body.clone()) {
                self.learn_commit(slug, c.into());
            }
            changed |= self.store_fresh(
                format!("/repos/{slug}/commits/{branch}"),
                Some(body.to_string().into()),
                wire::same_commit,
            );
        }
        changed
    }

    /// Rounds every `every`, over the catalog's repositories and every one held, until
    /// `token` is cancelled. A failed round is logged and tried again at the next tick.
    pub async fn run_safety_net(self: Arc<Self>, every: Duration, token: CancellationToken) {
        // The first round fills the cache for the whole catalog: wait (up to one period) for
        // the catalog's first snapshot.
        let started = std::time::Instant::now();
        while self
            .state()
            .is_some_and(|s| s.catalog.snapshot().is_empty())
            && started.elapsed() < every
        {
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
        loop {
            let mut slugs = self.held_repositories();
            if let Some(state) = self.state() {
                slugs.extend(state.catalog.snapshot().github_slugs().map(str::to_string));
            }
            match self.refresh_batch(&slugs).await {
                Ok(r) => tracing::debug!(
                    unchanged = r.unchanged,
                    updated = r.updated,
                    points = r.points,
                    "GitHub safety-net round"
                ),
                Err(e) => tracing::warn!(error = %e, "GitHub safety-net round failed"),
            }
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graphql_answers_become_the_rest_bodies_the_graph_reads() {
        let r = json!({"nameWithOwner": "o/a", "url": "https://github.com/o/a", "description": "d",
            "isPrivate": true, "isArchived": false, "visibility": "INTERNAL", "stargazerCount": 5,
            "forkCount": 1, "pushedAt": "2026-11-30T10:00:00Z", "primaryLanguage": {"name": "Rust"},
            "defaultBranchRef": {"name": "main", "target": {"oid": "abc", "message": "m", "url": "u",
                "committedDate": "2026-11-30T10:00:00Z",
                "author": {"name": "A", "email": "a@x", "date": "2026-11-30T10:00:00Z", "user": {"login": "alice"}}}},
            "repositoryTopics": {"nodes": [{"topic": {"name": "t1"}}]},
            "issues": {"totalCount": 2}, "pullRequests": {"totalCount": 4}});
        let body = serde_json::to_vec(&repo_body(&r, full_extra(&r))).unwrap();
        let repo = crate::domain::github::Repository::from(
            serde_json::from_slice::<wire::WireRepo>(&body).unwrap(),
        );
        assert_eq!(
            (
                repo.slug.as_str(),
                repo.visibility.as_str(),
                repo.stars,
                repo.open_issues
            ),
            ("o/a", "internal", 5, 6)
        );
        assert_eq!(repo.topics, ["t1"]);
        let c: crate::domain::github::Commit =
            serde_json::from_value::<WireCommit>(commit_body(&r["defaultBranchRef"]["target"]))
                .unwrap()
                .into();
        assert_eq!(
            (c.sha.as_str(), c.author_login.as_deref()),
            ("abc", Some("alice"))
        );
        let q = query(&["o/a", "o/b"], true);
        assert!(
            q.contains("r1: repository(owner: \"o\", name: \"b\")") && q.contains("pullRequests")
        );
    }
}
