//! Wiring and lifecycle: `App::build` binds the listener (port 0 in tests), registers and starts
//! the sources, builds the schema and router; `run_until_stopped` serves until the shutdown
//! token fires (SIGTERM/Ctrl-C in `main`), then gives in-flight work a bounded grace period.

use axum::serve::ListenerExt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::auth::audit::{AuditLog, AuditStore, AuditStoreError};
use crate::auth::Authenticator;
use crate::config::{ConfigError, ResolvedSecrets, Settings};
use crate::graph::{build_schema_for, GraphContext};
use crate::http::pipeline::Pipeline;
use crate::http::{self, HttpState, Metrics};
use crate::sources::{StartContext, StartError, Upstreams};
use crate::state::State;

/// Why the server could not start, or stopped: one variant per part that can fail, so `main`
/// picks the exit code by kind ([`AppError::exit_code`]) and the message says which part failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The settings cannot be used as given (`audit.postgres_url_env` names a variable that
    /// is not set). `main` normally finds this earlier, in `Settings::resolve_secrets`.
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// A configured upstream could not be set up (bad kubeconfig, unusable URL...).
    #[error(transparent)]
    Source(#[from] StartError),
    /// The durable audit trail (`audit.postgres_url_env`) could not be opened.
    #[error("cannot open the audit trail: {0}")]
    AuditStore(#[from] AuditStoreError),
    /// Authentication could not be set up from `auth:` (an unreadable key file, a bad key...).
    #[error("cannot set up authentication: {0}")]
    Auth(String),
    /// The persisted operations (`persisted:`) could not be loaded: the trusted-documents
    /// manifest is unreadable, malformed or empty.
    #[error("cannot load the persisted operations: {0}")]
    Persisted(String),
    #[error("server failed: {0}")]
    Serve(std::io::Error),
    #[error("cannot set up the replicas' shared state: {0}")]
    Cluster(String),
}

impl AppError {
    /// The process exit code `main` ends with: 64 (EX_USAGE) for settings that cannot be used
    /// as given — what `serve` exits with when `Settings::resolve_secrets` finds the same fault
    /// first — and 1 for every other failure, start-up or runtime.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) => 64,
            Self::Bind { .. }
            | Self::Source(_)
            | Self::AuditStore(_)
            | Self::Auth(_)
            | Self::Persisted(_)
            | Self::Cluster(_)
            | Self::Serve(_) => 1,
        }
    }
}

pub struct App {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: axum::Router,
    state: Arc<State>,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    grace: Duration,
    /// The started sources (the catalog poller's wake-up for tests).
    upstreams: Arc<Upstreams>,
    /// `/metrics` on a listener of its own (`http.metrics_listen`).
    metrics_server: Option<(TcpListener, axum::Router)>,
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
        let cursor_key = settings.events.cursor_key("events")?;
        let bus = crate::events::EventBus::with_replay(
            settings.events.capacity,
            settings.events.replay,
            std::time::Duration::from_secs_f64(settings.events.replay_secs),
        )
        .with_cursor_key(cursor_key);
        // Replicas (`cluster:`): one Redis for the change log and everything else they share.
        let shared = match &settings.cluster {
            None => None,
            Some(c) => Some(
                crate::cluster::Shared::connect(
                    &c.redis_url("cluster")?,
                    &c.key_prefix,
                    Duration::from_secs_f64((c.lease_secs / 3.0).clamp(0.5, 2.0)),
                )
                .map_err(|e| AppError::Cluster(e.to_string()))?,
            ),
        };
        let state = match &settings.cluster {
            None => State::with_bus(bus),
            Some(c) => State::replicated(bus.with_epoch(crate::cluster::epoch(&c.key_prefix))),
        };
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();

        // Every configured upstream starts through its one entry point (`sources::Source`).
        let mut upstreams = Upstreams::default();
        for (_, source) in settings.sources() {
            source
                .start(StartContext {
                    state: &state,
                    shutdown: &shutdown,
                    tasks: &mut tasks,
                    token: secrets.get(source.kind(), source.name()),
                    upstreams: &mut upstreams,
                    shared: shared.as_ref(),
                })
                .await?;
        }
        let upstreams = Arc::new(upstreams);
        // Replicas: the sources registered their gates above; now the log, leases and sharing.
        let cluster = match (&settings.cluster, &shared) {
            (Some(c), Some(shared)) => Some(
                crate::cluster::start(
                    c,
                    &c.redis_url("cluster")?,
                    shared.clone(),
                    &state,
                    &mut tasks,
                    &shutdown,
                )
                .map_err(|e| AppError::Cluster(e.to_string()))?,
            ),
            _ => None,
        };
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

