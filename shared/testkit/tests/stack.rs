//! The test stack really provisions private resources on the local services.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ooni_testkit::TestStack;

#[tokio::test]
async fn a_test_stack_gets_its_own_migrated_database_and_queue() {
    let stack = TestStack::start().await;
    let tables: Vec<String> = stack
        .ch()
        .query("SELECT name FROM system.tables WHERE database = currentDatabase()")
        .fetch_all()
        .await
        .unwrap();
    assert!(tables.iter().any(|t| t == "fastpath"), "{tables:?}");
    let url = stack.names.submissions_queue_url.clone().unwrap();
    assert!(url.contains(&stack.prefix), "{url}");
    let other = TestStack::start().await;
    assert_ne!(stack.prefix, other.prefix);
}
