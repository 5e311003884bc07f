//! GraphQL over HTTP, following the GraphQL-over-HTTP spec rather than the stock extractor:
//!
//! - `POST` takes `application/json` only (415 otherwise: a `text/plain` form post cannot run a
//!   mutation cross-site); `GET` takes URL parameters and never runs a mutation (405).
//! - The response media type follows `Accept`: `application/graphql-response+json` (request
//!   errors are 400) or `application/json` (request errors are 200, for older clients); 406 for
//!   anything else.
//! - Batched (array) requests are refused; the body is bounded before it is parsed; aliases are
//!   counted; execution is bounded in time. Every error carries `extensions.code`.

use std::sync::Arc;
use std::time::Instant;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};
use async_graphql::{ServerError, Variables};
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::HttpState;
use crate::auth::Principal;

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Media {
    GraphqlResponse,
    Json,
}

impl Media {
    fn content_type(self) -> &'static str {
        match self {
            Self::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
            Self::Json => "application/json; charset=utf-8",
        }
    }
}

/// Picks the response media type from `Accept` (highest q wins; no header means JSON).
fn negotiate(headers: &HeaderMap) -> Option<Media> {
    let Some(accept) = headers.get(header::ACCEPT) else {
        return Some(Media::Json);
    };
    let accept = accept.to_str().ok()?;
    let mut best: Option<(f32, u8, Media)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let mime = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if q <= 0.0 {
            continue;
        }
        // Specific types win over wildcards at equal q.
        let candidate = match mime.as_str() {
            GRAPHQL_RESPONSE_JSON => (2, Media::GraphqlResponse),
            JSON => (2, Media::Json),
            "application/*" | "*/*" => (1, Media::Json),
            _ => continue,
        };
        if best.is_none_or(|(bq, bs, _)| q > bq || (q == bq && candidate.0 > bs)) {
            best = Some((q, candidate.0, candidate.1));
        }
    }
    best.map(|(_, _, m)| m)
}

/// A response for a request that never reached execution.
fn request_error(media: Media, status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": code } }]
    });
    let status = if media == Media::Json
        && status == StatusCode::BAD_REQUEST
        && matches!(code, "GRAPHQL_PARSE_FAILED" | "GRAPHQL_VALIDATION_FAILED")
    {
        // The spec keeps 200 for well-formed requests answered as application/json.
        StatusCode::OK
    } else {
        status
    };
    (
        status,
        [(header::CONTENT_TYPE, media.content_type())],
        body.to_string(),
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostBody {
    query: Option<serde_json::Value>,
    #[serde(default)]
    operation_name: Option<serde_json::Value>,
    #[serde(default)]
    variables: Option<serde_json::Value>,
    #[serde(default)]
    #[allow(dead_code)] // accepted per spec; no extension reads it yet
    extensions: Option<serde_json::Value>,
}

/// The parts of a GraphQL request, from either method.
struct Parts {
    query: String,
    operation_name: Option<String>,
    variables: Option<serde_json::Value>,
}

fn parts_from_json(p: PostBody) -> Result<Parts, &'static str> {
    let query = match p.query {
        Some(serde_json::Value::String(q)) => q,
        Some(_) => return Err("`query` must be a string"),
        None => return Err("the request has no `query`"),
    };
    let operation_name = match p.operation_name {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s),
        Some(_) => return Err("`operationName` must be a string or null"),
    };
    let variables = match p.variables {
        None | Some(serde_json::Value::Null) => None,
        Some(v @ serde_json::Value::Object(_)) => Some(v),
        Some(_) => return Err("`variables` must be an object or null"),
    };
    Ok(Parts {
        query,
        operation_name,
        variables,
    })
}

