//! The Kubernetes source: per configured cluster, one kube-runtime watcher per kind in
//! `domain::kubernetes::READ_ACCESS` (list in pages, then watch from the list's
//! resourceVersion; on `410 Expired`, a dropped connection or any error it backs off and
//! re-lists, forever). Objects are stripped of `managedFields` and the last-applied annotation
//! before they are stored; Secrets are parsed into `SecretInfo`, which never holds a value.
//!
//! The store is ours rather than kube-runtime's `reflector::Store` because the joins need
//! indexes updated on every event and a namespace must be a range scan; the watcher (with its
//! list/watch/re-list state machine and bookmarks) is kube-runtime's.

mod churn;
mod handle;
mod settings;

pub use handle::ClusterHandle;
pub use settings::KubernetesSettings;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::domain::kubernetes::strip;
use crate::state::kubernetes::{ClusterStore, Kind, Stored};
use crate::state::{KindWriter, SourceHealth, State};

use super::SourceError;

/// Builds the client configuration for one cluster and tells the URL it talks to.
pub async fn client_for(
    s: &KubernetesSettings,
    token: Option<SecretString>,
) -> Result<(kube::Config, String), String> {
    let mut config = if let Some(url) = &s.url {
        let uri: http::Uri = url.parse().map_err(|e| format!("url: {e}"))?;
        let mut c = kube::Config::new(uri);
        c.auth_info.token = token;
        c
    } else if let Some(path) = &s.kubeconfig {
        let kc = kube::config::Kubeconfig::read_from(path)
            .map_err(|e| format!("kubeconfig {}: {e}", path.display()))?;
        let opts = kube::config::KubeConfigOptions {
            context: s.context.clone(),
            ..Default::default()
        };
        kube::Config::from_custom_kubeconfig(kc, &opts)
            .await
            .map_err(|e| format!("kubeconfig {}: {e}", path.display()))?
    } else {
        kube::Config::infer()
            .await
            .map_err(|e| format!("no cluster configured: {e}"))?
    };
    config.connect_timeout = Some(Duration::from_secs(5));
    let url = config
        .cluster_url
        .to_string()
        .trim_end_matches('/')
        .to_string();
    Ok((config, url))
}

/// Exponential backoff with full jitter between `min` and `max`, reset once a watch delivers.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            next: min,
        }
    }
}

impl Iterator for Backoff {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        let cur = self.next;
        self.next = (self.next * 2).min(self.max);
        let jitter = rand::random_range(0.5..=1.0);
        Some(cur.mul_f64(jitter).max(self.min.min(cur)))
    }
}

impl kube::runtime::utils::Backoff for Backoff {
    fn reset(&mut self) {
        self.next = self.min;
    }
}

/// One cluster's watchers.
#[derive(Clone)]
pub struct ClusterSource {
    pub client: Client,
    pub cluster: Arc<ClusterStore>,
    pub state: Arc<State>,
    pub page_size: u32,
    pub max_backoff: Duration,
    /// Off only in the memory benchmark, to measure what stripping saves.
    pub strip: bool,
}

/// Per-kind health folded into the cluster's one `SourceHealth`.
struct KindHealth {
    failing: parking_lot::Mutex<BTreeMap<Kind, String>>,
}

impl ClusterSource {
    pub fn health(&self) -> &Arc<SourceHealth> {
        &self.cluster.health
    }

    /// Runs every watcher until `token` fires.
    pub async fn run(self, token: CancellationToken) {
        let me = Arc::new(self);
        let kh = Arc::new(KindHealth {
            failing: parking_lot::Mutex::new(BTreeMap::new()),
        });
        let started = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        // Every kind watched is granted by READ_ACCESS (unit test below).
        macro_rules! spawn_kind {
            ($($ty:ty),*) => {$(
                set.spawn(me.clone().watch::<$ty>(kh.clone(), started, token.clone()));
            )*};
        }
        spawn_kind!(
            Namespace,
            crate::domain::kubernetes::DeploymentInfo,
            crate::domain::kubernetes::ReplicaSetInfo,
            StatefulSet,
            DaemonSet,
            crate::domain::kubernetes::PodInfo,
            Service,
            Ingress,
            crate::domain::kubernetes::ConfigMapInfo,
            crate::domain::kubernetes::SecretInfo,
            crate::domain::kubernetes::EventInfo
        );
        // A cluster whose watchers all wait in backoff says nothing; probe it so `sources`
        // turns back to connected as soon as the API server answers again.
        let probe = {
            let me = me.clone();
            let kh = kh.clone();
            let token = token.clone();
            async move {
                let mut tick = tokio::time::interval(Duration::from_secs(2));
                loop {
                    tokio::select! {
                        _ = token.cancelled() => return,
                        _ = tick.tick() => {}
                    }
                    if !me.health().is_stale() {
                        continue;
                    }
                    // A kind whose watch came back quietly (nothing changed) sends no event:
                    // a one-item list per failing kind tells whether it is served again.
                    let failing: Vec<Kind> = kh.failing.lock().keys().copied().collect();
                    for kind in failing {
                        if me.probe_kind(kind).await {
                            kh.failing.lock().remove(&kind);
                        }
                    }
                    if kh.failing.lock().is_empty() && me.cluster.synced() {
                        me.mark_ok(started);
                    }
                }
            }
        };
        set.spawn(probe);
        tokio::select! {
            _ = token.cancelled() => {}
            _ = async { while set.join_next().await.is_some() {} } => {}
        }
        set.abort_all();
    }

