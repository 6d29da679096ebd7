//! Report ids and measurement uids: generation in the exact upstream formats, and parsing.
//!
//! * report id: `{%Y%m%dT%H%M%SZ}_{test_name without _}_{CC}_{asn}_n{collector}_{16 chars}`,
//!   the 16 characters being the base64 of 12 random bytes with `+` and `/` replaced by `o`.
//! * measurement uid: `{%Y%m%d%H%M%S.%f}_{cc}_{tn}_{sha512(body).hex[:16]}`, matching
//!   `\d{14}\.\d{6}_[A-Z]{2}_[a-z0-9]+_[0-9a-f]{16}`.
//!
//! Clock and randomness are injected so that everything here is deterministic under test.

use std::fmt;

use base64::Engine as _;
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Timelike, Utc};

/// Why a string is not a measurement uid or a report id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("not a measurement uid")]
    BadUid,
    #[error("not a report id in the current format")]
    BadReportId,
    #[error("measurement uid component is invalid: {0}")]
    BadUidPart(&'static str),
}

/// Generates a report id exactly as upstream `generate_report_id` does.
///
/// `test_name` has its underscores removed; `cc` and `asn` are used as given (normalise them
/// first with [`crate::normalize`]); `collector_id` is the deployment's collector number.
pub fn generate_report_id<R>(
    now: DateTime<Utc>,
    test_name: &str,
    cc: &str,
    asn: u32,
    collector_id: &str,
    rng: &mut R,
) -> String
where
    R: rand::Rng + ?Sized,
{
    let mut random = [0u8; 12];
    rng.fill_bytes(&mut random);
    let mut rand_part = base64::engine::general_purpose::STANDARD.encode(random);
    // b64encode(..., altchars=b"oo"): both '+' and '/' become 'o'. 12 bytes never pad.
    rand_part = rand_part.replace(['+', '/'], "o");
    let stn: String = test_name.chars().filter(|c| *c != '_').collect();
    format!(
        "{}_{}_{}_{}_n{}_{}",
        now.format("%Y%m%dT%H%M%SZ"),
        stn,
        cc,
        asn,
        collector_id,
        rand_part
    )
}

/// The six `_`-separated parts of a current-format report id, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportIdParts<'a> {
    /// `%Y%m%dT%H%M%SZ` (not validated: upstream does not validate it either).
    pub timestamp: &'a str,
    /// Test name without underscores, e.g. `webconnectivity`.
    pub test_name: &'a str,
    pub cc: &'a str,
    /// Decimal ASN as text (not validated here).
    pub asn: &'a str,
    /// Collector part, including its `n` prefix, e.g. `n1`.
    pub collector: &'a str,
    pub random: &'a str,
}

impl<'a> ReportIdParts<'a> {
    /// Splits on `_` and requires exactly six parts, like upstream's tuple unpacking of
    /// `report_id.split("_")`. Empty parts are allowed here (later checks reject them).
    pub fn split(report_id: &'a str) -> Result<Self, IdError> {
        let mut it = report_id.split('_');
        let mut next = || it.next().ok_or(IdError::BadReportId);
        let parts = ReportIdParts {
            timestamp: next()?,
            test_name: next()?,
            cc: next()?,
            asn: next()?,
            collector: next()?,
            random: next()?,
        };
        if it.next().is_some() {
            return Err(IdError::BadReportId);
        }
        Ok(parts)
    }

    /// The report id's timestamp, if it is a valid `%Y%m%dT%H%M%SZ`.
    pub fn opened_at(&self) -> Option<DateTime<Utc>> {
        let naive = chrono::NaiveDateTime::parse_from_str(self.timestamp, "%Y%m%dT%H%M%SZ").ok()?;
        Some(Utc.from_utc_datetime(&naive))
    }
}

/// A measurement uid, always matching `\d{14}\.\d{6}_[A-Z]{2}_[a-z0-9]+_[0-9a-f]{16}` with a
/// valid date and time in its first 21 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MeasurementUid(String);

const UID_TS_LEN: usize = 21; // "YYYYMMDDHHMMSS.ffffff"

impl MeasurementUid {
    /// Builds the uid of a measurement received at `now`, from the report id's `cc` and
    /// test name (no underscores) and the exact stored body bytes.
    ///
    /// Fails when `cc` is not two ASCII capitals or `test_name` is not `[a-z0-9]+`, so that
    /// every value of this type parses back.
    pub fn generate(
        now: DateTime<Utc>,
        cc: &str,
        test_name: &str,
        body: &[u8],
    ) -> Result<Self, IdError> {
        if !is_uid_cc(cc) {
            return Err(IdError::BadUidPart("cc"));
        }
        if !is_uid_test_name(test_name) {
            return Err(IdError::BadUidPart("test_name"));
        }
        // ring's SHA-512 (OpenSSL's assembly) is ~8% faster than the `sha2` crate's on a 28 KB
        // body here (benches/submission.rs); the digest is the same. SHA-512 alone bounds the
        // submit path: ~590 MB/s, ~48 µs of CPU for that body.
        let digest = ring::digest::digest(&ring::digest::SHA512, body);
        let hash = hex::encode(digest.as_ref().get(..8).unwrap_or_default());
        let mut s = String::with_capacity(UID_TS_LEN + 4 + cc.len() + test_name.len() + 16);
        push_uid_timestamp(&mut s, now);
        s.push('_');
        s.push_str(cc);
        s.push('_');
        s.push_str(test_name);
        s.push('_');
        s.push_str(&hash);
        Ok(MeasurementUid(s))
    }

