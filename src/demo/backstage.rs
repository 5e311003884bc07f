//! A simulated Backstage catalog backend, faithful to the real one's wire behaviour
//! (`plugins/catalog-backend` router; compare `tests/peers/backstage`, the real thing):
//!
//! - `GET /api/catalog/entities/by-query`: `filter` (repeatable: OR of params, AND of
//!   comma-separated `key=value` inside one, a key alone means "exists", case-insensitive),
//!   `orderField=field,asc|desc`, `fullTextFilterTerm`/`fullTextFilterFields`, `fields`, `limit`
//!   (default 20), `cursor` (opaque base64 JSON that carries the filter, order and position;
//!   when given, the request's own filter/order/full-text parameters are ignored). Answers
//!   `{items,totalItems,pageInfo:{nextCursor?,prevCursor?}}`, default order by uid.
//! - `POST /api/catalog/entities/by-refs`: one slot per ref, in request order, `null` if unknown.
//! - `GET /api/catalog/entities/by-name/{kind}/{namespace}/{name}`, `GET /api/catalog/entity-facets`.
//! - Bearer token on every call; 401/400/404 with Backstage's error body.
//! - Entities get `metadata.uid`, `metadata.etag` (changes with content) and relations in both
//!   directions computed from `spec`, as the catalog's processors and stitcher do.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use parking_lot::RwLock;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::faults::{self, Faults};
use crate::domain::EntityRef;

/// What a template run does outside the catalog (arguments: service name, owner).
pub type CreatedHook = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// One stored entity: its definition as registered plus what the stitcher computed.
struct Stored {
    uid: String,
    definition: Value,
    /// Final entity as served (uid, etag, relations filled in).
    stitched: Value,
    /// Flattened `path → values` for filters and facets, original case.
    flat: HashMap<String, Vec<String>>,
}

#[derive(Default)]
struct CatalogData {
    /// Keyed by canonical ref.
    by_ref: BTreeMap<String, Stored>,
    /// Refs in uid order: the default listing order.
    uid_order: Vec<String>,
}

struct Inner {
    token: String,
    data: RwLock<CatalogData>,
    location: String,
    tasks: parking_lot::Mutex<HashMap<String, SimTask>>,
    /// Called when a template run publishes a repo and registers a component: the demo world
    /// creates the repo in git and the ArgoCD app (arguments: name, owner).
    on_created: RwLock<Option<CreatedHook>>,
    step_delay: std::time::Duration,
    /// The auth backend's side: keys, discovery, userinfo, user tokens.
    identity: super::identity::Identity,
}

/// A scaffolder task and its events so far.
struct SimTask {
    spec: Value,
    status: &'static str,
    created_at: String,
    events: Vec<Value>,
    changed: tokio::sync::watch::Sender<usize>,
}

/// Handle to a running simulation. Cloning shares it.
#[derive(Clone)]
pub struct BackstageSim {
    addr: SocketAddr,
    pub faults: Arc<Faults>,
    inner: Arc<Inner>,
}

fn canonical_ref(def: &Value) -> Option<String> {
    let kind = def.get("kind")?.as_str()?;
    let name = def.pointer("/metadata/name")?.as_str()?;
    let ns = def
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    EntityRef::parse(&format!("{kind}:{ns}/{name}"))
        .ok()
        .map(|r| r.to_string())
}

impl BackstageSim {
    pub async fn start(
        definitions: Vec<Value>,
        token: &str,
        shutdown: CancellationToken,
    ) -> std::io::Result<Self> {
        Self::start_with(
            definitions,
            token,
            std::time::Duration::from_millis(300),
            shutdown,
        )
        .await
    }