    async fn probe_kind(&self, kind: Kind) -> bool {
        async fn list_one<K: Stored>(client: &Client) -> bool {
            let api: Api<K> = Api::all(client.clone());
            api.list(&kube::api::ListParams::default().limit(1))
                .await
                .is_ok()
        }
        let c = &self.client;
        match kind {
            Kind::Namespace => list_one::<Namespace>(c).await,
            Kind::Deployment => list_one::<crate::domain::kubernetes::DeploymentInfo>(c).await,
            Kind::ReplicaSet => list_one::<crate::domain::kubernetes::ReplicaSetInfo>(c).await,
            Kind::StatefulSet => list_one::<StatefulSet>(c).await,
            Kind::DaemonSet => list_one::<DaemonSet>(c).await,
            Kind::Pod => list_one::<crate::domain::kubernetes::PodInfo>(c).await,
            Kind::Service => list_one::<Service>(c).await,
            Kind::Ingress => list_one::<Ingress>(c).await,
            Kind::ConfigMap => list_one::<crate::domain::kubernetes::ConfigMapInfo>(c).await,
            Kind::Secret => list_one::<crate::domain::kubernetes::SecretInfo>(c).await,
            Kind::Event => list_one::<crate::domain::kubernetes::EventInfo>(c).await,
        }
    }

    fn mark_ok(&self, started: Instant) {
        self.health().record_success(
            self.cluster.object_count() as u64,
            started.elapsed().as_secs_f64() * 1000.0,
        );
    }

    async fn watch<K: Stored>(
        self: Arc<Self>,
        kh: Arc<KindHealth>,
        started: Instant,
        token: CancellationToken,
    ) {
        let api: Api<K> = Api::all(self.client.clone());
        let config = watcher::Config::default().page_size(self.page_size);
        let stream = watcher::watcher(api, config)
            .backoff(Backoff::new(Duration::from_millis(200), self.max_backoff));
        let mut stream = std::pin::pin!(stream);
        // The kind's one way into the store; it buffers each list until it is complete.
        let mut writer = KindWriter::<K>::new(self.state.clone(), self.cluster.clone());
        let strip_on = self.strip;
        let prep = move |mut o: K| {
            if strip_on {
                strip(o.meta_mut());
            }
            o
        };
        loop {
            let ev = tokio::select! {
                _ = token.cancelled() => return,
                ev = stream.next() => ev,
            };
            let Some(ev) = ev else { return };
            match ev {
                Err(watcher::Error::WatchError(s)) if s.code == 410 => {
                    // Routine: the history moved on; the watcher re-lists by itself.
                    tracing::info!(cluster = %self.cluster.name, kind = K::KIND.as_str(), "watch expired (410); re-listing");
                    continue;
                }
                Err(e) => {
                    let msg = describe(&self.cluster.url, &e);
                    tracing::warn!(cluster = %self.cluster.name, kind = K::KIND.as_str(), error = %msg, "watch failed; backing off");
                    kh.failing.lock().insert(K::KIND, msg.clone());
                    self.health()
                        .record_failure(format!("{}: {msg}", K::KIND.as_str()));
                    continue;
                }
                Ok(Event::Init) => writer.list_started(),
                Ok(Event::InitApply(o)) => writer.listed(prep(o)),
                Ok(Event::InitDone) => {
                    writer.list_done();
                    let failing = {
                        let mut f = kh.failing.lock();
                        f.remove(&K::KIND);
                        f.len()
                    };
                    if failing == 0 && self.cluster.synced() {
                        self.mark_ok(started);
                    }
                }
                Ok(Event::Apply(o)) => {
                    writer.observe(prep(o));
                    self.recovered(&kh, K::KIND, started);
                }
                Ok(Event::Delete(o)) => {
                    writer.observe_deleted(&o);
                    self.recovered(&kh, K::KIND, started);
                }
            }
        }
    }

    fn recovered(&self, kh: &KindHealth, kind: Kind, started: Instant) {
        let mut f = kh.failing.lock();
        let was_failing = f.remove(&kind).is_some();
        let clear = f.is_empty();
        drop(f);
        if clear && (was_failing || self.health().is_stale()) && self.cluster.synced() {
            self.mark_ok(started);
        }
    }
}

