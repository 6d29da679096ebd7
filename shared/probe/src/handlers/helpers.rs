//! `GET /api/v1/test-helpers`, `GET /api/v1/collectors` and `POST /bouncer/net-tests`.

use crate::config_docs::TestHelpersDoc;
use crate::state::State;
use lambda_http::Request;
use ooni_domain::checkin::{web_connectivity_helpers, TestHelper};
use ooni_platform::request::body_bytes;
use ooni_platform::response::json;
use ooni_platform::{ApiError, Cache, HttpResult};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

/// The helper lists one client gets: `web-connectivity` with its `https` helpers shuffled and
/// the canary placed per the canary rule, every other kind as configured.
pub fn render_test_helpers<R: rand::Rng + ?Sized>(
    doc: &TestHelpersDoc,
    client_ip: Option<IpAddr>,
    rng: &mut R,
) -> BTreeMap<String, Vec<TestHelper>> {
    doc.helpers
        .iter()
        .map(|(kind, list)| {
            if kind == "web-connectivity" {
                let (https, fronted): (Vec<TestHelper>, Vec<TestHelper>) =
                    list.iter().cloned().partition(|h| h.kind == "https");
                (
                    kind.clone(),
                    web_connectivity_helpers(&https, &fronted, doc.canary.as_ref(), client_ip, rng),
                )
            } else {
                (kind.clone(), list.clone())
            }
        })
        .collect()
}

/// `GET /api/v1/test-helpers`.
pub async fn test_helpers(s: Arc<State>, req: Request) -> HttpResult {
    let doc = s.test_helpers().await;
    let out = render_test_helpers(&doc, s.client_ip(&req), &mut rand::rng());
    json(&out, Cache::NoCache)
}

/// Upstream's six collectors (the same three, twice).
pub fn collectors_list() -> serde_json::Value {
    let onion = json!({"address": "httpo://guegdifjy7bjpequ.onion", "type": "onion"});
    let https = json!({"address": "https://ams-pg.ooni.org:443", "type": "https"});
    let front = json!({
        "address": "https://dkyhjv0wpi2dk.cloudfront.net",
        "front": "dkyhjv0wpi2dk.cloudfront.net",
        "type": "cloudfront",
    });
    json!([onion, https, front, onion, https, front])
}

/// `GET /api/v1/collectors`.
pub async fn collectors(_s: Arc<State>, _req: Request) -> HttpResult {
    json(&collectors_list(), Cache::MaxAge(3600))
}

#[derive(Deserialize)]
struct NetTest {
    name: String,
    version: String,
}

#[derive(Deserialize)]
struct NetTestsRequest {
    #[serde(rename = "net-tests")]
    net_tests: Vec<NetTest>,
}

/// The bouncer answer for the first requested test.
pub fn bouncer_answer(name: &str, version: &str) -> serde_json::Value {
    json!({
        "net-tests": [{
            "collector": "httpo://guegdifjy7bjpequ.onion",
            "collector-alternate": [
                {"type": "https", "address": "https://ams-pg.ooni.org"},
                {
                    "front": "dkyhjv0wpi2dk.cloudfront.net",
                    "type": "cloudfront",
                    "address": "https://dkyhjv0wpi2dk.cloudfront.net",
                },
            ],
            "input-hashes": null,
            "name": name,
            "test-helpers": {
                "tcp-echo": "37.218.241.93",
                "http-return-json-headers": "http://37.218.241.94:80",
                "web-connectivity": "httpo://y3zq5fwelrzkkv3s.onion",
            },
            "test-helpers-alternate": {
                "web-connectivity": [
                    {"type": "https", "address": "https://wcth.ooni.io"},
                    {
                        "front": "d33d1gs9kpq1c5.cloudfront.net",
                        "type": "cloudfront",
                        "address": "https://d33d1gs9kpq1c5.cloudfront.net",
                    },
                ],
            },
            "version": version,
        }]
    })
}

/// `POST /bouncer/net-tests`: static, echoing the first test's name and version. A missing or
/// malformed body, or an empty `net-tests`, is 400 `{"detail": ...}`.
pub async fn bouncer_net_tests(_s: Arc<State>, req: Request) -> HttpResult {
    let body = body_bytes(&req);
    if body.is_empty() {
        return Err(ApiError::bad_request_detail("missing request body"));
    }
    let r: NetTestsRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request_detail(format!("invalid request: {e}")))?;
    let first = r
        .net_tests
        .first()
        .ok_or_else(|| ApiError::bad_request_detail("invalid net-tests request"))?;
    json(&bouncer_answer(&first.name, &first.version), Cache::NoCache)
}
