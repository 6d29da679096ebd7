//! `ooni dev`: every HTTP route on one local port (same handlers and request conversion as in
//! Lambda), a poller that feeds the submissions queue to the queue-triggered function the way the
//! SQS event source mapping does, and a scheduler that fires timer jobs on their rate.

use aws_lambda_events::sqs::SqsEvent;
use ooni_adapters::{MessageQueue, ReceivedMessage};
use ooni_platform::devserver;
use ooni_platform::functions::{Trigger, FUNCTIONS};
use ooni_platform::{Context, Handler, Service, SqsHandler};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

pub struct DevOptions {
    pub addr: String,
    pub poller: bool,
    pub scheduler: bool,
}

pub async fn run(
    ctx: Arc<Context>,
    service: Arc<dyn Service>,
    opts: DevOptions,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&opts.addr).await?;
    let server = devserver::serve(listener, service.clone()).await?;
    tracing::info!(url = %server.base_url(), "ooni dev: API listening");
    let mut tasks = Vec::new();
    if opts.poller {
        for f in FUNCTIONS
            .iter()
            .filter(|f| matches!(f.trigger, Trigger::SubmissionsQueue))
        {
            if let Some(Handler::Sqs(h)) = service.build(f.name).await? {
                let queue = ctx.submissions_queue()?;
                let settings = PollerSettings::from_env()?;
                tracing::info!(
                    function = f.name,
                    pollers = settings.pollers,
                    "ooni dev: polling the submissions queue"
                );
                for _ in 0..settings.pollers {
                    tasks.push(tokio::spawn(poll(queue.clone(), h.clone(), settings)));
                }
            }
        }
    }
    if opts.scheduler {
        for f in FUNCTIONS {
            let Trigger::Schedule(expr) = f.trigger else {
                continue;
            };
            let Some(period) = parse_rate(expr) else {
                tracing::warn!(function = f.name, expr, "unsupported schedule expression");
                continue;
            };
            if let Some(Handler::Job(h)) = service.build(f.name).await? {
                tracing::info!(
                    function = f.name,
                    every_s = period.as_secs(),
                    "ooni dev: scheduled"
                );
                let name = f.name;
                tasks.push(tokio::spawn(async move {
                    let mut tick =
                        tokio::time::interval_at(tokio::time::Instant::now() + period, period);
                    loop {
                        tick.tick().await;
                        let event = scheduled_event(name);
                        match h.run(event).await {
                            Ok(out) => {
                                tracing::info!(function = name, result = %out, "job finished")
                            }
                            Err(e) => tracing::error!(
                                function = name,
                                error = format!("{e:#}"),
                                "job failed"
                            ),
                        }
                    }
                }));
            }
        }
    }
    tokio::signal::ctrl_c().await?;
    tracing::info!("ooni dev: stopping");
    for t in &tasks {
        t.abort();
    }
    server.shutdown().await;
    Ok(())
}

/// An EventBridge scheduled event like the one AWS delivers.
pub fn scheduled_event(function: &str) -> serde_json::Value {
    json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "region": "us-east-1",
        "resources": [format!("arn:aws:events:us-east-1:000000000000:rule/ooni-local-{function}")],
        "detail": {}
    })
}

/// Parses `rate(N minute[s]|hour[s]|day[s])`.
pub fn parse_rate(expr: &str) -> Option<Duration> {
    let inner = expr.strip_prefix("rate(")?.strip_suffix(')')?;
    let (n, unit) = inner.trim().split_once(' ')?;
    let n: u64 = n.parse().ok()?;
    let secs = match unit.trim_end_matches('s') {
        "minute" => 60,
        "hour" => 3600,
        "day" => 86400,
        _ => return None,
    };
    Some(Duration::from_secs(n * secs))
}

/// Builds the SQS event Lambda's event source mapping would deliver for these messages.
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
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:ooni-local-submissions",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    Ok(serde_json::from_value(json!({ "Records": records }))?)
}

/// The event source mapping of the queue-triggered function, as the template declares it
/// (`BatchSize: 10`, `MaximumBatchingWindowInSeconds: 1`), and how many batches are in flight
/// at once (Lambda starts with 5 concurrent pollers on a standard queue; `OONI_DEV_POLLERS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollerSettings {
    pub batch_size: u32,
    pub batching_window: Duration,
    pub pollers: usize,
}

impl PollerSettings {
    pub const DEFAULT_POLLERS: usize = 5;