/// A watcher error as users see it (no response bodies beyond the Status message).
fn describe(url: &str, e: &watcher::Error) -> String {
    match e {
        watcher::Error::WatchError(s) if s.code == 410 => {
            format!("watch expired (410 {}); re-listing", s.reason)
        }
        watcher::Error::WatchError(s) => format!("watch error {} {}", s.code, s.message),
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => client_error(url, e).to_string(),
        other => other.to_string(),
    }
}

/// Maps a kube client error to the shared error type (its texts never carry credentials).
/// A client whose requests carry the current span's W3C trace context (`traceparent`): the
/// writes a mutation makes are part of its trace. (Watches run outside any operation and carry
/// none.)
///
///
/// kube's own retry of throttling (429, 503, 504) is off: it retries 15 times with delays
/// growing to minutes, during which a throttled cluster looks healthy and a write hangs. Here a
/// refused request is an error at once — the watchers back off by themselves (`max_backoff`),
/// and a write answers its caller (`RATE_LIMITED`). Watches that end as soon as they start are
/// spaced out (`churn`).
/// `health`: where churning watches are reported (the source's; none for write-only clients).
pub(crate) fn traced_client(
    mut config: kube::Config,
    health: Option<Arc<crate::state::SourceHealth>>,
) -> Result<Client, kube::Error> {
    config.default_retry = false;
    let inject = tower::util::MapRequestLayer::new(|mut req: http::Request<kube::client::Body>| {
        crate::telemetry::inject(req.headers_mut());
        req
    });
    Ok(kube::client::ClientBuilder::try_from(config)?
        .with_layer(&churn::WatchChurnLayer::new(health))
        .with_layer(&inject)
        .build())
}

pub fn client_error(url: &str, e: &kube::Error) -> SourceError {
    match e {
        kube::Error::Api(s) if s.code == 401 => SourceError::Unauthorized {
            url: url.to_string(),
            status: 401,
        },
        kube::Error::Api(s) => {
            let code = match s.code {
                403 => Some("FORBIDDEN"),
                404 => Some("NOT_FOUND"),
                409 => Some("CONFLICT"),
                429 => Some("RATE_LIMITED"),
                400 | 422 => Some("BAD_USER_INPUT"),
                _ => None,
            };
            match code {
                Some(code) => SourceError::Refused {
                    status: s.code,
                    code,
                    message: s.message.clone(),
                },
                None => SourceError::Status {
                    url: url.to_string(),
                    status: s.code,
                    message: s.message.clone(),
                },
            }
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) => SourceError::Unreachable {
            url: url.to_string(),
            reason: "connection failed".into(),
        },
        kube::Error::SerdeError(e) => SourceError::Malformed {
            url: url.to_string(),
            reason: e.to_string(),
        },
        other => SourceError::Unreachable {
            url: url.to_string(),
            reason: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::kubernetes::{PodInfo, SecretInfo, READ_ACCESS};

    fn granted<K: Stored>() -> (String, String) {
        (K::group(&()).to_string(), K::plural(&()).to_string())
    }

    /// What the source watches is what the ClusterRole grants (list + watch), kind for kind.
    #[test]
    fn every_watched_kind_is_granted_by_read_access() {
        let watched = [
            granted::<Namespace>(),
            granted::<crate::domain::kubernetes::DeploymentInfo>(),
            granted::<crate::domain::kubernetes::ReplicaSetInfo>(),
            granted::<StatefulSet>(),
            granted::<DaemonSet>(),
            granted::<PodInfo>(),
            granted::<Service>(),
            granted::<Ingress>(),
            granted::<crate::domain::kubernetes::ConfigMapInfo>(),
            granted::<SecretInfo>(),
            granted::<crate::domain::kubernetes::EventInfo>(),
        ];
        assert_eq!(watched.len(), Kind::ALL.len());
        assert_eq!(watched.len(), READ_ACCESS.len());
        for (group, resource) in &watched {
            assert!(
                READ_ACCESS.iter().any(|(g, r, verbs)| g == group
                    && r == resource
                    && verbs.contains(&"list")
                    && verbs.contains(&"watch")),
                "{group}/{resource} is watched but not granted"
            );
        }
    }

    #[test]
    fn backoff_grows_to_its_cap_and_resets() {
        use kube::runtime::utils::Backoff as _;
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let first = b.next().unwrap();
        assert!(first <= Duration::from_millis(100));
        let later: Vec<Duration> = (0..10).map(|_| b.next().unwrap()).collect();
        assert!(later.iter().all(|d| *d <= Duration::from_secs(1)));
        assert!(*later.last().unwrap() >= Duration::from_millis(500));
        b.reset();
        assert!(b.next().unwrap() <= Duration::from_millis(100));
    }
}
