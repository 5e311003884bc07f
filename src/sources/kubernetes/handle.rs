//! The started cluster, as the graph uses it for writes: `restart_deployment` is exactly the
//! strategic-merge patch `kubectl rollout restart` sends; the API server's answer is stored and
//! its rollout published at once, so the caller reads its own write.

use std::sync::Arc;

use chrono::Utc;
use k8s_openapi::api::apps::v1::Deployment;
use kube::Client;

use super::{apply_and_publish, client_error};
use crate::domain::kubernetes::{strip, RESTARTED_AT};
use crate::sources::SourceError;
use crate::state::{ClusterStore, State};

pub struct ClusterHandle {
    pub(super) client: Client,
    /// The API server URL (for error messages).
    pub(super) url: String,
    pub(super) cluster: Arc<ClusterStore>,
    pub(super) state: Arc<State>,
}

impl ClusterHandle {
    /// Patches the pod template's `kubectl.kubernetes.io/restartedAt`; returns the stored
    /// Deployment and the timestamp set.
    pub async fn restart_deployment(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<(Arc<Deployment>, String), SourceError> {
        let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let patch = serde_json::json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}});
        let api: kube::Api<Deployment> = kube::Api::namespaced(self.client.clone(), namespace);
        let params = kube::api::PatchParams {
            field_manager: Some("idp-graph".into()),
            ..Default::default()
        };
        let mut d = api
            .patch(name, &params, &kube::api::Patch::Strategic(&patch))
            .await
            .map_err(|e| client_error(&self.url, &e))?;
        strip(&mut d.metadata);
        Ok((apply_and_publish(&self.state, &self.cluster, d), now))
    }
}
