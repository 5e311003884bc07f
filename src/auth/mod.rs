//! Who is asking and what they may see and do.
//!
//! The request pipeline (`http::pipeline`) is the only caller of [`Authenticator`]: it turns the
//! credentials a request carries (an `Authorization: Bearer` header, or a websocket init
//! payload) into a [`Principal`], whose [`Grants`] the policy computed once. The graph asks
//! those grants — through `graph::Viewer`, the one visibility seam — before anything leaves it.
//!
//! - `settings.rs`: `auth:` in the config; `policy.rs`: roles, bindings, grants, the seed's
//!   default boundary; `jwt.rs`: verifying one issuer's tokens (JWKS, PEM, HS256, Backstage);
//!   `audit/`: the audit trail (the log, its record, its durable store, `audit:` settings);
//!   `signature.rs`: HMAC-SHA256 body signatures (webhooks, Slack's slash commands).

pub mod audit;
pub mod jwt;
pub mod policy;
pub mod settings;
pub mod signature;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

pub use policy::{group_ref, Grants, Policy};
pub use settings::{AuthMode, AuthSettings, IssuerKind, IssuerSettings, JwtSettings};

use crate::state::State;

/// The caller of one request or subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `sub` of the token (a Backstage user ref for Backstage tokens); `None`: anonymous.
    pub subject: Option<String>,
    /// Group refs (`group:default/app-team`), including parent groups from the catalog; sorted.
    /// Private with `grants`: both are fixed at `new`, because `class` is derived from them.
    groups: Vec<String>,
    grants: Grants,
    /// When the token expires; websockets and SSE streams end then.
    pub expires_at: Option<DateTime<Utc>>,
    /// Digest of everything that decides what the graph shows this caller (groups and grants),
    /// computed once: callers with equal classes may share cached answers.
    class: u128,
    /// The caller that authenticated and acts for this principal (a principal granted
    /// `delegate`, e.g. the chatops bot), when this one was named by `X-Idp-Acting-For`. It
    /// decides nothing (the policy decides as `subject`); the audit trail records it.
    pub delegate: Option<String>,
}

impl Principal {
    pub fn new(
        subject: Option<String>,
        mut groups: Vec<String>,
        grants: Grants,
        expires_at: Option<DateTime<Utc>>,
    ) -> Self {
        groups.sort();
        groups.dedup();
        let class = visibility_class(&groups, &grants);
        Self {
            subject,
            groups,
            grants,
            expires_at,
            class,
            delegate: None,
        }
    }

    /// The caller when `auth.mode` is `none`: anonymous, allowed everything.
    pub fn unrestricted() -> Arc<Self> {
        Arc::new(Self::new(None, Vec::new(), Grants::everything(), None))
    }

    /// A caller with no grants at all (what a request without a principal is).
    pub fn nobody() -> Self {
        Self::new(None, Vec::new(), Grants::default(), None)
    }

    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    pub fn grants(&self) -> &Grants {
        &self.grants
    }

    /// Equal for two callers exactly when their groups and grants are equal.
    pub fn visibility_class(&self) -> u128 {
        self.class
    }

    /// Name for logs and the audit trail.
    pub fn display_name(&self) -> &str {
        self.subject.as_deref().unwrap_or("anonymous")
    }
}

/// Why a caller could not be identified. Messages never contain the token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    #[error("this endpoint needs a bearer token")]
    Missing,
    #[error("the bearer token was refused: {0}")]
    Invalid(String),
    /// `X-Idp-Acting-For` from a caller whose policy grants no `delegate`.
    #[error("this caller may not act for another user (no role grants `delegate`)")]
    DelegationNotGranted,
    /// `X-Idp-Acting-For` names no User entity of the catalog.
    #[error("`{0}` is not a user of the catalog")]
    UnknownUser(String),
}

/// The header a principal granted `delegate` names the user it acts for with
/// (`user:default/carol`).
pub const ACTING_FOR_HEADER: &str = "x-idp-acting-for";

impl AuthError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing | Self::Invalid(_) => "UNAUTHENTICATED",
            Self::DelegationNotGranted => "DELEGATION_FORBIDDEN",
            Self::UnknownUser(_) => "UNKNOWN_USER",
        }
    }

    pub fn status(&self) -> http::StatusCode {
        match self {
            Self::Missing | Self::Invalid(_) => http::StatusCode::UNAUTHORIZED,
            Self::DelegationNotGranted => http::StatusCode::FORBIDDEN,
            Self::UnknownUser(_) => http::StatusCode::BAD_REQUEST,
        }
    }
}

