//! Black-box tests of Explorer's private statistics under `/api/_/` on the fixture rows. The
//! shared stack's clock is 2024-01-05 12:00 UTC, so the "last 31 days" windows cover the
//! fixture's 2024-01-01 rows; expected values are recomputed with direct SQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::shared;
use serde_json::{json, Value};

async fn count(sql: &str) -> u64 {
    shared().ch().query(sql).fetch_one::<u64>().await.unwrap()
}

fn keys(v: &Value) -> Vec<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[tokio::test]
async fn test_names_is_the_fixed_upstream_list() {
    let (status, headers, text) = shared().get("/api/_/test_names").await;
    assert_eq!(status, 200);
    assert_eq!(headers["cache-control"], "max-age=3600");
    let v: Value = serde_json::from_str(&text).unwrap();
    let names = v["test_names"].as_array().unwrap();
    assert_eq!(names.len(), 24);
    assert_eq!(
        names[0],
        json!({"id": "bridge_reachability", "name": "Bridge Reachability"})
    );
    assert_eq!(names[23], json!({"id": "whatsapp", "name": "WhatsApp"}));
}

#[tokio::test]
async fn countries_lists_known_codes_with_counts_and_names() {
    let v = shared().json("/api/_/countries").await;
    let list = v["countries"].as_array().unwrap();
    assert!(list.len() > 20, "{}", list.len());
    let it = list.iter().find(|c| c["alpha_2"] == "IT").unwrap();
    assert_eq!(it["name"], "Italy");
    assert_eq!(
        it["count"],
        count("SELECT count() FROM fastpath FINAL WHERE probe_cc = 'IT'").await
    );
    assert!(list.iter().all(|c| keys(c) == ["alpha_2", "count", "name"]));
    assert!(list
        .windows(2)
        .all(|w| w[0]["alpha_2"].as_str() < w[1]["alpha_2"].as_str()));
}

#[tokio::test]
async fn by_month_series_have_dates_and_values() {
    let api = shared();
    for path in ["/api/_/asn_by_month", "/api/_/countries_by_month"] {
        let (_, headers, text) = api.get(path).await;
        assert_eq!(headers["cache-control"], "max-age=86400");
        let v: Value = serde_json::from_str(&text).unwrap();
        let list = v.as_array().unwrap();
        assert!(!list.is_empty(), "{path}");
        assert_eq!(keys(&list[0]), ["date", "value"]);
        assert!(list[0]["date"]
            .as_str()
            .unwrap()
            .ends_with("T00:00:00+00:00"));
    }
    let v = api.json("/api/_/global_overview_by_month").await;
    for k in [
        "countries_by_month",
        "measurements_by_month",
        "networks_by_month",
    ] {
        let first = &v[k][0];
        assert_eq!(keys(first), ["date", "value"], "{k}");
    }
    let jan = v["measurements_by_month"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["date"] == "2024-01-01T00:00:00+00:00")
        .unwrap();
    assert_eq!(jan["value"], count("SELECT count() FROM fastpath FINAL WHERE toStartOfMonth(measurement_start_time) = '2024-01-01'").await);
}

#[tokio::test]
async fn global_overview_counts_everything() {
    let v = shared().json("/api/_/global_overview").await;
    assert_eq!(
        v["measurement_count"],
        count("SELECT count() FROM fastpath FINAL").await
    );
    assert_eq!(
        v["country_count"],
        count("SELECT uniqExact(probe_cc) FROM fastpath").await
    );
    assert_eq!(
        v["network_count"],
        count("SELECT uniqExact(probe_asn) FROM fastpath").await
    );
}

#[tokio::test]
async fn country_overview_has_the_first_date_and_counts() {
    let v = shared().json("/api/_/country_overview?probe_cc=IT").await;
    assert_eq!(v["first_bucket_date"], "2021-07-09");
    assert_eq!(
        v["measurement_count"],
        count("SELECT count() FROM fastpath FINAL WHERE probe_cc = 'IT'").await
    );
    assert!(v["network_count"].as_u64().unwrap() > 1);
}

#[tokio::test]
async fn country_routes_require_a_two_letter_probe_cc() {
    let api = shared();
    for path in [
        "/api/_/country_overview",
        "/api/_/test_coverage?probe_cc=ITA",
        "/api/_/website_networks",
        "/api/_/vanilla_tor_stats",
        "/api/_/im_networks",
        "/api/_/network_stats",
    ] {
        let (status, _, text) = api.get(path).await;
        assert_eq!(status, 400, "{path}");
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            json!({"error": "missing or incorrect probe_cc"}),
            "{path}"
        );
    }
    let (status, _, text) = api.get("/api/_/website_urls?probe_cc=IT").await;
    assert_eq!(status, 400);
    assert!(text.contains("missing or incorrect probe_asn"));
    let (status, _, text) = api
        .get("/api/_/im_stats?test_name=web_connectivity&probe_cc=IT&probe_asn=1")
        .await;
    assert_eq!(status, 400);
    assert!(text.contains("invalid test_name"));
}

