//! Probe-services benchmarks (placeholder while the crate is written).
fn main() {}
