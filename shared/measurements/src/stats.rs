//! Explorer's private statistics under `/api/_/` (upstream `api/ooniapi/private.py`), with
//! the upstream response shapes and `max-age` values.
//!
//! Time windows are computed from the injected clock (UTC days) and bound into the queries,
//! so results do not depend on the database server's clock or time zone. Counts read
//! `fastpath FINAL` (see [`crate::dedup`]); distinct counts and min/max dates are unaffected by
//! duplicate rows and skip it. Deviations, all fixes: parameter errors are JSON 400s (upstream
//! rendered an HTML page), malformed numbers are 400s instead of 500s, and database failures
//! are 5xx instead of `200 {"error": …}`.

use crate::countries::country_name;
use crate::db::{as_str, as_u64};
use crate::params::{parse_asn, Params};
use crate::sql::{Sql, Where};
use crate::State;
use chrono::{Datelike, Duration, NaiveDate, TimeZone, Utc};
use lambda_http::Request;
use ooni_platform::response::json;
use ooni_platform::{ApiError, Cache, HttpResult};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// The instant messaging tests (upstream `TEST_GROUPS["im"]`, sorted).
const IM_TESTS: [&str; 4] = ["facebook_messenger", "signal", "telegram", "whatsapp"];
/// Tests counted as circumvention by the circumvention statistics.
const CIRCUMVENTION_TESTS: [&str; 5] = ["torsf", "tor", "stunreachability", "psiphon", "riseupvpn"];

/// Upstream's `TEST_GROUPS` (models.py), used by `test_coverage`'s `test_groups` filter.
const TEST_GROUPS: &[(&str, &[&str])] = &[
    ("websites", &["web_connectivity"]),
    (
        "im",
        &["facebook_messenger", "signal", "telegram", "whatsapp"],
    ),
    (
        "middlebox",
        &[
            "http_invalid_request_line",
            "http_header_field_manipulation",
        ],
    ),
    ("performance", &["ndt", "dash"]),
    (
        "circumvention",
        &[
            "bridge_reachability",
            "meek_fronted_requests_test",
            "vanilla_tor",
            "tcp_connect",
            "psiphon",
            "tor",
            "torsf",
            "riseupvpn",
        ],
    ),
    (
        "legacy",
        &[
            "http_requests",
            "dns_consistency",
            "http_host",
            "multi_protocol_traceroute",
        ],
    ),
    (
        "experimental",
        &["urlgetter", "dnscheck", "stunreachability"],
    ),
];

const TEST_NAMES: &[(&str, &str)] = &[
    ("bridge_reachability", "Bridge Reachability"),
    ("dash", "DASH"),
    ("dns_consistency", "DNS Consistency"),
    ("dnscheck", "DNS Check"),
    ("facebook_messenger", "Facebook Messenger"),
    (
        "http_header_field_manipulation",
        "HTTP Header Field Manipulation",
    ),
    ("http_host", "HTTP Host"),
    ("http_invalid_request_line", "HTTP Invalid Request Line"),
    ("http_requests", "HTTP Requests"),
    ("meek_fronted_requests_test", "Meek Fronted Requests"),
    ("multi_protocol_traceroute", "Multi Protocol Traceroute"),
    ("ndt", "NDT"),
    ("psiphon", "Psiphon"),
    ("riseupvpn", "RiseupVPN"),
    ("signal", "Signal"),
    ("stunreachability", "STUN Reachability"),
    ("tcp_connect", "TCP Connect"),
    ("telegram", "Telegram"),
    ("tor", "Tor"),
    ("torsf", "Tor Snowflake"),
    ("urlgetter", "URL Getter"),
    ("vanilla_tor", "Vanilla Tor"),
    ("web_connectivity", "Web Connectivity"),
    ("whatsapp", "WhatsApp"),
];

/// Midnight UTC of `d` as Unix seconds (what `toDateTime(?)` takes).
fn midnight(d: NaiveDate) -> u32 {
    let t = d
        .and_hms_opt(0, 0, 0)
        .map(|n| Utc.from_utc_datetime(&n).timestamp())
        .unwrap_or(0);
    u32::try_from(t.clamp(0, i64::from(u32::MAX))).unwrap_or(0)
}

fn today(s: &State) -> NaiveDate {
    s.clock.now().date_naive()
}

/// `d` minus `months` calendar months (day clamped to the month's length).
fn months_before(d: NaiveDate, months: u32) -> NaiveDate {
    d.checked_sub_months(chrono::Months::new(months))
        .unwrap_or(d)
}