    /// `step_delay`: how long each scaffolder step takes.
    pub async fn start_with(
        definitions: Vec<Value>,
        token: &str,
        step_delay: std::time::Duration,
        shutdown: CancellationToken,
    ) -> std::io::Result<Self> {
        let faults = Arc::new(Faults::default());
        let inner = Arc::new(Inner {
            token: token.to_string(),
            data: RwLock::new(CatalogData::default()),
            location: "url:https://github.com/yourcompany/idp/blob/main/catalog/all.yaml".into(),
            tasks: Default::default(),
            on_created: RwLock::new(None),
            step_delay,
            identity: super::identity::Identity::new(),
        });
        {
            let mut data = inner.data.write();
            for def in definitions {
                if let Some(r) = canonical_ref(&def) {
                    data.by_ref.insert(
                        r,
                        Stored {
                            uid: uuid::Uuid::new_v4().to_string(),
                            definition: def,
                            stitched: Value::Null,
                            flat: HashMap::new(),
                        },
                    );
                }
            }
            stitch(&mut data, &inner.location);
        }
        let app = Router::new()
            .route("/api/catalog/entities", get(list_entities))
            .route("/api/catalog/entities/by-query", get(by_query))
            .route("/api/catalog/entities/by-refs", post(by_refs))
            .route(
                "/api/catalog/entities/by-name/{kind}/{namespace}/{name}",
                get(by_name),
            )
            .route("/api/catalog/entity-facets", get(facets))
            .route(
                "/api/auth/.well-known/openid-configuration",
                get(|State(inner): State<Arc<Inner>>| async move {
                    Json(inner.identity.discovery())
                }),
            )
            .route(
                "/api/auth/.well-known/jwks.json",
                get(|State(inner): State<Arc<Inner>>| async move { Json(inner.identity.jwks()) }),
            )
            .route("/api/auth/v1/userinfo", get(userinfo))
            .route("/api/scaffolder/v2/tasks", post(create_task))
            .route("/api/scaffolder/v2/tasks/{id}", get(get_task))
            .route(
                "/api/scaffolder/v2/tasks/{id}/eventstream",
                get(task_events),
            )
            .fallback(not_found)
            .with_state(inner.clone());
        let addr = faults::serve(app, faults.clone(), shutdown).await?;
        inner.identity.set_base(&format!("http://{addr}"));
        Ok(Self {
            addr,
            faults,
            inner,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A Backstage user token for `user_ref` (`user:default/alice`), as the auth backend's
    /// sign-in would issue it, valid for `ttl_secs`.
    pub fn user_token(&self, user_ref: &str, ttl_secs: i64) -> String {
        self.inner.identity.mint(user_ref, ttl_secs)
    }

    /// Registers or replaces an entity from its definition (`catalog-info.yaml` as JSON).
    /// Returns its canonical ref.
    pub fn upsert(&self, definition: Value) -> Option<String> {
        let r = canonical_ref(&definition)?;
        let mut data = self.inner.data.write();
        let uid = data
            .by_ref
            .get(&r)
            .map(|s| s.uid.clone())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        data.by_ref.insert(
            r.clone(),
            Stored {
                uid,
                definition,
                stitched: Value::Null,
                flat: HashMap::new(),
            },
        );
        stitch(&mut data, &self.inner.location);
        Some(r)
    }

    /// Unregisters an entity. True if it existed.
    pub fn remove(&self, entity_ref: &str) -> bool {
        let mut data = self.inner.data.write();
        let existed = data.by_ref.remove(entity_ref).is_some();
        if existed {
            stitch(&mut data, &self.inner.location);
        }
        existed
    }

    /// The definition of an entity, to edit and `upsert` back.
    pub fn definition(&self, entity_ref: &str) -> Option<Value> {
        self.inner
            .data
            .read()
            .by_ref
            .get(entity_ref)
            .map(|s| s.definition.clone())
    }

    /// Installs what a template run does beyond the catalog (repo, ArgoCD app).
    pub fn on_created(&self, f: CreatedHook) {
        *self.inner.on_created.write() = Some(f);
    }

    /// Every entity as served, in ref order.
    pub fn entities(&self) -> Vec<Value> {
        self.inner
            .data
            .read()
            .by_ref
            .values()
            .map(|s| s.stitched.clone())
            .collect()
    }
}

const INVERSES: [(&str, &str); 7] = [
    ("ownedBy", "ownerOf"),
    ("partOf", "hasPart"),
    ("dependsOn", "dependencyOf"),
    ("providesApi", "apiProvidedBy"),
    ("consumesApi", "apiConsumedBy"),
    ("memberOf", "hasMember"),
    ("childOf", "parentOf"),
];

fn inverse(t: &str) -> Option<&'static str> {
    INVERSES.iter().find_map(|(a, b)| {
        if *a == t {
            Some(*b)
        } else if *b == t {
            Some(*a)
        } else {
            None
        }
    })
}

/// Relations the catalog's built-in processor emits for one entity's spec.
fn spec_relations(kind: &str, namespace: &str, spec: &Value) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let mut one = |field: &str, rel: &'static str, default_kind: &str| {
        let values: Vec<&str> = match spec.get(field) {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        for v in values {
            if let Ok(r) = EntityRef::parse_with_defaults(v, Some(default_kind), namespace) {
                out.push((rel, r.to_string()));
            }
        }
    };
    one("owner", "ownedBy", "group");
    match kind.to_ascii_lowercase().as_str() {
        "component" => {
            one("system", "partOf", "system");
            one("subcomponentOf", "partOf", "component");
            one("providesApis", "providesApi", "api");
            one("consumesApis", "consumesApi", "api");
            one("dependsOn", "dependsOn", "component");
            one("dependencyOf", "dependencyOf", "component");
        }
        "api" => one("system", "partOf", "system"),
        "resource" => {
            one("system", "partOf", "system");
            one("dependsOn", "dependsOn", "component");
            one("dependencyOf", "dependencyOf", "component");
        }
        "system" => one("domain", "partOf", "domain"),
        "domain" => one("subdomainOf", "partOf", "domain"),
        "group" => {
            one("parent", "childOf", "group");
            one("children", "parentOf", "group");
            one("members", "hasMember", "user");
        }
        "user" => one("memberOf", "memberOf", "group"),
        _ => {}
    }
    out
}

/// Recomputes relations, etags and the flattened index for every entity, as the stitcher does.
fn stitch(data: &mut CatalogData, location: &str) {
    let mut relations: HashMap<String, BTreeSet<(String, String)>> = HashMap::new();
    for (r, s) in &data.by_ref {
        let kind = s
            .definition
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("");
        let ns = s
            .definition
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default");
        let spec = s.definition.get("spec").cloned().unwrap_or(Value::Null);
        for (rel, target) in spec_relations(kind, ns, &spec) {
            relations
                .entry(r.clone())
                .or_default()
                .insert((rel.to_string(), target.clone()));
            if let Some(inv) = inverse(rel) {
                relations
                    .entry(target)
                    .or_default()
                    .insert((inv.to_string(), r.clone()));
            }
        }
    }
    for (r, s) in data.by_ref.iter_mut() {
        let mut e = s.definition.clone();
        let rels: Vec<Value> = relations
            .get(r)
            .map(|set| {
                set.iter()
                    .map(|(t, target)| json!({"type": t, "targetRef": target}))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(meta) = e.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.entry("namespace").or_insert(json!("default"));
            let annotations = meta
                .entry("annotations")
                .or_insert(json!({}))
                .as_object_mut();
            if let Some(a) = annotations {
                a.entry("backstage.io/managed-by-location")
                    .or_insert(json!(location));
                a.entry("backstage.io/managed-by-origin-location")
                    .or_insert(json!(location));
            }
            meta.insert("uid".into(), json!(s.uid));
            meta.remove("etag");
        }
        if let Some(obj) = e.as_object_mut() {
            obj.insert("relations".into(), Value::Array(rels));
        }
        let etag = sha1_smol::Sha1::from(e.to_string()).digest().to_string();
        if let Some(meta) = e.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("etag".into(), json!(etag));
        }
        s.flat = flatten(&e);
        s.stitched = e;
    }
    let mut order: Vec<(String, String)> = data
        .by_ref
        .iter()
        .map(|(r, s)| (s.uid.clone(), r.clone()))
        .collect();
    order.sort();
    data.uid_order = order.into_iter().map(|(_, r)| r).collect();
}

fn flatten(entity: &Value) -> HashMap<String, Vec<String>> {
    fn walk(prefix: &str, v: &Value, out: &mut HashMap<String, Vec<String>>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let p = if prefix.is_empty() {
                        k.to_string()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    if p == "relations" {
                        continue;
                    }
                    walk(&p, v, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(prefix, v, out)),
            Value::String(s) => out
                .entry(prefix.to_ascii_lowercase())
                .or_default()
                .push(s.clone()),
            Value::Number(n) => out
                .entry(prefix.to_ascii_lowercase())
                .or_default()
                .push(n.to_string()),
            Value::Bool(b) => out
                .entry(prefix.to_ascii_lowercase())
                .or_default()
                .push(b.to_string()),
            Value::Null => {}
        }
    }
    let mut out = HashMap::new();
    walk("", entity, &mut out);
    if let Some(rels) = entity.get("relations").and_then(Value::as_array) {
        for r in rels {
            if let (Some(t), Some(target)) = (
                r.get("type").and_then(Value::as_str),
                r.get("targetRef").and_then(Value::as_str),
            ) {
                out.entry(format!("relations.{}", t.to_ascii_lowercase()))
                    .or_default()
                    .push(target.to_string());
            }
        }
    }
    out
}

/// Backstage's error body.
fn error(status: StatusCode, name: &str, message: &str, method: &Method, url: &str) -> Response {
    (
        status,
        Json(json!({
            "error": {"name": name, "message": message},
            "request": {"method": method.as_str(), "url": url},
            "response": {"statusCode": status.as_u16()},
        })),
    )
        .into_response()
}

/// The URL as the catalog router sees it (without `/api/catalog`).
fn plugin_url(path: &str, query: Option<&str>) -> String {
    let p = path.strip_prefix("/api/catalog").unwrap_or(path);
    match query {
        Some(q) if !q.is_empty() => format!("{p}?{q}"),
        _ => p.to_string(),
    }
}

fn check_token(
    inner: &Inner,
    headers: &HeaderMap,
    method: &Method,
    url: &str,
) -> Result<(), Box<Response>> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match auth.and_then(|a| a.strip_prefix("Bearer ")) {
        None => Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "AuthenticationError",
            "Missing credentials",
            method,
            url,
        ))),
        Some(t) if t != inner.token => Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "AuthenticationError",
            "Illegal token",
            method,
            url,
        ))),
        Some(_) => Ok(()),
    }
}

