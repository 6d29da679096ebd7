//! Black-box tests over HTTP: the probe service mounted on the dev server, backed by the REAL
//! local ClickHouse and AWS emulator (a private database, buckets and queue per test), driven
//! with `reqwest` exactly as a probe would. Ports of the upstream probe cases (contract §8),
//! plus durability and fault cases.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use ooni_adapters::{AwsClients, AwsOptions, MessageQueue, SqsQueue};
use ooni_domain::envelope::{incoming_object_key, SubmissionEnvelope};
use ooni_domain::MeasurementUid;
use ooni_platform::config::HttpConfig;
use ooni_platform::functions::Bucket;
use ooni_platform::Context;
use ooni_probe::ProbeService;
use ooni_testkit::{TestServer, TestStack};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Arc;
use support::*;

/// A stack with one trusted proxy hop, the citizenlab fixture and rules in ClickHouse and the
/// test GeoIP databases in the config bucket; and the probe service served over it.
async fn probe_stack() -> (TestStack, TestServer) {
    let stack = TestStack::start_with(|h| HttpConfig {
        trusted_proxy_hops: 1,
        ..h
    })
    .await;
    let ch = stack.ch();
    load_citizenlab(&ch).await;
    insert_rules(&ch, &prio_rules(), 1).await;
    let config = stack.ctx.object_store(Bucket::Config);
    config
        .put(
            "geoip/cc.mmdb",
            mmdb::sample_country_db().into(),
            "application/octet-stream",
        )
        .await
        .unwrap();
    config
        .put(
            "geoip/asn.mmdb",
            mmdb::sample_asn_db().into(),
            "application/octet-stream",
        )
        .await
        .unwrap();
    config
        .put(
            "tor-targets.json",
            TOR_TARGETS_JSON.into(),
            "application/json",
        )
        .await
        .unwrap();
    config
        .put(
            "psiphon-config.json",
            PSIPHON_JSON.into(),
            "application/json",
        )
        .await
        .unwrap();
    let server = stack
        .serve(Arc::new(ProbeService::new(stack.ctx.clone())))
        .await;
    (stack, server)
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn post(server: &TestServer, path: &str, body: &Value) -> reqwest::Response {
    client()
        .post(server.url(path))
        .json(body)
        .send()
        .await
        .unwrap()
}

fn open_report_body(cc: &str, asn: &str) -> Value {
    json!({
        "data_format_version": "0.2.0",
        "format": "json",
        "probe_asn": asn,
        "probe_cc": cc,
        "software_name": "miniooni",
        "software_version": "0.17.0-beta",
        "test_name": "web_connectivity",
        "test_start_time": "2020-09-09 14:11:11",
        "test_version": "0.1.0",
    })
}

async fn queue_messages(stack: &TestStack) -> Vec<String> {
    let q = SqsQueue::new(
        stack.aws.sqs.clone(),
        stack.names.submissions_queue_url.clone().unwrap(),
    );
    let mut out = Vec::new();
    for _ in 0..5 {
        let batch = q.receive(10, 1, 60).await.unwrap();
        if batch.is_empty() && !out.is_empty() {
            break;
        }
        out.extend(batch.into_iter().map(|m| m.body));
    }
    out
}

#[tokio::test]
async fn open_report_returns_upstream_shape_and_a_61_character_report_id() {
    let (_stack, server) = probe_stack().await;
    let r = post(&server, "/report", &open_report_body("IE", "AS34245")).await;
    assert_eq!(r.status(), 200);
    let mut j: Value = r.json().await.unwrap();
    let rid = j.as_object_mut().unwrap().remove("report_id").unwrap();
    assert_eq!(
        j,
        json!({"backend_version": "1.3.5", "supported_formats": ["yaml", "json"]})
    );
    assert_eq!(rid.as_str().unwrap().len(), 61, "{rid}");
    let r: Value = post(&server, "/report", &open_report_body("IE", "AS65550"))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        r["report_id"]
            .as_str()
            .unwrap()
            .contains("_webconnectivity_IE_65550_"),
        "{r}"
    );
}

