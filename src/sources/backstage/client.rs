//! HTTP client for the Backstage catalog API. Knows the paths, the paging and the error body;
//! nothing about state or events.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::wire::{self, QueryPage, RefsAnswer};
use crate::domain::Entity;
use crate::sources::SourceError;

/// A page count no real catalog reaches with a sane page size; stops a broken cursor loop.
const MAX_PAGES: usize = 10_000;

#[derive(Clone)]
pub struct BackstageClient {
    http: reqwest::Client,
    /// For event streams: no overall timeout.
    stream_http: reqwest::Client,
    base: String,
    token: Option<SecretString>,
    timeout_secs: f64,
    page_size: u32,
}

/// One complete listing of the catalog.
pub struct Listing {
    pub entities: Vec<Entity>,
    /// Items the catalog sent that we could not read (logged, counted, not fatal).
    pub skipped: usize,
}

impl BackstageClient {
    pub fn new(
        base_url: &str,
        token: Option<SecretString>,
        timeout_secs: f64,
        page_size: u32,
    ) -> Result<Self, SourceError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs_f64(timeout_secs))
            .connect_timeout(Duration::from_secs_f64(timeout_secs.min(5.0)))
            .user_agent(concat!("idp-graph/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SourceError::Unreachable {
                url: base_url.to_string(),
                reason: format!("cannot build HTTP client: {e}"),
            })?;
        let stream_http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs_f64(timeout_secs.min(5.0)))
            .read_timeout(Duration::from_secs(120))
            .user_agent(concat!("idp-graph/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SourceError::Unreachable {
                url: base_url.to_string(),
                reason: format!("cannot build HTTP client: {e}"),
            })?;
        Ok(Self {
            http,
            stream_http,
            base: base_url.trim_end_matches('/').to_string(),
            token,
            timeout_secs,
            page_size,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub(super) fn stream_http(&self) -> &reqwest::Client {
        &self.stream_http
    }

    pub(super) fn token(&self) -> Option<&SecretString> {
        self.token.as_ref()
    }

    pub(super) fn request_public(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.request(method, path)
    }

    pub(super) async fn send_json_public<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<T, SourceError> {
        self.send_json(req, what).await
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let req = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .header(reqwest::header::ACCEPT, "application/json");
        match &self.token {
            Some(t) => req.bearer_auth(t.expose_secret()),
            None => req,
        }
    }

    async fn send_json<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<T, SourceError> {
        let url = format!("{}{}", self.base, what);
        let resp = crate::sources::send_traced("backstage", req)
            .await
            .map_err(|e| SourceError::from_reqwest(&url, self.timeout_secs, &e))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| SourceError::from_reqwest(&url, self.timeout_secs, &e))?;
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(SourceError::Unauthorized {
                url,
                status: status.as_u16(),
            });
        }
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::BAD_REQUEST {
            return Err(SourceError::Refused {
                status: status.as_u16(),
                code: if status == reqwest::StatusCode::NOT_FOUND {
                    "NOT_FOUND"
                } else {
                    "BAD_USER_INPUT"
                },
                message: error_message(&body),
            });
        }
        if !status.is_success() {
            return Err(SourceError::Status {
                url,
                status: status.as_u16(),
                message: error_message(&body),
            });
        }
        serde_json::from_slice(&body).map_err(|e| SourceError::Malformed {
            url,
            reason: e.to_string(),
        })
    }

    /// Lists the whole catalog through `by-query`, following `nextCursor` to the end.
    pub async fn list_all(&self) -> Result<Listing, SourceError> {
        let path = "/api/catalog/entities/by-query";
        let mut entities = Vec::new();
        let mut skipped = 0;
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let limit = self.page_size.to_string();
            let mut query: Vec<(&str, &str)> = vec![("limit", &limit)];
            if let Some(c) = &cursor {
                // With a cursor, Backstage ignores filters and order: the cursor carries them.
                query.push(("cursor", c));
            }
            let page: QueryPage = self
                .send_json(self.request(reqwest::Method::GET, path).query(&query), path)
                .await?;
            if entities.is_empty() {
                if let Some(total) = page.total_items {
                    entities.reserve(total.min(1_000_000) as usize);
                }
            }
            for item in page.items {
                match wire::to_entity(item) {
                    Ok(e) => entities.push(e),
                    Err(reason) => {
                        skipped += 1;
                        tracing::warn!(%reason, "skipping unreadable catalog entity");
                    }
                }
            }
            match page.page_info.next_cursor {
                Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
                Some(_) => {
                    return Err(SourceError::Malformed {
                        url: format!("{}{}", self.base, path),
                        reason: "nextCursor repeated the cursor just used".into(),
                    })
                }
                None => return Ok(Listing { entities, skipped }),
            }
        }
        Err(SourceError::Malformed {
            url: format!("{}{}", self.base, path),
            reason: format!("paging did not end after {MAX_PAGES} pages"),
        })
    }

    /// Looks up entities by ref in one request; the answer has one slot per ref, in order,
    /// `None` where the catalog has no such entity.
    pub async fn by_refs(&self, refs: &[String]) -> Result<Vec<Option<Entity>>, SourceError> {
        let path = "/api/catalog/entities/by-refs";
        let answer: RefsAnswer = self
            .send_json(
                self.request(reqwest::Method::POST, path)
                    .json(&serde_json::json!({ "entityRefs": refs })),
                path,
            )
            .await?;
        if answer.items.len() != refs.len() {
            return Err(SourceError::Malformed {
                url: format!("{}{}", self.base, path),
                reason: format!(
                    "asked for {} refs, got {} slots",
                    refs.len(),
                    answer.items.len()
                ),
            });
        }
        Ok(answer
            .items
            .into_iter()
            .map(|slot| slot.and_then(|v| wire::to_entity(v).ok()))
            .collect())
    }
}

/// Backstage's error body is `{"error":{"name","message"},...}`; anything else is summarised.
fn error_message(body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let message = parsed.as_ref().and_then(|v| {
        let err = v.get("error")?;
        let name = err.get("name").and_then(Value::as_str).unwrap_or("Error");
        let msg = err.get("message").and_then(Value::as_str).unwrap_or("");
        Some(format!("{name}: {msg}"))
    });
    message.unwrap_or_else(|| format!("unexpected body of {} bytes", body.len()))
}
