//! HTTP client for the ArgoCD REST API (grpc-gateway). Knows paths, the stream framing and
//! the error body; nothing about state.

use std::time::Duration;

use futures::{Stream, StreamExt};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::Value;

use super::wire::{self, AppList, ErrorBody, ProjectList, StreamLine};
use crate::domain::argocd::{Application, Project, ResourceRef};
use crate::sources::SourceError;

/// Longest line we accept from the stream (an Application with a big status is ~100 KB).
const MAX_LINE: usize = 8 << 20;

#[derive(Clone)]
pub struct ArgoCdClient {
    instance: String,
    http: reqwest::Client,
    /// For the long-lived stream: no overall timeout, only connect and read-idle bounds.
    stream_http: reqwest::Client,
    base: String,
    token: Option<SecretString>,
    timeout_secs: f64,
}

/// `ApplicationSyncRequest` as the REST API takes it.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncRequest {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    pub prune: bool,
    pub dry_run: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceRef>,
    pub app_namespace: String,
}

/// One parsed line of the application stream.
pub enum StreamItem {
    Upsert(Application),
    Delete(Application),
}

impl ArgoCdClient {
    pub fn new(
        instance: &str,
        base_url: &str,
        token: Option<SecretString>,
        timeout_secs: f64,
    ) -> Result<Self, SourceError> {
        let build = |timeout: Option<f64>| {
            let mut b = reqwest::Client::builder()
                .connect_timeout(Duration::from_secs_f64(timeout_secs.min(5.0)))
                .user_agent(concat!("idp-graph/", env!("CARGO_PKG_VERSION")));
            if let Some(t) = timeout {
                b = b.timeout(Duration::from_secs_f64(t));
            } else {
                // ArgoCD's SSE keepalive is 15 s; a stream silent for much longer is dead.
                b = b.read_timeout(Duration::from_secs(60));
            }
            b.build().map_err(|e| SourceError::Unreachable {
                url: base_url.to_string(),
                reason: format!("cannot build HTTP client: {e}"),
            })
        };
        Ok(Self {
            instance: instance.to_string(),
            http: build(Some(timeout_secs))?,
            stream_http: build(None)?,
            base: base_url.trim_end_matches('/').to_string(),
            token,
            timeout_secs,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    fn request(
        &self,
        client: &reqwest::Client,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        let req = client.request(method, format!("{}{}", self.base, path));
        match &self.token {
            Some(t) => req.bearer_auth(t.expose_secret()),
            None => req,
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder, path: &str) -> Result<Value, SourceError> {
        self.send_typed(req, path).await
    }

    async fn send_typed<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        path: &str,
    ) -> Result<T, SourceError> {
        let url = format!("{}{}", self.base, path);
        let resp = crate::sources::send_traced("argocd", req)
            .await
            .map_err(|e| SourceError::from_reqwest(&url, self.timeout_secs, &e))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| SourceError::from_reqwest(&url, self.timeout_secs, &e))?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|e| SourceError::Malformed {
                url,
                reason: e.to_string(),
            });
        }
        Err(error_from(&url, status.as_u16(), &body))
    }

    pub async fn list_applications(&self) -> Result<(Vec<Application>, usize), SourceError> {
        let path = "/api/v1/applications";
        let list: AppList = self
            .send_typed(self.request(&self.http, reqwest::Method::GET, path), path)
            .await?;
        let mut apps = Vec::new();
        let mut skipped = 0;
        for item in list.items.unwrap_or_default() {
            match wire::to_application(&self.instance, item.get()) {
                Ok(a) => apps.push(a),
                Err(reason) => {
                    skipped += 1;
                    tracing::warn!(%reason, instance = %self.instance, "skipping unreadable application");
                }
            }
        }
        Ok((apps, skipped))
    }

