//! The SQS message from the submit Lambda to the scoring Lambda, and the S3 key under which
//! the submit Lambda stores each accepted measurement body.
//!
//! Message (JSON, version 1):
//! `{"v":1,"measurement_uid":…,"report_id":…,"object_key":…,"received_at":"2024-01-01T00:00:00.123Z",
//!   "client_cc":"IT","client_asn":30722,"body":{…}}`.
//! `client_cc`/`client_asn` are the GeoIP lookup of the submitting client's address (absent when
//! unknown), for the scorer's GeoIP-mismatch check. `body` is the stored measurement body (the
//! one the uid hash covers, with `is_verified:"u"`) inlined when the whole message stays under a
//! limit (default 200 KiB, below SQS's 256 KiB); otherwise the scorer reads `object_key`.
//!
//! Object key: `incoming/{YYYYMMDDHH}/{YYYYMMDDHH}_{cc}_{testname}/{uid}.post`, the hour being
//! the uid's receive hour (UTC), like upstream's spool directories and `postcans/` keys.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::ids::MeasurementUid;

/// The envelope format version this code writes and reads.
pub const ENVELOPE_VERSION: u8 = 1;

/// Default largest serialised message that still carries the body inline.
pub const DEFAULT_INLINE_LIMIT: usize = 200 * 1024;

/// Prefix of every stored measurement body.
pub const INCOMING_PREFIX: &str = "incoming/";

/// Why an envelope or object key could not be built or read.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("envelope is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unsupported envelope version {0}")]
    Version(u8),
    #[error("body is not UTF-8 JSON")]
    BodyNotJson,
    #[error("envelope fields disagree: {0}")]
    Inconsistent(&'static str),
    #[error("not an incoming object key")]
    BadObjectKey,
}

/// The message on the submission queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubmissionEnvelope {
    pub v: u8,
    pub measurement_uid: MeasurementUid,
    pub report_id: String,
    pub object_key: String,
    #[serde(with = "rfc3339_millis")]
    pub received_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_asn: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Box<RawValue>>,
}

impl SubmissionEnvelope {
    /// An envelope without an inline body; the object key and receive time come from the uid.
    pub fn new(
        measurement_uid: MeasurementUid,
        report_id: impl Into<String>,
        client_cc: Option<String>,
        client_asn: Option<u32>,
    ) -> Self {
        let object_key = incoming_object_key(&measurement_uid);
        let received_at = measurement_uid.received_at();
        SubmissionEnvelope {
            v: ENVELOPE_VERSION,
            measurement_uid,
            report_id: report_id.into(),
            object_key,
            received_at,
            client_cc,
            client_asn,
            body: None,
        }
    }

    /// Inlines `body` (a JSON document) when the serialised message then stays within
    /// `message_limit` bytes. Returns whether it was inlined.
    pub fn attach_body_if_fits(
        &mut self,
        body: &[u8],
        message_limit: usize,
    ) -> Result<bool, EnvelopeError> {
        self.body = None;
        let without = serde_json::to_vec(self)?.len();
        // `,"body":` plus the body itself.
        let with = without + 8 + body.len();
        if with > message_limit {
            return Ok(false);
        }
        let text = std::str::from_utf8(body).map_err(|_| EnvelopeError::BodyNotJson)?;
        let raw = RawValue::from_string(text.trim().to_owned())
            .map_err(|_| EnvelopeError::BodyNotJson)?;
        self.body = Some(raw);
        Ok(true)
    }

    /// Serialises the message.
    pub fn to_json(&self) -> Result<String, EnvelopeError> {
        Ok(serde_json::to_string(self)?)
    }

    /// Reads a message, checking its version and that its key and time match its uid.
    pub fn from_json(s: &str) -> Result<Self, EnvelopeError> {
        let env: SubmissionEnvelope = serde_json::from_str(s)?;
        if env.v != ENVELOPE_VERSION {
            return Err(EnvelopeError::Version(env.v));
        }
        if env.object_key != incoming_object_key(&env.measurement_uid) {
            return Err(EnvelopeError::Inconsistent("object_key"));
        }
        Ok(env)
    }

