//! Shared set-up of the black-box tests: a test stack, the accounts service on the dev
//! server, token minting, and reading login e-mails back from the SES emulator.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use ooni_accounts::account::AccountHasher;
use ooni_accounts::{AccountsConfig, AccountsService};
use ooni_platform::auth::{Role, UserClaims, AUD_USER_AUTH};
use ooni_platform::config::Secret;
use ooni_testkit::{TestServer, TestStack};
use serde_json::{json, Value};
use std::sync::Arc;

pub const HASHING_KEY: &str = "test-account-hashing-key";

pub struct Env {
    pub stack: TestStack,
    pub server: TestServer,
    pub config: AccountsConfig,
    pub http: reqwest::Client,
    /// An address on the admin list of this service instance.
    pub admin_email: String,
}

pub fn unique_email(tag: &str) -> String {
    format!(
        "{tag}-{}@example.org",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

pub async fn start() -> Env {
    let stack = TestStack::start().await;
    let admin_email = unique_email("admin");
    let mut config = AccountsConfig::from_env(
        &ooni_platform::config::Env::from_fn(|_| None),
        AccountHasher::new(Secret::new(HASHING_KEY)).unwrap(),
        "test",
    )
    .unwrap();
    config.admin_emails = vec![admin_email.clone()];
    config.email_source = "noreply-test@ooni.org".into();
    let service = AccountsService::with_config(stack.ctx.clone(), config.clone());
    let server = stack.serve(Arc::new(service)).await;
    Env {
        stack,
        server,
        config,
        http: reqwest::Client::new(),
        admin_email,
    }
}

impl Env {
    pub fn account_id(&self, email: &str) -> String {
        self.config.hasher.account_id(email)
    }

    pub fn claims(&self, email: &str, role: Role) -> UserClaims {
        let now = chrono::Utc::now().timestamp();
        UserClaims {
            nbf: now - 5,
            iat: now - 5,
            exp: now + 3600,
            aud: AUD_USER_AUTH.into(),
            login_time: now - 5,
            role,
            account_id: self.account_id(email),
            email_address: Some(email.to_owned()),
        }
    }

    /// A valid session token, as login would issue it.
    pub fn token(&self, email: &str, role: Role) -> String {
        ooni_testkit::jwt_keys()
            .user
            .sign(&self.claims(email, role))
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    pub async fn get(
        &self,
        path: &str,
        token: Option<&str>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut r = self.http.get(self.url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        finish(r).await
    }

    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut r = self.http.post(self.url(path)).json(body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        finish(r).await
    }

    pub async fn put(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut r = self.http.put(self.url(path)).json(body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        finish(r).await
    }

    /// Starts the e-mail login and returns the login token read back from the SES emulator.
    pub async fn email_login_token(&self, email: &str, redirect_to: &str) -> String {
        let (status, body, _) = self
            .post(
                "/api/v1/user_register",
                None,
                &json!({"email_address": email, "redirect_to": redirect_to}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, json!({"msg": "ok"}));
        let to = email.trim().to_lowercase();
        let link = sent_login_link(&to).await;
        let link = link.expect("the emulator recorded the login e-mail");
        let token = link
            .split("token=")
            .nth(1)
            .expect("the link carries a token");
        percent_encoding::percent_decode_str(token)
            .decode_utf8()
            .unwrap()
            .into_owned()
    }

    /// Full v1 flow: register → e-mail → login; returns the session bearer.
    pub async fn login(&self, email: &str) -> String {
        let token = self
            .email_login_token(email, "https://explorer.ooni.org/")
            .await;
        let (status, body, _) = self
            .get(&format!("/api/v1/user_login?k={token}"), None)
            .await;
        assert_eq!(status, 200, "{body}");
        body["bearer"].as_str().unwrap().to_owned()
    }
}

async fn finish(r: reqwest::RequestBuilder) -> (u16, Value, reqwest::header::HeaderMap) {
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body, headers)
}

/// The login link of the last message the SES emulator recorded for `email` (polled for up
/// to five seconds: the emulator's state endpoint can lag under load).
pub async fn sent_login_link(email: &str) -> Option<String> {
    for _ in 0..50 {
        if let Some(link) = read_login_link(email).await {
            return Some(link);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    None
}

async fn read_login_link(email: &str) -> Option<String> {
    let url = format!("{}/moto-api/data.json", ooni_testkit::aws_endpoint());
    let data: Value = reqwest::get(url).await.ok()?.json().await.ok()?;
    let messages = data["ses"]["Message"].as_array()?;
    let body = messages.iter().rfind(|m| {
        m["destinations"]["ToAddresses"]
            .as_array()
            .is_some_and(|to| to.iter().any(|a| a.as_str() == Some(email)))
    })?["body"]
        .as_str()?
        .to_owned();
    let start = body.find("https://")?;
    let link: String = body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(*c))
        .collect();
    Some(link.trim_end_matches('"').to_owned())
}
