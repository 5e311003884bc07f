//! A simulated GitHub REST API over the demo's git world, faithful where our client depends
//! on it: `ETag` on every 200 and `304 Not Modified` for a matching `If-None-Match` (which does
//! not count against the limit), `x-ratelimit-*` headers that count down and reset, a 403 with
//! GitHub's rate-limit body when the window is spent, secondary-limit 403/429 with
//! `Retry-After`, `Link` pagination, 401 "Bad credentials", and GitHub's 404 body.
//! Counters let tests check the economy. `POST /graphql` (in `graphql`) serves the fields a
//! batched refresh reads, with GitHub's GraphQL cost accounting in its own window.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{SecondsFormat, Utc};
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::faults::{self, Faults};
use super::git::{Commit, GitWorld};

mod graphql;
mod rest;

use rest::{repo_numbers, ts};

struct Window {
    limit: u64,
    used: u64,
    reset: i64,
    window_secs: i64,
}

struct Inner {
    token: String,
    git: Arc<GitWorld>,
    window: Mutex<Window>,
    /// The next N requests hit a secondary limit: (count, retry-after seconds, status).
    secondary: Mutex<(u32, u64, u16)>,
    requests: AtomicU64,
    not_modified: AtomicU64,
    /// Requests by path (without query), for tests.
    by_path: Mutex<std::collections::HashMap<String, u64>>,
    /// Registered webhooks: (payload URL, secret), as a repository or organization hook.
    webhooks: Mutex<Vec<(String, String)>>,
    /// The GraphQL API's own window (`x-ratelimit-resource: graphql`), in points.
    graphql: Mutex<Window>,
    graphql_schema: graphql::GraphSchema,
}

#[derive(Clone)]
pub struct GitHubSim {
    addr: std::net::SocketAddr,
    pub faults: Arc<Faults>,
    inner: Arc<Inner>,
}

fn gh_error(status: StatusCode, message: &str, doc: &str) -> Response {
    let mut body = json!({"message": message, "documentation_url": doc});
    if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
        body["status"] = json!(status.as_u16().to_string());
    }
    let mut r = (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response();
    github_headers(&mut r);
    r
}

impl GitHubSim {
    pub async fn start(
        git: Arc<GitWorld>,
        token: &str,
        limit: u64,
        shutdown: CancellationToken,
    ) -> std::io::Result<Self> {
        let faults = Arc::new(Faults::default());
        let inner = Arc::new(Inner {
            token: token.to_string(),
            graphql_schema: graphql::schema(git.clone()),
            graphql: Mutex::new(Window {
                limit: 5_000,
                used: 0,
                reset: Utc::now().timestamp() + 3600,
                window_secs: 3600,
            }),
            git,
            window: Mutex::new(Window {
                limit,
                used: 0,
                reset: Utc::now().timestamp() + 3600,
                window_secs: 3600,
            }),
            secondary: Mutex::new((0, 0, 403)),
            requests: AtomicU64::new(0),
            not_modified: AtomicU64::new(0),
            by_path: Default::default(),
            webhooks: Default::default(),
        });
        let router = Router::new()
            .route("/rate_limit", get(rate_limit))
            .route("/graphql", axum::routing::post(graphql::endpoint))
            .route("/repos/{owner}/{repo}", get(repo))
            .route("/repos/{owner}/{repo}/commits", get(commits))
            .route("/repos/{owner}/{repo}/commits/{reference}", get(commit))
            .route("/repos/{owner}/{repo}/pulls", get(pulls))
            .route("/repos/{owner}/{repo}/pulls/{number}", get(pull))
            .route("/repos/{owner}/{repo}/actions/runs", get(runs))
            .route("/repos/{owner}/{repo}/actions/runs/{run_id}", get(run))
            .fallback(|| async {
                gh_error(
                    StatusCode::NOT_FOUND,
                    "Not Found",
                    "https://docs.github.com/rest",
                )
            })
            .with_state(inner.clone());
        let addr = faults::serve(router, faults.clone(), shutdown).await?;
        Ok(Self {
            addr,
            faults,
            inner,
        })
    }

