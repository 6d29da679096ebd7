//! Handler tests in-process over in-memory fakes (buckets, queue, ClickHouse), including the
//! fault cases that need the fakes' switches: bucket down, queue down, database down.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use ooni_domain::envelope::{incoming_object_key, SubmissionEnvelope};
use ooni_domain::MeasurementUid;
use ooni_probe::settings::Settings;
use serde_json::json;
use support::*;

const XFF_IT: (&str, &str) = ("x-forwarded-for", "6.6.6.6, 93.57.1.2");

async fn submit(
    svc: &ooni_probe::ProbeService,
    rid: &str,
    body: &[u8],
    extra: &[(&str, &str)],
) -> Resp {
    let mut headers = vec![("content-type", "application/json"), XFF_IT];
    headers.extend_from_slice(extra);
    call(svc, "POST", &format!("/report/{rid}"), &headers, body).await
}

#[tokio::test]
async fn an_accepted_submission_is_stored_and_enqueued_before_the_uid_is_answered() {
    let (svc, fakes) = fake_service(settings());
    let r = submit(&svc, WEB_CONNECTIVITY_RID, WEB_CONNECTIVITY_BODY, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let uid = r.json()["measurement_uid"].as_str().unwrap().to_owned();
    assert!(is_uid(&uid, "IT", "webconnectivity"), "{uid}");

    let key = incoming_object_key(&MeasurementUid::parse(&uid).unwrap());
    let stored = fakes
        .incoming
        .object(&key)
        .expect("body stored under the incoming key");
    let stored_json: serde_json::Value = serde_json::from_slice(&stored.body).unwrap();
    assert_eq!(stored_json["is_verified"], "u");
    assert_eq!(stored_json["content"]["probe_cc"], "IT");

    let sent = fakes.queue.sent();
    assert_eq!(sent.len(), 1);
    let env = SubmissionEnvelope::from_json(&sent[0]).unwrap();
    assert_eq!(env.measurement_uid.as_str(), uid);
    assert_eq!(env.report_id, WEB_CONNECTIVITY_RID);
    assert_eq!(env.object_key, key);
    assert_eq!(
        env.client_cc.as_deref(),
        Some("IT"),
        "GeoIP of the trusted X-Forwarded-For entry"
    );
    assert_eq!(env.client_asn, Some(30722));
    assert_eq!(
        env.body_str().unwrap().as_bytes(),
        &stored.body[..],
        "the inline body is the stored body"
    );
}

#[tokio::test]
async fn a_body_too_large_for_the_message_is_left_for_the_scorer_to_read_from_the_bucket() {
    let (svc, fakes) = fake_service(Settings {
        inline_limit: 1024,
        ..settings()
    });
    let r = submit(&svc, WEB_CONNECTIVITY_RID, WEB_CONNECTIVITY_BODY, &[]).await;
    assert_eq!(r.status, 200);
    let env = SubmissionEnvelope::from_json(&fakes.queue.sent()[0]).unwrap();
    assert!(env.body.is_none());
    assert!(fakes.incoming.object(&env.object_key).is_some());
}

#[tokio::test]
async fn when_the_bucket_is_down_the_answer_is_503_and_nothing_is_enqueued() {
    let (svc, fakes) = fake_service(settings());
    fakes.incoming.set_down(true);
    let r = submit(&svc, WEB_CONNECTIVITY_RID, WEB_CONNECTIVITY_BODY, &[]).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.json()["error"].is_string());
    assert!(fakes.queue.sent().is_empty());
}