    /// Parses and validates a uid (the whole string must match; the timestamp must be a real
    /// date and time).
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let b = s.as_bytes();
        // Minimum: 21 + '_' + 2 + '_' + 1 + '_' + 16
        if b.len() < UID_TS_LEN + 1 + 2 + 1 + 1 + 1 + 16 {
            return Err(IdError::BadUid);
        }
        if !b[..14].iter().all(u8::is_ascii_digit)
            || b[14] != b'.'
            || !b[15..21].iter().all(u8::is_ascii_digit)
            || b[21] != b'_'
            || !b[22..24].iter().all(u8::is_ascii_uppercase)
            || b[24] != b'_'
        {
            return Err(IdError::BadUid);
        }
        let tail = &s[25..];
        let (tn, hash) = tail.rsplit_once('_').ok_or(IdError::BadUid)?;
        if !is_uid_test_name(tn)
            || hash.len() != 16
            || !hash.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(IdError::BadUid);
        }
        let uid = MeasurementUid(s.to_owned());
        if parse_uid_timestamp(&s[..UID_TS_LEN]).is_none() {
            return Err(IdError::BadUid);
        }
        Ok(uid)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// When the measurement was received, to the microsecond.
    pub fn received_at(&self) -> DateTime<Utc> {
        // Validated at construction; the fallback is unreachable but keeps this total.
        parse_uid_timestamp(&self.0[..UID_TS_LEN]).unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
    }

    /// The two-letter country code.
    pub fn cc(&self) -> &str {
        &self.0[22..24]
    }

    /// The test name without underscores.
    pub fn test_name(&self) -> &str {
        let tail = &self.0[25..];
        tail.rsplit_once('_').map(|(tn, _)| tn).unwrap_or(tail)
    }

    /// The 16 hex characters of the body hash.
    pub fn hash(&self) -> &str {
        &self.0[self.0.len() - 16..]
    }
}

impl fmt::Display for MeasurementUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for MeasurementUid {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MeasurementUid::parse(s)
    }
}

