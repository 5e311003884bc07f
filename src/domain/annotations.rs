//! The annotation keys that join a catalog entity to the other upstreams, and their parsing.
//! These are the conventions users already write in `catalog-info.yaml` (the Backstage ArgoCD,
//! Kubernetes and GitHub plugins read the same keys), so we honour them exactly.

use std::collections::BTreeMap;

pub const ARGOCD_APP_NAME: &str = "argocd/app-name";
pub const ARGOCD_APP_SELECTOR: &str = "argocd/app-selector";
pub const ARGOCD_PROJECT_NAME: &str = "argocd/project-name";
pub const ARGOCD_INSTANCE_NAME: &str = "argocd/instance-name";
pub const ARGOCD_APP_NAMESPACE: &str = "argocd/app-namespace";
pub const KUBERNETES_ID: &str = "backstage.io/kubernetes-id";
pub const KUBERNETES_LABEL_SELECTOR: &str = "backstage.io/kubernetes-label-selector";
pub const KUBERNETES_NAMESPACE: &str = "backstage.io/kubernetes-namespace";
pub const GITHUB_PROJECT_SLUG: &str = "github.com/project-slug";

/// The join keys of one entity, parsed once when the entity is stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JoinKeys {
    /// `argocd/app-name`, split on commas, trimmed, empties dropped.
    pub argocd_app_names: Vec<String>,
    pub argocd_app_selector: Option<String>,
    pub argocd_project: Option<String>,
    pub argocd_instance: Option<String>,
    pub argocd_app_namespace: Option<String>,
    pub kubernetes_id: Option<String>,
    pub kubernetes_label_selector: Option<String>,
    pub kubernetes_namespace: Option<String>,
    /// `owner/repo`, only when it has exactly that shape.
    pub github_slug: Option<String>,
}

fn non_empty(annotations: &BTreeMap<String, String>, key: &str) -> Option<String> {
    annotations
        .get(key)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// `owner/repo` with both parts non-empty and nothing else.
pub fn is_github_slug(slug: &str) -> bool {
    let mut parts = slug.split('/');
    let ok = |p: Option<&str>| {
        p.is_some_and(|p| {
            !p.is_empty()
                && p.len() <= 100
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        })
    };
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

impl JoinKeys {
    pub fn from_annotations(annotations: &BTreeMap<String, String>) -> Self {
        Self {
            argocd_app_names: annotations
                .get(ARGOCD_APP_NAME)
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            argocd_app_selector: non_empty(annotations, ARGOCD_APP_SELECTOR),
            argocd_project: non_empty(annotations, ARGOCD_PROJECT_NAME),
            argocd_instance: non_empty(annotations, ARGOCD_INSTANCE_NAME),
            argocd_app_namespace: non_empty(annotations, ARGOCD_APP_NAMESPACE),
            kubernetes_id: non_empty(annotations, KUBERNETES_ID),
            kubernetes_label_selector: non_empty(annotations, KUBERNETES_LABEL_SELECTOR),
            kubernetes_namespace: non_empty(annotations, KUBERNETES_NAMESPACE),
            github_slug: non_empty(annotations, GITHUB_PROJECT_SLUG).filter(|s| is_github_slug(s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names_split_on_commas() {
        let mut a = BTreeMap::new();
        a.insert(ARGOCD_APP_NAME.into(), " a, b ,,c".into());
        a.insert(GITHUB_PROJECT_SLUG.into(), "yourcompany/sample-app".into());
        let k = JoinKeys::from_annotations(&a);
        assert_eq!(k.argocd_app_names, ["a", "b", "c"]);
        assert_eq!(k.github_slug.as_deref(), Some("yourcompany/sample-app"));
    }

    #[test]
    fn bad_slugs_are_not_join_keys() {
        for bad in ["x", "a/b/c", "/b", "a/", "a b/c"] {
            assert!(!is_github_slug(bad), "{bad}");
        }
    }
}
