//! `ooni`: the operator and developer CLI.
fn main() {
    println!("ooni");
}
