//! What is worth a notification: the subscriptions `notify` follows (one per [`Stream`], each
//! with its own durable cursor) and the pure functions that turn one event of a stream into
//! [`Notice`]s — degraded, recovered, sync failed, deployed (with the commit, its author and
//! the pull request), rollout stalled, pod crash-looping / OOM-killed / image pull failing, a
//! failed workflow run on the default branch. No I/O here: `mod.rs` feeds events in, routing
//! and delivery take the notices out.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The catalog annotation that names a Slack channel (on a Component, else its owning Group).
pub const CHANNEL_ANNOTATION: &str = "idp-graph.io/slack-channel";

/// What a notification is about (`triggers:` in the config, snake_case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Degraded,
    Recovered,
    SyncFailed,
    Deployed,
    RolloutStalled,
    CrashLoop,
    OomKilled,
    ImagePull,
    WorkflowFailed,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Degraded => "degraded",
            Self::Recovered => "recovered",
            Self::SyncFailed => "sync_failed",
            Self::Deployed => "deployed",
            Self::RolloutStalled => "rollout_stalled",
            Self::CrashLoop => "crash_loop",
            Self::OomKilled => "oom_killed",
            Self::ImagePull => "image_pull",
            Self::WorkflowFailed => "workflow_failed",
        }
    }

    /// Slack emoji shortcode for the headline.
    pub fn emoji(self) -> &'static str {
        match self {
            Self::Degraded => ":red_circle:",
            Self::Recovered => ":large_green_circle:",
            Self::SyncFailed => ":x:",
            Self::Deployed => ":rocket:",
            Self::RolloutStalled => ":hourglass:",
            Self::CrashLoop => ":rotating_light:",
            Self::OomKilled => ":boom:",
            Self::ImagePull => ":package:",
            Self::WorkflowFailed => ":warning:",
        }
    }
}

/// The subscriptions `notify` follows; each keeps its own cursor in the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Health,
    Workloads,
    Rollouts,
    Repositories,
}

/// A catalog entity, as the selection [`ENTITY`] asks for it.
const ENTITY: &str = r#"ref name title channel: annotation(key: "idp-graph.io/slack-channel") owner { ref name title channel: annotation(key: "idp-graph.io/slack-channel") }"#;

impl Stream {
    pub const ALL: [Stream; 4] = [
        Stream::Health,
        Stream::Workloads,
        Stream::Rollouts,
        Stream::Repositories,
    ];

    /// Its name in the state file and the logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Health => "healthTransitions",
            Self::Workloads => "workloadEvents",
            Self::Rollouts => "rolloutEvents",
            Self::Repositories => "repositoryEvents",
        }
    }

    /// Does any of these triggers need this stream?
    pub fn needed_for(self, wants: impl Fn(Trigger) -> bool) -> bool {
        let of: &[Trigger] = match self {
            Self::Health => &[
                Trigger::Degraded,
                Trigger::Recovered,
                Trigger::SyncFailed,
                Trigger::Deployed,
            ],
            Self::Workloads => &[Trigger::CrashLoop, Trigger::OomKilled, Trigger::ImagePull],
            Self::Rollouts => &[Trigger::RolloutStalled],
            Self::Repositories => &[Trigger::WorkflowFailed],
        };
        of.iter().any(|t| wants(*t))
    }

    /// The subscription (it declares `$after`, so `watch` resumes from the last cursor).
    pub fn document(self) -> String {
        match self {
            Self::Health => format!(
                "subscription($after: String) {{ healthTransitions(kinds: [HEALTH, OPERATION], after: $after) {{ \
                 cursor type kind from to at \
                 application {{ name instance project health {{ status message }} \
                 operationState {{ phase message syncResultRevision }} \
                 sync {{ status revision commit {{ sha shortSha title url repositorySlug author {{ name login }} }} }} }} \
                 entity {{ {ENTITY} }} }} }}"
            ),
            Self::Workloads => format!(
                "subscription($after: String) {{ workloadEvents(kinds: [CRASH_LOOP, OOM_KILLED, IMAGE_PULL_FAILING], after: $after) {{ \
                 cursor type at cluster namespace objectKind objectName container reason message count \
                 pod {{ deployment {{ name }} }} applications {{ name instance project }} entities {{ {ENTITY} }} owners }} }}"
            ),
            Self::Rollouts => format!(
                "subscription($after: String) {{ rolloutEvents(after: $after) {{ \
                 cursor type at cluster namespace name current {{ desired updated ready reason message }} \
                 deployment {{ application {{ name instance project }} entity {{ {ENTITY} }} }} }} }}"
            ),
            Self::Repositories => "subscription($after: String) { repositoryEvents(after: $after) { \
                 cursor type at slug branch headSha headMessage } }"
                .to_string(),
        }
    }
}