    /// The inline body's text, if any.
    pub fn body_str(&self) -> Option<&str> {
        self.body.as_deref().map(RawValue::get)
    }
}

/// `incoming/{YYYYMMDDHH}/{YYYYMMDDHH}_{cc}_{testname}/{uid}.post`, with the uid's receive hour,
/// cc and test name.
pub fn incoming_object_key(uid: &MeasurementUid) -> String {
    let hour = &uid.as_str()[..10];
    format!(
        "{INCOMING_PREFIX}{hour}/{hour}_{}_{}/{}.post",
        uid.cc(),
        uid.test_name(),
        uid.as_str()
    )
}

/// The parts of an incoming object key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingKey {
    /// The receive hour, at minute 0.
    pub hour: DateTime<Utc>,
    pub cc: String,
    pub test_name: String,
    pub uid: MeasurementUid,
}

/// Parses a key made by [`incoming_object_key`], checking that its parts agree with each other.
pub fn parse_incoming_object_key(key: &str) -> Result<IncomingKey, EnvelopeError> {
    let bad = || EnvelopeError::BadObjectKey;
    let rest = key.strip_prefix(INCOMING_PREFIX).ok_or_else(bad)?;
    let mut segs = rest.split('/');
    let (Some(hour), Some(dir), Some(file), None) =
        (segs.next(), segs.next(), segs.next(), segs.next())
    else {
        return Err(bad());
    };
    let uid =
        MeasurementUid::parse(file.strip_suffix(".post").ok_or_else(bad)?).map_err(|_| bad())?;
    let expected_dir = format!("{hour}_{}_{}", uid.cc(), uid.test_name());
    if hour.len() != 10 || &uid.as_str()[..10] != hour || dir != expected_dir {
        return Err(bad());
    }
    let received = uid.received_at();
    let hour_start = Utc
        .timestamp_opt(
            received.timestamp() - received.timestamp().rem_euclid(3600),
            0,
        )
        .single()
        .ok_or_else(bad)?;
    Ok(IncomingKey {
        hour: hour_start,
        cc: uid.cc().to_owned(),
        test_name: uid.test_name().to_owned(),
        uid,
    })
}

mod rfc3339_millis {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uid() -> MeasurementUid {
        MeasurementUid::parse("20240305060708.123456_IT_webconnectivity_0123456789abcdef").unwrap()
    }

    #[test]
    fn object_key_uses_the_uid_receive_hour_cc_and_test_name() {
        assert_eq!(
            incoming_object_key(&uid()),
            "incoming/2024030506/2024030506_IT_webconnectivity/20240305060708.123456_IT_webconnectivity_0123456789abcdef.post"
        );
    }

    #[test]
    fn object_key_parses_back_into_its_parts() {
        let k = parse_incoming_object_key(&incoming_object_key(&uid())).unwrap();
        assert_eq!(k.uid, uid());
        assert_eq!(k.cc, "IT");
        assert_eq!(k.test_name, "webconnectivity");
        assert_eq!(k.hour, Utc.with_ymd_and_hms(2024, 3, 5, 6, 0, 0).unwrap());
    }

    #[test]
    fn object_keys_with_disagreeing_parts_are_rejected() {
        let u = "20240305060708.123456_IT_webconnectivity_0123456789abcdef";
        for key in [
            format!("incoming/2024030507/2024030507_IT_webconnectivity/{u}.post"),
            format!("incoming/2024030506/2024030506_IE_webconnectivity/{u}.post"),
            format!("incoming/2024030506/2024030506_IT_ndt/{u}.post"),
            format!("incoming/2024030506/2024030506_IT_webconnectivity/{u}.json"),
            format!("postcans/2024030506/2024030506_IT_webconnectivity/{u}.post"),
            format!("incoming/2024030506/2024030506_IT_webconnectivity/x/{u}.post"),
            "incoming/".to_owned(),
        ] {
            assert!(parse_incoming_object_key(&key).is_err(), "{key}");
        }
    }

