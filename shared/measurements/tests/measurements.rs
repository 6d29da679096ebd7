//! Black-box tests of the measurement listing and lookup routes on the upstream fixture rows
//! (real ClickHouse + AWS emulator), including upstream's test cases and the fixed bugs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::shared;
use serde_json::{json, Value};

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn results(v: &Value) -> &Vec<Value> {
    v["results"].as_array().expect("results is a list")
}

#[tokio::test]
async fn a_day_of_fixture_data_fills_a_page_of_100() {
    let v = shared()
        .json("/api/v1/measurements?since=2024-01-01&until=2024-01-02")
        .await;
    assert_eq!(results(&v).len(), 100);
    assert_eq!(v["metadata"]["limit"], 100);
    assert_eq!(v["metadata"]["count"], -1);
    let next = v["metadata"]["next_url"].as_str().unwrap();
    assert!(
        next.starts_with(&format!(
            "{}/api/v1/measurements?",
            shared().public_base_url
        )),
        "{next}"
    );
    assert!(
        next.contains("offset=100")
            && next.contains("limit=100")
            && next.contains("since=2024-01-01"),
        "{next}"
    );
}

#[tokio::test]
async fn each_result_has_the_upstream_fields_and_a_measurement_url_on_this_deployment() {
    let api = shared();
    let v = api
        .json("/api/v1/measurements?since=2024-01-01&until=2024-01-02&limit=5")
        .await;
    for r in results(&v) {
        let uid = r["measurement_uid"].as_str().unwrap();
        assert_eq!(
            r["measurement_url"],
            format!(
                "{}/api/v1/raw_measurement?measurement_uid={uid}",
                api.public_base_url
            )
        );
        assert!(r["probe_asn"].as_str().unwrap().starts_with("AS"));
        assert!(r["scores"].is_object());
        assert_eq!(r["verification_status"], "unverified");
        let t = r["measurement_start_time"].as_str().unwrap();
        assert!(
            chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.6fZ").is_ok(),
            "{t}"
        );
        for k in ["anomaly", "confirmed", "failure"] {
            assert!(r[k].is_boolean(), "{k}");
        }
        assert!(r["input"].is_string() || r["input"].is_null());
    }
}

#[tokio::test]
async fn single_value_filters_only_return_matching_rows() {
    let api = shared();
    for (param, value, field, expected) in [
        (
            "test_name",
            "web_connectivity",
            "test_name",
            "web_connectivity",
        ),
        ("probe_cc", "IT", "probe_cc", "IT"),
        ("probe_asn", "AS30722", "probe_asn", "AS30722"),
        ("probe_asn", "30722", "probe_asn", "AS30722"),
    ] {
        let v = api
            .json(&format!(
                "/api/v1/measurements?since=2023-12-01&until=2024-01-10&{param}={value}"
            ))
            .await;
        assert!(!results(&v).is_empty(), "{param}={value}");
        for r in results(&v) {
            assert_eq!(r[field], expected, "{param}={value}");
        }
    }
}

#[tokio::test]
async fn multi_value_filters_return_rows_matching_any_value() {
    let api = shared();
    for (param, value, allowed) in [
        (
            "test_name",
            "web_connectivity,dnscheck,stunreachability,tor",
            vec!["web_connectivity", "dnscheck", "stunreachability", "tor"],
        ),
        ("probe_cc", "IT,US,RU", vec!["IT", "US", "RU"]),
        (
            "probe_asn",
            "AS30722,3269,7738,55430",
            vec!["AS30722", "AS3269", "AS7738", "AS55430"],
        ),
    ] {
        let v = api
            .json(&format!(
                "/api/v1/measurements?since=2023-12-01&until=2024-01-10&{param}={value}"
            ))
            .await;
        assert!(!results(&v).is_empty(), "{param}");
        for r in results(&v) {
            assert!(
                allowed.contains(&r[param].as_str().unwrap()),
                "{param}: {}",
                r[param]
            );
        }
    }
}