    pub fn from_env() -> anyhow::Result<Self> {
        let pollers = match std::env::var("OONI_DEV_POLLERS") {
            Ok(v) => v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=64).contains(n))
                .ok_or_else(|| anyhow::anyhow!("OONI_DEV_POLLERS must be 1..=64, not {v:?}"))?,
            Err(_) => Self::DEFAULT_POLLERS,
        };
        Ok(PollerSettings {
            batch_size: 10,
            batching_window: Duration::from_secs(1),
            pollers,
        })
    }
}

/// Pause between two looks for more messages while a batch is filling.
const FILL_PAUSE: Duration = Duration::from_millis(200);

/// One batch, gathered like the event source mapping does: a long poll for the first messages,
/// then more until the batch is full or the batching window (from the first message) is over.
async fn receive_batch(
    queue: &dyn MessageQueue,
    settings: PollerSettings,
) -> Result<Vec<ReceivedMessage>, ooni_adapters::QueueError> {
    let mut messages = queue.receive(settings.batch_size, 1, 120).await?;
    if messages.is_empty() {
        return Ok(messages);
    }
    let deadline = tokio::time::Instant::now() + settings.batching_window;
    while (messages.len() as u32) < settings.batch_size {
        let now = tokio::time::Instant::now();
        if now >= deadline {
            break;
        }
        match queue
            .receive(settings.batch_size - messages.len() as u32, 0, 120)
            .await
        {
            Ok(more) if more.is_empty() => {
                // Not a tight loop: each empty look costs a request here and in the emulator.
                tokio::time::sleep((deadline - now).min(FILL_PAUSE)).await
            }
            Ok(more) => messages.extend(more),
            Err(e) => {
                // What was received is invisible to others now: hand it over rather than wait.
                tracing::warn!(error = %e, "receive from the submissions queue failed while filling a batch");
                break;
            }
        }
    }
    Ok(messages)
}

