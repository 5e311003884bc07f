//! The join rules between catalog entities and upstream objects, over the annotation keys in
//! `annotations.rs` (the ones the Backstage ArgoCD, Kubernetes and GitHub plugins read; README,
//! "Kubernetes", for the workload joins). Pure functions; the indexes that make them cheap, and
//! every relation as a `State` method, live in `state/joins.rs` (README, "Where things live").

use super::annotations::JoinKeys;
use super::argocd::Application;
use super::selector::LabelSelector;

/// Does `app` belong to the entity with these join keys? By name (`argocd/app-name`) or by
/// label selector (`argocd/app-selector`), narrowed by `argocd/instance-name`,
/// `argocd/project-name` and `argocd/app-namespace` when those are set.
pub fn entity_has_app(keys: &JoinKeys, app: &Application) -> bool {
    let by_name = keys.argocd_app_names.iter().any(|n| n == &app.key.name);
    let by_selector = !by_name
        && keys
            .argocd_app_selector
            .as_deref()
            .and_then(|s| LabelSelector::parse(s).ok())
            .is_some_and(|sel| !sel.is_empty() && sel.matches(&app.labels));
    (by_name || by_selector) && app_constraints_hold(keys, app)
}

fn app_constraints_hold(keys: &JoinKeys, app: &Application) -> bool {
    keys.argocd_instance
        .as_deref()
        .is_none_or(|i| i == app.key.instance)
        && keys
            .argocd_project
            .as_deref()
            .is_none_or(|p| p == app.project)
        && keys
            .argocd_app_namespace
            .as_deref()
            .is_none_or(|n| n == app.key.namespace)
}

/// `owner/repo` of a GitHub repo URL (`https://github.com/o/r(.git)`, `git@github.com:o/r.git`),
/// for hosts that are GitHub (`github.com` or the configured Enterprise host).
pub fn github_slug_of_repo_url(url: &str, hosts: &[&str]) -> Option<String> {
    let rest = if let Some(r) = url.strip_prefix("git@") {
        let (host, path) = r.split_once(':')?;
        hosts.contains(&host).then_some(path)?
    } else {
        let u = url::Url::parse(url).ok()?;
        let host = u.host_str()?;
        if !hosts.contains(&host) {
            return None;
        }
        return slug_from_path(u.path());
    };
    slug_from_path(rest)
}

fn slug_from_path(path: &str) -> Option<String> {
    let path = path.trim_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    let slug = path.to_string();
    super::annotations::is_github_slug(&slug).then_some(slug)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_urls_become_slugs_only_for_github_hosts() {
        let hosts = ["github.com"];
        assert_eq!(
            github_slug_of_repo_url("https://github.com/yourcompany/idp.git", &hosts).as_deref(),
            Some("yourcompany/idp")
        );
        assert_eq!(
            github_slug_of_repo_url("git@github.com:o/r.git", &hosts).as_deref(),
            Some("o/r")
        );
        assert_eq!(
            github_slug_of_repo_url("https://gitlab.com/o/r", &hosts),
            None
        );
        assert_eq!(
            github_slug_of_repo_url("https://github.com/o", &hosts),
            None
        );
    }
}
