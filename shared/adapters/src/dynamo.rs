//! `DynamoTable`: a small typed helper over one DynamoDB table with string keys `pk`
//! (hash) and `sk` (range) and an optional epoch-seconds TTL attribute `ttl` — the shape
//! of every table in this project.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use crate::aws::sdk_failure;

/// Hash key attribute name.
pub const PK: &str = "pk";
/// Range key attribute name.
pub const SK: &str = "sk";
/// TTL attribute name (epoch seconds).
pub const TTL: &str = "ttl";

/// One DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// DynamoDB failures. `Unavailable` is worth retrying.
#[derive(Debug, thiserror::Error)]
pub enum DynamoError {
    /// Network failure, timeout, throttling or a 5xx.
    #[error("DynamoDB unavailable during {operation} on {table}: {message}")]
    Unavailable {
        operation: &'static str,
        table: String,
        message: String,
    },
    /// DynamoDB refused the request (missing table, validation error, ...).
    #[error("DynamoDB rejected {operation} on {table}: {message}")]
    Rejected {
        operation: &'static str,
        table: String,
        message: String,
    },
    /// The item lacks a string `pk` or `sk`, or an attribute has an unexpected type.
    #[error("invalid item for {table}: {message}")]
    InvalidItem { table: String, message: String },
}

impl DynamoError {
    /// True when retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

/// Builds an [`Item`] with its keys set.
#[derive(Debug, Clone)]
pub struct ItemBuilder(Item);

impl ItemBuilder {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        let mut item = Item::new();
        item.insert(PK.into(), AttributeValue::S(pk.into()));
        item.insert(SK.into(), AttributeValue::S(sk.into()));
        Self(item)
    }

    /// Sets a string attribute.
    pub fn string(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.insert(name.into(), AttributeValue::S(value.into()));
        self
    }

    /// Sets a number attribute.
    pub fn number(mut self, name: impl Into<String>, value: i64) -> Self {
        self.0
            .insert(name.into(), AttributeValue::N(value.to_string()));
        self
    }

    /// Sets a boolean attribute.
    pub fn boolean(mut self, name: impl Into<String>, value: bool) -> Self {
        self.0.insert(name.into(), AttributeValue::Bool(value));
        self
    }

    /// Sets any attribute.
    pub fn attr(mut self, name: impl Into<String>, value: AttributeValue) -> Self {
        self.0.insert(name.into(), value);
        self
    }

    /// Sets the TTL attribute (epoch seconds after which DynamoDB may delete the item).
    pub fn ttl(self, expires_at_epoch_secs: i64) -> Self {
        self.number(TTL, expires_at_epoch_secs)
    }

    pub fn build(self) -> Item {
        self.0
    }
}

/// A string attribute of `item`.
pub fn item_str<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

/// A number attribute of `item` that fits an `i64`.
pub fn item_i64(item: &Item, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
}

/// True when `item` has a TTL at or before `now_epoch_secs`. DynamoDB deletes expired
/// items lazily (up to days later), so readers that care must check this themselves.
pub fn is_expired(item: &Item, now_epoch_secs: i64) -> bool {
    item_i64(item, TTL).is_some_and(|ttl| ttl <= now_epoch_secs)
}

/// Options for [`DynamoTable::query`].
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    /// Only items whose `sk` starts with this.
    pub sk_prefix: Option<String>,
    /// At most this many items in the page.
    pub limit: Option<i32>,
    /// Sort by `sk` descending instead of ascending.
    pub descending: bool,
    /// `last_evaluated_key` of the previous page.
    pub start_key: Option<Item>,
}

/// One page of a query.
#[derive(Debug, Clone, Default)]
pub struct QueryPage {
    pub items: Vec<Item>,
    /// Pass as `QueryOptions::start_key` to get the next page; `None` on the last page.
    pub last_evaluated_key: Option<Item>,
}

/// One DynamoDB table keyed by (`pk`, `sk`).
#[derive(Debug, Clone)]
pub struct DynamoTable {
    client: aws_sdk_dynamodb::Client,
    table_name: String,
}

impl DynamoTable {
    pub fn new(client: aws_sdk_dynamodb::Client, table_name: impl Into<String>) -> Self {
        Self {
            client,
            table_name: table_name.into(),
        }
    }

    pub fn table_name(&self) -> &str {
        &self.table_name
    }

    fn key(pk: &str, sk: &str) -> Item {
        ItemBuilder::new(pk, sk).build()
    }

    fn check_keys(&self, item: &Item) -> Result<(), DynamoError> {
        if item_str(item, PK).is_none() || item_str(item, SK).is_none() {
            return Err(DynamoError::InvalidItem {
                table: self.table_name.clone(),
                message: "item needs string attributes pk and sk".into(),
            });
        }
        Ok(())
    }

