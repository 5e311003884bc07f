//! ArgoCD calls made on behalf of the graph: actions (through `mutation.rs`) and the resource
//! tree, fetched on demand and cached briefly per application (moka merges concurrent misses,
//! so a page asking for the tree of one app from ten widgets makes one call).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Context, Result, SimpleObject};
use serde_json::Value;

use super::application::HealthStatusCode;
use super::error::upstream;
use super::gctx;
use crate::domain::argocd::{Application, HealthStatus};
use crate::sources::argocd::ArgoCdClient;
use crate::sources::SourceError;

pub struct ArgoCdActions {
    pub clients: HashMap<String, ArgoCdClient>,
    trees: moka::future::Cache<String, Arc<Value>>,
}

impl Default for ArgoCdActions {
    fn default() -> Self {
        Self::new(HashMap::new())
    }
}

impl ArgoCdActions {
    pub fn new(clients: HashMap<String, ArgoCdClient>) -> Self {
        Self {
            clients,
            trees: moka::future::Cache::builder()
                .max_capacity(1_000)
                .time_to_live(Duration::from_secs(5))
                .build(),
        }
    }
}

#[derive(SimpleObject, Clone)]
pub struct ResourceNodeRef {
    pub group: Option<String>,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

#[derive(SimpleObject, Clone)]
pub struct ResourceNode {
    pub group: Option<String>,
    pub version: Option<String>,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: Option<String>,
    pub health: Option<HealthStatusCode>,
    pub health_message: Option<String>,
    pub parent_refs: Vec<ResourceNodeRef>,
    pub images: Vec<String>,
    pub created_at: Option<String>,
}

#[derive(SimpleObject, Clone)]
pub struct ResourceTree {
    pub nodes: Vec<ResourceNode>,
}

fn s(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string)
}

fn parse_tree(v: &Value) -> ResourceTree {
    let nodes = v
        .get("nodes")
        .and_then(Value::as_array)
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|n| ResourceNode {
            group: s(n, "group").filter(|g| !g.is_empty()),
            version: s(n, "version"),
            kind: s(n, "kind").unwrap_or_default(),
            namespace: s(n, "namespace").filter(|g| !g.is_empty()),
            name: s(n, "name").unwrap_or_default(),
            uid: s(n, "uid"),
            health: n
                .pointer("/health/status")
                .and_then(Value::as_str)
                .map(|h| HealthStatus::parse(h).into()),
            health_message: n
                .pointer("/health/message")
                .and_then(Value::as_str)
                .map(str::to_string),
            parent_refs: n
                .get("parentRefs")
                .and_then(Value::as_array)
                .map(|a| a.as_slice())
                .unwrap_or_default()
                .iter()
                .map(|p| ResourceNodeRef {
                    group: s(p, "group").filter(|g| !g.is_empty()),
                    kind: s(p, "kind").unwrap_or_default(),
                    namespace: s(p, "namespace").filter(|g| !g.is_empty()),
                    name: s(p, "name").unwrap_or_default(),
                })
                .collect(),
            images: n
                .get("images")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            created_at: s(n, "createdAt"),
        })
        .collect();
    ResourceTree { nodes }
}

pub async fn resource_tree(ctx: &Context<'_>, app: &Application) -> Result<Option<ResourceTree>> {
    let actions = &gctx(ctx).argocd;
    let Some(client) = actions.clients.get(&app.key.instance) else {
        return Ok(None);
    };
    let (name, ns) = (app.key.name.clone(), app.key.namespace.clone());
    let client = client.clone();
    let tree = actions
        .trees
        .try_get_with(app.key_string.clone(), async move {
            client.resource_tree(&name, &ns).await.map(Arc::new)
        })
        .await
        .map_err(|e: Arc<SourceError>| upstream(&app.key.instance, &e))?;
    Ok(Some(parse_tree(&tree)))
}
