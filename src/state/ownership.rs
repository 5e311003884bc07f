//! Which upstream instances this process ingests. In one process: all of them, always. With
//! replicas sharing one change log (`cluster`), each instance is ingested by the replica that
//! holds its lease; the lease manager opens and closes the gates here, and each source's
//! ingestion runs only while its gate is open ([`run_while_owned`]), starting afresh — with a
//! full list — every time it opens.
//!
//! A gate's value is the lease's fencing number (`Some(0)` in one process); the change log
//! refuses what an owner whose lease has lapsed tries to append.

use std::collections::HashMap;
use std::future::Future;

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// An upstream instance's id: `<kind>/<name>` (`argocd/main`, `kubernetes/demo`, `backstage`,
/// `github`), as `sources` and `/readyz` name it.
pub fn source_id(kind: super::SourceKind, name: &str) -> String {
    match kind {
        super::SourceKind::Backstage | super::SourceKind::GitHub => kind.as_str().to_string(),
        _ => format!("{}/{name}", kind.as_str()),
    }
}

pub struct Ownership {
    /// `false` in one process: every gate is open for good.
    shared: bool,
    gates: Mutex<HashMap<String, watch::Sender<Option<u64>>>>,
}

impl Default for Ownership {
    fn default() -> Self {
        Self::single()
    }
}

impl Ownership {
    /// One process: it owns everything.
    pub fn single() -> Self {
        Self {
            shared: false,
            gates: Mutex::new(HashMap::new()),
        }
    }

    /// Replicas: every gate starts closed until the lease manager opens it.
    pub fn shared() -> Self {
        Self {
            shared: true,
            gates: Mutex::new(HashMap::new()),
        }
    }

    pub fn is_shared(&self) -> bool {
        self.shared
    }

    fn sender(&self, id: &str) -> watch::Sender<Option<u64>> {
        let initial = (!self.shared).then_some(0);
        self.gates
            .lock()
            .entry(id.to_string())
            .or_insert_with(|| watch::channel(initial).0)
            .clone()
    }

    /// A source's gate (registered on first use).
    pub fn gate(&self, id: &str) -> watch::Receiver<Option<u64>> {
        self.sender(id).subscribe()
    }

    /// Opens (`Some(fence)`) or closes (`None`) a gate.
    pub fn set(&self, id: &str, fence: Option<u64>) {
        self.sender(id).send_if_modified(|v| {
            let changed = *v != fence;
            *v = fence;
            changed
        });
    }

    /// The fencing number while this process owns the source.
    pub fn fence(&self, id: &str) -> Option<u64> {
        *self.sender(id).borrow()
    }

    /// Every registered source id, sorted.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.gates.lock().keys().cloned().collect();
        ids.sort();
        ids
    }
}

/// Runs `ingest` while the gate is open: cancelled (its token) when the gate closes or at
/// shutdown, started again when it opens again.
pub async fn run_while_owned<F, Fut>(
    mut gate: watch::Receiver<Option<u64>>,
    shutdown: CancellationToken,
    ingest: F,
) where
    F: Fn(CancellationToken) -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            open = async { gate.wait_for(|v| v.is_some()).await.is_ok() } => if !open { return },
        }
        let token = shutdown.child_token();
        let run = ingest(token.clone());
        tokio::pin!(run);
        tokio::select! {
            _ = &mut run => {
                // Ingestion ends only at shutdown (its token); nothing more to do.
                return;
            }
            _ = async { gate.wait_for(|v| v.is_none()).await.is_ok() } => {
                tracing::info!("lease lost or handed over; this replica stops ingesting");
                token.cancel();
                run.await;
            }
        }
    }
}