/// The follow-up query of a `WORKFLOW_RUN` event: the repository's default branch, its latest
/// runs and the components that name it.
pub const WORKFLOW_QUERY: &str = r#"query($slug: String!) { repository(slug: $slug) { slug url defaultBranch
  workflowRuns(first: 10) { runId name status conclusion branch headSha url }
  components { ref name title channel: annotation(key: "idp-graph.io/slack-channel") owner { ref name title channel: annotation(key: "idp-graph.io/slack-channel") } } } }"#;

/// A catalog entity a notice is about (or its owner), with the channel it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntityInfo {
    #[serde(rename = "ref")]
    pub entity_ref: String,
    pub name: String,
    pub title: Option<String>,
    /// Its `idp-graph.io/slack-channel` annotation.
    pub channel: Option<String>,
}

/// The commit a notice is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommitInfo {
    pub sha: String,
    pub short_sha: String,
    pub title: String,
    pub url: String,
    pub author: Option<String>,
    /// The pull request it came from (`... (#12)` / `Merge pull request #12`), else GitHub's
    /// search for pull requests containing the commit.
    pub pull_request_url: Option<String>,
}

/// One notification, before routing and rendering.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notice {
    /// Unique per notification and stable across replays of the same event (the event's
    /// cursor is deterministic): the sent-message key.
    pub key: String,
    pub trigger: Trigger,
    /// The application (or, for workflow runs, the repository) it concerns: rate limits apply
    /// per app.
    pub app: String,
    /// `instance/project`, when an application.
    pub place: Option<String>,
    /// What must differ for a second notice within the dedupe window to be sent.
    pub detail_key: String,
    pub headline: String,
    pub detail: Option<String>,
    pub component: Option<EntityInfo>,
    pub owner: Option<EntityInfo>,
    pub commit: Option<CommitInfo>,
    /// Extra labelled facts (`Pod`, `Reason`, `Revision`...).
    pub facts: Vec<(String, String)>,
    /// Labelled links (`Commit`, `Workflow run`...); the portal link is added when rendering.
    pub links: Vec<(String, String)>,
    pub at: Option<String>,
}

fn s(v: &Value) -> Option<String> {
    v.as_str().filter(|x| !x.is_empty()).map(str::to_string)
}

fn entity(v: &Value) -> Option<EntityInfo> {
    Some(EntityInfo {
        entity_ref: s(&v["ref"])?,
        name: s(&v["name"]).unwrap_or_default(),
        title: s(&v["title"]),
        channel: s(&v["channel"]),
    })
}

fn commit(v: &Value) -> Option<CommitInfo> {
    let sha = s(&v["sha"])?;
    let title = s(&v["title"]).unwrap_or_default();
    let slug = s(&v["repositorySlug"]);
    Some(CommitInfo {
        short_sha: s(&v["shortSha"]).unwrap_or_else(|| sha.chars().take(7).collect()),
        url: s(&v["url"]).unwrap_or_default(),
        author: s(&v["author"]["name"]).or_else(|| s(&v["author"]["login"])),
        pull_request_url: slug.map(|slug| pull_request_url(&slug, &title, &sha)),
        title,
        sha,
    })
}

/// The pull request a commit came from, by GitHub's merge conventions; else the search for
/// pull requests that contain it.
pub fn pull_request_url(slug: &str, title: &str, sha: &str) -> String {
    let number = title
        .rsplit_once("(#")
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .or_else(|| {
            title
                .strip_prefix("Merge pull request #")
                .and_then(|r| r.split_whitespace().next())
        })
        .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
    match number {
        Some(n) => format!("https://github.com/{slug}/pull/{n}"),
        None => format!("https://github.com/{slug}/pulls?q=is%3Apr+{sha}"),
    }
}

/// The owner of the first entity, and that entity.
fn component_and_owner(e: &Value) -> (Option<EntityInfo>, Option<EntityInfo>) {
    (entity(e), entity(&e["owner"]))
}