        // The audit trail: durable in PostgreSQL when configured (its writer runs as a task).
        let audit = match settings.audit.postgres_url()? {
            None => Arc::new(AuditLog::default()),
            Some(url) => {
                use secrecy::ExposeSecret;
                let store = AuditStore::new(url.expose_secret(), settings.audit.buffer)?;
                tasks.spawn(store.clone().run(shutdown.clone()));
                Arc::new(AuditLog::with_store(store))
            }
        };
        let schema = build_schema_for(
            GraphContext {
                state: state.clone(),
                limits: settings.limits.clone(),
                audit: audit.clone(),
                upstreams: upstreams.clone(),
            },
            settings.federation.enabled,
        );
        let auth =
            Arc::new(Authenticator::new(&settings.auth, state.clone()).map_err(AppError::Auth)?);
        let metrics = Arc::new(Metrics::default());
        let limits = Arc::new(settings.limits.clone());
        let http_state = HttpState {
            pipeline: Arc::new(Pipeline {
                field_types: Arc::new(crate::http::field_errors::FieldTypes::from_sdl(
                    &schema.sdl(),
                )),
                schema,
                limits: limits.clone(),
                metrics: metrics.clone(),
                auth,
                rate: crate::http::rate_limit::RateLimiter::new(
                    settings.limits.requests_per_minute,
                )
                .map(|r| r.with_shared(shared.clone())),
                subscriptions: crate::http::shared_subscriptions::SubscriptionHub::new(
                    settings.events.capacity,
                ),
                cache: crate::http::response_cache::ResponseCache::new(
                    &settings.cache,
                    state.clone(),
                ),
                persisted: crate::http::persisted::PersistedOperations::new(
                    settings.persisted.clone(),
                )
                .map_err(AppError::Persisted)?
                .with_shared(shared.clone()),
            }),
            shutdown: shutdown.clone(),
            upstreams: upstreams.clone(),
            audit,
            state: state.clone(),
            metrics,
            limits,
            cluster,
        };
        let metrics_server = match settings.http.metrics_listen {
            None => None,
            Some(addr) => {
                let l = TcpListener::bind(addr)
                    .await
                    .map_err(|source| AppError::Bind { addr, source })?;
                Some((l, http::metrics_router(http_state.clone())))
            }
        };
        let router = http::router(http_state, &settings.http);
        Ok(Self {
            listener,
            local_addr,
            router,
            state,
            shutdown,
            tasks,
            grace: Duration::from_secs(settings.shutdown_grace_secs),
            upstreams,
            metrics_server,
        })
    }

    /// Where `/metrics` listens when it has a listener of its own.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_server
            .as_ref()
            .and_then(|(l, _)| l.local_addr().ok())
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

    /// Wakes the catalog poller now instead of at its next tick.
    pub fn catalog_wake(&self) -> Option<Arc<Notify>> {
        self.upstreams.backstage().map(|b| b.wake.clone())
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
            metrics_server,
            ..
        } = self;
        if let Some((listener, router)) = metrics_server {
            let token = shutdown.clone();
            tasks.spawn(async move {
                let _ = axum::serve(listener, router)
                    .with_graceful_shutdown(async move { token.cancelled().await })
                    .await;
            });
        }
        let token = shutdown.clone();
        // No Nagle: a second small write (a websocket event right after another, a pong after an
        // ack) must not wait for the client's delayed ACK (up to 40 ms on Linux).
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_settings_exit_64_and_other_start_failures_exit_1() {
        let config = AppError::Config(ConfigError::Invalid {
            key: "audit.postgres_url_env".into(),
            message: "environment variable AUDIT_PG is not set".into(),
        });
        assert_eq!(config.exit_code(), 64);
        assert_eq!(
            config.to_string(),
            "config key `audit.postgres_url_env`: environment variable AUDIT_PG is not set"
        );
        let auth = AppError::Auth("cannot read key.pem".into());
        assert_eq!(auth.exit_code(), 1);
        assert_eq!(
            auth.to_string(),
            "cannot set up authentication: cannot read key.pem"
        );
        assert_eq!(AppError::Persisted("no manifest".into()).exit_code(), 1);
    }
}
