//! Field errors handled as the GraphQL spec says ("Handling Execution Errors"): a field that
//! raised an error is `null` in `data`, and when its type is non-null the `null` moves up to the
//! nearest nullable field (or makes `data` itself `null`).
//!
//! async-graphql (7.x) instead leaves an errored field out of its object, and an object whose
//! fields all errored becomes `null` (async-graphql#1449, #1549): a client that reads
//! `application.resourceTree` then finds no key where the schema promises one. This pass puts
//! the spec's answer back, after execution, from the schema's SDL (each field's type and
//! nullability) and the operation's selections (response keys and aliases to fields). It only
//! runs for responses that carry errors with a path: a query's or mutation's answer, and each
//! event of a subscription (`Completion` parses the operation once, on the first such response).

use std::collections::HashMap;

use async_graphql::parser::types::{
    BaseType, ExecutableDocument, Field, OperationType, Selection, SelectionSet, ServiceDocument,
    Type, TypeKind, TypeSystemDefinition,
};
use async_graphql::{PathSegment, Value};

/// Field types by type and field name, from the schema's SDL.
pub struct FieldTypes {
    fields: HashMap<String, HashMap<String, Type>>,
    roots: [String; 3],
}

impl FieldTypes {
    /// From the SDL the schema prints (`Schema::sdl`).
    pub fn from_sdl(sdl: &str) -> Self {
        let mut fields: HashMap<String, HashMap<String, Type>> = HashMap::new();
        let mut roots = [
            "Query".to_string(),
            "Mutation".to_string(),
            "Subscription".to_string(),
        ];
        let doc: ServiceDocument = match async_graphql::parser::parse_schema(sdl) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "the schema's SDL does not parse; field errors stay as executed");
                return Self { fields, roots };
            }
        };
        for def in doc.definitions {
            match def {
                TypeSystemDefinition::Type(t) => {
                    let t = t.node;
                    let defs = match t.kind {
                        TypeKind::Object(o) => o.fields,
                        TypeKind::Interface(i) => i.fields,
                        _ => continue,
                    };
                    let entry = fields.entry(t.name.node.to_string()).or_default();
                    for f in defs {
                        entry.insert(f.node.name.node.to_string(), f.node.ty.node);
                    }
                }
                TypeSystemDefinition::Schema(s) => {
                    let s = s.node;
                    for (i, name) in [s.query, s.mutation, s.subscription]
                        .into_iter()
                        .enumerate()
                    {
                        if let Some(name) = name {
                            roots[i] = name.node.to_string();
                        }
                    }
                }
                TypeSystemDefinition::Directive(_) => {}
            }
        }
        Self { fields, roots }
    }

    /// Puts `null` where an errored field was left out, moving it up past non-null types.
    pub fn complete(
        &self,
        doc: &ExecutableDocument,
        operation_name: Option<&str>,
        response: &mut async_graphql::Response,
    ) {
        let mut paths: Vec<&[PathSegment]> = response
            .errors
            .iter()
            .map(|e| e.path.as_slice())
            .filter(|p| matches!(p.last(), Some(PathSegment::Field(_))))
            .collect();
        if paths.is_empty() {
            return;
        }
        let Some((ty, set)) = operation(doc, operation_name) else {
            return;
        };
        let root = match ty {
            OperationType::Query => &self.roots[0],
            OperationType::Mutation => &self.roots[1],
            OperationType::Subscription => &self.roots[2],
        };
        // Shallow first: a path under one already nulled is done.
        paths.sort_by_key(|p| p.len());
        let mut nulled: Vec<Vec<PathSegment>> = Vec::new();
        if response.data == Value::Null {
            // Every root field errored; the root object is rebuilt from their nulls.
            response.data = Value::Object(Default::default());
        }
        for path in paths {
            // A field that answered and also reported an error (the last known state of a source
            // that is down, marked stale) keeps its answer.
            if nulled.iter().any(|n| path.starts_with(n)) || !left_out(&mut response.data, path) {
                continue;
            }
            let Some(nullable) = self.slots(doc, root, set, path) else {
                continue;
            };
            // The deepest slot on the path that may be null takes the null.
            match nullable.iter().rposition(|n| *n) {
                Some(at) => {
                    let slot = &path[..=at];
                    if set_null(&mut response.data, slot) {
                        nulled.push(slot.to_vec());
                    }
                }
                None => {
                    response.data = Value::Null;
                    return;
                }
            }
        }
    }

    /// Whether each slot along `path` (each field and list item) may be null; `None` when the
    /// path does not follow the operation (introspection, an unknown field).
    fn slots(
        &self,
        doc: &ExecutableDocument,
        root: &str,
        set: &SelectionSet,
        path: &[PathSegment],
    ) -> Option<Vec<bool>> {
        let mut out = Vec::with_capacity(path.len());
        let mut sets: Vec<&SelectionSet> = vec![set];
        let mut parent = root.to_string();
        let mut ty: Option<&Type> = None;
        for segment in path {
            match segment {
                PathSegment::Field(key) => {
                    let found: Vec<(&Field, Option<&str>)> = sets
                        .iter()
                        .flat_map(|s| occurrences(doc, s, key, None))
                        .collect();
                    let (field, cond) = found.iter().find(|(f, cond)| {
                        self.field_type(cond.unwrap_or(&parent), f.name.node.as_str())
                            .is_some()
                    })?;
                    let field_ty =
                        self.field_type(cond.unwrap_or(&parent), field.name.node.as_str())?;
                    out.push(field_ty.nullable);
                    sets = found.iter().map(|(f, _)| &f.selection_set.node).collect();
                    ty = Some(field_ty);
                    parent = named(field_ty).to_string();
                }
                PathSegment::Index(_) => {
                    let item = match &ty?.base {
                        BaseType::List(item) => item.as_ref(),
                        BaseType::Named(_) => return None,
                    };
                    out.push(item.nullable);
                    ty = Some(item);
                }
            }
        }
        Some(out)
    }

    fn field_type(&self, parent: &str, field: &str) -> Option<&Type> {
        self.fields.get(parent)?.get(field)
    }
}

