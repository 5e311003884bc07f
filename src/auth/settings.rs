//! `auth:` in the config: the mode, what anonymous callers get, the token issuers and the policy.

use std::path::PathBuf;

use serde::Deserialize;

use super::policy::Policy;
use crate::settings::{check_url, invalid, ConfigError};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Every request is the anonymous principal, allowed everything (local use only).
    #[default]
    None,
    /// Bearer JWTs from the configured issuers; the policy decides.
    Jwt,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    #[serde(default)]
    pub mode: AuthMode,
    /// `deny` (the default: no token, 401), or the name of a role anonymous callers get.
    #[serde(default)]
    pub anonymous: Option<String>,
    #[serde(default)]
    pub jwt: JwtSettings,
    /// Roles and bindings; absent: the seed's boundary (`auth::policy`).
    #[serde(default)]
    pub policy: Option<Policy>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSettings {
    #[serde(default)]
    pub issuers: Vec<IssuerSettings>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IssuerKind {
    /// Any OIDC/JWT issuer: `issuer`, `audiences`, one key source, pinned `algorithms`.
    #[default]
    Jwt,
    /// A Backstage auth backend: ES256 user tokens, JWKS by discovery, groups from `ent` or
    /// userinfo, parent groups from the catalog.
    Backstage,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerSettings {
    #[serde(default)]
    pub kind: IssuerKind,
    /// Must equal the token's `iss` (Backstage: default `<url>/api/auth`).
    #[serde(default)]
    pub issuer: Option<String>,
    /// Backstage's base URL.
    #[serde(default)]
    pub url: Option<String>,
    /// `aud` must contain one of these (Backstage: default `backstage`).
    #[serde(default)]
    pub audiences: Vec<String>,
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// A PEM public key (RS*/ES*).
    #[serde(default)]
    pub public_key_file: Option<PathBuf>,
    /// HS256 shared secret, from an environment variable or a file.
    #[serde(default)]
    pub secret_env: Option<String>,
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// Pinned algorithms (`RS256`, `ES256`, `HS256`...); Backstage default `ES256`.
    #[serde(default)]
    pub algorithms: Vec<String>,
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Clock skew allowed on `exp` and `nbf`, seconds.
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
}

fn default_groups_claim() -> String {
    "groups".into()
}
fn default_leeway() -> u64 {
    30
}

impl IssuerSettings {
    /// A Backstage issuer at `url`, as the demo and tests configure it.
    pub fn backstage(url: &str) -> Self {
        Self {
            kind: IssuerKind::Backstage,
            issuer: None,
            url: Some(url.trim_end_matches('/').to_string()),
            audiences: Vec::new(),
            jwks_url: None,
            public_key_file: None,
            secret_env: None,
            secret_file: None,
            algorithms: Vec::new(),
            groups_claim: default_groups_claim(),
            leeway_secs: default_leeway(),
        }
    }

    /// The `iss` its tokens carry.
    pub fn expected_issuer(&self) -> Option<String> {
        match (&self.issuer, self.kind, &self.url) {
            (Some(i), _, _) => Some(i.clone()),
            (None, IssuerKind::Backstage, Some(u)) => {
                Some(format!("{}/api/auth", u.trim_end_matches('/')))
            }
            _ => None,
        }
    }

    pub fn algorithm_names(&self) -> Vec<String> {
        if self.algorithms.is_empty() && self.kind == IssuerKind::Backstage {
            return vec!["ES256".into()];
        }
        self.algorithms.clone()
    }

    pub fn audience_list(&self) -> Vec<String> {
        if self.audiences.is_empty() && self.kind == IssuerKind::Backstage {
            return vec!["backstage".into()];
        }
        self.audiences.clone()
    }
}

impl AuthSettings {
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let policy = self.policy.clone().unwrap_or_default();
        if let Some(p) = &self.policy {
            p.validate(&format!("{key}.policy"))?;
        }
        if let Some(role) = self.anonymous.as_deref().filter(|r| *r != "deny") {
            if !policy.roles.contains_key(role) {
                return Err(invalid(
                    format!("{key}.anonymous"),
                    format!("`{role}` is neither `deny` nor a role of the policy"),
                ));
            }
        }
        if self.mode == AuthMode::Jwt && self.jwt.issuers.is_empty() {
            return Err(invalid(
                format!("{key}.jwt.issuers"),
                "mode `jwt` needs at least one issuer",
            ));
        }
        for (i, s) in self.jwt.issuers.iter().enumerate() {
            let at = format!("{key}.jwt.issuers[{i}]");
            s.validate(&at)?;
        }
        Ok(())
    }
}

impl IssuerSettings {
    fn validate(&self, at: &str) -> Result<(), ConfigError> {
        if self.kind == IssuerKind::Backstage {
            let Some(url) = &self.url else {
                return Err(invalid(
                    format!("{at}.url"),
                    "a Backstage issuer needs `url`",
                ));
            };
            check_url(&format!("{at}.url"), url)?;
        } else {
            if self.issuer.as_deref().is_none_or(str::is_empty) {
                return Err(invalid(format!("{at}.issuer"), "must be the tokens' `iss`"));
            }
            if self.audiences.is_empty() {
                return Err(invalid(
                    format!("{at}.audiences"),
                    "give at least one audience",
                ));
            }
            let sources = usize::from(self.jwks_url.is_some())
                + usize::from(self.public_key_file.is_some())
                + usize::from(self.secret_env.is_some() || self.secret_file.is_some());
            if sources != 1 || (self.secret_env.is_some() && self.secret_file.is_some()) {
                return Err(invalid(
                    at,
                    "give exactly one key source: jwks_url, public_key_file, or secret_env/secret_file",
                ));
            }
        }
        if let Some(u) = &self.jwks_url {
            check_url(&format!("{at}.jwks_url"), u)?;
        }
        let algorithms = self.algorithm_names();
        if algorithms.is_empty() {
            return Err(invalid(
                format!("{at}.algorithms"),
                "pin the algorithms its tokens use (e.g. [RS256])",
            ));
        }
        let symmetric = self.secret_env.is_some() || self.secret_file.is_some();
        for a in &algorithms {
            let alg: jsonwebtoken::Algorithm = a.parse().map_err(|_| {
                invalid(
                    format!("{at}.algorithms"),
                    format!("`{a}` is not a JWS algorithm"),
                )
            })?;
            let is_hmac = matches!(
                alg,
                jsonwebtoken::Algorithm::HS256
                    | jsonwebtoken::Algorithm::HS384
                    | jsonwebtoken::Algorithm::HS512
            );
            if is_hmac != symmetric {
                return Err(invalid(
                    format!("{at}.algorithms"),
                    format!("`{a}` does not fit the key source (HS* only with a shared secret)"),
                ));
            }
        }
        Ok(())
    }
}