type Clause = Vec<(String, Vec<Option<String>>)>;

/// `filter` params: OR across params, AND across keys in one, OR across repeated values.
fn parse_filters(raw: &[String]) -> Vec<Clause> {
    raw.iter()
        .map(|f| {
            let mut by_key: Vec<(String, Vec<Option<String>>)> = Vec::new();
            for part in f.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (k, v) = match part.split_once('=') {
                    Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim().to_string())),
                    None => (part.to_ascii_lowercase(), None),
                };
                match by_key.iter_mut().find(|(key, _)| *key == k) {
                    Some((_, vs)) => vs.push(v),
                    None => by_key.push((k, vec![v])),
                }
            }
            by_key
        })
        .filter(|c| !c.is_empty())
        .collect()
}

fn matches_filters(flat: &HashMap<String, Vec<String>>, filters: &[Clause]) -> bool {
    filters.is_empty()
        || filters.iter().any(|clause| {
            clause.iter().all(|(key, wanted)| {
                let Some(have) = flat.get(key) else {
                    return false;
                };
                wanted.iter().any(|w| match w {
                    None => true,
                    Some(w) => have.iter().any(|h| h.eq_ignore_ascii_case(w)),
                })
            })
        })
}

fn project(entity: &Value, fields: &[String]) -> Value {
    if fields.is_empty() {
        return entity.clone();
    }
    let mut out = json!({});
    for f in fields {
        let path: Vec<&str> = f.split('.').collect();
        let mut src = entity;
        let mut found = true;
        for p in &path {
            match src.get(p) {
                Some(v) => src = v,
                None => {
                    found = false;
                    break;
                }
            }
        }
        if !found {
            continue;
        }
        let mut dst = &mut out;
        for (i, p) in path.iter().enumerate() {
            if i + 1 == path.len() {
                dst[*p] = src.clone();
            } else {
                if dst.get(p).is_none() {
                    dst[*p] = json!({});
                }
                dst = &mut dst[*p];
            }
        }
    }
    out
}

