//! From raw POST bytes to a fastpath row: envelope unwrapping, discard rules,
//! wrong-date flags, flags, and the `fastpath` / `obs_openvpn` row structs.

use crate::fingerprints::Fingerprints;
use crate::json::{self, Kind, Obj, Raw};
use crate::model::{Content, Measurement, TestKeys, TopLevel};
use crate::pyfmt;
use crate::scores::{init_scores, SVal, ScoreMap, Scores};
use crate::scoring;
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Why a measurement produced no row. Every variant has a stable [`as_str`](Self::as_str).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiscardReason {
    /// The body is not valid JSON (or nests deeper than the parser allows).
    InvalidJson,
    /// The top-level JSON value is not an object.
    NotAnObject,
    /// A `{format, content}` envelope whose `format` is not a string or whose content
    /// does not match it.
    InvalidEnvelope,
    /// An envelope `format` other than json/yaml.
    UnsupportedFormat,
    /// `format: yaml` content that does not parse as a YAML mapping.
    InvalidYaml,
    /// No `report_id` (or `report_id: null`).
    NoReportId,
    /// `report_id` is not a string.
    InvalidReportId,
    /// `probe_cc` is ZZ.
    ProbeCcZz,
    /// `probe_cc` is not a string.
    InvalidProbeCc,
    /// `probe_asn` is AS0.
    ProbeAsnZero,
    /// No `probe_asn`.
    MissingProbeAsn,
    /// `probe_asn` is not `AS<number>` fitting a UInt32.
    InvalidProbeAsn,
    /// `measurement_start_time` missing or not `%Y-%m-%d %H:%M:%S`.
    InvalidMeasurementStartTime,
    /// `test_start_time` missing or not `%Y-%m-%d %H:%M:%S`.
    InvalidTestStartTime,
    /// `input` is neither a string nor (for meek) a list of strings.
    InvalidInput,
}

impl DiscardReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DiscardReason::InvalidJson => "invalid_json",
            DiscardReason::NotAnObject => "not_an_object",
            DiscardReason::InvalidEnvelope => "invalid_envelope",
            DiscardReason::UnsupportedFormat => "unsupported_format",
            DiscardReason::InvalidYaml => "invalid_yaml",
            DiscardReason::NoReportId => "no_report_id",
            DiscardReason::InvalidReportId => "invalid_report_id",
            DiscardReason::ProbeCcZz => "probe_cc_zz",
            DiscardReason::InvalidProbeCc => "invalid_probe_cc",
            DiscardReason::ProbeAsnZero => "probe_asn_zero",
            DiscardReason::MissingProbeAsn => "missing_probe_asn",
            DiscardReason::InvalidProbeAsn => "invalid_probe_asn",
            DiscardReason::InvalidMeasurementStartTime => "invalid_measurement_start_time",
            DiscardReason::InvalidTestStartTime => "invalid_test_start_time",
            DiscardReason::InvalidInput => "invalid_input",
        }
    }
}

impl std::fmt::Display for DiscardReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Seconds since the epoch of a row time (naive, read as UTC), clamped to ClickHouse
/// `DateTime`'s range (1970 to 2106).
pub fn epoch_seconds(t: NaiveDateTime) -> u32 {
    u32::try_from(t.and_utc().timestamp().max(0)).unwrap_or(u32::MAX)
}

/// The row times: `"YYYY-MM-DD HH:MM:SS"` in human-readable formats (JSON, what the CLI prints),
/// seconds since the epoch (UTC, clamped to ClickHouse `DateTime`'s range) in binary ones
/// (ClickHouse RowBinary, where the column is a `DateTime`).
mod datetime_fmt {
    use chrono::{DateTime, NaiveDateTime};
    use serde::{de, Deserialize, Deserializer, Serializer};

    const FORMAT: &str = "%Y-%m-%d %H:%M:%S";

