//! What a Kubernetes field reads and shows: the clusters it reads (an error added to the
//! response for each one that is down) and whether the caller sees an object. Shared by the
//! resolvers (`mod.rs` and its files) and the filters (`graph::filter::kubernetes`); it imports
//! neither, so both point at it.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_graphql::{Context, ErrorExtensions, Result};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::graph::error::bad_input;
use crate::graph::{gctx, Viewer};
use crate::state::kubernetes::ClusterStore;

pub(crate) fn labels(meta: &ObjectMeta) -> BTreeMap<String, String> {
    meta.labels.clone().unwrap_or_default()
}

/// The error a field gets for a cluster it could not read (or reads from an old snapshot).
pub fn cluster_error(c: &ClusterStore) -> async_graphql::Error {
    let snap = c.health.snapshot();
    let why = snap
        .last_error
        .clone()
        .unwrap_or_else(|| "first list not finished".into());
    let message = if c.synced() {
        format!(
            "cluster `{}` is unreachable ({why}); showing its state as of {}",
            c.name,
            snap.last_sync_at
                .map(|t| t.to_rfc3339())
                .unwrap_or_else(|| "the last sync".into())
        )
    } else {
        format!(
            "cluster `{}` has not been listed yet ({why}); its objects are missing",
            c.name
        )
    };
    let name = c.name.clone();
    async_graphql::Error::new(message).extend_with(move |_, e| {
        e.set("code", "UPSTREAM_UNAVAILABLE");
        e.set("source", name.as_str());
    })
}

/// The clusters a field reads (one, when `cluster` is given), with an error added to the
/// response for each one that is down; clusters never listed are left out.
pub(crate) fn clusters_for(
    ctx: &Context<'_>,
    cluster: Option<&str>,
) -> Result<Vec<Arc<ClusterStore>>> {
    let all = gctx(ctx).state.clusters.all();
    let chosen: Vec<Arc<ClusterStore>> = match cluster {
        None => all,
        Some(name) => {
            let c = all
                .iter()
                .find(|c| c.name == name)
                .cloned()
                .ok_or_else(|| {
                    bad_input(format!(
                        "unknown cluster `{name}`; configured: {}",
                        all.iter()
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
            vec![c]
        }
    };
    Ok(chosen
        .into_iter()
        .filter(|c| {
            let healthy = !c.health.is_stale() && c.synced();
            if !healthy {
                report(ctx, cluster_error(c));
            }
            c.synced()
        })
        .collect())
}

pub(super) fn report(ctx: &Context<'_>, e: async_graphql::Error) {
    let err = e.into_server_error(ctx.item.pos);
    ctx.add_error(ctx.set_error_path(err));
}

pub(crate) fn sees(ctx: &Context<'_>, cluster: &str, meta: &ObjectMeta) -> bool {
    // A Namespace object (cluster-scoped) is judged as the namespace it is.
    let ns = meta
        .namespace
        .as_deref()
        .or(meta.name.as_deref())
        .unwrap_or("");
    Viewer::of(ctx).sees_namespace(cluster, ns)
}
