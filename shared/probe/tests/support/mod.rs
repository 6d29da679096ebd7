//! Shared test support: fixtures, a state over in-memory fakes, in-process dispatch of a
//! request through the same router and dispatcher as the dev server, and measurement bodies.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub use ooni_testkit::mmdb;

use ooni_adapters::{FixedClock, MemoryObjectStore, MemoryQueue};
use ooni_domain::prio::{CitizenlabEntry, PrioRule};
use ooni_platform::devserver::api_gateway_event;
use ooni_platform::dispatch::dispatch_http;
use ooni_platform::functions::Method;
use ooni_platform::router::{RouteMatch, Router};
use ooni_platform::{Handler, Service};
use ooni_probe::db::MemoryTestListDb;
use ooni_probe::geoip::GeoIp;
use ooni_probe::settings::Settings;
use ooni_probe::{Ports, ProbeService, State};
use std::sync::Arc;

pub use ooni_testkit::fixtures::CITIZENLAB_SQL;
pub const URL_PRIORITIES_JSON: &str = include_str!("../fixtures/url_priorities_us.json");
pub const TOR_TARGETS_JSON: &str = include_str!("../fixtures/tor-targets.json");
pub const PSIPHON_JSON: &str = include_str!("../fixtures/psiphon-config.json");
pub const WEB_CONNECTIVITY_BODY: &[u8] =
    include_bytes!("../fixtures/web_connectivity_it_30722.post.json");
pub const WEB_CONNECTIVITY_RID: &str =
    "20240214T090617Z_webconnectivity_IT_30722_n1_1IvUiXNWHooB5rmD";

pub const UID_RE_HELP: &str = r"\d{14}\.\d{6}_[A-Z]{2}_[a-z0-9]+_[0-9a-f]{16}";

/// Whether `s` matches `\d{14}\.\d{6}_{cc}_{tn}_[0-9a-f]{16}`.
pub fn is_uid(s: &str, cc: &str, tn: &str) -> bool {
    let b = s.as_bytes();
    let head_ok = b.len() > 21
        && b[..14].iter().all(u8::is_ascii_digit)
        && b[14] == b'.'
        && b[15..21].iter().all(u8::is_ascii_digit);
    let tail = format!("_{cc}_{tn}_");
    head_ok
        && s[21..].starts_with(&tail)
        && s.len() == 21 + tail.len() + 16
        && s[21 + tail.len()..]
            .bytes()
            .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// The `(domain, url, cc, category_code)` tuples of the citizenlab fixture.
pub fn citizenlab_rows() -> Vec<(String, String, String, String)> {
    CITIZENLAB_SQL
        .lines()
        .filter_map(|l| {
            let values = l
                .split_once("VALUES")?
                .1
                .trim()
                .trim_end_matches(';')
                .trim();
            let inner = values.strip_prefix('(')?.strip_suffix(')')?;
            let parts: Vec<String> = inner
                .split("',")
                .map(|p| p.trim().trim_matches('\'').to_owned())
                .collect();
            (parts.len() == 4).then(|| {
                (
                    parts[0].clone(),
                    parts[1].clone(),
                    parts[2].clone(),
                    parts[3].clone(),
                )
            })
        })
        .collect()
}

pub fn citizenlab_entries() -> Vec<CitizenlabEntry> {
    citizenlab_rows()
        .into_iter()
        .map(|(domain, url, cc, category_code)| CitizenlabEntry {
            category_code,
            domain,
            url,
            cc,
            msmt_cnt: 0,
        })
        .collect()
}

pub fn prio_rules() -> Vec<PrioRule> {
    let v: Vec<serde_json::Value> = serde_json::from_str(URL_PRIORITIES_JSON).unwrap();
    v.into_iter()
        .map(|r| PrioRule {
            category_code: r["category_code"].as_str().unwrap().into(),
            cc: r["cc"].as_str().unwrap().into(),
            domain: r["domain"].as_str().unwrap().into(),
            url: r["url"].as_str().unwrap().into(),
            priority: r["priority"].as_i64().unwrap(),
        })
        .collect()
}

/// Loads the citizenlab fixture into ClickHouse in one INSERT.
pub async fn load_citizenlab(ch: &clickhouse::Client) {
    let esc = |s: &str| s.replace('\\', "\\\\").replace('\'', "\\'");
    let values: Vec<String> = citizenlab_rows()
        .iter()
        .map(|(d, u, cc, cat)| format!("('{}','{}','{}','{}')", esc(d), esc(u), esc(cc), esc(cat)))
        .collect();
    let sql = format!(
        "INSERT INTO citizenlab (domain, url, cc, category_code) VALUES {}",
        values.join(",")
    );
    ch.query(&sql.replace('?', "??")).execute().await.unwrap();
}

/// Inserts prioritisation rules with the given sign.
pub async fn insert_rules(ch: &clickhouse::Client, rules: &[PrioRule], sign: i8) {
    let values: Vec<String> = rules
        .iter()
        .map(|r| {
            format!(
                "({sign},'{}','{}','{}','{}',{})",
                r.category_code, r.cc, r.domain, r.url, r.priority
            )
        })
        .collect();
    let sql = format!(
        "INSERT INTO url_priorities (sign, category_code, cc, domain, url, priority) VALUES {}",
        values.join(",")
    );
    ch.query(&sql.replace('?', "??")).execute().await.unwrap();
}

/// A submission body whose content claims `cc`, `asn` and `test_name`.
pub fn measurement(cc: &str, asn: &str, test_name: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "format": "json",
        "content": {
            "probe_cc": cc,
            "probe_asn": asn,
            "test_name": test_name,
            "software_name": "miniooni",
            "software_version": "3.20.0",
            "test_keys": {},
        }
    }))
    .unwrap()
}

