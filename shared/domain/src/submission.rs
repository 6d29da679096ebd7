//! Validation of `POST /report/{report_id}` (contract §2, steps 1–7) as one pure function.
//!
//! The order and the answers follow the new upstream service (`routers/reports.py`):
//!
//! 1. the report id splits on `_` into exactly 6 parts, else 400 `Incorrect format`;
//! 2. its cc has 2 characters, its test name is alphanumeric with 1 < len < 30, and its ASN is
//!    an integer, else 400 `Incorrect format`;
//! 3. ASN 0 or CC `ZZ` in the report id: discarded, 200 `{}` ([`Outcome::Discarded`]);
//! 4. the body is decoded by `Content-Encoding` within the size limit (413 when larger, 400
//!    when undecodable);
//! 5. the body is JSON whose top level is an object whose `content` is an object, else 400
//!    `Incorrect format`; `is_verified:"u"` is then added to the top-level object;
//! 6. the content's `probe_cc`, `probe_asn` and `test_name` agree with the report id, else 400
//!    `Inconsistent measurement`;
//! 7. `check_measurement_meta` on the content's values: 400 `bad_metadata` listing every
//!    failed check, then `asn_invalid`, `asn_0`, `cc_zz`.
//!
//! Answers use FastAPI's shape, `{"detail": ...}`. Where the upstream source digest leaves the
//! exact shape open, the choices are:
//! * `bad_metadata`: `{"detail":{"error":"bad_metadata","message":"Errors: ['bad_cc', 'tn_len']"}}`.
//!   Upstream builds the message with an f-string over a Python `list` of `str`, and
//!   `str(list)` is the list's repr: `[`, the items' reprs joined by `", "`, `]`. The repr of
//!   these plain identifiers is the identifier in single quotes, hence `['bad_cc', 'tn_len']`.
//! * `asn_invalid`, `asn_0`, `cc_zz`: `{"detail":{"error":"<code>"}}` (upstream passes a dict
//!   to `HTTPException(detail=...)`). In the route, `asn_0`/`cc_zz` cannot be reached because
//!   step 3 already discarded such report ids and step 6 requires the body to agree.
//! * body too large (no upstream limit): 413 `{"detail":"Request body too large"}`.
//! * an unsupported `Content-Encoding` (upstream decodes only `zstd` and would then fail to
//!   parse the still-encoded body as JSON): 400 `Incorrect format`. `gzip` is decoded, as the
//!   collector spec requires.
//!
//! Deliberate strictness beyond upstream, on inputs no real probe sends, so that every accepted
//! measurement yields a uid matching `\d{14}\.\d{6}_[A-Z]{2}_[a-z0-9]+_[0-9a-f]{16}`:
//! the report id's test name must be ASCII alphanumeric (Python's `isalnum` is Unicode-wide) and
//! its ASN ASCII digits; `bad_cc` also fails a cc that is not two ASCII capital letters
//! (upstream allows a digit, e.g. `A1`); the ASN must fit in 32 bits (`asn_invalid`); and the
//! uid carries the cc in uppercase (upstream copies the report id's cc, which may be lowercase).
//! A content field `probe_cc`, `probe_asn` or `test_name` that is absent counts as `""` (so it
//! is inconsistent); one that is present but not a string is `Incorrect format`.
//!
//! Performance: the body is parsed once, into a small typed view (`content`'s metadata fields
//! are read, everything else is skipped without building values), and `,"is_verified":"u"` is
//! spliced before the closing `}` of the top-level object instead of re-serialising it. Only a
//! body that already carries an `is_verified` key is re-serialised (through a
//! `serde_json::Map`, so its key order becomes sorted) to overwrite the client's value.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use crate::decompress::{decode_body_cow, BodyError};
use crate::ids::{MeasurementUid, ReportIdParts};

/// What the route does with a submission that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Store and process it; answer `{"measurement_uid": ...}`.
    Accepted(Box<Accepted>),
    /// Drop it silently; answer 200 `{}`.
    Discarded(DiscardReason),
}

/// Why a submission was discarded (step 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscardReason {
    /// ASN 0 in the report id.
    Asn0,
    /// CC `ZZ` in the report id.
    CcZz,
}

impl DiscardReason {
    /// Metric label, as upstream's `BAD_MEASUREMENTS_CNT` reason.
    pub fn reason(self) -> &'static str {
        match self {
            DiscardReason::Asn0 => "asn_0",
            DiscardReason::CcZz => "cc_zz",
        }
    }

    /// The HTTP status of the answer (200).
    pub fn status(self) -> u16 {
        200
    }

    /// The answer body.
    pub fn body_json(self) -> &'static str {
        "{}"
    }
}

/// Probe metadata read from the measurement's `content`, for the GeoIP-mismatch check and
/// metrics later on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProbeMeta {
    /// `content.probe_cc` as sent.
    pub probe_cc: String,
    /// `content.probe_asn` as sent, e.g. `AS30722`.
    pub probe_asn: String,
    /// `content.test_name` as sent, with underscores.
    pub test_name: String,
    pub software_name: Option<String>,
    pub software_version: Option<String>,
    /// `content.annotations.platform`.
    pub platform: Option<String>,
}

