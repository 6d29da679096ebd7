//! `POST /api/v1/check-in` (and the legacy alias `POST /api/_/check-in`).
//!
//! GeoIP of the client address (trusted proxy hops only) gives the answer's `probe_cc`,
//! `probe_asn` and `probe_network_name`; the probe's own CC/ASN are replaced by them only when
//! the probe sent `ZZ` and `AS0`, as upstream. The web_connectivity URLs come from the
//! prioritisation algorithm over ClickHouse, or from the random global sample when ClickHouse
//! fails (upstream answered no URLs then). Feature flags come from the flag document, test
//! helpers from the helper document, and each of the 21 tests gets a report id.

use crate::handlers::helpers::render_test_helpers;
use crate::prio_cache::PrioritizedList;
use crate::state::State;
use lambda_http::Request;
use ooni_domain::checkin::{checkin_report_ids, url_limit, utc_time, FlagContext, TestHelper};
use ooni_domain::client_addr::quota_bucket;
use ooni_domain::prio::TestListItem;
use ooni_platform::request::json_body_422;
use ooni_platform::response::json;
use ooni_platform::{ApiError, Cache, HttpResult};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(untagged)]
enum CategoryCodes {
    List(Vec<String>),
    Comma(String),
}

#[derive(Deserialize, Default)]
struct WebConnectivityConf {
    #[serde(default)]
    category_codes: Option<CategoryCodes>,
}

#[derive(Deserialize)]
#[serde(default)]
struct CheckInRequest {
    run_type: String,
    probe_cc: String,
    probe_asn: String,
    charging: bool,
    software_name: String,
    software_version: String,
    web_connectivity: Option<WebConnectivityConf>,
}

impl Default for CheckInRequest {
    fn default() -> Self {
        CheckInRequest {
            run_type: "timed".into(),
            probe_cc: "ZZ".into(),
            probe_asn: "AS0".into(),
            charging: false,
            software_name: String::new(),
            software_version: String::new(),
            web_connectivity: None,
        }
    }
}

#[derive(Serialize)]
struct Conf {
    features: BTreeMap<String, bool>,
    test_helpers: BTreeMap<String, Vec<TestHelper>>,
}

#[derive(Serialize)]
struct TestConf<'a> {
    report_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    urls: Option<Vec<TestListItem<'a>>>,
}

#[derive(Serialize)]
struct CheckInResponse<'a> {
    v: u8,
    probe_cc: String,
    probe_asn: String,
    probe_network_name: Option<String>,
    utc_time: String,
    conf: Conf,
    tests: BTreeMap<&'static str, TestConf<'a>>,
}

/// The category filter: a list, or a comma-separated string; every code alphabetic.
fn category_codes(conf: Option<WebConnectivityConf>) -> Result<Vec<String>, ApiError> {
    let codes = match conf.and_then(|c| c.category_codes) {
        None => Vec::new(),
        Some(CategoryCodes::List(v)) => v,
        Some(CategoryCodes::Comma(s)) => s
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect(),
    };
    if let Some(bad) = codes
        .iter()
        .find(|c| c.is_empty() || !c.chars().all(|ch| ch.is_ascii_alphabetic()))
    {
        return Err(ApiError::unprocessable(format!(
            "invalid category code {bad:?}"
        )));
    }
    Ok(codes)
}