    fn classify<E>(
        &self,
        operation: &'static str,
        err: &aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
    ) -> DynamoError
    where
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        let f = sdk_failure(err);
        let table = self.table_name.clone();
        if f.transient {
            DynamoError::Unavailable {
                operation,
                table,
                message: f.message,
            }
        } else {
            DynamoError::Rejected {
                operation,
                table,
                message: f.message,
            }
        }
    }

    /// The item at (`pk`, `sk`), read strongly consistently; `None` when absent.
    pub async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, DynamoError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table_name)
            .set_key(Some(Self::key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.classify("get_item", &e))?;
        Ok(out.item)
    }

    /// Writes `item` (which must carry string `pk` and `sk`), replacing any existing one.
    pub async fn put(&self, item: Item) -> Result<(), DynamoError> {
        self.check_keys(&item)?;
        self.client
            .put_item()
            .table_name(&self.table_name)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| self.classify("put_item", &e))?;
        Ok(())
    }

    /// Writes `item` only if no item has its keys. Returns `false` (and writes nothing)
    /// when one already exists.
    pub async fn put_if_not_exists(&self, item: Item) -> Result<bool, DynamoError> {
        self.check_keys(&item)?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table_name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(err) => Err(self.classify("put_item", &err)),
        }
    }

    /// Deletes the item at (`pk`, `sk`); deleting a missing item succeeds.
    pub async fn delete(&self, pk: &str, sk: &str) -> Result<(), DynamoError> {
        self.client
            .delete_item()
            .table_name(&self.table_name)
            .set_key(Some(Self::key(pk, sk)))
            .send()
            .await
            .map_err(|e| self.classify("delete_item", &e))?;
        Ok(())
    }

    /// Atomically adds `by` to number attribute `attr` (creating the item and attribute at
    /// 0 if absent) and returns the new value.
    pub async fn increment(
        &self,
        pk: &str,
        sk: &str,
        attr: &str,
        by: i64,
    ) -> Result<i64, DynamoError> {
        self.update_counter(pk, sk, attr, by, None).await
    }

    /// Like [`DynamoTable::increment`], and sets `ttl` to `expires_at_epoch_secs` if the
    /// item has none yet (a rate-limit window that expires on its own).
    pub async fn increment_with_ttl(
        &self,
        pk: &str,
        sk: &str,
        attr: &str,
        by: i64,
        expires_at_epoch_secs: i64,
    ) -> Result<i64, DynamoError> {
        self.update_counter(pk, sk, attr, by, Some(expires_at_epoch_secs))
            .await
    }

    async fn update_counter(
        &self,
        pk: &str,
        sk: &str,
        attr: &str,
        by: i64,
        ttl: Option<i64>,
    ) -> Result<i64, DynamoError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table_name)
            .set_key(Some(Self::key(pk, sk)))
            .expression_attribute_names("#a", attr)
            .expression_attribute_values(":by", AttributeValue::N(by.to_string()))
            .return_values(ReturnValue::UpdatedNew);
        request = match ttl {
            Some(ttl) => request
                .update_expression("ADD #a :by SET #ttl = if_not_exists(#ttl, :ttl)")
                .expression_attribute_names("#ttl", TTL)
                .expression_attribute_values(":ttl", AttributeValue::N(ttl.to_string())),
            None => request.update_expression("ADD #a :by"),
        };
        let out = request
            .send()
            .await
            .map_err(|e| self.classify("update_item", &e))?;
        out.attributes
            .as_ref()
            .and_then(|a| item_i64(a, attr))
            .ok_or_else(|| DynamoError::InvalidItem {
                table: self.table_name.clone(),
                message: format!("counter {attr} is missing or not an integer after update"),
            })
    }

    /// One page of the items under `pk`, ordered by `sk`.
    pub async fn query(&self, pk: &str, options: QueryOptions) -> Result<QueryPage, DynamoError> {
        let mut request = self
            .client
            .query()
            .table_name(&self.table_name)
            .consistent_read(true)
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
            .scan_index_forward(!options.descending)
            .set_limit(options.limit)
            .set_exclusive_start_key(options.start_key);
        request = match options.sk_prefix {
            Some(prefix) => request
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :skp)")
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":skp", AttributeValue::S(prefix)),
            None => request.key_condition_expression("#pk = :pk"),
        };
        let out = request
            .send()
            .await
            .map_err(|e| self.classify("query", &e))?;
        Ok(QueryPage {
            items: out.items.unwrap_or_default(),
            last_evaluated_key: out.last_evaluated_key.filter(|k| !k.is_empty()),
        })
    }

    /// Every item under `pk` (following pages), ordered by `sk`.
    pub async fn query_all(
        &self,
        pk: &str,
        sk_prefix: Option<&str>,
    ) -> Result<Vec<Item>, DynamoError> {
        let mut items = Vec::new();
        let mut start_key = None;
        loop {
            let page = self
                .query(
                    pk,
                    QueryOptions {
                        sk_prefix: sk_prefix.map(str::to_owned),
                        start_key,
                        ..QueryOptions::default()
                    },
                )
                .await?;
            items.extend(page.items);
            match page.last_evaluated_key {
                Some(key) => start_key = Some(key),
                None => return Ok(items),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn item_builder_sets_keys_and_typed_attributes() {
        let item = ItemBuilder::new("a", "b")
            .string("s", "x")
            .number("n", -3)
            .ttl(100)
            .build();
        assert_eq!(item_str(&item, PK), Some("a"));
        assert_eq!(item_str(&item, SK), Some("b"));
        assert_eq!(item_str(&item, "s"), Some("x"));
        assert_eq!(item_i64(&item, "n"), Some(-3));
        assert_eq!(item_i64(&item, TTL), Some(100));
    }

    #[test]
    fn an_item_is_expired_once_its_ttl_has_passed() {
        let item = ItemBuilder::new("a", "b").ttl(100).build();
        assert!(!is_expired(&item, 99));
        assert!(is_expired(&item, 100));
        assert!(!is_expired(&ItemBuilder::new("a", "b").build(), i64::MAX));
    }
}
