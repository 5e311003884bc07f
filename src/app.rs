//! Wiring and lifecycle: `App::build` binds the listener (port 0 in tests), registers and starts
//! the sources, builds the schema and router; `run_until_stopped` serves until the shutdown
//! token fires (SIGTERM/Ctrl-C in `main`), then gives in-flight work a bounded grace period.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::auth::audit::AuditLog;
use crate::auth::{Authenticator, Policy};
use crate::config::{ResolvedSecrets, Settings};
use crate::graph::argocd_tree::ArgoCdActions;
use crate::graph::{build_schema, loaders::CatalogLookup, GraphContext};
use crate::http::pipeline::Pipeline;
use crate::http::{self, HttpState, Metrics};
use crate::sources::argocd::{ArgoCdClient, ArgoCdWatcher};
use crate::sources::backstage::{BackstageClient, BackstagePoller};
use crate::sources::github::{GitHubClient, GitHubSource, GitHubTtls};
use crate::state::{SourceKind, State};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot set up source {name}: {message}")]
    Source { name: String, message: String },
    #[error("server failed: {0}")]
    Serve(std::io::Error),
}

pub struct App {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: axum::Router,
    state: Arc<State>,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    grace: Duration,
    /// Wakes the catalog poller now (tests, and later the template flow).
    catalog_wake: Option<Arc<Notify>>,
}

