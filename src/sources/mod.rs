//! One module per upstream. Each owns its wire protocol (private wire types, auth, retries,
//! paging) and hands typed domain values and change events to `state/` and `events/`.

pub mod argocd;
pub mod backstage;
pub mod github;
pub mod kubernetes;

/// Why a call to an upstream failed. The text is shown to users in `sources.lastError` and in
/// GraphQL errors, so it never contains a credential or a response body we did not parse.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{url} did not answer within {secs:.1}s")]
    Timeout { url: String, secs: f64 },
    #[error("{url} rejected the credentials (HTTP {status})")]
    Unauthorized { url: String, status: u16 },
    #[error("{url} answered HTTP {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error("{url} sent a body we cannot read: {reason}")]
    Malformed { url: String, reason: String },
    /// The upstream understood the request and said no (a business refusal, not an outage).
    #[error("{message}")]
    Refused {
        status: u16,
        /// Our `extensions.code` for it: FORBIDDEN, NOT_FOUND, CONFLICT, BAD_USER_INPUT...
        code: &'static str,
        message: String,
    },
}

impl SourceError {
    /// The `extensions.code` a GraphQL error caused by this failure carries.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unreachable { .. } | Self::Status { .. } | Self::Malformed { .. } => {
                "UPSTREAM_UNAVAILABLE"
            }
            Self::Timeout { .. } => "UPSTREAM_TIMEOUT",
            Self::Unauthorized { .. } => "UPSTREAM_UNAUTHORIZED",
            Self::Refused { code, .. } => code,
        }
    }

    /// Maps a reqwest failure without its URL query (which could carry a cursor or worse).
    pub fn from_reqwest(url: &str, timeout_secs: f64, e: &reqwest::Error) -> Self {
        if e.is_timeout() {
            return Self::Timeout {
                url: url.to_string(),
                secs: timeout_secs,
            };
        }
        let reason = if e.is_connect() {
            "connection failed".to_string()
        } else if e.is_decode() || e.is_body() {
            "the response body broke off".to_string()
        } else {
            "request failed".to_string()
        };
        Self::Unreachable {
            url: url.to_string(),
            reason,
        }
    }
}
