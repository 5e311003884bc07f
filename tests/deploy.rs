//! The deployment as code: the gitops tree has the seed's structure, ArgoCD's objects parse into
//! typed structs and point at real things, RBAC grants exactly what the sources need, and the
//! `applications` project cannot reach the platform.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use idp_graph::domain::kubernetes::{IMPERSONATE_ACCESS, READ_ACCESS, RESTART_ACCESS};
use serde::Deserialize;

const THIS_REPO: &str = "https://github.com/yourcompany/idp.git";
const PLATFORM_NAMESPACES: [&str; 6] = [
    "argocd",
    "ingress-nginx",
    "backstage",
    "idp-graph",
    "kube-system",
    "default",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn docs(text: &str) -> Vec<serde_yaml::Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| serde_yaml::Value::deserialize(d).expect("valid YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

fn render(dir: &str) -> Vec<serde_yaml::Value> {
    let out = Command::new("kubectl")
        .args(["kustomize", &root().join(dir).to_string_lossy()])
        .output()
        .expect("kubectl is installed (it renders the kustomizations)");
    assert!(
        out.status.success(),
        "kubectl kustomize {dir}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    docs(&String::from_utf8(out.stdout).unwrap())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    name: String,
    namespace: Option<String>,
    #[serde(default)]
    finalizers: Vec<String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Source {
    #[serde(rename = "repoURL")]
    repo_url: String,
    target_revision: String,
    path: Option<String>,
    chart: Option<String>,
    /// Accepted (typed as YAML) so `deny_unknown_fields` still catches typos elsewhere.
    #[serde(rename = "helm")]
    _helm: Option<serde_yaml::Value>,
    #[serde(rename = "directory")]
    _directory: Option<serde_yaml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Destination {
    server: String,
    namespace: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AppSpec {
    project: String,
    source: Source,
    destination: Destination,
    sync_policy: Option<serde_yaml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Application {
    api_version: String,
    kind: String,
    metadata: Meta,
    spec: AppSpec,
}

#[derive(Debug, Deserialize)]
struct GroupKind {
    group: String,
    kind: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ProjectSpec {
    description: String,
    source_repos: Vec<String>,
    destinations: Vec<Destination>,
    #[serde(default)]
    cluster_resource_whitelist: Vec<GroupKind>,
    #[serde(default)]
    namespace_resource_blacklist: Vec<GroupKind>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AppProject {
    api_version: String,
    kind: String,
    metadata: Meta,
    spec: ProjectSpec,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn applications() -> Vec<(String, Application)> {
    let mut out = Vec::new();
    for file in [
        "gitops/app-of-apps/bootstrap.yaml",
        "gitops/app-of-apps/platform-apps.yaml",
        "gitops/applications/sample-app.yaml",
        "gitops/applications/my-app.yaml",
    ] {
        for d in docs(&read(file)) {
            let app: Application = serde_yaml::from_value(d)
                .unwrap_or_else(|e| panic!("{file}: not an Application: {e}"));
            out.push((file.to_string(), app));
        }
    }
    out
}

fn projects() -> BTreeMap<String, AppProject> {
    docs(&read("gitops/app-of-apps/appprojects.yaml"))
        .into_iter()
        .map(|d| serde_yaml::from_value::<AppProject>(d).expect("an AppProject"))
        .map(|p| (p.metadata.name.clone(), p))
        .collect()
}

fn glob(pattern: &str, value: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => value.starts_with(prefix),
        None => pattern == value,
    }
}

#[test]
fn the_gitops_tree_has_exactly_the_seed_structure() {
    let mut files = BTreeSet::new();
    fn walk(dir: &Path, base: &Path, out: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, base, out);
            } else {
                out.insert(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    walk(&root().join("gitops"), &root().join("gitops"), &mut files);
    let want: BTreeSet<String> = [
        "app-of-apps/bootstrap.yaml",
        "app-of-apps/appprojects.yaml",
        "app-of-apps/platform-apps.yaml",
        "applications/sample-app.yaml",
        "applications/my-app.yaml",
        "overlays/dev/kustomization.yaml",
        "overlays/staging/kustomization.yaml",
        "overlays/prod/kustomization.yaml",
        "overlays/prod/config.yaml",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(files, want);
    let readme = read("README.md");
    assert!(
        readme.contains("kubectl apply -n argocd -f gitops/app-of-apps/bootstrap.yaml"),
        "the bootstrap path is documented"
    );
    assert!(readme.contains("http://idp-graph.localhost"));
}

#[test]
fn argocd_objects_are_complete_and_point_at_real_things() {
    let projects = projects();
    assert_eq!(
        projects.keys().collect::<Vec<_>>(),
        ["applications", "platform"]
    );
    for p in projects.values() {
        assert_eq!(
            (p.api_version.as_str(), p.kind.as_str()),
            ("argoproj.io/v1alpha1", "AppProject")
        );
        assert_eq!(p.metadata.namespace.as_deref(), Some("argocd"));
        assert!(!p.spec.description.is_empty() && !p.spec.source_repos.is_empty());
        assert_eq!(
            p.metadata
                .annotations
                .get("argocd.argoproj.io/sync-wave")
                .map(String::as_str),
            Some("-1"),
            "projects come first"
        );
    }
    let apps = applications();
    let names: BTreeSet<&str> = apps.iter().map(|(_, a)| a.metadata.name.as_str()).collect();
    for want in [
        "root",
        "argocd",
        "ingress-nginx",
        "namespaces",
        "backstage",
        "idp-graph",
        "applications",
        "sample-app",
        "my-app",
    ] {
        assert!(names.contains(want), "{want} is defined");
    }
    for (file, a) in &apps {
        let ctx = format!("{file}: {}", a.metadata.name);
        assert_eq!(
            (a.api_version.as_str(), a.kind.as_str()),
            ("argoproj.io/v1alpha1", "Application"),
            "{ctx}"
        );
        assert_eq!(a.metadata.namespace.as_deref(), Some("argocd"), "{ctx}");
        assert!(
            a.metadata
                .finalizers
                .iter()
                .any(|f| f == "resources-finalizer.argocd.argoproj.io"),
            "{ctx}: finalizer"
        );
        assert_eq!(
            a.spec.destination.server, "https://kubernetes.default.svc",
            "{ctx}"
        );
        assert!(!a.spec.source.target_revision.is_empty(), "{ctx}");
        assert!(a.spec.sync_policy.is_some(), "{ctx}: sync policy");
        // The project exists and allows the source and the destination.
        if a.spec.project != "default" {
            let p = projects
                .get(&a.spec.project)
                .unwrap_or_else(|| panic!("{ctx}: unknown project {}", a.spec.project));
            assert!(
                p.spec
                    .source_repos
                    .iter()
                    .any(|r| glob(r, &a.spec.source.repo_url)),
                "{ctx}: repo not allowed by {}",
                a.spec.project
            );
            assert!(
                p.spec
                    .destinations
                    .iter()
                    .any(|d| glob(&d.namespace, &a.spec.destination.namespace)),
                "{ctx}: destination not allowed"
            );
        } else {
            assert_eq!(
                a.metadata.name, "root",
                "only the bootstrap app lives in `default`"
            );
        }
        // Sources in this repo point at paths that exist and render.
        if a.spec.source.repo_url == THIS_REPO {
            let path = a
                .spec
                .source
                .path
                .as_deref()
                .unwrap_or_else(|| panic!("{ctx}: path"));
            assert!(
                root().join(path).is_dir(),
                "{ctx}: {path} exists in this repo"
            );
        } else if a.spec.source.chart.is_none() {
            assert!(
                a.spec.source.path.is_some(),
                "{ctx}: a git source has a path"
            );
        }
    }
    let wave = |n: &str| -> i32 {
        apps.iter()
            .find(|(_, a)| a.metadata.name == n)
            .and_then(|(_, a)| a.metadata.annotations.get("argocd.argoproj.io/sync-wave"))
            .map(|w| w.parse().unwrap())
            .unwrap_or(0)
    };
    assert!(
        wave("namespaces") < wave("argocd")
            && wave("argocd") <= wave("idp-graph")
            && wave("idp-graph") < wave("applications")
    );
    let team_apps: Vec<_> = apps
        .iter()
        .filter(|(f, _)| f.starts_with("gitops/applications/"))
        .collect();
    assert!(team_apps
        .iter()
        .all(|(_, a)| a.spec.project == "applications"));
}

#[test]
fn the_applications_project_cannot_reach_platform_namespaces_or_cluster_scoped_kinds() {
    let projects = projects();
    let apps = &projects["applications"].spec;
    assert!(
        apps.cluster_resource_whitelist.is_empty(),
        "no cluster-scoped kinds"
    );
    for d in &apps.destinations {
        assert!(
            !d.namespace.contains('*'),
            "no wildcard destinations: {}",
            d.namespace
        );
        assert_ne!(d.server, "*");
        for ns in PLATFORM_NAMESPACES {
            assert!(
                !glob(&d.namespace, ns),
                "`applications` may deploy to platform namespace {ns}"
            );
        }
    }
    assert!(
        apps.source_repos.iter().all(|r| r != "*"),
        "sources are limited"
    );
    assert!(
        apps.namespace_resource_blacklist
            .iter()
            .any(|g| g.kind == "ResourceQuota"),
        "teams cannot lift their quotas"
    );
    let platform = &projects["platform"].spec;
    assert!(platform
        .cluster_resource_whitelist
        .iter()
        .any(|g| g.group == "*" && g.kind == "*"));
}

/// `(group, resource) → verbs` granted by the ClusterRoles of a rendered kustomization.
fn granted(objects: &[serde_yaml::Value]) -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut out: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for o in objects
        .iter()
        .filter(|o| o["kind"] == "ClusterRole" || o["kind"] == "Role")
    {
        for rule in o["rules"].as_sequence().unwrap() {
            let list = |k: &str| -> Vec<String> {
                rule[k]
                    .as_sequence()
                    .map(|s| s.iter().map(|v| v.as_str().unwrap().to_string()).collect())
                    .unwrap_or_default()
            };
            assert!(rule.get("nonResourceURLs").is_none() && rule.get("resourceNames").is_none());
            for g in list("apiGroups") {
                for r in list("resources") {
                    assert!(g != "*" && r != "*", "no wildcards in RBAC");
                    out.entry((g.clone(), r)).or_default().extend(list("verbs"));
                }
            }
        }
    }
    out
}

fn expected(table: &[&[(&str, &str, &[&str])]]) -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut out: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for t in table {
        for (g, r, verbs) in *t {
            out.entry((g.to_string(), r.to_string()))
                .or_default()
                .extend(verbs.iter().map(|v| v.to_string()));
        }
    }
    out
}

#[test]
fn the_cluster_role_grants_exactly_what_the_sources_need() {
    assert_eq!(
        granted(&render("deploy")),
        expected(&[READ_ACCESS]),
        "base: read-only, exactly the watched kinds"
    );
    assert_eq!(
        granted(&render("gitops/overlays/dev")),
        expected(&[READ_ACCESS])
    );
    assert_eq!(
        granted(&render("gitops/overlays/prod")),
        expected(&[READ_ACCESS, RESTART_ACCESS]),
        "prod: plus patch on deployments for restart"
    );
    // The opt-in impersonation component grants exactly the impersonate verb it needs.
    let text =
        std::fs::read_to_string(root().join("deploy/components/impersonate/clusterrole.yaml"))
            .expect("the impersonate component exists");
    let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde_yaml::Value::deserialize(d).expect("YAML"))
        .collect();
    assert_eq!(granted(&docs), expected(&[IMPERSONATE_ACCESS]));
    let secrets = &granted(&render("deploy"))[&("".to_string(), "secrets".to_string())];
    assert!(
        !secrets.contains("get"),
        "secret values are never fetched one by one"
    );
}

#[test]
fn the_deployment_is_hardened_and_outlives_its_shutdown_grace() {
    for overlay in ["deploy", "gitops/overlays/prod"] {
        let objs = render(overlay);
        let d = objs.iter().find(|o| o["kind"] == "Deployment").unwrap();
        let pod = &d["spec"]["template"]["spec"];
        let c = &pod["containers"][0];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
        assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL");
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
        assert!(c["startupProbe"].is_mapping());
        assert!(c["resources"]["limits"].is_mapping() && c["resources"]["requests"].is_mapping());
        let cm = objs.iter().find(|o| o["kind"] == "ConfigMap").unwrap();
        let config = cm["data"]["config.yaml"].as_str().unwrap();
        let settings = idp_graph::config::Settings::from_yaml_with_env(
            config,
            Path::new("configmap"),
            Vec::new(),
        )
        .unwrap_or_else(|e| panic!("{overlay}: the shipped config is valid: {e}"));
        let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
        assert!(
            grace > settings.shutdown_grace_secs,
            "{overlay}: kubelet waits longer than the app's grace"
        );
        // Tokens come from a Secret reference, never a literal.
        for env in c["env"].as_sequence().unwrap() {
            let name = env["name"].as_str().unwrap();
            if name.ends_with("TOKEN") {
                assert!(
                    env.get("value").is_none() && env["valueFrom"]["secretKeyRef"].is_mapping(),
                    "{name}"
                );
            }
        }
        let replicas = d["spec"]["replicas"].as_u64().unwrap();
        assert_eq!(replicas, if overlay.ends_with("prod") { 3 } else { 1 });
        let ing = objs.iter().find(|o| o["kind"] == "Ingress").unwrap();
        assert_eq!(ing["spec"]["ingressClassName"], "nginx");
        assert_eq!(
            ing["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"],
            "3600",
            "subscriptions stay open"
        );
        if overlay.ends_with("prod") {
            assert_eq!(
                ing["spec"]["tls"][0]["hosts"][0],
                "idp-graph.yourcompany.example"
            );
        } else {
            assert_eq!(ing["spec"]["rules"][0]["host"], "idp-graph.localhost");
        }
    }
}
