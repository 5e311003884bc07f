//! The demo world: faithful simulations of the upstream APIs as real HTTP servers on loopback
//! ports, seeded with the seed platform's content. `idp-graph demo`, the tests and the
//! benchmarks all run the product's real source code against them.

pub mod argocd;
pub mod backstage;
pub mod faults;
pub mod git;
pub mod github;
pub mod identity;
pub mod kubernetes;
pub mod seed;
pub mod slack;

use crate::state::SourceKind;
use tokio_util::sync::CancellationToken;

use crate::auth::{AuthMode, AuthSettings, IssuerSettings, JwtSettings};
use crate::config::{
    ArgoCdSettings, BackstageSettings, GitHubSettings, KubernetesSettings, ResolvedSecrets,
    Settings, TokenSource,
};

pub use argocd::{ArgoCdSim, ArgoTiming};
pub use backstage::BackstageSim;
pub use faults::Faults;

/// The credential the simulated upstreams accept. Not a secret: documented, demo only.
pub const DEMO_TOKEN: &str = "idp-demo-token";

/// All simulated upstreams of one demo world.
pub struct DemoWorld {
    pub git: std::sync::Arc<git::GitWorld>,
    pub backstage: BackstageSim,
    pub argocd: ArgoCdSim,
    pub github: github::GitHubSim,
    /// The cluster `demo` (plain HTTP without authentication, so `kubectl --server` works).
    pub kubernetes: kubernetes::KubeSim,
    /// Slack's Web API, for `idp-graph notify` (`chat.postMessage`, `users.info`, ...).
    pub slack: slack::SlackSim,
    shutdown: CancellationToken,
}

#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Extra generated services.
    pub scale: usize,
    /// Seconds between catalog polls by the server.
    pub catalog_poll_secs: f64,
    pub argo_timing: ArgoTiming,
    /// Scripted changes: pushes, syncs, an app that degrades and recovers.
    pub weather: bool,
    /// The simulated GitHub's hourly request budget.
    pub github_rate_limit: u64,
    /// Longest pause between reconnect attempts of the Kubernetes watchers and the ArgoCD stream.
    pub max_backoff_secs: f64,
    /// Extra Deployments (5 pods each) in the Kubernetes simulation, for benchmarks.
    pub kube_scale: usize,
    /// `auth.mode: jwt` with the Backstage simulation as the token issuer and a read-only
    /// anonymous role (the `demo` command); off: `auth.mode: none`.
    pub auth: bool,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            scale: 0,
            catalog_poll_secs: 2.0,
            argo_timing: ArgoTiming::default(),
            weather: false,
            github_rate_limit: 5000,
            max_backoff_secs: 30.0,
            kube_scale: 0,
            auth: true,
        }
    }
}

impl DemoOptions {
    /// Fast and quiet: what the tests use.
    pub fn for_tests() -> Self {
        Self {
            scale: 0,
            catalog_poll_secs: 0.1,
            argo_timing: ArgoTiming {
                sync: std::time::Duration::from_millis(300),
                rollout: std::time::Duration::from_millis(300),
                auto_sync_delay: std::time::Duration::from_millis(300),
                keepalive: std::time::Duration::from_millis(500),
            },
            weather: false,
            github_rate_limit: 5000,
            max_backoff_secs: 1.0,
            kube_scale: 0,
            auth: false,
        }
    }
}

