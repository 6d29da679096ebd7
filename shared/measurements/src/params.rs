//! Query-string parsing for the read API: one [`Params`] per request (repeated keys kept, in
//! order) and typed parsers whose failures are FastAPI-shaped 422s
//! (`{"detail":[{"loc":["query",name],"msg":...,"type":...}]}`), as the upstream service sends.
//!
//! An empty value (`?probe_cc=`) counts as absent: Explorer and scripts send empty filters.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use lambda_http::{Request, RequestExt};
use ooni_platform::ApiError;
use serde_json::json;

/// The query parameters of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// From the request URI's raw query (order and repeats kept), else from the parsed query map.
    pub fn from_request(req: &Request) -> Self {
        if let Some(q) = req.uri().query() {
            return Params::parse(q);
        }
        let mut pairs = Vec::new();
        if let Some(map) = req.query_string_parameters_ref() {
            for (k, _) in map.iter() {
                for v in map.all(k).unwrap_or_default() {
                    pairs.push((k.to_string(), v.to_string()));
                }
            }
            pairs.sort();
            pairs.dedup();
        }
        Params { pairs }
    }

    /// Parses an `application/x-www-form-urlencoded` query string.
    pub fn parse(query: &str) -> Self {
        Params {
            pairs: url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        }
    }

    /// The first non-empty value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// A string of at least `min_len` characters.
    pub fn string_min(&self, name: &str, min_len: usize) -> Result<Option<String>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) if v.chars().count() < min_len => Err(invalid(
                name,
                &format!("String should have at least {min_len} characters"),
                "string_too_short",
            )),
            Some(v) => Ok(Some(v.to_owned())),
        }
    }

    /// A boolean in pydantic's lax spelling (`true/false/1/0/yes/no/on/off/t/f/y/n`).
    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        self.get(name)
            .map(|v| {
                parse_bool(v)
                    .ok_or_else(|| invalid(name, "Input should be a valid boolean", "bool_parsing"))
            })
            .transpose()
    }

    /// A non-negative integer no larger than `max`.
    pub fn uint(&self, name: &str, max: u64) -> Result<Option<u64>, ApiError> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        let n: i128 = v
            .trim()
            .parse()
            .map_err(|_| invalid(name, "Input should be a valid integer", "int_parsing"))?;
        if n < 0 {
            return Err(invalid(
                name,
                "Input should be greater than or equal to 0",
                "greater_than_equal",
            ));
        }
        if n > i128::from(max) {
            return Err(invalid(
                name,
                &format!("Input should be less than or equal to {max}"),
                "less_than_equal",
            ));
        }
        u64::try_from(n)
            .map(Some)
            .map_err(|_| invalid(name, "Input should be a valid integer", "int_parsing"))
    }

    /// A date or date-time (see [`parse_datetime`]), in UTC.
    pub fn datetime(&self, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        self.get(name)
            .map(|v| {
                parse_datetime(v).ok_or_else(|| {
                    invalid(name, "Input should be a valid datetime", "datetime_parsing")
                })
            })
            .transpose()
    }

    /// A comma-separated list: items trimmed, empties dropped, duplicates removed, sorted
    /// (upstream's `commasplit`).
    pub fn comma_list(&self, name: &str) -> Vec<String> {
        self.get(name).map(comma_split).unwrap_or_default()
    }

    /// A value matching `allowed(value)`, else a 422 naming `pattern`.
    pub fn matching(
        &self,
        name: &str,
        pattern: &str,
        allowed: impl Fn(&str) -> bool,
    ) -> Result<Option<String>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) if allowed(v) => Ok(Some(v.to_owned())),
            Some(_) => Err(invalid(
                name,
                &format!("String should match pattern '{pattern}'"),
                "string_pattern_mismatch",
            )),
        }
    }

    /// One of `choices` (compared case-insensitively, returned lower-cased).
    pub fn choice(&self, name: &str, choices: &[&str]) -> Result<Option<String>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => {
                let lower = v.to_ascii_lowercase();
                if choices.contains(&lower.as_str()) {
                    Ok(Some(lower))
                } else {
                    let list = choices
                        .iter()
                        .map(|c| format!("'{c}'"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    Err(invalid(name, &format!("Input should be {list}"), "enum"))
                }
            }
        }
    }
}

/// A FastAPI-style 422 for query parameter `name`.
pub fn invalid(name: &str, msg: &str, kind: &str) -> ApiError {
    ApiError::unprocessable(json!([{ "loc": ["query", name], "msg": msg, "type": kind }]))
}

/// `commasplit`: trimmed, non-empty, unique, sorted.
pub fn comma_split(s: &str) -> Vec<String> {
    let mut out: Vec<String> = s
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    out.sort();
    out.dedup();
    out
}

pub fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "t" | "y" => Some(true),
        "false" | "0" | "no" | "off" | "f" | "n" => Some(false),
        _ => None,
    }
}

