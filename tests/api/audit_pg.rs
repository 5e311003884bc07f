//! The durable audit trail against a real PostgreSQL server (Debian's `postgresql`, installed
//! by `.ci/run`; each test runs its own instance in a temporary directory): records survive a
//! restart and are shared by replicas; while the database is down they queue, the backlog is a
//! metric, a full buffer refuses mutations with `AUDIT_UNAVAILABLE`, and everything queued is
//! written once the database is back.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use idp_graph::app::App;
use idp_graph::demo::{DemoOptions, DemoWorld};
use serde_json::{json, Value};

use crate::helpers::wait_for;

/// A PostgreSQL server of this test's own.
struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// Running as root: the server runs as the `postgres` user (it refuses root).
    as_postgres: bool,
}

impl Postgres {
    fn start() -> Self {
        // The newest installed server: a client-only version (a `bin/` without `initdb`) is
        // skipped rather than chosen.
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.path().join("bin"))
                    .filter(|b| b.join("initdb").exists())
                    .max()
            })
            .expect("PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql; .ci/run does)");
        let as_postgres = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        // As root the server runs as `postgres`, which must reach the directory: under /tmp
        // rather than a TMPDIR that may sit below a private home. A short path also keeps the
        // Unix socket under the kernel's 107-byte limit.
        let dir = if as_postgres && Path::new("/tmp").is_dir() {
            tempfile::Builder::new().prefix("idp-pg").tempdir_in("/tmp")
        } else {
            tempfile::Builder::new().prefix("idp-pg").tempdir()
        }
        .unwrap();
        if as_postgres {
            assert!(Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .status()
                .unwrap()
                .success());
        }
        let mut pg = Self {
            dir,
            bin,
            port: 0,
            as_postgres,
        };
        let data = pg.data();
        pg.run(
            "initdb",
            &["-D", &data, "-U", "postgres", "-A", "trust", "--no-sync"],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        // A free port is only free until someone else binds it (other tests run alongside):
        // a start that loses the race tries another.
        let mut last = String::new();
        for _ in 0..5 {
            pg.port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            match pg.try_up() {
                Ok(()) => return pg,
                Err(e) => last = e,
            }
        }
        panic!("PostgreSQL did not start: {last}");
    }

    fn data(&self) -> String {
        self.dir.path().join("data").to_string_lossy().into_owned()
    }

    /// Runs one of the server's tools; the error carries its output.
    fn run(&self, tool: &str, args: &[&str]) -> Result<(), String> {
        let exe = self.bin.join(tool);
        let out = if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&exe)
                .args(args)
                .output()
        } else {
            Command::new(&exe).args(args).output()
        }
        .map_err(|e| format!("{tool} did not run: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        Err(format!(
            "{tool} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("log")
    }

    /// Starts the server on `self.port`; the error carries the server's log.
    fn try_up(&self) -> Result<(), String> {
        let sock = self.dir.path().to_string_lossy().into_owned();
        let log = self.log().to_string_lossy().into_owned();
        let opts = format!(
            "-p {} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port
        );
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-l", &log, "-w", "-o", &opts, "start"],
        )
        .map_err(|e| {
            let log = std::fs::read_to_string(self.log()).unwrap_or_default();
            format!("{e}\nserver log:\n{log}")
        })
    }

    fn up(&self) {
        self.try_up().unwrap_or_else(|e| panic!("{e}"));
    }

    fn down(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"])
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Audit rows in the database, read with `psql` (not through any replica).
    fn rows(&self) -> Vec<String> {
        let exe = self.bin.join("psql");
        let port = self.port.to_string();
        let args = [
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "postgres",
            "-tAc",
            "SELECT action || ' ' || target FROM audit_log ORDER BY seq",
        ];
        let out = Command::new(&exe).args(args).output().expect("psql runs");
        assert!(
            out.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The rows of one query, each as its first column's text (read with `psql`); `None`
    /// while the query fails (e.g. before the server applied the migrations).
    fn try_select(&self, sql: &str) -> Option<Vec<String>> {
        let exe = self.bin.join("psql");
        let port = self.port.to_string();
        let out = Command::new(&exe)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-tAc",
                sql,
            ])
            .output()
            .expect("psql runs");
        out.status.success().then(|| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string)
                .collect()
        })
    }

    /// Runs one statement as the database's owner.
    fn execute(&self, sql: &str) {
        let exe = self.bin.join("psql");
        let port = self.port.to_string();
        let out = Command::new(&exe)
            .args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-c", sql])
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }
}

