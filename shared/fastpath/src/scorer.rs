//! The Scorer: the submissions-queue handler. For each SQS batch it decodes the envelopes,
//! takes each body inline or from the incoming bucket, scores it, checks the GeoIP claim, and
//! writes all rows with one INSERT per table (see the crate doc for the dedup design). It
//! answers with the items SQS must redeliver.
//!
//! Outcomes per message (each logged with its uid and a `counter` field):
//! - row written, or already stored (a redelivery): acknowledged (`scorer_written`,
//!   `scorer_duplicate`);
//! - documented discard (no `report_id`, `probe_cc` ZZ, `probe_asn` AS0, as upstream):
//!   acknowledged (`scorer_discarded`, with `reason`);
//! - unreadable envelope, missing body object, a body the scorer cannot turn into a row for any
//!   other reason, a scoring panic: failed item (`scorer_bad_envelope`, `scorer_body_missing`,
//!   `scorer_unprocessable`, `scorer_panicked`), so SQS parks it in the DLQ after
//!   `maxReceiveCount` receives; on that last receive it is logged at error (`scorer_parked`);
//! - the incoming object gone because the hourly uploader already archived it (a backlog older
//!   than an hour): the body is read back from the data bucket through the `jsonl` table
//!   ([`ArchivedBodies`], `scorer_body_from_archive`); only a body found nowhere is missing;
//! - the incoming bucket failing: that item is retried (`scorer_body_unavailable`);
//! - ClickHouse failing (fingerprints cannot be loaded, a lookup or insert fails): every item of
//!   the batch is retried (`scorer_clickhouse_unavailable`).

use crate::fingerprints::FingerprintCache;
use crate::records::{geoip_mismatch, ClientGeo};
use crate::store::RowStore;
use crate::writer::{write, RowBatch, WriteMode};
use async_trait::async_trait;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use bytes::Bytes;
use ooni_adapters::ObjectStore;
use ooni_domain::SubmissionEnvelope;
use ooni_platform::SqsHandler;
use ooni_scoring::{process, DiscardReason, Outcome};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Where bodies go once the hourly uploader has moved them out of the incoming bucket (the
/// data bucket's JSONL files, found through the `jsonl` table). A narrow port so the Scorer's
/// tests can fake it; the real one is `ooni_uploader::BodyLookup`.
#[async_trait]
pub trait ArchivedBodies: Send + Sync {
    /// The measurement's body, `None` when nothing is archived for `uid`; an error when the
    /// archive cannot be read now (the item is retried).
    async fn archived_body(&self, uid: &str) -> anyhow::Result<Option<Bytes>>;
}

#[async_trait]
impl ArchivedBodies for ooni_uploader::BodyLookup {
    async fn archived_body(&self, uid: &str) -> anyhow::Result<Option<Bytes>> {
        Ok(self.body_by_uid(uid).await?)
    }
}

/// Token prefix of the Scorer's inserts.
pub const TOKEN_PREFIX: &str = "scorer";

/// Settings of the Scorer.
#[derive(Debug, Clone, Copy)]
pub struct ScorerConfig {
    /// The queue's redrive `maxReceiveCount`: a failure on this receive parks the message.
    pub max_receive_count: u32,
}

impl Default for ScorerConfig {
    fn default() -> Self {
        ScorerConfig {
            max_receive_count: ooni_adapters::bootstrap::QUEUE_MAX_RECEIVE_COUNT,
        }
    }
}

/// Counts since the container started (also logged per event).
#[derive(Debug, Default)]
pub struct ScorerStats {
    pub written: AtomicU64,
    pub duplicate: AtomicU64,
    pub discarded: AtomicU64,
    pub failed: AtomicU64,
    pub parked: AtomicU64,
    pub faulty_written: AtomicU64,
}

/// A plain copy of [`ScorerStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub written: u64,
    pub duplicate: u64,
    pub discarded: u64,
    pub failed: u64,
    pub parked: u64,
    pub faulty_written: u64,
}

