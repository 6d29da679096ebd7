//! Small helpers shared by the route modules: the upstream datetime wire format, FastAPI-style
//! 422 details, boolean query parsing and the "optional user" rule of public routes.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use lambda_http::Request;
use ooni_platform::auth::{UserAuth, UserClaims};
use ooni_platform::{ApiError, ErrorBody};
use serde::{Deserialize, Deserializer, Serializer};
use serde_json::json;

/// Upstream's `ISO_FORMAT_DATETIME` (`%Y-%m-%dT%H:%M:%S.%fZ`), always 6 fractional digits.
pub fn fmt_datetime(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Parses what pydantic accepts for a datetime in practice: RFC 3339 with `Z` or an offset,
/// or a naive `YYYY-MM-DDTHH:MM:SS[.f]` (taken as UTC), or a bare date.
pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(Utc.from_utc_datetime(&n));
        }
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|n| Utc.from_utc_datetime(&n))
}

/// Serde adapter for datetimes in the upstream wire format.
pub mod wire_time {
    use super::*;

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&fmt_datetime(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        parse_datetime(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid datetime {s:?}")))
    }
}

/// Serde adapter for optional datetimes in the upstream wire format.
pub mod wire_time_opt {
    use super::*;

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&fmt_datetime(t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) if s.trim().is_empty() => Ok(None),
            Some(s) => parse_datetime(&s)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("invalid datetime {s:?}"))),
        }
    }
}

/// Now, truncated to whole seconds (upstream `utcnow_seconds`).
pub fn now_seconds() -> DateTime<Utc> {
    let now = Utc::now().timestamp();
    Utc.timestamp_opt(now, 0).single().unwrap_or_else(Utc::now)
}

/// A FastAPI-shaped 422: `{"detail": [{"loc": [...], "msg": ..., "type": "value_error"}]}`.
pub fn invalid(loc: &[&str], msg: impl Into<String>) -> ApiError {
    let mut path = vec!["body"];
    path.extend_from_slice(loc);
    ApiError::unprocessable(json!([{ "loc": path, "msg": msg.into(), "type": "value_error" }]))
}

/// A 422 for a query or path parameter.
pub fn invalid_param(kind: &str, name: &str, msg: impl Into<String>) -> ApiError {
    ApiError::unprocessable(
        json!([{ "loc": [kind, name], "msg": msg.into(), "type": "value_error" }]),
    )
}

/// Re-shapes an `{"error": msg}` into FastAPI's `{"detail": msg}` for the routes ported from
/// the FastAPI services (the shared extractor speaks the legacy shape).
pub fn as_detail(mut e: ApiError) -> ApiError {
    if let ErrorBody::Error(msg) = &e.body {
        e.body = ErrorBody::Detail(json!(msg));
    }
    e
}

/// The caller's session on a public route: an absent, invalid, expired or expunged token is
/// anonymous (upstream `get_account_id_or_none`); a failing dependency is still an error.
pub async fn optional_user(auth: &UserAuth, req: &Request) -> Result<Option<UserClaims>, ApiError> {
    match auth.optional(req).await {
        Ok(c) => Ok(c),
        Err(e) if e.status == http::StatusCode::UNAUTHORIZED => Ok(None),
        Err(e) => Err(e),
    }
}

/// A boolean query parameter the way FastAPI parses one; `Err` names the parameter.
pub fn query_bool(req: &Request, name: &str) -> Result<Option<bool>, ApiError> {
    match ooni_platform::request::query(req, name) {
        None => Ok(None),
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" | "t" | "y" => Ok(Some(true)),
            "false" | "0" | "no" | "off" | "f" | "n" => Ok(Some(false)),
            _ => Err(invalid_param(
                "query",
                name,
                "Input should be a valid boolean",
            )),
        },
    }
}

/// Number of Unicode scalar values, as Python's `len` counts them.
pub fn char_len(s: &str) -> usize {
    s.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_are_written_with_six_fractional_digits_and_a_z() {
        let t = Utc.with_ymd_and_hms(2025, 7, 1, 0, 0, 0).unwrap();
        assert_eq!(fmt_datetime(&t), "2025-07-01T00:00:00.000000Z");
    }

    #[test]
    fn the_upstream_format_and_rfc3339_and_naive_times_all_parse() {
        let want = Utc.with_ymd_and_hms(2025, 7, 1, 12, 30, 0).unwrap();
        assert_eq!(parse_datetime("2025-07-01T12:30:00.000000Z"), Some(want));
        assert_eq!(parse_datetime("2025-07-01T14:30:00+02:00"), Some(want));
        assert_eq!(parse_datetime("2025-07-01T12:30:00"), Some(want));
        assert_eq!(parse_datetime("not a date"), None);
    }

    #[test]
    fn legacy_errors_become_fastapi_details() {
        let e = as_detail(ApiError::unauthorized("Invalid credentials"));
        assert_eq!(e.body.to_json(), json!({"detail": "Invalid credentials"}));
        assert_eq!(e.status, 401);
    }
}
