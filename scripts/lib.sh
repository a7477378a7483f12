# Shared by scripts/demo and scripts/test. Keeps the cargo target directory outside the clone so
# that repeated runs (and CI on fresh clones) reuse compiled dependencies.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/meshwork-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() {
    local name=$1
    shift
    echo "==> $name: $*"
    local start=$SECONDS
    "$@"
    echo "<== $name ok ($((SECONDS - start)) s)"
}

ensure_toolchain() {
    command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup first" >&2; exit 1; }
    rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
    rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
    rustup target list --installed | grep -q '^wasm32-unknown-unknown$' || rustup target add wasm32-unknown-unknown
}

# Short fuzz runs of every target (cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP enables them
# on the stable toolchain this machine has).
fuzz_smoke() {
    local seconds=$1
    [ -d plugin/fuzz ] || return 0
    command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
    local targets
    targets=$(cd plugin/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz list)
    for t in $targets; do
        step "fuzz $t" bash -c "cd plugin/fuzz && RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=\$HOME/.cache/meshwork-fuzz-target cargo fuzz run $t -- -max_total_time=$seconds -rss_limit_mb=2048"
    done
}

# wasm-bindgen-cli at exactly the version of the wasm-bindgen crate in Cargo.lock (the two must
# match byte for byte in their schema), installed with cargo if missing or different.
ensure_wasm_bindgen() {
    local want
    want=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"$/\1/p')
    if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$want" ]; then
        # Its own lock file may name a dependency version the registry no longer offers; then
        # resolve afresh (the CLI's version, which is what must match, stays exact).
        cargo install wasm-bindgen-cli --version "=$want" --locked ||
            cargo install wasm-bindgen-cli --version "=$want"
    fi
}

# Chromium and its driver (Debian packages), installed if missing.
ensure_chromium() {
    if ! command -v chromium >/dev/null; then
        local sudo=""
        [ "$(id -u)" = 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        $sudo apt-get install -y -qq chromium chromium-driver
    fi
}

# Chromium and its driver (Debian packages) and playwright-core (npm, in web/tests) for the
# browser test. Never downloads a browser through playwright: it drives /usr/bin/chromium.
ensure_browser_test_deps() {
    ensure_chromium
    if [ ! -d web/tests/node_modules/playwright-core ]; then
        (cd web/tests && npm install --no-audit --no-fund --silent)
    fi
}

# The browser test (web/tests): the node (built alone: with --workspace the sandbox's `window`
# feature would be unified into it and pull a native renderer into the build), the sandbox's
# browser build in web/pkg, two Chromium tabs. Screenshots go to test-artifacts/web (printed).
browser_test() {
    ensure_browser_test_deps
    cargo build -p meshwork-node --bin meshwork
    MESHWORK_BIN="$CARGO_TARGET_DIR/debug/meshwork" node web/tests/sandbox.test.mjs
}
