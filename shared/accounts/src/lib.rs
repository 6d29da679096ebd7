//! Accounts and sessions, OONI Run v2 links, findings and measurement feedback: the
//! `ooni-accounts` area crate behind every function with `binary: Binary::Accounts`.
//!
//! - [`account`]: account ids (keyed BLAKE2b), e-mail and redirect validation, login links.
//! - [`auth`]: register/login/refresh/session routes, roles, session expunge.
//! - [`store`]: the accounts table and the [`SessionPolicy`] given to `UserAuth`.
//! - [`oonirun`]: OONI Run v2 links; [`prio`]: the ClickHouse reads behind dynamic targets.
//! - [`findings`]: findings (incidents); [`feedback`]: measurement feedback.
//!
//! Other crates that need a user or admin build the same extractor with [`user_auth`].

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod account;
pub mod auth;
pub mod config;
pub mod feedback;
pub mod findings;
pub mod mailer;
pub mod oonirun;
pub mod prio;
pub mod store;
pub mod util;

use async_trait::async_trait;
use ooni_platform::auth::{JwtKeys, SessionPolicy, UserAuth};
use ooni_platform::functions::Table;
use ooni_platform::{fn_handler, Context, Handler, Service};
use std::sync::Arc;
use tokio::sync::OnceCell;

pub use config::AccountsConfig;

/// The session policy of the accounts table (sessions issued before an expunge fail).
pub fn session_policy(ctx: &Context) -> Arc<dyn SessionPolicy> {
    let store = Arc::new(store::DynamoAccountStore::new(ctx.table(Table::Accounts)));
    Arc::new(store::StoreSessionPolicy::new(store))
}

/// The shared user-authentication extractor with the accounts table's expunge policy: every
/// route of every crate that needs a user or an admin uses this.
pub async fn user_auth(ctx: &Context) -> anyhow::Result<UserAuth> {
    let keys = ctx.jwt_keys().await?;
    Ok(UserAuth::new(&keys, Some(session_policy(ctx))))
}

/// Everything the handlers share, built once per process.
pub struct State {
    pub config: AccountsConfig,
    pub keys: JwtKeys,
    pub auth: UserAuth,
    /// The same verification without the expunge lookup, for the public OONI Run reads that
    /// only use a session for `is_mine` and have no access to the accounts table.
    pub public_auth: UserAuth,
    pub accounts: Arc<dyn store::AccountStore>,
    pub mailer: Arc<dyn mailer::Mailer>,
    pub links: oonirun::LinkStore,
    pub findings: findings::FindingStore,
    pub targets: Arc<dyn prio::TargetsSource>,
    pub feedback: Arc<dyn feedback::FeedbackStore>,
}

impl State {
    /// State over the context's tables, ClickHouse and SES.
    pub async fn build(ctx: &Context, config: AccountsConfig) -> anyhow::Result<Self> {
        let keys = ctx.jwt_keys().await?;
        let accounts = Arc::new(store::DynamoAccountStore::new(ctx.table(Table::Accounts)));
        let auth = UserAuth::new(
            &keys,
            Some(Arc::new(store::StoreSessionPolicy::new(accounts.clone()))),
        );
        let public_auth = UserAuth::new(&keys, None);
        let mailer = Arc::new(mailer::SesMailer::new(&ctx.aws, config.email_source.clone()).await);
        Ok(State {
            config,
            keys,
            auth,
            public_auth,
            accounts,
            mailer,
            links: oonirun::LinkStore::new(ctx.table(Table::Oonirun)),
            findings: findings::FindingStore::new(ctx.table(Table::Findings)),
            targets: Arc::new(prio::ClickHouseTargets::new(ctx.clickhouse())),
            feedback: Arc::new(feedback::ClickHouseFeedback::new(ctx.clickhouse())),
        })
    }
}

/// Names of the functions this crate serves.
pub const FUNCTIONS: [&str; 20] = [
    "UserRegister",
    "UserLogin",
    "UserRefreshToken",
    "AccountMetadata",
    "AuthUserLogin",
    "AuthUserSession",
    "SetAccountRole",
    "GetAccountRole",
    "SetSessionExpunge",
    "OonirunCreate",
    "OonirunEdit",
    "OonirunGet",
    "OonirunFullDescriptor",
    "OonirunEngineDescriptor",
    "OonirunRevisions",
    "OonirunList",
    "IncidentsSearch",
    "IncidentsShow",
    "IncidentsWrite",
    "MeasurementFeedback",
];

