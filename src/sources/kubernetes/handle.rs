//! The started cluster, as the graph uses it for writes: `restart_deployment` is exactly the
//! strategic-merge patch `kubectl rollout restart` sends; the API server's answer is stored and
//! its rollout published at once, so the caller reads its own write.

use std::sync::Arc;
use tracing::Instrument;

use chrono::Utc;
use k8s_openapi::api::apps::v1::Deployment;
use kube::Client;

use super::client_error;
use crate::domain::kubernetes::{strip, DeploymentInfo, RESTARTED_AT};
use crate::sources::SourceError;
use crate::state::{ClusterStore, KindWriter, State};

pub struct ClusterHandle {
    pub(super) client: Client,
    /// The client configuration writes impersonate the caller with (`impersonate: true`).
    pub(super) impersonating: Option<kube::Config>,
    /// The API server URL (for error messages).
    pub(super) url: String,
    pub(super) cluster: Arc<ClusterStore>,
    pub(super) state: Arc<State>,
    /// How long a write may take before the caller gets `UPSTREAM_TIMEOUT`.
    pub(super) timeout: std::time::Duration,
}

impl ClusterHandle {
    /// Patches the pod template's `kubectl.kubernetes.io/restartedAt`; returns the stored
    /// Deployment and the timestamp set. With impersonation on, the PATCH is sent as `caller`
    /// (subject, groups), so the cluster's RBAC decides too.
    pub async fn restart_deployment(
        &self,
        namespace: &str,
        name: &str,
        caller: (&str, &[String]),
    ) -> Result<(Arc<DeploymentInfo>, String), SourceError> {
        let client = match &self.impersonating {
            None => self.client.clone(),
            Some(config) => {
                let mut config = config.clone();
                config.auth_info.impersonate = Some(caller.0.to_string());
                config.auth_info.impersonate_groups = Some(caller.1.to_vec());
                super::traced_client(config, None).map_err(|e| SourceError::Unreachable {
                    url: self.url.clone(),
                    reason: e.to_string(),
                })?
            }
        };
        let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let patch = serde_json::json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}});
        let api: kube::Api<Deployment> = kube::Api::namespaced(client, namespace);
        let params = kube::api::PatchParams {
            field_manager: Some("idp-graph".into()),
            ..Default::default()
        };
        let url = url::Url::parse(&format!(
            "{}/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
            self.url.trim_end_matches('/')
        ));
        let span = match &url {
            Ok(u) => crate::telemetry::upstream_span("kubernetes", "PATCH", u),
            Err(_) => tracing::Span::none(),
        };
        let result = tokio::time::timeout(
            self.timeout,
            api.patch(name, &params, &kube::api::Patch::Strategic(&patch))
                .instrument(span.clone()),
        )
        .await;
        crate::telemetry::record_response(
            &span,
            result
                .as_ref()
                .ok()
                .and_then(|r| r.as_ref().ok())
                .map(|_| 200),
        );
        let mut d = result
            .map_err(|_| SourceError::Timeout {
                url: self.url.clone(),
                secs: self.timeout.as_secs_f64(),
            })?
            .map_err(|e| client_error(&self.url, &e))?;
        strip(&mut d.metadata);
        Ok((
            KindWriter::<DeploymentInfo>::new(self.state.clone(), self.cluster.clone())
                .observe(DeploymentInfo::from(d)),
            now,
        ))
    }
}