    pub async fn list_projects(&self) -> Result<Vec<Project>, SourceError> {
        let path = "/api/v1/projects";
        let v = self
            .send(self.request(&self.http, reqwest::Method::GET, path), path)
            .await?;
        let list: ProjectList = serde_json::from_value(v).map_err(|e| SourceError::Malformed {
            url: format!("{}{}", self.base, path),
            reason: e.to_string(),
        })?;
        Ok(list
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|p| wire::to_project(&self.instance, p))
            .collect())
    }

    /// Opens the application stream. Items end with the stream (EOF, error chunk, read error).
    pub async fn stream(
        &self,
    ) -> Result<impl Stream<Item = Result<StreamItem, SourceError>> + Send + 'static, SourceError>
    {
        let path = "/api/v1/stream/applications";
        let url = format!("{}{}", self.base, path);
        let resp = crate::sources::send_traced(
            "argocd",
            self.request(&self.stream_http, reqwest::Method::GET, path),
        )
        .await
        .map_err(|e| SourceError::from_reqwest(&url, self.timeout_secs, &e))?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.bytes().await.unwrap_or_default();
            return Err(error_from(&url, status.as_u16(), &body));
        }
        let instance = self.instance.clone();
        let bytes = resp.bytes_stream();
        let lines = futures::stream::unfold(
            (bytes, Vec::<u8>::new(), false),
            move |(mut bytes, mut buf, done)| {
                let url = url.clone();
                async move {
                    if done {
                        return None;
                    }
                    loop {
                        if let Some(pos) = buf.iter().position(|&b| b == b'\n') {
                            let line: Vec<u8> = buf.drain(..=pos).collect();
                            return Some((Ok(line), (bytes, buf, false)));
                        }
                        if buf.len() > MAX_LINE {
                            let e = SourceError::Malformed {
                                url,
                                reason: "stream line too long".into(),
                            };
                            return Some((Err(e), (bytes, Vec::new(), true)));
                        }
                        match bytes.next().await {
                            Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                            Some(Err(e)) => {
                                let e = SourceError::from_reqwest(&url, 0.0, &e);
                                return Some((Err(e), (bytes, Vec::new(), true)));
                            }
                            None if buf.is_empty() => return None,
                            None => {
                                let rest = std::mem::take(&mut buf);
                                return Some((Ok(rest), (bytes, buf, true)));
                            }
                        }
                    }
                }
            },
        );
        let base = self.base.clone();
        Ok(lines.filter_map(move |line| {
            let out = match line {
                Err(e) => Some(Err(e)),
                Ok(line) => parse_line(&instance, &base, &line),
            };
            futures::future::ready(out)
        }))
    }

    pub async fn get_application(
        &self,
        name: &str,
        app_namespace: &str,
        refresh: Option<&str>,
    ) -> Result<Application, SourceError> {
        let path = format!("/api/v1/applications/{}", urlencode(name));
        let mut req = self
            .request(&self.http, reqwest::Method::GET, &path)
            .query(&[("appNamespace", app_namespace)]);
        if let Some(r) = refresh {
            req = req.query(&[("refresh", r)]);
        }
        let v = self.send(req, &path).await?;
        self.app_from(v, &path)
    }

    fn app_from(&self, v: Value, path: &str) -> Result<Application, SourceError> {
        wire::to_application(&self.instance, &v.to_string()).map_err(|reason| {
            SourceError::Malformed {
                url: format!("{}{}", self.base, path),
                reason,
            }
        })
    }

    pub async fn sync(&self, req: &SyncRequest) -> Result<(Application, Value), SourceError> {
        let path = format!("/api/v1/applications/{}/sync", urlencode(&req.name));
        let v = self
            .send(
                self.request(&self.http, reqwest::Method::POST, &path)
                    .json(req),
                &path,
            )
            .await?;
        Ok((self.app_from(v.clone(), &path)?, v))
    }

    pub async fn rollback(
        &self,
        name: &str,
        app_namespace: &str,
        id: i64,
        prune: bool,
        dry_run: bool,
    ) -> Result<(Application, Value), SourceError> {
        let path = format!("/api/v1/applications/{}/rollback", urlencode(name));
        let body = serde_json::json!({"name": name, "id": id, "prune": prune, "dryRun": dry_run, "appNamespace": app_namespace});
        let v = self
            .send(
                self.request(&self.http, reqwest::Method::POST, &path)
                    .json(&body),
                &path,
            )
            .await?;
        Ok((self.app_from(v.clone(), &path)?, v))
    }

    pub async fn terminate(&self, name: &str, app_namespace: &str) -> Result<Value, SourceError> {
        let path = format!("/api/v1/applications/{}/operation", urlencode(name));
        self.send(
            self.request(&self.http, reqwest::Method::DELETE, &path)
                .query(&[("appNamespace", app_namespace)]),
            &path,
        )
        .await
    }

    pub async fn resource_tree(
        &self,
        name: &str,
        app_namespace: &str,
    ) -> Result<Value, SourceError> {
        let path = format!("/api/v1/applications/{}/resource-tree", urlencode(name));
        self.send(
            self.request(&self.http, reqwest::Method::GET, &path)
                .query(&[("appNamespace", app_namespace)]),
            &path,
        )
        .await
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub(super) fn parse_line(
    instance: &str,
    base: &str,
    line: &[u8],
) -> Option<Result<StreamItem, SourceError>> {
    let text = std::str::from_utf8(line).ok()?.trim();
    // SSE framing (`data: {...}`) and keepalive comments (`:`) are accepted too.
    let text = text.strip_prefix("data:").map(str::trim).unwrap_or(text);
    if text.is_empty() || text.starts_with(':') {
        return None;
    }
    let url = format!("{base}/api/v1/stream/applications");
    let parsed: StreamLine = match serde_json::from_str(text) {
        Ok(p) => p,
        Err(e) => {
            return Some(Err(SourceError::Malformed {
                url,
                reason: e.to_string(),
            }));
        }
    };
    if let Some(err) = parsed.error {
        return Some(Err(SourceError::Status {
            url,
            status: err.http_code.unwrap_or(500),
            message: err.message,
        }));
    }
    let event = parsed.result?;
    match wire::to_application(instance, event.application.get()) {
        Ok(app) => Some(Ok(match event.kind.as_str() {
            "DELETED" => StreamItem::Delete(app),
            _ => StreamItem::Upsert(app),
        })),
        Err(reason) => Some(Err(SourceError::Malformed { url, reason })),
    }
}

/// Maps a grpc-gateway error body to our error, keeping ArgoCD's own words.
fn error_from(url: &str, status: u16, body: &[u8]) -> SourceError {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|b| b.message.clone().or_else(|| b.error.clone()))
        .unwrap_or_else(|| {
            // Not ArgoCD's JSON (a proxy's page, an empty body): the status's own words.
            reqwest::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("no reason given")
                .to_string()
        });
    let grpc = parsed.as_ref().and_then(|b| b.code);
    let code = match (grpc, status) {
        (Some(16), _) | (None, 401) => {
            return SourceError::Unauthorized {
                url: url.to_string(),
                status,
            }
        }
        (Some(7), _) | (None, 403) => "FORBIDDEN",
        (Some(5), _) | (None, 404) => "NOT_FOUND",
        (Some(6 | 9 | 10), _) | (None, 409) => "CONFLICT",
        (Some(3 | 11), _) | (None, 400) => "BAD_USER_INPUT",
        (Some(4), _) => {
            return SourceError::Timeout {
                url: url.to_string(),
                secs: 0.0,
            }
        }
        _ => {
            return SourceError::Status {
                url: url.to_string(),
                status,
                message,
            }
        }
    };
    SourceError::Refused {
        status,
        code,
        message,
    }
}