/// The notices of one event of `stream` (none when it is not worth one, or is a
/// `RESYNC_REQUIRED`, which `mod.rs` logs).
pub fn notices(stream: Stream, event: &Value) -> Vec<Notice> {
    let Some(cursor) = event["cursor"].as_str() else {
        return Vec::new();
    };
    match stream {
        Stream::Health => health(cursor, event).into_iter().collect(),
        Stream::Workloads => workload(cursor, event).into_iter().collect(),
        Stream::Rollouts => rollout(cursor, event).into_iter().collect(),
        // Needs a follow-up query: `workflow_failure`.
        Stream::Repositories => Vec::new(),
    }
}

fn health(cursor: &str, t: &Value) -> Option<Notice> {
    if t["type"] != "TRANSITION" {
        return None;
    }
    let app = &t["application"];
    let name = s(&app["name"])?;
    let (kind, from, to) = (t["kind"].as_str()?, t["from"].as_str(), t["to"].as_str()?);
    let trigger = match (kind, from, to) {
        ("HEALTH", _, "DEGRADED") => Trigger::Degraded,
        ("HEALTH", Some("DEGRADED" | "MISSING"), "HEALTHY") => Trigger::Recovered,
        ("OPERATION", _, "FAILED" | "ERROR") => Trigger::SyncFailed,
        ("OPERATION", _, "SUCCEEDED") => Trigger::Deployed,
        _ => return None,
    };
    let (component, owner) = component_and_owner(&t["entity"]);
    let mut commit = commit(&app["sync"]["commit"]);
    let deployed_rev = s(&app["operationState"]["syncResultRevision"]);
    if trigger == Trigger::Deployed {
        // The commit the sync applied, when the graph's commit is another one.
        if let (Some(rev), Some(c)) = (&deployed_rev, &commit) {
            if &c.sha != rev {
                commit = None;
            }
        }
    }
    let revision = deployed_rev.clone().or_else(|| s(&app["sync"]["revision"]));
    let (headline, detail) = match trigger {
        Trigger::Degraded => (format!("{name} is Degraded"), s(&app["health"]["message"])),
        Trigger::Recovered => (format!("{name} recovered: Healthy"), None),
        Trigger::SyncFailed => (
            format!("Sync of {name} failed"),
            s(&app["operationState"]["message"]),
        ),
        _ => (
            match &commit {
                Some(c) => format!("{name} deployed {}: {}", c.short_sha, c.title),
                None => format!(
                    "{name} deployed {}",
                    revision.as_deref().map(short).unwrap_or("a new revision")
                ),
            },
            None,
        ),
    };
    let mut facts = vec![("Status".to_string(), format!("{kind} → {to}"))];
    if let Some(rev) = &revision {
        facts.push(("Revision".into(), short(rev).to_string()));
    }
    let mut links = Vec::new();
    if let Some(c) = &commit {
        if !c.url.is_empty() {
            links.push(("Commit".to_string(), c.url.clone()));
        }
        if let Some(pr) = &c.pull_request_url {
            links.push(("Pull request".to_string(), pr.clone()));
        }
    }
    Some(Notice {
        key: format!("{}|{cursor}|{kind}|{to}", Stream::Health.name()),
        trigger,
        place: Some(format!(
            "{}/{}",
            s(&app["instance"]).unwrap_or_default(),
            s(&app["project"]).unwrap_or_default()
        )),
        detail_key: match trigger {
            Trigger::Deployed => revision.unwrap_or_default(),
            _ => String::new(),
        },
        app: name,
        headline,
        detail,
        component,
        owner,
        commit,
        facts,
        links,
        at: s(&t["at"]),
    })
}

fn short(sha: &str) -> &str {
    if sha.len() > 7 && sha.chars().all(|c| c.is_ascii_hexdigit()) {
        &sha[..7]
    } else {
        sha
    }
}

