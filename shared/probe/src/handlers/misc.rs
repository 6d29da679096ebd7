//! Small routes: `POST /api/v1/geolookup`, `GET /api/_/check_report_id`, `GET /robots.txt`,
//! `GET /health`, `GET /version` and `GET /api/v2/ooniprobe/vpn-config/{provider}`.

use crate::state::State;
use http::StatusCode;
use lambda_http::Request;
use ooni_platform::request::{json_body_422, path_param};
use ooni_platform::response::{json, json_status, raw};
use ooni_platform::{ApiError, Cache, ErrorBody, HttpResult};
use rand::seq::IndexedRandom;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Most addresses one geolookup request may ask about.
const MAX_GEOLOOKUP_ADDRESSES: usize = 1000;

#[derive(Deserialize)]
struct GeoLookupRequest {
    addresses: Vec<String>,
}

#[derive(Serialize)]
struct GeoLookupResult {
    cc: String,
    asn: u32,
    as_name: Option<String>,
}

/// `POST /api/v1/geolookup`: `{v:1, geolocation:{ip:{cc, asn, as_name}}}`; a miss is `ZZ`/0.
pub async fn geolookup(s: Arc<State>, req: Request) -> HttpResult {
    let body: GeoLookupRequest = json_body_422(&req)?;
    if body.addresses.len() > MAX_GEOLOOKUP_ADDRESSES {
        return Err(ApiError::unprocessable(format!(
            "at most {MAX_GEOLOOKUP_ADDRESSES} addresses per request"
        )));
    }
    let ips = body
        .addresses
        .iter()
        .map(|a| {
            a.trim()
                .parse::<IpAddr>()
                .map_err(|_| ApiError::unprocessable(format!("invalid IP address {a:?}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let geoip = s.geoip().await;
    let geolocation: BTreeMap<String, GeoLookupResult> = ips
        .into_iter()
        .map(|ip| {
            let info = geoip.lookup(ip);
            let result = GeoLookupResult {
                cc: info.cc.unwrap_or_else(|| "ZZ".into()),
                asn: info.asn.unwrap_or(0),
                as_name: info.as_name,
            };
            (ip.to_string(), result)
        })
        .collect();
    json(
        &serde_json::json!({ "v": 1, "geolocation": geolocation }),
        Cache::NoCache,
    )
}

/// `GET /api/_/check_report_id`: always found (kept for probe bug ooni/probe#1034).
pub async fn check_report_id(_s: Arc<State>, _req: Request) -> HttpResult {
    raw(
        StatusCode::OK,
        "application/json",
        r#"{"v":0,"found":true}"#,
        Cache::MaxAge(1),
    )
}

pub const ROBOTS_TXT: &str = "User-agent: *
Disallow: /api/_
Disallow: /api/v1/aggregation
Disallow: /api/v1/measurement_meta
Disallow: /api/v1/raw_measurement
Disallow: /api/v1/test-list/urls
Disallow: /api/v1/torsf_stats
Disallow: /files
Disallow: /stats
Disallow: /201
Disallow: /202
Crawl-delay: 300
";

/// `GET /robots.txt`.
pub async fn robots_txt(_s: Arc<State>, _req: Request) -> HttpResult {
    raw(
        StatusCode::OK,
        "text/plain",
        ROBOTS_TXT,
        Cache::MaxAge(86400),
    )
}

#[derive(Serialize)]
struct Health<'a> {
    status: &'static str,
    errors: Vec<&'static str>,
    version: &'a str,
    build_label: &'a str,
}

/// `GET /health`: 200 `ok`, or 503 `degraded` naming what is unreachable (ClickHouse, the
/// config bucket).
pub async fn health(s: Arc<State>, _req: Request) -> HttpResult {
    const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
    let config_probe = async {
        // Any answer about a key, present or not, proves the bucket is reachable.
        match tokio::time::timeout(
            PROBE_TIMEOUT,
            s.ports.config.head(crate::config_docs::TEST_HELPERS_KEY),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".to_string()),
        }
    };
    let (db, config) = tokio::join!(
        tokio::time::timeout(PROBE_TIMEOUT, s.ports.db.ping()),
        config_probe
    );
    let mut errors = Vec::new();
    match db {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::error!(error = %e, "health: ClickHouse unreachable");
            errors.push("clickhouse");
        }
        Err(_) => {
            tracing::error!("health: ClickHouse timed out");
            errors.push("clickhouse");
        }
    }
    if let Err(e) = config {
        tracing::error!(error = %e, "health: config bucket unreachable");
        errors.push("config_bucket");
    }
    let (status, code) = if errors.is_empty() {
        ("ok", StatusCode::OK)
    } else {
        ("degraded", StatusCode::SERVICE_UNAVAILABLE)
    };
    json_status(
        code,
        &Health {
            status,
            errors,
            version: s.settings.version,
            build_label: &s.settings.build_label,
        },
        Cache::NoCache,
    )
}

/// `GET /version`.
pub async fn version(s: Arc<State>, _req: Request) -> HttpResult {
    json(
        &serde_json::json!({ "version": s.settings.version, "build_label": s.settings.build_label }),
        Cache::NoCache,
    )
}

/// How many endpoints one VPN answer lists.
const VPN_ENDPOINTS: usize = 4;

/// `GET /api/v2/ooniprobe/vpn-config/{provider}`: RiseupVPN credentials and 4 random gateways.
pub async fn vpn_config(s: Arc<State>, req: Request) -> HttpResult {
    let provider = path_param(&req, "provider")?;
    if provider != "riseupvpn" {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorBody::Detail("provider not found".into()),
        ));
    }
    let doc = s.riseupvpn().await?;
    let endpoints: Vec<String> = doc
        .endpoints
        .choose_multiple(&mut rand::rng(), VPN_ENDPOINTS)
        .map(|e| {
            format!(
                "openvpn://{provider}.corp/?address={}&transport={}",
                e.address, e.transport
            )
        })
        .collect();
    json(
        &serde_json::json!({
            "provider": provider,
            "protocol": "openvpn",
            "config": doc.config,
            "date_updated": doc.date_updated,
            "endpoints": endpoints,
        }),
        Cache::Private,
    )
}
