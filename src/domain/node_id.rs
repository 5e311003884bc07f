//! Global object IDs (the Relay server specification's `Node.id`): what identifies each kind of
//! object, and the opaque string a client sees. Pure: no lookups here — `graph::node` resolves
//! an id to an object for the caller.
//!
//! An id is the unpadded base64url of a JSON array of strings: the id's type, then the natural
//! key (e.g. `["Deployment","prod","shop","api"]`). It is derived only from the key, so two
//! processes (restarts, replicas) over the same upstreams hand out the same ids; clients must
//! treat it as opaque all the same — the encoding may gain a version element later.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Longer ids are refused before decoding: no real key comes near it.
pub const MAX_ID_LEN: usize = 2048;

/// What an id names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeId {
    /// A catalog entity by its ref (`component:default/sample-app`).
    Entity {
        entity_ref: String,
    },
    /// An ArgoCD Application.
    Application {
        instance: String,
        namespace: String,
        name: String,
    },
    /// One entry of an Application's `status.history`, by its ArgoCD history id.
    HistoryEntry {
        instance: String,
        namespace: String,
        name: String,
        history_id: i64,
    },
    /// A configured cluster.
    Cluster {
        name: String,
    },
    /// A Kubernetes object; `kind` is its GraphQL type name (`Deployment`, `Namespace`), and the
    /// namespace is empty for cluster-scoped kinds.
    Kubernetes {
        kind: String,
        cluster: String,
        namespace: String,
        name: String,
    },
    Repository {
        slug: String,
    },
    Commit {
        slug: String,
        sha: String,
    },
    PullRequest {
        slug: String,
        number: u64,
    },
    WorkflowRun {
        slug: String,
        run_id: u64,
    },
    /// A Backstage scaffolder task.
    TemplateTask {
        task_id: String,
    },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NodeIdError {
    #[error("not a node id (too long)")]
    TooLong,
    #[error("not a node id")]
    Malformed,
    #[error("not a node id (unknown type `{0}`)")]
    UnknownType(String),
}

impl NodeId {
    fn parts(&self) -> Vec<String> {
        let s = |v: &str| v.to_string();
        match self {
            NodeId::Entity { entity_ref } => vec![s("Entity"), entity_ref.clone()],
            NodeId::Application {
                instance,
                namespace,
                name,
            } => vec![s("Application"), s(instance), s(namespace), s(name)],
            NodeId::HistoryEntry {
                instance,
                namespace,
                name,
                history_id,
            } => vec![
                s("HistoryEntry"),
                s(instance),
                s(namespace),
                s(name),
                history_id.to_string(),
            ],
            NodeId::Cluster { name } => vec![s("Cluster"), s(name)],
            NodeId::Kubernetes {
                kind,
                cluster,
                namespace,
                name,
            } => vec![s(kind), s(cluster), s(namespace), s(name)],
            NodeId::Repository { slug } => vec![s("Repository"), s(slug)],
            NodeId::Commit { slug, sha } => vec![s("Commit"), s(slug), s(sha)],
            NodeId::PullRequest { slug, number } => {
                vec![s("PullRequest"), s(slug), number.to_string()]
            }
            NodeId::WorkflowRun { slug, run_id } => {
                vec![s("WorkflowRun"), s(slug), run_id.to_string()]
            }
            NodeId::TemplateTask { task_id } => vec![s("TemplateTask"), s(task_id)],
        }
    }

