//! `EntityFilter`: parsed once per query into a matcher, then applied to each entity.

use async_graphql::{InputObject, Result};

use crate::domain::{Entity, EntityRef, RelationType};
use crate::graph::error::bad_input;
use crate::state::CatalogSnapshot;

#[derive(InputObject, Default, Clone, Debug)]
pub struct AnnotationFilter {
    pub key: String,
    /// Exact value; omit to match any entity that has the key.
    pub value: Option<String>,
}

/// All given conditions must hold. String comparisons ignore case, as Backstage's do.
#[derive(InputObject, Default, Clone, Debug)]
pub struct EntityFilter {
    /// `Component`, `API`, `System`, ... (case-insensitive).
    pub kind: Option<String>,
    pub namespace: Option<String>,
    /// Owner ref; the kind defaults to `group` (`app-team`, `group:default/app-team`, `user:jane`).
    pub owner: Option<String>,
    /// System ref; kind `system` implied (`idp`).
    pub system: Option<String>,
    pub lifecycle: Option<String>,
    /// `spec.type`, e.g. `service`, `website`.
    #[graphql(name = "type")]
    pub spec_type: Option<String>,
    pub tag: Option<String>,
    pub annotation: Option<AnnotationFilter>,
    /// Free text searched in name, title and description.
    pub text: Option<String>,
}

/// A compiled filter.
pub struct EntityMatcher {
    filter: EntityFilter,
    owner: Option<String>,
    system: Option<String>,
    text: Option<String>,
}

impl EntityMatcher {
    pub fn new(filter: Option<EntityFilter>) -> Result<Self> {
        let filter = filter.unwrap_or_default();
        let owner = filter
            .owner
            .as_deref()
            .map(|o| EntityRef::parse_with_defaults(o, Some("group"), "default"))
            .transpose()
            .map_err(|e| bad_input(format!("filter.owner: {e}")))?
            .map(|r| r.to_string());
        let system = filter
            .system
            .as_deref()
            .map(|s| EntityRef::parse_with_defaults(s, Some("system"), "default"))
            .transpose()
            .map_err(|e| bad_input(format!("filter.system: {e}")))?
            .map(|r| r.to_string());
        if let Some(a) = &filter.annotation {
            if a.key.is_empty() {
                return Err(bad_input("filter.annotation.key must not be empty"));
            }
        }
        let text = filter
            .text
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_lowercase);
        Ok(Self {
            filter,
            owner,
            system,
            text,
        })
    }

    pub fn matches(&self, e: &Entity, snapshot: &CatalogSnapshot) -> bool {
        let f = &self.filter;
        let eq = |want: &Option<String>, have: Option<&str>| match want {
            None => true,
            Some(w) => have.is_some_and(|h| h.eq_ignore_ascii_case(w)),
        };
        if !eq(&f.kind, Some(&e.kind_name))
            || !eq(&f.namespace, Some(&e.namespace))
            || !eq(&f.lifecycle, e.lifecycle())
            || !eq(&f.spec_type, e.spec_type())
        {
            return false;
        }
        if let Some(tag) = &f.tag {
            if !e.tags.iter().any(|t| t.eq_ignore_ascii_case(tag)) {
                return false;
            }
        }
        if let Some(a) = &f.annotation {
            match (e.annotations.get(&a.key), &a.value) {
                (None, _) => return false,
                (Some(have), Some(want)) if have != want => return false,
                _ => {}
            }
        }
        if let Some(text) = &self.text {
            if !e.search_text.contains(text.as_str()) {
                return false;
            }
        }
        let has_edge = |rel: RelationType, target: &str| {
            let indexed = snapshot.edges(&e.ref_string);
            if indexed.is_empty() {
                e.relations
                    .iter()
                    .any(|r| r.kind == rel && r.target.to_string() == target)
            } else {
                indexed
                    .iter()
                    .any(|r| r.kind == rel && r.target_ref == target)
            }
        };
        if let Some(owner) = &self.owner {
            if !has_edge(RelationType::OwnedBy, owner) {
                return false;
            }
        }
        if let Some(system) = &self.system {
            if !has_edge(RelationType::PartOf, system) {
                return false;
            }
        }
        true
    }
}
