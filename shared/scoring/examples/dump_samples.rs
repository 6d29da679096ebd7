//! Print the outcome for every fixture sample (development aid).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ooni_scoring::{process, Fingerprints, Outcome};
use serde_json::value::RawValue;

#[derive(serde::Deserialize)]
struct Line<'a> {
    idx: usize,
    test_name: String,
    measurement_uid: String,
    #[serde(borrow)]
    measurement: &'a RawValue,
}

fn main() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/");
    let read = |n: &str| std::fs::read_to_string(format!("{dir}{n}")).unwrap();
    let fps = Fingerprints::from_csv(&read("fingerprints_dns.csv"), &read("fingerprints_http.csv")).unwrap();
    for l in read("samples.jsonl").lines() {
        let s: Line = serde_json::from_str(l).unwrap();
        match process(s.measurement.get().as_bytes(), &s.measurement_uid, &fps) {
            Outcome::Row { row, openvpn } => println!(
                "{} {} a={} c={} f={} bt={:?} {} {}",
                s.idx,
                s.test_name,
                row.anomaly,
                row.confirmed,
                row.msm_failure,
                row.blocking_type,
                row.scores,
                if openvpn.is_some() { "+openvpn" } else { "" }
            ),
            Outcome::Discard(r) => println!("{} {} DISCARD {}", s.idx, s.test_name, r.as_str()),
        }
    }
}
