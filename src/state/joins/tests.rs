//! The joins on a generated world (no server): every forward join agrees with its reverse, and
//! the indexed answers equal a brute-force reading of the rules over everything.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::Utc;
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use super::commit_of_revision;
use crate::domain::annotations::JoinKeys;
use crate::domain::argocd::{
    AppKey, AppSource, Application, Destination, HealthStatus, ResourceStatus, SyncStatus,
};
use crate::domain::entity::EntityKind;
use crate::domain::entity_ref::EntityRef;
use crate::domain::joins::entity_has_app;
use crate::domain::kubernetes::{DeploymentInfo, PodInfo, ReplicaSetInfo};
use crate::domain::Entity;
use crate::state::kubernetes::{ClusterStore, Kind, ObjRef};
use crate::state::{CatalogSnapshot, SourceKind, State};

const SERVICES: usize = 1_000;
const TEAMS: usize = 7;

fn entity(name: &str, annotations: BTreeMap<String, String>) -> Entity {
    let entity_ref = EntityRef::new("component", "default", name);
    Entity {
        ref_string: entity_ref.to_string(),
        entity_ref,
        kind: EntityKind::Component,
        kind_name: "Component".into(),
        api_version: "backstage.io/v1alpha1".into(),
        namespace: "default".into(),
        name: name.into(),
        title: None,
        description: None,
        uid: None,
        etag: None,
        tags: Vec::new(),
        labels: BTreeMap::new(),
        join: JoinKeys::from_annotations(&annotations),
        annotations,
        links: Vec::new(),
        spec: json!({"type": "service", "owner": "team"}),
        relations: Vec::new(),
        search_text: name.into(),
    }
}

fn app(name: &str, instance: &str, team: usize, namespace: &str) -> Application {
    let key = AppKey {
        instance: instance.into(),
        namespace: "argocd".into(),
        name: name.into(),
    };
    Application {
        project: "applications".into(),
        labels: BTreeMap::from([("team".to_string(), format!("t{team}"))]),
        sources: vec![AppSource {
            repo_url: format!("https://github.com/yourcompany/{name}.git"),
            ..Default::default()
        }],
        destination: Destination {
            server: None,
            name: Some("demo".into()),
            namespace: Some(namespace.into()),
        },
        auto_sync: true,
        sync_status: SyncStatus::Synced,
        health: HealthStatus::Healthy,
        // Half the apps list their Service only in the resource list (unlabelled).
        resources: vec![ResourceStatus {
            group: String::new(),
            version: "v1".into(),
            kind: "Service".into(),
            namespace: None,
            name: format!("{name}-svc"),
            status: None,
            health: None,
            health_message: None,
        }]
        .into(),
        ..Application::named(key)
    }
}

fn deployment(name: &str, ns: &str, labels: &serde_json::Value) -> DeploymentInfo {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns, "labels": labels, "uid": format!("d-{ns}-{name}")},
        "spec": {"selector": {"matchLabels": {"app": name}}, "template": {"metadata": {"labels": {"app": name}}}}
    }))
    .expect("BUG: a valid Deployment")
}

fn replica_set(name: &str, ns: &str, owner: &str) -> ReplicaSetInfo {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns, "labels": {"app": owner},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": owner, "uid": format!("d-{ns}-{owner}"), "controller": true}]},
        "spec": {"selector": {"matchLabels": {"app": owner}}}
    }))
    .expect("BUG: a valid ReplicaSet")
}

fn pod(name: &str, ns: &str, rs: &str, labels: &serde_json::Value) -> PodInfo {
    let p: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns, "labels": labels,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs, "uid": format!("rs-{ns}-{rs}"), "controller": true}]},
        "spec": {"containers": [{"name": "app", "image": "nginx"}]}
    }))
    .expect("BUG: a valid Pod");
    p.into()
}

fn service(
    name: &str,
    ns: &str,
    labels: &serde_json::Value,
) -> k8s_openapi::api::core::v1::Service {
    serde_json::from_value(json!({"metadata": {"name": name, "namespace": ns, "labels": labels}}))
        .expect("BUG: a valid Service")
}

