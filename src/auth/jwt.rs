//! Verifying bearer JWTs of one configured issuer: pinned algorithms, exactly one key source
//! (a JWKS URL, a PEM public key, or an HS256 secret), `exp`, `nbf`, `iss` and `aud` enforced.
//!
//! JWKS are fetched on first use and cached; a token whose `kid` is not in the cached set makes
//! one re-fetch (keys rotate), at most once per `JWKS_MIN_REFETCH`, so random kids cannot make us
//! hammer the IdP; a failed re-fetch keeps serving the keys we had (a brief IdP outage does not
//! log everyone out). A Backstage issuer finds its JWKS and userinfo endpoints by OIDC discovery.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use parking_lot::Mutex;
use serde_json::Value;

use super::settings::{IssuerKind, IssuerSettings};
use super::AuthError;

/// The soonest a JWKS is fetched again because of an unknown `kid`.
const JWKS_MIN_REFETCH: Duration = Duration::from_secs(10);
/// A cached JWKS is refreshed (when a token asks) after this long.
const JWKS_MAX_AGE: Duration = Duration::from_secs(300);

/// What a verified token says about its bearer.
#[derive(Debug, Clone)]
pub struct Verified {
    pub subject: String,
    /// Group names or refs as the token (or Backstage's userinfo) lists them.
    pub groups: Vec<String>,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub backstage: bool,
}

enum Keys {
    Static(DecodingKey),
    Jwks(Jwks),
}

/// Where a Backstage auth backend serves its keys and userinfo (OIDC discovery).
#[derive(Clone)]
struct Discovered {
    jwks_uri: String,
    userinfo: Option<String>,
}

pub struct Issuer {
    pub settings: IssuerSettings,
    iss: String,
    algorithms: Vec<Algorithm>,
    keys: Keys,
    discovery: tokio::sync::OnceCell<Discovered>,
    http: reqwest::Client,
}

/// A cached JWKS.
struct Jwks {
    /// Fixed URL, or `None` to discover it (Backstage).
    url: Option<String>,
    /// The keys and when they were fetched; a `parking_lot` lock, never held across an await.
    cached: Mutex<Option<(Arc<JwkSet>, Instant)>>,
    /// One fetch at a time, and when the last attempt was (rate limit for unknown kids).
    fetching: tokio::sync::Mutex<Option<Instant>>,
}

impl Issuer {
    /// Builds the verifier; reads key files and secrets now, so a bad one fails at start.
    pub fn new(settings: IssuerSettings, http: reqwest::Client) -> Result<Self, String> {
        let iss = settings
            .expected_issuer()
            .ok_or_else(|| "no issuer".to_string())?;
        let algorithms = settings
            .algorithm_names()
            .iter()
            .map(|a| {
                a.parse::<Algorithm>()
                    .map_err(|_| format!("algorithm `{a}`"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let keys = if let Some(path) = &settings.public_key_file {
            let pem =
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let key = match algorithms.first() {
                Some(Algorithm::ES256 | Algorithm::ES384) => DecodingKey::from_ec_pem(&pem),
                _ => DecodingKey::from_rsa_pem(&pem),
            }
            .map_err(|e| format!("{} is not a usable public key: {e}", path.display()))?;
            Keys::Static(key)
        } else if let Some(var) = &settings.secret_env {
            let v =
                std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))?;
            Keys::Static(DecodingKey::from_secret(v.trim().as_bytes()))
        } else if let Some(path) = &settings.secret_file {
            let v = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            Keys::Static(DecodingKey::from_secret(v.trim().as_bytes()))
        } else {
            Keys::Jwks(Jwks {
                url: settings.jwks_url.clone(),
                cached: Mutex::new(None),
                fetching: tokio::sync::Mutex::new(None),
            })
        };
        Ok(Self {
            settings,
            iss,
            algorithms,
            keys,
            discovery: tokio::sync::OnceCell::new(),
            http,
        })
    }

    /// The `iss` this issuer's tokens carry.
    pub fn iss(&self) -> &str {
        &self.iss
    }

    /// Verifies signature and claims; returns who the bearer is.
    pub async fn verify(&self, token: &str, header: &Header) -> Result<Verified, AuthError> {
        if !self.algorithms.contains(&header.alg) {
            return Err(AuthError::Invalid(format!(
                "algorithm {:?} is not allowed for this issuer",
                header.alg
            )));
        }
        let backstage = self.settings.kind == IssuerKind::Backstage;
        if backstage && header.typ.as_deref() != Some("vnd.backstage.user") {
            return Err(AuthError::Invalid("not a Backstage user token".into()));
        }
        let key = match &self.keys {
            Keys::Static(k) => k.clone(),
            Keys::Jwks(jwks) => {
                let kid = header
                    .kid
                    .as_deref()
                    .ok_or_else(|| AuthError::Invalid("the token names no key (`kid`)".into()))?;
                self.jwks_key(jwks, kid, header.alg).await?
            }
        };
        let mut v = Validation::new(header.alg);
        v.algorithms = self.algorithms.clone();
        v.leeway = self.settings.leeway_secs;
        v.validate_nbf = true;
        v.set_issuer(&[self.iss.as_str()]);
        v.set_audience(&self.settings.audience_list());
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Value>(token, &key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            AuthError::Invalid(
                match e.kind() {
                    K::ExpiredSignature => "the token has expired",
                    K::ImmatureSignature => "the token is not valid yet",
                    K::InvalidAudience => "the token is for another audience",
                    K::InvalidIssuer => "the token is from another issuer",
                    K::InvalidSignature => "the token's signature does not verify",
                    K::MissingRequiredClaim(_) => "the token lacks a required claim",
                    _ => "the token cannot be verified",
                }
                .into(),
            )
        })?;
        let claims = data.claims;
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let expires_at = claims
            .get("exp")
            .and_then(Value::as_i64)
            .and_then(|e| chrono::DateTime::from_timestamp(e, 0));
        let groups = if backstage {
            match claims.get("ent").and_then(Value::as_array) {
                Some(ent) => strings(ent),
                None => self.userinfo_ent(token).await?,
            }
        } else {
            match claims.get(&self.settings.groups_claim) {
                Some(Value::Array(a)) => strings(a),
                Some(Value::String(s)) => vec![s.clone()],
                _ => Vec::new(),
            }
        };
        Ok(Verified {
            subject,
            groups,
            expires_at,
            backstage,
        })
    }

    async fn discovered(&self) -> Result<Discovered, AuthError> {
        self.discovery
            .get_or_try_init(|| async {
                let base = self.settings.url.as_deref().unwrap_or_default();
                let url = format!(
                    "{}/api/auth/.well-known/openid-configuration",
                    base.trim_end_matches('/')
                );
                let doc: Value = self.get_json(&url, None).await?;
                let jwks_uri = doc
                    .get("jwks_uri")
                    .and_then(Value::as_str)
                    .ok_or_else(|| unavailable("the discovery document has no jwks_uri"))?
                    .to_string();
                Ok(Discovered {
                    jwks_uri,
                    userinfo: doc
                        .get("userinfo_endpoint")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                })
            })
            .await
            .cloned()
    }

    async fn get_json(&self, url: &str, bearer: Option<&str>) -> Result<Value, AuthError> {
        let mut req = self.http.get(url);
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .map_err(|_| unavailable("the identity provider is unreachable"))?;
        if !resp.status().is_success() {
            return Err(if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
                AuthError::Invalid("the identity provider refused the token".into())
            } else {
                unavailable("the identity provider answered with an error")
            });
        }
        resp.json()
            .await
            .map_err(|_| unavailable("the identity provider sent a body we cannot read"))
    }

