//! Black-box tests of `/api/v1/aggregation` and `/api/v1/torsf_stats` on the upstream fixture
//! rows: upstream's expected counts, the CSV format, the time-grain rules and the fixed bugs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::shared;
use serde_json::{json, Value};

/// GET `/api/v1/{q}` expecting 200 JSON, without `db_stats`.
async fn agg(q: &str) -> Value {
    let mut v = shared().json(&format!("/api/v1/{q}")).await;
    let stats = v
        .as_object_mut()
        .unwrap()
        .remove("db_stats")
        .expect("db_stats is present");
    for k in ["row_count", "bytes", "total_row_count"] {
        assert!(stats[k].is_u64(), "{k}: {stats}");
    }
    assert!(stats["elapsed_seconds"].is_f64(), "{stats}");
    v
}

fn counts(anomaly: u64, confirmed: u64, failure: u64, measurement: u64, ok: u64) -> Value {
    json!({"anomaly_count": anomaly, "confirmed_count": confirmed, "failure_count": failure, "measurement_count": measurement, "ok_count": ok})
}

fn with(mut base: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

#[tokio::test]
async fn zero_dimensions_return_one_counter_object() {
    let v = agg("aggregation?probe_cc=IT&probe_asn=AS3269&since=2024-01-01&until=2024-02-01").await;
    assert_eq!(v["dimension_count"], 0);
    assert_eq!(v["v"], 0);
    let keys: Vec<&String> = v["result"].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "anomaly_count",
            "confirmed_count",
            "failure_count",
            "measurement_count",
            "ok_count"
        ]
    );
    assert!(v["result"]["measurement_count"].as_u64().unwrap() > 0);
    assert!(v["result"]["ok_count"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn multi_value_filters_match_upstream_counts() {
    for (q, expected) in [
        ("domain=twitter.com,facebook.com", counts(0, 0, 0, 24, 24)),
        ("probe_asn=AS3303,AS8167", counts(10, 0, 4, 24, 10)),
        ("probe_cc=BR,GB", counts(1, 0, 0, 20, 19)),
        (
            "test_name=web_connectivity,whatsapp",
            counts(11, 0, 2, 57, 44),
        ),
        ("ooni_run_link_id=1234,2345", counts(0, 0, 0, 0, 0)),
        ("input=https://twitter.com/", counts(0, 0, 0, 7, 7)),
    ] {
        let v = agg(&format!(
            "aggregation?{q}&since=2021-07-09&until=2021-07-10"
        ))
        .await;
        assert_eq!(
            v,
            json!({"dimension_count": 0, "result": expected, "v": 0}),
            "{q}"
        );
    }
    let v =
        agg("aggregation?probe_cc=MY&since=2024-01-01&until=2024-01-02&test_name=psiphon").await;
    assert_eq!(v["result"], counts(0, 0, 0, 1, 1));
}

#[tokio::test]
async fn domain_filters_match_hostnames_and_ip_addresses() {
    for q in ["probe_cc=DE&domain=de.rt.com", "domain=8.8.8.8"] {
        let v = agg(&format!(
            "aggregation?{q}&since=2024-01-01&until=2024-02-01"
        ))
        .await;
        assert!(
            v["result"]["measurement_count"].as_u64().unwrap() > 0,
            "{q}"
        );
    }
}

#[tokio::test]
async fn a_category_filter_narrows_the_count() {
    let all = agg("aggregation?probe_cc=IT&since=2024-01-01&until=2024-02-01").await;
    let rel =
        agg("aggregation?probe_cc=IT&category_code=REL&since=2024-01-01&until=2024-02-01").await;
    let n = rel["result"]["measurement_count"].as_u64().unwrap();
    assert!(n > 0 && rel["result"]["ok_count"].as_u64().unwrap() > 0);
    assert!(all["result"]["measurement_count"].as_u64().unwrap() > n);
}

#[tokio::test]
async fn one_test_name_axis_splits_the_counts() {
    let v = agg("aggregation?test_name=web_connectivity,whatsapp&since=2021-07-09&until=2021-07-10&axis_x=test_name").await;
    assert_eq!(
        v,
        json!({
            "dimension_count": 1,
            "result": [
                with(counts(11, 0, 2, 55, 42), json!({"test_name": "web_connectivity"})),
                with(counts(0, 0, 0, 2, 2), json!({"test_name": "whatsapp"})),
            ],
            "v": 0,
        })
    );
}

#[tokio::test]
async fn a_daily_axis_over_two_days_has_one_row_per_day_with_data() {
    let v = agg("aggregation?probe_cc=CH&probe_asn=AS3303&since=2021-07-09&until=2021-07-11&time_grain=day&axis_x=measurement_start_day").await;
    assert_eq!(
        v,
        json!({"dimension_count": 1, "result": [with(counts(10, 0, 4, 24, 10), json!({"measurement_start_day": "2021-07-09"}))], "v": 0})
    );
}

#[tokio::test]
async fn auto_grain_over_two_days_is_hourly() {
    let v = agg("aggregation?since=2021-07-09&until=2021-07-11&axis_x=measurement_start_day").await;
    assert_eq!(v["dimension_count"], 1);
    let r = v["result"].as_array().unwrap();
    assert_eq!(
        r[0],
        with(
            counts(9, 0, 2, 20, 9),
            json!({"measurement_start_day": "2021-07-09T00:00:00Z"})
        )
    );
    assert_eq!(
        r[1],
        with(
            counts(0, 0, 0, 4, 4),
            json!({"measurement_start_day": "2021-07-09T02:00:00Z"})
        )
    );
}

#[tokio::test]
async fn time_grain_errors_use_the_upstream_messages() {
    let api = shared();
    for (q, msg) in [
        (
            "since=2020-07-09&until=2022-07-11&time_grain=hour",
            "Choose time_grain between day, week, month, year, auto for the given time range",
        ),
        (
            "since=2022-07-09&until=2022-07-11&time_grain=year",
            "Choose time_grain between hour, day, auto for the given time range",
        ),
    ] {
        let (status, _, text) = api
            .get(&format!(
                "/api/v1/aggregation?{q}&axis_x=measurement_start_day"
            ))
            .await;
        assert_eq!(status, 400, "{q}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v, json!({"error": msg, "msg": msg, "v": 0}));
    }
    for q in [
        "since=2022-07-09&until=2021-07-11&time_grain=day",
        "probe_cc=CH&until=2021-07-10",
    ] {
        let (status, _, _) = api
            .get(&format!(
                "/api/v1/aggregation?{q}&axis_x=measurement_start_day"
            ))
            .await;
        assert_eq!(status, 400, "{q}");
    }
    let (status, _, _) = api.get("/api/v1/aggregation?time_grain=minute").await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn a_yearly_grain_is_supported() {
    // Upstream offered `year` but never mapped it to a function (500).
    let v = agg("aggregation?since=2020-01-01&until=2026-01-01&time_grain=year&axis_x=measurement_start_day").await;
    let days: Vec<&str> = v["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["measurement_start_day"].as_str().unwrap())
        .collect();
    assert_eq!(days, ["2021-01-01", "2024-01-01", "2025-01-01"]);
    let total: u64 = v["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["measurement_count"].as_u64().unwrap())
        .sum();
    let direct: u64 = shared()
        .ch()
        .query("SELECT count() FROM fastpath FINAL")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(total, direct);
    let weekly = agg("aggregation?since=2023-12-01&until=2024-01-10&time_grain=week&axis_x=measurement_start_day").await;
    assert!(weekly["result"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["measurement_start_day"].as_str().unwrap().len() == 10));
    let monthly = agg("aggregation?since=2023-06-01&until=2024-02-10&time_grain=month&axis_x=measurement_start_day").await;
    assert!(monthly["result"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["measurement_start_day"]
            .as_str()
            .unwrap()
            .ends_with("-01")));
}

#[tokio::test]
async fn the_domain_axis_lists_each_domain() {
    let v = agg(
        "aggregation?probe_cc=CH&probe_asn=AS3303&since=2021-07-09&until=2021-07-10&axis_x=domain",
    )
    .await;
    let row = v["result"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["domain"] == "4genderjustice.org")
        .cloned();
    assert_eq!(
        row,
        Some(with(
            counts(0, 0, 0, 1, 1),
            json!({"domain": "4genderjustice.org"})
        ))
    );
}

#[tokio::test]
async fn the_blocking_type_axis_reads_the_scores() {
    let v = agg("aggregation?since=2021-07-09&until=2021-07-10&axis_y=blocking_type").await;
    assert_eq!(
        v["result"],
        json!([
            with(counts(2, 0, 4, 59, 53), json!({"blocking_type": ""})),
            with(counts(3, 0, 0, 3, 0), json!({"blocking_type": "dns"})),
            with(counts(6, 0, 0, 6, 0), json!({"blocking_type": "http-diff"})),
            with(
                counts(1, 0, 0, 1, 0),
                json!({"blocking_type": "http-failure"})
            ),
            with(counts(1, 0, 0, 1, 0), json!({"blocking_type": "tcp_ip"})),
        ])
    );
}

#[tokio::test]
async fn axes_give_the_upstream_row_counts_and_keys() {
    let v = agg("aggregation?since=2021-07-09&until=2021-07-10&axis_x=probe_cc").await;
    assert_eq!(v["result"].as_array().unwrap().len(), 4);
    let v = agg(
        "aggregation?test_name=web_connectivity&since=2021-07-09&axis_x=probe_cc&until=2021-07-10",
    )
    .await;
    let keys: Vec<&String> = v["result"][0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "anomaly_count",
            "confirmed_count",
            "failure_count",
            "measurement_count",
            "ok_count",
            "probe_cc"
        ]
    );
    let v = agg("aggregation?since=2021-07-09&until=2021-07-10&axis_x=measurement_start_day&axis_y=probe_cc&test_name=web_connectivity").await;
    assert_eq!(v["dimension_count"], 2);
    assert_eq!(v["result"].as_array().unwrap().len(), 15);
    let v = agg("aggregation?since=2021-07-09&until=2021-07-10&axis_x=measurement_start_day&axis_y=probe_asn").await;
    assert!(v["result"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["probe_asn"].is_u64()));
}

#[tokio::test]
async fn category_axes_and_filters_match_upstream() {
    let expected = json!([with(counts(0, 0, 0, 7, 7), json!({"category_code": "GRP"}))]);
    for axis in ["axis_x", "axis_y"] {
        let v = agg(&format!(
            "aggregation?probe_cc=IT&since=2021-07-09&until=2021-07-10&{axis}=category_code"
        ))
        .await;
        assert_eq!(v["dimension_count"], 1);
        assert_eq!(
            json!(v["result"].as_array().unwrap()[..1]),
            expected,
            "{axis}"
        );
    }
    let v = agg("aggregation?probe_cc=IT&category_code=GRP&since=2021-07-09&until=2021-07-10&axis_x=measurement_start_day").await;
    let hours: Vec<(&str, u64)> = v["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["measurement_start_day"].as_str().unwrap(),
                r["measurement_count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        hours,
        [
            ("2021-07-09T02:00:00Z", 2),
            ("2021-07-09T03:00:00Z", 1),
            ("2021-07-09T12:00:00Z", 2),
            ("2021-07-09T14:00:00Z", 1),
            ("2021-07-09T17:00:00Z", 1)
        ]
    );
    let v = agg("aggregation?since=2021-07-09&until=2021-07-10&axis_x=measurement_start_day&axis_y=category_code").await;
    assert_eq!(
        json!(v["result"].as_array().unwrap()[..3]),
        json!([
            with(
                counts(0, 0, 0, 1, 1),
                json!({"category_code": "GAME", "measurement_start_day": "2021-07-09T00:00:00Z"})
            ),
            with(
                counts(0, 0, 0, 2, 2),
                json!({"category_code": "GRP", "measurement_start_day": "2021-07-09T02:00:00Z"})
            ),
            with(
                counts(0, 0, 0, 1, 1),
                json!({"category_code": "GRP", "measurement_start_day": "2021-07-09T03:00:00Z"})
            ),
        ])
    );
}

#[tokio::test]
async fn csv_has_sorted_headers_and_the_csv_content_type() {
    let api = shared();
    let (status, headers, text) = api.get("/api/v1/aggregation?probe_cc=IT&probe_asn=AS3269&since=2024-01-01&until=2024-02-01&format=CSV").await;
    assert_eq!(status, 200);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .contains("text/csv"));
    assert!(headers.get("content-disposition").is_none());
    assert_eq!(
        text.split('\r').next(),
        Some("anomaly_count,confirmed_count,failure_count,measurement_count,ok_count")
    );
    let (_, headers, _) = api.get("/api/v1/aggregation?probe_cc=IT&probe_asn=AS3269&since=2024-01-01&until=2024-02-01&format=CSV&download=true").await;
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=ooni-aggregate-data.csv"
    );
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .contains("text/csv"));
}

#[tokio::test]
async fn csv_rows_match_upstream_byte_for_byte() {
    let api = shared();
    let (_, _, text) = api.get("/api/v1/aggregation?probe_cc=IT&probe_asn=AS30722&since=2021-07-09&until=2021-07-10&format=CSV&axis_x=measurement_start_day").await;
    assert_eq!(
        text.replace('\r', ""),
        "anomaly_count,confirmed_count,failure_count,measurement_count,measurement_start_day,ok_count\n\
         0,0,0,4,2021-07-09T02:00:00Z,4\n\
         0,0,0,1,2021-07-09T03:00:00Z,1\n\
         0,0,0,1,2021-07-09T04:00:00Z,1\n\
         0,0,0,1,2021-07-09T07:00:00Z,1\n\
         0,0,0,3,2021-07-09T09:00:00Z,3\n\
         0,0,0,1,2021-07-09T10:00:00Z,1\n\
         0,0,0,1,2021-07-09T12:00:00Z,1\n\
         0,0,0,1,2021-07-09T19:00:00Z,1\n"
    );
    let (_, _, text) = api
        .get("/api/v1/aggregation?probe_cc=IT&domain=twitter.com&since=2021-07-09&until=2021-07-10&time_grain=day&axis_x=measurement_start_day&axis_y=probe_asn&format=CSV")
        .await;
    assert_eq!(
        text.replace('\r', ""),
        "anomaly_count,confirmed_count,failure_count,measurement_count,measurement_start_day,ok_count,probe_asn\n\
         0,0,0,3,2021-07-09,3,3269\n\
         0,0,0,8,2021-07-09,8,12874\n\
         0,0,0,13,2021-07-09,13,30722\n"
    );
    let (status, _, text) = api.get("/api/v1/aggregation?since=2021-07-09&until=2021-07-10&axis_x=probe_cc&probe_cc=XX&format=CSV").await;
    assert_eq!(
        status, 200,
        "an empty result is a header-only CSV, not an error"
    );
    assert_eq!(
        text,
        "anomaly_count,confirmed_count,failure_count,measurement_count,ok_count,probe_cc\r\n"
    );
}

#[tokio::test]
async fn parameter_errors_are_400_with_the_v0_shape() {
    let api = shared();
    for (q, msg) in [
        (
            "since=2021-07-09&until=2021-07-10&axis_x=probe_cc&axis_y=probe_cc",
            "Axis X and Y cannot be the same",
        ),
        (
            "since=2021-07-09&until=2021-07-10&axis_x=report_id",
            "Invalid axis name",
        ),
        ("test_name=BOGUS", "Invalid characters"),
        (
            "since=2021-07-09&until=2021-07-10&input=~!^{}",
            "Invalid characters in input field",
        ),
        (
            "since=2021-07-09&until=2021-07-10&input=foo.org;",
            "Invalid characters in input field",
        ),
    ] {
        let (status, headers, text) = api.get(&format!("/api/v1/aggregation?{q}")).await;
        assert_eq!(status, 400, "{q}: {text}");
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            json!({"error": msg, "msg": msg, "v": 0}),
            "{q}"
        );
        assert_eq!(headers["cache-control"], "no-cache");
    }
    let (status, _, text) = api.get("/api/v1/aggregation?probe_asn=ASfoo").await;
    assert_eq!(status, 400);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"detail": "Invalid ASN value in parameter probe_asn"})
    );
}

