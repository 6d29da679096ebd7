//! Per-user editor state in DynamoDB (`Table::Editor`): one item per account
//! (`pk = editor#<account_id>`, `sk = draft`) holding the user's [`Draft`] as JSON and a
//! version number for optimistic concurrency (every write is conditional on the version read,
//! standing in for upstream's per-user file lock). No item means the user is CLEAN.

use crate::editor::testlist::Edit;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

/// Where a user's draft stands (CLEAN is the absence of a draft).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DraftState {
    InProgress,
    PrOpen,
}

impl DraftState {
    pub fn as_str(self) -> &'static str {
        match self {
            DraftState::InProgress => "IN_PROGRESS",
            DraftState::PrOpen => "PR_OPEN",
        }
    }
}

/// A user's pending changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    pub state: DraftState,
    /// The origin commit the edits apply to (master when the first edit was made).
    pub base_sha: String,
    pub base_tree: String,
    pub edits: Vec<Edit>,
    /// The pull request's API URL while one is open.
    #[serde(default)]
    pub pr_url: Option<String>,
    /// Set while the editor itself closes the pull request (so a closed PR is not taken
    /// for a rejected one if the run dies before recording IN_PROGRESS).
    #[serde(default)]
    pub closing: bool,
}

/// A draft with the version it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    pub draft: Draft,
    pub version: i64,
}

#[async_trait]
pub trait EditorStore: Send + Sync {
    async fn load(&self, account_id: &str) -> anyhow::Result<Option<Versioned>>;
    /// Writes `draft` if the stored version is still `expected` (`None`: no draft stored).
    /// Returns the new version, or `None` on a conflict.
    async fn save(
        &self,
        account_id: &str,
        draft: &Draft,
        expected: Option<i64>,
    ) -> anyhow::Result<Option<i64>>;
    /// Deletes the draft if the stored version is still `expected`; false on a conflict.
    async fn clear(&self, account_id: &str, expected: i64) -> anyhow::Result<bool>;
}

/// [`EditorStore`] on a DynamoDB table with string keys `pk`, `sk`.
pub struct DynamoEditorStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

const SK: &str = "draft";

fn pk(account_id: &str) -> String {
    format!("editor#{account_id}")
}

impl DynamoEditorStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoEditorStore {
            client,
            table: table.into(),
        }
    }

    fn key(account_id: &str) -> std::collections::HashMap<String, AttributeValue> {
        [
            ("pk".to_owned(), AttributeValue::S(pk(account_id))),
            ("sk".to_owned(), AttributeValue::S(SK.into())),
        ]
        .into()
    }
}

fn is_conditional_failure<E: aws_sdk_dynamodb::error::ProvideErrorMetadata>(e: &E) -> bool {
    e.code() == Some("ConditionalCheckFailedException")
}

#[async_trait]
impl EditorStore for DynamoEditorStore {
    async fn load(&self, account_id: &str) -> anyhow::Result<Option<Versioned>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(account_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "DynamoDB get_item on {}: {}",
                    self.table,
                    aws_sdk_dynamodb::error::DisplayErrorContext(e)
                )
            })?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let doc = item
            .get("doc")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| anyhow::anyhow!("editor item without doc"))?;
        let version = item
            .get("version")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("editor item without version"))?;
        Ok(Some(Versioned {
            draft: serde_json::from_str(doc)?,
            version,
        }))
    }

    async fn save(
        &self,
        account_id: &str,
        draft: &Draft,
        expected: Option<i64>,
    ) -> anyhow::Result<Option<i64>> {
        let version = expected.unwrap_or(0) + 1;
        let mut item = Self::key(account_id);
        item.insert(
            "doc".into(),
            AttributeValue::S(serde_json::to_string(draft)?),
        );
        item.insert("version".into(), AttributeValue::N(version.to_string()));
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        req = match expected {
            None => req.condition_expression("attribute_not_exists(pk)"),
            Some(v) => req
                .condition_expression("version = :v")
                .expression_attribute_values(":v", AttributeValue::N(v.to_string())),
        };
        match req.send().await {
            Ok(_) => Ok(Some(version)),
            Err(e) if e.as_service_error().is_some_and(is_conditional_failure) => Ok(None),
            Err(e) => Err(anyhow::anyhow!(
                "DynamoDB put_item on {}: {}",
                self.table,
                aws_sdk_dynamodb::error::DisplayErrorContext(e)
            )),
        }
    }

    async fn clear(&self, account_id: &str, expected: i64) -> anyhow::Result<bool> {
        let r = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(account_id)))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", AttributeValue::N(expected.to_string()))
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(is_conditional_failure) => Ok(false),
            Err(e) => Err(anyhow::anyhow!(
                "DynamoDB delete_item on {}: {}",
                self.table,
                aws_sdk_dynamodb::error::DisplayErrorContext(e)
            )),
        }
    }
}
