//! `idp-graph notify --config notify.yaml`: the chatops bot. A client of idp-graph's public API
//! like any other — it follows subscriptions with cursors over websockets (`crate::watch`) and
//! calls `POST /graphql` (`graph.rs`); it never reads the server's memory — and turns what
//! happens into Slack messages and webhook deliveries, and Slack's slash commands into
//! actions taken as the Slack user's catalog user.
//!
//! - `settings.rs`: `notify.yaml`; `triggers.rs`: the subscriptions and event → [`Notice`]s
//!   (pure); `routing.rs`: notice → channel, by the catalog (pure); `slack.rs`: the Web API
//!   client and the Block Kit rendering; `webhook.rs`: signed JSON deliveries; `retry.rs`: the
//!   one retry policy (429/5xx, `Retry-After`); `state.rs`: cursors and handled keys on disk;
//!   `commands.rs`: the slash-command endpoint; `graph.rs`: GraphQL over HTTP, with delegation.
//!
//! Exactly once across a crash: an event's notices are handled in order, each one's key is
//! written as *pending* before its post and as *handled* after; the stream's cursor moves only
//! once all of an event's notices are handled. At start, every pending key is looked up in its
//! channel (the message carries the key in its `metadata`): found, it counts as sent; not
//! found, it is sent when the event is replayed from the cursor. Webhooks are at least once
//! (their receivers get the key as `id` to drop repeats).
//!
//! Imports: `watch`, and `auth` for the delegation header's name; nothing else of the crate
//! but the leaf `settings`.

pub mod commands;
pub mod graph;
pub mod retry;
pub mod routing;
pub mod settings;
pub mod slack;
pub mod state;
pub mod triggers;
pub mod webhook;

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub use settings::{NotifySecrets, NotifySettings};
pub use triggers::{Notice, Stream, Trigger};

use graph::GraphClient;
use slack::{SlackClient, SlackError};
use state::{NotifyState, Pending, StateError};
use webhook::Webhook;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("a subscription ended: {0}")]
    StreamsEnded(String),
}

/// The running bot's parts, shared by its streams.
struct Bot {
    settings: NotifySettings,
    state: NotifyState,
    slack: Arc<SlackClient>,
    graph: Arc<GraphClient>,
    webhooks: Vec<Webhook>,
    http: reqwest::Client,
    /// Per application: when its latest notifications were sent (the per-minute limit). A
    /// `parking_lot` lock: short pushes and trims, never across an await.
    sent_per_app: Mutex<HashMap<String, VecDeque<Instant>>>,
    shutdown: CancellationToken,
}

/// Runs the bot until `shutdown`.
pub async fn run(
    settings: NotifySettings,
    secrets: NotifySecrets,
    shutdown: CancellationToken,
) -> Result<(), NotifyError> {
    let state = NotifyState::open(&settings.state_dir)?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(|e| NotifyError::Client(e.to_string()))?;
    let Some(bot_token) = secrets.slack_bot_token else {
        return Err(NotifyError::Client("no Slack bot token".into()));
    };
    let slack = Arc::new(SlackClient::new(
        http.clone(),
        &settings.slack.api_url,
        bot_token,
        settings.retry.clone(),
    ));
    let graph = Arc::new(GraphClient::new(
        http.clone(),
        &settings.server.url,
        secrets.server_token.clone(),
    ));
    let webhooks = settings
        .webhooks
        .iter()
        .zip(secrets.webhook_secrets)
        .map(|(w, secret)| Webhook {
            url: w.url.clone(),
            secret,
        })
        .collect();
    if let (Some(addr), Some(secret)) = (settings.listen, secrets.signing_secret) {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| NotifyError::Listen { addr, source })?;
        let router = commands::router(Arc::new(commands::Commands {
            signing_secret: secret,
            slack: slack.clone(),
            graph: graph.clone(),
            http: http.clone(),
            seen: Default::default(),
        }));
        let stop = shutdown.clone();
        tracing::info!(listen = %addr, "slash commands at POST /slack/commands");
        tokio::spawn(
            async move {
                let _ = axum::serve(listener, router)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await;
            }
            .instrument(tracing::info_span!("notify_commands", listen = %addr)),
        );
    }
    let bot = Arc::new(Bot {
        settings,
        state,
        slack,
        graph,
        webhooks,
        http,
        sent_per_app: Mutex::new(HashMap::new()),
        shutdown: shutdown.clone(),
    });
    bot.recover_pending().await?;
    let mut streams = tokio::task::JoinSet::new();
    for stream in Stream::ALL {
        if stream.needed_for(|t| bot.settings.wants(t)) {
            let (bot, token) = (bot.clone(), secrets.server_token.clone());
            let span = tracing::info_span!("notify_stream", stream = stream.name());
            streams
                .spawn(async move { (stream, bot.follow(stream, token).await) }.instrument(span));
        }
    }
    tracing::info!(streams = streams.len(), "notify started");
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                streams.abort_all();
                return Ok(bot.state.flush()?);
            }
            done = streams.join_next() => match done {
                None => return Err(NotifyError::StreamsEnded("none configured".into())),
                // `watch` itself reconnects and resumes through server restarts: a stream that
                // ends is refused or cannot keep its state. Keeping the others up would hide
                // that one kind of notification stopped; exit (non-zero) instead, so that the
                // supervisor restarts the bot from its durable cursors.
                Some(Ok((stream, Err(e)))) => {
                    tracing::error!(stream = stream.name(), error = %e, "subscription ended");
                    streams.abort_all();
                    bot.state.flush()?;
                    return Err(NotifyError::StreamsEnded(format!("{}: {e}", stream.name())));
                }
                Some(Ok((_, Ok(())))) => {}
                Some(Err(e)) if e.is_cancelled() => {}
                Some(Err(e)) => {
                    streams.abort_all();
                    return Err(NotifyError::StreamsEnded(e.to_string()));
                }
            },
        }
    }
}

