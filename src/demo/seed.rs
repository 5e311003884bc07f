//! The demo world's fixed content (what `idp-graph demo` serves — README, "The two commands";
//! its personas and the boundary between the teams — README, "Security"): the seed platform's
//! teams, system, platform and application components, their API, resource, template and
//! location. Tests and examples rely on these names.

use serde_json::{json, Value};

pub const PLATFORM_APPS: [&str; 4] = ["argocd", "ingress-nginx", "namespaces", "backstage"];
pub const APPLICATION_APPS: [&str; 4] = ["sample-app", "my-app", "app-2", "app-3"];
pub const GITOPS_REPO: &str = "yourcompany/idp";

/// A repository of the organisation that no catalog component names (its secrets' sealed
/// manifests): private, so only platform-team may read it through the graph.
pub const UNCATALOGUED_REPO: &str = "yourcompany/infra-secrets";

/// Each demo repository's GitHub visibility: the GitOps repo, the uncatalogued one and app-3
/// are `private`, sample-app (the seed's hello world) is `public`, the rest `internal`.
pub fn visibility_of(slug: &str) -> &'static str {
    match slug {
        GITOPS_REPO | UNCATALOGUED_REPO | "yourcompany/app-3" => "private",
        "yourcompany/sample-app" => "public",
        _ => "internal",
    }
}

fn component(
    name: &str,
    owner: &str,
    ty: &str,
    description: &str,
    slug: &str,
    extra: Value,
) -> Value {
    let mut spec = json!({
        "type": ty, "lifecycle": "production", "owner": owner, "system": "idp",
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            spec.insert(k.clone(), v.clone());
        }
    }
    json!({
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": {
            "name": name,
            "title": name,
            "description": description,
            "tags": if owner == "platform-team" { json!(["platform"]) } else { json!(["app"]) },
            "annotations": {
                "argocd/app-name": name,
                "argocd/instance-name": "main",
                "backstage.io/kubernetes-id": name,
                "backstage.io/kubernetes-namespace": name,
                "github.com/project-slug": slug,
            },
            "links": [{"url": format!("https://github.com/{slug}"), "title": "Repository", "icon": "github"}],
        },
        "spec": spec,
    })
}

fn user(name: &str, display: &str, group: &str) -> Value {
    json!({
        "apiVersion": "backstage.io/v1alpha1", "kind": "User",
        "metadata": {"name": name},
        "spec": {"profile": {"displayName": display, "email": format!("{name}@yourcompany.example")}, "memberOf": [group]},
    })
}

fn group(
    name: &str,
    display: &str,
    parent: Option<&str>,
    children: &[&str],
    members: &[&str],
) -> Value {
    let mut spec = json!({
        "type": "team",
        "profile": {"displayName": display, "email": format!("{name}@yourcompany.example")},
        "children": children,
        "members": members,
    });
    if let Some(p) = parent {
        spec["parent"] = json!(p);
    }
    let mut metadata = json!({"name": name, "description": display});
    if let Some(channel) = slack_channel_of(name) {
        metadata["annotations"] = json!({ SLACK_CHANNEL_ANNOTATION: channel });
    }
    json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": metadata, "spec": spec})
}

/// The catalog annotation `idp-graph notify` routes a component's notifications by (on the
/// Component, else on its owning Group).
pub const SLACK_CHANNEL_ANNOTATION: &str = "idp-graph.io/slack-channel";

/// The Slack channel the demo's teams set on their Group: `#platform` and `#app-team`.
pub fn slack_channel_of(group: &str) -> Option<&'static str> {
    match group {
        "platform-team" => Some("#platform"),
        "app-team" => Some("#app-team"),
        _ => None,
    }
}

/// The demo's chatops bot (`idp-graph notify`): a token subject that is no catalog user, bound
/// by the demo's policy to a role that sees everything and may act for catalog users.
pub const NOTIFY_BOT: &str = "user:default/notify-bot";