/// The digest a principal's visibility class is: SHA-256 (128 bits) over groups and grants —
/// cryptographic, since callers whose classes collided would share cached answers.
fn visibility_class(groups: &[String], grants: &Grants) -> u128 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(format!("{groups:?}|{grants:?}").as_bytes());
    u128::from_le_bytes(d[..16].try_into().expect("BUG: 32-byte digest"))
}

/// How long a verified token's principal is reused (bounded by the token's own `exp`).
const VERIFIED_TTL: Duration = Duration::from_secs(60);

/// Turns the credentials a request carries into a `Principal`.
pub struct Authenticator {
    mode: AuthMode,
    /// The principal of requests without a token; `None`: they are refused.
    anonymous: Option<Arc<Principal>>,
    issuers: Vec<jwt::Issuer>,
    policy: Policy,
    /// The catalog, for Backstage users' parent groups.
    state: Option<Arc<State>>,
    /// Verified tokens by their SHA-1, so a busy client is verified once a minute, not per
    /// request (signature checks and Backstage's userinfo cost).
    verified: moka::sync::Cache<[u8; 20], Arc<Principal>>,
}

impl Default for Authenticator {
    /// `auth.mode: none`.
    fn default() -> Self {
        Self {
            mode: AuthMode::None,
            anonymous: Some(Principal::unrestricted()),
            issuers: Vec::new(),
            policy: Policy::default(),
            state: None,
            verified: moka::sync::Cache::new(1),
        }
    }
}

