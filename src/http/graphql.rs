//! GraphQL over HTTP, following the GraphQL-over-HTTP spec rather than the stock extractor:
//!
//! - `POST` takes `application/json` only (415 otherwise: a `text/plain` form post cannot run a
//!   mutation cross-site); `GET` takes URL parameters and never runs a mutation (405).
//! - The response media type follows `Accept`: `application/graphql-response+json` (request
//!   errors are 400) or `application/json` (request errors are 200, for older clients); 406 for
//!   anything else.
//! - The body is bounded before it is read. Everything after reading the operation (the
//!   caller, parsing, limits, execution, error codes) is the shared pipeline's (`pipeline.rs`);
//!   this file only frames its answers.

use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::RequestError;
use super::pipeline::{Operation, Transport};
use super::HttpState;

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

/// The transport's framing of a refusal: the status, per the spec and the negotiated media
/// type (`application/json` keeps 200 for document errors of a well-formed request).
fn refusal(media: Media, e: &RequestError) -> Response {
    let status = if media == Media::Json && e.is_document_error() {
        StatusCode::OK
    } else {
        e.status()
    };
    let body = serde_json::json!({ "errors": e.errors_json() });
    let mut r = (
        status,
        [(header::CONTENT_TYPE, media.content_type())],
        body.to_string(),
    )
        .into_response();
    match e {
        RequestError::MutationOverGet => {
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        RequestError::Auth(_) => {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        RequestError::RateLimited(_) => {
            if let Some(v) = e.retry_after().and_then(|v| HeaderValue::from_str(&v).ok()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        _ => {}
    }
    r
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
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
    let outcome = async {
        if !is_json(&headers) {
            return Err(RequestError::UnsupportedMediaType("POST /graphql"));
        }
        let max = http.limits.max_body_bytes;
        let bytes: Bytes = axum::body::to_bytes(body, max)
            .await
            .map_err(|_| RequestError::PayloadTooLarge(max))?;
        let v = serde_json::from_slice(&bytes)
            .map_err(|_| RequestError::BadRequest("the request body is not valid JSON".into()))?;
        Operation::from_json(v)
    }
    .await;
    match outcome {
        Ok(op) => run(&http, media, &headers, op, Transport::HttpPost, started).await,
        Err(e) => finish(&http, "none", started, refusal(media, &e)),
    }
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
    match Operation::from_params(raw.as_deref().unwrap_or("")) {
        Ok(op) => run(&http, media, &headers, op, Transport::HttpGet, started).await,
        Err(e) => finish(&http, "none", started, refusal(media, &e)),
    }
}

/// `Content-Type` is `application/json` (parameters ignored).
pub(super) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case(JSON)
}

fn not_acceptable() -> Response {
    let e = RequestError::NotAcceptable;
    (
        e.status(),
        [(header::CONTENT_TYPE, Media::Json.content_type())],
        serde_json::json!({ "errors": e.errors_json() }).to_string(),
    )
        .into_response()
}

async fn run(
    http: &HttpState,
    media: Media,
    headers: &HeaderMap,
    op: Operation,
    transport: Transport,
    started: Instant,
) -> Response {
    let pipeline = &http.pipeline;
    let acting_for = headers
        .get(crate::auth::ACTING_FOR_HEADER)
        .and_then(|v| v.to_str().ok());
    let answer = match pipeline
        .principal_acting(authorization(headers), acting_for)
        .await
    {
        Ok(p) => pipeline.answer_http(op, p, transport, headers).await,
        Err(e) => Err(e),
    };
    let answer = match answer {
        Ok(a) => a,
        Err(e) => return finish(http, "none", started, refusal(media, &e)),
    };
    let label = answer.label;
    // A GET of an unchanged answer: 304, no body (a polling page pays one round trip).
    if transport == Transport::HttpGet {
        if let (Some(etag), Some(inm)) = (
            &answer.etag,
            headers
                .get(header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok()),
        ) {
            if super::response_cache::matches(inm, etag) {
                let mut r = StatusCode::NOT_MODIFIED.into_response();
                set_validators(&mut r, etag);
                return finish(http, label, started, r);
            }
        }
    }
    let mut r = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, media.content_type())],
        answer.body,
    )
        .into_response();
    if let (Transport::HttpGet, Some(etag)) = (transport, &answer.etag) {
        set_validators(&mut r, etag);
    }
    r.headers_mut().insert(
        "x-idp-cache",
        HeaderValue::from_static(if answer.cached { "hit" } else { "miss" }),
    );
    finish(http, label, started, r)
}

/// `ETag` and a `Cache-Control` that makes browsers and proxies ask again each time (the answer
/// is the caller's own, and may change at any moment).
fn set_validators(r: &mut Response, etag: &str) {
    if let Ok(v) = HeaderValue::from_str(etag) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
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
}
