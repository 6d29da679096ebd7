//! `GET /api/v1/aggregation` (measurement counts by up to two axes, JSON or CSV) and
//! `GET /api/v1/torsf_stats`.
//!
//! Axis columns come from a fixed allow-list ([`Axis`]); every filter value is bound.
//! Fixed upstream bugs: `time_grain=year` is mapped (`toStartOfYear`); parameter errors are
//! 400s (upstream sometimes answered 200); a URL listed by several country lists is counted
//! once per category, not once per list; responses get a short `max-age` instead of none;
//! `torsf_stats` selects the `measurement_count` it divides by.

use crate::db::{as_u64, DbStats};
use crate::params::{comma_split, invalid, parse_asn, Params};
use crate::sql::{Sql, Where};
use crate::State;
use chrono::{DateTime, Duration, Utc};
use http::header::CONTENT_DISPOSITION;
use http::{HeaderValue, StatusCode};
use lambda_http::Request;
use ooni_platform::response::{json, raw};
use ooni_platform::{ApiError, Cache, ErrorBody, HttpResult};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// The counters every aggregation row carries, in CSV (sorted) order among the axes.
const COUNT_COLUMNS: [&str; 5] = [
    "anomaly_count",
    "confirmed_count",
    "failure_count",
    "measurement_count",
    "ok_count",
];

/// A grouping dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    BlockingType,
    CategoryCode,
    Domain,
    Input,
    MeasurementStartDay,
    ProbeAsn,
    ProbeCc,
    TestName,
}

