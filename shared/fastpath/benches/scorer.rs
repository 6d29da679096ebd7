//! Scorer throughput: SQS batches of 10 real envelopes through the Lambda handler, with the
//! lookups and the INSERTs going to the real local ClickHouse (a fresh test database).
//!
//! Prints, for new measurements and for redelivered ones: ms per batch (mean, p50, p95) and
//! measurements per second, plus the scoring-only cost of the same batches for reference.
//! `OONI_BENCH_BATCHES` sets the number of batches (default 300).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use bytes::Bytes;
use ooni_domain::envelope::DEFAULT_INLINE_LIMIT;
use ooni_domain::{MeasurementUid, SubmissionEnvelope};
use ooni_fastpath::{FastpathService, ScorerConfig, ScorerSettings};
use ooni_platform::SqsHandler;
use ooni_testkit::TestStack;
use std::time::{Duration, Instant};

const PICK: [u64; 10] = [0, 2, 4, 5, 17, 18, 19, 20, 24, 43];

struct Sample {
    uid: String,
    report_id: String,
    body: String,
}

fn samples() -> Vec<Sample> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/samples.jsonl");
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    for line in text.lines() {
        #[derive(serde::Deserialize)]
        struct L<'a> {
            idx: u64,
            measurement_uid: String,
            #[serde(borrow)]
            measurement: &'a serde_json::value::RawValue,
        }
        let l: L = serde_json::from_str(line).unwrap();
        if !PICK.contains(&l.idx) {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(l.measurement.get()).unwrap();
        out.push(Sample {
            uid: l.measurement_uid,
            report_id: v["report_id"].as_str().unwrap_or_default().to_owned(),
            body: format!(
                "{{\"format\":\"json\",\"content\":{},\"is_verified\":\"u\"}}",
                l.measurement.get()
            ),
        });
    }
    out
}

/// Batch `n`: the ten samples under uids unique to this batch.
fn batch(samples: &[Sample], n: usize) -> SqsEvent {
    let mut ev = SqsEvent::default();
    for (i, s) in samples.iter().enumerate() {
        let (head, _) = s.uid.rsplit_once('_').unwrap();
        let uid = MeasurementUid::parse(&format!("{head}_{:016x}", n * 100 + i)).unwrap();
        let mut env =
            SubmissionEnvelope::new(uid, s.report_id.clone(), Some("IT".into()), Some(30722));
        env.attach_body_if_fits(s.body.as_bytes(), DEFAULT_INLINE_LIMIT)
            .unwrap();
        let mut m = SqsMessage::default();
        m.message_id = Some(format!("{n}-{i}"));
        m.body = Some(env.to_json().unwrap());
        m.attributes
            .insert("ApproximateReceiveCount".into(), "1".into());
        ev.records.push(m);
    }
    ev
}

fn report(label: &str, mut times: Vec<Duration>, per_batch: usize) {
    times.sort();
    let total: Duration = times.iter().sum();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mean = ms(total) / times.len() as f64;
    let p = |q: f64| ms(times[((times.len() as f64 - 1.0) * q).round() as usize]);
    let rate = (times.len() * per_batch) as f64 / total.as_secs_f64();
    println!(
        "{label:<44} {:>5} batches  mean {mean:>7.2} ms  p50 {:>7.2} ms  p95 {:>7.2} ms  {rate:>8.0} msmt/s",
        times.len(),
        p(0.5),
        p(0.95)
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let batches: usize = std::env::var("OONI_BENCH_BATCHES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(300);
        let stack = TestStack::start().await;
        for table in ["fingerprints_dns", "fingerprints_http"] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("tests/fixtures/{table}.csv"));
            let mut insert = stack
                .ch()
                .insert_formatted_with(format!("INSERT INTO {table} FORMAT CSVWithNames"));
            insert
                .send(Bytes::from(std::fs::read(path).unwrap()))
                .await
                .unwrap();
            insert.end().await.unwrap();
        }
        let settings = ScorerSettings {
            scorer: ScorerConfig {
                max_receive_count: 5,
            },
            clickhouse_timeout: Duration::from_secs(20),
            fingerprints_dir: None,
        };
        let scorer = FastpathService::with_settings(stack.ctx.clone(), settings)
            .scorer()
            .await
            .unwrap();
        let samples = samples();
        let bytes: usize = samples.iter().map(|s| s.body.len()).sum();
        println!(
            "scorer bench: {} samples per batch ({} KB of bodies), local ClickHouse {}",
            samples.len(),
            bytes / 1024,
            ooni_testkit::clickhouse_url()
        );

        // Warm up: fingerprints load, insert paths, connection pool.
        let warm = batch(&samples, 1_000_000);
        assert!(scorer.handle(warm).await.batch_item_failures.is_empty());

        let events: Vec<SqsEvent> = (0..batches).map(|n| batch(&samples, n)).collect();
        let mut fresh = Vec::with_capacity(batches);
        for ev in events.clone() {
            let t = Instant::now();
            let resp = scorer.handle(ev).await;
            fresh.push(t.elapsed());
            assert!(resp.batch_item_failures.is_empty());
        }
        let mut again = Vec::with_capacity(batches);
        for ev in events.clone() {
            let t = Instant::now();
            let resp = scorer.handle(ev).await;
            again.push(t.elapsed());
            assert!(resp.batch_item_failures.is_empty());
        }
        let fps = ooni_fastpath::cli::load_fingerprints(
            Some(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")),
            &stack.ch(),
        )
        .await
        .unwrap();
        let mut scoring = Vec::with_capacity(batches);
        for ev in &events {
            let t = Instant::now();
            for r in &ev.records {
                let env = SubmissionEnvelope::from_json(r.body.as_deref().unwrap()).unwrap();
                std::hint::black_box(ooni_scoring::process(
                    env.body_str().unwrap().as_bytes(),
                    env.measurement_uid.as_str(),
                    &fps,
                ));
            }
            scoring.push(t.elapsed());
        }
        let stats = scorer.stats();
        assert_eq!(stats.written as usize, (batches + 1) * samples.len());
        report(
            "new measurements (score + lookup + insert)",
            fresh,
            samples.len(),
        );
        report(
            "redelivered (score + lookup, no insert)",
            again,
            samples.len(),
        );
        report("decode + score only (no I/O)", scoring, samples.len());
        println!(
            "rows written {}, duplicates skipped {}, geoip mismatches {}",
            stats.written, stats.duplicate, stats.faulty_written
        );
    });
}
