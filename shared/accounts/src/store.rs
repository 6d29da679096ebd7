//! The accounts table: per-account role overrides and session-expunge thresholds, and the
//! [`SessionPolicy`] built on it that the shared `UserAuth` extractor consults.
//!
//! Items (string keys `pk`, `sk`): `pk = "account#<account_id>"` with `sk = "role"`
//! (`role`: `user` | `admin`) or `sk = "expunge"` (`threshold`: unix seconds). No e-mail
//! address is stored, only the keyed hash.

use async_trait::async_trait;
use ooni_adapters::dynamo::{item_i64, item_str};
use ooni_adapters::{DynamoError, DynamoTable, ItemBuilder};
use ooni_platform::auth::{Role, SessionPolicy};

fn pk(account_id: &str) -> String {
    format!("account#{account_id}")
}

/// Role and expunge records of accounts.
#[async_trait]
pub trait AccountStore: Send + Sync {
    async fn role(&self, account_id: &str) -> Result<Option<Role>, DynamoError>;
    async fn set_role(&self, account_id: &str, role: Role) -> Result<(), DynamoError>;
    async fn expunge_threshold(&self, account_id: &str) -> Result<Option<i64>, DynamoError>;
    async fn set_expunge_threshold(
        &self,
        account_id: &str,
        threshold: i64,
    ) -> Result<(), DynamoError>;
}

/// [`AccountStore`] over the DynamoDB accounts table.
#[derive(Debug, Clone)]
pub struct DynamoAccountStore {
    table: DynamoTable,
}

impl DynamoAccountStore {
    pub fn new(table: DynamoTable) -> Self {
        DynamoAccountStore { table }
    }
}

#[async_trait]
impl AccountStore for DynamoAccountStore {
    async fn role(&self, account_id: &str) -> Result<Option<Role>, DynamoError> {
        let item = self.table.get(&pk(account_id), "role").await?;
        Ok(item
            .as_ref()
            .and_then(|i| item_str(i, "role"))
            .and_then(|r| match r {
                "admin" => Some(Role::Admin),
                "user" => Some(Role::User),
                _ => None,
            }))
    }

    async fn set_role(&self, account_id: &str, role: Role) -> Result<(), DynamoError> {
        let item = ItemBuilder::new(pk(account_id), "role")
            .string("role", role.as_str())
            .number("updated", chrono::Utc::now().timestamp())
            .build();
        self.table.put(item).await
    }

    async fn expunge_threshold(&self, account_id: &str) -> Result<Option<i64>, DynamoError> {
        let item = self.table.get(&pk(account_id), "expunge").await?;
        Ok(item.as_ref().and_then(|i| item_i64(i, "threshold")))
    }

    async fn set_expunge_threshold(
        &self,
        account_id: &str,
        threshold: i64,
    ) -> Result<(), DynamoError> {
        let item = ItemBuilder::new(pk(account_id), "expunge")
            .number("threshold", threshold)
            .build();
        self.table.put(item).await
    }
}

/// The expunge hook of `UserAuth`: sessions with `iat` before the account's threshold fail.
pub struct StoreSessionPolicy<S: ?Sized> {
    store: std::sync::Arc<S>,
}

impl<S: ?Sized> StoreSessionPolicy<S> {
    pub fn new(store: std::sync::Arc<S>) -> Self {
        StoreSessionPolicy { store }
    }
}

#[async_trait]
impl<S: AccountStore + ?Sized> SessionPolicy for StoreSessionPolicy<S> {
    async fn expunge_threshold(&self, account_id: &str) -> anyhow::Result<Option<i64>> {
        Ok(self.store.expunge_threshold(account_id).await?)
    }
}

/// An in-memory [`AccountStore`] for unit tests.
#[derive(Debug, Default)]
pub struct MemoryAccountStore {
    roles: std::sync::Mutex<std::collections::HashMap<String, Role>>,
    thresholds: std::sync::Mutex<std::collections::HashMap<String, i64>>,
}

#[async_trait]
impl AccountStore for MemoryAccountStore {
    async fn role(&self, account_id: &str) -> Result<Option<Role>, DynamoError> {
        Ok(self
            .roles
            .lock()
            .map(|m| m.get(account_id).copied())
            .unwrap_or(None))
    }
    async fn set_role(&self, account_id: &str, role: Role) -> Result<(), DynamoError> {
        if let Ok(mut m) = self.roles.lock() {
            m.insert(account_id.to_owned(), role);
        }
        Ok(())
    }
    async fn expunge_threshold(&self, account_id: &str) -> Result<Option<i64>, DynamoError> {
        Ok(self
            .thresholds
            .lock()
            .map(|m| m.get(account_id).copied())
            .unwrap_or(None))
    }
    async fn set_expunge_threshold(
        &self,
        account_id: &str,
        threshold: i64,
    ) -> Result<(), DynamoError> {
        if let Ok(mut m) = self.thresholds.lock() {
            m.insert(account_id.to_owned(), threshold);
        }
        Ok(())
    }
}
