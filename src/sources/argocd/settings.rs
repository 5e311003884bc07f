//! `argocd:` in the config (one entry per instance), and how an instance starts: a client, the
//! list-then-stream watcher task, and the handle for actions and resource trees.

use crate::state::ownership::run_while_owned;
use std::time::Duration;

use serde::Deserialize;

use super::{ArgoCdClient, ArgoCdHandle, ArgoCdWatcher};
use crate::settings::{check_name, check_url, positive, ConfigError, TokenSource};
use crate::sources::{Source, StartContext, StartError};
use crate::state::SourceKind;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgoCdSettings {
    pub name: String,
    pub url: String,
    #[serde(flatten)]
    pub token: TokenSource,
    /// Full re-list this often even while the stream is up (it can lose events silently).
    #[serde(default = "default_relist")]
    pub relist_interval_secs: f64,
    /// Per-request timeout (not the stream), seconds.
    #[serde(default = "default_timeout")]
    pub timeout_secs: f64,
    /// Cap of the reconnect backoff (100 ms doubling, ±50 % jitter) while the stream keeps
    /// breaking, seconds.
    #[serde(default = "default_max_backoff")]
    pub max_backoff_secs: f64,
}

fn default_relist() -> f64 {
    300.0
}
fn default_timeout() -> f64 {
    10.0
}
fn default_max_backoff() -> f64 {
    30.0
}

#[async_trait::async_trait]
impl Source for ArgoCdSettings {
    fn kind(&self) -> SourceKind {
        SourceKind::ArgoCd
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn token(&self) -> &TokenSource {
        &self.token
    }

    fn validate(&self, key: &str) -> Result<(), ConfigError> {
        check_name(&format!("{key}.name"), &self.name)?;
        check_url(&format!("{key}.url"), &self.url)?;
        self.token.validate(key)?;
        positive(
            &format!("{key}.relist_interval_secs"),
            self.relist_interval_secs,
        )?;
        positive(&format!("{key}.max_backoff_secs"), self.max_backoff_secs)?;
        positive(&format!("{key}.timeout_secs"), self.timeout_secs)
    }

    async fn start(&self, ctx: StartContext<'_>) -> Result<(), StartError> {
        let client = ArgoCdClient::new(&self.name, &self.url, ctx.token, self.timeout_secs)
            .map_err(|e| StartError {
                name: self.name.clone(),
                message: e.to_string(),
            })?;
        let health = ctx
            .state
            .sources
            .register(&self.name, self.kind(), client.base_url());
        // Ingested only while this process owns the instance (always, in one process).
        let gate = ctx.state.ownership.gate(&health.id());
        let (state, name, watch_client) = (ctx.state.clone(), self.name.clone(), client.clone());
        let (relist_every, max_backoff) = (
            Duration::from_secs_f64(self.relist_interval_secs),
            Duration::from_secs_f64(self.max_backoff_secs),
        );
        ctx.tasks.spawn(tracing::Instrument::instrument(
            run_while_owned(gate, ctx.shutdown.clone(), move |token| {
                ArgoCdWatcher {
                    client: watch_client.clone(),
                    writer: crate::state::AppWriter::new(state.clone(), &name),
                    health: health.clone(),
                    relist_every,
                    max_backoff,
                }
                .run(token)
            }),
            tracing::info_span!("source", kind = "argocd", name = %self.name),
        ));
        ctx.upstreams
            .argocd
            .insert(self.name.clone(), ArgoCdHandle::new(client));
        Ok(())
    }
}