impl ScorerStats {
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            written: self.written.load(Ordering::Relaxed),
            duplicate: self.duplicate.load(Ordering::Relaxed),
            discarded: self.discarded.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            parked: self.parked.load(Ordering::Relaxed),
            faulty_written: self.faulty_written.load(Ordering::Relaxed),
        }
    }
}

fn bump(c: &AtomicU64, n: usize) {
    c.fetch_add(n as u64, Ordering::Relaxed);
}

/// The Scorer's ports and state.
pub struct Scorer {
    fingerprints: FingerprintCache,
    incoming: Arc<dyn ObjectStore>,
    archive: Option<Arc<dyn ArchivedBodies>>,
    store: Arc<dyn RowStore>,
    config: ScorerConfig,
    stats: ScorerStats,
}

/// Why a message is failed (redelivered, eventually parked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    BadEnvelope,
    BodyMissing,
    BodyUnavailable,
    Unprocessable(DiscardReason),
    Panicked,
    ClickHouse,
}

impl Failure {
    fn counter(self) -> &'static str {
        match self {
            Failure::BadEnvelope => "scorer_bad_envelope",
            Failure::BodyMissing => "scorer_body_missing",
            Failure::BodyUnavailable => "scorer_body_unavailable",
            Failure::Unprocessable(_) => "scorer_unprocessable",
            Failure::Panicked => "scorer_panicked",
            Failure::ClickHouse => "scorer_clickhouse_unavailable",
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Failure::Unprocessable(r) => r.as_str(),
            Failure::BadEnvelope => "bad_envelope",
            Failure::BodyMissing => "body_missing",
            Failure::BodyUnavailable => "body_unavailable",
            Failure::Panicked => "panicked",
            Failure::ClickHouse => "clickhouse_unavailable",
        }
    }
}

/// The discards upstream documents: acknowledged without a row.
fn is_documented_discard(r: DiscardReason) -> bool {
    matches!(
        r,
        DiscardReason::NoReportId | DiscardReason::ProbeCcZz | DiscardReason::ProbeAsnZero
    )
}

enum State {
    Pending,
    Body(Bytes),
    Row,
    Discarded,
    Failed(Failure),
}

struct Item {
    message_id: String,
    receive_count: u32,
    /// The envelope's uid, or the best guess at it for an unreadable envelope (for logs).
    uid: String,
    envelope: Option<SubmissionEnvelope>,
    state: State,
}

/// `measurement_uid` of a message that is not a valid envelope, if it has one (logs only).
fn guess_uid(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("measurement_uid")
                .and_then(|u| u.as_str())
                .map(|s| s.chars().take(80).collect())
        })
        .unwrap_or_default()
}

impl Item {
    fn decode(record: &SqsMessage) -> Item {
        let message_id = record.message_id.clone().unwrap_or_default();
        let receive_count = record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|c| c.parse::<u32>().ok())
            .unwrap_or(1);
        let body = record.body.as_deref().unwrap_or("");
        match SubmissionEnvelope::from_json(body) {
            Ok(env) => Item {
                message_id,
                receive_count,
                uid: env.measurement_uid.as_str().to_owned(),
                state: match env.body_str() {
                    Some(b) => State::Body(Bytes::copy_from_slice(b.as_bytes())),
                    None => State::Pending,
                },
                envelope: Some(env),
            },
            Err(e) => {
                let uid = guess_uid(body);
                tracing::warn!(counter = "scorer_bad_envelope", measurement_uid = %uid, message_id = %message_id, error = %e, "unreadable queue message");
                Item {
                    message_id,
                    receive_count,
                    uid,
                    envelope: None,
                    state: State::Failed(Failure::BadEnvelope),
                }
            }
        }
    }
}

