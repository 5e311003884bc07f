//! `http:` in the config: how the server meets browsers and scrapers (CORS origins, where
//! `/metrics` listens). Read by [`super::router`] and `App::build`.

use std::net::SocketAddr;

use serde::Deserialize;

use crate::settings::{invalid, ConfigError};

/// How the server meets browsers and scrapers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Origins (`https://portal.example.com`) whose pages may call the API (CORS); empty:
    /// same-origin only.
    pub cors_origins: Vec<String>,
    /// Serve `/metrics` on this address instead of the main listener.
    pub metrics_listen: Option<SocketAddr>,
}

impl HttpSettings {
    /// What serde cannot check; errors name `key` (`http`) and the sub-key.
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        for (i, o) in self.cors_origins.iter().enumerate() {
            let ok = url::Url::parse(o).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https") && u.path() == "/" && !o.ends_with('/')
            });
            if !ok {
                return Err(invalid(
                    format!("{key}.cors_origins[{i}]"),
                    format!("`{o}` must be an origin like https://portal.example.com"),
                ));
            }
        }
        Ok(())
    }
}
