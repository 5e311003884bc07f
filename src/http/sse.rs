//! GraphQL over Server-Sent Events at `/graphql/sse` (the `graphql-sse` protocol, "distinct
//! connections" mode): one operation per request, `event: next` per result, `event: complete`
//! at the end, comment keepalives, and the stream ends on shutdown. A request that fails before
//! execution (parse/validation) is answered as plain JSON with 400, as the protocol asks.

use std::convert::Infallible;
use std::time::Duration;

use async_graphql::Variables;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{json, Value};

use super::HttpState;
use crate::auth::Principal;

fn bad(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        json!({"errors": [{"message": message, "extensions": {"code": code}}]}).to_string(),
    )
        .into_response()
}

pub async fn stream(State(http): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence != "application/json" {
        return bad(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "POST /graphql/sse takes Content-Type: application/json",
        );
    }
    if body.len() > http.limits.max_body_bytes {
        return bad(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            "the request body is too large",
        );
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return bad(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "the request body is not valid JSON",
        );
    };
    run(http, v).await
}

pub async fn stream_get(State(http): State<HttpState>, RawQuery(raw): RawQuery) -> Response {
    let mut v = json!({});
    for (k, val) in url::form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "query" | "operationName" => v[k.as_ref()] = json!(val),
            "variables" => match serde_json::from_str::<Value>(&val) {
                Ok(vars) => v["variables"] = vars,
                Err(_) => {
                    return bad(
                        StatusCode::BAD_REQUEST,
                        "BAD_REQUEST",
                        "`variables` must be JSON",
                    )
                }
            },
            _ => {}
        }
    }
    run(http, v).await
}

async fn run(http: HttpState, v: Value) -> Response {
    let Some(query) = v.get("query").and_then(Value::as_str) else {
        return bad(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "the request has no `query`",
        );
    };
    let mut req = async_graphql::Request::new(query).data(Principal::anonymous());
    if let Some(op) = v.get("operationName").and_then(Value::as_str) {
        req = req.operation_name(op);
    }
    match v.get("variables") {
        None | Some(Value::Null) => {}
        Some(vars @ Value::Object(_)) => req = req.variables(Variables::from_json(vars.clone())),
        Some(_) => {
            return bad(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                "`variables` must be an object",
            )
        }
    }
    let mut results = http.schema.execute_stream(req).boxed();
    // Look at the first result: a request error is answered as JSON, not as a stream.
    let first = results.next().await;
    if let Some(r) = &first {
        if r.data == async_graphql::Value::Null
            && !r.errors.is_empty()
            && r.errors.iter().all(|e| e.path.is_empty())
        {
            let mut errors = serde_json::to_value(&r.errors).unwrap_or(Value::Null);
            if let Some(list) = errors.as_array_mut() {
                for e in list {
                    if e.pointer("/extensions/code").is_none() {
                        e["extensions"] = json!({"code": "GRAPHQL_VALIDATION_FAILED"});
                    }
                }
            }
            return (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
                json!({"errors": errors}).to_string(),
            )
                .into_response();
        }
    }
    let shutdown = http.shutdown.clone();
    let events = futures::stream::iter(first)
        .chain(results)
        .map(|r| {
            let data = serde_json::to_string(&r).unwrap_or_else(|_| "{}".into());
            Ok::<_, Infallible>(Event::default().event("next").data(data))
        })
        .chain(futures::stream::once(async {
            Ok(Event::default().event("complete").data(""))
        }))
        .take_until(async move { shutdown.cancelled().await });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(12)))
        .into_response()
}
