//! Builds the browser UI (`ui/`: the playground at `/` and the portal at `/ui`) and embeds it.
//!
//! With Node and npm on the machine, `npm ci` (first time) and `node build.mjs` bundle it into
//! `OUT_DIR/ui`, and `OUT_DIR/ui_assets.rs` lists every file (raw and gzip) for
//! `include_bytes!`. Without them (or with `IDP_GRAPH_SKIP_UI` set), the list is empty and the
//! pages say how to build the UI: the server still compiles and serves the API. Nothing this
//! writes is committed.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    for p in [
        "ui/src",
        "ui/build.mjs",
        "ui/package.json",
        "ui/package-lock.json",
    ] {
        println!("cargo:rerun-if-changed={p}");
    }
    println!("cargo:rerun-if-env-changed=IDP_GRAPH_SKIP_UI");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dist = out.join("ui");
    let built = if env::var_os("IDP_GRAPH_SKIP_UI").is_some() {
        false
    } else {
        match build(&dist) {
            Ok(()) => true,
            Err(why) => {
                println!(
                    "cargo:warning=the UI is not built ({why}); / and /ui will say how to build it"
                );
                false
            }
        }
    };
    write_assets(&out, &dist, built);
}

fn build(dist: &Path) -> Result<(), String> {
    let ui = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets it")).join("ui");
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    if !ui.join("node_modules/.package-lock.json").exists() {
        let status = Command::new(npm)
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&ui)
            .status()
            .map_err(|e| format!("npm: {e}"))?;
        if !status.success() {
            return Err(format!("npm ci in ui/ failed ({status})"));
        }
    }
    let output = Command::new("node")
        .arg("build.mjs")
        .arg(dist)
        .current_dir(&ui)
        .output()
        .map_err(|e| format!("node: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "node build.mjs failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

/// FNV-1a, for cache-busting asset URLs (no dependency needed in a build script).
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x100000001b3)
    })
}

fn write_assets(out: &Path, dist: &Path, built: bool) {
    let mut entries = String::new();
    let mut manifest = "{}".to_string();
    if built {
        let mut names: Vec<String> = fs::read_dir(dist)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".js") || n.ends_with(".css"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        for name in names {
            let raw = dist.join(&name);
            let gz = dist.join(format!("{name}.gz"));
            let version = fnv(&fs::read(&raw).unwrap_or_default());
            let content_type = if name.ends_with(".js") {
                "text/javascript; charset=utf-8"
            } else {
                "text/css; charset=utf-8"
            };
            entries.push_str(&format!(
                "    Asset {{ name: {name:?}, content_type: {content_type:?}, version: \"{version:016x}\", raw: include_bytes!({raw:?}), gzip: include_bytes!({gz:?}) }},\n",
                raw = raw.display().to_string(),
                gz = gz.display().to_string(),
            ));
        }
        manifest = fs::read_to_string(dist.join("manifest.json")).unwrap_or(manifest);
    }
    let code = format!(
        "/// Whether `ui/` was built into this binary.\npub const UI_BUILT: bool = {built};\n\
         /// Sizes of the built files (raw and gzip), as `build.mjs` measured them.\n\
         pub const MANIFEST: &str = {manifest:?};\n\
         /// Every embedded file.\npub static ASSETS: &[Asset] = &[\n{entries}];\n"
    );
    fs::write(out.join("ui_assets.rs"), code).expect("OUT_DIR is writable");
}
