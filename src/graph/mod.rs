//! The GraphQL schema: `Query`, `Mutation`, `Subscription` and their types. Resolvers read
//! `state/` through the `GraphContext` and never call an upstream directly: actions and
//! on-demand reads go through the sources' handles (`sources::Upstreams`), batched per request
//! by loaders where a list would otherwise ask one by one.

pub mod application;
pub mod entity;
pub mod error;
pub mod filter;
pub mod github;
pub mod kubernetes;
pub mod mutation;
pub mod paging;
pub mod query;
pub mod resource_tree;
pub mod sources;
pub mod subscription;

use std::sync::Arc;

use async_graphql::{Context, Schema};

use crate::auth::{Policy, Principal, Scope};
use crate::config::Limits;
use crate::domain::Entity;
use crate::sources::Upstreams;
use crate::state::State;

pub type AppSchema = Schema<query::Query, mutation::Mutation, subscription::Subscription>;

/// Everything resolvers need, shared by all requests (schema data).
pub struct GraphContext {
    pub state: Arc<State>,
    pub policy: Policy,
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
            policy: Policy::default(),
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

/// The caller and the policy together: the one visibility check every upstream object passes.
pub struct Viewer<'a> {
    pub policy: &'a Policy,
    pub principal: &'a Principal,
}

static ANONYMOUS: std::sync::LazyLock<Principal> = std::sync::LazyLock::new(|| Principal {
    subject: None,
    groups: Vec::new(),
});

impl<'a> Viewer<'a> {
    pub fn of(ctx: &Context<'a>) -> Self {
        let principal = ctx
            .data_opt::<Arc<Principal>>()
            .map(|p| p.as_ref())
            .unwrap_or(&ANONYMOUS);
        Self {
            policy: &gctx(ctx).policy,
            principal,
        }
    }

    pub fn sees_app(&self, a: &crate::domain::argocd::Application) -> bool {
        self.policy.can_view(
            self.principal,
            Scope::Application {
                instance: &a.key.instance,
                project: &a.project,
                namespace: a.destination.namespace.as_deref().unwrap_or(""),
            },
        )
    }

    pub fn sees_project(&self, instance: &str, project: &str) -> bool {
        self.policy
            .can_view(self.principal, Scope::Project { instance, project })
    }

    /// Objects in one namespace of one cluster (cluster-scoped objects: namespace "").
    pub fn sees_namespace(&self, cluster: &str, namespace: &str) -> bool {
        self.policy.can_view(
            self.principal,
            Scope::KubernetesNamespace { cluster, namespace },
        )
    }

    pub fn sees_entity(&self, e: &Entity) -> bool {
        self.policy.can_view(
            self.principal,
            Scope::CatalogEntity {
                namespace: &e.namespace,
                kind: &e.kind_name,
            },
        )
    }
}

/// Builds the schema with its limits. The same function serves the server, `idp-graph schema`
/// and the benchmarks, so what is measured is what runs.
pub fn build_schema(context: GraphContext) -> AppSchema {
    let limits = context.limits.clone();
    let mut builder = Schema::build(query::Query, mutation::Mutation, subscription::Subscription)
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .limit_recursive_depth(64)
        .limit_directives(16);
    if let Some(b) = context.upstreams.backstage() {
        builder = builder.data(entity::catalog_loader(b.lookup()));
    }
    if let Some(gh) = context.upstreams.github() {
        let (repos, commits) = github::loaders(gh);
        builder = builder.data(gh.clone()).data(repos).data(commits);
    }
    builder.data(context).finish()
}

/// The SDL `idp-graph schema` prints and `schema.graphql` holds.
pub fn sdl() -> String {
    build_schema(GraphContext::bare(State::new(), Limits::default())).sdl()
}
