//! On-demand catalog lookups through `POST /api/catalog/entities/by-refs`.
//!
//! Used when a query names an entity the last poll did not contain (e.g. one registered a
//! moment ago): the graph batches all such refs of one request into one call (its DataLoader,
//! `graph::entity`), and answers, including "no such entity", are cached briefly across
//! requests (moka) so a client asking for a missing ref in a loop does not turn into upstream
//! load.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::domain::Entity;
use crate::sources::backstage::BackstageClient;
use crate::sources::SourceError;

pub struct CatalogLookup {
    client: BackstageClient,
    cache: moka::future::Cache<String, Option<Arc<Entity>>>,
}

impl CatalogLookup {
    pub fn new(client: BackstageClient, ttl: Duration) -> Self {
        Self {
            client,
            cache: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(ttl)
                .build(),
        }
    }

    /// The entities `keys` name (`None` for each the catalog does not know), cached answers
    /// first, the rest in one `by-refs` call.
    pub async fn load(
        &self,
        keys: &[String],
    ) -> Result<HashMap<String, Option<Arc<Entity>>>, SourceError> {
        let mut found = HashMap::with_capacity(keys.len());
        let mut missing = Vec::new();
        for k in keys {
            match self.cache.get(k).await {
                Some(v) => {
                    found.insert(k.clone(), v);
                }
                None => missing.push(k.clone()),
            }
        }
        if !missing.is_empty() {
            let answers = self.client.by_refs(&missing).await?;
            for (k, e) in missing.into_iter().zip(answers) {
                let v = e.filter(|e| e.ref_string == k).map(Arc::new);
                self.cache.insert(k.clone(), v.clone()).await;
                found.insert(k, v);
            }
        }
        Ok(found)
    }
}
