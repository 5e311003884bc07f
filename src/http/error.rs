//! The HTTP layer's one error type: why a request was refused before (or instead of) producing
//! a GraphQL result. Every variant has a stable `extensions.code` and a status; the pipeline
//! (`pipeline.rs`) produces them and each transport renders them in its own framing (an HTTP
//! body, a websocket `error` message, an SSE answer), so the same mistake gets the same code
//! everywhere. Messages are safe to show: they never echo a credential or an internal cause.

use std::time::Duration;

use async_graphql::ServerError;
use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::auth::AuthError;

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("Accept must allow application/graphql-response+json or application/json")]
    NotAcceptable,
    #[error("{0} takes Content-Type: application/json")]
    UnsupportedMediaType(&'static str),
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("batched requests are not supported; send one operation per request")]
    BatchNotSupported,
    /// The request is not a GraphQL request (not JSON, wrong field types, no query...).
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    ParseFailed(String),
    #[error("the document uses {found} aliases; at most {max} are allowed")]
    TooManyAliases { found: usize, max: usize },
    #[error("the document selects more than {max} fields with its fragments expanded")]
    TooManyFields { max: usize },
    #[error("mutations are only accepted over POST")]
    MutationOverGet,
    #[error("introspection is switched off on this server")]
    IntrospectionDisabled,
    /// APQ: no document is registered under the hash; send it with the hash.
    #[error("PersistedQueryNotFound")]
    PersistedQueryNotFound,
    /// Trusted-documents mode: the document is not in the manifest.
    #[error("this operation is not in the server's list of trusted documents")]
    PersistedQueryNotInList,
    #[error("subscriptions are served over websockets at /graphql/ws and SSE at /graphql/sse")]
    SubscriptionOverHttp,
    /// The executor refused the operation (validation, depth, complexity, variables); each
    /// error already carries its code.
    #[error("the operation was rejected")]
    Rejected(Vec<ServerError>),
    #[error("the request did not finish within {0:?}")]
    Timeout(Duration),
    /// The caller spent its budget (`limits.requests_per_minute`); retry after this long.
    #[error("too many requests; retry in {}s", .0.as_secs().max(1))]
    RateLimited(Duration),
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A bug on our side; the message goes to the log, not to the caller.
    #[error("internal error")]
    Internal(String),
}

impl RequestError {
    /// The `extensions.code` (for `Rejected`, the first error's).
    pub fn code(&self) -> &str {
        match self {
            Self::NotAcceptable => "NOT_ACCEPTABLE",
            Self::UnsupportedMediaType(_) => "UNSUPPORTED_MEDIA_TYPE",
            Self::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            Self::BatchNotSupported => "BATCH_NOT_SUPPORTED",
            Self::BadRequest(_) | Self::SubscriptionOverHttp => "BAD_REQUEST",
            Self::ParseFailed(_) => "GRAPHQL_PARSE_FAILED",
            Self::TooManyAliases { .. } | Self::TooManyFields { .. } => "QUERY_TOO_COMPLEX",
            Self::MutationOverGet => "METHOD_NOT_ALLOWED",
            Self::IntrospectionDisabled => "INTROSPECTION_DISABLED",
            Self::PersistedQueryNotFound => "PERSISTED_QUERY_NOT_FOUND",
            Self::PersistedQueryNotInList => "PERSISTED_QUERY_NOT_IN_LIST",
            Self::Rejected(errors) => errors
                .first()
                .and_then(error_code)
                .unwrap_or(VALIDATION_FAILED),
            Self::Timeout(_) => "REQUEST_TIMEOUT",
            Self::RateLimited(_) => "RATE_LIMITED",
            Self::Auth(e) => e.code(),
            Self::Internal(_) => "INTERNAL_SERVER_ERROR",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::MutationOverGet => StatusCode::METHOD_NOT_ALLOWED,
            Self::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Auth(e) => e.status(),
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// A GraphQL-level refusal of a well-formed request (the spec lets `application/json`
    /// answers keep 200 for these).
    pub fn is_document_error(&self) -> bool {
        matches!(
            self,
            Self::ParseFailed(_)
                | Self::TooManyAliases { .. }
                | Self::TooManyFields { .. }
                | Self::Rejected(_)
                | Self::IntrospectionDisabled
                | Self::PersistedQueryNotFound
                | Self::PersistedQueryNotInList
        )
    }

    /// The `Retry-After` header value (whole seconds, at least 1), for a rate-limit refusal.
    pub fn retry_after(&self) -> Option<String> {
        match self {
            Self::RateLimited(d) => Some(d.as_secs_f64().ceil().max(1.0).to_string()),
            _ => None,
        }
    }

    /// The `errors` array of a GraphQL response, each with `extensions.code`.
    pub fn errors_json(&self) -> Value {
        match self {
            Self::Rejected(errors) => serde_json::to_value(errors).unwrap_or_else(|_| json!([])),
            other => {
                json!([{ "message": other.to_string(), "extensions": { "code": other.code() } }])
            }
        }
    }
}

pub const VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
pub const TOO_COMPLEX: &str = "QUERY_TOO_COMPLEX";
pub const INTERNAL: &str = "INTERNAL_SERVER_ERROR";

/// The `extensions.code` of an error, if it has one.
pub fn error_code(err: &ServerError) -> Option<&str> {
    match err.extensions.as_ref()?.get("code")? {
        async_graphql::Value::String(s) => Some(s.as_str()),
        async_graphql::Value::Enum(s) => Some(s.as_str()),
        _ => None,
    }
}
