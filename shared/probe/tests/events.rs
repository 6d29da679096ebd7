//! The sample API Gateway events of the probe functions (`events/<Function>/*.json`) run
//! through their real handlers (over fakes) and get the answer they are meant to show.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use ooni_platform::dispatch::dispatch_http;
use ooni_platform::{Handler, Service};
use ooni_probe::service::FUNCTIONS;
use std::path::PathBuf;
use support::*;

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

/// The status each sample is expected to get over the fakes.
fn expected_status(function: &str, case: &str) -> u16 {
    match (function, case) {
        // The sample token is well-formed but not signed with the test key.
        ("TorTargets" | "PsiphonConfig", _) => 401,
        _ => 200,
    }
}

#[tokio::test]
async fn every_probe_function_has_sample_events_that_its_handler_answers() {
    let (svc, fakes) = fake_service(settings());
    let vpn = serde_json::json!({"config": {"ca": "CA", "cert": "CERT", "key": "KEY"}, "date_updated": "2024-03-01T00:00:00Z",
        "endpoints": [{"address": "1.2.3.4:1194", "transport": "tcp"}]});
    fakes.config.insert(
        "vpn/riseupvpn.json",
        serde_json::to_vec(&vpn).unwrap(),
        "application/json",
    );
    for function in FUNCTIONS {
        let dir = events_dir().join(function);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("events/{function}/ is missing: {e}"))
            .map(|f| f.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "events/{function}/ has no sample");
        for path in files {
            let case = path.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let req = lambda_http::request::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let Some(Handler::Http(h)) = svc.build(function).await.unwrap() else {
                panic!("{function} not built")
            };
            let resp = dispatch_http(h, function, req).await;
            assert_eq!(
                resp.status().as_u16(),
                expected_status(function, &case),
                "{}",
                path.display()
            );
        }
    }
    assert!(
        !fakes.queue.sent().is_empty(),
        "the submit samples were enqueued"
    );
}
