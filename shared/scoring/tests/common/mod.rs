//! Shared fixture loading for the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use ooni_scoring::Fingerprints;
use serde_json::value::RawValue;
use std::path::PathBuf;

pub fn fixture(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

pub fn fingerprints() -> Fingerprints {
    Fingerprints::from_csv(&fixture("fingerprints_dns.csv"), &fixture("fingerprints_http.csv")).unwrap()
}

#[derive(serde::Deserialize)]
pub struct SampleLine<'a> {
    pub idx: usize,
    pub source: String,
    pub test_name: String,
    pub measurement_uid: String,
    #[serde(borrow)]
    pub measurement: &'a RawValue,
}

pub struct Sample {
    pub idx: usize,
    pub source: String,
    pub test_name: String,
    pub measurement_uid: String,
    /// The measurement's exact JSON text.
    pub raw: String,
}

pub fn samples() -> Vec<Sample> {
    fixture("samples.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let s: SampleLine = serde_json::from_str(l).unwrap();
            Sample {
                idx: s.idx,
                source: s.source,
                test_name: s.test_name,
                measurement_uid: s.measurement_uid,
                raw: s.measurement.get().to_owned(),
            }
        })
        .collect()
}
