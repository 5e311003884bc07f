//! The demo world: faithful simulations of the upstream APIs as real HTTP servers on loopback
//! ports, seeded with the seed platform's content. `idp-graph demo`, the tests and the
//! benchmarks all run the product's real source code against them.

pub mod backstage;
pub mod faults;
pub mod seed;

use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::config::{BackstageSettings, ResolvedSecrets, Settings, TokenSource};

pub use backstage::BackstageSim;
pub use faults::Faults;

/// The credential the simulated upstreams accept. Not a secret: documented, demo only.
pub const DEMO_TOKEN: &str = "idp-demo-token";

/// All simulated upstreams of one demo world.
pub struct DemoWorld {
    pub backstage: BackstageSim,
    shutdown: CancellationToken,
}

#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Extra generated services.
    pub scale: usize,
    /// Seconds between catalog polls by the server.
    pub catalog_poll_secs: f64,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            scale: 0,
            catalog_poll_secs: 2.0,
        }
    }
}

impl DemoWorld {
    pub async fn start(opts: &DemoOptions) -> std::io::Result<Self> {
        let shutdown = CancellationToken::new();
        let backstage =
            BackstageSim::start(seed::catalog(opts.scale), DEMO_TOKEN, shutdown.clone()).await?;
        Ok(Self {
            backstage,
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
        s.readiness.initial_sync_timeout_secs = 20.0;
        let secrets = ResolvedSecrets {
            backstage: Some(SecretString::from(DEMO_TOKEN)),
            argocd: Default::default(),
        };
        (s, secrets)
    }

    pub fn stop(&self) {
        self.shutdown.cancel();
    }
}

impl Drop for DemoWorld {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
