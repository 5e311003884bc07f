//! `notify.yaml`: the settings of `idp-graph notify` — the server it follows, Slack, the slash
//! command listener, where its durable state lives, and (optional) triggers, limits, webhooks.
//! Unknown keys are refused; secrets are named (`*_env`, `*_file`), never inline, and are read
//! once into `SecretString`s ([`NotifySecrets`]). Only `notify` (and `main`, which loads it)
//! uses this type; it is built from the leaf `crate::settings`.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;

use crate::settings::{check_url, invalid, ConfigError, TokenSource};

use super::triggers::Trigger;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySettings {
    pub server: ServerSettings,
    pub slack: SlackSettings,
    /// Where Slack posts slash commands (`POST /slack/commands`); absent: no commands.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// The durable cursors and sent-message keys (created if missing).
    pub state_dir: PathBuf,
    /// Links to the portal (`<portal_url>/ui/entity/...`); default: `server.url`.
    #[serde(default)]
    pub portal_url: Option<String>,
    /// Where notifications go whose component and owner name no channel; absent: dropped
    /// (and logged).
    #[serde(default)]
    pub default_channel: Option<String>,
    /// Which triggers notify; default: all of them.
    #[serde(default)]
    pub triggers: Option<BTreeSet<Trigger>>,
    #[serde(default)]
    pub limits: LimitSettings,
    #[serde(default)]
    pub retry: RetrySettings,
    /// Generic webhooks: every notification as JSON, signed (`X-Idp-Signature-256`).
    #[serde(default)]
    pub webhooks: Vec<WebhookSettings>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// `http://host:port` of idp-graph.
    pub url: String,
    /// The bot's bearer token (a principal granted `delegate` for slash commands).
    #[serde(default)]
    pub token_env: Option<String>,
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackSettings {
    /// `https://slack.com/api`.
    #[serde(default = "default_slack_api")]
    pub api_url: String,
    /// The bot token (`xoxb-...`; scopes `chat:write`, `users:read`, `users:read.email`,
    /// `channels:history` for recovery after a crash).
    #[serde(default)]
    pub bot_token_env: Option<String>,
    #[serde(default)]
    pub bot_token_file: Option<PathBuf>,
    /// The app's signing secret (slash commands).
    #[serde(default)]
    pub signing_secret_env: Option<String>,
    #[serde(default)]
    pub signing_secret_file: Option<PathBuf>,
}

fn default_slack_api() -> String {
    "https://slack.com/api".into()
}

/// Deduplication and rate limits, per application.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    /// The same notification (app, trigger, detail) again within this many seconds is not
    /// sent again. 0: never suppressed.
    pub dedupe_secs: u64,
    /// At most this many notifications per application per minute; the rest are dropped (and
    /// logged, and recorded as `rate_limited` in the state). 0: unlimited.
    pub per_app_per_minute: u32,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            dedupe_secs: 600,
            per_app_per_minute: 6,
        }
    }
}

/// Delivery retries (Slack and webhooks) on 429, 5xx and transport errors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySettings {
    pub max_attempts: u32,
    /// Longest wait between attempts (a `Retry-After` is honoured up to this).
    pub max_backoff_secs: f64,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            max_backoff_secs: 60.0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    pub url: String,
    /// HMAC-SHA256 key of the `X-Idp-Signature-256` header.
    #[serde(default)]
    pub secret_env: Option<String>,
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
}

/// The credentials, read once at start.
pub struct NotifySecrets {
    pub server_token: Option<SecretString>,
    pub slack_bot_token: Option<SecretString>,
    pub signing_secret: Option<SecretString>,
    /// One per `webhooks` entry, in order.
    pub webhook_secrets: Vec<Option<SecretString>>,
}

fn token(env: &Option<String>, file: &Option<PathBuf>) -> TokenSource {
    TokenSource {
        token_env: env.clone(),
        token_file: file.clone(),
    }
}

