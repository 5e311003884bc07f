//! The GraphQL schema: `Query`, `Mutation`, `Subscription` and their types. Resolvers read
//! `state/` through the `GraphContext` and never call an upstream directly: actions and
//! on-demand reads go through the sources' handles (`sources::Upstreams`), batched per request
//! by loaders where a list would otherwise ask one by one.

pub mod application;
pub mod entity;
pub mod error;
pub mod federation;
pub mod filter;
pub mod github;
pub mod kubernetes;
mod limits;
pub mod mutation;
pub mod node;
pub mod paging;
pub mod query;
pub mod resource_tree;
pub mod search;
pub mod sources;
pub mod subscription;

use std::sync::Arc;

use async_graphql::{Context, Schema};

use crate::auth::policy::{decide, Decision, Facts, Target};
use crate::auth::{Action, Principal};
use crate::domain::Entity;
use crate::sources::Upstreams;
use crate::state::State;
pub use limits::Limits;

/// Everything resolvers need, shared by all requests (schema data).
pub struct GraphContext {
    pub state: Arc<State>,
    pub limits: Limits,
    pub audit: Arc<crate::auth::audit::AuditLog>,
    /// The started sources: actions and on-demand reads (domain values in and out).
    pub upstreams: Arc<Upstreams>,
}

impl GraphContext {
    /// A context over `state` with no upstreams (SDL printing, benchmarks, tests).
    pub fn bare(state: Arc<State>, limits: Limits) -> Self {
        Self {
            state,
            limits,
            audit: Default::default(),
            upstreams: Default::default(),
        }
    }
}

/// The schema data; inserted by `build_schema`, so its absence is a bug.
pub(crate) fn gctx<'a>(ctx: &Context<'a>) -> &'a GraphContext {
    ctx.data_unchecked::<GraphContext>()
}

/// The caller and what it may see and do: the one visibility and action check every upstream
/// object passes on its way out (lists, counts, joins, lookups, subscriptions, errors).
pub struct Viewer<'a> {
    pub principal: &'a Principal,
    state: &'a State,
}

static NOBODY: std::sync::LazyLock<Principal> = std::sync::LazyLock::new(Principal::nobody);

impl<'a> Viewer<'a> {
    /// The request's caller; a request without one (not through the pipeline) sees nothing.
    pub fn of(ctx: &Context<'a>) -> Self {
        let principal = ctx
            .data_opt::<Arc<Principal>>()
            .map(|p| p.as_ref())
            .unwrap_or(&NOBODY);
        Self::new(principal, &gctx(ctx).state)
    }

    pub fn new(principal: &'a Principal, state: &'a State) -> Self {
        Self { principal, state }
    }

