//! Every one of the 173 sample measurements is processed without panicking, the
//! row flags always follow from the scores, and the test types upstream published no
//! output for score as the upstream rules dictate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use ooni_scoring::{process, DiscardReason, FastpathRow, Outcome};
use serde_json::Value;
use std::collections::HashMap;

fn outcomes() -> HashMap<usize, (String, Outcome)> {
    let fps = common::fingerprints();
    common::samples()
        .into_iter()
        .map(|s| {
            (
                s.idx,
                (s.test_name.clone(), process(s.raw.as_bytes(), &s.measurement_uid, &fps)),
            )
        })
        .collect()
}

fn row(o: &HashMap<usize, (String, Outcome)>, idx: usize) -> (FastpathRow, Value) {
    match &o[&idx].1 {
        Outcome::Row { row, .. } => ((**row).clone(), serde_json::from_str(&row.scores).unwrap()),
        other => panic!("idx {idx}: expected a row, got {other:?}"),
    }
}

fn tf(b: bool) -> &'static str {
    if b {
        "t"
    } else {
        "f"
    }
}

#[test]
fn all_samples_process_and_flags_follow_from_scores() {
    let o = outcomes();
    assert_eq!(o.len(), 173);
    let mut rows = 0;
    for (idx, (test_name, outcome)) in &o {
        let Outcome::Row { row, openvpn } = outcome else {
            continue;
        };
        rows += 1;
        let scores: Value = serde_json::from_str(&row.scores).unwrap();
        let obj = scores.as_object().unwrap();
        if matches!(test_name.as_str(), "ndt" | "riseupvpn") {
            assert_eq!(row.scores, "{}", "idx {idx}");
        } else {
            // insertion order: the five blocking keys come first, in this order
            assert!(row.scores.starts_with(r#"{"blocking_general":"#), "idx {idx}");
            let pos: Vec<usize> = [
                "\"blocking_general\"",
                "\"blocking_global\"",
                "\"blocking_country\"",
                "\"blocking_isp\"",
                "\"blocking_local\"",
            ]
            .iter()
            .map(|k| row.scores.find(k).unwrap())
            .collect();
            assert!(pos.windows(2).all(|w| w[0] < w[1]), "idx {idx}");
            assert!(obj.len() >= 5);
        }
        let num = |k: &str, d: f64| obj.get(k).and_then(Value::as_f64).unwrap_or(d);
        assert_eq!(row.anomaly, tf(num("blocking_general", 0.0) > 0.5), "idx {idx}");
        assert_eq!(row.msm_failure, tf(num("accuracy", 1.0) < 0.5), "idx {idx}");
        assert_eq!(
            row.confirmed,
            tf(obj.get("confirmed") == Some(&Value::Bool(true))),
            "idx {idx}"
        );
        let bt = scores
            .pointer("/analysis/blocking_type")
            .and_then(Value::as_str)
            .unwrap_or("");
        assert_eq!(row.blocking_type, bt, "idx {idx}");
        assert_eq!(row.test_name, *test_name, "idx {idx}");
        assert_eq!(openvpn.is_some(), test_name == "openvpn", "idx {idx}");
        if obj.get("accuracy").and_then(Value::as_f64) == Some(0.0) {
            assert_eq!(row.msm_failure, "t");
        }
    }
    assert!(rows >= 160, "only {rows} rows");
}

#[test]
fn measurements_upstream_would_drop_are_discarded_with_a_reason() {
    let o = outcomes();
    let reason = |idx: usize| match &o[&idx].1 {
        Outcome::Discard(r) => *r,
        other => panic!("idx {idx}: expected a discard, got {other:?}"),
    };
    // spec example without report_id (and ZZ/AS0)
    assert_eq!(reason(49), DiscardReason::NoReportId);
    assert_eq!(reason(56), DiscardReason::NoReportId);
    // probe_asn AS0
    assert_eq!(reason(54), DiscardReason::ProbeAsnZero);
    // probe_cc ZZ
    assert_eq!(reason(172), DiscardReason::ProbeCcZz);
    // spec examples without measurement_start_time: upstream's row builder raises KeyError
    for idx in [53, 55, 57, 58, 59] {
        assert_eq!(reason(idx), DiscardReason::InvalidMeasurementStartTime, "idx {idx}");
    }
    // meek3 has no probe_asn (upstream: KeyError 'probe_asn')
    assert_eq!(reason(16), DiscardReason::MissingProbeAsn);
}

#[test]
fn test_names_without_a_scorer_are_flagged_as_failures() {
    let o = outcomes();
    for (idx, name) in [
        (61, "openvpn_client_test"),
        (70, "sni_blocking"),
        (71, "stun_reachability"),
        (72, "urlgetter"),
        (73, "dnscheck"),
        (76, "quicping"),
        (77, "tcpping"),
        (78, "tlsping"),
        (79, "simplequicping"),
        (80, "dnsping"),
        (82, "tlsmiddlebox"),
        (83, "portfiltering"),
        (84, "echcheck"),
    ] {
        let (r, s) = row(&o, idx);
        assert_eq!(r.test_name, name);
        assert_eq!(s["accuracy"], Value::from(0.0), "idx {idx}");
        assert_eq!(s["blocking_general"], Value::from(0.0), "idx {idx}");
        assert_eq!(r.msm_failure, "t", "idx {idx}");
        assert_eq!(r.anomaly, "f", "idx {idx}");
    }
}

#[test]
fn published_rules_give_the_expected_scores_for_unpublished_samples() {
    let o = outcomes();
    // ndt: an empty scores object, never an anomaly or a failure
    for idx in [68, 88, 105] {
        let (r, _) = row(&o, idx);
        assert_eq!(
            (r.scores.as_str(), r.anomaly.as_str(), r.msm_failure.as_str()),
            ("{}", "f", "f")
        );
    }
    // telegram with no tcp_connect and no requests: 0.5 + 0.5
    let (_, s) = row(&o, 52);
    assert_eq!(s["blocking_general"], Value::from(1.0));
    // telegram: 2 of 16 endpoints unreachable, web blocked: 0.125 + 0 + 1
    let (r, s) = row(&o, 100);
    assert_eq!(s["blocking_general"], Value::from(1.125));
    assert_eq!(s["msg"], Value::from("failure: generic_timeout_error"));
    assert_eq!(r.anomaly, "t");
    // tor: blocked / (blocked + success)
    let (_, s) = row(&o, 111);
    assert_eq!(s["blocking_general"].as_f64().unwrap(), 13.0 / 35.0);
    // psiphon failure: blocked with accuracy 1.0, bootstrap_time echoed as given
    let (r, s) = row(&o, 98);
    assert_eq!(
        (s["blocking_general"].as_f64(), s["accuracy"].as_f64()),
        (Some(1.0), Some(1.0))
    );
    assert!(r
        .scores
        .ends_with(r#""extra":{"test_runtime":60.017031124,"bootstrap_time":0}}"#));
    // signal blocked: analysis carries the backend failure
    let (_, s) = row(&o, 97);
    assert_eq!(
        s["analysis"]["signal_backend_failure"],
        Value::from("dns_nxdomain_error")
    );
    // facebook messenger: 0.5 per inconsistent key, offending keys copied
    let (_, s) = row(&o, 93);
    assert_eq!(s["blocking_general"], Value::from(4.0));
    assert_eq!(s["facebook_b_api_dns_consistent"], Value::Bool(false));
    // web_connectivity: a confirmed national fingerprint doubles blocking_general
    for idx in [91, 123] {
        let (r, s) = row(&o, idx);
        assert_eq!(
            (r.confirmed.as_str(), s["blocking_general"].as_f64()),
            ("t", Some(2.0)),
            "idx {idx}"
        );
    }
    // fp-scope fingerprints are listed but change no score
    for idx in [119, 166, 168, 169] {
        let (r, s) = row(&o, idx);
        assert!(
            s["fingerprints"].as_array().unwrap().iter().all(|f| f["scope"] == "fp"),
            "idx {idx}"
        );
        assert_eq!(
            (r.confirmed.as_str(), s["blocking_general"].as_f64()),
            ("f", Some(0.0)),
            "idx {idx}"
        );
    }
    // the same DNS fingerprint is listed once per matching answer
    let (_, s) = row(&o, 138);
    let names: Vec<&str> = s["fingerprints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(names.len() >= 2 && names.iter().all(|n| *n == "cl.dns_br_localhost"));
    // the probe's own blocking verdict
    for (idx, bt) in [(116, "dns"), (131, "http-failure"), (155, "tcp_ip"), (92, "http-diff")] {
        let (r, _) = row(&o, idx);
        assert_eq!(r.blocking_type, bt, "idx {idx}");
    }
    // openvpn with probe_asn "AS0001" is AS1, and gets an obs_openvpn row
    match &o[&85].1 {
        Outcome::Row { row, openvpn: Some(ov) } => {
            assert_eq!(row.probe_asn, 1);
            assert_eq!(ov.probe_asn, 1);
            assert_eq!(ov.measurement_uid, row.measurement_uid);
        }
        other => panic!("openvpn: {other:?}"),
    }
    // vanilla_tor stuck bootstrapping: 1 - progress * 0.004
    let (_, s) = row(&o, 46);
    assert_eq!(s["blocking_general"], Value::from(0.98));
}
