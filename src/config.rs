//! Typed settings: defaults → YAML file → `IDP_GRAPH__*` environment overrides, validated at
//! start. Every error names the key that is wrong and what is wrong with it, because a platform
//! team reads these messages in a crash-looping pod's log. Credentials are never inline: a
//! source names an environment variable (`token_env`) or a file (`token_file`), and the
//! resolved value lives in a `SecretString` that never prints.
//!
//! The top of the settings stack: this module only assembles. Each feature owns its settings
//! type and its validation beside its code (`sources/<name>/settings.rs`, `auth/settings.rs`,
//! `auth/audit/settings.rs`, `graph/limits.rs`, `http/settings.rs`, ...), built from the leaf
//! `crate::settings` (`ConfigError`, the key-naming helpers, `TokenSource`). No feature imports
//! this module; `app` and `main` do.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

pub use crate::auth::audit::AuditSettings;
pub use crate::auth::{AuthMode, AuthSettings};
pub use crate::events::EventSettings;
pub use crate::graph::Limits;
pub use crate::http::{HttpSettings, Readiness};
use crate::settings::invalid;
pub use crate::settings::{ConfigError, TokenSource};
pub use crate::sources::argocd::ArgoCdSettings;
pub use crate::sources::backstage::BackstageSettings;
pub use crate::sources::github::{GitHubSettings, GitHubTtlSettings};
pub use crate::sources::kubernetes::KubernetesSettings;
use crate::sources::Source;
use crate::state::SourceKind;

/// Environment variables with this prefix override file keys: `IDP_GRAPH__LISTEN`,
/// `IDP_GRAPH__BACKSTAGE__URL`, `IDP_GRAPH__LIMITS__MAX_DEPTH`. Segments are lower-cased.
pub const ENV_PREFIX: &str = "IDP_GRAPH__";

