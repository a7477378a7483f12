//! Contract host benchmark (filled in below).
fn main() {}
