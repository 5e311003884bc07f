//! The four simulations are one world: every node of every ArgoCD resource tree exists in the
//! Kubernetes simulation under the same name and UID, and every revision ArgoCD reports (synced
//! or in history) is a commit the GitHub simulation knows in that application's repository.

use idp_graph::demo::{DemoOptions, DemoWorld, DEMO_TOKEN};
use serde_json::Value;

fn plural(kind: &str) -> String {
    format!("{}s", kind.to_lowercase())
}

#[tokio::test]
async fn argocd_trees_name_the_clusters_objects_and_revisions_are_githubs_commits() {
    let world = DemoWorld::start(&DemoOptions::for_tests()).await.unwrap();
    let http = reqwest::Client::new();
    let get = |path: String| {
        let http = http.clone();
        async move {
            http.get(path)
                .bearer_auth(DEMO_TOKEN)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let argo = world.argocd.url();
    let apps = get(format!("{argo}/api/v1/applications")).await;
    let (mut nodes, mut revisions) = (0, 0);
    for app in apps["items"].as_array().unwrap() {
        let name = app["metadata"]["name"].as_str().unwrap();
        let tree = get(format!("{argo}/api/v1/applications/{name}/resource-tree")).await;
        for node in tree["nodes"].as_array().unwrap() {
            let (kind, ns, n) = (
                node["kind"].as_str().unwrap(),
                node["namespace"].as_str().unwrap(),
                node["name"].as_str().unwrap(),
            );
            let live = world
                .kubernetes
                .get(&plural(kind), ns, n)
                .unwrap_or_else(|| panic!("{name}: {kind} {ns}/{n} is not in the cluster"));
            assert_eq!(
                node["uid"], live["metadata"]["uid"],
                "{name}: {kind} {ns}/{n}"
            );
            for parent in node["parentRefs"].as_array().into_iter().flatten() {
                let p = world
                    .kubernetes
                    .get(
                        &plural(parent["kind"].as_str().unwrap()),
                        ns,
                        parent["name"].as_str().unwrap(),
                    )
                    .unwrap_or_else(|| panic!("{name}: parent {parent} is not in the cluster"));
                assert_eq!(parent["uid"], p["metadata"]["uid"]);
            }
            nodes += 1;
        }
        let slug = app["spec"]["source"]["repoURL"]
            .as_str()
            .unwrap()
            .trim_start_matches("https://github.com/")
            .trim_end_matches(".git")
            .to_string();
        let history = app["status"]["history"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let synced = app["status"]["sync"]["revision"].clone();
        for rev in history.iter().map(|h| &h["revision"]).chain([&synced]) {
            let Some(sha) = rev.as_str() else { continue };
            assert!(
                world.git.commit(&slug, sha).is_some(),
                "{name}: revision {sha} is not a commit of {slug}"
            );
            revisions += 1;
        }
    }
    assert!(
        nodes >= 10 && revisions >= 10,
        "{nodes} nodes, {revisions} revisions"
    );
    println!("one world: {nodes} resource-tree nodes and {revisions} revisions checked");
    world.stop();
}
