//! The graph layer's one error type. Every error a resolver returns is a `GraphError`, so it
//! has a stable `extensions.code` (and, for upstream failures, `extensions.source`); messages
//! are safe to show. The HTTP layer's refusals are `http::error::RequestError`; upstream
//! failures start as `sources::SourceError` and keep their code here.

use async_graphql::{Error, ErrorExtensions};

use crate::sources::SourceError;

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// The arguments are wrong (a bad ref, selector, cursor, page size...).
    #[error("{0}")]
    BadUserInput(String),
    /// Nothing by that name that the caller may see (an invisible object is not found).
    #[error("{0}")]
    NotFound(String),
    /// The caller may see it but not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The audit trail cannot take the record: the action is refused rather than run unaudited.
    #[error("{0}")]
    AuditUnavailable(String),
    /// The upstream this needs is not configured on this server.
    #[error("{0}")]
    NotConfigured(String),
    /// It would take over something that exists (a template run reusing a component's or an
    /// application's name).
    #[error("{0}")]
    Conflict(String),
    /// An upstream failed or refused; `source` is its instance name.
    #[error("{error}")]
    Upstream {
        instance: String,
        error: SourceError,
    },
}

impl GraphError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadUserInput(_) => "BAD_USER_INPUT",
            Self::NotFound(_) => "NOT_FOUND",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotConfigured(_) => "NOT_CONFIGURED",
            Self::Conflict(_) => "CONFLICT",
            Self::AuditUnavailable(_) => "AUDIT_UNAVAILABLE",
            Self::Upstream { error, .. } => error.code(),
        }
    }
}

/// The GraphQL error: the message, `extensions.code`, and `extensions.source` for upstreams.
/// An upstream failure's message is a fixed sentence per code; the upstream's own text (its
/// URL, its raw error) goes to `extensions.detail`, which the HTTP pipeline shows to
/// platform-team only (`http::upstream_errors`) — so a path that forgot to redact still shows
/// nothing raw.
impl ErrorExtensions for GraphError {
    fn extend(&self) -> Error {
        let code = self.code();
        let (message, source, detail) = match self {
            GraphError::Upstream { instance, error } => (
                safe_upstream_message(instance, code),
                Some(instance.clone()),
                Some(error.to_string()),
            ),
            other => (other.to_string(), None, None),
        };
        Error::new(message).extend_with(move |_, ext| {
            ext.set("code", code);
            if let Some(s) = &source {
                ext.set("source", s.as_str());
            }
            if let Some(d) = &detail {
                ext.set("detail", d.as_str());
            }
        })
    }
}

/// What any caller may read about an upstream failure: who failed, and how, in fixed words.
fn safe_upstream_message(source: &str, code: &str) -> String {
    let what = match code {
        "UPSTREAM_TIMEOUT" => "did not answer in time",
        "UPSTREAM_UNAUTHORIZED" => "refused this server's credentials",
        "NOT_FOUND" => "has no such object",
        "CONFLICT" => "refused: the object's current state does not allow this",
        "FORBIDDEN" => "refused this server the action",
        "RATE_LIMITED" => "is rate-limiting this server; try again later",
        "BAD_USER_INPUT" => "refused the input",
        _ => "is unavailable or failed",
    };
    format!("upstream `{source}` {what}")
}

pub fn bad_input(message: impl Into<String>) -> Error {
    GraphError::BadUserInput(message.into()).extend()
}

pub fn not_found(message: impl Into<String>) -> Error {
    GraphError::NotFound(message.into()).extend()
}

pub fn forbidden(message: impl Into<String>) -> Error {
    GraphError::Forbidden(message.into()).extend()
}

pub fn not_configured(message: impl Into<String>) -> Error {
    GraphError::NotConfigured(message.into()).extend()
}

/// Refuses an action when its audit record would not find room (`auth::audit::AuditLog::admit`).
pub fn admit(log: &crate::auth::audit::AuditLog) -> Result<(), Error> {
    log.admit()
        .map_err(|e| GraphError::AuditUnavailable(e.to_string()).extend())
}

pub fn conflict(message: impl Into<String>) -> Error {
    GraphError::Conflict(message.into()).extend()
}

/// An upstream failure, attributed to the source instance it came from. The full text is
/// logged here, once.
pub fn upstream(source: &str, err: &SourceError) -> Error {
    tracing::warn!(source, code = err.code(), error = %err, "upstream failure answered to a caller");
    GraphError::Upstream {
        instance: source.to_string(),
        error: err.clone(),
    }
    .extend()
}
