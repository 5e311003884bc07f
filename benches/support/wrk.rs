//! wrk (Debian's) driven from the benchmarks: one POST /graphql body (or a script's mix) for N
//! seconds, its report parsed; and a process's resident memory. Shared by `load`, `scale` and
//! `soak`.
//!
//! Every failure is counted, not only wrk's "Non-2xx or 3xx": a Lua `response` hook appended to
//! every script reads every answer's body and counts those carrying GraphQL `"errors"` (a 200
//! with errors is a failure too), and `done` prints socket errors (connect, read, write) and
//! timeouts from wrk's own summary. Reading every body costs wrk some throughput; every row,
//! ours and the peers', pays the same.

use std::io::Write;
use std::net::SocketAddr;
use std::process::Command;

use serde_json::json;

/// wrk's numbers for one run.
#[derive(Clone, Copy, Debug, Default)]
pub struct WrkReport {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Answers whose status was not 2xx/3xx.
    pub non_2xx: u64,
    /// Connect, read and write errors.
    pub socket_errors: u64,
    /// Requests that got no answer within wrk's `--timeout`.
    pub timeouts: u64,
    /// Answers (any status) whose body carries GraphQL `"errors"`.
    pub graphql_errors: u64,
    /// Answers whose body was checked (all of them).
    pub checked: u64,
}

impl WrkReport {
    /// Every kind of failure, together.
    pub fn failures(&self) -> u64 {
        self.non_2xx + self.socket_errors + self.timeouts + self.graphql_errors
    }

    /// A run that could not happen (no wrk): NaN numbers, nothing checked.
    pub fn skipped() -> Self {
        Self {
            rps: f64::NAN,
            p50_ms: f64::NAN,
            p99_ms: f64::NAN,
            ..Self::default()
        }
    }
}

/// Appended to every script: counts GraphQL errors in every body, and reports them with the
/// socket errors and timeouts of wrk's summary on one line `done` prints.
const CHECKS: &str = r#"
local idp_threads = {}
function setup(thread)
  table.insert(idp_threads, thread)
end
function init(args)
  idp_graphql_errors = 0
  idp_checked = 0
end
function response(status, headers, body)
  idp_checked = idp_checked + 1
  if body ~= nil and string.find(body, '"errors"', 1, true) then
    idp_graphql_errors = idp_graphql_errors + 1
  end
end
function done(summary, latency, requests)
  local e, c = 0, 0
  for _, t in ipairs(idp_threads) do
    e = e + t:get("idp_graphql_errors")
    c = c + t:get("idp_checked")
  end
  local s = summary.errors
  io.write(string.format("idp-check: graphql_errors=%d checked=%d connect=%d read=%d write=%d timeout=%d status=%d\n",
    e, c, s.connect, s.read, s.write, s.timeout, s.status))
end
"#;

/// Runs wrk against `addr` with `query` and parses its report.
pub fn wrk(
    addr: SocketAddr,
    query: &str,
    seconds: u64,
    connections: u32,
    dir: &std::path::Path,
) -> WrkReport {
    let script = dir.join("post.lua");
    let body = json!({ "query": query }).to_string();
    let mut f = std::fs::File::create(&script).unwrap();
    writeln!(
        f,
        "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = {}",
        serde_json::to_string(&body).unwrap()
    )
    .unwrap();
    wrk_script(addr, &script, seconds, connections)
}

/// Runs wrk against `addr`'s `/graphql` with a Lua `script` (which sets the requests; it must
/// not define `setup`, `init`, `response` or `done`, which the checks use) and parses its
/// report.
pub fn wrk_script(
    addr: SocketAddr,
    script: &std::path::Path,
    seconds: u64,
    connections: u32,
) -> WrkReport {
    let checked = script.with_extension("checked.lua");
    let mut text = std::fs::read_to_string(script).expect("the wrk script");
    text.push_str(CHECKS);
    std::fs::write(&checked, text).expect("the checked wrk script");
    let script = &checked;
    let out = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--timeout",
            "10s",
            "--latency",
            "-s",
        ])
        .arg(script)
        .arg(format!("http://{addr}/graphql"))
        .output()
        .expect("wrk runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |prefix: &str| -> Option<String> {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
    };
    let ms = |s: Option<String>| -> f64 {
        let s = s.unwrap_or_default();
        if let Some(v) = s.strip_suffix("us") {
            v.parse::<f64>().unwrap_or(0.0) / 1000.0
        } else if let Some(v) = s.strip_suffix("ms") {
            v.parse().unwrap_or(0.0)
        } else if let Some(v) = s.strip_suffix('s') {
            v.parse::<f64>().unwrap_or(0.0) * 1000.0
        } else {
            0.0
        }
    };
    let rps = text
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    // The checks' line; without it (wrk failed to run the script) the run counts as failed.
    let check = text
        .lines()
        .find_map(|l| l.strip_prefix("idp-check: "))
        .unwrap_or_else(|| {
            panic!(
                "wrk printed no checks: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let count = |name: &str| -> u64 {
        check
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {check}"))
    };
    WrkReport {
        rps,
        p50_ms: ms(field("50%")),
        p99_ms: ms(field("99%")),
        non_2xx: count("status"),
        socket_errors: count("connect") + count("read") + count("write"),
        timeouts: count("timeout"),
        graphql_errors: count("graphql_errors"),
        checked: count("checked"),
    }
}

/// One `kB` line (`VmRSS:`, `VmHWM:`) of a `/proc/<pid>/status` file, in MiB (NaN if absent).
pub fn status_mib(status_file: &str, field: &str) -> f64 {
    std::fs::read_to_string(status_file)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(f64::NAN)
}

/// Peak resident memory (`VmHWM`) of a `/proc/<pid>/status` file, in MiB.
pub fn peak_rss_mib(status_file: &str) -> f64 {
    status_mib(status_file, "VmHWM:")
}
