//! The public API: envelopes and legacy YAML, discards, wrong-date flags, the JSONL
//! helper, fingerprint construction, and web_connectivity rules on small measurements.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use ooni_scoring::{
    process, score_jsonl_line, score_measurement, trivial_id, DiscardReason, FingerprintRow, Fingerprints, Outcome,
};
use serde_json::{json, Value};

const UID: &str = "20240101000500.123456_IT_webconnectivity_0123456789abcdef";

fn msm(test_name: &str, test_keys: Value) -> Value {
    json!({
        "report_id": "20240101T000000Z_webconnectivity_IT_30722_n1_abcdefghijklmnop",
        "input": "https://example.org:443/path?q",
        "probe_cc": "IT",
        "probe_asn": "AS30722",
        "test_name": test_name,
        "test_start_time": "2024-01-01 00:00:00",
        "measurement_start_time": "2024-01-01 00:00:01",
        "software_name": "ooniprobe-cli",
        "software_version": "3.20.0",
        "test_version": "0.4.3",
        "test_runtime": 1.5,
        "annotations": {"platform": "linux", "architecture": "amd64", "engine_name": "ooniprobe-engine", "engine_version": "3.20.0", "ooni_run_link_id": "10042"},
        "test_helpers": {"backend": {"address": "https://th.example", "type": "https"}},
        "test_keys": test_keys,
    })
}

fn scores_of(v: &Value, fps: &Fingerprints) -> Value {
    let s = score_measurement(&serde_json::to_vec(v).unwrap(), UID, fps).unwrap();
    serde_json::from_str(s.as_json()).unwrap()
}

fn the_row(o: Outcome) -> ooni_scoring::FastpathRow {
    match o {
        Outcome::Row { row, .. } => *row,
        Outcome::Discard(r) => panic!("discarded: {r}"),
    }
}

#[test]
fn a_post_envelope_scores_like_the_bare_measurement_and_carries_is_verified() {
    let fps = common::fingerprints();
    let m = msm("web_connectivity", json!({"blocking": "dns", "accessible": false}));
    let bare = the_row(process(&serde_json::to_vec(&m).unwrap(), UID, &fps));
    let env = json!({"format": "json", "content": m, "is_verified": "t"});
    let wrapped = the_row(process(&serde_json::to_vec(&env).unwrap(), UID, &fps));
    assert_eq!(bare.is_verified, "u");
    assert_eq!(wrapped.is_verified, "t");
    assert_eq!(
        ooni_scoring::FastpathRow {
            is_verified: "u".into(),
            ..wrapped
        },
        bare
    );
    assert_eq!(bare.blocking_type, "dns");
    assert_eq!(bare.domain, "example.org:443");
    assert_eq!(bare.ooni_run_link_id, Some(10042));
    assert_eq!(
        (bare.platform.as_str(), bare.test_helper_type.as_str()),
        ("linux", "https")
    );
}

#[test]
fn legacy_yaml_content_is_normalized_to_json_and_scored() {
    let fps = Fingerprints::empty();
    let yaml =
        "report_id: abc\ninput: http://example.org\nprobe_cc: IS\nprobe_asn: AS51896\ntest_name: http_requests\n\
                test_start_time: '2015-11-05 12:29:36'\nmeasurement_start_time: '2015-11-05 12:29:36'\n\
                software_name: ooniprobe\ntest_keys:\n  body_length_match: false\n  headers_match: true\n";
    let env = json!({"format": "yaml", "content": yaml});
    let row = the_row(process(
        &serde_json::to_vec(&env).unwrap(),
        "0120151105e6e97af9dabb462dc4066ae2fd58a5",
        &fps,
    ));
    assert_eq!(
        (row.probe_asn, row.test_name.as_str(), row.anomaly.as_str()),
        (51896, "http_requests", "t")
    );
    assert_eq!(row.domain, "example.org");
    let bad = json!({"format": "yaml", "content": "- just\n- a list\n"});
    assert_eq!(
        process(&serde_json::to_vec(&bad).unwrap(), UID, &fps),
        Outcome::Discard(DiscardReason::InvalidYaml)
    );
}