#[tokio::test]
async fn test_coverage_is_a_dense_grid_of_groups_by_30_days() {
    let v = shared().json("/api/_/test_coverage?probe_cc=IT").await;
    let tc = v["test_coverage"].as_array().unwrap();
    assert_eq!(tc.len(), 7 * 30, "7 groups x 30 days");
    assert!(tc
        .iter()
        .all(|e| keys(e) == ["count", "test_day", "test_group"]));
    assert_eq!(tc[0]["test_day"], "2023-12-04");
    assert_eq!(tc[29]["test_day"], "2024-01-02");
    let web: u64 = tc
        .iter()
        .filter(|e| e["test_group"] == "websites")
        .map(|e| e["count"].as_u64().unwrap())
        .sum();
    assert_eq!(
        web,
        count("SELECT count() FROM fastpath FINAL WHERE probe_cc = 'IT' AND test_name = 'web_connectivity' AND measurement_start_time >= '2023-12-04' AND measurement_start_time < '2024-01-03'").await
    );
    assert!(web > 0);
    let nc = v["network_coverage"].as_array().unwrap();
    assert_eq!(nc.len(), 30);
    assert_eq!(nc[0]["test_day"], "2023-12-05");
    assert!(nc.iter().all(|e| keys(e) == ["count", "test_day"]));
    let filtered = shared()
        .json("/api/_/test_coverage?probe_cc=IT&test_groups=performance")
        .await;
    let total = |v: &Value| {
        v["network_coverage"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["count"].as_u64().unwrap())
            .sum::<u64>()
    };
    assert!(
        total(&filtered) < total(&v),
        "the group filter narrows the network counts"
    );
}

#[tokio::test]
async fn website_routes_count_one_network_s_urls() {
    let api = shared();
    let nets = api.json("/api/_/website_networks?probe_cc=IT").await;
    let first = &nets["results"][0];
    assert_eq!(keys(first), ["count", "probe_asn"]);
    let busiest: u64 = api
        .ch()
        .query("SELECT toUInt64(probe_asn) FROM fastpath WHERE probe_cc = 'IT' AND measurement_start_time >= '2023-12-05' AND measurement_start_time < '2024-01-05' GROUP BY probe_asn ORDER BY count() DESC, probe_asn LIMIT 1")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(first["probe_asn"], busiest);
    let asn: u64 = api
        .ch()
        .query("SELECT toUInt64(probe_asn) FROM fastpath WHERE probe_cc = 'IT' AND test_name = 'web_connectivity' AND measurement_start_time >= '2023-12-05' AND measurement_start_time < '2024-01-05' GROUP BY probe_asn ORDER BY count() DESC, probe_asn LIMIT 1")
        .fetch_one()
        .await
        .unwrap();
    let urls = api
        .json(&format!(
            "/api/_/website_urls?probe_cc=IT&probe_asn=AS{asn}&limit=2"
        ))
        .await;
    let meta = &urls["metadata"];
    assert_eq!(meta["limit"], 2);
    assert_eq!(meta["current_page"], 1);
    let total = count(&format!(
        "SELECT uniqExact(input) FROM fastpath WHERE probe_cc = 'IT' AND probe_asn = {asn} AND test_name = 'web_connectivity' \
         AND measurement_start_time >= '2023-12-05' AND measurement_start_time < '2024-01-05'"
    ))
    .await;
    assert_eq!(meta["total_count"], total);
    if total > 2 {
        assert_eq!(
            meta["next_url"],
            format!(
                "{}/api/_/website_urls?limit=2&offset=2&probe_asn={asn}&probe_cc=IT",
                api.public_base_url
            )
        );
    }
    let input = urls["results"][0]["input"].as_str().unwrap().to_owned();
    let enc: String = url::form_urlencoded::byte_serialize(input.as_bytes()).collect();
    let stats = api
        .json(&format!(
            "/api/_/website_stats?probe_cc=IT&probe_asn={asn}&input={enc}"
        ))
        .await;
    let days = stats["results"].as_array().unwrap();
    assert!(!days.is_empty());
    assert_eq!(
        keys(&days[0]),
        [
            "anomaly_count",
            "confirmed_count",
            "failure_count",
            "test_day",
            "total_count"
        ]
    );
    let none = api
        .json(&format!("/api/_/website_stats?probe_cc=IT&probe_asn={asn}"))
        .await;
    assert_eq!(none, json!({"results": []}));
}