fn first_of_month(d: NaiveDate) -> NaiveDate {
    d.with_day(1).unwrap_or(d)
}

fn require_cc(p: &Params) -> Result<String, ApiError> {
    match p.get("probe_cc") {
        Some(cc) if cc.chars().count() == 2 => Ok(cc.to_owned()),
        _ => Err(ApiError::bad_request("missing or incorrect probe_cc")),
    }
}

fn require_asn(p: &Params) -> Result<u32, ApiError> {
    let v = p
        .get("probe_asn")
        .ok_or_else(|| ApiError::bad_request("missing or incorrect probe_asn"))?;
    parse_asn(v).ok_or_else(|| ApiError::bad_request("missing or incorrect probe_asn"))
}

/// `"YYYY-MM-DDT00:00:00+00:00"`, the preformatted dates of some statistics.
fn date_t00(day: &str) -> String {
    format!("{}T00:00:00+00:00", &day[..day.len().min(10)])
}

fn u(v: Option<&Value>) -> Value {
    Value::from(as_u64(v))
}

/// The four outcome counts of the network statistics (`SELECT <key>, ` + this).
const OUTCOME_COUNTS: &str = "countIf(anomaly = 't') AS anomaly_count, \
    countIf(confirmed = 't') AS confirmed_count, countIf(msm_failure = 't') AS failure_count, \
    count() AS total_count FROM fastpath FINAL";

/// One result of the network statistics: the key column (as a string) and the outcome counts.
fn outcome_counts(rows: &[Map<String, Value>], key: &str) -> Vec<Value> {
    rows.iter()
        .map(|r| {
            let count = |name: &str| u(r.get(name));
            json!({
                "anomaly_count": count("anomaly_count"),
                "confirmed_count": count("confirmed_count"),
                "failure_count": count("failure_count"),
                key: as_str(r.get(key)),
                "total_count": count("total_count"),
            })
        })
        .collect()
}

/// `GET /api/_/test_names`
pub async fn test_names(_s: Arc<State>, _req: Request) -> HttpResult {
    let names: Vec<Value> = TEST_NAMES
        .iter()
        .map(|(id, name)| json!({"id": id, "name": name}))
        .collect();
    json(&json!({ "test_names": names }), Cache::MaxAge(3600))
}

async fn by_month(s: &State, distinct: &'static str) -> Result<Vec<Value>, ApiError> {
    let t = today(s);
    let mut q = Sql::new("SELECT toStartOfMonth(measurement_start_time) AS date, ");
    q.push(distinct);
    q.push(" AS value FROM fastpath");
    q.push_bind(
        " WHERE measurement_start_time > toDateTime(?)",
        midnight(months_before(first_of_month(t), 24)),
    );
    q.push_bind(
        " AND measurement_start_time < toDateTime(?)",
        midnight(first_of_month(t) + chrono::Months::new(1)),
    );
    q.push(" GROUP BY date ORDER BY date");
    let rows = s.db.json(&q).await?.rows;
    Ok(rows
        .iter()
        .map(|r| json!({"date": date_t00(as_str(r.get("date"))), "value": u(r.get("value"))}))
        .collect())
}

/// `GET /api/_/asn_by_month`: distinct networks per month over the last two years.
pub async fn asn_by_month(s: Arc<State>, _req: Request) -> HttpResult {
    json(
        &by_month(&s, "COUNT(DISTINCT probe_asn)").await?,
        Cache::MaxAge(86_400),
    )
}

/// `GET /api/_/countries_by_month`: distinct countries per month over the last two years.
pub async fn countries_by_month(s: Arc<State>, _req: Request) -> HttpResult {
    json(
        &by_month(&s, "COUNT(DISTINCT probe_cc)").await?,
        Cache::MaxAge(86_400),
    )
}

/// `GET /api/_/countries`: measurement count per known country, all time.
pub async fn countries(s: Arc<State>, _req: Request) -> HttpResult {
    let q = Sql::new("SELECT probe_cc, count() AS measurement_count FROM fastpath FINAL GROUP BY probe_cc ORDER BY probe_cc");
    let rows = s.db.json(&q).await?.rows;
    let countries: Vec<Value> = rows
        .iter()
        .filter_map(|r| {
            let cc = as_str(r.get("probe_cc"));
            country_name(cc).map(
                |name| json!({"alpha_2": cc, "count": u(r.get("measurement_count")), "name": name}),
            )
        })
        .collect();
    json(&json!({ "countries": countries }), Cache::MaxAge(86_400))
}

