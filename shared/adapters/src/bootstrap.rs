//! Resource names from the environment (`ResourceNames`) and `ensure_resources`, which
//! idempotently creates the buckets, the submissions queue with its DLQ and the DynamoDB
//! tables on the local emulator — mirroring what `template.yaml` declares in AWS.

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use aws_sdk_sqs::types::QueueAttributeName;

use crate::aws::{sdk_failure, AwsClients, DEFAULT_REGION};
use crate::dynamo::{PK, SK, TTL};

/// Main queue visibility timeout (seconds); must exceed the consumer's timeout.
pub const QUEUE_VISIBILITY_TIMEOUT_SECS: u32 = 120;
/// Receives after which a message moves to the DLQ.
pub const QUEUE_MAX_RECEIVE_COUNT: u32 = 5;
/// DLQ retention (14 days, the SQS maximum).
pub const DLQ_RETENTION_SECS: u32 = 14 * 24 * 3600;

/// Names of every AWS resource the functions use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceNames {
    pub incoming_bucket: String,
    pub data_bucket: String,
    pub config_bucket: String,
    pub backup_bucket: String,
    /// Submissions queue name (its DLQ is `<name>-dlq`).
    pub submissions_queue: String,
    /// Submissions queue URL when configured (`OONI_SUBMISSIONS_QUEUE_URL`).
    pub submissions_queue_url: Option<String>,
    pub table_quotas: String,
    pub table_oonirun: String,
    pub table_findings: String,
    pub table_accounts: String,
    pub table_editor: String,
}

/// One DynamoDB table to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    pub name: String,
    /// Enable TTL on attribute `ttl`.
    pub ttl: bool,
}

impl Default for ResourceNames {
    /// The local defaults (`ooni-local-incoming`, ...).
    fn default() -> Self {
        Self::with_prefix("ooni-local")
    }
}

impl ResourceNames {
    /// Every name as `<prefix>-<role>` (tests use a unique prefix).
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            incoming_bucket: format!("{prefix}-incoming"),
            data_bucket: format!("{prefix}-data"),
            config_bucket: format!("{prefix}-config"),
            backup_bucket: format!("{prefix}-backup"),
            submissions_queue: format!("{prefix}-submissions"),
            submissions_queue_url: None,
            table_quotas: format!("{prefix}-quotas"),
            table_oonirun: format!("{prefix}-oonirun"),
            table_findings: format!("{prefix}-findings"),
            table_accounts: format!("{prefix}-accounts"),
            table_editor: format!("{prefix}-editor"),
        }
    }

    /// Names from the process environment, local defaults for what is unset.
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Names read through `lookup`: `OONI_INCOMING_BUCKET`, `OONI_DATA_BUCKET`,
    /// `OONI_CONFIG_BUCKET`, `OONI_BACKUP_BUCKET`, `OONI_SUBMISSIONS_QUEUE_URL` or
    /// `OONI_SUBMISSIONS_QUEUE_NAME`, `OONI_TABLE_QUOTAS`, `OONI_TABLE_OONIRUN`,
    /// `OONI_TABLE_FINDINGS`, `OONI_TABLE_ACCOUNTS`, `OONI_TABLE_EDITOR`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let defaults = Self::default();
        let get = |k: &str, d: String| lookup(k).filter(|v| !v.is_empty()).unwrap_or(d);
        let queue_url = lookup("OONI_SUBMISSIONS_QUEUE_URL").filter(|v| !v.is_empty());
        let queue_name = match &queue_url {
            Some(url) => queue_name_from_url(url)
                .unwrap_or(&defaults.submissions_queue)
                .to_owned(),
            None => get(
                "OONI_SUBMISSIONS_QUEUE_NAME",
                defaults.submissions_queue.clone(),
            ),
        };
        Self {
            incoming_bucket: get("OONI_INCOMING_BUCKET", defaults.incoming_bucket),
            data_bucket: get("OONI_DATA_BUCKET", defaults.data_bucket),
            config_bucket: get("OONI_CONFIG_BUCKET", defaults.config_bucket),
            backup_bucket: get("OONI_BACKUP_BUCKET", defaults.backup_bucket),
            submissions_queue: queue_name,
            submissions_queue_url: queue_url,
            table_quotas: get("OONI_TABLE_QUOTAS", defaults.table_quotas),
            table_oonirun: get("OONI_TABLE_OONIRUN", defaults.table_oonirun),
            table_findings: get("OONI_TABLE_FINDINGS", defaults.table_findings),
            table_accounts: get("OONI_TABLE_ACCOUNTS", defaults.table_accounts),
            table_editor: get("OONI_TABLE_EDITOR", defaults.table_editor),
        }
    }

    /// The submissions dead-letter queue name.
    pub fn submissions_dlq(&self) -> String {
        format!("{}-dlq", self.submissions_queue)
    }

    pub fn buckets(&self) -> [&str; 4] {
        [
            &self.incoming_bucket,
            &self.data_bucket,
            &self.config_bucket,
            &self.backup_bucket,
        ]
    }

    pub fn tables(&self) -> Vec<TableSpec> {
        let spec = |name: &String, ttl| TableSpec {
            name: name.clone(),
            ttl,
        };
        vec![
            spec(&self.table_quotas, true),
            spec(&self.table_oonirun, false),
            spec(&self.table_findings, false),
            spec(&self.table_accounts, false),
            spec(&self.table_editor, false),
        ]
    }
}

