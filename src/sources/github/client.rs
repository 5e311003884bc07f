//! HTTP client for the GitHub REST API: conditional GETs, rate-limit accounting, `Link` paging.

use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use parking_lot::Mutex;
use secrecy::{ExposeSecret, SecretString};

use crate::sources::SourceError;

/// The rate-limit budget as GitHub last reported it (`x-ratelimit-*`), plus our own block
/// after a secondary limit (`Retry-After`).
#[derive(Debug, Clone, Default)]
pub struct RateBudget {
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    /// Unix seconds when the window resets.
    pub reset: Option<i64>,
    pub used: Option<u64>,
    /// Unix seconds before which we send nothing.
    pub blocked_until: Option<i64>,
    /// Requests sent, and of those answered 304 (free).
    pub requests: u64,
    pub not_modified: u64,
    /// Points spent in the GraphQL window, as GitHub last said.
    pub graphql_used: Option<u64>,
}

impl RateBudget {
    /// Below 10 % of the window: refresh less often.
    pub fn is_low(&self) -> bool {
        matches!((self.remaining, self.limit), (Some(r), Some(l)) if l > 0 && r * 10 < l)
    }
}

pub enum GetOutcome {
    Modified {
        body: Bytes,
        etag: Option<String>,
        next: Option<String>,
    },
    NotModified,
    NotFound,
}

#[derive(Clone)]
pub struct GitHubClient {
    http: reqwest::Client,
    base: String,
    token: Option<SecretString>,
    timeout_secs: f64,
    budget: std::sync::Arc<Mutex<RateBudget>>,
}

fn rate_limited(message: String) -> SourceError {
    SourceError::Refused {
        status: 403,
        code: "RATE_LIMITED",
        message,
    }
}