#[derive(serde::Serialize, serde::Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct OrderField {
    field: String,
    order: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Cursor {
    order_fields: Vec<OrderField>,
    is_previous: bool,
    full_text_filter: FullText,
    /// The filter the first page was asked with (the real catalog calls it `query`).
    #[serde(rename = "query")]
    filter: Vec<String>,
    /// Sort value and uid of the item the page starts after (or before, if previous).
    order_field_values: Vec<Option<String>>,
    first_sort_field_values: Vec<Option<String>>,
    total_items: usize,
}

#[derive(serde::Serialize, serde::Deserialize, Clone, Default)]
struct FullText {
    term: String,
    #[serde(default)]
    fields: Vec<String>,
}

fn encode(c: &Cursor) -> String {
    base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(c).unwrap_or_default())
}

fn decode(s: &str) -> Option<Cursor> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Sort key of an entity for the current order: (value of the first order field, uid).
fn sort_key(s: &Stored, order: &[OrderField]) -> (Option<String>, String) {
    let v = order.first().and_then(|o| {
        s.flat
            .get(&o.field.to_ascii_lowercase())
            .and_then(|vs| vs.first())
            .map(|v| v.to_ascii_lowercase())
    });
    (v, s.uid.clone())
}

fn compare(
    a: &(Option<String>, String),
    b: &(Option<String>, String),
    desc: bool,
) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    let by_value = match (&a.0, &b.0) {
        (Some(x), Some(y)) => {
            let o = x.cmp(y);
            if desc {
                o.reverse()
            } else {
                o
            }
        }
        (Some(_), None) => Less,
        (None, Some(_)) => Greater,
        (None, None) => Equal,
    };
    by_value.then_with(|| a.1.cmp(&b.1))
}

async fn by_query(
    State(inner): State<Arc<Inner>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let url = plugin_url("/api/catalog/entities/by-query", raw.as_deref());
    if let Err(r) = check_token(&inner, &headers, &method, &url) {
        return *r;
    }
    let mut filters_raw = Vec::new();
    let mut fields = Vec::new();
    let mut limit: Option<String> = None;
    let mut cursor_raw = None;
    let mut order_raw = Vec::new();
    let mut term = String::new();
    let mut term_fields = Vec::new();
    for (k, v) in url::form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "filter" => filters_raw.push(v.into_owned()),
            "fields" => fields.extend(
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty()),
            ),
            "limit" => limit = Some(v.into_owned()),
            "cursor" => cursor_raw = Some(v.into_owned()),
            "orderField" => order_raw.push(v.into_owned()),
            "fullTextFilterTerm" => term = v.into_owned(),
            "fullTextFilterFields" => {
                term_fields.extend(v.split(',').map(|s| s.trim().to_string()))
            }
            _ => {}
        }
    }
    let limit = match limit.as_deref().map(str::parse::<i64>) {
        None => 20usize,
        Some(Ok(n)) if n >= 0 => n as usize,
        Some(Ok(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "InputError",
                "request/query/limit must be >= 0",
                &method,
                &url,
            )
        }
        Some(Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "InputError",
                "request/query/limit must be integer",
                &method,
                &url,
            )
        }
    };
    let cursor = match cursor_raw.as_deref().map(decode) {
        None => None,
        Some(Some(c)) => Some(c),
        Some(None) => {
            return error(
                StatusCode::BAD_REQUEST,
                "InputError",
                "Malformed cursor: could not be parsed as JSON",
                &method,
                &url,
            )
        }
    };
    // With a cursor, the cursor's filter, order and full-text term win over the request's.
    let (filters_src, order, full_text) = match &cursor {
        Some(c) => (
            c.filter.clone(),
            c.order_fields.clone(),
            c.full_text_filter.clone(),
        ),
        None => {
            let mut order = Vec::new();
            for o in &order_raw {
                let (field, dir) = o.split_once(',').unwrap_or((o.as_str(), "asc"));
                if !matches!(dir, "asc" | "desc") {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "InputError",
                        &format!("Invalid order field order, must be asc or desc, got {dir}"),
                        &method,
                        &url,
                    );
                }
                order.push(OrderField {
                    field: field.to_string(),
                    order: dir.to_string(),
                });
            }
            (
                filters_raw.clone(),
                order,
                FullText {
                    term: term.trim().to_string(),
                    fields: term_fields,
                },
            )
        }
    };
    let filters = parse_filters(&filters_src);
    let desc = order.first().is_some_and(|o| o.order == "desc");
    let term_lower = full_text.term.to_lowercase();
    let term_fields: Vec<String> = if full_text.fields.is_empty() {
        vec![
            "metadata.name".into(),
            "metadata.title".into(),
            "metadata.description".into(),
        ]
    } else {
        full_text
            .fields
            .iter()
            .map(|f| f.to_ascii_lowercase())
            .collect()
    };

    let data = inner.data.read();
    let mut matched: Vec<(&Stored, (Option<String>, String))> = data
        .uid_order
        .iter()
        .filter_map(|r| data.by_ref.get(r))
        .filter(|s| matches_filters(&s.flat, &filters))
        .filter(|s| {
            term_lower.is_empty()
                || term_fields.iter().any(|f| {
                    s.flat
                        .get(f)
                        .is_some_and(|vs| vs.iter().any(|v| v.to_lowercase().contains(&term_lower)))
                })
        })
        .map(|s| (s, sort_key(s, &order)))
        .collect();
    matched.sort_by(|a, b| compare(&a.1, &b.1, desc));
    let total = matched.len();

    let (start, end) = match &cursor {
        None => (0, limit.min(total)),
        Some(c) => {
            let key = (
                c.order_field_values.first().cloned().flatten(),
                c.order_field_values
                    .get(1)
                    .cloned()
                    .flatten()
                    .unwrap_or_default(),
            );
            if c.is_previous {
                let end = matched
                    .iter()
                    .position(|(_, k)| compare(k, &key, desc) != std::cmp::Ordering::Less)
                    .unwrap_or(total);
                (end.saturating_sub(limit), end)
            } else {
                let start = matched
                    .iter()
                    .position(|(_, k)| compare(k, &key, desc) == std::cmp::Ordering::Greater)
                    .unwrap_or(total);
                (start, (start + limit).min(total))
            }
        }
    };
    let page = &matched[start..end];
    let first_values = matched
        .first()
        .map(|(_, k)| vec![k.0.clone(), Some(k.1.clone())])
        .unwrap_or_default();
    let make = |is_previous: bool, k: &(Option<String>, String)| {
        encode(&Cursor {
            order_fields: order.clone(),
            is_previous,
            full_text_filter: full_text.clone(),
            filter: filters_src.clone(),
            order_field_values: vec![k.0.clone(), Some(k.1.clone())],
            first_sort_field_values: first_values.clone(),
            total_items: total,
        })
    };
    let mut page_info = serde_json::Map::new();
    if end < total {
        if let Some((_, k)) = page.last() {
            page_info.insert("nextCursor".into(), json!(make(false, k)));
        }
    }
    if start > 0 {
        if let Some((_, k)) = page.first() {
            page_info.insert("prevCursor".into(), json!(make(true, k)));
        }
    }
    let items: Vec<Value> = page
        .iter()
        .map(|(s, _)| project(&s.stitched, &fields))
        .collect();
    Json(json!({"items": items, "totalItems": total, "pageInfo": page_info})).into_response()
}