#[tokio::test]
async fn im_routes_report_networks_and_a_dense_32_day_series() {
    let api = shared();
    let (cc, asn): (String, u32) = api
        .ch()
        .query("SELECT probe_cc, probe_asn FROM fastpath WHERE test_name = 'telegram' AND measurement_start_time >= '2023-12-05' LIMIT 1")
        .fetch_one()
        .await
        .unwrap();
    let nets = api.json(&format!("/api/_/im_networks?probe_cc={cc}")).await;
    let tg = &nets["telegram"];
    assert_eq!(tg["anomaly_networks"], json!([]));
    assert!(tg["ok_networks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["asn"] == asn && n["name"] == ""));
    let stats = api
        .json(&format!(
            "/api/_/im_stats?test_name=telegram&probe_cc={cc}&probe_asn={asn}"
        ))
        .await;
    let days = stats["results"].as_array().unwrap();
    assert_eq!(days.len(), 32);
    assert!(days
        .iter()
        .all(|d| d["anomaly_count"].is_null() && d["test_day"].as_str().unwrap().len() == 25));
    assert_eq!(days[31]["test_day"], "2024-01-05T00:00:00+00:00");
    assert!(
        days.iter()
            .map(|d| d["total_count"].as_u64().unwrap())
            .sum::<u64>()
            > 0
    );
}

#[tokio::test]
async fn vanilla_tor_stats_summarises_networks() {
    let api = shared();
    let v = api.json("/api/_/vanilla_tor_stats?probe_cc=IT").await;
    assert!(v["notok_networks"].is_u64());
    let nets = v["networks"].as_array().unwrap();
    assert!(!nets.is_empty());
    assert!(nets[0]["test_runtime_avg"].is_null());
    let empty = api.json("/api/_/vanilla_tor_stats?probe_cc=XY").await;
    assert_eq!(
        empty,
        json!({"last_tested": null, "networks": [], "notok_networks": 0})
    );
}

#[tokio::test]
async fn network_stats_is_the_upstream_stub() {
    let v = shared().json("/api/_/network_stats?probe_cc=GB").await;
    assert_eq!(
        v,
        json!({"metadata": {"current_page": 1, "limit": 10, "next_url": null, "offset": 0, "total_count": 0}, "results": []})
    );
}

#[tokio::test]
async fn circumvention_statistics_have_the_v0_shape() {
    let api = shared();
    let v = api.json("/api/_/circumvention_stats_by_country").await;
    assert_eq!(v["v"], 0);
    assert!(v["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| keys(r) == ["cnt", "probe_cc"]));
    let total: u64 = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["cnt"].as_u64().unwrap())
        .sum();
    assert_eq!(
        total,
        count("SELECT count() FROM fastpath FINAL WHERE test_name IN ('torsf','tor','stunreachability','psiphon','riseupvpn') AND measurement_start_time > '2023-07-05' AND measurement_start_time < '2024-01-04'").await
    );
    let rt = api.json("/api/_/circumvention_runtime_stats").await;
    assert_eq!(rt["v"], 0);
    assert!(rt["results"].is_array());
}

#[tokio::test]
async fn domain_metadata_finds_canonical_domains() {
    let api = shared();
    for (domain, cat, canonical) in [
        ("facebook.com", "GRP", "www.facebook.com"),
        ("www.facebook.com", "GRP", "www.facebook.com"),
        ("www.twitter.com", "GRP", "twitter.com"),
        (
            "www.this-domain-is-not-in-the-test-lists-for-sure.com",
            "MISC",
            "this-domain-is-not-in-the-test-lists-for-sure.com",
        ),
    ] {
        let v = api
            .json(&format!("/api/_/domain_metadata?domain={domain}"))
            .await;
        assert_eq!(
            v,
            json!({"canonical_domain": canonical, "category_code": cat}),
            "{domain}"
        );
    }
    let (status, _, _) = api.get("/api/_/domain_metadata").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn asnmeta_answers_unknown_for_unknown_networks() {
    let api = shared();
    let (_, headers, text) = api.get("/api/_/asnmeta?asn=0").await;
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"org_name": "Unknown"})
    );
    assert_eq!(headers["cache-control"], "max-age=7200");
    let (status, _, _) = api.get("/api/_/asnmeta?asn=nope").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn networks_lists_every_asn_with_a_string_org_name() {
    let v = shared().json("/api/_/networks").await;
    assert_eq!(v["v"], 0);
    let list = v["results"].as_array().unwrap();
    assert_eq!(
        list.len() as u64,
        count("SELECT uniqExact(probe_asn) FROM fastpath").await
    );
    assert!(list
        .iter()
        .all(|r| r["org_name"].is_string() && r["probe_asn"].is_u64() && r["cnt"].is_u64()));
}

#[tokio::test]
async fn domains_lists_test_list_domains_with_categories_and_counts() {
    let v = shared().json("/api/_/domains").await;
    assert_eq!(v["v"], 0);
    let list = v["results"].as_array().unwrap();
    assert!(list.len() > 5);
    assert!(list
        .iter()
        .all(|r| keys(r) == ["category_code", "domain_name", "measurement_count"]));
    for (d, cat) in [
        ("facebook.com", "GRP"),
        ("ncac.org", "NEWS"),
        ("twitter.com", "GRP"),
    ] {
        let row = list.iter().find(|r| r["domain_name"] == d).unwrap();
        assert_eq!(row["category_code"], cat, "{d}");
    }
    let tw = list
        .iter()
        .find(|r| r["domain_name"] == "twitter.com")
        .unwrap();
    assert_eq!(tw["measurement_count"], count("SELECT count() FROM fastpath FINAL WHERE test_name = 'web_connectivity' AND domain = 'twitter.com'").await);
}