impl serde::Serialize for MeasurementUid {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for MeasurementUid {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        MeasurementUid::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn is_uid_cc(cc: &str) -> bool {
    cc.len() == 2 && cc.bytes().all(|c| c.is_ascii_uppercase())
}

fn is_uid_test_name(tn: &str) -> bool {
    !tn.is_empty()
        && tn
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// Appends `%Y%m%d%H%M%S.%f` (Python's `%f`: six digits of microseconds).
pub(crate) fn push_uid_timestamp(s: &mut String, t: DateTime<Utc>) {
    use std::fmt::Write as _;
    // A leap second shows up as nanosecond >= 1e9; Python has no such value, clamp it.
    let micros = t.timestamp_subsec_micros().min(999_999);
    // Writing to a String cannot fail.
    if write!(
        s,
        "{:04}{:02}{:02}{:02}{:02}{:02}.{:06}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        micros
    )
    .is_err()
    {
        s.push_str("00000000000000.000000");
    }
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_uid_timestamp(ts: &str) -> Option<DateTime<Utc>> {
    if ts.len() != UID_TS_LEN || !ts.is_ascii() {
        return None;
    }
    let year = digits(&ts[0..4])? as i32;
    let date = NaiveDate::from_ymd_opt(year, digits(&ts[4..6])?, digits(&ts[6..8])?)?;
    let time = date.and_hms_micro_opt(
        digits(&ts[8..10])?,
        digits(&ts[10..12])?,
        digits(&ts[12..14])?,
        digits(&ts[15..21])?,
    )?;
    Some(Utc.from_utc_datetime(&time))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn report_id_has_the_upstream_layout_and_length() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let rid = generate_report_id(
            t("2021-02-08T16:27:55Z"),
            "web_connectivity",
            "IE",
            34245,
            "1",
            &mut rng,
        );
        assert_eq!(rid.len(), 61, "{rid}");
        assert!(
            rid.starts_with("20210208T162755Z_webconnectivity_IE_34245_n1_"),
            "{rid}"
        );
        let parts = ReportIdParts::split(&rid).unwrap();
        assert_eq!(parts.random.len(), 16);
        assert!(parts.random.bytes().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn report_id_random_part_never_contains_plus_or_slash() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for _ in 0..2000 {
            let rid = generate_report_id(Utc::now(), "ndt", "DZ", 36947, "1", &mut rng);
            let random = &rid[rid.len() - 16..];
            assert!(random.bytes().all(|c| c.is_ascii_alphanumeric()), "{rid}");
        }
    }

    #[test]
    fn report_id_replaces_plus_and_slash_with_o() {
        // 0xfb 0xff 0xbf encodes to "+/+/" in standard base64.
        struct Fixed;
        impl rand::RngCore for Fixed {
            fn next_u32(&mut self) -> u32 {
                0
            }
            fn next_u64(&mut self) -> u64 {
                0
            }
            fn fill_bytes(&mut self, dst: &mut [u8]) {
                for (i, b) in dst.iter_mut().enumerate() {
                    *b = [0xfb, 0xff, 0xbf][i % 3];
                }
            }
        }
        let rid = generate_report_id(t("2020-01-01T00:00:00Z"), "ndt", "IT", 1, "1", &mut Fixed);
        assert_eq!(rid, "20200101T000000Z_ndt_IT_1_n1_oooooooooooooooo");
    }

    #[test]
    fn report_id_splits_into_its_six_parts() {
        let p = ReportIdParts::split("20210208T162755Z_ndt_DZ_36947_n1_8swgXi7xNuRUyO9a").unwrap();
        assert_eq!(p.timestamp, "20210208T162755Z");
        assert_eq!(p.test_name, "ndt");
        assert_eq!(p.cc, "DZ");
        assert_eq!(p.asn, "36947");
        assert_eq!(p.collector, "n1");
        assert_eq!(p.random, "8swgXi7xNuRUyO9a");
        assert_eq!(p.opened_at(), Some(t("2021-02-08T16:27:55Z")));
    }

    #[test]
    fn report_ids_with_other_than_six_parts_are_rejected() {
        assert!(ReportIdParts::split("bogus").is_err());
        assert!(ReportIdParts::split("20190313T131942Z_AS30722_abc").is_err());
        assert!(ReportIdParts::split("a_b_c_d_e_f_g").is_err());
        assert!(ReportIdParts::split("a_b_c_d_e_f").is_ok());
    }

    #[test]
    fn uid_has_python_microsecond_timestamp_and_sha512_prefix() {
        let now = t("2021-02-08T22:07:10.181572Z");
        let uid = MeasurementUid::generate(now, "MA", "ndt", b"hello").unwrap();
        // sha512("hello") = 9b71d224bd62f378...
        assert_eq!(
            uid.as_str(),
            "20210208220710.181572_MA_ndt_9b71d224bd62f378"
        );
        assert_eq!(uid.received_at(), now);
        assert_eq!(uid.cc(), "MA");
        assert_eq!(uid.test_name(), "ndt");
        assert_eq!(uid.hash(), "9b71d224bd62f378");
    }

    #[test]
    fn uid_of_a_whole_second_keeps_six_zero_microseconds() {
        let uid = MeasurementUid::generate(t("2024-01-01T00:00:00Z"), "IT", "x1", b"").unwrap();
        assert!(
            uid.as_str().starts_with("20240101000000.000000_IT_x1_"),
            "{uid}"
        );
    }

    #[test]
    fn uid_generation_refuses_parts_that_would_break_the_format() {
        let now = Utc::now();
        assert!(MeasurementUid::generate(now, "it", "ndt", b"").is_err());
        assert!(MeasurementUid::generate(now, "ITA", "ndt", b"").is_err());
        assert!(MeasurementUid::generate(now, "IT", "web_connectivity", b"").is_err());
        assert!(MeasurementUid::generate(now, "IT", "", b"").is_err());
    }

    #[test]
    fn uid_parse_accepts_the_upstream_example() {
        let uid = MeasurementUid::parse("20210208220710.181572_MA_ndt_7888edc7748936bf").unwrap();
        assert_eq!(uid.received_at(), t("2021-02-08T22:07:10.181572Z"));
        assert_eq!(uid.test_name(), "ndt");
        let round: MeasurementUid =
            serde_json::from_str(&serde_json::to_string(&uid).unwrap()).unwrap();
        assert_eq!(round, uid);
    }

    #[test]
    fn uid_parse_rejects_everything_the_regex_rejects() {
        for bad in [
            "",
            "20210208220710.181572_MA_ndt_7888edc7748936b", // short hash
            "20210208220710.181572_MA_ndt_7888edc7748936bff", // long hash
            "20210208220710.181572_MA_ndt_7888EDC7748936BF", // upper hex
            "20210208220710.181572_ma_ndt_7888edc7748936bf", // lower cc
            "20210208220710.18157_MA_ndt_7888edc7748936bf", // 5-digit micros
            "2021020822071.181572_MA_ndt_7888edc7748936bf", // 13 digits
            "20210208220710.181572_MA__7888edc7748936bf",   // empty tn
            "20210208220710.181572_MA_web_conn_7888edc7748936bf",
            "20210208220710.181572_MA_Ndt_7888edc7748936bf",
            "20211308220710.181572_MA_ndt_7888edc7748936bf", // month 13
            "20210208250710.181572_MA_ndt_7888edc7748936bf", // hour 25
            "01202102037f9c2ba4e88f827d61604550760585",      // trivial_id
        ] {
            assert!(MeasurementUid::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn uid_round_trips_through_parse() {
        let uid = MeasurementUid::generate(Utc::now(), "US", "webconnectivity", b"{}").unwrap();
        assert_eq!(MeasurementUid::parse(uid.as_str()).unwrap(), uid);
    }
}
