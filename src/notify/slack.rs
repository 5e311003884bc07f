//! Slack's Web API as `notify` uses it: `chat.postMessage` with Block Kit blocks and message
//! `metadata` (the notification's key, so a restart can tell whether a post got through:
//! `conversations.history` with `include_all_metadata`), `users.info` (a slash command's user →
//! e-mail). Answers follow Slack's shape (`{"ok": false, "error": "..."}`); retries are
//! `retry.rs`'s. [`render`] turns a notice into the message: a header with the status, the
//! detail, fields (component, owner, commit and author, facts), a context line and link buttons.

use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use super::retry::{self, DeliveryError};
use super::settings::RetrySettings;
use super::triggers::Notice;

/// `metadata.event_type` of the bot's messages.
pub const EVENT_TYPE: &str = "idp_graph_notification";

#[derive(Debug, thiserror::Error)]
pub enum SlackError {
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    /// `{"ok": false, "error": "<code>"}` (`channel_not_found`, `invalid_auth`...).
    #[error("Slack refused {method}: {code}")]
    Api { method: &'static str, code: String },
    #[error("Slack's answer to {0} is not JSON")]
    Malformed(&'static str),
}

pub struct SlackClient {
    http: reqwest::Client,
    /// `https://slack.com/api` (no trailing slash).
    api: String,
    token: SecretString,
    retry: RetrySettings,
}

/// Where a message landed.
pub struct Posted {
    pub channel_id: String,
    pub ts: String,
}

impl SlackClient {
    pub fn new(
        http: reqwest::Client,
        api: &str,
        token: SecretString,
        retry: RetrySettings,
    ) -> Self {
        Self {
            http,
            api: api.trim_end_matches('/').to_string(),
            token,
            retry,
        }
    }

    async fn call(&self, method: &'static str, body: &Value) -> Result<Value, SlackError> {
        let url = format!("{}/{method}", self.api);
        let answer = retry::send(&self.retry, method, || {
            self.http
                .post(&url)
                .bearer_auth(self.token.expose_secret())
                .header("content-type", "application/json; charset=utf-8")
                .body(body.to_string())
        })
        .await?;
        let v: Value =
            serde_json::from_slice(&answer.body).map_err(|_| SlackError::Malformed(method))?;
        if v["ok"] == true {
            Ok(v)
        } else {
            Err(SlackError::Api {
                method,
                code: v["error"].as_str().unwrap_or("unknown_error").to_string(),
            })
        }
    }

    /// `chat.postMessage`.
    pub async fn post_message(&self, message: &Value) -> Result<Posted, SlackError> {
        let v = self.call("chat.postMessage", message).await?;
        Ok(Posted {
            channel_id: v["channel"].as_str().unwrap_or_default().to_string(),
            ts: v["ts"].as_str().unwrap_or_default().to_string(),
        })
    }

    /// `users.info`: the user's e-mail (`profile.email`; needs `users:read.email`).
    pub async fn user_email(&self, user_id: &str) -> Result<Option<String>, SlackError> {
        match self.call("users.info", &json!({ "user": user_id })).await {
            Ok(v) => Ok(v["user"]["profile"]["email"].as_str().map(str::to_string)),
            Err(SlackError::Api { code, .. }) if code == "user_not_found" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Is a message with this notification key among the channel's latest 200?
    pub async fn has_message_with_key(&self, channel: &str, key: &str) -> Result<bool, SlackError> {
        let v = self
            .call(
                "conversations.history",
                &json!({ "channel": channel, "include_all_metadata": true, "limit": 200 }),
            )
            .await?;
        Ok(v["messages"].as_array().is_some_and(|ms| {
            ms.iter().any(|m| {
                m["metadata"]["event_type"] == EVENT_TYPE
                    && m["metadata"]["event_payload"]["key"] == key
            })
        }))
    }
}

/// Escapes text for Slack's `mrkdwn` (`&`, `<`, `>`).
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// At most `n` characters (Block Kit's limits are in characters).
fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

fn link(url: &str, label: &str) -> String {
    format!(
        "<{}|{}>",
        url.replace('|', "%7C").replace('>', "%3E"),
        esc(label)
    )
}

/// The portal page of a catalog entity (`<portal>/ui/entity/<kind>/<namespace>/<name>`).
pub fn portal_link(portal: &str, entity_ref: &str) -> Option<String> {
    let (kind, rest) = entity_ref.split_once(':')?;
    let (ns, name) = rest.split_once('/')?;
    Some(format!(
        "{}/ui/entity/{kind}/{ns}/{name}",
        portal.trim_end_matches('/')
    ))
}

/// The `chat.postMessage` body for `notice` in `channel`.
pub fn render(notice: &Notice, channel: &str, portal: &str) -> Value {
    let headline = format!("{} {}", notice.trigger.emoji(), notice.headline);
    let mut fields = Vec::new();
    if let Some(c) = &notice.component {
        let label = c.title.clone().unwrap_or_else(|| c.name.clone());
        let text = match portal_link(portal, &c.entity_ref) {
            Some(url) => link(&url, &label),
            None => esc(&label),
        };
        fields.push(format!("*Component*\n{text}"));
    }
    if let Some(o) = &notice.owner {
        let label = o.title.clone().unwrap_or_else(|| o.name.clone());
        let text = match portal_link(portal, &o.entity_ref) {
            Some(url) => link(&url, &label),
            None => esc(&label),
        };
        fields.push(format!("*Owner*\n{text}"));
    }
    if let Some(c) = &notice.commit {
        let sha = if c.url.is_empty() {
            format!("`{}`", esc(&c.short_sha))
        } else {
            link(&c.url, &c.short_sha)
        };
        let by = c
            .author
            .as_deref()
            .map(|a| format!(" by {}", esc(a)))
            .unwrap_or_default();
        fields.push(format!("*Commit*\n{sha} {}{by}", esc(&c.title)));
    }
    for (label, value) in &notice.facts {
        fields.push(format!("*{}*\n{}", esc(label), esc(value)));
    }
    let fields: Vec<Value> = fields
        .into_iter()
        .take(10)
        .map(|f| json!({"type": "mrkdwn", "text": cut(&f, 2000)}))
        .collect();
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": cut(&headline, 150), "emoji": true},
    })];
    let detail = notice
        .detail
        .as_deref()
        .map(esc)
        .unwrap_or_else(|| format!("*{}*", esc(&notice.app)));
    let mut section =
        json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&detail, 3000)}});
    if !fields.is_empty() {
        section["fields"] = Value::Array(fields);
    }
    blocks.push(section);
    let mut context = vec![format!("*{}*", esc(notice.trigger.as_str()))];
    if let Some(p) = &notice.place {
        context.push(format!("application `{}` on {}", esc(&notice.app), esc(p)));
    }
    if let Some(at) = &notice.at {
        // To the second, in UTC: what an on-call reader compares with logs.
        let at = chrono::DateTime::parse_from_rfc3339(at)
            .map(|t| {
                t.with_timezone(&chrono::Utc)
                    .format("%Y-%m-%d %H:%M:%S UTC")
                    .to_string()
            })
            .unwrap_or_else(|_| at.clone());
        context.push(esc(&at));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": cut(&context.join(" · "), 3000)}],
    }));
    let mut buttons = Vec::new();
    if let Some(url) = notice
        .component
        .as_ref()
        .and_then(|c| portal_link(portal, &c.entity_ref))
    {
        buttons.push(("Open in the portal".to_string(), url));
    }
    buttons.extend(notice.links.iter().cloned());
    if !buttons.is_empty() {
        let elements: Vec<Value> = buttons
            .iter()
            .take(5)
            .enumerate()
            .map(|(i, (label, url))| {
                json!({
                    "type": "button",
                    "action_id": format!("link-{i}"),
                    "text": {"type": "plain_text", "text": cut(label, 75)},
                    "url": cut(url, 3000),
                })
            })
            .collect();
        blocks.push(json!({"type": "actions", "elements": elements}));
    }
    // The text is the notification's fallback (and what screen readers and push
    // notifications show).
    let text = format!(
        "{headline}{}",
        notice
            .owner
            .as_ref()
            .map(|o| format!(" (owner: {})", o.name))
            .unwrap_or_default()
    );
    json!({
        "channel": channel,
        "text": cut(&text, 3000),
        "blocks": blocks,
        "unfurl_links": false,
        "metadata": {
            "event_type": EVENT_TYPE,
            "event_payload": {
                "key": notice.key,
                "trigger": notice.trigger.as_str(),
                "app": notice.app,
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::triggers::{notices, Stream};

    #[test]
    fn a_message_carries_status_owner_commit_links_and_its_key() {
        let t = json!({
            "cursor": "c1", "type": "TRANSITION", "kind": "HEALTH", "from": "HEALTHY", "to": "DEGRADED",
            "application": {"name": "app-3", "instance": "main", "project": "applications",
                "health": {"message": "x < y & z"},
                "sync": {"commit": {"sha": "abcdef0123", "shortSha": "abcdef0", "title": "Fix",
                    "url": "https://github.com/o/app-3/commit/abcdef0123", "repositorySlug": "o/app-3",
                    "author": {"name": "Carol Chen"}}}},
            "entity": {"ref": "component:default/app-3", "name": "app-3",
                "owner": {"ref": "group:default/app-team", "name": "app-team", "channel": "#app-team"}}
        });
        let n = &notices(Stream::Health, &t)[0];
        let m = render(n, "#app-team", "http://127.0.0.1:8080");
        assert_eq!(m["channel"], "#app-team");
        assert_eq!(m["metadata"]["event_payload"]["key"], n.key);
        let text = m["blocks"].to_string();
        assert!(
            text.contains("app-team") && text.contains("Carol Chen"),
            "{text}"
        );
        assert!(text.contains("x &lt; y &amp; z"), "escaped: {text}");
        assert!(text.contains("http://127.0.0.1:8080/ui/entity/component/default/app-3"));
        assert!(text.contains("https://github.com/o/app-3/commit/abcdef0123"));
    }
}