/// `GET /api/_/test_coverage`: measurements per test group and networks per day, last 30 days.
pub async fn test_coverage(s: Arc<State>, req: Request) -> HttpResult {
    let p = Params::from_request(&req);
    let cc = require_cc(&p)?;
    let groups_filter: Vec<String> = p
        .get("test_groups")
        .map(|g| g.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let t = today(&s);

    let names =
        s.db.json(&Sql::new(
            "SELECT DISTINCT test_group FROM test_groups ORDER BY test_group",
        ))
        .await?
        .rows;
    let group_names: Vec<String> = names
        .iter()
        .map(|r| as_str(r.get("test_group")).to_owned())
        .collect();

    let mut q = Sql::new(
        "SELECT toDate(measurement_start_time) AS day, test_group, count() AS msmt_cnt \
         FROM fastpath FINAL ANY LEFT JOIN test_groups USING (test_name)",
    );
    let mut w = Where::new();
    w.bind(
        "measurement_start_time >= toDateTime(?)",
        midnight(t - Duration::days(32)),
    );
    w.bind(
        "measurement_start_time < toDateTime(?)",
        midnight(t - Duration::days(2)),
    );
    w.bind("probe_cc = ?", cc.as_str());
    q.append(w.into_sql());
    q.push(" GROUP BY day, test_group");
    let rows = s.db.json(&q).await?.rows;
    let counts: HashMap<(String, String), u64> = rows
        .iter()
        .map(|r| {
            (
                (
                    as_str(r.get("test_group")).to_owned(),
                    as_str(r.get("day")).to_owned(),
                ),
                as_u64(r.get("msmt_cnt")),
            )
        })
        .collect();
    let days: Vec<String> = (0..30)
        .map(|i| (t - Duration::days(32 - i)).format("%Y-%m-%d").to_string())
        .collect();
    let mut test_coverage = Vec::with_capacity(group_names.len() * days.len());
    for g in &group_names {
        for d in &days {
            let count = counts.get(&(g.clone(), d.clone())).copied().unwrap_or(0);
            test_coverage.push(json!({"count": count, "test_day": d, "test_group": g}));
        }
    }

    let mut q = Sql::new("SELECT toDate(measurement_start_time) AS day, COUNT(DISTINCT probe_asn) AS count FROM fastpath");
    let mut w = Where::new();
    w.bind(
        "measurement_start_time >= toDateTime(?)",
        midnight(t - Duration::days(31)),
    );
    w.bind(
        "measurement_start_time < toDateTime(?)",
        midnight(t - Duration::days(1)),
    );
    w.bind("probe_cc = ?", cc.as_str());
    if !groups_filter.is_empty() {
        let tests: BTreeSet<String> = TEST_GROUPS
            .iter()
            .filter(|(g, _)| groups_filter.iter().any(|f| f == g))
            .flat_map(|(_, tests)| tests.iter().map(|t| (*t).to_owned()))
            .collect();
        w.bind("test_name IN ?", tests.into_iter().collect::<Vec<_>>());
    }
    q.append(w.into_sql());
    q.push(" GROUP BY day");
    let rows = s.db.json(&q).await?.rows;
    let asns: HashMap<String, u64> = rows
        .iter()
        .map(|r| (as_str(r.get("day")).to_owned(), as_u64(r.get("count"))))
        .collect();
    let network_coverage: Vec<Value> = (0..30)
        .map(|i| {
            let d = (t - Duration::days(31 - i)).format("%Y-%m-%d").to_string();
            json!({"count": asns.get(&d).copied().unwrap_or(0), "test_day": d})
        })
        .collect();
    json(
        &json!({"network_coverage": network_coverage, "test_coverage": test_coverage}),
        Cache::MaxAge(3600),
    )
}

/// The 31-day window ending at today's midnight that several country statistics use.
fn last_31_days(w: &mut Where, t: NaiveDate) {
    w.bind(
        "measurement_start_time >= toDateTime(?)",
        midnight(t - Duration::days(31)),
    );
    w.bind("measurement_start_time < toDateTime(?)", midnight(t));
}

/// `GET /api/_/website_networks`: measurements per network in a country, last 31 days.
pub async fn website_networks(s: Arc<State>, req: Request) -> HttpResult {
    let p = Params::from_request(&req);
    let cc = require_cc(&p)?;
    let mut q = Sql::new("SELECT count() AS count, probe_asn FROM fastpath FINAL");
    let mut w = Where::new();
    last_31_days(&mut w, today(&s));
    w.bind("probe_cc = ?", cc.as_str());
    q.append(w.into_sql());
    q.push(" GROUP BY probe_asn ORDER BY count DESC, probe_asn");
    let rows = s.db.json(&q).await?.rows;
    let results: Vec<Value> = rows
        .iter()
        .map(|r| json!({"count": u(r.get("count")), "probe_asn": u(r.get("probe_asn"))}))
        .collect();
    json(&json!({ "results": results }), Cache::MaxAge(0))
}

/// `GET /api/_/website_stats`: daily counts for one URL on one network, last 31 days.
pub async fn website_stats(s: Arc<State>, req: Request) -> HttpResult {
    let p = Params::from_request(&req);
    let cc = require_cc(&p)?;
    let asn = require_asn(&p)?;
    let Some(input) = p.get("input") else {
        // Upstream compared `input = NULL`, which matches nothing.
        return json(&json!({"results": []}), Cache::MaxAge(0));
    };
    let mut q = Sql::new("SELECT toDate(measurement_start_time) AS test_day, ");
    q.push(OUTCOME_COUNTS);
    let mut w = Where::new();
    last_31_days(&mut w, today(&s));
    w.bind("probe_cc = ?", cc.as_str())
        .bind("probe_asn = ?", asn)
        .bind("input = ?", input);
    q.append(w.into_sql());
    q.push(" GROUP BY test_day ORDER BY test_day");
    let rows = s.db.json(&q).await?.rows;
    let results = outcome_counts(&rows, "test_day");
    json(&json!({ "results": results }), Cache::MaxAge(0))
}

/// `GET /api/_/website_urls`: the tested URLs of one network with their counts, paged.
pub async fn website_urls(s: Arc<State>, req: Request) -> HttpResult {
    let p = Params::from_request(&req);
    let cc = require_cc(&p)?;
    let asn = require_asn(&p)?;
    let int = |name: &str, default: i64| -> Result<i64, ApiError> {
        match p.get(name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid {name}"))),
        }
    };
    let limit = match int("limit", 10)? {
        l if l <= 0 => 10,
        l => l.min(10_000),
    };
    let offset = int("offset", 0)?;
    if offset < 0 {
        return Err(ApiError::bad_request("invalid offset"));
    }
    let (limit, offset) = (limit.unsigned_abs(), offset.unsigned_abs());
    let t = today(&s);
    let scope = || {
        let mut w = Where::new();
        last_31_days(&mut w, t);
        w.fixed("test_name = 'web_connectivity'")
            .bind("probe_cc = ?", cc.as_str())
            .bind("probe_asn = ?", asn);
        w.into_sql()
    };
    let mut total = Sql::new("SELECT COUNT(DISTINCT input) AS total FROM fastpath");
    total.append(scope());
    let total_count = as_u64(
        s.db.json(&total)
            .await?
            .rows
            .first()
            .and_then(|r| r.get("total")),
    );

    let mut q = Sql::new("SELECT input, ");
    q.push(OUTCOME_COUNTS);
    q.append(scope());
    q.push(" GROUP BY input ORDER BY confirmed_count DESC, total_count DESC, anomaly_count DESC, input ASC");
    q.push_bind(" LIMIT ?", limit)
        .push_bind(" OFFSET ?", offset);
    let rows = s.db.json(&q).await?.rows;
    let results = outcome_counts(&rows, "input");
    let next_url = (results.len() as u64 >= limit).then(|| {
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("limit", &limit.to_string())
            .append_pair("offset", &(offset + limit).to_string())
            .append_pair("probe_asn", &asn.to_string())
            .append_pair("probe_cc", &cc)
            .finish();
        format!("{}/api/_/website_urls?{q}", s.base_url)
    });
    let metadata = json!({
        "current_page": offset.div_ceil(limit) + 1,
        "limit": limit,
        "next_url": next_url,
        "offset": offset,
        "total_count": total_count,
    });
    json(
        &json!({"metadata": metadata, "results": results}),
        Cache::MaxAge(3600),
    )
}

/// `GET /api/_/vanilla_tor_stats`: per-network success counts over six months (every test
/// counted, as upstream).
pub async fn vanilla_tor_stats(s: Arc<State>, req: Request) -> HttpResult {
    let p = Params::from_request(&req);
    let cc = require_cc(&p)?;
    let mut q = Sql::new(
        "SELECT probe_asn, countIf(msm_failure = 't') AS failure_count, \
         toDate(max(measurement_start_time)) AS last_tested, count() AS total_count, \
         total_count - countIf(anomaly = 't') AS success_count FROM fastpath FINAL",
    );
    let mut w = Where::new();
    w.bind(
        "measurement_start_time > toDateTime(?)",
        midnight(months_before(today(&s), 6)),
    );
    w.bind("probe_cc = ?", cc.as_str());
    q.append(w.into_sql());
    q.push(" GROUP BY probe_asn ORDER BY probe_asn");
    let rows = s.db.json(&q).await?.rows;
    let mut last_tested: Option<String> = None;
    let mut notok = 0u64;
    let networks: Vec<Value> = rows
        .iter()
        .map(|r| {
            let total = as_u64(r.get("total_count"));
            let success = as_u64(r.get("success_count"));
            // Counts are far below 2^53, so the ratio is exact enough.
            if total > 5 && (success as f64) / (total as f64) < 0.6 {
                notok += 1;
            }
            let day = as_str(r.get("last_tested")).to_owned();
            if last_tested.as_ref().is_none_or(|l| day > *l) {
                last_tested = Some(day.clone());
            }
            json!({
                "failure_count": u(r.get("failure_count")),
                "last_tested": day,
                "probe_asn": u(r.get("probe_asn")),
                "success_count": success,
                "test_runtime_avg": null,
                "test_runtime_max": null,
                "test_runtime_min": null,
                "total_count": total,
            })
        })
        .collect();
    json(
        &json!({"last_tested": last_tested, "networks": networks, "notok_networks": notok}),
        Cache::MaxAge(0),
    )
}

/// `GET /api/_/im_networks`: networks that ran each instant messaging test, last 31 days.
pub async fn im_networks(s: Arc<State>, req: Request) -> HttpResult {
    let p = Params::from_request(&req);
    let cc = require_cc(&p)?;
    let mut q = Sql::new(
        "SELECT test_name, probe_asn, count() AS total_count, toDate(max(measurement_start_time)) AS last_tested \
         FROM fastpath FINAL",
    );
    let mut w = Where::new();
    last_31_days(&mut w, today(&s));
    w.bind("probe_cc = ?", cc.as_str());
    w.bind(
        "test_name IN ?",
        IM_TESTS.iter().map(|t| (*t).to_owned()).collect::<Vec<_>>(),
    );
    q.append(w.into_sql());
    q.push(" GROUP BY test_name, probe_asn ORDER BY test_name, total_count DESC, probe_asn");
    let rows = s.db.json(&q).await?.rows;
    let mut out: BTreeMap<String, (String, Vec<Value>)> = BTreeMap::new();
    for r in &rows {
        let day = as_str(r.get("last_tested")).to_owned();
        let entry = out
            .entry(as_str(r.get("test_name")).to_owned())
            .or_insert_with(|| (String::new(), Vec::new()));
        if day > entry.0 {
            entry.0 = day.clone();
        }
        entry.1.push(json!({"asn": u(r.get("probe_asn")), "last_tested": day, "name": "", "total_count": u(r.get("total_count"))}));
    }
    let body: Map<String, Value> = out
        .into_iter()
        .map(|(test, (last, nets))| {
            (
                test,
                json!({"anomaly_networks": [], "last_tested": last, "ok_networks": nets}),
            )
        })
        .collect();
    json(&Value::Object(body), Cache::MaxAge(3600))
}

/// `GET /api/_/im_stats`: daily counts of one instant messaging test on one network.
pub async fn im_stats(s: Arc<State>, req: Request) -> HttpResult {
    let p = Params::from_request(&req);
    let test_name = p
        .get("test_name")
        .filter(|t| IM_TESTS.contains(t))
        .ok_or_else(|| ApiError::bad_request("invalid test_name"))?
        .to_owned();
    let cc = require_cc(&p)?;
    let asn = require_asn(&p)?;
    let t = today(&s);
    let mut q = Sql::new("SELECT toDate(measurement_start_time) AS test_day, count() AS total_count FROM fastpath FINAL");
    let mut w = Where::new();
    last_31_days(&mut w, t);
    w.bind("probe_cc = ?", cc.as_str())
        .bind("test_name = ?", test_name)
        .bind("probe_asn = ?", asn);
    q.append(w.into_sql());
    q.push(" GROUP BY test_day ORDER BY test_day");
    let rows = s.db.json(&q).await?.rows;
    let counts: HashMap<String, u64> = rows
        .iter()
        .map(|r| {
            (
                as_str(r.get("test_day")).to_owned(),
                as_u64(r.get("total_count")),
            )
        })
        .collect();
    let results: Vec<Value> = (0..32)
        .map(|i| {
            let d = (t - Duration::days(31 - i)).format("%Y-%m-%d").to_string();
            json!({"anomaly_count": null, "test_day": date_t00(&d), "total_count": counts.get(&d).copied().unwrap_or(0)})
        })
        .collect();
    json(&json!({ "results": results }), Cache::MaxAge(3600))
}

/// `GET /api/_/network_stats`: an upstream stub, answered the same way.
pub async fn network_stats(_s: Arc<State>, req: Request) -> HttpResult {
    let p = Params::from_request(&req);
    require_cc(&p)?;
    let body = json!({
        "metadata": {"current_page": 1, "limit": 10, "next_url": null, "offset": 0, "total_count": 0},
        "results": [],
    });
    json(&body, Cache::MaxAge(86_400))
}

/// `GET /api/_/country_overview`: first measurement date, measurement and network counts.
pub async fn country_overview(s: Arc<State>, req: Request) -> HttpResult {
    let p = Params::from_request(&req);
    let cc = require_cc(&p)?;
    let mut q = Sql::new(
        "SELECT toDate(min(measurement_start_time)) AS first_bucket_date, count() AS measurement_count, \
         COUNT(DISTINCT probe_asn) AS network_count FROM fastpath FINAL",
    );
    q.push_bind(" WHERE probe_cc = ?", cc.as_str())
        .push(" AND measurement_start_time > toDateTime('2012-12-01 00:00:00')");
    let rows = s.db.json(&q).await?.rows;
    let r = rows.first().cloned().unwrap_or_default();
    let body = json!({
        "first_bucket_date": as_str(r.get("first_bucket_date")),
        "measurement_count": u(r.get("measurement_count")),
        "network_count": u(r.get("network_count")),
    });
    json(&body, Cache::MaxAge(86_400))
}

/// `GET /api/_/global_overview`: all-time country, network and measurement counts.
pub async fn global_overview(s: Arc<State>, _req: Request) -> HttpResult {
    let q = Sql::new(
        "SELECT COUNT(DISTINCT probe_cc) AS country_count, count() AS measurement_count, \
         COUNT(DISTINCT probe_asn) AS network_count FROM fastpath FINAL",
    );
    let rows = s.db.json(&q).await?.rows;
    let r = rows.first().cloned().unwrap_or_default();
    let body = json!({
        "country_count": u(r.get("country_count")),
        "measurement_count": u(r.get("measurement_count")),
        "network_count": u(r.get("network_count")),
    });
    json(&body, Cache::MaxAge(86_400))
}

/// `GET /api/_/global_overview_by_month`: monthly countries, networks and measurements.
pub async fn global_overview_by_month(s: Arc<State>, _req: Request) -> HttpResult {
    let t = today(&s);
    let mut q = Sql::new(
        "SELECT toStartOfMonth(measurement_start_time) AS date, COUNT(DISTINCT probe_cc) AS countries, \
         COUNT(DISTINCT probe_asn) AS networks, count() AS measurements FROM fastpath FINAL",
    );
    q.push_bind(
        " WHERE measurement_start_time > toDateTime(?)",
        midnight(first_of_month(months_before(t, 24))),
    );
    q.push_bind(
        " AND measurement_start_time < toDateTime(?)",
        midnight(first_of_month(t) + chrono::Months::new(1)),
    );
    q.push(" GROUP BY date ORDER BY date");
    let rows = s.db.json(&q).await?.rows;
    let series = |col: &str| -> Vec<Value> {
        rows.iter()
            .map(|r| json!({"date": date_t00(as_str(r.get("date"))), "value": u(r.get(col))}))
            .collect()
    };
    let body = json!({
        "countries_by_month": series("countries"),
        "measurements_by_month": series("measurements"),
        "networks_by_month": series("networks"),
    });
    json(&body, Cache::MaxAge(86_400))
}

fn circumvention_scope(s: &State) -> Sql {
    let t = today(s);
    let mut w = Where::new();
    w.bind(
        "test_name IN ?",
        CIRCUMVENTION_TESTS
            .iter()
            .map(|t| (*t).to_owned())
            .collect::<Vec<_>>(),
    );
    w.bind(
        "measurement_start_time > toDateTime(?)",
        midnight(months_before(t, 6)),
    );
    w.bind(
        "measurement_start_time < toDateTime(?)",
        midnight(t - Duration::days(1)),
    );
    w.into_sql()
}

/// `GET /api/_/circumvention_stats_by_country`: circumvention measurements per country.
pub async fn circumvention_stats_by_country(s: Arc<State>, _req: Request) -> HttpResult {
    let mut q = Sql::new("SELECT probe_cc, count() AS cnt FROM fastpath FINAL");
    q.append(circumvention_scope(&s));
    q.push(" GROUP BY probe_cc ORDER BY probe_cc");
    let rows = s.db.json(&q).await?.rows;
    let results: Vec<Value> = rows
        .iter()
        .map(|r| json!({"cnt": u(r.get("cnt")), "probe_cc": as_str(r.get("probe_cc"))}))
        .collect();
    json(&json!({"results": results, "v": 0}), Cache::MaxAge(86_400))
}

/// `GET /api/_/circumvention_runtime_stats`: runtime percentiles per day, country and test,
/// expanded to every combination (missing ones have `"v": []`).
pub async fn circumvention_runtime_stats(s: Arc<State>, _req: Request) -> HttpResult {
    let mut q = Sql::new(
        "SELECT toDate(measurement_start_time) AS date, probe_cc, test_name, \
         quantile(0.5)(JSONExtractFloat(scores, 'extra', 'test_runtime')) AS p50, \
         quantile(0.9)(JSONExtractFloat(scores, 'extra', 'test_runtime')) AS p90, count() AS cnt FROM fastpath FINAL",
    );
    q.append(circumvention_scope(&s));
    q.push(" AND JSONHas(scores, 'extra', 'test_runtime') GROUP BY date, probe_cc, test_name");
    let rows = s.db.json(&q).await?.rows;
    let mut tests = BTreeSet::new();
    let mut ccs = BTreeSet::new();
    let mut dates = BTreeSet::new();
    let mut values: HashMap<(String, String, String), Value> = HashMap::new();
    for r in &rows {
        let (d, cc, tn) = (
            as_str(r.get("date")).to_owned(),
            as_str(r.get("probe_cc")).to_owned(),
            as_str(r.get("test_name")).to_owned(),
        );
        tests.insert(tn.clone());
        ccs.insert(cc.clone());
        dates.insert(d.clone());
        let p50 = r.get("p50").cloned().unwrap_or(Value::Null);
        let p90 = r.get("p90").cloned().unwrap_or(Value::Null);
        values.insert((tn, cc, d), json!([p50, p90, u(r.get("cnt"))]));
    }
    let mut results = Vec::with_capacity(tests.len() * ccs.len() * dates.len());
    for tn in &tests {
        for cc in &ccs {
            for d in &dates {
                let v = values
                    .get(&(tn.clone(), cc.clone(), d.clone()))
                    .cloned()
                    .unwrap_or_else(|| json!([]));
                results.push(json!({"date": d, "probe_cc": cc, "test_name": tn, "v": v}));
            }
        }
    }
    json(&json!({"results": results, "v": 0}), Cache::MaxAge(86_400))
}

#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct DomainRow {
    category_code: String,
    domain: String,
}

