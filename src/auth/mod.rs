//! Who is asking and what they may see and do.
//!
//! Every request carries a `Principal` (anonymous while `auth.mode` is `none`). Every object that
//! comes from an upstream passes `Policy::can_view` on its way out, and every mutation passes
//! `Policy::can_act`: these two methods are the only places the security issue has to fill.

pub mod audit;

use std::sync::Arc;

/// The caller of one request or subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `sub` of the token; `None` for the anonymous principal.
    pub subject: Option<String>,
    pub groups: Vec<String>,
}

impl Principal {
    pub fn anonymous() -> Arc<Self> {
        Arc::new(Self {
            subject: None,
            groups: Vec::new(),
        })
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
}

impl AuthError {
    pub fn code(&self) -> &'static str {
        "UNAUTHENTICATED"
    }

    pub fn status(&self) -> http::StatusCode {
        http::StatusCode::UNAUTHORIZED
    }
}

/// Turns the credentials a request carries (an `Authorization` header value, from HTTP or a
/// websocket init payload) into a `Principal`. The request pipeline is its only caller.
#[derive(Debug, Default)]
pub struct Authenticator {}

impl Authenticator {
    /// `auth.mode: none`: everyone is the anonymous principal.
    pub fn authenticate(&self, _authorization: Option<&str>) -> Result<Arc<Principal>, AuthError> {
        Ok(Principal::anonymous())
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Sync,
    Rollback,
    Refresh,
    Terminate,
    Restart,
    CreateFromTemplate,
}

/// The policy. Allow-all until the security issue maps claims to projects and namespaces.
#[derive(Debug, Clone, Default)]
pub struct Policy {}

impl Policy {
    /// May `principal` see the object? Forbidden objects are filtered out before counting,
    /// paging and error messages, so they are invisible rather than redacted.
    pub fn can_view(&self, _principal: &Principal, _scope: Scope<'_>) -> bool {
        true
    }

    /// May `principal` take `action` on the object?
    pub fn can_act(&self, _principal: &Principal, _action: Action, _scope: Scope<'_>) -> bool {
        true
    }
}