#[tokio::test]
async fn domain_filters_match_inputs_on_those_domains() {
    let api = shared();
    let v = api
        .json("/api/v1/measurements?since=2023-12-01&until=2024-01-10&domain=cloudflare-dns.com")
        .await;
    assert!(!results(&v).is_empty());
    for r in results(&v) {
        assert!(r["input"].as_str().unwrap().contains("cloudflare-dns.com"));
    }
    let v = api
        .json(&format!(
            "/api/v1/measurements?since=2023-12-01&until=2024-01-10&domain={}",
            enc("cloudflare-dns.com, adblock.doh.mullvad.net, 1.1.1.1")
        ))
        .await;
    assert!(!results(&v).is_empty());
    for r in results(&v) {
        let input = r["input"].as_str().unwrap();
        assert!(
            ["cloudflare-dns.com", "adblock.doh.mullvad.net", "1.1.1.1"]
                .iter()
                .any(|d| input.contains(d)),
            "{input}"
        );
    }
}

#[tokio::test]
async fn the_default_order_is_newest_first_and_asc_reverses_it() {
    let api = shared();
    let desc = api.json("/api/v1/measurements?since=2021-07-01&until=2021-07-20&order_by=measurement_start_time").await;
    let times: Vec<&str> = results(&desc)
        .iter()
        .map(|r| r["measurement_start_time"].as_str().unwrap())
        .collect();
    assert!(times.len() > 1);
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    let asc = api
        .json("/api/v1/measurements?since=2021-07-01&until=2021-07-20&order=asc")
        .await;
    let times: Vec<&str> = results(&asc)
        .iter()
        .map(|r| r["measurement_start_time"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
}

#[tokio::test]
async fn without_since_or_until_only_the_last_30_days_are_listed() {
    // The shared stack's clock is 2024-01-05 12:00 UTC: the window is 2023-12-07 .. 2024-01-06.
    let v = shared().json("/api/v1/measurements?limit=1000").await;
    assert!(!results(&v).is_empty());
    for r in results(&v) {
        let t = r["measurement_start_time"].as_str().unwrap();
        assert!(("2023-12-07".."2024-01-06T00:00:01").contains(&t), "{t}");
    }
}

#[tokio::test]
async fn ranges_over_six_months_are_rejected() {
    let (status, _, text) = shared()
        .get("/api/v1/measurements?since=2024-01-01&until=2024-07-20")
        .await;
    assert_eq!(status, 400);
    assert!(
        text.to_lowercase().contains("time range must not exceed"),
        "{text}"
    );
}

#[tokio::test]
async fn invalid_ordering_and_limits_are_rejected_and_valid_ones_accepted() {
    let api = shared();
    for bad in [
        "order_by=probe_cc",
        "order_by=test_start_time",
        "limit=1000001",
        "order=sideways",
        "limit=-1",
        "probe_asn=ASx",
        "since=yesterday",
    ] {
        let (status, _, text) = api.get(&format!("/api/v1/measurements?{bad}")).await;
        assert_eq!(status, 422, "{bad}: {text}");
        assert!(
            serde_json::from_str::<Value>(&text).unwrap()["detail"].is_array(),
            "{bad}"
        );
    }
    for ok in [
        "limit=50",
        "limit=1000000",
        "since=2025-09-29T00:00:00&until=2025-09-29T23:59:59&limit=2000",
    ] {
        let (status, _, text) = api.get(&format!("/api/v1/measurements?{ok}")).await;
        assert_eq!(status, 200, "{ok}: {text}");
    }
}

#[tokio::test]
async fn a_short_last_page_reports_the_count_and_no_next_url() {
    let api = shared();
    let all = api
        .json("/api/v1/measurements?since=2021-07-01&until=2021-07-20&limit=1000")
        .await;
    let n = results(&all).len();
    assert!(n > 20 && n < 1000, "{n}");
    assert_eq!(all["metadata"]["count"], n);
    assert_eq!(all["metadata"]["next_url"], Value::Null);
    assert_eq!(all["metadata"]["pages"], 1);
    // Paging with offset walks the same rows in the same order.
    let p1 = api
        .json("/api/v1/measurements?since=2021-07-01&until=2021-07-20&limit=20")
        .await;
    let p2 = api
        .json("/api/v1/measurements?since=2021-07-01&until=2021-07-20&limit=20&offset=20")
        .await;
    let uids = |v: &Value| {
        results(v)
            .iter()
            .map(|r| r["measurement_uid"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let expected: Vec<String> = uids(&all)[..40].to_vec();
    assert_eq!([uids(&p1), uids(&p2)].concat(), expected);
    assert_eq!(p2["metadata"]["current_page"], 2);
    assert_eq!(p2["metadata"]["offset"], 20);
}

#[tokio::test]
async fn the_listing_is_cached_for_a_minute() {
    let (_, headers, _) = shared()
        .get("/api/v1/measurements?since=2024-01-01&until=2024-01-02&limit=1")
        .await;
    assert_eq!(headers["cache-control"], "max-age=60");
}

#[tokio::test]
async fn okhttp_clients_get_the_canned_single_result() {
    let api = shared();
    let resp = reqwest::Client::new()
        .get(api.url("/api/v1/measurements"))
        .header("user-agent", "okhttp/3.12")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["metadata"]["count"], 1);
    assert_eq!(v["results"], json!([{"measurement_url": ""}]));
}

#[tokio::test]
async fn measurement_meta_returns_the_exact_upstream_object() {
    let rid = "20210709T004340Z_webconnectivity_MY_4818_n1_YCM7J9mGcEHds2K3";
    let inp = "https://www.backtrack-linux.org/";
    let (status, headers, text) = shared()
        .get(&format!(
            "/api/v1/measurement_meta?report_id={rid}&input={}",
            enc(inp)
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(headers["cache-control"], "max-age=60");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v,
        json!({
            "anomaly": true,
            "confirmed": false,
            "failure": false,
            "input": inp,
            "measurement_start_time": "2025-07-09T00:55:13Z",
            "measurement_uid": "20210709005529.664022_MY_webconnectivity_68e5bea1060d1874",
            "probe_asn": 4818,
            "probe_cc": "MY",
            "report_id": rid,
            "scores": "{\"blocking_general\":1.0,\"blocking_global\":0.0,\"blocking_country\":0.0,\"blocking_isp\":0.0,\"blocking_local\":0.0,\"analysis\":{\"blocking_type\":\"http-failure\"}}",
            "test_name": "web_connectivity",
            "test_start_time": "2025-07-09T00:43:40Z",
            "category_code": "",
            "verification_status": "unverified",
        })
    );
}

#[tokio::test]
async fn measurement_meta_without_input_has_a_null_category() {
    let rid = "20210709T000017Z_httpinvalidrequestline_CH_3303_n1_8mr2M3dzkoFmmjIU";
    let v = shared()
        .json(&format!("/api/v1/measurement_meta?report_id={rid}"))
        .await;
    assert_eq!(
        v,
        json!({
            "anomaly": false,
            "category_code": null,
            "confirmed": false,
            "failure": false,
            "input": "",
            "measurement_start_time": "2021-07-09T00:00:18Z",
            "measurement_uid": "20210709000024.440526_CH_httpinvalidrequestline_3937f817503ed4ea",
            "probe_asn": 3303,
            "probe_cc": "CH",
            "report_id": rid,
            "scores": "{\"blocking_general\":0.0,\"blocking_global\":0.0,\"blocking_country\":0.0,\"blocking_isp\":0.0,\"blocking_local\":0.0}",
            "test_name": "http_invalid_request_line",
            "test_start_time": "2021-07-09T00:00:16Z",
            "verification_status": "unverified",
        })
    );
}

#[tokio::test]
async fn measurement_meta_by_uid_matches_the_lookup_by_report_and_input() {
    let api = shared();
    let by_rid = api.json(&format!("/api/v1/measurement_meta?report_id=20250709T074749Z_webconnectivity_US_10796_n1_oljUoi3ZVNHUzjdp&input={}", enc("https://www.quora.com/"))).await;
    let by_uid = api.json("/api/v1/measurement_meta?measurement_uid=20250709074932.361231_US_webconnectivity_52be70d41f91a6cc").await;
    assert_eq!(by_rid, by_uid);
    assert!(
        by_uid["probe_asn"].is_i64(),
        "probe_asn is an integer like the monolith's"
    );
}

#[tokio::test]
async fn measurement_meta_rejects_invalid_report_ids_with_422() {
    let api = shared();
    let (status, _, text) = api.get("/api/v1/measurement_meta?report_id=BOGUS").await;
    assert_eq!(status, 422);
    assert!(text.contains("Invalid report_id"), "{text}");
    let (status, _, _) = api
        .get(&format!(
            "/api/v1/measurement_meta?report_id={}",
            enc("20210709T004340Z_web#$%connectivity_MY")
        ))
        .await;
    assert_eq!(status, 422);
    let (status, _, text) = api.get("/api/v1/measurement_meta").await;
    assert_eq!(status, 400, "{text}");
}

#[tokio::test]
async fn measurement_meta_for_an_unknown_report_is_an_empty_object() {
    let api = shared();
    let url = "/api/v1/measurement_meta?report_id=20200712T100000Z_AS9999_BOGUSsYKWBS2S0hdzXf7rhUusKfYP5cQM9HwAdZRPmUfroVoCn";
    assert_eq!(api.json(url).await, json!({}));
    assert_eq!(
        api.json(&format!("{url}&full=true")).await,
        json!({"raw_measurement": ""})
    );
    assert_eq!(api.json("/api/v1/measurement_meta?measurement_uid=20240101000000.000000_XX_nothing_0000000000000000").await, json!({}));
}

#[tokio::test]
async fn measurement_meta_full_includes_the_body_from_an_upstream_jsonl_file() {
    let api = shared();
    let (uid, rid, input, body) = api.seeded.upstream[0].clone();
    let v = api
        .json(&format!(
            "/api/v1/measurement_meta?report_id={rid}&input={}&full=True",
            enc(&input)
        ))
        .await;
    assert_eq!(v["measurement_uid"], uid);
    assert_eq!(v["raw_measurement"], body);
    let parsed: Value = serde_json::from_str(v["raw_measurement"].as_str().unwrap()).unwrap();
    assert_eq!(parsed["test_keys"]["marker"], uid);
}

#[tokio::test]
async fn measurement_meta_full_reads_a_single_gzip_member_of_a_seekable_file() {
    let api = shared();
    for (uid, _, _, body) in &api.seeded.seekable {
        let v = api
            .json(&format!(
                "/api/v1/measurement_meta?measurement_uid={uid}&full=true"
            ))
            .await;
        assert_eq!(v["raw_measurement"], *body, "{uid}");
        assert_eq!(v["probe_cc"], "IT");
    }
}

#[tokio::test]
async fn raw_measurement_returns_the_body_as_json_from_each_store() {
    let api = shared();
    let mut cases: Vec<(String, String)> = api
        .seeded
        .upstream
        .iter()
        .map(|(u, _, _, b)| (u.clone(), b.clone()))
        .collect();
    cases.extend(
        api.seeded
            .seekable
            .iter()
            .map(|(u, _, _, b)| (u.clone(), b.clone())),
    );
    cases.push((api.seeded.incoming.0.clone(), api.seeded.incoming.3.clone()));
    for (uid, body) in cases {
        let (status, headers, text) = api
            .get(&format!("/api/v1/raw_measurement?measurement_uid={uid}"))
            .await;
        assert_eq!(status, 200, "{uid}");
        assert_eq!(headers["cache-control"], "max-age=86400");
        assert_eq!(text, body, "{uid}");
        assert!(serde_json::from_str::<Value>(&text).unwrap().is_object());
    }
}

#[tokio::test]
async fn raw_measurement_by_report_and_input_finds_the_same_body() {
    let api = shared();
    let (uid, rid, input, body) = api.seeded.upstream[1].clone();
    let by_uid = api
        .get(&format!("/api/v1/raw_measurement?measurement_uid={uid}"))
        .await
        .2;
    let by_rid = api
        .get(&format!(
            "/api/v1/raw_measurement?report_id={rid}&input={}",
            enc(&input)
        ))
        .await
        .2;
    assert_eq!(by_uid, body);
    assert_eq!(by_rid, body);
}

#[tokio::test]
async fn raw_measurement_needs_an_identifier_and_answers_empty_for_unknown_ones() {
    let api = shared();
    let (status, _, _) = api.get("/api/v1/raw_measurement").await;
    assert_eq!(status, 400);
    let (status, headers, text) = api.get("/api/v1/raw_measurement?measurement_uid=20250709075147.833477_US_webconnectivity_baddbaddbaddbadd").await;
    assert_eq!((status, text.as_str()), (200, "{}"));
    assert_eq!(
        headers["cache-control"], "max-age=60",
        "a miss is cached briefly"
    );
    let (uid, _) = api.seeded.bodiless.clone();
    let (status, _, text) = api
        .get(&format!("/api/v1/raw_measurement?measurement_uid={uid}"))
        .await;
    assert_eq!((status, text.as_str()), (200, "{}"));
}

#[tokio::test]
async fn get_measurement_needs_no_download_parameter() {
    // Upstream declared `download` without a default and answered 422 when it was missing.
    let api = shared();
    let (uid, _, _, body) = api.seeded.seekable[2].clone();
    let (status, headers, text) = api.get(&format!("/api/v1/measurement/{uid}")).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(text, body);
    assert_eq!(headers["cache-control"], "max-age=3600");
    assert!(headers.get("content-disposition").is_none());
}

#[tokio::test]
async fn get_measurement_with_download_is_an_attachment() {
    let api = shared();
    let (uid, _, _, body) = api.seeded.incoming.clone();
    let (status, headers, text) = api
        .get(&format!("/api/v1/measurement/{uid}?download=true"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(text, body);
    assert_eq!(
        headers["content-disposition"],
        format!("attachment; filename=ooni_measurement-{uid}.json")
    );
}

#[tokio::test]
async fn get_measurement_for_an_unknown_uid_is_404_not_500() {
    let api = shared();
    let (uid, _) = api.seeded.bodiless.clone();
    for u in [
        uid.as_str(),
        "20250709075147.833477_US_webconnectivity_baddbaddbaddbadd",
        "not-a-uid",
        "weird%3Cscript%3E",
    ] {
        let (status, _, text) = api.get(&format!("/api/v1/measurement/{u}")).await;
        assert_eq!(status, 404, "{u}: {text}");
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            json!({"detail": "Measurement not found"})
        );
    }
}

#[tokio::test]
async fn every_metered_response_carries_the_remaining_quota() {
    let (_, headers, _) = shared().get("/api/v1/measurement_meta?measurement_uid=20250709074932.361231_US_webconnectivity_52be70d41f91a6cc").await;
    assert!(headers.get("x-ratelimit-remaining").is_some());
    let (_, headers, _) = shared().get("/api/v1/measurements?order=nope").await;
    assert!(headers.get("x-ratelimit-remaining").is_some(), "errors too");
}

/// The rows the listing considers between `since` and `until` (its default exclusions of
/// unknown countries and networks included).
fn listed_window(since: &str, until: &str) -> String {
    format!(
        "measurement_start_time > toDateTime('{since}') \
         AND measurement_start_time <= toDateTime('{until}') \
         AND probe_cc != 'ZZ' AND probe_asn != 0"
    )
}

/// The measurement_uids ClickHouse itself returns for the listing's window and default
/// exclusions plus `cond` — the oracle the API's filtered listing must equal.
async fn uids_where(since: &str, until: &str, cond: &str) -> std::collections::BTreeSet<String> {
    let sql = format!(
        "SELECT DISTINCT measurement_uid FROM fastpath FINAL WHERE {} AND {cond}",
        listed_window(since, until)
    );
    shared()
        .ch()
        .query(&sql)
        .fetch_all::<String>()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .collect()
}

async fn listed_uids(query: &str) -> std::collections::BTreeSet<String> {
    let v = shared()
        .json(&format!("/api/v1/measurements?{query}&limit=1000"))
        .await;
    results(&v)
        .iter()
        .map(|r| r["measurement_uid"].as_str().unwrap().to_owned())
        .collect()
}

/// Equal sets, reported by their sizes and differences (not thousands of ids).
fn same_uids(
    got: std::collections::BTreeSet<String>,
    expected: std::collections::BTreeSet<String>,
    what: &str,
) {
    let missing: Vec<_> = expected.difference(&got).take(5).collect();
    let extra: Vec<_> = got.difference(&expected).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: listed {} rows, ClickHouse {}; missing {missing:?}, extra {extra:?}",
        got.len(),
        expected.len()
    );
}

/// One value of `column` present in the window (the most common one, so the filter keeps rows).
async fn a_value_of(column: &str, since: &str, until: &str) -> String {
    shared()
        .ch()
        .query(&format!(
            "SELECT toString({column}) FROM fastpath FINAL WHERE {} AND {column} != '' \
             GROUP BY {column} ORDER BY count() DESC, {column} LIMIT 1",
            listed_window(since, until)
        ))
        .fetch_one::<String>()
        .await
        .unwrap()
}

/// Every other filter of the listing, on the fixture rows of real ClickHouse: each returns
/// exactly the rows ClickHouse selects for the same condition, and narrows the listing.
#[tokio::test]
async fn every_other_filter_returns_exactly_the_rows_clickhouse_selects() {
    // Under the 1000-row page: the fixture's first 30 seconds of 2024 (~440 rows).
    let (since, until) = ("2023-12-01 00:00:00", "2024-01-01 00:00:30");
    let window = format!("since={}&until={}", enc(since), enc(until));
    let everything = uids_where(since, until, "1").await;
    assert!(
        everything.len() > 100 && everything.len() < 1000,
        "{}",
        everything.len()
    );
    same_uids(listed_uids(&window).await, everything.clone(), "no filter");
    let quoted = |s: &str| format!("'{}'", s.replace('\'', "\\'"));
    let mut cases: Vec<(String, String)> = vec![
        ("anomaly=true".into(), "anomaly = 't'".into()),
        ("anomaly=false".into(), "anomaly = 'f'".into()),
        ("confirmed=false".into(), "confirmed = 'f'".into()),
        ("failure=true".into(), "msm_failure = 't'".into()),
        ("failure=false".into(), "msm_failure = 'f'".into()),
    ];
    for column in [
        "software_version",
        "test_version",
        "engine_version",
        "report_id",
        "input",
    ] {
        let value = a_value_of(column, since, until).await;
        cases.push((
            format!("{column}={}", enc(&value)),
            format!("{column} = {}", quoted(&value)),
        ));
    }
    // Two values of a comma-separated list filter match either.
    let sv = a_value_of("software_version", since, until).await;
    cases.push((
        format!("software_version={},0.0.0-none", enc(&sv)),
        format!("software_version IN ({}, '0.0.0-none')", quoted(&sv)),
    ));
    // A category keeps the inputs the test lists file under it.
    let category: String = shared()
        .ch()
        .query(&format!(
            "SELECT category_code FROM citizenlab WHERE url IN (SELECT input FROM fastpath \
             WHERE {}) GROUP BY category_code ORDER BY count() DESC, category_code LIMIT 1",
            listed_window(since, until)
        ))
        .fetch_one()
        .await
        .unwrap();
    cases.push((
        format!("category_code={category}"),
        format!(
            "input IN (SELECT url FROM citizenlab WHERE category_code = {})",
            quoted(&category)
        ),
    ));
    for (filter, cond) in cases {
        let expected = uids_where(since, until, &cond).await;
        assert!(
            !expected.is_empty(),
            "{filter}: no fixture row matches {cond}"
        );
        assert!(
            expected.len() < everything.len(),
            "{filter} does not narrow the fixture window"
        );
        same_uids(
            listed_uids(&format!("{window}&{filter}")).await,
            expected,
            &filter,
        );
    }
}

/// `ooni_run_link_id` (the fixtures have none): rows of two OONI Run links and one without, in
/// a window of their own; one id or both select exactly their rows, and ids are validated.
#[tokio::test]
async fn the_ooni_run_link_id_filter_selects_the_rows_of_those_links() {
    let ch = shared().ch();
    for (uid, link) in [
        (
            "20190302000000.000001_IT_webconnectivity_0000000000000001",
            "10001",
        ),
        (
            "20190302000000.000002_IT_webconnectivity_0000000000000002",
            "10002",
        ),
        (
            "20190302000000.000003_IT_webconnectivity_0000000000000003",
            "NULL",
        ),
    ] {
        ch.query(&format!(
            "INSERT INTO fastpath (measurement_uid, report_id, input, probe_cc, probe_asn, \
             test_name, test_start_time, measurement_start_time, scores, anomaly, confirmed, \
             msm_failure, ooni_run_link_id) VALUES ('{uid}', \
             '20190302T000000Z_webconnectivity_IT_30722_n1_runlinkfilter00001', \
             'https://example.org/', 'IT', 30722, 'web_connectivity', '2019-03-02 00:00:00', \
             '2019-03-02 00:00:00', '{{}}', 'f', 'f', 'f', {link})"
        ))
        .execute()
        .await
        .unwrap();
    }
    let window = "since=2019-03-01&until=2019-03-03";
    assert_eq!(listed_uids(window).await.len(), 3);
    let one = listed_uids(&format!("{window}&ooni_run_link_id=10001")).await;
    assert_eq!(
        one.into_iter().collect::<Vec<_>>(),
        ["20190302000000.000001_IT_webconnectivity_0000000000000001"]
    );
    assert_eq!(
        listed_uids(&format!("{window}&ooni_run_link_id=10001,10002"))
            .await
            .len(),
        2
    );
    let (status, _, body) = shared()
        .get(&format!(
            "/api/v1/measurements?{window}&ooni_run_link_id=abc"
        ))
        .await;
    assert_eq!(status, 422, "{body}");
}
