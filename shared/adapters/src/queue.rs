//! The `MessageQueue` port and its SQS adapter `SqsQueue`. Functions only send; `receive`
//! and `delete` serve the local poller that feeds queue-triggered functions in dev.

use async_trait::async_trait;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, SendMessageBatchRequestEntry,
};

use crate::aws::sdk_failure;

/// Most entries SQS accepts in one `SendMessageBatch`.
pub const MAX_BATCH_ENTRIES: usize = 10;
/// Payload bytes per `SendMessageBatch` request. SQS accepts 1 MiB since 2025 (and the
/// emulator follows); 256 KiB, the older limit, is kept so any SQS-compatible endpoint
/// accepts the batches, at the cost of a few more requests for large bodies.
pub const MAX_BATCH_BYTES: usize = 256 * 1024;

/// The queue-assigned id of a sent message.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(pub String);

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A message handed out by `receive`; delete it by `receipt_handle` once processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub id: MessageId,
    pub receipt_handle: String,
    pub body: String,
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
}

/// One entry of a batch send that the queue did not accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchFailure {
    /// Index into the `Vec` given to `send_batch`.
    pub index: usize,
    pub code: String,
    pub message: String,
    /// True when the queue blames the sender (retrying the same entry will not help).
    pub sender_fault: bool,
}

impl BatchFailure {
    /// Entry `index` failed because its whole request did.
    fn from_error(index: usize, err: &QueueError) -> Self {
        BatchFailure {
            index,
            code: match err {
                QueueError::Unavailable { .. } => "Unavailable".to_owned(),
                other => other.to_string(),
            },
            message: err.to_string(),
            sender_fault: !err.is_transient(),
        }
    }
}

/// Queue failures. `Unavailable` is worth retrying.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Network failure, timeout, throttling or a 5xx.
    #[error("queue unavailable during {operation}: {message}")]
    Unavailable {
        operation: &'static str,
        message: String,
    },
    /// The queue refused the request (missing queue, oversized message, ...).
    #[error("queue rejected {operation}: {message}")]
    Rejected {
        operation: &'static str,
        message: String,
    },
    /// Some entries of a batch were not sent; `sent[i]` is the id of entry `i` if it was.
    #[error("{} of {} batch entries were not sent", failed.len(), sent.len())]
    PartialBatch {
        sent: Vec<Option<MessageId>>,
        failed: Vec<BatchFailure>,
    },
}

impl QueueError {
    /// True when retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unavailable { .. } => true,
            Self::Rejected { .. } => false,
            Self::PartialBatch { failed, .. } => failed.iter().all(|f| !f.sender_fault),
        }
    }
}

/// A message queue (SQS in production, memory in unit tests).
#[async_trait]
pub trait MessageQueue: Send + Sync {
    /// Sends one message.
    async fn send(&self, body: String) -> Result<MessageId, QueueError>;
    /// Sends many messages, in as few requests as the queue's limits allow. Ids come back
    /// in input order. If some entries fail, returns `PartialBatch` naming them.
    async fn send_batch(&self, bodies: Vec<String>) -> Result<Vec<MessageId>, QueueError>;
    /// Receives up to `max` (1..=10) messages, long-polling up to `wait_secs` (≤ 20), hiding
    /// them from other receivers for `visibility_secs`.
    async fn receive(
        &self,
        max: u32,
        wait_secs: u32,
        visibility_secs: u32,
    ) -> Result<Vec<ReceivedMessage>, QueueError>;
    /// Deletes a received message.
    async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError>;
    /// Deletes received messages, in as few requests as the queue allows (SQS: up to ten per
    /// `DeleteMessageBatch`). Returns the entries that were not deleted (`index` into
    /// `receipt_handles`); an empty `Vec` means every message is gone.
    async fn delete_batch(&self, receipt_handles: &[String]) -> Vec<BatchFailure> {
        let mut failed = Vec::new();
        for (index, handle) in receipt_handles.iter().enumerate() {
            if let Err(e) = self.delete(handle).await {
                failed.push(BatchFailure::from_error(index, &e));
            }
        }
        failed
    }
}

