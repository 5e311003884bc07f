//! The command line: schema drift, config validation and its exit codes, the version line.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_idp-graph"))
}

#[test]
fn committed_schema_equals_the_generated_one() {
    let out = bin().arg("schema").output().unwrap();
    assert!(out.status.success());
    let generated = String::from_utf8(out.stdout).unwrap();
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql is committed");
    assert!(
        generated == committed,
        "schema.graphql is stale: run `cargo run -- schema > schema.graphql`"
    );
}

fn check(yaml: &str, env: &[(&str, &str)]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, yaml).unwrap();
    let mut cmd = bin();
    cmd.arg("check-config").arg("--config").arg(&path);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_good_config_checks_out() {
    let (code, out, err) = check(
        "listen: 127.0.0.1:8080\nbackstage: { url: http://127.0.0.1:7007, token_env: IDP_TEST_BS_TOKEN }\nauth: { mode: none }\n",
        &[("IDP_TEST_BS_TOKEN", "t0k3n-value")],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ok"));
    assert!(!out.contains("t0k3n-value") && !err.contains("t0k3n-value"));
}

#[test]
fn bad_configs_name_the_key_and_exit_64() {
    for (yaml, needle) in [
        (
            "backstage: { url: http://x, poll: 3 }",
            "unknown field `poll`",
        ),
        ("backstage: { url: 'ftp://x' }", "backstage.url"),
        (
            "argocd: [{ name: main, url: http://a }, { name: main, url: http://b }]",
            "argocd[1].name",
        ),
        ("listen: not-an-address", "listen"),
        ("limits: { max_depth: 0 }", "limits.max_depth"),
        (
            "backstage: { url: http://x, token_env: IDP_TEST_SURELY_UNSET_VAR }",
            "IDP_TEST_SURELY_UNSET_VAR is not set",
        ),
        (
            "telemetry: { otlp: { endpoint: 'https://collector:4318' } }",
            "telemetry.otlp.endpoint",
        ),
        (
            "telemetry: { otlp: { endpoint: 'http://c:4318', sample_ratio: 2 } }",
            "telemetry.otlp.sample_ratio",
        ),
        ("federation: { enabled: yes-please }", "federation"),
        ("backstage: [1, 2", "not valid YAML"),
        ("- a\n- b", "mapping"),
    ] {
        let (code, _, err) = check(yaml, &[]);
        assert_eq!(code, 64, "{yaml}: {err}");
        assert!(
            err.contains(needle),
            "{yaml}: expected `{needle}` in: {err}"
        );
    }
    let out = bin()
        .args(["check-config", "--config", "/nonexistent/file.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/file.yaml"));
}

#[test]
fn unknown_commands_exit_64() {
    let out = bin().arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn version_names_the_release_and_the_commit_it_was_built_from() {
    let out = bin().arg("--version").output().unwrap();
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).unwrap();
    let commit = line
        .trim_end()
        .strip_prefix(concat!(
            "idp-graph ",
            env!("CARGO_PKG_VERSION"),
            " (commit "
        ))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not `idp-graph <version> (commit <commit>)`: {line:?}"));
    // build.rs hands the same value to every target of the crate, this test included.
    assert_eq!(commit, env!("IDP_GRAPH_GIT_COMMIT"));
    assert!(
        commit == "unknown"
            || (commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
        "a full commit id or `unknown`: {commit:?}"
    );
}
