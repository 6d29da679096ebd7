//! Black-box tests of the jobs on the real local ClickHouse and AWS emulator, with sources served
//! by a local fake HTTP server: loading, validation, idempotence, kill-safety (runs stopped at
//! every step, or dropped mid-flight, then rerun), metrics, and the probe reading what the
//! GeoIP and VPN jobs wrote.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use ooni_jobs::checkpoint::Step;
use ooni_jobs::Job;
use ooni_testkit::fake_http::{FakeHttp, Reply};
use ooni_testkit::mmdb;
use serde_json::{json, Value};
use std::net::IpAddr;
use support::*;

// ---- Fingerprints ------------------------------------------------------------------------------

async fn fingerprint_names(h: &Harness, table: &str) -> Vec<String> {
    h.strings(&format!("SELECT name FROM {table} ORDER BY name"))
        .await
}

#[tokio::test]
async fn fingerprints_are_loaded_into_the_live_tables_and_a_rerun_changes_nothing() {
    let h = Harness::start().await;
    h.serve(DNS, Reply::text(200, FP_DNS));
    h.serve(HTTP, Reply::text(200, FP_HTTP));
    let report = h.run(Job::Fingerprints).await.unwrap();
    assert_eq!(report["outcome"], "updated");
    assert_eq!(report["rows"], 226 + 1729);
    assert_eq!(report["swapped"], json!(["dns", "http"]));
    assert_eq!(h.count("fingerprints_dns").await, 226);
    assert_eq!(h.count("fingerprints_http").await, 1729);
    let row = h
        .strings("SELECT concat(toString(scope), '|', toString(pattern_type), '|', pattern, '|', expected_countries) FROM fingerprints_http WHERE name = 'ooni.ae_0'")
        .await;
    assert_eq!(row, ["nat|prefix|Protected by WireFilter|AE,SA"]);

    let again = h.run(Job::Fingerprints).await.unwrap();
    assert_eq!(again["outcome"], "unchanged");
    assert_eq!(again["swapped"], json!([]));
    assert_eq!(h.count("fingerprints_dns").await, 226);

    let docs = h.metric_docs();
    assert_eq!(docs.len(), 6, "three data points per run");
    assert!(docs.iter().all(|d| d["job"] == "JobFingerprints"));
    assert_eq!(docs[1]["job_rows"], 1955.0);
    assert_eq!(docs[2]["job_failures"], 0.0);
    assert!(docs[0]["job_duration"].as_f64().unwrap() > 0.0);
    assert_eq!(docs[5]["outcome"], "unchanged");
}

#[tokio::test]
async fn an_invalid_fingerprint_file_leaves_both_live_tables_untouched() {
    let h = Harness::start().await;
    h.serve(DNS, Reply::text(200, FP_DNS));
    h.serve(HTTP, Reply::text(200, FP_HTTP));
    h.run(Job::Fingerprints).await.unwrap();
    let before = fingerprint_names(&h, "fingerprints_dns").await;

    // A valid, smaller DNS file with an HTTP file holding one unknown scope.
    h.serve(DNS, Reply::text(200, first_rows(FP_DNS, 150)));
    h.serve(
        HTTP,
        Reply::text(200, FP_HTTP.replacen(",nat,", ",national,", 1)),
    );
    let err = h.run(Job::Fingerprints).await.unwrap_err();
    assert!(format!("{err:#}").contains("scope"), "{err:#}");
    assert_eq!(fingerprint_names(&h, "fingerprints_dns").await, before);
    assert_eq!(h.count("fingerprints_http").await, 1729);

    // A source that fails to download is refused the same way.
    h.serve(HTTP, Reply::text(503, "down"));
    let err = h.run(Job::Fingerprints).await.unwrap_err();
    assert!(format!("{err:#}").contains("503"), "{err:#}");
    assert_eq!(h.count("fingerprints_dns").await, 226);

    let last = h.metric_docs().pop().unwrap();
    assert_eq!(last["outcome"], "failed");
    assert_eq!(last["job_failures"], 1.0);
    assert_eq!(last["error"], "fetch");
}

#[tokio::test]
async fn a_fingerprint_update_stopped_at_any_step_leaves_live_tables_intact_and_the_rerun_completes(
) {
    let h = Harness::start().await;
    let (a_dns, a_http) = (FP_DNS.to_owned(), FP_HTTP.to_owned());
    let (b_dns, b_http) = (first_rows(FP_DNS, 150), first_rows(FP_HTTP, 1000));
    let serve = |dns: &str, http: &str| {
        h.serve(DNS, Reply::text(200, dns));
        h.serve(HTTP, Reply::text(200, http));
    };
    let stops = [
        stop(Step::Validated, None),
        stop(Step::TmpTruncated, Some("fingerprints_dns")),
        stop(Step::TmpFilled, Some("fingerprints_dns")),
        stop(Step::TmpTruncated, Some("fingerprints_http")),
        stop(Step::TmpFilled, Some("fingerprints_http")),
    ];
    for (i, at) in stops.into_iter().enumerate() {
        serve(&a_dns, &a_http);
        h.run(Job::Fingerprints).await.unwrap();
        serve(&b_dns, &b_http);
        if i % 2 == 0 {
            assert!(h.run_failing_at(Job::Fingerprints, at).await.is_err());
        } else {
            h.run_killed_at(Job::Fingerprints, at).await;
        }
        assert_eq!(
            (
                h.count("fingerprints_dns").await,
                h.count("fingerprints_http").await
            ),
            (226, 1729),
            "{at:?}"
        );
        let rerun = h.run(Job::Fingerprints).await.unwrap();
        assert_eq!(rerun["outcome"], "updated", "{at:?}");
        assert_eq!(
            (
                h.count("fingerprints_dns").await,
                h.count("fingerprints_http").await
            ),
            (150, 1000),
            "{at:?}"
        );
    }

    // Stopped between the two exchanges: each table is whole (DNS new, HTTP previous).
    serve(&a_dns, &a_http);
    h.run(Job::Fingerprints).await.unwrap();
    serve(&b_dns, &b_http);
    h.run_killed_at(
        Job::Fingerprints,
        stop(Step::Exchanged, Some("fingerprints_dns")),
    )
    .await;
    assert_eq!(
        (
            h.count("fingerprints_dns").await,
            h.count("fingerprints_http").await
        ),
        (150, 1729)
    );
    let rerun = h.run(Job::Fingerprints).await.unwrap();
    assert_eq!(rerun["swapped"], json!(["http"]));
    assert_eq!(
        (
            h.count("fingerprints_dns").await,
            h.count("fingerprints_http").await
        ),
        (150, 1000)
    );
}

#[tokio::test]
async fn a_fingerprint_run_dropped_at_arbitrary_moments_never_exposes_a_partial_table() {
    let h = Harness::start().await;
    let (b_dns, b_http) = (first_rows(FP_DNS, 150), first_rows(FP_HTTP, 1000));
    h.serve(DNS, Reply::text(200, FP_DNS));
    h.serve(HTTP, Reply::text(200, FP_HTTP));
    h.run(Job::Fingerprints).await.unwrap();
    let (a, b) = ((226u64, 1729u64), (150u64, 1000u64));
    let mut dropped_before_the_swap = 0;
    for (i, delay_ms) in [0u64, 2, 5, 10, 20, 40, 80, 160].into_iter().enumerate() {
        let (prev, next) = if i % 2 == 0 { (a, b) } else { (b, a) };
        let (dns, http) = if next == b {
            (b_dns.clone(), b_http.clone())
        } else {
            (FP_DNS.to_owned(), FP_HTTP.to_owned())
        };
        h.serve(DNS, Reply::text(200, dns));
        h.serve(HTTP, Reply::text(200, http));
        let env = h.env();
        let run = ooni_jobs::job::run_named(&env, Job::Fingerprints);
        let dropped = tokio::time::timeout(std::time::Duration::from_millis(delay_ms), run)
            .await
            .is_err();
        let counts = (
            h.count("fingerprints_dns").await,
            h.count("fingerprints_http").await,
        );
        assert!(
            [a.0, b.0].contains(&counts.0) && [a.1, b.1].contains(&counts.1),
            "{delay_ms} ms: {counts:?}"
        );
        if dropped && counts == prev {
            dropped_before_the_swap += 1;
        }
        h.run(Job::Fingerprints).await.unwrap();
        let after = (
            h.count("fingerprints_dns").await,
            h.count("fingerprints_http").await,
        );
        assert_eq!(after, next, "{delay_ms} ms");
    }
    assert!(
        dropped_before_the_swap > 0,
        "no run was dropped before its swap"
    );
}

