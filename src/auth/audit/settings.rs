//! `audit:` in the config: where the audit trail is kept beyond this process. Read by
//! `App::build`, which opens the durable store (`store.rs`) when a database is named.

use secrecy::SecretString;
use serde::Deserialize;

use crate::settings::{invalid, ConfigError};

/// Where the audit trail is kept beyond this process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSettings {
    /// Environment variable holding a PostgreSQL URL (`postgres://user:pass@host/db`): the
    /// durable, shared audit trail. Unset: in memory only.
    pub postgres_url_env: Option<String>,
    /// Records queued while the database is unreachable; when full, mutations are refused
    /// with `AUDIT_UNAVAILABLE`.
    pub buffer: usize,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            postgres_url_env: None,
            buffer: 1000,
        }
    }
}

impl AuditSettings {
    /// What serde cannot check; errors name `key` (`audit`) and the sub-key.
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        if self.buffer == 0 {
            return Err(invalid(format!("{key}.buffer"), "must be greater than 0"));
        }
        Ok(())
    }

    /// The database URL, read from its variable (never logged).
    pub fn postgres_url(&self) -> Result<Option<SecretString>, ConfigError> {
        let Some(var) = &self.postgres_url_env else {
            return Ok(None);
        };
        match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => Ok(Some(SecretString::from(v.trim().to_string()))),
            _ => Err(invalid(
                "audit.postgres_url_env",
                format!("environment variable {var} is not set"),
            )),
        }
    }
}
