//! `backstage:` in the config, and how the catalog source starts from it: a client, the poller
//! task, and the handle the graph uses for on-demand lookups and the scaffolder.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Notify;

use super::{BackstageClient, BackstageHandle, BackstagePoller, CatalogLookup};
use crate::settings::{check_url, invalid, positive, ConfigError, TokenSource};
use crate::sources::{Source, StartContext, StartError};
use crate::state::SourceKind;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackstageSettings {
    pub url: String,
    #[serde(flatten)]
    pub token: TokenSource,
    /// Seconds between catalog polls.
    #[serde(default = "default_poll")]
    pub poll_interval_secs: f64,
    /// Entities per `by-query` page.
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Per-request timeout, seconds.
    #[serde(default = "default_timeout")]
    pub timeout_secs: f64,
}

fn default_poll() -> f64 {
    30.0
}
fn default_page_size() -> u32 {
    500
}
fn default_timeout() -> f64 {
    10.0
}

/// How long on-demand lookups (and "no such entity" answers) are reused.
const LOOKUP_TTL: Duration = Duration::from_secs(5);

#[async_trait::async_trait]
impl Source for BackstageSettings {
    fn kind(&self) -> SourceKind {
        SourceKind::Backstage
    }

    fn name(&self) -> &str {
        "backstage"
    }

    fn token(&self) -> &TokenSource {
        &self.token
    }

    fn validate(&self, key: &str) -> Result<(), ConfigError> {
        check_url(&format!("{key}.url"), &self.url)?;
        self.token.validate(key)?;
        if !(self.poll_interval_secs.is_finite() && self.poll_interval_secs >= 0.05) {
            return Err(invalid(
                format!("{key}.poll_interval_secs"),
                "must be a number of seconds ≥ 0.05",
            ));
        }
        if !(1..=1000).contains(&self.page_size) {
            return Err(invalid(
                format!("{key}.page_size"),
                "must be between 1 and 1000",
            ));
        }
        positive(&format!("{key}.timeout_secs"), self.timeout_secs)
    }

    async fn start(&self, ctx: StartContext<'_>) -> Result<(), StartError> {
        let client = BackstageClient::new(&self.url, ctx.token, self.timeout_secs, self.page_size)
            .map_err(|e| StartError {
                name: self.name().into(),
                message: e.to_string(),
            })?;
        let health = ctx
            .state
            .sources
            .register(self.name(), self.kind(), client.base_url());
        let wake = Arc::new(Notify::new());
        // Polled only while this process owns the catalog (always, in one process).
        let gate = ctx.state.ownership.gate(&health.id());
        let (state, poll_client, poll_wake) = (ctx.state.clone(), client.clone(), wake.clone());
        let interval = Duration::from_secs_f64(self.poll_interval_secs);
        ctx.tasks.spawn(tracing::Instrument::instrument(
            crate::state::ownership::run_while_owned(gate, ctx.shutdown.clone(), move |token| {
                BackstagePoller {
                    client: poll_client.clone(),
                    writer: crate::state::CatalogWriter::new(state.clone(), health.clone()),
                    health: health.clone(),
                    interval,
                    wake: poll_wake.clone(),
                }
                .run(token)
            }),
            tracing::info_span!("source", kind = "backstage", name = "backstage"),
        ));
        ctx.upstreams.backstage = Some(BackstageHandle {
            lookup: Arc::new(CatalogLookup::new(client.clone(), LOOKUP_TTL)),
            client,
            wake,
        });
        Ok(())
    }
}