/// The accounts area service.
pub struct AccountsService {
    ctx: Arc<Context>,
    config: Option<AccountsConfig>,
    state: OnceCell<Arc<State>>,
}

impl AccountsService {
    /// Configuration from the environment (and SSM for the hashing key) at first build.
    pub fn new(ctx: Arc<Context>) -> Self {
        AccountsService {
            ctx,
            config: None,
            state: OnceCell::new(),
        }
    }

    /// With an explicit configuration (tests, the dev server).
    pub fn with_config(ctx: Arc<Context>, config: AccountsConfig) -> Self {
        AccountsService {
            ctx,
            config: Some(config),
            state: OnceCell::new(),
        }
    }

    /// With ready-made state (unit tests with in-memory ports).
    pub fn with_state(ctx: Arc<Context>, state: State) -> Self {
        AccountsService {
            ctx,
            config: None,
            state: OnceCell::new_with(Some(Arc::new(state))),
        }
    }

    async fn state(&self) -> anyhow::Result<Arc<State>> {
        self.state
            .get_or_try_init(|| async {
                let config = match &self.config {
                    Some(c) => c.clone(),
                    None => AccountsConfig::load(&self.ctx).await?,
                };
                State::build(&self.ctx, config).await.map(Arc::new)
            })
            .await
            .cloned()
    }
}

async fn auth_user_session(s: Arc<State>, req: lambda_http::Request) -> ooni_platform::HttpResult {
    if req.method() == http::Method::POST {
        auth::v2_create_user_session(s, req).await
    } else {
        auth::v2_get_user_session(s, req).await
    }
}

#[async_trait]
impl Service for AccountsService {
    fn functions(&self) -> Vec<&'static str> {
        FUNCTIONS.to_vec()
    }

    async fn build(&self, function: &str) -> anyhow::Result<Option<Handler>> {
        if !FUNCTIONS.contains(&function) {
            return Ok(None);
        }
        let s = self.state().await?;
        let h = match function {
            "UserRegister" => fn_handler(s, auth::user_register),
            "UserLogin" => fn_handler(s, auth::user_login),
            "UserRefreshToken" => fn_handler(s, auth::user_refresh_token),
            "AccountMetadata" => fn_handler(s, auth::account_metadata),
            "AuthUserLogin" => fn_handler(s, auth::v2_user_login),
            "AuthUserSession" => fn_handler(s, auth_user_session),
            "SetAccountRole" => fn_handler(s, auth::set_account_role),
            "GetAccountRole" => fn_handler(s, auth::get_account_role),
            "SetSessionExpunge" => fn_handler(s, auth::set_session_expunge),
            "OonirunCreate" => fn_handler(s, oonirun::create),
            "OonirunEdit" => fn_handler(s, oonirun::edit),
            "OonirunGet" => fn_handler(s, oonirun::get),
            "OonirunFullDescriptor" => fn_handler(s, oonirun::full_descriptor),
            "OonirunEngineDescriptor" => fn_handler(s, oonirun::engine_descriptor),
            "OonirunRevisions" => fn_handler(s, oonirun::revisions),
            "OonirunList" => fn_handler(s, oonirun::list),
            "IncidentsSearch" => fn_handler(s, findings::search),
            "IncidentsShow" => fn_handler(s, findings::show),
            "IncidentsWrite" => fn_handler(s, findings::write),
            "MeasurementFeedback" => fn_handler(s, feedback::route),
            _ => return Ok(None),
        };
        Ok(Some(h))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ooni_platform::functions::{Binary, FUNCTIONS as ALL};

    #[test]
    fn this_crate_serves_exactly_the_accounts_binary_functions() {
        let mut ours: Vec<&str> = FUNCTIONS.to_vec();
        let mut table: Vec<&str> = ALL
            .iter()
            .filter(|f| f.binary == Binary::Accounts)
            .map(|f| f.name)
            .collect();
        ours.sort_unstable();
        table.sort_unstable();
        assert_eq!(ours, table);
    }
}
