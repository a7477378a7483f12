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