/// One body: the incoming object, else (when an archive is configured) the archived copy.
async fn fetch_body(
    incoming: &dyn ObjectStore,
    archive: Option<&dyn ArchivedBodies>,
    key: &str,
    uid: &str,
) -> anyhow::Result<Option<Bytes>> {
    if let Some(body) = incoming.get(key).await? {
        return Ok(Some(body));
    }
    let Some(archive) = archive else {
        return Ok(None);
    };
    let body = archive.archived_body(uid).await?;
    if body.is_some() {
        tracing::info!(counter = "scorer_body_from_archive", measurement_uid = %uid, "body read back from the data bucket (already uploaded)");
    }
    Ok(body)
}

/// Fails every item not already failed (keeping the first cause for the logs).
fn fail_unfailed(items: &mut [Item], failure: Failure) {
    for item in items {
        if !matches!(item.state, State::Failed(_)) {
            item.state = State::Failed(failure);
        }
    }
}

impl Scorer {
    pub fn new(
        fingerprints: FingerprintCache,
        incoming: Arc<dyn ObjectStore>,
        store: Arc<dyn RowStore>,
        config: ScorerConfig,
    ) -> Self {
        Scorer {
            fingerprints,
            incoming,
            archive: None,
            store,
            config,
            stats: ScorerStats::default(),
        }
    }