/// `GET /api/_/domain_metadata`: category and canonical form of a domain (`www.` or not).
pub async fn domain_metadata(s: Arc<State>, req: Request) -> HttpResult {
    let p = Params::from_request(&req);
    let domain = p
        .get("domain")
        .ok_or_else(|| ApiError::bad_request("missing domain"))?;
    let (pair, canonical) = match domain.strip_prefix("www.") {
        Some(bare) => (vec![bare.to_owned(), domain.to_owned()], bare.to_owned()),
        None => (
            vec![domain.to_owned(), format!("www.{domain}")],
            domain.to_owned(),
        ),
    };
    let lookup = |global: bool| {
        let mut q = Sql::new("SELECT category_code, domain FROM citizenlab");
        q.push_bind(" WHERE domain IN ?", pair.clone());
        if global {
            q.push(" AND cc = 'ZZ'");
        }
        q.push(" ORDER BY length(url), url LIMIT 1");
        q
    };
    let hit = match s.db.optional::<DomainRow>(&lookup(true)).await? {
        Some(row) => Some(row),
        None => s.db.optional::<DomainRow>(&lookup(false)).await?,
    };
    let body = match hit {
        Some(row) => json!({"canonical_domain": row.domain, "category_code": row.category_code}),
        None => json!({"canonical_domain": canonical, "category_code": "MISC"}),
    };
    json(&body, Cache::MaxAge(7200))
}