    /// The opaque id.
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(&self.parts()).expect("BUG: strings always serialize");
        URL_SAFE_NO_PAD.encode(json)
    }

    /// Reads an id; anything not produced by `encode` is an error, never a panic.
    pub fn decode(id: &str) -> Result<NodeId, NodeIdError> {
        if id.len() > MAX_ID_LEN {
            return Err(NodeIdError::TooLong);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(id.as_bytes())
            .map_err(|_| NodeIdError::Malformed)?;
        let parts: Vec<String> =
            serde_json::from_slice(&bytes).map_err(|_| NodeIdError::Malformed)?;
        let (kind, rest) = parts.split_first().ok_or(NodeIdError::Malformed)?;
        let rest: Vec<String> = rest.to_vec();
        let num = |v: &str| v.parse::<u64>().map_err(|_| NodeIdError::Malformed);
        let id = match (kind.as_str(), rest.as_slice()) {
            ("Entity", [r]) => NodeId::Entity {
                entity_ref: r.clone(),
            },
            ("Application", [i, ns, n]) => NodeId::Application {
                instance: i.clone(),
                namespace: ns.clone(),
                name: n.clone(),
            },
            ("HistoryEntry", [i, ns, n, h]) => NodeId::HistoryEntry {
                instance: i.clone(),
                namespace: ns.clone(),
                name: n.clone(),
                history_id: h.parse().map_err(|_| NodeIdError::Malformed)?,
            },
            ("Cluster", [n]) => NodeId::Cluster { name: n.clone() },
            (k, [c, ns, n]) if KUBERNETES_KINDS.contains(&k) => NodeId::Kubernetes {
                kind: k.to_string(),
                cluster: c.clone(),
                namespace: ns.clone(),
                name: n.clone(),
            },
            ("Repository", [slug]) => NodeId::Repository { slug: slug.clone() },
            ("Commit", [slug, sha]) => NodeId::Commit {
                slug: slug.clone(),
                sha: sha.clone(),
            },
            ("PullRequest", [slug, n]) => NodeId::PullRequest {
                slug: slug.clone(),
                number: num(n)?,
            },
            ("WorkflowRun", [slug, n]) => NodeId::WorkflowRun {
                slug: slug.clone(),
                run_id: num(n)?,
            },
            ("TemplateTask", [t]) => NodeId::TemplateTask { task_id: t.clone() },
            (k, _) if KNOWN.contains(&k) || KUBERNETES_KINDS.contains(&k) => {
                return Err(NodeIdError::Malformed)
            }
            (k, _) => return Err(NodeIdError::UnknownType(k.chars().take(40).collect())),
        };
        Ok(id)
    }
}

/// The Kubernetes kinds the graph serves, by GraphQL type name.
pub const KUBERNETES_KINDS: &[&str] = &[
    "Namespace",
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "Pod",
    "Service",
    "Ingress",
    "ConfigMap",
    "Secret",
];

const KNOWN: &[&str] = &[
    "Entity",
    "Application",
    "HistoryEntry",
    "Cluster",
    "Repository",
    "Commit",
    "PullRequest",
    "WorkflowRun",
    "TemplateTask",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<NodeId> {
        vec![
            NodeId::Entity {
                entity_ref: "component:default/sample-app".into(),
            },
            NodeId::Application {
                instance: "main".into(),
                namespace: "argocd".into(),
                name: "a\"b/c".into(),
            },
            NodeId::HistoryEntry {
                instance: "main".into(),
                namespace: "argocd".into(),
                name: "x".into(),
                history_id: -3,
            },
            NodeId::Cluster {
                name: "prod".into(),
            },
            NodeId::Kubernetes {
                kind: "Namespace".into(),
                cluster: "prod".into(),
                namespace: String::new(),
                name: "shop".into(),
            },
            NodeId::Repository {
                slug: "acme/ü".into(),
            },
            NodeId::Commit {
                slug: "acme/x".into(),
                sha: "abc1234".into(),
            },
            NodeId::PullRequest {
                slug: "acme/x".into(),
                number: 12,
            },
            NodeId::WorkflowRun {
                slug: "acme/x".into(),
                run_id: u64::MAX,
            },
            NodeId::TemplateTask {
                task_id: "t-1".into(),
            },
        ]
    }

    #[test]
    fn every_id_round_trips_and_is_url_safe() {
        for id in samples() {
            let s = id.encode();
            assert!(s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            assert_eq!(NodeId::decode(&s), Ok(id));
        }
    }

    #[test]
    fn the_same_key_always_gives_the_same_id() {
        let a = NodeId::Repository {
            slug: "acme/x".into(),
        };
        assert_eq!(a.encode(), a.clone().encode());
        assert_eq!(a.encode(), "WyJSZXBvc2l0b3J5IiwiYWNtZS94Il0");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let enc = |v: &str| URL_SAFE_NO_PAD.encode(v);
        for bad in [
            String::new(),
            "!!!".into(),
            "x".repeat(MAX_ID_LEN + 1),
            enc("[]"),
            enc("{}"),
            enc("[1,2]"),
            enc("[\"Application\",\"only-one\"]"),
            enc("[\"PullRequest\",\"a/b\",\"-1\"]"),
            enc("[\"HistoryEntry\",\"a\",\"b\",\"c\",\"nan\"]"),
            enc("\u{0}\u{ff}"),
        ] {
            assert!(NodeId::decode(&bad).is_err(), "{bad}");
        }
        assert_eq!(
            NodeId::decode(&enc("[\"Spaceship\",\"x\"]")),
            Err(NodeIdError::UnknownType("Spaceship".into()))
        );
    }
}
