//! The ClickHouse row types this crate writes (`fastpath`, `obs_openvpn`,
//! `faulty_measurements`) and their construction from the scoring crate's rows.
//!
//! Column names and types follow `infra/migrations/0001`, `0010` and `0012`. Times are sent as
//! seconds since the epoch, reading the measurement's naive `%Y-%m-%d %H:%M:%S` times as UTC
//! (the server's `DateTime` columns have no time zone), clamped to `DateTime`'s range.

use chrono::{DateTime, NaiveDateTime, Utc};
use ooni_scoring::{FastpathRow, ObsOpenvpnRow};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One `fastpath` row: the 26 columns upstream writes, nothing else (`update_time` is
/// materialized by the server, the legacy columns keep their defaults).
#[derive(Debug, Clone, PartialEq, clickhouse::Row, Serialize, Deserialize)]
pub struct FastpathRecord {
    pub measurement_uid: String,
    pub report_id: String,
    pub input: String,
    pub probe_cc: String,
    pub probe_asn: u32,
    pub test_name: String,
    /// `DateTime`, seconds since the epoch.
    pub test_start_time: u32,
    /// `DateTime`, seconds since the epoch.
    pub measurement_start_time: u32,
    pub scores: String,
    pub platform: String,
    pub anomaly: String,
    pub confirmed: String,
    pub msm_failure: String,
    pub blocking_type: String,
    pub domain: String,
    pub software_name: String,
    pub software_version: String,
    pub test_version: String,
    pub test_runtime: f32,
    pub architecture: String,
    pub engine_name: String,
    pub engine_version: String,
    pub test_helper_address: String,
    pub test_helper_type: String,
    pub ooni_run_link_id: Option<u64>,
    pub is_verified: String,
}

/// One `obs_openvpn` row (the 30 columns upstream writes; `error` and
/// `tcp_connect_status_success` keep their defaults).
#[derive(Debug, Clone, PartialEq, clickhouse::Row, Serialize, Deserialize)]
pub struct OpenvpnRecord {
    pub anomaly: i8,
    pub bootstrap_time: f32,
    pub confirmed: i8,
    pub failure: String,
    pub input: String,
    pub last_handshake_transaction_id: i32,
    pub measurement_start_time: u32,
    pub measurement_uid: String,
    pub minivpn_version: String,
    pub obfs4_version: String,
    pub obfuscation: String,
    pub platform: String,
    pub probe_asn: i32,
    pub probe_cc: String,
    pub probe_network_name: String,
    pub provider: String,
    pub remote: String,
    pub report_id: String,
    pub resolver_asn: i32,
    pub resolver_ip: String,
    pub resolver_network_name: String,
    pub software_name: String,
    pub software_version: String,
    pub success: i8,
    pub success_handshake: i8,
    pub success_icmp: i8,
    pub success_urlgrab: i8,
    pub test_runtime: f32,
    pub test_start_time: u32,
    pub transport: String,
}

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

/// Seconds since the epoch of a naive UTC time, clamped to ClickHouse `DateTime`'s range.
pub fn epoch_seconds(t: NaiveDateTime) -> u32 {
    let s = t.and_utc().timestamp();
    u32::try_from(s.max(0)).unwrap_or(u32::MAX)
}

impl From<FastpathRow> for FastpathRecord {
    fn from(r: FastpathRow) -> Self {
        FastpathRecord {
            measurement_uid: r.measurement_uid,
            report_id: r.report_id,
            input: r.input,
            probe_cc: r.probe_cc,
            probe_asn: r.probe_asn,
            test_name: r.test_name,
            test_start_time: epoch_seconds(r.test_start_time),
            measurement_start_time: epoch_seconds(r.measurement_start_time),
            scores: r.scores,
            platform: r.platform,
            anomaly: r.anomaly,
            confirmed: r.confirmed,
            msm_failure: r.msm_failure,
            blocking_type: r.blocking_type,
            domain: r.domain,
            software_name: r.software_name,
            software_version: r.software_version,
            test_version: r.test_version,
            test_runtime: r.test_runtime,
            architecture: r.architecture,
            engine_name: r.engine_name,
            engine_version: r.engine_version,
            test_helper_address: r.test_helper_address,
            test_helper_type: r.test_helper_type,
            ooni_run_link_id: r.ooni_run_link_id,
            is_verified: r.is_verified,
        }
    }
}

fn i8_of(b: bool) -> i8 {
    i8::from(b)
}

impl From<ObsOpenvpnRow> for OpenvpnRecord {
    fn from(r: ObsOpenvpnRow) -> Self {
        OpenvpnRecord {
            anomaly: i8_of(r.anomaly),
            bootstrap_time: r.bootstrap_time,
            confirmed: i8_of(r.confirmed),
            failure: r.failure,
            input: r.input,
            last_handshake_transaction_id: r.last_handshake_transaction_id,
            measurement_start_time: epoch_seconds(r.measurement_start_time),
            measurement_uid: r.measurement_uid,
            minivpn_version: r.minivpn_version,
            obfs4_version: r.obfs4_version,
            obfuscation: r.obfuscation,
            platform: r.platform,
            probe_asn: r.probe_asn,
            probe_cc: r.probe_cc,
            probe_network_name: r.probe_network_name,
            provider: r.provider,
            remote: r.remote,
            report_id: r.report_id,
            resolver_asn: r.resolver_asn,
            resolver_ip: r.resolver_ip,
            resolver_network_name: r.resolver_network_name,
            software_name: r.software_name,
            software_version: r.software_version,
            success: i8_of(r.success),
            success_handshake: i8_of(r.success_handshake),
            success_icmp: i8_of(r.success_icmp),
            success_urlgrab: i8_of(r.success_urlgrab),
            test_runtime: r.test_runtime,
            test_start_time: epoch_seconds(r.test_start_time),
            transport: r.transport,
        }
    }
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
        FastpathRecord {
            measurement_uid: "20240305060708.123456_IT_webconnectivity_0123456789abcdef".into(),
            report_id: "r".into(),
            input: String::new(),
            probe_cc: "IT".into(),
            probe_asn: 30722,
            test_name: "web_connectivity".into(),
            test_start_time: 0,
            measurement_start_time: 0,
            scores: "{}".into(),
            platform: "android".into(),
            anomaly: "f".into(),
            confirmed: "f".into(),
            msm_failure: "f".into(),
            blocking_type: String::new(),
            domain: String::new(),
            software_name: "ooniprobe-android".into(),
            software_version: "3.8.0".into(),
            test_version: String::new(),
            test_runtime: 0.0,
            architecture: String::new(),
            engine_name: String::new(),
            engine_version: String::new(),
            test_helper_address: String::new(),
            test_helper_type: String::new(),
            ooni_run_link_id: None,
            is_verified: "u".into(),
        }
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

    #[test]
    fn times_before_1970_or_after_2106_are_clamped() {
        let t = |s| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
        assert_eq!(epoch_seconds(t("1960-01-01 00:00:00")), 0);
        assert_eq!(epoch_seconds(t("2200-01-01 00:00:00")), u32::MAX);
        assert_eq!(epoch_seconds(t("2023-11-14 22:13:20")), 1_700_000_000);
    }
}
