//! The bottom of the settings stack: what every feature's settings type is built from — the
//! one [`ConfigError`], the validation helpers that name the exact key (`argocd[1].url`), and
//! [`TokenSource`], how a credential is named without being inline.
//!
//! A leaf: it imports nothing from the crate. Each feature keeps its own settings type beside
//! its code (`sources/<name>/settings.rs`, `auth/settings.rs`, `graph/limits.rs`,
//! `http/settings.rs`, ...) and validates it with these helpers; `config.rs`, on top, only
//! assembles them into one `Settings` and loads it. So features import this module, never
//! `config` (ripgrep's hiargs habit: libraries never import the settings layer).

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

/// A config that cannot be used, naming the key that is wrong and what is wrong with it: a
/// platform team reads these in a crash-looping pod's log.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid YAML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("config key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

/// The error for one key.
pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

/// A duration in seconds must be a positive, finite number.
pub(crate) fn positive(key: &str, v: f64) -> Result<(), ConfigError> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(invalid(key, "must be a positive number of seconds"))
    }
}

/// An upstream URL: http or https, no credentials inline.
pub(crate) fn check_url(key: &str, raw: &str) -> Result<(), ConfigError> {
    let url =
        url::Url::parse(raw).map_err(|e| invalid(key, format!("`{raw}` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(
            key,
            format!("`{raw}` must be an http or https URL"),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            key,
            "credentials must not be inline in the URL; use token_env or token_file",
        ));
    }
    Ok(())
}

/// An instance name (`argocd[0].name`, a cluster's name): a DNS label.
pub(crate) fn check_name(key: &str, name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!("`{name}` must be 1-63 lower-case letters, digits or `-`"),
        ))
    }
}

/// Where a credential comes from. Exactly one of the two, or neither for anonymous upstreams.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSource {
    #[serde(default)]
    pub token_env: Option<String>,
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

impl TokenSource {
    pub(crate) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        if self.token_env.is_some() && self.token_file.is_some() {
            return Err(invalid(
                format!("{key}.token_env"),
                "set either token_env or token_file, not both",
            ));
        }
        if let Some(var) = &self.token_env {
            if var.is_empty() || var.contains('=') {
                return Err(invalid(
                    format!("{key}.token_env"),
                    "must be the name of an environment variable",
                ));
            }
        }
        Ok(())
    }

    /// Reads the credential. Its value never appears in an error.
    pub fn resolve(&self, key: &str) -> Result<Option<SecretString>, ConfigError> {
        if let Some(var) = &self.token_env {
            return match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => Ok(Some(SecretString::from(v.trim().to_string()))),
                Ok(_) => Err(invalid(
                    format!("{key}.token_env"),
                    format!("environment variable {var} is empty"),
                )),
                Err(_) => Err(invalid(
                    format!("{key}.token_env"),
                    format!("environment variable {var} is not set"),
                )),
            };
        }
        if let Some(path) = &self.token_file {
            return match std::fs::read_to_string(path) {
                Ok(v) if !v.trim().is_empty() => Ok(Some(SecretString::from(v.trim().to_string()))),
                Ok(_) => Err(invalid(
                    format!("{key}.token_file"),
                    format!("{} is empty", path.display()),
                )),
                Err(e) => Err(invalid(
                    format!("{key}.token_file"),
                    format!("cannot read {}: {e}", path.display()),
                )),
            };
        }
        Ok(None)
    }
}
