//! The ClickHouse rows this crate writes (`fastpath`, `obs_openvpn`, `faulty_measurements`).
//!
//! The `fastpath` and `obs_openvpn` rows are the scoring crate's own rows (built with its
//! `clickhouse` feature): one column list, whose times go over the wire as seconds since the
//! epoch and whose `obs_openvpn` flags as `Int8` (see `ooni_scoring::row`). Column names and
//! types follow `infra/migrations/0001`, `0010` and `0012`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One `fastpath` row: the 26 columns upstream writes.
pub type FastpathRecord = ooni_scoring::FastpathRow;

/// One `obs_openvpn` row: the 30 columns upstream writes.
pub type OpenvpnRecord = ooni_scoring::ObsOpenvpnRow;

/// One `faulty_measurements` row of type `geoip`.
///
/// Unlike upstream (server-side `now64()` and a random UUID), `ts` is the submission's receive
/// time and `uid` is derived from the measurement uid, so a redelivered message produces the
/// very same row (same sort key), which the pre-insert check and `ReplacingMergeTree` collapse.
#[derive(Debug, Clone, PartialEq, clickhouse::Row, Serialize, Deserialize)]
pub struct FaultyRecord {
    #[serde(with = "clickhouse::serde::chrono::datetime64::millis")]
    pub ts: DateTime<Utc>,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(with = "clickhouse::serde::uuid")]
    pub uid: uuid::Uuid,
    /// The country of the submitting address (GeoIP), as upstream.
    pub probe_cc: String,
    /// The network of the submitting address (GeoIP), as upstream.
    pub probe_asn: u32,
    /// JSON: `submission_cc, submission_asn, measurement_uid, software_name,
    /// software_version, platform` (what the measurement claims).
    pub details: String,
}

/// The deterministic `faulty_measurements.uid` of a measurement's GeoIP mismatch: the first
/// 16 bytes of `sha256("geoip:" + measurement_uid)` as a version-8 (custom) UUID.
pub fn faulty_uid(measurement_uid: &str) -> uuid::Uuid {
    let digest = Sha256::new()
        .chain_update(b"geoip:")
        .chain_update(measurement_uid.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// What the submitting client's address resolved to (from the queue envelope).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientGeo {
    pub cc: Option<String>,
    pub asn: Option<u32>,
}

/// The GeoIP-mismatch row for `row` (upstream #1070), or `None` when the claimed CC/ASN agree
/// with the client address, or nothing is known about the address.
///
/// Only the parts the lookup resolved are compared; an unresolved part of a mismatching
/// submission is written as upstream's lookup-failure values, `ZZ` / `0`. CCs compare
/// case-insensitively, ASNs as numbers (the measurement's `AS` prefix stripped).
pub fn geoip_mismatch(
    row: &FastpathRecord,
    geo: &ClientGeo,
    received_at: DateTime<Utc>,
) -> Option<FaultyRecord> {
    let cc_differs = geo
        .cc
        .as_deref()
        .is_some_and(|cc| !cc.eq_ignore_ascii_case(&row.probe_cc));
    let asn_differs = geo.asn.is_some_and(|asn| asn != row.probe_asn);
    if !cc_differs && !asn_differs {
        return None;
    }
    let details = serde_json::json!({
        "submission_cc": row.probe_cc.to_uppercase(),
        "submission_asn": row.probe_asn,
        "measurement_uid": row.measurement_uid,
        "software_name": row.software_name,
        "software_version": row.software_version,
        "platform": row.platform,
    });
    Some(FaultyRecord {
        ts: received_at,
        kind: "geoip".to_owned(),
        uid: faulty_uid(&row.measurement_uid),
        probe_cc: geo
            .cc
            .as_deref()
            .map_or_else(|| "ZZ".to_owned(), str::to_uppercase),
        probe_asn: geo.asn.unwrap_or(0),
        details: details.to_string(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn row() -> FastpathRecord {
        let mut r = crate::testing::fastpath_record(
            "20240305060708.123456_IT_webconnectivity_0123456789abcdef",
        );
        (r.platform, r.software_name, r.software_version) =
            ("android".into(), "ooniprobe-android".into(), "3.8.0".into());
        r
    }

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 5, 6, 7, 8).unwrap()
    }

    #[test]
    fn matching_or_unknown_geoip_produces_no_row() {
        let r = row();
        assert!(geoip_mismatch(
            &r,
            &ClientGeo {
                cc: Some("it".into()),
                asn: Some(30722)
            },
            at()
        )
        .is_none());
        assert!(geoip_mismatch(
            &r,
            &ClientGeo {
                cc: None,
                asn: None
            },
            at()
        )
        .is_none());
        assert!(geoip_mismatch(
            &r,
            &ClientGeo {
                cc: Some("IT".into()),
                asn: None
            },
            at()
        )
        .is_none());
    }

    #[test]
    fn a_cc_mismatch_records_the_lookup_as_probe_columns_and_the_claim_in_details() {
        let f = geoip_mismatch(
            &row(),
            &ClientGeo {
                cc: Some("US".into()),
                asn: Some(30722),
            },
            at(),
        )
        .unwrap();
        assert_eq!(
            (f.kind.as_str(), f.probe_cc.as_str(), f.probe_asn),
            ("geoip", "US", 30722)
        );
        assert_eq!(f.ts, at());
        let d: serde_json::Value = serde_json::from_str(&f.details).unwrap();
        assert_eq!(d["submission_cc"], "IT");
        assert_eq!(d["submission_asn"], 30722);
        assert_eq!(d["measurement_uid"], row().measurement_uid);
        assert_eq!(d["software_name"], "ooniprobe-android");
        assert_eq!(d["software_version"], "3.8.0");
        assert_eq!(d["platform"], "android");
    }

    #[test]
    fn an_asn_mismatch_with_an_unresolved_country_writes_zz() {
        let f = geoip_mismatch(
            &row(),
            &ClientGeo {
                cc: None,
                asn: Some(3269),
            },
            at(),
        )
        .unwrap();
        assert_eq!((f.probe_cc.as_str(), f.probe_asn), ("ZZ", 3269));
    }

    #[test]
    fn the_faulty_uid_is_stable_per_measurement_and_differs_between_measurements() {
        let a = faulty_uid("x");
        assert_eq!(a, faulty_uid("x"));
        assert_ne!(a, faulty_uid("y"));
        assert_eq!(a.get_version_num(), 8);
    }
}
