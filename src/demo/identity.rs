//! The demo's identity provider, served by the Backstage simulation as a Backstage auth backend
//! serves it (observed on a real one, see README "Security"): OIDC discovery at
//! `/api/auth/.well-known/openid-configuration`, one EC P-256 key at
//! `/api/auth/.well-known/jwks.json`, `/api/auth/v1/userinfo` answering `ent` (the user and its
//! direct groups, never the parents), and ES256 user tokens with `typ: vnd.backstage.user`,
//! `aud: backstage`, `sub` = the user's entity ref and no `ent` claim (so verifiers must ask
//! userinfo, as with Backstage's default `omitIdentityTokenOwnershipClaim`).
//!
//! The key is made fresh at every start, like a real backend's in-memory key store: tokens of an
//! earlier run no longer verify.

use std::sync::OnceLock;

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{json, Value};

/// The `typ` Backstage puts in user tokens' headers.
pub const USER_TOKEN_TYPE: &str = "vnd.backstage.user";

pub struct Identity {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: Jwk,
    /// `http://host:port`, known once the simulation listens.
    base: OnceLock<String>,
}

/// A PKCS#8 DER document for a P-256 private scalar (the public key is derived by the reader).
fn p256_pkcs8(scalar: &[u8; 32]) -> Vec<u8> {
    let mut der = vec![
        0x30, 0x41, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
        0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04, 0x27, 0x30, 0x25,
        0x02, 0x01, 0x01, 0x04, 0x20,
    ];
    der.extend_from_slice(scalar);
    der
}

impl Identity {
    pub fn new() -> Self {
        loop {
            // A random scalar is a valid key unless it is 0 or ≥ the group order (~2⁻³²).
            let scalar: [u8; 32] = rand::random();
            let encoding = EncodingKey::from_ec_der(&p256_pkcs8(&scalar));
            let Ok(mut jwk) = Jwk::from_encoding_key(&encoding, Algorithm::ES256) else {
                continue;
            };
            let kid = uuid::Uuid::new_v4().to_string();
            jwk.common.key_id = Some(kid.clone());
            jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
            let Ok(decoding) = DecodingKey::from_jwk(&jwk) else {
                continue;
            };
            return Self {
                kid,
                encoding,
                decoding,
                jwk,
                base: OnceLock::new(),
            };
        }
    }

    pub fn set_base(&self, base: &str) {
        let _ = self.base.set(base.trim_end_matches('/').to_string());
    }

    fn issuer(&self) -> String {
        format!(
            "{}/api/auth",
            self.base.get().map(String::as_str).unwrap_or("")
        )
    }

    pub fn discovery(&self) -> Value {
        let iss = self.issuer();
        json!({
            "issuer": iss,
            "token_endpoint": format!("{iss}/v1/token"),
            "userinfo_endpoint": format!("{iss}/v1/userinfo"),
            "jwks_uri": format!("{iss}/.well-known/jwks.json"),
            "response_types_supported": ["code", "id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "scopes_supported": ["openid"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "claims_supported": ["sub", "ent"],
            "grant_types_supported": ["authorization_code"],
        })
    }

    pub fn jwks(&self) -> Value {
        serde_json::to_value(JwkSet {
            keys: vec![self.jwk.clone()],
        })
        .unwrap_or_else(|_| json!({"keys": []}))
    }

    /// A user token for `user_ref`, valid for `ttl_secs`.
    pub fn mint(&self, user_ref: &str, ttl_secs: i64) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some(USER_TOKEN_TYPE.into());
        header.kid = Some(self.kid.clone());
        let claims = json!({
            "iss": self.issuer(), "sub": user_ref, "aud": "backstage",
            "iat": now, "exp": now + ttl_secs,
            "uip": uuid::Uuid::new_v4().to_string(),
        });
        jsonwebtoken::encode(&header, &claims, &self.encoding)
            .expect("BUG: a fresh P-256 key signs")
    }

    /// The subject of a token this identity issued and that is still valid.
    pub fn verify(&self, token: &str) -> Option<String> {
        let mut v = Validation::new(Algorithm::ES256);
        v.set_audience(&["backstage"]);
        v.set_issuer(&[self.issuer()]);
        let data = jsonwebtoken::decode::<Value>(token, &self.decoding, &v).ok()?;
        data.claims
            .get("sub")
            .and_then(Value::as_str)
            .map(str::to_string)
    }
}

impl Default for Identity {
    fn default() -> Self {
        Self::new()
    }
}
