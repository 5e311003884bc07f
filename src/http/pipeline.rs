//! The one request pipeline. POST, GET, both websocket protocols and SSE hand it the same
//! thing — an operation as JSON fields or URL parameters, the transport, and the credentials
//! they carry — and it does, in this order and nowhere else:
//!
//! 1. reads the operation's fields (types checked: `query` a string, `variables` an object...);
//! 2. authenticates the caller into a `Principal` (`auth::Authenticator`);
//!    A persisted operation named by hash is resolved to its document here (`persisted.rs`).
//! 3. parses the document once, picks the operation, and refuses what the transport may not
//!    run (mutations over GET, subscriptions over plain HTTP);
//! 4. applies the limits the executor does not know (the caller's rate, aliases; depth and
//!    complexity are the schema's, the body size the transport's, since it must stop reading);
//! 5. executes (bounded in time for single results) and gives every error an
//!    `extensions.code`, so that a refusal is a `RequestError` with the same code on every
//!    transport.
//!
//! Transports keep only their framing: media types and status codes (`graphql.rs`), message
//! types and close codes (`ws.rs`), events (`sse.rs`).

use std::sync::Arc;
use std::time::Duration;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, OperationType, Selection,
    SelectionSet,
};
use async_graphql::{Positioned, ServerError, Variables};
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use serde_json::Value;

use super::error::{error_code, RequestError, INTERNAL, TOO_COMPLEX, VALIDATION_FAILED};
use super::metrics::Metrics;
use crate::auth::{Authenticator, Principal};
use crate::graph::AppSchema;
use crate::graph::Limits;
use tracing::Instrument;

/// Where a request came in; decides which operation types it may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    HttpPost,
    HttpGet,
    WebSocket,
    Sse,
}

/// One operation as a client sent it, fields checked but not yet parsed.
#[derive(Debug, Clone)]
pub struct Operation {
    /// Absent when a persisted operation is named by hash (`extensions.persistedQuery`).
    pub query: Option<String>,
    pub operation_name: Option<String>,
    pub variables: Option<Value>,
    pub extensions: Option<Value>,
}

impl Operation {
    /// From a JSON request body, a websocket `subscribe`/`start` payload or an SSE body.
    pub fn from_json(v: Value) -> Result<Self, RequestError> {
        let mut map = match v {
            Value::Object(m) => m,
            Value::Array(_) => return Err(RequestError::BatchNotSupported),
            _ => {
                return Err(RequestError::BadRequest(
                    "the request body must be a JSON object".into(),
                ))
            }
        };
        let query = match map.remove("query") {
            Some(Value::String(q)) => Some(q),
            Some(_) => return Err(bad("`query` must be a string")),
            None => None,
        };
        let operation_name = match map.remove("operationName") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => return Err(bad("`operationName` must be a string or null")),
        };
        let variables = match map.remove("variables") {
            None | Some(Value::Null) => None,
            Some(v @ Value::Object(_)) => Some(v),
            Some(_) => return Err(bad("`variables` must be an object or null")),
        };
        let extensions = match map.remove("extensions") {
            None | Some(Value::Null) => None,
            Some(v @ Value::Object(_)) => Some(v),
            Some(_) => return Err(bad("`extensions` must be an object or null")),
        };
        if query.is_none()
            && extensions
                .as_ref()
                .is_none_or(|e| e.get("persistedQuery").is_none())
        {
            return Err(bad("the request has no `query`"));
        }
        Ok(Self {
            query,
            operation_name,
            variables,
            extensions,
        })
    }

    /// From URL parameters (`GET /graphql`, `GET /graphql/sse`). JSON-valued parameters
    /// (`variables`, `extensions`) are decoded here.
    pub fn from_params(raw: &str) -> Result<Self, RequestError> {
        let mut fields = serde_json::Map::new();
        for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
            match k.as_ref() {
                "query" => {
                    fields.insert("query".into(), Value::String(v.into_owned()));
                }
                "operationName" if !v.is_empty() => {
                    fields.insert("operationName".into(), Value::String(v.into_owned()));
                }
                key @ ("variables" | "extensions") if !v.is_empty() => {
                    let parsed = serde_json::from_str::<Value>(&v)
                        .map_err(|_| bad(format!("`{key}` must be a JSON object")))?;
                    fields.insert(key.to_string(), parsed);
                }
                _ => {}
            }
        }
        let persisted = fields
            .get("extensions")
            .is_some_and(|e| e.get("persistedQuery").is_some());
        if !fields.contains_key("query") && !persisted {
            return Err(bad(
                "a GET request needs a `query` parameter (GraphiQL is at /)",
            ));
        }
        Self::from_json(Value::Object(fields))
    }
}