/// A measurement that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub measurement_uid: MeasurementUid,
    /// Two ASCII capitals.
    pub cc: String,
    /// From the report id: no underscores, `[a-z0-9]+`.
    pub test_name: String,
    pub asn: u32,
    /// The body to store: the decoded body with `"is_verified":"u"` in its top-level object.
    /// The uid's hash covers exactly these bytes.
    pub body: Vec<u8>,
    pub meta: ProbeMeta,
}

/// Which field of the body disagrees with the report id (step 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mismatch {
    Cc,
    Asn,
    TestName,
}

/// One failed `check_measurement_meta` check, in upstream's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MetaCheck {
    BadCc,
    TnLen,
    TnNoLower,
    AsnLen,
    AsnNoAsPrefix,
    AsnLeadingZero,
}

impl MetaCheck {
    pub fn as_str(self) -> &'static str {
        match self {
            MetaCheck::BadCc => "bad_cc",
            MetaCheck::TnLen => "tn_len",
            MetaCheck::TnNoLower => "tn_no_lower",
            MetaCheck::AsnLen => "asn_len",
            MetaCheck::AsnNoAsPrefix => "asn_no_as_prefix",
            MetaCheck::AsnLeadingZero => "asn_leading_zero",
        }
    }
}

/// Why a submission was refused, with the upstream HTTP status and body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// Steps 1–2: the report id is malformed.
    #[error("malformed report id")]
    BadReportId,
    /// Step 2: the report id's ASN is not an integer.
    #[error("report id ASN is not an integer")]
    BadReportIdAsn,
    /// Step 4: the decoded body exceeds the limit.
    #[error("body larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// Step 4: the body cannot be decoded.
    #[error("body cannot be decoded: {0}")]
    BadEncoding(String),
    /// Step 4: unsupported `Content-Encoding`.
    #[error("unsupported content encoding {0:?}")]
    UnsupportedEncoding(String),
    /// Step 5: not JSON, not an object, or `content` not an object.
    #[error("body is not a JSON object with an object content: {0}")]
    BadJson(String),
    /// Step 6.
    #[error("measurement disagrees with its report id ({0:?})")]
    Inconsistent(Mismatch),
    /// Step 7: every failed check, in order.
    #[error("bad metadata: {}", python_list_repr(.0))]
    BadMetadata(Vec<MetaCheck>),
    /// Step 7: the ASN number is not an integer (or does not fit in 32 bits).
    #[error("asn_invalid")]
    AsnInvalid,
    /// Step 7: AS0.
    #[error("asn_0")]
    Asn0,
    /// Step 7: ZZ.
    #[error("cc_zz")]
    CcZz,
}

impl From<BodyError> for Rejected {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge { limit } => Rejected::TooLarge { limit },
            BodyError::BadEncoding { .. } => Rejected::BadEncoding(e.to_string()),
            BodyError::UnsupportedEncoding(enc) => Rejected::UnsupportedEncoding(enc),
        }
    }
}

impl Rejected {
    /// The HTTP status of the answer.
    pub fn status(&self) -> u16 {
        match self {
            Rejected::TooLarge { .. } => 413,
            _ => 400,
        }
    }

    /// The answer body (FastAPI's `{"detail": ...}`).
    pub fn body_json(&self) -> String {
        use serde_json::json;
        let v = match self {
            Rejected::BadReportId
            | Rejected::BadReportIdAsn
            | Rejected::BadEncoding(_)
            | Rejected::UnsupportedEncoding(_)
            | Rejected::BadJson(_) => json!({"detail": "Incorrect format"}),
            Rejected::TooLarge { .. } => json!({"detail": "Request body too large"}),
            Rejected::Inconsistent(_) => json!({"detail": "Inconsistent measurement"}),
            Rejected::BadMetadata(checks) => json!({"detail": {
                "error": "bad_metadata",
                "message": format!("Errors: {}", python_list_repr(checks)),
            }}),
            Rejected::AsnInvalid => json!({"detail": {"error": "asn_invalid"}}),
            Rejected::Asn0 => json!({"detail": {"error": "asn_0"}}),
            Rejected::CcZz => json!({"detail": {"error": "cc_zz"}}),
        };
        v.to_string()
    }

    /// Short label for metrics and logs (upstream's metric reasons where they exist).
    pub fn reason(&self) -> &'static str {
        match self {
            Rejected::BadReportId => "bad_report_id",
            Rejected::BadReportIdAsn => "bad_asn",
            Rejected::TooLarge { .. } => "too_large",
            Rejected::BadEncoding(_) => "decompression_failed",
            Rejected::UnsupportedEncoding(_) => "unsupported_encoding",
            Rejected::BadJson(_) => "bad_json",
            Rejected::Inconsistent(Mismatch::Cc) => "cc_mismatch",
            Rejected::Inconsistent(Mismatch::Asn) => "asn_mismatch",
            Rejected::Inconsistent(Mismatch::TestName) => "test_name_mismatch",
            Rejected::BadMetadata(_) => "bad_metadata",
            Rejected::AsnInvalid => "asn_invalid",
            Rejected::Asn0 => "asn_0",
            Rejected::CcZz => "cc_zz",
        }
    }
}

