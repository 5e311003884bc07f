//! The started ArgoCD instance, as the graph uses it: the actions (sync, rollback, refresh,
//! terminate) with domain values in and out, and the resource tree, fetched on demand and
//! cached briefly per application (moka merges concurrent misses, so a page asking for the tree
//! of one app from ten widgets makes one call).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::client::{ArgoCdClient, SyncRequest};
use super::wire;
use crate::domain::argocd::{AppKey, Application, ResourceTree, SyncOptions};
use crate::sources::SourceError;

/// How long a fetched resource tree is reused.
const TREE_TTL: Duration = Duration::from_secs(5);

pub struct ArgoCdHandle {
    client: ArgoCdClient,
    trees: moka::future::Cache<String, Arc<ResourceTree>>,
}

impl ArgoCdHandle {
    pub fn new(client: ArgoCdClient) -> Self {
        Self {
            client,
            trees: moka::future::Cache::builder()
                .max_capacity(1_000)
                .time_to_live(TREE_TTL)
                .build(),
        }
    }

    /// `POST .../sync`: the app as ArgoCD answered, and the raw answer.
    pub async fn sync(
        &self,
        app: &AppKey,
        options: &SyncOptions,
    ) -> Result<(Application, Value), SourceError> {
        self.client
            .sync(&SyncRequest {
                name: app.name.clone(),
                revision: options.revision.clone(),
                prune: options.prune,
                dry_run: options.dry_run,
                resources: options.resources.clone(),
                app_namespace: app.namespace.clone(),
            })
            .await
    }

    /// `POST .../rollback` to a history id.
    pub async fn rollback(
        &self,
        app: &AppKey,
        id: i64,
        prune: bool,
        dry_run: bool,
    ) -> Result<(Application, Value), SourceError> {
        self.client
            .rollback(&app.name, &app.namespace, id, prune, dry_run)
            .await
    }

    /// `GET ...?refresh=normal|hard`.
    pub async fn refresh(
        &self,
        app: &AppKey,
        hard: bool,
    ) -> Result<(Application, Value), SourceError> {
        let mode = if hard { "hard" } else { "normal" };
        let a = self
            .client
            .get_application(&app.name, &app.namespace, Some(mode))
            .await?;
        Ok((a, serde_json::json!({ "refresh": mode })))
    }

    /// `DELETE .../operation`, then the app as it stands.
    pub async fn terminate(&self, app: &AppKey) -> Result<(Application, Value), SourceError> {
        let raw = self.client.terminate(&app.name, &app.namespace).await?;
        let a = self
            .client
            .get_application(&app.name, &app.namespace, None)
            .await?;
        Ok((a, raw))
    }

    /// The app's resource tree (cached for a few seconds).
    pub async fn resource_tree(&self, app: &Application) -> Result<Arc<ResourceTree>, SourceError> {
        // Asked of ArgoCD on demand and cached here briefly: answers showing it are not kept.
        crate::state::reads::note_max_age(std::time::Duration::ZERO);
        let (name, ns) = (app.key.name.clone(), app.key.namespace.clone());
        let client = self.client.clone();
        self.trees
            .try_get_with(app.key_string.clone(), async move {
                let raw = client.resource_tree(&name, &ns).await?;
                Ok(Arc::new(wire::to_resource_tree(&raw)))
            })
            .await
            .map_err(|e: Arc<SourceError>| (*e).clone())
    }
}