/// `GET /api/catalog/entities`: the older list endpoint `@backstage/catalog-client`'s
/// `getEntities()` calls — `filter` (repeatable), `fields`, `order` (`asc:metadata.name`),
/// `offset`, `limit` and the opaque `after` cursor; the answer is a bare array, and a `Link:
/// <...>; rel="next"` header while more remain.
async fn list_entities(
    State(inner): State<Arc<Inner>>,
    method: Method,
    headers: HeaderMap,
    uri: axum::http::Uri,
    RawQuery(raw): RawQuery,
) -> Response {
    let url = plugin_url("/api/catalog/entities", raw.as_deref());
    if let Err(r) = check_token(&inner, &headers, &method, &url) {
        return *r;
    }
    let (mut filters_raw, mut fields, mut order) = (Vec::new(), Vec::new(), Vec::new());
    let (mut offset, mut limit, mut after) = (None, None, None);
    for (k, v) in url::form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "filter" => filters_raw.push(v.into_owned()),
            "fields" => fields.extend(
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty()),
            ),
            "order" => {
                let (dir, field) = v.split_once(':').unwrap_or(("asc", v.as_ref()));
                if !matches!(dir, "asc" | "desc") {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "InputError",
                        &format!("Invalid order field order, must be asc or desc, got {dir}"),
                        &method,
                        &url,
                    );
                }
                order.push(OrderField {
                    field: field.to_string(),
                    order: dir.to_string(),
                });
            }
            "offset" => offset = Some(v.into_owned()),
            "limit" => limit = Some(v.into_owned()),
            "after" => after = Some(v.into_owned()),
            _ => {}
        }
    }
    let number = |name: &str, v: &Option<String>| -> Result<Option<usize>, String> {
        match v.as_deref().map(str::parse::<i64>) {
            None => Ok(None),
            Some(Ok(n)) if n >= 0 => Ok(Some(n as usize)),
            Some(_) => Err(format!(
                "request/query/{name} must be a non-negative integer"
            )),
        }
    };
    let (offset, limit) = match (number("offset", &offset), number("limit", &limit)) {
        (Ok(o), Ok(l)) => (o, l),
        (Err(m), _) | (_, Err(m)) => {
            return error(StatusCode::BAD_REQUEST, "InputError", &m, &method, &url)
        }
    };
    // `after` carries the offset of the next page (opaque to clients, as Backstage's is).
    let start = match after.as_deref() {
        None => offset.unwrap_or(0),
        Some(a) => match base64::engine::general_purpose::STANDARD
            .decode(a)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|v| v["offset"].as_u64())
        {
            Some(o) => o as usize,
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InputError",
                    "Malformed after cursor",
                    &method,
                    &url,
                )
            }
        },
    };
    let filters = parse_filters(&filters_raw);
    let data = inner.data.read();
    let mut matched: Vec<(&Stored, (Option<String>, String))> = data
        .uid_order
        .iter()
        .filter_map(|r| data.by_ref.get(r))
        .filter(|s| matches_filters(&s.flat, &filters))
        .map(|s| (s, sort_key(s, &order)))
        .collect();
    if !order.is_empty() {
        let desc = order[0].order == "desc";
        matched.sort_by(|a, b| compare(&a.1, &b.1, desc));
    }
    let total = matched.len();
    let start = start.min(total);
    let end = limit.map_or(total, |l| (start + l).min(total));
    let items: Vec<Value> = matched[start..end]
        .iter()
        .map(|(s, _)| project(&s.stitched, &fields))
        .collect();
    let mut response = Json(Value::Array(items)).into_response();
    if limit.is_some() && end < total {
        let cursor =
            base64::engine::general_purpose::STANDARD.encode(json!({"offset": end}).to_string());
        let mut next: Vec<(String, String)> =
            url::form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes())
                .filter(|(k, _)| k != "after" && k != "offset")
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
        next.push(("after".into(), cursor));
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(next)
            .finish();
        if let Ok(v) =
            axum::http::HeaderValue::from_str(&format!("<{}?{query}>; rel=\"next\"", uri.path()))
        {
            response.headers_mut().insert(header::LINK, v);
        }
    }
    response
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefsBody {
    entity_refs: Vec<String>,
    #[serde(default)]
    fields: Vec<String>,
}

