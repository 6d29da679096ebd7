//! Black-box tests of the Scorer against the real local ClickHouse and AWS emulator: SQS
//! events built from real submission envelopes go through the handler the Lambda runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ooni_adapters::{ClickHouseConfig, SystemClock};
use ooni_fastpath::fingerprints::{DirFingerprints, FingerprintCache, RefreshPolicy};
use ooni_fastpath::records::{FastpathRecord, OpenvpnRecord};
use ooni_fastpath::store::{ClickHouseRowStore, RowKey, RowStore};
use ooni_fastpath::writer::{write, RowBatch, WriteMode};
use ooni_fastpath::{FastpathService, Scorer, ScorerConfig, ScorerSettings};
use ooni_platform::functions::Bucket;
use ooni_platform::{Context, Handler, Service, SqsHandler};
use ooni_testkit::TestStack;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

fn settings() -> ScorerSettings {
    ScorerSettings {
        scorer: ScorerConfig {
            max_receive_count: 5,
        },
        clickhouse_timeout: std::time::Duration::from_secs(10),
        fingerprints_dir: None,
    }
}

async fn scorer_for(ctx: Arc<Context>) -> Arc<Scorer> {
    FastpathService::with_settings(ctx, settings())
        .scorer()
        .await
        .unwrap()
}

async fn stack_with_fingerprints() -> TestStack {
    let stack = TestStack::start().await;
    load_fingerprints(&stack).await;
    stack
}

fn time(v: &Value) -> chrono::NaiveDateTime {
    chrono::NaiveDateTime::parse_from_str(v.as_str().unwrap(), "%Y-%m-%d %H:%M:%S").unwrap()
}

/// Upstream's `fastpath` row for sample `idx` (its JSON has the table's column names).
fn expected_record(idx: u64) -> FastpathRecord {
    serde_json::from_value(expected(idx)["row"].clone()).unwrap()
}

async fn stored(stack: &TestStack, uid: &str) -> FastpathRecord {
    let store = ClickHouseRowStore::new(stack.ch());
    let found = store
        .current_fastpath(&[RowKey {
            measurement_uid: uid.into(),
            measurement_start_time: sample_start(uid),
        }])
        .await
        .unwrap();
    found
        .get(uid)
        .cloned()
        .unwrap_or_else(|| panic!("no fastpath row for {uid}"))
}

fn sample_start(uid: &str) -> u32 {
    let s = samples().into_iter().find(|s| s.uid == uid).unwrap();
    let v: Value = serde_json::from_str(&s.measurement).unwrap();
    ooni_scoring::epoch_seconds(time(&v["measurement_start_time"]))
}

#[tokio::test]
async fn rows_land_with_the_values_upstream_writes() {
    let stack = stack_with_fingerprints().await;
    let scorer = scorer_for(stack.ctx.clone()).await;
    let picked = [0, 2, 4, 17, 24, 43];
    let envs: Vec<_> = picked
        .iter()
        .map(|&i| envelope(&sample(i), None, None))
        .collect();
    assert!(
        envs.iter().all(|e| e.body.is_some()),
        "these bodies travel inline"
    );
    let resp = scorer.handle(event_of(&envs)).await;
    assert_eq!(failed_ids(&resp), Vec::<String>::new());
    for idx in picked {
        let want = expected_record(idx);
        assert_eq!(
            stored(&stack, &want.measurement_uid).await,
            want,
            "sample {idx}"
        );
    }
    // The confirmed Indonesian fingerprint match came from the ClickHouse fingerprint tables.
    assert_eq!(stored(&stack, &sample(0).uid).await.confirmed, "t");

    let ov = &expected(17)["openvpn_obs_row"];
    let rows: Vec<OpenvpnRecord> = stack
        .ch()
        .query("SELECT ?fields FROM obs_openvpn")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let got = &rows[0];
    assert_eq!(got.measurement_uid, ov["measurement_uid"].as_str().unwrap());
    assert_eq!(got.input, ov["input"].as_str().unwrap());
    let flag = |k: &str| ov[k].as_bool().unwrap();
    assert_eq!(
        (
            got.success,
            got.success_handshake,
            got.success_icmp,
            got.success_urlgrab,
            got.anomaly,
            got.confirmed
        ),
        (
            flag("success"),
            flag("success_handshake"),
            flag("success_icmp"),
            flag("success_urlgrab"),
            flag("anomaly"),
            flag("confirmed")
        )
    );
    assert_eq!(
        (
            got.provider.as_str(),
            got.obfuscation.as_str(),
            got.transport.as_str()
        ),
        ("riseup", "obfs4", "tcp")
    );
    assert_eq!(got.last_handshake_transaction_id, 8);
    assert_eq!(got.resolver_asn, 9009);
    assert_eq!(got.remote, "198.252.153.109:443");
    assert_eq!(
        got.bootstrap_time,
        ov["bootstrap_time"].as_f64().unwrap() as f32
    );
    assert_eq!(
        got.measurement_start_time,
        time(&ov["measurement_start_time"])
    );
    assert_eq!(scorer.stats().written, picked.len() as u64);
}

