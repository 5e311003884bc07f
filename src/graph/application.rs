//! ArgoCD applications in the graph: the `Application` type, its filter and connection, the
//! joins to catalog entities, the per-entity deployment rollup and the platform summary.

use std::sync::Arc;

use async_graphql::{Context, Enum, Object, Result, SimpleObject, ID};

use crate::domain::node_id::NodeId;
use chrono::{DateTime, Utc};

use super::entity::{EntityItem, EntityNode, Freshness, KeyValue};
use super::paging::{encode_cursor, paginate, PageInfo, PageRequest};
use super::{gctx, Viewer};
use crate::auth::Action;
use crate::domain::argocd::{self as argo, Application};
use crate::domain::Entity;

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum SyncStatusCode {
    Synced,
    OutOfSync,
    Unknown,
}

impl From<argo::SyncStatus> for SyncStatusCode {
    fn from(s: argo::SyncStatus) -> Self {
        match s {
            argo::SyncStatus::Synced => Self::Synced,
            argo::SyncStatus::OutOfSync => Self::OutOfSync,
            argo::SyncStatus::Unknown => Self::Unknown,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum HealthStatusCode {
    Healthy,
    Progressing,
    Degraded,
    Suspended,
    Missing,
    Unknown,
}

impl From<argo::HealthStatus> for HealthStatusCode {
    fn from(s: argo::HealthStatus) -> Self {
        match s {
            argo::HealthStatus::Healthy => Self::Healthy,
            argo::HealthStatus::Progressing => Self::Progressing,
            argo::HealthStatus::Degraded => Self::Degraded,
            argo::HealthStatus::Suspended => Self::Suspended,
            argo::HealthStatus::Missing => Self::Missing,
            argo::HealthStatus::Unknown => Self::Unknown,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum OperationPhaseCode {
    Running,
    Terminating,
    Failed,
    Error,
    Succeeded,
}

impl From<argo::OperationPhase> for OperationPhaseCode {
    fn from(p: argo::OperationPhase) -> Self {
        match p {
            argo::OperationPhase::Running => Self::Running,
            argo::OperationPhase::Terminating => Self::Terminating,
            argo::OperationPhase::Failed => Self::Failed,
            argo::OperationPhase::Error => Self::Error,
            argo::OperationPhase::Succeeded => Self::Succeeded,
        }
    }
}

#[derive(SimpleObject, Clone)]
pub struct ApplicationSource {
    #[graphql(name = "repoURL")]
    pub repo_url: String,
    pub path: Option<String>,
    pub chart: Option<String>,
    pub target_revision: Option<String>,
}

impl From<&argo::AppSource> for ApplicationSource {
    fn from(s: &argo::AppSource) -> Self {
        Self {
            repo_url: s.repo_url.clone(),
            path: s.path.clone(),
            chart: s.chart.clone(),
            target_revision: s.target_revision.clone(),
        }
    }
}

#[derive(SimpleObject, Clone)]
pub struct ApplicationDestination {
    pub server: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
}

#[derive(SimpleObject, Clone)]
pub struct ApplicationHealth {
    pub status: HealthStatusCode,
    pub message: Option<String>,
}

#[derive(SimpleObject, Clone)]
pub struct OperationState {
    pub phase: OperationPhaseCode,
    pub message: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Revision the sync applied (`syncResult.revision`).
    pub sync_result_revision: Option<String>,
    pub initiated_by: Option<String>,
    pub automated: bool,
}

#[derive(SimpleObject, Clone)]
pub struct ApplicationResource {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub status: Option<String>,
    pub health: Option<HealthStatusCode>,
    pub health_message: Option<String>,
}

#[derive(SimpleObject, Clone)]
pub struct ApplicationCondition {
    #[graphql(name = "type")]
    pub kind: String,
    pub message: String,
    pub last_transition_time: Option<DateTime<Utc>>,
}

#[derive(SimpleObject)]
pub struct ComparedTo {
    pub sources: Vec<ApplicationSource>,
    pub destination: ApplicationDestination,
}

/// `status.sync`: whether the live state matches git, and at which revision.
pub struct ApplicationSync(pub Arc<Application>);

#[Object]
impl ApplicationSync {
    async fn status(&self) -> SyncStatusCode {
        self.0.sync_status.into()
    }
    /// The git revision the app was last compared to (a commit SHA for git sources).
    async fn revision(&self) -> Option<&str> {
        self.0.sync_revision.as_deref()
    }
    /// One revision per source, for multi-source apps.
    async fn revisions(&self) -> &[String] {
        &self.0.sync_revisions
    }
    /// What the status was computed against (`status.sync.comparedTo`).
    async fn compared_to(&self) -> Option<ComparedTo> {
        self.0.compared_to.as_ref().map(|(sources, d)| ComparedTo {
            sources: sources.iter().map(Into::into).collect(),
            destination: ApplicationDestination {
                server: d.server.clone(),
                name: d.name.clone(),
                namespace: d.namespace.clone(),
            },
        })
    }
    /// The commit behind `revision`, when the source repo is on GitHub.
    async fn commit(&self, ctx: &Context<'_>) -> Result<Option<super::github::CommitNode>> {
        let (Some(rev), Some(src)) = (&self.0.sync_revision, self.0.sources.first()) else {
            return Ok(None);
        };
        commit_of(ctx, &src.repo_url, rev).await
    }
}

/// The GitHub commit of a revision in a repo URL (None when the repo is not on GitHub or the
/// revision is not a SHA).
async fn commit_of(
    ctx: &Context<'_>,
    repo_url: &str,
    revision: &str,
) -> Result<Option<super::github::CommitNode>> {
    let Some((slug, sha)) = super::github::commit_of_revision(ctx, repo_url, revision) else {
        return Ok(None);
    };
    super::github::load_commit(ctx, &slug, &sha).await
}

/// The actions the caller may take on an object (`viewerCan`).
#[derive(SimpleObject, Clone, Copy, Default)]
pub struct ViewerCan {
    pub sync: bool,
    pub rollback: bool,
    pub refresh: bool,
    pub terminate: bool,
    pub restart: bool,
}

/// One deployment in `status.history`.
pub struct HistoryEntry {
    pub app: Arc<Application>,
    pub index: usize,
}

#[Object]
impl HistoryEntry {
    pub async fn id(&self) -> ID {
        NodeId::HistoryEntry {
            instance: self.app.key.instance.clone(),
            namespace: self.app.key.namespace.clone(),
            name: self.app.key.name.clone(),
            history_id: self.app.history[self.index].id,
        }
        .into()
    }
    /// ArgoCD's id of the entry (what `rollbackApplication` takes).
    async fn history_id(&self) -> i64 {
        self.app.history[self.index].id
    }
    async fn revision(&self) -> Option<&str> {
        self.app.history[self.index].revision.as_deref()
    }
    async fn revisions(&self) -> &[String] {
        &self.app.history[self.index].revisions
    }
    async fn deployed_at(&self) -> Option<DateTime<Utc>> {
        self.app.history[self.index].deployed_at
    }
    async fn deploy_started_at(&self) -> Option<DateTime<Utc>> {
        self.app.history[self.index].deploy_started_at
    }
    async fn source(&self) -> Option<ApplicationSource> {
        self.app.history[self.index].source.as_ref().map(Into::into)
    }
    async fn initiated_by(&self) -> Option<&str> {
        self.app.history[self.index].initiated_by.as_deref()
    }
    async fn automated(&self) -> bool {
        self.app.history[self.index].automated
    }
    /// The GitHub commit deployed by this entry.
    async fn commit(&self, ctx: &Context<'_>) -> Result<Option<super::github::CommitNode>> {
        let h = &self.app.history[self.index];
        let repo = h
            .source
            .as_ref()
            .map(|s| s.repo_url.clone())
            .or_else(|| self.app.sources.first().map(|s| s.repo_url.clone()));
        match (repo, &h.revision) {
            (Some(repo), Some(rev)) => commit_of(ctx, &repo, rev).await,
            _ => Ok(None),
        }
    }
}

/// An ArgoCD Application.
#[derive(Clone)]
pub struct ApplicationNode(pub Arc<Application>);

/// The application with this key, when the caller may see it (`node(id:)`, `_entities`).
pub(crate) fn visible_app(ctx: &Context<'_>, key: argo::AppKey) -> Option<Arc<Application>> {
    gctx(ctx)
        .state
        .apps
        .get(&key)
        .filter(|a| Viewer::of(ctx).sees_app(a))
}

#[Object(name = "Application")]
impl ApplicationNode {
    pub async fn id(&self) -> ID {
        NodeId::Application {
            instance: self.0.key.instance.clone(),
            namespace: self.0.key.namespace.clone(),
            name: self.0.key.name.clone(),
        }
        .into()
    }
    /// `instance/namespace/name`: unique across instances, readable.
    async fn key(&self) -> &str {
        &self.0.key_string
    }
    async fn name(&self) -> &str {
        &self.0.key.name
    }
    /// The namespace of the Application object (apps in any namespace).
    async fn namespace(&self) -> &str {
        &self.0.key.namespace
    }
    /// The ArgoCD instance (config `argocd[].name`).
    async fn instance(&self) -> &str {
        &self.0.key.instance
    }
    async fn project(&self) -> &str {
        &self.0.project
    }
    /// Its AppProject allows its destination (ArgoCD's destination rules, `!` denials
    /// included). When not, the app grants nobody sight of (or actions in) that namespace.
    async fn destination_permitted(&self, ctx: &Context<'_>) -> bool {
        gctx(ctx).state.apps.destination_permitted(&self.0)
    }
    async fn labels(&self) -> Vec<KeyValue> {
        self.0
            .labels
            .iter()
            .map(|(k, v)| KeyValue {
                key: k.clone(),
                value: v.clone(),
            })
            .collect()
    }
    async fn annotations(&self) -> Vec<KeyValue> {
        self.0
            .annotations
            .iter()
            .map(|(k, v)| KeyValue {
                key: k.clone(),
                value: v.clone(),
            })
            .collect()
    }
    /// The first (or only) source.
    async fn source(&self) -> Option<ApplicationSource> {
        self.0.sources.first().map(Into::into)
    }
    async fn sources(&self) -> Vec<ApplicationSource> {
        self.0.sources.iter().map(Into::into).collect()
    }
    async fn destination(&self) -> ApplicationDestination {
        let d = &self.0.destination;
        ApplicationDestination {
            server: d.server.clone(),
            name: d.name.clone(),
            namespace: d.namespace.clone(),
        }
    }
    /// `spec.syncPolicy.automated` is set: ArgoCD syncs by itself and refuses rollbacks.
    async fn auto_sync(&self) -> bool {
        self.0.auto_sync
    }
    async fn sync(&self) -> ApplicationSync {
        ApplicationSync(self.0.clone())
    }
    async fn health(&self) -> ApplicationHealth {
        ApplicationHealth {
            status: self.0.health.into(),
            message: self.0.health_message.clone(),
        }
    }
    async fn operation_state(&self) -> Option<OperationState> {
        self.0.operation_state.as_ref().map(|o| OperationState {
            phase: o.phase.into(),
            message: o.message.clone(),
            started_at: o.started_at,
            finished_at: o.finished_at,
            sync_result_revision: o.sync_result_revision.clone(),
            initiated_by: o.initiated_by.clone(),
            automated: o.automated,
        })
    }
    /// When the last successful sync finished.
    async fn last_synced_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_synced_at()
    }
    async fn reconciled_at(&self) -> Option<DateTime<Utc>> {
        self.0.reconciled_at
    }
    async fn created_at(&self) -> Option<DateTime<Utc>> {
        self.0.created_at
    }
    /// Deployments, newest last (as ArgoCD keeps them).
    async fn history(&self) -> Vec<HistoryEntry> {
        (0..self.0.history.len())
            .map(|index| HistoryEntry {
                app: self.0.clone(),
                index,
            })
            .collect()
    }
    async fn resources(&self) -> Vec<ApplicationResource> {
        self.0
            .resources
            .iter()
            .map(|r| ApplicationResource {
                group: r.group.clone(),
                version: r.version.clone(),
                kind: r.kind.clone(),
                namespace: r.namespace.clone(),
                name: r.name.clone(),
                status: r.status.clone(),
                health: r.health.map(Into::into),
                health_message: r.health_message.clone(),
            })
            .collect()
    }
    async fn conditions(&self) -> Vec<ApplicationCondition> {
        self.0
            .conditions
            .iter()
            .map(|c| ApplicationCondition {
                kind: c.kind.clone(),
                message: c.message.clone(),
                last_transition_time: c.last_transition_time,
            })
            .collect()
    }
    async fn images(&self) -> &[String] {
        &self.0.images
    }
    async fn freshness(&self, ctx: &Context<'_>) -> Freshness {
        let health = gctx(ctx)
            .state
            .sources
            .find(crate::state::SourceKind::ArgoCd, &self.0.key.instance);
        Freshness {
            source: self.0.key.instance.clone(),
            observed_at: Some(self.0.observed_at),
            stale: health.is_some_and(|h| h.is_stale()),
        }
    }
    /// The catalog entity this application belongs to (by its `argocd/*` annotations).
    async fn entity(&self, ctx: &Context<'_>) -> Option<EntityItem> {
        entities_of_app(ctx, &self.0).into_iter().next()
    }
    /// Every catalog entity that claims this application.
    async fn entities(&self, ctx: &Context<'_>) -> Vec<EntityItem> {
        entities_of_app(ctx, &self.0)
    }
    /// What the caller may do to it: frontends show only the buttons that work.
    async fn viewer_can(&self, ctx: &Context<'_>) -> ViewerCan {
        let v = Viewer::of(ctx);
        let may = |a| v.may_act_on_app(a, &self.0);
        ViewerCan {
            sync: may(Action::Sync),
            rollback: may(Action::Rollback),
            refresh: may(Action::Refresh),
            terminate: may(Action::Terminate),
            restart: false,
        }
    }
    /// Its Kubernetes objects in the destination cluster, from the watch-fed store: those in
    /// its resource list or labelled/annotated with its name, and the pods under them.
    async fn workloads(&self, ctx: &Context<'_>) -> super::kubernetes::Workloads {
        super::kubernetes::workloads_of_app(ctx, &self.0)
    }
    /// The live resource tree, fetched on demand from ArgoCD and cached briefly.
    async fn resource_tree(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Option<super::resource_tree::ResourceTree>> {
        super::resource_tree::resource_tree(ctx, &self.0).await
    }
}

impl ApplicationNode {
    /// The first catalog entity that claims this application.
    pub fn entity_of(&self, ctx: &Context<'_>) -> Option<EntityItem> {
        entities_of_app(ctx, &self.0).into_iter().next()
    }
}

/// The visible entities that claim an application (`State::entities_of_app`).
fn entities_of_app(ctx: &Context<'_>, app: &Application) -> Vec<EntityItem> {
    let state = &gctx(ctx).state;
    let snapshot = state.catalog.snapshot();
    let viewer = Viewer::of(ctx);
    state
        .entities_of_app(app)
        .into_iter()
        .filter(|e| viewer.sees_entity(e))
        .map(|e| EntityItem::from(EntityNode::new(e, snapshot.clone())))
        .collect()
}

/// The visible applications of an entity, sorted by key (`State::apps_of_entity`).
pub fn apps_of_entity(ctx: &Context<'_>, e: &Entity) -> Vec<Arc<Application>> {
    let viewer = Viewer::of(ctx);
    let mut apps = gctx(ctx).state.apps_of_entity(e);
    apps.retain(|a| viewer.sees_app(a));
    apps
}

/// The deployment status of an entity across its applications.
#[derive(SimpleObject)]
pub struct DeploymentStatus {
    pub applications: usize,
    /// The worst health of any application (DEGRADED > MISSING > UNKNOWN > PROGRESSING > SUSPENDED > HEALTHY).
    pub worst_health: Option<HealthStatusCode>,
    pub any_out_of_sync: bool,
    pub out_of_sync: usize,
    /// Revision of the most recent successful sync among the applications.
    pub latest_revision: Option<String>,
    pub last_synced_at: Option<DateTime<Utc>>,
    pub any_operation_running: bool,
}

pub fn rollup(apps: &[Arc<Application>]) -> DeploymentStatus {
    let latest = apps
        .iter()
        .filter_map(|a| a.last_synced_at().map(|t| (t, a)))
        .max_by_key(|(t, _)| *t);
    DeploymentStatus {
        applications: apps.len(),
        worst_health: apps.iter().map(|a| a.health).max().map(Into::into),
        any_out_of_sync: apps
            .iter()
            .any(|a| a.sync_status == argo::SyncStatus::OutOfSync),
        out_of_sync: apps
            .iter()
            .filter(|a| a.sync_status == argo::SyncStatus::OutOfSync)
            .count(),
        latest_revision: latest.and_then(|(_, a)| a.sync_revision.clone()),
        last_synced_at: latest.map(|(t, _)| t),
        any_operation_running: apps.iter().any(|a| {
            a.operation_state
                .as_ref()
                .is_some_and(|o| !o.phase.is_finished())
        }),
    }
}

pub struct ApplicationConnection {
    items: Vec<Arc<Application>>,
    total: usize,
    page_info: PageInfo,
}

impl ApplicationConnection {
    pub fn from_sorted(apps: Vec<Arc<Application>>, req: &PageRequest) -> Self {
        let page = paginate(apps, |a| a.key_string.as_str(), req);
        Self {
            items: page.items,
            total: page.total,
            page_info: page.page_info,
        }
    }
}

pub struct ApplicationEdge(Arc<Application>);

#[Object]
impl ApplicationEdge {
    async fn cursor(&self) -> String {
        encode_cursor(&self.0.key_string)
    }
    async fn node(&self) -> ApplicationNode {
        ApplicationNode(self.0.clone())
    }
}

#[Object]
impl ApplicationConnection {
    async fn total_count(&self) -> usize {
        self.total
    }
    async fn page_info(&self) -> &PageInfo {
        &self.page_info
    }
    async fn nodes(&self) -> Vec<ApplicationNode> {
        self.items.iter().cloned().map(ApplicationNode).collect()
    }
    async fn edges(&self) -> Vec<ApplicationEdge> {
        self.items.iter().cloned().map(ApplicationEdge).collect()
    }
}

#[derive(SimpleObject, Clone)]
pub struct StatusCount {
    pub status: String,
    pub count: usize,
}

#[derive(SimpleObject)]
pub struct ProjectSummary {
    pub instance: String,
    pub name: String,
    pub description: Option<String>,
    pub source_repos: Vec<String>,
    /// `server|name` + `namespace` of each allowed destination.
    pub destinations: Vec<ApplicationDestination>,
    pub applications: usize,
    pub sync: Vec<StatusCount>,
    pub health: Vec<StatusCount>,
}

#[derive(SimpleObject)]
pub struct PlatformSummary {
    pub applications: usize,
    pub sync: Vec<StatusCount>,
    pub health: Vec<StatusCount>,
    pub projects: Vec<ProjectSummary>,
}

fn counts<T: Into<String>>(items: impl Iterator<Item = T>) -> Vec<StatusCount> {
    let mut m: std::collections::BTreeMap<String, usize> = Default::default();
    for i in items {
        *m.entry(i.into()).or_default() += 1;
    }
    m.into_iter()
        .map(|(status, count)| StatusCount { status, count })
        .collect()
}

fn sync_name(s: argo::SyncStatus) -> String {
    async_graphql::Value::from(SyncStatusCode::from(s)).to_string()
}

fn health_name(h: argo::HealthStatus) -> String {
    async_graphql::Value::from(HealthStatusCode::from(h)).to_string()
}

pub fn platform_summary(ctx: &Context<'_>) -> PlatformSummary {
    let state = &gctx(ctx).state;
    let viewer = Viewer::of(ctx);
    let apps = state.apps.select(|a| viewer.sees_app(a));
    let projects = state
        .apps
        .projects()
        .into_iter()
        .map(|p| {
            let mine: Vec<&Arc<Application>> = apps
                .iter()
                .filter(|a| a.key.instance == p.instance && a.project == p.name)
                .collect();
            ProjectSummary {
                instance: p.instance.clone(),
                name: p.name.clone(),
                description: p.description.clone(),
                source_repos: p.source_repos.clone(),
                destinations: p
                    .destinations
                    .iter()
                    .map(|d| ApplicationDestination {
                        server: d.server.clone(),
                        name: d.name.clone(),
                        namespace: d.namespace.clone(),
                    })
                    .collect(),
                applications: mine.len(),
                sync: counts(mine.iter().map(|a| sync_name(a.sync_status))),
                health: counts(mine.iter().map(|a| health_name(a.health))),
            }
        })
        .filter(|p| viewer.sees_project(&p.instance, &p.name))
        .collect();
    PlatformSummary {
        applications: apps.len(),
        sync: counts(apps.iter().map(|a| sync_name(a.sync_status))),
        health: counts(apps.iter().map(|a| health_name(a.health))),
        projects,
    }
}
