//! Parity with the upstream fastpath: every field of every row upstream produced
//! for the 46 samples taken from its own test fixtures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use ooni_scoring::{process, score_measurement, Outcome};
use serde_json::Value;

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

#[test]
fn every_upstream_row_is_reproduced_field_by_field() {
    let fps = common::fingerprints();
    let samples = common::samples();
    let expected: Vec<Value> = common::fixture("expected-public.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(expected.len(), 46);
    let mut mismatches: Vec<String> = Vec::new();
    let mut exact = 0;
    for e in &expected {
        let idx = e["idx"].as_u64().unwrap() as usize;
        let sample = &samples[idx];
        assert_eq!(sample.idx, idx);
        let uid = e["msmt_uid"].as_str().unwrap();
        assert_eq!(uid, sample.measurement_uid);
        let before = mismatches.len();
        let mut diff = |field: &str, ours: String, theirs: String| {
            if ours != theirs {
                mismatches.push(format!(
                    "idx {idx} ({}) {field}: ours {ours:?} upstream {theirs:?}",
                    sample.test_name
                ));
            }
        };

        // scores alone (also for measurements upstream did not write)
        let scores = score_measurement(sample.raw.as_bytes(), uid, &fps).unwrap();
        let ours_scores: Value = serde_json::from_str(scores.as_json()).unwrap();
        diff("scores(object)", ours_scores.to_string(), e["scores"].to_string());

        let outcome = process(sample.raw.as_bytes(), uid, &fps);
        if !e["written"].as_bool().unwrap() {
            match outcome {
                Outcome::Discard(reason) => {
                    // upstream lost it with an exception while building the row
                    diff("discard", reason.as_str().to_owned(), "missing_probe_asn".to_owned());
                    assert!(e["process_exception"].as_str().unwrap().contains("probe_asn"));
                }
                Outcome::Row { .. } => diff("written", "row".into(), "no row".into()),
            }
        } else {
            let Outcome::Row { row, openvpn } = outcome else {
                diff("written", format!("{outcome:?}"), "row".into());
                continue;
            };
            let x = &e["row"];
            diff("measurement_uid", row.measurement_uid.clone(), s(&x["measurement_uid"]));
            diff("report_id", row.report_id.clone(), s(&x["report_id"]));
            diff("input", row.input.clone(), s(&x["input"]));
            diff("probe_cc", row.probe_cc.clone(), s(&x["probe_cc"]));
            diff("probe_asn", row.probe_asn.to_string(), x["probe_asn"].to_string());
            diff("test_name", row.test_name.clone(), s(&x["test_name"]));
            diff(
                "test_start_time",
                row.test_start_time.format("%Y-%m-%d %H:%M:%S").to_string(),
                s(&x["test_start_time"]),
            );
            diff(
                "measurement_start_time",
                row.measurement_start_time.format("%Y-%m-%d %H:%M:%S").to_string(),
                s(&x["measurement_start_time"]),
            );
            diff("scores(bytes)", row.scores.clone(), s(&x["scores"]));
            diff("platform", row.platform.clone(), s(&x["platform"]));
            diff("anomaly", row.anomaly.clone(), s(&x["anomaly"]));
            diff("anomaly(flag)", row.anomaly.clone(), s(&e["anomaly"]));
            diff("confirmed", row.confirmed.clone(), s(&x["confirmed"]));
            diff("confirmed(flag)", row.confirmed.clone(), s(&e["confirmed"]));
            diff("msm_failure", row.msm_failure.clone(), s(&x["msm_failure"]));
            diff("msm_failure(flag)", row.msm_failure.clone(), s(&e["msm_failure"]));
            diff("blocking_type", row.blocking_type.clone(), s(&x["blocking_type"]));
            diff("domain", row.domain.clone(), s(&x["domain"]));
            diff("software_name", row.software_name.clone(), s(&x["software_name"]));
            diff(
                "software_version",
                row.software_version.clone(),
                s(&x["software_version"]),
            );
            diff("test_version", row.test_version.clone(), s(&x["test_version"]));
            // the column is Float32
            diff(
                "test_runtime",
                row.test_runtime.to_string(),
                (x["test_runtime"].as_f64().unwrap() as f32).to_string(),
            );
            diff("architecture", row.architecture.clone(), s(&x["architecture"]));
            diff("engine_name", row.engine_name.clone(), s(&x["engine_name"]));
            diff("engine_version", row.engine_version.clone(), s(&x["engine_version"]));
            diff(
                "test_helper_address",
                row.test_helper_address.clone(),
                s(&x["test_helper_address"]),
            );
            diff(
                "test_helper_type",
                row.test_helper_type.clone(),
                s(&x["test_helper_type"]),
            );
            diff(
                "ooni_run_link_id",
                format!("{:?}", row.ooni_run_link_id),
                format!("{:?}", x["ooni_run_link_id"].as_u64()),
            );
            diff("is_verified", row.is_verified.clone(), s(&x["is_verified"]));
            // and the row serializes with exactly upstream's column set
            let ours: Value = serde_json::to_value(&*row).unwrap();
            let mut our_keys: Vec<&String> = ours.as_object().unwrap().keys().collect();
            let mut their_keys: Vec<&String> = x.as_object().unwrap().keys().collect();
            our_keys.sort();
            their_keys.sort();
            diff("row columns", format!("{our_keys:?}"), format!("{their_keys:?}"));

            match (&openvpn, e["openvpn_obs_row"].as_object()) {
                (None, None) => {}
                (Some(ours), Some(theirs)) => {
                    let ours = serde_json::to_value(&**ours).unwrap();
                    let ours = ours.as_object().unwrap();
                    let mut ok = ours.len() == theirs.len();
                    for (k, tv) in theirs {
                        let ov = &ours[k];
                        let same = match (ov.as_f64(), tv.as_f64()) {
                            (Some(a), Some(b)) if tv.is_f64() || ov.is_f64() => a as f32 == b as f32,
                            _ => ov == tv,
                        };
                        if !same {
                            ok = false;
                            diff(&format!("obs_openvpn.{k}"), ov.to_string(), tv.to_string());
                        }
                    }
                    if !ok && ours.len() != theirs.len() {
                        diff("obs_openvpn columns", ours.len().to_string(), theirs.len().to_string());
                    }
                }
                (o, t) => diff(
                    "obs_openvpn presence",
                    format!("{}", o.is_some()),
                    format!("{}", t.is_some()),
                ),
            }
        }
        if mismatches.len() == before {
            exact += 1;
        }
    }
    assert!(
        mismatches.is_empty(),
        "{exact}/46 exact; mismatches:\n{}",
        mismatches.join("\n")
    );
    assert_eq!(exact, 46);
}
