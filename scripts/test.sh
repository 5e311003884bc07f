#!/usr/bin/env bash
# The one test command (README): formatting, lints, the schema drift check and every test.
set -euo pipefail
cd "$(dirname "$0")/.."
# A failing test's message must stay in view in a CI log, not scroll away under a backtrace.
export RUST_BACKTRACE=0
# A clean checkout gains nothing from incremental artifacts (4 GB of them), and CI disks are finite.
export CARGO_INCREMENTAL=0
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
./scripts/check-manifests.sh
# The Backstage plugin: its persisted-operations manifest matches its documents, its types, its
# unit tests (its end-to-end test in a real Backstage app is one of the cargo tests below).
( cd plugins/backstage
  node plugin/scripts/manifest.mjs --check
  npm run --silent typecheck
  CI=true npm test --silent )
cargo test --locked --all-targets