async fn by_refs(
    State(inner): State<Arc<Inner>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: axum::body::Bytes,
) -> Response {
    let url = plugin_url("/api/catalog/entities/by-refs", raw.as_deref());
    if let Err(r) = check_token(&inner, &headers, &method, &url) {
        return *r;
    }
    if let Some((k, _)) =
        url::form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes()).next()
    {
        return error(
            StatusCode::BAD_REQUEST,
            "InputError",
            &format!("Unknown query parameter '{k}'"),
            &method,
            &url,
        );
    }
    let req: RefsBody = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "InputError",
                "request/body must have required property 'entityRefs'",
                &method,
                &url,
            )
        }
    };
    let fields = req.fields;
    let data = inner.data.read();
    let items: Vec<Value> = req
        .entity_refs
        .iter()
        .map(|r| {
            EntityRef::parse(r)
                .ok()
                .and_then(|r| data.by_ref.get(&r.to_string()))
                .map(|s| project(&s.stitched, &fields))
                .unwrap_or(Value::Null)
        })
        .collect();
    Json(json!({ "items": items })).into_response()
}

/// `GET /api/auth/v1/userinfo`: the user token's subject and `ent` (the user and its direct
/// groups from `spec.memberOf`); 401 without a valid user token.
async fn userinfo(State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(sub) = token.and_then(|t| inner.identity.verify(t)) else {
        return (
            StatusCode::UNAUTHORIZED,
            Json(
                json!({"error": {"name": "AuthenticationError", "message": "Missing credentials"}}),
            ),
        )
            .into_response();
    };
    let mut ent = vec![sub.clone()];
    if let Some(user) = inner.data.read().by_ref.get(&sub) {
        let groups = user
            .definition
            .pointer("/spec/memberOf")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        ent.extend(groups.iter().filter_map(Value::as_str).filter_map(|g| {
            EntityRef::parse_with_defaults(g, Some("group"), "default")
                .ok()
                .map(|r| r.to_string())
        }));
    }
    Json(json!({"claims": {"sub": sub, "ent": ent}})).into_response()
}

async fn by_name(
    State(inner): State<Arc<Inner>>,
    method: Method,
    headers: HeaderMap,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Response {
    let url = format!("/entities/by-name/{kind}/{namespace}/{name}");
    if let Err(r) = check_token(&inner, &headers, &method, &url) {
        return *r;
    }
    let key = EntityRef::new(&kind, &namespace, &name).to_string();
    match inner.data.read().by_ref.get(&key) {
        Some(s) => Json(s.stitched.clone()).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "NotFoundError",
            &format!(
                "No entity named '{name}' found, with kind '{kind}' in namespace '{namespace}'"
            ),
            &method,
            &url,
        ),
    }
}

async fn facets(
    State(inner): State<Arc<Inner>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let url = plugin_url("/api/catalog/entity-facets", raw.as_deref());
    if let Err(r) = check_token(&inner, &headers, &method, &url) {
        return *r;
    }
    let mut facet_names = Vec::new();
    let mut filters_raw = Vec::new();
    for (k, v) in url::form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "facet" => facet_names.push(v.into_owned()),
            "filter" => filters_raw.push(v.into_owned()),
            _ => {}
        }
    }
    if facet_names.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "InputError",
            "Missing facet parameter",
            &method,
            &url,
        );
    }
    let filters = parse_filters(&filters_raw);
    let data = inner.data.read();
    let mut out = serde_json::Map::new();
    for facet in facet_names {
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for s in data
            .by_ref
            .values()
            .filter(|s| matches_filters(&s.flat, &filters))
        {
            if let Some(vs) = s.flat.get(&facet.to_ascii_lowercase()) {
                let unique: BTreeSet<&String> = vs.iter().collect();
                for v in unique {
                    *counts.entry(v.clone()).or_default() += 1;
                }
            }
        }
        let list: Vec<Value> = counts
            .into_iter()
            .map(|(value, count)| json!({"value": value, "count": count}))
            .collect();
        out.insert(facet, Value::Array(list));
    }
    Json(json!({ "facets": out })).into_response()
}

