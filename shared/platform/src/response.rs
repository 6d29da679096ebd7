//! Response builders with a deliberate `Cache-Control` on every answer.

use crate::error::ApiError;
use http::{header, Response, StatusCode};
use lambda_http::Body;
use serde::Serialize;

/// Cache policies used across the API (upstream's values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cache {
    /// `no-cache` (FastAPI services' `setnocacheresponse`).
    NoCache,
    /// `max-age=0, no-cache` (legacy `nocachejson`).
    NoCacheLegacy,
    /// `max-age=N`.
    MaxAge(u32),
    /// `private, no-store`: responses carrying credentials.
    Private,
}

impl Cache {
    pub fn header_value(self) -> String {
        match self {
            Cache::NoCache => "no-cache".into(),
            Cache::NoCacheLegacy => "max-age=0, no-cache".into(),
            Cache::MaxAge(n) => format!("max-age={n}"),
            Cache::Private => "private, no-store".into(),
        }
    }
}

/// A JSON response with status 200.
pub fn json<T: Serialize + ?Sized>(value: &T, cache: Cache) -> Result<Response<Body>, ApiError> {
    json_status(StatusCode::OK, value, cache)
}

pub fn json_status<T: Serialize + ?Sized>(
    status: StatusCode,
    value: &T,
    cache: Cache,
) -> Result<Response<Body>, ApiError> {
    let bytes = serde_json::to_vec(value).map_err(ApiError::internal)?;
    raw(status, "application/json", bytes, cache)
}

/// Any body with a content type.
pub fn raw(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Vec<u8>>,
    cache: Cache,
) -> Result<Response<Body>, ApiError> {
    let body: Vec<u8> = body.into();
    let body = match String::from_utf8(body) {
        Ok(s) => Body::Text(s),
        Err(e) => Body::Binary(e.into_bytes()),
    };
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, cache.header_value())
        .body(body)
        .map_err(ApiError::internal)
}

/// Turns an [`ApiError`] into its response (no caching of errors).
pub fn error_response(err: &ApiError) -> Response<Body> {
    let body = err.body.to_json().to_string();
    let mut builder = Response::builder()
        .status(err.status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache");
    for (name, value) in &err.headers {
        builder = builder.header(*name, value.as_str());
    }
    builder.body(Body::Text(body)).unwrap_or_else(|_| {
        let mut fallback =
            Response::new(Body::Text("{\"error\":\"internal server error\"}".into()));
        *fallback.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_responses_always_carry_cache_control() {
        let resp = json(&serde_json::json!({"a": 1}), Cache::MaxAge(60)).unwrap();
        assert_eq!(resp.headers()[header::CACHE_CONTROL], "max-age=60");
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
    }

    #[test]
    fn error_responses_carry_extra_headers() {
        let resp = error_response(&ApiError::too_many_requests());
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()["x-ratelimit-remaining"], "0");
    }
}