/// A replica running with the durable audit trail: its address, and how to stop it.
struct Replica {
    url: String,
    shutdown: tokio_util::sync::CancellationToken,
    server: tokio::task::JoinHandle<Result<(), idp_graph::app::AppError>>,
}

impl Replica {
    /// Stops it and waits until it has (its listener closed, its audit writer ended).
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(20), self.server)
            .await
            .expect("the replica stops in time")
            .expect("the server task")
            .expect("the server ends cleanly");
    }
}

/// A server with the durable audit trail on `pg`, over `world`.
async fn replica(world: &DemoWorld, pg: &Postgres, var: &str, buffer: usize) -> Replica {
    let (url, shutdown, server) = start(world, pg, var, buffer).await;
    Replica {
        url,
        shutdown,
        server,
    }
}

/// A server with the durable audit trail on `pg`, over `world`.
async fn server(
    world: &DemoWorld,
    pg: &Postgres,
    var: &str,
    buffer: usize,
) -> (String, tokio_util::sync::CancellationToken) {
    let (url, token, _) = start(world, pg, var, buffer).await;
    (url, token)
}

async fn start(
    world: &DemoWorld,
    pg: &Postgres,
    var: &str,
    buffer: usize,
) -> (
    String,
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<Result<(), idp_graph::app::AppError>>,
) {
    // Edition 2021: setting a variable no other test reads is fine.
    std::env::set_var(var, pg.url());
    let opts = DemoOptions::for_tests();
    let (mut settings, secrets) = world.settings(&opts);
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.audit.postgres_url_env = Some(var.into());
    settings.audit.buffer = buffer;
    let app = App::build(settings, secrets).await.expect("app builds");
    let url = format!("http://{}", app.local_addr());
    let token = app.shutdown_token();
    let task = tokio::spawn(app.run_until_stopped());
    crate::helpers::wait_ready_at(&url, Duration::from_secs(20)).await;
    (url, token, task)
}

