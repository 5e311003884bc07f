//! `kubernetes:` in the config (one entry per cluster), and how a cluster starts: a client
//! (kubeconfig + context, `url` + token, else in-cluster / default kubeconfig), its store in
//! `state`, the watcher task, and the handle for writes (`restartDeployment`).

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::{client_for, ClusterHandle, ClusterSource};
use crate::settings::{check_name, check_url, invalid, positive, ConfigError, TokenSource};
use crate::sources::{Source, StartContext, StartError};
use crate::state::{ClusterStore, SourceKind};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesSettings {
    pub name: String,
    /// A kubeconfig file; `context` picks one of its contexts (default: its current context).
    #[serde(default)]
    pub kubeconfig: Option<std::path::PathBuf>,
    #[serde(default)]
    pub context: Option<String>,
    /// The API server URL, used instead of a kubeconfig (with `token_env`/`token_file`).
    /// Neither set: in-cluster service account, else `$KUBECONFIG` / `~/.kube/config`.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(flatten)]
    pub token: TokenSource,
    /// What ArgoCD applications name this cluster as `destination.name` / `destination.server`
    /// (default: the cluster's name; add `https://kubernetes.default.svc` for ArgoCD's in-cluster).
    #[serde(default)]
    pub argocd_destinations: Vec<String>,
    /// Objects per list page when (re-)listing.
    #[serde(default = "default_kube_page")]
    pub page_size: u32,
    /// Longest wait between reconnect attempts after a watch error, seconds.
    #[serde(default = "default_kube_backoff")]
    pub max_backoff_secs: f64,
    /// Writes (`restartDeployment`) give up after this, seconds: a throttled (429) or hung API
    /// server answers the caller with `UPSTREAM_TIMEOUT` instead of holding the request.
    #[serde(default = "default_kube_timeout")]
    pub timeout_secs: f64,
    /// Writes (`restartDeployment`) impersonate the caller (`Impersonate-User` = its subject,
    /// `Impersonate-Group` = its groups), so the cluster's own RBAC decides too. The service
    /// account then needs the `impersonate` verb (`deploy/components/impersonate`).
    #[serde(default)]
    pub impersonate: bool,
}

fn default_kube_timeout() -> f64 {
    10.0
}

fn default_kube_page() -> u32 {
    500
}

fn default_kube_backoff() -> f64 {
    30.0
}

#[async_trait::async_trait]
impl Source for KubernetesSettings {
    fn kind(&self) -> SourceKind {
        SourceKind::Kubernetes
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn token(&self) -> &TokenSource {
        &self.token
    }

    fn validate(&self, key: &str) -> Result<(), ConfigError> {
        check_name(&format!("{key}.name"), &self.name)?;
        if let Some(u) = &self.url {
            check_url(&format!("{key}.url"), u)?;
            if self.kubeconfig.is_some() {
                return Err(invalid(
                    format!("{key}.url"),
                    "give either `url` or `kubeconfig`, not both",
                ));
            }
        }
        self.token.validate(key)?;
        if !(1..=10_000).contains(&self.page_size) {
            return Err(invalid(
                format!("{key}.page_size"),
                "must be between 1 and 10000",
            ));
        }
        positive(&format!("{key}.timeout_secs"), self.timeout_secs)?;
        positive(&format!("{key}.max_backoff_secs"), self.max_backoff_secs)
    }

    async fn start(&self, ctx: StartContext<'_>) -> Result<(), StartError> {
        let (config, url) = client_for(self, ctx.token)
            .await
            .map_err(|message| StartError {
                name: self.name.clone(),
                message,
            })?;
        let health = ctx.state.sources.register(&self.name, self.kind(), &url);
        let client =
            super::traced_client(config.clone(), Some(health.clone())).map_err(|e| StartError {
                name: self.name.clone(),
                message: e.to_string(),
            })?;
        let destinations = if self.argocd_destinations.is_empty() {
            vec![self.name.clone()]
        } else {
            self.argocd_destinations.clone()
        };
        let cluster = Arc::new(ClusterStore::new(&self.name, &url, destinations, health));
        ctx.state.clusters.add(cluster.clone());
        let source = ClusterSource {
            client: client.clone(),
            cluster: cluster.clone(),
            state: ctx.state.clone(),
            page_size: self.page_size,
            max_backoff: Duration::from_secs_f64(self.max_backoff_secs),
            strip: true,
        };
        // Watched only while this process owns the cluster (always, in one process).
        let gate = ctx.state.ownership.gate(&cluster.health.id());
        ctx.tasks.spawn(tracing::Instrument::instrument(
            crate::state::ownership::run_while_owned(gate, ctx.shutdown.clone(), move |token| {
                source.clone().run(token)
            }),
            tracing::info_span!("source", kind = "kubernetes", name = %self.name),
        ));
        ctx.upstreams.clusters.insert(
            self.name.clone(),
            ClusterHandle {
                client,
                timeout: Duration::from_secs_f64(self.timeout_secs),
                impersonating: self.impersonate.then_some(config),
                url,
                cluster,
                state: ctx.state.clone(),
            },
        );
        Ok(())
    }
}