impl App {
    pub async fn build(settings: Settings, secrets: ResolvedSecrets) -> Result<Self, AppError> {
        let listener =
            TcpListener::bind(settings.listen)
                .await
                .map_err(|source| AppError::Bind {
                    addr: settings.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| AppError::Bind {
            addr: settings.listen,
            source,
        })?;
        let state = State::with_bus(crate::events::EventBus::with_replay(
            settings.events.capacity,
            settings.events.replay,
        ));
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();

        let mut catalog_health = None;
        let mut catalog_lookup = None;
        let mut catalog_wake = None;
        let mut backstage_client = None;
        if let Some(b) = &settings.backstage {
            let client = BackstageClient::new(
                &b.url,
                secrets.backstage.clone(),
                b.timeout_secs,
                b.page_size,
            )
            .map_err(|e| AppError::Source {
                name: "backstage".into(),
                message: e.to_string(),
            })?;
            let health =
                state
                    .sources
                    .register("backstage", SourceKind::Backstage, client.base_url());
            let wake = Arc::new(Notify::new());
            let poller = BackstagePoller {
                client: client.clone(),
                state: state.clone(),
                health: health.clone(),
                interval: Duration::from_secs_f64(b.poll_interval_secs),
                wake: wake.clone(),
            };
            let token = shutdown.clone();
            tasks.spawn(tracing::Instrument::instrument(
                poller.run(token),
                tracing::info_span!("source", kind = "backstage", name = "backstage"),
            ));
            catalog_health = Some(health);
            backstage_client = Some(client.clone());
            catalog_lookup = Some(CatalogLookup::new(client, Duration::from_secs(5)));
            catalog_wake = Some(wake);
        }
        let mut argocd_clients = std::collections::HashMap::new();
        for a in &settings.argocd {
            let client = ArgoCdClient::new(
                &a.name,
                &a.url,
                secrets.argocd.get(&a.name).cloned(),
                a.timeout_secs,
            )
            .map_err(|e| AppError::Source {
                name: a.name.clone(),
                message: e.to_string(),
            })?;
            let health = state
                .sources
                .register(&a.name, SourceKind::ArgoCd, client.base_url());
            let watcher = ArgoCdWatcher {
                client: client.clone(),
                state: state.clone(),
                health,
                relist_every: Duration::from_secs_f64(a.relist_interval_secs),
            };
            tasks.spawn(tracing::Instrument::instrument(
                watcher.run(shutdown.clone()),
                tracing::info_span!("source", kind = "argocd", name = %a.name),
            ));
            argocd_clients.insert(a.name.clone(), client);
        }
        let mut kube_clients = std::collections::HashMap::new();
        for k in &settings.kubernetes {
            let (client, url) =
                crate::sources::kubernetes::client_for(k, secrets.kubernetes.get(&k.name).cloned())
                    .await
                    .map_err(|message| AppError::Source {
                        name: k.name.clone(),
                        message,
                    })?;
            let health = state
                .sources
                .register(&k.name, SourceKind::Kubernetes, &url);
            let destinations = if k.argocd_destinations.is_empty() {
                vec![k.name.clone()]
            } else {
                k.argocd_destinations.clone()
            };
            let cluster = Arc::new(crate::state::ClusterStore::new(
                &k.name,
                &url,
                destinations,
                health,
            ));
            state.clusters.add(cluster.clone());
            let source = crate::sources::kubernetes::ClusterSource {
                client: client.clone(),
                cluster,
                state: state.clone(),
                page_size: k.page_size,
                max_backoff: Duration::from_secs_f64(k.max_backoff_secs),
                strip: true,
            };
            tasks.spawn(tracing::Instrument::instrument(
                source.run(shutdown.clone()),
                tracing::info_span!("source", kind = "kubernetes", name = %k.name),
            ));
            kube_clients.insert(k.name.clone(), (client, url));
        }
        let mut github = None;
        if let Some(g) = &settings.github {
            let client = GitHubClient::new(&g.url, secrets.github.clone(), g.timeout_secs)
                .map_err(|e| AppError::Source {
                    name: "github".into(),
                    message: e.to_string(),
                })?;
            let health = state
                .sources
                .register("github", SourceKind::GitHub, client.base_url());
            // GitHub is read on demand: nothing to wait for before serving.
            health.record_success(0, 0.0);
            let secs = Duration::from_secs_f64;
            let ttls = GitHubTtls {
                repository: secs(g.ttl.repository_secs),
                latest_commit: secs(g.ttl.latest_commit_secs),
                pull_requests: secs(g.ttl.pull_requests_secs),
                workflow_runs: secs(g.ttl.workflow_runs_secs),
            };
            github = Some(Arc::new(
                GitHubSource::new(client, ttls, health).with_page_size(g.page_size),
            ));
        }
        // Readiness waits for first syncs, but not forever.
        let wait = Duration::from_secs_f64(settings.readiness.initial_sync_timeout_secs);
        let (st, token) = (state.clone(), shutdown.clone());
        tasks.spawn(async move {
            tokio::select! {
                _ = token.cancelled() => {}
                _ = tokio::time::sleep(wait) => {
                    for h in st.sources.all() {
                        if !h.snapshot().first_sync_done {
                            tracing::warn!(source = %h.name, "first sync not done in time; readiness no longer waits for it");
                            h.give_up_waiting();
                        }
                    }
                }
            }
        });

        let github_for_metrics = github.clone();
        let schema = build_schema(GraphContext {
            state: state.clone(),
            policy: Policy::default(),
            limits: settings.limits.clone(),
            catalog_health,
            catalog_lookup,
            argocd: Arc::new(ArgoCdActions::new(argocd_clients)),
            audit: Arc::new(AuditLog::default()),
            github,
            backstage: backstage_client,
            catalog_wake: catalog_wake.clone(),
            kubernetes: Arc::new(kube_clients),
        });
        let metrics = Arc::new(Metrics::default());
        let limits = Arc::new(settings.limits.clone());
        let router = http::router(HttpState {
            pipeline: Arc::new(Pipeline {
                schema,
                limits: limits.clone(),
                metrics: metrics.clone(),
                auth: Arc::new(Authenticator::default()),
            }),
            shutdown: shutdown.clone(),
            github: github_for_metrics,
            state: state.clone(),
            metrics,
            limits,
        });
        Ok(Self {
            listener,
            local_addr,
            router,
            state,
            shutdown,
            tasks,
            grace: Duration::from_secs(settings.shutdown_grace_secs),
            catalog_wake,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn state(&self) -> Arc<State> {
        self.state.clone()
    }

    /// Cancel it to stop the server (what SIGTERM does in `main`).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    pub fn catalog_wake(&self) -> Option<Arc<Notify>> {
        self.catalog_wake.clone()
    }

    /// Serves until the shutdown token fires, then waits at most the grace period for
    /// in-flight requests and streams before returning.
    pub async fn run_until_stopped(self) -> Result<(), AppError> {
        let Self {
            listener,
            router,
            shutdown,
            mut tasks,
            grace,
            ..
        } = self;
        let token = shutdown.clone();
        let server = axum::serve(listener, router).with_graceful_shutdown(async move {
            token.cancelled().await;
        });
        let mut server = std::pin::pin!(std::future::IntoFuture::into_future(server));
        tokio::select! {
            r = &mut server => r.map_err(AppError::Serve)?,
            _ = shutdown.cancelled() => {
                tracing::info!(grace_secs = grace.as_secs(), "shutting down");
                if tokio::time::timeout(grace, &mut server).await.is_err() {
                    tracing::warn!("grace period over; dropping remaining connections");
                }
            }
        }
        shutdown.cancel();
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        Ok(())
    }
}
