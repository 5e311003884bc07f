//! Backstage's JSON, as sent: private to this source; converted to `domain::Entity` here.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::domain::annotations::JoinKeys;
use crate::domain::entity::Link;
use crate::domain::{Entity, EntityKind, EntityRef, Relation, RelationType};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct QueryPage {
    pub items: Vec<Value>,
    #[serde(default)]
    pub total_items: Option<u64>,
    #[serde(default)]
    pub page_info: PageInfo,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PageInfo {
    #[serde(default)]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RefsAnswer {
    pub items: Vec<Option<Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireEntity {
    #[serde(default)]
    api_version: String,
    kind: String,
    metadata: WireMetadata,
    #[serde(default)]
    spec: Value,
    #[serde(default)]
    relations: Vec<WireRelation>,
}

#[derive(Debug, Deserialize)]
struct WireMetadata {
    name: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    uid: Option<String>,
    #[serde(default)]
    etag: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    links: Vec<WireLink>,
}

#[derive(Debug, Deserialize)]
struct WireLink {
    url: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    icon: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireRelation {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    target_ref: Option<String>,
    /// The pre-2021 compound form, still sent by some catalogs.
    #[serde(default)]
    target: Option<WireTarget>,
}

#[derive(Debug, Deserialize)]
struct WireTarget {
    kind: String,
    namespace: String,
    name: String,
}

/// Converts one entity from the catalog. `Err` carries a reason for the log.
pub(super) fn to_entity(value: Value) -> Result<Entity, String> {
    let wire: WireEntity = serde_json::from_value(value).map_err(|e| e.to_string())?;
    let namespace = wire
        .metadata
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".to_string());
    let entity_ref = EntityRef::parse_with_defaults(
        &format!("{}:{}/{}", wire.kind, namespace, wire.metadata.name),
        None,
        "default",
    )
    .map_err(|e| e.to_string())?;
    let relations = wire
        .relations
        .into_iter()
        .filter_map(|r| {
            let target = match (r.target_ref, r.target) {
                (Some(t), _) => EntityRef::parse(&t).ok()?,
                (None, Some(t)) => EntityRef::new(&t.kind, &t.namespace, &t.name),
                (None, None) => return None,
            };
            Some(Relation {
                kind: RelationType::parse(&r.kind),
                target,
            })
        })
        .collect();
    let m = wire.metadata;
    let search_text =
        Entity::build_search_text(&m.name, m.title.as_deref(), m.description.as_deref());
    Ok(Entity {
        ref_string: entity_ref.to_string(),
        entity_ref,
        kind: EntityKind::parse(&wire.kind),
        kind_name: wire.kind,
        api_version: wire.api_version,
        namespace,
        join: JoinKeys::from_annotations(&m.annotations),
        name: m.name,
        title: m.title,
        description: m.description,
        uid: m.uid,
        etag: m.etag,
        tags: m.tags,
        labels: m.labels,
        annotations: m.annotations,
        links: m
            .links
            .into_iter()
            .map(|l| Link {
                url: l.url,
                title: l.title,
                icon: l.icon,
            })
            .collect(),
        spec: wire.spec,
        relations,
        search_text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_catalog_entity_converts_with_refs_and_join_keys() {
        let v = serde_json::json!({
            "apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": {"name": "Orders", "uid": "u1", "etag": "e1",
                "annotations": {"argocd/app-name": "orders-prod", "github.com/project-slug": "acme/orders"}},
            "spec": {"type": "service", "owner": "team-a"},
            "relations": [{"type": "ownedBy", "targetRef": "group:default/team-a"},
                          {"type": "partOf", "target": {"kind": "system", "namespace": "default", "name": "shop"}},
                          {"type": "weird", "targetRef": "not a ref"}]
        });
        let e = to_entity(v).unwrap();
        assert_eq!(e.ref_string, "component:default/orders");
        assert_eq!(e.join.argocd_app_names, ["orders-prod"]);
        assert_eq!(e.relations.len(), 2);
        assert_eq!(e.relations[1].target.to_string(), "system:default/shop");
    }

    #[test]
    fn an_entity_without_kind_is_refused() {
        assert!(to_entity(serde_json::json!({"metadata": {"name": "x"}})).is_err());
    }
}
