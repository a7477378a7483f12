//! Real-link benchmark (placeholder while it is being written).
fn main() {}