// ---- Citizen Lab test lists ----------------------------------------------------------------

fn sample_archive() -> Vec<u8> {
    tar_gz(&[
        ("README.md", "# test lists"),
        (
            "lists/00-LEGEND-category_codes.csv",
            "CODE,Category\nNEWS,News\n",
        ),
        (
            "lists/global.csv",
            &list(&[
                ("https://www.example.com/", "NEWS"),
                ("http://twitter.com/", "GRP"),
            ]),
        ),
        (
            "lists/it.csv",
            &list(&[
                ("https://www.repubblica.it/", "NEWS"),
                ("https://www.example.com/", "NEWS"),
            ]),
        ),
        (
            "lists/IR.csv",
            &list(&[("https://www.bbc.com/persian", "NEWS")]),
        ),
        (
            "lists/cis.csv",
            &list(&[("https://regional.example.net/", "NEWS")]),
        ),
        ("scripts/lists/xx.csv", "not,a,list\n"),
    ])
}

async fn citizenlab_rows(h: &Harness) -> Vec<String> {
    h.strings(
        "SELECT concat(toStringCutToZero(cc), ' ', category_code, ' ', domain, ' ', url) FROM citizenlab ORDER BY cc, url",
    )
    .await
}

#[tokio::test]
async fn test_lists_are_loaded_with_global_as_zz_and_countries_in_lowercase() {
    let h = Harness::start().await;
    h.serve(ARCHIVE, Reply::bytes(200, sample_archive()));
    let report = h.run(Job::Citizenlab).await.unwrap();
    assert_eq!(report["outcome"], "updated");
    assert_eq!(report["rows"], 5);
    assert_eq!(report["lists"], 3);
    assert_eq!(
        citizenlab_rows(&h).await,
        [
            "ZZ GRP twitter.com http://twitter.com/",
            "ZZ NEWS www.example.com https://www.example.com/",
            "ir NEWS www.bbc.com https://www.bbc.com/persian",
            "it NEWS www.example.com https://www.example.com/",
            "it NEWS www.repubblica.it https://www.repubblica.it/",
        ]
    );
    assert_eq!(
        h.run(Job::Citizenlab).await.unwrap()["outcome"],
        "unchanged"
    );
}

#[tokio::test]
async fn one_malformed_list_rejects_the_whole_test_list_update() {
    let h = Harness::start().await;
    h.serve(ARCHIVE, Reply::bytes(200, sample_archive()));
    h.run(Job::Citizenlab).await.unwrap();
    let before = citizenlab_rows(&h).await;
    for (name, bad) in [
        (
            "bad URL",
            tar_gz(&[
                (
                    "lists/global.csv",
                    &list(&[("https://ok.example.org/", "NEWS")]),
                ),
                ("lists/de.csv", &list(&[("https://bad host.de/", "NEWS")])),
            ]),
        ),
        (
            "missing column",
            tar_gz(&[(
                "lists/global.csv",
                "url,category_code\nhttps://ok.example.org/,NEWS\n",
            )]),
        ),
        (
            "ragged row",
            tar_gz(&[(
                "lists/global.csv",
                &format!(
                    "{}https://x.example.org/,NEWS\n",
                    list(&[("https://ok.example.org/", "NEWS")])
                ),
            )]),
        ),
        (
            "too few rows",
            tar_gz(&[(
                "lists/global.csv",
                &list(&[("https://ok.example.org/", "NEWS")]),
            )]),
        ),
        ("no lists", tar_gz(&[("README.md", "nothing")])),
    ] {
        h.serve(ARCHIVE, Reply::bytes(200, bad));
        assert!(h.run(Job::Citizenlab).await.is_err(), "{name} was accepted");
        assert_eq!(citizenlab_rows(&h).await, before, "{name}");
    }
    h.serve(
        ARCHIVE,
        Reply::bytes(200, b"<html>not an archive</html>".to_vec()),
    );
    assert!(h.run(Job::Citizenlab).await.is_err());
    assert_eq!(citizenlab_rows(&h).await, before);
}

#[tokio::test]
async fn a_test_list_update_interrupted_at_any_step_or_mid_download_keeps_the_live_table_and_the_rerun_completes(
) {
    let h = Harness::start().await;
    let a = sample_archive();
    let b = tar_gz(&[(
        "lists/global.csv",
        &list(&[
            ("https://one.example.org/", "NEWS"),
            ("https://two.example.org/", "HUMR"),
            ("https://three.example.org/", "LGBT"),
            ("https://four.example.org/", "ANON"),
        ]),
    )]);
    let stops = [
        stop(Step::Validated, None),
        stop(Step::TmpTruncated, Some("citizenlab")),
        stop(Step::TmpFilled, Some("citizenlab")),
    ];
    for (i, at) in stops.into_iter().enumerate() {
        h.serve(ARCHIVE, Reply::bytes(200, a.clone()));
        h.run(Job::Citizenlab).await.unwrap();
        let before = citizenlab_rows(&h).await;
        h.serve(ARCHIVE, Reply::bytes(200, b.clone()));
        if i % 2 == 0 {
            h.run_killed_at(Job::Citizenlab, at).await;
        } else {
            assert!(h.run_failing_at(Job::Citizenlab, at).await.is_err());
        }
        assert_eq!(citizenlab_rows(&h).await, before, "{at:?}");
        h.run(Job::Citizenlab).await.unwrap();
        assert_eq!(h.count("citizenlab").await, 4, "{at:?}");
    }
    // The connection drops half way through the archive.
    h.serve(ARCHIVE, Reply::bytes(200, a.clone()).truncated(a.len() / 2));
    assert!(h.run(Job::Citizenlab).await.is_err());
    assert_eq!(h.count("citizenlab").await, 4);
    h.serve(ARCHIVE, Reply::bytes(200, a));
    h.run(Job::Citizenlab).await.unwrap();
    assert_eq!(h.count("citizenlab").await, 5);
}

// ---- ASN metadata --------------------------------------------------------------------------

#[tokio::test]
async fn asn_metadata_is_loaded_refused_when_invalid_and_survives_an_interrupted_update() {
    let h = Harness::start().await;
    h.serve(ASNMETA, Reply::text(200, asnmeta_doc(20, "First")));
    let report = h.run(Job::Asnmeta).await.unwrap();
    assert_eq!(
        (report["rows"].as_u64(), report["asns"].as_u64()),
        (Some(40), Some(20))
    );
    let row = h.strings("SELECT concat(org_name, '|', cc, '|', toString(changed), '|', aut_name, '|', source) FROM asnmeta WHERE asn = 7 ORDER BY changed").await;
    assert_eq!(
        row,
        [
            "First Org 7|US|2004-06-04|AS-7|ARIN",
            "First Org 7 LLC|IT|2018-02-20|AS-7|RIPE"
        ]
    );
    assert_eq!(h.run(Job::Asnmeta).await.unwrap()["outcome"], "unchanged");

    h.serve(
        ASNMETA,
        Reply::text(
            200,
            asnmeta_doc(20, "Second").replace("20180220", "2018022"),
        ),
    );
    assert!(h.run(Job::Asnmeta).await.is_err());
    h.serve(ASNMETA, Reply::text(200, asnmeta_doc(4, "Second")));
    assert!(format!("{:#}", h.run(Job::Asnmeta).await.unwrap_err())
        .contains("outside the accepted range"));

    h.serve(ASNMETA, Reply::text(200, asnmeta_doc(30, "Second")));
    h.run_killed_at(Job::Asnmeta, stop(Step::TmpFilled, Some("asnmeta")))
        .await;
    assert_eq!(h.count("asnmeta").await, 40);
    assert_eq!(
        h.strings("SELECT DISTINCT splitByChar(' ', org_name)[1] FROM asnmeta")
            .await,
        ["First"]
    );
    h.run(Job::Asnmeta).await.unwrap();
    assert_eq!(h.count("asnmeta").await, 60);
    assert_eq!(
        h.strings("SELECT DISTINCT splitByChar(' ', org_name)[1] FROM asnmeta")
            .await,
        ["Second"]
    );
}

// ---- GeoIP ---------------------------------------------------------------------------------

fn dbs(cc_for_probe: &str) -> (Vec<u8>, Vec<u8>) {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let mut cc = mmdb::MmdbWriter::new("DBIP-Country-Lite");
    cc.insert(ip("93.57.0.0"), 16, &mmdb::country(cc_for_probe));
    cc.insert(ip("192.33.4.0"), 24, &mmdb::country("US"));
    let mut asn = mmdb::MmdbWriter::new("DBIP-ASN-Lite");
    asn.insert(
        ip("93.57.0.0"),
        16,
        &mmdb::asn(30722, "Vodafone Italia S.p.A."),
    );
    (cc.build(), asn.build())
}