/// `AS123` (any case) → 123.
fn parse_asn(asn: &str) -> Option<u32> {
    let digits = asn
        .get(..2)
        .filter(|p| p.eq_ignore_ascii_case("AS"))
        .and(asn.get(2..))?;
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The prioritised list of (cc, asn), or `None` when the database fails (then: failover).
async fn fetch_list(s: &State, cc: &str, asn: u32) -> Option<Arc<PrioritizedList>> {
    match s.prio.get(s.ports.db.as_ref(), cc, asn).await {
        Ok(list) => Some(list),
        Err(e) => {
            tracing::error!(error = %e, counter = "test_list_failover", "prioritisation query failed; using the failover list");
            None
        }
    }
}

/// `POST /api/v1/check-in`.
pub async fn check_in(s: Arc<State>, req: Request) -> HttpResult {
    let body: CheckInRequest = json_body_422(&req)?;
    let client_ip = s.client_ip(&req);
    let geo = match client_ip {
        Some(ip) => s.geoip().await.lookup(ip),
        None => Default::default(),
    };
    let db_cc = geo.cc.clone().unwrap_or_else(|| "ZZ".into());
    let db_asn = format!("AS{}", geo.asn.unwrap_or(0));

    let mut probe_cc = body.probe_cc.to_uppercase();
    let mut probe_asn = body.probe_asn.clone();
    if probe_cc != "ZZ" && probe_cc != db_cc {
        tracing::info!(
            counter = "geoip_cc_differs",
            "probe_cc differs from the GeoIP country"
        );
    }
    if probe_asn != "AS0" && probe_asn != db_asn {
        tracing::info!(
            counter = "geoip_asn_differs",
            "probe_asn differs from the GeoIP ASN"
        );
    }
    // Keep the probe's values unless it sent none: a circumvention tool may make the address
    // we see differ from the probe's network.
    if probe_cc == "ZZ" && probe_asn == "AS0" {
        probe_cc = db_cc.clone();
        probe_asn = db_asn.clone();
    }
    let asn = parse_asn(&probe_asn)
        .ok_or_else(|| ApiError::unprocessable(format!("invalid probe_asn {probe_asn:?}")))?;
    if probe_cc.len() != 2 || !probe_cc.bytes().all(|c| c.is_ascii_alphabetic()) {
        return Err(ApiError::unprocessable(format!(
            "invalid probe_cc {probe_cc:?}"
        )));
    }
    let codes = category_codes(body.web_connectivity)?;
    let limit = url_limit(&body.run_type, body.charging) as usize;

    // Every await first: the thread-local RNG below must not live across one.
    let list = fetch_list(&s, &probe_cc, asn).await;
    let failover = match list {
        Some(_) => None,
        None => Some(s.failover_list().await),
    };
    let client_key = client_ip
        .map(|ip| quota_bucket(ip).to_string())
        .unwrap_or_default();
    let features = s.feature_flags().await.evaluate(&FlagContext {
        probe_cc: &probe_cc,
        probe_asn: asn,
        software_name: &body.software_name,
        software_version: &body.software_version,
        client_key: &client_key,
    });
    let helpers = s.test_helpers().await;

    let mut rng = rand::rng();
    let urls = match (&list, &failover) {
        (Some(list), _) => list.select(&codes, limit, false),
        (None, Some(f)) => f.sample(&codes, limit, &mut rng),
        (None, None) => Vec::new(),
    };
    let test_helpers = render_test_helpers(&helpers, client_ip, &mut rng);

    let now = s.ports.clock.now();
    let mut urls = Some(urls);
    let tests = checkin_report_ids(now, &probe_cc, asn, &s.settings.collector_id, &mut rng)
        .into_iter()
        .map(|(tn, report_id)| {
            let urls = if tn == "web_connectivity" {
                urls.take()
            } else {
                None
            };
            (tn, TestConf { report_id, urls })
        })
        .collect();
    tracing::debug!(
        run_type = %body.run_type,
        charging = body.charging,
        software_name = %body.software_name,
        software_version = %body.software_version,
        %probe_cc,
        "check-in"
    );
    json(
        &CheckInResponse {
            v: 1,
            probe_cc: db_cc,
            probe_asn: db_asn,
            probe_network_name: geo.as_name,
            utc_time: utc_time(now),
            conf: Conf {
                features,
                test_helpers,
            },
            tests,
        },
        Cache::NoCache,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asns_need_the_as_prefix_and_digits() {
        assert_eq!(parse_asn("AS30722"), Some(30722));
        assert_eq!(parse_asn("as1"), Some(1));
        assert_eq!(parse_asn("AS"), None);
        assert_eq!(parse_asn("30722"), None);
        assert_eq!(parse_asn("AS-1"), None);
        assert_eq!(parse_asn("ASé"), None);
    }

    #[test]
    fn category_codes_come_as_a_list_or_a_comma_string_and_must_be_alphabetic() {
        let list = WebConnectivityConf {
            category_codes: Some(CategoryCodes::List(vec!["NEWS".into(), "HUMR".into()])),
        };
        assert_eq!(category_codes(Some(list)).unwrap(), ["NEWS", "HUMR"]);
        let comma = WebConnectivityConf {
            category_codes: Some(CategoryCodes::Comma("NEWS,HUMR,".into())),
        };
        assert_eq!(category_codes(Some(comma)).unwrap(), ["NEWS", "HUMR"]);
        assert!(category_codes(None).unwrap().is_empty());
        let bad = WebConnectivityConf {
            category_codes: Some(CategoryCodes::List(vec!["NE WS".into()])),
        };
        assert_eq!(category_codes(Some(bad)).unwrap_err().status, 422);
    }
}
