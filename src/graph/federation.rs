//! Apollo Federation v2 subgraph mode (`federation.enabled`): the schema gains `_service { sdl }`
//! and `_entities(representations:)`, and the types other subgraphs would extend carry `@key`:
//! catalog entities by `ref`, applications by `instance namespace name`, repositories by
//! `slug`, Kubernetes objects by `cluster namespace name`. Off (the default), the schema is the
//! plain one — no federation fields at all.
//!
//! The entity resolvers below only look up: each goes through the same lookup and visibility
//! check as the typed root field, so a gateway asking for an entity the caller may not see gets
//! `null`, as the caller would.

use async_graphql::{Context, MergedObject, Object, Result};
use serde::Deserialize;

use super::application::ApplicationNode;
use super::entity::{
    ApiEntity, Component, Domain, EntityItem, Group, Resource, System, Template, User,
};
use super::gctx;
use super::github::RepositoryNode;
use super::kubernetes as k8s;
use super::query::Query;
use crate::domain::argocd::AppKey;
use crate::domain::EntityRef;

/// `federation:` in the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FederationSettings {
    /// Serve as an Apollo Federation v2 subgraph.
    pub enabled: bool,
}

// `Query` in subgraph mode: every field of the plain `Query`, plus the entity resolvers.
// (Merged under the root's name; the parts' own names never reach the schema.)
#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct FederatedQuery(Query, EntityResolvers);

/// The `_entities` lookups, one per key (async-graphql derives `@key` from them).
#[derive(Default)]
pub struct EntityResolvers;

/// The visible entity `entity_ref` names, when it is of the kind `pick` accepts.
async fn entity_of<T>(
    ctx: &Context<'_>,
    entity_ref: &str,
    pick: impl FnOnce(EntityItem) -> Option<T>,
) -> Option<T> {
    let parsed = EntityRef::parse(entity_ref).ok()?;
    super::entity::lookup(ctx, parsed.to_string())
        .await
        .and_then(pick)
}

/// Writes `EntityResolvers`' one `#[Object]` impl: one `_entities` lookup per entity kind (by
/// `ref`) and per Kubernetes kind (by `cluster namespace name`), plus the fixed ones. (A macro
/// call inside an `#[Object]` impl would be expanded after the attribute ran, unseen by it.)
macro_rules! entity_resolvers {
    (
        entities { $($efn:ident => $variant:ident($ety:ty),)* }
        kubernetes { $($kfn:ident => $node:ident,)* }
    ) => {
        #[Object]
        impl EntityResolvers {
            $(
                #[graphql(entity)]
                async fn $efn(
                    &self,
                    ctx: &Context<'_>,
                    #[graphql(key, name = "ref")] entity_ref: String,
                ) -> Option<$ety> {
                    entity_of(ctx, &entity_ref, |e| match e {
                        EntityItem::$variant(v) => Some(v),
                        _ => None,
                    })
                    .await
                }
            )*

            $(
                #[graphql(entity)]
                async fn $kfn(
                    &self,
                    ctx: &Context<'_>,
                    #[graphql(key)] cluster: String,
                    #[graphql(key)] namespace: String,
                    #[graphql(key)] name: String,
                ) -> Result<Option<k8s::$node>> {
                    if gctx(ctx).state.clusters.get(&cluster).is_none() {
                        return Ok(None);
                    }
                    k8s::one(ctx, &cluster, &namespace, &name, k8s::$node::new)
                }
            )*

            #[graphql(entity)]
            async fn find_application(
                &self,
                ctx: &Context<'_>,
                #[graphql(key)] instance: String,
                #[graphql(key)] namespace: String,
                #[graphql(key)] name: String,
            ) -> Option<ApplicationNode> {
                super::application::visible_app(
                    ctx,
                    AppKey {
                        instance,
                        namespace,
                        name,
                    },
                )
                .map(ApplicationNode)
            }

            #[graphql(entity)]
            async fn find_repository_by_slug(
                &self,
                ctx: &Context<'_>,
                #[graphql(key)] slug: String,
            ) -> Result<Option<RepositoryNode>> {
                if !crate::domain::annotations::is_github_slug(&slug) {
                    return Ok(None);
                }
                super::github::load_repository(ctx, &slug).await
            }
        }
    };
}

entity_resolvers! {
    entities {
        find_component_by_ref => Component(Component),
        find_api_by_ref => Api(ApiEntity),
        find_system_by_ref => System(System),
        find_domain_by_ref => Domain(Domain),
        find_group_by_ref => Group(Group),
        find_user_by_ref => User(User),
        find_resource_by_ref => Resource(Resource),
        find_template_by_ref => Template(Template),
    }
    kubernetes {
        find_deployment => DeploymentNode,
        find_replica_set => ReplicaSetNode,
        find_stateful_set => StatefulSetNode,
        find_daemon_set => DaemonSetNode,
        find_pod => PodNode,
        find_service => ServiceNode,
        find_ingress => IngressNode,
        find_config_map => ConfigMapNode,
        find_secret => SecretNode,
    }
}
