//! Shared subscription execution: subscribers of the same subscription (the parsed operation
//! with its arguments resolved) who may see the same (the response cache's visibility class) share one execution.
//! Per event the selection is executed and serialized once, and the same bytes go to every
//! member of the group; a thousand dashboards watching `applicationEvents` cost one.
//!
//! Not shared, because the answer is the subscriber's own: a subscription resuming from a
//! cursor (`after`, a replay) or asking for `initial` events (a snapshot at its start), and one
//! that shows who asks (`viewer`). Which is which is read from the parsed operation with its
//! arguments resolved (`group_key`), so a cursor counts in whatever form it is given.
//!
//! A member that falls behind the group (its socket is slower than the events) is not silently
//! skipped ahead: it gets a `RESYNC_REQUIRED` error and its subscription ends, so it
//! resubscribes from its last cursor (privately, with replay).
//!
//! The pipeline calls this module (it computes the key while it holds the parsed document);
//! this module never calls the pipeline back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use parking_lot::Mutex;
use tokio::sync::broadcast;

use async_graphql::parser::types::{
    Directive, FragmentDefinition, OperationDefinition, OperationType, Selection, SelectionSet,
};
use async_graphql::{Name, Positioned, Value as ConstValue, Variables};

use super::error::RequestError;
use super::response_cache::{Key, ResponseCache};
use crate::auth::Principal;

/// One item for a subscriber.
pub enum Item {
    /// A serialized GraphQL response (the `payload` of a `next`/`data` message).
    Payload(Bytes),
    /// The subscriber fell behind its group: tell it to resubscribe from its cursor.
    Lagged,
}

#[derive(Clone)]
enum Msg {
    Payload(Bytes),
    End,
}

struct Group {
    tx: broadcast::Sender<Msg>,
    /// The source stream ended: do not join.
    ended: Arc<AtomicBool>,
    pump: tokio::task::AbortHandle,
}

impl Drop for Group {
    fn drop(&mut self) {
        // The last member left: stop executing.
        self.pump.abort();
    }
}

pub struct SubscriptionHub {
    /// Events a member may lag behind its group before it must resync (`events.capacity`,
    /// as for a subscriber of its own).
    buffer: usize,
    /// Live groups by key; an entry whose group is gone is replaced on the next start.
    groups: Mutex<HashMap<Key, Weak<Group>>>,
    /// Executions started (one per group).
    pub groups_started: AtomicU64,
    /// Subscribers that joined a running group instead of executing.
    pub joined: AtomicU64,
}

fn serialize(r: &async_graphql::Response) -> Bytes {
    serde_json::to_vec(r)
        .map(Bytes::from)
        .unwrap_or_else(|_| Bytes::from_static(b"{\"errors\":[{\"message\":\"internal error\",\"extensions\":{\"code\":\"INTERNAL_SERVER_ERROR\"}}]}"))
}

/// The fragments of the document an operation comes from, by name.
pub type Fragments = HashMap<Name, Positioned<FragmentDefinition>>;

/// The group key of a subscription that may be shared, or `None` when its answer is the
/// subscriber's own.
///
/// Decided on the parsed operation with every argument resolved (variables substituted, their
/// defaults applied), never on the text: a cursor given inline (`after: "…"`), through a
/// variable of any name, or as a variable's default is the same cursor, and makes the
/// subscription private. The key is the operation in a canonical form (fragments inlined,
/// arguments resolved) and the caller's visibility class, so subscribers asking the same thing
/// in different words share one execution.
pub fn group_key(
    op: &OperationDefinition,
    fragments: &Fragments,
    variables: &Variables,
    principal: &Principal,
) -> Option<Key> {
    if op.ty != OperationType::Subscription {
        return None;
    }
    let resolve = Resolver { op, variables };
    let mut canonical = String::new();
    let mut visiting = Vec::new();
    write_set(
        &op.selection_set.node,
        fragments,
        &resolve,
        &mut visiting,
        0,
        &mut canonical,
    )?;
    Some(ResponseCache::key(&canonical, None, None, principal))
}

/// Resolves an argument's value against the request's variables and the operation's defaults.
struct Resolver<'a> {
    op: &'a OperationDefinition,
    variables: &'a Variables,
}

impl Resolver<'_> {
    /// A variable's value as the executor will see it: given, else its default, else null;
    /// `Err` for a variable the operation does not declare (the executor refuses it; sharing
    /// does not matter then). Argument values resolve through it with `into_const_with`.
    fn variable(&self, name: Name) -> Result<ConstValue, ()> {
        if let Some(given) = self.variables.get(&name) {
            return Ok(given.clone());
        }
        self.op
            .variable_definitions
            .iter()
            .find(|d| d.node.name.node == name)
            .map(|d| {
                d.node
                    .default_value
                    .as_ref()
                    .map_or(ConstValue::Null, |d| d.node.clone())
            })
            .ok_or(())
    }
}

