//! Helpers shared by the black-box tests: fixture samples, real submission envelopes, SQS
//! events, loading fingerprints into a test database and counting rows.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use bytes::Bytes;
use ooni_domain::envelope::DEFAULT_INLINE_LIMIT;
use ooni_domain::{MeasurementUid, SubmissionEnvelope};
use ooni_platform::functions::Bucket;
use ooni_testkit::TestStack;
use serde_json::Value;
use std::path::PathBuf;

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// One line of `samples.jsonl`.
#[derive(Clone, Debug)]
pub struct Sample {
    pub idx: u64,
    pub uid: String,
    /// The measurement's JSON text, as in the file.
    pub measurement: String,
    pub line: String,
}

impl Sample {
    pub fn report_id(&self) -> String {
        let v: Value = serde_json::from_str(&self.measurement).unwrap();
        v["report_id"].as_str().unwrap_or_default().to_owned()
    }

    /// The body the submit function stores: the POST envelope with `is_verified` added.
    pub fn stored_body(&self) -> String {
        format!(
            "{{\"format\":\"json\",\"content\":{},\"is_verified\":\"u\"}}",
            self.measurement
        )
    }
}

pub fn samples() -> Vec<Sample> {
    let text = std::fs::read_to_string(fixture("samples.jsonl")).unwrap();
    text.lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            // The measurement's text byte for byte, as a probe sent it.
            let measurement = extract_measurement(line);
            Sample {
                idx: v["idx"].as_u64().unwrap(),
                uid: v["measurement_uid"].as_str().unwrap().to_owned(),
                measurement,
                line: line.to_owned(),
            }
        })
        .collect()
}

fn extract_measurement(line: &str) -> String {
    #[derive(serde::Deserialize)]
    struct L<'a> {
        #[serde(borrow)]
        measurement: &'a serde_json::value::RawValue,
    }
    let l: L = serde_json::from_str(line).unwrap();
    l.measurement.get().to_owned()
}

pub fn sample(idx: u64) -> Sample {
    samples()
        .into_iter()
        .find(|s| s.idx == idx)
        .unwrap_or_else(|| panic!("no sample {idx}"))
}

/// Upstream's output for sample `idx`.
pub fn expected(idx: u64) -> Value {
    let text = std::fs::read_to_string(fixture("expected.jsonl")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["idx"].as_u64() == Some(idx))
        .unwrap()
}

/// A real envelope for `s`, its body inline when it fits the default limit.
pub fn envelope(
    s: &Sample,
    client_cc: Option<&str>,
    client_asn: Option<u32>,
) -> SubmissionEnvelope {
    let uid = MeasurementUid::parse(&s.uid).unwrap();
    let mut env =
        SubmissionEnvelope::new(uid, s.report_id(), client_cc.map(str::to_owned), client_asn);
    env.attach_body_if_fits(s.stored_body().as_bytes(), DEFAULT_INLINE_LIMIT)
        .unwrap();
    env
}

/// Like [`envelope`], never inlining the body, and stores the body in the incoming bucket.
pub async fn envelope_via_bucket(
    stack: &TestStack,
    s: &Sample,
    client_cc: Option<&str>,
    client_asn: Option<u32>,
) -> SubmissionEnvelope {
    let uid = MeasurementUid::parse(&s.uid).unwrap();
    let env = SubmissionEnvelope::new(uid, s.report_id(), client_cc.map(str::to_owned), client_asn);
    stack
        .ctx
        .object_store(Bucket::Incoming)
        .put(
            &env.object_key,
            Bytes::from(s.stored_body()),
            "application/json",
        )
        .await
        .unwrap();
    env
}

pub fn record(message_id: &str, body: &str, receive_count: u32) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(message_id.to_owned());
    m.receipt_handle = Some(format!("handle-{message_id}"));
    m.body = Some(body.to_owned());
    m.event_source = Some("aws:sqs".into());
    m.attributes
        .insert("ApproximateReceiveCount".into(), receive_count.to_string());
    m.attributes
        .insert("SentTimestamp".into(), "1709618828000".into());
    m
}

pub fn event(records: Vec<SqsMessage>) -> SqsEvent {
    let mut e = SqsEvent::default();
    e.records = records;
    e
}

/// An event with one record per envelope, message ids `m0`, `m1`, ...
pub fn event_of(envs: &[SubmissionEnvelope]) -> SqsEvent {
    event(
        envs.iter()
            .enumerate()
            .map(|(i, e)| record(&format!("m{i}"), &e.to_json().unwrap(), 1))
            .collect(),
    )
}

pub fn failed_ids(r: &SqsBatchResponse) -> Vec<String> {
    let mut ids: Vec<String> = r
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    ids.sort();
    ids
}

/// Loads the production fingerprints into the stack's `fingerprints_*` tables.
pub async fn load_fingerprints(stack: &TestStack) {
    for table in ["fingerprints_dns", "fingerprints_http"] {
        let csv = std::fs::read(fixture(&format!("{table}.csv"))).unwrap();
        let mut insert = stack
            .ch()
            .insert_formatted_with(format!("INSERT INTO {table} FORMAT CSVWithNames"));
        insert.send(Bytes::from(csv)).await.unwrap();
        insert.end().await.unwrap();
    }
}

/// Physical rows of `table` (no FINAL) whose uid column equals `uid`.
pub async fn raw_count(stack: &TestStack, table: &str, uid: &str) -> u64 {
    stack
        .ch()
        .query(&format!(
            "SELECT count() FROM {table} WHERE measurement_uid = ?"
        ))
        .bind(uid)
        .fetch_one::<u64>()
        .await
        .unwrap()
}

/// Physical rows of `fastpath`, and distinct uids.
pub async fn fastpath_counts(stack: &TestStack) -> (u64, u64) {
    stack
        .ch()
        .query("SELECT count(), uniqExact(measurement_uid) FROM fastpath")
        .fetch_one::<(u64, u64)>()
        .await
        .unwrap()
}

/// A loopback port nothing listens on.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
