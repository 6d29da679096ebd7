//! Account routes: e-mail login links (v1 register/login/refresh/metadata and v2
//! user-login/user-session), roles and session expunge. Token claims, audiences and expiry
//! rules follow upstream `ooniauth`; all tokens are HS256 with the user-session key.

use crate::account::{login_url, normalize_email, valid_redirect_to};
use crate::util::{as_detail, fmt_datetime, invalid};
use crate::State;
use chrono::{DateTime, TimeZone, Utc};
use lambda_http::Request;
use ooni_platform::auth::{Role, TokenError, UserClaims, AUD_REGISTER, AUD_USER_AUTH};
use ooni_platform::request::{body_bytes, json_body, path_param, query};
use ooni_platform::response::{json, Cache};
use ooni_platform::{ApiError, HttpResult};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;

/// Claims of the short-lived login token e-mailed to the user (`aud = "register"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterClaims {
    pub nbf: i64,
    pub exp: i64,
    pub aud: String,
    #[serde(default)]
    pub account_id: Option<String>,
    pub email_address: String,
    #[serde(default)]
    pub redirect_to: String,
}

/// Login tokens live one day.
pub const LOGIN_TOKEN_LIFETIME_S: i64 = 86_400;

#[derive(Debug, Deserialize)]
struct LoginRequest {
    email_address: String,
    redirect_to: String,
}

fn parse_login_request(req: &Request) -> Result<(String, String), ApiError> {
    let body: LoginRequest = ooni_platform::request::json_body_422(req)?;
    let email = normalize_email(&body.email_address)
        .ok_or_else(|| invalid(&["email_address"], "value is not a valid email address"))?;
    if !valid_redirect_to(&body.redirect_to) {
        return Err(invalid(&["redirect_to"], "Invalid URL"));
    }
    Ok((email, body.redirect_to))
}

/// The admin list wins; otherwise the account's role record; otherwise `user`.
pub async fn resolve_role(s: &State, email: &str) -> Result<Role, ApiError> {
    if s.config.is_admin_email(email) {
        return Ok(Role::Admin);
    }
    let account_id = s.config.hasher.account_id(email);
    Ok(s.accounts
        .role(&account_id)
        .await
        .map_err(ApiError::unavailable)?
        .unwrap_or(Role::User))
}

/// Signs a login token for `email`, e-mails the link and returns the token's expiry.
async fn send_login_link(
    s: &State,
    email: &str,
    redirect_to: &str,
) -> Result<DateTime<Utc>, ApiError> {
    let now = Utc::now().timestamp();
    let exp = now + LOGIN_TOKEN_LIFETIME_S;
    let account_id = s.config.hasher.account_id(email);
    let claims = RegisterClaims {
        nbf: now,
        exp,
        aud: AUD_REGISTER.into(),
        account_id: Some(account_id.clone()),
        email_address: email.to_owned(),
        redirect_to: redirect_to.to_owned(),
    };
    let token = s.keys.user.sign(&claims)?;
    let link = login_url(redirect_to, &token);
    if s.config.log_login_links {
        tracing::info!(login_link = %link, "login link (local stage only)");
    }
    let id = s.mailer.send_login(email, &link).await.map_err(|e| {
        ApiError::new(
            http::StatusCode::INTERNAL_SERVER_ERROR,
            ooni_platform::ErrorBody::Detail(json!("Unable to send the email")),
        )
        .with_source(e)
    })?;
    tracing::info!(%account_id, message_id = %id, "login e-mail sent");
    Ok(Utc.timestamp_opt(exp, 0).single().unwrap_or_else(Utc::now))
}

/// Signs a session token (upstream `create_session_token`):
/// `exp = min(now + session_expiry_days, login_time + login_expiry_days)`.
pub fn create_session_token(
    s: &State,
    email: &str,
    role: Role,
    login_time: Option<i64>,
) -> Result<(String, UserClaims), ApiError> {
    let now = Utc::now().timestamp();
    let login_time = login_time.unwrap_or(now);
    let exp = (now + s.config.session_expiry_days * 86_400)
        .min(login_time + s.config.login_expiry_days * 86_400);
    let claims = UserClaims {
        nbf: now,
        iat: now,
        exp,
        aud: AUD_USER_AUTH.into(),
        login_time,
        role,
        account_id: s.config.hasher.account_id(email),
        email_address: Some(email.to_owned()),
    };
    Ok((s.keys.user.sign(&claims)?, claims))
}