pub async fn graphql_post(
    State(http): State<HttpState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let Some(media) = negotiate(&headers) else {
        return finish(&http, "none", started, not_acceptable());
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence != JSON {
        let r = request_error(
            media,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "POST /graphql takes Content-Type: application/json",
        );
        return finish(&http, "none", started, r);
    }
    let bytes: Bytes = match axum::body::to_bytes(body, http.limits.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => {
            let r = request_error(
                media,
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                &format!(
                    "the request body is larger than {} bytes",
                    http.limits.max_body_bytes
                ),
            );
            return finish(&http, "none", started, r);
        }
    };
    let parsed: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(_) => {
            let r = request_error(
                media,
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                "the request body is not valid JSON",
            );
            return finish(&http, "none", started, r);
        }
    };
    if parsed.is_array() {
        let r = request_error(
            media,
            StatusCode::BAD_REQUEST,
            "BATCH_NOT_SUPPORTED",
            "batched requests are not supported; send one operation per request",
        );
        return finish(&http, "none", started, r);
    }
    let parts = match serde_json::from_value::<PostBody>(parsed)
        .map_err(|_| "the request body must be a JSON object")
        .and_then(parts_from_json)
    {
        Ok(p) => p,
        Err(msg) => {
            let r = request_error(media, StatusCode::BAD_REQUEST, "BAD_REQUEST", msg);
            return finish(&http, "none", started, r);
        }
    };
    execute(&http, media, parts, false, started).await
}

pub async fn graphql_get(
    State(http): State<HttpState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let started = Instant::now();
    let Some(media) = negotiate(&headers) else {
        return finish(&http, "none", started, not_acceptable());
    };
    let mut query = None;
    let mut operation_name = None;
    let mut variables = None;
    for (k, v) in url::form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "query" => query = Some(v.into_owned()),
            "operationName" if !v.is_empty() => operation_name = Some(v.into_owned()),
            "variables" if !v.is_empty() => match serde_json::from_str::<serde_json::Value>(&v) {
                Ok(v @ serde_json::Value::Object(_)) => variables = Some(v),
                Ok(serde_json::Value::Null) => {}
                _ => {
                    let r = request_error(
                        media,
                        StatusCode::BAD_REQUEST,
                        "BAD_REQUEST",
                        "`variables` must be a JSON object",
                    );
                    return finish(&http, "none", started, r);
                }
            },
            _ => {}
        }
    }
    let Some(query) = query else {
        let r = request_error(
            media,
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "GET /graphql needs a `query` parameter (GraphiQL is at /)",
        );
        return finish(&http, "none", started, r);
    };
    let parts = Parts {
        query,
        operation_name,
        variables,
    };
    execute(&http, media, parts, true, started).await
}

fn not_acceptable() -> Response {
    (
        StatusCode::NOT_ACCEPTABLE,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        serde_json::json!({"errors": [{"message": "Accept must allow application/graphql-response+json or application/json", "extensions": {"code": "NOT_ACCEPTABLE"}}]}).to_string(),
    )
        .into_response()
}

fn selected_operation(doc: &ExecutableDocument, name: Option<&str>) -> Option<OperationType> {
    match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => ops
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, op)| op.node.ty),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| op.node.ty)
        }
        _ => None,
    }
}

fn count_aliases(set: &SelectionSet) -> usize {
    set.items
        .iter()
        .map(|sel| match &sel.node {
            Selection::Field(f) => {
                usize::from(f.node.alias.is_some()) + count_aliases(&f.node.selection_set.node)
            }
            Selection::InlineFragment(f) => count_aliases(&f.node.selection_set.node),
            Selection::FragmentSpread(_) => 0,
        })
        .sum()
}

fn document_aliases(doc: &ExecutableDocument) -> usize {
    let ops: usize = doc
        .operations
        .iter()
        .map(|(_, op)| count_aliases(&op.node.selection_set.node))
        .sum();
    let frags: usize = doc
        .fragments
        .values()
        .map(|f| count_aliases(&f.node.selection_set.node))
        .sum();
    ops + frags
}

fn op_label(ty: Option<OperationType>) -> &'static str {
    match ty {
        Some(OperationType::Query) => "query",
        Some(OperationType::Mutation) => "mutation",
        Some(OperationType::Subscription) => "subscription",
        None => "unknown",
    }
}