/// Completes the responses of one operation: its document is parsed again only when a
/// response carries a field error, and then once for all of them (a subscription's events).
pub struct Completion {
    types: std::sync::Arc<FieldTypes>,
    query: String,
    operation_name: Option<String>,
    /// `None` until needed; `Some(None)` when the document does not parse (nothing to do).
    doc: Option<Option<ExecutableDocument>>,
}

impl Completion {
    pub fn new(
        types: std::sync::Arc<FieldTypes>,
        query: String,
        operation_name: Option<String>,
    ) -> Self {
        Self {
            types,
            query,
            operation_name,
            doc: None,
        }
    }

    pub fn apply(&mut self, response: &mut async_graphql::Response) {
        if response.errors.iter().all(|e| e.path.is_empty()) {
            return;
        }
        let query = &self.query;
        let doc = self
            .doc
            .get_or_insert_with(|| async_graphql::parser::parse_query(query).ok());
        if let Some(doc) = doc {
            self.types
                .complete(doc, self.operation_name.as_deref(), response);
        }
    }
}

/// The operation's type and selections (by name, or the only one).
fn operation<'a>(
    doc: &'a ExecutableDocument,
    name: Option<&str>,
) -> Option<(OperationType, &'a SelectionSet)> {
    let mut ops = doc.operations.iter();
    let op = match name {
        Some(name) => ops
            .find(|(n, _)| n.is_some_and(|n| n.as_str() == name))
            .map(|(_, op)| op),
        None => {
            let first = ops.next()?;
            ops.next().is_none().then_some(first.1)
        }
    }?;
    Some((op.node.ty, &op.node.selection_set.node))
}

/// Every selection of response key `key` in `set`, through fragments, with the type condition
/// it sits under (if any).
fn occurrences<'a>(
    doc: &'a ExecutableDocument,
    set: &'a SelectionSet,
    key: &str,
    cond: Option<&'a str>,
) -> Vec<(&'a Field, Option<&'a str>)> {
    let mut out = Vec::new();
    for item in &set.items {
        match &item.node {
            Selection::Field(f) if f.node.response_key().node.as_str() == key => {
                out.push((&f.node, cond));
            }
            Selection::Field(_) => {}
            Selection::InlineFragment(f) => {
                let c = f
                    .node
                    .type_condition
                    .as_ref()
                    .map(|c| c.node.on.node.as_str())
                    .or(cond);
                out.extend(occurrences(doc, &f.node.selection_set.node, key, c));
            }
            Selection::FragmentSpread(s) => {
                if let Some(frag) = doc.fragments.get(&s.node.fragment_name.node) {
                    let c = Some(frag.node.type_condition.node.on.node.as_str());
                    out.extend(occurrences(doc, &frag.node.selection_set.node, key, c));
                }
            }
        }
    }
    out
}

/// The named type under any list wrappers.
fn named(ty: &Type) -> &str {
    match &ty.base {
        BaseType::Named(n) => n.as_str(),
        BaseType::List(item) => named(item),
    }
}

/// The value at `path`, if the data has it.
fn walk<'v>(data: &'v mut Value, path: &[PathSegment]) -> Option<&'v mut Value> {
    path.iter()
        .try_fold(data, |at, segment| match (segment, at) {
            (PathSegment::Field(key), Value::Object(map)) => map.get_mut(key.as_str()),
            (PathSegment::Index(i), Value::List(items)) => items.get_mut(*i),
            _ => None,
        })
}

/// Is the field at `path` missing: its key absent from its object, or the object itself made
/// `null` by async-graphql because all its fields errored?
fn left_out(data: &mut Value, path: &[PathSegment]) -> bool {
    let Some((PathSegment::Field(key), up)) = path.split_last() else {
        return false;
    };
    match walk(data, up) {
        Some(Value::Object(map)) => !map.contains_key(key.as_str()),
        Some(Value::Null) => true,
        _ => false,
    }
}