fn bad(message: impl Into<String>) -> RequestError {
    RequestError::BadRequest(message.into())
}

/// An operation ready to execute, with its caller attached.
pub struct Prepared {
    pub request: async_graphql::Request,
    pub operation_type: OperationType,
    pub principal: Arc<Principal>,
    /// The shared-subscription group it may join (`shared_subscriptions::group_key`), computed
    /// while the parsed document is at hand; `None`: executes on its own.
    pub group: Option<super::response_cache::Key>,
    /// `graphql.operation`: the trace span the execution runs in (upstream calls are children).
    pub span: tracing::Span,
    /// The id errors and the audit trail name this request by.
    pub request_id: String,
}

impl Prepared {
    /// `query`, `mutation` or `subscription` (metrics and logs).
    pub fn label(&self) -> &'static str {
        op_label(Some(self.operation_type))
    }
}

/// The pipeline; one per server, shared by every transport.
pub struct Pipeline {
    pub schema: AppSchema,
    pub limits: Arc<Limits>,
    pub metrics: Arc<Metrics>,
    pub auth: Arc<Authenticator>,
    /// Per-caller budget (`limits.requests_per_minute`); `None`: unlimited.
    pub rate: Option<super::rate_limit::RateLimiter>,
    /// APQ registrations and the trusted-documents manifest.
    pub persisted: super::persisted::PersistedOperations,
    /// Executed query answers (`cache.enabled`); `None`: every query executes.
    pub cache: Option<super::response_cache::ResponseCache>,
    /// Subscriptions executed once per group of identical subscribers.
    pub subscriptions: super::shared_subscriptions::SubscriptionHub,
    /// The schema's field types: errored fields become the spec's nulls (`field_errors.rs`).
    pub field_types: Arc<super::field_errors::FieldTypes>,
}

/// A query's answer over HTTP: the bytes to send, and their `ETag` when cacheable.
pub struct HttpAnswer {
    pub body: bytes::Bytes,
    pub etag: Option<String>,
    /// `query`, `mutation` (metrics).
    pub label: &'static str,
    /// Served from the response cache.
    pub cached: bool,
}

impl Pipeline {
    /// The caller of a request that carries `Authorization: <value>` (or nothing).
    pub async fn principal(
        &self,
        authorization: Option<&str>,
    ) -> Result<Arc<Principal>, RequestError> {
        Ok(self.auth.authenticate(authorization).await?)
    }

    /// [`Self::principal`], or — with `X-Idp-Acting-For` — the user a delegate acts for
    /// (`auth::Authenticator::authenticate_acting`). HTTP only: a delegate's calls are
    /// single requests (queries and mutations), not long-lived streams.
    pub async fn principal_acting(
        &self,
        authorization: Option<&str>,
        acting_for: Option<&str>,
    ) -> Result<Arc<Principal>, RequestError> {
        Ok(self
            .auth
            .authenticate_acting(authorization, acting_for)
            .await?)
    }

    /// Step 3: the caller's request budget (shared by the replicas under `cluster:`).
    async fn admit(&self, principal: &Principal) -> Result<(), RequestError> {
        if let Some(rate) = &self.rate {
            rate.admit(principal.subject.as_deref().unwrap_or("anonymous"))
                .await
                .map_err(RequestError::RateLimited)?;
        }
        Ok(())
    }

    /// Steps 3 and 4: parse, choose, check the transport and the limits, attach the caller.
    pub async fn prepare(
        &self,
        op: Operation,
        principal: Arc<Principal>,
        transport: Transport,
    ) -> Result<Prepared, RequestError> {
        self.admit(&principal).await?;
        let query = self
            .persisted
            .resolve(op.query, op.extensions.as_ref())
            .await?;
        self.prepare_resolved(query, op.operation_name, op.variables, principal, transport)
    }