#[tokio::test]
async fn aggregations_get_a_short_max_age_instead_of_none() {
    let api = shared();
    let (_, headers, _) = api
        .get("/api/v1/aggregation?since=2021-07-09&until=2021-07-10")
        .await;
    assert_eq!(
        headers["cache-control"], "max-age=3600",
        "historical ranges"
    );
    let (_, headers, _) = api.get("/api/v1/aggregation?probe_cc=IT").await;
    assert_eq!(
        headers["cache-control"], "max-age=300",
        "ranges reaching now (the default)"
    );
}

#[tokio::test]
async fn torsf_stats_reports_daily_counts_and_rates() {
    let api = shared();
    let v = api
        .json("/api/v1/torsf_stats?since=2021-01-01&until=2024-01-02")
        .await;
    assert_eq!(v["v"], 0);
    let rows = v["result"].as_array().unwrap();
    let total: u64 = rows
        .iter()
        .map(|r| r["measurement_count"].as_u64().unwrap())
        .sum();
    let direct: u64 = api
        .ch()
        .query("SELECT count() FROM fastpath FINAL WHERE test_name = 'torsf' AND measurement_start_time > '2021-01-01' AND measurement_start_time <= '2024-01-02'")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(direct, 4);
    assert_eq!(total, direct);
    assert_eq!(
        rows.iter()
            .map(|r| r["probe_cc"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["BR", "GB", "MX", "US"]
    );
    for r in rows {
        let rate = r["anomaly_count"].as_f64().unwrap() / r["measurement_count"].as_f64().unwrap();
        assert!((r["anomaly_rate"].as_f64().unwrap() - rate).abs() < 1e-9);
        assert_eq!(r["measurement_start_day"].as_str().unwrap().len(), 10);
    }
    // The shared clock is 2024-01-05: a range ending three days before is final.
    let (_, headers, _) = api
        .get("/api/v1/torsf_stats?since=2021-01-01&until=2024-01-02")
        .await;
    assert_eq!(headers["cache-control"], "max-age=86400");
    let (_, headers, _) = api.get("/api/v1/torsf_stats").await;
    assert_eq!(headers["cache-control"], "no-cache");
    let one = api.json("/api/v1/torsf_stats?probe_cc=XX").await;
    assert_eq!(one["result"], json!([]));
}