fn workload(cursor: &str, w: &Value) -> Option<Notice> {
    let trigger = match w["type"].as_str()? {
        "CRASH_LOOP" => Trigger::CrashLoop,
        "OOM_KILLED" => Trigger::OomKilled,
        "IMAGE_PULL_FAILING" => Trigger::ImagePull,
        _ => return None,
    };
    let app_v = w["applications"].as_array().and_then(|a| a.first());
    let first_entity = w["entities"]
        .as_array()
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or(Value::Null);
    let (component, owner) = component_and_owner(&first_entity);
    let object = s(&w["objectName"]).unwrap_or_default();
    let app = app_v
        .and_then(|a| s(&a["name"]))
        .or_else(|| component.as_ref().map(|c| c.name.clone()))
        .unwrap_or_else(|| s(&w["namespace"]).unwrap_or_default());
    let what = match trigger {
        Trigger::CrashLoop => "is crash-looping",
        Trigger::OomKilled => "was OOMKilled",
        _ => "cannot pull its image",
    };
    let mut facts = vec![
        (
            "Pod".to_string(),
            format!("{}/{object}", s(&w["namespace"]).unwrap_or_default()),
        ),
        ("Reason".to_string(), s(&w["reason"]).unwrap_or_default()),
    ];
    if let Some(d) = s(&w["pod"]["deployment"]["name"]) {
        facts.push(("Deployment".into(), d));
    }
    if let Some(c) = s(&w["container"]) {
        facts.push(("Container".into(), c));
    }
    if let Some(n) = w["count"].as_i64() {
        facts.push(("Restarts".into(), n.to_string()));
    }
    Some(Notice {
        key: format!(
            "{}|{cursor}|{}|{object}",
            Stream::Workloads.name(),
            trigger.as_str()
        ),
        trigger,
        place: app_v.map(|a| {
            format!(
                "{}/{}",
                s(&a["instance"]).unwrap_or_default(),
                s(&a["project"]).unwrap_or_default()
            )
        }),
        detail_key: s(&w["container"]).unwrap_or_default(),
        headline: format!("A pod of {app} {what}"),
        detail: s(&w["message"]),
        app,
        component,
        owner,
        commit: None,
        facts,
        links: Vec::new(),
        at: s(&w["at"]),
    })
}

fn rollout(cursor: &str, r: &Value) -> Option<Notice> {
    if r["type"] != "STALLED" {
        return None;
    }
    let name = s(&r["name"])?;
    let app_v = &r["deployment"]["application"];
    let (component, owner) = component_and_owner(&r["deployment"]["entity"]);
    let app = s(&app_v["name"]).unwrap_or_else(|| name.clone());
    let cur = &r["current"];
    Some(Notice {
        key: format!("{}|{cursor}|{name}", Stream::Rollouts.name()),
        trigger: Trigger::RolloutStalled,
        place: s(&app_v["instance"])
            .map(|i| format!("{i}/{}", s(&app_v["project"]).unwrap_or_default())),
        detail_key: name.clone(),
        headline: format!("The rollout of {app} stalled"),
        detail: s(&cur["message"]),
        facts: vec![
            (
                "Deployment".to_string(),
                format!("{}/{name}", s(&r["namespace"]).unwrap_or_default()),
            ),
            (
                "Replicas".to_string(),
                format!(
                    "{} of {} updated, {} ready",
                    cur["updated"].as_i64().unwrap_or(0),
                    cur["desired"].as_i64().unwrap_or(0),
                    cur["ready"].as_i64().unwrap_or(0)
                ),
            ),
        ],
        app,
        component,
        owner,
        commit: None,
        links: Vec::new(),
        at: s(&r["at"]),
    })
}

