//! Regression tests for inputs found by the coverage-guided fuzzers (`fuzz/`, run with
//! `scripts/fuzz.sh`). Each test names the fuzz target and the property the input broke.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{TimeZone, Utc};
use ooni_domain::{validate_submission, Outcome, Rejected};

const RID: &str = "20240506T070809Z_webconnectivity_NL_5390_n1_abcdefghijklmnop";

fn validate(body: &[u8]) -> Result<Outcome, Rejected> {
    let now = Utc.with_ymd_and_hms(2024, 5, 6, 7, 8, 9).unwrap();
    validate_submission(RID, None, body, 5 * 1024 * 1024, now)
}

fn with_field(extra: &[u8]) -> Vec<u8> {
    let mut b = br#"{"format":"json","content":{"probe_cc":"NL","probe_asn":"AS5390","test_name":"web_connectivity","#.to_vec();
    b.extend_from_slice(extra);
    b.extend_from_slice(b"}}");
    b
}

/// fuzz target `submission`: a byte that is not UTF-8 inside a string the validator skips
/// (here `content.options`, as in the fuzzer's input) was accepted and stored, although such a
/// body is not JSON (RFC 8259 §8.1) and upstream's `json.loads` refuses it with 400.
#[test]
fn a_body_with_invalid_utf8_inside_a_skipped_string_is_incorrect_format() {
    let body = with_field(b"\"options\":[\"--file\",\"$\xcaitizenlab_${probe_cc}_urls\"]");
    let e = validate(&body).unwrap_err();
    assert!(matches!(e, Rejected::BadJson(_)), "{e:?}");
    assert_eq!(e.status(), 400);
    assert_eq!(e.body_json(), r#"{"detail":"Incorrect format"}"#);
}

#[test]
fn invalid_utf8_in_a_skipped_key_or_a_top_level_value_is_incorrect_format_too() {
    for body in [
        with_field(b"\"opt\xffions\":1"),
        br#"{"format":"json","x":""#
            .iter()
            .copied()
            .chain(*b"\xc3(")
            .chain(*br#"","content":{"probe_cc":"NL","probe_asn":"AS5390","test_name":"web_connectivity"}}"#)
            .collect(),
    ] {
        let e = validate(&body).unwrap_err();
        assert!(matches!(e, Rejected::BadJson(_)), "{e:?}");
    }
}

#[test]
fn the_same_body_with_valid_utf8_is_accepted_and_stored_as_utf8() {
    let body = with_field("\"options\":[\"--file\",\"$\u{ca}itizenlab\"]".as_bytes());
    let Ok(Outcome::Accepted(a)) = validate(&body) else {
        panic!("not accepted")
    };
    assert!(std::str::from_utf8(&a.body).is_ok());
}