/// The last path segment of an SQS queue URL.
pub fn queue_name_from_url(url: &str) -> Option<&str> {
    url.trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty() && !s.contains(':'))
}

/// A resource could not be created or checked.
#[derive(Debug, thiserror::Error)]
#[error("bootstrap {operation} {resource} failed: {message}")]
pub struct BootstrapError {
    pub operation: &'static str,
    pub resource: String,
    pub message: String,
}

/// URLs of the queues `ensure_resources` made sure exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionedQueues {
    pub submissions_queue_url: String,
    pub submissions_dlq_url: String,
}

/// Creates whatever of `names` does not exist yet and converges queue attributes and TTL
/// settings. Safe to run repeatedly and concurrently with itself.
pub async fn ensure_resources(
    aws: &AwsClients,
    names: &ResourceNames,
) -> Result<ProvisionedQueues, BootstrapError> {
    for bucket in names.buckets() {
        ensure_bucket(aws, bucket).await?;
    }
    let queues = ensure_queue(aws, &names.submissions_queue, &names.submissions_dlq()).await?;
    for table in names.tables() {
        ensure_table(aws, &table).await?;
    }
    Ok(queues)
}

/// Creates `bucket` unless this account already owns it.
pub async fn ensure_bucket(aws: &AwsClients, bucket: &str) -> Result<(), BootstrapError> {
    let mut request = aws.s3.create_bucket().bucket(bucket);
    let region = aws.region().unwrap_or(DEFAULT_REGION);
    if region != DEFAULT_REGION {
        request = request.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region))
                .build(),
        );
    }
    match request.send().await {
        Ok(_) => {
            tracing::info!(bucket, "bucket created");
            Ok(())
        }
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_bucket_already_owned_by_you()) =>
        {
            Ok(())
        }
        Err(err) => Err(BootstrapError {
            operation: "create bucket",
            resource: bucket.to_owned(),
            message: sdk_failure(&err).message,
        }),
    }
}

/// Creates the DLQ and the main queue (redriving to it) and sets their attributes.
pub async fn ensure_queue(
    aws: &AwsClients,
    queue: &str,
    dlq: &str,
) -> Result<ProvisionedQueues, BootstrapError> {
    let dlq_url = create_queue(aws, dlq).await?;
    set_queue_attributes(
        aws,
        dlq,
        &dlq_url,
        vec![(
            QueueAttributeName::MessageRetentionPeriod,
            DLQ_RETENTION_SECS.to_string(),
        )],
    )
    .await?;
    let dlq_arn = aws
        .sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| BootstrapError {
            operation: "get queue arn",
            resource: dlq.to_owned(),
            message: sdk_failure(&e).message,
        })?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or_else(|| BootstrapError {
            operation: "get queue arn",
            resource: dlq.to_owned(),
            message: "no QueueArn attribute".into(),
        })?;
    let queue_url = create_queue(aws, queue).await?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": QUEUE_MAX_RECEIVE_COUNT.to_string(),
    });
    set_queue_attributes(
        aws,
        queue,
        &queue_url,
        vec![
            (
                QueueAttributeName::VisibilityTimeout,
                QUEUE_VISIBILITY_TIMEOUT_SECS.to_string(),
            ),
            (QueueAttributeName::RedrivePolicy, redrive.to_string()),
        ],
    )
    .await?;
    Ok(ProvisionedQueues {
        submissions_queue_url: queue_url,
        submissions_dlq_url: dlq_url,
    })
}

async fn create_queue(aws: &AwsClients, name: &str) -> Result<String, BootstrapError> {
    // Without attributes CreateQueue returns the existing queue's URL instead of failing
    // on attribute mismatch; attributes are then converged with SetQueueAttributes.
    let out = aws
        .sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| BootstrapError {
            operation: "create queue",
            resource: name.to_owned(),
            message: sdk_failure(&e).message,
        })?;
    out.queue_url.ok_or_else(|| BootstrapError {
        operation: "create queue",
        resource: name.to_owned(),
        message: "response carried no queue URL".into(),
    })
}

