//! `events:` in the config: how far the bus lets a subscriber fall behind, and how much of
//! the past it keeps for a reconnecting client. Read by `App::build` (`EventBus::with_replay`)
//! and the shared subscription hub.

use serde::Deserialize;

use crate::settings::{invalid, positive, ConfigError};

/// `events.replay_secs`'s default: five minutes of events for a reconnecting client — a
/// Kubernetes API server's watch cache keeps about 75 seconds for the same purpose.
pub const REPLAY_AGE: std::time::Duration = std::time::Duration::from_secs(300);

/// The event bus behind subscriptions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventSettings {
    /// How far one subscriber may fall behind before it gets RESYNC_REQUIRED.
    pub capacity: usize,
    /// How many past events a reconnecting client can resume from by cursor.
    pub replay: usize,
    /// How old those events may be, in seconds (older ones are dropped; a cursor before them
    /// gets RESYNC_REQUIRED).
    pub replay_secs: f64,
}

impl Default for EventSettings {
    fn default() -> Self {
        Self {
            capacity: 4096,
            replay: 4096,
            replay_secs: REPLAY_AGE.as_secs_f64(),
        }
    }
}

impl EventSettings {
    /// What serde cannot check; errors name `key` (`events`) and the sub-key.
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        if !(1..=1_000_000).contains(&self.capacity) || !(1..=1_000_000).contains(&self.replay) {
            return Err(invalid(
                key,
                "capacity and replay must be between 1 and 1000000",
            ));
        }
        let replay_secs = format!("{key}.replay_secs");
        positive(&replay_secs, self.replay_secs)?;
        if self.replay_secs > 7.0 * 86_400.0 {
            return Err(invalid(replay_secs, "must be at most a week (604800)"));
        }
        Ok(())
    }
}
