//! No input may panic or take super-linear time: huge bodies, deep nesting, thousands
//! of requests, truncated and type-confused measurements all end as a row flagged as a
//! failure or as a discard with a reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use ooni_scoring::{process, score_measurement, DiscardReason, Fingerprints, Outcome};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const UID: &str = "20240101000000.000000_IT_webconnectivity_0123456789abcdef";

fn wc(test_keys: Value) -> Value {
    json!({
        "report_id": "20240101T000000Z_webconnectivity_IT_30722_n1_abcdefghijklmnop",
        "input": "http://example.org/",
        "probe_cc": "IT",
        "probe_asn": "AS30722",
        "test_name": "web_connectivity",
        "test_start_time": "2024-01-01 00:00:00",
        "measurement_start_time": "2024-01-01 00:00:00",
        "test_keys": test_keys,
    })
}

fn row_scores(o: &Outcome) -> Value {
    match o {
        Outcome::Row { row, .. } => serde_json::from_str(&row.scores).unwrap(),
        Outcome::Discard(r) => panic!("unexpected discard {r}"),
    }
}

#[test]
fn a_ten_mebibyte_body_is_scored_and_a_pattern_at_its_end_is_found() {
    let fps = common::fingerprints();
    // escapes everywhere, a known national blockpage pattern at the very end
    let mut body = "<p class=\"x\">\n\u{e9}\t".repeat(10 * 1024 * 1024 / 20);
    body.push_str("GdF Stop Page");
    let msm = wc(json!({"blocking": false, "accessible": true, "requests": [{"response": {"body": body}}]}));
    let raw = serde_json::to_vec(&msm).unwrap();
    assert!(raw.len() > 10 * 1024 * 1024);
    let t = Instant::now();
    let o = process(&raw, UID, &fps);
    let elapsed = t.elapsed();
    let s = row_scores(&o);
    assert_eq!(s["fingerprints"][0]["name"], "ooni.it_0");
    assert_eq!(s["confirmed"], true);
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
}

#[test]
fn a_ten_mebibyte_body_of_near_misses_is_searched_in_linear_time() {
    let fps = common::fingerprints();
    // every pattern minus its last byte, over and over: the sampled search finds its grams
    // everywhere and compares the patterns registered with them, every time in vain
    let near: String = [
        "GdF Stop Page",
        "<title>WEBSITE BLOCKED</title>",
        "Access Denied",
        "Not found",
        "redirect",
        "BUSY",
    ]
    .iter()
    .map(|p| &p[..p.len() - 1])
    .collect::<Vec<_>>()
    .join(" ");
    let mut body = near.repeat(10 * 1024 * 1024 / near.len());
    body.push_str("GdF Stop Page");
    let msm = wc(json!({"blocking": false, "accessible": true, "requests": [{"response": {"body": body}}]}));
    let raw = serde_json::to_vec(&msm).unwrap();
    let t = Instant::now();
    let o = process(&raw, UID, &fps);
    let elapsed = t.elapsed();
    let s = row_scores(&o);
    assert_eq!(s["fingerprints"][0]["name"], "ooni.it_0");
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
}