    /// An HTTP request (POST or GET) end to end, through the response cache: a kept answer is
    /// sent again without parsing or executing anything; a query's fresh answer is kept when
    /// what it read allows. `remote` carries the caller's `traceparent`, if any.
    pub async fn answer_http(
        &self,
        op: Operation,
        principal: Arc<Principal>,
        transport: Transport,
        remote: &http::HeaderMap,
    ) -> Result<HttpAnswer, RequestError> {
        use super::response_cache::{Lookup, ResponseCache};
        self.admit(&principal).await?;
        let query = self
            .persisted
            .resolve(op.query, op.extensions.as_ref())
            .await?;
        let key = self.cache.as_ref().map(|c| {
            let key = ResponseCache::key(
                &query,
                op.operation_name.as_deref(),
                op.variables.as_ref(),
                &principal,
            );
            (c, key)
        });
        if let Some((cache, key)) = key {
            if let Lookup::Hit(e) = cache.get(key, &principal) {
                return Ok(HttpAnswer {
                    body: e.body.clone(),
                    etag: Some(e.etag.clone()),
                    label: "query",
                    cached: true,
                });
            }
        }
        let prepared = self.prepare_resolved(
            query,
            op.operation_name,
            op.variables,
            principal.clone(),
            transport,
        )?;
        crate::telemetry::set_remote_parent(&prepared.span, remote);
        let label = prepared.label();
        let keepable = prepared.operation_type == OperationType::Query;
        let (cache, key) = match key {
            Some(k) if keepable => k,
            _ => {
                let response = self.execute(prepared).await?;
                return Ok(HttpAnswer {
                    body: serialize(&response)?,
                    etag: None,
                    label,
                    cached: false,
                });
            }
        };
        cache.record_miss();
        // The counts before execution: a write during it makes the kept answer a miss.
        let generations = cache.generations();
        let (response, reads) = crate::state::reads::recording(self.execute(prepared)).await;
        let response = response?;
        let body = serialize(&response)?;
        if !response.errors.is_empty() {
            return Ok(HttpAnswer {
                body,
                etag: None,
                label,
                cached: false,
            });
        }
        let entry = cache.insert(key, body, reads, generations, &principal);
        Ok(HttpAnswer {
            body: entry.body.clone(),
            etag: Some(entry.etag.clone()),
            label,
            cached: false,
        })
    }

    /// Step 4 for a document already resolved from its persisted form.
    fn prepare_resolved(
        &self,
        query: String,
        operation_name: Option<String>,
        variables: Option<Value>,
        principal: Arc<Principal>,
        transport: Transport,
    ) -> Result<Prepared, RequestError> {
        let op = ResolvedOperation {
            operation_name,
            variables,
        };
        let doc = async_graphql::parser::parse_query(&query)
            .map_err(|e| RequestError::ParseFailed(e.to_string()))?;
        // An unknown operation name or an ambiguous document is left to the executor, which
        // reports it as a validation error; the transport check needs a known type.
        let operation_type = selected_operation(&doc, op.operation_name.as_deref());
        match (transport, operation_type) {
            (Transport::HttpGet, Some(OperationType::Mutation)) => {
                return Err(RequestError::MutationOverGet)
            }
            (Transport::HttpGet | Transport::HttpPost, Some(OperationType::Subscription)) => {
                return Err(RequestError::SubscriptionOverHttp)
            }
            _ => {}
        }
        if !self.limits.introspection && asks_introspection(&doc) {
            return Err(RequestError::IntrospectionDisabled);
        }
        let found = document_aliases(&doc);
        if found > self.limits.max_aliases {
            return Err(RequestError::TooManyAliases {
                found,
                max: self.limits.max_aliases,
            });
        }
        if expanded_fields(&doc, self.limits.max_fields).is_none() {
            return Err(RequestError::TooManyFields {
                max: self.limits.max_fields,
            });
        }
        let request_id = uuid::Uuid::new_v4().to_string();
        // The name the operation goes by in traces: the requested one, or the document's only one.
        let traced_name = op.operation_name.clone().or_else(|| match &doc.operations {
            DocumentOperations::Multiple(ops) if ops.len() == 1 => {
                ops.keys().next().map(|n| n.to_string())
            }
            _ => None,
        });
        let span = operation_span(
            operation_type,
            traced_name.as_deref(),
            &query,
            &principal,
            &request_id,
        );
        let mut request = async_graphql::Request::new(query)
            .data(principal.clone())
            .data(crate::graph::RequestId(request_id.clone()));
        if let Some(name) = op.operation_name {
            request = request.operation_name(name);
        }
        if let Some(vars) = op.variables {
            request = request.variables(Variables::from_json(vars));
        }
        let group = selected(&doc, request.operation_name.as_deref()).and_then(|selected| {
            super::shared_subscriptions::group_key(
                &selected.node,
                &doc.fragments,
                &request.variables,
                &principal,
            )
        });
        request.set_parsed_query(doc);
        Ok(Prepared {
            request,
            operation_type: operation_type.unwrap_or(OperationType::Query),
            principal,
            group,
            span,
            request_id,
        })
    }

