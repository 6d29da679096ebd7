//! `GET /api/v1/test-list/urls`, `GET /api/v1/test-list/tor-targets` and
//! `GET /api/v1/test-list/psiphon-config`.
//!
//! The two targets lists require a valid probe token (`Authorization: Bearer`), as the legacy
//! API did (the newer upstream service stopped checking it).

use crate::state::State;
use http::StatusCode;
use lambda_http::Request;
use ooni_domain::prio::{generate_test_list, TestListItem};
use ooni_platform::auth::require_probe_token;
use ooni_platform::request::query;
use ooni_platform::response::{json, raw};
use ooni_platform::{ApiError, Cache, HttpResult};
use serde::Serialize;
use std::sync::Arc;

#[derive(Serialize)]
struct Metadata {
    count: usize,
    current_page: i32,
    limit: i32,
    next_url: &'static str,
    pages: u32,
}

#[derive(Serialize)]
struct TestListResponse<'a> {
    metadata: Metadata,
    results: Vec<TestListItem<'a>>,
}

/// FastAPI's boolean query values.
fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "t" | "yes" | "y" | "on" => Some(true),
        "0" | "false" | "f" | "no" | "n" | "off" => Some(false),
        _ => None,
    }
}

/// The validated query of `test-list/urls`.
#[derive(Debug, PartialEq)]
struct UrlsQuery {
    cc: String,
    category_codes: Vec<String>,
    limit: usize,
    debug: bool,
}

fn urls_query(req: &Request) -> Result<UrlsQuery, ApiError> {
    let category_codes = match query(req, "category_codes") {
        Some(c) if !c.bytes().all(|b| b.is_ascii_uppercase() || b == b',') => {
            return Err(ApiError::unprocessable("category_codes must match [A-Z,]*"));
        }
        Some(c) => c
            .split(',')
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect(),
        None => Vec::new(),
    };
    // New upstream takes `probe_cc`, legacy `country_code`; both are accepted.
    let cc = query(req, "probe_cc")
        .or_else(|| query(req, "country_code"))
        .unwrap_or_else(|| "ZZ".into());
    if cc.chars().count() != 2 {
        return Err(ApiError::unprocessable("probe_cc must be two characters"));
    }
    let limit = match query(req, "limit") {
        None => -1,
        Some(l) => l
            .trim()
            .parse::<i64>()
            .map_err(|_| ApiError::unprocessable("limit must be an integer"))?,
    };
    if limit > 9999 {
        return Err(ApiError::unprocessable("limit must be at most 9999"));
    }
    let limit = if limit == -1 {
        9999
    } else {
        usize::try_from(limit).unwrap_or(0)
    };
    let debug = match query(req, "debug") {
        None => false,
        Some(d) => {
            parse_bool(&d).ok_or_else(|| ApiError::unprocessable("debug must be a boolean"))?
        }
    };
    Ok(UrlsQuery {
        cc: cc.to_uppercase(),
        category_codes,
        limit,
        debug,
    })
}

/// `GET /api/v1/test-list/urls`: the prioritised list for a country (all ASNs), or the random
/// global sample when ClickHouse fails.
pub async fn test_list_urls(s: Arc<State>, req: Request) -> HttpResult {
    let q = urls_query(&req)?;
    let (entries, rules) = tokio::join!(
        s.ports.db.citizenlab(&q.cc, 0),
        s.ports.db.prio_rules(&q.cc)
    );
    let failover;
    let results = match (&entries, &rules) {
        (Ok(e), Ok(r)) => generate_test_list(e, r, &q.category_codes, q.limit, q.debug),
        (Err(err), _) | (_, Err(err)) => {
            tracing::error!(error = %err, counter = "test_list_failover", "prioritisation query failed; using the failover list");
            failover = s.failover_list().await;
            failover.sample(&q.category_codes, q.limit, &mut rand::rng())
        }
    };
    let out = TestListResponse {
        metadata: Metadata {
            count: results.len(),
            current_page: -1,
            limit: -1,
            next_url: "",
            pages: 1,
        },
        results,
    };
    json(&out, Cache::MaxAge(1))
}

/// `GET /api/v1/test-list/tor-targets`.
pub async fn tor_targets(s: Arc<State>, req: Request) -> HttpResult {
    require_probe_token(&req, s.jwt_keys().await?)?;
    let doc = s.tor_targets().await?;
    raw(
        StatusCode::OK,
        "application/json",
        doc.get(),
        Cache::Private,
    )
}

/// `GET /api/v1/test-list/psiphon-config`.
pub async fn psiphon_config(s: Arc<State>, req: Request) -> HttpResult {
    require_probe_token(&req, s.jwt_keys().await?)?;
    let doc = s.psiphon_config().await?;
    raw(
        StatusCode::OK,
        "application/json",
        doc.get(),
        Cache::Private,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::RequestExt;
    use std::collections::HashMap;

    fn req(pairs: &[(&str, &str)]) -> Request {
        let q: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        http::Request::builder()
            .body(lambda_http::Body::Empty)
            .unwrap()
            .with_query_string_parameters(q)
    }

    #[test]
    fn defaults_are_zz_all_categories_and_9999_urls() {
        let q = urls_query(&req(&[])).unwrap();
        assert_eq!(
            q,
            UrlsQuery {
                cc: "ZZ".into(),
                category_codes: vec![],
                limit: 9999,
                debug: false
            }
        );
    }

    #[test]
    fn country_code_and_probe_cc_are_both_accepted() {
        assert_eq!(
            urls_query(&req(&[("country_code", "us")])).unwrap().cc,
            "US"
        );
        assert_eq!(
            urls_query(&req(&[("probe_cc", "IT"), ("country_code", "US")]))
                .unwrap()
                .cc,
            "IT"
        );
    }

    #[test]
    fn bad_parameters_are_422() {
        for pairs in [
            vec![("category_codes", "news")],
            vec![("probe_cc", "USA")],
            vec![("limit", "10000")],
            vec![("limit", "ten")],
            vec![("debug", "maybe")],
        ] {
            assert_eq!(
                urls_query(&req(&pairs)).unwrap_err().status,
                422,
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn categories_limit_and_debug_are_read() {
        let q = urls_query(&req(&[
            ("category_codes", "NEWS,HUMR"),
            ("limit", "100"),
            ("debug", "true"),
        ]))
        .unwrap();
        assert_eq!(q.category_codes, ["NEWS", "HUMR"]);
        assert_eq!(q.limit, 100);
        assert!(q.debug);
    }
}