async fn probe_geolookup(h: &Harness, addr: &str) -> Value {
    let server = h
        .stack
        .serve(std::sync::Arc::new(ooni_probe::ProbeService::new(
            h.stack.ctx.clone(),
        )))
        .await;
    let resp = reqwest::Client::new()
        .post(server.url("/api/v1/geolookup"))
        .json(&json!({"addresses": [addr]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json::<Value>().await.unwrap()["geolocation"][addr].clone()
}

#[tokio::test]
async fn verified_geoip_databases_replace_the_config_bucket_copies_the_probe_reads() {
    let h = Harness::start().await;
    let (cc, asn) = dbs("IT");
    h.serve(CC_DB, Reply::bytes(200, gzip(&cc)));
    h.serve(ASN_DB, Reply::bytes(200, asn.clone()));
    let report = h.run(Job::Geoip).await.unwrap();
    assert_eq!(report["outcome"], "updated");
    assert_eq!(report["rows"], 2);
    assert_eq!(
        report["probe"],
        json!({"ip": "93.57.1.1", "cc": "IT", "asn": 30722})
    );
    assert_eq!(report["cc_db"]["database_type"], "DBIP-Country-Lite");
    let bucket = h
        .stack
        .ctx
        .object_store(ooni_platform::functions::Bucket::Config);
    assert_eq!(
        bucket.get("geoip/cc.mmdb").await.unwrap().unwrap(),
        cc,
        "stored inflated"
    );
    assert_eq!(bucket.get("geoip/asn.mmdb").await.unwrap().unwrap(), asn);
    let geo = probe_geolookup(&h, "93.57.1.1").await;
    assert_eq!(
        (geo["cc"].as_str(), geo["asn"].as_u64()),
        (Some("IT"), Some(30722))
    );

    let again = h.run(Job::Geoip).await.unwrap();
    assert_eq!(
        (again["outcome"].as_str(), again["rows"].as_u64()),
        (Some("unchanged"), Some(0))
    );
}

#[tokio::test]
async fn geoip_databases_that_fail_the_probe_address_check_are_not_stored() {
    let h = Harness::start().await;
    let (cc, asn) = dbs("IT");
    h.serve(CC_DB, Reply::bytes(200, cc.clone()));
    h.serve(ASN_DB, Reply::bytes(200, asn.clone()));
    h.run(Job::Geoip).await.unwrap();
    let bucket = h
        .stack
        .ctx
        .object_store(ooni_platform::functions::Bucket::Config);

    let (wrong_cc, _) = dbs("FR");
    h.serve(CC_DB, Reply::bytes(200, wrong_cc));
    let err = format!("{:#}", h.run(Job::Geoip).await.unwrap_err());
    assert!(err.contains("expected IT"), "{err}");

    let mut empty = mmdb::MmdbWriter::new("DBIP-ASN-Lite");
    empty.insert("10.0.0.0".parse().unwrap(), 8, &mmdb::asn(64512, "private"));
    h.serve(CC_DB, Reply::bytes(200, cc.clone()));
    h.serve(ASN_DB, Reply::bytes(200, empty.build()));
    assert!(format!("{:#}", h.run(Job::Geoip).await.unwrap_err()).contains("no answer"));

    h.serve(
        ASN_DB,
        Reply::bytes(200, b"garbage, not an MMDB file".to_vec()),
    );
    assert!(format!("{:#}", h.run(Job::Geoip).await.unwrap_err()).contains("not a valid MMDB"));

    assert_eq!(bucket.get("geoip/cc.mmdb").await.unwrap().unwrap(), cc);
    assert_eq!(bucket.get("geoip/asn.mmdb").await.unwrap().unwrap(), asn);
}

#[tokio::test]
async fn a_geoip_run_killed_between_the_two_writes_is_finished_by_the_rerun() {
    let h = Harness::start().await;
    let (cc1, asn1) = dbs("IT");
    h.serve(CC_DB, Reply::bytes(200, cc1.clone()));
    h.serve(ASN_DB, Reply::bytes(200, asn1.clone()));
    h.run(Job::Geoip).await.unwrap();
    // New versions of both files (an extra network each).
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let mut cc = mmdb::MmdbWriter::new("DBIP-Country-Lite");
    cc.insert(ip("93.57.0.0"), 16, &mmdb::country("IT"));
    cc.insert(ip("80.233.128.0"), 17, &mmdb::country("IE"));
    let mut asn = mmdb::MmdbWriter::new("DBIP-ASN-Lite");
    asn.insert(
        ip("93.57.0.0"),
        16,
        &mmdb::asn(30722, "Vodafone Italia S.p.A."),
    );
    asn.insert(
        ip("80.233.128.0"),
        17,
        &mmdb::asn(34245, "Magnet Networks Limited"),
    );
    let (cc2, asn2) = (cc.build(), asn.build());
    h.serve(CC_DB, Reply::bytes(200, cc2.clone()));
    h.serve(ASN_DB, Reply::bytes(200, asn2.clone()));
    h.run_killed_at(Job::Geoip, stop(Step::Stored, Some("geoip/cc.mmdb")))
        .await;
    let bucket = h
        .stack
        .ctx
        .object_store(ooni_platform::functions::Bucket::Config);
    assert_eq!(bucket.get("geoip/cc.mmdb").await.unwrap().unwrap(), cc2);
    assert_eq!(bucket.get("geoip/asn.mmdb").await.unwrap().unwrap(), asn1);
    let rerun = h.run(Job::Geoip).await.unwrap();
    assert_eq!(rerun["rows"], 1, "only the ASN database is still to write");
    assert_eq!(bucket.get("geoip/asn.mmdb").await.unwrap().unwrap(), asn2);
}

// ---- VPN credentials -----------------------------------------------------------------------

const CA_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBYjCCAQigAwIBAgIBATAKBggqhkjOPQQDAjAX\nMRUwEwYDVQQDEwxMRUFQIFJvb3QgQ0E=\n-----END CERTIFICATE-----\n";
const KEY_PEM: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAvVzDKXzFyM2rN1bB\nq0c6gG0=\n-----END RSA PRIVATE KEY-----\n";
const CERT_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIDXTCCAkWgAwIBAgIJAKZ5Q1U0\nyYkAAA==\n-----END CERTIFICATE-----\n";

fn eip_service() -> Value {
    json!({
        "serial": 3, "version": 3,
        "gateways": [
            {"host": "a.riseup.net", "ip_address": "198.252.153.1", "location": "seattle",
             "capabilities": {"adblock": false, "transport": [
                {"type": "openvpn", "protocols": ["tcp", "udp"], "ports": ["53", "1194"]},
                {"type": "obfs4", "protocols": ["tcp"], "ports": ["23042"], "options": {"cert": "x"}}]}},
            {"host": "b.riseup.net", "ip_address": "37.218.241.7", "location": "amsterdam",
             "capabilities": {"transport": [{"type": "openvpn", "protocols": ["udp"], "ports": ["1194"]}]}}
        ]
    })
}

#[tokio::test]
async fn vpn_credentials_are_stored_and_served_by_the_probe_route_and_bad_sources_keep_the_previous_ones(
) {
    let h = Harness::start().await;
    h.serve(EIP, Reply::json(200, &eip_service()));
    h.serve(CA, Reply::text(200, format!("{CA_PEM}\n")));
    h.serve(CERT, Reply::text(200, format!("{KEY_PEM}{CERT_PEM}")));
    let report = h.run(Job::VpnCredentials).await.unwrap();
    assert_eq!(
        (report["outcome"].as_str(), report["endpoints"].as_u64()),
        (Some("updated"), Some(5))
    );

    let bucket = h
        .stack
        .ctx
        .object_store(ooni_platform::functions::Bucket::Config);
    let stored = bucket.get("vpn/riseupvpn.json").await.unwrap().unwrap();
    let doc =
        ooni_probe::config_docs::VpnProviderDoc::parse("vpn/riseupvpn.json", &stored).unwrap();
    assert_eq!(doc.config.key, KEY_PEM);
    assert_eq!(doc.config.cert, CERT_PEM);
    assert_eq!(doc.config.ca, CA_PEM.trim());
    assert!(doc
        .endpoints
        .iter()
        .any(|e| e.address == "37.218.241.7:1194" && e.transport == "udp"));

    let server = h
        .stack
        .serve(std::sync::Arc::new(ooni_probe::ProbeService::new(
            h.stack.ctx.clone(),
        )))
        .await;
    let resp = reqwest::get(server.url("/api/v2/ooniprobe/vpn-config/riseupvpn"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["config"]["key"], KEY_PEM);
    assert_eq!(body["date_updated"], doc.date_updated);
    assert!(body["endpoints"][0]
        .as_str()
        .unwrap()
        .starts_with("openvpn://riseupvpn.corp/?address="));

    for (path, reply) in [
        (CERT, Reply::text(200, CERT_PEM)),
        (CA, Reply::text(500, "oops")),
        (EIP, Reply::json(200, &json!({"gateways": []}))),
    ] {
        h.serve(EIP, Reply::json(200, &eip_service()));
        h.serve(CA, Reply::text(200, CA_PEM));
        h.serve(CERT, Reply::text(200, format!("{KEY_PEM}{CERT_PEM}")));
        h.serve(path, reply);
        assert!(h.run(Job::VpnCredentials).await.is_err(), "{path}");
        assert_eq!(
            bucket.get("vpn/riseupvpn.json").await.unwrap().unwrap(),
            stored,
            "{path}"
        );
    }
}

// ---- Migrate, the service, run_job ---------------------------------------------------------

async fn fresh_database_ctx(h: &Harness, database: &str) -> std::sync::Arc<ooni_platform::Context> {
    let ctx = &h.stack.ctx;
    let ch = ooni_adapters::ClickHouseConfig::new(ooni_testkit::clickhouse_url(), database);
    std::sync::Arc::new(
        ooni_platform::Context::new(ctx.http.clone(), ctx.aws.clone(), ctx.names.clone(), ch)
            .with_jwt_keys(ooni_testkit::jwt_keys()),
    )
}

async fn database_exists(h: &Harness, name: &str) -> bool {
    h.ch()
        .query("SELECT count() FROM system.databases WHERE name = ?")
        .bind(name)
        .fetch_one::<u64>()
        .await
        .unwrap()
        == 1
}

#[tokio::test]
async fn migrate_runs_on_a_plain_invoke_and_a_rerun_applies_nothing() {
    let h = Harness::start().await;
    let db = format!("test_{}_migrate", h.stack.prefix);
    let ctx = fresh_database_ctx(&h, &db).await;
    let first = ooni_jobs::run_job(ctx.clone(), "Migrate").await.unwrap();
    let applied = first["applied"].as_array().unwrap().len();
    assert!(applied >= 13, "{first}");
    assert_eq!(first["database"], db.as_str());
    assert!(database_exists(&h, &db).await);
    let second = ooni_jobs::run_job(ctx, "Migrate").await.unwrap();
    assert_eq!(second["applied"], json!([]));
    assert_eq!(second["already_applied"].as_array().unwrap().len(), applied);
    assert_eq!(second["outcome"], "unchanged");
}

fn cfn_event(request_type: &str, response_url: &str) -> Value {
    let mut ev: Value =
        serde_json::from_str(include_str!("../../../events/Migrate/create.json")).unwrap();
    ev["RequestType"] = json!(request_type);
    ev["ResponseURL"] = json!(response_url);
    if request_type != "Create" {
        ev["PhysicalResourceId"] = json!("ooni-clickhouse-migrations-existing");
    }
    ev
}

async fn migrate_handler(
    ctx: std::sync::Arc<ooni_platform::Context>,
    settings: ooni_jobs::settings::JobSettings,
) -> std::sync::Arc<dyn ooni_platform::JobHandler> {
    let env = ooni_jobs::JobEnv::with_settings(&ctx, settings).unwrap();
    let service = ooni_jobs::JobsService::with_env(ctx, env);
    match ooni_platform::Service::build(&service, "Migrate")
        .await
        .unwrap()
    {
        Some(ooni_platform::Handler::Job(h)) => h,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn migrate_answers_cloudformation_success_on_create_and_does_nothing_on_delete() {
    let h = Harness::start().await;
    let cfn = FakeHttp::start(|_| Reply::text(200, "")).await;
    let db = format!("test_{}_cfn", h.stack.prefix);
    let handler = migrate_handler(fresh_database_ctx(&h, &db).await, h.settings.clone()).await;

    let out = handler
        .run(cfn_event("Delete", &cfn.url("/signed?X-Amz-Signature=abc")))
        .await
        .unwrap();
    assert_eq!(out["Status"], "SUCCESS");
    assert!(
        !database_exists(&h, &db).await,
        "Delete must not touch the database"
    );

    let out = handler
        .run(cfn_event("Create", &cfn.url("/signed?X-Amz-Signature=def")))
        .await
        .unwrap();
    assert_eq!(out["Status"], "SUCCESS");
    assert!(database_exists(&h, &db).await);

    let puts = cfn.requests();
    assert_eq!(puts.len(), 2);
    assert!(
        puts.iter()
            .all(|r| r.method == "PUT" && r.header("content-type").is_none()),
        "{puts:?}"
    );
    assert_eq!(puts[1].target, "/signed?X-Amz-Signature=def");
    let body: Value = serde_json::from_slice(&puts[1].body).unwrap();
    assert_eq!(body["Status"], "SUCCESS");
    assert_eq!(body["RequestId"], "e3a3d1f0-0000-4000-8000-000000000001");
    assert_eq!(body["LogicalResourceId"], "SchemaMigrations");
    assert_eq!(
        body["PhysicalResourceId"],
        format!("ooni-clickhouse-migrations-{db}")
    );
    assert!(body["Data"]["applied"].as_array().unwrap().len() >= 13);
    let deleted: Value = serde_json::from_slice(&puts[0].body).unwrap();
    assert_eq!(
        deleted["PhysicalResourceId"],
        "ooni-clickhouse-migrations-existing"
    );
}

#[tokio::test]
async fn migrate_answers_failed_when_clickhouse_is_unreachable_and_errors_when_the_answer_cannot_be_sent(
) {
    let h = Harness::start().await;
    let cfn = FakeHttp::start(|r| {
        if r.path() == "/broken" {
            Reply::text(500, "no")
        } else {
            Reply::text(200, "")
        }
    })
    .await;
    let ctx = &h.stack.ctx;
    let closed = ooni_adapters::ClickHouseConfig::new("http://127.0.0.1:1", "nowhere");
    let ctx = std::sync::Arc::new(ooni_platform::Context::new(
        ctx.http.clone(),
        ctx.aws.clone(),
        ctx.names.clone(),
        closed,
    ));
    let mut settings = h.settings.clone();
    settings.migrate_deadline = std::time::Duration::from_secs(5);
    let handler = migrate_handler(ctx, settings).await;

    let out = handler
        .run(cfn_event("Update", &cfn.url("/ok")))
        .await
        .unwrap();
    assert_eq!(out["Status"], "FAILED");
    let sent: Value = serde_json::from_slice(&cfn.requests()[0].body).unwrap();
    assert_eq!(sent["Status"], "FAILED");
    assert!(
        sent["Reason"].as_str().unwrap().contains("Migrate failed"),
        "{sent}"
    );

    assert!(handler
        .run(cfn_event("Delete", &cfn.url("/broken")))
        .await
        .is_err());
}

#[tokio::test]
async fn the_service_serves_every_jobs_function_it_implements_and_run_job_rejects_unknown_names() {
    let h = Harness::start().await;
    let service = ooni_jobs::JobsService::with_env(h.stack.ctx.clone(), h.env());
    let names = ooni_platform::Service::functions(&service);
    for name in &names {
        let spec = ooni_platform::functions::function(name).unwrap();
        assert_eq!(
            spec.binary,
            ooni_platform::functions::Binary::Jobs,
            "{name}"
        );
        assert!(matches!(
            ooni_platform::Service::build(&service, name).await.unwrap(),
            Some(ooni_platform::Handler::Job(_))
        ));
    }
    assert_eq!(names.len(), 8);
    assert!(ooni_platform::Service::build(&service, "Uploader")
        .await
        .unwrap()
        .is_none());
    let err = ooni_jobs::run_job(h.stack.ctx.clone(), "JobNope")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("JobFingerprints"), "{err}");

    // A scheduled EventBridge event runs the job (the event itself is ignored).
    h.serve(ASNMETA, Reply::text(200, asnmeta_doc(10, "Evt")));
    let Some(ooni_platform::Handler::Job(job)) =
        ooni_platform::Service::build(&service, "JobAsnmeta")
            .await
            .unwrap()
    else {
        panic!()
    };
    let event: Value =
        serde_json::from_str(include_str!("../../../events/JobAsnmeta/scheduled.json")).unwrap();
    assert_eq!(job.run(event).await.unwrap()["rows"], 20);
}

#[tokio::test]
async fn a_monthly_source_not_yet_published_falls_back_to_last_month() {
    let mut h = Harness::start().await;
    let (cc, asn) = dbs("IT");
    let now = chrono::Utc::now().date_naive();
    let first = chrono::Datelike::with_day(&now, 1).unwrap();
    let last_month = first.pred_opt().unwrap().format("%Y-%m").to_string();
    h.settings.geoip_cc_url = h.fake.url("/dbip-country-lite-{month}.mmdb.gz");
    h.serve(
        &format!("/dbip-country-lite-{last_month}.mmdb.gz"),
        Reply::bytes(200, gzip(&cc)),
    );
    h.serve(ASN_DB, Reply::bytes(200, asn));
    let report = h.run(Job::Geoip).await.unwrap();
    assert_eq!(report["probe"]["cc"], "IT");
    let asked: Vec<String> = h
        .fake
        .requests()
        .iter()
        .map(|r| r.path().to_owned())
        .filter(|p| p.contains("country"))
        .collect();
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(asked[1].ends_with(&format!("{last_month}.mmdb.gz")));
}

// ---- Backup and exports --------------------------------------------------------------------

/// A dump (zstd'd CSVWithNames) as records of column name → value.
fn csv_records(b: &[u8]) -> Vec<std::collections::HashMap<String, String>> {
    let text = zstd::decode_all(b).unwrap();
    csv::Reader::from_reader(&text[..])
        .deserialize()
        .map(|r| r.unwrap())
        .collect()
}

async fn seed_state_tables(h: &Harness) {
    h.ch()
        .query(
            "INSERT INTO url_priorities (sign, category_code, cc, domain, url, priority) VALUES \
             (1, 'NEWS', '*', '*', '*', 100), (1, 'NEWS', 'IT', '*', '*', 5), (-1, 'NEWS', 'IT', '*', '*', 5)",
        )
        .execute()
        .await
        .unwrap();
    h.ch()
        .query("INSERT INTO msmt_feedback (measurement_uid, account_id, status, comment) VALUES ('20260101000000.000000_IT_webconnectivity_0123456789abcdef', 'acc', 'ok', 'it''s fine')")
        .execute()
        .await
        .unwrap();
    h.serve(ARCHIVE, Reply::bytes(200, sample_archive()));
    h.run(Job::Citizenlab).await.unwrap();
}

#[tokio::test]
async fn a_daily_backup_with_manifest_and_public_exports_is_written_once_and_restores_a_table() {
    let h = Harness::start().await;
    seed_state_tables(&h).await;
    let report = h.run(Job::Backup).await.unwrap();
    assert_eq!(report["outcome"], "updated", "{report}");
    let date = report["date"].as_str().unwrap().to_owned();

    let backup = h
        .stack
        .ctx
        .object_store(ooni_platform::functions::Bucket::Backup);
    let manifest = ooni_jobs::backup::read_manifest(backup.as_ref(), &date)
        .await
        .unwrap();
    let tables: Vec<&str> = manifest.tables.iter().map(|t| t.table.as_str()).collect();
    assert_eq!(tables, ooni_jobs::backup::DEFAULT_BACKUP_TABLES);
    assert!(manifest.schema_versions.len() >= 13);
    let prio = manifest
        .tables
        .iter()
        .find(|t| t.table == "url_priorities")
        .unwrap();
    let live_rows = h.count("url_priorities").await;
    assert!(live_rows >= 1);
    assert_eq!(prio.rows, live_rows);
    assert!(prio.create.starts_with("CREATE TABLE"));
    let body = backup.get(&prio.key).await.unwrap().unwrap();
    assert_eq!(csv_records(&body).len() as u64, live_rows);
    assert_eq!(prio.bytes, body.len() as u64);
    let feedback = manifest
        .tables
        .iter()
        .find(|t| t.table == "msmt_feedback")
        .unwrap();
    assert_eq!(
        csv_records(&backup.get(&feedback.key).await.unwrap().unwrap())[0]["comment"],
        "it's fine"
    );

    let data = h
        .stack
        .ctx
        .object_store(ooni_platform::functions::Bucket::Data);
    let export = csv_records(
        &data
            .get("exports/citizenlab.csv.zst")
            .await
            .unwrap()
            .unwrap(),
    );
    assert_eq!(export.len(), 5);
    assert!(data
        .get("exports/fingerprints_dns.csv.zst")
        .await
        .unwrap()
        .is_some());

    let again = h.run(Job::Backup).await.unwrap();
    assert_eq!(
        (again["outcome"].as_str(), again["backup"].as_str()),
        (Some("unchanged"), Some("already complete"))
    );

    let restored = ooni_jobs::backup::restore_day(
        &h.ch(),
        backup.as_ref(),
        &date,
        &["url_priorities".into()],
        "_restored",
    )
    .await
    .unwrap();
    assert_eq!(
        restored,
        vec![("url_priorities_restored".to_owned(), live_rows)]
    );
    assert_eq!(
        ooni_jobs::swap::content_hash(&h.ch(), "url_priorities_restored")
            .await
            .unwrap(),
        ooni_jobs::swap::content_hash(&h.ch(), "url_priorities")
            .await
            .unwrap()
    );

    // The whole day, as the runbook's `ooni backup restore DATE` does it: every table of the manifest.
    let all = ooni_jobs::backup::restore_day(&h.ch(), backup.as_ref(), &date, &[], "_all")
        .await
        .unwrap();
    let names: Vec<&str> = all
        .iter()
        .map(|(t, _)| t.strip_suffix("_all").unwrap())
        .collect();
    assert_eq!(names, ooni_jobs::backup::DEFAULT_BACKUP_TABLES);
    for (table, rows) in &all {
        assert_eq!(h.count(table).await, *rows, "{table}");
    }
    assert!(ooni_jobs::backup::restore_day(
        &h.ch(),
        backup.as_ref(),
        &date,
        &["x; DROP".into()],
        "_r"
    )
    .await
    .is_err());
}

#[tokio::test]
async fn a_backup_killed_before_its_manifest_is_redone_by_the_rerun_and_a_corrupt_object_is_not_restored(
) {
    let h = Harness::start().await;
    seed_state_tables(&h).await;
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let first_key = format!("clickhouse/{date}/url_priorities.csv.zst");
    let first_key: &'static str = Box::leak(first_key.into_boxed_str());
    h.run_killed_at(Job::Backup, stop(Step::Stored, Some(first_key)))
        .await;
    let backup = h
        .stack
        .ctx
        .object_store(ooni_platform::functions::Bucket::Backup);
    assert!(backup
        .get(&ooni_jobs::backup::manifest_key(&date))
        .await
        .unwrap()
        .is_none());
    assert!(ooni_jobs::backup::read_manifest(backup.as_ref(), &date)
        .await
        .is_err());

    let report = h.run(Job::Backup).await.unwrap();
    assert_eq!(report["outcome"], "updated");
    assert_eq!(
        report["resumed"],
        json!(["url_priorities"]),
        "the table finished before the kill is not dumped again: {report}"
    );
    let manifest = ooni_jobs::backup::read_manifest(backup.as_ref(), &date)
        .await
        .unwrap();
    assert_eq!(
        manifest.tables.len(),
        ooni_jobs::backup::DEFAULT_BACKUP_TABLES.len()
    );
    assert!(manifest.tables.iter().map(|t| t.rows).sum::<u64>() > 0);

    backup
        .put(
            first_key,
            bytes::Bytes::from_static(b"tampered"),
            "application/zstd",
        )
        .await
        .unwrap();
    h.ch()
        .query("CREATE TABLE url_priorities_restored AS url_priorities")
        .execute()
        .await
        .unwrap();
    let err = ooni_jobs::backup::restore_table(
        &h.ch(),
        backup.as_ref(),
        &date,
        "url_priorities",
        "url_priorities_restored",
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
    assert_eq!(h.count("url_priorities_restored").await, 0);
}

// ---- Test helper rotation ------------------------------------------------------------------

mod rotation_fakes {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Debug, Clone)]
    pub struct FakeDroplet {
        pub id: u64,
        pub name: String,
        pub status: String,
        pub region: String,
        pub ipv4: String,
    }

    #[derive(Debug, Default)]
    pub struct Do {
        pub droplets: Vec<FakeDroplet>,
        pub records: Vec<(u64, String, String, String)>,
        pub next: u64,
        pub deleted: Vec<u64>,
        pub user_data: Vec<String>,
        /// challtestsrv's management API: TXT records are served there (the zone's DNS).
        pub dns_api: String,
        /// TXT records are accepted but not served (a DNS-01 validation fails).
        pub hide_txt: bool,
        pub txt_created: usize,
    }

    impl Do {
        fn droplet_json(d: &FakeDroplet) -> Value {
            let created = ooni_jobs::rotation::spawned_at(&d.name)
                .unwrap()
                .to_rfc3339();
            let v4 = if d.ipv4.is_empty() {
                json!([])
            } else {
                json!([{"ip_address": d.ipv4, "type": "public"}, {"ip_address": "10.0.0.9", "type": "private"}])
            };
            json!({"id": d.id, "name": d.name, "status": d.status, "created_at": created, "region": {"slug": d.region},
                   "networks": {"v4": v4, "v6": [{"ip_address": format!("2001:db8::{}", d.id), "type": "public"}]}, "tags": ["roaming-th"]})
        }

        pub fn handle(&mut self, r: &ooni_testkit::fake_http::Recorded) -> Reply {
            assert_eq!(r.header("authorization"), Some("Bearer do-token"));
            let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            match (r.method.as_str(), r.path()) {
                ("GET", "/v2/droplets") => {
                    assert!(r.target.contains("tag_name=roaming-th"));
                    Reply::json(
                        200,
                        &json!({"droplets": self.droplets.iter().map(Self::droplet_json).collect::<Vec<_>>()}),
                    )
                }
                ("POST", "/v2/droplets") => {
                    self.next += 1;
                    let d = FakeDroplet {
                        id: self.next,
                        name: body["name"].as_str().unwrap().into(),
                        status: "new".into(),
                        region: body["region"].as_str().unwrap().into(),
                        ipv4: String::new(),
                    };
                    assert_eq!(body["tags"], json!(["roaming-th"]));
                    self.user_data
                        .push(body["user_data"].as_str().unwrap().into());
                    let out = json!({"droplet": Self::droplet_json(&d)});
                    self.droplets.push(d);
                    Reply::json(202, &out)
                }
                ("DELETE", p) if p.starts_with("/v2/droplets/") => {
                    let id: u64 = p.rsplit('/').next().unwrap().parse().unwrap();
                    self.droplets.retain(|d| d.id != id);
                    self.deleted.push(id);
                    Reply::text(204, "")
                }
                ("GET", "/v2/domains/th.test/records") => {
                    let recs: Vec<Value> =
                        self.records.iter().map(|(id, t, n, d)| json!({"id": id, "type": t, "name": n, "data": d, "ttl": 60})).collect();
                    Reply::json(200, &json!({"domain_records": recs}))
                }
                ("POST", "/v2/domains/th.test/records") => {
                    self.next += 1;
                    let rec = (
                        self.next,
                        body["type"].as_str().unwrap().into(),
                        body["name"].as_str().unwrap().into(),
                        body["data"].as_str().unwrap().into(),
                    );
                    if rec.1 == "TXT" {
                        self.txt_created += 1;
                        if !self.hide_txt {
                            let set =
                                json!({"host": format!("{}.th.test.", rec.2), "value": rec.3});
                            let (status, _) = support::pebble::http_post(
                                &self.dns_api,
                                "/set-txt",
                                &set.to_string(),
                            );
                            assert_eq!(status, 200);
                        }
                    }
                    self.records.push(rec);
                    Reply::json(201, &json!({"domain_record": {"id": self.next}}))
                }
                ("DELETE", p) if p.starts_with("/v2/domains/th.test/records/") => {
                    let id: u64 = p.rsplit('/').next().unwrap().parse().unwrap();
                    for (_, kind, name, _) in self.records.iter().filter(|r| r.0 == id) {
                        if kind == "TXT" {
                            let clear = json!({"host": format!("{name}.th.test.")});
                            support::pebble::http_post(
                                &self.dns_api,
                                "/clear-txt",
                                &clear.to_string(),
                            );
                        }
                    }
                    self.records.retain(|r| r.0 != id);
                    Reply::text(204, "")
                }
                ("PUT", p) if p.starts_with("/v2/domains/th.test/records/") => {
                    let id: u64 = p.rsplit('/').next().unwrap().parse().unwrap();
                    for rec in self.records.iter_mut().filter(|r| r.0 == id) {
                        rec.3 = body["data"].as_str().unwrap().into();
                    }
                    Reply::json(200, &json!({}))
                }
                _ => Reply::not_found(),
            }
        }

        /// The droplet is up with `ip`.
        pub fn boot(&mut self, name_prefix: &str, ip: &str) {
            let d = self
                .droplets
                .iter_mut()
                .find(|d| d.name.starts_with(name_prefix) && d.status == "new")
                .unwrap();
            d.status = "active".into();
            d.ipv4 = ip.into();
        }

        pub fn txt_records(&self) -> usize {
            self.records.iter().filter(|r| r.1 == "TXT").count()
        }

        pub fn a_record(&self, rdn: &str) -> Option<String> {
            self.records
                .iter()
                .find(|r| r.1 == "A" && r.2 == rdn)
                .map(|r| r.3.clone())
        }
    }

    pub struct Rotation {
        pub h: Harness,
        pub cloud: FakeHttp,
        pub state: Arc<Mutex<Do>>,
        pub helper: FakeHttp,
        pub healthy: Arc<Mutex<bool>>,
        pub clock: Arc<ooni_adapters::FixedClock>,
        pub pebble: support::pebble::Pebble,
    }

    impl Rotation {
        pub async fn start() -> Rotation {
            let mut h = Harness::start().await;
            let pebble = support::pebble::Pebble::start().await;
            let state: Arc<Mutex<Do>> = Arc::new(Mutex::new(Do {
                dns_api: pebble.dns_api.clone(),
                ..Do::default()
            }));
            let s = state.clone();
            let cloud = FakeHttp::start(move |r| s.lock().unwrap().handle(r)).await;
            let healthy = Arc::new(Mutex::new(true));
            let ok = healthy.clone();
            let helper = FakeHttp::start(move |r| {
                let host_ok = r.header("host").is_some_and(|h| h.ends_with(".th.test"));
                if *ok.lock().unwrap() && host_ok && r.method == "POST" {
                    Reply::json(
                        200,
                        &json!({"dns": {}, "http_request": {}, "tcp_connect": {}}),
                    )
                } else {
                    Reply::text(503, "starting")
                }
            })
            .await;
            h.settings.rotation.dns_zone = "th.test".into();
            h.settings.rotation.active_count = 2;
            h.settings.rotation.max_age = chrono::Duration::hours(48);
            h.settings.rotation.drain = chrono::Duration::hours(4);
            h.settings.rotation.spawn_timeout = chrono::Duration::minutes(60);
            h.settings.rotation.regions = vec!["fra1".into(), "ams3".into()];
            let tls = &mut h.settings.rotation.tls;
            tls.acme_directory = pebble.directory.clone();
            tls.acme_ca_pem = Some(pebble.https_ca_pem.clone());
            tls.acme_email = Some("rotation@th.test".into());
            tls.propagation = std::time::Duration::ZERO;
            tls.timeout = std::time::Duration::from_secs(20);
            let config = h
                .stack
                .ctx
                .object_store(ooni_platform::functions::Bucket::Config);
            config
                .put(
                    "rotation/setup.sh",
                    bytes::Bytes::from_static(b"#!/bin/sh\napt-get install -y oohelperd\n"),
                    "text/x-shellscript",
                )
                .await
                .unwrap();
            let clock = Arc::new(ooni_adapters::FixedClock::new(
                "2026-11-20T10:00:00Z".parse().unwrap(),
            ));
            Rotation {
                h,
                cloud,
                state,
                helper,
                healthy,
                clock,
                pebble,
            }
        }

        pub fn env(
            &self,
            checkpoints: Option<Arc<dyn ooni_jobs::checkpoint::Checkpoints>>,
        ) -> ooni_jobs::JobEnv {
            let mut env = match checkpoints {
                Some(c) => self.h.env_with(c),
                None => self.h.env(),
            };
            env.cloud = Arc::new(ooni_jobs::rotation::DigitalOcean::with_token(
                &self.cloud.base_url,
                ooni_adapters::Secret::new("do-token"),
            ));
            env.helper_check = Arc::new(ooni_jobs::rotation::HttpHelperCheck::new(
                &format!("{}/", self.helper.base_url),
                None,
            ));
            env.clock = self.clock.clone();
            env
        }

        pub async fn run(&self) -> Value {
            ooni_jobs::job::run_named(&self.env(None), Job::TestHelperRotation)
                .await
                .unwrap()
        }

        pub fn advance(&self, hours: i64) {
            self.clock.advance(chrono::Duration::hours(hours));
        }

        pub fn cloud(&self) -> std::sync::MutexGuard<'_, Do> {
            self.state.lock().unwrap()
        }

        pub async fn stored_cert(&self) -> Option<ooni_jobs::rotation_tls::StoredCert> {
            ooni_jobs::rotation_tls::stored_certificate(&self.env(None), "th.test")
                .await
                .unwrap()
        }

        pub async fn rows(&self) -> Vec<ooni_jobs::rotation::Instance> {
            ooni_jobs::rotation::instances(&self.h.ch(), "th.test")
                .await
                .unwrap()
        }
    }

    pub fn actions(report: &Value) -> Vec<String> {
        report["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                format!(
                    "{} {}",
                    a["action"].as_str().unwrap(),
                    a["rdn"].as_str().unwrap_or("")
                )
            })
            .collect()
    }
}

use rotation_fakes::{actions, Rotation};

#[tokio::test]
async fn rotation_spawns_activates_replaces_drains_and_destroys_helpers_one_step_per_run() {
    let r = Rotation::start().await;
    assert_eq!(actions(&r.run().await), ["spawned 0"]);
    assert!(
        r.cloud().user_data[0].contains("oohelperd"),
        "the setup script is the first-boot user data"
    );
    let waiting = r.run().await;
    assert_eq!(
        (waiting["outcome"].as_str(), waiting["pending"].as_u64()),
        (Some("unchanged"), Some(1))
    );

    let config =
        r.h.stack
            .ctx
            .object_store(ooni_platform::functions::Bucket::Config);
    assert!(
        config.get("test-helpers.json").await.unwrap().is_none(),
        "nothing published before a helper is active"
    );
    r.cloud().boot("roaming-th-0-", "192.0.2.1");
    let first = r.run().await;
    assert_eq!(
        actions(&first),
        ["activated 0", "dns_created 0", "dns_created 0", "spawned 1"]
    );
    assert_eq!(first["published"], true);
    assert_eq!(r.cloud().a_record("0").as_deref(), Some("192.0.2.1"));
    let published = |bytes: bytes::Bytes| {
        let doc = ooni_probe::config_docs::TestHelpersDoc::parse(&bytes).unwrap();
        doc.helpers["web-connectivity"]
            .iter()
            .map(|h| format!("{} {}", h.kind, h.address))
            .collect::<Vec<_>>()
    };
    let wc = published(config.get("test-helpers.json").await.unwrap().unwrap());
    assert_eq!(wc[0], "https https://0.th.test");
    assert!(!wc.iter().any(|h| h.contains("1.th.test")));
    assert!(
        wc.iter().any(|h| h.starts_with("cloudfront ")),
        "fronted helpers are kept: {wc:?}"
    );
    r.advance(1);
    r.cloud().boot("roaming-th-1-", "192.0.2.2");
    assert_eq!(
        actions(&r.run().await),
        ["activated 1", "dns_created 1", "dns_created 1"]
    );
    let wc = published(config.get("test-helpers.json").await.unwrap().unwrap());
    assert_eq!(
        wc[..2],
        [
            "https https://0.th.test".to_owned(),
            "https https://1.th.test".to_owned()
        ]
    );
    let idle = r.run().await;
    assert_eq!(
        (idle["outcome"].as_str(), idle["published"].as_bool()),
        (Some("unchanged"), Some(false)),
        "two healthy young helpers: nothing to do"
    );

    r.advance(48);
    assert_eq!(
        actions(&r.run().await),
        ["spawned 0"],
        "the oldest is replaced"
    );
    r.cloud().boot("roaming-th-0-2026112", "192.0.2.3");
    assert_eq!(
        actions(&r.run().await),
        [
            "activated 0",
            "draining 0",
            "dns_updated 0",
            "dns_updated 0"
        ]
    );
    assert_eq!(r.cloud().a_record("0").as_deref(), Some("192.0.2.3"));
    let rows = r.rows().await;
    let draining: Vec<&str> = rows
        .iter()
        .filter(|i| i.draining_at > 0 && i.destroyed_at == 0)
        .map(|i| i.ipaddr.as_str())
        .collect();
    assert_eq!(draining, ["192.0.2.1"]);
    assert_eq!(rows.iter().filter(|i| i.is_active()).count(), 2);

    let first_id = r
        .cloud()
        .droplets
        .iter()
        .find(|d| d.ipv4 == "192.0.2.1")
        .unwrap()
        .id;
    r.advance(5);
    assert_eq!(
        actions(&r.run().await),
        ["destroyed 0"],
        "no second replacement right after the first"
    );
    assert_eq!(r.cloud().deleted, [first_id]);
    let rows = r.rows().await;
    assert!(rows
        .iter()
        .any(|i| i.ipaddr == "192.0.2.1" && i.destroyed_at > 0));
    r.advance(19);
    assert_eq!(
        actions(&r.run().await),
        ["spawned 1"],
        "rotations are staggered by max_age / active_count"
    );
}

#[tokio::test]
async fn a_rotation_killed_mid_activation_is_repaired_and_unhealthy_or_surplus_droplets_are_handled(
) {
    let r = Rotation::start().await;
    r.run().await;
    r.cloud().boot("roaming-th-0-", "192.0.2.1");
    r.run().await;
    r.cloud().boot("roaming-th-1-", "192.0.2.2");
    r.run().await;
    r.advance(49);
    r.run().await; // spawns the replacement of rdn 0
    r.cloud().boot("roaming-th-0-2026112", "192.0.2.3");
    let new_name = r
        .cloud()
        .droplets
        .iter()
        .find(|d| d.ipv4 == "192.0.2.3")
        .unwrap()
        .name
        .clone();
    let name: &'static str = Box::leak(new_name.into_boxed_str());
    let hook = std::sync::Arc::new(FailAt(stop(Step::Stored, Some(name))));
    assert!(
        ooni_jobs::job::run_named(&r.env(Some(hook)), Job::TestHelperRotation)
            .await
            .is_err()
    );
    assert_eq!(
        r.rows()
            .await
            .iter()
            .filter(|i| i.rdn == "0" && i.is_active())
            .count(),
        2,
        "killed before draining the old one"
    );
    assert_eq!(
        actions(&r.run().await),
        ["draining 0", "dns_updated 0", "dns_updated 0"]
    );
    assert_eq!(
        r.rows()
            .await
            .iter()
            .filter(|i| i.rdn == "0" && i.is_active())
            .count(),
        1
    );

    // A replacement that never answers the end-to-end check is abandoned after the timeout.
    r.advance(49);
    *r.healthy.lock().unwrap() = false;
    assert_eq!(actions(&r.run().await), ["destroyed 0", "spawned 1"]);
    r.cloud().boot("roaming-th-1-2026112", "192.0.2.4");
    assert_eq!(r.run().await["pending"], 1);
    r.advance(2);
    let report = r.run().await;
    assert_eq!(actions(&report)[0], "abandoned 1");
    *r.healthy.lock().unwrap() = true;

    // Too many droplets: the job refuses to touch anything.
    for n in 0..8 {
        let mut c = r.cloud();
        c.next += 1;
        let id = c.next;
        c.droplets.push(rotation_fakes::FakeDroplet {
            id,
            name: format!("roaming-th-9-2026112{n}000000"),
            status: "active".into(),
            region: "fra1".into(),
            ipv4: "192.0.2.99".into(),
        });
    }
    let before = r.rows().await;
    let err = ooni_jobs::job::run_named(&r.env(None), Job::TestHelperRotation)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("refusing to act"), "{err:#}");
    assert_eq!(r.rows().await, before);
}