    pub(crate) fn serialize<S: Serializer>(t: &NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(&t.format(FORMAT))
        } else {
            s.serialize_u32(super::epoch_seconds(*t))
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDateTime, D::Error> {
        if d.is_human_readable() {
            let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
            NaiveDateTime::parse_from_str(&text, FORMAT).map_err(de::Error::custom)
        } else {
            let secs = u32::deserialize(d)?;
            DateTime::from_timestamp(i64::from(secs), 0)
                .map(|t| t.naive_utc())
                .ok_or_else(|| de::Error::custom("time out of range"))
        }
    }
}

/// The `obs_openvpn` flags: booleans in human-readable formats, `Int8` 0/1 in binary ones
/// (the table's column type).
mod int8_flag {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(b: &bool, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_bool(*b)
        } else {
            s.serialize_i8(i8::from(*b))
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        if d.is_human_readable() {
            bool::deserialize(d)
        } else {
            Ok(i8::deserialize(d)? != 0)
        }
    }
}

/// One row of the `fastpath` table, with the table's column names: the 26 columns upstream writes
/// (`update_time` is materialized by the server, the legacy columns keep their defaults). With the
/// `clickhouse` feature it is also the row the fastpath inserts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "clickhouse", derive(clickhouse::Row))]
pub struct FastpathRow {
    pub measurement_uid: String,
    pub report_id: String,
    pub input: String,
    pub probe_cc: String,
    pub probe_asn: u32,
    pub test_name: String,
    #[serde(with = "datetime_fmt")]
    pub test_start_time: NaiveDateTime,
    #[serde(with = "datetime_fmt")]
    pub measurement_start_time: NaiveDateTime,
    /// ujson text, byte-identical to upstream.
    pub scores: String,
    pub platform: String,
    /// "t" / "f"
    pub anomaly: String,
    /// "t" / "f"
    pub confirmed: String,
    /// "t" / "f"
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
    /// "t" / "f" / "u"
    pub is_verified: String,
}

/// One row of the `obs_openvpn` table (the 30 columns upstream writes; `error` and
/// `tcp_connect_status_success` keep their defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "clickhouse", derive(clickhouse::Row))]
pub struct ObsOpenvpnRow {
    #[serde(with = "int8_flag")]
    pub anomaly: bool,
    pub bootstrap_time: f32,
    #[serde(with = "int8_flag")]
    pub confirmed: bool,
    pub failure: String,
    pub input: String,
    pub last_handshake_transaction_id: i32,
    #[serde(with = "datetime_fmt")]
    pub measurement_start_time: NaiveDateTime,
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
    #[serde(with = "int8_flag")]
    pub success: bool,
    #[serde(with = "int8_flag")]
    pub success_handshake: bool,
    #[serde(with = "int8_flag")]
    pub success_icmp: bool,
    #[serde(with = "int8_flag")]
    pub success_urlgrab: bool,
    pub test_runtime: f32,
    #[serde(with = "datetime_fmt")]
    pub test_start_time: NaiveDateTime,
    pub transport: String,
}

/// The result of processing one measurement.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Row {
        row: Box<FastpathRow>,
        openvpn: Option<Box<ObsOpenvpnRow>>,
    },
    Discard(DiscardReason),
}