/// The in-memory fakes behind a [`State`].
pub struct Fakes {
    pub config: MemoryObjectStore,
    pub incoming: MemoryObjectStore,
    pub queue: MemoryQueue,
    pub db: MemoryTestListDb,
    pub clock: Arc<FixedClock>,
}

pub fn jwt_keys() -> ooni_platform::auth::JwtKeys {
    ooni_platform::auth::JwtKeys::new(
        &ooni_platform::config::Secret::new("fake-probe-key-0123456789"),
        &ooni_platform::config::Secret::new("fake-user-key-0123456789"),
    )
    .unwrap()
}

/// A service over fakes: the citizenlab fixture and rules, the sample GeoIP databases, one
/// trusted proxy hop.
pub fn fake_service(settings: Settings) -> (ProbeService, Fakes) {
    let fakes = Fakes {
        config: MemoryObjectStore::new(),
        incoming: MemoryObjectStore::new(),
        queue: MemoryQueue::new(),
        db: MemoryTestListDb::new(citizenlab_entries(), prio_rules()),
        clock: Arc::new(FixedClock::new(chrono::Utc::now())),
    };
    let ports = Ports {
        config: Arc::new(fakes.config.clone()),
        incoming: Arc::new(fakes.incoming.clone()),
        queue: Some(Arc::new(fakes.queue.clone())),
        db: Arc::new(fakes.db.clone()),
        clock: fakes.clock.clone(),
    };
    let geoip =
        GeoIp::from_bytes(Some(mmdb::sample_country_db()), Some(mmdb::sample_asn_db())).unwrap();
    let state = State::new(settings, ports, Some(jwt_keys()), None).with_geoip(geoip);
    (ProbeService::with_state(Arc::new(state)), fakes)
}

pub fn settings() -> Settings {
    Settings {
        trusted_proxy_hops: 1,
        ..Settings::default()
    }
}

/// A response as the client sees it.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Routes and dispatches one request in-process, the way the dev server does. `peer` is the
/// TCP peer (API Gateway's `sourceIp`).
pub async fn call(
    service: &ProbeService,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let m = Method::parse(method).unwrap();
    let path = uri.split('?').next().unwrap();
    let RouteMatch::Found { route, params } = Router::default().find(m, path) else {
        panic!("no route for {method} {path}");
    };
    let mut b = http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let (parts, ()) = b.body(()).unwrap().into_parts();
    let peer = "130.176.0.1:443".parse().unwrap();
    let event = api_gateway_event(&parts, body, peer, route.method, route.path, params);
    let req = lambda_http::request::from_str(&event.to_string()).unwrap();
    let Some(Handler::Http(h)) = service.build(route.function).await.unwrap() else {
        panic!("{} is not served", route.function);
    };
    let resp = dispatch_http(h, route.function, req).await;
    let (parts, body) = resp.into_parts();
    let body = match body {
        lambda_http::Body::Empty => Vec::new(),
        lambda_http::Body::Text(t) => t.into_bytes(),
        lambda_http::Body::Binary(b) => b,
        _ => Vec::new(),
    };
    Resp {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    }
}

pub async fn post_json(service: &ProbeService, uri: &str, body: &serde_json::Value) -> Resp {
    call(
        service,
        "POST",
        uri,
        &[("content-type", "application/json")],
        &serde_json::to_vec(body).unwrap(),
    )
    .await
}

pub async fn get(service: &ProbeService, uri: &str) -> Resp {
    call(service, "GET", uri, &[], &[]).await
}