    /// Executes a query or mutation within the request timeout.
    pub async fn execute(&self, p: Prepared) -> Result<async_graphql::Response, RequestError> {
        let timeout = Duration::from_secs_f64(self.limits.request_timeout_secs);
        let mut completion = self.completion(&p);
        let admin = p.principal.grants().admin;
        let mut response = tokio::time::timeout(timeout, self.schema.execute(p.request))
            .instrument(p.span.clone())
            .await
            .map_err(|_| RequestError::Timeout(timeout))?;
        completion.apply(&mut response);
        super::upstream_errors::redact(&mut response, admin, &p.request_id);
        if response.is_err() {
            p.span.record("otel.status_code", "ERROR");
        }
        self.finish(response)
    }

    /// Executes any operation as a stream of results (websockets, SSE). A refusal by the
    /// executor comes back as the error, before anything is streamed.
    pub async fn stream(
        &self,
        p: Prepared,
    ) -> Result<BoxStream<'static, async_graphql::Response>, RequestError> {
        // The span covers setting the operation up (and a refusal); a live subscription's
        // events are not traced one by one.
        let _setup = p.span.enter();
        let mut completion = self.completion(&p);
        let (admin, request_id) = (p.principal.grants().admin, p.request_id.clone());
        let mut results = self
            .schema
            .execute_stream(p.request)
            .map(move |mut r| {
                completion.apply(&mut r);
                super::upstream_errors::redact(&mut r, admin, &request_id);
                r
            })
            .boxed();
        // A refusal (parse, validation, limits) is the stream's first item and is ready at
        // once; a live subscription is not ready until its first event, which must not hold
        // back the response (SSE headers, a websocket's other operations).
        let first = match results.next().now_or_never() {
            None => None,
            Some(None) => return Ok(futures::stream::empty().boxed()),
            Some(Some(first)) => Some(self.finish(first)?),
        };
        let metrics = self.metrics.clone();
        let rest = results.map(move |r| label_errors(&metrics, r, false));
        Ok(futures::stream::iter(first).chain(rest).boxed())
    }

    /// Like `stream`, but a subscription that many callers share is executed once for all of
    /// them (`shared_subscriptions`); items are serialized payloads.
    pub async fn subscribe(
        &self,
        p: Prepared,
    ) -> Result<BoxStream<'static, super::shared_subscriptions::Item>, RequestError> {
        let key = p.group;
        self.subscriptions.subscribe(key, self.stream(p)).await
    }

    /// Puts `null` where async-graphql left an errored field out (`field_errors.rs`).
    fn completion(&self, p: &Prepared) -> super::field_errors::Completion {
        super::field_errors::Completion::new(
            self.field_types.clone(),
            p.request.query.clone(),
            p.request.operation_name.clone(),
        )
    }

    /// Codes every error; a response that is only pathless errors is a refusal.
    fn finish(
        &self,
        response: async_graphql::Response,
    ) -> Result<async_graphql::Response, RequestError> {
        let refused = response.data == async_graphql::Value::Null
            && !response.errors.is_empty()
            && response.errors.iter().all(|e| e.path.is_empty());
        let response = label_errors(&self.metrics, response, refused);
        if refused {
            return Err(RequestError::Rejected(response.errors));
        }
        Ok(response)
    }
}

/// Gives every error a code (counted in metrics); uncoded field errors are internal.
fn label_errors(
    metrics: &Metrics,
    mut response: async_graphql::Response,
    refused: bool,
) -> async_graphql::Response {
    for err in &mut response.errors {
        ensure_code(err, refused);
        if let Some(code) = error_code(err) {
            metrics.error(code);
            if code == INTERNAL {
                tracing::warn!(message = %err.message, "resolver error without a code");
            }
        }
    }
    response
}