#[tokio::test]
async fn collector_upload_round_trip_stores_in_the_bucket_and_the_queue() {
    let (stack, server) = probe_stack().await;
    // POST /report/bogus -> 400
    let r = post(
        &server,
        "/report/bogus",
        &json!({"format": "json", "content": {"test_keys": {}}}),
    )
    .await;
    assert_eq!(r.status(), 400);

    let rid = post(&server, "/report", &open_report_body("IE", "AS34245"))
        .await
        .json::<Value>()
        .await
        .unwrap()["report_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = measurement("IE", "AS34245", "web_connectivity");
    let r = client()
        .post(server.url(&format!("/report/{rid}")))
        .header("x-forwarded-for", "80.233.130.1")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let uid = r.json::<Value>().await.unwrap()["measurement_uid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(is_uid(&uid, "IE", "webconnectivity"), "{uid}");

    let key = incoming_object_key(&MeasurementUid::parse(&uid).unwrap());
    let stored = stack
        .ctx
        .object_store(Bucket::Incoming)
        .get(&key)
        .await
        .unwrap()
        .expect("stored in the incoming bucket");
    assert_eq!(
        serde_json::from_slice::<Value>(&stored).unwrap()["is_verified"],
        "u"
    );
    let msgs = queue_messages(&stack).await;
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    let env = SubmissionEnvelope::from_json(&msgs[0]).unwrap();
    assert_eq!(env.measurement_uid.as_str(), uid);
    assert_eq!(env.report_id, rid);
    assert_eq!(
        (env.client_cc.as_deref(), env.client_asn),
        (Some("IE"), Some(34245))
    );
    assert_eq!(env.body_str().unwrap().as_bytes(), &stored[..]);

    let close = client()
        .post(server.url(&format!("/report/{rid}/close")))
        .send()
        .await
        .unwrap();
    assert_eq!(close.status(), 200);
    assert_eq!(close.json::<Value>().await.unwrap(), json!({}));
}

#[tokio::test]
async fn every_inconsistency_between_body_and_report_id_is_400() {
    let (stack, server) = probe_stack().await;
    let rid = "20230101T000000Z_webconnectivity_IE_34245_n1_abcdefghijklmnop";
    for body in [
        measurement("IT", "AS34245", "web_connectivity"),
        measurement("IE", "AS34246", "web_connectivity"),
        measurement("IE", "AS34245", "ndt"),
    ] {
        let r = client()
            .post(server.url(&format!("/report/{rid}")))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"detail": "Inconsistent measurement"})
        );
    }
    let listed = stack
        .ctx
        .object_store(Bucket::Incoming)
        .list("incoming/", 10)
        .await
        .unwrap();
    assert!(listed.is_empty(), "{listed:?}");
}

