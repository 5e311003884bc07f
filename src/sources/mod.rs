//! One module per upstream. Each owns its settings (validation, durations, credentials), its
//! wire protocol (private wire types, auth, retries, paging), its actions, and one entry point:
//! its settings type implements [`Source`], whose `start` registers the source's health and
//! store, spawns its tasks and puts its handle into [`Upstreams`]. Sources hand typed domain
//! values and change events to `state/` and `events/`; the graph reaches them only through
//! `Upstreams`, with domain values in and out.

pub mod argocd;
pub mod backstage;
pub mod github;
pub mod kubernetes;

use std::collections::HashMap;
use std::sync::Arc;

use secrecy::SecretString;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::settings::{ConfigError, TokenSource};
use crate::state::{SourceKind, State};

/// What `App::build` lends a source while it starts.
pub struct StartContext<'a> {
    pub state: &'a Arc<State>,
    pub shutdown: &'a CancellationToken,
    /// The source's long-running tasks; aborted at shutdown.
    pub tasks: &'a mut JoinSet<()>,
    /// This source's credential, resolved from `token_env` / `token_file` (or given).
    pub token: Option<SecretString>,
    pub upstreams: &'a mut Upstreams,
    /// Redis, when replicas share state (`cluster:`); `None` in one process.
    pub shared: Option<&'a crate::cluster::Shared>,
}

/// A source could not be set up (bad kubeconfig, unusable URL...). Says which and why.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up source {name}: {message}")]
pub struct StartError {
    pub name: String,
    pub message: String,
}

/// One configured upstream instance: the contract every `sources/<name>/settings.rs` fulfils.
#[async_trait::async_trait]
pub trait Source: std::fmt::Debug + Send + Sync {
    fn kind(&self) -> SourceKind;
    /// The instance name in `sources` and `extensions.source` (`backstage`, or `name`).
    fn name(&self) -> &str;
    /// Where its credential comes from.
    fn token(&self) -> &TokenSource;
    /// What serde cannot check; errors name `key` (`argocd[1]`) and the sub-key.
    fn validate(&self, key: &str) -> Result<(), ConfigError>;
    /// Registers health and store, spawns the tasks, adds the handle to `ctx.upstreams`.
    async fn start(&self, ctx: StartContext<'_>) -> Result<(), StartError>;
}

/// The started sources as the graph uses them: actions and on-demand reads, by instance.
/// Resolvers never build an upstream request; they call these handles.
#[derive(Default)]
pub struct Upstreams {
    pub(crate) backstage: Option<backstage::BackstageHandle>,
    pub(crate) argocd: HashMap<String, argocd::ArgoCdHandle>,
    pub(crate) clusters: HashMap<String, kubernetes::ClusterHandle>,
    pub(crate) github: Option<Arc<github::GitHubSource>>,
}

impl Upstreams {
    pub fn backstage(&self) -> Option<&backstage::BackstageHandle> {
        self.backstage.as_ref()
    }

    pub fn argocd(&self, instance: &str) -> Option<&argocd::ArgoCdHandle> {
        self.argocd.get(instance)
    }

    pub fn cluster(&self, name: &str) -> Option<&kubernetes::ClusterHandle> {
        self.clusters.get(name)
    }

    pub fn github(&self) -> Option<&Arc<github::GitHubSource>> {
        self.github.as_ref()
    }
}

/// Sends a request to an upstream inside its own span (`telemetry::upstream_span`), with the
/// W3C trace context in its headers: every source's HTTP calls go through here.
pub(crate) async fn send_traced(
    source: &str,
    req: reqwest::RequestBuilder,
) -> Result<reqwest::Response, reqwest::Error> {
    use tracing::Instrument;
    let (client, request) = req.build_split();
    let mut request = request?;
    let span = crate::telemetry::upstream_span(source, request.method().as_str(), request.url());
    async move {
        crate::telemetry::inject(request.headers_mut());
        let result = client.execute(request).await;
        crate::telemetry::record_response(
            &tracing::Span::current(),
            result.as_ref().ok().map(|r| r.status().as_u16()),
        );
        result
    }
    .instrument(span)
    .await
}

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
