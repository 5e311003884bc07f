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

pub use client::ArgoCdClient;
pub use handle::ArgoCdHandle;
pub use settings::ArgoCdSettings;
pub use watcher::ArgoCdWatcher;