/// `SERVICES` services, each a component + an ArgoCD app + a Deployment with one ReplicaSet
/// and two pods + a Service. Components join apps by name, every tenth by team selector; they
/// join workloads by `kubernetes-id`, every ninth by a label selector, every fifth narrowed to
/// its namespace. Workloads are tracked by the instance label (Deployments) or only through
/// the app's resource list (Services). A second cluster holds look-alikes no app deploys to.
pub(crate) fn world() -> Arc<State> {
    let state = State::new();
    let mut entities = Vec::new();
    let mut apps = Vec::new();
    let health = state
        .sources
        .register("demo", SourceKind::Kubernetes, "http://demo");
    let demo = Arc::new(ClusterStore::new(
        "demo",
        "http://demo",
        vec!["demo".into()],
        health,
    ));
    let health = state
        .sources
        .register("other", SourceKind::Kubernetes, "http://other");
    let other = Arc::new(ClusterStore::new(
        "other",
        "http://other",
        vec!["other".into()],
        health,
    ));
    for i in 0..SERVICES {
        let name = format!("svc-{i}");
        let ns = format!("ns-{}", i % 50);
        let team = i % TEAMS;
        let mut ann = BTreeMap::new();
        if i % 10 == 0 {
            ann.insert("argocd/app-selector".to_string(), format!("team=t{team}"));
            ann.insert("argocd/instance-name".to_string(), "main".to_string());
        } else {
            ann.insert("argocd/app-name".to_string(), name.clone());
        }
        if i % 9 == 0 {
            ann.insert(
                "backstage.io/kubernetes-label-selector".to_string(),
                format!("app={name}"),
            );
        } else {
            ann.insert("backstage.io/kubernetes-id".to_string(), name.clone());
        }
        if i % 5 == 0 {
            ann.insert("backstage.io/kubernetes-namespace".to_string(), ns.clone());
        }
        ann.insert(
            "github.com/project-slug".to_string(),
            format!(
                "yourcompany/{}",
                if i % 3 == 0 {
                    "monorepo".to_string()
                } else {
                    name.clone()
                }
            ),
        );
        entities.push(entity(&name, ann));
        let instance = if i % 4 == 0 { "edge" } else { "main" };
        apps.push(app(&name, instance, team, &ns));

        let labels = json!({"app": name, "backstage.io/kubernetes-id": name, "app.kubernetes.io/instance": name});
        let pod_labels = json!({"app": name, "backstage.io/kubernetes-id": name});
        for c in [&demo, &other] {
            c.apply(deployment(&name, &ns, &labels));
            let rs = format!("{name}-5d8f");
            c.apply(replica_set(&rs, &ns, &name));
            for p in 0..2 {
                c.apply(pod(&format!("{rs}-p{p}"), &ns, &rs, &pod_labels));
            }
            c.apply(service(&format!("{name}-svc"), &ns, &json!({"app": name})));
        }
    }
    state
        .catalog
        .replace(CatalogSnapshot::build(entities, Utc::now()));
    for a in apps {
        state.apps.upsert(a);
    }
    state.clusters.add(demo);
    state.clusters.add(other);
    state
}

fn refs_of(entities: &[Arc<Entity>]) -> BTreeSet<String> {
    entities.iter().map(|e| e.ref_string.clone()).collect()
}

fn keys_of(apps: &[Arc<Application>]) -> BTreeSet<String> {
    apps.iter().map(|a| a.key_string.clone()).collect()
}

fn meta_of(
    c: &ClusterStore,
    (kind, ns, name): &ObjRef,
) -> Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta> {
    match kind {
        Kind::Deployment => c.deployments.get(ns, name).map(|o| o.metadata.clone()),
        Kind::ReplicaSet => c.replica_sets.get(ns, name).map(|o| o.metadata.clone()),
        Kind::Pod => c.pods.get(ns, name).map(|o| o.metadata.clone()),
        Kind::Service => c.services.get(ns, name).map(|o| o.metadata.clone()),
        _ => None,
    }
}

#[test]
fn entity_and_application_joins_agree_both_ways_and_with_brute_force() {
    let state = world();
    let snapshot = state.catalog.snapshot();
    let all_apps = state.apps.select(|_| true);
    assert_eq!(snapshot.len(), SERVICES);
    assert_eq!(all_apps.len(), SERVICES);
    let mut pairs = 0;
    for i in 0..snapshot.len() {
        let e = snapshot.at(i).expect("BUG: in range");
        let forward = state.apps_of_entity(e);
        let brute: BTreeSet<String> = all_apps
            .iter()
            .filter(|a| entity_has_app(&e.join, a))
            .map(|a| a.key_string.clone())
            .collect();
        assert_eq!(keys_of(&forward), brute, "apps of {}", e.ref_string);
        for a in &forward {
            assert!(
                refs_of(&state.entities_of_app(a)).contains(&e.ref_string),
                "{} claims {} but not the reverse",
                e.ref_string,
                a.key_string
            );
            pairs += 1;
        }
    }
    for a in &all_apps {
        for e in state.entities_of_app(a) {
            assert!(
                keys_of(&state.apps_of_entity(&e)).contains(&a.key_string),
                "{} is claimed by {} only in reverse",
                a.key_string,
                e.ref_string
            );
        }
    }
    // Selector entities claim every app of their team in `main`: many more pairs than apps.
    assert!(pairs > SERVICES, "{pairs} pairs");
}