/// The notice of a `WORKFLOW_RUN` event, given the repository as [`WORKFLOW_QUERY`] answers:
/// a run of the event's head commit on the default branch that concluded `failure` (or
/// `timed_out`, `startup_failure`).
pub fn workflow_failure(event: &Value, repo: &Value) -> Option<Notice> {
    let cursor = event["cursor"].as_str()?;
    if event["type"] != "WORKFLOW_RUN" {
        return None;
    }
    let slug = s(&repo["slug"])?;
    let default_branch = s(&repo["defaultBranch"])?;
    let head = s(&event["headSha"]);
    let run = repo["workflowRuns"].as_array()?.iter().find(|run| {
        run["branch"].as_str() == Some(default_branch.as_str())
            && matches!(
                run["conclusion"].as_str(),
                Some("failure" | "timed_out" | "startup_failure")
            )
            && head
                .as_deref()
                .is_none_or(|h| run["headSha"].as_str() == Some(h))
    })?;
    let first = repo["components"]
        .as_array()
        .and_then(|c| c.first())
        .cloned()
        .unwrap_or(Value::Null);
    let (component, owner) = component_and_owner(&first);
    let run_name = s(&run["name"]).unwrap_or_else(|| "A workflow".into());
    let run_id = run["runId"].as_i64().unwrap_or(0);
    let mut links = Vec::new();
    if let Some(u) = s(&run["url"]) {
        links.push(("Workflow run".to_string(), u));
    }
    Some(Notice {
        key: format!("{}|{cursor}|{run_id}", Stream::Repositories.name()),
        trigger: Trigger::WorkflowFailed,
        app: component
            .as_ref()
            .map(|c| c.name.clone())
            .unwrap_or(slug.clone()),
        place: None,
        detail_key: run_id.to_string(),
        headline: format!("{run_name} failed on {default_branch} of {slug}"),
        detail: s(&event["headMessage"]),
        component,
        owner,
        commit: None,
        facts: vec![
            (
                "Conclusion".to_string(),
                s(&run["conclusion"]).unwrap_or_default(),
            ),
            (
                "Commit".to_string(),
                head.as_deref().map(short).unwrap_or("?").to_string(),
            ),
        ],
        links,
        at: s(&event["at"]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn degraded() -> Value {
        json!({
            "cursor": "c1", "type": "TRANSITION", "kind": "HEALTH", "from": "HEALTHY", "to": "DEGRADED",
            "application": {"name": "app-3", "instance": "main", "project": "applications",
                "health": {"status": "DEGRADED", "message": "exceeded its progress deadline"},
                "sync": {"revision": "abcdef0123456789", "commit": {"sha": "abcdef0123456789", "shortSha": "abcdef0",
                    "title": "Fix the batch (#42)", "url": "https://github.com/yourcompany/app-3/commit/abcdef0123456789",
                    "repositorySlug": "yourcompany/app-3", "author": {"name": "Carol Chen"}}}},
            "entity": {"ref": "component:default/app-3", "name": "app-3", "channel": null,
                "owner": {"ref": "group:default/app-team", "name": "app-team", "channel": "#app-team"}}
        })
    }

    #[test]
    fn a_degraded_app_names_its_owner_commit_and_pull_request() {
        let n = notices(Stream::Health, &degraded());
        assert_eq!(n.len(), 1);
        let n = &n[0];
        assert_eq!(n.trigger, Trigger::Degraded);
        assert_eq!(n.app, "app-3");
        assert_eq!(
            n.owner.as_ref().unwrap().channel.as_deref(),
            Some("#app-team")
        );
        let c = n.commit.as_ref().unwrap();
        assert_eq!(c.author.as_deref(), Some("Carol Chen"));
        assert_eq!(
            c.pull_request_url.as_deref(),
            Some("https://github.com/yourcompany/app-3/pull/42")
        );
        assert_eq!(n.key, "healthTransitions|c1|HEALTH|DEGRADED");
    }

    #[test]
    fn uninteresting_transitions_and_resyncs_give_no_notice() {
        let mut t = degraded();
        t["to"] = json!("PROGRESSING");
        assert!(notices(Stream::Health, &t).is_empty());
        assert!(notices(
            Stream::Health,
            &json!({"cursor": "c", "type": "RESYNC_REQUIRED"})
        )
        .is_empty());
    }

    #[test]
    fn pull_requests_are_found_by_githubs_merge_conventions() {
        assert_eq!(
            pull_request_url("o/r", "Merge pull request #7 from o/branch", "ab"),
            "https://github.com/o/r/pull/7"
        );
        assert_eq!(
            pull_request_url("o/r", "Release 3 of app-2", "abc"),
            "https://github.com/o/r/pulls?q=is%3Apr+abc"
        );
    }

    #[test]
    fn a_crash_looping_pod_names_its_app_and_component() {
        let w = json!({"cursor": "c9", "type": "CRASH_LOOP", "namespace": "backstage", "objectName": "backstage-1",
            "container": "backstage", "reason": "CrashLoopBackOff", "count": 3,
            "applications": [{"name": "backstage", "instance": "main", "project": "platform"}],
            "entities": [{"ref": "component:default/backstage", "name": "backstage",
                "owner": {"ref": "group:default/platform-team", "name": "platform-team", "channel": "#platform"}}]});
        let n = &notices(Stream::Workloads, &w)[0];
        assert_eq!(n.trigger, Trigger::CrashLoop);
        assert_eq!(n.app, "backstage");
        assert_eq!(
            n.component.as_ref().unwrap().entity_ref,
            "component:default/backstage"
        );
        assert!(n.headline.contains("backstage"));
    }
}
