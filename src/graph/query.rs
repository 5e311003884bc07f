//! `Query`: the read side of the graph.

use async_graphql::{Context, Object, Result, SimpleObject, ID};

use super::application::{
    platform_summary, ApplicationConnection, ApplicationNode, PlatformSummary,
};
use super::entity::{EntityConnection, EntityItem};
use super::error::bad_input;
use super::filter::{ApplicationFilter, ApplicationMatcher, EntityFilter, EntityMatcher};
use super::kubernetes as k8s;
use super::paging::PageRequest;
use super::sources::SourceStatus;
use super::{gctx, Viewer};
use crate::domain::EntityRef;

#[derive(Default)]
pub struct Query;

#[derive(async_graphql::SimpleObject)]
pub struct AuditRecord {
    pub id: u64,
    pub at: chrono::DateTime<chrono::Utc>,
    /// Whom the policy decided as: the caller, or the user a delegate acted for.
    pub principal: String,
    /// The caller that acted for `principal` (granted `delegate` by the policy, e.g. the
    /// chatops bot); null when the principal called itself.
    pub delegate: Option<String>,
    /// The caller's groups when it acted.
    pub groups: Vec<String>,
    /// `allowed`, or `denied` by the policy.
    pub decision: String,
    pub request_id: Option<String>,
    pub action: String,
    /// The object acted on, e.g. `main/argocd/sample-app`.
    pub target: String,
    /// `ok` or the error code.
    pub result: String,
    pub message: Option<String>,
}

/// The caller (`Query.viewer`).
#[derive(SimpleObject)]
pub struct ViewerInfo {
    /// The token's subject; null when anonymous.
    pub subject: Option<String>,
    pub groups: Vec<String>,
    pub roles: Vec<String>,
    /// Sees and does everything, reads the audit log.
    pub admin: bool,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

// Named apart from the root: the root `Query` is `graph::RootQuery` (plain) or
// `federation::FederatedQuery`, both merging these fields; this name never reaches the schema.
#[Object(name = "QueryFields")]
impl Query {
    /// Catalog entities, sorted by ref, filtered on the server.
    async fn entities(
        &self,
        ctx: &Context<'_>,
        filter: Option<EntityFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<EntityConnection> {
        let g = gctx(ctx);
        let req = PageRequest::new(first, after, g.limits.max_page_size)?;
        let matcher = EntityMatcher::new(filter)?;
        let viewer = Viewer::of(ctx);
        let snapshot = g.state.catalog.snapshot();
        let matching = snapshot
            .entities
            .iter()
            .filter(|e| matcher.matches(e, &snapshot) && viewer.sees_entity(e))
            .cloned();
        Ok(EntityConnection::from_sorted(matching, &snapshot, &req))
    }

    /// One entity by ref (`component:default/sample-app`; namespace defaults to `default`).
    /// Null when there is no such entity or it is not visible to the caller.
    async fn entity(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "ref")] entity_ref: String,
    ) -> Result<Option<EntityItem>> {
        let parsed = EntityRef::parse(&entity_ref).map_err(|e| bad_input(e.to_string()))?;
        Ok(super::entity::lookup(ctx, parsed.to_string()).await)
    }