#[test]
fn deep_nesting_is_rejected_without_overflowing_the_stack() {
    let fps = common::fingerprints();
    for depth in [200usize, 100_000] {
        let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        // at the top level
        assert!(matches!(
            process(nested.as_bytes(), UID, &fps),
            Outcome::Discard(DiscardReason::InvalidJson | DiscardReason::NotAnObject)
        ));
        // inside a field nobody reads, and inside a body
        for tk in [
            format!(r#"{{"blocking": false, "unread": {nested}}}"#),
            format!(r#"{{"requests": [{{"response": {{"body": {nested}}}}}]}}"#),
        ] {
            let raw = serde_json::to_string(&wc(json!(null)))
                .unwrap()
                .replace("\"test_keys\":null", &format!("\"test_keys\":{tk}"));
            match process(raw.as_bytes(), UID, &fps) {
                // serde_json's recursion limit, or skipped without recursion
                Outcome::Discard(DiscardReason::InvalidJson) => {}
                Outcome::Row { row, .. } => assert!(row.report_id.starts_with("2024")),
                other => panic!("depth {depth}: {other:?}"),
            }
        }
    }
}

#[test]
fn thousands_of_requests_and_answers_scale_linearly() {
    let fps = common::fingerprints();
    let build = |n: usize| {
        let requests: Vec<Value> = (0..n)
            .map(|i| json!({"request": {"url": format!("http://x/{i}")}, "response": {"body": format!("<html>page {i} body text</html>"), "headers": {"Server": "nginx", "Location": "http://elsewhere/"}}}))
            .collect();
        let queries: Vec<Value> = (0..n)
            .map(|_| json!({"answers": [{"ipv4": "10.10.34.36"}, {"hostname": "x.org"}]}))
            .collect();
        serde_json::to_vec(&wc(
            json!({"blocking": "dns", "requests": requests, "queries": queries}),
        ))
        .unwrap()
    };
    let time = |raw: &[u8]| {
        let t = Instant::now();
        let o = process(raw, UID, &fps);
        (t.elapsed(), o)
    };
    let small = build(2_000);
    let large = build(16_000);
    let (t_small, _) = time(&small);
    let (t_large, o) = time(&large);
    let s = row_scores(&o);
    // one IR DNS fingerprint match per answer, in order
    assert_eq!(s["fingerprints"].as_array().unwrap().len(), 16_000);
    // 8x the input must not cost much more than 8x the time (generous for noise)
    assert!(
        t_large < t_small * 40 + Duration::from_millis(200),
        "small {t_small:?} large {t_large:?}"
    );
}

#[test]
fn every_truncation_of_a_real_measurement_is_handled() {
    let fps = common::fingerprints();
    let samples = common::samples();
    for s in samples.iter().filter(|s| s.raw.len() < 20_000).take(25) {
        let raw = s.raw.as_bytes();
        for cut in (0..raw.len()).step_by(97) {
            // must not panic; a truncated document never yields a row
            assert!(matches!(
                process(&raw[..cut], &s.measurement_uid, &fps),
                Outcome::Discard(DiscardReason::InvalidJson)
            ));
        }
    }
}

#[test]
fn every_field_of_every_sample_can_hold_any_json_type() {
    let fps = common::fingerprints();
    let replacements = [
        json!(null),
        json!(true),
        json!(0),
        json!(-1.5e300),
        json!("x"),
        json!(""),
        json!([]),
        json!([1, "a", null]),
        json!({}),
        json!({"format": "base64", "data": "!!"}),
    ];
    fn paths(v: &Value, prefix: &str, out: &mut Vec<String>, depth: usize) {
        if depth > 4 {
            return;
        }
        match v {
            Value::Object(m) => {
                for (k, c) in m {
                    let p = format!("{prefix}/{}", k.replace('~', "~0").replace('/', "~1"));
                    out.push(p.clone());
                    paths(c, &p, out, depth + 1);
                }
            }
            Value::Array(a) => {
                for (i, c) in a.iter().enumerate().take(2) {
                    let p = format!("{prefix}/{i}");
                    out.push(p.clone());
                    paths(c, &p, out, depth + 1);
                }
            }
            _ => {}
        }
    }
    let mut seen_tests = std::collections::HashSet::new();
    let mut checked = 0usize;
    for s in common::samples() {
        // one small sample per test type keeps this fast
        if s.raw.len() > 60_000 || !seen_tests.insert(s.test_name.clone()) {
            continue;
        }
        let base: Value = serde_json::from_str(&s.raw).unwrap();
        let mut ps = Vec::new();
        paths(&base, "", &mut ps, 0);
        for p in ps.iter().take(400) {
            for r in &replacements {
                let mut m = base.clone();
                *m.pointer_mut(p).unwrap() = r.clone();
                let raw = serde_json::to_vec(&m).unwrap();
                match process(&raw, &s.measurement_uid, &fps) {
                    Outcome::Row { row, .. } => {
                        let sc: Value = serde_json::from_str(&row.scores).expect("scores are valid JSON");
                        assert!(sc.is_object());
                    }
                    Outcome::Discard(reason) => assert!(!reason.as_str().is_empty()),
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 5_000, "checked {checked}");
}

#[test]
fn shapes_upstream_crashes_on_become_failure_rows_with_a_message() {
    let fps = common::fingerprints();
    // a list body makes upstream's body.find raise
    let raw = serde_json::to_vec(&wc(
        json!({"blocking": false, "requests": [{"response": {"body": [1, 2]}}]}),
    ))
    .unwrap();
    let s = row_scores(&process(&raw, UID, &fps));
    assert_eq!(s["accuracy"], 0.0);
    assert!(s["msg"].as_str().unwrap().starts_with("Unscorable measurement"));
    // test_keys that is a list
    let raw = serde_json::to_vec(&wc(json!([1]))).unwrap();
    let s = row_scores(&process(&raw, UID, &fps));
    assert_eq!(s["accuracy"], 0.0);
    assert!(s["msg"].is_string());
}

#[test]
fn non_objects_and_garbage_are_discarded() {
    let fps = Fingerprints::empty();
    for (raw, reason) in [
        (&b""[..], DiscardReason::InvalidJson),
        (b"nul", DiscardReason::InvalidJson),
        (b"[1,2]", DiscardReason::NotAnObject),
        (b"\"x\"", DiscardReason::NotAnObject),
        (b"{} trailing", DiscardReason::InvalidJson),
        (b"\xff\xfe{}", DiscardReason::InvalidJson),
        (b"{}", DiscardReason::NoReportId),
    ] {
        assert_eq!(process(raw, UID, &fps), Outcome::Discard(reason), "{raw:?}");
    }
    assert_eq!(
        score_measurement(b"[]", UID, &fps).unwrap_err(),
        DiscardReason::NotAnObject
    );
}

#[test]
fn invalid_utf8_inside_strings_is_replaced_not_rejected() {
    let fps = common::fingerprints();
    let mut raw = serde_json::to_vec(&wc(
        json!({"blocking": false, "accessible": true, "requests": [{"response": {"body": "GdF Stop Page XX"}}]}),
    ))
    .unwrap();
    let at = raw.windows(2).position(|w| w == b"XX").unwrap();
    raw[at] = 0xff;
    let s = row_scores(&process(&raw, UID, &fps));
    assert_eq!(s["confirmed"], true);
}

#[test]
fn deeply_nested_values_that_get_echoed_or_compared_do_not_recurse_unbounded() {
    let fps = Fingerprints::empty();
    let nested = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    let base = |test_name: &str, tk: &str| {
        format!(
            r#"{{"report_id":"r","probe_cc":"IT","probe_asn":"AS1","test_name":"{test_name}","input":"x","test_start_time":"2024-01-01 00:00:00","measurement_start_time":"2024-01-01 00:00:00","test_runtime":{nested},"test_keys":{tk}}}"#
        )
    };
    let cases = [
        base(
            "telegram",
            &format!(r#"{{"requests":[{{"request":{{"url":"https://web.telegram.org/"}},"failure":{nested}}}]}}"#),
        ),
        base(
            "http_invalid_request_line",
            &format!(r#"{{"sent":[{nested}],"received":[{nested}, 1]}}"#),
        ),
        base(
            "http_invalid_request_line",
            &format!(r#"{{"sent":[[{nested}]],"received":[[[{nested}]]]}}"#),
        ),
        base(
            "tor",
            &format!(r#"{{"targets":{{"a":{{"failure":null,"network_events":{nested}}}}}}}"#),
        ),
        base(
            "stunreachability",
            &format!(r#"{{"endpoint":{nested},"failure":{nested}}}"#),
        ),
    ];
    let mut rows = 0;
    for raw in &cases {
        // a row (values echoed or compared) or a parse discard, never a stack overflow
        match process(raw.as_bytes(), UID, &fps) {
            Outcome::Row { row, .. } => {
                rows += 1;
                assert!(!row.scores.is_empty());
            }
            Outcome::Discard(r) => assert_eq!(r, DiscardReason::InvalidJson),
        }
    }
    // the parser skips unread deep values without recursion, so scorers do see them
    assert!(rows >= 3, "rows {rows}");
}
