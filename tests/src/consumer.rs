//! The test's stand-in for Lambda's SQS event source mapping, mirroring the `ooni dev` poller
//! (`functions/ooni/src/dev.rs`): receive up to 10 messages, hand them to the `Scorer` as one
//! SQS event, delete the ones not reported as failed. Several consumers run at once (Lambda
//! runs batches concurrently), with a short visibility timeout so failures come back quickly,
//! and with switches for at-least-once misbehaviour: send every received body again (a second
//! delivery) and skip some deletes (the message comes back after its visibility timeout).
//! [`redrive`] moves parked messages from the DLQ back to the main queue.

use aws_lambda_events::sqs::SqsEvent;
use ooni_adapters::{MessageQueue, ReceivedMessage};
use ooni_platform::SqsHandler;
use serde_json::json;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

/// Visibility timeout of every receive (seconds): a failed or undeleted message is back this
/// soon (Lambda's queue uses 120 s; short here so recovery is quick, and short enough that a
/// slow batch can see its messages delivered again to another consumer meanwhile).
pub const VISIBILITY_SECS: u32 = 6;

/// Live switches and counters shared by the consumers.
#[derive(Debug, Default)]
pub struct ConsumerControl {
    /// Send every received body once more (the queue then holds a second copy; a body is
    /// sent again only the first time it is received).
    pub duplicate_all: AtomicBool,
    duplicated: Mutex<HashSet<String>>,
    /// Receive nothing while set (a backlog builds up: throttled or disabled event source).
    pub paused: AtomicBool,
    /// Skip the delete of every n-th processed message (0: never).
    pub skip_delete_every: AtomicU32,
    pub batches: AtomicU64,
    pub received: AtomicU64,
    pub failed_items: AtomicU64,
    pub deleted: AtomicU64,
    pub delete_failed: AtomicU64,
    pub deletes_skipped: AtomicU64,
    pub resent: AtomicU64,
    pub resend_failed: AtomicU64,
    pub receive_failed: AtomicU64,
    /// Messages seen with `ApproximateReceiveCount` > 1.
    pub redelivered: AtomicU64,
    /// Unix millis of the last non-empty receive.
    pub last_message_ms: AtomicU64,
}

fn now_ms() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0)
}

impl ConsumerControl {
    /// The counters, for failure messages.
    pub fn summary(&self) -> String {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "consumers: batches {}, received {}, redelivered {}, failed items {}, deleted {}, delete failed {}, deletes skipped {}, resent {}, receive failed {}",
            l(&self.batches),
            l(&self.received),
            l(&self.redelivered),
            l(&self.failed_items),
            l(&self.deleted),
            l(&self.delete_failed),
            l(&self.deletes_skipped),
            l(&self.resent),
            l(&self.receive_failed)
        )
    }

    /// True the first time `body` is seen by [`ConsumerControl::duplicate_all`].
    fn first_copy(&self, body: &str) -> bool {
        let mut seen = match self.duplicated.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        seen.insert(body.to_owned())
    }

    /// Milliseconds since a consumer last received a message (`u64::MAX` if never).
    pub fn idle_ms(&self) -> u64 {
        match self.last_message_ms.load(Ordering::Relaxed) {
            0 => u64::MAX,
            t => now_ms().saturating_sub(t),
        }
    }
}

/// Running consumers; aborted when dropped.
pub struct Consumers {
    pub control: Arc<ConsumerControl>,
    tasks: Vec<JoinHandle<()>>,
}

impl Consumers {
    /// Starts `n` consumers of `queue` feeding `handler`.
    pub fn start(
        n: usize,
        queue: Arc<dyn MessageQueue>,
        handler: Arc<dyn SqsHandler>,
    ) -> Consumers {
        let control = Arc::new(ConsumerControl::default());
        let tasks = (0..n)
            .map(|_| tokio::spawn(consume(queue.clone(), handler.clone(), control.clone())))
            .collect();
        Consumers { control, tasks }
    }
}

impl Drop for Consumers {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The SQS event Lambda would deliver for these messages (as `ooni dev` builds it).
pub fn sqs_event(messages: &[ReceivedMessage]) -> anyhow::Result<SqsEvent> {
    let records: Vec<_> = messages
        .iter()
        .map(|m| {
            json!({
                "messageId": m.id.0,
                "receiptHandle": m.receipt_handle,
                "body": m.body,
                "attributes": {"ApproximateReceiveCount": m.receive_count.to_string()},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:ooni-test-submissions",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    Ok(serde_json::from_value(json!({ "Records": records }))?)
}

async fn consume(
    queue: Arc<dyn MessageQueue>,
    handler: Arc<dyn SqsHandler>,
    c: Arc<ConsumerControl>,
) {
    let mut processed: u64 = 0;
    loop {
        if c.paused.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let messages = match queue.receive(10, 1, VISIBILITY_SECS).await {
            Ok(m) => m,
            Err(e) => {
                c.receive_failed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, "consumer: receive failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        c.last_message_ms.store(now_ms(), Ordering::Relaxed);
        c.batches.fetch_add(1, Ordering::Relaxed);
        c.received
            .fetch_add(messages.len() as u64, Ordering::Relaxed);
        c.redelivered.fetch_add(
            messages.iter().filter(|m| m.receive_count > 1).count() as u64,
            Ordering::Relaxed,
        );
        let event = match sqs_event(&messages) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, "consumer: could not build the SQS event");
                continue;
            }
        };
        let response = handler.handle(event).await;
        let failed: HashSet<String> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        c.failed_items
            .fetch_add(failed.len() as u64, Ordering::Relaxed);
        if c.duplicate_all.load(Ordering::Relaxed) {
            for m in messages.iter().filter(|m| c.first_copy(&m.body)) {
                match queue.send(m.body.clone()).await {
                    Ok(_) => c.resent.fetch_add(1, Ordering::Relaxed),
                    Err(_) => c.resend_failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }
        let skip_every = u64::from(c.skip_delete_every.load(Ordering::Relaxed));
        let mut deletes = tokio::task::JoinSet::new();
        for m in messages.iter().filter(|m| !failed.contains(&m.id.0)) {
            processed += 1;
            if skip_every > 0 && processed % skip_every == 0 {
                c.deletes_skipped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let (queue, handle) = (queue.clone(), m.receipt_handle.clone());
            deletes.spawn(async move { queue.delete(&handle).await });
        }
        while let Some(done) = deletes.join_next().await {
            match done {
                Ok(Ok(())) => c.deleted.fetch_add(1, Ordering::Relaxed),
                _ => c.delete_failed.fetch_add(1, Ordering::Relaxed),
            };
        }
    }
}

/// Moves up to `max` messages of `dlq` back to `main` (a batch send, then the deletes
/// concurrently); returns how many moved.
pub async fn redrive(
    dlq: Arc<dyn MessageQueue>,
    main: &dyn MessageQueue,
    max: u64,
) -> anyhow::Result<u64> {
    let mut moved = 0;
    while moved < max {
        let messages = dlq.receive(10, 0, 30).await?;
        if messages.is_empty() {
            break;
        }
        main.send_batch(messages.iter().map(|m| m.body.clone()).collect())
            .await?;
        let mut deletes = tokio::task::JoinSet::new();
        for m in messages {
            let dlq = dlq.clone();
            deletes.spawn(async move { dlq.delete(&m.receipt_handle).await });
        }
        while let Some(done) = deletes.join_next().await {
            done??;
            moved += 1;
        }
    }
    Ok(moved)
}
