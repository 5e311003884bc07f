//! GitHub's GraphQL API (`POST /graphql`) over the same git world as the REST simulation: the
//! repository fields a batched refresh reads, with GitHub's rate-limit accounting — its own
//! `graphql` window, and a query's cost computed before it runs as GitHub documents it (every
//! connection field counts one request per parent it is asked under; the sum over 100, rounded
//! up, at least 1), reported by `rateLimit { cost remaining }` and the `x-ratelimit-*` headers.

use std::sync::Arc;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{
    Context, EmptyMutation, EmptySubscription, Enum, Interface, Object, Schema, SimpleObject,
};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{TimeZone, Utc};
use serde_json::json;

use super::super::git::{Commit as GitCommit, GitWorld, Repo as GitRepo};
use super::{gh_error, repo_numbers, set_rate_headers, token_ok, ts, Inner, Window};

/// The fields that are connections (each costs one request per parent).
const CONNECTIONS: [&str; 4] = ["repositoryTopics", "issues", "pullRequests", "history"];

pub(super) type GraphSchema = Schema<Query, EmptyMutation, EmptySubscription>;

pub(super) fn schema(git: Arc<GitWorld>) -> GraphSchema {
    Schema::build(Query, EmptyMutation, EmptySubscription)
        .data(git)
        .limit_depth(15)
        .finish()
}

/// What the rate limit looked like after this query was charged.
#[derive(Clone, Copy)]
struct Charged {
    cost: u64,
    limit: u64,
    used: u64,
    reset: i64,
}

pub(super) struct Query;

#[Object]
impl Query {
    async fn repository(&self, ctx: &Context<'_>, owner: String, name: String) -> Option<Repo> {
        let git = ctx.data_unchecked::<Arc<GitWorld>>();
        git.repo(&format!("{owner}/{name}")).map(Repo)
    }

    async fn rate_limit(&self, ctx: &Context<'_>) -> RateLimit {
        let c = ctx.data_unchecked::<Charged>();
        RateLimit {
            cost: c.cost as i32,
            limit: c.limit as i32,
            remaining: c.limit.saturating_sub(c.used) as i32,
            used: c.used as i32,
            reset_at: ts(Utc.timestamp_opt(c.reset, 0).single().unwrap_or_default()),
        }
    }
}

#[derive(SimpleObject)]
struct RateLimit {
    cost: i32,
    limit: i32,
    remaining: i32,
    used: i32,
    /// GitHub's `DateTime`: ISO-8601 to the second, as REST.
    reset_at: String,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(rename_items = "SCREAMING_SNAKE_CASE")]
enum RepositoryVisibility {
    Private,
    Public,
    Internal,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(rename_items = "SCREAMING_SNAKE_CASE")]
enum IssueState {
    Open,
    Closed,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(rename_items = "SCREAMING_SNAKE_CASE")]
enum PullRequestState {
    Open,
    Closed,
    Merged,
}

struct Repo(GitRepo);

#[derive(SimpleObject)]
struct Owner {
    login: String,
}

#[derive(SimpleObject)]
struct Language {
    name: String,
}

#[derive(SimpleObject)]
struct Topic {
    name: String,
}

#[derive(SimpleObject)]
struct RepositoryTopic {
    topic: Topic,
}

#[derive(SimpleObject)]
struct TopicConnection {
    nodes: Vec<RepositoryTopic>,
    total_count: i32,
}

#[derive(SimpleObject)]
struct CountConnection {
    total_count: i32,
}