#[tokio::test]
async fn a_body_stored_in_the_incoming_bucket_is_read_when_the_envelope_has_none() {
    let stack = stack_with_fingerprints().await;
    let scorer = scorer_for(stack.ctx.clone()).await;
    let big = sample(12);
    assert!(
        envelope(&big, None, None).body.is_none(),
        "a 568 KB body does not fit in an SQS message"
    );
    let env = envelope_via_bucket(&stack, &big, None, None).await;
    let resp = scorer.handle(event_of(&[env])).await;
    assert_eq!(failed_ids(&resp), Vec::<String>::new());
    assert_eq!(stored(&stack, &big.uid).await, expected_record(12));
}

#[tokio::test]
async fn the_same_batch_delivered_twice_leaves_one_row() {
    let stack = stack_with_fingerprints().await;
    let scorer = scorer_for(stack.ctx.clone()).await;
    let envs: Vec<_> = [4, 5, 18, 19, 20]
        .iter()
        .map(|&i| envelope(&sample(i), None, None))
        .collect();
    for _ in 0..2 {
        let resp = scorer.handle(event_of(&envs)).await;
        assert_eq!(failed_ids(&resp), Vec::<String>::new());
    }
    assert_eq!(
        fastpath_counts(&stack).await,
        (5, 5),
        "physical rows, no FINAL needed"
    );
    assert_eq!((scorer.stats().written, scorer.stats().duplicate), (5, 5));
}

#[tokio::test]
async fn the_same_message_in_two_different_batches_leaves_one_row() {
    let stack = stack_with_fingerprints().await;
    let scorer = scorer_for(stack.ctx.clone()).await;
    let (a, b, c) = (
        envelope(&sample(4), None, None),
        envelope(&sample(5), None, None),
        envelope(&sample(18), None, None),
    );
    assert!(failed_ids(&scorer.handle(event_of(&[a.clone(), b.clone()])).await).is_empty());
    assert!(failed_ids(&scorer.handle(event_of(&[c, b.clone()])).await).is_empty());
    // And twice in one batch.
    assert!(failed_ids(&scorer.handle(event_of(&[a.clone(), a])).await).is_empty());
    assert_eq!(
        raw_count(&stack, "fastpath", b.measurement_uid.as_str()).await,
        1
    );
    assert_eq!(fastpath_counts(&stack).await, (3, 3));
}

#[tokio::test]
async fn an_insert_repeated_with_the_same_token_is_dropped_by_clickhouse() {
    // The race the lookup cannot see (two copies in flight at once): the insert token alone
    // keeps the second copy out, thanks to migration 0013's deduplication window.
    let stack = TestStack::start().await;
    let store = ClickHouseRowStore::new(stack.ch());
    let rows = vec![
        ooni_fastpath::testing::fastpath_record("u1"),
        ooni_fastpath::testing::fastpath_record("u2"),
    ];
    let token = ooni_fastpath::writer::dedup_token(
        "scorer",
        "fastpath",
        &rows,
        |r| r.measurement_uid.clone(),
        false,
    );
    store.insert_fastpath(&rows, &token).await.unwrap();
    store.insert_fastpath(&rows, &token).await.unwrap();
    assert_eq!(fastpath_counts(&stack).await, (2, 2));
    // A different token is a different insert (the lookup layer is what stops those).
    store.insert_fastpath(&rows[..1], "other").await.unwrap();
    assert_eq!(fastpath_counts(&stack).await, (3, 2));
}