async fn not_found(method: Method, uri: axum::http::Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "NotFoundError",
        &format!("Unknown path {}", uri.path()),
        &method,
        uri.path(),
    )
}

fn now_iso() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Checks values against the template's parameter schemas: required keys, string `pattern`s.
fn check_parameters(template: &Value, values: &Value) -> Result<(), String> {
    let pages: Vec<&Value> = match template.pointer("/spec/parameters") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(v @ Value::Object(_)) => vec![v],
        _ => vec![],
    };
    for page in pages {
        for req in page
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if values
                .get(req)
                .is_none_or(|v| v.is_null() || v.as_str() == Some(""))
            {
                return Err(format!("instance requires property \"{req}\""));
            }
        }
        if let Some(props) = page.get("properties").and_then(Value::as_object) {
            for (k, schema) in props {
                let (Some(pattern), Some(v)) = (
                    schema.get("pattern").and_then(Value::as_str),
                    values.get(k).and_then(Value::as_str),
                ) else {
                    continue;
                };
                // The seed's patterns are character classes with anchors: `^[a-z0-9-]+$`.
                let class = pattern
                    .trim_start_matches('^')
                    .trim_end_matches('$')
                    .trim_end_matches('+');
                let ok = !v.is_empty()
                    && match class {
                        "[a-z0-9-]" => v
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                        _ => true,
                    };
                if !ok {
                    return Err(format!("instance.{k} does not match pattern \"{pattern}\""));
                }
            }
        }
    }
    Ok(())
}

async fn create_task(
    State(inner): State<Arc<Inner>>,
    method: Method,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let url = "/v2/tasks";
    if let Err(r) = check_token(&inner, &headers, &method, url) {
        return *r;
    }
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "InputError",
            "request/body must be object",
            &method,
            url,
        );
    };
    let (Some(template_ref), Some(values)) = (
        req.get("templateRef").and_then(Value::as_str),
        req.get("values").filter(|v| v.is_object()),
    ) else {
        return error(
            StatusCode::BAD_REQUEST,
            "InputError",
            "request/body must have required property 'templateRef' and object 'values'",
            &method,
            url,
        );
    };
    let template = EntityRef::parse_with_defaults(template_ref, Some("template"), "default")
        .ok()
        .and_then(|r| {
            inner
                .data
                .read()
                .by_ref
                .get(&r.to_string())
                .map(|s| s.stitched.clone())
        });
    let Some(template) = template else {
        return error(
            StatusCode::NOT_FOUND,
            "NotFoundError",
            &format!("Template {template_ref} not found"),
            &method,
            url,
        );
    };
    if let Err(m) = check_parameters(&template, values) {
        return error(
            StatusCode::BAD_REQUEST,
            "InputError",
            &format!("Parameters did not match the template's schema: {m}"),
            &method,
            url,
        );
    }
    let id = uuid::Uuid::new_v4().to_string();
    let steps = template
        .pointer("/spec/steps")
        .cloned()
        .unwrap_or(json!([]));
    let spec = json!({"apiVersion": "scaffolder.backstage.io/v1beta3", "steps": steps, "parameters": values,
        "output": template.pointer("/spec/output").cloned().unwrap_or(json!({})),
        "templateInfo": {"entityRef": EntityRef::parse_with_defaults(template_ref, Some("template"), "default").map(|r| r.to_string()).unwrap_or_default()}});
    let (changed, _) = tokio::sync::watch::channel(0);
    inner.tasks.lock().insert(
        id.clone(),
        SimTask {
            spec,
            status: "open",
            created_at: now_iso(),
            events: Vec::new(),
            changed,
        },
    );
    tokio::spawn(run_task(inner.clone(), id.clone(), values.clone(), steps));
    (StatusCode::CREATED, Json(json!({"id": id}))).into_response()
}

fn task_event(inner: &Inner, id: &str, kind: &str, body: Value) {
    let mut tasks = inner.tasks.lock();
    let Some(t) = tasks.get_mut(id) else { return };
    let n = t.events.len() as i64 + 1;
    t.events.push(json!({"id": n, "isTaskRecoverable": false, "taskId": id, "body": body, "type": kind, "createdAt": now_iso()}));
    if kind == "completion" {
        t.status = if body.get("error").is_some() {
            "failed"
        } else {
            "completed"
        };
    } else {
        t.status = "processing";
    }
    let len = t.events.len();
    t.changed.send_replace(len);
}