#[Object]
impl Repo {
    async fn name(&self) -> &str {
        self.0.slug.split_once('/').map_or("", |(_, n)| n)
    }
    async fn name_with_owner(&self) -> &str {
        &self.0.slug
    }
    async fn owner(&self) -> Owner {
        Owner {
            login: self.0.slug.split_once('/').map_or("", |(o, _)| o).into(),
        }
    }
    async fn url(&self) -> String {
        format!("https://github.com/{}", self.0.slug)
    }
    async fn description(&self) -> &str {
        &self.0.description
    }
    async fn is_private(&self) -> bool {
        self.0.visibility != "public"
    }
    async fn is_archived(&self) -> bool {
        false
    }
    async fn visibility(&self) -> RepositoryVisibility {
        match self.0.visibility.as_str() {
            "public" => RepositoryVisibility::Public,
            "private" => RepositoryVisibility::Private,
            _ => RepositoryVisibility::Internal,
        }
    }
    async fn stargazer_count(&self) -> i32 {
        repo_numbers(&self.0.slug).stars as i32
    }
    async fn fork_count(&self) -> i32 {
        repo_numbers(&self.0.slug).forks as i32
    }
    async fn created_at(&self) -> String {
        ts(self.0.created_at)
    }
    async fn pushed_at(&self) -> Option<String> {
        self.0.commits.last().map(|c| ts(c.date))
    }
    async fn updated_at(&self) -> Option<String> {
        self.0.commits.last().map(|c| ts(c.date))
    }
    async fn primary_language(&self) -> Option<Language> {
        self.0.language.clone().map(|name| Language { name })
    }
    async fn default_branch_ref(&self) -> Option<Ref> {
        Some(Ref {
            name: self.0.default_branch.clone(),
            head: self.0.commits.last()?.clone(),
            slug: self.0.slug.clone(),
        })
    }
    async fn repository_topics(&self, first: Option<i32>) -> TopicConnection {
        let n = first.unwrap_or(100).clamp(0, 100) as usize;
        TopicConnection {
            nodes: self
                .0
                .topics
                .iter()
                .take(n)
                .map(|t| RepositoryTopic {
                    topic: Topic { name: t.clone() },
                })
                .collect(),
            total_count: self.0.topics.len() as i32,
        }
    }
    async fn issues(&self, states: Option<Vec<IssueState>>) -> CountConnection {
        let n = repo_numbers(&self.0.slug);
        let open = states.is_none_or(|s| s.contains(&IssueState::Open));
        CountConnection {
            total_count: if open { n.open_issues as i32 } else { 0 },
        }
    }
    async fn pull_requests(&self, states: Option<Vec<PullRequestState>>) -> CountConnection {
        let n = repo_numbers(&self.0.slug);
        let open = states.is_none_or(|s| s.contains(&PullRequestState::Open));
        CountConnection {
            total_count: if open { n.open_pulls as i32 } else { 0 },
        }
    }
}

struct Ref {
    name: String,
    head: GitCommit,
    slug: String,
}

#[Object]
impl Ref {
    async fn name(&self) -> &str {
        &self.name
    }
    async fn target(&self) -> GitObject {
        GitObject::Commit(CommitObject {
            c: self.head.clone(),
            slug: self.slug.clone(),
        })
    }
}

#[derive(Interface)]
#[graphql(field(name = "oid", ty = "&str"))]
enum GitObject {
    Commit(CommitObject),
}

struct CommitObject {
    c: GitCommit,
    slug: String,
}

#[derive(SimpleObject)]
struct User {
    login: String,
}

#[derive(SimpleObject)]
struct GitActor {
    name: String,
    email: String,
    date: String,
    user: Option<User>,
}

#[Object(name = "Commit")]
impl CommitObject {
    async fn oid(&self) -> &str {
        &self.c.sha
    }
    async fn message(&self) -> &str {
        &self.c.message
    }
    async fn message_headline(&self) -> &str {
        self.c.message.lines().next().unwrap_or("")
    }
    async fn committed_date(&self) -> String {
        ts(self.c.date)
    }
    async fn url(&self) -> String {
        format!("https://github.com/{}/commit/{}", self.slug, self.c.sha)
    }
    async fn author(&self) -> GitActor {
        GitActor {
            name: self.c.author_name.clone(),
            email: self.c.author_email.clone(),
            date: ts(self.c.date),
            user: Some(User {
                login: self.c.author_login.clone(),
            }),
        }
    }
}

