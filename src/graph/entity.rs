//! The catalog in the graph: the `Entity` interface, one object type per kind, relations walked
//! both ways through the snapshot's edge index, and the entity connection.
//!
//! Every kind shares the interface fields through `entity_kind!`, which writes the common
//! resolvers into each kind's `#[Object]` impl (async-graphql interfaces dispatch to the concrete
//! object, so each one must have them). Resolvers borrow from the shared `Arc<Entity>`; nothing
//! is cloned per request except the small views themselves.

use std::sync::Arc;

use async_graphql::{Context, Interface, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::paging::{encode_cursor, paginate, PageInfo, PageRequest};
use super::{gctx, Viewer};
use crate::domain::{Entity, EntityKind, RelationType};
use crate::state::{CatalogSnapshot, Edge};

/// An entity together with the snapshot it was read from, so every relation walked from it
/// stays inside one consistent poll.
#[derive(Clone)]
pub struct EntityNode {
    pub entity: Arc<Entity>,
    pub snapshot: Arc<CatalogSnapshot>,
}

#[derive(SimpleObject, Clone)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

#[derive(SimpleObject, Clone)]
pub struct EntityLink {
    pub url: String,
    pub title: Option<String>,
    pub icon: Option<String>,
}

/// Where a node came from and how fresh it is.
#[derive(SimpleObject, Clone)]
pub struct Freshness {
    /// Source instance name, e.g. `backstage`.
    pub source: String,
    /// When the source last observed this node (the end of the poll or watch event).
    pub observed_at: Option<DateTime<Utc>>,
    /// True when the source's last attempt failed and this is the last known value.
    pub stale: bool,
}

/// One relation of an entity, as the catalog states it.
pub struct EntityRelation {
    kind: RelationType,
    target_ref: String,
    node: EntityNode,
}

#[Object]
impl EntityRelation {
    /// Backstage relation type, e.g. `ownedBy`, `hasPart`.
    #[graphql(name = "type")]
    async fn relation_type(&self) -> &str {
        self.kind.as_str()
    }
    async fn target_ref(&self) -> &str {
        &self.target_ref
    }
    /// The target entity; null when the catalog has no such entity or it is not visible.
    async fn target(&self, ctx: &Context<'_>) -> Option<EntityItem> {
        let target = self.node.snapshot.get(&self.target_ref)?;
        Viewer::of(ctx)
            .sees_entity(target)
            .then(|| self.node.with(target.clone()))
    }
}

impl EntityNode {
    pub fn new(entity: Arc<Entity>, snapshot: Arc<CatalogSnapshot>) -> Self {
        Self { entity, snapshot }
    }

    /// A view of another entity from the same snapshot.
    fn with(&self, entity: Arc<Entity>) -> EntityItem {
        EntityItem::from(EntityNode::new(entity, self.snapshot.clone()))
    }

    /// Edges of this entity: from the index when the entity is in the snapshot, else (entity
    /// fetched on demand) built from the relations it carries.
    fn edges(&self) -> std::borrow::Cow<'_, [Edge]> {
        if self.snapshot.get(&self.entity.ref_string).is_some() {
            return std::borrow::Cow::Borrowed(self.snapshot.edges(&self.entity.ref_string));
        }
        std::borrow::Cow::Owned(
            self.entity
                .relations
                .iter()
                .map(|r| {
                    let target_ref = r.target.to_string();
                    Edge {
                        kind: r.kind.clone(),
                        target: self.snapshot.position(&target_ref),
                        target_ref,
                    }
                })
                .collect(),
        )
    }

    /// Visible targets of one relation type, optionally only of one kind, sorted by ref (the
    /// index keeps edges sorted by type then target, so no sort is needed here).
    fn related(
        &self,
        ctx: &Context<'_>,
        rel: RelationType,
        kind: Option<&str>,
    ) -> Vec<Arc<Entity>> {
        let viewer = Viewer::of(ctx);
        let mut out: Vec<Arc<Entity>> = self
            .edges()
            .iter()
            .filter(|e| e.kind == rel)
            .filter_map(|e| self.snapshot.at(e.target?))
            .filter(|e| kind.is_none_or(|k| e.entity_ref.kind() == k))
            .filter(|e| viewer.sees_entity(e))
            .cloned()
            .collect();
        out.dedup_by(|a, b| a.ref_string == b.ref_string);
        out
    }

    fn related_items(
        &self,
        ctx: &Context<'_>,
        rel: RelationType,
        kind: Option<&str>,
    ) -> Vec<EntityItem> {
        self.related(ctx, rel, kind)
            .into_iter()
            .map(|e| self.with(e))
            .collect()
    }

    fn related_one(
        &self,
        ctx: &Context<'_>,
        rel: RelationType,
        kind: Option<&str>,
    ) -> Option<EntityItem> {
        self.related(ctx, rel, kind)
            .into_iter()
            .next()
            .map(|e| self.with(e))
    }

    fn related_page(
        &self,
        ctx: &Context<'_>,
        rel: RelationType,
        kind: Option<&str>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<EntityConnection> {
        let req = PageRequest::new(first, after, gctx(ctx).limits.max_page_size)?;
        Ok(EntityConnection::from_sorted(
            self.related(ctx, rel, kind),
            &self.snapshot,
            &req,
        ))
    }

    fn freshness(&self, ctx: &Context<'_>) -> Freshness {
        let health = gctx(ctx)
            .state
            .sources
            .find(crate::state::SourceKind::Backstage, "backstage");
        Freshness {
            source: "backstage".into(),
            observed_at: self.snapshot.observed_at,
            stale: health.is_some_and(|h| h.is_stale()),
        }
    }

    fn relations(&self, relation_type: Option<String>) -> Vec<EntityRelation> {
        self.edges()
            .iter()
            .filter(|e| {
                relation_type
                    .as_deref()
                    .is_none_or(|t| e.kind.as_str() == t)
            })
            .map(|e| EntityRelation {
                kind: e.kind.clone(),
                target_ref: e.target_ref.clone(),
                node: self.clone(),
            })
            .collect()
    }
}

fn key_values(map: &std::collections::BTreeMap<String, String>) -> Vec<KeyValue> {
    map.iter()
        .map(|(k, v)| KeyValue {
            key: k.clone(),
            value: v.clone(),
        })
        .collect()
}

/// Writes a kind's object type with every interface field, plus the kind's own fields.
macro_rules! entity_kind {
    ($ty:ident, $gql:literal, $doc:literal, { $($extra:tt)* }) => {
        #[doc = $doc]
        #[derive(Clone)]
        pub struct $ty(pub EntityNode);

        #[Object(name = $gql)]
        impl $ty {
            pub async fn id(&self) -> async_graphql::ID {
                crate::domain::node_id::NodeId::Entity { entity_ref: self.0.entity.ref_string.clone() }.into()
            }
            /// `kind:namespace/name`, lower-case: the id of an entity.
            #[graphql(name = "ref")]
            async fn entity_ref(&self) -> &str { &self.0.entity.ref_string }
            /// The kind as the catalog spells it (`Component`, `API`).
            async fn kind(&self) -> &str { &self.0.entity.kind_name }
            async fn api_version(&self) -> &str { &self.0.entity.api_version }
            async fn namespace(&self) -> &str { &self.0.entity.namespace }
            async fn name(&self) -> &str { &self.0.entity.name }
            async fn title(&self) -> Option<&str> { self.0.entity.title.as_deref() }
            async fn description(&self) -> Option<&str> { self.0.entity.description.as_deref() }
            async fn uid(&self) -> Option<&str> { self.0.entity.uid.as_deref() }
            async fn etag(&self) -> Option<&str> { self.0.entity.etag.as_deref() }
            async fn tags(&self) -> &[String] { &self.0.entity.tags }
            async fn labels(&self) -> Vec<KeyValue> { key_values(&self.0.entity.labels) }
            async fn annotations(&self) -> Vec<KeyValue> { key_values(&self.0.entity.annotations) }
            /// One annotation's value.
            async fn annotation(&self, key: String) -> Option<&str> {
                self.0.entity.annotations.get(&key).map(String::as_str)
            }
            async fn links(&self) -> Vec<EntityLink> {
                self.0.entity.links.iter().map(|l| EntityLink {
                    url: l.url.clone(), title: l.title.clone(), icon: l.icon.clone(),
                }).collect()
            }
            /// The raw `spec`, for fields the typed kinds do not model.
            async fn spec(&self) -> async_graphql::Json<&serde_json::Value> { async_graphql::Json(&self.0.entity.spec) }
            /// Every relation, both directions, optionally of one type.
            async fn relations(&self, relation_type: Option<String>) -> Vec<EntityRelation> {
                self.0.relations(relation_type)
            }
            async fn owner(&self, ctx: &Context<'_>) -> Option<EntityItem> {
                self.0.related_one(ctx, RelationType::OwnedBy, None)
            }
            async fn owns(&self, ctx: &Context<'_>, first: Option<i32>, after: Option<String>) -> Result<EntityConnection> {
                self.0.related_page(ctx, RelationType::OwnerOf, None, first, after)
            }
            async fn part_of(&self, ctx: &Context<'_>) -> Vec<EntityItem> {
                self.0.related_items(ctx, RelationType::PartOf, None)
            }
            async fn has_part(&self, ctx: &Context<'_>, first: Option<i32>, after: Option<String>) -> Result<EntityConnection> {
                self.0.related_page(ctx, RelationType::HasPart, None, first, after)
            }
            async fn depends_on(&self, ctx: &Context<'_>, first: Option<i32>, after: Option<String>) -> Result<EntityConnection> {
                self.0.related_page(ctx, RelationType::DependsOn, None, first, after)
            }
            async fn dependency_of(&self, ctx: &Context<'_>, first: Option<i32>, after: Option<String>) -> Result<EntityConnection> {
                self.0.related_page(ctx, RelationType::DependencyOf, None, first, after)
            }
            /// Names from `argocd/app-name` (comma-separated allowed).
            async fn argocd_app_names(&self) -> &[String] { &self.0.entity.join.argocd_app_names }
            async fn argocd_app_selector(&self) -> Option<&str> { self.0.entity.join.argocd_app_selector.as_deref() }
            async fn argocd_project_name(&self) -> Option<&str> { self.0.entity.join.argocd_project.as_deref() }
            async fn argocd_instance_name(&self) -> Option<&str> { self.0.entity.join.argocd_instance.as_deref() }
            async fn argocd_app_namespace(&self) -> Option<&str> { self.0.entity.join.argocd_app_namespace.as_deref() }
            async fn kubernetes_id(&self) -> Option<&str> { self.0.entity.join.kubernetes_id.as_deref() }
            async fn kubernetes_label_selector(&self) -> Option<&str> { self.0.entity.join.kubernetes_label_selector.as_deref() }
            async fn kubernetes_namespace(&self) -> Option<&str> { self.0.entity.join.kubernetes_namespace.as_deref() }
            /// `owner/repo` from `github.com/project-slug`, when well-formed.
            async fn github_slug(&self) -> Option<&str> { self.0.entity.join.github_slug.as_deref() }
            async fn freshness(&self, ctx: &Context<'_>) -> Freshness { self.0.freshness(ctx) }
            $($extra)*
        }
    };
}

entity_kind!(
    Component,
    "Component",
    "A piece of software: a service, website, library.",
    {
        #[graphql(name = "type")]
        async fn spec_type(&self) -> Option<&str> {
            self.0.entity.spec_type()
        }
        async fn lifecycle(&self) -> Option<&str> {
            self.0.entity.lifecycle()
        }
        async fn system(&self, ctx: &Context<'_>) -> Option<EntityItem> {
            self.0
                .related_one(ctx, RelationType::PartOf, Some("system"))
        }
        async fn subcomponent_of(&self, ctx: &Context<'_>) -> Option<EntityItem> {
            self.0
                .related_one(ctx, RelationType::PartOf, Some("component"))
        }
        async fn subcomponents(&self, ctx: &Context<'_>) -> Vec<EntityItem> {
            self.0
                .related(ctx, RelationType::HasPart, Some("component"))
                .into_iter()
                .map(|e| self.0.with(e))
                .collect()
        }
        async fn provides_apis(&self, ctx: &Context<'_>) -> Vec<EntityItem> {
            self.0.related_items(ctx, RelationType::ProvidesApi, None)
        }
        async fn consumes_apis(&self, ctx: &Context<'_>) -> Vec<EntityItem> {
            self.0.related_items(ctx, RelationType::ConsumesApi, None)
        }
        /// ArgoCD applications of this component (by its `argocd/*` annotations).
        async fn applications(
            &self,
            ctx: &Context<'_>,
        ) -> Vec<super::application::ApplicationNode> {
            super::application::apps_of_entity(ctx, &self.0.entity)
                .into_iter()
                .map(super::application::ApplicationNode)
                .collect()
        }
        /// Its GitHub repository (by `github.com/project-slug`).
        async fn repository(
            &self,
            ctx: &Context<'_>,
        ) -> Result<Option<super::github::RepositoryNode>> {
            match &self.0.entity.join.github_slug {
                Some(slug) => super::github::load_repository(ctx, slug).await,
                None => Ok(None),
            }
        }
        /// What runs in Kubernetes for it (by `backstage.io/kubernetes-id`, or
        /// `backstage.io/kubernetes-label-selector`, within `backstage.io/kubernetes-namespace`).
        async fn kubernetes(&self, ctx: &Context<'_>) -> super::kubernetes::Workloads {
            super::kubernetes::workloads_of_entity(ctx, &self.0.entity)
        }
        /// Rollup of its applications: worst health, anything out of sync, latest revision.
        async fn deployment_status(
            &self,
            ctx: &Context<'_>,
        ) -> super::application::DeploymentStatus {
            super::application::rollup(&super::application::apps_of_entity(ctx, &self.0.entity))
        }
    }
);

entity_kind!(
    ApiEntity,
    "API",
    "An interface a component provides and others consume.",
    {
        #[graphql(name = "type")]
        async fn spec_type(&self) -> Option<&str> {
            self.0.entity.spec_type()
        }
        async fn lifecycle(&self) -> Option<&str> {
            self.0.entity.lifecycle()
        }
        /// The API definition text (OpenAPI, AsyncAPI, GraphQL SDL...).
        async fn definition(&self) -> Option<&str> {
            self.0.entity.spec_str("definition")
        }
        async fn system(&self, ctx: &Context<'_>) -> Option<EntityItem> {
            self.0
                .related_one(ctx, RelationType::PartOf, Some("system"))
        }
        async fn api_provided_by(&self, ctx: &Context<'_>) -> Vec<EntityItem> {
            self.0.related_items(ctx, RelationType::ApiProvidedBy, None)
        }
        async fn api_consumed_by(&self, ctx: &Context<'_>) -> Vec<EntityItem> {
            self.0.related_items(ctx, RelationType::ApiConsumedBy, None)
        }
    }
);

entity_kind!(
    System,
    "System",
    "A collection of components, APIs and resources.",
    {
        async fn domain(&self, ctx: &Context<'_>) -> Option<EntityItem> {
            self.0
                .related_one(ctx, RelationType::PartOf, Some("domain"))
        }
        async fn components(
            &self,
            ctx: &Context<'_>,
            first: Option<i32>,
            after: Option<String>,
        ) -> Result<EntityConnection> {
            self.0
                .related_page(ctx, RelationType::HasPart, Some("component"), first, after)
        }
        async fn apis(
            &self,
            ctx: &Context<'_>,
            first: Option<i32>,
            after: Option<String>,
        ) -> Result<EntityConnection> {
            self.0
                .related_page(ctx, RelationType::HasPart, Some("api"), first, after)
        }
        async fn resources(
            &self,
            ctx: &Context<'_>,
            first: Option<i32>,
            after: Option<String>,
        ) -> Result<EntityConnection> {
            self.0
                .related_page(ctx, RelationType::HasPart, Some("resource"), first, after)
        }
    }
);

entity_kind!(Domain, "Domain", "A business area grouping systems.", {
    async fn systems(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<EntityConnection> {
        self.0
            .related_page(ctx, RelationType::HasPart, Some("system"), first, after)
    }
});

entity_kind!(Group, "Group", "A team or organisational unit.", {
    #[graphql(name = "type")]
    async fn spec_type(&self) -> Option<&str> {
        self.0.entity.spec_type()
    }
    async fn display_name(&self) -> Option<&str> {
        self.0
            .entity
            .spec
            .pointer("/profile/displayName")
            .and_then(|v| v.as_str())
    }
    async fn email(&self) -> Option<&str> {
        self.0
            .entity
            .spec
            .pointer("/profile/email")
            .and_then(|v| v.as_str())
    }
    async fn parent(&self, ctx: &Context<'_>) -> Option<EntityItem> {
        self.0.related_one(ctx, RelationType::ChildOf, None)
    }
    async fn children(&self, ctx: &Context<'_>) -> Vec<EntityItem> {
        self.0.related_items(ctx, RelationType::ParentOf, None)
    }
    async fn members(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<EntityConnection> {
        self.0
            .related_page(ctx, RelationType::HasMember, None, first, after)
    }
});

entity_kind!(User, "User", "A person.", {
    async fn display_name(&self) -> Option<&str> {
        self.0
            .entity
            .spec
            .pointer("/profile/displayName")
            .and_then(|v| v.as_str())
    }
    async fn email(&self) -> Option<&str> {
        self.0
            .entity
            .spec
            .pointer("/profile/email")
            .and_then(|v| v.as_str())
    }
    async fn member_of(&self, ctx: &Context<'_>) -> Vec<EntityItem> {
        self.0.related_items(ctx, RelationType::MemberOf, None)
    }
});

entity_kind!(
    Resource,
    "Resource",
    "Infrastructure a component needs: a database, a bucket.",
    {
        #[graphql(name = "type")]
        async fn spec_type(&self) -> Option<&str> {
            self.0.entity.spec_type()
        }
        async fn system(&self, ctx: &Context<'_>) -> Option<EntityItem> {
            self.0
                .related_one(ctx, RelationType::PartOf, Some("system"))
        }
    }
);

entity_kind!(
    Template,
    "Template",
    "A scaffolder template that creates new software.",
    {
        #[graphql(name = "type")]
        async fn spec_type(&self) -> Option<&str> {
            self.0.entity.spec_type()
        }
        /// The template's parameter schema(s), as JSON.
        async fn parameters(&self) -> Option<async_graphql::Json<&serde_json::Value>> {
            self.0
                .entity
                .spec
                .get("parameters")
                .map(async_graphql::Json)
        }
        /// Step ids and actions, in order.
        async fn step_actions(&self) -> Vec<String> {
            self.0
                .entity
                .spec
                .get("steps")
                .and_then(|s| s.as_array())
                .map(|steps| {
                    steps
                        .iter()
                        .filter_map(|s| {
                            s.get("action").and_then(|a| a.as_str()).map(str::to_string)
                        })
                        .collect()
                })
                .unwrap_or_default()
        }
    }
);

entity_kind!(
    Location,
    "Location",
    "Where the catalog reads entity definitions from.",
    {
        #[graphql(name = "type")]
        async fn spec_type(&self) -> Option<&str> {
            self.0.entity.spec_type()
        }
        async fn target(&self) -> Option<&str> {
            self.0.entity.spec_str("target")
        }
        async fn targets(&self) -> Vec<&str> {
            self.0
                .entity
                .spec
                .get("targets")
                .and_then(|t| t.as_array())
                .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default()
        }
    }
);

entity_kind!(
    GenericEntity,
    "GenericEntity",
    "An entity of a kind the graph does not type (custom kinds).",
    {}
);

/// Any catalog entity.
// clippy reads the derive's repeated `field(ty = ...)` arguments as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(Interface, Clone)]
#[graphql(
    name = "Entity",
    field(name = "id", ty = "async_graphql::ID"),
    field(
        name = "ref",
        method = "entity_ref",
        ty = "&str",
        desc = "`kind:namespace/name`, lower-case"
    ),
    field(name = "kind", ty = "&str"),
    field(name = "api_version", ty = "&str"),
    field(name = "namespace", ty = "&str"),
    field(name = "name", ty = "&str"),
    field(name = "title", ty = "Option<&str>"),
    field(name = "description", ty = "Option<&str>"),
    field(name = "uid", ty = "Option<&str>"),
    field(name = "etag", ty = "Option<&str>"),
    field(name = "tags", ty = "&[String]"),
    field(name = "labels", ty = "Vec<KeyValue>"),
    field(name = "annotations", ty = "Vec<KeyValue>"),
    field(
        name = "annotation",
        ty = "Option<&str>",
        arg(name = "key", ty = "String")
    ),
    field(name = "links", ty = "Vec<EntityLink>"),
    field(name = "spec", ty = "async_graphql::Json<&serde_json::Value>"),
    field(
        name = "relations",
        ty = "Vec<EntityRelation>",
        arg(name = "relation_type", ty = "Option<String>")
    ),
    field(name = "owner", ty = "Option<EntityItem>"),
    field(
        name = "owns",
        ty = "Result<EntityConnection>",
        arg(name = "first", ty = "Option<i32>"),
        arg(name = "after", ty = "Option<String>")
    ),
    field(name = "part_of", ty = "Vec<EntityItem>"),
    field(
        name = "has_part",
        ty = "Result<EntityConnection>",
        arg(name = "first", ty = "Option<i32>"),
        arg(name = "after", ty = "Option<String>")
    ),
    field(
        name = "depends_on",
        ty = "Result<EntityConnection>",
        arg(name = "first", ty = "Option<i32>"),
        arg(name = "after", ty = "Option<String>")
    ),
    field(
        name = "dependency_of",
        ty = "Result<EntityConnection>",
        arg(name = "first", ty = "Option<i32>"),
        arg(name = "after", ty = "Option<String>")
    ),
    field(name = "argocd_app_names", ty = "&[String]"),
    field(name = "argocd_app_selector", ty = "Option<&str>"),
    field(name = "argocd_project_name", ty = "Option<&str>"),
    field(name = "argocd_instance_name", ty = "Option<&str>"),
    field(name = "argocd_app_namespace", ty = "Option<&str>"),
    field(name = "kubernetes_id", ty = "Option<&str>"),
    field(name = "kubernetes_label_selector", ty = "Option<&str>"),
    field(name = "kubernetes_namespace", ty = "Option<&str>"),
    field(name = "github_slug", ty = "Option<&str>"),
    field(name = "freshness", ty = "Freshness")
)]
pub enum EntityItem {
    Component(Component),
    Api(ApiEntity),
    System(System),
    Domain(Domain),
    Group(Group),
    User(User),
    Resource(Resource),
    Template(Template),
    Location(Location),
    Generic(GenericEntity),
}

impl From<EntityNode> for EntityItem {
    fn from(node: EntityNode) -> Self {
        match node.entity.kind {
            EntityKind::Component => Self::Component(Component(node)),
            EntityKind::Api => Self::Api(ApiEntity(node)),
            EntityKind::System => Self::System(System(node)),
            EntityKind::Domain => Self::Domain(Domain(node)),
            EntityKind::Group => Self::Group(Group(node)),
            EntityKind::User => Self::User(User(node)),
            EntityKind::Resource => Self::Resource(Resource(node)),
            EntityKind::Template => Self::Template(Template(node)),
            EntityKind::Location => Self::Location(Location(node)),
            EntityKind::Other(_) => Self::Generic(GenericEntity(node)),
        }
    }
}

/// A page of entities.
pub struct EntityConnection {
    items: Vec<Arc<Entity>>,
    snapshot: Arc<CatalogSnapshot>,
    total: usize,
    page_info: PageInfo,
}

impl EntityConnection {
    /// Pages through entities already sorted by ref and filtered for visibility.
    pub fn from_sorted(
        entities: impl IntoIterator<Item = Arc<Entity>>,
        snapshot: &Arc<CatalogSnapshot>,
        req: &PageRequest,
    ) -> Self {
        let page = paginate(entities, |e| e.ref_string.as_str(), req);
        Self {
            items: page.items,
            snapshot: snapshot.clone(),
            total: page.total,
            page_info: page.page_info,
        }
    }

    fn node(&self, e: &Arc<Entity>) -> EntityItem {
        EntityItem::from(EntityNode::new(e.clone(), self.snapshot.clone()))
    }
}

pub struct EntityEdge {
    cursor: String,
    node: EntityItem,
}

#[Object]
impl EntityEdge {
    async fn cursor(&self) -> &str {
        &self.cursor
    }
    async fn node(&self) -> &EntityItem {
        &self.node
    }
}

#[Object]
impl EntityConnection {
    /// Matching entities visible to the caller, across all pages.
    async fn total_count(&self) -> usize {
        self.total
    }
    async fn page_info(&self) -> &PageInfo {
        &self.page_info
    }
    async fn nodes(&self) -> Vec<EntityItem> {
        self.items.iter().map(|e| self.node(e)).collect()
    }
    async fn edges(&self) -> Vec<EntityEdge> {
        self.items
            .iter()
            .map(|e| EntityEdge {
                cursor: encode_cursor(&e.ref_string),
                node: self.node(e),
            })
            .collect()
    }
}

/// One entity by its canonical ref, when visible to the caller: from the last poll, or else
/// asked of the catalog (batched, cached) since it may have been registered since. If Backstage
/// is unreachable, the last poll's answer — absent — stands.
pub async fn lookup(ctx: &Context<'_>, key: String) -> Option<EntityItem> {
    let g = gctx(ctx);
    let viewer = Viewer::of(ctx);
    let snapshot = g.state.catalog.snapshot();
    if let Some(e) = snapshot.get(&key) {
        return viewer
            .sees_entity(e)
            .then(|| EntityItem::from(EntityNode::new(e.clone(), snapshot.clone())));
    }
    let loader = ctx.data_opt::<async_graphql::dataloader::DataLoader<CatalogLoader>>()?;
    // Asked of Backstage on demand: the answer is not kept (the next poll brings it to state).
    crate::state::reads::note_max_age(std::time::Duration::ZERO);
    match loader.load_one(key).await {
        Ok(Some(Some(e))) if viewer.sees_entity(&e) => {
            Some(EntityItem::from(EntityNode::new(e, snapshot)))
        }
        Ok(_) => None,
        Err(err) => {
            tracing::debug!(error = %err, "on-demand catalog lookup failed");
            None
        }
    }
}

/// Batches one request's on-demand catalog lookups (entities registered since the last poll)
/// into one `by-refs` call. Zero delay: the default 1 ms wait costs throughput.
pub struct CatalogLoader(pub Arc<crate::sources::backstage::CatalogLookup>);

impl async_graphql::dataloader::Loader<String> for CatalogLoader {
    type Value = Option<Arc<Entity>>;
    type Error = crate::sources::SourceError;

    async fn load(
        &self,
        keys: &[String],
    ) -> std::result::Result<std::collections::HashMap<String, Self::Value>, Self::Error> {
        self.0.load(keys).await
    }
}

pub fn catalog_loader(
    lookup: &Arc<crate::sources::backstage::CatalogLookup>,
) -> async_graphql::dataloader::DataLoader<CatalogLoader> {
    async_graphql::dataloader::DataLoader::new(CatalogLoader(lookup.clone()), super::spawn_in_span)
        .delay(std::time::Duration::ZERO)
}
