//! `Subscription`: live changes from the event bus, filtered on the server.
//!
//! Every subscription reads one feed: the replay buffer after the client's cursor (`after`),
//! then live events. Missing events — a cursor older than the buffer, or a subscriber that fell
//! behind the bounded channel — become one explicit `RESYNC_REQUIRED` event, never silent loss
//! and never unbounded memory. Each event carries its `cursor` (the bus sequence number).
//! `initial: true` first sends the current state, so a page renders and follows with one request.

use std::sync::Arc;

use async_graphql::{
    Context, Enum, Object, Result, SimpleObject, Subscription as SubscriptionMacro,
};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use tokio::sync::broadcast::error::RecvError;

use super::application::{ApplicationNode, HealthStatusCode, OperationPhaseCode, SyncStatusCode};
use super::entity::{EntityItem, EntityNode};
use super::error::bad_input;
use super::filter::{ApplicationFilter, ApplicationMatcher, EntityFilter, EntityMatcher};
use super::{gctx, Viewer};
use crate::auth::Principal;
use crate::domain::argocd::Application;
use crate::domain::Entity;
use crate::events::{
    workload::TroubleKind, AppTransition, Change, ChangeKind, Event, RepositoryCause,
    RepositoryChange, RolloutTransition,
};
use crate::state::State;

/// One item of the feed.
enum Feed {
    Event(Arc<Event>),
    /// Events were lost before this point; `seq` is where the live stream resumes.
    Resync(u64),
}

impl Feed {
    /// A source's gap (`Change::Gap`) is a resync at its position for every subscriber.
    fn of(e: Arc<Event>) -> Self {
        match e.change {
            crate::events::Change::Gap { .. } => Feed::Resync(e.seq),
            _ => Feed::Event(e),
        }
    }
}

/// Where to start: `None` live; `Some(Some(seq))` after a cursor of this server's epoch;
/// `Some(None)` a cursor from another epoch (restart, other replica): resync first.
fn parse_cursor(state: &State, after: Option<String>) -> Result<Option<Option<u64>>> {
    after
        .map(|a| {
            state
                .bus
                .parse_cursor(&a)
                .map_err(|_| bad_input("`after` must be a cursor from an earlier event"))
        })
        .transpose()
}

/// Backlog after the cursor, then live events; gaps and lag become `Resync`.
fn feed(
    state: &Arc<State>,
    after: Option<Option<u64>>,
) -> impl Stream<Item = Feed> + Send + 'static {
    let foreign = matches!(after, Some(None));
    let cursor = after.flatten();
    let sub = state.bus.subscribe_after(cursor);
    let next = state.bus.next_seq();
    let head: Vec<Feed> = (sub.gap || foreign)
        .then(|| Feed::Resync(next.saturating_sub(1)))
        .into_iter()
        .chain(sub.backlog.into_iter().map(Feed::of))
        .collect();
    let last_backlog = head
        .iter()
        .filter_map(|f| match f {
            Feed::Event(e) => Some(e.seq),
            _ => None,
        })
        .max()
        // A cursor from a replica further along the shared log than this one: what it has
        // seen arrives here later, live, and is skipped too.
        .max(cursor);
    let state = state.clone();
    let live = futures::stream::unfold((sub.live, state), |(mut rx, state)| async move {
        match rx.recv().await {
            Ok(e) => Some((Some(Feed::of(e)), (rx, state))),
            Err(RecvError::Lagged(_)) => {
                let seq = state.bus.next_seq().saturating_sub(1);
                Some((Some(Feed::Resync(seq)), (rx, state)))
            }
            Err(RecvError::Closed) => None,
        }
    })
    .filter_map(move |f| {
        // Skip live events the backlog already delivered.
        let keep = match &f {
            Some(Feed::Event(e)) => last_backlog.is_none_or(|l| e.seq > l),
            Some(Feed::Resync(seq)) => last_backlog.is_none_or(|l| *seq > l),
            None => true,
        };
        futures::future::ready(if keep { f } else { None })
    });
    futures::stream::iter(head).chain(live)
}

/// Who a subscriber is, captured when it subscribes: every event is judged against it.
#[derive(Clone)]
struct Audience {
    principal: Arc<Principal>,
    state: Arc<State>,
}