/// Parses `YYYY-MM-DD`, `YYYY-MM-DD[T ]HH:MM[:SS[.frac]]` with an optional `Z` or `±HH:MM`
/// offset (no offset means UTC), or integer Unix seconds.
pub fn parse_datetime(v: &str) -> Option<DateTime<Utc>> {
    let v = v.trim();
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|n| Utc.from_utc_datetime(&n));
    }
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return v
            .parse::<i64>()
            .ok()
            .and_then(|s| Utc.timestamp_opt(s, 0).single());
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Some(t.with_timezone(&Utc));
    }
    let normalized = v.replacen(' ', "T", 1);
    if let Ok(t) = DateTime::parse_from_str(&normalized, "%Y-%m-%dT%H:%M:%S%.f%:z") {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_str(&normalized, "%Y-%m-%dT%H:%M%:z") {
        return Some(t.with_timezone(&Utc));
    }
    let naive = normalized.strip_suffix('Z').unwrap_or(&normalized);
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(naive, fmt) {
            return Some(Utc.from_utc_datetime(&n));
        }
    }
    None
}

/// An ASN as `AS123` or `123`.
pub fn parse_asn(v: &str) -> Option<u32> {
    let v = v.trim();
    let digits = v
        .strip_prefix("AS")
        .or_else(|| v.strip_prefix("as"))
        .unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_count_as_absent_and_repeats_keep_the_first() {
        let p = Params::parse("probe_cc=&probe_cc=IT&test_name=a&test_name=b");
        assert_eq!(p.get("probe_cc"), Some("IT"));
        assert_eq!(p.get("test_name"), Some("a"));
        assert_eq!(p.get("missing"), None);
    }

    #[test]
    fn datetimes_parse_in_the_spellings_clients_use() {
        let midnight = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(parse_datetime("2024-01-01"), Some(midnight));
        assert_eq!(parse_datetime("2024-01-01T00:00:00"), Some(midnight));
        assert_eq!(parse_datetime("2024-01-01 00:00:00"), Some(midnight));
        assert_eq!(parse_datetime("2024-01-01T00:00:00Z"), Some(midnight));
        assert_eq!(
            parse_datetime("2024-01-01T00:00:00.000000Z"),
            Some(midnight)
        );
        assert_eq!(parse_datetime("2024-01-01T02:00:00+02:00"), Some(midnight));
        assert_eq!(parse_datetime("2024-01-01T00:00"), Some(midnight));
        assert_eq!(parse_datetime("1704067200"), Some(midnight));
        assert_eq!(parse_datetime("2024-13-01"), None);
        assert_eq!(parse_datetime("yesterday"), None);
    }

    #[test]
    fn booleans_accept_pydantic_spellings_and_reject_others() {
        let p = Params::parse("a=True&b=0&c=maybe");
        assert_eq!(p.bool("a").unwrap(), Some(true));
        assert_eq!(p.bool("b").unwrap(), Some(false));
        assert_eq!(p.bool("c").unwrap_err().status, 422);
        assert_eq!(p.bool("d").unwrap(), None);
    }

    #[test]
    fn integers_outside_the_allowed_range_are_422() {
        let p = Params::parse("limit=1000001&offset=-1&x=abc&ok=50");
        assert_eq!(p.uint("limit", 1_000_000).unwrap_err().status, 422);
        assert_eq!(p.uint("offset", u64::MAX).unwrap_err().status, 422);
        assert_eq!(p.uint("x", 10).unwrap_err().status, 422);
        assert_eq!(p.uint("ok", 100).unwrap(), Some(50));
    }

    #[test]
    fn comma_lists_are_trimmed_deduplicated_and_sorted() {
        assert_eq!(comma_split("b, a,,b ,c"), vec!["a", "b", "c"]);
        assert!(comma_split(" , ").is_empty());
    }

    #[test]
    fn asns_parse_with_or_without_the_prefix() {
        assert_eq!(parse_asn("AS30722"), Some(30722));
        assert_eq!(parse_asn("30722"), Some(30722));
        assert_eq!(parse_asn("ASX"), None);
        assert_eq!(parse_asn("-1"), None);
        assert_eq!(parse_asn("99999999999"), None);
    }

    #[test]
    fn validation_errors_have_the_fastapi_shape() {
        let err = Params::parse("order=sideways")
            .choice("order", &["asc", "desc"])
            .unwrap_err();
        assert_eq!(err.status, 422);
        let body = err.body.to_json();
        assert_eq!(body["detail"][0]["loc"], json!(["query", "order"]));
    }

    #[test]
    fn short_strings_are_rejected_by_min_length() {
        let p = Params::parse("input=ab&report_id=abc");
        assert_eq!(p.string_min("input", 3).unwrap_err().status, 422);
        assert_eq!(p.string_min("report_id", 3).unwrap(), Some("abc".into()));
    }
}
