//! `cluster:` in the config: replicas sharing one change log on Redis. Absent: one process, an
//! in-memory bus, nothing shared — the demo and a single replica need nothing more.

use secrecy::SecretString;
use serde::Deserialize;

use crate::settings::{invalid, positive, ConfigError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSettings {
    /// Environment variable holding the Redis URL (`redis://:password@redis:6379/0`).
    #[serde(default)]
    pub redis_url_env: Option<String>,
    /// A file holding the Redis URL (a mounted Secret).
    #[serde(default)]
    pub redis_url_file: Option<std::path::PathBuf>,
    /// This replica's name in the membership set; default `$POD_NAME`, else the hostname.
    #[serde(default)]
    pub replica_id: Option<String>,
    /// How long an owner's lease lasts without renewal (renewed every third of it).
    #[serde(default = "default_lease")]
    pub lease_secs: f64,
    /// Prefix of every Redis key (several deployments may share one Redis).
    #[serde(default = "default_prefix")]
    pub key_prefix: String,
    /// Entries the change log keeps (approximately; Redis trims whole nodes).
    #[serde(default = "default_log_entries")]
    pub log_max_entries: usize,
    /// How often an owner writes its sources' snapshots (a replica that starts reads them).
    #[serde(default = "default_snapshot")]
    pub snapshot_secs: f64,
}

fn default_lease() -> f64 {
    10.0
}
fn default_prefix() -> String {
    "idp-graph".into()
}
fn default_log_entries() -> usize {
    100_000
}
fn default_snapshot() -> f64 {
    15.0
}

impl ClusterSettings {
    /// What serde cannot check; errors name `key` (`cluster`) and the sub-key.
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        match (&self.redis_url_env, &self.redis_url_file) {
            (None, None) => {
                return Err(invalid(
                    format!("{key}.redis_url_env"),
                    "name where the Redis URL is: redis_url_env or redis_url_file",
                ))
            }
            (Some(_), Some(_)) => {
                return Err(invalid(
                    format!("{key}.redis_url_file"),
                    "give redis_url_env or redis_url_file, not both",
                ))
            }
            _ => {}
        }
        positive(&format!("{key}.lease_secs"), self.lease_secs)?;
        if self.lease_secs < 1.0 {
            return Err(invalid(format!("{key}.lease_secs"), "must be at least 1"));
        }
        positive(&format!("{key}.snapshot_secs"), self.snapshot_secs)?;
        if self.log_max_entries < 1000 {
            return Err(invalid(
                format!("{key}.log_max_entries"),
                "must be at least 1000",
            ));
        }
        if self.key_prefix.is_empty() || self.key_prefix.contains(char::is_whitespace) {
            return Err(invalid(
                format!("{key}.key_prefix"),
                "must be a non-empty word without spaces",
            ));
        }
        if let Some(id) = &self.replica_id {
            if id.is_empty() || id.contains('|') {
                return Err(invalid(
                    format!("{key}.replica_id"),
                    "must be non-empty and must not contain `|`",
                ));
            }
        }
        Ok(())
    }

    /// The Redis URL, read from its variable or file (never logged).
    pub fn redis_url(&self, key: &str) -> Result<SecretString, ConfigError> {
        let value = match (&self.redis_url_env, &self.redis_url_file) {
            (Some(var), _) => std::env::var(var).map_err(|_| {
                invalid(
                    format!("{key}.redis_url_env"),
                    format!("environment variable {var} is not set"),
                )
            })?,
            (None, Some(path)) => std::fs::read_to_string(path).map_err(|e| {
                invalid(
                    format!("{key}.redis_url_file"),
                    format!("cannot read {}: {e}", path.display()),
                )
            })?,
            (None, None) => return Err(invalid(format!("{key}.redis_url_env"), "not set")),
        };
        let value = value.trim().to_string();
        // TLS (`rediss://`) is not built in: run Redis inside the cluster network (deploy/).
        if !value.starts_with("redis://") {
            return Err(invalid(
                format!("{key}.redis_url_env"),
                "the Redis URL must start with redis://",
            ));
        }
        Ok(SecretString::from(value))
    }

    /// This replica's id: configured, else `$POD_NAME`, else the hostname with the process id
    /// (two processes on one machine are two replicas).
    pub fn replica_id(&self) -> String {
        self.replica_id
            .clone()
            .or_else(|| std::env::var("POD_NAME").ok().filter(|v| !v.is_empty()))
            .or_else(|| {
                std::fs::read_to_string("/etc/hostname")
                    .ok()
                    .map(|h| h.trim().to_string())
                    .filter(|h| !h.is_empty())
                    .map(|h| format!("{h}-{}", std::process::id()))
            })
            .unwrap_or_else(|| format!("replica-{:08x}", rand::random::<u32>()))
            .replace('|', "-")
    }
}
