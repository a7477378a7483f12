//! The contract host compiled to wasm32-unknown-unknown, for the determinism test: it runs the
//! world scenario of `tests/it/contract/world_scenario.rs` (the same file the native test runs)
//! with the contracts embedded from `contracts/target/wasm/`, and returns the outcome bytes.
//! Driven by `tests/it/contract/run_host.mjs`; built by `scripts/build-contracts.sh`.

#[path = "../../../tests/it/contract/world_scenario.rs"]
#[allow(dead_code, missing_docs)]
mod world_scenario;

static TOKEN: &[u8] = include_bytes!("../../target/wasm/token.wasm");
static WORLD: &[u8] = include_bytes!("../../target/wasm/world.wasm");

static mut OUT: [u8; 76] = [0; 76];

/// Runs `count` random world inputs from `seed`; returns a pointer to the 76-byte outcome.
#[unsafe(no_mangle)]
pub extern "C" fn mw_run_world(seed: u64, count: u64) -> *const u8 {
    let outcome = world_scenario::run(TOKEN, WORLD, seed, count, None);
    let bytes = outcome.to_bytes();
    // Single-threaded wasm; the buffer is read by the caller before the next call.
    unsafe {
        let out = &raw mut OUT;
        (*out).copy_from_slice(&bytes);
        out as *const u8
    }
}