#[test]
fn malformed_envelopes_are_discarded_with_their_reason() {
    let fps = Fingerprints::empty();
    for (env, reason) in [
        (
            json!({"format": "xml", "content": "<x/>"}),
            DiscardReason::UnsupportedFormat,
        ),
        (json!({"format": 1, "content": {}}), DiscardReason::InvalidEnvelope),
        (
            json!({"format": "json", "content": "text"}),
            DiscardReason::InvalidEnvelope,
        ),
        (json!({"format": "yaml", "content": {}}), DiscardReason::InvalidEnvelope),
    ] {
        assert_eq!(
            process(&serde_json::to_vec(&env).unwrap(), UID, &fps),
            Outcome::Discard(reason),
            "{env}"
        );
    }
}

#[test]
fn upstream_discard_rules_apply_in_order() {
    let fps = Fingerprints::empty();
    let run = |f: &dyn Fn(&mut Value)| {
        let mut m = msm("dash", json!({}));
        f(&mut m);
        process(&serde_json::to_vec(&m).unwrap(), UID, &fps)
    };
    let discard = |o: Outcome| match o {
        Outcome::Discard(r) => r,
        Outcome::Row { .. } => panic!("expected a discard"),
    };
    assert_eq!(
        discard(run(&|m| m["report_id"] = Value::Null)),
        DiscardReason::NoReportId
    );
    assert_eq!(
        discard(run(&|m| m["report_id"] = json!(5))),
        DiscardReason::InvalidReportId
    );
    assert_eq!(discard(run(&|m| m["probe_cc"] = json!("zz"))), DiscardReason::ProbeCcZz);
    assert_eq!(
        discard(run(&|m| m["probe_cc"] = json!(1))),
        DiscardReason::InvalidProbeCc
    );
    assert_eq!(
        discard(run(&|m| m["probe_asn"] = json!("as0"))),
        DiscardReason::ProbeAsnZero
    );
    assert_eq!(
        discard(run(&|m| m["probe_asn"] = json!("AS-5"))),
        DiscardReason::InvalidProbeAsn
    );
    assert_eq!(
        discard(run(&|m| drop(m.as_object_mut().unwrap().remove("probe_asn")))),
        DiscardReason::MissingProbeAsn
    );
    assert_eq!(
        discard(run(&|m| m["test_start_time"] = json!("yesterday"))),
        DiscardReason::InvalidTestStartTime
    );
    assert_eq!(
        discard(run(&|m| m["input"] = json!(["a", "b"]))),
        DiscardReason::InvalidInput
    );
    // every reason has a stable, distinct name
    let names: std::collections::HashSet<&str> = [
        DiscardReason::InvalidJson,
        DiscardReason::NotAnObject,
        DiscardReason::InvalidEnvelope,
        DiscardReason::UnsupportedFormat,
        DiscardReason::InvalidYaml,
        DiscardReason::NoReportId,
        DiscardReason::InvalidReportId,
        DiscardReason::ProbeCcZz,
        DiscardReason::InvalidProbeCc,
        DiscardReason::ProbeAsnZero,
        DiscardReason::MissingProbeAsn,
        DiscardReason::InvalidProbeAsn,
        DiscardReason::InvalidMeasurementStartTime,
        DiscardReason::InvalidTestStartTime,
        DiscardReason::InvalidInput,
    ]
    .iter()
    .map(|r| r.as_str())
    .collect();
    assert_eq!(names.len(), 15);
}

