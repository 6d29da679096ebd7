//! Fuzz target: `ooni_scoring::process` (parse, score, build the fastpath row) with the
//! production blocking fingerprints embedded, checking the row's invariants, not just "no panic".
//!
//! Input layout: a first byte of `0x01` means the measurement uid is the bytes up to the first
//! `\n` (exercises the receive-time parsing behind the wrong-date flags) and the measurement
//! follows; any other input is the measurement itself (bare, or the `{format, content}` POST
//! envelope, JSON or legacy YAML) with a fixed well-formed uid.
//!
//! Checked on every input: a row serialises to JSON; its `scores` column is a JSON object;
//! `anomaly`, `confirmed`, `msm_failure` are `t`/`f`; `is_verified` is `t`/`f`/`u`; the row
//! carries the uid it was given; an `obs_openvpn` row serialises too.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ooni_scoring::{process, Fingerprints, Outcome};
use std::sync::OnceLock;

const DNS_CSV: &str = include_str!("../../shared/scoring/tests/fixtures/fingerprints_dns.csv");
const HTTP_CSV: &str = include_str!("../../shared/scoring/tests/fixtures/fingerprints_http.csv");
const FIXED_UID: &str = "20240506070809.123456_IT_webconnectivity_0123456789abcdef";

fn fingerprints() -> &'static Fingerprints {
    static FPS: OnceLock<Fingerprints> = OnceLock::new();
    FPS.get_or_init(|| match Fingerprints::from_csv(DNS_CSV, HTTP_CSV) {
        Ok(f) => f,
        Err(e) => panic!("the production fingerprints do not load: {e}"),
    })
}

fuzz_target!(|data: &[u8]| {
    let (uid, raw) = match data.split_first() {
        Some((1, rest)) => match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (
                String::from_utf8_lossy(&rest[..i]).into_owned(),
                &rest[i + 1..],
            ),
            None => (FIXED_UID.to_owned(), rest),
        },
        _ => (FIXED_UID.to_owned(), data),
    };
    match process(raw, &uid, fingerprints()) {
        Outcome::Discard(reason) => assert!(!reason.as_str().is_empty()),
        Outcome::Row { row, openvpn } => {
            if let Err(e) = serde_json::to_string(&row) {
                panic!("fastpath row does not serialise: {e}");
            }
            let scores: serde_json::Value = match serde_json::from_str(&row.scores) {
                Ok(v) => v,
                Err(e) => panic!("scores column is not JSON ({e}): {}", row.scores),
            };
            assert!(
                scores.is_object(),
                "scores is not an object: {}",
                row.scores
            );
            for (name, flag) in [
                ("anomaly", &row.anomaly),
                ("confirmed", &row.confirmed),
                ("msm_failure", &row.msm_failure),
            ] {
                assert!(flag == "t" || flag == "f", "{name} = {flag:?}");
            }
            assert!(
                matches!(row.is_verified.as_str(), "t" | "f" | "u"),
                "is_verified = {:?}",
                row.is_verified
            );
            assert_eq!(row.measurement_uid, uid);
            if let Some(ov) = openvpn {
                if let Err(e) = serde_json::to_string(&ov) {
                    panic!("obs_openvpn row does not serialise: {e}");
                }
            }
        }
    }
});