async fn execute(
    http: &HttpState,
    media: Media,
    parts: Parts,
    is_get: bool,
    started: Instant,
) -> Response {
    let doc = match async_graphql::parser::parse_query(&parts.query) {
        Ok(doc) => doc,
        Err(e) => {
            let r = request_error(
                media,
                StatusCode::BAD_REQUEST,
                "GRAPHQL_PARSE_FAILED",
                &e.to_string(),
            );
            return finish(http, "none", started, r);
        }
    };
    let op = selected_operation(&doc, parts.operation_name.as_deref());
    let label = op_label(op);
    if is_get && op == Some(OperationType::Mutation) {
        let mut r = request_error(
            media,
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "mutations are only accepted over POST",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return finish(http, label, started, r);
    }
    if op == Some(OperationType::Subscription) {
        let r = request_error(
            media,
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "subscriptions are served over websockets at /graphql/ws",
        );
        return finish(http, label, started, r);
    }
    let aliases = document_aliases(&doc);
    if aliases > http.limits.max_aliases {
        let r = request_error(
            media,
            StatusCode::BAD_REQUEST,
            "QUERY_TOO_COMPLEX",
            &format!(
                "the document uses {aliases} aliases; at most {} are allowed",
                http.limits.max_aliases
            ),
        );
        return finish(http, label, started, r);
    }

    let principal: Arc<Principal> = Principal::anonymous();
    let mut request = async_graphql::Request::new(parts.query).data(principal);
    if let Some(name) = parts.operation_name {
        request = request.operation_name(name);
    }
    if let Some(vars) = parts.variables {
        request = request.variables(Variables::from_json(vars));
    }
    request.set_parsed_query(doc);

    let timeout = std::time::Duration::from_secs_f64(http.limits.request_timeout_secs);
    let response = match tokio::time::timeout(timeout, http.schema.execute(request)).await {
        Ok(r) => r,
        Err(_) => {
            let r = request_error(
                media,
                StatusCode::GATEWAY_TIMEOUT,
                "REQUEST_TIMEOUT",
                &format!("the request did not finish within {timeout:?}"),
            );
            return finish(http, label, started, r);
        }
    };
    finish(http, label, started, render(http, media, response))
}

/// Gives every error a code and picks the status.
fn render(http: &HttpState, media: Media, mut response: async_graphql::Response) -> Response {
    let request_failed = response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    for err in &mut response.errors {
        ensure_code(err, request_failed);
        if let Some(code) = error_code(err) {
            http.metrics.error(&code);
            if code == crate::graph::error::INTERNAL {
                tracing::warn!(message = %err.message, "resolver error without a code");
            }
        }
    }
    let status = if request_failed && media == Media::GraphqlResponse {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    match serde_json::to_string(&response) {
        Ok(body) => (status, [(header::CONTENT_TYPE, media.content_type())], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot serialize a GraphQL response");
            request_error(
                media,
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_SERVER_ERROR",
                "the response could not be serialized",
            )
        }
    }
}

fn error_code(err: &ServerError) -> Option<String> {
    match err.extensions.as_ref()?.get("code")? {
        async_graphql::Value::String(s) => Some(s.clone()),
        async_graphql::Value::Enum(s) => Some(s.to_string()),
        _ => None,
    }
}

fn ensure_code(err: &mut ServerError, request_failed: bool) {
    if error_code(err).is_some() {
        return;
    }
    let code = if err.message.starts_with("Query is nested too deep")
        || err.message.starts_with("Query is too complex")
        || err.message.contains("too many directives")
        || err.message.contains("recursion depth")
    {
        "QUERY_TOO_COMPLEX"
    } else if request_failed {
        "GRAPHQL_VALIDATION_FAILED"
    } else {
        crate::graph::error::INTERNAL
    };
    err.extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
}

fn finish(http: &HttpState, op: &'static str, started: Instant, response: Response) -> Response {
    let secs = started.elapsed().as_secs_f64();
    http.metrics.observe(op, response.status().as_u16(), secs);
    tracing::debug!(
        operation = op,
        status = response.status().as_u16(),
        ms = secs * 1e3,
        "graphql request"
    );
    response
}

pub async fn graphiql() -> impl IntoResponse {
    Html(
        async_graphql::http::GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql/ws")
            .title("idp-graph")
            .finish(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn accept_negotiation_follows_the_spec() {
        assert_eq!(negotiate(&HeaderMap::new()), Some(Media::Json));
        assert_eq!(
            negotiate(&accept(
                "application/graphql-response+json, application/json;q=0.9"
            )),
            Some(Media::GraphqlResponse)
        );
        assert_eq!(
            negotiate(&accept(
                "application/graphql-response+json;q=0.5, application/json"
            )),
            Some(Media::Json)
        );
        assert_eq!(negotiate(&accept("*/*")), Some(Media::Json));
        assert_eq!(negotiate(&accept("text/html")), None);
    }

    #[test]
    fn aliases_are_counted_in_operations_and_fragments() {
        let doc = async_graphql::parser::parse_query(
            "query { a: x { b: y } ...F } fragment F on Q { c: z }",
        )
        .unwrap();
        assert_eq!(document_aliases(&doc), 3);
    }
}