/// Parse the body and hand the measurement (plus `is_verified`) to `f`.
///
/// `raw` may be the `{format, content}` POST envelope or a bare measurement; either is
/// parsed in a single pass. Invalid UTF-8 is replaced with U+FFFD.
fn with_measurement<T>(raw: &[u8], f: impl FnOnce(&Measurement<'_>, String) -> T) -> Result<T, DiscardReason> {
    // fast validation first; replacement characters only for invalid input
    let text: Cow<str> = match std::str::from_utf8(raw) {
        Ok(t) => Cow::Borrowed(t),
        Err(_) => Cow::Owned(String::from_utf8_lossy(raw).into_owned()),
    };
    let top: Obj<TopLevel> = serde_json::from_str(&text).map_err(|_| DiscardReason::InvalidJson)?;
    let Obj::Val(top) = top else {
        return Err(DiscardReason::NotAnObject);
    };
    let is_verified = match top.is_verified.and_then(json::as_str).as_deref() {
        Some(v @ ("t" | "f" | "u")) => v.to_owned(),
        _ => "u".to_owned(),
    };
    let envelope = !top.other_keys && top.format.is_some() && top.content.is_some();
    if !envelope {
        return Ok(f(&top.msm, is_verified));
    }
    let format = top
        .format
        .and_then(json::as_str)
        .ok_or(DiscardReason::InvalidEnvelope)?;
    match (format.to_lowercase().as_str(), top.content) {
        ("json", Some(Content::Object(m))) => Ok(f(&m, is_verified)),
        ("json", _) => Err(DiscardReason::InvalidEnvelope),
        ("yaml", Some(Content::Text(yaml))) => {
            let json_text = yaml_to_json(&yaml)?;
            let m = parse_measurement(&json_text)?;
            Ok(f(&m, is_verified))
        }
        ("yaml", _) => Err(DiscardReason::InvalidEnvelope),
        _ => Err(DiscardReason::UnsupportedFormat),
    }
}

/// Normalize a legacy YAML measurement to JSON text.
fn yaml_to_json(yaml: &str) -> Result<String, DiscardReason> {
    let value: serde_json::Value = serde_yaml::from_str(yaml).map_err(|_| DiscardReason::InvalidYaml)?;
    if !value.is_object() {
        return Err(DiscardReason::InvalidYaml);
    }
    serde_json::to_string(&value).map_err(|_| DiscardReason::InvalidYaml)
}

/// Upstream `flag_measurements_with_wrong_date`, from the receive time in the uid.
fn flag_wrong_date(msm: &Measurement<'_>, uid: &str, scores: &mut ScoreMap) {
    if !uid.starts_with("20") || uid.chars().count() < 20 {
        return;
    }
    let b = uid.as_bytes();
    let recv = (|| {
        if b.len() < 22 || b[14] != b'.' || b[21] != b'_' {
            return None;
        }
        if !b[..14].iter().chain(&b[15..21]).all(u8::is_ascii_digit) {
            return None;
        }
        let t = NaiveDateTime::parse_from_str(std::str::from_utf8(&b[..21]).ok()?, "%Y%m%d%H%M%S%.6f").ok()?;
        Some(t)
    })();
    let Some(recv) = recv else { return };
    let start = match msm.measurement_start_time {
        None => Cow::Borrowed(""),
        Some(r) if !json::truthy(r) => Cow::Borrowed(""),
        Some(r) => match json::as_str(r) {
            Some(s) => s,
            None => return,
        },
    };
    let Some(start) = pyfmt::py_strptime(&start) else {
        return;
    };
    let delta = (recv - start).num_microseconds().map_or(f64::MAX, |us| us as f64 / 1e6);
    if delta < -3600.0 {
        scores.set("accuracy", SVal::Float(0.0));
        scores.set("msg", SVal::Str("Measurement start time from the future".into()));
    } else if delta > 31_536_000.0 {
        scores.set("accuracy", SVal::Float(0.0));
        scores.set("msg", SVal::Str("Measurement start time too old".into()));
    }
}

/// Score a parsed measurement; unscorable shapes become a failure score.
fn scores_for(msm: &Measurement<'_>, uid: &str, fps: &Fingerprints) -> Scores {
    let mut map = match scoring::score(msm, fps) {
        Ok(m) => m,
        Err(scoring::Unscorable(why)) => {
            let mut m = init_scores();
            m.set("accuracy", SVal::Float(0.0));
            m.set("msg", SVal::Str(format!("Unscorable measurement: {why}")));
            m
        }
    };
    flag_wrong_date(msm, uid, &mut map);
    Scores::new(map)
}

fn parse_measurement(text: &str) -> Result<Measurement<'_>, DiscardReason> {
    match serde_json::from_str::<Obj<Measurement>>(text) {
        Ok(Obj::Val(m)) => Ok(m),
        Ok(_) => Err(DiscardReason::NotAnObject),
        Err(_) => Err(DiscardReason::InvalidJson),
    }
}

