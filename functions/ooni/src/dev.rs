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

pub async fn run(ctx: Arc<Context>, service: Arc<dyn Service>, opts: DevOptions) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&opts.addr).await?;
    let server = devserver::serve(listener, service.clone()).await?;
    tracing::info!(url = %server.base_url(), "ooni dev: API listening");
    let mut tasks = Vec::new();
    if opts.poller {
        for f in FUNCTIONS.iter().filter(|f| matches!(f.trigger, Trigger::SubmissionsQueue)) {
            if let Some(Handler::Sqs(h)) = service.build(f.name).await? {
                let queue = ctx.submissions_queue()?;
                tracing::info!(function = f.name, "ooni dev: polling the submissions queue");
                tasks.push(tokio::spawn(poll(queue, h)));
            }
        }
    }
    if opts.scheduler {
        for f in FUNCTIONS {
            let Trigger::Schedule(expr) = f.trigger else { continue };
            let Some(period) = parse_rate(expr) else {
                tracing::warn!(function = f.name, expr, "unsupported schedule expression");
                continue;
            };
            if let Some(Handler::Job(h)) = service.build(f.name).await? {
                tracing::info!(function = f.name, every_s = period.as_secs(), "ooni dev: scheduled");
                let name = f.name;
                tasks.push(tokio::spawn(async move {
                    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
                    loop {
                        tick.tick().await;
                        let event = scheduled_event(name);
                        match h.run(event).await {
                            Ok(out) => tracing::info!(function = name, result = %out, "job finished"),
                            Err(e) => tracing::error!(function = name, error = format!("{e:#}"), "job failed"),
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

async fn poll(queue: Arc<dyn MessageQueue>, handler: Arc<dyn SqsHandler>) {
    loop {
        let messages = match queue.receive(10, 1, 120).await {
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
        let failed: std::collections::HashSet<String> =
            response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
        for m in messages.iter().filter(|m| !failed.contains(&m.id.0)) {
            if let Err(e) = queue.delete(&m.receipt_handle).await {
                tracing::warn!(error = %e, message_id = %m.id.0, "delete after processing failed (will be redelivered)");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_expressions_parse_like_eventbridge() {
        assert_eq!(parse_rate("rate(1 hour)"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_rate("rate(6 hours)"), Some(Duration::from_secs(6 * 3600)));
        assert_eq!(parse_rate("rate(5 minutes)"), Some(Duration::from_secs(300)));
        assert_eq!(parse_rate("cron(0 * * * ? *)"), None);
    }

    #[test]
    fn received_messages_become_an_sqs_event_with_receive_counts() {
        let m = ReceivedMessage { id: ooni_adapters::MessageId("m1".into()), receipt_handle: "r1".into(), body: "{}".into(), receive_count: 3 };
        let ev = sqs_event(&[m]).unwrap();
        assert_eq!(ev.records.len(), 1);
        assert_eq!(ev.records[0].message_id.as_deref(), Some("m1"));
        assert_eq!(ev.records[0].attributes.get("ApproximateReceiveCount").map(String::as_str), Some("3"));
    }
}