impl Axis {
    pub fn parse(name: &str) -> Option<Axis> {
        Some(match name {
            "blocking_type" => Axis::BlockingType,
            "category_code" => Axis::CategoryCode,
            "domain" => Axis::Domain,
            "input" => Axis::Input,
            "measurement_start_day" => Axis::MeasurementStartDay,
            "probe_asn" => Axis::ProbeAsn,
            "probe_cc" => Axis::ProbeCc,
            "test_name" => Axis::TestName,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Axis::BlockingType => "blocking_type",
            Axis::CategoryCode => "category_code",
            Axis::Domain => "domain",
            Axis::Input => "input",
            Axis::MeasurementStartDay => "measurement_start_day",
            Axis::ProbeAsn => "probe_asn",
            Axis::ProbeCc => "probe_cc",
            Axis::TestName => "test_name",
        }
    }

    /// The select expression (aliased to the axis name).
    fn select(self, grain: TimeGrain) -> &'static str {
        match self {
            Axis::BlockingType => {
                ", JSONExtractString(scores, 'analysis', 'blocking_type') AS blocking_type"
            }
            Axis::CategoryCode => ", cl.category_code AS category_code",
            Axis::Domain => ", domain",
            Axis::Input => ", input",
            Axis::ProbeAsn => ", probe_asn",
            Axis::ProbeCc => ", probe_cc",
            Axis::TestName => ", test_name",
            Axis::MeasurementStartDay => match grain {
                TimeGrain::Hour => {
                    ", toStartOfHour(measurement_start_time) AS measurement_start_day"
                }
                TimeGrain::Day => ", toDate(measurement_start_time) AS measurement_start_day",
                TimeGrain::Week => {
                    ", toStartOfWeek(measurement_start_time) AS measurement_start_day"
                }
                TimeGrain::Month => {
                    ", toStartOfMonth(measurement_start_time) AS measurement_start_day"
                }
                TimeGrain::Year => {
                    ", toStartOfYear(measurement_start_time) AS measurement_start_day"
                }
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeGrain {
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl TimeGrain {
    fn parse(s: &str) -> Option<TimeGrain> {
        Some(match s {
            "hour" => TimeGrain::Hour,
            "day" => TimeGrain::Day,
            "week" => TimeGrain::Week,
            "month" => TimeGrain::Month,
            "year" => TimeGrain::Year,
            _ => return None,
        })
    }
}

/// A `{"error": msg, "msg": msg, "v": 0}` 400: `error` is the legacy key, `msg` the new
/// service's; both are sent so either kind of client finds its message.
pub fn v0_error(msg: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        ErrorBody::Exact(json!({"error": msg, "msg": msg, "v": 0})),
    )
}

/// The grain for a `since..until` range: the smallest allowed one for `auto`, else the one
/// asked for if the range allows it (upstream's table, with `year` usable).
pub fn resolve_time_grain(
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    asked: Option<&str>,
) -> Result<TimeGrain, ApiError> {
    let delta = until - since;
    if delta <= Duration::zero() {
        return Err(v0_error("Invalid since and until values"));
    }
    let allowed: &[&str] = if delta <= Duration::days(7) {
        &["hour", "day", "auto"]
    } else if delta <= Duration::days(30) {
        &["day", "week", "auto"]
    } else if delta <= Duration::days(365) {
        &["day", "week", "month", "auto"]
    } else {
        &["day", "week", "month", "year", "auto"]
    };
    let asked = asked.unwrap_or("auto");
    if !allowed.contains(&asked) {
        return Err(v0_error(&format!(
            "Choose time_grain between {} for the given time range",
            allowed.join(", ")
        )));
    }
    let name = if asked == "auto" { allowed[0] } else { asked };
    TimeGrain::parse(name).ok_or_else(|| v0_error("Invalid time_grain"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

/// A validated aggregation request.
#[derive(Debug, Clone, PartialEq)]
pub struct AggQuery {
    pub input: Option<String>,
    pub domains: Vec<String>,
    pub category_code: Option<String>,
    pub probe_cc: Vec<String>,
    pub probe_asn: Vec<u32>,
    pub test_name: Vec<String>,
    pub ooni_run_link_id: Vec<u64>,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub grain: TimeGrain,
    pub axes: Vec<Axis>,
    pub format: Format,
    pub download: bool,
}

impl AggQuery {
    /// Validates the query; defaults are `since` = 180 days before `now`, `until` = `now`.
    pub fn parse(p: &Params, now: DateTime<Utc>) -> Result<Self, ApiError> {
        let input = p.string_min("input", 3)?;
        if input.as_deref().is_some_and(|i| !valid_input(i)) {
            return Err(v0_error("Invalid characters in input field"));
        }
        let domain = p.string_min("domain", 3)?;
        let chars_in = |name: &str, ok: fn(u8) -> bool| -> Result<Option<String>, ApiError> {
            match p.get(name) {
                Some(v) if !v.bytes().all(ok) => Err(v0_error("Invalid characters")),
                v => Ok(v.map(str::to_owned)),
            }
        };
        let category_code = chars_in("category_code", |b| b.is_ascii_uppercase())?;
        let probe_cc = p.string_min("probe_cc", 2)?;
        let test_name = chars_in("test_name", |b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b','
        })?;
        let ooni_run_link_id = p
            .comma_list("ooni_run_link_id")
            .iter()
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    invalid(
                        "ooni_run_link_id",
                        "Input should be a valid integer",
                        "int_parsing",
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let since = p.datetime("since")?;
        let until = p.datetime("until")?;
        let grain = p.choice(
            "time_grain",
            &["hour", "day", "week", "month", "year", "auto"],
        )?;
        let axis_x = chars_in("axis_x", |b| b.is_ascii_lowercase() || b == b'_')?;
        let axis_y = chars_in("axis_y", |b| b.is_ascii_lowercase() || b == b'_')?;
        let format = match p.choice("format", &["json", "csv"])?.as_deref() {
            Some("csv") => Format::Csv,
            _ => Format::Json,
        };
        let download = p.bool("download")?.unwrap_or(false);
        let probe_asn = match p.get("probe_asn") {
            None => Vec::new(),
            Some(v) => comma_split(v)
                .iter()
                .map(|a| parse_asn(a))
                .collect::<Option<Vec<u32>>>()
                .ok_or_else(|| {
                    ApiError::bad_request_detail("Invalid ASN value in parameter probe_asn")
                })?,
        };
        if axis_x.is_some() && axis_x == axis_y {
            return Err(v0_error("Axis X and Y cannot be the same"));
        }
        let since = since.unwrap_or(now - Duration::days(180));
        let until = until.unwrap_or(now);
        let grain = resolve_time_grain(since, until, grain.as_deref())?;
        let mut axes = Vec::new();
        for name in [axis_x, axis_y].into_iter().flatten() {
            axes.push(Axis::parse(&name).ok_or_else(|| v0_error("Invalid axis name"))?);
        }
        Ok(AggQuery {
            input,
            domains: domain.as_deref().map(comma_split).unwrap_or_default(),
            category_code,
            probe_cc: probe_cc.as_deref().map(comma_split).unwrap_or_default(),
            probe_asn,
            test_name: test_name.as_deref().map(comma_split).unwrap_or_default(),
            ooni_run_link_id,
            since,
            until,
            grain,
            axes,
            format,
            download,
        })
    }

    /// `citizenlab` rows in scope: the global list plus the asked countries' lists (both
    /// spellings of the code: upstream stores them lower-case, older data upper-case).
    fn citizenlab_scope(&self, w: &mut Where) {
        if self.probe_cc.is_empty() {
            w.fixed("cc = 'ZZ'");
        } else {
            let ccs: Vec<String> = self
                .probe_cc
                .iter()
                .flat_map(|c| [c.to_lowercase(), c.to_uppercase()])
                .collect();
            w.bind("(cc IN ? OR cc = 'ZZ')", ccs);
        }
    }

    /// The aggregation query (deduplicated with `FINAL`, see [`crate::dedup`]).
    pub fn to_sql(&self) -> Sql {
        let mut q = Sql::new(
            "SELECT countIf(anomaly = 't' AND confirmed = 'f' AND msm_failure = 'f') AS anomaly_count, \
             countIf(confirmed = 't' AND msm_failure = 'f') AS confirmed_count, \
             countIf(msm_failure = 't') AS failure_count, \
             countIf(anomaly = 'f' AND confirmed = 'f' AND msm_failure = 'f') AS ok_count, \
             count() AS measurement_count",
        );
        for axis in &self.axes {
            q.push(axis.select(self.grain));
        }
        q.push(" FROM fastpath FINAL");
        let by_category = self.axes.contains(&Axis::CategoryCode);
        if by_category {
            let mut cw = Where::new();
            if let Some(cat) = &self.category_code {
                cw.bind("category_code = ?", cat.as_str());
                self.citizenlab_scope(&mut cw);
            }
            q.push(" INNER JOIN (SELECT DISTINCT url, category_code FROM citizenlab");
            q.append(cw.into_sql());
            q.push(") AS cl ON cl.url = fastpath.input");
        }
        let mut w = Where::new();
        w.bind("measurement_start_time >= toDateTime(?)", epoch(self.since));
        w.bind("measurement_start_time < toDateTime(?)", epoch(self.until));
        if !self.domains.is_empty() {
            w.bind("domain IN ?", self.domains.clone());
        }
        if let Some(input) = &self.input {
            w.bind("input = ?", input.as_str());
        }
        if let (Some(cat), false) = (&self.category_code, by_category) {
            let mut sub = Sql::new("input IN (SELECT url FROM citizenlab");
            let mut cw = Where::new();
            cw.bind("category_code = ?", cat.as_str());
            self.citizenlab_scope(&mut cw);
            sub.append(cw.into_sql());
            sub.push(")");
            w.sql(sub);
        }
        if !self.probe_cc.is_empty() {
            w.bind("probe_cc IN ?", self.probe_cc.clone());
        }
        if !self.probe_asn.is_empty() {
            w.bind("probe_asn IN ?", self.probe_asn.clone());
        }
        if !self.ooni_run_link_id.is_empty() {
            w.bind("ooni_run_link_id IN ?", self.ooni_run_link_id.clone());
        }
        if !self.test_name.is_empty() {
            w.bind("test_name IN ?", self.test_name.clone());
        }
        q.append(w.into_sql());
        if !self.axes.is_empty() {
            for (i, axis) in self.axes.iter().enumerate() {
                q.push(if i == 0 { " GROUP BY " } else { ", " });
                q.push(axis.name());
            }
            for (i, axis) in self.axes.iter().enumerate() {
                q.push(if i == 0 { " ORDER BY " } else { ", " });
                q.push(axis.name());
            }
        }
        q
    }
}

/// The legacy API's character set for `input` (non-ASCII characters pass, as there).
fn valid_input(input: &str) -> bool {
    const EXTRA: &[u8] = b" :/.[]-_%+(){}=?#&!,$";
    input
        .bytes()
        .all(|b| !b.is_ascii() || b.is_ascii_alphanumeric() || EXTRA.contains(&b))
}

fn epoch(t: DateTime<Utc>) -> u32 {
    u32::try_from(t.timestamp().clamp(0, i64::from(u32::MAX))).unwrap_or(0)
}

/// Puts a result row into the API's shape: counters as integers, `probe_asn` as an integer,
/// `measurement_start_day` as `YYYY-MM-DD` (or `YYYY-MM-DDTHH:MM:SSZ` for hours).
fn shape_row(mut row: Map<String, Value>, grain: TimeGrain) -> Map<String, Value> {
    for c in COUNT_COLUMNS {
        let v = as_u64(row.get(c));
        row.insert(c.into(), Value::from(v));
    }
    if let Some(asn) = row.get("probe_asn").map(|v| as_u64(Some(v))) {
        row.insert("probe_asn".into(), Value::from(asn));
    }
    if let Some(Value::String(day)) = row.get_mut("measurement_start_day") {
        if grain == TimeGrain::Hour {
            *day = format!("{}Z", day.replacen(' ', "T", 1));
        } else {
            day.truncate(10);
        }
    }
    row
}

/// CSV with sorted column names and CRLF line ends (Python's `csv.DictWriter`).
fn to_csv(columns: &[String], rows: &[Map<String, Value>]) -> Result<Vec<u8>, ApiError> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    w.write_record(columns).map_err(ApiError::internal)?;
    for row in rows {
        let record = columns.iter().map(|c| match row.get(c) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(v) => v.to_string(),
        });
        w.write_record(record).map_err(ApiError::internal)?;
    }
    w.into_inner().map_err(ApiError::internal)
}

/// Aggregations ending more than 72 h ago change little and are cached for an hour; the rest
/// for five minutes (upstream sent no caching header at all).
fn aggregation_cache(until: DateTime<Utc>, now: DateTime<Utc>) -> Cache {
    if until < now - Duration::hours(72) {
        Cache::MaxAge(3600)
    } else {
        Cache::MaxAge(300)
    }
}

/// `GET /api/v1/aggregation`
pub async fn aggregation(s: Arc<State>, req: Request) -> HttpResult {
    let p = Params::from_request(&req);
    let now = s.clock.now();
    let q = AggQuery::parse(&p, now)?;
    let out = s.db.json(&q.to_sql()).await?;
    let rows: Vec<Map<String, Value>> = out
        .rows
        .into_iter()
        .map(|r| shape_row(r, q.grain))
        .collect();
    let cache = aggregation_cache(q.until, now);
    let dims = q.axes.len();
    let mut resp = match q.format {
        Format::Csv => {
            let mut columns: Vec<String> = COUNT_COLUMNS.iter().map(|c| (*c).to_owned()).collect();
            columns.extend(q.axes.iter().map(|a| a.name().to_owned()));
            columns.sort();
            let rows = if dims == 0 {
                rows.into_iter().take(1).collect()
            } else {
                rows
            };
            raw(
                StatusCode::OK,
                "text/csv; charset=utf-8",
                to_csv(&columns, &rows)?,
                cache,
            )?
        }
        Format::Json => {
            let result = if dims == 0 {
                Value::Object(rows.into_iter().next().unwrap_or_else(|| {
                    COUNT_COLUMNS
                        .iter()
                        .map(|c| ((*c).to_owned(), Value::from(0u64)))
                        .collect()
                }))
            } else {
                Value::Array(rows.into_iter().map(Value::Object).collect())
            };
            json(
                &json!({"v": 0, "dimension_count": dims, "db_stats": stats_json(out.stats), "result": result}),
                cache,
            )?
        }
    };
    if q.download {
        let name = match q.format {
            Format::Csv => "attachment; filename=ooni-aggregate-data.csv",
            Format::Json => "attachment; filename=ooni-aggregate-data.json",
        };
        resp.headers_mut()
            .insert(CONTENT_DISPOSITION, HeaderValue::from_static(name));
    }
    Ok(resp)
}

fn stats_json(s: DbStats) -> Value {
    json!({"row_count": s.row_count, "bytes": s.bytes, "total_row_count": s.total_row_count, "elapsed_seconds": s.elapsed_seconds})
}

/// `GET /api/v1/torsf_stats`: Tor Snowflake counts per day and country.
pub async fn torsf_stats(s: Arc<State>, req: Request) -> HttpResult {
    let p = Params::from_request(&req);
    let probe_cc = p.get("probe_cc").map(str::to_owned);
    let since = p.datetime("since")?;
    let until = p.datetime("until")?;
    let mut q = Sql::new(
        "SELECT toDate(measurement_start_time) AS measurement_start_day, probe_cc, \
         countIf(anomaly = 't') AS anomaly_count, countIf(confirmed = 't') AS confirmed_count, \
         countIf(msm_failure = 't') AS failure_count, count() AS measurement_count \
         FROM fastpath FINAL",
    );
    let mut w = Where::new();
    w.fixed("test_name = 'torsf'");
    if let Some(cc) = &probe_cc {
        w.bind("probe_cc = ?", cc.as_str());
    }
    if let Some(t) = since {
        w.bind("measurement_start_time > toDateTime(?)", epoch(t));
    }
    if let Some(t) = until {
        w.bind("measurement_start_time <= toDateTime(?)", epoch(t));
    }
    q.append(w.into_sql());
    q.push(" GROUP BY measurement_start_day, probe_cc ORDER BY measurement_start_day, probe_cc");
    let out = s.db.json(&q).await?;
    let result: Vec<Value> = out
        .rows
        .into_iter()
        .map(|mut r| {
            for c in [
                "anomaly_count",
                "confirmed_count",
                "failure_count",
                "measurement_count",
            ] {
                let v = as_u64(r.get(c));
                r.insert(c.into(), Value::from(v));
            }
            let total = as_u64(r.get("measurement_count"));
            let anomalies = as_u64(r.get("anomaly_count"));
            // Counts are far below 2^53, so the conversion to f64 is exact.
            let rate = if total == 0 {
                0.0
            } else {
                anomalies as f64 / total as f64
            };
            r.insert("anomaly_rate".into(), Value::from(rate));
            Value::Object(r)
        })
        .collect();
    let cacheable = until.is_some_and(|u| u < s.clock.now() - Duration::hours(72));
    json(
        &json!({"v": 0, "result": result}),
        if cacheable {
            Cache::MaxAge(86_400)
        } else {
            Cache::NoCache
        },
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 6, 1, 0, 0, 0).unwrap()
    }

    fn parse(q: &str) -> Result<AggQuery, ApiError> {
        AggQuery::parse(&Params::parse(q), now())
    }

    fn msg(e: ApiError) -> String {
        e.body.to_json()["msg"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    #[test]
    fn time_grain_errors_name_the_allowed_grains() {
        let e =
            parse("since=2020-07-09&until=2022-07-11&time_grain=hour&axis_x=measurement_start_day")
                .unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(
            msg(e),
            "Choose time_grain between day, week, month, year, auto for the given time range"
        );
        let e =
            parse("since=2022-07-09&until=2022-07-11&time_grain=year&axis_x=measurement_start_day")
                .unwrap_err();
        assert_eq!(
            msg(e),
            "Choose time_grain between hour, day, auto for the given time range"
        );
    }

    #[test]
    fn auto_picks_the_smallest_allowed_grain_and_year_is_usable() {
        assert_eq!(
            parse("since=2021-07-09&until=2021-07-11").unwrap().grain,
            TimeGrain::Hour
        );
        assert_eq!(
            parse("since=2021-07-01&until=2021-07-20").unwrap().grain,
            TimeGrain::Day
        );
        let q =
            parse("since=2018-01-01&until=2022-01-01&time_grain=year&axis_x=measurement_start_day")
                .unwrap();
        assert_eq!(q.grain, TimeGrain::Year);
        assert!(q
            .to_sql()
            .render()
            .contains("toStartOfYear(measurement_start_time) AS measurement_start_day"));
    }

    #[test]
    fn an_empty_or_inverted_range_is_rejected() {
        assert_eq!(
            parse("since=2022-07-09&until=2021-07-11")
                .unwrap_err()
                .status,
            400
        );
        // until before the default since (now - 180 days)
        assert_eq!(
            parse("until=2021-07-10&axis_x=measurement_start_day")
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn axes_must_differ_and_come_from_the_allow_list() {
        assert_eq!(
            msg(
                parse("since=2021-07-09&until=2021-07-10&axis_x=probe_cc&axis_y=probe_cc")
                    .unwrap_err()
            ),
            "Axis X and Y cannot be the same"
        );
        assert_eq!(
            msg(parse("since=2021-07-09&until=2021-07-10&axis_x=report_id").unwrap_err()),
            "Invalid axis name"
        );
        assert_eq!(
            msg(parse("axis_x=DROP%20TABLE").unwrap_err()),
            "Invalid characters"
        );
    }

    #[test]
    fn bad_test_names_categories_and_asns_are_rejected() {
        let e = parse("test_name=BOGUS").unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(
            e.body.to_json(),
            json!({"error": "Invalid characters", "msg": "Invalid characters", "v": 0})
        );
        assert_eq!(
            msg(parse("category_code=news").unwrap_err()),
            "Invalid characters"
        );
        for bad in ["~!^{}", "foo.org;", "foo.org%3D%27"] {
            let e = parse(&format!("since=2021-07-09&until=2021-07-10&input={bad}")).unwrap_err();
            assert_eq!(
                e.body.to_json()["error"],
                "Invalid characters in input field",
                "{bad}"
            );
        }
        assert!(parse("input=https://twitter.com/&since=2021-07-09&until=2021-07-10").is_ok());
        let e = parse("probe_asn=ASx").unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(
            e.body.to_json()["detail"],
            "Invalid ASN value in parameter probe_asn"
        );
        assert_eq!(parse("format=XML").unwrap_err().status, 422);
    }

    #[test]
    fn a_category_filter_is_a_semi_join_scoped_to_the_countries_and_the_global_list() {
        let sql = parse("probe_cc=IT&category_code=GRP&since=2021-07-09&until=2021-07-10")
            .unwrap()
            .to_sql()
            .render();
        assert!(sql.contains("input IN (SELECT url FROM citizenlab WHERE category_code = 'GRP' AND (cc IN ['it','IT'] OR cc = 'ZZ'))"), "{sql}");
        let sql = parse("category_code=GRP&since=2021-07-09&until=2021-07-10")
            .unwrap()
            .to_sql()
            .render();
        assert!(sql.contains("cc = 'ZZ'"), "{sql}");
    }

    #[test]
    fn a_category_axis_joins_distinct_url_categories() {
        let sql = parse(
            "since=2021-07-09&until=2021-07-10&axis_x=measurement_start_day&axis_y=category_code",
        )
        .unwrap()
        .to_sql()
        .render();
        assert!(sql.contains("INNER JOIN (SELECT DISTINCT url, category_code FROM citizenlab) AS cl ON cl.url = fastpath.input"), "{sql}");
        assert!(sql.ends_with("GROUP BY measurement_start_day, category_code ORDER BY measurement_start_day, category_code"), "{sql}");
    }

    #[test]
    fn rows_are_shaped_like_upstream() {
        let mut row = Map::new();
        row.insert("measurement_count".into(), json!("5"));
        row.insert("measurement_start_day".into(), json!("2021-07-09 02:00:00"));
        let r = shape_row(row.clone(), TimeGrain::Hour);
        assert_eq!(r["measurement_count"], json!(5));
        assert_eq!(r["anomaly_count"], json!(0));
        assert_eq!(r["measurement_start_day"], json!("2021-07-09T02:00:00Z"));
        row.insert("measurement_start_day".into(), json!("2021-07-09"));
        assert_eq!(
            shape_row(row, TimeGrain::Day)["measurement_start_day"],
            json!("2021-07-09")
        );
    }

    #[test]
    fn csv_has_sorted_headers_and_crlf_line_ends() {
        let mut cols: Vec<String> = COUNT_COLUMNS.iter().map(|c| c.to_string()).collect();
        cols.push("probe_asn".into());
        cols.sort();
        let mut row = Map::new();
        for c in COUNT_COLUMNS {
            row.insert(c.into(), json!(1));
        }
        row.insert("probe_asn".into(), json!(3269));
        let out = String::from_utf8(to_csv(&cols, &[row]).unwrap()).unwrap();
        assert_eq!(out, "anomaly_count,confirmed_count,failure_count,measurement_count,ok_count,probe_asn\r\n1,1,1,1,1,3269\r\n");
    }

    #[test]
    fn historical_aggregations_are_cached_longer_than_recent_ones() {
        assert_eq!(
            aggregation_cache(now() - Duration::days(10), now()),
            Cache::MaxAge(3600)
        );
        assert_eq!(aggregation_cache(now(), now()), Cache::MaxAge(300));
    }
}