    /// Backstage's userinfo (`ent`: the user and its direct groups).
    async fn userinfo_ent(&self, token: &str) -> Result<Vec<String>, AuthError> {
        let Some(url) = self.discovered().await?.userinfo else {
            return Ok(Vec::new());
        };
        let v = self.get_json(&url, Some(token)).await?;
        Ok(v.pointer("/claims/ent")
            .and_then(Value::as_array)
            .map(|a| strings(a))
            .unwrap_or_default())
    }

    async fn jwks_key(
        &self,
        jwks: &Jwks,
        kid: &str,
        alg: Algorithm,
    ) -> Result<DecodingKey, AuthError> {
        let fresh = |set: &JwkSet| -> Option<Result<DecodingKey, AuthError>> {
            let jwk = set.find(kid)?;
            Some(DecodingKey::from_jwk(jwk).map_err(|_| {
                AuthError::Invalid("the issuer's key for this token is unusable".into())
            }))
        };
        let cached = jwks.cached.lock().clone();
        if let Some((set, at)) = &cached {
            if at.elapsed() < JWKS_MAX_AGE {
                if let Some(k) = fresh(set) {
                    return k;
                }
            }
        }
        // Unknown kid or an old set: fetch, at most once per JWKS_MIN_REFETCH.
        {
            let mut last = jwks.fetching.lock().await;
            let due = last.is_none_or(|t| t.elapsed() >= JWKS_MIN_REFETCH);
            let already_newer = jwks
                .cached
                .lock()
                .as_ref()
                .is_some_and(|(_, at)| cached.as_ref().is_none_or(|(_, old)| at > old));
            if due && !already_newer {
                *last = Some(Instant::now());
                let url = match &jwks.url {
                    Some(u) => u.clone(),
                    None => self.discovered().await?.jwks_uri,
                };
                match self.get_json(&url, None).await {
                    Ok(v) => match serde_json::from_value::<JwkSet>(v) {
                        Ok(set) => *jwks.cached.lock() = Some((Arc::new(set), Instant::now())),
                        Err(_) => tracing::warn!(issuer = %self.iss, "the JWKS is not a key set"),
                    },
                    Err(e) => {
                        tracing::warn!(issuer = %self.iss, error = %e, "JWKS fetch failed; keeping the keys we had")
                    }
                }
            }
        }
        let current = jwks.cached.lock().clone();
        match current {
            Some((set, _)) => fresh(&set).unwrap_or_else(|| {
                // The kid is the caller's text: not echoed back.
                Err(AuthError::Invalid(format!(
                    "the issuer has no such key for {alg:?}"
                )))
            }),
            None => Err(unavailable("the issuer's keys could not be fetched")),
        }
    }
}

fn unavailable(why: &str) -> AuthError {
    AuthError::Invalid(format!("{why}; cannot verify tokens now"))
}

fn strings(a: &[Value]) -> Vec<String> {
    a.iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// The unverified `iss` of a token, to pick the issuer that will verify it.
pub fn peek_issuer(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v.get("iss").and_then(Value::as_str).map(str::to_string)
}