/// Scores of one measurement (upstream `score_measurement` plus the wrong-date flag).
///
/// Fails only when the body cannot be parsed into a measurement at all.
pub fn score_measurement(raw: &[u8], measurement_uid: &str, fps: &Fingerprints) -> Result<Scores, DiscardReason> {
    with_measurement(raw, |msm, _| scores_for(msm, measurement_uid, fps))
}

/// Parse a measurement exactly as [`process`] does, without scoring it
/// (cheap validation, and the parse-only baseline of the benchmark).
pub fn parse_only(raw: &[u8]) -> Result<(), DiscardReason> {
    with_measurement(raw, |_, _| ())
}

/// Process one measurement like the upstream fastpath `process_measurement`.
pub fn process(raw: &[u8], measurement_uid: &str, fps: &Fingerprints) -> Outcome {
    match with_measurement(raw, |msm, is_verified| {
        build_row(msm, is_verified, measurement_uid, fps)
    }) {
        Ok(Ok(o)) => o,
        Ok(Err(reason)) | Err(reason) => Outcome::Discard(reason),
    }
}

fn string_or_empty(raw: Option<Raw<'_>>) -> String {
    raw.and_then(json::as_str).map(Cow::into_owned).unwrap_or_default()
}

fn parse_time(raw: Option<Raw<'_>>) -> Option<NaiveDateTime> {
    pyfmt::py_strptime(&json::as_str(raw?)?)
}

fn build_row(
    msm: &Measurement<'_>,
    is_verified: String,
    uid: &str,
    fps: &Fingerprints,
) -> Result<Outcome, DiscardReason> {
    let report_id = match msm.report_id {
        None => return Err(DiscardReason::NoReportId),
        Some(r) if json::is_null(r) => return Err(DiscardReason::NoReportId),
        Some(r) => json::as_str(r).ok_or(DiscardReason::InvalidReportId)?,
    };
    let probe_cc = match msm.probe_cc {
        None => Cow::Borrowed(""),
        Some(r) => json::as_str(r).ok_or(DiscardReason::InvalidProbeCc)?,
    };
    if probe_cc.to_uppercase() == "ZZ" {
        return Err(DiscardReason::ProbeCcZz);
    }
    let probe_asn_text = match msm.probe_asn {
        None => None,
        Some(r) => Some(json::as_str(r).ok_or(DiscardReason::InvalidProbeAsn)?),
    };
    if probe_asn_text.as_deref().is_some_and(|a| a.to_uppercase() == "AS0") {
        return Err(DiscardReason::ProbeAsnZero);
    }

    let scores = scores_for(msm, uid, fps);

    let probe_asn = probe_asn_text.ok_or(DiscardReason::MissingProbeAsn)?;
    let probe_asn = parse_asn(&probe_asn).ok_or(DiscardReason::InvalidProbeAsn)?;
    let test_name = match msm.test_name {
        Some(r) if json::truthy(r) => json::as_str(r).map(Cow::into_owned).unwrap_or_default(),
        _ => String::new(),
    };
    let (input, domain) = input_and_domain(msm, &test_name)?;
    let measurement_start_time =
        parse_time(msm.measurement_start_time).ok_or(DiscardReason::InvalidMeasurementStartTime)?;
    let test_start_time = parse_time(msm.test_start_time).ok_or(DiscardReason::InvalidTestStartTime)?;

    let (test_helper_address, test_helper_type) = match &msm.test_helpers {
        Some(Obj::Val(th)) => match &th.backend {
            Some(Obj::Val(b)) => (string_or_empty(b.address), string_or_empty(b.kind)),
            _ => (String::new(), String::new()),
        },
        _ => (String::new(), String::new()),
    };
    let annot = msm.annotations.as_ref().and_then(Obj::val);
    let annot_str = |v: Option<Raw<'_>>, default: &str| -> String {
        match v {
            Some(r) if !json::is_null(r) => json::as_str(r).map(Cow::into_owned).unwrap_or_default(),
            _ => default.to_owned(),
        }
    };
    let platform = annot_str(annot.and_then(|a| a.platform), "unset");
    let architecture = annot_str(annot.and_then(|a| a.architecture), "");
    let engine_name = annot_str(annot.and_then(|a| a.engine_name), "");
    let engine_version = annot_str(annot.and_then(|a| a.engine_version), "");
    let ooni_run_link_id = annot.and_then(|a| a.ooni_run_link_id).and_then(pyfmt::py_int_u64);
    let test_runtime = msm.test_runtime.and_then(json::as_py_number).unwrap_or(0.0) as f32;

    let row = FastpathRow {
        measurement_uid: uid.to_owned(),
        report_id: report_id.into_owned(),
        input,
        probe_cc: probe_cc.into_owned(),
        probe_asn,
        test_name: test_name.clone(),
        test_start_time,
        measurement_start_time,
        scores: scores.as_json().to_owned(),
        platform,
        anomaly: tf(scores.anomaly()),
        confirmed: tf(scores.confirmed()),
        msm_failure: tf(scores.msm_failure()),
        blocking_type: scores.blocking_type(),
        domain,
        software_name: string_or_empty(msm.software_name),
        software_version: string_or_empty(msm.software_version),
        test_version: string_or_empty(msm.test_version),
        test_runtime,
        architecture,
        engine_name,
        engine_version,
        test_helper_address,
        test_helper_type,
        ooni_run_link_id,
        is_verified,
    };
    let openvpn = (test_name == "openvpn").then(|| Box::new(openvpn_row(msm, &row)));
    Ok(Outcome::Row {
        row: Box::new(row),
        openvpn,
    })
}