#[tokio::test]
async fn a_zstd_upload_is_accepted() {
    let (stack, server) = probe_stack().await;
    let rid = "20230101T000000Z_integtest_IT_1_n1_integtest0000000";
    let body = zstd::encode_all(&measurement("IT", "AS1", "integtest")[..], 3).unwrap();
    let r = client()
        .post(server.url(&format!("/report/{rid}")))
        .header("content-encoding", "zstd")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let uid = r.json::<Value>().await.unwrap()["measurement_uid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(is_uid(&uid, "IT", "integtest"), "{uid}");
    assert_eq!(queue_messages(&stack).await.len(), 1);
}

#[tokio::test]
async fn an_oversized_body_is_413_json_and_a_zip_bomb_is_refused() {
    let (stack, server) = probe_stack().await;
    let rid = "20230101T000000Z_webconnectivity_IT_30722_n1_abcdefghijklmnop";
    let mut big = measurement("IT", "AS30722", "web_connectivity");
    big.extend(std::iter::repeat_n(b' ', 6 << 20));
    let r = client()
        .post(server.url(&format!("/report/{rid}")))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"detail": "Request body too large"})
    );

    let mut plain = br#"{"format":"json","content":{"x":""#.to_vec();
    plain.extend(std::iter::repeat_n(b'a', 64 << 20));
    let bomb = zstd::encode_all(&plain[..], 19).unwrap();
    let r = client()
        .post(server.url(&format!("/report/{rid}")))
        .header("content-encoding", "zstd")
        .body(bomb)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(stack
        .ctx
        .object_store(Bucket::Incoming)
        .list("incoming/", 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn check_in_has_the_upstream_shape_and_features() {
    let (_stack, server) = probe_stack().await;
    let r = post(
        &server,
        "/api/v1/check-in",
        &json!({
            "probe_cc": "IT", "probe_asn": "AS30722", "run_type": "timed", "charging": true,
            "software_name": "ooniprobe-android", "software_version": "3.8.0", "on_wifi": true,
            "web_connectivity": {"category_codes": []},
        }),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-cache");
    let j: Value = r.json().await.unwrap();
    assert_eq!(j["v"], 1);
    let t = j["utc_time"].as_str().unwrap();
    assert_eq!(t.len(), 20);
    assert!(t.ends_with('Z'));
    chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%SZ").unwrap();
    let mut conf: Vec<&String> = j["conf"].as_object().unwrap().keys().collect();
    conf.sort();
    assert_eq!(conf, ["features", "test_helpers"]);
    assert_eq!(j["conf"]["features"]["webconnectivity_0.5"], true);
    assert_eq!(j["conf"]["test_helpers"].as_object().unwrap().len(), 6);
    let rid = j["tests"]["web_connectivity"]["report_id"]
        .as_str()
        .unwrap();
    let parts: Vec<&str> = rid.split('_').collect();
    assert_eq!(parts.len(), 6);
    assert_eq!(parts[2], "IT");
    assert_eq!(parts[3], "30722");
    assert_eq!(j["tests"].as_object().unwrap().len(), 21);
    let urls = j["tests"]["web_connectivity"]["urls"].as_array().unwrap();
    assert!(!urls.is_empty() && urls.len() <= 100, "{}", urls.len());
}

#[tokio::test]
async fn check_in_category_filter_keeps_only_the_requested_categories() {
    let (_stack, server) = probe_stack().await;
    let j: Value = post(
        &server,
        "/api/v1/check-in",
        &json!({"probe_cc": "ZZ", "probe_asn": "AS0", "run_type": "manual", "web_connectivity": {"category_codes": ["NEWS"]}}),
    )
    .await
    .json()
    .await
    .unwrap();
    let urls = j["tests"]["web_connectivity"]["urls"].as_array().unwrap();
    assert!(urls.len() > 10, "{}", urls.len());
    for u in urls {
        assert_eq!(u["category_code"], "NEWS");
        assert_eq!(u["country_code"], "XX");
    }
    let parts: Vec<String> = j["tests"]["web_connectivity"]["report_id"]
        .as_str()
        .unwrap()
        .split('_')
        .map(str::to_owned)
        .collect();
    assert_eq!(
        parts[2..4],
        ["ZZ", "0"],
        "no GeoIP for the loopback client: ZZ/AS0"
    );
}

#[tokio::test]
async fn check_in_geolocates_the_trusted_forwarded_address() {
    let (_stack, server) = probe_stack().await;
    let r = client()
        .post(server.url("/api/v1/check-in"))
        .header("x-forwarded-for", "192.33.4.12")
        .json(&json!({"probe_cc": "ZZ", "probe_asn": "AS0"}))
        .send()
        .await
        .unwrap();
    let j: Value = r.json().await.unwrap();
    assert_eq!(j["probe_cc"], "US");
    assert_eq!(j["probe_asn"], "AS2149");
    assert_eq!(j["probe_network_name"], "Cogent Communications");
    let rid = j["tests"]["web_connectivity"]["report_id"]
        .as_str()
        .unwrap();
    assert!(rid.contains("_webconnectivity_US_2149_n1_"), "{rid}");
    // A client that prepends its own entry cannot choose its address.
    let spoofed: Value = client()
        .post(server.url("/api/v1/check-in"))
        .header("x-forwarded-for", "192.33.4.12, 93.57.1.1")
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(spoofed["probe_cc"], "IT");
}

#[tokio::test]
async fn test_list_urls_returns_upstream_metadata_and_unique_urls() {
    let (_stack, server) = probe_stack().await;
    let r = client()
        .get(
            server.url("/api/v1/test-list/urls?category_codes=NEWS,HUMR&country_code=US&limit=100"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "max-age=1");
    let j: Value = r.json().await.unwrap();
    assert_eq!(
        j["metadata"],
        json!({"count": 100, "current_page": -1, "limit": -1, "next_url": "", "pages": 1})
    );
    let results = j["results"].as_array().unwrap();
    let unique: HashSet<&str> = results.iter().map(|u| u["url"].as_str().unwrap()).collect();
    assert_eq!(unique.len(), 100);
    assert!(results
        .iter()
        .all(|u| u["category_code"] == "NEWS" || u["category_code"] == "HUMR"));
    assert!(results[0].get("priority").is_none());

    let debug: Value = client()
        .get(server.url("/api/v1/test-list/urls?probe_cc=US&limit=3&debug=true"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let first = &debug["results"][0];
    assert!(
        first["msmt_cnt"].is_u64() && first["priority"].is_i64() && first["weight"].is_f64(),
        "{first}"
    );
    let bad = client()
        .get(server.url("/api/v1/test-list/urls?category_codes=news"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
}

#[tokio::test]
async fn deleted_prioritisation_rules_do_not_count() {
    let (stack, server) = probe_stack().await;
    let url = "/api/v1/test-list/urls?category_codes=NEWS&country_code=US&limit=5";
    let before: Value = client()
        .get(server.url(url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(before["metadata"]["count"], 5);
    // A rule that would sink NEWS below zero, inserted and then deleted (sign = -1).
    let sink = ooni_domain::prio::PrioRule {
        category_code: "NEWS".into(),
        cc: "US".into(),
        domain: "*".into(),
        url: "*".into(),
        priority: -1000,
    };
    insert_rules(&stack.ch(), std::slice::from_ref(&sink), 1).await;
    let sunk: Value = client()
        .get(server.url(url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sunk["metadata"]["count"], 0, "the live rule applies");
    insert_rules(&stack.ch(), std::slice::from_ref(&sink), -1).await;
    let after: Value = client()
        .get(server.url(url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        after["metadata"]["count"], 5,
        "the deleted rule no longer applies"
    );
}

#[tokio::test]
async fn bouncer_answers_the_exact_upstream_json_and_400_on_bad_requests() {
    let (_stack, server) = probe_stack().await;
    let req = json!({"net-tests": [{"input-hashes": null, "name": "web_connectivity", "test-helpers": ["web-connectivity"], "version": "0.0.1"}]});
    let j: Value = post(&server, "/bouncer/net-tests", &req)
        .await
        .json()
        .await
        .unwrap();
    let expected = json!({"net-tests": [{
        "collector": "httpo://guegdifjy7bjpequ.onion",
        "collector-alternate": [
            {"type": "https", "address": "https://ams-pg.ooni.org"},
            {"front": "dkyhjv0wpi2dk.cloudfront.net", "type": "cloudfront", "address": "https://dkyhjv0wpi2dk.cloudfront.net"},
        ],
        "name": "web_connectivity",
        "test-helpers": {
            "tcp-echo": "37.218.241.93",
            "http-return-json-headers": "http://37.218.241.94:80",
            "web-connectivity": "httpo://y3zq5fwelrzkkv3s.onion",
        },
        "test-helpers-alternate": {"web-connectivity": [
            {"type": "https", "address": "https://wcth.ooni.io"},
            {"front": "d33d1gs9kpq1c5.cloudfront.net", "type": "cloudfront", "address": "https://d33d1gs9kpq1c5.cloudfront.net"},
        ]},
        "version": "0.0.1",
        "input-hashes": null,
    }]});
    assert_eq!(j, expected);
    assert_eq!(
        client()
            .post(server.url("/bouncer/net-tests"))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        post(&server, "/bouncer/net-tests", &json!({"net-tests": []}))
            .await
            .status(),
        400
    );
    let garbage = client()
        .post(server.url("/bouncer/net-tests"))
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 400);
}

#[tokio::test]
async fn register_then_login_and_legacy_login_and_targets_with_the_token() {
    let (_stack, server) = probe_stack().await;
    let reg = json!({
        "password": "HUMAN_PASSWORD", "platform": "miniooni", "probe_asn": "AS0", "probe_cc": "ZZ",
        "software_name": "miniooni", "software_version": "0.1.0-dev", "supported_tests": ["web_connectivity"],
    });
    let r = post(&server, "/api/v1/register", &reg).await;
    assert_eq!(r.status(), 200);
    let client_id = r.json::<Value>().await.unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(client_id.len(), 132, "{client_id}");

    let login: Value = post(
        &server,
        "/api/v1/login",
        &json!({"username": client_id, "password": "HUMAN_PASSWORD"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let token = login["token"].as_str().unwrap();
    let expire = login["expire"].as_str().unwrap();
    assert_eq!(expire.len(), 20);
    let claims: ooni_platform::auth::ProbeTokenClaims = ooni_testkit::jwt_keys()
        .probe
        .verify(token, "probe_token", true)
        .unwrap();
    assert!(claims.registration_time.is_some());

    let legacy = post(
        &server,
        "/api/v1/login",
        &json!({"username": "BOGUSBOGUS", "password": "BOGUSBOGUS"}),
    )
    .await;
    assert_eq!(legacy.status(), 200);
    let legacy_token = legacy.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let claims: ooni_platform::auth::ProbeTokenClaims = ooni_testkit::jwt_keys()
        .probe
        .verify(&legacy_token, "probe_token", true)
        .unwrap();
    assert_eq!(claims.registration_time, None);

    let tor = client()
        .get(server.url("/api/v1/test-list/tor-targets"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(tor.status(), 200);
    assert_eq!(
        tor.json::<Value>().await.unwrap(),
        serde_json::from_str::<Value>(TOR_TARGETS_JSON).unwrap()
    );
    let broken = client()
        .get(server.url("/api/v1/test-list/tor-targets"))
        .bearer_auth(&token[2..])
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status(), 401);
    let ps = client()
        .get(server.url("/api/v1/test-list/psiphon-config"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(ps.status(), 200);
    assert!(ps.json::<Value>().await.unwrap()["RemoteServerListURLs"].is_array());
}

#[tokio::test]
async fn collectors_test_helpers_and_the_small_routes_have_their_shapes() {
    let (_stack, server) = probe_stack().await;
    let get = |p: &str| client().get(server.url(p)).send();
    let c: Value = get("/api/v1/collectors")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(c.as_array().unwrap().len(), 6);
    let th: Value = get("/api/v1/test-helpers")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(th.as_object().unwrap().len(), 6);
    let cr = get("/api/_/check_report_id").await.unwrap();
    assert_eq!(cr.headers()["cache-control"], "max-age=1");
    assert_eq!(
        cr.json::<Value>().await.unwrap(),
        json!({"v": 0, "found": true})
    );
    let robots = get("/robots.txt").await.unwrap();
    assert_eq!(robots.headers()["cache-control"], "max-age=86400");
    let text = robots.text().await.unwrap();
    assert!(text.contains("Disallow: /api/_") && text.contains("Crawl-delay: 300"));
    let health = get("/health").await.unwrap();
    assert_eq!(health.status(), 200);
    let h: Value = health.json().await.unwrap();
    assert_eq!(
        (h["status"].as_str(), h["errors"].as_array().map(Vec::len)),
        (Some("ok"), Some(0))
    );
    let v: Value = get("/version").await.unwrap().json().await.unwrap();
    assert!(v["version"].is_string());
    let legacy_checkin = client()
        .post(server.url("/api/_/check-in"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(legacy_checkin.status(), 200);
}

#[tokio::test]
async fn with_the_object_store_unreachable_submissions_get_503_and_nothing_is_enqueued() {
    let stack = TestStack::start().await;
    // Same names, ClickHouse and queue, but every AWS call goes to a closed local port.
    let dead_aws = AwsClients::load(AwsOptions::local("http://127.0.0.1:9")).await;
    let ctx = Context::new(
        stack.ctx.http.clone(),
        dead_aws,
        stack.names.clone(),
        stack.clickhouse.clone(),
    )
    .with_jwt_keys(ooni_testkit::jwt_keys());
    let server = stack
        .serve(Arc::new(ProbeService::new(Arc::new(ctx))))
        .await;
    let rid = "20230101T000000Z_webconnectivity_IT_30722_n1_abcdefghijklmnop";
    let r = client()
        .post(server.url(&format!("/report/{rid}")))
        .body(measurement("IT", "AS30722", "web_connectivity"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    let q = SqsQueue::new(
        stack.aws.sqs.clone(),
        stack.names.submissions_queue_url.clone().unwrap(),
    );
    assert!(
        q.receive(10, 1, 30).await.unwrap().is_empty(),
        "nothing was enqueued"
    );
    let health = client().get(server.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 503);
    assert_eq!(
        health.json::<Value>().await.unwrap()["errors"],
        json!(["config_bucket"])
    );
}
