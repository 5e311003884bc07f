//! `EntityRef`: the `kind:namespace/name` triple Backstage uses to name an entity.
//!
//! Backstage compares refs case-insensitively and fills in defaults (namespace `default`, and
//! a kind the context implies, e.g. `group` for an owner). We keep one canonical, lower-cased
//! form so that every index in `state/` can use plain string equality.

use std::fmt;

/// A canonical entity reference: all three parts lower-cased.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct EntityRef {
    kind: String,
    namespace: String,
    name: String,
}

/// Why a string is not an entity ref. Shown to users, so it says what form is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    #[error(
        "entity ref is empty; expected `kind:namespace/name`, e.g. `component:default/sample-app`"
    )]
    Empty,
    #[error("entity ref `{0}` has no kind; expected `kind:namespace/name`")]
    MissingKind(String),
    #[error("entity ref `{0}` is malformed; expected `kind:namespace/name` with non-empty parts of letters, digits, `-`, `_`, `.`")]
    Malformed(String),
}

const MAX_PART: usize = 253;

fn valid_part(part: &str) -> bool {
    !part.is_empty()
        && part.len() <= MAX_PART
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl EntityRef {
    /// Builds a ref from parts, canonicalising case. Parts are not validated: use this only for
    /// values that come from the catalog itself (which validated them).
    pub fn new(kind: &str, namespace: &str, name: &str) -> Self {
        Self {
            kind: kind.to_ascii_lowercase(),
            namespace: namespace.to_ascii_lowercase(),
            name: name.to_ascii_lowercase(),
        }
    }

    /// Parses user input strictly: the kind is required, the namespace defaults to `default`.
    pub fn parse(input: &str) -> Result<Self, RefError> {
        Self::parse_with_defaults(input, None, "default")
    }

    /// Parses the short forms Backstage accepts in specs (`owner: app-team`,
    /// `system: default/idp`), filling in the kind and namespace the context implies.
    pub fn parse_with_defaults(
        input: &str,
        default_kind: Option<&str>,
        default_namespace: &str,
    ) -> Result<Self, RefError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(RefError::Empty);
        }
        let (kind, rest) = match input.split_once(':') {
            Some((k, rest)) => (k, rest),
            None => match default_kind {
                Some(k) => (k, input),
                None => return Err(RefError::MissingKind(input.to_string())),
            },
        };
        let (namespace, name) = match rest.split_once('/') {
            Some((ns, name)) => (ns, name),
            None => (default_namespace, rest),
        };
        if !valid_part(kind) || !valid_part(namespace) || !valid_part(name) {
            return Err(RefError::Malformed(input.to_string()));
        }
        Ok(Self::new(kind, namespace, name))
    }

    pub fn kind(&self) -> &str {
        &self.kind
    }
    pub fn namespace(&self) -> &str {
        &self.namespace
    }
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for EntityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.kind, self.namespace, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_refs_parse_and_lowercase() {
        let r = EntityRef::parse("Component:Default/Sample-App").unwrap();
        assert_eq!(r.to_string(), "component:default/sample-app");
    }

    #[test]
    fn namespace_defaults_to_default() {
        assert_eq!(
            EntityRef::parse("group:app-team").unwrap().to_string(),
            "group:default/app-team"
        );
    }

    #[test]
    fn short_forms_take_the_context_kind() {
        let r = EntityRef::parse_with_defaults("app-team", Some("group"), "default").unwrap();
        assert_eq!(r.to_string(), "group:default/app-team");
        let r = EntityRef::parse_with_defaults("ops/idp", Some("system"), "default").unwrap();
        assert_eq!(r.to_string(), "system:ops/idp");
    }

    #[test]
    fn malformed_refs_are_rejected() {
        assert_eq!(EntityRef::parse(""), Err(RefError::Empty));
        assert!(matches!(
            EntityRef::parse("sample-app"),
            Err(RefError::MissingKind(_))
        ));
        for bad in [
            "component:",
            ":default/x",
            "component:default/",
            "a:b/c/d",
            "comp onent:x",
        ] {
            assert!(
                matches!(EntityRef::parse(bad), Err(RefError::Malformed(_))),
                "{bad}"
            );
        }
    }
}