    /// Reads bodies missing from the incoming bucket from `archive` before calling them missing.
    pub fn with_archive(mut self, archive: Arc<dyn ArchivedBodies>) -> Self {
        self.archive = Some(archive);
        self
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Reads the bodies that were not inline, concurrently.
    async fn fetch_bodies(&self, items: &mut [Item]) {
        let mut set = tokio::task::JoinSet::new();
        for (i, item) in items.iter().enumerate() {
            if let (State::Pending, Some(env)) = (&item.state, &item.envelope) {
                let store = self.incoming.clone();
                let archive = self.archive.clone();
                let key = env.object_key.clone();
                let uid = item.uid.clone();
                set.spawn(async move {
                    (
                        i,
                        fetch_body(store.as_ref(), archive.as_deref(), &key, &uid).await,
                    )
                });
            }
        }
        while let Some(joined) = set.join_next().await {
            let Ok((i, result)) = joined else {
                // A panicked fetch leaves its item Pending; it is failed below.
                continue;
            };
            let item = &mut items[i];
            item.state = match result {
                Ok(Some(body)) => State::Body(body),
                Ok(None) => {
                    tracing::error!(counter = "scorer_body_missing", measurement_uid = %item.uid, "the envelope has no body and it is neither in the incoming bucket nor archived");
                    State::Failed(Failure::BodyMissing)
                }
                Err(e) => {
                    tracing::warn!(counter = "scorer_body_unavailable", measurement_uid = %item.uid, error = %e, "cannot read the measurement body");
                    State::Failed(Failure::BodyUnavailable)
                }
            };
        }
        for item in items.iter_mut() {
            if matches!(item.state, State::Pending) {
                item.state = State::Failed(Failure::BodyUnavailable);
            }
        }
    }

    async fn handle_event(&self, event: SqsEvent) -> SqsBatchResponse {
        let started = Instant::now();
        let mut items: Vec<Item> = event.records.iter().map(Item::decode).collect();

        let fps = match self.fingerprints.get().await {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(counter = "scorer_clickhouse_unavailable", items = items.len(), error = %e, "no fingerprints: retrying the whole batch");
                fail_unfailed(&mut items, Failure::ClickHouse);
                return self.respond(items, started);
            }
        };

        self.fetch_bodies(&mut items).await;

        let mut batch = RowBatch::default();
        for item in &mut items {
            let State::Body(body) = &item.state else {
                continue;
            };
            let Some(env) = &item.envelope else { continue };
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
                process(body, env.measurement_uid.as_str(), &fps)
            }));
            item.state = match outcome {
                Ok(Outcome::Row { row, openvpn }) => {
                    let record = *row;
                    let geo = ClientGeo {
                        cc: env.client_cc.clone(),
                        asn: env.client_asn,
                    };
                    if let Some(f) = geoip_mismatch(&record, &geo, env.received_at) {
                        batch.faulty.push(f);
                    }
                    if let Some(ov) = openvpn {
                        batch.openvpn.push(*ov);
                    }
                    batch.fastpath.push(record);
                    State::Row
                }
                Ok(Outcome::Discard(reason)) if is_documented_discard(reason) => {
                    tracing::info!(counter = "scorer_discarded", reason = reason.as_str(), measurement_uid = %item.uid, "measurement discarded");
                    bump(&self.stats.discarded, 1);
                    State::Discarded
                }
                Ok(Outcome::Discard(reason)) => {
                    tracing::warn!(counter = "scorer_unprocessable", reason = reason.as_str(), measurement_uid = %item.uid, "measurement cannot be scored");
                    State::Failed(Failure::Unprocessable(reason))
                }
                Err(_) => {
                    tracing::error!(counter = "scorer_panicked", measurement_uid = %item.uid, "scoring panicked");
                    State::Failed(Failure::Panicked)
                }
            };
        }

        if !batch.is_empty() {
            let rows = batch.fastpath.len();
            match write(
                self.store.as_ref(),
                batch,
                WriteMode::SkipExisting,
                TOKEN_PREFIX,
            )
            .await
            {
                Ok(report) => {
                    bump(&self.stats.written, report.fastpath_written);
                    bump(&self.stats.duplicate, report.fastpath_skipped);
                    bump(&self.stats.faulty_written, report.faulty_written);
                    if report.faulty_written > 0 {
                        tracing::info!(
                            counter = "scorer_geoip_mismatch",
                            rows = report.faulty_written,
                            "GeoIP mismatches recorded"
                        );
                    }
                    if report.fastpath_skipped > 0 {
                        tracing::info!(
                            counter = "scorer_duplicate",
                            rows = report.fastpath_skipped,
                            "redelivered measurements already stored"
                        );
                    }
                    tracing::info!(
                        counter = "scorer_written",
                        rows = report.fastpath_written,
                        "rows written"
                    );
                }
                Err(e) => {
                    tracing::error!(counter = "scorer_clickhouse_unavailable", rows, items = items.len(), error = %e, "writing rows failed: retrying the whole batch");
                    fail_unfailed(&mut items, Failure::ClickHouse);
                }
            }
        }
        self.respond(items, started)
    }

    fn respond(&self, items: Vec<Item>, started: Instant) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        let total = items.len();
        for item in items {
            let State::Failed(failure) = item.state else {
                continue;
            };
            bump(&self.stats.failed, 1);
            if item.receive_count >= self.config.max_receive_count {
                bump(&self.stats.parked, 1);
                tracing::error!(
                    counter = "scorer_parked",
                    measurement_uid = %item.uid,
                    message_id = %item.message_id,
                    reason = failure.reason(),
                    cause = failure.counter(),
                    receive_count = item.receive_count,
                    "last attempt failed: the message goes to the dead-letter queue"
                );
            }
            if item.message_id.is_empty() {
                // An empty identifier makes Lambda retry the whole batch: the only way to get
                // a message without an id redelivered.
                tracing::error!(measurement_uid = %item.uid, "failed message has no messageId: the whole batch is retried");
            }
            let mut f = BatchItemFailure::default();
            f.item_identifier = item.message_id;
            response.batch_item_failures.push(f);
        }
        tracing::info!(
            messages = total,
            failed = response.batch_item_failures.len(),
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            "batch scored"
        );
        response
    }
}

#[async_trait]
impl SqsHandler for Scorer {
    async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let span = tracing::info_span!("scorer", messages = event.records.len());
        tracing::Instrument::instrument(self.handle_event(event), span).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::fingerprints::RefreshPolicy;
    use crate::testing::{MemoryRowStore, ScriptedFingerprints};
    use ooni_adapters::{MemoryObjectStore, SystemClock};
    use ooni_domain::MeasurementUid;
    use ooni_scoring::Fingerprints;

    const UID: &str = "20240305060708.123456_IT_webconnectivity_0123456789abcdef";

