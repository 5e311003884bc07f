//! The bot's side of idp-graph's public HTTP API: GraphQL `POST /graphql` with its bearer
//! token, and — for slash commands — `X-Idp-Acting-For: <user ref>`, so that the server's
//! policy decides as that user (the bot's role must grant `delegate`). Subscriptions go over
//! `crate::watch` (websockets with cursors); this is everything else.

use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum GraphClientError {
    #[error("idp-graph is unreachable: {0}")]
    Unreachable(String),
    /// Refused before running (401, 403 `DELEGATION_FORBIDDEN`, 400 `UNKNOWN_USER`...).
    #[error("idp-graph refused the request: {code}: {message}")]
    Refused { code: String, message: String },
}

pub struct GraphClient {
    http: reqwest::Client,
    /// `http://host:port/graphql`.
    endpoint: String,
    token: Option<SecretString>,
}

impl GraphClient {
    pub fn new(http: reqwest::Client, server: &str, token: Option<SecretString>) -> Self {
        Self {
            http,
            endpoint: format!("{}/graphql", server.trim_end_matches('/')),
            token,
        }
    }

    /// Runs an operation (as the bot, or as `acting_for`); the whole GraphQL answer (`data`
    /// and `errors`) when it ran.
    pub async fn run(
        &self,
        query: &str,
        variables: Value,
        acting_for: Option<&str>,
    ) -> Result<Value, GraphClientError> {
        let mut r = self
            .http
            .post(&self.endpoint)
            .header("accept", "application/json")
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(t) = &self.token {
            r = r.bearer_auth(t.expose_secret());
        }
        if let Some(user) = acting_for {
            r = r.header(crate::auth::ACTING_FOR_HEADER, user);
        }
        let answer = r
            .send()
            .await
            .map_err(|e| GraphClientError::Unreachable(e.to_string()))?;
        let status = answer.status();
        let body: Value = answer
            .json()
            .await
            .map_err(|e| GraphClientError::Unreachable(e.to_string()))?;
        if status.is_success() || body.get("data").is_some_and(|d| !d.is_null()) {
            return Ok(body);
        }
        Err(GraphClientError::Refused {
            code: body["errors"][0]["extensions"]["code"]
                .as_str()
                .unwrap_or("UNKNOWN")
                .to_string(),
            message: body["errors"][0]["message"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        })
    }
}