#[tokio::test]
async fn when_the_queue_is_down_the_answer_is_503_and_the_stored_body_is_kept() {
    // The send's outcome is unknown in general (a lost reply may hide a delivery), so the body
    // stays: a delivered message must never point at a removed body.
    let (svc, fakes) = fake_service(settings());
    fakes.queue.set_down(true);
    let r = submit(&svc, WEB_CONNECTIVITY_RID, WEB_CONNECTIVITY_BODY, &[]).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(fakes.incoming.len(), 1, "{:?}", fakes.incoming.keys());
    assert!(fakes.queue.sent().is_empty());
    // The retry succeeds once the queue is back, and its message names a stored body.
    fakes.queue.set_down(false);
    let r = submit(&svc, WEB_CONNECTIVITY_RID, WEB_CONNECTIVITY_BODY, &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(fakes.queue.sent().len(), 1);
    let env = SubmissionEnvelope::from_json(&fakes.queue.sent()[0]).unwrap();
    assert!(fakes
        .incoming
        .object(&incoming_object_key(&env.measurement_uid))
        .is_some());
}

#[tokio::test]
async fn a_raw_body_above_the_limit_is_413_json_before_decompression() {
    let (svc, fakes) = fake_service(Settings {
        max_submission_bytes: 1000,
        ..settings()
    });
    let body = measurement("IT", "AS30722", "web_connectivity");
    let mut big = body.clone();
    big.extend(std::iter::repeat_n(b' ', 2000));
    let r = submit(
        &svc,
        "20230101T000000Z_webconnectivity_IT_30722_n1_abcdefghijklmnop",
        &big,
        &[],
    )
    .await;
    assert_eq!(r.status, 413);
    assert_eq!(r.json(), json!({"detail": "Request body too large"}));
    assert!(fakes.incoming.is_empty() && fakes.queue.sent().is_empty());
}

#[tokio::test]
async fn a_zstd_bomb_is_refused_with_413_and_nothing_is_stored() {
    let (svc, fakes) = fake_service(Settings {
        max_submission_bytes: 64 * 1024,
        ..settings()
    });
    // 16 MiB of spaces inside a valid-looking JSON prefix: tiny compressed, huge decoded.
    let mut plain = br#"{"format":"json","content":{"x":""#.to_vec();
    plain.extend(std::iter::repeat_n(b' ', 16 << 20));
    let bomb = zstd::encode_all(&plain[..], 19).unwrap();
    assert!(bomb.len() < 64 * 1024, "the bomb is small: {}", bomb.len());
    let r = submit(
        &svc,
        "20230101T000000Z_webconnectivity_IT_30722_n1_abcdefghijklmnop",
        &bomb,
        &[("content-encoding", "zstd")],
    )
    .await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(fakes.incoming.is_empty() && fakes.queue.sent().is_empty());
}

#[tokio::test]
async fn a_gzip_submission_is_accepted() {
    use std::io::Write;
    let (svc, fakes) = fake_service(settings());
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&measurement("IT", "AS30722", "web_connectivity"))
        .unwrap();
    let gz = enc.finish().unwrap();
    let rid = "20230101T000000Z_webconnectivity_IT_30722_n1_abcdefghijklmnop";
    let r = submit(&svc, rid, &gz, &[("content-encoding", "gzip")]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(is_uid(
        r.json()["measurement_uid"].as_str().unwrap(),
        "IT",
        "webconnectivity"
    ));
    assert_eq!(fakes.queue.sent().len(), 1);
}

#[tokio::test]
async fn zz_and_as0_report_ids_get_an_empty_object_and_nothing_is_stored() {
    let (svc, fakes) = fake_service(settings());
    for rid in [
        "20230101T000000Z_webconnectivity_ZZ_30722_n1_abcdefghijklmnop",
        "20230101T000000Z_webconnectivity_IT_0_n1_abcdefghijklmnop",
    ] {
        let r = submit(
            &svc,
            rid,
            &measurement("IT", "AS30722", "web_connectivity"),
            &[],
        )
        .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json(), json!({}));
    }
    assert!(fakes.incoming.is_empty() && fakes.queue.sent().is_empty());
}

#[tokio::test]
async fn the_envelope_with_an_inline_body_parses_back_exactly() {
    let uid =
        MeasurementUid::parse("20240305060708.123456_IT_webconnectivity_0123456789abcdef").unwrap();
    let env = SubmissionEnvelope::new(uid.clone(), "rid", Some("IT".into()), Some(30722));
    let body = br#"{"format":"json","content":{"a":[1,"x\"y"]},"is_verified":"u"}"#;
    let msg = ooni_probe::handlers::reports::envelope_message(&env, body, 1 << 20).unwrap();
    let back = SubmissionEnvelope::from_json(&msg).unwrap();
    assert_eq!(back.measurement_uid, uid);
    assert_eq!(back.client_asn, Some(30722));
    assert_eq!(back.body_str().unwrap().as_bytes(), body);
    let mut reference = env.clone();
    assert!(reference.attach_body_if_fits(body, 1 << 20).unwrap());
    assert_eq!(
        msg,
        reference.to_json().unwrap(),
        "same bytes as the domain's own serialisation"
    );
    let small = ooni_probe::handlers::reports::envelope_message(&env, body, 100).unwrap();
    assert!(SubmissionEnvelope::from_json(&small)
        .unwrap()
        .body
        .is_none());
}

