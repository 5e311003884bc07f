//! `ApplicationFilter`: parsed once per query or subscription into a matcher, then applied to
//! each application.

use async_graphql::{InputObject, Result};

use crate::domain::argocd::Application;
use crate::domain::selector::LabelSelector;
use crate::graph::application::{HealthStatusCode, SyncStatusCode};
use crate::graph::error::bad_input;

/// All given conditions must hold.
#[derive(InputObject, Default, Clone, Debug)]
pub struct ApplicationFilter {
    pub instance: Option<String>,
    pub project: Option<String>,
    /// Namespace of the Application object.
    pub namespace: Option<String>,
    /// Exact names (any of).
    pub names: Option<Vec<String>>,
    /// Substring of the name, case-insensitive.
    pub name: Option<String>,
    pub sync_status: Option<SyncStatusCode>,
    pub health_status: Option<HealthStatusCode>,
    /// Kubernetes label selector on the Application's labels.
    pub label_selector: Option<String>,
    /// Any source's repoURL (exact, or ignoring a trailing `.git` / `/`).
    #[graphql(name = "repoURL")]
    pub repo_url: Option<String>,
    pub destination_namespace: Option<String>,
    /// Destination server URL or cluster name.
    pub destination_cluster: Option<String>,
}

pub struct ApplicationMatcher {
    f: ApplicationFilter,
    selector: Option<LabelSelector>,
    name_lower: Option<String>,
}

fn normalize_repo(u: &str) -> &str {
    let u = u.trim_end_matches('/');
    u.strip_suffix(".git").unwrap_or(u)
}

impl ApplicationMatcher {
    pub fn new(filter: Option<ApplicationFilter>) -> Result<Self> {
        let f = filter.unwrap_or_default();
        let selector = f
            .label_selector
            .as_deref()
            .map(LabelSelector::parse)
            .transpose()
            .map_err(|e| bad_input(format!("filter.labelSelector: {e}")))?;
        let name_lower = f.name.as_deref().map(str::to_lowercase);
        Ok(Self {
            f,
            selector,
            name_lower,
        })
    }

    pub fn matches(&self, a: &Application) -> bool {
        let f = &self.f;
        f.instance.as_deref().is_none_or(|i| i == a.key.instance)
            && f.project.as_deref().is_none_or(|p| p == a.project)
            && f.namespace.as_deref().is_none_or(|n| n == a.key.namespace)
            && f.names
                .as_ref()
                .is_none_or(|ns| ns.iter().any(|n| n == &a.key.name))
            && self
                .name_lower
                .as_deref()
                .is_none_or(|n| a.key.name.to_lowercase().contains(n))
            && f.sync_status.is_none_or(|s| s == a.sync_status.into())
            && f.health_status.is_none_or(|h| h == a.health.into())
            && self.selector.as_ref().is_none_or(|s| s.matches(&a.labels))
            && f.repo_url.as_deref().is_none_or(|r| {
                a.repo_urls()
                    .any(|u| normalize_repo(u) == normalize_repo(r))
            })
            && f.destination_namespace
                .as_deref()
                .is_none_or(|n| a.destination.namespace.as_deref() == Some(n))
            && f.destination_cluster.as_deref().is_none_or(|c| {
                a.destination.server.as_deref() == Some(c)
                    || a.destination.name.as_deref() == Some(c)
            })
    }

    /// Only `names` set: answerable from the by-name index without a scan.
    pub fn only_names(&self) -> Option<&[String]> {
        self.f.names.as_deref()
    }
}
