//! DynamoTable against the AWS emulator: put/get, conditional put, atomic counters under
//! concurrency, TTL, queries with prefix and paging.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use ooni_adapters::bootstrap::{ensure_table, TableSpec};
use ooni_adapters::dynamo::{item_i64, item_str, QueryOptions, TTL};
use ooni_adapters::{DynamoTable, ItemBuilder};

async fn table(ttl: bool) -> (ooni_adapters::AwsClients, DynamoTable) {
    let aws = common::aws().await;
    let name = common::unique("ooni-t-tbl");
    ensure_table(
        &aws,
        &TableSpec {
            name: name.clone(),
            ttl,
        },
    )
    .await
    .expect("create table");
    let table = DynamoTable::new(aws.dynamodb.clone(), name);
    (aws, table)
}

#[tokio::test]
async fn put_then_get_returns_the_item_and_delete_removes_it() {
    let (_aws, t) = table(false).await;
    let item = ItemBuilder::new("run#1", "v#0001")
        .string("name", "Descriptor")
        .number("n", 42)
        .boolean("ok", true)
        .build();
    t.put(item.clone()).await.expect("put");
    let got = t
        .get("run#1", "v#0001")
        .await
        .expect("get")
        .expect("item exists");
    assert_eq!(got, item);
    assert_eq!(item_str(&got, "name"), Some("Descriptor"));
    assert_eq!(item_i64(&got, "n"), Some(42));
    assert_eq!(t.get("run#1", "v#0002").await.expect("get other"), None);
    t.delete("run#1", "v#0001").await.expect("delete");
    assert_eq!(
        t.get("run#1", "v#0001").await.expect("get after delete"),
        None
    );
}

#[tokio::test]
async fn put_if_not_exists_keeps_the_first_item() {
    let (_aws, t) = table(false).await;
    assert!(t
        .put_if_not_exists(ItemBuilder::new("a", "b").string("v", "first").build())
        .await
        .expect("first"));
    assert!(!t
        .put_if_not_exists(ItemBuilder::new("a", "b").string("v", "second").build())
        .await
        .expect("second"));
    let got = t.get("a", "b").await.expect("get").expect("exists");
    assert_eq!(item_str(&got, "v"), Some("first"));
}

#[tokio::test]
async fn an_item_without_keys_is_refused_before_any_request() {
    let (_aws, t) = table(false).await;
    let mut item = ItemBuilder::new("a", "b").build();
    item.remove("sk");
    let err = t.put(item).await.expect_err("no sk");
    assert!(
        matches!(err, ooni_adapters::DynamoError::InvalidItem { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn twenty_concurrent_increments_end_at_twenty() {
    let (_aws, t) = table(false).await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            t.increment("quota#1.2.3.4", "2024-01-01", "count", 1).await
        }));
    }
    let mut seen = Vec::new();
    for task in tasks {
        seen.push(task.await.expect("join").expect("increment"));
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=20).collect::<Vec<i64>>(),
        "each increment saw a distinct new value"
    );
    let item = t
        .get("quota#1.2.3.4", "2024-01-01")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(item_i64(&item, "count"), Some(20));
    assert_eq!(
        t.increment("quota#1.2.3.4", "2024-01-01", "count", -5)
            .await
            .expect("decrement"),
        15
    );
}

#[tokio::test]
async fn increment_with_ttl_sets_the_ttl_only_once() {
    let (aws, t) = table(true).await;
    assert_eq!(
        t.increment_with_ttl("k", "w", "c", 2, 1_000)
            .await
            .expect("first"),
        2
    );
    assert_eq!(
        t.increment_with_ttl("k", "w", "c", 3, 2_000)
            .await
            .expect("second"),
        5
    );
    let item = t.get("k", "w").await.expect("get").expect("exists");
    assert_eq!(item_i64(&item, TTL), Some(1_000));
    let ttl = aws
        .dynamodb
        .describe_time_to_live()
        .table_name(t.table_name())
        .send()
        .await
        .expect("describe ttl");
    let desc = ttl.time_to_live_description().expect("ttl description");
    assert_eq!(desc.attribute_name(), Some("ttl"));
    assert_eq!(
        desc.time_to_live_status(),
        Some(&aws_sdk_dynamodb::types::TimeToLiveStatus::Enabled)
    );
}

#[tokio::test]
async fn query_filters_by_sort_key_prefix_orders_and_pages() {
    let (_aws, t) = table(false).await;
    for sk in ["rev#1", "rev#2", "rev#3", "meta", "rev#4"] {
        t.put(ItemBuilder::new("desc#7", sk).build())
            .await
            .expect("put");
    }
    t.put(ItemBuilder::new("desc#8", "rev#1").build())
        .await
        .expect("put other pk");

    let sks = |items: &[ooni_adapters::Item]| {
        items
            .iter()
            .filter_map(|i| item_str(i, "sk").map(str::to_owned))
            .collect::<Vec<_>>()
    };
    let all = t
        .query_all("desc#7", Some("rev#"))
        .await
        .expect("query all");
    assert_eq!(sks(&all), vec!["rev#1", "rev#2", "rev#3", "rev#4"]);

    let newest = t
        .query(
            "desc#7",
            QueryOptions {
                sk_prefix: Some("rev#".into()),
                limit: Some(1),
                descending: true,
                ..Default::default()
            },
        )
        .await
        .expect("query newest");
    assert_eq!(sks(&newest.items), vec!["rev#4"]);
    assert!(newest.last_evaluated_key.is_some());

    let first = t
        .query(
            "desc#7",
            QueryOptions {
                limit: Some(2),
                ..Default::default()
            },
        )
        .await
        .expect("page 1");
    let second = t
        .query(
            "desc#7",
            QueryOptions {
                limit: Some(10),
                start_key: first.last_evaluated_key.clone(),
                ..Default::default()
            },
        )
        .await
        .expect("page 2");
    assert_eq!(sks(&first.items), vec!["meta", "rev#1"]);
    assert_eq!(sks(&second.items), vec!["rev#2", "rev#3", "rev#4"]);
    assert!(second.last_evaluated_key.is_none());
}

#[tokio::test]
async fn reading_a_missing_table_is_rejected() {
    let aws = common::aws().await;
    let t = DynamoTable::new(aws.dynamodb.clone(), common::unique("ooni-t-none"));
    let err = t.get("a", "b").await.expect_err("no table");
    assert!(!err.is_transient(), "{err}");
    assert!(err.to_string().contains("ResourceNotFound"), "{err}");
}