/// A store whose lookups see nothing: two concurrent deliveries both miss each other's rows.
struct BlindLookups(ClickHouseRowStore);

#[async_trait::async_trait]
impl RowStore for BlindLookups {
    async fn current_fastpath(
        &self,
        _: &[RowKey],
    ) -> Result<HashMap<String, FastpathRecord>, ooni_fastpath::store::StoreError> {
        Ok(HashMap::new())
    }
    async fn current_openvpn(
        &self,
        _: &[RowKey],
    ) -> Result<HashMap<String, OpenvpnRecord>, ooni_fastpath::store::StoreError> {
        Ok(HashMap::new())
    }
    async fn present_faulty(
        &self,
        _: &[ooni_fastpath::FaultyRecord],
    ) -> Result<Vec<uuid::Uuid>, ooni_fastpath::store::StoreError> {
        Ok(Vec::new())
    }
    async fn insert_fastpath(
        &self,
        rows: &[FastpathRecord],
        token: &str,
    ) -> Result<(), ooni_fastpath::store::StoreError> {
        self.0.insert_fastpath(rows, token).await
    }
    async fn insert_openvpn(
        &self,
        rows: &[OpenvpnRecord],
        token: &str,
    ) -> Result<(), ooni_fastpath::store::StoreError> {
        self.0.insert_openvpn(rows, token).await
    }
    async fn insert_faulty(
        &self,
        rows: &[ooni_fastpath::FaultyRecord],
        token: &str,
    ) -> Result<(), ooni_fastpath::store::StoreError> {
        self.0.insert_faulty(rows, token).await
    }
}

#[tokio::test]
async fn the_same_batch_written_concurrently_is_stored_once_in_every_table() {
    let stack = TestStack::start().await;
    let store = Arc::new(BlindLookups(ClickHouseRowStore::new(stack.ch())));
    let fps = ooni_scoring::Fingerprints::empty();
    let batch = || {
        let mut b = RowBatch::default();
        for idx in [4, 17] {
            let sm = sample(idx);
            let ooni_scoring::Outcome::Row { row, openvpn } =
                ooni_scoring::process(sm.stored_body().as_bytes(), &sm.uid, &fps)
            else {
                panic!("sample {idx} has a row")
            };
            let rec = FastpathRecord::from(*row);
            let geo = ooni_fastpath::records::ClientGeo {
                cc: Some("US".into()),
                asn: Some(1),
            };
            b.faulty.extend(ooni_fastpath::records::geoip_mismatch(
                &rec,
                &geo,
                chrono::Utc::now(),
            ));
            b.openvpn.extend(openvpn.map(|o| OpenvpnRecord::from(*o)));
            b.fastpath.push(rec);
        }
        b
    };
    let first = batch();
    let second = RowBatch {
        faulty: first.faulty.clone(),
        ..batch()
    };
    let (r1, r2) = tokio::join!(
        write(store.as_ref(), first, WriteMode::SkipExisting, "scorer"),
        write(store.as_ref(), second, WriteMode::SkipExisting, "scorer"),
    );
    r1.unwrap();
    r2.unwrap();
    assert_eq!(fastpath_counts(&stack).await, (2, 2));
    assert_eq!(raw_count(&stack, "obs_openvpn", &sample(17).uid).await, 1);
    let faulty: u64 = stack
        .ch()
        .query("SELECT count() FROM faulty_measurements")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(faulty, 2);
}

#[tokio::test]
async fn clickhouse_unreachable_at_cold_start_fails_every_item() {
    let stack = TestStack::start().await;
    let down = ClickHouseConfig::new(format!("http://127.0.0.1:{}", closed_port()), "ooni");
    let ctx = Arc::new(Context::new(
        stack.ctx.http.clone(),
        stack.aws.clone(),
        stack.names.clone(),
        down,
    ));
    let service = FastpathService::with_settings(ctx, settings());
    let Some(Handler::Sqs(handler)) = service.build("Scorer").await.unwrap() else {
        panic!("Scorer is an SQS handler")
    };
    let envs: Vec<_> = [4, 5, 49]
        .iter()
        .map(|&i| envelope(&sample(i), None, None))
        .collect();
    let resp = handler.handle(event_of(&envs)).await;
    assert_eq!(failed_ids(&resp), vec!["m0", "m1", "m2"]);
}

