//! `github:` in the config, and how the GitHub source starts: a client and the conditional,
//! TTL-bounded cache the graph reads through (GitHub is read on demand). With webhooks, one
//! task runs: the batched safety net (`batch.rs`).

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::{GitHubClient, GitHubSource, GitHubTtls};
use crate::settings::{check_url, invalid, positive, ConfigError, TokenSource};
use crate::sources::{Source, StartContext, StartError};
use crate::state::SourceKind;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitHubSettings {
    #[serde(default = "default_github_url")]
    pub url: String,
    #[serde(flatten)]
    pub token: TokenSource,
    /// Seconds each kind is served before a conditional refresh.
    #[serde(default)]
    pub ttl: GitHubTtlSettings,
    #[serde(default = "default_timeout")]
    pub timeout_secs: f64,
    /// `per_page` for lists (1-100); longer lists follow `Link` headers.
    #[serde(default = "default_gh_page")]
    pub page_size: usize,
    /// The webhook secret (`POST /webhooks/github`, `X-Hub-Signature-256`), from this
    /// environment variable or file. With it, deliveries invalidate exactly what changed and
    /// the TTLs above stretch tenfold: polling becomes a slow safety net.
    #[serde(default)]
    pub webhook_secret_env: Option<String>,
    #[serde(default)]
    pub webhook_secret_file: Option<std::path::PathBuf>,
    /// With webhooks: seconds between safety-net rounds, which refresh every repository the
    /// catalog names (and every one held) in batches over GitHub's GraphQL API.
    #[serde(default = "default_safety_net")]
    pub safety_net_secs: f64,
}

fn default_safety_net() -> f64 {
    600.0
}

/// With webhooks, the TTLs are only a safety net: this many times longer.
pub const WEBHOOK_TTL_FACTOR: u32 = 10;

impl GitHubSettings {
    /// The webhook secret, when configured and present.
    fn webhook_secret(&self) -> Result<Option<secrecy::SecretString>, String> {
        let value = match (&self.webhook_secret_env, &self.webhook_secret_file) {
            (None, None) => return Ok(None),
            (Some(var), None) => std::env::var(var)
                .map_err(|_| format!("github.webhook_secret_env: {var} is not set"))?,
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|e| format!("github.webhook_secret_file: {}: {e}", path.display()))?,
            (Some(_), Some(_)) => {
                return Err(
                    "github: set webhook_secret_env or webhook_secret_file, not both".into(),
                )
            }
        };
        let value = value.trim().to_string();
        if value.is_empty() {
            return Err("github: the webhook secret is empty".into());
        }
        Ok(Some(value.into()))
    }
}

fn default_github_url() -> String {
    "https://api.github.com".into()
}
fn default_timeout() -> f64 {
    10.0
}
fn default_gh_page() -> usize {
    100
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GitHubTtlSettings {
    pub repository_secs: f64,
    pub latest_commit_secs: f64,
    pub pull_requests_secs: f64,
    pub workflow_runs_secs: f64,
}

impl Default for GitHubTtlSettings {
    fn default() -> Self {
        Self {
            repository_secs: 300.0,
            latest_commit_secs: 60.0,
            pull_requests_secs: 60.0,
            workflow_runs_secs: 30.0,
        }
    }
}

#[async_trait::async_trait]
impl Source for GitHubSettings {
    fn kind(&self) -> SourceKind {
        SourceKind::GitHub
    }

    fn name(&self) -> &str {
        "github"
    }

    fn token(&self) -> &TokenSource {
        &self.token
    }

    fn validate(&self, key: &str) -> Result<(), ConfigError> {
        check_url(&format!("{key}.url"), &self.url)?;
        self.token.validate(key)?;
        if self.webhook_secret_env.is_some() && self.webhook_secret_file.is_some() {
            return Err(invalid(
                format!("{key}.webhook_secret_env"),
                "set either webhook_secret_env or webhook_secret_file, not both",
            ));
        }
        positive(&format!("{key}.timeout_secs"), self.timeout_secs)?;
        if !(1..=100).contains(&self.page_size) {
            return Err(invalid(
                format!("{key}.page_size"),
                "must be between 1 and 100",
            ));
        }
        let t = &self.ttl;
        for (k, v) in [
            ("repository_secs", t.repository_secs),
            ("latest_commit_secs", t.latest_commit_secs),
            ("pull_requests_secs", t.pull_requests_secs),
            ("workflow_runs_secs", t.workflow_runs_secs),
        ] {
            positive(&format!("{key}.ttl.{k}"), v)?;
        }
        positive(&format!("{key}.safety_net_secs"), self.safety_net_secs)?;
        Ok(())
    }

    async fn start(&self, ctx: StartContext<'_>) -> Result<(), StartError> {
        let client =
            GitHubClient::new(&self.url, ctx.token, self.timeout_secs).map_err(|e| StartError {
                name: self.name().into(),
                message: e.to_string(),
            })?;
        let health = ctx
            .state
            .sources
            .register(self.name(), self.kind(), client.base_url());
        // GitHub is read on demand: nothing to wait for before serving.
        health.record_success(0, 0.0);
        let secs = Duration::from_secs_f64;
        let webhook_secret = self.webhook_secret().map_err(|message| StartError {
            name: self.name().into(),
            message,
        })?;
        let factor = if webhook_secret.is_some() {
            WEBHOOK_TTL_FACTOR
        } else {
            1
        };
        // What the safety net refreshes stays fresh for two of its rounds (one may fail).
        let net = if webhook_secret.is_some() {
            secs(self.safety_net_secs) * 2
        } else {
            Duration::ZERO
        };
        let ttls = GitHubTtls {
            repository: (secs(self.ttl.repository_secs) * factor).max(net),
            latest_commit: (secs(self.ttl.latest_commit_secs) * factor).max(net),
            pull_requests: secs(self.ttl.pull_requests_secs) * factor,
            workflow_runs: secs(self.ttl.workflow_runs_secs) * factor,
        };
        let with_net = webhook_secret.is_some();
        let source = Arc::new(
            GitHubSource::new(client, ttls, health)
                .with_page_size(self.page_size)
                .with_webhooks(webhook_secret, ctx.state.clone())
                .with_shared(ctx.shared.cloned()),
        );
        if with_net {
            // Run only on the replica that owns GitHub (always, in one process).
            let gate = ctx
                .state
                .ownership
                .gate(&crate::state::ownership::source_id(
                    self.kind(),
                    self.name(),
                ));
            let (net_source, every) = (source.clone(), secs(self.safety_net_secs));
            ctx.tasks.spawn(crate::state::ownership::run_while_owned(
                gate,
                ctx.shutdown.clone(),
                move |token| net_source.clone().run_safety_net(every, token),
            ));
        }
        ctx.upstreams.github = Some(source);
        Ok(())
    }
}