/// Python's `str(list_of_plain_identifiers)`: `['a', 'b']`, `[]` when empty.
fn python_list_repr(checks: &[MetaCheck]) -> String {
    let mut s = String::from("[");
    for (i, c) in checks.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('\'');
        s.push_str(c.as_str());
        s.push('\'');
    }
    s.push(']');
    s
}

/// The report id's parts that survived steps 1–3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckedReportId<'a> {
    pub cc: &'a str,
    pub test_name: &'a str,
    /// The ASN as written in the report id (digits).
    pub asn_text: &'a str,
    pub asn: u64,
}

/// The result of steps 1–3 for a well-formed report id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportIdCheck<'a> {
    /// Go on and read the body.
    Proceed(CheckedReportId<'a>),
    /// Drop the submission without reading the body.
    Discard(DiscardReason),
}

/// Steps 1–3 alone: what the route can decide before reading the body.
pub fn check_report_id(report_id: &str) -> Result<ReportIdCheck<'_>, Rejected> {
    let parts = ReportIdParts::split(report_id).map_err(|_| Rejected::BadReportId)?;
    let tn = parts.test_name;
    let cc = parts.cc;
    let good = cc.chars().count() == 2
        && !tn.is_empty()
        && tn.bytes().all(|c| c.is_ascii_alphanumeric())
        && tn.len() > 1
        && tn.len() < 30;
    if !good {
        return Err(Rejected::BadReportId);
    }
    let asn_text = parts.asn;
    if asn_text.is_empty() || !asn_text.bytes().all(|c| c.is_ascii_digit()) {
        return Err(Rejected::BadReportIdAsn);
    }
    // Python's int() has no size limit; a longer number can never match a body ASN of at
    // most 10 digits, so it is simply malformed here.
    let asn: u64 = asn_text.parse().map_err(|_| Rejected::BadReportIdAsn)?;
    if asn == 0 {
        return Ok(ReportIdCheck::Discard(DiscardReason::Asn0));
    }
    if cc.to_uppercase() == "ZZ" {
        return Ok(ReportIdCheck::Discard(DiscardReason::CcZz));
    }
    Ok(ReportIdCheck::Proceed(CheckedReportId {
        cc,
        test_name: tn,
        asn_text,
        asn,
    }))
}

/// Validates a submission end to end (steps 1–7) and prepares what to store.
///
/// `limit` bounds the decoded body; `now` is the receive time that goes into the uid.
pub fn validate_submission(
    report_id: &str,
    content_encoding: Option<&str>,
    body: &[u8],
    limit: usize,
    now: DateTime<Utc>,
) -> Result<Outcome, Rejected> {
    let rid = match check_report_id(report_id)? {
        ReportIdCheck::Proceed(rid) => rid,
        ReportIdCheck::Discard(why) => return Ok(Outcome::Discarded(why)),
    };

    let decoded = decode_body_cow(content_encoding, body, limit)?;

    let view = parse_body(&decoded)?;
    let content = view
        .content
        .ok_or_else(|| Rejected::BadJson("content is not an object".into()))?;

    let body = if view.has_is_verified {
        overwrite_is_verified(&decoded)?
    } else {
        splice_is_verified(decoded.into_owned())?
    };

    let meta = content.into_meta();
    compare_report_id_to_body(&rid, &meta)?;
    let asn = check_measurement_meta(&meta.test_name, &meta.probe_cc, &meta.probe_asn)?;

    // Steps 6 and 7 guarantee cc.upper() == probe_cc, two ASCII capitals, and a report id test
    // name of ASCII lowercase letters and digits.
    let cc = meta.probe_cc.clone();
    let test_name = rid.test_name.to_owned();
    let measurement_uid =
        MeasurementUid::generate(now, &cc, &test_name, &body).map_err(|_| Rejected::BadReportId)?;
    Ok(Outcome::Accepted(Box::new(Accepted {
        measurement_uid,
        cc,
        test_name,
        asn,
        body,
        meta,
    })))
}

/// Step 6: the body must agree with the report id.
fn compare_report_id_to_body(rid: &CheckedReportId<'_>, meta: &ProbeMeta) -> Result<(), Rejected> {
    if rid.cc.to_uppercase() != meta.probe_cc.to_uppercase() {
        return Err(Rejected::Inconsistent(Mismatch::Cc));
    }
    // Python: asn.upper().lstrip("AS"), which strips any run of leading 'A' and 'S'.
    let body_asn = meta.probe_asn.to_uppercase();
    let body_asn = body_asn.trim_start_matches(['A', 'S']);
    let rid_asn = rid.asn_text.trim_start_matches(['A', 'S']);
    if rid_asn != body_asn {
        return Err(Rejected::Inconsistent(Mismatch::Asn));
    }
    let body_tn: String = meta.test_name.chars().filter(|c| *c != '_').collect();
    if rid.test_name != body_tn {
        return Err(Rejected::Inconsistent(Mismatch::TestName));
    }
    Ok(())
}

