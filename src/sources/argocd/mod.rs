//! The ArgoCD source, one per configured instance: an initial `GET /api/v1/applications` and
//! `GET /api/v1/projects`, then one long-lived `GET /api/v1/stream/applications` applied to the
//! in-memory copy. The stream drops behind proxies and can silently lose events when ArgoCD's
//! per-subscriber buffer fills, so every reconnect re-lists, and a periodic re-list runs as a
//! safety net. Actions (sync, rollback, refresh, terminate) and resource trees go through
//! `ArgoCdHandle`.

mod client;
mod handle;
mod settings;
mod watcher;
mod wire;

/// The wire decoders on raw upstream text, for the generative tests (`tests/decoders.rs`).
/// Not an API.
#[doc(hidden)]
pub mod fuzz {
    /// One Application as `GET /api/v1/applications/{name}` answers it.
    pub fn application(json: &str) -> bool {
        super::wire::to_application("fuzz", json).is_ok()
    }
    /// One line of the `/api/v1/stream/applications` stream (either framing).
    pub fn stream_line(line: &[u8]) -> bool {
        matches!(
            super::client::parse_line("fuzz", "http://fuzz", line),
            Some(Ok(_))
        )
    }
    /// A resource tree (`GET …/resource-tree`).
    pub fn resource_tree(json: &str) -> bool {
        serde_json::from_str::<serde_json::Value>(json)
            .map(|v| super::wire::to_resource_tree(&v))
            .is_ok()
    }
}

pub use client::ArgoCdClient;
pub use handle::ArgoCdHandle;
pub use settings::ArgoCdSettings;
pub use watcher::ArgoCdWatcher;