/// Sets the slot at `path` to `null`. An object on the way that async-graphql made `null`
/// because all its fields errored becomes an object again. False when the path is not there.
fn set_null(data: &mut Value, path: &[PathSegment]) -> bool {
    let Some((last, up)) = path.split_last() else {
        *data = Value::Null;
        return true;
    };
    match (last, walk(data, up)) {
        (PathSegment::Field(key), Some(slot @ Value::Null)) => {
            let mut map = async_graphql::indexmap::IndexMap::new();
            map.insert(async_graphql::Name::new(key), Value::Null);
            *slot = Value::Object(map);
            true
        }
        (PathSegment::Field(key), Some(Value::Object(map))) => {
            map.insert(async_graphql::Name::new(key), Value::Null);
            true
        }
        (PathSegment::Index(i), Some(Value::List(items))) => match items.get_mut(*i) {
            Some(v) => {
                *v = Value::Null;
                true
            }
            None => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Result, Schema, SimpleObject};
    use serde_json::json;

    struct Query;

    #[derive(SimpleObject)]
    #[graphql(complex)]
    struct Item {
        id: i32,
    }

    #[async_graphql::ComplexObject]
    impl Item {
        async fn maybe(&self) -> Result<Option<i32>> {
            Err("upstream down".into())
        }
        async fn must(&self) -> Result<i32> {
            Err("upstream down".into())
        }
    }

    #[Object]
    impl Query {
        async fn ok(&self) -> i32 {
            1
        }
        async fn maybe(&self) -> Result<Option<i32>> {
            Err("upstream down".into())
        }
        async fn must(&self) -> Result<i32> {
            Err("upstream down".into())
        }
        async fn item(&self) -> Option<Item> {
            Some(Item { id: 7 })
        }
        async fn items(&self) -> Vec<Item> {
            vec![Item { id: 1 }, Item { id: 2 }]
        }
        async fn strict_items(&self) -> Option<Vec<Item>> {
            Some(vec![Item { id: 1 }])
        }
    }

    /// Executes `query` on the real executor, then completes it.
    async fn run(query: &str) -> serde_json::Value {
        let schema = Schema::new(Query, EmptyMutation, EmptySubscription);
        let types = FieldTypes::from_sdl(&schema.sdl());
        let mut response = schema.execute(query).await;
        let doc = async_graphql::parser::parse_query(query).unwrap();
        types.complete(&doc, None, &mut response);
        serde_json::to_value(&response.data).unwrap()
    }

    #[tokio::test]
    async fn an_errored_nullable_field_is_null_and_its_siblings_stay() {
        assert_eq!(run("{ ok maybe }").await, json!({"ok": 1, "maybe": null}));
        assert_eq!(
            run("{ item { id maybe } }").await,
            json!({"item": {"id": 7, "maybe": null}})
        );
        // Aliases and fragments are followed to the field they name.
        assert_eq!(
            run("{ x: item { ...F } } fragment F on Item { id m: maybe }").await,
            json!({"x": {"id": 7, "m": null}})
        );
        // An object whose only field errored is an object with a null, not null.
        assert_eq!(
            run("{ item { maybe } }").await,
            json!({"item": {"maybe": null}})
        );
        assert_eq!(
            run("{ items { maybe } }").await,
            json!({"items": [{"maybe": null}, {"maybe": null}]})
        );
    }

    struct Stale;

    #[Object]
    impl Stale {
        /// Answers its last known value and reports why it may be old, as the sources do.
        async fn last_known(&self, ctx: &async_graphql::Context<'_>) -> Vec<i32> {
            ctx.add_error(ctx.set_error_path(async_graphql::ServerError::new("source down", None)));
            vec![1, 2]
        }
    }

    #[tokio::test]
    async fn a_field_that_answered_and_reported_an_error_keeps_its_answer() {
        let schema = Schema::new(Stale, EmptyMutation, EmptySubscription);
        let types = FieldTypes::from_sdl(&schema.sdl());
        let query = "{ lastKnown }";
        let mut response = schema.execute(query).await;
        assert_eq!(response.errors.len(), 1);
        let doc = async_graphql::parser::parse_query(query).unwrap();
        types.complete(&doc, None, &mut response);
        assert_eq!(
            serde_json::to_value(&response.data).unwrap(),
            json!({"lastKnown": [1, 2]})
        );
    }

    #[tokio::test]
    async fn an_errored_non_null_field_nulls_the_nearest_nullable_parent() {
        assert_eq!(
            run("{ ok item { id must } }").await,
            json!({"ok": 1, "item": null})
        );
        // Items are non-null in `[Item!]!` and the list is non-null: up to `data`.
        assert_eq!(run("{ ok items { id must } }").await, json!(null));
        // ...but a nullable list takes it.
        assert_eq!(
            run("{ ok strictItems { id must } }").await,
            json!({"ok": 1, "strictItems": null})
        );
        assert_eq!(run("{ ok must }").await, json!(null));
        // Every root field nullable and errored: an object of nulls.
        assert_eq!(run("{ maybe }").await, json!({"maybe": null}));
    }
}
