//! Verification (and signing) of the two token families: probe tokens and user sessions.
//!
//! Both are HS256 JWTs, with the algorithm pinned and the audience checked. They are signed
//! with different keys: a probe can register for free, so a probe-key token must never pass as
//! a user session (upstream's login-bypass risk).

use crate::config::Secret;
use crate::error::ApiError;
use async_trait::async_trait;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use lambda_http::Request;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::sync::Arc;

pub const AUD_USER_AUTH: &str = "user_auth";
pub const AUD_REGISTER: &str = "register";
pub const AUD_PROBE_LOGIN: &str = "probe_login";
pub const AUD_PROBE_TOKEN: &str = "probe_token";

/// An HMAC key usable for signing and verifying.
#[derive(Clone)]
pub struct HmacKey {
    enc: EncodingKey,
    dec: DecodingKey,
}

impl HmacKey {
    pub fn new(secret: &Secret) -> Self {
        let bytes = secret.expose().as_bytes();
        HmacKey {
            enc: EncodingKey::from_secret(bytes),
            dec: DecodingKey::from_secret(bytes),
        }
    }

    /// Signs claims with HS256.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, ApiError> {
        encode(&Header::new(Algorithm::HS256), claims, &self.enc).map_err(ApiError::internal)
    }

    /// Verifies an HS256 token for one audience. `require_exp` is false only for the permanent
    /// probe `client_id` (upstream issues it without expiry).
    pub fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        audience: &str,
        require_exp: bool,
    ) -> Result<T, TokenError> {
        let mut v = Validation::new(Algorithm::HS256);
        v.algorithms = vec![Algorithm::HS256];
        v.set_audience(&[audience]);
        v.leeway = 5;
        if require_exp {
            v.set_required_spec_claims(&["exp", "aud"]);
        } else {
            v.set_required_spec_claims(&["aud"]);
            v.validate_exp = false;
        }
        decode::<T>(token, &self.dec, &v)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })
    }
}

impl std::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacKey(<redacted>)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("expired token")]
    Expired,
    #[error("invalid token")]
    Invalid,
}

/// The two signing keys. Construction refuses identical keys.
#[derive(Clone, Debug)]
pub struct JwtKeys {
    pub probe: HmacKey,
    pub user: HmacKey,
}

impl JwtKeys {
    pub fn new(probe: &Secret, user: &Secret) -> anyhow::Result<Self> {
        if probe.expose() == user.expose() {
            anyhow::bail!("the probe token key and the user session key must differ");
        }
        if probe.expose().len() < 16 || user.expose().len() < 16 {
            anyhow::bail!("JWT keys must be at least 16 bytes");
        }
        Ok(JwtKeys {
            probe: HmacKey::new(probe),
            user: HmacKey::new(user),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }
}

/// User session claims, as upstream `ooniauth` issues them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserClaims {
    pub nbf: i64,
    pub iat: i64,
    pub exp: i64,
    pub aud: String,
    pub login_time: i64,
    pub role: Role,
    pub account_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_address: Option<String>,
}

/// Probe token claims (`POST /api/v1/login`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeTokenClaims {
    pub registration_time: Option<i64>,
    pub aud: String,
    #[serde(default)]
    pub iat: Option<i64>,
    pub exp: i64,
}

/// The hook for `set_session_expunge`: sessions issued before a per-account threshold are rejected.
#[async_trait]
pub trait SessionPolicy: Send + Sync {
    /// The unix-seconds threshold for this account, if any.
    async fn expunge_threshold(&self, account_id: &str) -> anyhow::Result<Option<i64>>;
}

