//! Settings of the accounts functions, read once at cold start: the account-id hashing key,
//! the admin e-mail list, session and login lifetimes, the e-mail sender and the collector id.

use crate::account::AccountHasher;
use ooni_platform::config::{ConfigError, Env};
use ooni_platform::Context;

#[derive(Debug, Clone)]
pub struct AccountsConfig {
    pub hasher: AccountHasher,
    /// Lowercased addresses that are always admins (`OONI_ADMIN_EMAILS`, comma-separated).
    pub admin_emails: Vec<String>,
    /// `OONI_SESSION_EXPIRY_DAYS` (default 10): lifetime of one session token.
    pub session_expiry_days: i64,
    /// `OONI_LOGIN_EXPIRY_DAYS` (default 10): how long after the e-mail login any refresh works.
    pub login_expiry_days: i64,
    /// `OONI_EMAIL_SOURCE_ADDRESS`: the login e-mails' sender.
    pub email_source: String,
    /// `OONI_COLLECTOR_ID` (0–99): the last two digits of finding ids.
    pub collector_id: u64,
    /// `OONI_STAGE == "local"`: the login link is also logged, for `ooni dev`.
    pub log_login_links: bool,
}

impl AccountsConfig {
    /// Reads the settings from `env`; the hashing key comes from `load_secret` (env or SSM).
    pub fn from_env(env: &Env, hasher: AccountHasher, stage: &str) -> Result<Self, ConfigError> {
        let collector_id: u64 = env.parse("OONI_COLLECTOR_ID", 0u64)?;
        if collector_id > 99 {
            return Err(ConfigError::Invalid {
                name: "OONI_COLLECTOR_ID".into(),
                reason: "must be 0..=99".into(),
            });
        }
        let days = |name: &str| -> Result<i64, ConfigError> {
            let d: i64 = env.parse(name, 10i64)?;
            if d <= 0 {
                return Err(ConfigError::Invalid {
                    name: name.into(),
                    reason: "must be positive".into(),
                });
            }
            Ok(d)
        };
        Ok(AccountsConfig {
            hasher,
            admin_emails: env
                .list("OONI_ADMIN_EMAILS")
                .into_iter()
                .map(|e| e.to_lowercase())
                .collect(),
            session_expiry_days: days("OONI_SESSION_EXPIRY_DAYS")?,
            login_expiry_days: days("OONI_LOGIN_EXPIRY_DAYS")?,
            email_source: env.string("OONI_EMAIL_SOURCE_ADDRESS", "contact@ooni.io"),
            collector_id,
            log_login_links: stage == "local",
        })
    }

    /// The configuration of this process: env settings plus the hashing key secret.
    pub async fn load(ctx: &Context) -> anyhow::Result<Self> {
        let key = ctx.aws.load_secret("OONI_ACCOUNT_ID_HASHING_KEY").await?;
        let hasher = AccountHasher::new(key)?;
        Ok(Self::from_env(&Env::process(), hasher, &ctx.http.stage)?)
    }

    pub fn is_admin_email(&self, email: &str) -> bool {
        self.admin_emails.iter().any(|e| e == email)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ooni_platform::config::Secret;

    #[test]
    fn admin_emails_are_lowercased_and_lifetimes_default_to_ten_days() {
        let env = Env::from_fn(|k| {
            (k == "OONI_ADMIN_EMAILS").then(|| " Admin@Example.org ,b@c.org".to_string())
        });
        let c =
            AccountsConfig::from_env(&env, AccountHasher::new(Secret::new("k")).unwrap(), "local")
                .unwrap();
        assert!(c.is_admin_email("admin@example.org"));
        assert!(c.is_admin_email("b@c.org"));
        assert!(!c.is_admin_email("x@c.org"));
        assert_eq!((c.session_expiry_days, c.login_expiry_days), (10, 10));
        assert!(c.log_login_links);
    }

    #[test]
    fn a_collector_id_over_99_is_refused() {
        let env = Env::from_fn(|k| (k == "OONI_COLLECTOR_ID").then(|| "100".to_string()));
        let err =
            AccountsConfig::from_env(&env, AccountHasher::new(Secret::new("k")).unwrap(), "prod")
                .unwrap_err();
        assert!(err.to_string().contains("OONI_COLLECTOR_ID"));
    }
}
