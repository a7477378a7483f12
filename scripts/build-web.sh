#!/usr/bin/env bash
# Builds the sandbox for the browser: the meshwork-sandbox binary for wasm32-unknown-unknown
# (dev profile: dependencies are optimised by the workspace profile, and a release build of the
# whole game takes far longer on a small machine), then wasm-bindgen into web/pkg/ (gitignored).
# Installs the wasm32 target and wasm-bindgen-cli (at exactly the Cargo.lock version) if missing.
# Usage: scripts/build-web.sh [--release]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_toolchain
ensure_wasm_bindgen

profile=debug
flags=()
if [ "${1:-}" = "--release" ]; then
    profile=release
    flags=(--release)
fi
cargo build -p meshwork-sandbox --bin meshwork-sandbox --target wasm32-unknown-unknown "${flags[@]}"
wasm="$CARGO_TARGET_DIR/wasm32-unknown-unknown/$profile/meshwork-sandbox.wasm"
rm -rf web/pkg
wasm-bindgen --target web --no-typescript --out-dir web/pkg --out-name meshwork_sandbox "$wasm"
ls -l web/pkg
