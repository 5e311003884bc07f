//! The Kubernetes API simulation speaks the real protocol: `kubectl` lists and watches it.

use std::process::Stdio;
use std::time::Duration;

use idp_graph::demo::kubernetes::{seed_objects, KubeSim};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "kube-sim-token";

async fn sim_with(token: Option<&str>) -> (KubeSim, CancellationToken) {
    let stop = CancellationToken::new();
    let sim = KubeSim::start(seed_objects(&["sample-app", "my-app"]), token, stop.clone())
        .await
        .unwrap();
    (sim, stop)
}

/// kubectl over plain HTTP sends no bearer token (client-go sends them only over TLS).
async fn sim() -> (KubeSim, CancellationToken) {
    sim_with(None).await
}

fn kubectl(sim: &KubeSim) -> tokio::process::Command {
    let mut c = tokio::process::Command::new("kubectl");
    let home = tempfile::tempdir().unwrap().keep();
    c.env("HOME", &home)
        .env("KUBECONFIG", home.join("none"))
        .args(["--server", &sim.url(), "--request-timeout", "10s"]);
    c
}

#[tokio::test]
async fn kubectl_lists_the_demo_cluster() {
    let (sim, _stop) = sim().await;
    let out = kubectl(&sim)
        .args(["get", "deploy,pods,svc", "-A", "-o", "name"])
        .output()
        .await
        .expect("kubectl is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names = String::from_utf8(out.stdout).unwrap();
    for want in [
        "deployment.apps/sample-app",
        "deployment.apps/my-app",
        "service/sample-app",
        "pod/sample-app-5d9c7b8f6-x7k2p",
    ] {
        assert!(names.lines().any(|l| l == want), "{want} in {names}");
    }
    // The human table (kubectl asks for the server-side printed Table).
    let out = kubectl(&sim)
        .args(["get", "pods", "-n", "my-app"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("my-app-5d9c7b8f6-q9v4m"), "{table}");
    let out = kubectl(&sim)
        .args([
            "get",
            "pods",
            "-n",
            "my-app",
            "-l",
            "app.kubernetes.io/name=sample-app",
            "-o",
            "name",
        ])
        .output()
        .await
        .unwrap();
    assert!(
        String::from_utf8(out.stdout).unwrap().trim().is_empty(),
        "label selector applies"
    );
    let out = kubectl(&sim)
        .args(["get", "deploy", "nope", "-n", "my-app"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
}

#[tokio::test]
async fn kubectl_watches_the_demo_cluster() {
    let (sim, _stop) = sim().await;
    let mut child = kubectl(&sim)
        .args(["get", "pods", "-n", "sample-app", "-w", "-o", "name"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // The initial list...
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(first.starts_with("pod/sample-app-"), "{first}");
    let _second = lines.next_line().await.unwrap().unwrap();
    // ...then a new pod arrives through the watch.
    sim.upsert("pods", json!({"metadata": {"name": "sample-app-new-pod", "namespace": "sample-app", "labels": {"app.kubernetes.io/name": "sample-app"}},
        "spec": {"containers": [{"name": "c", "image": "x"}]}, "status": {"phase": "Pending"}}));
    let next = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(next, "pod/sample-app-new-pod");
    // A selector applies to live events too.
    let r = reqwest::Client::new()
        .get(format!("{}/api/v1/namespaces/sample-app/pods?watch=true&labelSelector=tier%3Dweb&timeoutSeconds=2", sim.url()))
        .send()
        .await
        .unwrap();
    sim.upsert(
        "pods",
        json!({"metadata": {"name": "other", "namespace": "sample-app", "labels": {"tier": "db"}}}),
    );
    sim.upsert("pods", json!({"metadata": {"name": "web-1", "namespace": "sample-app", "labels": {"tier": "web"}}}));
    let text = r.text().await.unwrap();
    let names: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["object"]["metadata"]["name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(names, ["web-1"]);
}

#[tokio::test]
async fn an_expired_resource_version_is_answered_in_stream_with_410() {
    let (sim, _stop) = sim_with(Some(TOKEN)).await;
    // Push the history window past the start.
    for i in 0..1100 {
        sim.upsert("configmaps", json!({"metadata": {"name": format!("churn-{}", i % 3), "namespace": "my-app"}, "data": {"i": i.to_string()}}));
    }
    let http = reqwest::Client::new();
    let r = http
        .get(format!(
            "{}/api/v1/pods?watch=true&resourceVersion=101",
            sim.url()
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "410 comes in the stream, not as the HTTP status"
    );
    let text = r.text().await.unwrap();
    let ev: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(ev["type"], "ERROR");
    assert_eq!(ev["object"]["code"], 410);
    assert_eq!(ev["object"]["reason"], "Expired");
    // Lists page with limit/continue and carry the list resourceVersion.
    let page: Value = http
        .get(format!("{}/api/v1/pods?limit=3", sim.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    assert_eq!(
        page["metadata"]["resourceVersion"],
        sim.resource_version().to_string()
    );
    let cont = page["metadata"]["continue"].as_str().unwrap();
    let rest: Value = http
        .get(format!("{}/api/v1/pods?limit=3&continue={cont}", sim.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert!(rest["metadata"].get("continue").is_none());
    // Status errors.
    let r = http
        .get(format!("{}/api/v1/pods", sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .get(format!(
            "{}/apis/apps/v1/namespaces/my-app/deployments/nope",
            sim.url()
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["kind"].as_str(), body["reason"].as_str()),
        (Some("Status"), Some("NotFound"))
    );
}

async fn patch(
    sim: &KubeSim,
    path: &str,
    content_type: &str,
    body: &'static str,
) -> reqwest::Response {
    reqwest::Client::new()
        .patch(format!("{}{path}", sim.url()))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn kubectl_rollout_restart_patches_and_the_controller_rolls() {
    let (sim, _stop) = sim().await;
    sim.set_rollout_step(Duration::from_millis(50));
    let out = kubectl(&sim)
        .args(["-n", "my-app", "rollout", "restart", "deployment/my-app"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("deployment.apps/my-app restarted"));
    let d = sim.get("deployments", "my-app", "my-app").unwrap();
    assert!(d
        .pointer("/spec/template/metadata/annotations/kubectl.kubernetes.io~1restartedAt")
        .is_some());
    assert_eq!(d["metadata"]["generation"], 2);
    // `kubectl rollout status` follows the simulated controller to the end.
    let out = kubectl(&sim)
        .args([
            "-n",
            "my-app",
            "rollout",
            "status",
            "deployment/my-app",
            "--timeout=20s",
        ])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("successfully rolled out"));
    let pods: Vec<String> = sim
        .list("pods")
        .iter()
        .filter(|p| p["metadata"]["namespace"] == "my-app")
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(pods.len(), 2);
    assert!(
        pods.iter().all(|p| !p.starts_with("my-app-5d9c7b8f6-")),
        "{pods:?}"
    );
    // Status errors: a patch of something missing, a bad content type.
    let r = patch(
        &sim,
        "/apis/apps/v1/namespaces/my-app/deployments/nope",
        "application/strategic-merge-patch+json",
        "{}",
    )
    .await;
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["kind"].as_str(), body["reason"].as_str()),
        (Some("Status"), Some("NotFound"))
    );
    let r = patch(
        &sim,
        "/apis/apps/v1/namespaces/my-app/deployments/my-app",
        "application/json-patch+json",
        "[]",
    )
    .await;
    assert_eq!(r.status(), 415);
    let r = patch(
        &sim,
        "/apis/apps/v1/namespaces/my-app/deployments/my-app",
        "application/merge-patch+json",
        r#"{"metadata": {"resourceVersion": "1"}}"#,
    )
    .await;
    assert_eq!(r.status(), 409);
}

/// The official Python client (v37, strict models: a missing required field fails) lists every
/// kind and watches pods and ReplicaSets on the simulated API server.
#[tokio::test]
async fn the_official_python_client_lists_and_watches_every_kind() {
    let world = idp_graph::demo::DemoWorld::start(&idp_graph::demo::DemoOptions::for_tests())
        .await
        .unwrap();
    let script =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/kube_client.py");
    let out = tokio::process::Command::new("python3")
        .arg(&script)
        .arg(world.kubernetes.url())
        .output()
        .await
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'kubernetes'"),
        "pip install kubernetes==37.0.2 first (.ci/run does)"
    );
    assert!(out.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["counts"]["pods"].as_u64().unwrap() >= 14, "{v}");
    assert_eq!(v["counts"]["replicasets"], v["counts"]["deployments"]);
    assert!(v["image_ids"][0].as_str().unwrap().contains("@sha256:"));
    assert!(v["selector"]["pod-template-hash"].is_string(), "{v}");
    // Every kind's watch decodes into the models too: its initial events are the list.
    assert_eq!(v["watched"], v["counts"], "{v}");
}

/// Every kind the source watches, as (list path, apiVersion, kind).
const KINDS: [(&str, &str, &str); 11] = [
    ("/api/v1/namespaces", "v1", "Namespace"),
    ("/apis/apps/v1/deployments", "apps/v1", "Deployment"),
    ("/apis/apps/v1/replicasets", "apps/v1", "ReplicaSet"),
    ("/apis/apps/v1/statefulsets", "apps/v1", "StatefulSet"),
    ("/apis/apps/v1/daemonsets", "apps/v1", "DaemonSet"),
    ("/api/v1/pods", "v1", "Pod"),
    ("/api/v1/services", "v1", "Service"),
    (
        "/apis/networking.k8s.io/v1/ingresses",
        "networking.k8s.io/v1",
        "Ingress",
    ),
    ("/api/v1/configmaps", "v1", "ConfigMap"),
    ("/api/v1/secrets", "v1", "Secret"),
    ("/api/v1/events", "v1", "Event"),
];

/// Every object the simulated API server serves — seeded, generated (`kube_scale`), and those a
/// rollout and the demo's weather (auto-synced revisions rolled out, app-3's pod in
/// CrashLoopBackOff and back) create and change, from lists and from watch events — passes kubernetes-validate
/// `--strict` against the OpenAPI of the version we claim (1.33): no missing required field, no
/// unknown one.
#[tokio::test]
async fn every_object_served_is_valid_against_the_kubernetes_1_33_schema() {
    let opts = idp_graph::demo::DemoOptions {
        kube_scale: 3,
        ..idp_graph::demo::DemoOptions::for_tests()
    };
    let world = idp_graph::demo::DemoWorld::start(&opts).await.unwrap();
    let sim = &world.kubernetes;
    sim.set_rollout_step(Duration::from_millis(50));
    let http = reqwest::Client::new();
    let mut docs: Vec<Value> = Vec::new();
    let mut watches = Vec::new();
    for (path, api_version, kind) in KINDS {
        let list: Value = http
            .get(format!("{}{path}", sim.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let rv = list["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_string();
        // Watch from the list's version while the rollout below runs.
        let url = format!(
            "{}{path}?watch=1&resourceVersion={rv}&timeoutSeconds=3",
            sim.url()
        );
        let http = http.clone();
        watches.push(tokio::spawn(async move {
            let mut out = Vec::new();
            let mut r = http.get(url).send().await.unwrap();
            let mut buf = Vec::new();
            while let Ok(Ok(Some(chunk))) =
                tokio::time::timeout(Duration::from_secs(5), r.chunk()).await
            {
                buf.extend_from_slice(&chunk);
                while let Some(i) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=i).collect();
                    if let Ok(e) = serde_json::from_slice::<Value>(&line) {
                        if e["type"] != "ERROR" && e["type"] != "BOOKMARK" {
                            out.push(with_kind(e["object"].clone(), api_version, kind));
                        }
                    }
                }
            }
            out
        }));
    }
    let out = kubectl(sim)
        .args(["-n", "my-app", "rollout", "restart", "deployment/my-app"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Three rounds of the weather while the watches run: the third crash-loops app-3's pod.
    world.weather_now(3, Duration::from_millis(300));
    let out = kubectl(sim)
        .args([
            "-n",
            "my-app",
            "rollout",
            "status",
            "deployment/my-app",
            "--timeout=20s",
        ])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut events = 0;
    for w in watches {
        let got = w.await.unwrap();
        events += got.len();
        docs.extend(got);
    }
    let mut listed = 0;
    for (path, api_version, kind) in KINDS {
        let list: Value = http
            .get(format!("{}{path}", sim.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(list["kind"], format!("{kind}List"));
        for item in list["items"].as_array().unwrap() {
            docs.push(with_kind(item.clone(), api_version, kind));
            listed += 1;
        }
    }
    assert!(events > 0, "the rollout was watched");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("served.yaml");
    let yaml: String = docs.iter().map(|d| format!("---\n{d}\n")).collect();
    std::fs::write(&file, yaml).unwrap();
    let out = tokio::process::Command::new("kubernetes-validate")
        .args(["--strict", "--quiet", "--no-warn", "-k", "1.33.0"])
        .arg(&file)
        .output()
        .await
        .expect("kubernetes-validate is installed (pip install kubernetes-validate; .ci/run does)");
    assert!(
        out.status.success(),
        "schema violations:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("kubernetes schema: {listed} listed objects + {events} watch events, 0 violations (strict, 1.33)");
    world.stop();
}

/// List items and watch objects carry no `apiVersion`/`kind` (the list says them); a manifest
/// does.
fn with_kind(mut o: Value, api_version: &str, kind: &str) -> Value {
    o["apiVersion"] = json!(api_version);
    o["kind"] = json!(kind);
    o
}

/// Field selectors as the real API server takes them: the labels a resource supports filter
/// (kubectl's `--field-selector`), any other is refused with its 400 and message.
#[tokio::test]
async fn field_selectors_filter_by_supported_labels_and_refuse_the_rest() {
    let (sim, _stop) = sim().await;
    let get = |args: &[&str]| {
        let mut c = kubectl(&sim);
        c.args(args);
        c.output()
    };
    let all = get(&["get", "pods", "-A", "-o", "json"]).await.unwrap();
    let all: Value = serde_json::from_slice(&all.stdout).unwrap();
    let pods = all["items"].as_array().unwrap();
    let running = pods
        .iter()
        .filter(|p| p["status"]["phase"] == "Running")
        .count();
    assert!(running > 0);
    let out = get(&[
        "get",
        "pods",
        "-A",
        "-o",
        "json",
        "--field-selector",
        "status.phase=Running",
    ])
    .await
    .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), running);
    let node = pods[0]["spec"]["nodeName"].as_str().unwrap().to_string();
    let on_node = pods
        .iter()
        .filter(|p| p["spec"]["nodeName"] == node.as_str())
        .count();
    let out = get(&[
        "get",
        "pods",
        "-A",
        "-o",
        "json",
        "--field-selector",
        &format!("spec.nodeName={node},status.phase!=Failed"),
    ])
    .await
    .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), on_node);
    // Not a label pods support: refused, as a real API server does.
    let out = get(&["get", "pods", "-A", "--field-selector", "spec.containers=x"])
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("field label not supported: spec.containers"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Events by the object they are about (what `kubectl describe` asks).
    let r = reqwest::get(format!(
        "{}/api/v1/events?fieldSelector=involvedObject.kind%3DPod,involvedObject.namespace%3Dmy-app",
        sim.url()
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(v["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["involvedObject"]["kind"] == "Pod"
            && e["involvedObject"]["namespace"] == "my-app"));
    let r = reqwest::get(format!(
        "{}/api/v1/events?fieldSelector=involvedObject.color%3Dred",
        sim.url()
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
}

async fn next_line(out: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>) -> String {
    tokio::time::timeout(Duration::from_secs(20), out.next_line())
        .await
        .expect("kubectl prints within 20 s")
        .unwrap()
        .expect("kubectl keeps watching")
}

async fn kubectl_text(sim: &KubeSim, args: &[&str]) -> String {
    let out = kubectl(sim).args(args).output().await.unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The columns of a printed line, split on kubectl's runs of spaces.
fn columns(line: &str) -> Vec<String> {
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

/// Server-side printing: `kubectl get` asks for `meta.k8s.io/v1` Tables, and lists, GETs and
/// watches all answer them — so its columns are the real server's (READY, STATUS, IP, NODE…),
/// not the NAME/AGE fallback, and a Secret shows how many keys it has, never a value.
#[tokio::test]
async fn kubectl_get_prints_the_servers_tables_for_lists_gets_and_watches() {
    let (sim, _stop) = sim().await;
    let pods = kubectl_text(&sim, &["get", "pods", "-n", "my-app", "-o", "wide"]).await;
    let mut lines = pods.lines();
    assert_eq!(
        columns(lines.next().unwrap()),
        [
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED NODE",
            "READINESS GATES"
        ]
    );
    let row = lines
        .map(columns)
        .find(|c| c[0] == "my-app-5d9c7b8f6-q9v4m")
        .unwrap_or_else(|| panic!("{pods}"));
    assert_eq!(
        [&row[1], &row[2], &row[3], &row[5], &row[6]],
        ["1/1", "Running", "0", "10.244.0.10", "demo-node-1"]
    );

    let deploys = kubectl_text(&sim, &["get", "deploy", "-A"]).await;
    assert_eq!(
        columns(deploys.lines().next().unwrap()),
        [
            "NAMESPACE",
            "NAME",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE"
        ]
    );
    assert!(
        deploys
            .lines()
            .map(columns)
            .any(|c| c[..5] == ["my-app", "my-app", "2/2", "2", "2"]),
        "{deploys}"
    );
    let services = kubectl_text(
        &sim,
        &["get", "svc", "my-app", "-n", "my-app", "-o", "wide"],
    )
    .await;
    let svc: Vec<Vec<String>> = services.lines().map(columns).collect();
    assert_eq!(
        svc[0],
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE",
            "SELECTOR"
        ]
    );
    assert_eq!(
        [&svc[1][1], &svc[1][2], &svc[1][3], &svc[1][4], &svc[1][6]],
        [
            "ClusterIP",
            "10.96.0.20",
            "<none>",
            "80/TCP",
            "app.kubernetes.io/name=my-app"
        ]
    );
    let secrets = kubectl_text(&sim, &["get", "secrets", "-n", "my-app"]).await;
    let secret: Vec<Vec<String>> = secrets.lines().map(columns).collect();
    assert_eq!(secret[0], ["NAME", "TYPE", "DATA", "AGE"]);
    assert_eq!(
        [&secret[1][0], &secret[1][1], &secret[1][2]],
        ["my-app-db", "Opaque", "1"]
    );
    assert!(!secrets.contains("s3cr3t"), "{secrets}");
    let ns = kubectl_text(&sim, &["get", "ns", "my-app"]).await;
    assert_eq!(
        columns(ns.lines().nth(1).unwrap())[..2],
        ["my-app", "Active"]
    );

    // A watch prints the same columns, header once, then each change as a row.
    let mut child = kubectl(&sim)
        .args(["get", "pods", "-n", "sample-app", "-w"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(
        columns(&next_line(&mut out).await),
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    );
    for _ in 0..2 {
        let row = columns(&next_line(&mut out).await);
        assert!(
            row[0].starts_with("sample-app-") && row[1] == "1/1" && row[2] == "Running",
            "{row:?}"
        );
    }
    sim.upsert("pods", json!({"metadata": {"name": "sample-app-new-pod", "namespace": "sample-app", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"containers": [{"name": "c", "image": "x"}]},
        "status": {"phase": "Pending", "containerStatuses": [{"name": "c", "ready": false, "restartCount": 0, "image": "x", "imageID": "",
                   "state": {"waiting": {"reason": "ContainerCreating"}}}]}}));
    let row = columns(&next_line(&mut out).await);
    assert_eq!(
        row[..4],
        ["sample-app-new-pod", "0/1", "ContainerCreating", "0"]
    );
    drop(child);

    // The wire: rows carry PartialObjectMetadata by default, the object when asked, and a bad
    // includeObject is the real server's 400; plain JSON still gets the List.
    let http = reqwest::Client::new();
    let get = |path: &str, accept: &'static str| {
        http.get(format!("{}{path}", sim.url()))
            .header("accept", accept)
            .send()
    };
    const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
    let t: Value = get("/api/v1/namespaces/my-app/pods", TABLE)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (t["kind"].as_str(), t["apiVersion"].as_str()),
        (Some("Table"), Some("meta.k8s.io/v1"))
    );
    assert_eq!(t["rows"].as_array().unwrap().len(), 2);
    assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    assert!(t["rows"][0]["object"].get("spec").is_none());
    let t: Value = get("/api/v1/namespaces/my-app/pods?includeObject=Object", TABLE)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(t["rows"][0]["object"]["kind"], "Pod");
    assert!(t["rows"][0]["object"]["spec"]["containers"].is_array());
    let r = get(
        "/api/v1/namespaces/my-app/pods?includeObject=Everything",
        TABLE,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let list: Value = get("/api/v1/namespaces/my-app/pods", "application/json")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["kind"], "PodList");
}

/// As a real cluster: Events expire after the API server's TTL (watchers see `DELETED`), and a
/// Deployment keeps at most `spec.revisionHistoryLimit` old ReplicaSets.
#[tokio::test]
async fn events_expire_and_old_replicasets_are_cleaned_up() {
    use futures::StreamExt;
    let (sim, _stop) = sim().await;
    sim.set_rollout_step(Duration::from_millis(20));
    sim.set_event_ttl(Duration::from_millis(500));
    let r = patch(
        &sim,
        "/apis/apps/v1/namespaces/my-app/deployments/my-app",
        "application/merge-patch+json",
        r#"{"spec": {"revisionHistoryLimit": 1}}"#,
    )
    .await;
    assert_eq!(r.status(), 200);
    let seeded: Vec<String> = names(&sim.list("events"));
    let watch = reqwest::get(format!(
        "{}/api/v1/events?watch=true&resourceVersion={}",
        sim.url(),
        sim.resource_version()
    ))
    .await
    .unwrap();
    let mut lines = watch.bytes_stream();

    let owned_sets = |sim: &KubeSim| {
        sim.list("replicasets")
            .into_iter()
            .filter(|r| r["metadata"]["ownerReferences"][0]["name"] == "my-app")
            .count()
    };
    let before = owned_sets(&sim);
    for rev in ["1111111aaaa", "2222222bbbb", "3333333cccc"] {
        assert!(sim.deploy_revision("my-app", "my-app", rev));
        let generation =
            sim.get("deployments", "my-app", "my-app").unwrap()["metadata"]["generation"].clone();
        crate::helpers::wait_for("the rollout to finish", Duration::from_secs(20), || {
            let d = sim.get("deployments", "my-app", "my-app");
            let generation = generation.clone();
            async move {
                let d = d?;
                (d["status"]["observedGeneration"] == generation
                    && d["status"]["conditions"][1]["reason"] == "NewReplicaSetAvailable")
                    .then_some(())
            }
        })
        .await;
    }
    let sets = owned_sets(&sim);
    assert_eq!(
        sets, 2,
        "the current ReplicaSet and one old one (had {before} before)"
    );

    // The rollouts recorded Events; each is gone once its time is up, and watchers are told.
    let recorded: Vec<String> = names(&sim.list("events"))
        .into_iter()
        .filter(|n| !seeded.contains(n))
        .collect();
    assert!(recorded.len() >= 6, "{recorded:?}");
    crate::helpers::wait_for(
        "the recorded Events to expire",
        Duration::from_secs(20),
        || {
            let left = names(&sim.list("events"));
            let gone = recorded.iter().all(|n| !left.contains(n));
            async move { gone.then_some(()) }
        },
    )
    .await;
    assert_eq!(
        names(&sim.list("events")).len(),
        seeded.len(),
        "seeded Events stay"
    );
    let mut deleted = std::collections::HashSet::new();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while deleted.len() < recorded.len() {
            buf.extend_from_slice(&lines.next().await.unwrap().unwrap());
            while let Some(at) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=at).collect();
                let ev: Value = serde_json::from_slice(&line).unwrap();
                if ev["type"] == "DELETED" {
                    deleted.insert(
                        ev["object"]["metadata"]["name"]
                            .as_str()
                            .unwrap()
                            .to_string(),
                    );
                }
            }
        }
    })
    .await
    .expect("a DELETED watch event for every expired Event");
    assert!(recorded.iter().all(|n| deleted.contains(n)));
}

fn names(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap_or("").to_string())
        .collect()
}
