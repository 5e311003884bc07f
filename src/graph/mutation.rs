//! `Mutation`: the actions people take. Every mutation resolves its target from live state,
//! passes the one authorization seam (`Policy::can_act`), calls the upstream, applies the
//! upstream's answer to state at once (so the caller reads its own write), and is audited
//! whatever the outcome.

use std::sync::Arc;

use async_graphql::{Context, InputObject, Json, Object, Result, SimpleObject};
use serde_json::Value;

use super::application::ApplicationNode;
use super::error::{bad_input, conflict, forbidden, not_found, upstream};
use super::{gctx, Viewer};
use crate::auth::Action;
use crate::domain::argocd::Application;
use crate::domain::argocd::{ResourceRef, SyncOptions};
use crate::sources::argocd::ArgoCdHandle;
use crate::sources::SourceError;

/// Names one application. `instance` and `namespace` may be omitted while the name is unique.
#[derive(InputObject, Clone)]
pub struct ApplicationRefInput {
    pub name: String,
    pub instance: Option<String>,
    /// Namespace of the Application object.
    pub namespace: Option<String>,
}

#[derive(InputObject, Clone)]
pub struct SyncResourceInput {
    #[graphql(default)]
    pub group: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
}

#[derive(InputObject, Clone)]
pub struct SyncApplicationInput {
    pub name: String,
    pub instance: Option<String>,
    pub namespace: Option<String>,
    /// Revision to sync to; default: the app's target revision.
    pub revision: Option<String>,
    #[graphql(default)]
    pub prune: bool,
    #[graphql(default)]
    pub dry_run: bool,
    /// Sync only these resources.
    pub resources: Option<Vec<SyncResourceInput>>,
}

#[derive(InputObject, Clone)]
pub struct RollbackApplicationInput {
    pub name: String,
    pub instance: Option<String>,
    pub namespace: Option<String>,
    /// `history[].historyId` to roll back to.
    pub id: i64,
    #[graphql(default)]
    pub prune: bool,
    #[graphql(default)]
    pub dry_run: bool,
}

#[derive(InputObject, Clone)]
pub struct RefreshApplicationInput {
    pub name: String,
    pub instance: Option<String>,
    pub namespace: Option<String>,
    /// Hard refresh also invalidates ArgoCD's manifest cache.
    #[graphql(default)]
    pub hard: bool,
}

#[derive(SimpleObject)]
pub struct ApplicationActionResult {
    /// The application as it stands after the call.
    pub application: ApplicationNode,
    /// ArgoCD's answer, as JSON.
    pub upstream_response: Json<Value>,
    /// Id of the audit entry written for this call.
    pub audit_id: u64,
}

pub struct Mutation;

/// Finds the one application a reference names, as the caller may see it (`None`: none).
fn resolve_app(
    ctx: &Context<'_>,
    name: &str,
    instance: Option<&str>,
    namespace: Option<&str>,
) -> Result<Option<Arc<Application>>> {
    if name.trim().is_empty() {
        return Err(bad_input("`name` must not be empty"));
    }
    let viewer = Viewer::of(ctx);
    let candidates: Vec<Arc<Application>> = gctx(ctx)
        .state
        .apps
        .by_name(name)
        .into_iter()
        .filter(|a| instance.is_none_or(|i| i == a.key.instance))
        .filter(|a| namespace.is_none_or(|n| n == a.key.namespace))
        .filter(|a| viewer.sees_app(a))
        .collect();
    match candidates.len() {
        0 => Ok(None),
        1 => Ok(candidates.into_iter().next()),
        _ => Err(bad_input(format!(
            "`{name}` names {} applications ({}); give `instance` and/or `namespace`",
            candidates.len(),
            candidates
                .iter()
                .map(|a| a.key_string.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

struct Target<'a> {
    app: Arc<Application>,
    argocd: &'a ArgoCdHandle,
}

/// The application a mutation names, checked against the policy for `action`.
fn target<'a>(
    ctx: &Context<'a>,
    name: &str,
    instance: Option<&str>,
    namespace: Option<&str>,
    action: Action,
) -> Result<Target<'a>> {
    match resolve_app(ctx, name, instance, namespace)? {
        Some(app) => authorize(ctx, app, action),
        // A caller who may not see every project cannot tell a hidden app from a missing one:
        // both are refused alike (and audited).
        None if !Viewer::of(ctx).principal.grants().all_projects => {
            super::audit(ctx, mutation_name(action), name, "FORBIDDEN", None);
            Err(forbidden(format!(
                "not allowed to {} `{name}` (or there is no such application)",
                mutation_name(action)
            )))
        }
        None => Err(not_found(format!("no application `{name}`"))),
    }
}

fn authorize<'a>(ctx: &Context<'a>, app: Arc<Application>, action: Action) -> Result<Target<'a>> {
    let viewer = Viewer::of(ctx);
    if !viewer.may_act_on_app(action, &app) {
        super::audit(
            ctx,
            mutation_name(action),
            &app.key_string,
            "FORBIDDEN",
            None,
        );
        return Err(forbidden(
            format!("not allowed to {action:?} `{}`", app.key.name).to_lowercase(),
        ));
    }
    super::error::admit(&gctx(ctx).audit)?;
    let argocd = gctx(ctx)
        .upstreams
        .argocd(&app.key.instance)
        .ok_or_else(|| {
            not_found(format!(
                "ArgoCD instance `{}` is not configured",
                app.key.instance
            ))
        })?;
    Ok(Target { app, argocd })
}

/// Hands the upstream's view of the app to its instance's writer (which stores and publishes
/// it). Returns the stored value itself (a stream event may replace or delete it a moment
/// later).
fn apply(ctx: &Context<'_>, app: Application) -> Arc<Application> {
    let state = &gctx(ctx).state;
    crate::state::AppWriter::new(state.clone(), &app.key.instance.clone()).observe(app)
}

/// The mutation that takes an action (the audit trail's name for it).
pub fn mutation_name(action: Action) -> &'static str {
    match action {
        Action::Sync => "syncApplication",
        Action::Rollback => "rollbackApplication",
        Action::Refresh => "refreshApplication",
        Action::Terminate => "terminateApplicationOperation",
        Action::Restart => "restartDeployment",
        Action::CreateFromTemplate => "createFromTemplate",
    }
}

