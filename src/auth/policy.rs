//! Who may see and do what: roles (what they grant) and bindings (who gets them), folded into
//! the `Grants` of a principal once, when it is authenticated. Anchored on ArgoCD RBAC (projects
//! as the unit of visibility) and Backstage's permission framework (ownership in the catalog as
//! a condition): a role may limit its actions to what one of the caller's groups **owns** in the
//! catalog — component owner → its ArgoCD apps and their workloads.
//!
//! With no `policy` key the default is the seed's boundary: group `platform-team` is `admin`
//! (sees and does everything); every other authenticated user is a `member` (sees the catalog,
//! the `applications` project's apps and the objects in their destination namespaces, and acts
//! only on what their groups own; templates only with a group); anonymous callers get
//! `auth.anonymous` (`deny`, or a role: the demo's `read-only` is the public boundary — the
//! catalog, the `applications` project and its namespaces — and does nothing).

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::Action;
use crate::settings::{invalid, ConfigError};

/// Where a role's actions apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
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
    /// May name the user it acts for (`X-Idp-Acting-For`): the policy then decides as that
    /// user, and the audit trail records both (a chatops bot: `idp-graph notify`).
    #[serde(default)]
    pub delegate: bool,
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
        let all_actions = Action::ALL.to_vec();
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
                    delegate: false,
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
                    delegate: false,
                },
            ),
            (
                // The public boundary, for anonymous callers where they are let in: the
                // catalog, the `applications` project and its destination namespaces.
                "read-only".to_string(),
                Role {
                    admin: false,
                    catalog: true,
                    projects: vec!["applications".into()],
                    namespaces: vec!["destinations".into()],
                    actions: Vec::new(),
                    act_on: ActOn::All,
                    delegate: false,
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
    /// Action → where it applies: everything it sees, or only what its groups own.
    pub actions: BTreeMap<Action, ActOn>,
    /// May act for another user (a role with `delegate: true`).
    pub delegate: bool,
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
}

/// What the graph found out about the target of an action — everything [`decide`] needs
/// besides the caller's grants, so that the decision itself is a pure function.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub target: Target<'a>,
    /// Group refs that own the target in the catalog (`spec.owner` of the entities the joins
    /// find for it: an app's components, an object's components or its app's).
    pub owners: &'a [String],
    /// The caller's group refs (with their parent groups).
    pub caller_groups: &'a [String],
}

/// What an action is taken on.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// An ArgoCD application, by where it lives.
    Application { instance: &'a str, project: &'a str },
    /// A Kubernetes object in a namespace. `via_destination`: an application the caller sees
    /// deploys into that namespace, and the app's project allows it as a destination.
    Object {
        cluster: &'a str,
        namespace: &'a str,
        via_destination: bool,
    },
    /// Something that does not exist yet (a template run): whoever creates it owns it, so an
    /// owned-only grant needs the caller to be in a group.
    New,
}

/// Why an action was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No role of the caller grants the action.
    NotGranted,
    /// The caller does not see the target (it must look missing).
    Invisible,
    /// The grant is owned-only and none of the caller's groups owns the target.
    NotOwner,
}

/// The one answer to "may this caller take this action on this target?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Allowed, on this grant's scope (`ActOn::All`: on everything seen; `Owned`: as an owner).
    Allow(ActOn),
    Deny(Denied),
}

impl Decision {
    pub fn allowed(self) -> bool {
        matches!(self, Decision::Allow(_))
    }
}

