//! ensure_resources against the AWS emulator: everything template.yaml declares is
//! created with the right settings, and a second run changes nothing.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::HashMap;

use aws_sdk_sqs::types::QueueAttributeName;
use ooni_adapters::{ensure_resources, ResourceNames};

async fn queue_attributes(
    aws: &ooni_adapters::AwsClients,
    url: &str,
) -> HashMap<QueueAttributeName, String> {
    aws.sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .unwrap_or_default()
}

#[tokio::test]
async fn ensure_resources_creates_everything_and_is_idempotent() {
    let aws = common::aws().await;
    let names = ResourceNames::with_prefix(&common::unique("ooni-t-boot"));
    let first = ensure_resources(&aws, &names).await.expect("first run");
    let second = ensure_resources(&aws, &names).await.expect("second run");
    assert_eq!(first, second);
    assert!(first
        .submissions_queue_url
        .ends_with(&names.submissions_queue));
    assert!(first
        .submissions_dlq_url
        .ends_with(&names.submissions_dlq()));

    for bucket in names.buckets() {
        aws.s3
            .head_bucket()
            .bucket(bucket)
            .send()
            .await
            .unwrap_or_else(|e| panic!("bucket {bucket}: {e:?}"));
    }

    let main = queue_attributes(&aws, &first.submissions_queue_url).await;
    assert_eq!(
        main.get(&QueueAttributeName::VisibilityTimeout)
            .map(String::as_str),
        Some("120")
    );
    let redrive: serde_json::Value = serde_json::from_str(
        main.get(&QueueAttributeName::RedrivePolicy)
            .expect("redrive policy"),
    )
    .expect("json");
    assert_eq!(
        redrive["maxReceiveCount"].to_string().trim_matches('"'),
        "5"
    );
    let dlq = queue_attributes(&aws, &first.submissions_dlq_url).await;
    assert_eq!(
        redrive["deadLetterTargetArn"].as_str(),
        dlq.get(&QueueAttributeName::QueueArn).map(String::as_str)
    );
    assert_eq!(
        dlq.get(&QueueAttributeName::MessageRetentionPeriod)
            .map(String::as_str),
        Some("1209600")
    );

    for spec in names.tables() {
        let table = aws
            .dynamodb
            .describe_table()
            .table_name(&spec.name)
            .send()
            .await
            .expect("describe table");
        let table = table.table().expect("table description");
        let keys: Vec<(String, String)> = table
            .key_schema()
            .iter()
            .map(|k| {
                (
                    k.attribute_name().to_owned(),
                    k.key_type().as_str().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            keys,
            vec![("pk".into(), "HASH".into()), ("sk".into(), "RANGE".into())],
            "{}",
            spec.name
        );
        assert_eq!(
            table
                .billing_mode_summary()
                .and_then(|b| b.billing_mode())
                .map(|m| m.as_str()),
            Some("PAY_PER_REQUEST"),
            "{}",
            spec.name
        );
        let ttl = aws
            .dynamodb
            .describe_time_to_live()
            .table_name(&spec.name)
            .send()
            .await
            .expect("ttl");
        let enabled = ttl
            .time_to_live_description()
            .and_then(|d| d.time_to_live_status())
            .map(|s| s.as_str().to_owned());
        assert_eq!(
            enabled.as_deref() == Some("ENABLED"),
            spec.ttl,
            "ttl on {}",
            spec.name
        );
    }
}