/// Step 7, upstream `check_measurement_meta`: returns the ASN number when everything holds.
///
/// * cc: 2 characters, uppercase, alphanumeric (here: two ASCII capital letters);
/// * test name: 1 < len ≤ 30, lowercase (Python `islower`: has a cased character, none upper);
/// * ASN: 3–12 characters, `AS` prefix, no leading zero after `AS` (but `AS0` itself is not a
///   leading zero: it is `asn_0`).
pub fn check_measurement_meta(
    test_name: &str,
    probe_cc: &str,
    probe_asn: &str,
) -> Result<u32, Rejected> {
    let mut errors = Vec::new();
    let cc_ok = probe_cc.len() == 2 && probe_cc.bytes().all(|c| c.is_ascii_uppercase());
    if !cc_ok {
        errors.push(MetaCheck::BadCc);
    }
    let tn_len = test_name.chars().count();
    if !(tn_len > 1 && tn_len <= 30) {
        errors.push(MetaCheck::TnLen);
    }
    if !python_islower(test_name) {
        errors.push(MetaCheck::TnNoLower);
    }
    let asn_len = probe_asn.chars().count();
    if !(3..=12).contains(&asn_len) {
        errors.push(MetaCheck::AsnLen);
    }
    if !probe_asn.starts_with("AS") {
        errors.push(MetaCheck::AsnNoAsPrefix);
    }
    if probe_asn.starts_with("AS0") && asn_len > 3 {
        errors.push(MetaCheck::AsnLeadingZero);
    }
    if !errors.is_empty() {
        return Err(Rejected::BadMetadata(errors));
    }
    let num = &probe_asn[2..];
    if num.is_empty() || !num.bytes().all(|c| c.is_ascii_digit()) {
        return Err(Rejected::AsnInvalid);
    }
    let asn: u32 = num.parse().map_err(|_| Rejected::AsnInvalid)?;
    if asn == 0 {
        return Err(Rejected::Asn0);
    }
    if probe_cc == "ZZ" {
        return Err(Rejected::CcZz);
    }
    Ok(asn)
}

/// Python's `str.islower()`: at least one cased character and no uppercase/titlecase ones.
fn python_islower(s: &str) -> bool {
    let mut cased = false;
    for c in s.chars() {
        if c.is_uppercase() {
            return false;
        }
        if c.is_lowercase() {
            cased = true;
        }
    }
    cased
}

/// Appends `,"is_verified":"u"` inside the top-level object, before its closing brace.
fn splice_is_verified(mut body: Vec<u8>) -> Result<Vec<u8>, Rejected> {
    const FIELD: &[u8] = b",\"is_verified\":\"u\"";
    // The body parsed as an object, so its last non-blank byte is its closing brace; the
    // object has at least the `content` member, so a comma is always right.
    let close = body
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .filter(|&i| body[i] == b'}')
        .ok_or_else(|| Rejected::BadJson("top level is not an object".into()))?;
    body.splice(close..close, FIELD.iter().copied());
    Ok(body)
}

/// Slow path for a body that already has `is_verified`: parse, overwrite, re-serialise.
fn overwrite_is_verified(body: &[u8]) -> Result<Vec<u8>, Rejected> {
    let mut map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(body).map_err(|e| Rejected::BadJson(e.to_string()))?;
    map.insert("is_verified".into(), serde_json::Value::String("u".into()));
    serde_json::to_vec(&map).map_err(|e| Rejected::BadJson(e.to_string()))
}

/// The parts of the top-level object we read.
struct BodyView {
    content: Option<ContentView>,
    has_is_verified: bool,
}

