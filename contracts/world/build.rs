//! Keeps the wasm shadow stack small: every call runs in a fresh (or reset) instance and pays
//! per initial page. Exports `__stack_pointer`, the one mutable global rustc emits, so that every
//! mutable global is exported and the host may reset and reuse instances instead of
//! instantiating per call (see "Instance reuse" in `meshwork::proto::contract`).
fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo::rustc-link-arg=-zstack-size=32768");
        println!("cargo::rustc-link-arg=--export=__stack_pointer");
    }
}