fn ensure_code(err: &mut ServerError, refused: bool) {
    if error_code(err).is_some() {
        return;
    }
    let code = if err.message.starts_with("Query is nested too deep")
        || err.message.starts_with("Query is too complex")
        || err.message.contains("too many directives")
        || err.message.contains("recursion depth")
    {
        TOO_COMPLEX
    } else if refused {
        VALIDATION_FAILED
    } else {
        INTERNAL
    };
    err.extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
}

fn selected_operation(doc: &ExecutableDocument, name: Option<&str>) -> Option<OperationType> {
    selected(doc, name).map(|op| op.node.ty)
}

/// The operation the request runs: the named one, or the document's only one.
fn selected<'d>(
    doc: &'d ExecutableDocument,
    name: Option<&str>,
) -> Option<&'d Positioned<OperationDefinition>> {
    match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(ops), Some(name)) => ops
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, op)| op),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        _ => None,
    }
}

/// Does the document select `__schema` or `__type` (at the root, directly or in a fragment)?
fn asks_introspection(doc: &ExecutableDocument) -> bool {
    fn top(set: &SelectionSet) -> bool {
        set.items.iter().any(|sel| match &sel.node {
            Selection::Field(f) => matches!(f.node.name.node.as_str(), "__schema" | "__type"),
            Selection::InlineFragment(f) => top(&f.node.selection_set.node),
            Selection::FragmentSpread(_) => false,
        })
    }
    doc.operations
        .iter()
        .any(|(_, op)| top(&op.node.selection_set.node))
        || doc
            .fragments
            .values()
            .any(|f| top(&f.node.selection_set.node))
}

/// Fields of the document with every fragment spread expanded, or `None` past `max`. Each
/// fragment's size is computed once (memoized), so this is linear in the document however
/// often fragments spread each other; a spread of an unknown or cyclic fragment counts 0 here
/// (validation reports it).
fn expanded_fields(doc: &ExecutableDocument, max: usize) -> Option<usize> {
    use std::collections::HashMap;
    fn size<'a>(
        doc: &'a ExecutableDocument,
        set: &'a SelectionSet,
        memo: &mut HashMap<&'a str, Option<usize>>,
        max: usize,
    ) -> Option<usize> {
        let mut n: usize = 0;
        for sel in &set.items {
            let add = match &sel.node {
                Selection::Field(f) => 1 + size(doc, &f.node.selection_set.node, memo, max)?,
                Selection::InlineFragment(f) => size(doc, &f.node.selection_set.node, memo, max)?,
                Selection::FragmentSpread(s) => {
                    let name = s.node.fragment_name.node.as_str();
                    match memo.get(name) {
                        Some(known) => (*known)?,
                        None => match doc.fragments.get(&s.node.fragment_name.node) {
                            None => 0,
                            Some(f) => {
                                // In progress: a cycle counts 0 (validation refuses it).
                                memo.insert(name, Some(0));
                                let v = size(doc, &f.node.selection_set.node, memo, max);
                                memo.insert(name, v);
                                v?
                            }
                        },
                    }
                }
            };
            n = n.checked_add(add).filter(|n| *n <= max)?;
        }
        Some(n)
    }
    let mut memo = HashMap::new();
    let mut total: usize = 0;
    for (_, op) in doc.operations.iter() {
        total = total
            .checked_add(size(doc, &op.node.selection_set.node, &mut memo, max)?)
            .filter(|n| *n <= max)?;
    }
    Some(total)
}

fn count_aliases(set: &SelectionSet) -> usize {
    set.items
        .iter()
        .map(|sel| match &sel.node {
            Selection::Field(f) => {
                usize::from(f.node.alias.is_some()) + count_aliases(&f.node.selection_set.node)
            }
            Selection::InlineFragment(f) => count_aliases(&f.node.selection_set.node),
            Selection::FragmentSpread(_) => 0,
        })
        .sum()
}

fn document_aliases(doc: &ExecutableDocument) -> usize {
    let ops: usize = doc
        .operations
        .iter()
        .map(|(_, op)| count_aliases(&op.node.selection_set.node))
        .sum();
    let frags: usize = doc
        .fragments
        .values()
        .map(|f| count_aliases(&f.node.selection_set.node))
        .sum();
    ops + frags
}