/// Verifies an e-mailed login token: 401 "Invalid credentials" or "Expired token".
fn verify_login_token(s: &State, token: &str) -> Result<(String, RegisterClaims), ApiError> {
    let claims: RegisterClaims =
        s.keys
            .user
            .verify(token, AUD_REGISTER, true)
            .map_err(|e| match e {
                TokenError::Expired => as_detail(ApiError::unauthorized("Expired token")),
                TokenError::Invalid => as_detail(ApiError::unauthorized("Invalid credentials")),
            })?;
    let email = normalize_email(&claims.email_address)
        .ok_or_else(|| as_detail(ApiError::unauthorized("Invalid credentials")))?;
    Ok((email, claims))
}

/// `POST /api/v1/user_register`: e-mails a login link; `{"msg": "ok"}`.
pub async fn user_register(s: Arc<State>, req: Request) -> HttpResult {
    let (email, redirect_to) = parse_login_request(&req)?;
    send_login_link(&s, &email, &redirect_to).await?;
    json(&json!({"msg": "ok"}), Cache::NoCache)
}

/// `POST /api/v2/ooniauth/user-login`: e-mails a login link; `{email_address, login_token_expiration}`.
pub async fn v2_user_login(s: Arc<State>, req: Request) -> HttpResult {
    let (email, redirect_to) = parse_login_request(&req)?;
    let exp = send_login_link(&s, &email, &redirect_to).await?;
    json(
        &json!({"email_address": email, "login_token_expiration": fmt_datetime(&exp)}),
        Cache::NoCache,
    )
}

/// `GET /api/v1/user_login?k=<login token>`: `{bearer, redirect_to, email_address}`.
pub async fn user_login(s: Arc<State>, req: Request) -> HttpResult {
    let token = query(&req, "k").ok_or_else(|| {
        ApiError::unprocessable(
            json!([{"loc": ["query", "k"], "msg": "Field required", "type": "missing"}]),
        )
    })?;
    let (email, claims) = verify_login_token(&s, &token)?;
    let role = resolve_role(&s, &email).await?;
    let (bearer, _) = create_session_token(&s, &email, role, None)?;
    tracing::info!(account_id = %s.config.hasher.account_id(&email), "user login successful");
    json(
        &json!({"bearer": bearer, "redirect_to": claims.redirect_to, "email_address": email}),
        Cache::Private,
    )
}

/// `GET /api/v1/user_refresh_token`: a new session keeping `login_time`; `{bearer}`.
pub async fn user_refresh_token(s: Arc<State>, req: Request) -> HttpResult {
    let claims = s.auth.require(&req, Role::User).await.map_err(as_detail)?;
    let email = claims
        .email_address
        .as_deref()
        .and_then(normalize_email)
        .ok_or_else(|| as_detail(ApiError::unauthorized("Invalid credentials")))?;
    // The role is looked up again so a demotion takes effect at the next refresh.
    let role = resolve_role(&s, &email).await?;
    let (bearer, _) = create_session_token(&s, &email, role, Some(claims.login_time))?;
    json(&json!({"bearer": bearer}), Cache::Private)
}

/// `GET /api/_/account_metadata`: `{logged_in, role}`.
pub async fn account_metadata(s: Arc<State>, req: Request) -> HttpResult {
    let claims = crate::util::optional_user(&s.auth, &req).await?;
    let body = match claims {
        Some(c) => json!({"logged_in": true, "role": c.role.as_str()}),
        None => json!({"logged_in": false, "role": ""}),
    };
    json(&body, Cache::NoCache)
}

#[derive(Debug, Serialize)]
struct UserSession {
    session_token: String,
    redirect_to: String,
    email_address: String,
    account_id: String,
    role: String,
    login_time: Option<String>,
    is_logged_in: bool,
}

