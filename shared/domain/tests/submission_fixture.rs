//! A real web_connectivity measurement (tests/fixtures, see SOURCES.md) goes through the whole
//! submission validation, plain and compressed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Utc};
use ooni_domain::envelope::{parse_incoming_object_key, SubmissionEnvelope, DEFAULT_INLINE_LIMIT};
use ooni_domain::ids::MeasurementUid;
use ooni_domain::submission::{validate_submission, Mismatch, Outcome, Rejected};

const BODY: &[u8] = include_bytes!("fixtures/web_connectivity_it_30722.post.json");
const RID: &str = "20240214T090617Z_webconnectivity_IT_30722_n1_1IvUiXNWHooB5rmD";

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-02-14T09:07:00.5Z")
        .unwrap()
        .with_timezone(&Utc)
}

#[test]
fn the_real_measurement_is_accepted_and_its_stored_body_is_the_original_plus_is_verified() {
    let Ok(Outcome::Accepted(a)) = validate_submission(RID, None, BODY, 1 << 20, now()) else {
        panic!("not accepted");
    };
    assert_eq!(a.cc, "IT");
    assert_eq!(a.asn, 30722);
    assert_eq!(a.test_name, "webconnectivity");
    assert_eq!(a.meta.software_name.as_deref(), Some("miniooni"));
    assert!(a
        .measurement_uid
        .as_str()
        .starts_with("20240214090700.500000_IT_webconnectivity_"));
    let mut expected: serde_json::Value = serde_json::from_slice(BODY).unwrap();
    expected["is_verified"] = "u".into();
    let stored: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
    assert_eq!(stored, expected);
    assert_eq!(a.body.len(), BODY.len() + r#","is_verified":"u""#.len());
}

#[test]
fn the_same_measurement_compressed_with_zstd_or_gzip_gets_the_same_uid() {
    use std::io::Write;
    let plain = validate_submission(RID, None, BODY, 1 << 20, now()).unwrap();
    let z = zstd::encode_all(BODY, 3).unwrap();
    let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    g.write_all(BODY).unwrap();
    let g = g.finish().unwrap();
    assert_eq!(
        validate_submission(RID, Some("zstd"), &z, 1 << 20, now()).unwrap(),
        plain
    );
    assert_eq!(
        validate_submission(RID, Some("gzip"), &g, 1 << 20, now()).unwrap(),
        plain
    );
}

#[test]
fn the_real_measurement_under_another_network_report_id_is_inconsistent() {
    let rid = "20240214T090617Z_webconnectivity_IT_3269_n1_1IvUiXNWHooB5rmD";
    assert_eq!(
        validate_submission(rid, None, BODY, 1 << 20, now()),
        Err(Rejected::Inconsistent(Mismatch::Asn))
    );
}

#[test]
fn the_accepted_measurement_fits_inline_in_its_queue_envelope() {
    let Ok(Outcome::Accepted(a)) = validate_submission(RID, None, BODY, 1 << 20, now()) else {
        panic!("not accepted");
    };
    let mut env = SubmissionEnvelope::new(
        a.measurement_uid.clone(),
        RID,
        Some("IT".into()),
        Some(30722),
    );
    assert!(env
        .attach_body_if_fits(&a.body, DEFAULT_INLINE_LIMIT)
        .unwrap());
    let back = SubmissionEnvelope::from_json(&env.to_json().unwrap()).unwrap();
    assert_eq!(back.body_str().unwrap().as_bytes(), &a.body[..]);
    let key = parse_incoming_object_key(&back.object_key).unwrap();
    assert_eq!(key.uid, a.measurement_uid);
    assert_eq!(
        MeasurementUid::parse(a.measurement_uid.as_str())
            .unwrap()
            .received_at(),
        now()
    );
}