async fn gql(url: &str, query: &str) -> Value {
    reqwest::Client::new()
        .post(format!("{url}/graphql"))
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn backlog(url: &str) -> u64 {
    let text = reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("idp_audit_backlog "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the backlog metric")
}

async fn drained(url: &str) {
    let url = url.to_string();
    wait_for("the audit backlog written", Duration::from_secs(30), || {
        let url = url.clone();
        async move { (backlog(&url).await == 0).then_some(()) }
    })
    .await;
}

const REFRESH: &str = r#"mutation { refreshApplication(input: {name: "my-app"}) { auditId } }"#;

#[tokio::test]
async fn audit_records_survive_a_restart_and_are_shared_by_replicas() {
    let pg = Postgres::start();
    let world = DemoWorld::start(&DemoOptions::for_tests()).await.unwrap();
    let a = replica(&world, &pg, "IDP_TEST_AUDIT_PG_A", 100).await;
    let r = gql(
        &a.url,
        r#"mutation { syncApplication(input: {name: "sample-app"}) { auditId } }"#,
    )
    .await;
    assert!(r["errors"].is_null(), "{r}");
    assert!(gql(&a.url, REFRESH).await["errors"].is_null());
    drained(&a.url).await;
    // A stops before B starts: B is a new process's state (an empty in-memory ring), so every
    // record it lists comes from the database.
    a.stop().await;
    assert_eq!(
        pg.rows(),
        [
            "syncApplication main/argocd/sample-app",
            "refreshApplication main/argocd/my-app"
        ],
        "the database holds A's records"
    );
    let b = replica(&world, &pg, "IDP_TEST_AUDIT_PG_A", 100).await;
    let actions = |log: &Value| -> Vec<String> {
        log["data"]["auditLog"]
            .as_array()
            .unwrap_or_else(|| panic!("{log}"))
            .iter()
            .map(|e| {
                format!(
                    "{} {} {}",
                    e["action"].as_str().unwrap(),
                    e["target"].as_str().unwrap(),
                    e["result"].as_str().unwrap()
                )
            })
            .collect()
    };
    let log = gql(&b.url, "{ auditLog { action target result decision } }").await;
    assert_eq!(
        actions(&log),
        [
            "refreshApplication main/argocd/my-app ok",
            "syncApplication main/argocd/sample-app ok"
        ],
        "B lists A's records, newest first: {log}"
    );
    // And it reads them from the database each time: a row removed there is gone from B's
    // answer (no copy of its own could know).
    pg.execute("DELETE FROM audit_log WHERE action = 'syncApplication'");
    let log = gql(&b.url, "{ auditLog { action target result decision } }").await;
    assert_eq!(
        actions(&log),
        ["refreshApplication main/argocd/my-app ok"],
        "{log}"
    );
    b.stop().await;
}

#[tokio::test]
async fn while_the_database_is_down_records_queue_and_a_full_buffer_refuses_mutations() {
    let pg = Postgres::start();
    let world = DemoWorld::start(&DemoOptions::for_tests()).await.unwrap();
    let (url, stop) = server(&world, &pg, "IDP_TEST_AUDIT_PG_B", 2).await;
    assert!(gql(&url, REFRESH).await["errors"].is_null());
    drained(&url).await;

    pg.down();
    for _ in 0..2 {
        let r = gql(&url, REFRESH).await;
        assert!(
            r["errors"].is_null(),
            "room in the buffer: the mutation runs: {r}"
        );
    }
    assert_eq!(backlog(&url).await, 2);
    let r = gql(&url, REFRESH).await;
    assert_eq!(
        r["errors"][0]["extensions"]["code"], "AUDIT_UNAVAILABLE",
        "{r}"
    );
    assert!(r["data"].is_null(), "{r}");

    pg.up();
    drained(&url).await;
    // Counted from the database: a replica started now has no records of its own.
    let fresh = replica(&world, &pg, "IDP_TEST_AUDIT_PG_B", 2).await;
    let log = gql(&fresh.url, "{ auditLog { action result } }").await;
    let refreshes = log["data"]["auditLog"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "refreshApplication" && e["result"] == "ok")
        .count();
    assert_eq!(
        refreshes, 3,
        "every audited refresh is in the database: {log}"
    );
    fresh.stop().await;
    // Room again: mutations run.
    assert!(gql(&url, REFRESH).await["errors"].is_null());
    stop.cancel();
}

/// A delegated call — the chatops bot acting for carol (`X-Idp-Acting-For`) — is kept in the
/// database with both names: carol as the principal the policy decided as, the bot as the
/// delegate.
#[tokio::test]
async fn a_delegated_action_is_kept_with_the_user_and_the_delegate() {
    let pg = Postgres::start();
    let opts = DemoOptions {
        auth: true,
        ..DemoOptions::for_tests()
    };
    let world = DemoWorld::start(&opts).await.unwrap();
    // Edition 2021: setting a variable no other test reads is fine.
    std::env::set_var("IDP_TEST_AUDIT_PG_DELEGATE", pg.url());
    let (mut settings, secrets) = world.settings(&opts);
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.audit.postgres_url_env = Some("IDP_TEST_AUDIT_PG_DELEGATE".into());
    let app = App::build(settings, secrets).await.expect("app builds");
    let url = format!("http://{}", app.local_addr());
    let stop = app.shutdown_token();
    let task = tokio::spawn(app.run_until_stopped());
    crate::helpers::wait_ready_at(&url, Duration::from_secs(20)).await;
    let bot = world
        .persona_tokens()
        .into_iter()
        .find(|(p, _, _)| *p == "notify-bot")
        .map(|(_, _, t)| t)
        .unwrap();
    let r: Value = reqwest::Client::new()
        .post(format!("{url}/graphql"))
        .bearer_auth(bot)
        .header("x-idp-acting-for", "user:default/carol")
        .json(&json!({"query": r#"mutation { syncApplication(input: {name: "sample-app"}) { auditId } }"#}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(r["errors"].is_null(), "{r}");
    let sql = "SELECT principal || ' ' || coalesce(delegate, '-') || ' ' || action FROM audit_log ORDER BY seq";
    let rows = wait_for(
        "the delegated record in the database",
        Duration::from_secs(30),
        || {
            let rows = pg.try_select(sql).filter(|r| !r.is_empty());
            async move { rows }
        },
    )
    .await;
    assert_eq!(
        rows,
        ["user:default/carol user:default/notify-bot syncApplication"]
    );
    stop.cancel();
    let _ = task.await;
}
