//! `events:` in the config: how far the bus lets a subscriber fall behind, and how much of
//! the past it keeps for a reconnecting client, and the key its cursors are sealed with. Read
//! by `App::build` (`EventBus::with_replay`) and the shared subscription hub.

use serde::Deserialize;

use crate::settings::{invalid, positive, ConfigError, TokenSource};

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
    /// The secret cursors are sealed with (`cursor.rs`): an environment variable or a file
    /// holding at least 32 characters, the same on every replica. Unset: a random key per
    /// process (cursors then do not outlive it).
    pub cursor_key_env: Option<String>,
    pub cursor_key_file: Option<std::path::PathBuf>,
}

impl Default for EventSettings {
    fn default() -> Self {
        Self {
            capacity: 4096,
            replay: 4096,
            replay_secs: REPLAY_AGE.as_secs_f64(),
            cursor_key_env: None,
            cursor_key_file: None,
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
        TokenSource {
            token_env: self.cursor_key_env.clone(),
            token_file: self.cursor_key_file.clone(),
        }
        .validate(&format!("{key}.cursor_key"))
    }

    /// The key cursors are sealed with: from the secret named (its SHA-256, so any secret of
    /// 32 characters or more will do), else a random one.
    pub fn cursor_key(&self, key: &str) -> Result<super::CursorKey, ConfigError> {
        use secrecy::ExposeSecret;
        use sha2::Digest;
        let at = format!("{key}.cursor_key");
        let source = TokenSource {
            token_env: self.cursor_key_env.clone(),
            token_file: self.cursor_key_file.clone(),
        };
        let Some(secret) = source.resolve(&at)? else {
            return Ok(super::CursorKey::random());
        };
        if secret.expose_secret().len() < 32 {
            return Err(invalid(at, "the secret must have at least 32 characters"));
        }
        let digest: [u8; 32] = sha2::Sha256::digest(secret.expose_secret().as_bytes()).into();
        Ok(super::CursorKey::new(&digest))
    }
}
