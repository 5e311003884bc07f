//! Who may see and do what: roles (what they grant) and bindings (who gets them), folded into
//! the `Grants` of a principal once, when it is authenticated. Anchored on ArgoCD RBAC (projects
//! as the unit of visibility) and Backstage's permission framework (ownership in the catalog as
//! a condition): a role may limit its actions to what one of the caller's groups **owns** in the
//! catalog — component owner → its ArgoCD apps and their workloads.
//!
//! With no `policy` key the default is the seed's boundary: group `platform-team` is `admin`
//! (sees and does everything); every other authenticated user is a `member` (sees the catalog,
//! the `applications` project's apps and the objects in their destination namespaces, and acts
//! only on what their groups own); anonymous callers get `auth.anonymous` (`deny`, or a role:
//! the demo's `read-only` sees everything and does nothing).

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::Action;
use crate::settings::{invalid, ConfigError};

/// Where a role's actions apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActOn {
    /// Everything the role sees.
    #[default]
    All,
    /// Only apps and workloads owned (catalog `spec.owner`) by one of the caller's groups.
    Owned,
}

/// What a role grants.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Role {
    /// Everything, plus the audit log and the upstreams' URLs and raw errors in `sources`.
    #[serde(default)]
    pub admin: bool,
    /// The catalog (default: visible).
    #[serde(default = "yes")]
    pub catalog: bool,
    /// ArgoCD projects whose applications it sees: `*`, `<project>` or `<instance>/<project>`.
    #[serde(default)]
    pub projects: Vec<String>,
    /// Kubernetes namespaces it sees: `*`, `<namespace>`, `<cluster>/<namespace>`, or
    /// `destinations` (the destination namespaces of the applications it sees).
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Actions: sync, rollback, refresh, terminate, restart, createFromTemplate.
    #[serde(default)]
    pub actions: Vec<Action>,
    #[serde(default)]
    pub act_on: ActOn,
}

fn yes() -> bool {
    true
}

/// Who gets a role: a group (plain name or `group:<ns>/<name>`), a subject (a user ref or the
/// token's `sub`), or every authenticated caller.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub authenticated: bool,
    pub role: String,
}

/// `auth.policy`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub roles: BTreeMap<String, Role>,
    #[serde(default)]
    pub bindings: Vec<Binding>,
}

impl Default for Policy {
    /// The seed's boundary (see the module doc).
    fn default() -> Self {
        let all_actions = vec![
            Action::Sync,
            Action::Rollback,
            Action::Refresh,
            Action::Terminate,
            Action::Restart,
            Action::CreateFromTemplate,
        ];
        let roles = BTreeMap::from([
            (
                "admin".to_string(),
                Role {
                    admin: true,
                    catalog: true,
                    projects: vec!["*".into()],
                    namespaces: vec!["*".into()],
                    actions: all_actions.clone(),
                    act_on: ActOn::All,
                },
            ),
            (
                "member".to_string(),
                Role {
                    admin: false,
                    catalog: true,
                    projects: vec!["applications".into()],
                    namespaces: vec!["destinations".into()],
                    actions: all_actions,
                    act_on: ActOn::Owned,
                },
            ),
            (
                "read-only".to_string(),
                Role {
                    admin: false,
                    catalog: true,
                    projects: vec!["*".into()],
                    namespaces: vec!["*".into()],
                    actions: Vec::new(),
                    act_on: ActOn::All,
                },
            ),
        ]);
        Self {
            roles,
            bindings: vec![
                Binding {
                    group: Some("platform-team".into()),
                    subject: None,
                    authenticated: false,
                    role: "admin".into(),
                },
                Binding {
                    group: None,
                    subject: None,
                    authenticated: true,
                    role: "member".into(),
                },
            ],
        }
    }
}

/// A group name as the catalog refers to it: `group:<namespace>/<name>`, lower-cased.
pub fn group_ref(name: &str) -> String {
    crate::domain::EntityRef::parse_with_defaults(name, Some("group"), "default")
        .map(|r| r.to_string())
        .unwrap_or_else(|_| name.to_lowercase())
}

/// What one principal may see and do: the union of its roles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    pub roles: Vec<String>,
    pub admin: bool,
    pub catalog: bool,
    pub all_projects: bool,
    /// `project` or `instance/project`.
    pub projects: BTreeSet<String>,
    pub all_namespaces: bool,
    /// `namespace` or `cluster/namespace`.
    pub namespaces: BTreeSet<String>,
    pub destination_namespaces: bool,
    /// Action → may it act on everything it sees (`true`) or only on what it owns.
    pub actions: BTreeMap<Action, bool>,
}