impl DemoWorld {
    pub async fn start(opts: &DemoOptions) -> std::io::Result<Self> {
        let shutdown = CancellationToken::new();
        let git = std::sync::Arc::new(git::GitWorld::default());
        git.create(
            seed::UNCATALOGUED_REPO,
            "Sealed secrets of the platform",
            Some("YAML"),
            3,
        );
        let backstage = BackstageSim::start_with(
            seed::catalog(opts.scale),
            DEMO_TOKEN,
            opts.argo_timing.sync / 4,
            shutdown.clone(),
        )
        .await?;
        let argocd = ArgoCdSim::start(
            argocd::seed_apps(opts.scale),
            git.clone(),
            DEMO_TOKEN,
            opts.argo_timing.clone(),
            shutdown.clone(),
        )
        .await?;
        {
            // A template run creates the repo and an ArgoCD app, which then syncs.
            let (git, argo) = (git.clone(), argocd.clone());
            backstage.on_created(std::sync::Arc::new(move |name: &str, _owner: &str| {
                let slug = format!("yourcompany/{name}");
                git.create(
                    &slug,
                    &format!("{name}, created from a template"),
                    Some("Rust"),
                    1,
                );
                let mut spec = argocd::seed_apps(0)
                    .into_iter()
                    .find(|a| a.name == "sample-app")
                    .expect("BUG: seed has sample-app");
                spec.name = name.to_string();
                spec.repo_slug = slug;
                spec.dest_namespace = name.to_string();
                spec.auto_sync = true;
                spec.image = format!("registry.yourcompany.example/{name}:0.1.0");
                if let Err(e) = argo.add_app(spec) {
                    tracing::warn!(app = %name, error = %e, "the simulated ArgoCD refused the template's application");
                    return;
                }
                let (argo, name) = (argo.clone(), name.to_string());
                tokio::spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    argo.start_sync(&name);
                });
            }));
        }
        let github = github::GitHubSim::start(
            git.clone(),
            DEMO_TOKEN,
            opts.github_rate_limit,
            shutdown.clone(),
        )
        .await?;
        let namespaces: Vec<&str> = seed::PLATFORM_APPS
            .iter()
            .chain(seed::APPLICATION_APPS.iter())
            .copied()
            .filter(|n| *n != "namespaces")
            .collect();
        let mut objects = kubernetes::seed_objects(&namespaces);
        objects.extend(kubernetes::bulk_objects(opts.kube_scale, 5));
        let kubernetes = kubernetes::KubeSim::start(objects, None, shutdown.clone()).await?;
        kubernetes.set_rollout_step(opts.argo_timing.rollout / 3);
        // One world: ArgoCD's resource trees name the cluster's objects, UIDs and all.
        {
            let kube = kubernetes.clone();
            argocd.attach_cluster(std::sync::Arc::new(move |ns: &str| kube.app_objects(ns)));
        }
        // ArgoCD applying a new revision rolls the app's Deployment in the cluster.
        {
            let mut synced = argocd.synced_events();
            let (kube, token) = (kubernetes.clone(), shutdown.clone());
            tokio::spawn(async move {
                loop {
                    let (app, revision) = tokio::select! {
                        _ = token.cancelled() => return,
                        e = synced.recv() => match e {
                            Ok(e) => e,
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                            Err(_) => return,
                        },
                    };
                    if kube.get("deployments", &app, &app).is_none() {
                        // An app created from a template: its namespace and workloads appear.
                        for (resource, obj) in kubernetes::seed_objects(&[app.as_str()]) {
                            let ns = obj.pointer("/metadata/name").and_then(|v| v.as_str());
                            if resource == "namespaces" && ns != Some(app.as_str()) {
                                continue;
                            }
                            kube.upsert(resource, obj);
                        }
                    }
                    kube.deploy_revision(&app, &app, &revision);
                }
            });
        }
        let slack = slack::SlackSim::start(shutdown.clone()).await?;
        if opts.weather {
            tokio::spawn(weather(
                argocd.clone(),
                kubernetes.clone(),
                shutdown.clone(),
            ));
        }
        Ok(Self {
            git,
            backstage,
            argocd,
            github,
            kubernetes,
            slack,
            shutdown,
        })
    }

    /// Settings and credentials that point the server at this world.
    pub fn settings(&self, opts: &DemoOptions) -> (Settings, ResolvedSecrets) {
        let mut s = Settings::empty();
        s.backstage = Some(BackstageSettings {
            url: self.backstage.url(),
            token: TokenSource::default(),
            poll_interval_secs: opts.catalog_poll_secs,
            page_size: 500,
            timeout_secs: 5.0,
        });
        s.argocd = vec![ArgoCdSettings {
            name: "main".into(),
            url: self.argocd.url(),
            token: TokenSource::default(),
            relist_interval_secs: 300.0,
            timeout_secs: 5.0,
            max_backoff_secs: opts.max_backoff_secs,
        }];
        s.github = Some(GitHubSettings {
            url: self.github.url(),
            token: TokenSource::default(),
            ttl: Default::default(),
            timeout_secs: 5.0,
            page_size: 100,
            webhook_secret_env: None,
            webhook_secret_file: None,
            safety_net_secs: 600.0,
        });
        s.kubernetes = vec![KubernetesSettings {
            name: "demo".into(),
            kubeconfig: None,
            context: None,
            url: Some(self.kubernetes.url()),
            token: TokenSource::default(),
            argocd_destinations: vec!["in-cluster".into(), "https://kubernetes.default.svc".into()],
            page_size: 500,
            max_backoff_secs: opts.max_backoff_secs,
            timeout_secs: 10.0,
            // With auth on, writes impersonate the caller: the simulated cluster sees who.
            impersonate: opts.auth,
        }];
        s.readiness.initial_sync_timeout_secs = 20.0;
        if opts.auth {
            s.auth = AuthSettings {
                mode: AuthMode::Jwt,
                anonymous: Some("read-only".into()),
                jwt: JwtSettings {
                    issuers: vec![IssuerSettings::backstage(&self.backstage.url())],
                },
                policy: Some(demo_policy()),
            };
        }
        let secrets = ResolvedSecrets::default()
            .with(SourceKind::Backstage, "backstage", DEMO_TOKEN)
            .with(SourceKind::ArgoCd, "main", DEMO_TOKEN)
            .with(SourceKind::GitHub, "github", DEMO_TOKEN);
        (s, secrets)
    }

    /// One ready bearer token per demo persona, valid for a day: (persona, groups, token).
    /// `alice` is in platform-team, `carol` in app-team (which owns the team apps), `erin` in
    /// no group — as the demo catalog has them; `notify-bot` is the chatops bot
    /// (`idp-graph notify`), which the demo's policy lets see everything and act for users.
    pub fn persona_tokens(&self) -> Vec<(&'static str, &'static str, String)> {
        [
            ("alice", "platform-team"),
            ("carol", "app-team"),
            ("erin", "no group"),
            ("notify-bot", "delegate"),
        ]
        .into_iter()
        .map(|(name, groups)| {
            let token = self
                .backstage
                .user_token(&format!("user:default/{name}"), 24 * 3600);
            (name, groups, token)
        })
        .collect()
    }

    pub fn stop(&self) {
        self.shutdown.cancel();
    }

    /// `rounds` rounds of the weather at once, app-3's spells lasting `spell` (tests: the
    /// simulations after the weather ran a while).
    pub fn weather_now(&self, rounds: usize, spell: std::time::Duration) {
        for n in 1..=rounds {
            weather_tick(&self.argocd, &self.kubernetes, n, spell);
        }
    }
}