#[tokio::test]
async fn check_in_answers_the_geoip_of_the_trusted_forwarded_address() {
    let (svc, _f) = fake_service(settings());
    let r = call(
        &svc,
        "POST",
        "/api/v1/check-in",
        &[
            ("content-type", "application/json"),
            ("x-forwarded-for", "1.1.1.1, 192.33.4.12"),
        ],
        br#"{"probe_cc":"ZZ","probe_asn":"AS0","run_type":"timed","charging":true}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["probe_cc"], "US");
    assert_eq!(j["probe_asn"], "AS2149");
    assert_eq!(j["probe_network_name"], "Cogent Communications");
    let rid = j["tests"]["web_connectivity"]["report_id"]
        .as_str()
        .unwrap();
    assert_eq!(rid.split('_').collect::<Vec<_>>()[2..4], ["US", "2149"]);
    let urls = j["tests"]["web_connectivity"]["urls"].as_array().unwrap();
    assert!(!urls.is_empty() && urls.len() <= 100);
}

#[tokio::test]
async fn check_in_keeps_the_probe_values_when_it_sent_them() {
    let (svc, _f) = fake_service(settings());
    let r = call(
        &svc,
        "POST",
        "/api/v1/check-in",
        &[("x-forwarded-for", "192.33.4.12")],
        br#"{"probe_cc":"it","probe_asn":"AS30722"}"#,
    )
    .await;
    let j = r.json();
    assert_eq!(j["probe_cc"], "US", "the answer carries the lookup");
    let rid = j["tests"]["ndt"]["report_id"].as_str().unwrap();
    assert!(rid.contains("_ndt_IT_30722_n1_"), "{rid}");
}

#[tokio::test]
async fn check_in_falls_back_to_the_random_global_sample_when_the_database_fails() {
    let (svc, fakes) = fake_service(Settings {
        list_cache_ttl: std::time::Duration::ZERO,
        ..settings()
    });
    // Let the failover list load first (at cold start in production).
    let first = post_json(&svc, "/api/v1/check-in", &json!({"run_type": "manual"})).await;
    assert_eq!(first.status, 200);
    fakes.db.set_down(true);
    let r = post_json(
        &svc,
        "/api/v1/check-in",
        &json!({"web_connectivity": {"category_codes": ["NEWS"]}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let urls = r.json()["tests"]["web_connectivity"]["urls"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(urls.len(), 20, "timed, not charging: 20 urls");
    assert!(urls
        .iter()
        .all(|u| u["category_code"] == "NEWS" && u["country_code"] == "XX"));
}

#[tokio::test]
async fn check_in_keeps_serving_a_recently_prioritised_list_through_a_database_blip() {
    let (svc, fakes) = fake_service(settings());
    let body = json!({"probe_cc": "BR", "probe_asn": "AS28573", "run_type": "manual"});
    let first = post_json(&svc, "/api/v1/check-in", &body).await.json();
    fakes.db.set_down(true);
    let second = post_json(&svc, "/api/v1/check-in", &body).await.json();
    let urls = |j: &serde_json::Value| j["tests"]["web_connectivity"]["urls"].clone();
    assert_eq!(
        urls(&first),
        urls(&second),
        "same prioritised list from the cache"
    );
    assert!(
        urls(&second)
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["country_code"] != "XX"),
        "not the failover sample"
    );
}

#[tokio::test]
async fn feature_flags_come_from_the_flag_document() {
    let (svc, fakes) = fake_service(settings());
    let doc = json!({"flags": {
        "torsf_enabled": {"default": false, "rules": [{"enabled": true, "countries": ["IT"]}]},
        "new_thing": {"default": true, "rules": [{"enabled": false, "software_names": ["ooniprobe-cli"]}]},
    }});
    fakes.config.insert(
        "feature-flags.json",
        serde_json::to_vec(&doc).unwrap(),
        "application/json",
    );
    let it = post_json(
        &svc,
        "/api/v1/check-in",
        &json!({"probe_cc": "IT", "probe_asn": "AS30722", "software_name": "ooniprobe-cli"}),
    )
    .await;
    let f = &it.json()["conf"]["features"];
    assert_eq!(f["torsf_enabled"], true);
    assert_eq!(f["new_thing"], false);
    assert_eq!(f["webconnectivity_0.5"], true);
    let de = post_json(
        &svc,
        "/api/v1/check-in",
        &json!({"probe_cc": "DE", "probe_asn": "AS3320"}),
    )
    .await;
    let f = &de.json()["conf"]["features"];
    assert_eq!(f["torsf_enabled"], false);
    assert_eq!(f["new_thing"], true);
}

#[tokio::test]
async fn invalid_check_in_input_is_422_not_a_crash() {
    let (svc, _f) = fake_service(settings());
    for body in [
        json!({"probe_asn": "30722", "probe_cc": "IT"}),
        json!({"probe_cc": "ITA", "probe_asn": "AS1"}),
        json!({"web_connectivity": {"category_codes": ["NEWS", "1"]}}),
        json!({"charging": "yes please"}),
    ] {
        let r = post_json(&svc, "/api/v1/check-in", &body).await;
        assert_eq!(r.status, 422, "{body} -> {}", r.text());
    }
}

#[tokio::test]
async fn the_canary_helper_goes_first_for_the_configured_share_of_networks() {
    let (svc, fakes) = fake_service(settings());
    let doc = json!({
        "web-connectivity": [
            {"address": "https://1.th.ooni.org", "type": "https"},
            {"address": "https://2.th.ooni.org", "type": "https"},
            {"address": "https://d33d1gs9kpq1c5.cloudfront.net", "type": "cloudfront", "front": "d33d1gs9kpq1c5.cloudfront.net"},
        ],
        "dns": [{"address": "37.218.241.93:57004", "type": "legacy"}],
        "canary": {"helper": {"address": "https://0.th.ooni.org", "type": "https"}, "share_percent": 100, "salt": "t"},
    });
    fakes.config.insert(
        "test-helpers.json",
        serde_json::to_vec(&doc).unwrap(),
        "application/json",
    );
    let r = call(
        &svc,
        "GET",
        "/api/v1/test-helpers",
        &[("x-forwarded-for", "93.57.1.2")],
        &[],
    )
    .await;
    let wc = r.json()["web-connectivity"].as_array().unwrap().clone();
    assert_eq!(wc.len(), 4);
    assert_eq!(wc[0]["address"], "https://0.th.ooni.org");
    assert_eq!(wc[3]["type"], "cloudfront");
    assert_eq!(r.json()["dns"].as_array().unwrap().len(), 1);
    assert_eq!(r.headers["cache-control"], "no-cache");
}

#[tokio::test]
async fn without_a_helper_document_the_upstream_list_is_served() {
    let (svc, _f) = fake_service(settings());
    let r = get(&svc, "/api/v1/test-helpers").await;
    let j = r.json();
    let mut keys: Vec<&String> = j.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "dns",
            "http-return-json-headers",
            "ssl",
            "tcp-echo",
            "traceroute",
            "web-connectivity"
        ]
    );
    assert_eq!(
        j["web-connectivity"].as_array().unwrap().last().unwrap()["type"],
        "cloudfront"
    );
}

#[tokio::test]
async fn tor_targets_and_psiphon_config_need_a_valid_probe_token() {
    let (svc, fakes) = fake_service(settings());
    fakes
        .config
        .insert("tor-targets.json", TOR_TARGETS_JSON, "application/json");
    fakes
        .config
        .insert("psiphon-config.json", PSIPHON_JSON, "application/json");
    for path in [
        "/api/v1/test-list/tor-targets",
        "/api/v1/test-list/psiphon-config",
    ] {
        assert_eq!(get(&svc, path).await.status, 401, "{path} without a token");
        let r = call(
            &svc,
            "GET",
            path,
            &[("authorization", "Bearer not.a.token")],
            &[],
        )
        .await;
        assert_eq!(r.status, 401);
    }
    let login = post_json(
        &svc,
        "/api/v1/login",
        &json!({"username": "legacy", "password": "x"}),
    )
    .await;
    let token = login.json()["token"].as_str().unwrap().to_owned();
    let auth = format!("Bearer {token}");
    let tor = call(
        &svc,
        "GET",
        "/api/v1/test-list/tor-targets",
        &[("authorization", &auth)],
        &[],
    )
    .await;
    assert_eq!(tor.status, 200);
    assert_eq!(
        tor.json(),
        serde_json::from_str::<serde_json::Value>(TOR_TARGETS_JSON).unwrap()
    );
    let ps = call(
        &svc,
        "GET",
        "/api/v1/test-list/psiphon-config",
        &[("authorization", &auth)],
        &[],
    )
    .await;
    assert_eq!(ps.json()["ClientPlatform"], "ooni");
    // A user-session key token is not a probe token.
    let user_token = jwt_keys()
        .user
        .sign(&ooni_platform::auth::ProbeTokenClaims {
            registration_time: None,
            aud: "probe_token".into(),
            iat: None,
            exp: chrono::Utc::now().timestamp() + 60,
        })
        .unwrap();
    let r = call(
        &svc,
        "GET",
        "/api/v1/test-list/tor-targets",
        &[("authorization", &format!("Bearer {user_token}"))],
        &[],
    )
    .await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn a_missing_targets_document_is_503() {
    let (svc, _f) = fake_service(settings());
    let login = post_json(
        &svc,
        "/api/v1/login",
        &json!({"username": "legacy", "password": "x"}),
    )
    .await;
    let auth = format!("Bearer {}", login.json()["token"].as_str().unwrap());
    let r = call(
        &svc,
        "GET",
        "/api/v1/test-list/tor-targets",
        &[("authorization", &auth)],
        &[],
    )
    .await;
    assert_eq!(r.status, 503);
}

#[tokio::test]
async fn vpn_config_serves_riseup_credentials_with_four_random_gateways() {
    let (svc, fakes) = fake_service(settings());
    let endpoints: Vec<_> = (1..=6).map(|i| json!({"address": format!("10.0.0.{i}:1194"), "transport": if i % 2 == 0 {"tcp"} else {"udp"}})).collect();
    let doc = json!({"config": {"ca": "CA", "cert": "CERT", "key": "KEY"}, "date_updated": "2024-05-01T00:00:00.000000Z", "endpoints": endpoints});
    fakes.config.insert(
        "vpn/riseupvpn.json",
        serde_json::to_vec(&doc).unwrap(),
        "application/json",
    );
    let r = get(&svc, "/api/v2/ooniprobe/vpn-config/riseupvpn").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["provider"], "riseupvpn");
    assert_eq!(j["protocol"], "openvpn");
    assert_eq!(
        j["config"],
        json!({"ca": "CA", "cert": "CERT", "key": "KEY"})
    );
    assert_eq!(j["date_updated"], "2024-05-01T00:00:00.000000Z");
    let eps = j["endpoints"].as_array().unwrap();
    assert_eq!(eps.len(), 4);
    assert!(eps.iter().all(|e| e
        .as_str()
        .unwrap()
        .starts_with("openvpn://riseupvpn.corp/?address=10.0.0.")));
    assert_eq!(r.headers["cache-control"], "private, no-store");
    assert_eq!(
        get(&svc, "/api/v2/ooniprobe/vpn-config/nordvpn")
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn health_is_degraded_with_503_when_clickhouse_or_the_config_bucket_is_down() {
    let (svc, fakes) = fake_service(settings());
    let ok = get(&svc, "/health").await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["status"], "ok");
    assert_eq!(ok.json()["errors"], json!([]));
    assert!(ok.json()["version"].is_string() && ok.json()["build_label"].is_string());
    fakes.db.set_down(true);
    fakes.config.set_down(true);
    let bad = get(&svc, "/health").await;
    assert_eq!(bad.status, 503);
    assert_eq!(bad.json()["status"], "degraded");
    assert_eq!(bad.json()["errors"], json!(["clickhouse", "config_bucket"]));
}

#[tokio::test]
async fn geolookup_answers_each_address_and_zz_for_misses() {
    let (svc, _f) = fake_service(settings());
    let r = post_json(
        &svc,
        "/api/v1/geolookup",
        &json!({"addresses": ["192.33.4.12", "8.8.8.8"]}),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!({"v": 1, "geolocation": {
            "192.33.4.12": {"cc": "US", "asn": 2149, "as_name": "Cogent Communications"},
            "8.8.8.8": {"cc": "ZZ", "asn": 0, "as_name": null},
        }})
    );
    let bad = post_json(
        &svc,
        "/api/v1/geolookup",
        &json!({"addresses": ["not-an-ip"]}),
    )
    .await;
    assert_eq!(bad.status, 422);
}

#[tokio::test]
async fn login_with_a_forged_client_id_is_401_and_missing_fields_are_401() {
    let (svc, _f) = fake_service(settings());
    let forged = jwt_keys()
        .user
        .sign(&json!({"iat": 1, "aud": "probe_login"}))
        .unwrap();
    let r = post_json(
        &svc,
        "/api/v1/login",
        &json!({"username": forged, "password": "x"}),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json(), json!({"detail": "Invalid credentials"}));
    let r = post_json(&svc, "/api/v1/login", &json!({"username": "x"})).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json(), json!({"detail": "Missing credentials"}));
}

#[tokio::test]
async fn probe_update_acknowledges() {
    let (svc, _f) = fake_service(settings());
    let r = call(
        &svc,
        "PUT",
        "/api/v1/update/someclient",
        &[],
        br#"{"probe_cc":"IT","platform":"android"}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"status": "ok"}));
}
