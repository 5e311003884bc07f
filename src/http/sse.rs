//! GraphQL over Server-Sent Events at `/graphql/sse` (the `graphql-sse` protocol, "distinct
//! connections" mode): one operation per request, `event: next` per result, `event: complete`
//! at the end, comment keepalives, and the stream ends on shutdown. A request the pipeline
//! refuses (parse, validation, limits, credentials) is answered as plain JSON with its status
//! and code, as the protocol asks.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{json, Value};

use super::error::RequestError;
use super::pipeline::{Operation, Transport};
use super::HttpState;

/// A refusal before streaming: plain JSON with the pipeline's status and code.
fn refusal(e: &RequestError) -> Response {
    let mut r = (
        e.status(),
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        json!({ "errors": e.errors_json() }).to_string(),
    )
        .into_response();
    if matches!(e, RequestError::Auth(_)) {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
    }
    if let Some(v) = e
        .retry_after()
        .and_then(|v| header::HeaderValue::from_str(&v).ok())
    {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

pub async fn stream(State(http): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    let op = if !super::graphql::is_json(&headers) {
        Err(RequestError::UnsupportedMediaType("POST /graphql/sse"))
    } else if body.len() > http.limits.max_body_bytes {
        Err(RequestError::PayloadTooLarge(http.limits.max_body_bytes))
    } else {
        serde_json::from_slice::<Value>(&body)
            .map_err(|_| RequestError::BadRequest("the request body is not valid JSON".into()))
            .and_then(Operation::from_json)
    };
    run(http, &headers, op).await
}

pub async fn stream_get(
    State(http): State<HttpState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let op = Operation::from_params(raw.as_deref().unwrap_or(""));
    run(http, &headers, op).await
}

async fn run(
    http: HttpState,
    headers: &HeaderMap,
    op: Result<Operation, RequestError>,
) -> Response {
    let pipeline = &http.pipeline;
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let (results, expires_at) = match async {
        let principal = pipeline.principal(authorization).await?;
        let expires_at = principal.expires_at;
        let prepared = pipeline.prepare(op?, principal, Transport::Sse).await?;
        Ok((pipeline.stream(prepared).await?, expires_at))
    }
    .await
    {
        Ok(r) => r,
        Err(e) => return refusal(&e),
    };
    let shutdown = http.shutdown.clone();
    // The stream ends when the caller's token expires: nothing is sent after it.
    let expired = super::ws::until(expires_at);
    let events = results
        .map(|r| {
            let data = serde_json::to_string(&r).unwrap_or_else(|_| "{}".into());
            Ok::<_, Infallible>(Event::default().event("next").data(data))
        })
        .chain(futures::stream::once(async {
            Ok(Event::default().event("complete").data(""))
        }))
        .take_until(async move {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = expired => {}
            }
        });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(12)))
        .into_response()
}