impl Audience {
    fn of(ctx: &Context<'_>) -> Self {
        Self {
            principal: Arc::new(Viewer::of(ctx).principal.clone()),
            state: gctx(ctx).state.clone(),
        }
    }
    fn viewer(&self) -> Viewer<'_> {
        Viewer::new(&self.principal, &self.state)
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ChangeType {
    /// Current state, sent first when `initial: true`.
    Initial,
    Added,
    Modified,
    Removed,
    /// Events were lost (cursor too old, or this subscriber fell behind): re-read what you
    /// display, then continue with the events that follow.
    ResyncRequired,
}

fn change_type(k: ChangeKind) -> ChangeType {
    match k {
        ChangeKind::Added => ChangeType::Added,
        ChangeKind::Modified => ChangeType::Modified,
        ChangeKind::Deleted => ChangeType::Removed,
    }
}

// ---------------------------------------------------------------- entities

pub struct EntityEvent {
    seq: u64,
    at: DateTime<Utc>,
    kind: ChangeType,
    entity_ref: Option<String>,
    current: Option<Arc<Entity>>,
    previous: Option<Arc<Entity>>,
    state: Arc<State>,
}

#[Object]
impl EntityEvent {
    /// Position in the server's event sequence; pass it as `after` to resume.
    async fn cursor(&self) -> String {
        self.state.bus.cursor(self.seq)
    }
    #[graphql(name = "type")]
    async fn event_type(&self) -> ChangeType {
        self.kind
    }
    async fn at(&self) -> DateTime<Utc> {
        self.at
    }
    #[graphql(name = "ref")]
    async fn entity_ref(&self) -> Option<&str> {
        self.entity_ref.as_deref()
    }
    /// The entity after the change (null when removed).
    async fn entity(&self) -> Option<EntityItem> {
        let e = self.current.clone()?;
        Some(EntityItem::from(EntityNode::new(
            e,
            self.state.catalog.snapshot(),
        )))
    }
    /// The entity before the change (null when added).
    async fn previous(&self) -> Option<EntityItem> {
        let e = self.previous.clone()?;
        Some(EntityItem::from(EntityNode::new(
            e,
            self.state.catalog.snapshot(),
        )))
    }
}

// ------------------------------------------------------------ repositories

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum RepositoryEventType {
    Push,
    PullRequest,
    WorkflowRun,
    /// The repository's own fields (a `repository` or `issues` delivery).
    Repository,
    /// A safety-net round found a change no delivery told of.
    Detected,
    /// Events were lost: re-read what you display, then continue.
    ResyncRequired,
}

impl From<RepositoryCause> for RepositoryEventType {
    fn from(c: RepositoryCause) -> Self {
        match c {
            RepositoryCause::Push => Self::Push,
            RepositoryCause::PullRequest => Self::PullRequest,
            RepositoryCause::WorkflowRun => Self::WorkflowRun,
            RepositoryCause::Repository => Self::Repository,
            RepositoryCause::Detected => Self::Detected,
        }
    }
}

pub struct RepositoryEvent {
    cursor: String,
    event_type: RepositoryEventType,
    at: DateTime<Utc>,
    change: Option<RepositoryChange>,
}

#[Object]
impl RepositoryEvent {
    /// Position in the server's event sequence; pass it as `after` to resume.
    async fn cursor(&self) -> &str {
        &self.cursor
    }
    #[graphql(name = "type")]
    async fn event_type(&self) -> RepositoryEventType {
        self.event_type
    }
    async fn at(&self) -> DateTime<Utc> {
        self.at
    }
    /// `owner/name` (null on `RESYNC_REQUIRED`).
    async fn slug(&self) -> Option<&str> {
        self.change.as_ref().map(|c| c.slug.as_str())
    }
    /// The branch a push moved (or whose head the safety net saw move).
    async fn branch(&self) -> Option<&str> {
        self.change.as_ref()?.branch.as_deref()
    }
    /// The branch's new head.
    async fn head_sha(&self) -> Option<&str> {
        self.change.as_ref()?.head_sha.as_deref()
    }
    async fn head_message(&self) -> Option<&str> {
        self.change.as_ref()?.head_message.as_deref()
    }
}

// ------------------------------------------------------------ applications

/// The status fields people follow, at one moment.
#[derive(SimpleObject, Clone, PartialEq)]
pub struct ApplicationStatus {
    pub sync: SyncStatusCode,
    pub health: HealthStatusCode,
    pub revision: Option<String>,
    pub operation_phase: Option<OperationPhaseCode>,
}

fn status_of(a: &Application) -> ApplicationStatus {
    ApplicationStatus {
        sync: a.sync_status.into(),
        health: a.health.into(),
        revision: a.sync_revision.clone(),
        operation_phase: a.operation_state.as_ref().map(|o| o.phase.into()),
    }
}

#[derive(SimpleObject)]
pub struct ApplicationEvent {
    /// Position in the server's event sequence; pass it as `after` to resume.
    pub cursor: String,
    #[graphql(name = "type")]
    pub event_type: ChangeType,
    pub at: DateTime<Utc>,
    /// The application after the change (before it, when removed). Null for RESYNC_REQUIRED.
    pub application: Option<ApplicationNode>,
    pub previous: Option<ApplicationStatus>,
    pub current: Option<ApplicationStatus>,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum TransitionKind {
    Health,
    Sync,
    Operation,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum TransitionEventType {
    Transition,
    /// The current status, sent first when `initial: true` (`from` is null).
    Initial,
    ResyncRequired,
}

/// One status change of one application: health, sync or operation phase went `from` → `to`
/// (enum names: `OUT_OF_SYNC`, `DEGRADED`, `SUCCEEDED`...).
pub struct HealthTransition {
    seq: u64,
    at: DateTime<Utc>,
    kind: Option<TransitionKind>,
    event_type: TransitionEventType,
    from: Option<String>,
    to: Option<String>,
    app: Option<Arc<Application>>,
}

#[Object]
impl HealthTransition {
    async fn cursor(&self, ctx: &Context<'_>) -> String {
        gctx(ctx).state.bus.cursor(self.seq)
    }
    #[graphql(name = "type")]
    async fn event_type(&self) -> TransitionEventType {
        self.event_type
    }
    async fn at(&self) -> DateTime<Utc> {
        self.at
    }
    async fn kind(&self) -> Option<TransitionKind> {
        self.kind
    }
    async fn from(&self) -> Option<&str> {
        self.from.as_deref()
    }
    async fn to(&self) -> Option<&str> {
        self.to.as_deref()
    }
    async fn application(&self) -> Option<ApplicationNode> {
        self.app.clone().map(ApplicationNode)
    }
    /// The catalog entity the application belongs to.
    async fn entity(&self, ctx: &Context<'_>) -> Option<EntityItem> {
        let app = self.app.as_ref()?;
        ApplicationNode(app.clone()).entity_of(ctx)
    }
}

fn name<T: async_graphql::OutputType>(v: T) -> String
where
    async_graphql::Value: From<T>,
{
    async_graphql::Value::from(v).to_string()
}

/// A transition the bus derived, as the schema names it: (kind, from, to).
fn transition_names(t: &AppTransition) -> (TransitionKind, Option<String>, String) {
    match *t {
        AppTransition::Sync { from, to } => (
            TransitionKind::Sync,
            Some(name(SyncStatusCode::from(from))),
            name(SyncStatusCode::from(to)),
        ),
        AppTransition::Health { from, to } => (
            TransitionKind::Health,
            Some(name(HealthStatusCode::from(from))),
            name(HealthStatusCode::from(to)),
        ),
        AppTransition::Operation { from, to } => (
            TransitionKind::Operation,
            from.map(|f| name(OperationPhaseCode::from(f))),
            name(OperationPhaseCode::from(to)),
        ),
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum TemplateTaskEventType {
    Log,
    Completion,
    Cancelled,
    Recovered,
    Other,
}

/// One event of a scaffolder task.
#[derive(SimpleObject)]
pub struct TemplateTaskEvent {
    pub id: i64,
    #[graphql(name = "type")]
    pub event_type: TemplateTaskEventType,
    pub message: Option<String>,
    pub step_id: Option<String>,
    /// Step status on step events (`processing`, `completed`, `failed`).
    pub status: Option<String>,
    /// The task's output (links, text) on `COMPLETION`.
    pub output: Option<async_graphql::Json<serde_json::Value>>,
    /// True on `COMPLETION` when the task failed.
    pub failed: bool,
    pub created_at: Option<String>,
}

pub struct Subscription;

#[SubscriptionMacro]
impl Subscription {
    /// Follows a scaffolder task (from `createFromTemplate`) to its completion. `id` is the
    /// task's `id` or its `taskId`.
    async fn template_task(
        &self,
        ctx: &Context<'_>,
        id: async_graphql::ID,
    ) -> Result<impl Stream<Item = Result<TemplateTaskEvent>>> {
        let id = match crate::domain::node_id::NodeId::decode(&id) {
            Ok(crate::domain::node_id::NodeId::TemplateTask { task_id }) => task_id,
            _ => id.0,
        };
        if id.is_empty() || id.len() > 200 {
            return Err(bad_input("`id` must be a task id from createFromTemplate"));
        }
        // Another caller's task answers as a task that does not exist would (the scaffolder's
        // 404, whose own words only platform-team reads).
        if !super::Viewer::of(ctx).sees_template_task(&id) {
            return Err(super::error::upstream(
                "backstage",
                &crate::sources::SourceError::Refused {
                    status: 404,
                    code: "NOT_FOUND",
                    message: format!("no scaffolder task `{id}`"),
                },
            ));
        }
        let Some(backstage) = gctx(ctx).upstreams.backstage() else {
            return Err(super::error::not_found("Backstage is not configured"));
        };
        let wake = backstage.wake.clone();
        let events = backstage
            .task_events(&id)
            .await
            .map_err(|e| super::error::upstream("backstage", &e))?;
        Ok(events
            .map(move |ev| {
                let ev = ev.map_err(|e| super::error::upstream("backstage", &e))?;
                let body = &ev.body;
                let text = |k: &str| body.get(k).and_then(|v| v.as_str()).map(str::to_string);
                let event_type = match ev.kind.as_str() {
                    "log" => TemplateTaskEventType::Log,
                    "completion" => TemplateTaskEventType::Completion,
                    "cancelled" => TemplateTaskEventType::Cancelled,
                    "recovered" => TemplateTaskEventType::Recovered,
                    _ => TemplateTaskEventType::Other,
                };
                let message = text("message");
                if event_type == TemplateTaskEventType::Completion {
                    // The template registered things: look at the catalog now, not at the next poll.
                    wake.notify_one();
                }
                Ok(TemplateTaskEvent {
                    id: ev.id,
                    event_type,
                    failed: event_type == TemplateTaskEventType::Completion
                        && (body.get("error").is_some()
                            || message.as_deref().is_some_and(|m| m.contains("failed"))),
                    status: text("status"),
                    step_id: text("stepId"),
                    output: body.get("output").cloned().map(async_graphql::Json),
                    message,
                    created_at: ev.created_at,
                })
            })
            .scan(false, |done, item| {
                // End the stream right after the completion event.
                if *done {
                    return futures::future::ready(None);
                }
                if let Ok(e) = &item {
                    *done = matches!(
                        e.event_type,
                        TemplateTaskEventType::Completion | TemplateTaskEventType::Cancelled
                    );
                }
                futures::future::ready(Some(item))
            }))
    }

    /// Catalog entities added, modified or removed, as each poll finds them.
    async fn entity_events(
        &self,
        ctx: &Context<'_>,
        filter: Option<EntityFilter>,
        after: Option<String>,
    ) -> Result<impl Stream<Item = EntityEvent>> {
        let matcher = EntityMatcher::new(filter)?;
        let state = gctx(ctx).state.clone();
        let after = parse_cursor(&state, after)?;
        let audience = Audience::of(ctx);
        Ok(feed(&state, after).filter_map(move |f| {
            let state = state.clone();
            let out = match f {
                Feed::Resync(seq) => Some(EntityEvent {
                    seq,
                    at: Utc::now(),
                    kind: ChangeType::ResyncRequired,
                    entity_ref: None,
                    current: None,
                    previous: None,
                    state,
                }),
                Feed::Event(event) => match &event.change {
                    Change::Entity(c) => {
                        let snap = state.catalog.snapshot();
                        let relevant = [&c.current, &c.previous]
                            .into_iter()
                            .flatten()
                            .any(|e| matcher.matches(e, &snap) && audience.viewer().sees_entity(e));
                        relevant.then(|| EntityEvent {
                            seq: event.seq,
                            at: event.at,
                            kind: change_type(c.kind),
                            entity_ref: Some(c.entity_ref.clone()),
                            current: c.current.clone(),
                            previous: c.previous.clone(),
                            state,
                        })
                    }
                    _ => None,
                },
            };
            futures::future::ready(out)
        }))
    }

    /// Every change of an ArgoCD application, with its status before and after.
    async fn application_events(
        &self,
        ctx: &Context<'_>,
        filter: Option<ApplicationFilter>,
        #[graphql(default)] initial: bool,
        after: Option<String>,
    ) -> Result<impl Stream<Item = ApplicationEvent>> {
        let matcher = Arc::new(ApplicationMatcher::new(filter)?);
        let state = gctx(ctx).state.clone();
        let after = parse_cursor(&state, after)?;
        let audience = Audience::of(ctx);
        let live = feed(&state, after);
        let now_seq = state.bus.next_seq().saturating_sub(1);
        let initial_events: Vec<ApplicationEvent> = if initial {
            let (m, a) = (matcher.clone(), audience.clone());
            state
                .apps
                .select(|app| m.matches(app) && a.viewer().sees_app(app))
                .into_iter()
                .map(|app| ApplicationEvent {
                    cursor: state.bus.cursor(now_seq),
                    event_type: ChangeType::Initial,
                    at: Utc::now(),
                    current: Some(status_of(&app)),
                    previous: None,
                    application: Some(ApplicationNode(app)),
                })
                .collect()
        } else {
            Vec::new()
        };
        let bus_state = state.clone();
        let events = live.filter_map(move |f| {
            let out = match f {
                Feed::Resync(seq) => Some(ApplicationEvent {
                    cursor: bus_state.bus.cursor(seq),
                    event_type: ChangeType::ResyncRequired,
                    at: Utc::now(),
                    application: None,
                    previous: None,
                    current: None,
                }),
                Feed::Event(event) => match &event.change {
                    Change::Application(c) => {
                        let app = c.current.clone().or_else(|| c.previous.clone());
                        app.filter(|a| matcher.matches(a) && audience.viewer().sees_app(a))
                            .map(|a| ApplicationEvent {
                                cursor: bus_state.bus.cursor(event.seq),
                                event_type: change_type(c.kind),
                                at: event.at,
                                previous: c.previous.as_deref().map(status_of),
                                current: c.current.as_deref().map(status_of),
                                application: Some(ApplicationNode(a)),
                            })
                    }
                    _ => None,
                },
            };
            futures::future::ready(out)
        });
        Ok(futures::stream::iter(initial_events).chain(events))
    }

    /// GitHub repositories changing, as webhook deliveries tell (`PUSH`, `PULL_REQUEST`,
    /// `WORKFLOW_RUN`, `REPOSITORY`) or the safety net finds (`DETECTED`: a change no delivery
    /// told of). Needs `github.webhook_secret_*`; `slugs` narrows to those repositories.
    async fn repository_events(
        &self,
        ctx: &Context<'_>,
        slugs: Option<Vec<String>>,
        after: Option<String>,
    ) -> Result<impl Stream<Item = RepositoryEvent>> {
        if let Some(bad) = slugs
            .iter()
            .flatten()
            .find(|s| !crate::domain::annotations::is_github_slug(s))
        {
            return Err(bad_input(format!("`{bad}` is not an owner/name slug")));
        }
        let state = gctx(ctx).state.clone();
        let after = parse_cursor(&state, after)?;
        let audience = Audience::of(ctx);
        let github = ctx
            .data_opt::<Arc<crate::sources::github::GitHubSource>>()
            .cloned();
        Ok(feed(&state, after).filter_map(move |f| {
            let out = match f {
                Feed::Resync(seq) => Some(RepositoryEvent {
                    cursor: state.bus.cursor(seq),
                    event_type: RepositoryEventType::ResyncRequired,
                    at: Utc::now(),
                    change: None,
                }),
                Feed::Event(event) => match &event.change {
                    // GitHub's own visibility, as last seen (unknown: the private rule).
                    Change::Repository(c)
                        if slugs.as_ref().is_none_or(|s| s.contains(&c.slug))
                            && super::github::sees_repository(
                                &audience.viewer(),
                                github.as_deref(),
                                &c.slug,
                                github
                                    .as_deref()
                                    .and_then(|g| g.held_visibility(&c.slug))
                                    .as_deref(),
                            ) =>
                    {
                        Some(RepositoryEvent {
                            cursor: state.bus.cursor(event.seq),
                            event_type: c.cause.into(),
                            at: event.at,
                            change: Some(c.clone()),
                        })
                    }
                    _ => None,
                },
            };
            futures::future::ready(out)
        }))
    }

    /// What goes wrong with workloads, as it starts: crash loops (`CrashLoopBackOff`, or a
    /// container restarting again), `OOMKilled`, image pulls failing, unschedulable pods, and
    /// Kubernetes Warning events (`FailedScheduling`, `BackOff`, `Unhealthy`, ...) — each with
    /// the joins (pod → application → component → owner). `filter` narrows by cluster,
    /// namespace, labels, application or entity (`rollout` does not apply); `kinds` by type.
    async fn workload_events(
        &self,
        ctx: &Context<'_>,
        filter: Option<super::kubernetes::WorkloadFilter>,
        kinds: Option<Vec<WorkloadEventType>>,
        after: Option<String>,
    ) -> Result<impl Stream<Item = WorkloadEvent>> {
        let state = gctx(ctx).state.clone();
        let matcher = super::kubernetes::RolloutMatcher::new(state.clone(), filter)?;
        let after = parse_cursor(&state, after)?;
        let audience = Audience::of(ctx);
        let st = state.clone();
        Ok(feed(&state, after).flat_map(move |f| {
            let out: Vec<WorkloadEvent> = match f {
                Feed::Resync(seq) => vec![WorkloadEvent::resync(st.bus.cursor(seq))],
                Feed::Event(event) => match &event.change {
                    Change::Object(o) if !o.troubles.is_empty() => {
                        workload_events(&st, &audience, &matcher, kinds.as_deref(), &event, o)
                    }
                    _ => Vec::new(),
                },
            };
            futures::stream::iter(out)
        }))
    }

    /// Deployment rollouts as they progress: `PROGRESS` (x of y updated), `COMPLETE`,
    /// `STALLED` (progress deadline exceeded), `DELETED`. Filters run on the server.
    async fn rollout_events(
        &self,
        ctx: &Context<'_>,
        filter: Option<super::kubernetes::WorkloadFilter>,
        #[graphql(default)] initial: bool,
        after: Option<String>,
    ) -> Result<impl Stream<Item = RolloutEvent>> {
        let state = gctx(ctx).state.clone();
        let matcher = Arc::new(super::kubernetes::RolloutMatcher::new(
            state.clone(),
            filter,
        )?);
        let after = parse_cursor(&state, after)?;
        let audience = Audience::of(ctx);
        let live = feed(&state, after);
        let now_seq = state.bus.next_seq().saturating_sub(1);
        let mut initial_events = Vec::new();
        if initial {
            for c in state.clusters.all() {
                for d in c.deployments.list(None) {
                    let ns = d.metadata.namespace.as_deref().unwrap_or("");
                    if matcher.matches(&c.name, &d) && audience.viewer().sees_namespace(&c.name, ns)
                    {
                        let r = crate::domain::kubernetes::rollout(&d);
                        initial_events.extend(rollout_event(
                            &state,
                            now_seq,
                            Utc::now(),
                            &c.name,
                            d,
                            None,
                            Some(r),
                            None,
                        ));
                    }
                }
            }
        }
        let st = state.clone();
        let events = live.filter_map(move |f| {
            let out = match f {
                Feed::Resync(seq) => Some(RolloutEvent {
                    cursor: st.bus.cursor(seq),
                    event_type: RolloutEventType::ResyncRequired,
                    at: Utc::now(),
                    cluster: None,
                    namespace: None,
                    name: None,
                    deployment: None,
                    previous: None,
                    current: None,
                }),
                Feed::Event(event) => match &event.change {
                    Change::Rollout(r)
                        if matcher.matches(&r.cluster, &r.deployment)
                            && audience.viewer().sees_namespace(
                                &r.cluster,
                                r.deployment.metadata.namespace.as_deref().unwrap_or(""),
                            ) =>
                    {
                        rollout_event(
                            &st,
                            event.seq,
                            event.at,
                            &r.cluster,
                            r.deployment.clone(),
                            r.previous.clone(),
                            r.current.clone(),
                            Some(r.transition),
                        )
                    }
                    _ => None,
                },
            };
            futures::future::ready(out)
        });
        Ok(futures::stream::iter(initial_events).chain(events))
    }

    /// Only status changes: sync (`OUT_OF_SYNC` → `SYNCED`), health (`HEALTHY` → `DEGRADED`),
    /// operation phase (`RUNNING` → `FAILED`). `kinds`, `toHealth`, `toSync` and `toPhase` narrow
    /// it to what a bot cares about, e.g. "became DEGRADED" or "sync failed".
    #[allow(clippy::too_many_arguments)]
    async fn health_transitions(
        &self,
        ctx: &Context<'_>,
        filter: Option<ApplicationFilter>,
        kinds: Option<Vec<TransitionKind>>,
        to_health: Option<Vec<HealthStatusCode>>,
        to_sync: Option<Vec<SyncStatusCode>>,
        to_phase: Option<Vec<OperationPhaseCode>>,
        #[graphql(default)] initial: bool,
        after: Option<String>,
    ) -> Result<impl Stream<Item = HealthTransition>> {
        let matcher = Arc::new(ApplicationMatcher::new(filter)?);
        let state = gctx(ctx).state.clone();
        let after = parse_cursor(&state, after)?;
        let audience = Audience::of(ctx);
        let wanted = move |kind: TransitionKind, to: &str| -> bool {
            kinds.as_ref().is_none_or(|k| k.contains(&kind))
                && match kind {
                    TransitionKind::Health => to_health
                        .as_ref()
                        .is_none_or(|v| v.iter().any(|h| name(*h) == to)),
                    TransitionKind::Sync => to_sync
                        .as_ref()
                        .is_none_or(|v| v.iter().any(|s| name(*s) == to)),
                    TransitionKind::Operation => to_phase
                        .as_ref()
                        .is_none_or(|v| v.iter().any(|p| name(*p) == to)),
                }
        };
        let wanted = Arc::new(wanted);
        let live = feed(&state, after);
        let now_seq = state.bus.next_seq().saturating_sub(1);
        let mut initial_events = Vec::new();
        if initial {
            let (m, a) = (matcher.clone(), audience.clone());
            for app in state
                .apps
                .select(|app| m.matches(app) && a.viewer().sees_app(app))
            {
                let s = status_of(&app);
                for (kind, to) in [
                    (TransitionKind::Sync, name(s.sync)),
                    (TransitionKind::Health, name(s.health)),
                ] {
                    if wanted(kind, &to) {
                        initial_events.push(HealthTransition {
                            seq: now_seq,
                            at: Utc::now(),
                            kind: Some(kind),
                            event_type: TransitionEventType::Initial,
                            from: None,
                            to: Some(to),
                            app: Some(app.clone()),
                        });
                    }
                }
            }
        }
        let events = live.flat_map(move |f| {
            let out: Vec<HealthTransition> = match f {
                Feed::Resync(seq) => vec![HealthTransition {
                    seq,
                    at: Utc::now(),
                    kind: None,
                    event_type: TransitionEventType::ResyncRequired,
                    from: None,
                    to: None,
                    app: None,
                }],
                Feed::Event(event) => match &event.change {
                    Change::Application(c) => match &c.current {
                        Some(cur)
                            if !c.transitions.is_empty()
                                && matcher.matches(cur)
                                && audience.viewer().sees_app(cur) =>
                        {
                            c.transitions
                                .iter()
                                .map(transition_names)
                                .filter(|(kind, _, to)| wanted(*kind, to))
                                .map(|(kind, from, to)| HealthTransition {
                                    seq: event.seq,
                                    at: event.at,
                                    kind: Some(kind),
                                    event_type: TransitionEventType::Transition,
                                    from,
                                    to: Some(to),
                                    app: Some(cur.clone()),
                                })
                                .collect()
                        }
                        _ => Vec::new(),
                    },
                    _ => Vec::new(),
                },
            };
            futures::stream::iter(out)
        });
        Ok(futures::stream::iter(initial_events).chain(events))
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum RolloutEventType {
    /// The current rollout, sent first when `initial: true`.
    Initial,
    /// A rollout is under way (x of y updated, old replicas terminating).
    Progress,
    Complete,
    /// The progress deadline passed.
    Stalled,
    Deleted,
    ResyncRequired,
}

/// Progress of one Deployment's rollout.
/// What went wrong with a workload (`workloadEvents`).
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum WorkloadEventType {
    CrashLoop,
    OomKilled,
    ImagePullFailing,
    Unschedulable,
    /// A Kubernetes Warning event.
    Warning,
    /// Events were lost (cursor too old, or this subscriber fell behind).
    ResyncRequired,
}

impl From<TroubleKind> for WorkloadEventType {
    fn from(k: TroubleKind) -> Self {
        match k {
            TroubleKind::CrashLoop => Self::CrashLoop,
            TroubleKind::OomKilled => Self::OomKilled,
            TroubleKind::ImagePull => Self::ImagePullFailing,
            TroubleKind::Unschedulable => Self::Unschedulable,
            TroubleKind::Warning => Self::Warning,
        }
    }
}

/// One workload trouble, joined to what it belongs to.
#[derive(SimpleObject)]
pub struct WorkloadEvent {
    /// Position in the server's event sequence; pass it as `after` to resume.
    pub cursor: String,
    #[graphql(name = "type")]
    pub event_type: WorkloadEventType,
    pub at: DateTime<Utc>,
    pub cluster: Option<String>,
    pub namespace: Option<String>,
    /// The object in trouble: `Pod`, or what a Warning event is about (`Deployment`, ...).
    pub object_kind: Option<String>,
    pub object_name: Option<String>,
    /// The container in trouble (pods).
    pub container: Option<String>,
    /// Kubernetes' reason: `CrashLoopBackOff`, `OOMKilled`, `ErrImagePull`, `FailedScheduling`...
    pub reason: Option<String>,
    pub message: Option<String>,
    /// The container's restart count, or how often the Warning was seen.
    pub count: Option<i32>,
    /// The pod as it is now (when the trouble is a pod's, or a Warning is about a pod).
    pub pod: Option<super::kubernetes::PodNode>,
    /// The ArgoCD applications it belongs to (those the caller sees).
    pub applications: Vec<ApplicationNode>,
    /// The catalog entities it belongs to (through its labels, or its applications').
    pub entities: Vec<EntityItem>,
    /// Their owners (`group:default/app-team`), for routing.
    pub owners: Vec<String>,
}

impl WorkloadEvent {
    fn resync(cursor: String) -> Self {
        Self {
            cursor,
            event_type: WorkloadEventType::ResyncRequired,
            at: Utc::now(),
            cluster: None,
            namespace: None,
            object_kind: None,
            object_name: None,
            container: None,
            reason: None,
            message: None,
            count: None,
            pod: None,
            applications: Vec::new(),
            entities: Vec::new(),
            owners: Vec::new(),
        }
    }
}

/// The workload events one object change gives one subscriber: visible to it, matching its
/// filter and kinds, joined once.
fn workload_events(
    state: &Arc<State>,
    audience: &Audience,
    matcher: &super::kubernetes::RolloutMatcher,
    kinds: Option<&[WorkloadEventType]>,
    event: &crate::events::Event,
    o: &crate::events::ObjectChange,
) -> Vec<WorkloadEvent> {
    use crate::domain::kubernetes::KubeObject;
    let Some(cluster) = state.clusters.get(&o.cluster) else {
        return Vec::new();
    };
    let object = o.object();
    // The object the trouble is about: the pod itself, or a Warning event's involved object.
    let (kind, meta, pod) = match object {
        KubeObject::Pod(p) => ("Pod".to_string(), p.metadata.clone(), Some(p.clone())),
        KubeObject::Event(e) => {
            let Some((ns, kind, name)) = e.involved.clone() else {
                return Vec::new();
            };
            let pod = (kind == "Pod")
                .then(|| cluster.pods.get(&ns, &name))
                .flatten();
            let meta = match (&pod, kind.as_str()) {
                (Some(p), _) => p.metadata.clone(),
                (None, "Deployment") => cluster
                    .deployments
                    .get(&ns, &name)
                    .map(|d| d.metadata.clone())
                    .unwrap_or_default(),
                (None, "ReplicaSet") => cluster
                    .replica_sets
                    .get(&ns, &name)
                    .map(|r| r.metadata.clone())
                    .unwrap_or_default(),
                _ => Default::default(),
            };
            let meta = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                namespace: Some(ns),
                name: Some(name),
                ..meta
            };
            (kind, meta, pod)
        }
        _ => return Vec::new(),
    };
    let viewer = audience.viewer();
    let namespace = meta.namespace.clone().unwrap_or_default();
    if !viewer.sees_namespace(&cluster.name, &namespace) {
        return Vec::new();
    }
    let apps: Vec<Arc<Application>> = state
        .apps_of_object(&cluster, &meta)
        .into_iter()
        .filter(|a| viewer.sees_app(a))
        .collect();
    let entities = state.entities_of_object(&cluster, &meta);
    if !matcher.matches_object(&cluster.name, &meta, &apps, &entities) {
        return Vec::new();
    }
    let owners = Viewer::owners_of(&entities);
    let snapshot = state.catalog.snapshot();
    o.troubles
        .iter()
        .filter(|t| kinds.is_none_or(|k| k.contains(&t.kind.into())))
        .map(|t| WorkloadEvent {
            cursor: state.bus.cursor(event.seq),
            event_type: t.kind.into(),
            at: event.at,
            cluster: Some(cluster.name.clone()),
            namespace: Some(namespace.clone()),
            object_kind: Some(kind.clone()),
            object_name: meta.name.clone(),
            container: t.container.clone(),
            reason: Some(t.reason.clone()),
            message: t.message.clone(),
            count: t.count,
            pod: pod
                .clone()
                .map(|p| super::kubernetes::PodNode::new(cluster.clone(), p)),
            applications: apps.iter().cloned().map(ApplicationNode).collect(),
            entities: entities
                .iter()
                .map(|e| EntityItem::from(EntityNode::new(e.clone(), snapshot.clone())))
                .collect(),
            owners: owners.clone(),
        })
        .collect()
}

#[derive(SimpleObject)]
pub struct RolloutEvent {
    /// Position in the server's event sequence; pass it as `after` to resume.
    pub cursor: String,
    #[graphql(name = "type")]
    pub event_type: RolloutEventType,
    pub at: DateTime<Utc>,
    pub cluster: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// The Deployment as it was at this event.
    pub deployment: Option<super::kubernetes::DeploymentNode>,
    pub previous: Option<super::kubernetes::RolloutStatus>,
    pub current: Option<super::kubernetes::RolloutStatus>,
}

#[allow(clippy::too_many_arguments)]
fn rollout_event(
    state: &State,
    seq: u64,
    at: DateTime<Utc>,
    cluster: &str,
    d: Arc<crate::domain::kubernetes::DeploymentInfo>,
    previous: Option<crate::domain::kubernetes::Rollout>,
    current: Option<crate::domain::kubernetes::Rollout>,
    // `None`: the current state, sent first (`initial: true`).
    transition: Option<RolloutTransition>,
) -> Option<RolloutEvent> {
    let store = state.clusters.get(cluster)?;
    let event_type = match transition {
        None => RolloutEventType::Initial,
        Some(RolloutTransition::Deleted) => RolloutEventType::Deleted,
        Some(RolloutTransition::Progress) => RolloutEventType::Progress,
        Some(RolloutTransition::Complete) => RolloutEventType::Complete,
        Some(RolloutTransition::Stalled) => RolloutEventType::Stalled,
    };
    Some(RolloutEvent {
        cursor: state.bus.cursor(seq),
        event_type,
        at,
        cluster: Some(cluster.to_string()),
        namespace: d.metadata.namespace.clone(),
        name: d.metadata.name.clone(),
        previous: previous.map(Into::into),
        current: current.map(Into::into),
        deployment: Some(super::kubernetes::DeploymentNode::new(store, d)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::argocd::{HealthStatus, SyncStatus};

    #[test]
    fn derived_transitions_are_named_as_the_schema_spells_them() {
        let (kind, from, to) = transition_names(&AppTransition::Sync {
            from: SyncStatus::OutOfSync,
            to: SyncStatus::Synced,
        });
        assert_eq!(
            (kind, from.as_deref(), to.as_str()),
            (TransitionKind::Sync, Some("OUT_OF_SYNC"), "SYNCED")
        );
        let (kind, _, to) = transition_names(&AppTransition::Health {
            from: HealthStatus::Healthy,
            to: HealthStatus::Degraded,
        });
        assert_eq!((kind, to.as_str()), (TransitionKind::Health, "DEGRADED"));
    }
}