/// The seed's boundary (`Policy::default()`) plus the chatops bot: [`seed::NOTIFY_BOT`] sees
/// everything (to route every app's notifications), takes no action of its own, and may act
/// for a catalog user (`delegate`), as whom the policy then decides.
pub fn demo_policy() -> crate::auth::Policy {
    use crate::auth::policy::{ActOn, Binding, Role};
    let mut policy = crate::auth::Policy::default();
    policy.roles.insert(
        "chatops-bot".into(),
        Role {
            admin: false,
            catalog: true,
            projects: vec!["*".into()],
            namespaces: vec!["*".into()],
            actions: Vec::new(),
            act_on: ActOn::All,
            delegate: true,
        },
    );
    policy.bindings.push(Binding {
        group: None,
        subject: Some(seed::NOTIFY_BOT.into()),
        authenticated: false,
        role: "chatops-bot".into(),
    });
    policy
}

impl Drop for DemoWorld {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The demo's weather: every 20 s a commit lands in some app's repo (auto-sync apps follow by
/// themselves; others wait for someone to press sync), and app-3 degrades for 15 s each minute
/// (one of its pods in CrashLoopBackOff meanwhile).
async fn weather(argocd: ArgoCdSim, kube: kubernetes::KubeSim, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(20));
    tick.tick().await;
    let mut n = 0usize;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        n += 1;
        weather_tick(&argocd, &kube, n, std::time::Duration::from_secs(15));
    }
}

/// Round `n` of the weather: a commit to a random app; every third round app-3 degrades (and
/// crash-loops) for `spell`.
fn weather_tick(
    argocd: &ArgoCdSim,
    kube: &kubernetes::KubeSim,
    n: usize,
    spell: std::time::Duration,
) {
    let apps = [
        seed::APPLICATION_APPS.as_slice(),
        seed::PLATFORM_APPS.as_slice(),
    ]
    .concat();
    let app = apps[rand::random_range(0..apps.len())];
    argocd.push_commit(app, &format!("Release {n} of {app}"));
    if n.is_multiple_of(3) {
        argocd.set_health(
            "app-3",
            "Degraded",
            Some("Deployment \"app-3\" exceeded its progress deadline"),
        );
        kube.set_crashloop("app-3", "app-3", true);
        let (a, k) = (argocd.clone(), kube.clone());
        tokio::spawn(async move {
            tokio::time::sleep(spell).await;
            a.set_health("app-3", "Healthy", None);
            k.set_crashloop("app-3", "app-3", false);
        });
    }
}