/// Decides an action: the grant (admin, or a role granting `action`), then visibility of the
/// target, then — for owned-only grants — ownership. Pure: the graph gathers the facts.
pub fn decide(grants: &Grants, action: Action, facts: &Facts<'_>) -> Decision {
    if grants.admin {
        return Decision::Allow(ActOn::All);
    }
    let Some(on) = grants.actions.get(&action).copied() else {
        return Decision::Deny(Denied::NotGranted);
    };
    let visible = match facts.target {
        Target::Application { instance, project } => grants.sees_project(instance, project),
        Target::Object {
            cluster,
            namespace,
            via_destination,
        } => {
            grants.sees_namespace_explicitly(cluster, namespace)
                || (grants.destination_namespaces && via_destination && !namespace.is_empty())
        }
        Target::New => true,
    };
    if !visible {
        return Decision::Deny(Denied::Invisible);
    }
    if on == ActOn::All {
        return Decision::Allow(ActOn::All);
    }
    let owns = match facts.target {
        Target::New => !facts.caller_groups.is_empty(),
        _ => facts.owners.iter().any(|o| facts.caller_groups.contains(o)),
    };
    if owns {
        Decision::Allow(ActOn::Owned)
    } else {
        Decision::Deny(Denied::NotOwner)
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
            g.delegate |= role.delegate;
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
                // The wider scope of two roles granting the same action wins.
                let e = g.actions.entry(*a).or_insert(role.act_on);
                if role.act_on == ActOn::All {
                    *e = ActOn::All;
                }
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
        assert!(admin.admin);

        let member = p.grants_of_roles(&p.roles_of("user:default/carol", &[group_ref("app-team")]));
        assert_eq!(member.roles, ["member"]);
        assert!(member.sees_project("main", "applications"));
        assert!(!member.sees_project("main", "platform"));
        assert!(member.destination_namespaces && !member.all_namespaces);
        assert_eq!(
            member.actions.get(&Action::Sync),
            Some(&ActOn::Owned),
            "owned only"
        );

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

    /// The seed's boundary, persona by persona, for every action, without any state.
    #[test]
    fn decide_follows_the_seed_boundary_for_every_action() {
        let p = Policy::default();
        let persona = |subject: &str, groups: &[&str]| {
            let groups: Vec<String> = groups.iter().map(|g| group_ref(g)).collect();
            (p.grants_of_roles(&p.roles_of(subject, &groups)), groups)
        };
        let alice = persona("user:default/alice", &["platform-team"]);
        let carol = persona("user:default/carol", &["app-team"]);
        let erin = persona("user:default/erin", &[]);
        let anonymous = (p.grants_of_roles(&["read-only".to_string()]), Vec::new());
        let app_team = vec![group_ref("app-team")];
        let platform_team = vec![group_ref("platform-team")];
        let app = |project| Target::Application {
            instance: "main",
            project,
        };
        let object = |namespace, via_destination| Target::Object {
            cluster: "demo",
            namespace,
            via_destination,
        };
        use Decision::{Allow, Deny};
        use Denied::*;
        let app_actions = [
            Action::Sync,
            Action::Rollback,
            Action::Refresh,
            Action::Terminate,
        ];
        let (app_team, platform_team) = (app_team.as_slice(), platform_team.as_slice());
        /// One line of the boundary table.
        struct Row<'a> {
            who: &'a str,
            caller: &'a (Grants, Vec<String>),
            target: Target<'a>,
            owners: &'a [String],
            actions: Vec<Action>,
            expected: Decision,
        }
        let row = |who, caller, target, owners, actions: &[Action], expected| Row {
            who,
            caller,
            target,
            owners,
            actions: actions.to_vec(),
            expected,
        };
        let restart = [Action::Restart];
        let create = [Action::CreateFromTemplate];
        let every_action = Action::ALL;
        let none: &[String] = &[];
        let mut table = vec![
            row(
                "alice",
                &alice,
                app("platform"),
                platform_team,
                &app_actions,
                Allow(ActOn::All),
            ),
            row(
                "alice",
                &alice,
                app("applications"),
                app_team,
                &app_actions,
                Allow(ActOn::All),
            ),
            row(
                "alice",
                &alice,
                object("argocd", false),
                none,
                &restart,
                Allow(ActOn::All),
            ),
            row(
                "alice",
                &alice,
                Target::New,
                none,
                &create,
                Allow(ActOn::All),
            ),
            row(
                "carol",
                &carol,
                app("applications"),
                app_team,
                &app_actions,
                Allow(ActOn::Owned),
            ),
            row(
                "carol",
                &carol,
                app("applications"),
                platform_team,
                &app_actions,
                Deny(NotOwner),
            ),
            row(
                "carol",
                &carol,
                app("platform"),
                app_team,
                &app_actions,
                Deny(Invisible),
            ),
            row(
                "carol",
                &carol,
                object("sample-app", true),
                app_team,
                &restart,
                Allow(ActOn::Owned),
            ),
            row(
                "carol",
                &carol,
                object("sample-app", true),
                platform_team,
                &restart,
                Deny(NotOwner),
            ),
            row(
                "carol",
                &carol,
                object("ingress-nginx", false),
                app_team,
                &restart,
                Deny(Invisible),
            ),
            row(
                "carol",
                &carol,
                Target::New,
                none,
                &create,
                Allow(ActOn::Owned),
            ),
            row(
                "erin",
                &erin,
                app("applications"),
                app_team,
                &app_actions,
                Deny(NotOwner),
            ),
            row(
                "erin",
                &erin,
                app("platform"),
                platform_team,
                &app_actions,
                Deny(Invisible),
            ),
            row(
                "erin",
                &erin,
                object("sample-app", true),
                app_team,
                &restart,
                Deny(NotOwner),
            ),
            row("erin", &erin, Target::New, none, &create, Deny(NotOwner)),
        ];
        for target in [
            app("applications"),
            app("platform"),
            object("sample-app", true),
            Target::New,
        ] {
            table.push(row(
                "anonymous",
                &anonymous,
                target,
                none,
                &every_action,
                Deny(NotGranted),
            ));
        }
        for r in table {
            let (grants, groups) = r.caller;
            for action in r.actions {
                let facts = Facts {
                    target: r.target,
                    owners: r.owners,
                    caller_groups: groups,
                };
                assert_eq!(
                    decide(grants, action, &facts),
                    r.expected,
                    "{} {action:?} on {:?} owned by {:?}",
                    r.who,
                    r.target,
                    r.owners
                );
            }
        }
    }
}