/// Fails at one point (the run stops there).
struct FailAt(Stop);

#[async_trait::async_trait]
impl ooni_jobs::checkpoint::Checkpoints for FailAt {
    async fn reached(&self, p: ooni_jobs::checkpoint::Point<'_>) -> anyhow::Result<()> {
        if p.step == self.0.step && p.target == self.0.target {
            anyhow::bail!("injected crash");
        }
        Ok(())
    }
}

// ---- Test helper TLS certificate (real ACME: pebble + challtestsrv) -------------------------

/// Checks that `chain_pem` verifies against `root_pem` for `name` (now, server auth).
fn verify_chain(chain_pem: &str, root_pem: &str, name: &str) -> Result<(), String> {
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    let root = ooni_jobs::rotation_tls::chain_der(root_pem).remove(0);
    let root = CertificateDer::from(root);
    let anchor = webpki::anchor_from_trusted_cert(&root).map_err(|e| e.to_string())?;
    let chain: Vec<CertificateDer<'static>> = ooni_jobs::rotation_tls::chain_der(chain_pem)
        .into_iter()
        .map(CertificateDer::from)
        .collect();
    let leaf = webpki::EndEntityCert::try_from(&chain[0]).map_err(|e| e.to_string())?;
    let algs = rustls::crypto::ring::default_provider()
        .signature_verification_algorithms
        .all;
    leaf.verify_for_usage(
        algs,
        &[anchor],
        &chain[1..],
        UnixTime::now(),
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )
    .map_err(|e| e.to_string())?;
    leaf.verify_is_valid_for_subject_name(&ServerName::try_from(name).unwrap())
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn rotation_tls_the_first_spawn_obtains_a_wildcard_certificate_over_dns01_later_ones_reuse_it_until_renewal(
) {
    let r = Rotation::start().await;
    let first = r.run().await;
    assert_eq!(
        (actions(&first), first["certificate"].as_str()),
        (vec!["spawned 0".to_owned()], Some("issued"))
    );
    let cert = r.stored_cert().await.expect("stored in the config bucket");
    let root = r.pebble.issuing_root_pem().await;
    verify_chain(&cert.cert_pem, &root, "0.th.test").unwrap();
    verify_chain(&cert.cert_pem, &root, "7.th.test").unwrap();
    assert!(verify_chain(&cert.cert_pem, &root, "0.other.test").is_err());
    assert!(
        cert.not_after > ooni_adapters::Clock::now(r.clock.as_ref()) + chrono::Duration::days(30)
    );
    {
        let c = r.cloud();
        let ud = &c.user_data[0];
        assert!(ud.contains(&format!(
            "cat > /etc/ssl/private/th_fullchain.pem <<'OONI_TH_CERT'\n{}",
            cert.cert_pem
        )));
        assert!(ud.contains(&format!(
            "cat > /etc/ssl/private/th_privkey.pem <<'OONI_TH_KEY'\n{}",
            cert.key_pem
        )));
        assert!(ud.contains("#!/bin/sh\napt-get install -y oohelperd\n"));
        assert_eq!(
            (c.txt_created, c.txt_records()),
            (1, 0),
            "one DNS-01 record, removed after the order"
        );
    }

    r.cloud().boot("roaming-th-0-", "192.0.2.1");
    let second = r.run().await;
    assert_eq!(
        actions(&second),
        ["activated 0", "dns_created 0", "dns_created 0", "spawned 1"]
    );
    assert_eq!(second["certificate"], "stored");
    assert_eq!(r.cloud().txt_created, 1, "no new order");
    assert_eq!(r.stored_cert().await.unwrap(), cert);
    assert!(r.cloud().user_data[1].contains(&cert.cert_pem));

    // The stored certificate expires within renew_before: the next spawn renews it first.
    r.cloud().boot("roaming-th-1-", "192.0.2.2");
    let mut near = cert.clone();
    near.not_after = ooni_adapters::Clock::now(r.clock.as_ref()) + chrono::Duration::days(10);
    let config =
        r.h.stack
            .ctx
            .object_store(ooni_platform::functions::Bucket::Config);
    config
        .put(
            "rotation/tls/th.test.json",
            serde_json::to_vec(&near).unwrap().into(),
            "application/json",
        )
        .await
        .unwrap();
    r.advance(49);
    let third = r.run().await;
    assert_eq!(
        (actions(&third), third["certificate"].as_str()),
        (
            vec![
                "activated 1".to_owned(),
                "dns_created 1".into(),
                "dns_created 1".into(),
                "spawned 0".into()
            ],
            Some("issued")
        )
    );
    let renewed = r.stored_cert().await.unwrap();
    assert_ne!(renewed.key_pem, cert.key_pem);
    verify_chain(&renewed.cert_pem, &root, "0.th.test").unwrap();
    assert!(r.cloud().user_data[2].contains(&renewed.cert_pem));
    let c = r.cloud();
    // One new DNS-01 record for the renewal — or none when the CA reused the account's still
    // valid authorization (RFC 8555 §7.1.4 allows it) — and nothing left in the zone.
    assert!(
        (1..=2).contains(&c.txt_created) && c.txt_records() == 0,
        "txt_created {}, records {:?}",
        c.txt_created,
        c.records
    );
}

#[tokio::test]
async fn rotation_tls_a_failed_dns01_validation_spawns_nothing_and_removes_its_record() {
    let r = Rotation::start().await;
    r.cloud().hide_txt = true;
    let err = ooni_jobs::job::run_named(&r.env(None), Job::TestHelperRotation)
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("TLS certificate step failed"),
        "{err:#}"
    );
    {
        let c = r.cloud();
        assert!(c.droplets.is_empty() && c.user_data.is_empty());
        assert_eq!(
            (c.txt_created, c.txt_records()),
            (1, 0),
            "the challenge record is removed after a failure too"
        );
    }
    assert!(r.stored_cert().await.is_none());
    assert!(r.rows().await.is_empty());
    let config =
        r.h.stack
            .ctx
            .object_store(ooni_platform::functions::Bucket::Config);
    assert!(config.get("test-helpers.json").await.unwrap().is_none());

    // Once the zone serves the record, the next run gets the certificate and spawns.
    r.cloud().hide_txt = false;
    let report = r.run().await;
    assert_eq!(
        (actions(&report), report["certificate"].as_str()),
        (vec!["spawned 0".to_owned()], Some("issued"))
    );
    assert_eq!(r.cloud().txt_records(), 0);
    assert!(r.stored_cert().await.is_some());
}