pub fn op_label(ty: Option<OperationType>) -> &'static str {
    match ty {
        Some(OperationType::Query) => "query",
        Some(OperationType::Mutation) => "mutation",
        Some(OperationType::Subscription) => "subscription",
        None => "none",
    }
}

/// The operation fields `prepare_resolved` still needs.
struct ResolvedOperation {
    operation_name: Option<String>,
    variables: Option<Value>,
}

fn serialize(response: &async_graphql::Response) -> Result<bytes::Bytes, RequestError> {
    serde_json::to_vec(response)
        .map(bytes::Bytes::from)
        .map_err(|e| {
            // The cause goes to the log; the caller sees only INTERNAL_SERVER_ERROR.
            tracing::error!(error = %e, "cannot serialize a GraphQL response");
            RequestError::Internal(e.to_string())
        })
}

/// The trace span of one operation: `query ServicePage` and the like, with the document's hash
/// (the APQ/trusted-document id, so traces group by operation) and the caller's subject.
fn operation_span(
    operation_type: Option<OperationType>,
    name: Option<&str>,
    query: &str,
    principal: &Principal,
    request_id: &str,
) -> tracing::Span {
    let kind = op_label(operation_type);
    let span = tracing::info_span!(
        "graphql.operation",
        otel.name = %format!("{kind} {}", name.unwrap_or("anonymous")),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        graphql.operation.type = %kind,
        graphql.operation.name = name.unwrap_or(""),
        graphql.document.hash = tracing::field::Empty,
        enduser.id = principal.subject.as_deref().unwrap_or("anonymous"),
        request.id = %request_id,
    );
    if !span.is_disabled() {
        span.record(
            "graphql.document.hash",
            super::persisted::sha256_hex(query).as_str(),
        );
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_counted_in_operations_and_fragments() {
        let doc = async_graphql::parser::parse_query(
            "query { a: x { b: y } ...F } fragment F on Q { c: z }",
        )
        .unwrap();
        assert_eq!(document_aliases(&doc), 3);
    }

    #[test]
    fn fragment_bombs_are_measured_in_linear_time() {
        let parse = |q: &str| async_graphql::parser::parse_query(q).unwrap();
        let doc = parse("{ a { b } ...F } fragment F on Q { c ...G ...G } fragment G on Q { d }");
        assert_eq!(expanded_fields(&doc, 100), Some(5));
        assert_eq!(expanded_fields(&doc, 4), None);
        // 2^60 fields if expanded: refused at once, not after 2^60 steps.
        let mut bomb = String::from("{ ...F0 }");
        for i in 0..60 {
            bomb.push_str(&format!(
                " fragment F{i} on Q {{ ...F{} ...F{} }}",
                i + 1,
                i + 1
            ));
        }
        bomb.push_str(" fragment F60 on Q { x }");
        assert_eq!(expanded_fields(&parse(&bomb), 5_000), None);
        // Cycles and unknown fragments are left to validation.
        let cyclic = parse("{ ...A ...Nope } fragment A on Q { x ...B } fragment B on Q { ...A }");
        assert_eq!(expanded_fields(&cyclic, 100), Some(1));
    }

    #[test]
    fn operation_fields_are_type_checked_the_same_from_json_and_params() {
        assert!(matches!(
            Operation::from_json(serde_json::json!([])),
            Err(RequestError::BatchNotSupported)
        ));
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"query": 5}),
            serde_json::json!({"query": "{a}", "variables": [1]}),
            serde_json::json!({"query": "{a}", "operationName": 7}),
        ] {
            assert_eq!(Operation::from_json(bad).unwrap_err().code(), "BAD_REQUEST");
        }
        assert_eq!(
            Operation::from_params("query=%7Ba%7D&variables=%5B1%5D")
                .unwrap_err()
                .code(),
            "BAD_REQUEST"
        );
        let op = Operation::from_params("query=%7Ba%7D&variables=%7B%22x%22%3A1%7D").unwrap();
        assert_eq!(op.query.as_deref(), Some("{a}"));
        assert_eq!(op.variables, Some(serde_json::json!({"x": 1})));
    }
}
