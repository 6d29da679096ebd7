//! Fuzz target: `ooni_domain::submission::validate_submission` on arbitrary report ids,
//! `Content-Encoding`s and bodies, checking the validator's promises, not just "no panic".
//!
//! Input layout (so that plain JSON seeds work as they are):
//! * a first byte of `{` (a bare JSON seed): no encoding, report id derived from the body;
//! * otherwise the first byte is a control byte `c`:
//!   - `c % 6` picks the encoding: 0 none; 1 `zstd` and 2 `gzip` compressed here from the rest
//!     (so mutations explore the JSON, not the compressed stream); 3 `zstd` and 4 `gzip` with
//!     the rest passed as is (explores the decoders); 5 an odd header (`br`, `identity`,
//!     ` ZSTD `, `x-gzip`, `""`, `zstd, gzip`), the rest as is;
//!   - `(c / 6) % 2 == 1`: the report id is the bytes up to the first `\n`, the body follows;
//!     otherwise the report id is derived from the body's `content` (cc, ASN, test name), so
//!     the fuzzer reaches the consistency and metadata checks without keeping two fields in
//!     step;
//!   - `c >= 128`: the decoded-size limit is 1 KiB instead of the production 5 MiB.
//!
//! Checked on every input: rejections have status 400/413 and a JSON `{"detail": ...}` body;
//! a report id refused or discarded by `check_report_id` gets the same answer here; an accepted
//! measurement has a uid that parses back (cc/test name/hash of the stored bytes), a stored
//! body that is a JSON object with `is_verified: "u"`, and metadata agreeing with the report id.

#![no_main]

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use ooni_domain::submission::{check_report_id, ReportIdCheck};
use ooni_domain::{validate_submission, MeasurementUid, Outcome};
use std::io::Write;