#[tokio::test]
async fn rotation_tls_a_run_killed_mid_order_or_before_the_spawn_is_finished_by_the_rerun() {
    let r = Rotation::start().await;
    let kill_at = |target: &'static str| {
        support::run_killed_with(
            |hook| r.env(Some(hook)),
            Job::TestHelperRotation,
            stop(Step::Stored, Some(target)),
        )
    };
    kill_at("_acme-challenge").await;
    assert_eq!(
        r.cloud().txt_records(),
        1,
        "killed with its challenge record published"
    );
    assert!(r.stored_cert().await.is_none());
    kill_at("rotation/tls/th.test.json").await;
    assert_eq!(
        r.cloud().txt_records(),
        0,
        "the rerun removed the stale record and its own"
    );
    let cert = r.stored_cert().await.expect("stored before the kill");
    assert!(r.cloud().droplets.is_empty(), "killed before the spawn");
    let report = r.run().await;
    assert_eq!(
        (actions(&report), report["certificate"].as_str()),
        (vec!["spawned 0".to_owned()], Some("stored"))
    );
    assert_eq!(r.cloud().txt_created, 2, "no third order");
    assert!(r.cloud().user_data[0].contains(&cert.cert_pem));
}

/// A TLS "helper" on 127.0.0.1 serving `cert` and answering every request like `oohelperd`.
async fn serve_tls_helper(cert: &ooni_jobs::rotation_tls::StoredCert) -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let chain: Vec<CertificateDer<'static>> = ooni_jobs::rotation_tls::chain_der(&cert.cert_pem)
        .into_iter()
        .map(CertificateDer::from)
        .collect();
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let Ok(n) = tls.read(&mut buf).await else {
                        return;
                    };
                    req.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&req).to_ascii_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len: usize = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if req.len() >= end + 4 + len {
                            break;
                        }
                    }
                    if n == 0 {
                        return;
                    }
                }
                let body = r#"{"dns": {}, "http_request": {}, "tcp_connect": {}}"#;
                let resp = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                let _written = tls.write_all(resp.as_bytes()).await;
                let _closed = tls.shutdown().await;
            });
        }
    });
    port
}

