//! Deployments, ReplicaSets, StatefulSets and DaemonSets: rollout state, replicas, conditions,
//! and the walk down to their pods.

use super::*;

#[derive(SimpleObject, Clone)]
pub struct Condition {
    #[graphql(name = "type")]
    pub kind: String,
    pub status: String,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub last_transition_time: Option<DateTime<Utc>>,
}

#[derive(SimpleObject, Clone)]
pub struct Replicas {
    pub desired: i32,
    pub current: i32,
    pub updated: i32,
    pub ready: i32,
    pub available: i32,
    pub unavailable: i32,
}

#[derive(SimpleObject, Clone)]
pub struct DeploymentStrategy {
    #[graphql(name = "type")]
    pub kind: String,
    pub max_surge: Option<String>,
    pub max_unavailable: Option<String>,
}

#[derive(SimpleObject, Clone)]
pub struct RolloutStatus {
    pub state: RolloutStateCode,
    pub desired: i32,
    pub updated: i32,
    pub ready: i32,
    pub available: i32,
    /// `ProgressDeadlineExceeded` when stalled.
    pub reason: Option<String>,
    /// As `kubectl rollout status` says it.
    pub message: String,
}

impl From<k8s::Rollout> for RolloutStatus {
    fn from(r: k8s::Rollout) -> Self {
        Self {
            state: r.state.into(),
            desired: r.desired,
            updated: r.updated,
            ready: r.ready,
            available: r.available,
            reason: r.reason,
            message: r.message,
        }
    }
}

k8s_object!(
    DeploymentNode,
    DeploymentInfo,
    "Deployment",
    "An apps/v1 Deployment.",
    {
        async fn replicas(&self) -> Replicas {
            let r = self.obj.replicas;
            Replicas {
                desired: r.desired,
                current: r.current,
                updated: r.updated,
                ready: r.ready,
                available: r.available,
                unavailable: r.unavailable,
            }
        }
        async fn conditions(&self) -> Vec<Condition> {
            self.obj
                .conditions
                .iter()
                .map(|c| Condition {
                    kind: c.type_.clone(),
                    status: c.status.clone(),
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                    last_transition_time: c.last_transition_time,
                })
                .collect()
        }
        async fn images(&self) -> &[String] {
            &self.obj.images
        }
        async fn strategy(&self) -> Option<DeploymentStrategy> {
            self.obj.strategy.as_ref().map(|s| DeploymentStrategy {
                kind: s.type_.clone(),
                max_surge: s.max_surge.clone(),
                max_unavailable: s.max_unavailable.clone(),
            })
        }
        async fn generation(&self) -> Option<i64> {
            self.obj.metadata.generation
        }
        async fn observed_generation(&self) -> Option<i64> {
            self.obj.observed_generation
        }
        /// The rollout, computed as `kubectl rollout status` does.
        async fn rollout(&self) -> RolloutStatus {
            k8s::rollout(&self.obj).into()
        }
        /// When it was last restarted (`kubectl.kubernetes.io/restartedAt` on the pod template).
        async fn restarted_at(&self) -> Option<&str> {
            self.obj.restarted_at.as_deref()
        }
        /// Its ReplicaSets, newest revision first.
        async fn replica_sets(&self) -> Vec<ReplicaSetNode> {
            let ns = self.meta().namespace.clone().unwrap_or_default();
            let mut rs = self.cluster.owned::<ReplicaSetInfo>(
                &ns,
                "Deployment",
                self.meta().name.as_deref().unwrap_or(""),
            );
            rs.sort_by_key(|r| std::cmp::Reverse(revision(&r.metadata)));
            rs.into_iter()
                .map(|r| ReplicaSetNode::new(self.cluster.clone(), r))
                .collect()
        }
        /// Pods of all its ReplicaSets.
        async fn pods(&self) -> Vec<PodNode> {
            let ns = self.meta().namespace.clone().unwrap_or_default();
            let mut pods = Vec::new();
            for rs in self.cluster.owned::<ReplicaSetInfo>(
                &ns,
                "Deployment",
                self.meta().name.as_deref().unwrap_or(""),
            ) {
                pods.extend(self.cluster.owned::<Pod>(
                    &ns,
                    "ReplicaSet",
                    rs.metadata.name.as_deref().unwrap_or(""),
                ));
            }
            pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
            pods.into_iter()
                .map(|p| PodNode::new(self.cluster.clone(), p))
                .collect()
        }
        /// What the caller may do to it (`restart`).
        async fn viewer_can(&self, ctx: &Context<'_>) -> crate::graph::application::ViewerCan {
            let v = Viewer::of(ctx);
            crate::graph::application::ViewerCan {
                restart: v.may_act_on_object(
                    crate::auth::Action::Restart,
                    &self.cluster,
                    self.meta(),
                ),
                ..Default::default()
            }
        }
        /// The ArgoCD application that deploys it.
        async fn application(&self, ctx: &Context<'_>) -> Option<ApplicationNode> {
            apps_of_object(ctx, &self.cluster, self.meta())
                .into_iter()
                .next()
        }
        /// The catalog entity it belongs to.
        async fn entity(&self, ctx: &Context<'_>) -> Option<EntityItem> {
            entities_of_object(ctx, &self.cluster, self.meta())
                .into_iter()
                .next()
        }
    }
);

