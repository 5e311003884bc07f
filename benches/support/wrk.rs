//! wrk (Debian's) driven from the benchmarks: one POST /graphql body (or a script's mix) for N
//! seconds, its report parsed; and a process's resident memory. Shared by `load`, `scale` and
//! `soak`.

use std::io::Write;
use std::net::SocketAddr;
use std::process::Command;

use serde_json::json;

/// wrk's numbers for one run.
pub type WrkReport = (f64, f64, f64, u64);

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

/// Runs wrk against `addr`'s `/graphql` with a Lua `script` (which sets the requests) and
/// parses its report: (req/s, p50 ms, p99 ms, non-2xx/3xx responses).
pub fn wrk_script(
    addr: SocketAddr,
    script: &std::path::Path,
    seconds: u64,
    connections: u32,
) -> WrkReport {
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
    let errors = text
        .lines()
        .find(|l| l.contains("Non-2xx or 3xx responses:"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    (rps, ms(field("50%")), ms(field("99%")), errors)
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