#[tokio::test]
async fn clickhouse_unreachable_when_writing_fails_every_item() {
    let stack = TestStack::start().await;
    let down = ClickHouseConfig::new(format!("http://127.0.0.1:{}", closed_port()), "ooni");
    let fingerprints = FingerprintCache::new(
        Arc::new(DirFingerprints::new(fixture(""))),
        Arc::new(SystemClock),
        RefreshPolicy::hourly(),
    );
    let scorer = Scorer::new(
        fingerprints,
        stack.ctx.object_store(Bucket::Incoming),
        Arc::new(ClickHouseRowStore::new(down.client())),
        ScorerConfig {
            max_receive_count: 5,
        },
    );
    let mut envs: Vec<_> = [4, 5]
        .iter()
        .map(|&i| envelope(&sample(i), None, None))
        .collect();
    envs.push(envelope(&sample(49), None, None)); // a discard in the same batch is retried too
    let resp = scorer.handle(event_of(&envs)).await;
    assert_eq!(failed_ids(&resp), vec!["m0", "m1", "m2"]);
    assert_eq!(scorer.stats().written, 0);
}

#[tokio::test]
async fn a_garbage_message_is_a_failed_item_and_the_rest_of_the_batch_is_written() {
    let stack = stack_with_fingerprints().await;
    let scorer = scorer_for(stack.ctx.clone()).await;
    let good = envelope(&sample(4), None, None);
    let ev = event(vec![
        record("garbage", "this is not an envelope", 1),
        record("good", &good.to_json().unwrap(), 1),
        record(
            "wrong-version",
            &good.to_json().unwrap().replace("\"v\":1", "\"v\":9"),
            5,
        ),
    ]);
    let resp = scorer.handle(ev).await;
    assert_eq!(failed_ids(&resp), vec!["garbage", "wrong-version"]);
    assert_eq!(
        raw_count(&stack, "fastpath", good.measurement_uid.as_str()).await,
        1
    );
    let st = scorer.stats();
    assert_eq!(
        (st.failed, st.parked),
        (2, 1),
        "the message on its 5th receive is parked"
    );
}

#[tokio::test]
async fn a_documented_discard_is_acknowledged_without_a_row() {
    let stack = stack_with_fingerprints().await;
    let scorer = scorer_for(stack.ctx.clone()).await;
    let zz = sample(49);
    let resp = scorer.handle(event_of(&[envelope(&zz, None, None)])).await;
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!(raw_count(&stack, "fastpath", &zz.uid).await, 0);
    assert_eq!(scorer.stats().discarded, 1);
}

#[tokio::test]
async fn zz_and_as0_measurements_are_acknowledged_without_rows() {
    let stack = stack_with_fingerprints().await;
    let scorer = scorer_for(stack.ctx.clone()).await;
    let base = sample(4);
    assert!(base.measurement.contains("\"probe_cc\":\"NL\""));
    let mut zz = base.clone();
    zz.measurement = zz
        .measurement
        .replace("\"probe_cc\":\"NL\"", "\"probe_cc\":\"ZZ\"");
    let mut as0 = sample(5);
    as0.measurement = as0
        .measurement
        .replace("\"probe_asn\":\"AS197207\"", "\"probe_asn\":\"AS0\"");
    assert!(as0.measurement.contains("\"AS0\""));
    let resp = scorer
        .handle(event_of(&[
            envelope(&zz, None, None),
            envelope(&as0, None, None),
        ]))
        .await;
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!(fastpath_counts(&stack).await, (0, 0));
    assert_eq!(scorer.stats().discarded, 2);
}