fn tf(v: bool) -> String {
    if v { "t" } else { "f" }.to_owned()
}

/// `int(probe_asn[2:])` restricted to values a UInt32 column holds.
fn parse_asn(asn: &str) -> Option<u32> {
    let rest: String = asn.chars().skip(2).collect();
    let t = rest.trim();
    let t = t.strip_prefix('+').unwrap_or(t);
    if t.is_empty() || t.starts_with('_') || t.ends_with('_') || t.contains("__") {
        return None;
    }
    let digits: String = t.chars().filter(|&c| c != '_').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u32>().ok()
}

/// Upstream `extract_input_domain`.
fn input_and_domain(msm: &Measurement<'_>, test_name: &str) -> Result<(String, String), DiscardReason> {
    let Some(input) = msm.input.filter(|i| json::truthy(i)) else {
        return Ok((String::new(), String::new()));
    };
    match json::kind(input) {
        Kind::String => {
            let s = json::as_str(input).map(Cow::into_owned).unwrap_or_default();
            let domain = pyfmt::url_netloc(&s);
            Ok((s, domain))
        }
        Kind::Array if test_name == "meek_fronted_requests_test" => {
            let items: Vec<Raw> = serde_json::from_str(input.get()).map_err(|_| DiscardReason::InvalidInput)?;
            let items: Vec<String> = items
                .into_iter()
                .map(|i| json::as_str(i).map(Cow::into_owned))
                .collect::<Option<_>>()
                .ok_or(DiscardReason::InvalidInput)?;
            let domain = items.first().cloned().unwrap_or_default();
            Ok((format!("{{{}}}", items.join(",")), domain))
        }
        _ => Err(DiscardReason::InvalidInput),
    }
}

crate::json::json_object!(
    /// A network event's transaction id.
    NetworkEvent<'a> {
        "transaction_id" => transaction_id: Raw<'a>,
    }
);

