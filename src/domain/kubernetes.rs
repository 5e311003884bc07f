//! What the Kubernetes source reads, as RBAC sees it. The ClusterRole in `deploy/` must grant
//! exactly this (tests/deploy.rs checks), so widening either side is a visible, reviewed change.

/// `(API group, resource, verbs)`. Secrets: list and watch through the metadata-only API
/// (names, labels, annotations, key names; values are never requested).
pub const READ_ACCESS: &[(&str, &str, &[&str])] = &[
    ("", "namespaces", &["get", "list", "watch"]),
    ("", "pods", &["get", "list", "watch"]),
    ("", "services", &["get", "list", "watch"]),
    ("", "configmaps", &["get", "list", "watch"]),
    ("", "events", &["get", "list", "watch"]),
    ("", "secrets", &["list", "watch"]),
    ("apps", "deployments", &["get", "list", "watch"]),
    ("apps", "replicasets", &["get", "list", "watch"]),
    ("apps", "statefulsets", &["get", "list", "watch"]),
    ("apps", "daemonsets", &["get", "list", "watch"]),
    ("networking.k8s.io", "ingresses", &["get", "list", "watch"]),
];

/// What `restartDeployment` needs, granted only by the opt-in `restart` component.
pub const RESTART_ACCESS: &[(&str, &str, &[&str])] = &[("apps", "deployments", &["patch"])];
