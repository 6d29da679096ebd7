//! SqsQueue against the AWS emulator: send/receive/delete, batches, receive counts and
//! redrive to the DLQ after `maxReceiveCount` receives.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use ooni_adapters::bootstrap::{ensure_queue, QUEUE_MAX_RECEIVE_COUNT};
use ooni_adapters::{MessageQueue, SqsQueue};

async fn queues() -> (SqsQueue, SqsQueue) {
    let aws = common::aws().await;
    let name = common::unique("ooni-t-q");
    let urls = ensure_queue(&aws, &name, &format!("{name}-dlq"))
        .await
        .expect("create queues");
    (
        SqsQueue::new(aws.sqs.clone(), urls.submissions_queue_url),
        SqsQueue::new(aws.sqs.clone(), urls.submissions_dlq_url),
    )
}

#[tokio::test]
async fn a_sent_message_is_received_once_and_gone_after_delete() {
    let (queue, _dlq) = queues().await;
    let id = queue.send("{\"n\":1}".into()).await.expect("send");
    let got = queue.receive(10, 1, 30).await.expect("receive");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, id);
    assert_eq!(got[0].body, "{\"n\":1}");
    assert_eq!(got[0].receive_count, 1);
    // Invisible while in flight.
    assert!(queue
        .receive(10, 0, 30)
        .await
        .expect("receive again")
        .is_empty());
    queue.delete(&got[0].receipt_handle).await.expect("delete");
    assert_eq!(queue.approximate_len().await.expect("len"), 0);
}

#[tokio::test]
async fn send_batch_sends_more_than_ten_messages_in_order() {
    let (queue, _dlq) = queues().await;
    let bodies: Vec<String> = (0..25).map(|i| format!("m{i}")).collect();
    let ids = queue.send_batch(bodies.clone()).await.expect("batch");
    assert_eq!(ids.len(), 25);
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        25,
        "ids are distinct"
    );

    let mut seen = BTreeSet::new();
    for _ in 0..10 {
        let got = queue.receive(10, 0, 60).await.expect("receive");
        for m in got {
            seen.insert(m.body.clone());
            queue.delete(&m.receipt_handle).await.expect("delete");
        }
        if seen.len() == 25 {
            break;
        }
    }
    assert_eq!(seen, bodies.into_iter().collect::<BTreeSet<_>>());
}

#[tokio::test]
async fn an_undeleted_message_moves_to_the_dlq_after_max_receive_count() {
    let (queue, dlq) = queues().await;
    queue.send("poison".into()).await.expect("send");
    for expected in 1..=QUEUE_MAX_RECEIVE_COUNT {
        let got = queue.receive(1, 1, 0).await.expect("receive");
        assert_eq!(got.len(), 1, "receive #{expected}");
        assert_eq!(got[0].receive_count, expected);
    }
    assert!(queue
        .receive(1, 0, 0)
        .await
        .expect("receive after limit")
        .is_empty());
    let dead = dlq.receive(10, 1, 30).await.expect("receive dlq");
    assert_eq!(
        dead.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        vec!["poison"]
    );
}

#[tokio::test]
async fn sending_to_a_missing_queue_is_rejected() {
    let aws = common::aws().await;
    let url = format!(
        "{}/123456789012/{}",
        common::aws_endpoint(),
        common::unique("ooni-t-nope")
    );
    let queue = SqsQueue::new(aws.sqs.clone(), url);
    let err = queue
        .send("x".into())
        .await
        .expect_err("queue does not exist");
    assert!(!err.is_transient(), "{err}");
}

#[tokio::test]
async fn a_batch_of_large_bodies_totalling_more_than_256_kib_is_sent_whole() {
    let (queue, _dlq) = queues().await;
    let bodies: Vec<String> = (0..3)
        .map(|i| format!("{i}{}", "x".repeat(100 * 1024)))
        .collect();
    let ids = queue
        .send_batch(bodies)
        .await
        .expect("three 100 KiB messages");
    assert_eq!(ids.len(), 3);
    assert_eq!(queue.approximate_len().await.expect("len"), 3);
}

#[tokio::test]
async fn an_oversized_entry_fails_alone_and_the_rest_are_sent() {
    let (queue, _dlq) = queues().await;
    let bodies = vec![
        "first".to_owned(),
        "y".repeat(1100 * 1024),
        "last".to_owned(),
    ];
    let err = queue
        .send_batch(bodies)
        .await
        .expect_err("entry 1 is too large");
    let ooni_adapters::QueueError::PartialBatch { sent, failed } = &err else {
        panic!("expected PartialBatch, got {err}");
    };
    assert!(
        sent[0].is_some() && sent[1].is_none() && sent[2].is_some(),
        "{sent:?}"
    );
    assert_eq!(failed.iter().map(|f| f.index).collect::<Vec<_>>(), vec![1]);
    assert!(!err.is_transient());
    assert_eq!(queue.approximate_len().await.expect("len"), 2);
}

#[tokio::test]
async fn delete_batch_deletes_more_than_ten_messages_and_names_the_bad_handles() {
    let (queue, _dlq) = queues().await;
    let bodies: Vec<String> = (0..13).map(|i| format!("d{i}")).collect();
    queue.send_batch(bodies).await.expect("batch");
    let mut handles = Vec::new();
    for _ in 0..10 {
        for m in queue.receive(10, 0, 5).await.expect("receive") {
            handles.push(m.receipt_handle);
        }
        if handles.len() >= 13 {
            break;
        }
    }
    assert_eq!(handles.len(), 13);
    handles.insert(11, "not-a-receipt-handle".to_owned());
    let failed = queue.delete_batch(&handles).await;
    assert_eq!(
        failed.iter().map(|f| f.index).collect::<Vec<_>>(),
        vec![11],
        "{failed:?}"
    );
    // Undeleted messages would be visible again once their 5 s visibility timeout is over.
    tokio::time::sleep(std::time::Duration::from_millis(5500)).await;
    assert_eq!(queue.approximate_len().await.expect("len"), 0);
}