#[tokio::test]
async fn rotation_tls_the_end_to_end_check_requires_the_stored_certificate_for_the_helper_name() {
    let r = Rotation::start().await;
    r.run().await;
    let cert = r.stored_cert().await.unwrap();
    let root = r.pebble.issuing_root_pem().await;
    let port = serve_tls_helper(&cert).await;
    let template = format!("https://{{fqdn}}:{port}/");
    let check = ooni_jobs::rotation::HttpHelperCheck::new(&template, Some(&root));
    use ooni_jobs::rotation::HelperCheck;
    let lo = IpAddr::from([127, 0, 0, 1]);
    assert!(check.healthy(lo, "0.th.test", &cert.cert_pem).await);
    assert!(
        !check.healthy(lo, "0.other.test", &cert.cert_pem).await,
        "a name the certificate does not cover"
    );
    let key = rcgen::KeyPair::generate().unwrap();
    let other = rcgen::CertificateParams::new(vec!["*.th.test".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap()
        .pem();
    assert!(
        !check.healthy(lo, "0.th.test", &other).await,
        "a valid chain, but not the certificate the helper was given"
    );
    let untrusting = ooni_jobs::rotation::HttpHelperCheck::new(&template, None);
    assert!(
        !untrusting.healthy(lo, "0.th.test", &cert.cert_pem).await,
        "the chain must verify against the configured roots"
    );
}