/// Runs a template's steps, with the effects the seed's actions have in the demo world.
async fn run_task(inner: Arc<Inner>, id: String, values: Value, steps: Value) {
    let steps = steps.as_array().cloned().unwrap_or_default();
    let name = values
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("new-service")
        .to_string();
    let owner = values
        .get("owner")
        .and_then(Value::as_str)
        .unwrap_or("app-team")
        .to_string();
    task_event(
        &inner,
        &id,
        "log",
        json!({"message": format!("Starting up task with {} steps", steps.len())}),
    );
    let mut links = Vec::new();
    for step in &steps {
        let step_id = step
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("step")
            .to_string();
        let step_name = step
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(&step_id)
            .to_string();
        let action = step.get("action").and_then(Value::as_str).unwrap_or("");
        task_event(
            &inner,
            &id,
            "log",
            json!({"message": format!("Beginning step {step_name}"), "stepId": step_id, "status": "processing"}),
        );
        tokio::time::sleep(inner.step_delay).await;
        let line = match action {
            "publish:github" => {
                links.push(json!({"title": "Repository", "url": format!("https://github.com/yourcompany/{name}")}));
                format!("Created repository yourcompany/{name}")
            }
            "catalog:register" => {
                let def = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
                    "metadata": {"name": name, "description": format!("{name}, created from a template"),
                        "annotations": {"argocd/app-name": name, "backstage.io/kubernetes-id": name,
                                        "backstage.io/kubernetes-namespace": name, "github.com/project-slug": format!("yourcompany/{name}")}},
                    "spec": {"type": "service", "lifecycle": "experimental", "owner": owner, "system": "idp"}});
                // Backstage refuses to let a new location take over an entity ref another
                // location owns (409 ConflictError); the run fails at this step.
                if let Some(r) =
                    canonical_ref(&def).filter(|r| inner.data.read().by_ref.contains_key(r))
                {
                    let message = format!(
                        "Conflicting entity {r}: it is already registered by location {}",
                        inner.location
                    );
                    task_event(
                        &inner,
                        &id,
                        "log",
                        json!({"message": format!("\u{1b}[31merror\u{1b}[39m: ConflictError: {message}"), "stepId": step_id, "status": "failed"}),
                    );
                    task_event(
                        &inner,
                        &id,
                        "completion",
                        json!({"message": "Run completed with status: failed", "error": {"name": "ConflictError", "message": message}}),
                    );
                    return;
                }
                if let Some(r) = canonical_ref(&def) {
                    let mut data = inner.data.write();
                    let uid = uuid::Uuid::new_v4().to_string();
                    data.by_ref.insert(
                        r,
                        Stored {
                            uid,
                            definition: def,
                            stitched: Value::Null,
                            flat: HashMap::new(),
                        },
                    );
                    stitch(&mut data, &inner.location);
                }
                links.push(json!({"title": "Open in catalog", "icon": "catalog", "entityRef": format!("component:default/{name}")}));
                let hook = inner.on_created.read().clone();
                if let Some(f) = hook {
                    f(&name, &owner);
                }
                format!("Registered component:default/{name} in the catalog")
            }
            "debug:log" => step
                .pointer("/input/message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .replace("${{ parameters.name }}", &name),
            _ => format!("Ran {action}"),
        };
        task_event(
            &inner,
            &id,
            "log",
            json!({"message": format!("\u{1b}[32minfo\u{1b}[39m: {line}"), "stepId": step_id}),
        );
        task_event(
            &inner,
            &id,
            "log",
            json!({"message": format!("Finished step {step_name}"), "stepId": step_id, "status": "completed"}),
        );
    }
    task_event(
        &inner,
        &id,
        "completion",
        json!({"message": "Run completed with status: completed", "output": {"links": links, "text": []}}),
    );
}

async fn get_task(
    State(inner): State<Arc<Inner>>,
    method: Method,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let url = format!("/v2/tasks/{id}");
    if let Err(r) = check_token(&inner, &headers, &method, &url) {
        return *r;
    }
    match inner.tasks.lock().get(&id) {
        Some(t) => Json(json!({"id": id, "spec": t.spec, "status": t.status, "createdAt": t.created_at, "lastHeartbeatAt": now_iso()})).into_response(),
        None => error(StatusCode::NOT_FOUND, "NotFoundError", &format!("Task with id {id} does not exist"), &method, &url),
    }
}

async fn task_events(
    State(inner): State<Arc<Inner>>,
    method: Method,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let url = format!("/v2/tasks/{id}/eventstream");
    if let Err(r) = check_token(&inner, &headers, &method, &url) {
        return *r;
    }
    let after = url::form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "after")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let Some(mut changed) = inner.tasks.lock().get(&id).map(|t| t.changed.subscribe()) else {
        return error(
            StatusCode::NOT_FOUND,
            "NotFoundError",
            &format!("Task with id {id} does not exist"),
            &method,
            &url,
        );
    };
    let (tx, rx) =
        tokio::sync::mpsc::channel::<Result<axum::body::Bytes, std::convert::Infallible>>(16);
    tokio::spawn(async move {
        let mut sent = after;
        loop {
            let (batch, done) = {
                let tasks = inner.tasks.lock();
                let Some(t) = tasks.get(&id) else { return };
                (
                    t.events.iter().skip(sent).cloned().collect::<Vec<_>>(),
                    t.status == "completed",
                )
            };
            for e in &batch {
                let kind = e["type"].as_str().unwrap_or("log").to_string();
                if tx
                    .send(Ok(format!("event: {kind}\ndata: {e}\n\n").into()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            sent += batch.len();
            if done && batch.iter().all(|e| e["type"] != "completion") && sent > 0 {
                return;
            }
            if batch.iter().any(|e| e["type"] == "completion") {
                return;
            }
            if changed.changed().await.is_err() {
                return;
            }
        }
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        axum::body::Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)),
    )
        .into_response()
}
