//! Reading requests: query and path parameters, bounded JSON bodies, headers, the client address.

use crate::error::ApiError;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt};
use serde::de::DeserializeOwned;
use std::net::IpAddr;

/// The raw request body bytes.
pub fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Empty => &[],
        Body::Text(s) => s.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    }
}

/// Parses the JSON body; a malformed one is a 400 `{"error": ...}` naming the problem.
pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let bytes = body_bytes(req);
    if bytes.is_empty() {
        return Err(ApiError::bad_request("missing JSON body"));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// Like [`json_body`] but with FastAPI's 422 `{"detail": ...}` for validation failures.
pub fn json_body_422<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    serde_json::from_slice(body_bytes(req))
        .map_err(|e| ApiError::unprocessable(format!("invalid body: {e}")))
}

/// A single query parameter (the first when repeated).
pub fn query(req: &Request, name: &str) -> Option<String> {
    req.query_string_parameters_ref()
        .and_then(|q| q.first(name))
        .map(str::to_owned)
}

/// Every value of a repeatable query parameter.
pub fn query_all(req: &Request, name: &str) -> Vec<String> {
    req.query_string_parameters_ref()
        .and_then(|q| q.all(name))
        .map(|v| v.into_iter().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// A path parameter captured by the route template; absent means a routing bug → 404.
pub fn path_param(req: &Request, name: &str) -> Result<String, ApiError> {
    req.path_parameters_ref()
        .and_then(|p| p.first(name))
        .map(str::to_owned)
        .ok_or_else(|| ApiError::not_found(format!("missing path parameter {name}")))
}

pub fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The TCP peer as API Gateway saw it (`requestContext.http.sourceIp`).
pub fn source_ip(req: &Request) -> Option<IpAddr> {
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(ctx) => ctx.http.source_ip.as_deref()?.parse().ok(),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// The client address used for GeoIP and quotas: the source IP, or an `X-Forwarded-For` entry
/// only as far as `trusted_hops` proxies in front of API Gateway vouch for it.
pub fn client_ip(req: &Request, trusted_hops: usize) -> Option<IpAddr> {
    ooni_domain::client_addr::client_ip(
        source_ip(req),
        header(req, "x-forwarded-for"),
        trusted_hops,
    )
}

/// The API Gateway request id (or the one the local server generated).
pub fn request_id(req: &Request) -> String {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone().unwrap_or_default(),
        _ => String::new(),
    }
}