/// The `rel="next"` URL of a `Link` header.
fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (url, rel) = part.split_once(';')?;
        rel.contains("rel=\"next\"").then(|| {
            url.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

impl GitHubClient {
    pub fn new(
        base_url: &str,
        token: Option<SecretString>,
        timeout_secs: f64,
    ) -> Result<Self, SourceError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs_f64(timeout_secs))
            .user_agent(concat!("idp-graph/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SourceError::Unreachable {
                url: base_url.to_string(),
                reason: format!("cannot build HTTP client: {e}"),
            })?;
        Ok(Self {
            http,
            base: base_url.trim_end_matches('/').to_string(),
            token,
            timeout_secs,
            budget: Default::default(),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn budget(&self) -> RateBudget {
        self.budget.lock().clone()
    }

    /// Takes the budget another replica saw (replicas share one credential, so one budget)
    /// when it is newer than this one's: a later window, or fewer points left in the same one.
    pub fn merge_budget(&self, limit: Option<u64>, remaining: Option<u64>, reset: Option<i64>) {
        let (Some(remaining), Some(reset)) = (remaining, reset) else {
            return;
        };
        let mut b = self.budget.lock();
        let newer = match (b.reset, b.remaining) {
            (Some(r), _) if reset > r => true,
            (Some(r), Some(left)) if reset == r => remaining < left,
            (None, _) | (Some(_), None) => true,
            _ => false,
        };
        if newer {
            b.reset = Some(reset);
            b.remaining = Some(remaining);
            if limit.is_some() {
                b.limit = limit;
            }
        }
    }

    /// GitHub's web host for this API (`api.github.com` → `github.com`; Enterprise keeps its host).
    pub fn web_host(&self) -> String {
        let host = url::Url::parse(&self.base)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        if host == "api.github.com" {
            "github.com".into()
        } else {
            host
        }
    }

    /// A conditional GET of a path (or a full `Link` URL).
    pub async fn get(
        &self,
        path_or_url: &str,
        etag: Option<&str>,
    ) -> Result<GetOutcome, SourceError> {
        let now = Utc::now().timestamp();
        {
            let b = self.budget.lock();
            if let Some(until) = b.blocked_until.filter(|u| *u > now) {
                return Err(rate_limited(format!(
                    "GitHub rate limit: waiting {}s before the next request",
                    until - now
                )));
            }
            if b.remaining == Some(0) && b.reset.is_some_and(|r| r > now) {
                return Err(rate_limited(format!(
                    "GitHub rate limit exhausted; resets in {}s",
                    b.reset.unwrap_or(now) - now
                )));
            }
        }
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_string()
        } else {
            format!("{}{}", self.base, path_or_url)
        };
        let mut req = self
            .http
            .get(&url)
            .header(reqwest::header::ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28");
        if let Some(t) = &self.token {
            req = req.bearer_auth(t.expose_secret());
        }
        if let Some(e) = etag {
            req = req.header(reqwest::header::IF_NONE_MATCH, e);
        }
        let resp = crate::sources::send_traced("github", req)
            .await
            .map_err(|e| SourceError::from_reqwest(&self.base, self.timeout_secs, &e))?;
        let status = resp.status().as_u16();
        let h = resp.headers().clone();
        let header = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
        {
            let mut b = self.budget.lock();
            b.requests += 1;
            if let Some(v) = header("x-ratelimit-limit").and_then(|v| v.parse().ok()) {
                b.limit = Some(v);
            }
            if let Some(v) = header("x-ratelimit-remaining").and_then(|v| v.parse().ok()) {
                b.remaining = Some(v);
            }
            if let Some(v) = header("x-ratelimit-reset").and_then(|v| v.parse().ok()) {
                b.reset = Some(v);
            }
            if let Some(v) = header("x-ratelimit-used").and_then(|v| v.parse().ok()) {
                b.used = Some(v);
            }
            if status == 304 {
                b.not_modified += 1;
            }
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| SourceError::from_reqwest(&self.base, self.timeout_secs, &e))?;
        match status {
            200 => Ok(GetOutcome::Modified {
                body,
                etag: header("etag"),
                next: header("link").as_deref().and_then(next_link),
            }),
            304 => Ok(GetOutcome::NotModified),
            404 => Ok(GetOutcome::NotFound),
            401 => Err(SourceError::Unauthorized {
                url: self.base.clone(),
                status,
            }),
            403 | 429 => {
                let message = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| {
                        v.get("message")
                            .and_then(|m| m.as_str())
                            .map(str::to_string)
                    })
                    .unwrap_or_else(|| format!("HTTP {status}"));
                let retry_after = header("retry-after").and_then(|v| v.parse::<i64>().ok());
                let exhausted = header("x-ratelimit-remaining").as_deref() == Some("0");
                if retry_after.is_some()
                    || exhausted
                    || message.to_lowercase().contains("rate limit")
                {
                    let until = match retry_after {
                        Some(s) => Utc::now().timestamp() + s,
                        None => header("x-ratelimit-reset")
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(Utc::now().timestamp() + 60),
                    };
                    self.budget.lock().blocked_until = Some(until);
                    Err(rate_limited(message))
                } else {
                    Err(SourceError::Refused {
                        status,
                        code: "FORBIDDEN",
                        message,
                    })
                }
            }
            _ => Err(SourceError::Status {
                url: self.base.clone(),
                status,
                message: format!("unexpected body of {} bytes", body.len()),
            }),
        }
    }
}

impl GitHubClient {
    /// GitHub's GraphQL endpoint beside this REST base: `https://api.github.com/graphql`, or
    /// `https://<host>/api/graphql` for Enterprise Server's `https://<host>/api/v3`.
    pub fn graphql_url(&self) -> String {
        match self.base.strip_suffix("/api/v3") {
            Some(host) => format!("{host}/api/graphql"),
            None => format!("{}/graphql", self.base),
        }
    }

    /// Runs one GraphQL query; the `data` object, or the error GitHub gave. Points spent are
    /// counted in their own window (`x-ratelimit-resource: graphql`), not the REST budget.
    pub async fn graphql(&self, query: &str) -> Result<serde_json::Value, SourceError> {
        let url = self.graphql_url();
        let mut req = self
            .http
            .post(&url)
            .json(&serde_json::json!({ "query": query }));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t.expose_secret());
        }
        let resp = crate::sources::send_traced("github", req)
            .await
            .map_err(|e| SourceError::from_reqwest(&self.base, self.timeout_secs, &e))?;
        let status = resp.status().as_u16();
        let used = resp
            .headers()
            .get("x-ratelimit-used")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let body = resp
            .bytes()
            .await
            .map_err(|e| SourceError::from_reqwest(&self.base, self.timeout_secs, &e))?;
        {
            let mut b = self.budget.lock();
            b.requests += 1;
            if used.is_some() {
                b.graphql_used = used;
            }
        }
        if status == 401 {
            return Err(SourceError::Unauthorized {
                url: self.base.clone(),
                status,
            });
        }
        let v: serde_json::Value = match (status, serde_json::from_slice(&body)) {
            (200, Ok(v)) => v,
            (_, parsed) => {
                return Err(SourceError::Status {
                    url: url.clone(),
                    status,
                    message: parsed
                        .ok()
                        .and_then(|v: serde_json::Value| {
                            v.get("message")
                                .and_then(|m| m.as_str())
                                .map(str::to_string)
                        })
                        .unwrap_or_else(|| format!("a body of {} bytes", body.len())),
                })
            }
        };
        if let Some(e) = v.pointer("/errors/0") {
            let message = e["message"].as_str().unwrap_or("GraphQL error").to_string();
            if e["type"] == "RATE_LIMITED" {
                return Err(rate_limited(message));
            }
            if v.get("data").is_none_or(|d| d.is_null()) {
                return Err(SourceError::Status {
                    url,
                    status,
                    message,
                });
            }
        }
        Ok(v.get("data").cloned().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_link_is_found() {
        let l = r#"<https://api.github.com/repositories/1/pulls?page=2>; rel="next", <https://api.github.com/repositories/1/pulls?page=5>; rel="last""#;
        assert_eq!(
            next_link(l).as_deref(),
            Some("https://api.github.com/repositories/1/pulls?page=2")
        );
        assert_eq!(next_link(r#"<x>; rel="prev""#), None);
    }
}
