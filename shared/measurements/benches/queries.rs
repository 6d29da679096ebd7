//! Benchmark of the five typical Explorer queries (filled in below).
fn main() {}
