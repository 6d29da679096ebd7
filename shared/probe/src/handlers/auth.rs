//! Probe authentication: `POST /api/v1/register`, `POST /api/v1/login` and
//! `PUT /api/v1/update/{client_id}`.
//!
//! Tokens are HS256 JWTs signed with the probe-only key (`JwtKeys.probe`), never the user
//! session key, because anyone can register. The `client_id` is `{iat, aud:"probe_login"}`
//! without expiry (132 characters, as upstream); the login token is
//! `{registration_time, aud:"probe_token", iat, exp}` valid 7 days.
//!
//! Login keeps upstream's legacy behaviour: a `username` that is not even shaped like a JWT
//! (PyJWT's `DecodeError`) is a legacy client and logs in with `registration_time: null`; one
//! that is shaped like a JWT but fails verification (signature, audience, claims) is 401.

use crate::state::State;
use base64::Engine;
use chrono::Duration;
use lambda_http::Request;
use ooni_platform::auth::{ProbeTokenClaims, AUD_PROBE_LOGIN, AUD_PROBE_TOKEN};
use ooni_platform::request::{json_body_422, path_param};
use ooni_platform::response::json;
use ooni_platform::{ApiError, Cache, ErrorBody, HttpResult};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Serialize, Deserialize)]
struct ClientIdClaims {
    iat: i64,
    aud: String,
}

#[derive(Deserialize)]
#[allow(dead_code)] // the values are required for compatibility but not used, as upstream
struct RegisterRequest {
    password: String,
    platform: String,
    probe_asn: String,
    probe_cc: String,
    software_name: String,
    software_version: String,
    supported_tests: Vec<String>,
}

fn unauthorized(detail: &str) -> ApiError {
    ApiError::new(
        http::StatusCode::UNAUTHORIZED,
        ErrorBody::Detail(detail.into()),
    )
}

/// `POST /api/v1/register`: a fresh `client_id`.
pub async fn register(s: Arc<State>, req: Request) -> HttpResult {
    let _request: RegisterRequest = json_body_422(&req)?;
    let keys = s.jwt_keys().await?;
    let claims = ClientIdClaims {
        iat: s.ports.clock.now().timestamp(),
        aud: AUD_PROBE_LOGIN.into(),
    };
    let client_id = keys.probe.sign(&claims)?;
    tracing::info!(counter = "probe_register", "register successful");
    json(
        &serde_json::json!({ "client_id": client_id }),
        Cache::Private,
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LoginRequest {
    username: Option<String>,
    password: Option<String>,
}

/// Whether PyJWT would get past decoding: three dot-separated base64url segments, the header
/// and payload JSON objects.
fn shaped_like_a_jwt(token: &str) -> bool {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = parts.as_slice() else {
        return false;
    };
    let object = |seg: &str| {
        b64.decode(seg.trim_end_matches('='))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .is_some_and(|v| v.is_object())
    };
    object(header) && object(payload) && b64.decode(signature.trim_end_matches('=')).is_ok()
}

/// `POST /api/v1/login`: a 7-day probe token.
pub async fn login(s: Arc<State>, req: Request) -> HttpResult {
    let body: LoginRequest = json_body_422(&req)?;
    let (Some(username), Some(_password)) = (body.username, body.password) else {
        return Err(unauthorized("Missing credentials"));
    };
    let keys = s.jwt_keys().await?;
    let registration_time = if shaped_like_a_jwt(&username) {
        let claims: ClientIdClaims = keys
            .probe
            .verify(&username, AUD_PROBE_LOGIN, false)
            .map_err(|_| {
                tracing::info!(
                    counter = "probe_login",
                    state = "failed",
                    "probe login: invalid client_id"
                );
                unauthorized("Invalid credentials")
            })?;
        tracing::info!(
            counter = "probe_login",
            state = "successful",
            login = "standard",
            "probe login"
        );
        Some(claims.iat)
    } else {
        tracing::info!(
            counter = "probe_login",
            state = "successful",
            login = "legacy",
            "probe login"
        );
        None
    };
    let now = s.ports.clock.now();
    let exp = now + Duration::days(7);
    let claims = ProbeTokenClaims {
        registration_time,
        aud: AUD_PROBE_TOKEN.into(),
        iat: Some(now.timestamp()),
        exp: exp.timestamp(),
    };
    let token = keys.probe.sign(&claims)?;
    json(
        &serde_json::json!({ "token": token, "expire": exp.format("%Y-%m-%dT%H:%M:%SZ").to_string() }),
        Cache::Private,
    )
}

/// `PUT /api/v1/update/{client_id}`: probe metadata, logged (a few fields) and acknowledged.
pub async fn update(_s: Arc<State>, req: Request) -> HttpResult {
    let _client_id = path_param(&req, "client_id")?;
    let body: serde_json::Value = json_body_422(&req)?;
    let Some(obj) = body.as_object() else {
        return Err(ApiError::unprocessable(
            "the request body must be a JSON object",
        ));
    };
    let field = |k: &str| {
        obj.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .chars()
            .take(64)
            .collect::<String>()
    };
    tracing::info!(
        counter = "probe_update",
        probe_cc = %field("probe_cc"),
        platform = %field("platform"),
        software_name = %field("software_name"),
        software_version = %field("software_version"),
        "probe update"
    );
    json(&serde_json::json!({ "status": "ok" }), Cache::NoCache)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_not_shaped_like_a_jwt_but_a_forged_token_is() {
        assert!(!shaped_like_a_jwt("BOGUSBOGUS"));
        assert!(!shaped_like_a_jwt("a.b.c"));
        assert!(!shaped_like_a_jwt(""));
        let forged =
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpYXQiOjEsImF1ZCI6InByb2JlX2xvZ2luIn0.c2ln";
        assert!(shaped_like_a_jwt(forged));
    }
}