#[tokio::test]
async fn a_body_the_scorer_cannot_turn_into_a_row_is_a_failed_item() {
    let stack = stack_with_fingerprints().await;
    let scorer = scorer_for(stack.ctx.clone()).await;
    let mut broken = sample(4);
    broken.measurement = broken
        .measurement
        .replace("\"probe_asn\":\"AS5390\"", "\"probe_asn\":\"nonsense\"");
    assert!(broken.measurement.contains("nonsense"));
    let resp = scorer
        .handle(event_of(&[
            envelope(&broken, None, None),
            envelope(&sample(5), None, None),
        ]))
        .await;
    assert_eq!(failed_ids(&resp), vec!["m0"]);
    assert_eq!(fastpath_counts(&stack).await, (1, 1));
}

#[tokio::test]
async fn a_missing_body_object_is_a_failed_item() {
    let stack = stack_with_fingerprints().await;
    let scorer = scorer_for(stack.ctx.clone()).await;
    let s4 = sample(4);
    let env = ooni_domain::SubmissionEnvelope::new(
        ooni_domain::MeasurementUid::parse(&s4.uid).unwrap(),
        s4.report_id(),
        None,
        None,
    );
    let resp = scorer
        .handle(event_of(&[env, envelope(&sample(5), None, None)]))
        .await;
    assert_eq!(failed_ids(&resp), vec!["m0"]);
    assert_eq!(fastpath_counts(&stack).await, (1, 1));
}

#[tokio::test]
async fn a_geoip_mismatch_writes_one_faulty_measurements_row_even_when_redelivered() {
    let stack = stack_with_fingerprints().await;
    let scorer = scorer_for(stack.ctx.clone()).await;
    let nl = sample(4); // probe_cc NL, probe_asn AS5390
    let env = envelope(&nl, Some("US"), Some(5390));
    let matching = envelope(&sample(5), Some("IR"), Some(197207));
    for _ in 0..2 {
        let resp = scorer
            .handle(event_of(&[env.clone(), matching.clone()]))
            .await;
        assert!(resp.batch_item_failures.is_empty());
    }
    #[derive(clickhouse::Row, serde::Deserialize)]
    struct Faulty {
        kind: String,
        probe_cc: String,
        probe_asn: u32,
        details: String,
        ts_ms: i64,
    }
    let rows: Vec<Faulty> = stack
        .ch()
        .query("SELECT type AS kind, probe_cc, probe_asn, details, toUnixTimestamp64Milli(ts) AS ts_ms FROM faulty_measurements")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(
        rows.len(),
        1,
        "one row, and none for the matching submission"
    );
    let f = &rows[0];
    assert_eq!(
        (f.kind.as_str(), f.probe_cc.as_str(), f.probe_asn),
        ("geoip", "US", 5390)
    );
    assert_eq!(f.ts_ms, env.received_at.timestamp_millis());
    let d: Value = serde_json::from_str(&f.details).unwrap();
    assert_eq!(d["submission_cc"], "NL");
    assert_eq!(d["submission_asn"], 5390);
    assert_eq!(d["measurement_uid"], nl.uid.as_str());
    let m: Value = serde_json::from_str(&nl.measurement).unwrap();
    assert_eq!(d["software_name"], m["software_name"]);
    assert_eq!(d["software_version"], m["software_version"]);
    assert!(d.get("platform").is_some());
    assert_eq!(scorer.stats().faulty_written, 1);
}

#[tokio::test]
async fn the_sample_events_are_scored() {
    let stack = stack_with_fingerprints().await;
    let scorer = scorer_for(stack.ctx.clone()).await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/Scorer");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 2, "{files:?}");
    for file in files {
        let ev: aws_lambda_events::sqs::SqsEvent =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        for r in &ev.records {
            // Bodies the events leave in the bucket: store them as the submit function would.
            let env =
                ooni_domain::SubmissionEnvelope::from_json(r.body.as_deref().unwrap()).unwrap();
            if env.body.is_none() {
                let s = samples()
                    .into_iter()
                    .find(|s| s.uid == env.measurement_uid.as_str())
                    .unwrap();
                envelope_via_bucket(&stack, &s, None, None).await;
            }
        }
        let n = ev.records.len() as u64;
        let before = scorer.stats().written;
        let resp = scorer.handle(ev).await;
        assert!(resp.batch_item_failures.is_empty(), "{file:?}");
        assert_eq!(scorer.stats().written - before, n, "{file:?}");
    }
}