fn audit(
    ctx: &Context<'_>,
    action: &str,
    app: &Application,
    result: &Result<(), SourceError>,
) -> u64 {
    let (outcome, message) = match result {
        Ok(()) => ("ok".to_string(), None),
        Err(e) => (e.code().to_string(), Some(e.to_string())),
    };
    super::audit(ctx, action, &app.key_string, &outcome, message)
}

fn finish(
    ctx: &Context<'_>,
    action: &str,
    target: &Target<'_>,
    outcome: std::result::Result<(Application, Value), SourceError>,
) -> Result<ApplicationActionResult> {
    match outcome {
        Ok((app, raw)) => {
            let audit_id = audit(ctx, action, &target.app, &Ok(()));
            let raw = if Viewer::of(ctx).is_admin() {
                raw
            } else {
                without_identities(raw)
            };
            Ok(ApplicationActionResult {
                application: ApplicationNode(apply(ctx, app)),
                upstream_response: Json(raw),
                audit_id,
            })
        }
        Err(e) => {
            audit(ctx, action, &target.app, &Err(e.clone()));
            Err(upstream(&target.app.key.instance, &e))
        }
    }
}

/// ArgoCD's answer as a caller outside platform-team may read it: without who started past
/// operations (`initiatedBy`: ArgoCD's usernames and service accounts) or any `username`.
fn without_identities(mut v: Value) -> Value {
    fn scrub(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.remove("initiatedBy");
                m.remove("username");
                m.values_mut().for_each(scrub);
            }
            Value::Array(a) => a.iter_mut().for_each(scrub),
            _ => {}
        }
    }
    scrub(&mut v);
    v
}

#[derive(InputObject)]
pub struct CreateFromTemplateInput {
    /// The template entity, e.g. `template:default/service-template` (kind defaults to template).
    pub template_ref: String,
    /// Parameter values for the template, as JSON.
    pub values: Json<Value>,
}

/// A scaffolder task; follow it with `subscription { templateTask(id) }`.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct TemplateTask {
    /// The scaffolder's own task id.
    pub task_id: String,
    pub template_ref: String,
    /// The audit record of the `createFromTemplate` call; null when the task was looked up
    /// later (`node(id:)`).
    pub audit_id: Option<u64>,
    /// `open`, `processing`, `completed`, `failed`, `cancelled`; null right after creation.
    pub status: Option<String>,
}

#[async_graphql::ComplexObject]
impl TemplateTask {
    pub async fn id(&self) -> async_graphql::ID {
        crate::domain::node_id::NodeId::TemplateTask {
            task_id: self.task_id.clone(),
        }
        .into()
    }
}