/// The `Authorization: Bearer <token>` value.
pub fn bearer(req: &Request) -> Option<&str> {
    let value = req
        .headers()
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The shared user-authentication extractor used by every route that needs a user or admin.
#[derive(Clone)]
pub struct UserAuth {
    key: HmacKey,
    policy: Option<Arc<dyn SessionPolicy>>,
}

impl UserAuth {
    pub fn new(keys: &JwtKeys, policy: Option<Arc<dyn SessionPolicy>>) -> Self {
        UserAuth {
            key: keys.user.clone(),
            policy,
        }
    }

    /// `Ok(None)` when no token was sent; 401 when one was sent but is not a valid session.
    pub async fn optional(&self, req: &Request) -> Result<Option<UserClaims>, ApiError> {
        let Some(token) = bearer(req) else {
            return Ok(None);
        };
        let claims: UserClaims =
            self.key
                .verify(token, AUD_USER_AUTH, true)
                .map_err(|e| match e {
                    TokenError::Expired => ApiError::unauthorized("Expired token"),
                    TokenError::Invalid => ApiError::unauthorized("Invalid credentials"),
                })?;
        if let Some(policy) = &self.policy {
            let threshold = policy
                .expunge_threshold(&claims.account_id)
                .await
                .map_err(ApiError::unavailable)?;
            if threshold.is_some_and(|t| claims.iat < t) {
                return Err(ApiError::unauthorized("Session expunged"));
            }
        }
        Ok(Some(claims))
    }

    /// 401 "Authentication required" without a valid session; 403 when the role is too low.
    pub async fn require(&self, req: &Request, min: Role) -> Result<UserClaims, ApiError> {
        let claims = self
            .optional(req)
            .await?
            .ok_or_else(|| ApiError::unauthorized("Authentication required"))?;
        if claims.role < min {
            return Err(ApiError::forbidden("Role not authorized"));
        }
        Ok(claims)
    }
}

/// Verifies a probe token (`Authorization: Bearer`), as tor-targets and psiphon-config require.
pub fn require_probe_token(req: &Request, keys: &JwtKeys) -> Result<ProbeTokenClaims, ApiError> {
    let token = bearer(req).ok_or_else(|| ApiError::unauthorized("Authentication required"))?;
    keys.probe
        .verify(token, AUD_PROBE_TOKEN, true)
        .map_err(|e| match e {
            TokenError::Expired => ApiError::unauthorized("Expired token"),
            TokenError::Invalid => ApiError::unauthorized("Invalid credentials"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn keys() -> JwtKeys {
        JwtKeys::new(
            &Secret::new("probe-key-0123456789"),
            &Secret::new("user-key-0123456789ab"),
        )
        .unwrap()
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    fn claims(role: Role, exp: i64) -> UserClaims {
        UserClaims {
            nbf: now() - 10,
            iat: now() - 10,
            exp,
            aud: AUD_USER_AUTH.into(),
            login_time: now() - 10,
            role,
            account_id: "a".repeat(32),
            email_address: Some("x@example.org".into()),
        }
    }

    fn req_with(token: &str) -> Request {
        http::Request::builder()
            .header("authorization", format!("Bearer {token}"))
            .body(lambda_http::Body::Empty)
            .unwrap()
    }

    fn auth() -> UserAuth {
        UserAuth::new(&keys(), None)
    }

    /// The status `auth` refuses `token` with for a route that needs `role`.
    async fn refusal(auth: &UserAuth, token: &str, role: Role) -> http::StatusCode {
        auth.require(&req_with(token), role)
            .await
            .unwrap_err()
            .status
    }

    #[tokio::test]
    async fn a_valid_admin_session_passes_the_admin_check() {
        let token = keys()
            .user
            .sign(&claims(Role::Admin, now() + 3600))
            .unwrap();
        let c = auth()
            .require(&req_with(&token), Role::Admin)
            .await
            .unwrap();
        assert_eq!(c.role, Role::Admin);
    }

    #[tokio::test]
    async fn a_user_session_gets_403_on_admin_routes_and_no_token_gets_401() {
        let token = keys().user.sign(&claims(Role::User, now() + 3600)).unwrap();
        assert_eq!(refusal(&auth(), &token, Role::Admin).await, 403);
        let empty = http::Request::builder()
            .body(lambda_http::Body::Empty)
            .unwrap();
        assert_eq!(
            auth().require(&empty, Role::User).await.unwrap_err().status,
            401
        );
    }

    #[tokio::test]
    async fn expired_sessions_are_rejected() {
        let token = keys().user.sign(&claims(Role::User, now() - 3600)).unwrap();
        let err = auth()
            .require(&req_with(&token), Role::User)
            .await
            .unwrap_err();
        assert_eq!(err.status, 401);
        assert_eq!(err.body.to_json()["error"], "Expired token");
    }

    #[tokio::test]
    async fn a_probe_key_token_is_not_a_user_session() {
        let token = keys()
            .probe
            .sign(&claims(Role::Admin, now() + 3600))
            .unwrap();
        assert_eq!(refusal(&auth(), &token, Role::User).await, 401);
    }

    #[tokio::test]
    async fn wrong_audience_is_rejected() {
        let mut c = claims(Role::Admin, now() + 3600);
        c.aud = AUD_REGISTER.into();
        let token = keys().user.sign(&c).unwrap();
        assert_eq!(refusal(&auth(), &token, Role::User).await, 401);
    }

    #[tokio::test]
    async fn alg_none_and_tampered_signatures_are_rejected() {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = b64.encode(serde_json::to_vec(&claims(Role::Admin, now() + 3600)).unwrap());
        let none_token = format!("{header}.{payload}.");
        assert_eq!(refusal(&auth(), &none_token, Role::User).await, 401);

        let good = keys().user.sign(&claims(Role::User, now() + 3600)).unwrap();
        let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
        parts[1] = b64.encode(serde_json::to_vec(&claims(Role::Admin, now() + 3600)).unwrap());
        let tampered = parts.join(".");
        assert_eq!(refusal(&auth(), &tampered, Role::User).await, 401);
    }

    struct Expunged(i64);
    #[async_trait]
    impl SessionPolicy for Expunged {
        async fn expunge_threshold(&self, _: &str) -> anyhow::Result<Option<i64>> {
            Ok(Some(self.0))
        }
    }

    #[tokio::test]
    async fn sessions_issued_before_the_expunge_threshold_are_rejected() {
        let token = keys()
            .user
            .sign(&claims(Role::Admin, now() + 3600))
            .unwrap();
        let auth = UserAuth::new(&keys(), Some(Arc::new(Expunged(now()))));
        assert_eq!(refusal(&auth, &token, Role::User).await, 401);
        let later = UserAuth::new(&keys(), Some(Arc::new(Expunged(now() - 3600))));
        assert!(later.require(&req_with(&token), Role::User).await.is_ok());
    }

    #[test]
    fn identical_probe_and_user_keys_are_refused() {
        let k = Secret::new("same-key-0123456789");
        assert!(JwtKeys::new(&k, &k).is_err());
    }
}
