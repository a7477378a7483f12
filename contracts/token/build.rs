//! Keeps the wasm shadow stack small: every call instantiates afresh and pays per initial page.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo::rustc-link-arg=-zstack-size=32768");
    }
}