    /// Registers a webhook: every delivery goes to `url`, signed with `secret`.
    pub fn register_webhook(&self, url: &str, secret: &str) {
        self.inner
            .webhooks
            .lock()
            .push((url.to_string(), secret.to_string()));
    }

    /// Pushes a commit to a repository's default branch and delivers the `push` event to every
    /// registered webhook, as GitHub does. Returns the commit and each delivery's HTTP status.
    pub async fn push(
        &self,
        slug: &str,
        message: &str,
        author_login: &str,
    ) -> Option<(Commit, Vec<u16>)> {
        let before = self.inner.git.head(slug)?;
        let commit = self.inner.git.push(slug, message, author_login)?;
        let repo = self.inner.git.repo(slug)?;
        let payload = push_payload(&repo, &before.sha, &commit);
        let statuses = self.deliver("push", &payload).await;
        Some((commit, statuses))
    }

    /// Delivers one event to every registered webhook with GitHub's headers
    /// (`X-GitHub-Event`, `X-GitHub-Delivery`, `X-GitHub-Hook-ID`, `X-Hub-Signature-256`,
    /// `User-Agent: GitHub-Hookshot/...`); returns each delivery's HTTP status (0: unreachable).
    pub async fn deliver(&self, event: &str, payload: &Value) -> Vec<u16> {
        let hooks = self.inner.webhooks.lock().clone();
        let body = payload.to_string();
        let client = reqwest::Client::new();
        let mut statuses = Vec::new();
        for (i, (url, secret)) in hooks.iter().enumerate() {
            let r = client
                .post(url)
                .header("content-type", "application/json")
                .header("user-agent", "GitHub-Hookshot/5f8a3e2")
                .header("x-github-event", event)
                .header("x-github-delivery", uuid::Uuid::new_v4().to_string())
                .header("x-github-hook-id", (400_000_000 + i).to_string())
                .header("x-hub-signature-256", sign(secret, body.as_bytes()))
                .body(body.clone())
                .send()
                .await;
            statuses.push(r.map(|r| r.status().as_u16()).unwrap_or(0));
        }
        statuses
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests answered (any status) and of those 304s.
    pub fn counters(&self) -> (u64, u64) {
        (
            self.inner.requests.load(Ordering::SeqCst),
            self.inner.not_modified.load(Ordering::SeqCst),
        )
    }

    /// Requests to one path (`/repos/o/r`), any query.
    pub fn requests_to(&self, path: &str) -> u64 {
        self.inner.by_path.lock().get(path).copied().unwrap_or(0)
    }

    /// Rate-limit points spent in this window.
    pub fn used(&self) -> u64 {
        self.inner.window.lock().used
    }

    /// GraphQL rate-limit points spent in this window.
    pub fn graphql_used(&self) -> u64 {
        self.inner.graphql.lock().used
    }

    /// Spends the rest of the window (the next counted request gets the rate-limit 403).
    pub fn exhaust(&self) {
        let mut w = self.inner.window.lock();
        w.used = w.limit;
    }

    /// Starts a fresh window.
    pub fn reset_window(&self) {
        let mut w = self.inner.window.lock();
        w.used = 0;
        w.reset = Utc::now().timestamp() + w.window_secs;
    }

    /// The next `count` requests hit a secondary limit (`status` 403 or 429, `Retry-After`).
    pub fn secondary_limit(&self, count: u32, retry_after_secs: u64, status: u16) {
        *self.inner.secondary.lock() = (count, retry_after_secs, status);
    }
}

/// `Authorization: Bearer <token>` (or GitHub's older `token <token>`) names our token.
fn token_ok(inner: &Inner, headers: &HeaderMap) -> bool {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    matches!(auth.and_then(|a| a.strip_prefix("Bearer ").or_else(|| a.strip_prefix("token "))), Some(t) if t == inner.token)
}

/// Authentication, limits and conditional-request handling shared by every endpoint. `body`
/// is computed only when the request is allowed through.
fn respond(
    inner: &Inner,
    headers: &HeaderMap,
    uri: &Uri,
    body: impl FnOnce() -> Option<(Value, Option<String>)>,
) -> Response {
    inner.requests.fetch_add(1, Ordering::SeqCst);
    *inner
        .by_path
        .lock()
        .entry(uri.path().to_string())
        .or_default() += 1;
    if !token_ok(inner, headers) {
        return gh_error(
            StatusCode::UNAUTHORIZED,
            "Bad credentials",
            "https://docs.github.com/rest",
        );
    }
    {
        let mut s = inner.secondary.lock();
        if s.0 > 0 {
            s.0 -= 1;
            let status = StatusCode::from_u16(s.2).unwrap_or(StatusCode::FORBIDDEN);
            let mut r = gh_error(status, "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits");
            r.headers_mut()
                .insert("retry-after", HeaderValue::from(s.1));
            return r;
        }
    }
    let now = Utc::now().timestamp();
    let (limit, used, reset) = {
        let mut w = inner.window.lock();
        if now >= w.reset {
            w.used = 0;
            w.reset = now + w.window_secs;
        }
        (w.limit, w.used, w.reset)
    };
    let rate_headers = |r: &mut Response, used: u64| {
        github_headers(r);
        set_rate_headers(r, limit, used, reset, "core");
        let h = r.headers_mut();
        h.insert(
            "x-github-api-version-selected",
            HeaderValue::from_static("2022-11-28"),
        );
    };
    let Some((value, link)) = body() else {
        // (the 404 below gets the same headers)
        let mut r = gh_error(
            StatusCode::NOT_FOUND,
            "Not Found",
            "https://docs.github.com/rest/repos/repos#get-a-repository",
        );
        let used = {
            let mut w = inner.window.lock();
            w.used += 1;
            w.used
        };
        rate_headers(&mut r, used);
        return r;
    };
    if used >= limit {
        // With the window spent, GitHub refuses everything, conditional requests included.
        let mut r = gh_error(StatusCode::FORBIDDEN, "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID.",
            "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api");
        rate_headers(&mut r, used);
        return r;
    }
    let text = value.to_string();
    let etag = format!("W/\"{}\"", sha1_smol::Sha1::from(&text).digest());
    let if_none = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    if if_none == Some(etag.as_str()) {
        // A conditional hit costs no rate limit.
        inner.not_modified.fetch_add(1, Ordering::SeqCst);
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        r.headers_mut().insert(
            header::ETAG,
            HeaderValue::from_str(&etag).expect("BUG: etag is ASCII"),
        );
        rate_headers(&mut r, used);
        return r;
    }
    let used = {
        let mut w = inner.window.lock();
        w.used += 1;
        w.used
    };
    let last_modified = ["pushed_at", "updated_at"]
        .iter()
        .find_map(|k| value[*k].as_str())
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| {
            t.with_timezone(&Utc)
                .format("%a, %d %b %Y %H:%M:%S GMT")
                .to_string()
        });
    let mut r = (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        text,
    )
        .into_response();
    if let Some(lm) = last_modified.and_then(|l| HeaderValue::from_str(&l).ok()) {
        r.headers_mut().insert(header::LAST_MODIFIED, lm);
    }
    r.headers_mut().insert(
        header::ETAG,
        HeaderValue::from_str(&etag).expect("BUG: etag is ASCII"),
    );
    if let Some(l) = link {
        if let Ok(v) = HeaderValue::from_str(&l) {
            r.headers_mut().insert(header::LINK, v);
        }
    }
    rate_headers(&mut r, used);
    r
}