#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct OrgRow {
    org_name: String,
}

/// `GET /api/_/asnmeta`: the organisation behind an ASN (`AS` prefix optional).
pub async fn asnmeta(s: Arc<State>, req: Request) -> HttpResult {
    let p = Params::from_request(&req);
    let raw = p
        .get("asn")
        .ok_or_else(|| ApiError::bad_request("missing asn"))?;
    let asn = parse_asn(raw).ok_or_else(|| ApiError::bad_request("invalid asn"))?;
    let mut q = Sql::new("SELECT org_name FROM asnmeta");
    q.push_bind(" WHERE asn = ?", asn)
        .push(" ORDER BY changed DESC LIMIT 1");
    let org =
        s.db.optional::<OrgRow>(&q)
            .await?
            .map(|r| r.org_name)
            .unwrap_or_else(|| "Unknown".into());
    json(&json!({ "org_name": org }), Cache::MaxAge(7200))
}

/// `GET /api/_/networks`: all-time measurement count per network with its organisation.
pub async fn networks(s: Arc<State>, _req: Request) -> HttpResult {
    let q = Sql::new(
        "SELECT f.probe_asn AS probe_asn, f.cnt AS cnt, m.org_name AS org_name \
         FROM (SELECT probe_asn, count() AS cnt FROM fastpath FINAL GROUP BY probe_asn) AS f \
         LEFT JOIN (SELECT asn, argMax(org_name, changed) AS org_name FROM asnmeta GROUP BY asn) AS m \
         ON m.asn = f.probe_asn ORDER BY probe_asn",
    );
    let rows = s.db.json(&q).await?.rows;
    let results: Vec<Value> = rows
        .iter()
        .map(|r| json!({"cnt": u(r.get("cnt")), "org_name": as_str(r.get("org_name")), "probe_asn": u(r.get("probe_asn"))}))
        .collect();
    json(&json!({"results": results, "v": 0}), Cache::MaxAge(7200))
}

