//! Persisted operations, resolved in the pipeline (so every transport has them):
//!
//! - **APQ** (Apollo's automatic persisted queries): `extensions.persistedQuery.sha256Hash`
//!   alone runs the document registered under that hash, or answers
//!   `PERSISTED_QUERY_NOT_FOUND`; hash + document registers it (the hash is checked). GET with
//!   a hash makes a cacheable URL.
//! - **Trusted documents**: a manifest of allowed operations, in Apollo's
//!   `apollo-persisted-query-manifest` format or the flat `{ "<sha256>": "<document>" }` map
//!   GraphQL Codegen and Relay emit. With `mode: trusted`, only documents in it run
//!   (`PERSISTED_QUERY_NOT_IN_LIST` otherwise) — for production.
//!
//! Replicas (`cluster:`) share APQ registrations on Redis (`<prefix>:apq:<sha256>`, 30 days):
//! a hash registered on one replica runs on every other. A hash this replica does not hold is
//! looked up there (and then held here too). Redis failing only means the local behaviour.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::error::RequestError;
use crate::cluster::Shared;

/// How long a shared APQ registration lives in Redis (renewed by each registration).
const SHARED_TTL_SECS: u64 = 30 * 24 * 3600;
/// How long a lookup waits for Redis before answering from this replica alone.
const SHARED_STEP: std::time::Duration = std::time::Duration::from_millis(250);

/// `persisted:` in the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PersistedSettings {
    /// Accept APQ registrations (hash + document).
    pub apq: bool,
    /// A manifest of trusted documents.
    pub manifest: Option<PathBuf>,
    /// `any`: every document runs; `trusted`: only the manifest's.
    pub mode: PersistedMode,
}