/// [`MessageQueue`] on one SQS queue.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsQueue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// Approximate number of visible messages (for dev tooling and tests).
    pub async fn approximate_len(&self) -> Result<u64, QueueError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map_err(|e| classify("get_queue_attributes", &e))?;
        Ok(out
            .attributes()
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    async fn send_chunk(
        &self,
        first_index: usize,
        bodies: &[String],
        sent: &mut [Option<MessageId>],
        failed: &mut Vec<BatchFailure>,
    ) -> Result<(), QueueError> {
        let mut entries = Vec::with_capacity(bodies.len());
        for (i, body) in bodies.iter().enumerate() {
            let entry = SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(body)
                .build()
                .map_err(|e| QueueError::Rejected {
                    operation: "send_batch",
                    message: e.to_string(),
                })?;
            entries.push(entry);
        }
        let out = self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| classify("send_batch", &e))?;
        for ok in out.successful() {
            if let Ok(i) = ok.id().parse::<usize>() {
                if let Some(slot) = sent.get_mut(first_index + i) {
                    *slot = Some(MessageId(ok.message_id().to_owned()));
                }
            }
        }
        failed.extend(batch_failures(out.failed(), first_index, bodies.len()));
        Ok(())
    }

    /// One `DeleteMessageBatch` of at most ten entries (`Id` = index in `chunk`); the entries
    /// SQS reports as failed are appended to `failed` with `first_index` added.
    async fn delete_chunk(
        &self,
        first_index: usize,
        chunk: &[String],
        failed: &mut Vec<BatchFailure>,
    ) -> Result<(), QueueError> {
        let mut entries = Vec::with_capacity(chunk.len());
        for (i, handle) in chunk.iter().enumerate() {
            let entry = DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(handle)
                .build()
                .map_err(|e| QueueError::Rejected {
                    operation: "delete_batch",
                    message: e.to_string(),
                })?;
            entries.push(entry);
        }
        let out = self
            .client
            .delete_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| classify("delete_batch", &e))?;
        failed.extend(batch_failures(out.failed(), first_index, chunk.len()));
        Ok(())
    }
}

/// The entries SQS reports as failed in a batch of `len` entries whose `Id`s are their indexes,
/// as failures at `first_index` + that index (ids that are not an index of the batch are
/// dropped: SQS only answers with the ids it was sent).
fn batch_failures(
    entries: &[aws_sdk_sqs::types::BatchResultErrorEntry],
    first_index: usize,
    len: usize,
) -> impl Iterator<Item = BatchFailure> + '_ {
    entries.iter().filter_map(move |bad| {
        let i = bad.id().parse::<usize>().ok().filter(|i| *i < len)?;
        Some(BatchFailure {
            index: first_index + i,
            code: bad.code().to_owned(),
            message: bad.message().unwrap_or_default().to_owned(),
            sender_fault: bad.sender_fault(),
        })
    })
}

fn classify<E>(
    operation: &'static str,
    err: &aws_sdk_sqs::error::SdkError<E, aws_sdk_sqs::config::http::HttpResponse>,
) -> QueueError
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    let f = sdk_failure(err);
    if f.transient {
        QueueError::Unavailable {
            operation,
            message: f.message,
        }
    } else {
        QueueError::Rejected {
            operation,
            message: f.message,
        }
    }
}

/// Splits `bodies` into runs that respect SQS's per-batch entry and byte limits.
/// Returns `(start, end)` index ranges. A single oversized body gets a run of its own
/// (the queue then rejects it as that entry's failure).
pub(crate) fn batch_ranges(bodies: &[String]) -> Vec<(usize, usize)> {
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, body) in bodies.iter().enumerate() {
        let full =
            i - start >= MAX_BATCH_ENTRIES || (i > start && bytes + body.len() > MAX_BATCH_BYTES);
        if full {
            ranges.push((start, i));
            start = i;
            bytes = 0;
        }
        bytes += body.len();
    }
    if start < bodies.len() {
        ranges.push((start, bodies.len()));
    }
    ranges
}

