//! Pods: phase, readiness, restarts, container states and the walk up to their controller.

use super::*;

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ContainerStateCode {
    Waiting,
    Running,
    Terminated,
    Unknown,
}

#[derive(SimpleObject, Clone)]
pub struct ContainerStatus {
    pub name: String,
    pub image: Option<String>,
    pub ready: bool,
    pub restart_count: i32,
    pub state: ContainerStateCode,
    /// Why it waits (`CrashLoopBackOff`, `ImagePullBackOff`) or terminated (`Error`, `OOMKilled`).
    pub reason: Option<String>,
    pub message: Option<String>,
    pub exit_code: Option<i32>,
    pub started_at: Option<DateTime<Utc>>,
    /// How the previous run ended (after a restart).
    pub last_exit_code: Option<i32>,
    pub last_reason: Option<String>,
    pub init: bool,
}

fn container_statuses(p: &Pod) -> Vec<ContainerStatus> {
    p.containers
        .iter()
        .map(|c| ContainerStatus {
            name: c.name.clone(),
            image: c.image.clone(),
            ready: c.ready,
            restart_count: c.restart_count,
            state: match c.state {
                k8s::ContainerState::Waiting => ContainerStateCode::Waiting,
                k8s::ContainerState::Running => ContainerStateCode::Running,
                k8s::ContainerState::Terminated => ContainerStateCode::Terminated,
                k8s::ContainerState::Unknown => ContainerStateCode::Unknown,
            },
            reason: c.reason.clone(),
            message: c.message.clone(),
            exit_code: c.exit_code,
            started_at: c.started_at,
            last_exit_code: c.last_exit_code,
            last_reason: c.last_reason.clone(),
            init: c.init,
        })
        .collect()
}

pub(super) fn waiting_reasons(p: &Pod) -> Vec<String> {
    container_statuses(p)
        .into_iter()
        .filter(|c| c.state == ContainerStateCode::Waiting)
        .filter_map(|c| c.reason)
        .collect()
}

#[derive(SimpleObject, Clone)]
pub struct OwnerRef {
    pub kind: String,
    pub name: String,
}

k8s_object!(PodNode, Pod, "Pod", "A core/v1 Pod.", {
    async fn phase(&self) -> PodPhase {
        PodPhase::of(&self.obj)
    }
    /// The Ready condition.
    async fn ready(&self) -> bool {
        k8s::pod_ready(&self.obj)
    }
    /// Restarts of all containers.
    async fn restarts(&self) -> i32 {
        k8s::pod_restarts(&self.obj)
    }
    async fn containers(&self) -> Vec<ContainerStatus> {
        container_statuses(&self.obj)
    }
    async fn node(&self) -> Option<&str> {
        self.obj.node_name.as_deref()
    }
    #[graphql(name = "podIP")]
    async fn pod_ip(&self) -> Option<&str> {
        self.obj.pod_ip.as_deref()
    }
    #[graphql(name = "podIPs")]
    async fn pod_ips(&self) -> &[String] {
        &self.obj.pod_ips
    }
    #[graphql(name = "hostIP")]
    async fn host_ip(&self) -> Option<&str> {
        self.obj.host_ip.as_deref()
    }
    async fn started_at(&self) -> Option<DateTime<Utc>> {
        self.obj.start_time
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
    /// The controller that owns it.
    async fn owner(&self) -> Option<OwnerRef> {
        self.meta()
            .owner_references
            .as_ref()?
            .iter()
            .find(|o| o.controller == Some(true))
            .map(|o| OwnerRef {
                kind: o.kind.clone(),
                name: o.name.clone(),
            })
    }
    async fn replica_set(&self) -> Option<ReplicaSetNode> {
        self.replica_set_node()
    }
    /// The Deployment behind its ReplicaSet.
    async fn deployment(&self) -> Option<DeploymentNode> {
        self.deployment_node()
    }
    /// The ArgoCD application (its own labels, else its controller's).
    async fn application(&self, ctx: &Context<'_>) -> Option<ApplicationNode> {
        apps_of_object(ctx, &self.cluster, self.meta())
            .into_iter()
            .next()
    }
    /// The catalog entity (its own labels, else its controller's).
    async fn entity(&self, ctx: &Context<'_>) -> Option<EntityItem> {
        entities_of_object(ctx, &self.cluster, self.meta())
            .into_iter()
            .next()
    }
});

impl PodNode {
    fn replica_set_node(&self) -> Option<ReplicaSetNode> {
        let name = controller(self.meta(), "ReplicaSet")?;
        let rs = self
            .cluster
            .replica_sets
            .get(self.meta().namespace.as_deref().unwrap_or(""), &name)?;
        Some(ReplicaSetNode::new(self.cluster.clone(), rs))
    }
    fn deployment_node(&self) -> Option<DeploymentNode> {
        let rs = self.replica_set_node()?;
        let name = controller(&rs.obj.metadata, "Deployment")?;
        let d = self
            .cluster
            .deployments
            .get(self.meta().namespace.as_deref().unwrap_or(""), &name)?;
        Some(DeploymentNode::new(self.cluster.clone(), d))
    }
}