impl Authenticator {
    /// Builds the authenticator of `settings` (reads key files and secrets now).
    pub fn new(settings: &AuthSettings, state: Arc<State>) -> Result<Self, String> {
        if settings.mode == AuthMode::None {
            return Ok(Self::default());
        }
        let policy = settings.policy.clone().unwrap_or_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| e.to_string())?;
        let issuers = settings
            .jwt
            .issuers
            .iter()
            .enumerate()
            .map(|(i, s)| {
                jwt::Issuer::new(s.clone(), http.clone())
                    .map_err(|e| format!("auth.jwt.issuers[{i}]: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let anonymous = settings
            .anonymous
            .as_deref()
            .filter(|r| *r != "deny")
            .map(|role| {
                Arc::new(Principal::new(
                    None,
                    Vec::new(),
                    policy.grants_of_roles(&[role.to_string()]),
                    None,
                ))
            });
        Ok(Self {
            mode: settings.mode,
            anonymous,
            issuers,
            policy,
            state: Some(state),
            verified: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(VERIFIED_TTL)
                .build(),
        })
    }

    /// Anonymous requests are refused (so `/graphql` answers 401 without a token).
    pub fn requires_token(&self) -> bool {
        self.anonymous.is_none()
    }

    /// The caller of a request carrying `Authorization: <value>` (or nothing).
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
    ) -> Result<Arc<Principal>, AuthError> {
        if self.mode == AuthMode::None {
            return self.anonymous.clone().ok_or(AuthError::Missing);
        }
        let Some(value) = authorization.map(str::trim).filter(|v| !v.is_empty()) else {
            return self.anonymous.clone().ok_or(AuthError::Missing);
        };
        let token = match value.split_once(' ') {
            Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => t.trim(),
            _ => {
                return Err(AuthError::Invalid(
                    "send `Authorization: Bearer <token>`".into(),
                ))
            }
        };
        let key = sha1_smol::Sha1::from(token.as_bytes()).digest().bytes();
        if let Some(p) = self.verified.get(&key) {
            if p.expires_at.is_none_or(|e| e > Utc::now()) {
                return Ok(p);
            }
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::Invalid("not a signed JWT".into()))?;
        let iss = jwt::peek_issuer(token)
            .ok_or_else(|| AuthError::Invalid("the token names no issuer".into()))?;
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.iss() == iss)
            .ok_or_else(|| AuthError::Invalid("the token is from an unknown issuer".into()))?;
        let verified = issuer.verify(token, &header).await?;
        let mut groups: Vec<String> = verified
            .groups
            .iter()
            .filter(|g| !verified.backstage || g.starts_with("group:"))
            .map(|g| group_ref(g))
            .collect();
        if verified.backstage {
            self.add_parent_groups(&mut groups);
        }
        groups.sort();
        groups.dedup();
        let roles = self.policy.roles_of(&verified.subject, &groups);
        let grants = self.policy.grants_of_roles(&roles);
        let principal = Arc::new(Principal::new(
            Some(verified.subject),
            groups,
            grants,
            verified.expires_at,
        ));
        self.verified.insert(key, principal.clone());
        Ok(principal)
    }

    /// The caller of a request that carries `Authorization` and may carry `X-Idp-Acting-For`:
    /// without the latter, [`Self::authenticate`]; with it, the caller must be granted
    /// `delegate`, and the result is the named catalog user (its groups from `spec.memberOf`
    /// and their parents, its roles by the policy) with the caller as its `delegate`.
    pub async fn authenticate_acting(
        &self,
        authorization: Option<&str>,
        acting_for: Option<&str>,
    ) -> Result<Arc<Principal>, AuthError> {
        let caller = self.authenticate(authorization).await?;
        let Some(named) = acting_for.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(caller);
        };
        // Only a named caller may delegate: a policy that gave `anonymous` the grant must not
        // let every unauthenticated request act as anyone.
        if !caller.grants().delegate || self.mode == AuthMode::None || caller.subject.is_none() {
            return Err(AuthError::DelegationNotGranted);
        }
        let unknown = || AuthError::UnknownUser(named.chars().take(200).collect());
        let user_ref =
            crate::domain::EntityRef::parse_with_defaults(named, Some("user"), "default")
                .map_err(|_| unknown())?
                .to_string();
        let state = self.state.as_ref().ok_or_else(unknown)?;
        let mut groups: Vec<String> = {
            let snapshot = state.catalog.snapshot();
            let user = snapshot
                .get(&user_ref)
                .filter(|e| e.kind_name.eq_ignore_ascii_case("user"))
                .ok_or_else(unknown)?;
            user.spec
                .get("memberOf")
                .and_then(serde_json::Value::as_array)
                .map(|gs| {
                    gs.iter()
                        .filter_map(serde_json::Value::as_str)
                        .map(group_ref)
                        .collect()
                })
                .unwrap_or_default()
        };
        self.add_parent_groups(&mut groups);
        let roles = self.policy.roles_of(&user_ref, &groups);
        let grants = self.policy.grants_of_roles(&roles);
        let mut principal = Principal::new(Some(user_ref), groups, grants, caller.expires_at);
        principal.delegate = Some(caller.display_name().to_string());
        Ok(Arc::new(principal))
    }

    /// Adds every ancestor (`spec.parent`) of the groups, as the catalog knows them.
    fn add_parent_groups(&self, groups: &mut Vec<String>) {
        let Some(state) = &self.state else { return };
        let snapshot = state.catalog.snapshot();
        let mut i = 0;
        while i < groups.len() && groups.len() < 256 {
            let parent = snapshot
                .get(&groups[i])
                .and_then(|g| g.spec_str("parent"))
                .map(group_ref);
            if let Some(p) = parent {
                if !groups.contains(&p) {
                    groups.push(p);
                }
            }
            i += 1;
        }
    }
}

/// What an object is, as far as the policy needs to know to decide visibility.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    CatalogEntity {
        namespace: &'a str,
        kind: &'a str,
    },
    Application {
        instance: &'a str,
        project: &'a str,
        /// Destination namespace of the app.
        namespace: &'a str,
    },
    Project {
        instance: &'a str,
        project: &'a str,
    },
    /// Objects of one namespace in one cluster ("" for cluster-scoped ones).
    KubernetesNamespace {
        cluster: &'a str,
        namespace: &'a str,
    },
}

/// An action on an upstream object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    Sync,
    Rollback,
    Refresh,
    Terminate,
    Restart,
    /// Running a template (`createFromTemplate`); `create` in a policy.
    #[serde(alias = "create")]
    CreateFromTemplate,
}

impl Action {
    pub const ALL: [Action; 6] = [
        Action::Sync,
        Action::Rollback,
        Action::Refresh,
        Action::Terminate,
        Action::Restart,
        Action::CreateFromTemplate,
    ];
}
