//! Generative tests of every decoder that reads what a caller or an upstream sends: node ids,
//! page cursors, event cursors, entity refs, label selectors, the config file, and the
//! Kubernetes / ArgoCD / GitHub / Backstage wire decoders. Each gets tens of thousands of inputs — random
//! bytes, random tokens, and mutations of valid inputs — from a fixed seed: none may panic,
//! and whatever decodes must re-encode to the same thing. `IDP_FUZZ_ROUNDS` runs longer by
//! hand (e.g. `IDP_FUZZ_ROUNDS=2000000 cargo test --release --test decoders`).

use std::collections::BTreeMap;
use std::path::Path;

use idp_graph::domain::node_id::NodeId;
use idp_graph::domain::selector::LabelSelector;
use idp_graph::domain::EntityRef;

#[path = "support/rng.rs"]
mod rng;
use rng::Rng;

fn rounds() -> usize {
    std::env::var("IDP_FUZZ_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(20_000)
}

const ALPHABET: &[u8] = b"abcXYZ019-_./:=!,()[]{}\"'\\ \t\n\x00\xff\xc3\xa9%+*&|<>~@#$^`;?";

/// A random string: from the alphabet above (bytes may be invalid UTF-8, made lossy), or a
/// mutation of one of `seeds`.
fn input(rng: &mut Rng, seeds: &[&str]) -> String {
    if rng.below(3) == 0 || seeds.is_empty() {
        let n = rng.below(64);
        let bytes: Vec<u8> = (0..n)
            .map(|_| ALPHABET[rng.below(ALPHABET.len())])
            .collect();
        return String::from_utf8_lossy(&bytes).into_owned();
    }
    let mut s: Vec<char> = seeds[rng.below(seeds.len())].chars().collect();
    for _ in 0..1 + rng.below(3) {
        let i = rng.below(s.len() + 1);
        match rng.below(4) {
            0 if !s.is_empty() => {
                s.remove(i.min(s.len() - 1));
            }
            1 => s.insert(i, ALPHABET[rng.below(ALPHABET.len())] as char),
            2 => s.truncate(i),
            _ => {
                let dup: Vec<char> = s[i.min(s.len())..].iter().take(8).copied().collect();
                s.splice(i.min(s.len())..i.min(s.len()), dup);
            }
        }
    }
    s.into_iter().collect()
}

#[test]
fn node_ids_never_panic_and_round_trip() {
    let mut rng = Rng(0x0dd_ba11);
    let seeds: Vec<String> = [
        NodeId::Repository { slug: "o/r".into() },
        NodeId::Commit {
            slug: "o/r".into(),
            sha: "a".repeat(40),
        },
        NodeId::PullRequest {
            slug: "o/r".into(),
            number: 7,
        },
        NodeId::Cluster {
            name: "demo".into(),
        },
    ]
    .iter()
    .map(NodeId::encode)
    .collect();
    let seeds: Vec<&str> = seeds.iter().map(String::as_str).collect();
    let mut decoded = 0;
    for _ in 0..rounds() {
        if let Ok(id) = NodeId::decode(&input(&mut rng, &seeds)) {
            assert_eq!(NodeId::decode(&id.encode()).ok(), Some(id));
            decoded += 1;
        }
    }
    println!("node ids: {} inputs, {decoded} decoded", rounds());
}

#[test]
fn page_cursors_never_panic_and_round_trip() {
    let mut rng = Rng(0xc0ffee);
    for _ in 0..rounds() {
        let key = input(&mut rng, &["main/argocd/app", "demo\u{1}ns\u{1}name"]);
        let c = idp_graph::graph::paging::encode_cursor(&key);
        assert_eq!(idp_graph::graph::paging::decode_cursor(&c).ok(), Some(key));
        let _ = idp_graph::graph::paging::decode_cursor(&input(&mut rng, &[c.as_str()]));
    }
}

#[test]
fn event_cursors_never_panic_and_round_trip() {
    let bus = idp_graph::events::EventBus::new(16);
    let mut rng = Rng(0xe7e7);
    let seeds = [bus.cursor(1), bus.cursor(u64::MAX)];
    let seeds: Vec<&str> = seeds.iter().map(String::as_str).collect();
    for i in 0..rounds() as u64 {
        assert_eq!(bus.parse_cursor(&bus.cursor(i)).ok(), Some(Some(i)));
        let _ = bus.parse_cursor(&input(&mut rng, &seeds));
    }
}

#[test]
fn entity_refs_and_label_selectors_never_panic() {
    let mut rng = Rng(0x5e1ec7);
    let refs = ["component:default/sample-app", "group:app-team", "api:ns/x"];
    let sels = [
        "app=web,tier!=db",
        "env in (prod, staging),!canary",
        "a notin (x),b",
        "x==y",
    ];
    let labels: BTreeMap<String, String> = [("app", "web"), ("env", "prod"), ("b", "")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let (mut parsed_refs, mut parsed_sels) = (0, 0);
    for _ in 0..rounds() {
        if let Ok(r) = EntityRef::parse(&input(&mut rng, &refs)) {
            assert_eq!(
                EntityRef::parse(&r.to_string()).ok().map(|x| x.to_string()),
                Some(r.to_string())
            );
            parsed_refs += 1;
        }
        if let Ok(s) = LabelSelector::parse(&input(&mut rng, &sels)) {
            let _ = s.matches(&labels);
            parsed_sels += 1;
        }
    }
    println!(
        "refs: {parsed_refs} parsed; selectors: {parsed_sels} parsed, of {} each",
        rounds()
    );
}

#[test]
fn the_config_parser_never_panics() {
    let mut rng = Rng(0xc0f1);
    let valid = "backstage: { url: 'http://b:7007', token_env: T, poll_interval_secs: 30 }\n\
        argocd: [{ name: main, url: 'https://argo', token_env: T }]\n\
        github: { url: 'https://api.github.com', token_env: T, safety_net_secs: 600 }\n\
        kubernetes: [{ name: demo, url: 'https://k8s', argocd_destinations: [in-cluster] }]\n\
        limits: { max_depth: 16, max_fields: 5000 }\nauth: { mode: none }\n";
    let mut ok = 0;
    for _ in 0..rounds() / 4 {
        let text = input(&mut rng, &[valid]);
        let env = [(
            "IDP_GRAPH__LIMITS__MAX_DEPTH".to_string(),
            input(&mut rng, &["12"]),
        )];
        if idp_graph::config::Settings::from_yaml_with_env(&text, Path::new("fuzz.yaml"), env)
            .is_ok()
        {
            ok += 1;
        }
    }
    println!("config: {} inputs, {ok} accepted", rounds() / 4);
}

#[test]
fn wire_decoders_never_panic_on_mutated_upstream_json() {
    use idp_graph::domain::kubernetes::{DeploymentInfo, PodInfo, ReplicaSetInfo, SecretInfo};
    let mut rng = Rng(0x3173);
    let pod = r#"{"metadata":{"name":"p","namespace":"a"},"spec":{"containers":[{"name":"c","image":"i"}]},"status":{"phase":"Running","containerStatuses":[{"name":"c","image":"i","imageID":"","ready":true,"restartCount":1,"state":{"running":{"startedAt":"2026-01-01T00:00:00Z"}}}]}}"#;
    let dep = r#"{"metadata":{"name":"d","generation":2},"spec":{"replicas":3,"selector":{},"template":{"spec":{"containers":[{"name":"c","image":"i"}]}},"strategy":{"rollingUpdate":{"maxSurge":"25%"}}},"status":{"observedGeneration":2,"replicas":3}}"#;
    let rs =
        r#"{"metadata":{"name":"r"},"spec":{"replicas":1,"selector":{}},"status":{"replicas":1}}"#;
    let secret = r#"{"metadata":{"name":"s"},"type":"Opaque","data":{"k":"dg=="}}"#;
    for _ in 0..rounds() {
        let _ = serde_json::from_str::<PodInfo>(&input(&mut rng, &[pod]));
        if let Ok(d) = serde_json::from_str::<DeploymentInfo>(&input(&mut rng, &[dep])) {
            let _ = idp_graph::domain::kubernetes::rollout(&d);
        }
        let _ = serde_json::from_str::<ReplicaSetInfo>(&input(&mut rng, &[rs]));
        let _ = serde_json::from_str::<SecretInfo>(&input(&mut rng, &[secret]));
    }
}

/// ArgoCD, GitHub and Backstage: each upstream's wire decoders get mutations of a valid answer
/// (and random text) — none may panic, and the valid answer itself must decode.
#[test]
fn argocd_github_and_backstage_wire_decoders_never_panic() {
    use idp_graph::sources::{argocd::fuzz as argo, github::fuzz as gh};
    let mut rng = Rng(0xA3C0);
    let app = r#"{"metadata":{"name":"a","namespace":"argocd","labels":{"x":"y"}},"spec":{"project":"default","source":{"repoURL":"https://github.com/o/r","path":"k8s","targetRevision":"HEAD"},"destination":{"server":"https://kubernetes.default.svc","namespace":"a"},"syncPolicy":{"automated":{"prune":true}}},"status":{"sync":{"status":"Synced","revision":"abc"},"health":{"status":"Healthy"},"history":[{"id":1,"revision":"abc","deployedAt":"2026-01-01T00:00:00Z"}],"operationState":{"phase":"Running","startedAt":"2026-01-01T00:00:00Z"}}}"#;
    let line = format!(r#"{{"result":{{"type":"MODIFIED","application":{app}}}}}"#);
    let sse = format!("data: {line}");
    let tree = r#"{"nodes":[{"group":"apps","version":"v1","kind":"Deployment","namespace":"a","name":"a","uid":"u1","health":{"status":"Healthy"}},{"version":"v1","kind":"Pod","namespace":"a","name":"a-1","uid":"u2","images":["i"],"parentRefs":[{"group":"apps","kind":"ReplicaSet","namespace":"a","name":"a-r","uid":"u3"}]}]}"#;
    let repo = r#"{"id":1,"node_id":"R_1","name":"r","full_name":"o/r","private":true,"owner":{"login":"o","id":2},"html_url":"https://github.com/o/r","description":null,"default_branch":"main","language":"Rust","topics":["a"],"stargazers_count":3,"forks_count":0,"open_issues_count":1,"archived":false,"visibility":"internal","pushed_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}"#;
    let commit = r#"{"sha":"abc","commit":{"author":{"name":"A","email":"a@x","date":"2026-01-01T00:00:00Z"},"message":"m"},"author":{"login":"a"},"html_url":"https://github.com/o/r/commit/abc","parents":[{"sha":"abb"}]}"#;
    let pull = r#"{"number":3,"state":"open","title":"t","draft":false,"user":{"login":"a"},"html_url":"https://github.com/o/r/pull/3","head":{"ref":"f","sha":"abc"},"base":{"ref":"main"},"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","merged_at":null}"#;
    let runs = r#"{"total_count":1,"workflow_runs":[{"id":9,"name":"CI","head_branch":"main","head_sha":"abc","event":"push","status":"completed","conclusion":"success","run_number":4,"html_url":"https://github.com/o/r/actions/runs/9","created_at":"2026-01-01T00:00:00Z"}]}"#;
    let push = format!(
        r#"{{"ref":"refs/heads/main","before":"abb","after":"abc","repository":{repo},"head_commit":{{"id":"abc","message":"m","timestamp":"2026-01-01T00:00:00Z","author":{{"name":"A","email":"a@x","username":"a"}}}}}}"#
    );
    let entity = r#"{"apiVersion":"backstage.io/v1alpha1","kind":"Component","metadata":{"name":"c","namespace":"default","annotations":{"argocd/app-name":"c","github.com/project-slug":"o/r"}},"spec":{"type":"service","lifecycle":"production","owner":"group:default/t","system":"s","dependsOn":["resource:default/db"]},"relations":[{"type":"ownedBy","targetRef":"group:default/t"}]}"#;
    // The valid answers decode (so the mutations start from something the decoders take).
    assert!(
        argo::application(app)
            && argo::stream_line(line.as_bytes())
            && argo::stream_line(sse.as_bytes())
            && argo::resource_tree(tree)
    );
    assert!(
        gh::repository(repo)
            && gh::commit(commit)
            && gh::pull_request(pull)
            && gh::workflow_runs(runs)
            && gh::push_payload(&push)
    );
    let parse_entity = |s: &str| {
        serde_json::from_str::<serde_json::Value>(s)
            .ok()
            .is_some_and(|v| idp_graph::sources::backstage::parse_entity(v).is_ok())
    };
    assert!(parse_entity(entity));
    let mut decoded = 0usize;
    for _ in 0..rounds() {
        decoded += usize::from(argo::application(&input(&mut rng, &[app])));
        decoded += usize::from(argo::stream_line(
            input(&mut rng, &[&line, &sse]).as_bytes(),
        ));
        decoded += usize::from(argo::resource_tree(&input(&mut rng, &[tree])));
        decoded += usize::from(gh::repository(&input(&mut rng, &[repo])));
        decoded += usize::from(gh::commit(&input(&mut rng, &[commit])));
        decoded += usize::from(gh::pull_request(&input(&mut rng, &[pull])));
        decoded += usize::from(gh::workflow_runs(&input(&mut rng, &[runs])));
        decoded += usize::from(gh::push_payload(&input(&mut rng, &[&push])));
        decoded += usize::from(parse_entity(&input(&mut rng, &[entity])));
    }
    println!(
        "argocd/github/backstage wire: {} inputs over 9 decoders, {decoded} decoded",
        rounds() * 9
    );
}
