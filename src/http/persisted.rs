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

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::error::RequestError;

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
        })
    }

    /// The document to run for an operation's `query` and `extensions`.
    pub fn resolve(
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