/// The host the client called, for absolute `Link` URLs.
fn host(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("api.github.com")
        .to_string()
}

fn query(raw: &Option<String>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn q<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Cuts a page and builds the `Link` header, as GitHub does (`per_page` ≤ 100, `page` from 1).
fn page<T: Clone>(
    items: &[T],
    pairs: &[(String, String)],
    uri: &Uri,
    host: &str,
) -> (Vec<T>, Option<String>) {
    let per_page = q(pairs, "per_page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let page = q(pairs, "page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let start = (page - 1) * per_page;
    let slice = items.iter().skip(start).take(per_page).cloned().collect();
    let last = items.len().div_ceil(per_page).max(1);
    let base: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k != "page")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let url = |p: usize| {
        let mut qs = base.clone();
        qs.push(format!("page={p}"));
        format!("<http://{host}{}?{}>", uri.path(), qs.join("&"))
    };
    let mut links = Vec::new();
    if page < last {
        links.push(format!("{}; rel=\"next\"", url(page + 1)));
        links.push(format!("{}; rel=\"last\"", url(last)));
    }
    if page > 1 {
        links.push(format!("{}; rel=\"prev\"", url(page - 1)));
        links.push(format!("{}; rel=\"first\"", url(1)));
    }
    (slice, (!links.is_empty()).then(|| links.join(", ")))
}

/// `GET /rate_limit`: free, with the core window's headers, and every window in the body.
async fn rate_limit(State(inner): State<Arc<Inner>>) -> Response {
    let w = inner.window.lock();
    let g = inner.graphql.lock();
    let window = |w: &Window, name: &str| json!({"limit": w.limit, "remaining": w.limit.saturating_sub(w.used), "reset": w.reset, "used": w.used, "resource": name});
    let core = window(&w, "core");
    // The simulation is never searched: its search window stays full.
    let reset = Utc::now().timestamp() + 60;
    let search =
        json!({"limit": 30, "remaining": 30, "reset": reset, "used": 0, "resource": "search"});
    let mut r = axum::Json(
        json!({"resources": {"core": core, "graphql": window(&g, "graphql"), "search": search}, "rate": core}),
    )
    .into_response();
    github_headers(&mut r);
    set_rate_headers(&mut r, w.limit, w.used, w.reset, "core");
    r
}

/// GitHub's `x-ratelimit-*` headers for one window (`core` for REST, `graphql`).
fn set_rate_headers(r: &mut Response, limit: u64, used: u64, reset: i64, resource: &'static str) {
    let h = r.headers_mut();
    h.insert("x-ratelimit-limit", HeaderValue::from(limit));
    h.insert(
        "x-ratelimit-remaining",
        HeaderValue::from(limit.saturating_sub(used)),
    );
    h.insert("x-ratelimit-reset", HeaderValue::from(reset));
    h.insert("x-ratelimit-used", HeaderValue::from(used));
    h.insert("x-ratelimit-resource", HeaderValue::from_static(resource));
}

/// What GitHub puts on every REST answer: caching rules (private, varying by credentials),
/// the media type, and a request id (`X-GitHub-Request-Id`, as support asks for it).
fn github_headers(r: &mut Response) {
    let id = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
    let h = r.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=60, s-maxage=60"),
    );
    h.insert(
        header::VARY,
        HeaderValue::from_static(
            "Accept, Authorization, Cookie, X-GitHub-OTP,Accept-Encoding, Accept, X-Requested-With",
        ),
    );
    h.insert(
        "x-github-media-type",
        HeaderValue::from_static("github.v3; format=json"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("{}:{}:{}", &id[..4], &id[4..10], &id[10..20])) {
        h.insert("x-github-request-id", v);
    }
}

async fn repo(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    uri: Uri,
    Path((owner, name)): Path<(String, String)>,
) -> Response {
    let slug = format!("{owner}/{name}");
    respond(&inner, &headers, &uri, || {
        let r = inner.git.repo(&slug)?;
        Some((rest::repository(&r, false), None))
    })
}

async fn commits(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    uri: Uri,
    Path((owner, name)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    let slug = format!("{owner}/{name}");
    let pairs = query(&raw);
    respond(&inner, &headers, &uri, || {
        let r = inner.git.repo(&slug)?;
        let all: Vec<Value> = r
            .commits
            .iter()
            .rev()
            .map(|c| rest::commit(&r, c))
            .collect();
        let (items, link) = page(&all, &pairs, &uri, &host(&headers));
        Some((Value::Array(items), link))
    })
}

async fn commit(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    uri: Uri,
    Path((owner, name, reference)): Path<(String, String, String)>,
) -> Response {
    let slug = format!("{owner}/{name}");
    respond(&inner, &headers, &uri, || {
        let r = inner.git.repo(&slug)?;
        let c = if reference == r.default_branch || reference == "HEAD" {
            r.commits.last().cloned()
        } else {
            inner.git.commit(&slug, &reference)
        }?;
        Some((rest::commit(&r, &c), None))
    })
}

async fn pulls(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    uri: Uri,
    Path((owner, name)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    let slug = format!("{owner}/{name}");
    let pairs = query(&raw);
    let state = q(&pairs, "state").unwrap_or("open").to_string();
    respond(&inner, &headers, &uri, || {
        let r = inner.git.repo(&slug)?;
        let all: Vec<Value> = rest::pull_requests(&r, false)
            .into_iter()
            .filter(|p| state == "all" || p["state"] == state)
            .collect();
        let (items, link) = page(&all, &pairs, &uri, &host(&headers));
        Some((Value::Array(items), link))
    })
}

/// `GET /repos/{owner}/{repo}/pulls/{number}`.
async fn pull(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    uri: Uri,
    Path((owner, name, number)): Path<(String, String, String)>,
) -> Response {
    let slug = format!("{owner}/{name}");
    respond(&inner, &headers, &uri, || {
        let r = inner.git.repo(&slug)?;
        let n: u64 = number.parse().ok()?;
        let p = rest::pull_requests(&r, true)
            .into_iter()
            .find(|p| p["number"] == n)?;
        Some((p, None))
    })
}

async fn runs(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    uri: Uri,
    Path((owner, name)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    let slug = format!("{owner}/{name}");
    let pairs = query(&raw);
    let branch = q(&pairs, "branch").map(str::to_string);
    respond(&inner, &headers, &uri, || {
        let r = inner.git.repo(&slug)?;
        let all: Vec<Value> = rest::workflow_runs(&r)
            .into_iter()
            .filter(|run| branch.as_deref().is_none_or(|b| run["head_branch"] == b))
            .collect();
        let total = all.len();
        let (items, link) = page(&all, &pairs, &uri, &host(&headers));
        Some((json!({"total_count": total, "workflow_runs": items}), link))
    })
}

/// `GET /repos/{owner}/{repo}/actions/runs/{run_id}`.
async fn run(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    uri: Uri,
    Path((owner, name, run_id)): Path<(String, String, String)>,
) -> Response {
    let slug = format!("{owner}/{name}");
    respond(&inner, &headers, &uri, || {
        let r = inner.git.repo(&slug)?;
        let id: u64 = run_id.parse().ok()?;
        let run = rest::workflow_runs(&r)
            .into_iter()
            .find(|run| run["id"] == id)?;
        Some((run, None))
    })
}

/// `sha256=<hex>` of HMAC-SHA256(secret, body): GitHub's `X-Hub-Signature-256`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("BUG: HMAC takes keys of any length");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// A `push` event's payload, shaped as GitHub sends it (the whole repository, with its times
/// as Unix seconds, `master_branch` beside `default_branch`).
pub fn push_payload(repo: &crate::demo::git::Repo, before: &str, c: &Commit) -> Value {
    let slug = repo.slug.as_str();
    let branch = repo.default_branch.as_str();
    let id = repo_numbers(slug).id;
    let mut repository = rest::repository(repo, true);
    repository["master_branch"] = json!(branch);
    let person =
        json!({"name": c.author_name, "email": c.author_email, "username": c.author_login});
    let commit = json!({
        "id": c.sha, "tree_id": format!("{:0>40}", &c.sha[..8]), "distinct": true, "message": c.message,
        "timestamp": c.date.to_rfc3339_opts(SecondsFormat::Secs, true),
        "url": format!("https://github.com/{slug}/commit/{}", c.sha),
        "author": person, "committer": person, "added": [], "removed": [], "modified": ["README.md"],
    });
    json!({
        "ref": format!("refs/heads/{branch}"), "before": before, "after": c.sha,
        "created": false, "deleted": false, "forced": false, "base_ref": null,
        "compare": format!("https://github.com/{slug}/compare/{}...{}", &before[..12.min(before.len())], &c.sha[..12]),
        "commits": [commit.clone()], "head_commit": commit,
        "repository": repository,
        "pusher": {"name": c.author_login, "email": c.author_email},
        "sender": {"login": c.author_login, "id": 2000 + id % 1000, "type": "User"},
    })
}