/// Writes a selection set in canonical form; `None` if it must not be shared (it resumes, asks
/// for a snapshot, or shows its viewer) or cannot be read (unknown or cyclic fragments, left
/// to validation).
fn write_set(
    set: &SelectionSet,
    fragments: &Fragments,
    resolve: &Resolver<'_>,
    visiting: &mut Vec<Name>,
    depth: usize,
    out: &mut String,
) -> Option<()> {
    use std::fmt::Write;
    out.push('{');
    for item in &set.items {
        match &item.node {
            Selection::Field(f) => {
                let f = &f.node;
                // Who asks is in the answer: never the same bytes for two callers.
                if f.name.node == "viewer" {
                    return None;
                }
                if let Some(alias) = &f.alias {
                    let _ = write!(out, "{}:", alias.node);
                }
                out.push_str(&f.name.node);
                out.push('(');
                for (name, value) in &f.arguments {
                    let value = value
                        .node
                        .clone()
                        .into_const_with(|n| resolve.variable(n))
                        .ok()?;
                    // At the root, a cursor replays and `initial` snapshots: the subscriber's own.
                    if depth == 0 {
                        match (name.node.as_str(), &value) {
                            ("after", v) if *v != ConstValue::Null => return None,
                            ("initial", ConstValue::Boolean(true)) => return None,
                            _ => {}
                        }
                    }
                    let _ = write!(out, "{}:{value},", name.node);
                }
                out.push(')');
                write_directives(&f.directives, resolve, out)?;
                write_set(
                    &f.selection_set.node,
                    fragments,
                    resolve,
                    visiting,
                    depth + 1,
                    out,
                )?;
            }
            Selection::InlineFragment(f) => {
                let f = &f.node;
                out.push_str("...");
                if let Some(on) = &f.type_condition {
                    let _ = write!(out, "on {}", on.node.on.node);
                }
                write_directives(&f.directives, resolve, out)?;
                write_set(
                    &f.selection_set.node,
                    fragments,
                    resolve,
                    visiting,
                    depth,
                    out,
                )?;
            }
            Selection::FragmentSpread(s) => {
                let s = &s.node;
                let name = &s.fragment_name.node;
                if visiting.contains(name) {
                    return None;
                }
                let def = &fragments.get(name)?.node;
                let _ = write!(out, "...on {}", def.type_condition.node.on.node);
                write_directives(&s.directives, resolve, out)?;
                visiting.push(name.clone());
                write_set(
                    &def.selection_set.node,
                    fragments,
                    resolve,
                    visiting,
                    depth,
                    out,
                )?;
                visiting.pop();
            }
        }
        out.push(' ');
    }
    out.push('}');
    Some(())
}

fn write_directives(
    directives: &[Positioned<Directive>],
    resolve: &Resolver<'_>,
    out: &mut String,
) -> Option<()> {
    use std::fmt::Write;
    for d in directives {
        let _ = write!(out, "@{}(", d.node.name.node);
        for (name, value) in &d.node.arguments {
            let value = value
                .node
                .clone()
                .into_const_with(|n| resolve.variable(n))
                .ok()?;
            let _ = write!(out, "{}:{value},", name.node);
        }
        out.push(')');
    }
    Some(())
}

impl SubscriptionHub {
    pub fn new(buffer: usize) -> Self {
        Self {
            buffer: buffer.max(1),
            groups: Default::default(),
            groups_started: AtomicU64::new(0),
            joined: AtomicU64::new(0),
        }
    }

    /// Subscribes: joins the running group of `key` (from `group_key`; `None`: on its own), or
    /// starts it (through `start`, the pipeline's own stream, which refuses what it would
    /// refuse anyway).
    pub async fn subscribe<Fut>(
        &self,
        key: Option<Key>,
        start: Fut,
    ) -> Result<BoxStream<'static, Item>, RequestError>
    where
        Fut: std::future::Future<
            Output = Result<BoxStream<'static, async_graphql::Response>, RequestError>,
        >,
    {
        let Some(key) = key else {
            let results = start.await?;
            return Ok(results.map(|r| Item::Payload(serialize(&r))).boxed());
        };
        let running = self
            .groups
            .lock()
            .get(&key)
            .and_then(Weak::upgrade)
            .filter(|g| !g.ended.load(Ordering::Acquire));
        if let Some(group) = running {
            self.joined.fetch_add(1, Ordering::Relaxed);
            let rx = group.tx.subscribe();
            return Ok(member(group, rx));
        }
        let results = start.await?;
        let (tx, rx) = broadcast::channel(self.buffer);
        let ended = Arc::new(AtomicBool::new(false));
        let pump = tokio::spawn({
            let (tx, ended) = (tx.clone(), ended.clone());
            async move {
                let mut results = results;
                while let Some(r) = results.next().await {
                    // No receiver right now is fine: members come and go.
                    let _ = tx.send(Msg::Payload(serialize(&r)));
                }
                ended.store(true, Ordering::Release);
                let _ = tx.send(Msg::End);
            }
        });
        let group = Arc::new(Group {
            tx,
            ended,
            pump: pump.abort_handle(),
        });
        self.groups_started.fetch_add(1, Ordering::Relaxed);
        {
            let mut groups = self.groups.lock();
            groups.retain(|_, g| g.strong_count() > 0);
            groups.insert(key, Arc::downgrade(&group));
        }
        Ok(member(group, rx))
    }

