//! Embeds the token and world contracts built by `scripts/build-contracts.sh`. When they are not
//! built yet the embedded bytes are empty and the game says so at start (so `cargo check` works
//! on a fresh clone).
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let built = manifest.join("../../contracts/target/wasm");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    for name in ["token", "world"] {
        let src = built.join(format!("{name}.wasm"));
        println!("cargo:rerun-if-changed={}", src.display());
        let bytes = std::fs::read(&src).unwrap_or_default();
        std::fs::write(out.join(format!("{name}.wasm")), bytes).expect("OUT_DIR is writable");
    }
}
