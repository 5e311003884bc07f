//! Builds the browser UI (`ui/`: the playground at `/` and the portal at `/ui`) and embeds it, and
//! records the git commit the binary is built from (`idp-graph --version`).
//!
//! The UI comes from the first of these that applies:
//! 1. `IDP_GRAPH_UI_DIST=<dir>`: a bundle that `node build.mjs <dir>` made elsewhere (the
//!    Dockerfile's Node stage: the Rust stage has no Node). It is embedded as it is; a relative
//!    path is taken from the crate root. A bundle missing a file fails the build, because whoever
//!    set the variable asked for a UI and must not get a binary without one.
//! 2. `IDP_GRAPH_SKIP_UI` set: no UI.
//! 3. Node and npm on the machine: `npm ci` (first time) and `node build.mjs` bundle it into
//!    `OUT_DIR/ui`. Without them there is no UI and a warning says so.
//!
//! Either way `OUT_DIR/ui_assets.rs` lists every file (raw and gzip) for `include_bytes!`; with
//! no UI the list is empty and the pages say how to build it: the server still compiles and
//! serves the API. Nothing this writes is committed.
//!
//! The commit (`IDP_GRAPH_GIT_COMMIT` for rustc) comes from the variable of the same name (the
//! Dockerfile's `GIT_COMMIT` build arg: the image's context has no `.git`), else, in builds of a
//! release-like profile, from `git rev-parse HEAD`, else it is `unknown`. Debug builds do not ask
//! git: following HEAD would rerun this script on every commit, and each rerun recompiles the
//! crate and relinks every test binary.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What `build.mjs` writes and `src/http/ui.rs` links to (each also as `<name>.gz`).
const BUNDLE_FILES: [&str; 4] = ["playground.js", "playground.css", "portal.js", "portal.css"];

fn main() {
    println!("cargo:rerun-if-env-changed=IDP_GRAPH_SKIP_UI");
    println!("cargo:rerun-if-env-changed=IDP_GRAPH_UI_DIST");
    let crate_root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let (dist, built) = if let Some(prebuilt) = env::var_os("IDP_GRAPH_UI_DIST") {
        let dist = crate_root.join(prebuilt);
        if let Err(why) = check_bundle(&dist) {
            panic!("IDP_GRAPH_UI_DIST={}: {why}", dist.display());
        }
        println!("cargo:rerun-if-changed={}", dist.display());
        (dist, true)
    } else {
        for p in [
            "ui/src",
            "ui/build.mjs",
            "ui/package.json",
            "ui/package-lock.json",
        ] {
            println!("cargo:rerun-if-changed={p}");
        }
        let dist = out.join("ui");
        let built = if env::var_os("IDP_GRAPH_SKIP_UI").is_some() {
            false
        } else {
            match build(&crate_root.join("ui"), &dist) {
                Ok(()) => true,
                Err(why) => {
                    println!(
                        "cargo:warning=the UI is not built ({why}); / and /ui will say how to build it"
                    );
                    false
                }
            }
        };
        (dist, built)
    };
    write_assets(&out, &dist, built);
    println!(
        "cargo:rustc-env=IDP_GRAPH_GIT_COMMIT={}",
        git_commit(&crate_root)
    );
}

fn build(ui: &Path, dist: &Path) -> Result<(), String> {
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    if !ui.join("node_modules/.package-lock.json").exists() {
        let status = Command::new(npm)
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(ui)
            .status()
            .map_err(|e| format!("npm: {e}"))?;
        if !status.success() {
            return Err(format!("npm ci in ui/ failed ({status})"));
        }
    }
    let output = Command::new("node")
        .arg("build.mjs")
        .arg(dist)
        .current_dir(ui)
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

/// A prebuilt bundle has every file the pages link to, each with its gzip copy, and the manifest.
fn check_bundle(dist: &Path) -> Result<(), String> {
    let mut missing: Vec<String> = BUNDLE_FILES
        .iter()
        .flat_map(|name| [name.to_string(), format!("{name}.gz")])
        .chain(["manifest.json".to_string()])
        .filter(|name| !dist.join(name).is_file())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    missing.sort();
    Err(format!(
        "not a bundle made by `node build.mjs` (missing {})",
        missing.join(", ")
    ))
}

/// The commit this binary is built from; see the header for the order and why debug builds
/// say `unknown` unless told.
fn git_commit(crate_root: &Path) -> String {
    println!("cargo:rerun-if-env-changed=IDP_GRAPH_GIT_COMMIT");
    if let Some(commit) = env::var("IDP_GRAPH_GIT_COMMIT")
        .ok()
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
    {
        return commit;
    }
    if env::var("PROFILE").as_deref() != Ok("release") {
        return "unknown".into();
    }
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .args(args)
            .current_dir(crate_root)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    // Only this crate's own repository counts: a copy of the sources unpacked inside some other
    // checkout (a temp dir under a repo's target/, say) must not borrow that checkout's HEAD.
    let ours = git(&["rev-parse", "--show-toplevel"])
        .and_then(|top| fs::canonicalize(top).ok())
        .is_some_and(|top| fs::canonicalize(crate_root).is_ok_and(|root| root == top));
    let commit = if ours {
        git(&["rev-parse", "HEAD"])
            .filter(|c| c.len() == 40 && c.bytes().all(|b| b.is_ascii_hexdigit()))
    } else {
        None
    };
    let Some(commit) = commit else {
        return "unknown".into();
    };
    // Rerun when HEAD moves: a checkout rewrites HEAD, a commit the branch's ref (loose, or in
    // packed-refs once packed). A path that does not exist would make cargo rerun every time.
    let mut watched = vec![git(&["rev-parse", "--git-path", "HEAD"])];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(git(&["rev-parse", "--git-path", &branch]));
    }
    watched.push(git(&["rev-parse", "--git-path", "packed-refs"]));
    for path in watched.into_iter().flatten().map(|p| crate_root.join(p)) {
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    commit
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