/// The settings struct, with the upstreams listed once: each line is a config key and the
/// source's own settings type (`sources/<name>/settings.rs`). The list also generates
/// [`Settings::sources`], which validation, credential resolution and `App::build` walk, so
/// adding a source is one line here.
macro_rules! settings_with_sources {
    ($($(#[$doc:meta])* $field:ident: $ty:ty,)*) => {
        #[derive(Debug, Clone, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Settings {
            #[serde(default = "default_listen")]
            pub listen: SocketAddr,
            $($(#[$doc])* #[serde(default)] pub $field: $ty,)*
            #[serde(default)]
            pub auth: AuthSettings,
            #[serde(default)]
            pub limits: Limits,
            #[serde(default)]
            pub http: HttpSettings,
            #[serde(default)]
            pub audit: AuditSettings,
            /// APQ and trusted documents.
            #[serde(default)]
            pub persisted: crate::http::persisted::PersistedSettings,
            /// Apollo Federation v2 subgraph mode.
            #[serde(default)]
            pub federation: crate::graph::federation::FederationSettings,
            /// OpenTelemetry trace export.
            #[serde(default)]
            pub telemetry: crate::telemetry::TelemetrySettings,
            /// The response cache.
            #[serde(default)]
            pub cache: crate::http::response_cache::CacheSettings,
            #[serde(default)]
            pub readiness: Readiness,
            #[serde(default)]
            pub events: EventSettings,
            /// Replicas sharing one change log on Redis; absent: one process.
            #[serde(default)]
            pub cluster: Option<crate::cluster::ClusterSettings>,
            /// How long in-flight requests and streams get to finish after SIGTERM.
            #[serde(default = "default_shutdown_grace")]
            pub shutdown_grace_secs: u64,
        }

        impl Settings {
            /// Settings with nothing configured: the base the demo fills in.
            pub fn empty() -> Self {
                Self {
                    listen: default_listen(),
                    $($field: Default::default(),)*
                    auth: AuthSettings::default(),
                    limits: Limits::default(),
                    http: HttpSettings::default(),
                    audit: AuditSettings::default(),
                    persisted: Default::default(),
                    federation: Default::default(),
                    telemetry: Default::default(),
                    cache: Default::default(),
                    readiness: Readiness::default(),
                    events: EventSettings::default(),
                    cluster: None,
                    shutdown_grace_secs: default_shutdown_grace(),
                }
            }

            /// Every configured upstream instance with its config key (`backstage`,
            /// `argocd[1]`), in config order.
            pub fn sources(&self) -> Vec<(String, &dyn Source)> {
                let mut out: Vec<(String, &dyn Source)> = Vec::new();
                $(Configured::collect(&self.$field, stringify!($field), &mut out);)*
                out
            }
        }
    };
}

settings_with_sources! {
    backstage: Option<BackstageSettings>,
    argocd: Vec<ArgoCdSettings>,
    kubernetes: Vec<KubernetesSettings>,
    github: Option<GitHubSettings>,
}

/// A settings field that holds zero, one or many instances of a source.
trait Configured {
    fn collect<'a>(&'a self, key: &str, out: &mut Vec<(String, &'a dyn Source)>);
}

impl<T: Source + 'static> Configured for Option<T> {
    fn collect<'a>(&'a self, key: &str, out: &mut Vec<(String, &'a dyn Source)>) {
        if let Some(s) = self {
            out.push((key.to_string(), s));
        }
    }
}

impl<T: Source + 'static> Configured for Vec<T> {
    fn collect<'a>(&'a self, key: &str, out: &mut Vec<(String, &'a dyn Source)>) {
        for (i, s) in self.iter().enumerate() {
            out.push((format!("{key}[{i}]"), s));
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_shutdown_grace() -> u64 {
    20
}

impl Settings {
    /// Reads, overlays the environment, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_yaml_with_env(&text, path, std::env::vars())
    }

    /// Parses YAML text, applying `IDP_GRAPH__*` overrides from `env`.
    pub fn from_yaml_with_env(
        text: &str,
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut doc: serde_yaml::Value = if text.trim().is_empty() {
            serde_yaml::Value::Mapping(Default::default())
        } else {
            serde_yaml::from_str(text).map_err(|e| ConfigError::Syntax {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?
        };
        if !doc.is_mapping() {
            return Err(invalid("(root)", "the config must be a YAML mapping"));
        }
        apply_env(&mut doc, env)?;
        let settings: Settings = serde_path_to_error::deserialize(doc).map_err(|e| {
            let key = e.path().to_string();
            let key = if key == "." {
                "(root)".to_string()
            } else {
                key
            };
            invalid(key, e.into_inner().to_string())
        })?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what serde cannot: URLs, unique names, ranges, token sources.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut names = HashSet::new();
        for (key, source) in self.sources() {
            source.validate(&key)?;
            if !names.insert((source.kind(), source.name())) {
                return Err(invalid(
                    format!("{key}.name"),
                    format!(
                        "duplicate {} name `{}`",
                        source.kind().as_str(),
                        source.name()
                    ),
                ));
            }
        }
        self.auth.validate("auth")?;
        self.telemetry
            .validate()
            .map_err(|(key, message)| invalid(key, message))?;
        self.audit.validate("audit")?;
        self.http.validate("http")?;
        self.limits.validate("limits")?;
        self.events.validate("events")?;
        self.readiness.validate("readiness")?;
        if let Some(c) = &self.cluster {
            c.validate("cluster")?;
            // A cursor is resumed on whichever replica the client reaches next: every replica
            // must seal and open it with the same key.
            if self.events.cursor_key_env.is_none() && self.events.cursor_key_file.is_none() {
                return Err(invalid(
                    "events.cursor_key_env",
                    "replicas (`cluster:`) need one cursor key for all of them: set events.cursor_key_env or events.cursor_key_file",
                ));
            }
        }
        Ok(())
    }

    /// Resolves every configured credential, so a missing variable fails at start, not at the
    /// first upstream call.
    pub fn resolve_secrets(&self) -> Result<ResolvedSecrets, ConfigError> {
        self.audit.postgres_url()?;
        if let Some(c) = &self.cluster {
            c.redis_url("cluster")?;
        }
        let mut secrets = ResolvedSecrets::default();
        for (key, source) in self.sources() {
            if let Some(t) = source.token().resolve(&key)? {
                secrets.insert(source.kind(), source.name(), t);
            }
        }
        Ok(secrets)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.limits.request_timeout_secs)
    }
}

/// Credentials read from the environment or files, by source instance. Debug never shows
/// values.
#[derive(Debug, Default, Clone)]
pub struct ResolvedSecrets {
    by_source: std::collections::HashMap<(SourceKind, String), SecretString>,
}

impl ResolvedSecrets {
    pub fn insert(&mut self, kind: SourceKind, name: &str, secret: SecretString) {
        self.by_source.insert((kind, name.to_string()), secret);
    }

    /// The same, for building a set in one expression (the demo, tests).
    pub fn with(mut self, kind: SourceKind, name: &str, secret: impl Into<String>) -> Self {
        self.insert(kind, name, SecretString::from(secret.into()));
        self
    }

    pub fn get(&self, kind: SourceKind, name: &str) -> Option<SecretString> {
        self.by_source.get(&(kind, name.to_string())).cloned()
    }
}

/// Overlays `IDP_GRAPH__A__B=value` onto `doc` as `a.b: value` (value parsed as YAML scalar).
fn apply_env(
    doc: &mut serde_yaml::Value,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    vars.sort();
    for (var, raw) in vars {
        let path: Vec<String> = var[ENV_PREFIX.len()..]
            .split("__")
            .map(|s| s.to_ascii_lowercase())
            .collect();
        if path.iter().any(String::is_empty) {
            return Err(invalid(var, "malformed override name"));
        }
        let value: serde_yaml::Value =
            serde_yaml::from_str(&raw).unwrap_or_else(|_| serde_yaml::Value::String(raw.clone()));
        let mut node = &mut *doc;
        for (i, seg) in path.iter().enumerate() {
            let map = match node {
                serde_yaml::Value::Mapping(m) => m,
                _ => {
                    return Err(invalid(
                        path[..i].join("."),
                        format!("{var} overrides a key inside a value that is not a mapping"),
                    ))
                }
            };
            let key = serde_yaml::Value::String(seg.clone());
            if i + 1 == path.len() {
                map.insert(key, value.clone());
                break;
            }
            node = map
                .entry(key)
                .or_insert_with(|| serde_yaml::Value::Mapping(Default::default()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Settings, ConfigError> {
        Settings::from_yaml_with_env(yaml, Path::new("test.yaml"), Vec::new())
    }

    #[test]
    fn the_design_example_parses() {
        let s = parse(
            "listen: 127.0.0.1:8080\nbackstage: { url: http://127.0.0.1:7007, token_env: BACKSTAGE_TOKEN }\nargocd:\n  - { name: main, url: http://127.0.0.1:8081, token_env: ARGOCD_TOKEN }\nkubernetes:\n  - { name: local, kubeconfig: ./kubeconfig, context: demo }\ngithub: { url: http://127.0.0.1:8082, token_env: GITHUB_TOKEN }\nauth: { mode: none }\n",
        )
        .unwrap();
        assert_eq!(s.argocd[0].name, "main");
        assert_eq!(s.backstage.unwrap().poll_interval_secs, 30.0);
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = parse("backstage: { url: http://x, tokn_env: X }").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("backstage"), "{msg}");
        assert!(msg.contains("tokn_env"), "{msg}");
    }

    #[test]
    fn wrong_types_name_the_nested_key() {
        let e = parse("argocd:\n  - { name: main, url: 'http://a' }\n  - { name: b, url: [] }")
            .unwrap_err();
        assert!(e.to_string().contains("argocd[1].url"), "{e}");
    }

    #[test]
    fn bad_urls_and_duplicates_are_precise() {
        let e = parse("backstage: { url: 'not a url' }").unwrap_err();
        assert!(
            e.to_string().starts_with("config key `backstage.url`"),
            "{e}"
        );
        let e =
            parse("argocd: [{name: a, url: 'http://x'}, {name: a, url: 'http://y'}]").unwrap_err();
        assert!(e.to_string().contains("argocd[1].name"), "{e}");
        let e = parse("backstage: { url: 'http://u:p@x' }").unwrap_err();
        assert!(e.to_string().contains("inline"), "{e}");
    }

    #[test]
    fn env_overrides_file_values() {
        let s = Settings::from_yaml_with_env(
            "listen: 127.0.0.1:1\nbackstage: { url: http://a }",
            Path::new("t"),
            vec![
                ("IDP_GRAPH__LISTEN".into(), "0.0.0.0:9".into()),
                ("IDP_GRAPH__BACKSTAGE__URL".into(), "http://b".into()),
                ("IDP_GRAPH__LIMITS__MAX_DEPTH".into(), "7".into()),
            ],
        )
        .unwrap();
        assert_eq!(s.listen.port(), 9);
        assert_eq!(s.backstage.unwrap().url, "http://b");
        assert_eq!(s.limits.max_depth, 7);
    }

    #[test]
    fn missing_token_variable_is_reported_without_a_value() {
        let s =
            parse("backstage: { url: http://a, token_env: IDP_GRAPH_TEST_SURELY_UNSET }").unwrap();
        let e = s.resolve_secrets().unwrap_err();
        assert!(
            e.to_string()
                .contains("IDP_GRAPH_TEST_SURELY_UNSET is not set"),
            "{e}"
        );
    }
}