/// Connection requests a document asks for: each connection field once per parent, where the
/// parents of a field under `repository` are the repositories asked for.
fn connection_requests(doc: &ExecutableDocument) -> u64 {
    fn walk(doc: &ExecutableDocument, set: &SelectionSet, parents: u64, depth: u32) -> u64 {
        if depth > 20 {
            return 0;
        }
        let mut n = 0;
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => {
                    let name = f.node.name.node.as_str();
                    let here = u64::from(CONNECTIONS.contains(&name)) * parents;
                    n += here + walk(doc, &f.node.selection_set.node, parents, depth + 1);
                }
                Selection::InlineFragment(i) => {
                    n += walk(doc, &i.node.selection_set.node, parents, depth + 1)
                }
                Selection::FragmentSpread(s) => {
                    if let Some(fr) = doc.fragments.get(&s.node.fragment_name.node) {
                        n += walk(doc, &fr.node.selection_set.node, parents, depth + 1);
                    }
                }
            }
        }
        n
    }
    doc.operations
        .iter()
        .map(|(_, op)| walk(doc, &op.node.selection_set.node, 1, 0))
        .sum()
}

/// A query's cost as GitHub computes it (at least 1).
fn cost(doc: &ExecutableDocument) -> u64 {
    connection_requests(doc).div_ceil(100).max(1)
}

/// `POST /graphql`.
pub(super) async fn endpoint(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    inner
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    *inner.by_path.lock().entry("/graphql".into()).or_default() += 1;
    if !token_ok(&inner, &headers) {
        return gh_error(
            StatusCode::UNAUTHORIZED,
            "This endpoint requires you to be authenticated.",
            "https://docs.github.com/graphql/guides/forming-calls-with-graphql#authenticating-with-graphql",
        );
    }
    let req: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return gh_error(
                StatusCode::BAD_REQUEST,
                &format!("Problems parsing JSON: {e}"),
                "https://docs.github.com/graphql",
            )
        }
    };
    let doc = match async_graphql::parser::parse_query(&req.query) {
        Ok(d) => d,
        Err(e) => {
            let body = json!({"errors": [{"message": e.to_string()}]});
            return axum::Json(body).into_response();
        }
    };
    let cost = cost(&doc);
    let charged = {
        let mut w = inner.graphql.lock();
        let now = Utc::now().timestamp();
        if now >= w.reset {
            w.used = 0;
            w.reset = now + w.window_secs;
        }
        if w.used + cost > w.limit {
            None
        } else {
            w.used += cost;
            Some(Charged {
                cost,
                limit: w.limit,
                used: w.used,
                reset: w.reset,
            })
        }
    };
    let Some(charged) = charged else {
        let w = inner.graphql.lock();
        let mut r = axum::Json(json!({"errors": [{"type": "RATE_LIMITED",
            "message": "API rate limit exceeded for user ID 1."}]}))
        .into_response();
        rate_headers(&mut r, &w, w.used);
        return r;
    };
    let schema = inner.graphql_schema.clone();
    let resp = schema.execute(req.data(charged)).await;
    let mut r = axum::Json(resp).into_response();
    let w = inner.graphql.lock();
    rate_headers(&mut r, &w, charged.used);
    r
}

fn rate_headers(r: &mut Response, w: &Window, used: u64) {
    set_rate_headers(r, w.limit, used, w.reset, "graphql");
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_counts_connections_per_repository_as_github_does() {
        let one = "{ r0: repository(owner: \"o\", name: \"a\") { pushedAt } rateLimit { cost } }";
        assert_eq!(cost(&async_graphql::parser::parse_query(one).unwrap()), 1);
        let fields = "pushedAt repositoryTopics(first: 20) { nodes { topic { name } } } issues(states: OPEN) { totalCount } pullRequests(states: OPEN) { totalCount }";
        let many: String = (0..100)
            .map(|i| format!("r{i}: repository(owner: \"o\", name: \"n{i}\") {{ {fields} }}\n"))
            .collect();
        let doc = async_graphql::parser::parse_query(format!("{{ {many} }}")).unwrap();
        assert_eq!(connection_requests(&doc), 300);
        assert_eq!(cost(&doc), 3);
    }
}