impl Default for PersistedSettings {
    fn default() -> Self {
        Self {
            apq: true,
            manifest: None,
            mode: PersistedMode::Any,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PersistedMode {
    #[default]
    Any,
    Trusted,
}

pub struct PersistedOperations {
    settings: PersistedSettings,
    /// The manifest: hash → document.
    trusted: HashMap<String, String>,
    /// APQ registrations: hash → document (bounded).
    registered: moka::sync::Cache<String, String>,
    /// Registrations shared with the other replicas; `None`: this process alone.
    shared: Option<Shared>,
    /// Lookups and registrations Redis failed (`/metrics`).
    fallbacks: std::sync::atomic::AtomicU64,
}

/// The lower-case hex SHA-256 of a document.
pub fn sha256_hex(document: &str) -> String {
    let digest = Sha256::digest(document.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl PersistedOperations {
    /// Reads the manifest now, so a bad one fails at start with the reason.
    pub fn new(settings: PersistedSettings) -> Result<Self, String> {
        let trusted = match &settings.manifest {
            None => HashMap::new(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    format!("persisted.manifest: cannot read {}: {e}", path.display())
                })?;
                parse_manifest(&text)
                    .map_err(|e| format!("persisted.manifest: {}: {e}", path.display()))?
            }
        };
        if settings.mode == PersistedMode::Trusted && trusted.is_empty() {
            return Err("persisted.mode: `trusted` needs a manifest with operations".into());
        }
        Ok(Self {
            settings,
            trusted,
            registered: moka::sync::Cache::new(10_000),
            shared: None,
            fallbacks: Default::default(),
        })
    }

    /// Shares APQ registrations with the other replicas through Redis.
    pub fn with_shared(mut self, shared: Option<Shared>) -> Self {
        self.shared = shared;
        self
    }

    /// Lookups and registrations that Redis failed (answered from this replica alone).
    pub fn fallbacks(&self) -> u64 {
        self.fallbacks.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn fell_back(&self) {
        self.fallbacks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// [`resolve_local`](Self::resolve_local), with registrations shared between replicas: a
    /// registration is written to Redis too, and a hash not held here is looked up there.
    pub async fn resolve(
        &self,
        query: Option<String>,
        extensions: Option<&Value>,
    ) -> Result<String, RequestError> {
        let Some(shared) = self.shared.as_ref().filter(|_| self.settings.apq) else {
            return self.resolve_local(query, extensions);
        };
        let registering = query.is_some() && persisted_hash(extensions).is_some();
        match self.resolve_local(query, extensions) {
            // A registration (hash and document, checked): shared with the other replicas.
            Ok(document) if registering => {
                let hash = sha256_hex(&document);
                let (key, doc) = (shared.key(&format!("apq:{hash}")), document.clone());
                let stored = shared
                    .attempt("apq register", SHARED_STEP, |mut conn| async move {
                        redis::cmd("SET")
                            .arg(key)
                            .arg(doc)
                            .arg("EX")
                            .arg(SHARED_TTL_SECS)
                            .query_async::<()>(&mut conn)
                            .await
                    })
                    .await;
                if stored.is_none() {
                    self.fell_back();
                }
                Ok(document)
            }
            Err(RequestError::PersistedQueryNotFound) => {
                let Some(hash) = persisted_hash(extensions) else {
                    return Err(RequestError::PersistedQueryNotFound);
                };
                let key = shared.key(&format!("apq:{hash}"));
                let found = shared
                    .attempt("apq lookup", SHARED_STEP, |mut conn| async move {
                        redis::cmd("GET")
                            .arg(key)
                            .query_async::<Option<String>>(&mut conn)
                            .await
                    })
                    .await;
                match found {
                    // What Redis holds is checked like a registration: a document that does
                    // not hash to its key is never run.
                    Some(Some(document)) if sha256_hex(&document) == hash => {
                        self.registered.insert(hash, document.clone());
                        if self.settings.mode == PersistedMode::Trusted
                            && !self.trusted.contains_key(&sha256_hex(&document))
                        {
                            return Err(RequestError::PersistedQueryNotInList);
                        }
                        Ok(document)
                    }
                    Some(_) => Err(RequestError::PersistedQueryNotFound),
                    None => {
                        self.fell_back();
                        Err(RequestError::PersistedQueryNotFound)
                    }
                }
            }
            other => other,
        }
    }

    /// The document to run for an operation's `query` and `extensions`, from what this
    /// replica holds.
    pub fn resolve_local(
        &self,
        query: Option<String>,
        extensions: Option<&Value>,
    ) -> Result<String, RequestError> {
        let hash = extensions
            .and_then(|e| e.get("persistedQuery"))
            .map(|p| {
                let version = p.get("version").and_then(Value::as_i64).unwrap_or(1);
                match p.get("sha256Hash").and_then(Value::as_str) {
                    Some(h) if version == 1 => Ok(h.to_ascii_lowercase()),
                    _ => Err(RequestError::BadRequest(
                        "`extensions.persistedQuery` needs version 1 and a sha256Hash".into(),
                    )),
                }
            })
            .transpose()?;
        let document = match (query, hash) {
            (Some(q), Some(h)) => {
                if sha256_hex(&q) != h {
                    return Err(RequestError::BadRequest(
                        "the document does not match `persistedQuery.sha256Hash`".into(),
                    ));
                }
                if self.settings.apq {
                    self.registered.insert(h, q.clone());
                }
                q
            }
            (Some(q), None) => q,
            (None, Some(h)) => match self
                .trusted
                .get(&h)
                .cloned()
                .or_else(|| self.registered.get(&h))
            {
                Some(q) => q,
                None => return Err(RequestError::PersistedQueryNotFound),
            },
            (None, None) => {
                return Err(RequestError::BadRequest(
                    "the request has no `query`".into(),
                ))
            }
        };
        if self.settings.mode == PersistedMode::Trusted
            && !self.trusted.contains_key(&sha256_hex(&document))
        {
            return Err(RequestError::PersistedQueryNotInList);
        }
        Ok(document)
    }
}

/// The lower-case `persistedQuery.sha256Hash` of version 1, when there is one.
fn persisted_hash(extensions: Option<&Value>) -> Option<String> {
    let p = extensions?.get("persistedQuery")?;
    if p.get("version").and_then(Value::as_i64).unwrap_or(1) != 1 {
        return None;
    }
    p.get("sha256Hash")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
}

/// Apollo's manifest or a flat `hash → document` map.
fn parse_manifest(text: &str) -> Result<HashMap<String, String>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let mut out = HashMap::new();
    if let Some(ops) = v.get("operations").and_then(Value::as_array) {
        for (i, op) in ops.iter().enumerate() {
            let body = op
                .get("body")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("operations[{i}] has no body"))?;
            out.insert(sha256_hex(body), body.to_string());
        }
    } else if let Some(map) = v.as_object() {
        for (k, body) in map {
            let body = body
                .as_str()
                .ok_or_else(|| format!("`{k}` is not a document"))?;
            out.insert(sha256_hex(body), body.to_string());
        }
    } else {
        return Err("neither an apollo-persisted-query-manifest nor a hash → document map".into());
    }
    Ok(out)
}
