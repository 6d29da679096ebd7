//! One error type for every HTTP handler, mapped once to a status and a client-safe JSON body.
//!
//! Bodies keep the upstream shapes clients depend on: the legacy `{"error": ...}` and FastAPI's
//! `{"detail": ...}`. Internal causes are kept for the logs and never sent to clients; 5xx are
//! logged at `error`, 4xx at `debug` (see [`crate::dispatch`]).

use http::StatusCode;
use serde_json::{json, Value};

/// How the error body is shaped on the wire.
#[derive(Debug, Clone, PartialEq)]
pub enum ErrorBody {
    /// `{"error": "<msg>"}` (legacy API and most of this backend).
    Error(String),
    /// `{"detail": <value>}` (FastAPI-style services).
    Detail(Value),
    /// An exact body where upstream defines a special one (e.g. `{"error": ..., "v": 0}`).
    Exact(Value),
}

impl ErrorBody {
    pub fn to_json(&self) -> Value {
        match self {
            ErrorBody::Error(msg) => json!({ "error": msg }),
            ErrorBody::Detail(v) => json!({ "detail": v }),
            ErrorBody::Exact(v) => v.clone(),
        }
    }
}

/// An HTTP handler failure.
#[derive(Debug, thiserror::Error)]
#[error("{status}: {body:?}")]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
    /// Extra headers (e.g. `X-RateLimit-Remaining: 0`, `WWW-Authenticate`).
    pub headers: Vec<(&'static str, String)>,
    /// The internal cause, logged but never sent to the client.
    #[source]
    pub source: Option<anyhow::Error>,
}

impl ApiError {
    pub fn new(status: StatusCode, body: ErrorBody) -> Self {
        ApiError {
            status,
            body,
            headers: Vec::new(),
            source: None,
        }
    }

    pub fn with_source(mut self, source: impl Into<anyhow::Error>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// 400 `{"error": msg}`.
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorBody::Error(msg.into()))
    }

    /// 400 `{"detail": msg}`.
    pub fn bad_request_detail(detail: impl Into<Value>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorBody::Detail(detail.into()))
    }

    /// 422 `{"detail": ...}`, FastAPI's validation error status.
    pub fn unprocessable(detail: impl Into<Value>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorBody::Detail(detail.into()),
        )
    }

    pub fn unauthorized(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, ErrorBody::Error(msg.into()))
    }

    pub fn forbidden(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorBody::Error(msg.into()))
    }

    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorBody::Error(msg.into()))
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorBody::Error("method not allowed".into()),
        )
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorBody::Error(format!("request body too large (limit {limit} bytes)")),
        )
    }

    pub fn too_many_requests() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorBody::Error("quota exceeded".into()),
        )
        .with_header("x-ratelimit-remaining", "0")
    }

    /// 503: a dependency is down; the client should retry. The cause goes to the logs only.
    pub fn unavailable(source: impl Into<anyhow::Error>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorBody::Error("service temporarily unavailable, please retry".into()),
        )
        .with_source(source)
    }

    /// 500 with a generic body. The cause goes to the logs only.
    pub fn internal(source: impl Into<anyhow::Error>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorBody::Error("internal server error".into()),
        )
        .with_source(source)
    }

    pub fn is_server_error(&self) -> bool {
        self.status.is_server_error()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_never_leak_their_cause_to_the_body() {
        let err = ApiError::internal(anyhow::anyhow!("password=hunter2 connection refused"));
        let body = err.body.to_json().to_string();
        assert!(!body.contains("hunter2"));
        assert_eq!(err.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(err.source.is_some());
    }

    #[test]
    fn detail_and_error_shapes_match_upstream() {
        assert_eq!(
            ApiError::bad_request_detail("Incorrect format")
                .body
                .to_json(),
            json!({"detail": "Incorrect format"})
        );
        assert_eq!(
            ApiError::bad_request("nope").body.to_json(),
            json!({"error": "nope"})
        );
    }

    #[test]
    fn quota_errors_carry_a_zero_remaining_header() {
        let err = ApiError::too_many_requests();
        assert_eq!(err.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(err
            .headers
            .iter()
            .any(|(k, v)| *k == "x-ratelimit-remaining" && v == "0"));
    }
}
