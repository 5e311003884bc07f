//! A catalog entity as the graph sees it: the Backstage envelope with its common metadata parsed
//! once (refs canonicalised, join keys extracted, search text prepared), the kind-specific `spec`
//! kept as JSON for the typed views in `graph/`.

use std::collections::BTreeMap;
use std::fmt;

use super::annotations::JoinKeys;
use super::entity_ref::EntityRef;

/// The kinds the graph types. Anything else is kept as `Other` and still served.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum EntityKind {
    Component,
    Api,
    System,
    Domain,
    Group,
    User,
    Resource,
    Template,
    Location,
    Other(String),
}

impl EntityKind {
    pub fn parse(kind: &str) -> Self {
        match kind.to_ascii_lowercase().as_str() {
            "component" => Self::Component,
            "api" => Self::Api,
            "system" => Self::System,
            "domain" => Self::Domain,
            "group" => Self::Group,
            "user" => Self::User,
            "resource" => Self::Resource,
            "template" => Self::Template,
            "location" => Self::Location,
            _ => Self::Other(kind.to_string()),
        }
    }
}

/// Relation types Backstage emits, each paired with its inverse so an edge stored on one side
/// can be walked from the other.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum RelationType {
    OwnedBy,
    OwnerOf,
    PartOf,
    HasPart,
    DependsOn,
    DependencyOf,
    ProvidesApi,
    ApiProvidedBy,
    ConsumesApi,
    ApiConsumedBy,
    MemberOf,
    HasMember,
    ChildOf,
    ParentOf,
    Other(String),
}

impl RelationType {
    pub fn parse(s: &str) -> Self {
        match s {
            "ownedBy" => Self::OwnedBy,
            "ownerOf" => Self::OwnerOf,
            "partOf" => Self::PartOf,
            "hasPart" => Self::HasPart,
            "dependsOn" => Self::DependsOn,
            "dependencyOf" => Self::DependencyOf,
            "providesApi" => Self::ProvidesApi,
            "apiProvidedBy" => Self::ApiProvidedBy,
            "consumesApi" => Self::ConsumesApi,
            "apiConsumedBy" => Self::ApiConsumedBy,
            "memberOf" => Self::MemberOf,
            "hasMember" => Self::HasMember,
            "childOf" => Self::ChildOf,
            "parentOf" => Self::ParentOf,
            other => Self::Other(other.to_string()),
        }
    }

    /// The same edge seen from the target. Unknown types have no known inverse.
    pub fn inverse(&self) -> Option<Self> {
        Some(match self {
            Self::OwnedBy => Self::OwnerOf,
            Self::OwnerOf => Self::OwnedBy,
            Self::PartOf => Self::HasPart,
            Self::HasPart => Self::PartOf,
            Self::DependsOn => Self::DependencyOf,
            Self::DependencyOf => Self::DependsOn,
            Self::ProvidesApi => Self::ApiProvidedBy,
            Self::ApiProvidedBy => Self::ProvidesApi,
            Self::ConsumesApi => Self::ApiConsumedBy,
            Self::ApiConsumedBy => Self::ConsumesApi,
            Self::MemberOf => Self::HasMember,
            Self::HasMember => Self::MemberOf,
            Self::ChildOf => Self::ParentOf,
            Self::ParentOf => Self::ChildOf,
            Self::Other(_) => return None,
        })
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::OwnedBy => "ownedBy",
            Self::OwnerOf => "ownerOf",
            Self::PartOf => "partOf",
            Self::HasPart => "hasPart",
            Self::DependsOn => "dependsOn",
            Self::DependencyOf => "dependencyOf",
            Self::ProvidesApi => "providesApi",
            Self::ApiProvidedBy => "apiProvidedBy",
            Self::ConsumesApi => "consumesApi",
            Self::ApiConsumedBy => "apiConsumedBy",
            Self::MemberOf => "memberOf",
            Self::HasMember => "hasMember",
            Self::ChildOf => "childOf",
            Self::ParentOf => "parentOf",
            Self::Other(s) => s,
        }
    }
}

impl fmt::Display for RelationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Relation {
    pub kind: RelationType,
    pub target: EntityRef,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Link {
    pub url: String,
    pub title: Option<String>,
    pub icon: Option<String>,
}

/// One catalog entity. Built by the Backstage source from the wire envelope; immutable after.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Entity {
    pub entity_ref: EntityRef,
    /// `entity_ref` rendered once: it is the sort key and the most-read field.
    pub ref_string: String,
    pub kind: EntityKind,
    /// The kind as the catalog spells it (`Component`, `API`).
    pub kind_name: String,
    pub api_version: String,
    pub namespace: String,
    pub name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub uid: Option<String>,
    pub etag: Option<String>,
    pub tags: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub links: Vec<Link>,
    pub spec: serde_json::Value,
    /// Relations as the catalog sent them (its processors emit both directions).
    pub relations: Vec<Relation>,
    pub join: JoinKeys,
    /// Lower-cased name, title and description joined, for free-text filtering.
    pub search_text: String,
}

impl Entity {
    /// A string field of `spec`, if present.
    pub fn spec_str(&self, key: &str) -> Option<&str> {
        self.spec.get(key).and_then(|v| v.as_str())
    }

    pub fn spec_type(&self) -> Option<&str> {
        self.spec_str("type")
    }

    pub fn lifecycle(&self) -> Option<&str> {
        self.spec_str("lifecycle")
    }

    pub fn build_search_text(name: &str, title: Option<&str>, description: Option<&str>) -> String {
        let mut s = name.to_lowercase();
        for part in [title, description].into_iter().flatten() {
            s.push('\n');
            s.push_str(&part.to_lowercase());
        }
        s
    }
}