#[test]
fn meek_list_inputs_are_joined_and_the_first_is_the_domain() {
    let fps = Fingerprints::empty();
    let mut m = msm("meek_fronted_requests_test", json!({"requests": []}));
    m["input"] = json!(["a0.awsstatic.com", "d2.cloudfront.net"]);
    let row = the_row(process(&serde_json::to_vec(&m).unwrap(), UID, &fps));
    assert_eq!(
        (row.input.as_str(), row.domain.as_str()),
        ("{a0.awsstatic.com,d2.cloudfront.net}", "a0.awsstatic.com")
    );
    // no requests: blocked, with an integer accuracy exactly like upstream
    assert!(
        row.scores.ends_with(r#""blocking_local":0.0,"accuracy":0}"#),
        "{}",
        row.scores
    );
}

#[test]
fn start_times_far_from_the_receive_time_are_flagged() {
    let fps = Fingerprints::empty();
    let mut m = msm("dns_consistency", json!({}));
    m["measurement_start_time"] = json!("2024-01-01 01:05:01");
    let s = scores_of(&m, &fps);
    assert_eq!(
        (s["accuracy"].as_f64(), s["msg"].as_str()),
        (Some(0.0), Some("Measurement start time from the future"))
    );
    m["measurement_start_time"] = json!("2022-12-01 00:00:00");
    let s = scores_of(&m, &fps);
    assert_eq!(s["msg"], "Measurement start time too old");
    // within an hour ahead is fine; trivial ids (no receive time) are never flagged
    m["measurement_start_time"] = json!("2024-01-01 01:00:00");
    assert!(scores_of(&m, &fps).get("msg").is_none());
    m["measurement_start_time"] = json!("2000-01-01 00:00:00");
    let s = score_measurement(&serde_json::to_vec(&m).unwrap(), "0120000101aaaa", &fps).unwrap();
    assert!(!s.as_json().contains("msg"));
}

#[test]
fn the_jsonl_helper_returns_rows_with_column_names_or_discards() {
    let fps = Fingerprints::empty();
    let line = json!({"measurement_uid": UID, "measurement": msm("web_connectivity", json!({"blocking": "tcp_ip"})), "extra": 1}).to_string();
    let out: Value = serde_json::from_str(&score_jsonl_line(&line, &fps)).unwrap();
    assert_eq!(out["measurement_uid"], UID);
    assert_eq!(out["probe_asn"], 30722);
    assert_eq!(out["test_start_time"], "2024-01-01 00:00:00");
    assert_eq!(out["anomaly"], "t");
    assert!(out["scores"]
        .as_str()
        .unwrap()
        .contains(r#""analysis":{"blocking_type":"tcp_ip"}"#));
    assert_eq!(out.as_object().unwrap().len(), 26);

    let line = json!({"measurement_uid": "u1", "measurement": {"probe_cc": "ZZ", "report_id": "r"}}).to_string();
    assert_eq!(
        score_jsonl_line(&line, &fps),
        r#"{"discarded":"probe_cc_zz","measurement_uid":"u1"}"#
    );
    let out: Value = serde_json::from_str(&score_jsonl_line("not json", &fps)).unwrap();
    assert_eq!(out["discarded"], "invalid_line");
}

#[test]
fn fingerprints_from_rows_behave_like_from_csv() {
    let dns_csv = common::fixture("fingerprints_dns.csv");
    let http_csv = common::fixture("fingerprints_http.csv");
    let from_csv = Fingerprints::from_csv(&dns_csv, &http_csv).unwrap();
    let rows = |text: &str| -> Vec<FingerprintRow> {
        csv::Reader::from_reader(text.as_bytes())
            .deserialize()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let from_rows = Fingerprints::from_rows(rows(&dns_csv), rows(&http_csv)).unwrap();
    assert_eq!(from_csv.http().len(), 1729);
    assert_eq!(from_csv.dns().len(), 226);
    let names = |f: &Fingerprints| f.http().iter().map(|x| x.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&from_csv), names(&from_rows));
    // table order: byte length of the name, then the name
    let n = names(&from_csv);
    assert!(n.windows(2).all(|w| (w[0].len(), &w[0]) < (w[1].len(), &w[1])));
    let bad = "name,scope,other_names,location_found,pattern_type,pattern,confidence_no_fp,expected_countries,source,exp_url,notes\nx,isp,,dns,full,1.2.3.4,300,,,,\n";
    assert!(Fingerprints::from_csv(bad, "").is_err());
}

fn fp(name: &str, scope: &str, loc: &str, ptype: &str, pattern: &str, cc: &str) -> FingerprintRow {
    FingerprintRow {
        name: name.into(),
        scope: scope.into(),
        location_found: loc.into(),
        pattern_type: ptype.into(),
        pattern: pattern.into(),
        confidence_no_fp: 5,
        expected_countries: cc.into(),
        ..Default::default()
    }
}

#[test]
fn header_fingerprints_match_full_and_prefix_including_base64_values_and_ignore_contains() {
    let fps = Fingerprints::from_rows(
        vec![],
        vec![
            fp(
                "h.prefix",
                "isp",
                "header.location",
                "prefix",
                "http://blocked.example/",
                "",
            ),
            fp("h.full", "inst", "header.server", "full", "BlockServer", "it"),
            fp("h.contains", "isp", "header.server", "contains", "Block", ""),
            fp("b.regexp", "vbw", "body", "regexp", "blocked.*page", "IT"),
        ],
    )
    .unwrap();
    let b64 = "aHR0cDovL2Jsb2NrZWQuZXhhbXBsZS94"; // "http://blocked.example/x"
    let m = msm(
        "web_connectivity",
        json!({"blocking": false, "accessible": true, "requests": [
            {"response": {"headers": {"LOCATION": {"format": "base64", "data": b64}, "Server": "BlockServer"}, "body": "see blocked.*page here"}},
        ]}),
    );
    let s = scores_of(&m, &fps);
    let names: Vec<&str> = s["fingerprints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    // body matches first, then header matches, each in table order
    assert_eq!(names, ["b.regexp", "h.full", "h.prefix"]);
    // vbw with the probe's country: confirmed as general blocking; isp: confirmed; inst: local
    assert_eq!(
        (s["blocking_isp"].as_f64(), s["blocking_local"].as_f64()),
        (Some(1.0), Some(1.0))
    );
    assert_eq!(s["confirmed"], true);
    assert_eq!(s["blocking_general"].as_f64(), Some(3.0));
    // an undecodable base64 body: no matches and accuracy 0
    let m = msm(
        "web_connectivity",
        json!({"blocking": false, "requests": [{"response": {"body": {"format": "base64", "data": "abc"}}}]}),
    );
    let s = scores_of(&m, &fps);
    assert_eq!(s["accuracy"], 0.0);
    assert!(s.get("fingerprints").is_none());
}

#[test]
fn web_connectivity_rules_for_title_match_blocking_unknown_failure_and_accessible() {
    let fps = Fingerprints::empty();
    let s = |tk: Value| scores_of(&msm("web_connectivity", tk), &fps);
    assert_eq!(s(json!({"title_match": "yes", "blocking": "dns"}))["accuracy"], 0.0);
    assert!(s(json!({"title_match": "yes", "blocking": "dns"}))
        .get("analysis")
        .is_none());
    let v = s(json!({"blocking": "weird"}));
    assert_eq!(
        (v["analysis"]["msg"].as_str(), v["accuracy"].as_f64()),
        (Some("Unsupported blocking type"), Some(0.0))
    );
    assert_eq!(s(json!({"blocking": null}))["accuracy"], 0.0);
    assert!(s(json!({"blocking": false})).get("accuracy").is_none());
    assert_eq!(
        s(json!({"blocking": false, "dns_experiment_failure": "unknown_failure: x"}))["accuracy"],
        0.0
    );
    assert_eq!(s(json!({"blocking": false, "accessible": null}))["accuracy"], 0.0);
    assert!(s(json!({"blocking": false, "accessible": false}))
        .get("accuracy")
        .is_none());
}

#[test]
fn signal_applies_version_and_date_rules() {
    let fps = Fingerprints::empty();
    let mut m = msm(
        "signal",
        json!({"failed_operation": null, "failure": null, "signal_backend_status": "blocked", "signal_backend_failure": "x"}),
    );
    m["test_version"] = json!("0.2.5");
    m["measurement_start_time"] = json!("2024-01-01 00:00:00");
    let s = scores_of(&m, &fps);
    assert_eq!((s["blocking_general"].as_f64(), s.get("accuracy")), (Some(1.0), None));
    m["test_version"] = json!("0.2.4");
    assert_eq!(scores_of(&m, &fps)["accuracy"], 0.0);
    m["test_version"] = json!("0.2.3");
    assert_eq!(scores_of(&m, &fps)["accuracy"], 0.0);
    m["test_version"] = json!("0.2.5");
    m["annotations"]["engine_version"] = json!("3.17.1");
    assert_eq!(scores_of(&m, &fps)["accuracy"], 0.0);
    m["annotations"]["engine_version"] = json!("3.18.0-alpha");
    assert!(scores_of(&m, &fps).get("accuracy").is_none());
}

#[test]
fn trivial_ids_follow_upstream() {
    assert_eq!(
        trivial_id(b"", Some("2021-02-03 10:11:12")),
        "01202102037f9c2ba4e88f827d61604550760585"
    );
    assert_eq!(trivial_id(b"", Some("not a date")).len(), 40);
}