impl NotifySettings {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let settings: Self = serde_yaml::from_str(&text).map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        settings.validate()?;
        Ok(settings)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        check_url("server.url", &self.server.url)?;
        check_url("slack.api_url", &self.slack.api_url)?;
        if let Some(p) = &self.portal_url {
            check_url("portal_url", p)?;
        }
        token(&self.server.token_env, &self.server.token_file).validate("server")?;
        token(&self.slack.bot_token_env, &self.slack.bot_token_file).validate("slack.bot")?;
        token(
            &self.slack.signing_secret_env,
            &self.slack.signing_secret_file,
        )
        .validate("slack.signing_secret")?;
        if self.slack.bot_token_env.is_none() && self.slack.bot_token_file.is_none() {
            return Err(invalid(
                "slack.bot_token_env",
                "name the variable (or bot_token_file) holding the bot token",
            ));
        }
        if self.listen.is_some()
            && self.slack.signing_secret_env.is_none()
            && self.slack.signing_secret_file.is_none()
        {
            return Err(invalid(
                "slack.signing_secret_env",
                "slash commands (`listen`) need the signing secret",
            ));
        }
        if self.state_dir.as_os_str().is_empty() {
            return Err(invalid("state_dir", "must name a directory"));
        }
        if !(self.retry.max_backoff_secs.is_finite() && self.retry.max_backoff_secs > 0.0) {
            return Err(invalid(
                "retry.max_backoff_secs",
                "must be a positive number of seconds",
            ));
        }
        if self.retry.max_attempts == 0 {
            return Err(invalid("retry.max_attempts", "must be at least 1"));
        }
        for (i, w) in self.webhooks.iter().enumerate() {
            check_url(&format!("webhooks[{i}].url"), &w.url)?;
            token(&w.secret_env, &w.secret_file).validate(&format!("webhooks[{i}].secret"))?;
        }
        Ok(())
    }

    /// Reads every credential (errors name the key, never the value).
    pub fn resolve_secrets(&self) -> Result<NotifySecrets, ConfigError> {
        Ok(NotifySecrets {
            server_token: token(&self.server.token_env, &self.server.token_file)
                .resolve("server")?,
            slack_bot_token: token(&self.slack.bot_token_env, &self.slack.bot_token_file)
                .resolve("slack.bot")?,
            signing_secret: token(
                &self.slack.signing_secret_env,
                &self.slack.signing_secret_file,
            )
            .resolve("slack.signing_secret")?,
            webhook_secrets: self
                .webhooks
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    token(&w.secret_env, &w.secret_file).resolve(&format!("webhooks[{i}].secret"))
                })
                .collect::<Result<_, _>>()?,
        })
    }

    /// Is this trigger switched on?
    pub fn wants(&self, t: Trigger) -> bool {
        self.triggers.as_ref().is_none_or(|set| set.contains(&t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "server: { url: http://127.0.0.1:8080, token_env: IDP_GRAPH_TOKEN }\n\
slack: { api_url: https://slack.com/api, bot_token_env: SLACK_BOT_TOKEN, signing_secret_env: SLACK_SIGNING_SECRET }\n\
listen: 127.0.0.1:3000           # Slack posts slash commands to /slack/commands here\n\
state_dir: ./notify-state\n";

    #[test]
    fn the_minimal_config_of_the_issue_is_accepted() {
        let s: NotifySettings = serde_yaml::from_str(MINIMAL).unwrap();
        s.validate().unwrap();
        assert_eq!(s.listen.unwrap().port(), 3000);
        assert!(s.wants(Trigger::Degraded));
        assert_eq!(s.limits.dedupe_secs, 600);
    }

    #[test]
    fn unknown_keys_and_inline_credentials_are_refused() {
        let typo = MINIMAL.replace("state_dir", "statedir");
        assert!(serde_yaml::from_str::<NotifySettings>(&typo).is_err());
        let inline = MINIMAL.replace("http://127.0.0.1:8080", "http://bot:pw@127.0.0.1:8080");
        let s: NotifySettings = serde_yaml::from_str(&inline).unwrap();
        assert!(s.validate().unwrap_err().to_string().contains("server.url"));
        let no_secret = MINIMAL.replace(", signing_secret_env: SLACK_SIGNING_SECRET", "");
        let s: NotifySettings = serde_yaml::from_str(&no_secret).unwrap();
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("slack.signing_secret_env"));
    }
}
