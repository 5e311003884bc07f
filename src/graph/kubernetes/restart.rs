//! `restartDeployment`: authorize, ask the Kubernetes source to restart, store and publish.

use super::*;

// ---------------------------------------------------------------------------------------------
// restartDeployment

#[derive(SimpleObject)]
pub struct RestartResult {
    /// The Deployment as the API server returned it after the patch.
    pub deployment: DeploymentNode,
    /// The `kubectl.kubernetes.io/restartedAt` value set.
    pub restarted_at: String,
    pub audit_id: u64,
}

/// `kubectl rollout restart`: a strategic-merge patch of the pod template's
/// `kubectl.kubernetes.io/restartedAt` annotation, which makes the Deployment roll.
pub async fn restart_deployment(
    ctx: &Context<'_>,
    cluster: String,
    namespace: String,
    name: String,
) -> Result<RestartResult> {
    let g = gctx(ctx);
    let viewer = Viewer::of(ctx);
    let target = format!("{cluster}/deployments/{namespace}/{name}");
    let audit = |result: &str, message: Option<String>| {
        crate::graph::audit(ctx, "restartDeployment", &target, result, message)
    };
    if name.trim().is_empty() || namespace.trim().is_empty() {
        return Err(bad_input("`namespace` and `name` must not be empty"));
    }
    let store = g
        .state
        .clusters
        .get(&cluster)
        .ok_or_else(|| bad_input(format!("unknown cluster `{cluster}`")))?;
    let Some(deployment) = store
        .deployments
        .get(&namespace, &name)
        .filter(|_| viewer.sees_namespace(&cluster, &namespace))
    else {
        // A caller who may not see every namespace cannot tell a hidden Deployment from a
        // missing one: both are refused alike (and audited), as for applications.
        let grants = viewer.principal.grants();
        if !(grants.admin || grants.all_namespaces) {
            audit("FORBIDDEN", None);
            return Err(forbidden(format!(
                "not allowed to restart `{namespace}/{name}` (or there is no such deployment)"
            )));
        }
        return Err(not_found(format!(
            "no deployment `{namespace}/{name}` in `{cluster}`"
        )));
    };
    if !viewer.may_act_on_object(crate::auth::Action::Restart, &store, &deployment.metadata) {
        audit("FORBIDDEN", None);
        return Err(forbidden(format!(
            "not allowed to restart `{namespace}/{name}`"
        )));
    }
    crate::graph::error::admit(&g.audit)?;
    let Some(handle) = g.upstreams.cluster(&cluster) else {
        return Err(not_found(format!("cluster `{cluster}` has no client")));
    };
    let caller = (viewer.principal.display_name(), viewer.principal.groups());
    match handle.restart_deployment(&namespace, &name, caller).await {
        Ok((stored, restarted_at)) => {
            let audit_id = audit("ok", None);
            Ok(RestartResult {
                deployment: DeploymentNode::new(store.clone(), stored),
                restarted_at,
                audit_id,
            })
        }
        Err(err) => {
            audit(err.code(), Some(err.to_string()));
            Err(crate::graph::error::upstream(&cluster, &err))
        }
    }
}
