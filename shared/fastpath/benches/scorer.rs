//! Scorer throughput benchmark (work in progress).
fn main() {}
