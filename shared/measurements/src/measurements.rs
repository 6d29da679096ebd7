//! `GET /api/v1/measurements`, `/api/v1/measurement/{uid}`, `/api/v1/raw_measurement` and
//! `/api/v1/measurement_meta`: listing measurements from `fastpath` and looking one up with its
//! body. Shapes, defaults and limits follow the upstream measurements service; the upstream bugs
//! fixed here are noted where they are fixed.

use crate::body::BodyError;
use crate::db::DbError;
use crate::params::{invalid, parse_asn, Params};
use crate::sql::{Sql, Where};
use crate::State;
use chrono::{DateTime, Duration, TimeZone, Utc};
use http::header::CONTENT_DISPOSITION;
use http::{HeaderValue, StatusCode};
use lambda_http::Request;
use ooni_platform::request::{header, path_param};
use ooni_platform::response::{json, raw};
use ooni_platform::{ApiError, Cache, ErrorBody, HttpResult};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Instant;

/// Largest `limit` accepted (upstream's cap).
pub const MAX_LIMIT: u64 = 1_000_000;
/// Longest `since`..`until` range of a listing, in whole days (upstream: 6 × 30).
pub const MAX_RANGE_DAYS: i64 = 180;
/// A listing page stops early past this many body bytes: a Lambda response is capped at 6 MB
/// (and the body is JSON-escaped inside it), so `next_url` continues where the page stopped.
pub const MAX_LIST_BODY_BYTES: usize = 4_000_000;

/// One `fastpath` row as a listing shows it.
#[derive(Debug, clickhouse::Row, Deserialize)]
struct ListRow {
    measurement_uid: String,
    report_id: String,
    probe_cc: String,
    probe_asn: u32,
    test_name: String,
    measurement_start_time: u32,
    input: String,
    anomaly: String,
    confirmed: String,
    msm_failure: String,
    scores: String,
    is_verified: String,
}

#[derive(Serialize)]
struct ListItem<'a> {
    anomaly: bool,
    confirmed: bool,
    failure: bool,
    input: Option<&'a str>,
    measurement_start_time: String,
    measurement_uid: &'a str,
    measurement_url: String,
    probe_asn: String,
    probe_cc: &'a str,
    report_id: &'a str,
    scores: &'a RawValue,
    test_name: &'a str,
    verification_status: Option<&'static str>,
}

#[derive(Debug, Serialize, PartialEq)]
struct ListMetadata {
    count: i64,
    current_page: i64,
    limit: u64,
    next_url: Option<String>,
    offset: u64,
    pages: i64,
    query_time: f64,
}

/// `t`/`f`/`u` of `is_verified` as the API spells it.
fn verification_status(code: &str) -> Option<&'static str> {
    match code {
        "t" => Some("verified"),
        "f" => Some("failed"),
        "u" => Some("unverified"),
        _ => None,
    }
}