    fn body(cc: &str) -> String {
        format!(
            "{{\"format\":\"json\",\"content\":{{\"report_id\":\"20240305T060700Z_webconnectivity_{cc}_30722_n1_abcdefghijklmnop\",\
             \"probe_cc\":\"{cc}\",\"probe_asn\":\"AS30722\",\"test_name\":\"web_connectivity\",\"input\":\"https://example.org/\",\
             \"measurement_start_time\":\"2024-03-05 06:07:00\",\"test_start_time\":\"2024-03-05 06:06:59\",\
             \"software_name\":\"ooniprobe-cli\",\"software_version\":\"3.20.0\",\"test_keys\":{{\"blocking\":false,\"accessible\":true}}}},\
             \"is_verified\":\"u\"}}"
        )
    }

    fn message(id: Option<&str>, env: &SubmissionEnvelope, receive_count: u32) -> SqsMessage {
        let mut m = SqsMessage::default();
        m.message_id = id.map(str::to_owned);
        m.body = Some(env.to_json().unwrap());
        m.attributes
            .insert("ApproximateReceiveCount".into(), receive_count.to_string());
        m
    }

    fn envelope(uid: &str, inline: Option<&str>) -> SubmissionEnvelope {
        let mut env = SubmissionEnvelope::new(
            MeasurementUid::parse(uid).unwrap(),
            "rid",
            Some("IT".into()),
            Some(30722),
        );
        if let Some(b) = inline {
            assert!(env.attach_body_if_fits(b.as_bytes(), 1 << 20).unwrap());
        }
        env
    }

    struct Fixture {
        scorer: Scorer,
        store: Arc<MemoryRowStore>,
        bucket: Arc<MemoryObjectStore>,
    }

    fn fixture(fingerprints: Vec<Result<Fingerprints, String>>) -> Fixture {
        let store = Arc::new(MemoryRowStore::default());
        let bucket = Arc::new(MemoryObjectStore::new());
        let cache = FingerprintCache::new(
            ScriptedFingerprints::new(fingerprints),
            Arc::new(SystemClock),
            RefreshPolicy::hourly(),
        );
        let scorer = Scorer::new(
            cache,
            bucket.clone(),
            store.clone(),
            ScorerConfig {
                max_receive_count: 3,
            },
        );
        Fixture {
            scorer,
            store,
            bucket,
        }
    }

    fn event(records: Vec<SqsMessage>) -> SqsEvent {
        let mut e = SqsEvent::default();
        e.records = records;
        e
    }

    fn failed(r: &SqsBatchResponse) -> Vec<&str> {
        r.batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect()
    }