async fn set_queue_attributes(
    aws: &AwsClients,
    name: &str,
    url: &str,
    attributes: Vec<(QueueAttributeName, String)>,
) -> Result<(), BootstrapError> {
    aws.sqs
        .set_queue_attributes()
        .queue_url(url)
        .set_attributes(Some(attributes.into_iter().collect()))
        .send()
        .await
        .map_err(|e| BootstrapError {
            operation: "set queue attributes",
            resource: name.to_owned(),
            message: sdk_failure(&e).message,
        })?;
    Ok(())
}

/// Creates a (`pk`, `sk`) PAY_PER_REQUEST table, waits until it is active and enables
/// TTL on `ttl` when asked.
pub async fn ensure_table(aws: &AwsClients, table: &TableSpec) -> Result<(), BootstrapError> {
    let name = table.name.as_str();
    let err = |operation: &'static str| {
        move |message: String| BootstrapError {
            operation,
            resource: name.to_owned(),
            message,
        }
    };
    let key = |attr: &str, key_type| {
        KeySchemaElement::builder()
            .attribute_name(attr)
            .key_type(key_type)
            .build()
            .map_err(|e| e.to_string())
    };
    let def = |attr: &str| {
        AttributeDefinition::builder()
            .attribute_name(attr)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| e.to_string())
    };
    let result = aws
        .dynamodb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(PK, KeyType::Hash).map_err(err("create table"))?)
        .key_schema(key(SK, KeyType::Range).map_err(err("create table"))?)
        .attribute_definitions(def(PK).map_err(err("create table"))?)
        .attribute_definitions(def(SK).map_err(err("create table"))?)
        .send()
        .await;
    match result {
        Ok(_) => tracing::info!(table = name, "table created"),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) => {}
        Err(e) => return Err(err("create table")(sdk_failure(&e).message)),
    }
    wait_until_active(aws, name).await?;
    if table.ttl {
        let current = aws
            .dynamodb
            .describe_time_to_live()
            .table_name(name)
            .send()
            .await
            .map_err(|e| err("describe ttl")(sdk_failure(&e).message))?;
        let status = current
            .time_to_live_description()
            .and_then(|d| d.time_to_live_status());
        if !matches!(
            status,
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        ) {
            let spec = TimeToLiveSpecification::builder()
                .attribute_name(TTL)
                .enabled(true)
                .build()
                .map_err(|e| err("enable ttl")(e.to_string()))?;
            aws.dynamodb
                .update_time_to_live()
                .table_name(name)
                .time_to_live_specification(spec)
                .send()
                .await
                .map_err(|e| err("enable ttl")(sdk_failure(&e).message))?;
        }
    }
    Ok(())
}

async fn wait_until_active(aws: &AwsClients, name: &str) -> Result<(), BootstrapError> {
    for _ in 0..120 {
        let out = aws
            .dynamodb
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| BootstrapError {
                operation: "describe table",
                resource: name.to_owned(),
                message: sdk_failure(&e).message,
            })?;
        if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(BootstrapError {
        operation: "wait for table",
        resource: name.to_owned(),
        message: "not ACTIVE after 60 s".into(),
    })
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_local_names() {
        let n = ResourceNames::from_lookup(|_| None);
        assert_eq!(n.incoming_bucket, "ooni-local-incoming");
        assert_eq!(n.data_bucket, "ooni-local-data");
        assert_eq!(n.config_bucket, "ooni-local-config");
        assert_eq!(n.backup_bucket, "ooni-local-backup");
        assert_eq!(n.submissions_queue, "ooni-local-submissions");
        assert_eq!(n.submissions_dlq(), "ooni-local-submissions-dlq");
        assert_eq!(n.table_quotas, "ooni-local-quotas");
        assert_eq!(n.table_editor, "ooni-local-editor");
        assert_eq!(n.submissions_queue_url, None);
    }

    #[test]
    fn queue_name_comes_from_the_url_when_one_is_set() {
        let n = ResourceNames::from_lookup(|k| match k {
            "OONI_SUBMISSIONS_QUEUE_URL" => {
                Some("https://sqs.eu-west-1.amazonaws.com/123456789012/prod-subs".into())
            }
            "OONI_SUBMISSIONS_QUEUE_NAME" => Some("ignored".into()),
            "OONI_TABLE_QUOTAS" => Some("q".into()),
            _ => None,
        });
        assert_eq!(n.submissions_queue, "prod-subs");
        assert_eq!(n.submissions_dlq(), "prod-subs-dlq");
        assert_eq!(n.table_quotas, "q");
    }

    #[test]
    fn only_the_quotas_table_has_ttl() {
        let with_ttl: Vec<String> = ResourceNames::default()
            .tables()
            .into_iter()
            .filter(|t| t.ttl)
            .map(|t| t.name)
            .collect();
        assert_eq!(with_ttl, vec!["ooni-local-quotas".to_owned()]);
    }
}
