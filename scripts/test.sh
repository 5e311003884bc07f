#!/usr/bin/env bash
# The one test command (README): formatting, lints, the schema drift check and every test.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
./scripts/check-manifests.sh
cargo test --locked --all-targets