/// `2024-01-01T00:00:01.000000Z`, the listing's timestamp format (upstream's ISO encoder).
fn iso_micro(epoch: u32) -> String {
    let t = Utc
        .timestamp_opt(i64::from(epoch), 0)
        .single()
        .unwrap_or_default();
    t.format("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()
}

/// `2024-01-01T00:00:01Z`, measurement_meta's timestamp format.
fn iso_seconds(epoch: u32) -> String {
    let t = Utc
        .timestamp_opt(i64::from(epoch), 0)
        .single()
        .unwrap_or_default();
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `base/api/v1/raw_measurement?measurement_uid=…`
fn measurement_url(base_url: &str, uid: &str) -> String {
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("measurement_uid", uid)
        .finish();
    format!("{base_url}/api/v1/raw_measurement?{q}")
}

/// Seconds since the epoch clamped into ClickHouse `DateTime`'s range.
fn epoch_u32(t: DateTime<Utc>) -> u32 {
    u32::try_from(t.timestamp().clamp(0, i64::from(u32::MAX))).unwrap_or(0)
}

/// The parsed filters of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub report_id: Option<String>,
    pub input: Option<String>,
    pub domains: Vec<String>,
    pub probe_cc: Vec<String>,
    pub probe_asn: Vec<u32>,
    pub test_name: Vec<String>,
    pub category_code: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub anomaly: Option<bool>,
    pub confirmed: Option<bool>,
    pub failure: Option<bool>,
    pub software_version: Vec<String>,
    pub test_version: Vec<String>,
    pub engine_version: Vec<String>,
    pub ooni_run_link_id: Vec<u64>,
    pub ascending: bool,
    pub offset: u64,
    pub limit: u64,
}

fn plain_list(v: Option<&str>) -> Vec<String> {
    v.map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

impl ListQuery {
    /// Validates the query string; `now` fixes the default window (until tomorrow 00:00 UTC,
    /// since 30 days before `until`) when neither `until` nor `report_id` is given.
    pub fn parse(p: &Params, now: DateTime<Utc>) -> Result<Self, ApiError> {
        let report_id = p.string_min("report_id", 3)?;
        let input = p.string_min("input", 3)?;
        let domain = p.string_min("domain", 3)?;
        let probe_asn = plain_list(p.get("probe_asn"))
            .iter()
            .map(|a| {
                parse_asn(a).ok_or_else(|| {
                    invalid(
                        "probe_asn",
                        "Input should be an ASN like AS123 or 123",
                        "asn_parsing",
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ooni_run_link_id = plain_list(p.get("ooni_run_link_id"))
            .iter()
            .map(|a| {
                a.parse::<u64>().map_err(|_| {
                    invalid(
                        "ooni_run_link_id",
                        "Input should be a valid integer",
                        "int_parsing",
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut since = p.datetime("since")?;
        let mut until = p.datetime("until")?;
        p.choice("order_by", &["measurement_start_time"])?;
        let ascending = p
            .choice("order", &["asc", "desc"])?
            .is_some_and(|o| o == "asc");
        let offset = p.uint("offset", u64::from(u32::MAX))?.unwrap_or(0);
        let limit = p.uint("limit", MAX_LIMIT)?.unwrap_or(100);
        let anomaly = p.bool("anomaly")?;
        let confirmed = p.bool("confirmed")?;
        let failure = p.bool("failure")?;

        if until.is_none() && report_id.is_none() {
            let tomorrow = (now + Duration::days(1)).date_naive();
            until = tomorrow
                .and_hms_opt(0, 0, 0)
                .map(|n| Utc.from_utc_datetime(&n));
        }
        if since.is_none() && report_id.is_none() {
            since = until.map(|u| u - Duration::days(30));
        }
        if let (Some(s), Some(u)) = (since, until) {
            // Python's timedelta.days: whole days, rounded down.
            let days = (u - s).num_seconds().div_euclid(86_400);
            if days > MAX_RANGE_DAYS {
                return Err(ApiError::bad_request_detail(format!(
                    "Time range must not exceed 6 months. Requested: {days} days (limit: {MAX_RANGE_DAYS} days)."
                )));
            }
        }
        Ok(ListQuery {
            report_id,
            input,
            domains: plain_list(domain.as_deref()),
            probe_cc: plain_list(p.get("probe_cc")),
            probe_asn,
            test_name: plain_list(p.get("test_name")),
            category_code: p.get("category_code").map(str::to_owned),
            since,
            until,
            anomaly,
            confirmed,
            failure,
            software_version: p.comma_list("software_version"),
            test_version: p.comma_list("test_version"),
            engine_version: p.comma_list("engine_version"),
            ooni_run_link_id,
            ascending,
            offset,
            limit,
        })
    }

    /// The listing query (deduplicated with `FINAL`, see [`crate::dedup`]).
    pub fn to_sql(&self) -> Sql {
        let mut w = Where::new();
        if let Some(since) = self.since {
            w.bind("measurement_start_time > toDateTime(?)", epoch_u32(since));
        }
        if let Some(until) = self.until {
            w.bind("measurement_start_time <= toDateTime(?)", epoch_u32(until));
        }
        if let Some(rid) = &self.report_id {
            w.bind("report_id = ?", rid.as_str());
        }
        if self.probe_cc.is_empty() {
            w.fixed("probe_cc != 'ZZ'");
        } else {
            w.bind("probe_cc IN ?", self.probe_cc.clone());
        }
        if self.probe_asn.is_empty() {
            // https://github.com/ooni/explorer/issues/495: hide AS0 unless asked for.
            w.fixed("probe_asn != 0");
        } else {
            w.bind("probe_asn IN ?", self.probe_asn.clone());
        }
        if !self.test_name.is_empty() {
            w.bind("test_name IN ?", self.test_name.clone());
        }
        if !self.software_version.is_empty() {
            w.bind("software_version IN ?", self.software_version.clone());
        }
        if !self.test_version.is_empty() {
            w.bind("test_version IN ?", self.test_version.clone());
        }
        if !self.engine_version.is_empty() {
            w.bind("engine_version IN ?", self.engine_version.clone());
        }
        if !self.ooni_run_link_id.is_empty() {
            w.bind("ooni_run_link_id IN ?", self.ooni_run_link_id.clone());
        }
        for (flag, yes, no) in [
            (self.anomaly, "anomaly = 't'", "anomaly = 'f'"),
            (self.confirmed, "confirmed = 't'", "confirmed = 'f'"),
            (self.failure, "msm_failure = 't'", "msm_failure = 'f'"),
        ] {
            match flag {
                Some(true) => {
                    w.fixed(yes);
                }
                Some(false) => {
                    w.fixed(no);
                }
                None => {}
            }
        }
        if let Some(input) = &self.input {
            // input takes precedence over domain and category_code.
            w.bind("input = ?", input.as_str());
        } else {
            if !self.domains.is_empty() {
                w.bind("domain IN ?", self.domains.clone());
            }
            if let Some(cat) = &self.category_code {
                // A semi-join: a URL listed by several countries is still one measurement.
                w.bind(
                    "input IN (SELECT url FROM citizenlab WHERE category_code = ?)",
                    cat.as_str(),
                );
            }
        }
        let mut q = Sql::new(
            "SELECT measurement_uid, report_id, probe_cc, probe_asn, test_name, \
             toUInt32(measurement_start_time) AS measurement_start_time, input, anomaly, confirmed, \
             msm_failure, scores, toString(is_verified) AS is_verified FROM fastpath FINAL",
        );
        q.append(w.into_sql());
        q.push(if self.ascending {
            " ORDER BY measurement_start_time ASC, measurement_uid ASC"
        } else {
            " ORDER BY measurement_start_time DESC, measurement_uid DESC"
        });
        q.push_bind(" LIMIT ?", self.limit)
            .push_bind(" OFFSET ?", self.offset);
        q
    }
}

/// `next_url`: this request's query with `offset`/`limit` replaced.
fn next_url(base_url: &str, p: &Params, offset: u64, limit: u64) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in p.pairs() {
        if k != "offset" && k != "limit" {
            ser.append_pair(k, v);
        }
    }
    ser.append_pair("offset", &offset.to_string())
        .append_pair("limit", &limit.to_string());
    format!("{base_url}/api/v1/measurements?{}", ser.finish())
}

fn ceil_div(a: u64, b: u64) -> i64 {
    i64::try_from(a.div_ceil(b)).unwrap_or(i64::MAX)
}

/// `GET /api/v1/measurements`
pub async fn list_measurements(s: Arc<State>, req: Request) -> HttpResult {
    // https://github.com/ooni/probe/issues/1034: old Android clients get a canned answer.
    if header(&req, "user-agent").is_some_and(|ua| ua.starts_with("okhttp")) {
        let body = json!({
            "metadata": {"count": 1, "current_page": 1, "limit": 100, "next_url": null, "offset": 0, "pages": 1, "query_time": 0.001},
            "results": [{"measurement_url": ""}],
        });
        return json(&body, Cache::NoCache);
    }
    let p = Params::from_request(&req);
    let q = ListQuery::parse(&p, s.clock.now())?;
    let started = Instant::now();
    let mut cursor = q
        .to_sql()
        .to_query(s.db.client())
        .fetch::<ListRow>()
        .map_err(DbError::from)?;
    let mut results: Vec<u8> = Vec::with_capacity(64 * 1024);
    results.push(b'[');
    let mut n: u64 = 0;
    let mut truncated = false;
    let empty_scores = serde_json::from_str::<&RawValue>("{}").map_err(ApiError::internal)?;
    while let Some(row) = cursor.next().await.map_err(DbError::from)? {
        if results.len() > MAX_LIST_BODY_BYTES {
            truncated = true;
            break;
        }
        let scores = serde_json::from_str::<&RawValue>(&row.scores).unwrap_or(empty_scores);
        let item = ListItem {
            anomaly: row.anomaly == "t",
            confirmed: row.confirmed == "t",
            failure: row.msm_failure == "t",
            input: (!row.input.is_empty()).then_some(row.input.as_str()),
            measurement_start_time: iso_micro(row.measurement_start_time),
            measurement_uid: &row.measurement_uid,
            measurement_url: measurement_url(&s.base_url, &row.measurement_uid),
            probe_asn: format!("AS{}", row.probe_asn),
            probe_cc: &row.probe_cc,
            report_id: &row.report_id,
            scores,
            test_name: &row.test_name,
            verification_status: verification_status(&row.is_verified),
        };
        if n > 0 {
            results.push(b',');
        }
        serde_json::to_writer(&mut results, &item).map_err(ApiError::internal)?;
        n += 1;
    }
    drop(cursor);
    results.push(b']');
    let query_time = started.elapsed().as_secs_f64();

    let current_page = if q.limit == 0 {
        1
    } else {
        ceil_div(q.offset, q.limit) + 1
    };
    let (count, pages, next) = if truncated {
        (
            -1,
            -1,
            Some(next_url(&s.base_url, &p, q.offset + n, q.limit)),
        )
    } else if q.limit == 0 {
        (-1, -1, None)
    } else if n < q.limit {
        let count = q.offset + n;
        (
            i64::try_from(count).unwrap_or(i64::MAX),
            ceil_div(count, q.limit),
            None,
        )
    } else {
        (
            -1,
            -1,
            Some(next_url(&s.base_url, &p, q.offset + q.limit, q.limit)),
        )
    };
    let metadata = ListMetadata {
        count,
        current_page,
        limit: q.limit,
        next_url: next,
        offset: q.offset,
        pages,
        query_time,
    };
    let mut body = Vec::with_capacity(results.len() + 256);
    body.extend_from_slice(b"{\"metadata\":");
    serde_json::to_writer(&mut body, &metadata).map_err(ApiError::internal)?;
    body.extend_from_slice(b",\"results\":");
    body.extend_from_slice(&results);
    body.push(b'}');
    raw(StatusCode::OK, "application/json", body, Cache::MaxAge(60))
}

/// One `fastpath` row as measurement_meta shows it.
#[derive(Debug, Clone, clickhouse::Row, Deserialize)]
pub struct MetaRow {
    pub measurement_uid: String,
    pub report_id: String,
    pub input: String,
    pub probe_cc: String,
    pub probe_asn: u32,
    pub test_name: String,
    pub test_start_time: u32,
    pub measurement_start_time: u32,
    pub scores: String,
    pub anomaly: String,
    pub confirmed: String,
    pub msm_failure: String,
    pub is_verified: String,
}

/// How a single measurement is named by the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeasurementRef {
    Uid(String),
    /// `input` is `None` when not given (looked up as `input = ''`).
    ReportInput {
        report_id: String,
        input: Option<String>,
    },
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct CategoryRow {
    category_code: String,
}

/// The query for the newest `fastpath` row named by `r` (see [`crate::dedup`]).
pub fn meta_sql(r: &MeasurementRef) -> Sql {
    let mut q = Sql::new(
        "SELECT measurement_uid, report_id, input, probe_cc, probe_asn, test_name, \
         toUInt32(test_start_time) AS test_start_time, toUInt32(measurement_start_time) AS measurement_start_time, \
         scores, anomaly, confirmed, msm_failure, toString(is_verified) AS is_verified FROM fastpath",
    );
    match r {
        MeasurementRef::Uid(uid) => {
            q.push_bind(" WHERE measurement_uid = ?", uid.as_str());
        }
        MeasurementRef::ReportInput { report_id, input } => {
            q.push_bind(" WHERE report_id = ?", report_id.as_str())
                .push_bind(" AND input = ?", input.clone().unwrap_or_default());
        }
    }
    q.push(" ORDER BY update_time DESC LIMIT 1");
    q
}

/// The query for the citizenlab category of URL `input`.
pub fn category_sql(input: &str) -> Sql {
    let mut q = Sql::new("SELECT category_code FROM citizenlab");
    q.push_bind(" WHERE url = ?", input).push(" LIMIT 1");
    q
}

/// The newest `fastpath` row named by `r` (see [`crate::dedup`]), without AS0 rows, and its
/// citizenlab category (`None` when looked up by report_id without input, as upstream).
pub async fn find_meta(
    s: &State,
    r: &MeasurementRef,
) -> Result<Option<(MetaRow, Option<String>)>, ApiError> {
    let q = meta_sql(r);
    let Some(row) = s.db.optional::<MetaRow>(&q).await? else {
        return Ok(None);
    };
    if row.probe_asn == 0 {
        // https://ooni.org/post/2020-ooni-probe-asn-incident-report/
        return Ok(None);
    }
    let with_category = !matches!(r, MeasurementRef::ReportInput { input: None, .. });
    let category = if !with_category {
        None
    } else if row.input.is_empty() {
        Some(String::new())
    } else {
        Some(
            s.db.optional::<CategoryRow>(&category_sql(&row.input))
                .await?
                .map(|c| c.category_code)
                .unwrap_or_default(),
        )
    };
    Ok(Some((row, category)))
}

/// Upstream's report_id check for measurement_meta: 15–100 characters of `[A-Za-z0-9_]`.
pub fn valid_report_id(rid: &str) -> bool {
    (15..=100).contains(&rid.len()) && rid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn meta_json(row: &MetaRow, category: Option<String>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("anomaly".into(), Value::Bool(row.anomaly == "t"));
    m.insert(
        "category_code".into(),
        category.map(Value::String).unwrap_or(Value::Null),
    );
    m.insert("confirmed".into(), Value::Bool(row.confirmed == "t"));
    m.insert("failure".into(), Value::Bool(row.msm_failure == "t"));
    m.insert("input".into(), Value::String(row.input.clone()));
    m.insert(
        "measurement_start_time".into(),
        Value::String(iso_seconds(row.measurement_start_time)),
    );
    m.insert(
        "measurement_uid".into(),
        Value::String(row.measurement_uid.clone()),
    );
    m.insert("probe_asn".into(), Value::from(row.probe_asn));
    m.insert("probe_cc".into(), Value::String(row.probe_cc.clone()));
    m.insert("report_id".into(), Value::String(row.report_id.clone()));
    m.insert("scores".into(), Value::String(row.scores.clone()));
    m.insert("test_name".into(), Value::String(row.test_name.clone()));
    m.insert(
        "test_start_time".into(),
        Value::String(iso_seconds(row.test_start_time)),
    );
    m.insert(
        "verification_status".into(),
        verification_status(&row.is_verified)
            .map(|v| Value::String(v.into()))
            .unwrap_or(Value::Null),
    );
    m
}

fn body_error(e: BodyError) -> ApiError {
    match e {
        BodyError::Unavailable(cause) => ApiError::unavailable(cause),
        corrupt @ BodyError::Corrupt(_) => ApiError::internal(corrupt),
    }
}

/// Reads `measurement_uid` or `report_id` (+`input`) as measurement_meta and raw_measurement
/// take them.
fn measurement_ref(p: &Params, check_report_id: bool) -> Result<Option<MeasurementRef>, ApiError> {
    let uid = p.string_min("measurement_uid", 3)?;
    let report_id = p.string_min("report_id", 3)?;
    if check_report_id {
        if let Some(rid) = &report_id {
            if !valid_report_id(rid) {
                return Err(ApiError::unprocessable("Invalid report_id field"));
            }
        }
    }
    let input = p.string_min("input", 3)?;
    Ok(match (uid, report_id) {
        (Some(uid), _) => Some(MeasurementRef::Uid(uid)),
        (None, Some(report_id)) => Some(MeasurementRef::ReportInput { report_id, input }),
        (None, None) => None,
    })
}

/// `GET /api/v1/measurement_meta`
pub async fn measurement_meta(s: Arc<State>, req: Request) -> HttpResult {
    let p = Params::from_request(&req);
    let r = measurement_ref(&p, true)?.ok_or_else(|| {
        ApiError::bad_request_detail(
            "Missing measurement_uid or report_id. You should provide at the least one",
        )
    })?;
    let full = p.bool("full")?.unwrap_or(false);
    let Some((row, category)) = find_meta(&s, &r).await? else {
        // Clients rely on `{}` for "not found" (upstream behaviour kept on purpose).
        let body = if full {
            json!({"raw_measurement": ""})
        } else {
            json!({})
        };
        return json(&body, Cache::MaxAge(60));
    };
    let mut m = meta_json(&row, category);
    if full {
        let body = match s.bodies.body_by_uid(&row.measurement_uid).await {
            Ok(Some(b)) => String::from_utf8_lossy(&b).into_owned(),
            Ok(None) => String::new(),
            Err(e) => {
                tracing::warn!(error = %e, "measurement body lookup failed");
                String::new()
            }
        };
        m.insert("raw_measurement".into(), Value::String(body));
    }
    json(&Value::Object(m), Cache::MaxAge(60))
}

/// `GET /api/v1/raw_measurement`
pub async fn raw_measurement(s: Arc<State>, req: Request) -> HttpResult {
    let p = Params::from_request(&req);
    let r = measurement_ref(&p, false)?.ok_or_else(|| {
        ApiError::bad_request_detail("Either report_id or measurement_uid must be provided")
    })?;
    let body = match find_meta(&s, &r).await? {
        Some((row, _)) => s
            .bodies
            .body_by_uid(&row.measurement_uid)
            .await
            .map_err(body_error)?,
        None => None,
    };
    match body {
        Some(b) => raw(
            StatusCode::OK,
            "application/json",
            b.to_vec(),
            Cache::MaxAge(86_400),
        ),
        // Upstream answers `{}`; a miss is cached briefly since the body may appear soon.
        None => raw(
            StatusCode::OK,
            "application/json",
            b"{}".to_vec(),
            Cache::MaxAge(60),
        ),
    }
}

/// `GET /api/v1/measurement/{measurement_uid}`. `download` is optional (upstream required it
/// and answered 422 without it) and an unknown uid is a 404 (upstream: 500).
pub async fn get_measurement(s: Arc<State>, req: Request) -> HttpResult {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorBody::Detail("Measurement not found".into()),
        )
    };
    let uid = path_param(&req, "measurement_uid")?;
    let p = Params::from_request(&req);
    let download = p.bool("download")?.unwrap_or(false);
    if uid.is_empty()
        || uid.len() > 200
        || !uid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(not_found());
    }
    let body = s
        .bodies
        .body_by_uid(&uid)
        .await
        .map_err(body_error)?
        .ok_or_else(not_found)?;
    let mut resp = raw(
        StatusCode::OK,
        "application/json",
        body.to_vec(),
        Cache::MaxAge(3600),
    )?;
    if download {
        let value =
            HeaderValue::from_str(&format!("attachment; filename=ooni_measurement-{uid}.json"))
                .map_err(ApiError::internal)?;
        resp.headers_mut().insert(CONTENT_DISPOSITION, value);
    }
    Ok(resp)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 10, 15, 0, 0).unwrap()
    }

    fn parse(q: &str) -> Result<ListQuery, ApiError> {
        ListQuery::parse(&Params::parse(q), now())
    }

    #[test]
    fn without_until_or_report_id_the_window_is_30_days_to_tomorrow() {
        let q = parse("").unwrap();
        assert_eq!(
            q.until,
            Some(Utc.with_ymd_and_hms(2024, 3, 11, 0, 0, 0).unwrap())
        );
        assert_eq!(
            q.since,
            Some(Utc.with_ymd_and_hms(2024, 2, 10, 0, 0, 0).unwrap())
        );
        assert_eq!((q.limit, q.offset, q.ascending), (100, 0, false));
    }

    #[test]
    fn a_report_id_lifts_the_default_window() {
        let q = parse("report_id=20240101T000000Z_webconnectivity_IT_1_n1_abc").unwrap();
        assert_eq!((q.since, q.until), (None, None));
    }

    #[test]
    fn ranges_over_six_months_are_rejected_with_the_upstream_message() {
        let err = parse("since=2024-01-01&until=2024-07-20").unwrap_err();
        assert_eq!(err.status, 400);
        let msg = err.body.to_json()["detail"].as_str().unwrap().to_string();
        assert!(
            msg.to_lowercase().contains("time range must not exceed"),
            "{msg}"
        );
        assert!(parse("since=2024-01-01&until=2024-06-29").is_ok());
    }

    #[test]
    fn ordering_other_than_by_start_time_and_oversized_limits_are_422() {
        assert_eq!(parse("order_by=probe_cc").unwrap_err().status, 422);
        assert_eq!(parse("order_by=test_start_time").unwrap_err().status, 422);
        assert_eq!(parse("limit=1000001").unwrap_err().status, 422);
        assert_eq!(parse("order=up").unwrap_err().status, 422);
        assert!(parse("limit=1000000&order=ASC").unwrap().ascending);
    }

    #[test]
    fn filters_become_bound_conditions() {
        let q = parse("probe_cc=IT,DE&probe_asn=AS30722,3269&test_name=web_connectivity&anomaly=true&domain=a.org,%20b.org&since=2024-01-01&until=2024-01-02").unwrap();
        let sql = q.to_sql().render();
        assert!(sql.contains("FROM fastpath FINAL"), "{sql}");
        assert!(sql.contains("probe_cc IN ['IT','DE']"), "{sql}");
        assert!(sql.contains("probe_asn IN [30722,3269]"), "{sql}");
        assert!(sql.contains("domain IN ['a.org','b.org']"), "{sql}");
        assert!(sql.contains("anomaly = 't'"), "{sql}");
        assert!(
            sql.contains("measurement_start_time > toDateTime(1704067200)"),
            "{sql}"
        );
        assert!(
            sql.ends_with(
                "ORDER BY measurement_start_time DESC, measurement_uid DESC LIMIT 100 OFFSET 0"
            ),
            "{sql}"
        );
    }

    #[test]
    fn input_takes_precedence_over_domain_and_category() {
        let sql = parse("input=https://x.org/&domain=y.org&category_code=NEWS")
            .unwrap()
            .to_sql()
            .render();
        assert!(sql.contains("input = 'https://x.org/'"));
        assert!(!sql.contains("domain IN"));
        assert!(!sql.contains("citizenlab"));
    }

    #[test]
    fn zz_and_as0_are_hidden_unless_asked_for() {
        let sql = parse("").unwrap().to_sql().render();
        assert!(sql.contains("probe_cc != 'ZZ'") && sql.contains("probe_asn != 0"));
        let sql = parse("probe_cc=ZZ&probe_asn=0").unwrap().to_sql().render();
        assert!(sql.contains("probe_cc IN ['ZZ']") && sql.contains("probe_asn IN [0]"));
    }

    #[test]
    fn bad_asns_are_422_not_500() {
        assert_eq!(parse("probe_asn=ASfoo").unwrap_err().status, 422);
    }

    #[test]
    fn next_url_keeps_the_other_parameters_and_moves_the_offset() {
        let p = Params::parse("probe_cc=IT&limit=10&offset=20");
        let u = next_url("https://api.example.org", &p, 30, 10);
        assert_eq!(
            u,
            "https://api.example.org/api/v1/measurements?probe_cc=IT&offset=30&limit=10"
        );
    }

    #[test]
    fn report_ids_are_checked_like_upstream() {
        assert!(valid_report_id(
            "20210709T004340Z_webconnectivity_MY_4818_n1_YCM7J9mGcEHds2K3"
        ));
        assert!(!valid_report_id("BOGUS"));
        assert!(!valid_report_id("20210709T004340Z_web#$%connectivity"));
    }

    #[test]
    fn timestamps_use_each_route_s_format() {
        assert_eq!(iso_micro(1704067201), "2024-01-01T00:00:01.000000Z");
        assert_eq!(iso_seconds(1704067201), "2024-01-01T00:00:01Z");
        assert_eq!(
            measurement_url("http://b", "2024.1_IT_x_0"),
            "http://b/api/v1/raw_measurement?measurement_uid=2024.1_IT_x_0"
        );
    }
}