async fn poll(
    queue: Arc<dyn MessageQueue>,
    handler: Arc<dyn SqsHandler>,
    settings: PollerSettings,
) {
    loop {
        let messages = match receive_batch(queue.as_ref(), settings).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "receive from the submissions queue failed");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let event = match sqs_event(&messages) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, "could not build the SQS event");
                continue;
            }
        };
        let response = handler.handle(event).await;
        let failed: std::collections::HashSet<String> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        // The deletes of one batch go out together, in one `DeleteMessageBatch` (as the
        // mapping deletes a batch).
        let done: Vec<&ReceivedMessage> = messages
            .iter()
            .filter(|m| !failed.contains(&m.id.0))
            .collect();
        let handles: Vec<String> = done.iter().map(|m| m.receipt_handle.clone()).collect();
        for f in queue.delete_batch(&handles).await {
            let message_id = done.get(f.index).map_or("", |m| m.id.0.as_str());
            tracing::warn!(code = %f.code, error = %f.message, message_id, "delete after processing failed (will be redelivered)");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn rate_expressions_parse_like_eventbridge() {
        assert_eq!(parse_rate("rate(1 hour)"), Some(Duration::from_secs(3600)));
        assert_eq!(
            parse_rate("rate(6 hours)"),
            Some(Duration::from_secs(6 * 3600))
        );
        assert_eq!(
            parse_rate("rate(5 minutes)"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(parse_rate("cron(0 * * * ? *)"), None);
    }

    use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse};
    use ooni_adapters::{MemoryQueue, MessageId, QueueError};

    /// A memory queue whose empty receives wait like a long poll (the memory queue answers at
    /// once), so a poller on it does not spin.
    struct LongPoll(MemoryQueue);

    #[async_trait::async_trait]
    impl MessageQueue for LongPoll {
        async fn send(&self, body: String) -> Result<MessageId, QueueError> {
            self.0.send(body).await
        }
        async fn send_batch(&self, bodies: Vec<String>) -> Result<Vec<MessageId>, QueueError> {
            self.0.send_batch(bodies).await
        }
        async fn receive(
            &self,
            max: u32,
            wait_secs: u32,
            visibility_secs: u32,
        ) -> Result<Vec<ReceivedMessage>, QueueError> {
            let got = self.0.receive(max, wait_secs, visibility_secs).await?;
            if got.is_empty() && wait_secs > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(got)
        }
        async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError> {
            self.0.delete(receipt_handle).await
        }
    }

    /// Fails the messages whose body is "bad"; records the batch sizes it saw.
    #[derive(Default)]
    struct Recorder(std::sync::Mutex<Vec<usize>>);

    #[async_trait::async_trait]
    impl SqsHandler for Recorder {
        async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
            self.0.lock().unwrap().push(event.records.len());
            let mut r = SqsBatchResponse::default();
            for m in event
                .records
                .iter()
                .filter(|m| m.body.as_deref() == Some("bad"))
            {
                let mut f = BatchItemFailure::default();
                f.item_identifier = m.message_id.clone().unwrap_or_default();
                r.batch_item_failures.push(f);
            }
            r
        }
    }

    fn settings(window_ms: u64) -> PollerSettings {
        PollerSettings {
            batch_size: 10,
            batching_window: Duration::from_millis(window_ms),
            pollers: 1,
        }
    }

    #[tokio::test]
    async fn a_batch_fills_up_with_messages_that_arrive_within_the_batching_window() {
        let queue = Arc::new(MemoryQueue::new());
        for i in 0..3 {
            queue.send(format!("m{i}")).await.unwrap();
        }
        let late = queue.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            for i in 3..15 {
                late.send(format!("m{i}")).await.unwrap();
            }
        });
        let batch = receive_batch(queue.as_ref(), settings(2000)).await.unwrap();
        assert_eq!(
            batch.len(),
            10,
            "full batch, not the first 3 and not more than 10"
        );
    }

    #[tokio::test]
    async fn a_partial_batch_is_handed_over_when_the_window_closes() {
        let queue = MemoryQueue::new();
        for i in 0..3 {
            queue.send(format!("m{i}")).await.unwrap();
        }
        let started = std::time::Instant::now();
        let batch = receive_batch(&queue, settings(300)).await.unwrap();
        assert_eq!(batch.len(), 3);
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(2),
            "{took:?}"
        );
        assert!(
            receive_batch(&queue, settings(300))
                .await
                .unwrap()
                .is_empty(),
            "in flight, not redelivered"
        );
    }

    #[tokio::test]
    async fn concurrent_pollers_deliver_every_message_once_and_keep_only_the_failed_ones() {
        let inner = MemoryQueue::new();
        for i in 0..45 {
            inner
                .send(if i == 7 {
                    "bad".to_owned()
                } else {
                    format!("m{i}")
                })
                .await
                .unwrap();
        }
        let probe = inner.clone();
        let queue: Arc<dyn MessageQueue> = Arc::new(LongPoll(inner));
        let handler = Arc::new(Recorder::default());
        let tasks: Vec<_> = (0..3)
            .map(|_| tokio::spawn(poll(queue.clone(), handler.clone(), settings(100))))
            .collect();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while probe.len() > 1 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for t in &tasks {
            t.abort();
        }
        assert_eq!(
            probe.len(),
            1,
            "only the failed message is left for redelivery"
        );
        let sizes = handler.0.lock().unwrap().clone();
        assert_eq!(sizes.iter().sum::<usize>(), 45, "{sizes:?}");
        assert!(sizes.iter().all(|&n| n <= 10), "{sizes:?}");
    }

    #[test]
    fn the_poller_count_comes_from_the_environment_within_bounds() {
        // The only test touching OONI_DEV_POLLERS.
        std::env::remove_var("OONI_DEV_POLLERS");
        assert_eq!(
            PollerSettings::from_env().unwrap().pollers,
            PollerSettings::DEFAULT_POLLERS
        );
        std::env::set_var("OONI_DEV_POLLERS", "8");
        assert_eq!(
            PollerSettings::from_env().unwrap(),
            PollerSettings {
                batch_size: 10,
                batching_window: Duration::from_secs(1),
                pollers: 8
            }
        );
        std::env::set_var("OONI_DEV_POLLERS", "0");
        assert!(PollerSettings::from_env().is_err());
        std::env::remove_var("OONI_DEV_POLLERS");
    }

    #[test]
    fn received_messages_become_an_sqs_event_with_receive_counts() {
        let m = ReceivedMessage {
            id: ooni_adapters::MessageId("m1".into()),
            receipt_handle: "r1".into(),
            body: "{}".into(),
            receive_count: 3,
        };
        let ev = sqs_event(&[m]).unwrap();
        assert_eq!(ev.records.len(), 1);
        assert_eq!(ev.records[0].message_id.as_deref(), Some("m1"));
        assert_eq!(
            ev.records[0]
                .attributes
                .get("ApproximateReceiveCount")
                .map(String::as_str),
            Some("3")
        );
    }
}
