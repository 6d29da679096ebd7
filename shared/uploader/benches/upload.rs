//! Uploader benchmark (placeholder).
fn main() {}
