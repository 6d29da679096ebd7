//! Black-box test: the load generator against the probe service on the dev server, backed by
//! the REAL local ClickHouse and AWS emulator (a private stack). No scorer runs here, so the
//! test checks the incoming bucket, not the `fastpath` table.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ooni_domain::envelope::incoming_object_key;
use ooni_domain::MeasurementUid;
use ooni_loadgen::{run, Limit, LoadConfig};
use ooni_platform::functions::Bucket;
use ooni_probe::ProbeService;
use ooni_testkit::TestStack;
use std::collections::HashSet;
use std::sync::Arc;

#[tokio::test]
async fn fifty_submissions_from_four_probes_yield_fifty_uids_each_stored_in_the_incoming_bucket() {
    let stack = TestStack::start().await;
    let server = stack
        .serve(Arc::new(ProbeService::new(stack.ctx.clone())))
        .await;

    let mut cfg = LoadConfig::new(&server.base_url);
    cfg.probes = 4;
    cfg.limit = Limit::Count(50);
    cfg.measurements_per_report = 3;
    let report = run(cfg).await.unwrap();

    assert!(report.errors.is_empty(), "{report}");
    assert_eq!(report.attempted, 50, "{report}");
    assert_eq!(report.accepted, 50, "{report}");
    assert_eq!(report.uids.len(), 50);
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.submit_latency.count, 50);
    assert!(
        report.check_in_latency.count >= 1 && report.open_latency.count >= 4,
        "{report}"
    );
    assert!(report.submissions_per_sec > 0.0);
    assert!(report.clickhouse.is_none());

    let unique: HashSet<&String> = report.uids.iter().collect();
    assert_eq!(unique.len(), 50, "uids are fresh");
    let incoming = stack.ctx.object_store(Bucket::Incoming);
    let mut test_names = HashSet::new();
    for uid in &report.uids {
        let uid = MeasurementUid::parse(uid).unwrap();
        test_names.insert(uid.test_name().to_owned());
        let body = incoming.get(&incoming_object_key(&uid)).await.unwrap();
        let body = body.unwrap_or_else(|| panic!("{} is not in the incoming bucket", uid.as_str()));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["is_verified"], "u");
        assert_eq!(v["content"]["probe_cc"].as_str(), Some(uid.cc()));
        let rid = v["content"]["report_id"].as_str().unwrap();
        assert!(
            rid.contains(&format!("_{}_", uid.test_name())),
            "{rid} vs {}",
            uid.as_str()
        );
    }
    assert!(test_names.len() >= 5, "varied samples: {test_names:?}");
}

#[tokio::test]
async fn a_server_that_is_down_ends_the_run_with_connect_errors_instead_of_hanging() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let mut cfg = LoadConfig::new(url);
    cfg.probes = 2;
    cfg.limit = Limit::Count(10);
    let report = tokio::time::timeout(std::time::Duration::from_secs(30), run(cfg))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.accepted, 0);
    assert_eq!(report.errors.0.get("probe gave up"), Some(&2), "{report}");
    assert!(
        report
            .errors
            .0
            .get("check-in connect")
            .copied()
            .unwrap_or(0)
            >= 20,
        "{report}"
    );
    assert!(!report.is_clean());
}
