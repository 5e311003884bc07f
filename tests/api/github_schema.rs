//! The simulated GitHub against GitHub's own OpenAPI description (`@octokit/openapi`,
//! api.github.com): every REST answer the demo's client can get — repositories, commit lists and
//! commits, pull-request lists and pull requests, workflow-run lists and runs, `/rate_limit`, and
//! the error bodies (404, rate-limited 403) — validated by ajv against the operation's response
//! schema, with the headers the description declares. `npm ci` in `tests/peers/github` first
//! (`.ci/run` does).

use std::path::PathBuf;

use crate::helpers::{node_json, npm_peer};
use idp_graph::demo::{DemoOptions, DemoWorld, DEMO_TOKEN};
use reqwest::header::{ETAG, IF_NONE_MATCH};
use serde_json::{json, Value};

struct Recorder {
    http: reqwest::Client,
    base: String,
    records: Vec<Value>,
}

impl Recorder {
    /// GETs `path`, checks what every GitHub answer carries, and records it for the validator.
    async fn get(&mut self, path: &str, etag: Option<&str>) -> (u16, Value, Option<String>) {
        let mut req = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(DEMO_TOKEN)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28");
        if let Some(e) = etag {
            req = req.header(IF_NONE_MATCH, e);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers: serde_json::Map<String, Value> = r
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), json!(v.to_str().unwrap_or(""))))
            .collect();
        for h in [
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
            "x-ratelimit-used",
            "x-ratelimit-resource",
            "x-github-request-id",
        ] {
            assert!(headers.contains_key(h), "{h} missing on {path} → {status}");
        }
        if status == 200 && path != "/rate_limit" {
            assert!(headers.contains_key("etag"), "ETag missing on {path}");
        }
        let etag = headers
            .get(ETAG.as_str())
            .and_then(Value::as_str)
            .map(str::to_string);
        let paginated = headers.contains_key("link");
        let text = r.text().await.unwrap();
        let body: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
        };
        self.records.push(json!({"method": "GET", "path": path, "status": status, "headers": headers, "body": body, "paginated": paginated}));
        (status, body, etag)
    }
}

#[tokio::test]
async fn every_answer_of_the_simulated_github_matches_githubs_openapi_description() {
    let peer = npm_peer("github", "@octokit/openapi");
    let world = DemoWorld::start(&DemoOptions::for_tests()).await.unwrap();
    // After the demo's weather ran a while: commits pushed on top of the seeded history.
    let commits = |world: &DemoWorld| -> usize {
        world
            .git
            .slugs()
            .iter()
            .map(|s| world.git.repo(s).map_or(0, |r| r.commits.len()))
            .sum()
    };
    let seeded = commits(&world);
    world.weather_now(12, std::time::Duration::from_millis(500));
    let pushed = commits(&world);
    assert!(pushed > seeded, "the weather pushed commits");
    let mut rec = Recorder {
        http: reqwest::Client::new(),
        base: world.github.url(),
        records: Vec::new(),
    };
    let slugs = world.git.slugs();
    assert!(slugs.len() >= 3, "{slugs:?}");
    for slug in slugs.iter().take(3) {
        let (status, repo, etag) = rec.get(&format!("/repos/{slug}"), None).await;
        assert_eq!(status, 200);
        assert_eq!(repo["full_name"], json!(slug));
        let branch = repo["default_branch"].as_str().unwrap().to_string();
        // Lists in pages (with `Link`), and every item's own form.
        let (_, commits, _) = rec
            .get(&format!("/repos/{slug}/commits?per_page=2"), None)
            .await;
        for c in commits.as_array().unwrap() {
            rec.get(
                &format!("/repos/{slug}/commits/{}", c["sha"].as_str().unwrap()),
                None,
            )
            .await;
        }
        rec.get(&format!("/repos/{slug}/commits/{branch}"), None)
            .await;
        rec.get(&format!("/repos/{slug}/commits"), None).await;
        let (_, pulls, pulls_etag) = rec
            .get(&format!("/repos/{slug}/pulls?state=all&per_page=5"), None)
            .await;
        for p in pulls
            .as_array()
            .unwrap()
            .iter()
            .chain([&json!({"number": 1})])
        {
            rec.get(&format!("/repos/{slug}/pulls/{}", p["number"]), None)
                .await;
        }
        rec.get(&format!("/repos/{slug}/pulls"), None).await;
        // A conditional request: 304, no body.
        let (status, ..) = rec
            .get(
                &format!("/repos/{slug}/pulls?state=all&per_page=5"),
                pulls_etag.as_deref(),
            )
            .await;
        assert_eq!(status, 304);
        let (_, runs, _) = rec
            .get(&format!("/repos/{slug}/actions/runs?per_page=3"), None)
            .await;
        for run in runs["workflow_runs"].as_array().unwrap() {
            rec.get(&format!("/repos/{slug}/actions/runs/{}", run["id"]), None)
                .await;
        }
        rec.get(&format!("/repos/{slug}/actions/runs?branch={branch}"), None)
            .await;
        assert!(etag.is_some());
    }
    // Errors: GitHub's 404 body, and the rate-limited 403.
    let (status, ..) = rec.get("/repos/yourcompany/no-such-repository", None).await;
    assert_eq!(status, 404);
    rec.get("/rate_limit", None).await;
    world.github.exhaust();
    let (status, ..) = rec.get(&format!("/repos/{}", slugs[0]), None).await;
    assert_eq!(status, 403);
    world.github.reset_window();

    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec(&rec.records).unwrap()).unwrap();
    let (_, v) = node_json(
        &peer,
        "validate-responses.mjs",
        &[file.path().to_str().unwrap()],
    )
    .await;
    let violations = v["violations"].as_array().unwrap();
    assert!(
        violations.is_empty(),
        "{} violations, e.g. {}",
        violations.len(),
        serde_json::to_string_pretty(&violations[..violations.len().min(15)]).unwrap()
    );
    let operations = v["operations"].as_array().unwrap();
    for op in [
        "repos/get",
        "repos/list-commits",
        "repos/get-commit",
        "pulls/list",
        "pulls/get",
        "actions/list-workflow-runs-for-repo",
        "actions/get-workflow-run",
        "rate-limit/get",
    ] {
        assert!(
            operations.contains(&json!(op)),
            "{op} not exercised: {operations:?}"
        );
    }
    println!(
        "github schema: {} responses over {} operations, 0 violations",
        v["responses"],
        operations.len()
    );
    world.stop();
}

/// A typed client — githubkit, whose pydantic models are generated from the same description —
/// reads every answer it asks for into its model and follows the pages.
#[tokio::test]
async fn a_typed_github_client_reads_every_answer_into_its_models() {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/github/typed_client.py");
    let world = DemoWorld::start(&DemoOptions::for_tests()).await.unwrap();
    let slug = "yourcompany/sample-app";
    let out = tokio::process::Command::new("python3")
        .arg(&script)
        .arg(world.github.url())
        .arg(DEMO_TOKEN)
        .arg(slug)
        .output()
        .await
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "githubkit refused an answer (pip install githubkit first; .ci/run does): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let repo = world.git.repo(slug).unwrap();
    let head = world.git.head(slug).unwrap();
    assert_eq!(v["full_name"], slug);
    assert_eq!(v["head"], json!(head.sha));
    assert_eq!(v["paged_commits"], json!(repo.commits.len()));
    assert_eq!(v["paged_pulls"], 12);
    assert_eq!(v["commit_parents"].as_array().unwrap().len(), 1);
    println!(
        "githubkit: {} typed calls + every page of commits and pulls read",
        v["calls"]
    );
    world.stop();
}