/// Upstream `clickhouse_upsert_openvpn_obs`.
fn openvpn_row(msm: &Measurement<'_>, row: &FastpathRow) -> ObsOpenvpnRow {
    let empty = TestKeys::default();
    let tk = match &msm.test_keys {
        Some(Obj::Val(tk)) => tk,
        _ => &empty,
    };
    let resolver_asn = msm
        .resolver_asn
        .and_then(json::as_str)
        .and_then(|s| {
            let t = s.strip_prefix("AS").unwrap_or(&s);
            t.trim().parse::<i32>().ok()
        })
        .unwrap_or(0);
    let last_handshake_transaction_id = tk
        .network_events
        .and_then(|ne| serde_json::from_str::<Vec<Obj<NetworkEvent>>>(ne.get()).ok())
        .and_then(|events| {
            let mut best: Option<f64> = None;
            for e in events {
                let v = e.val()?.transaction_id.and_then(json::as_py_number)?;
                best = Some(best.map_or(v, |b: f64| b.max(v)));
            }
            best
        })
        .map_or(0, |v| v as i32);
    let num_or_zero = |r: Option<Raw>| r.and_then(json::as_py_number).unwrap_or(0.0) as f32;
    ObsOpenvpnRow {
        anomaly: json::is_true(msm.success),
        bootstrap_time: num_or_zero(tk.bootstrap_time),
        confirmed: false,
        failure: string_or_empty(tk.failure),
        input: string_or_empty(msm.input),
        last_handshake_transaction_id,
        measurement_start_time: row.measurement_start_time,
        measurement_uid: row.measurement_uid.clone(),
        minivpn_version: string_or_empty(tk.minivpn_version),
        obfs4_version: string_or_empty(tk.obfs4_version),
        obfuscation: string_or_empty(tk.obfuscation),
        platform: string_or_empty(msm.platform),
        probe_asn: i32::try_from(row.probe_asn).unwrap_or(i32::MAX),
        probe_cc: row.probe_cc.clone(),
        probe_network_name: string_or_empty(msm.probe_network_name),
        provider: string_or_empty(tk.provider),
        remote: string_or_empty(tk.remote),
        report_id: row.report_id.clone(),
        resolver_asn,
        resolver_ip: string_or_empty(msm.resolver_ip),
        resolver_network_name: string_or_empty(msm.resolver_network_name),
        software_name: row.software_name.clone(),
        software_version: row.software_version.clone(),
        success: json::truthy_opt(tk.success),
        success_handshake: json::truthy_opt(tk.success_handshake),
        success_icmp: json::truthy_opt(tk.success_icmp),
        success_urlgrab: json::truthy_opt(tk.success_urlgrab),
        test_runtime: num_or_zero(msm.test_runtime),
        test_start_time: row.test_start_time,
        transport: string_or_empty(tk.transport),
    }
}

/// Upstream `trivial_id`: `"01" + YYYYMMDD(measurement_start_time) + shake_128(raw).hexdigest(15)`.
pub fn trivial_id(raw: &[u8], measurement_start_time: Option<&str>) -> String {
    use sha3::digest::{ExtendableOutput, Update, XofReader};
    let mut h = sha3::Shake128::default();
    h.update(raw);
    let mut out = [0u8; 15];
    h.finalize_xof().read(&mut out);
    let day = measurement_start_time
        .and_then(pyfmt::py_strptime)
        .map_or_else(|| "00000000".to_owned(), |t| t.format("%Y%m%d").to_string());
    let mut id = String::with_capacity(40);
    id.push_str("01");
    id.push_str(&day);
    for b in out {
        id.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        id.push(char::from_digit(u32::from(b & 15), 16).unwrap_or('0'));
    }
    id
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn row_times_before_1970_or_after_2106_are_clamped() {
        let t = |s| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
        assert_eq!(epoch_seconds(t("1960-01-01 00:00:00")), 0);
        assert_eq!(epoch_seconds(t("2200-01-01 00:00:00")), u32::MAX);
        assert_eq!(epoch_seconds(t("2023-11-14 22:13:20")), 1_700_000_000);
    }

    #[test]
    fn trivial_id_matches_upstream_unit_test() {
        assert_eq!(
            trivial_id(b"", Some("2021-02-03 10:11:12")),
            "01202102037f9c2ba4e88f827d61604550760585"
        );
        assert!(trivial_id(b"x", None).starts_with("0100000000"));
    }

    #[test]
    fn asn_parsing_follows_python_int() {
        assert_eq!(parse_asn("AS0001"), Some(1));
        assert_eq!(parse_asn("AS 12 "), Some(12));
        assert_eq!(parse_asn("AS-1"), None);
        assert_eq!(parse_asn("ASx"), None);
        assert_eq!(parse_asn("AS99999999999"), None);
    }
}