/// `GET /api/_/domains`: every test-list domain with a category (global list first) and its
/// all-time web_connectivity measurement count.
pub async fn domains(s: Arc<State>, _req: Request) -> HttpResult {
    let q = Sql::new(
        "SELECT c.domain AS domain_name, c.category_code AS category_code, f.measurement_count AS measurement_count \
         FROM (SELECT domain, argMin(category_code, lower(cc) != 'zz') AS category_code FROM citizenlab GROUP BY domain) AS c \
         LEFT JOIN (SELECT domain, count() AS measurement_count FROM fastpath FINAL \
         WHERE test_name = 'web_connectivity' GROUP BY domain) AS f ON f.domain = c.domain \
         ORDER BY domain_name",
    );
    let rows = s.db.json(&q).await?.rows;
    let results: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "category_code": as_str(r.get("category_code")),
                "domain_name": as_str(r.get("domain_name")),
                "measurement_count": u(r.get("measurement_count")),
            })
        })
        .collect();
    json(&json!({"results": results, "v": 0}), Cache::MaxAge(7200))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn month_arithmetic_clamps_days() {
        let d = NaiveDate::from_ymd_opt(2024, 8, 31).unwrap();
        assert_eq!(
            months_before(d, 6),
            NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()
        );
        assert_eq!(
            first_of_month(d),
            NaiveDate::from_ymd_opt(2024, 8, 1).unwrap()
        );
    }

    #[test]
    fn preformatted_dates_have_the_upstream_suffix() {
        assert_eq!(date_t00("2024-08-01"), "2024-08-01T00:00:00+00:00");
        assert_eq!(date_t00("2024-08-01 00:00:00"), "2024-08-01T00:00:00+00:00");
        assert_eq!(date_t00("2024-08-01T00:00:00+00:00").len(), 25);
    }

    #[test]
    fn probe_cc_must_be_two_characters() {
        assert!(require_cc(&Params::parse("probe_cc=IT")).is_ok());
        let err = require_cc(&Params::parse("probe_cc=ITA")).unwrap_err();
        assert_eq!(
            err.body.to_json(),
            json!({"error": "missing or incorrect probe_cc"})
        );
        assert!(require_cc(&Params::parse("")).is_err());
    }

    #[test]
    fn test_names_are_the_24_upstream_ids_in_order() {
        assert_eq!(TEST_NAMES.len(), 24);
        assert!(TEST_NAMES.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