    #[test]
    fn envelope_round_trips_with_an_inline_body() {
        let mut env = SubmissionEnvelope::new(uid(), "rid", Some("IT".into()), Some(30722));
        let body = br#"{"format":"json","content":{"a":[1,2]},"is_verified":"u"}"#;
        assert!(env.attach_body_if_fits(body, DEFAULT_INLINE_LIMIT).unwrap());
        let json = env.to_json().unwrap();
        assert!(
            json.contains(r#""received_at":"2024-03-05T06:07:08.123Z""#),
            "{json}"
        );
        assert!(json.contains(r#""body":{"format":"json""#), "{json}");
        let back = SubmissionEnvelope::from_json(&json).unwrap();
        assert_eq!(back.v, 1);
        assert_eq!(back.measurement_uid, uid());
        assert_eq!(back.report_id, "rid");
        assert_eq!(back.object_key, incoming_object_key(&uid()));
        assert_eq!(back.client_cc.as_deref(), Some("IT"));
        assert_eq!(back.client_asn, Some(30722));
        assert_eq!(back.body_str().unwrap().as_bytes(), body);
        assert_eq!(back.received_at.timestamp_subsec_millis(), 123);
    }

    #[test]
    fn envelope_without_geoip_or_body_omits_those_fields() {
        let env = SubmissionEnvelope::new(uid(), "rid", None, None);
        let json = env.to_json().unwrap();
        assert!(
            !json.contains("client_cc") && !json.contains("client_asn") && !json.contains("body")
        );
        let back = SubmissionEnvelope::from_json(&json).unwrap();
        assert!(back.body.is_none() && back.client_cc.is_none() && back.client_asn.is_none());
    }

    #[test]
    fn a_body_that_would_exceed_the_limit_is_left_out() {
        let mut env = SubmissionEnvelope::new(uid(), "rid", None, None);
        let base = env.to_json().unwrap().len();
        let body = br#"{"content":{}}"#;
        // Exactly fits.
        assert!(env
            .attach_body_if_fits(body, base + 8 + body.len())
            .unwrap());
        assert_eq!(env.to_json().unwrap().len(), base + 8 + body.len());
        // One byte short.
        assert!(!env
            .attach_body_if_fits(body, base + 7 + body.len())
            .unwrap());
        assert!(env.body.is_none());
    }

    #[test]
    fn a_non_json_body_cannot_be_inlined() {
        let mut env = SubmissionEnvelope::new(uid(), "rid", None, None);
        assert!(matches!(
            env.attach_body_if_fits(b"{nope", 1 << 20),
            Err(EnvelopeError::BodyNotJson)
        ));
        assert!(matches!(
            env.attach_body_if_fits(b"\xff", 1 << 20),
            Err(EnvelopeError::BodyNotJson)
        ));
    }

    #[test]
    fn other_versions_and_tampered_keys_are_refused() {
        let env = SubmissionEnvelope::new(uid(), "rid", None, None);
        let json = env.to_json().unwrap();
        let v2 = json.replace(r#""v":1"#, r#""v":2"#);
        assert!(matches!(
            SubmissionEnvelope::from_json(&v2),
            Err(EnvelopeError::Version(2))
        ));
        let moved = json.replace("incoming/2024030506/", "incoming/2024030507/");
        assert!(matches!(
            SubmissionEnvelope::from_json(&moved),
            Err(EnvelopeError::Inconsistent(_))
        ));
        let bad_uid = json.replace("_IT_webconnectivity_0123", "_it_webconnectivity_0123");
        assert!(SubmissionEnvelope::from_json(&bad_uid).is_err());
    }
}
