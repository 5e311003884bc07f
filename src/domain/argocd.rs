//! ArgoCD applications and projects as the graph sees them: the status fields people read
//! (sync, health, operation, history), parsed once from the CRD JSON.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum SyncStatus {
    Synced,
    OutOfSync,
    Unknown,
}

impl SyncStatus {
    pub fn parse(s: &str) -> Self {
        match s {
            "Synced" => Self::Synced,
            "OutOfSync" => Self::OutOfSync,
            _ => Self::Unknown,
        }
    }
}

/// Ordered from best to worst, so the worst of several is their maximum.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum HealthStatus {
    Healthy,
    Suspended,
    Progressing,
    Unknown,
    Missing,
    Degraded,
}

impl HealthStatus {
    pub fn parse(s: &str) -> Self {
        match s {
            "Healthy" => Self::Healthy,
            "Progressing" => Self::Progressing,
            "Degraded" => Self::Degraded,
            "Suspended" => Self::Suspended,
            "Missing" => Self::Missing,
            _ => Self::Unknown,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum OperationPhase {
    Running,
    Terminating,
    Failed,
    Error,
    Succeeded,
}

impl OperationPhase {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "Running" => Self::Running,
            "Terminating" => Self::Terminating,
            "Failed" => Self::Failed,
            "Error" => Self::Error,
            "Succeeded" => Self::Succeeded,
            _ => return None,
        })
    }