    /// ArgoCD applications of every instance, sorted by `instance/namespace/name`.
    async fn applications(
        &self,
        ctx: &Context<'_>,
        filter: Option<ApplicationFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<ApplicationConnection> {
        let g = gctx(ctx);
        let req = PageRequest::new(first, after, g.limits.max_page_size)?;
        let matcher = ApplicationMatcher::new(filter)?;
        let viewer = Viewer::of(ctx);
        let apps = match matcher.only_names() {
            // Names given: the by-name index answers without a scan.
            Some(names) => {
                let mut v: Vec<_> = names
                    .iter()
                    .flat_map(|n| g.state.apps.by_name(n))
                    .filter(|a| matcher.matches(a) && viewer.sees_app(a))
                    .collect();
                v.sort_by(|a, b| a.key_string.cmp(&b.key_string));
                v.dedup_by(|a, b| a.key_string == b.key_string);
                v
            }
            None => g
                .state
                .apps
                .select(|a| matcher.matches(a) && viewer.sees_app(a)),
        };
        Ok(ApplicationConnection::from_sorted(apps, &req))
    }

    /// One application. `instance` and `namespace` narrow the lookup; without them a name that
    /// exists in several instances is a `BAD_USER_INPUT` error naming them. Null when unknown.
    async fn application(
        &self,
        ctx: &Context<'_>,
        name: String,
        instance: Option<String>,
        namespace: Option<String>,
    ) -> Result<Option<ApplicationNode>> {
        let viewer = Viewer::of(ctx);
        let found: Vec<_> = gctx(ctx)
            .state
            .apps
            .by_name(&name)
            .into_iter()
            .filter(|a| instance.as_deref().is_none_or(|i| i == a.key.instance))
            .filter(|a| namespace.as_deref().is_none_or(|n| n == a.key.namespace))
            .filter(|a| viewer.sees_app(a))
            .collect();
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.into_iter().next().map(ApplicationNode)),
            n => Err(bad_input(format!(
                "`{name}` names {n} applications ({}); give `instance` and/or `namespace`",
                found
                    .iter()
                    .map(|a| a.key_string.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// Counts by sync and health status, overall and per ArgoCD project.
    async fn platform(&self, ctx: &Context<'_>) -> PlatformSummary {
        platform_summary(ctx)
    }

    /// Recent mutations (newest first): who did what, when, with what result.
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: i32,
    ) -> Result<Vec<AuditRecord>> {
        // Grows with every action: never kept.
        crate::state::reads::note_max_age(std::time::Duration::ZERO);
        if !(0..=1000).contains(&first) {
            return Err(bad_input("`first` must be between 0 and 1000"));
        }
        if !Viewer::of(ctx).is_admin() {
            return Err(super::error::forbidden("the audit log is for admins"));
        }
        Ok(gctx(ctx)
            .audit
            .recent(first as usize)
            .await
            .into_iter()
            .map(|e| AuditRecord {
                id: e.id,
                at: e.at,
                principal: e.principal,
                delegate: e.delegate,
                groups: e.groups,
                decision: e.decision,
                request_id: e.request_id,
                action: e.action,
                target: e.target,
                result: e.result,
                message: e.message,
            })
            .collect())
    }

    /// A GitHub repository by `owner/name`. Null when GitHub has no such repository;
    /// `BAD_USER_INPUT` when the slug is not of that form.
    async fn repository(
        &self,
        ctx: &Context<'_>,
        slug: String,
    ) -> Result<Option<super::github::RepositoryNode>> {
        if !crate::domain::annotations::is_github_slug(&slug) {
            return Err(bad_input("`slug` must be `owner/name`"));
        }
        super::github::load_repository(ctx, &slug).await
    }

    /// Every configured upstream instance and its health.
    /// Configured Kubernetes clusters.
    async fn clusters(&self, ctx: &Context<'_>) -> Vec<k8s::ClusterNode> {
        k8s::clusters(ctx)
    }
    async fn namespaces(
        &self,
        ctx: &Context<'_>,
        cluster: Option<String>,
    ) -> Result<Vec<k8s::NamespaceNode>> {
        k8s::namespaces(ctx, cluster)
    }
    /// Deployments across clusters, sorted by cluster, namespace, name.
    async fn deployments(
        &self,
        ctx: &Context<'_>,
        filter: Option<k8s::WorkloadFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<k8s::DeploymentConnection> {
        k8s::deployments(ctx, filter, first, after)
    }
    async fn deployment(
        &self,
        ctx: &Context<'_>,
        cluster: String,
        namespace: String,
        name: String,
    ) -> Result<Option<k8s::DeploymentNode>> {
        k8s::one(ctx, &cluster, &namespace, &name, k8s::DeploymentNode::new)
    }
    async fn pods(
        &self,
        ctx: &Context<'_>,
        filter: Option<k8s::PodFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<k8s::PodConnection> {
        k8s::pods(ctx, filter, first, after)
    }
    async fn pod(
        &self,
        ctx: &Context<'_>,
        cluster: String,
        namespace: String,
        name: String,
    ) -> Result<Option<k8s::PodNode>> {
        k8s::one(ctx, &cluster, &namespace, &name, k8s::PodNode::new)
    }
    async fn stateful_sets(
        &self,
        ctx: &Context<'_>,
        filter: Option<k8s::ObjectFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<k8s::StatefulSetConnection> {
        k8s::stateful_sets(ctx, filter, first, after)
    }
    async fn daemon_sets(
        &self,
        ctx: &Context<'_>,
        filter: Option<k8s::ObjectFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<k8s::DaemonSetConnection> {
        k8s::daemon_sets(ctx, filter, first, after)
    }
    async fn services(
        &self,
        ctx: &Context<'_>,
        filter: Option<k8s::ObjectFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<k8s::ServiceConnection> {
        k8s::services(ctx, filter, first, after)
    }
    async fn ingresses(
        &self,
        ctx: &Context<'_>,
        filter: Option<k8s::ObjectFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<k8s::IngressConnection> {
        k8s::ingresses(ctx, filter, first, after)
    }
    async fn config_maps(
        &self,
        ctx: &Context<'_>,
        filter: Option<k8s::ObjectFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<k8s::ConfigMapConnection> {
        k8s::config_maps(ctx, filter, first, after)
    }
    /// Secrets: type and key names only; values are never read into memory.
    async fn secrets(
        &self,
        ctx: &Context<'_>,
        filter: Option<k8s::ObjectFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<k8s::SecretConnection> {
        k8s::secrets(ctx, filter, first, after)
    }

    /// Every configured upstream instance and its health. `objectCount` counts only what the
    /// caller may see (null where that cannot be told: GitHub, for callers outside
    /// platform-team).
    async fn sources(&self, ctx: &Context<'_>) -> Vec<SourceStatus> {
        let viewer = Viewer::of(ctx);
        gctx(ctx)
            .state
            .sources
            .all()
            .into_iter()
            .map(|h| {
                let visible = super::sources::visible_count(&viewer, &h);
                SourceStatus::of(h, viewer.is_admin(), visible)
            })
            .collect()
    }

    /// Everything at once: catalog entities, ArgoCD applications, Kubernetes workloads and
    /// the catalog's GitHub repositories whose name (or title, description, tags) contains
    /// `text`, ranked (exact name, name prefix, then substring), only what the caller may see.
    async fn search(
        &self,
        ctx: &Context<'_>,
        text: String,
        kinds: Option<Vec<crate::state::search::SearchKind>>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<super::search::SearchConnection> {
        super::search::search(ctx, text, kinds, first, after)
    }

    /// Any object with an identity, by its `id` (Relay's object identification). Null when
    /// there is no such object or the caller may not see it; `BAD_USER_INPUT` when `id` is not
    /// an id this server handed out.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> Result<Option<super::node::Node>> {
        super::node::node(ctx, &id).await
    }

    /// Several objects by id (at most 100), in the order asked; null where `node` would be.
    async fn nodes(
        &self,
        ctx: &Context<'_>,
        ids: Vec<ID>,
    ) -> Result<Vec<Option<super::node::Node>>> {
        super::node::nodes(ctx, &ids).await
    }

    /// Who is asking, as the server sees it: subject, groups (with the catalog's parent
    /// groups for Backstage users) and roles.
    async fn viewer(&self, ctx: &Context<'_>) -> ViewerInfo {
        crate::state::reads::note_personal();
        let p = Viewer::of(ctx).principal;
        ViewerInfo {
            subject: p.subject.clone(),
            groups: p.groups().to_vec(),
            roles: p.grants().roles.clone(),
            admin: p.grants().admin,
            expires_at: p.expires_at,
        }
    }
}