impl Grants {
    /// Everything (auth mode `none`).
    pub fn everything() -> Self {
        Policy::default().grants_of_roles(&["admin".to_string()])
    }

    pub fn sees_project(&self, instance: &str, project: &str) -> bool {
        self.admin
            || self.all_projects
            || self.projects.contains(project)
            || self.projects.contains(&format!("{instance}/{project}"))
    }

    /// Seen by an explicit grant (the `destinations` grant needs the state: `graph::Viewer`).
    pub fn sees_namespace_explicitly(&self, cluster: &str, namespace: &str) -> bool {
        self.admin
            || self.all_namespaces
            || self.namespaces.contains(namespace)
            || self.namespaces.contains(&format!("{cluster}/{namespace}"))
    }

    /// `Some(true)`: on everything seen; `Some(false)`: only on what its groups own.
    pub fn may(&self, action: Action) -> Option<bool> {
        if self.admin {
            return Some(true);
        }
        self.actions.get(&action).copied()
    }
}

impl Policy {
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        for (i, b) in self.bindings.iter().enumerate() {
            let at = format!("{key}.bindings[{i}]");
            if !self.roles.contains_key(&b.role) {
                return Err(invalid(
                    format!("{at}.role"),
                    format!("no role `{}` in {key}.roles", b.role),
                ));
            }
            let whom = usize::from(b.group.is_some())
                + usize::from(b.subject.is_some())
                + usize::from(b.authenticated);
            if whom != 1 {
                return Err(invalid(
                    at,
                    "give exactly one of `group`, `subject` or `authenticated: true`",
                ));
            }
        }
        Ok(())
    }

    /// The roles bound to a caller with this subject and these group refs.
    pub fn roles_of(&self, subject: &str, groups: &[String]) -> Vec<String> {
        let mut roles: Vec<String> = self
            .bindings
            .iter()
            .filter(|b| {
                b.authenticated
                    || b.subject.as_deref().is_some_and(|s| s == subject)
                    || b.group
                        .as_deref()
                        .is_some_and(|g| groups.contains(&group_ref(g)))
            })
            .map(|b| b.role.clone())
            .collect();
        roles.sort();
        roles.dedup();
        roles
    }

    /// Folds roles into grants (unknown names grant nothing).
    pub fn grants_of_roles(&self, roles: &[String]) -> Grants {
        let mut g = Grants {
            roles: roles.to_vec(),
            ..Default::default()
        };
        for role in roles.iter().filter_map(|r| self.roles.get(r)) {
            g.admin |= role.admin;
            g.catalog |= role.catalog || role.admin;
            for p in &role.projects {
                if p == "*" {
                    g.all_projects = true;
                } else {
                    g.projects.insert(p.clone());
                }
            }
            for n in &role.namespaces {
                match n.as_str() {
                    "*" => g.all_namespaces = true,
                    "destinations" => g.destination_namespaces = true,
                    other => {
                        g.namespaces.insert(other.to_string());
                    }
                }
            }
            for a in &role.actions {
                let on_all = role.act_on == ActOn::All;
                let e = g.actions.entry(*a).or_insert(on_all);
                *e |= on_all;
            }
        }
        g
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_is_the_seed_boundary() {
        let p = Policy::default();
        let admin =
            p.grants_of_roles(&p.roles_of("user:default/alice", &[group_ref("platform-team")]));
        assert!(admin.admin && admin.sees_project("main", "platform"));
        assert_eq!(admin.may(Action::Sync), Some(true));

        let member = p.grants_of_roles(&p.roles_of("user:default/carol", &[group_ref("app-team")]));
        assert_eq!(member.roles, ["member"]);
        assert!(member.sees_project("main", "applications"));
        assert!(!member.sees_project("main", "platform"));
        assert!(member.destination_namespaces && !member.all_namespaces);
        assert_eq!(member.may(Action::Sync), Some(false), "owned only");

        let nobody = p.grants_of_roles(&p.roles_of("user:default/erin", &[]));
        assert_eq!(nobody.roles, ["member"]);
        // The group may be written as a ref too.
        assert_eq!(
            p.roles_of("x", &[group_ref("group:default/platform-team")]),
            ["admin", "member"]
        );
    }

    #[test]
    fn bindings_must_name_a_known_role_and_exactly_one_whom() {
        let mut p = Policy::default();
        p.bindings.push(Binding {
            group: None,
            subject: None,
            authenticated: false,
            role: "admin".into(),
        });
        assert!(p
            .validate("auth.policy")
            .unwrap_err()
            .to_string()
            .contains("bindings[2]"));
        p.bindings.pop();
        p.bindings[0].role = "root".into();
        assert!(p
            .validate("auth.policy")
            .unwrap_err()
            .to_string()
            .contains("bindings[0].role"));
    }
}