fn revision(meta: &ObjectMeta) -> i64 {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get("deployment.kubernetes.io/revision"))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

k8s_object!(
    ReplicaSetNode,
    ReplicaSetInfo,
    "ReplicaSet",
    "An apps/v1 ReplicaSet.",
    {
        /// `deployment.kubernetes.io/revision`.
        async fn revision(&self) -> i64 {
            revision(self.meta())
        }
        async fn desired(&self) -> i32 {
            self.obj.desired
        }
        async fn ready(&self) -> i32 {
            self.obj.ready
        }
        async fn available(&self) -> i32 {
            self.obj.available
        }
        async fn images(&self) -> &[String] {
            &self.obj.images
        }
        async fn pods(&self) -> Vec<PodNode> {
            let ns = self.meta().namespace.clone().unwrap_or_default();
            self.cluster
                .owned::<Pod>(&ns, "ReplicaSet", self.meta().name.as_deref().unwrap_or(""))
                .into_iter()
                .map(|p| PodNode::new(self.cluster.clone(), p))
                .collect()
        }
        async fn deployment(&self) -> Option<DeploymentNode> {
            controller(self.meta(), "Deployment")
                .and_then(|name| {
                    self.cluster
                        .deployments
                        .get(self.meta().namespace.as_deref().unwrap_or(""), &name)
                })
                .map(|d| DeploymentNode::new(self.cluster.clone(), d))
        }
    }
);

pub(super) fn controller(meta: &ObjectMeta, kind: &str) -> Option<String> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true) && o.kind == kind)
        .map(|o| o.name.clone())
}

k8s_object!(
    StatefulSetNode,
    StatefulSet,
    "StatefulSet",
    "An apps/v1 StatefulSet.",
    {
        async fn desired(&self) -> i32 {
            self.obj.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
        }
        async fn ready(&self) -> i32 {
            self.obj
                .status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0)
        }
        async fn images(&self) -> Vec<String> {
            k8s::template_images(self.obj.spec.as_ref().map(|s| &s.template))
        }
        async fn pods(&self) -> Vec<PodNode> {
            let ns = self.meta().namespace.clone().unwrap_or_default();
            self.cluster
                .owned::<Pod>(
                    &ns,
                    "StatefulSet",
                    self.meta().name.as_deref().unwrap_or(""),
                )
                .into_iter()
                .map(|p| PodNode::new(self.cluster.clone(), p))
                .collect()
        }
    }
);

k8s_object!(
    DaemonSetNode,
    DaemonSet,
    "DaemonSet",
    "An apps/v1 DaemonSet.",
    {
        async fn desired(&self) -> i32 {
            self.obj
                .status
                .as_ref()
                .map(|s| s.desired_number_scheduled)
                .unwrap_or(0)
        }
        async fn ready(&self) -> i32 {
            self.obj
                .status
                .as_ref()
                .map(|s| s.number_ready)
                .unwrap_or(0)
        }
        async fn images(&self) -> Vec<String> {
            k8s::template_images(self.obj.spec.as_ref().map(|s| &s.template))
        }
        async fn pods(&self) -> Vec<PodNode> {
            let ns = self.meta().namespace.clone().unwrap_or_default();
            self.cluster
                .owned::<Pod>(&ns, "DaemonSet", self.meta().name.as_deref().unwrap_or(""))
                .into_iter()
                .map(|p| PodNode::new(self.cluster.clone(), p))
                .collect()
        }
    }
);