/// The seed catalog plus `scale` generated services (`svc-00001`...).
pub fn catalog(scale: usize) -> Vec<Value> {
    let mut out = vec![
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Domain",
               "metadata": {"name": "platform", "description": "The internal developer platform"},
               "spec": {"owner": "platform-team"}}),
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "System",
               "metadata": {"name": "idp", "title": "Internal Developer Platform", "description": "Portal, GitOps engine and the apps it runs"},
               "spec": {"owner": "platform-team", "domain": "platform"}}),
        group(
            "engineering",
            "Engineering",
            None,
            &["platform-team", "app-team"],
            &[],
        ),
        group(
            "platform-team",
            "Platform Team",
            Some("engineering"),
            &[],
            &["alice", "bob"],
        ),
        group(
            "app-team",
            "Application Team",
            Some("engineering"),
            &[],
            &["carol", "dave"],
        ),
        user("alice", "Alice Adams", "platform-team"),
        user("bob", "Bob Brown", "platform-team"),
        user("carol", "Carol Chen", "app-team"),
        user("dave", "Dave Diaz", "app-team"),
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "User", "metadata": {"name": "erin"},
               "spec": {"profile": {"displayName": "Erin Evans", "email": "erin@yourcompany.example"}, "memberOf": []}}),
    ];
    let platform_desc = [
        ("argocd", "GitOps engine: syncs the cluster to git"),
        (
            "ingress-nginx",
            "NGINX ingress controller in front of everything",
        ),
        (
            "namespaces",
            "Namespaces and quotas for the platform and the apps",
        ),
        ("backstage", "The developer portal"),
    ];
    for (name, desc) in platform_desc {
        out.push(component(
            name,
            "platform-team",
            "service",
            desc,
            GITOPS_REPO,
            json!({}),
        ));
    }
    out.push(component(
        "sample-app",
        "app-team",
        "service",
        "Sample application: the seed's hello world",
        "yourcompany/sample-app",
        json!({"providesApis": ["sample-api"]}),
    ));
    out.push(component(
        "my-app",
        "app-team",
        "website",
        "Customer-facing web app",
        "yourcompany/my-app",
        json!({"consumesApis": ["sample-api"], "dependsOn": ["resource:default/app-db"]}),
    ));
    out.push(component(
        "app-2",
        "app-team",
        "service",
        "Second application, calls sample-app",
        "yourcompany/app-2",
        json!({"dependsOn": ["component:default/sample-app"]}),
    ));
    out.push(component(
        "app-3",
        "app-team",
        "service",
        "Third application, batch jobs",
        "yourcompany/app-3",
        json!({}),
    ));
    out.push(json!({
        "apiVersion": "backstage.io/v1alpha1", "kind": "API",
        "metadata": {"name": "sample-api", "description": "REST API of sample-app"},
        "spec": {"type": "openapi", "lifecycle": "production", "owner": "app-team", "system": "idp",
                 "definition": "openapi: 3.0.0\ninfo: {title: sample-api, version: 1.0.0}\npaths:\n  /hello:\n    get:\n      responses: {'200': {description: greeting}}\n"},
    }));
    out.push(json!({
        "apiVersion": "backstage.io/v1alpha1", "kind": "Resource",
        "metadata": {"name": "app-db", "description": "PostgreSQL database of my-app"},
        "spec": {"type": "database", "owner": "app-team", "system": "idp"},
    }));
    out.push(json!({
        "apiVersion": "scaffolder.backstage.io/v1beta3", "kind": "Template",
        "metadata": {"name": "service-template", "title": "New service", "description": "Creates a repo, registers it in the catalog and adds an ArgoCD application"},
        "spec": {
            "owner": "platform-team", "type": "service",
            "parameters": [{"title": "Service", "required": ["name"], "properties": {
                "name": {"type": "string", "title": "Name", "pattern": "^[a-z0-9-]+$"},
                "owner": {"type": "string", "title": "Owner", "default": "app-team"}}}],
            "steps": [
                {"id": "fetch", "name": "Fetch skeleton", "action": "fetch:template", "input": {"url": "./skeleton", "values": {"name": "${{ parameters.name }}"}}},
                {"id": "publish", "name": "Publish", "action": "publish:github", "input": {"repoUrl": "github.com?owner=yourcompany&repo=${{ parameters.name }}"}},
                {"id": "register", "name": "Register", "action": "catalog:register", "input": {"repoContentsUrl": "${{ steps.publish.output.repoContentsUrl }}", "catalogInfoPath": "/catalog-info.yaml"}}
            ],
        },
    }));
    out.push(json!({
        "apiVersion": "backstage.io/v1alpha1", "kind": "Location",
        "metadata": {"name": "idp-catalog", "description": "Catalog files of the platform repo"},
        "spec": {"type": "url", "targets": ["https://github.com/yourcompany/idp/blob/main/catalog/all.yaml"]},
    }));
    for i in 1..=scale {
        let name = format!("svc-{i:05}");
        let slug = format!("yourcompany/{name}");
        out.push(component(
            &name,
            "app-team",
            "service",
            "Generated service",
            &slug,
            json!({}),
        ));
    }
    out
}