/// The session carried by the `Authorization` header, with the role looked up afresh.
async fn session_from_header(
    s: &State,
    req: &Request,
) -> Result<Option<(String, Role, i64)>, ApiError> {
    let Some(claims) = crate::util::optional_user(&s.auth, req).await? else {
        return Ok(None);
    };
    let Some(email) = claims.email_address.as_deref().and_then(normalize_email) else {
        return Ok(None);
    };
    let role = resolve_role(s, &email).await?;
    Ok(Some((email, role, claims.login_time)))
}

fn time_string(t: i64) -> Option<String> {
    Utc.timestamp_opt(t, 0).single().map(|t| fmt_datetime(&t))
}

#[derive(Debug, Default, Deserialize)]
struct CreateUserSession {
    #[serde(default)]
    login_token: Option<String>,
}

/// `POST /api/v2/ooniauth/user-session`: a session from `{login_token}` or from the Bearer
/// session (a refresh).
pub async fn v2_create_user_session(s: Arc<State>, req: Request) -> HttpResult {
    let body: CreateUserSession = if body_bytes(&req).iter().all(u8::is_ascii_whitespace) {
        CreateUserSession::default()
    } else {
        ooni_platform::request::json_body_422(&req)?
    };
    let (email, role, login_time, redirect_to) = match body.login_token.filter(|t| !t.is_empty()) {
        Some(token) => {
            let (email, claims) = verify_login_token(&s, &token)?;
            let role = resolve_role(&s, &email).await?;
            (email, role, Utc::now().timestamp(), claims.redirect_to)
        }
        None => match session_from_header(&s, &req).await? {
            Some((email, role, login_time)) => (email, role, login_time, String::new()),
            None => return Err(as_detail(ApiError::unauthorized("no valid session found"))),
        },
    };
    let (token, claims) = create_session_token(&s, &email, role, Some(login_time))?;
    let session = UserSession {
        session_token: token,
        redirect_to,
        email_address: email,
        account_id: claims.account_id,
        role: role.as_str().into(),
        login_time: time_string(login_time),
        is_logged_in: true,
    };
    json(&session, Cache::Private)
}

/// `GET /api/v2/ooniauth/user-session`: the current session, or `is_logged_in: false`.
pub async fn v2_get_user_session(s: Arc<State>, req: Request) -> HttpResult {
    let session = match session_from_header(&s, &req).await? {
        Some((email, role, login_time)) => UserSession {
            session_token: String::new(),
            redirect_to: String::new(),
            account_id: s.config.hasher.account_id(&email),
            email_address: email,
            role: role.as_str().into(),
            login_time: time_string(login_time),
            is_logged_in: true,
        },
        None => UserSession {
            session_token: String::new(),
            redirect_to: String::new(),
            email_address: String::new(),
            account_id: String::new(),
            role: String::new(),
            login_time: None,
            is_logged_in: false,
        },
    };
    json(&session, Cache::NoCache)
}

#[derive(Debug, Deserialize)]
struct SetRoleRequest {
    #[serde(default)]
    email_address: String,
    #[serde(default)]
    role: String,
}

fn legacy_email(raw: &str) -> Result<String, ApiError> {
    normalize_email(raw).ok_or_else(|| ApiError::bad_request("Invalid email address"))
}

/// `POST /api/v1/set_account_role` (admin): `{email_address, role}` → `{}`.
pub async fn set_account_role(s: Arc<State>, req: Request) -> HttpResult {
    let admin = s.auth.require(&req, Role::Admin).await?;
    let body: SetRoleRequest = json_body(&req)?;
    let email = legacy_email(&body.email_address)?;
    let role = match body.role.trim().to_lowercase().as_str() {
        "user" => Role::User,
        "admin" => Role::Admin,
        _ => return Err(ApiError::bad_request("Invalid role")),
    };
    let account_id = s.config.hasher.account_id(&email);
    s.accounts
        .set_role(&account_id, role)
        .await
        .map_err(ApiError::unavailable)?;
    tracing::info!(%account_id, role = role.as_str(), by = %admin.account_id, "role set");
    json(&json!({}), Cache::NoCacheLegacy)
}