    /// Groups running now.
    pub fn groups(&self) -> usize {
        self.groups
            .lock()
            .values()
            .filter(|g| g.strong_count() > 0)
            .count()
    }
}

/// One member's view of its group: the group lives while it is held.
fn member(group: Arc<Group>, rx: broadcast::Receiver<Msg>) -> BoxStream<'static, Item> {
    futures::stream::unfold(Some((group, rx)), |state| async move {
        let (group, mut rx) = state?;
        match rx.recv().await {
            Ok(Msg::Payload(b)) => Some((Item::Payload(b), Some((group, rx)))),
            Ok(Msg::End) | Err(broadcast::error::RecvError::Closed) => None,
            Err(broadcast::error::RecvError::Lagged(_)) => Some((Item::Lagged, None)),
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key of `query` with `variables`, as the pipeline computes it.
    fn key(query: &str, variables: serde_json::Value) -> Option<Key> {
        let doc = async_graphql::parser::parse_query(query).unwrap();
        let op = match &doc.operations {
            async_graphql::parser::types::DocumentOperations::Single(op) => op,
            async_graphql::parser::types::DocumentOperations::Multiple(ops) => {
                ops.values().next().unwrap()
            }
        };
        group_key(
            &op.node,
            &doc.fragments,
            &Variables::from_json(variables),
            &Principal::unrestricted(),
        )
    }

    const LIVE: &str = r#"subscription { applicationEvents(filter: {names: ["a"]}) { cursor } }"#;

    #[test]
    fn a_cursor_in_any_form_makes_a_subscription_private() {
        let none = serde_json::json!({});
        for (query, variables) in [
            (
                r#"subscription { applicationEvents(after: "e-1") { cursor } }"#,
                none.clone(),
            ),
            (
                "subscription S($cursor: String) { applicationEvents(after: $cursor) { cursor } }",
                serde_json::json!({"cursor": "e-1"}),
            ),
            (
                r#"subscription S($c: String = "e-1") { applicationEvents(after: $c) { cursor } }"#,
                none.clone(),
            ),
            (
                r#"subscription { ...F } fragment F on SubscriptionRoot { applicationEvents(after: "e-1") { cursor } }"#,
                none.clone(),
            ),
            (
                "subscription S($i: Boolean) { applicationEvents(initial: $i) { cursor } }",
                serde_json::json!({"i": true}),
            ),
            (
                "subscription { applicationEvents { ...V } } fragment V on ApplicationEvent { viewer { subject } }",
                none.clone(),
            ),
        ] {
            assert_eq!(key(query, variables), None, "{query}");
        }
    }

    #[test]
    fn the_same_subscription_in_other_words_shares_one_key() {
        let live = key(LIVE, serde_json::json!({})).expect("shareable");
        for (query, variables) in [
            (
                "subscription S($n: [String!]) { applicationEvents(filter: {names: $n}) { cursor } }",
                serde_json::json!({"n": ["a"]}),
            ),
            (
                r#"subscription S($c: String) {
                     applicationEvents(filter: {names: ["a"]}, after: $c) { cursor } }"#,
                serde_json::json!({"c": null}),
            ),
            (
                r#"subscription { applicationEvents(filter: {names: ["a"]}, initial: false) { ...F } } fragment F on ApplicationEvent { cursor }"#,
                serde_json::json!({}),
            ),

        ] {
            let k = key(query, variables);
            // A null cursor and `initial: false` are arguments the others do not write: their
            // own group (the key is the written operation), still shared.
            if query.contains("initial") || query.contains("after") {
                assert!(k.is_some() && k != Some(live), "{query}");
            } else {
                assert_eq!(k, Some(live), "{query}");
            }
        }
        let other = key(
            r#"subscription { applicationEvents(filter: {names: ["b"]}) { cursor } }"#,
            serde_json::json!({}),
        );
        assert!(other.is_some() && other != Some(live));
    }
}