const PRODUCTION_LIMIT: usize = 5 * 1024 * 1024;
const SMALL_LIMIT: usize = 1024;
const ODD_HEADERS: [&str; 6] = ["br", "identity", " ZSTD ", "x-gzip", "", "zstd, gzip"];

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let (control, payload) = if first == b'{' {
        (0u8, data)
    } else {
        (first, rest)
    };
    let explicit_rid = (control / 6) % 2 == 1;
    let limit = if control >= 128 {
        SMALL_LIMIT
    } else {
        PRODUCTION_LIMIT
    };
    let (rid, plain) = if explicit_rid {
        match payload.iter().position(|&b| b == b'\n') {
            Some(i) => (
                String::from_utf8_lossy(&payload[..i]).into_owned(),
                &payload[i + 1..],
            ),
            None => (
                String::from_utf8_lossy(payload).into_owned(),
                &payload[payload.len()..],
            ),
        }
    } else {
        (derived_report_id(plain_for_rid(control, payload)), payload)
    };
    let (encoding, body): (Option<&str>, Vec<u8>) = match control % 6 {
        0 => (None, plain.to_vec()),
        1 => match zstd::encode_all(plain, 1) {
            Ok(z) => (Some("zstd"), z),
            Err(_) => return,
        },
        2 => (Some("gzip"), gzip(plain)),
        3 => (Some("zstd"), plain.to_vec()),
        4 => (Some("gzip"), plain.to_vec()),
        _ => (
            Some(ODD_HEADERS[usize::from(control) % ODD_HEADERS.len()]),
            plain.to_vec(),
        ),
    };
    let now = Utc
        .with_ymd_and_hms(2024, 5, 6, 7, 8, 9)
        .single()
        .unwrap_or_default();
    let result = validate_submission(&rid, encoding, &body, limit, now);

    match check_report_id(&rid) {
        Err(e) => assert_eq!(result.as_ref().err(), Some(&e), "report id {rid:?}"),
        Ok(ReportIdCheck::Discard(why)) => {
            assert_eq!(
                result.as_ref().ok(),
                Some(&Outcome::Discarded(why)),
                "report id {rid:?}"
            )
        }
        Ok(ReportIdCheck::Proceed(_)) => {
            assert!(
                !matches!(result, Ok(Outcome::Discarded(_))),
                "discarded after check_report_id proceeded"
            );
        }
    }

    match result {
        Err(rejected) => {
            assert!(
                matches!(rejected.status(), 400 | 413),
                "status {}",
                rejected.status()
            );
            let answer: serde_json::Value = match serde_json::from_str(&rejected.body_json()) {
                Ok(v) => v,
                Err(e) => panic!("rejection body is not JSON: {e}"),
            };
            assert!(answer.get("detail").is_some(), "no detail in {answer}");
            assert!(!rejected.reason().is_empty());
        }
        Ok(Outcome::Discarded(why)) => {
            assert_eq!(why.status(), 200);
            assert_eq!(why.body_json(), "{}");
        }
        Ok(Outcome::Accepted(a)) => {
            let uid = a.measurement_uid.as_str();
            let parsed = match MeasurementUid::parse(uid) {
                Ok(u) => u,
                Err(e) => panic!("accepted uid {uid:?} does not parse back: {e}"),
            };
            assert_eq!(parsed.cc(), a.cc);
            assert_eq!(parsed.test_name(), a.test_name);
            assert_eq!(parsed.received_at(), now);
            let again = MeasurementUid::generate(now, &a.cc, &a.test_name, &a.body).ok();
            assert_eq!(
                again.as_ref().map(MeasurementUid::as_str),
                Some(uid),
                "uid hash is not over the stored body"
            );
            assert!(
                a.cc.len() == 2 && a.cc.bytes().all(|c| c.is_ascii_uppercase()),
                "cc {:?}",
                a.cc
            );
            assert_eq!(a.meta.probe_cc, a.cc);
            assert_eq!(a.meta.test_name.replace('_', ""), a.test_name);
            assert_eq!(a.meta.probe_asn, format!("AS{}", a.asn));
            assert!(a.asn > 0);
            let text = match std::str::from_utf8(&a.body) {
                Ok(t) => t,
                Err(e) => panic!("stored body is not UTF-8: {e}"),
            };
            match serde_json::from_str::<serde_json::Value>(text) {
                Ok(stored) => {
                    assert_eq!(
                        stored.get("is_verified").and_then(|v| v.as_str()),
                        Some("u")
                    );
                    assert!(
                        stored.get("content").is_some_and(|c| c.is_object()),
                        "content is not an object"
                    );
                }
                // A lone surrogate escape (`"\ud800"`) in a skipped string is accepted, as by
                // upstream's `json.loads`; `serde_json::Value` cannot hold it.
                Err(e) if e.to_string().contains("surrogate") => {}
                Err(e) => panic!("stored body is not JSON: {e}"),
            }
        }
    }
});

/// The bytes the report id is derived from: the plaintext for modes that compress here or
/// send as is, nothing for modes whose payload is already an encoded stream.
fn plain_for_rid(control: u8, payload: &[u8]) -> &[u8] {
    match control % 6 {
        0..=2 => payload,
        _ => &[],
    }
}

/// A report id agreeing with the body's `content` when the body is readable JSON, so that
/// mutations of the content reach steps 6 and 7.
fn derived_report_id(plain: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(plain).unwrap_or_default();
    let content = v.get("content").unwrap_or(&v);
    let field = |k: &str| {
        content
            .get(k)
            .and_then(|x| x.as_str())
            .unwrap_or("")
            .to_owned()
    };
    let (cc, asn, tn) = (field("probe_cc"), field("probe_asn"), field("test_name"));
    let asn = asn.trim_start_matches(['A', 'S', 'a', 's']);
    let tn = tn.replace('_', "");
    format!("20240506T070809Z_{tn}_{cc}_{asn}_n1_abcdefghijklmnop")
}

fn gzip(plain: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    if enc.write_all(plain).is_err() {
        return Vec::new();
    }
    enc.finish().unwrap_or_default()
}