    pub fn is_finished(self) -> bool {
        matches!(self, Self::Failed | Self::Error | Self::Succeeded)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct AppSource {
    pub repo_url: String,
    pub path: Option<String>,
    pub chart: Option<String>,
    pub target_revision: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Destination {
    pub server: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HistoryEntry {
    pub id: i64,
    pub revision: Option<String>,
    pub revisions: Vec<String>,
    pub deployed_at: Option<DateTime<Utc>>,
    pub deploy_started_at: Option<DateTime<Utc>>,
    pub source: Option<AppSource>,
    pub initiated_by: Option<String>,
    pub automated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OperationState {
    pub phase: OperationPhase,
    pub message: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub sync_result_revision: Option<String>,
    pub initiated_by: Option<String>,
    pub automated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResourceStatus {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub status: Option<String>,
    pub health: Option<HealthStatus>,
    pub health_message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Condition {
    pub kind: String,
    pub message: String,
    pub last_transition_time: Option<DateTime<Utc>>,
}

/// Identity of an application across instances: instance, app namespace, name.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct AppKey {
    pub instance: String,
    pub namespace: String,
    pub name: String,
}

impl AppKey {
    /// `instance/namespace/name`: the sort and cursor key.
    pub fn render(&self) -> String {
        format!("{}/{}/{}", self.instance, self.namespace, self.name)
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Application {
    pub key: AppKey,
    /// `key.render()`, kept for sorting and cursors.
    pub key_string: String,
    pub project: String,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub sources: Vec<AppSource>,
    pub destination: Destination,
    pub auto_sync: bool,
    pub sync_status: SyncStatus,
    pub sync_revision: Option<String>,
    pub sync_revisions: Vec<String>,
    /// `status.sync.comparedTo`: the sources and destination the sync status refers to.
    pub compared_to: Option<(Vec<AppSource>, Destination)>,
    pub health: HealthStatus,
    pub health_message: Option<String>,
    pub operation_state: Option<OperationState>,
    /// An operation requested and not yet picked up or finished (`Application.operation`).
    pub operation_pending: bool,
    pub reconciled_at: Option<DateTime<Utc>>,
    /// Shared with older versions of the app while unchanged (`share_unchanged`): most
    /// changes (a reconcile, a health flip, an operation's phase) leave history and resources as
    /// they were, and the versions that events still hold need not copy them.
    pub history: Arc<[HistoryEntry]>,
    pub resources: Arc<[ResourceStatus]>,
    pub conditions: Vec<Condition>,
    pub images: Vec<String>,
    pub created_at: Option<DateTime<Utc>>,
    /// When this server last saw the application change or confirmed by a list.
    pub observed_at: DateTime<Utc>,
}

impl Application {
    /// An application with only its identity set (unknown status, no sources): the base that
    /// generated worlds (tests, benchmarks) fill in with struct update syntax.
    pub fn named(key: AppKey) -> Self {
        Self {
            key_string: key.render(),
            key,
            project: "default".into(),
            uid: None,
            resource_version: None,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            sources: Vec::new(),
            destination: Destination::default(),
            auto_sync: false,
            sync_status: SyncStatus::Unknown,
            sync_revision: None,
            sync_revisions: Vec::new(),
            compared_to: None,
            health: HealthStatus::Unknown,
            health_message: None,
            operation_state: None,
            operation_pending: false,
            reconciled_at: None,
            history: Arc::from([]),
            resources: Arc::from([]),
            conditions: Vec::new(),
            images: Vec::new(),
            created_at: None,
            observed_at: Utc::now(),
        }
    }

    /// When the last sync finished: the sync operation's `finishedAt`, else the newest
    /// history entry's `deployedAt`.
    pub fn last_synced_at(&self) -> Option<DateTime<Utc>> {
        let op = self
            .operation_state
            .as_ref()
            .filter(|o| o.phase == OperationPhase::Succeeded)
            .and_then(|o| o.finished_at);
        let hist = self.history.iter().filter_map(|h| h.deployed_at).max();
        op.max(hist)
    }

    /// Repo URLs of every source (multi-source apps have several).
    pub fn repo_urls(&self) -> impl Iterator<Item = &str> {
        self.sources.iter().map(|s| s.repo_url.as_str())
    }

    /// Points this version's history and resources at `older`'s where they are equal, so the
    /// versions alive side by side (the store's, and the ones the replay buffer's events hold)
    /// share them instead of each holding a copy.
    pub fn share_unchanged(&mut self, older: &Application) {
        if self.history == older.history {
            self.history = older.history.clone();
        }
        if self.resources == older.resources {
            self.resources = older.resources.clone();
        }
    }

    /// Equality for change detection: ignores when we observed it.
    pub fn same_state(&self, other: &Self) -> bool {
        let mut a = self.clone();
        a.observed_at = other.observed_at;
        &a == other
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProjectDestination {
    pub server: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
}

/// A glob as ArgoCD matches destinations with: `*` any run of characters, `?` one character.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Iterative matching with one backtrack point (the last `*`): linear in practice.
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

impl ProjectDestination {
    /// A deny rule (`!` before the server, name or namespace).
    fn is_deny(&self) -> bool {
        [&self.server, &self.name, &self.namespace]
            .iter()
            .any(|f| f.as_deref().is_some_and(|v| v.starts_with('!')))
    }

    /// Does this rule (read without its `!`) match an application's destination?
    fn matches(&self, d: &Destination) -> bool {
        let bare = |f: &Option<String>| f.as_deref().map(|v| v.trim_start_matches('!').to_string());
        let cluster = match (bare(&self.server), bare(&self.name)) {
            (Some(s), _) if d.server.is_some() => glob_match(&s, d.server.as_deref().unwrap_or("")),
            (_, Some(n)) if d.name.is_some() => glob_match(&n, d.name.as_deref().unwrap_or("")),
            (Some(s), _) => glob_match(&s, ""),
            _ => false,
        };
        cluster
            && glob_match(
                &bare(&self.namespace).unwrap_or_default(),
                d.namespace.as_deref().unwrap_or(""),
            )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Project {
    pub instance: String,
    pub name: String,
    pub description: Option<String>,
    pub source_repos: Vec<String>,
    pub destinations: Vec<ProjectDestination>,
    /// `group/kind` entries of `clusterResourceWhitelist`; empty means none allowed.
    pub cluster_resource_whitelist: Vec<String>,
}

impl Project {
    /// Does the project allow an application to deploy there? As ArgoCD decides it: no deny
    /// rule (`!`-prefixed) matches, and some allow rule does. An app spec can claim any
    /// destination; only its project's rules make the claim good.
    pub fn permits(&self, d: &Destination) -> bool {
        let (deny, allow): (Vec<_>, Vec<_>) = self.destinations.iter().partition(|r| r.is_deny());
        !deny.iter().any(|r| r.matches(d)) && allow.iter().any(|r| r.matches(d))
    }
}

/// A resource an action names (`group`/`kind`/`namespace`/`name`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResourceRef {
    pub group: String,
    pub kind: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// What a sync asks for (ArgoCD's `ApplicationSyncRequest`, minus the app's identity).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SyncOptions {
    /// Revision to sync to; `None`: the app's target revision.
    pub revision: Option<String>,
    pub prune: bool,
    pub dry_run: bool,
    /// Sync only these resources (all when empty).
    pub resources: Vec<ResourceRef>,
}

/// One node of an application's live resource tree (`/resource-tree`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ResourceNode {
    pub group: Option<String>,
    pub version: Option<String>,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: Option<String>,
    pub health: Option<HealthStatus>,
    pub health_message: Option<String>,
    pub parent_refs: Vec<ResourceRef>,
    pub images: Vec<String>,
    pub created_at: Option<String>,
}

/// An application's resource tree, as ArgoCD computed it.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct ResourceTree {
    pub nodes: Vec<ResourceNode>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(server: &str, namespace: &str) -> ProjectDestination {
        ProjectDestination {
            server: Some(server.into()),
            name: None,
            namespace: Some(namespace.into()),
        }
    }

    fn dest(server: &str, namespace: &str) -> Destination {
        Destination {
            server: Some(server.into()),
            name: None,
            namespace: Some(namespace.into()),
        }
    }

    #[test]
    fn globs_match_as_argocd_reads_them() {
        for (p, t, m) in [
            ("*", "", true),
            ("*", "anything", true),
            ("svc-*", "svc-00042", true),
            ("svc-*", "svc", false),
            ("app-?", "app-3", true),
            ("app-?", "app-33", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("sample-app", "sample-app", true),
            ("sample-app", "sample-app2", false),
        ] {
            assert_eq!(glob_match(p, t), m, "{p} ~ {t}");
        }
    }

    #[test]
    fn a_project_permits_its_destinations_and_no_denied_one() {
        let in_cluster = "https://kubernetes.default.svc";
        let p = Project {
            instance: "main".into(),
            name: "applications".into(),
            description: None,
            source_repos: vec![],
            destinations: vec![
                rule(in_cluster, "*"),
                rule(in_cluster, "!ingress-nginx"),
                rule("*", "!kube-*"),
            ],
            cluster_resource_whitelist: vec![],
        };
        assert!(p.permits(&dest(in_cluster, "sample-app")));
        assert!(p.permits(&dest(in_cluster, "payments")));
        assert!(!p.permits(&dest(in_cluster, "ingress-nginx")), "denied");
        assert!(
            !p.permits(&dest(in_cluster, "kube-system")),
            "denied by glob"
        );
        assert!(
            !p.permits(&dest("https://other:6443", "sample-app")),
            "no allow rule"
        );
        let narrow = Project {
            destinations: vec![rule(in_cluster, "sample-app"), rule(in_cluster, "svc-*")],
            ..p
        };
        assert!(narrow.permits(&dest(in_cluster, "svc-00001")));
        assert!(!narrow.permits(&dest(in_cluster, "argocd")));
        let by_name = Destination {
            server: None,
            name: Some("in-cluster".into()),
            namespace: Some("sample-app".into()),
        };
        assert!(
            !narrow.permits(&by_name),
            "a rule by server does not match a destination by name"
        );
    }
}