    /// The state this viewer looks at (for joins that decide visibility).
    pub fn state(&self) -> &'a State {
        self.state
    }

    pub fn is_admin(&self) -> bool {
        self.principal.grants().admin
    }

    pub fn sees_app(&self, a: &crate::domain::argocd::Application) -> bool {
        self.sees_project(&a.key.instance, &a.project)
    }

    pub fn sees_project(&self, instance: &str, project: &str) -> bool {
        self.principal.grants().sees_project(instance, project)
    }

    /// Objects in one namespace of one cluster (a Namespace object: its own name).
    pub fn sees_namespace(&self, cluster: &str, namespace: &str) -> bool {
        let g = self.principal.grants();
        if g.sees_namespace_explicitly(cluster, namespace) {
            return true;
        }
        g.destination_namespaces && self.via_destination(cluster, namespace)
    }

    /// Does an application the caller sees deploy into this namespace of this cluster?
    fn via_destination(&self, cluster: &str, namespace: &str) -> bool {
        if namespace.is_empty() {
            return false;
        }
        let Some(c) = self.state.clusters.get(cluster) else {
            return false;
        };
        // An app spec can claim any namespace: it counts only where its AppProject allows it.
        self.state.apps.deploying_to(namespace).iter().any(|a| {
            self.sees_app(a)
                && self.state.apps.destination_permitted(a)
                && c.is_destination(
                    a.destination.server.as_deref(),
                    a.destination.name.as_deref(),
                )
        })
    }

    pub fn sees_entity(&self, _e: &Entity) -> bool {
        self.principal.grants().catalog
    }

    /// Does one of the caller's groups own one of these entities?
    pub fn owns_any(&self, entities: &[Arc<Entity>]) -> bool {
        Self::owners_of(entities)
            .iter()
            .any(|o| self.principal.groups().contains(o))
    }

    /// Group refs owning entities (`spec.owner`, resolved against each entity's namespace).
    pub fn owners_of(entities: &[Arc<Entity>]) -> Vec<String> {
        let mut owners: Vec<String> = entities
            .iter()
            .filter_map(|e| {
                let o = e.spec_str("owner")?;
                crate::domain::EntityRef::parse_with_defaults(o, Some("group"), &e.namespace)
                    .ok()
                    .map(|r| r.to_string())
            })
            .collect();
        owners.sort();
        owners.dedup();
        owners
    }

    /// The policy's decision on an application: the graph gathers the facts (its project, the
    /// owners the joins find), `auth::policy::decide` decides.
    pub fn decide_on_app(
        &self,
        action: Action,
        a: &crate::domain::argocd::Application,
    ) -> Decision {
        let owners = Self::owners_of(&self.state.entities_of_app(a));
        decide(
            self.principal.grants(),
            action,
            &Facts {
                target: Target::Application {
                    instance: &a.key.instance,
                    project: &a.project,
                },
                owners: &owners,
                caller_groups: self.principal.groups(),
            },
        )
    }

    pub fn may_act_on_app(&self, action: Action, a: &crate::domain::argocd::Application) -> bool {
        self.decide_on_app(action, a).allowed()
    }

    /// The same for a Kubernetes object (owners: entities claiming it, or its application's).
    pub fn decide_on_object(
        &self,
        action: Action,
        cluster: &crate::state::ClusterStore,
        meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    ) -> Decision {
        let namespace = meta.namespace.as_deref().unwrap_or("");
        let owners = Self::owners_of(&self.state.entities_of_object(cluster, meta));
        decide(
            self.principal.grants(),
            action,
            &Facts {
                target: Target::Object {
                    cluster: &cluster.name,
                    namespace,
                    via_destination: self.via_destination(&cluster.name, namespace),
                },
                owners: &owners,
                caller_groups: self.principal.groups(),
            },
        )
    }

    pub fn may_act_on_object(
        &self,
        action: Action,
        cluster: &crate::state::ClusterStore,
        meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    ) -> bool {
        self.decide_on_object(action, cluster, meta).allowed()
    }

    /// May the caller see a scaffolder task? Its creator and platform-team only; a task
    /// whose creator is not known here is platform-team's.
    pub fn sees_template_task(&self, task_id: &str) -> bool {
        self.is_admin()
            || self
                .principal
                .subject
                .as_deref()
                .is_some_and(|me| self.state.task_creators.creator(task_id).as_deref() == Some(me))
    }

    /// May the caller take an action that has no object yet (createFromTemplate)?
    pub fn may_create(&self, action: Action) -> bool {
        decide(
            self.principal.grants(),
            action,
            &Facts {
                target: Target::New,
                owners: &[],
                caller_groups: self.principal.groups(),
            },
        )
        .allowed()
    }
}

/// The id the pipeline gave this request (audit records carry it).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Records an attempt in the audit trail as the request's caller.
pub(crate) fn audit(
    ctx: &Context<'_>,
    action: &str,
    target: &str,
    result: &str,
    message: Option<String>,
) -> u64 {
    let viewer = Viewer::of(ctx);
    let request_id = ctx.data_opt::<RequestId>().map(|r| r.0.as_str());
    gctx(ctx).audit.record(
        viewer.principal,
        request_id,
        action,
        target,
        result,
        message,
    )
}

// The plain root `Query`: the fields of `query::Query` (merged, so that the subgraph root can
// merge the same fields with the entity resolvers under the same name). A `//` comment: a doc
// comment would become the type's description in the SDL.
#[derive(async_graphql::MergedObject, Default)]
#[graphql(name = "Query")]
pub struct RootQuery(query::Query);