fn parse_body(body: &[u8]) -> Result<BodyView, Rejected> {
    // JSON text is UTF-8 (RFC 8259 §8.1) and upstream's `json.loads` refuses anything else.
    // `from_slice` does not check the strings that `IgnoredAny` skips, so check the whole body
    // first (found by the `submission` fuzz target; see tests/fuzz_regressions.rs).
    let text = std::str::from_utf8(body)
        .map_err(|e| Rejected::BadJson(format!("body is not UTF-8: {e}")))?;
    let mut de = serde_json::Deserializer::from_str(text);
    let view = BodyView::deserialize(&mut de).map_err(|e| Rejected::BadJson(e.to_string()))?;
    de.end().map_err(|e| Rejected::BadJson(e.to_string()))?;
    Ok(view)
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum TopField {
    Content,
    IsVerified,
    #[serde(other)]
    Other,
}

impl<'de> Deserialize<'de> for BodyView {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BodyView;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<BodyView, A::Error> {
                let mut view = BodyView {
                    content: None,
                    has_is_verified: false,
                };
                while let Some(key) = map.next_key::<TopField>()? {
                    match key {
                        // Duplicate keys: the last one wins, as with Python's json/ujson.
                        TopField::Content => {
                            view.content = map.next_value::<MaybeObject<ContentView>>()?.0
                        }
                        TopField::IsVerified => {
                            map.next_value::<IgnoredAny>()?;
                            view.has_is_verified = true;
                        }
                        TopField::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(view)
            }
        }
        // deserialize_map (not _struct): serde_json would let a struct come from an array.
        d.deserialize_map(V)
    }
}

/// `Some` when the value is an object, `None` for any other JSON value (which is skipped).
struct MaybeObject<T>(Option<T>);

/// Types read from a JSON object through a map visitor.
trait FromObject: Sized {
    fn from_map<'de, A: MapAccess<'de>>(map: A) -> Result<Self, A::Error>;
}

impl<'de, T: FromObject> Deserialize<'de> for MaybeObject<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: FromObject> Visitor<'de> for V<T> {
            type Value = MaybeObject<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::from_map(map).map(|t| MaybeObject(Some(t)))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MaybeObject(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(MaybeObject(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(MaybeObject(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(MaybeObject(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(MaybeObject(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(MaybeObject(None))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(MaybeObject(None))
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(MaybeObject(None))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A string, or `None` for any other JSON value (which is skipped).
struct MaybeString(Option<String>);

impl<'de> Deserialize<'de> for MaybeString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MaybeString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E>(self, s: &str) -> Result<MaybeString, E> {
                Ok(MaybeString(Some(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<MaybeString, E> {
                Ok(MaybeString(Some(s)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MaybeString, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(MaybeString(None))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<MaybeString, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MaybeString(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_unit<E>(self) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_none<E>(self) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// The measurement fields the submission path needs.
#[derive(Default)]
struct ContentView {
    probe_cc: Option<String>,
    probe_asn: Option<String>,
    test_name: Option<String>,
    software_name: Option<String>,
    software_version: Option<String>,
    platform: Option<String>,
}

impl ContentView {
    fn into_meta(self) -> ProbeMeta {
        ProbeMeta {
            probe_cc: self.probe_cc.unwrap_or_default(),
            probe_asn: self.probe_asn.unwrap_or_default(),
            test_name: self.test_name.unwrap_or_default(),
            software_name: self.software_name,
            software_version: self.software_version,
            platform: self.platform,
        }
    }
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum ContentField {
    ProbeCc,
    ProbeAsn,
    TestName,
    SoftwareName,
    SoftwareVersion,
    Annotations,
    #[serde(other)]
    Other,
}

impl FromObject for ContentView {
    fn from_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut c = ContentView::default();
        while let Some(key) = map.next_key::<ContentField>()? {
            match key {
                // Strict: these three must be strings when present.
                ContentField::ProbeCc => c.probe_cc = Some(map.next_value::<String>()?),
                ContentField::ProbeAsn => c.probe_asn = Some(map.next_value::<String>()?),
                ContentField::TestName => c.test_name = Some(map.next_value::<String>()?),
                ContentField::SoftwareName => c.software_name = map.next_value::<MaybeString>()?.0,
                ContentField::SoftwareVersion => {
                    c.software_version = map.next_value::<MaybeString>()?.0
                }
                ContentField::Annotations => {
                    c.platform = map
                        .next_value::<MaybeObject<Annotations>>()?
                        .0
                        .and_then(|a| a.platform)
                }
                ContentField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(c)
    }
}

struct Annotations {
    platform: Option<String>,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum AnnotationField {
    Platform,
    #[serde(other)]
    Other,
}

impl FromObject for Annotations {
    fn from_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut a = Annotations { platform: None };
        while let Some(key) = map.next_key::<AnnotationField>()? {
            match key {
                AnnotationField::Platform => a.platform = map.next_value::<MaybeString>()?.0,
                AnnotationField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const RID: &str = "20230101T000000Z_webconnectivity_IT_30722_n1_abcdefghijklmnop";

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-03-05T06:07:08.123456Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn body(cc: &str, asn: &str, tn: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "format": "json",
            "content": {
                "annotations": {"platform": "linux", "engine_name": "ooniprobe-engine"},
                "probe_asn": asn,
                "probe_cc": cc,
                "software_name": "ooniprobe-cli",
                "software_version": "3.20.0",
                "test_keys": {"requests": [{"x": [1, 2, {"y": null}]}], "blocking": false},
                "test_name": tn,
            }
        }))
        .unwrap()
    }

    fn good_body() -> Vec<u8> {
        body("IT", "AS30722", "web_connectivity")
    }

    fn validate(rid: &str, enc: Option<&str>, b: &[u8]) -> Result<Outcome, Rejected> {
        validate_submission(rid, enc, b, 1 << 20, now())
    }

    fn accepted(r: Result<Outcome, Rejected>) -> Accepted {
        match r {
            Ok(Outcome::Accepted(a)) => *a,
            other => panic!("expected acceptance, got {other:?}"),
        }
    }

    fn rejected(r: Result<Outcome, Rejected>) -> Rejected {
        match r {
            Err(e) => e,
            other => panic!("expected rejection, got {other:?}"),
        }
    }

    #[test]
    fn a_consistent_measurement_is_accepted_with_a_uid_covering_the_stored_body() {
        let a = accepted(validate(RID, None, &good_body()));
        assert!(a
            .measurement_uid
            .as_str()
            .starts_with("20240305060708.123456_IT_webconnectivity_"));
        assert_eq!(a.cc, "IT");
        assert_eq!(a.test_name, "webconnectivity");
        assert_eq!(a.asn, 30722);
        let again = MeasurementUid::generate(now(), "IT", "webconnectivity", &a.body).unwrap();
        assert_eq!(again, a.measurement_uid);
        assert_eq!(a.meta.platform.as_deref(), Some("linux"));
        assert_eq!(a.meta.software_name.as_deref(), Some("ooniprobe-cli"));
        assert_eq!(a.meta.software_version.as_deref(), Some("3.20.0"));
        assert_eq!(a.meta.probe_asn, "AS30722");
        assert_eq!(a.meta.test_name, "web_connectivity");
    }

    #[test]
    fn the_stored_body_is_the_original_with_is_verified_u_appended_to_the_top_level() {
        let original = good_body();
        let a = accepted(validate(RID, None, &original));
        let stored: Value = serde_json::from_slice(&a.body).unwrap();
        let mut expected: Value = serde_json::from_slice(&original).unwrap();
        expected["is_verified"] = json!("u");
        assert_eq!(stored, expected);
        // Everything before the splice point is byte-for-byte the original.
        assert_eq!(
            &a.body[..original.len() - 1],
            &original[..original.len() - 1]
        );
        assert!(a.body.ends_with(b",\"is_verified\":\"u\"}"));
    }

    #[test]
    fn trailing_whitespace_after_the_object_is_kept_after_the_splice() {
        let mut b = good_body();
        b.extend_from_slice(b" \n");
        let a = accepted(validate(RID, None, &b));
        assert!(a.body.ends_with(b",\"is_verified\":\"u\"} \n"));
        let v: Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(v["is_verified"], "u");
    }

    #[test]
    fn a_client_supplied_is_verified_is_overwritten_with_u() {
        let mut v: Value = serde_json::from_slice(&good_body()).unwrap();
        v["is_verified"] = json!("t");
        let a = accepted(validate(RID, None, &serde_json::to_vec(&v).unwrap()));
        let stored: Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(stored["is_verified"], "u");
        let text = String::from_utf8(a.body).unwrap();
        assert_eq!(text.matches("is_verified").count(), 1);
    }

    #[test]
    fn a_null_is_verified_also_counts_as_present() {
        let mut v: Value = serde_json::from_slice(&good_body()).unwrap();
        v["is_verified"] = Value::Null;
        let a = accepted(validate(RID, None, &serde_json::to_vec(&v).unwrap()));
        assert_eq!(
            String::from_utf8(a.body)
                .unwrap()
                .matches("is_verified")
                .count(),
            1
        );
    }

    #[test]
    fn a_zstd_body_is_decoded_before_validation() {
        let z = zstd::encode_all(&good_body()[..], 3).unwrap();
        let a = accepted(validate(RID, Some("zstd"), &z));
        assert_eq!(a.cc, "IT");
    }

    #[test]
    fn the_upstream_integtest_report_id_is_accepted() {
        let rid = "20230101T000000Z_integtest_IT_1_n1_integtest0000000";
        let z = zstd::encode_all(&body("IT", "AS1", "integtest")[..], 3).unwrap();
        let a = accepted(validate(rid, Some("zstd"), &z));
        assert!(a.measurement_uid.as_str().contains("_IT_integtest_"));
    }

    #[test]
    fn a_report_id_that_is_not_six_parts_is_incorrect_format() {
        for rid in ["bogus", "a_b_c_d_e", "a_b_c_d_e_f_g", ""] {
            let e = rejected(validate(rid, None, &good_body()));
            assert_eq!(e, Rejected::BadReportId, "{rid}");
            assert_eq!(e.status(), 400);
            assert_eq!(e.body_json(), r#"{"detail":"Incorrect format"}"#);
        }
    }

    #[test]
    fn a_report_id_with_bad_cc_or_test_name_is_incorrect_format() {
        for rid in [
            "20230101T000000Z_webconnectivity_ITA_30722_n1_x", // cc length
            "20230101T000000Z_web-connectivity_IT_30722_n1_x", // not alnum
            "20230101T000000Z_w_IT_30722_n1_x",                // length 1
            "20230101T000000Z_abcdefghijklmnopqrstuvwxyz0123_IT_30722_n1_x", // length 30
            "20230101T000000Z__IT_30722_n1_x",                 // empty
            "20230101T000000Z_wébconnectivity_IT_30722_n1_x",  // non-ASCII
        ] {
            assert_eq!(
                rejected(validate(rid, None, &good_body())),
                Rejected::BadReportId,
                "{rid}"
            );
        }
        // 29 characters is the longest allowed.
        let rid = "20230101T000000Z_abcdefghijklmnopqrstuvwxyz012_IT_30722_n1_x";
        let b = body("IT", "AS30722", "abcdefghijklmnopqrstuvwxyz012");
        assert!(matches!(validate(rid, None, &b), Ok(Outcome::Accepted(_))));
    }

    #[test]
    fn a_report_id_with_a_non_integer_asn_is_incorrect_format() {
        for asn in ["AS30722", "x", "", "-1", "3.5"] {
            let rid = format!("20230101T000000Z_webconnectivity_IT_{asn}_n1_x");
            let e = rejected(validate(&rid, None, &good_body()));
            assert_eq!(e, Rejected::BadReportIdAsn, "{asn}");
            assert_eq!(e.body_json(), r#"{"detail":"Incorrect format"}"#);
        }
    }

    #[test]
    fn asn_zero_or_cc_zz_in_the_report_id_is_discarded_before_the_body_is_read() {
        let garbage = b"not even json";
        for (rid, why) in [
            (
                "20230101T000000Z_webconnectivity_IT_0_n1_x",
                DiscardReason::Asn0,
            ),
            (
                "20230101T000000Z_webconnectivity_IT_000_n1_x",
                DiscardReason::Asn0,
            ),
            (
                "20230101T000000Z_webconnectivity_ZZ_30722_n1_x",
                DiscardReason::CcZz,
            ),
            (
                "20230101T000000Z_webconnectivity_zz_30722_n1_x",
                DiscardReason::CcZz,
            ),
        ] {
            assert_eq!(
                validate(rid, None, garbage),
                Ok(Outcome::Discarded(why)),
                "{rid}"
            );
        }
        assert_eq!(DiscardReason::CcZz.status(), 200);
        assert_eq!(DiscardReason::CcZz.body_json(), "{}");
    }

    #[test]
    fn a_body_over_the_limit_is_413() {
        let b = good_body();
        let e = rejected(validate_submission(RID, None, &b, b.len() - 1, now()));
        assert_eq!(e.status(), 413);
        assert_eq!(e.body_json(), r#"{"detail":"Request body too large"}"#);
        let z = zstd::encode_all(&b[..], 3).unwrap();
        let e = rejected(validate_submission(
            RID,
            Some("zstd"),
            &z,
            b.len() - 1,
            now(),
        ));
        assert_eq!(e.status(), 413);
    }

    #[test]
    fn an_undecodable_body_is_400() {
        let e = rejected(validate(RID, Some("zstd"), &good_body()));
        assert!(matches!(e, Rejected::BadEncoding(_)), "{e:?}");
        assert_eq!(e.status(), 400);
        assert_eq!(e.body_json(), r#"{"detail":"Incorrect format"}"#);
        let e = rejected(validate(RID, Some("br"), &good_body()));
        assert!(matches!(e, Rejected::UnsupportedEncoding(_)), "{e:?}");
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn a_body_that_is_not_a_json_object_with_object_content_is_400() {
        for b in [
            &b"not json"[..],
            b"[]",
            b"[{\"content\":{}}]",
            b"\"content\"",
            b"null",
            b"{}",
            b"{\"content\":null}",
            b"{\"content\":[]}",
            b"{\"content\":\"x\"}",
            b"{\"content\":{}",
            b"{\"content\":{}} trailing",
            b"{\"content\":{\"probe_cc\":5}}",
            b"\xff\xfe",
        ] {
            let e = rejected(validate(RID, None, b));
            assert!(
                matches!(e, Rejected::BadJson(_)),
                "{:?}: {e:?}",
                String::from_utf8_lossy(b)
            );
            assert_eq!(e.body_json(), r#"{"detail":"Incorrect format"}"#);
        }
    }

    #[test]
    fn a_body_disagreeing_with_the_report_id_is_inconsistent() {
        for (b, which) in [
            (body("IE", "AS30722", "web_connectivity"), Mismatch::Cc),
            (body("IT", "AS3303", "web_connectivity"), Mismatch::Asn),
            (body("IT", "AS30722", "dnscheck"), Mismatch::TestName),
            (
                body("IT", "AS30722", "Web_Connectivity"),
                Mismatch::TestName,
            ),
        ] {
            let e = rejected(validate(RID, None, &b));
            assert_eq!(e, Rejected::Inconsistent(which));
            assert_eq!(e.status(), 400);
            assert_eq!(e.body_json(), r#"{"detail":"Inconsistent measurement"}"#);
        }
        let no_cc = br#"{"content":{"probe_asn":"AS30722","test_name":"web_connectivity"}}"#;
        assert_eq!(
            rejected(validate(RID, None, no_cc)),
            Rejected::Inconsistent(Mismatch::Cc)
        );
    }

    #[test]
    fn asn_comparison_strips_any_leading_a_and_s_like_python_lstrip() {
        // "SA30722".upper().lstrip("AS") == "30722": consistent, then caught by step 7.
        let e = rejected(validate(
            RID,
            None,
            &body("IT", "SA30722", "web_connectivity"),
        ));
        assert_eq!(e, Rejected::BadMetadata(vec![MetaCheck::AsnNoAsPrefix]));
        // "as30722" is consistent too, and also lacks the uppercase prefix.
        let e = rejected(validate(
            RID,
            None,
            &body("IT", "as30722", "web_connectivity"),
        ));
        assert_eq!(e, Rejected::BadMetadata(vec![MetaCheck::AsnNoAsPrefix]));
        // "ASA30722" strips to "30722" but "A30722" is not a number.
        let e = rejected(validate(
            RID,
            None,
            &body("IT", "ASA30722", "web_connectivity"),
        ));
        assert_eq!(e, Rejected::AsnInvalid);
        assert_eq!(e.body_json(), r#"{"detail":{"error":"asn_invalid"}}"#);
    }

    #[test]
    fn a_lowercase_cc_agreeing_case_insensitively_fails_bad_cc() {
        let rid = "20230101T000000Z_webconnectivity_it_30722_n1_x";
        let e = rejected(validate(
            rid,
            None,
            &body("it", "AS30722", "web_connectivity"),
        ));
        assert_eq!(e, Rejected::BadMetadata(vec![MetaCheck::BadCc]));
        assert_eq!(
            e.body_json(),
            r#"{"detail":{"error":"bad_metadata","message":"Errors: ['bad_cc']"}}"#
        );
    }

    #[test]
    fn a_lowercase_report_id_cc_with_an_uppercase_body_cc_yields_an_uppercase_uid() {
        let rid = "20230101T000000Z_webconnectivity_it_30722_n1_x";
        let a = accepted(validate(rid, None, &good_body()));
        assert_eq!(a.cc, "IT");
        assert!(a.measurement_uid.as_str().contains("_IT_webconnectivity_"));
    }

    #[test]
    fn leading_zero_asn_is_bad_metadata() {
        let rid = "20230101T000000Z_webconnectivity_IT_07_n1_x";
        let e = rejected(validate(rid, None, &body("IT", "AS07", "web_connectivity")));
        assert_eq!(e, Rejected::BadMetadata(vec![MetaCheck::AsnLeadingZero]));
    }

    #[test]
    fn check_measurement_meta_accepts_the_thirty_character_test_name() {
        assert_eq!(
            check_measurement_meta("http_header_field_manipulation", "US", "AS30722"),
            Ok(30722)
        );
        assert_eq!(
            check_measurement_meta("web_connectivity", "IT", "AS123"),
            Ok(123)
        );
    }

    #[test]
    fn check_measurement_meta_lists_every_failed_check_in_order() {
        let e = check_measurement_meta("X", "it", "30722000000000").unwrap_err();
        assert_eq!(
            e,
            Rejected::BadMetadata(vec![
                MetaCheck::BadCc,
                MetaCheck::TnLen,
                MetaCheck::TnNoLower,
                MetaCheck::AsnLen,
                MetaCheck::AsnNoAsPrefix,
            ])
        );
        assert_eq!(
            e.body_json(),
            r#"{"detail":{"error":"bad_metadata","message":"Errors: ['bad_cc', 'tn_len', 'tn_no_lower', 'asn_len', 'asn_no_as_prefix']"}}"#
        );
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn check_measurement_meta_flags_leading_zeros_but_not_as0_itself() {
        for asn in ["AS07", "AS007"] {
            assert_eq!(
                check_measurement_meta("web_connectivity", "IT", asn),
                Err(Rejected::BadMetadata(vec![MetaCheck::AsnLeadingZero]))
            );
        }
        let e = check_measurement_meta("web_connectivity", "IT", "AS0").unwrap_err();
        assert_eq!(e, Rejected::Asn0);
        assert!(!e.body_json().contains("asn_leading_zero"));
        assert_eq!(e.body_json(), r#"{"detail":{"error":"asn_0"}}"#);
    }

    #[test]
    fn check_measurement_meta_refuses_zz_and_digits_in_cc() {
        let e = check_measurement_meta("web_connectivity", "ZZ", "AS1").unwrap_err();
        assert_eq!(e, Rejected::CcZz);
        assert_eq!(e.body_json(), r#"{"detail":{"error":"cc_zz"}}"#);
        assert_eq!(
            check_measurement_meta("web_connectivity", "A1", "AS1"),
            Err(Rejected::BadMetadata(vec![MetaCheck::BadCc]))
        );
    }

    #[test]
    fn check_measurement_meta_refuses_asns_beyond_32_bits() {
        assert_eq!(
            check_measurement_meta("ndt", "IT", "AS4294967295"),
            Ok(u32::MAX)
        );
        assert_eq!(
            check_measurement_meta("ndt", "IT", "AS4294967296"),
            Err(Rejected::AsnInvalid)
        );
    }

    #[test]
    fn test_names_of_only_digits_are_not_lowercase() {
        assert!(!python_islower("12345"));
        assert!(python_islower("web_connectivity"));
        assert!(python_islower("ndt7"));
        assert!(!python_islower("Ndt"));
    }

    #[test]
    fn missing_annotations_or_odd_software_fields_are_tolerated() {
        let b = br#"{"content":{"probe_cc":"IT","probe_asn":"AS30722","test_name":"web_connectivity","annotations":[1],"software_name":7}}"#;
        let a = accepted(validate(RID, None, b));
        assert_eq!(a.meta.platform, None);
        assert_eq!(a.meta.software_name, None);
    }

    #[test]
    fn escaped_strings_in_the_content_are_decoded() {
        let b = br#"{"content":{"probe_cc":"\u0049T","probe_asn":"AS30722","test_name":"web\u005fconnectivity"}}"#;
        let a = accepted(validate(RID, None, b));
        assert_eq!(a.meta.probe_cc, "IT");
    }

    #[test]
    fn duplicate_content_keys_keep_the_last_like_python() {
        let b = br#"{"content":{"probe_cc":"IE"},"content":{"probe_cc":"IT","probe_asn":"AS30722","test_name":"web_connectivity"}}"#;
        let a = accepted(validate(RID, None, b));
        assert_eq!(a.meta.probe_cc, "IT");
    }

    #[test]
    fn every_rejection_body_is_valid_json_with_a_detail() {
        let all = [
            Rejected::BadReportId,
            Rejected::BadReportIdAsn,
            Rejected::TooLarge { limit: 1 },
            Rejected::BadEncoding("x".into()),
            Rejected::UnsupportedEncoding("x".into()),
            Rejected::BadJson("x".into()),
            Rejected::Inconsistent(Mismatch::Asn),
            Rejected::BadMetadata(vec![MetaCheck::TnLen]),
            Rejected::AsnInvalid,
            Rejected::Asn0,
            Rejected::CcZz,
        ];
        for r in all {
            let v: Value = serde_json::from_str(&r.body_json()).unwrap();
            assert!(v.get("detail").is_some(), "{r:?}");
            assert!(!r.reason().is_empty());
        }
    }
}