#[test]
fn workload_joins_agree_both_ways_for_entities_and_applications() {
    let state = world();
    let snapshot = state.catalog.snapshot();
    let (mut entity_objects, mut app_objects) = (0, 0);
    for i in 0..snapshot.len() {
        let e = snapshot.at(i).expect("BUG: in range");
        let objects = state.objects_of_entity(e);
        // Both clusters carry the labels; no app decides which cluster an entity reads.
        assert_eq!(objects.len(), 2, "{}", e.ref_string);
        for (cluster, refs) in &objects {
            let c = state.clusters.get(cluster).expect("BUG: known cluster");
            // A Deployment, its ReplicaSet and two pods (+ the Service under a selector).
            assert!(refs.len() >= 4, "{} in {cluster}: {refs:?}", e.ref_string);
            for r in refs {
                let meta = meta_of(&c, r).expect("every joined object exists");
                let back = state.entities_of_object(&c, &meta);
                assert!(
                    refs_of(&back).contains(&e.ref_string),
                    "{} → {r:?} in {cluster}, but back: {:?}",
                    e.ref_string,
                    refs_of(&back)
                );
                entity_objects += 1;
            }
        }
    }
    for a in state.apps.select(|_| true) {
        let objects = state.objects_of_app(&a);
        assert_eq!(
            objects.keys().collect::<Vec<_>>(),
            vec!["demo"],
            "{}",
            a.key_string
        );
        let c = state.clusters.get("demo").expect("BUG: known cluster");
        let refs = &objects["demo"];
        // Deployment (label), ReplicaSet + two pods (owners), Service (resource list).
        assert_eq!(refs.len(), 5, "{}: {refs:?}", a.key_string);
        for r in refs {
            let meta = meta_of(&c, r).expect("every joined object exists");
            if r.0 == Kind::Service {
                // Tracked only by the app's resource list: no label to read back.
                continue;
            }
            let back = state.apps_of_object(&c, &meta);
            assert!(
                keys_of(&back).contains(&a.key_string),
                "{} → {r:?}, but back: {:?}",
                a.key_string,
                keys_of(&back)
            );
            app_objects += 1;
        }
        // The look-alike cluster is no destination: its objects belong to no app.
        let other = state.clusters.get("other").expect("BUG: known cluster");
        let d = other
            .deployments
            .get(
                a.destination.namespace.as_deref().unwrap_or(""),
                &a.key.name,
            )
            .expect("BUG: generated");
        assert!(state.apps_of_object(&other, &d.metadata).is_empty());
    }
    assert!(entity_objects >= 8 * SERVICES, "{entity_objects}");
    assert_eq!(app_objects, 4 * SERVICES);
}

#[test]
fn repositories_and_components_agree_both_ways() {
    let state = world();
    let snapshot = state.catalog.snapshot();
    let mut slugs = BTreeSet::new();
    for i in 0..snapshot.len() {
        let e = snapshot.at(i).expect("BUG: in range");
        let slug = e
            .join
            .github_slug
            .clone()
            .expect("BUG: generated with a slug");
        assert!(refs_of(&state.entities_of_repository(&slug)).contains(&e.ref_string));
        slugs.insert(slug);
    }
    let mut total = 0;
    for slug in &slugs {
        for e in state.entities_of_repository(slug) {
            assert_eq!(e.join.github_slug.as_deref(), Some(slug.as_str()));
            total += 1;
        }
    }
    assert_eq!(
        total, SERVICES,
        "each component under exactly one repository"
    );
    // The monorepo holds every third component; lookups ignore case like GitHub.
    assert_eq!(
        state.entities_of_repository("YourCompany/MonoRepo").len(),
        SERVICES.div_ceil(3)
    );
}

#[test]
fn an_application_revision_names_a_commit_only_for_shas_on_github() {
    let hosts = ["github.com"];
    let sha = "0123456789abcdef0123456789abcdef01234567";
    assert_eq!(
        commit_of_revision("https://github.com/yourcompany/idp.git", sha, &hosts),
        Some(("yourcompany/idp".into(), sha.into()))
    );
    assert_eq!(
        commit_of_revision("https://github.com/yourcompany/idp.git", "main", &hosts),
        None
    );
    assert_eq!(
        commit_of_revision("https://gitlab.com/yourcompany/idp.git", sha, &hosts),
        None
    );
}
