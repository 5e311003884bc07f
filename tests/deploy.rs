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
    docs(&render_text(&root().join(dir)))
}

/// `kubectl kustomize DIR`'s output.
fn render_text(dir: &Path) -> String {
    let out = Command::new("kubectl")
        .args(["kustomize", &dir.to_string_lossy()])
        .output()
        .expect("kubectl is installed (it renders the kustomizations)");
    assert!(
        out.status.success(),
        "kubectl kustomize {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Renders a kustomization written for the test (in a temporary directory) over `resources` and
/// `components` of this repo, with `extra` (more kustomization fields) appended. Kustomize takes
/// only relative paths to other kustomizations, hence the walk up to `/`.
fn render_with(resources: &[&str], components: &[&str], extra: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let up: PathBuf = dir
        .path()
        .components()
        .skip(1)
        .map(|_| Path::new(".."))
        .collect();
    let rel = |p: &str| {
        let abs = root().join(p);
        up.join(abs.strip_prefix("/").unwrap())
            .to_string_lossy()
            .into_owned()
    };
    let mut k = String::from(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n",
    );
    for r in resources {
        k += &format!("  - {}\n", rel(r));
    }
    k += "components:\n";
    for c in components {
        k += &format!("  - {}\n", rel(c));
    }
    k += extra;
    std::fs::write(dir.path().join("kustomization.yaml"), k).unwrap();
    render_text(dir.path())
}

/// The schema check of `scripts/check-manifests.sh`: every built-in object validates against its
/// Kubernetes schema (kubernetes-validate, offline, strict: unknown fields fail).
fn assert_schema_valid(what: &str, rendered: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rendered.yaml");
    std::fs::write(&file, rendered).unwrap();
    let out = Command::new("kubernetes-validate")
        .args(["--strict", "--quiet"])
        .arg(&file)
        .output()
        .expect("kubernetes-validate is installed (pip install kubernetes-validate; .ci/run does)");
    assert!(
        out.status.success(),
        "{what}: schema violations:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
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
        // With the Deployment's IDP_GRAPH__* overrides (prod's `ha` component sets `cluster:`).
        let settings = idp_graph::config::Settings::from_yaml_with_env(
            config,
            Path::new("configmap"),
            literal_env(d),
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

/// The server container's variables with literal values (the `IDP_GRAPH__*` overrides and such).
fn literal_env(deployment: &serde_yaml::Value) -> Vec<(String, String)> {
    env_of(deployment)
        .iter()
        .filter_map(|e| {
            Some((
                e["name"].as_str()?.to_string(),
                e["value"].as_str()?.to_string(),
            ))
        })
        .collect()
}

fn env_of(deployment: &serde_yaml::Value) -> Vec<serde_yaml::Value> {
    deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_sequence()
        .cloned()
        .unwrap_or_default()
}

fn find<'a>(objs: &'a [serde_yaml::Value], kind: &str, name: &str) -> &'a serde_yaml::Value {
    objs.iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// Whether `selector.matchLabels` selects a pod labelled `labels`.
fn selects(selector: &serde_yaml::Value, labels: &serde_yaml::Value) -> bool {
    labels_match(&selector["matchLabels"], labels)
}

/// Whether every label of `want` (a non-empty mapping) is on `labels`.
fn labels_match(want: &serde_yaml::Value, labels: &serde_yaml::Value) -> bool {
    let want = want.as_mapping().expect("a label mapping");
    !want.is_empty() && want.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// `check-config` with the variables a pod of `deployment` gets: literal values as they are, the
/// Secret's keys as placeholders of the right shape, the downward API's pod name. Returns its
/// success and output.
fn check_config(
    config: &str,
    deployment: &serde_yaml::Value,
    leave_out: &[&str],
) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yaml");
    std::fs::write(&file, config).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_idp-graph"));
    cmd.env_clear()
        .args(["check-config", "--config"])
        .arg(&file);
    for e in env_of(deployment) {
        let name = e["name"].as_str().unwrap();
        if leave_out.contains(&name) {
            continue;
        }
        let value = if let Some(v) = e["value"].as_str() {
            v.to_string()
        } else if e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name" {
            "idp-graph-7d9f8c6b5-x2x4q".to_string()
        } else {
            match e["valueFrom"]["secretKeyRef"]["key"].as_str().unwrap() {
                "redis-url" => "redis://:placeholder@idp-graph-redis:6379/0".to_string(),
                "cursor-key" => "placeholder-cursor-key-of-at-least-32-characters".to_string(),
                _ => "placeholder-from-the-secret".to_string(),
            }
        };
        cmd.env(name, value);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn every_kustomization_passes_the_schema_check() {
    for dir in [
        "deploy",
        "deploy/namespaces",
        "gitops/overlays/dev",
        "gitops/overlays/staging",
        "gitops/overlays/prod",
    ] {
        assert_schema_valid(dir, &render_text(&root().join(dir)));
    }
    assert_schema_valid(
        "deploy + components/ha",
        &render_with(&["deploy"], &["deploy/components/ha"], ""),
    );
}

/// The checks of the `ha` component on a rendering that includes it.
fn assert_ha(what: &str, objs: &[serde_yaml::Value]) {
    let d = find(objs, "Deployment", "idp-graph");
    let pod = &d["spec"]["template"];
    let labels = &pod["metadata"]["labels"];
    assert_eq!(d["spec"]["replicas"], 3, "{what}: three replicas");

    // Spread: hard over nodes, soft over zones, both counting exactly the server's pods.
    let spread = pod["spec"]["topologySpreadConstraints"]
        .as_sequence()
        .unwrap();
    let by_key = |key: &str| {
        spread
            .iter()
            .find(|c| c["topologyKey"] == key)
            .unwrap_or_else(|| panic!("{what}: spread over {key}"))
    };
    let node = by_key("kubernetes.io/hostname");
    assert_eq!(node["whenUnsatisfiable"], "DoNotSchedule", "{what}");
    assert_eq!(node["maxSkew"], 1, "{what}");
    let zone = by_key("topology.kubernetes.io/zone");
    assert_eq!(zone["whenUnsatisfiable"], "ScheduleAnyway", "{what}");
    for c in spread {
        assert!(selects(&c["labelSelector"], labels), "{what}: {c:?}");
    }
    assert_eq!(spread.len(), 2, "{what}: the base's constraint is replaced");

    // The replica's id from the downward API; the Redis URL and the cursor key from the Secret.
    let env = env_of(d);
    let var = |name: &str| {
        env.iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("{what}: {name} is set"))
    };
    assert_eq!(
        var("POD_NAME")["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name",
        "{what}"
    );
    for (name, key) in [("REDIS_URL", "redis-url"), ("CURSOR_KEY", "cursor-key")] {
        let e = var(name);
        assert!(e.get("value").is_none(), "{what}: {name} is not a literal");
        assert_eq!(
            e["valueFrom"]["secretKeyRef"]["name"], "idp-graph-cluster",
            "{what}"
        );
        assert_eq!(e["valueFrom"]["secretKeyRef"]["key"], key, "{what}");
    }
    assert!(
        objs.iter().all(|o| o["kind"] != "Secret"),
        "{what}: no Secret in git (created out of band)"
    );

    // The config the pod runs with: the shipped file plus the Deployment's overrides.
    let cm = objs
        .iter()
        .find(|o| o["kind"] == "ConfigMap" && o["data"]["config.yaml"].is_string())
        .unwrap();
    let config = cm["data"]["config.yaml"].as_str().unwrap();
    let settings = idp_graph::config::Settings::from_yaml_with_env(
        config,
        Path::new("configmap"),
        literal_env(d),
    )
    .unwrap_or_else(|e| panic!("{what}: {e}"));
    let cluster = settings.cluster.as_ref().expect("cluster: is configured");
    assert_eq!(
        cluster.redis_url_env.as_deref(),
        Some("REDIS_URL"),
        "{what}"
    );
    assert_eq!(cluster.lease_secs, 10.0, "{what}");
    assert_eq!(
        settings.events.cursor_key_env.as_deref(),
        Some("CURSOR_KEY"),
        "{what}"
    );
    let (ok, out) = check_config(config, d, &[]);
    assert!(ok, "{what}: check-config rejects the shipped config: {out}");
    assert!(out.trim_end().ends_with(": ok"), "{what}: {out}");
    // It does read the cluster settings: without the Redis URL it refuses.
    let (ok, out) = check_config(config, d, &["REDIS_URL"]);
    assert!(!ok && out.contains("REDIS_URL"), "{what}: {out}");

    // At least two replicas through voluntary disruptions; the HPA never goes below three.
    let hpa = find(objs, "HorizontalPodAutoscaler", "idp-graph");
    let min = hpa["spec"]["minReplicas"].as_u64().unwrap();
    assert!(min >= 3, "{what}: HPA floor {min}");
    assert!(hpa["spec"]["maxReplicas"].as_u64().unwrap() >= min);
    let pdbs: Vec<_> = objs
        .iter()
        .filter(|o| o["kind"] == "PodDisruptionBudget" && selects(&o["spec"]["selector"], labels))
        .collect();
    assert_eq!(pdbs.len(), 1, "{what}: one PDB for the server");
    let spec = &pdbs[0]["spec"];
    let available = match (
        spec["minAvailable"].as_u64(),
        spec["maxUnavailable"].as_u64(),
    ) {
        (Some(n), None) => n,
        (None, Some(n)) => min - n,
        other => panic!("{what}: PDB {other:?}"),
    };
    assert!(available >= 2, "{what}: the PDB keeps {available} up");

    // Redis: one instance, pinned, append-only on a volume, non-root, probed.
    let sts = find(objs, "StatefulSet", "idp-graph-redis");
    assert_eq!(sts["metadata"]["namespace"], "idp-graph", "{what}");
    assert_eq!(sts["spec"]["replicas"], 1, "{what}");
    let redis_labels = &sts["spec"]["template"]["metadata"]["labels"];
    assert!(selects(&sts["spec"]["selector"], redis_labels));
    assert!(
        !selects(&d["spec"]["selector"], redis_labels)
            && !selects(&sts["spec"]["selector"], labels),
        "{what}: the server's and Redis' selectors are disjoint"
    );
    let rpod = &sts["spec"]["template"]["spec"];
    let c = &rpod["containers"][0];
    let image = c["image"].as_str().unwrap();
    assert!(
        image.starts_with("redis:7.") && image.ends_with("-alpine"),
        "{what}: pinned redis 7 alpine, not {image}"
    );
    let args: Vec<&str> = c["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        args.windows(2).any(|w| w == ["--appendonly", "yes"]),
        "{what}: {args:?}"
    );
    let data = c["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == "/data")
        .expect("/data is mounted");
    assert!(
        sts["spec"]["volumeClaimTemplates"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|t| t["metadata"]["name"] == data["name"]),
        "{what}: /data is a PVC"
    );
    assert_eq!(rpod["securityContext"]["runAsNonRoot"], true, "{what}");
    assert_ne!(rpod["securityContext"]["runAsUser"], 0, "{what}");
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert!(c["resources"]["limits"].is_mapping() && c["resources"]["requests"].is_mapping());
    for probe in ["readinessProbe", "livenessProbe"] {
        let cmd = format!("{:?}", c[probe]["exec"]["command"]);
        assert!(cmd.contains("redis-cli ping"), "{what}: {probe} {cmd}");
    }
    let password = c["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "REDIS_PASSWORD")
        .expect("Redis has a password");
    assert_eq!(
        password["valueFrom"]["secretKeyRef"]["name"],
        "idp-graph-cluster"
    );

    // Its Service (what the Secret's redis-url names) and who may reach it.
    let svc = find(objs, "Service", "idp-graph-redis");
    assert_eq!(sts["spec"]["serviceName"], "idp-graph-redis");
    assert!(labels_match(&svc["spec"]["selector"], redis_labels));
    assert_eq!(svc["spec"]["ports"][0]["port"], 6379, "{what}");
    let np = find(objs, "NetworkPolicy", "idp-graph-redis");
    assert!(selects(&np["spec"]["podSelector"], redis_labels), "{what}");
    let ingress = np["spec"]["ingress"].as_sequence().unwrap();
    assert_eq!(ingress.len(), 1, "{what}");
    let from = ingress[0]["from"].as_sequence().unwrap();
    assert!(
        from.iter().all(|f| f.get("namespaceSelector").is_none()
            && f.get("ipBlock").is_none()
            && selects(&f["podSelector"], labels)),
        "{what}: only idp-graph's server pods reach Redis: {from:?}"
    );
    assert_eq!(ingress[0]["ports"][0]["port"], 6379);
    // ... and the server's own policy lets them out to it.
    let server_np = find(objs, "NetworkPolicy", "idp-graph");
    assert!(
        server_np["spec"]["egress"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|r| r["ports"][0]["port"] == 6379
                && r["to"]
                    .as_sequence()
                    .is_some_and(|to| to.iter().any(|t| selects(&t["podSelector"], redis_labels)))),
        "{what}: the server may reach Redis"
    );
}

#[test]
fn the_ha_component_runs_three_replicas_on_one_redis() {
    let prod = render_text(&root().join("gitops/overlays/prod"));
    assert_ha("gitops/overlays/prod", &docs(&prod));
    let base = render_with(&["deploy"], &["deploy/components/ha"], "");
    assert_ha("deploy + components/ha", &docs(&base));
    // The component alone on the base: same objects as the base, plus Redis' three.
    let plain: BTreeSet<(String, String)> = render("deploy")
        .iter()
        .map(|o| {
            (
                o["kind"].as_str().unwrap().into(),
                o["metadata"]["name"].as_str().unwrap().into(),
            )
        })
        .collect();
    let with: BTreeSet<(String, String)> = docs(&base)
        .iter()
        .map(|o| {
            (
                o["kind"].as_str().unwrap().into(),
                o["metadata"]["name"].as_str().unwrap().into(),
            )
        })
        .collect();
    let added: Vec<_> = with.difference(&plain).collect();
    assert_eq!(
        added,
        [
            &("NetworkPolicy".to_string(), "idp-graph-redis".to_string()),
            &("Service".to_string(), "idp-graph-redis".to_string()),
            &("StatefulSet".to_string(), "idp-graph-redis".to_string()),
        ]
    );
    assert!(plain.is_subset(&with));
}

/// The external-Redis recipe in `deploy/components/ha/kustomization.yaml` (the commented
/// `patches:` block) renders: no bundled Redis, the server may reach the external address.
#[test]
fn the_ha_component_works_with_an_external_redis() {
    let text = read("deploy/components/ha/kustomization.yaml");
    let recipe: String = text
        .lines()
        .skip_while(|l| *l != "#   patches:")
        .take_while(|l| *l != "#")
        .map(|l| {
            let l = l
                .strip_prefix("#   ")
                .unwrap_or_else(|| panic!("the recipe's lines start with `#   `: {l}"));
            format!("{l}\n")
        })
        .collect();
    assert!(recipe.starts_with("patches:"), "the recipe is there");
    let rendered = render_with(&["deploy"], &["deploy/components/ha"], &recipe);
    assert_schema_valid("ha with an external Redis", &rendered);
    let objs = docs(&rendered);
    assert!(
        objs.iter()
            .all(|o| o["metadata"]["name"] != "idp-graph-redis"),
        "the bundled Redis is gone"
    );
    let d = find(&objs, "Deployment", "idp-graph");
    assert!(env_of(d).iter().any(|e| e["name"] == "REDIS_URL"));
    let egress = find(&objs, "NetworkPolicy", "idp-graph")["spec"]["egress"]
        .as_sequence()
        .unwrap()
        .clone();
    assert!(egress
        .iter()
        .any(|r| r["ports"][0]["port"] == 6379 && r["to"][0]["ipBlock"]["cidr"].is_string()));
    assert!(
        egress.iter().all(|r| r["to"]
            .as_sequence()
            .is_none_or(|to| to.iter().all(|t| t["podSelector"].is_null()))),
        "no rule for the bundled Redis is left"
    );
}