#[async_trait]
impl MessageQueue for SqsQueue {
    async fn send(&self, body: String) -> Result<MessageId, QueueError> {
        let out = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| classify("send", &e))?;
        out.message_id()
            .map(|id| MessageId(id.to_owned()))
            .ok_or(QueueError::Rejected {
                operation: "send",
                message: "response carried no message id".into(),
            })
    }

    async fn send_batch(&self, bodies: Vec<String>) -> Result<Vec<MessageId>, QueueError> {
        let mut sent: Vec<Option<MessageId>> = vec![None; bodies.len()];
        let mut failed = Vec::new();
        for (start, end) in batch_ranges(&bodies) {
            if let Err(err) = self
                .send_chunk(start, &bodies[start..end], &mut sent, &mut failed)
                .await
            {
                if failed.is_empty() && sent.iter().all(Option::is_none) {
                    return Err(err);
                }
                failed.extend((start..end).map(|index| BatchFailure::from_error(index, &err)));
            }
        }
        if failed.is_empty() {
            let ids: Option<Vec<MessageId>> = sent.iter().cloned().collect();
            if let Some(ids) = ids {
                return Ok(ids);
            }
        }
        // Entries the queue neither accepted nor rejected count as failed.
        for (index, slot) in sent.iter().enumerate() {
            if slot.is_none() && !failed.iter().any(|f| f.index == index) {
                failed.push(BatchFailure {
                    index,
                    code: "Unacknowledged".into(),
                    message: "the queue did not report this entry".into(),
                    sender_fault: false,
                });
            }
        }
        failed.sort_by_key(|f| f.index);
        Err(QueueError::PartialBatch { sent, failed })
    }

    async fn receive(
        &self,
        max: u32,
        wait_secs: u32,
        visibility_secs: u32,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let max = i32::try_from(max.clamp(1, 10)).unwrap_or(10);
        let wait = i32::try_from(wait_secs.min(20)).unwrap_or(20);
        let visibility = i32::try_from(visibility_secs.min(43_200)).unwrap_or(43_200);
        let out = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(max)
            .wait_time_seconds(wait)
            .visibility_timeout(visibility)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| classify("receive", &e))?;
        let mut messages = Vec::new();
        for m in out.messages() {
            let (Some(id), Some(handle)) = (m.message_id(), m.receipt_handle()) else {
                tracing::warn!("received a message without id or receipt handle; skipping");
                continue;
            };
            let receive_count = m
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|v| v.parse().ok())
                .unwrap_or(1);
            messages.push(ReceivedMessage {
                id: MessageId(id.to_owned()),
                receipt_handle: handle.to_owned(),
                body: m.body().unwrap_or_default().to_owned(),
                receive_count,
            });
        }
        Ok(messages)
    }

    async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .send()
            .await
            .map_err(|e| classify("delete", &e))?;
        Ok(())
    }
    async fn delete_batch(&self, receipt_handles: &[String]) -> Vec<BatchFailure> {
        let mut failed = Vec::new();
        for (chunk_no, chunk) in receipt_handles.chunks(MAX_BATCH_ENTRIES).enumerate() {
            let first = chunk_no * MAX_BATCH_ENTRIES;
            if let Err(err) = self.delete_chunk(first, chunk, &mut failed).await {
                failed.extend(
                    (first..first + chunk.len()).map(|i| BatchFailure::from_error(i, &err)),
                );
            }
        }
        failed.sort_by_key(|f| f.index);
        failed
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_at_most_ten_entries() {
        let bodies: Vec<String> = (0..23).map(|i| i.to_string()).collect();
        assert_eq!(batch_ranges(&bodies), vec![(0, 10), (10, 20), (20, 23)]);
    }

    #[test]
    fn batches_stay_under_the_byte_limit() {
        let big = "x".repeat(100 * 1024);
        let bodies = vec![big.clone(), big.clone(), big.clone(), "small".into()];
        assert_eq!(batch_ranges(&bodies), vec![(0, 2), (2, 4)]);
    }

    #[test]
    fn an_empty_input_makes_no_batch() {
        assert!(batch_ranges(&[]).is_empty());
    }
}
