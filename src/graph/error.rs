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
            Self::AuditUnavailable(_) => "AUDIT_UNAVAILABLE",
            Self::Upstream { error, .. } => error.code(),
        }
    }
}

/// The GraphQL error: the message, `extensions.code`, and `extensions.source` for upstreams.
impl ErrorExtensions for GraphError {
    fn extend(&self) -> Error {
        let code = self.code();
        let source = match self {
            GraphError::Upstream { instance, .. } => Some(instance.clone()),
            _ => None,
        };
        Error::new(self.to_string()).extend_with(move |_, ext| {
            ext.set("code", code);
            if let Some(s) = &source {
                ext.set("source", s.as_str());
            }
        })
    }
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

/// An upstream failure, attributed to the source instance it came from.
pub fn upstream(source: &str, err: &SourceError) -> Error {
    GraphError::Upstream {
        instance: source.to_string(),
        error: err.clone(),
    }
    .extend()
}
