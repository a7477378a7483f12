#!/usr/bin/env bash
# Builds the contracts in contracts/ from source for wasm32-unknown-unknown, reproducibly, and
# copies them to contracts/target/wasm/{token,counter,world}.wasm, where the tests and the
# benchmark load them (tests pin each file's sha256). Also builds the contract host itself for
# wasm32 (contracts/target/wasm/host_node.wasm), which the determinism test runs under Node.
#
# Usage: scripts/build-contracts.sh [--no-host]
#
# Reproducibility: no dependencies outside contracts/; profile pinned in contracts/Cargo.toml
# (opt-level 3, fat LTO, 1 codegen unit, panic=abort, stripped); source paths remapped so the
# checkout location does not leak into the bytes; the toolchain is the one the repo pins (1.95).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/contracts/target/wasm"
target_dir="${MESHWORK_CONTRACTS_TARGET_DIR:-$HOME/.cache/meshwork-contracts-target}"
mkdir -p "$out"
rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$' \
    || rustup target add wasm32-unknown-unknown

cd "$root/contracts"
echo "==> contracts (wasm32-unknown-unknown, release)"
RUSTFLAGS="--remap-path-prefix=$root=/meshwork --remap-path-prefix=$HOME=/home" \
CARGO_TARGET_DIR="$target_dir/guest" \
    cargo build --release --target wasm32-unknown-unknown \
    -p meshwork-contract-token -p meshwork-contract-counter -p meshwork-contract-world
for c in token counter world; do
    cp "$target_dir/guest/wasm32-unknown-unknown/release/meshwork_contract_$c.wasm" "$out/$c.wasm"
done

if [ "${1:-}" != "--no-host" ]; then
    echo "==> contract host (wasm32-unknown-unknown, for the Node determinism test)"
    CARGO_TARGET_DIR="$target_dir/host" \
        cargo build --profile host --target wasm32-unknown-unknown -p meshwork-contract-host-node
    cp "$target_dir/host/wasm32-unknown-unknown/host/meshwork_contract_host_node.wasm" "$out/host_node.wasm"
fi

cd "$out"
sha256sum ./*.wasm