#[Object]
impl Mutation {
    /// `kubectl rollout restart`: patches the pod template's `restartedAt` annotation so the
    /// Deployment rolls its pods. Authorized per namespace; audited.
    async fn restart_deployment(
        &self,
        ctx: &Context<'_>,
        cluster: String,
        namespace: String,
        name: String,
    ) -> Result<super::kubernetes::RestartResult> {
        super::kubernetes::restart_deployment(ctx, cluster, namespace, name).await
    }
    /// Creates software from a Backstage template (a scaffolder task).
    async fn create_from_template(
        &self,
        ctx: &Context<'_>,
        input: CreateFromTemplateInput,
    ) -> Result<TemplateTask> {
        let template = crate::domain::EntityRef::parse_with_defaults(
            &input.template_ref,
            Some("template"),
            "default",
        )
        .map_err(|e| bad_input(format!("templateRef: {e}")))?;
        if template.kind() != "template" {
            return Err(bad_input("templateRef must name a Template entity"));
        }
        if !input.values.0.is_object() {
            return Err(bad_input("values must be a JSON object"));
        }
        let template_ref = template.to_string();
        let viewer = Viewer::of(ctx);
        if !viewer.may_create(Action::CreateFromTemplate) {
            super::audit(ctx, "createFromTemplate", &template_ref, "FORBIDDEN", None);
            return Err(forbidden("not allowed to run this template"));
        }
        // A run must not take over what exists: a component or an application of that name
        // (the scaffolder and ArgoCD refuse too, but only after the run has started).
        if let Some(name) = input.values.0.get("name").and_then(Value::as_str) {
            let state = &gctx(ctx).state;
            let component = format!("component:default/{}", name.to_lowercase());
            if state.catalog.snapshot().get(&component).is_some()
                || !state.apps.by_name(name).is_empty()
            {
                super::audit(ctx, "createFromTemplate", &template_ref, "CONFLICT", None);
                return Err(conflict(format!(
                    "`{name}` is already the name of a component or an application"
                )));
            }
        }
        let Some(backstage) = gctx(ctx).upstreams.backstage() else {
            return Err(not_found("Backstage is not configured"));
        };
        super::error::admit(&gctx(ctx).audit)?;
        let result = backstage.create_task(&template_ref, &input.values.0).await;
        let (outcome, message) = match &result {
            Ok(_) => ("ok".to_string(), None),
            Err(e) => (e.code().to_string(), Some(e.to_string())),
        };
        let audit_id = super::audit(ctx, "createFromTemplate", &template_ref, &outcome, message);
        match result {
            Ok(id) => {
                if let Some(me) = &viewer.principal.subject {
                    gctx(ctx).state.task_creators.record(&id, me);
                }
                Ok(TemplateTask {
                    task_id: id,
                    template_ref,
                    audit_id: Some(audit_id),
                    status: None,
                })
            }
            Err(e) => Err(upstream("backstage", &e)),
        }
    }

    /// Syncs an application (ArgoCD `POST /api/v1/applications/{name}/sync`).
    async fn sync_application(
        &self,
        ctx: &Context<'_>,
        input: SyncApplicationInput,
    ) -> Result<ApplicationActionResult> {
        let t = target(
            ctx,
            &input.name,
            input.instance.as_deref(),
            input.namespace.as_deref(),
            Action::Sync,
        )?;
        let options = SyncOptions {
            revision: input.revision.filter(|r| !r.trim().is_empty()),
            prune: input.prune,
            dry_run: input.dry_run,
            resources: input
                .resources
                .unwrap_or_default()
                .into_iter()
                .map(|r| ResourceRef {
                    group: r.group,
                    kind: r.kind,
                    name: r.name,
                    namespace: r.namespace,
                })
                .collect(),
        };
        let outcome = t.argocd.sync(&t.app.key, &options).await;
        finish(ctx, "syncApplication", &t, outcome)
    }

    /// Rolls back to a history entry. ArgoCD refuses while auto-sync is on (`CONFLICT`).
    async fn rollback_application(
        &self,
        ctx: &Context<'_>,
        input: RollbackApplicationInput,
    ) -> Result<ApplicationActionResult> {
        let t = target(
            ctx,
            &input.name,
            input.instance.as_deref(),
            input.namespace.as_deref(),
            Action::Rollback,
        )?;
        let outcome = t
            .argocd
            .rollback(&t.app.key, input.id, input.prune, input.dry_run)
            .await;
        finish(ctx, "rollbackApplication", &t, outcome)
    }

    /// Asks ArgoCD to re-compare with git now (`?refresh=normal|hard`).
    async fn refresh_application(
        &self,
        ctx: &Context<'_>,
        input: RefreshApplicationInput,
    ) -> Result<ApplicationActionResult> {
        let t = target(
            ctx,
            &input.name,
            input.instance.as_deref(),
            input.namespace.as_deref(),
            Action::Refresh,
        )?;
        let outcome = t.argocd.refresh(&t.app.key, input.hard).await;
        finish(ctx, "refreshApplication", &t, outcome)
    }

    /// Terminates the running operation (`DELETE .../operation`).
    async fn terminate_application_operation(
        &self,
        ctx: &Context<'_>,
        input: ApplicationRefInput,
    ) -> Result<ApplicationActionResult> {
        let t = target(
            ctx,
            &input.name,
            input.instance.as_deref(),
            input.namespace.as_deref(),
            Action::Terminate,
        )?;
        let outcome = t.argocd.terminate(&t.app.key).await;
        finish(ctx, "terminateApplicationOperation", &t, outcome)
    }
}
