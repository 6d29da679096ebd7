//! A measurement the scorer inserted twice (an SQS redelivery before the ReplacingMergeTree
//! merged the copies) is listed, counted and looked up once on every read path.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use ooni_measurements::ApiOptions;
use serde_json::Value;

const UID: &str = "20210709005529.664022_MY_webconnectivity_68e5bea1060d1874";
const RID: &str = "20210709T004340Z_webconnectivity_MY_4818_n1_YCM7J9mGcEHds2K3";

async fn json(base: &str, path: &str) -> Value {
    let resp = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp.json().await.unwrap()
}

#[tokio::test]
async fn a_redelivered_measurement_is_shown_once_on_every_route() {
    let (stack, server, _) = common::start(ApiOptions::default()).await;
    let base = server.base_url.clone();
    let paths = [
        format!("/api/v1/measurements?report_id={RID}"),
        "/api/v1/aggregation?probe_cc=MY&since=2025-07-01&until=2025-07-31".to_string(),
        "/api/v1/aggregation?probe_cc=MY&since=2025-07-01&until=2025-07-31&axis_x=measurement_start_day&time_grain=day".to_string(),
        "/api/_/global_overview".to_string(),
        "/api/_/country_overview?probe_cc=MY".to_string(),
        "/api/_/countries".to_string(),
        "/api/_/domains".to_string(),
    ];
    let mut before = Vec::new();
    for p in &paths {
        let mut v = json(&base, p).await;
        if let Some(o) = v.as_object_mut() {
            o.remove("db_stats");
            if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("query_time");
            }
        }
        before.push(v);
    }
    let meta_before = json(
        &base,
        &format!("/api/v1/measurement_meta?measurement_uid={UID}"),
    )
    .await;

    // The scorer's second INSERT of the same row, in its own part (insert deduplication off, as
    // for a redelivery whose batch differs from the first).
    stack
        .ch()
        .query(
            "INSERT INTO fastpath SELECT * FROM fastpath WHERE measurement_uid = ? \
             SETTINGS insert_deduplicate = 0",
        )
        .bind(UID)
        .execute()
        .await
        .unwrap();
    let copies: u64 = stack
        .ch()
        .query("SELECT count() FROM fastpath WHERE measurement_uid = ?")
        .bind(UID)
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(copies, 2, "the duplicate row is really there, unmerged");

    for (p, expected) in paths.iter().zip(&before) {
        let mut v = json(&base, p).await;
        if let Some(o) = v.as_object_mut() {
            o.remove("db_stats");
            if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("query_time");
            }
        }
        assert_eq!(&v, expected, "{p} changed after the duplicate insert");
    }
    let listed = json(&base, &format!("/api/v1/measurements?report_id={RID}")).await;
    assert_eq!(listed["results"].as_array().unwrap().len(), 1);
    assert_eq!(
        json(
            &base,
            &format!("/api/v1/measurement_meta?measurement_uid={UID}")
        )
        .await,
        meta_before
    );
}