    #[tokio::test]
    async fn an_inline_body_becomes_a_row_and_a_mismatching_client_a_faulty_row() {
        let f = fixture(vec![Ok(Fingerprints::empty())]);
        let resp = f
            .scorer
            .handle(event(vec![message(
                Some("a"),
                &envelope(UID, Some(&body("DE"))),
                1,
            )]))
            .await;
        assert!(failed(&resp).is_empty());
        let rows = f.store.fastpath_rows();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].measurement_uid.as_str(), rows[0].probe_cc.as_str()),
            (UID, "DE")
        );
        assert_eq!(f.store.faulty_rows().len(), 1);
    }

    #[tokio::test]
    async fn an_unavailable_bucket_fails_only_the_items_it_holds() {
        let f = fixture(vec![Ok(Fingerprints::empty())]);
        f.bucket.set_down(true);
        let other = "20240305060708.123456_IT_webconnectivity_fedcba9876543210";
        let resp = f
            .scorer
            .handle(event(vec![
                message(Some("in-bucket"), &envelope(UID, None), 1),
                message(Some("inline"), &envelope(other, Some(&body("IT"))), 1),
            ]))
            .await;
        assert_eq!(failed(&resp), vec!["in-bucket"]);
        assert_eq!(f.store.fastpath_rows().len(), 1);
    }

    #[tokio::test]
    async fn a_body_read_from_the_bucket_is_scored() {
        let f = fixture(vec![Ok(Fingerprints::empty())]);
        let env = envelope(UID, None);
        f.bucket
            .insert(&env.object_key, body("IT"), "application/json");
        let resp = f
            .scorer
            .handle(event(vec![message(Some("a"), &env, 1)]))
            .await;
        assert!(failed(&resp).is_empty());
        assert_eq!(f.store.fastpath_rows().len(), 1);
        assert!(f.store.faulty_rows().is_empty());
    }

    struct Archive(std::collections::HashMap<String, Result<&'static str, ()>>);

    #[async_trait]
    impl ArchivedBodies for Archive {
        async fn archived_body(&self, uid: &str) -> anyhow::Result<Option<Bytes>> {
            match self.0.get(uid) {
                Some(Ok(b)) => Ok(Some(Bytes::from_static(b.as_bytes()))),
                Some(Err(())) => anyhow::bail!("archive down"),
                None => Ok(None),
            }
        }
    }

    #[tokio::test]
    async fn a_body_the_uploader_already_archived_is_read_back_and_scored_and_one_found_nowhere_is_missing(
    ) {
        let archived_uid = "20240305060708.123456_IT_webconnectivity_fedcba9876543210";
        let down_uid = "20240305060708.123456_IT_webconnectivity_00000000000000aa";
        let archived_body: &'static str = Box::leak(body("IT").into_boxed_str());
        let archive = Archive(
            [
                (archived_uid.to_owned(), Ok(archived_body)),
                (down_uid.to_owned(), Err(())),
            ]
            .into_iter()
            .collect(),
        );
        let mut f = fixture(vec![Ok(Fingerprints::empty())]);
        f.scorer = f.scorer.with_archive(Arc::new(archive));
        let resp = f
            .scorer
            .handle(event(vec![
                message(Some("archived"), &envelope(archived_uid, None), 1),
                message(Some("nowhere"), &envelope(UID, None), 1),
                message(Some("archive-down"), &envelope(down_uid, None), 1),
            ]))
            .await;
        assert_eq!(failed(&resp), vec!["nowhere", "archive-down"]);
        let rows = f.store.fastpath_rows();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].measurement_uid, archived_uid);
    }

    #[tokio::test]
    async fn a_failing_lookup_retries_the_whole_batch_and_the_retry_writes_once() {
        let f = fixture(vec![Ok(Fingerprints::empty())]);
        f.store.fail_next_lookups(1);
        let ev = event(vec![message(
            Some("a"),
            &envelope(UID, Some(&body("IT"))),
            1,
        )]);
        assert_eq!(failed(&f.scorer.handle(ev.clone()).await), vec!["a"]);
        assert!(failed(&f.scorer.handle(ev.clone()).await).is_empty());
        assert!(failed(&f.scorer.handle(ev).await).is_empty());
        assert_eq!(f.store.fastpath_rows().len(), 1);
        assert_eq!(f.scorer.stats().duplicate, 1);
    }

    #[tokio::test]
    async fn without_fingerprints_every_item_is_retried_and_the_last_attempt_is_parked() {
        let f = fixture(vec![]);
        let resp = f
            .scorer
            .handle(event(vec![
                message(Some("a"), &envelope(UID, Some(&body("IT"))), 1),
                message(Some("b"), &envelope(UID, Some(&body("IT"))), 3),
            ]))
            .await;
        assert_eq!(failed(&resp), vec!["a", "b"]);
        assert_eq!(f.scorer.stats().parked, 1);
        assert!(f.store.fastpath_rows().is_empty());
    }

    #[tokio::test]
    async fn a_failed_message_without_an_id_fails_the_whole_batch() {
        let f = fixture(vec![Ok(Fingerprints::empty())]);
        let mut m = message(None, &envelope(UID, None), 1);
        m.body = Some("{}".into());
        let resp = f.scorer.handle(event(vec![m])).await;
        assert_eq!(
            failed(&resp),
            vec![""],
            "an empty identifier makes Lambda retry the batch"
        );
    }
}