/// `GET /api/v1/get_account_role/{email_address}` (admin): `{role}`.
pub async fn get_account_role(s: Arc<State>, req: Request) -> HttpResult {
    s.auth.require(&req, Role::Admin).await?;
    let email = legacy_email(&path_param(&req, "email_address")?)?;
    let account_id = s.config.hasher.account_id(&email);
    let role = if s.config.is_admin_email(&email) {
        Some(Role::Admin)
    } else {
        s.accounts
            .role(&account_id)
            .await
            .map_err(ApiError::unavailable)?
    };
    match role {
        Some(r) => json(&json!({"role": r.as_str()}), Cache::NoCacheLegacy),
        None => Err(ApiError::bad_request("Account not found")),
    }
}

#[derive(Debug, Deserialize)]
struct ExpungeRequest {
    #[serde(default)]
    email_address: String,
}

/// `POST /api/v1/set_session_expunge` (admin): every session of the account issued up to now
/// (this second included) is rejected from now on → `{}`.
pub async fn set_session_expunge(s: Arc<State>, req: Request) -> HttpResult {
    let admin = s.auth.require(&req, Role::Admin).await?;
    let body: ExpungeRequest = json_body(&req)?;
    let email = legacy_email(&body.email_address)?;
    let account_id = s.config.hasher.account_id(&email);
    let threshold = Utc::now().timestamp() + 1;
    s.accounts
        .set_expunge_threshold(&account_id, threshold)
        .await
        .map_err(ApiError::unavailable)?;
    tracing::info!(%account_id, by = %admin.account_id, "sessions expunged");
    json(&json!({}), Cache::NoCacheLegacy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::AccountHasher;
    use crate::config::AccountsConfig;
    use crate::mailer::MemoryMailer;
    use crate::store::{AccountStore, MemoryAccountStore, StoreSessionPolicy};
    use lambda_http::RequestExt;
    use ooni_domain::prio::{CitizenlabEntry, PrioRule};
    use ooni_platform::auth::{JwtKeys, UserAuth};
    use ooni_platform::config::{Env, Secret};
    use std::collections::HashMap;

    struct NoTargets;
    #[async_trait::async_trait]
    impl crate::prio::TargetsSource for NoTargets {
        async fn fetch(
            &self,
            _: &str,
            _: u32,
        ) -> anyhow::Result<(Vec<CitizenlabEntry>, Vec<PrioRule>)> {
            Ok((vec![], vec![]))
        }
    }

    struct NoFeedback;
    #[async_trait::async_trait]
    impl crate::feedback::FeedbackStore for NoFeedback {
        async fn summary(
            &self,
            _: &str,
            _: &str,
        ) -> anyhow::Result<Vec<crate::feedback::StatusCount>> {
            Ok(vec![])
        }
        async fn submit(&self, _: &str, _: &str, _: &str) -> anyhow::Result<()> {
            Ok(())
        }
    }

    fn offline_table() -> ooni_adapters::DynamoTable {
        let conf = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .build();
        ooni_adapters::DynamoTable::new(aws_sdk_dynamodb::Client::from_conf(conf), "unused")
    }

    fn state(mailer: Arc<MemoryMailer>, accounts: Arc<MemoryAccountStore>) -> Arc<State> {
        let keys = JwtKeys::new(
            &Secret::new("probe-key-0123456789"),
            &Secret::new("user-key-0123456789ab"),
        )
        .unwrap();
        let env =
            Env::from_fn(|k| (k == "OONI_ADMIN_EMAILS").then(|| "boss@example.org".to_string()));
        let config =
            AccountsConfig::from_env(&env, AccountHasher::new(Secret::new("k")).unwrap(), "local")
                .unwrap();
        Arc::new(State {
            config,
            auth: UserAuth::new(
                &keys,
                Some(Arc::new(StoreSessionPolicy::new(accounts.clone()))),
            ),
            public_auth: UserAuth::new(&keys, None),
            keys,
            accounts,
            mailer,
            links: crate::oonirun::LinkStore::new(offline_table()),
            findings: crate::findings::FindingStore::new(offline_table()),
            targets: Arc::new(NoTargets),
            feedback: Arc::new(NoFeedback),
        })
    }

    fn post(body: serde_json::Value) -> Request {
        http::Request::builder()
            .method("POST")
            .body(lambda_http::Body::Text(body.to_string()))
            .unwrap()
    }

    fn get_with(query: &[(&str, &str)], bearer: Option<&str>) -> Request {
        let mut b = http::Request::builder().method("GET");
        if let Some(t) = bearer {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        let q: HashMap<String, String> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        b.body(lambda_http::Body::Empty)
            .unwrap()
            .with_query_string_parameters(q)
    }

    fn body_json(resp: &http::Response<lambda_http::Body>) -> serde_json::Value {
        match resp.body() {
            lambda_http::Body::Text(t) => serde_json::from_str(t).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_failing_mailer_is_a_500_with_upstreams_detail() {
        let mailer = Arc::new(MemoryMailer::default());
        mailer.fail.store(true, std::sync::atomic::Ordering::SeqCst);
        let s = state(mailer, Arc::new(MemoryAccountStore::default()));
        let req = post(
            json!({"email_address": "a@example.org", "redirect_to": "https://explorer.ooni.org/"}),
        );
        let err = user_register(s, req).await.unwrap_err();
        assert_eq!(err.status, 500);
        assert_eq!(
            err.body.to_json(),
            json!({"detail": "Unable to send the email"})
        );
    }

    #[tokio::test]
    async fn the_mailed_link_logs_in_and_the_role_record_or_admin_list_decide_the_role() {
        let mailer = Arc::new(MemoryMailer::default());
        let accounts = Arc::new(MemoryAccountStore::default());
        let s = state(mailer.clone(), accounts.clone());
        for (email, want) in [
            ("a@example.org", Role::User),
            ("Boss@Example.org", Role::Admin),
            ("promoted@example.org", Role::Admin),
        ] {
            if email.starts_with("promoted") {
                accounts
                    .set_role(&s.config.hasher.account_id(email), Role::Admin)
                    .await
                    .unwrap();
            }
            let req =
                post(json!({"email_address": email, "redirect_to": "https://explorer.ooni.org/"}));
            user_register(s.clone(), req).await.unwrap();
            let (to, link) = mailer.sent.lock().unwrap().last().cloned().unwrap();
            assert_eq!(to, email.to_lowercase());
            let token = link.split("token=").nth(1).unwrap().to_owned();
            let resp = user_login(s.clone(), get_with(&[("k", &token)], None))
                .await
                .unwrap();
            let bearer = body_json(&resp)["bearer"].as_str().unwrap().to_owned();
            let claims: UserClaims = s.keys.user.verify(&bearer, AUD_USER_AUTH, true).unwrap();
            assert_eq!(claims.role, want, "{email}");
            assert_eq!(
                claims.email_address.as_deref(),
                Some(email.to_lowercase().as_str())
            );
        }
    }

    #[tokio::test]
    async fn an_expunged_session_cannot_refresh() {
        let accounts = Arc::new(MemoryAccountStore::default());
        let s = state(Arc::new(MemoryMailer::default()), accounts.clone());
        let (token, claims) = create_session_token(&s, "a@example.org", Role::User, None).unwrap();
        assert!(user_refresh_token(s.clone(), get_with(&[], Some(&token)))
            .await
            .is_ok());
        accounts
            .set_expunge_threshold(&claims.account_id, claims.iat + 1)
            .await
            .unwrap();
        let err = user_refresh_token(s, get_with(&[], Some(&token)))
            .await
            .unwrap_err();
        assert_eq!(err.status, 401);
    }

    #[test]
    fn session_expiry_is_capped_by_the_login_time() {
        let s = state(
            Arc::new(MemoryMailer::default()),
            Arc::new(MemoryAccountStore::default()),
        );
        let old_login = Utc::now().timestamp() - 9 * 86_400;
        let (_, c) =
            create_session_token(&s, "a@example.org", Role::User, Some(old_login)).unwrap();
        assert_eq!(c.exp, old_login + 10 * 86_400);
        assert_eq!(c.aud, AUD_USER_AUTH);
        assert_eq!(c.account_id.len(), 32);
    }
}