/// The executable schema: the plain one, or the Apollo Federation subgraph one (a different
/// `Query` type, so a different Rust type). The pipeline only executes, so two methods are the
/// whole surface.
#[derive(Clone)]
pub enum AppSchema {
    Plain(Schema<RootQuery, mutation::Mutation, subscription::Subscription>),
    Federated(Schema<federation::FederatedQuery, mutation::Mutation, subscription::Subscription>),
}

impl AppSchema {
    pub async fn execute(&self, request: async_graphql::Request) -> async_graphql::Response {
        match self {
            AppSchema::Plain(s) => s.execute(request).await,
            AppSchema::Federated(s) => s.execute(request).await,
        }
    }

    pub fn execute_stream(
        &self,
        request: async_graphql::Request,
    ) -> futures::stream::BoxStream<'static, async_graphql::Response> {
        use futures::StreamExt;
        match self {
            AppSchema::Plain(s) => s.execute_stream(request).boxed(),
            AppSchema::Federated(s) => s.execute_stream(request).boxed(),
        }
    }

    /// The SDL: plain, or (subgraph mode) what `_service { sdl }` answers, with `@key`s and the
    /// federation `@link`.
    pub fn sdl(&self) -> String {
        match self {
            AppSchema::Plain(s) => s.sdl(),
            AppSchema::Federated(s) => {
                s.sdl_with_options(async_graphql::SDLExportOptions::new().federation())
            }
        }
    }
}

/// Builds the schema with its limits. The same function serves the server, `idp-graph schema`
/// and the benchmarks, so what is measured is what runs.
pub fn build_schema(context: GraphContext) -> AppSchema {
    build_schema_for(context, false)
}

/// `build_schema`, as an Apollo Federation v2 subgraph when `federated`.
pub fn build_schema_for(context: GraphContext, federated: bool) -> AppSchema {
    if federated {
        let builder = Schema::build(
            federation::FederatedQuery::default(),
            mutation::Mutation,
            subscription::Subscription,
        )
        .enable_federation();
        AppSchema::Federated(configure(builder, context))
    } else {
        let builder = Schema::build(
            RootQuery::default(),
            mutation::Mutation,
            subscription::Subscription,
        );
        AppSchema::Plain(configure(builder, context))
    }
}

/// Limits, loaders and the context: the same for both schemas.
fn configure<Q>(
    mut builder: async_graphql::SchemaBuilder<Q, mutation::Mutation, subscription::Subscription>,
    context: GraphContext,
) -> Schema<Q, mutation::Mutation, subscription::Subscription>
where
    Q: async_graphql::ObjectType + 'static,
{
    let limits = context.limits.clone();
    builder = builder
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .limit_recursive_depth(64)
        .limit_directives(16);
    if !limits.introspection {
        builder = builder.disable_introspection();
    }
    if !limits.field_suggestions {
        builder = builder.disable_suggestions();
    }
    if let Some(b) = context.upstreams.backstage() {
        builder = builder.data(entity::catalog_loader(b.lookup()));
    }
    if let Some(gh) = context.upstreams.github() {
        let (repos, commits) = github::loaders(gh);
        builder = builder.data(gh.clone()).data(repos).data(commits);
    }
    builder.data(context).finish()
}

/// The spawner of every DataLoader: a batch runs in its own task, inside the span of the
/// operation that started it, so its upstream calls appear in that operation's trace.
pub(crate) fn spawn_in_span(
    batch: futures::future::BoxFuture<'static, ()>,
) -> tokio::task::JoinHandle<()> {
    use tracing::Instrument;
    tokio::spawn(batch.in_current_span())
}

/// The SDL `idp-graph schema` prints and `schema.graphql` holds.
pub fn sdl() -> String {
    build_schema(GraphContext::bare(State::new(), Limits::default())).sdl()
}

/// The subgraph SDL (`idp-graph schema --federation`): what `_service { sdl }` answers.
pub fn federation_sdl() -> String {
    build_schema_for(GraphContext::bare(State::new(), Limits::default()), true).sdl()
}
