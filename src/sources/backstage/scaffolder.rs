//! Backstage scaffolder: start a task from a template (`POST /api/scaffolder/v2/tasks`) and
//! follow its event stream (`GET /api/scaffolder/v2/tasks/{id}/eventstream`, SSE with `log`
//! and `completion` events).

use futures::{Stream, StreamExt};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::Value;

use super::BackstageClient;
use crate::sources::SourceError;

/// One event of a task's stream.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskEvent {
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub body: Value,
    #[serde(default)]
    pub created_at: Option<String>,
}

/// What `GET /api/scaffolder/v2/tasks/{id}` says about a task.
#[derive(Debug, Clone)]
pub struct TaskInfo {
    pub id: String,
    /// `template:namespace/name`, from `spec.templateInfo.entityRef`.
    pub template_ref: String,
    /// `open`, `processing`, `completed`, `failed`, `cancelled`.
    pub status: String,
}

impl BackstageClient {
    /// Starts a task; returns its id.
    pub async fn create_task(
        &self,
        template_ref: &str,
        values: &Value,
    ) -> Result<String, SourceError> {
        let path = "/api/scaffolder/v2/tasks";
        let v: Value = self
            .send_json_public(
                self.request_public(reqwest::Method::POST, path)
                    .json(&serde_json::json!({"templateRef": template_ref, "values": values})),
                path,
            )
            .await?;
        v.get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| SourceError::Malformed {
                url: format!("{}{}", self.base_url(), path),
                reason: "no task id".into(),
            })
    }

    /// A task (`GET /api/scaffolder/v2/tasks/{id}`): its template and status; `None` when the
    /// scaffolder has no such task.
    pub async fn task(&self, id: &str) -> Result<Option<TaskInfo>, SourceError> {
        let path = format!(
            "/api/scaffolder/v2/tasks/{}",
            url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
        );
        let v: Value = match self
            .send_json_public(self.request_public(reqwest::Method::GET, &path), &path)
            .await
        {
            Ok(v) => v,
            Err(SourceError::Refused { status: 404, .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let text = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
        Ok(Some(TaskInfo {
            id: text("/id").unwrap_or_else(|| id.to_string()),
            template_ref: text("/spec/templateInfo/entityRef").unwrap_or_default(),
            status: text("/status").unwrap_or_else(|| "unknown".into()),
        }))
    }

    /// The task's events from the start, until the stream ends (after `completion`).
    pub async fn task_events(
        &self,
        id: &str,
    ) -> Result<impl Stream<Item = Result<TaskEvent, SourceError>> + Send + 'static, SourceError>
    {
        let path = format!(
            "/api/scaffolder/v2/tasks/{}/eventstream",
            url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
        );
        let url = format!("{}{}", self.base_url(), path);
        let mut req = self
            .stream_http()
            .get(&url)
            .header(reqwest::header::ACCEPT, "text/event-stream");
        if let Some(t) = self.token() {
            req = req.bearer_auth(t.expose_secret());
        }
        let resp = crate::sources::send_traced("backstage", req)
            .await
            .map_err(|e| SourceError::from_reqwest(&url, 0.0, &e))?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(SourceError::Refused {
                status: 404,
                code: "NOT_FOUND",
                message: format!("no scaffolder task `{id}`"),
            });
        }
        if !status.is_success() {
            return Err(SourceError::Status {
                url,
                status: status.as_u16(),
                message: "event stream refused".into(),
            });
        }
        let bytes = resp.bytes_stream();
        // SSE: events are separated by a blank line; we need the `data:` lines.
        let events = futures::stream::unfold(
            (bytes, String::new(), false),
            move |(mut bytes, mut buf, done)| {
                let url = url.clone();
                async move {
                    if done {
                        return None;
                    }
                    loop {
                        if let Some(pos) = buf.find("\n\n") {
                            let block: String = buf.drain(..pos + 2).collect();
                            let data: String = block
                                .lines()
                                .filter_map(|l| l.strip_prefix("data:"))
                                .map(str::trim_start)
                                .collect::<Vec<_>>()
                                .join("\n");
                            if data.is_empty() {
                                continue;
                            }
                            let ev = serde_json::from_str::<TaskEvent>(&data).map_err(|e| {
                                SourceError::Malformed {
                                    url: url.clone(),
                                    reason: e.to_string(),
                                }
                            });
                            return Some((ev, (bytes, buf, false)));
                        }
                        match bytes.next().await {
                            Some(Ok(chunk)) => {
                                buf.push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n"))
                            }
                            Some(Err(e)) => {
                                return Some((
                                    Err(SourceError::from_reqwest(&url, 0.0, &e)),
                                    (bytes, String::new(), true),
                                ))
                            }
                            None => return None,
                        }
                    }
                }
            },
        );
        Ok(events.boxed())
    }
}
