//! `limits:` in the config: what one request may cost. The graph owns the type (depth,
//! complexity and page size are enforced where the schema is built); the request pipeline
//! (`http::pipeline`) reads the rest — body size, aliases, fields, timeout, rate.

use serde::Deserialize;

use crate::settings::{invalid, positive, ConfigError};

/// Limits on what one request may cost.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_aliases: usize,
    /// Fields in the document with every fragment spread expanded: checked in linear time
    /// before validation, so a fragment bomb (each fragment spreading the next twice) is
    /// refused instead of costing exponential time.
    pub max_fields: usize,
    pub max_page_size: usize,
    pub request_timeout_secs: f64,
    /// `__schema` / `__type` answered (turn off in production to hide the schema).
    pub introspection: bool,
    /// "Did you mean ...?" hints in validation errors.
    pub field_suggestions: bool,
    /// Operations per minute per caller (token subject; all anonymous callers share one
    /// budget); 0: unlimited. Over it: 429 with `Retry-After`, `RATE_LIMITED`.
    pub requests_per_minute: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            max_depth: 16,
            max_complexity: 200_000,
            max_aliases: 64,
            max_fields: 5_000,
            max_page_size: 1000,
            request_timeout_secs: 30.0,
            introspection: true,
            field_suggestions: true,
            requests_per_minute: 0,
        }
    }
}

impl Limits {
    /// What serde cannot check; errors name `key` (`limits`) and the sub-key.
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        if self.max_body_bytes < 1024 {
            return Err(invalid(
                format!("{key}.max_body_bytes"),
                "must be at least 1024",
            ));
        }
        for (sub, v) in [
            ("max_depth", self.max_depth),
            ("max_complexity", self.max_complexity),
            ("max_aliases", self.max_aliases),
            ("max_fields", self.max_fields),
            ("max_page_size", self.max_page_size),
        ] {
            if v == 0 {
                return Err(invalid(format!("{key}.{sub}"), "must be greater than 0"));
            }
        }
        positive(
            &format!("{key}.request_timeout_secs"),
            self.request_timeout_secs,
        )
    }
}