/// Hands each line `watch` prints to the async side (a line is complete at its newline).
struct Lines(tokio::sync::mpsc::UnboundedSender<String>, Vec<u8>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.1.extend_from_slice(buf);
        while let Some(pos) = self.1.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.1.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line).trim().to_string();
            if !line.is_empty() && self.0.send(line).is_err() {
                return Err(std::io::Error::other("the bot stopped"));
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Settles the posts a crash left pending: a message carrying the key (its `metadata`) in its
/// channel means it went through (handled); none means it did not (it is sent again when its
/// event is replayed). When Slack cannot tell, it is sent again: a repeat beats a loss.
pub async fn settle_pending(state: &NotifyState, slack: &SlackClient) -> Result<(), StateError> {
    for p in state.pending() {
        let channel = state
            .channel_id(&p.channel)
            .unwrap_or_else(|| p.channel.clone());
        match slack.has_message_with_key(&channel, &p.key).await {
            Ok(true) => {
                tracing::info!(key = %p.key, "a post pending at the last stop had gone through");
                state.finish(&p.key, "sent")?;
            }
            Ok(false) => state.abandon(&p.key)?,
            Err(e) => {
                tracing::warn!(key = %p.key, error = %e, "cannot check a pending post; it will be sent again");
                state.abandon(&p.key)?;
            }
        }
    }
    Ok(())
}

impl Bot {
    async fn recover_pending(&self) -> Result<(), NotifyError> {
        Ok(settle_pending(&self.state, &self.slack).await?)
    }

    /// Follows one subscription from its durable cursor until the bot stops.
    async fn follow(
        self: &Arc<Self>,
        stream: Stream,
        token: Option<secrecy::SecretString>,
    ) -> Result<(), String> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let opts = crate::watch::WatchOptions {
            url: self.settings.server.url.clone(),
            token,
            query: stream.document(),
            variables: json!({}),
            max_events: None,
            persisted: false,
            after: self.state.cursor(stream.name()),
        };
        let watcher = tokio::spawn(
            async move {
                let mut lines = Lines(tx, Vec::new());
                crate::watch::run(opts, &mut lines).await
            }
            .instrument(tracing::info_span!("notify_watch", stream = stream.name())),
        );
        while let Some(line) = rx.recv().await {
            let Ok(event) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if let Err(e) = self.handle(stream, &event).await {
                watcher.abort();
                return Err(e.to_string());
            }
        }
        match watcher.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// One event: its notices, each handled, then the cursor.
    async fn handle(&self, stream: Stream, event: &Value) -> Result<(), StateError> {
        let Some(cursor) = event["cursor"].as_str() else {
            return Ok(());
        };
        if event["type"] == "RESYNC_REQUIRED" {
            tracing::warn!(
                stream = stream.name(),
                "the server could not replay from the cursor: events were lost"
            );
            return self.state.set_cursor(stream.name(), cursor);
        }
        let mut notices = triggers::notices(stream, event);
        if stream == Stream::Repositories && event["type"] == "WORKFLOW_RUN" {
            if let Some(slug) = event["slug"].as_str() {
                match self
                    .graph
                    .run(triggers::WORKFLOW_QUERY, json!({ "slug": slug }), None)
                    .await
                {
                    Ok(body) => notices.extend(triggers::workflow_failure(
                        event,
                        &body["data"]["repository"],
                    )),
                    Err(e) => tracing::warn!(slug, error = %e, "cannot read the workflow runs"),
                }
            }
        }
        for notice in notices {
            if self.settings.wants(notice.trigger) {
                self.deliver(&notice).await?;
            }
        }
        if self.shutdown.is_cancelled() {
            // A delivery may have stopped half-way: the event is replayed at the next start.
            return Ok(());
        }
        self.state.set_cursor(stream.name(), cursor)
    }

    /// Is `app` over its per-minute budget? (Counts this one when not.)
    fn over_rate(&self, app: &str) -> bool {
        let limit = self.settings.limits.per_app_per_minute as usize;
        if limit == 0 {
            return false;
        }
        let mut map = self.sent_per_app.lock();
        let sent = map.entry(app.to_string()).or_default();
        let now = Instant::now();
        while sent
            .front()
            .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(60))
        {
            sent.pop_front();
        }
        if sent.len() >= limit {
            return true;
        }
        sent.push_back(now);
        false
    }

    async fn deliver(&self, notice: &Notice) -> Result<(), StateError> {
        if self.state.handled(&notice.key) {
            return Ok(());
        }
        let dedupe_key = format!(
            "{}|{}|{}",
            notice.app,
            notice.trigger.as_str(),
            notice.detail_key
        );
        let now = chrono::Utc::now().timestamp();
        let window = self.settings.limits.dedupe_secs as i64;
        if window > 0
            && self
                .state
                .last_sent(&dedupe_key)
                .is_some_and(|t| now - t < window)
        {
            tracing::info!(key = %notice.key, app = %notice.app, "suppressed: the same notification was sent recently");
            return self.state.finish(&notice.key, "suppressed");
        }
        if self.over_rate(&notice.app) {
            tracing::warn!(key = %notice.key, app = %notice.app, "dropped: over the per-application rate limit");
            return self.state.finish(&notice.key, "rate_limited");
        }
        let channel = routing::channel_for(notice, self.settings.default_channel.as_deref());
        for hook in &self.webhooks {
            let body = webhook::payload(notice, channel.as_deref());
            if let Err(e) = hook.deliver(&self.http, &self.settings.retry, &body).await {
                tracing::warn!(url = %hook.url, key = %notice.key, error = %e, "webhook delivery failed");
            }
        }
        let Some(channel) = channel else {
            if !self.webhooks.is_empty() {
                // Delivered to the webhooks only: that counts for the dedupe window too.
                self.state.note_sent(&dedupe_key, now)?;
            }
            tracing::warn!(key = %notice.key, app = %notice.app, "no channel: neither the component nor its owner names one, and no default_channel");
            return self.state.finish(&notice.key, "unrouted");
        };
        let portal = self
            .settings
            .portal_url
            .clone()
            .unwrap_or_else(|| self.settings.server.url.clone());
        let message = slack::render(notice, &channel, &portal);
        self.state.begin(Pending {
            key: notice.key.clone(),
            channel: channel.clone(),
        })?;
        loop {
            match self.slack.post_message(&message).await {
                Ok(posted) => {
                    if !posted.channel_id.is_empty() {
                        self.state.set_channel_id(&channel, &posted.channel_id)?;
                    }
                    self.state.finish(&notice.key, "sent")?;
                    self.state.note_sent(&dedupe_key, now)?;
                    tracing::info!(key = %notice.key, channel = %channel, trigger = notice.trigger.as_str(), app = %notice.app, "notified");
                    return Ok(());
                }
                Err(SlackError::Delivery(e)) => {
                    // Slack is away: keep the notice (and the cursor) and try again.
                    tracing::warn!(key = %notice.key, error = %e, "Slack unreachable; trying again");
                    let wait = Duration::from_secs_f64(self.settings.retry.max_backoff_secs);
                    tokio::select! {
                        _ = self.shutdown.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
                Err(e) => {
                    tracing::error!(key = %notice.key, channel = %channel, error = %e, "Slack refused the notification");
                    return self.state.finish(&notice.key, "failed");
                }
            }
        }
    }
}
