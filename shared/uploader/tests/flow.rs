//! The upload run and body lookup in-process, on in-memory stores and table: round trip,
//! chunking, crash at every step then rerun, time budget, late objects, stale markers.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Duration as Span;
use common::*;
use ooni_adapters::{FixedClock, MemoryObjectStore};
use ooni_uploader::{
    BodyLookup, FaultHook, Hour, MemoryJsonl, Step, UploadError, Uploader, UploaderConfig,
};

struct Env {
    incoming: MemoryObjectStore,
    data: MemoryObjectStore,
    table: MemoryJsonl,
    clock: Arc<FixedClock>,
}

impl Env {
    fn new(now: chrono::DateTime<chrono::Utc>) -> Env {
        Env {
            incoming: MemoryObjectStore::with_page_size(7),
            data: MemoryObjectStore::new(),
            table: MemoryJsonl::new(),
            clock: Arc::new(FixedClock::new(now)),
        }
    }

    fn uploader(&self, config: UploaderConfig) -> Uploader {
        Uploader::new(
            Arc::new(self.incoming.clone()),
            Arc::new(self.data.clone()),
            Arc::new(self.table.clone()),
            self.clock.clone(),
            config,
        )
    }

    fn lookup(&self) -> BodyLookup {
        BodyLookup::new(
            Arc::new(self.incoming.clone()),
            Arc::new(self.data.clone()),
            Arc::new(self.table.clone()),
            self.clock.clone(),
        )
    }

    /// Rows after dedup (FINAL) must be exactly one per post, pointing at its content.
    async fn assert_rows(&self, posts: &[Post]) {
        let rows = self.table.final_rows();
        assert_eq!(rows.len(), posts.len(), "one jsonl row per measurement");
        let uids: BTreeSet<&str> = rows.iter().map(|r| r.measurement_uid.as_str()).collect();
        for p in posts {
            assert!(uids.contains(p.uid.as_str()), "row for {}", p.uid);
        }
    }

    async fn assert_bodies(&self, posts: &[Post]) {
        let lookup = self.lookup();
        for p in posts {
            let body = lookup.body_by_uid(&p.uid).await.unwrap();
            assert_eq!(body.as_deref(), Some(&p.content[..]), "body of {}", p.uid);
        }
    }
}

fn small_chunks() -> UploaderConfig {
    UploaderConfig {
        postcan_bytes: 40_000,
        member_bytes: 16 * 1024,
        fetch_concurrency: 3,
        ..UploaderConfig::default()
    }
}

#[tokio::test]
async fn an_hour_of_mixed_measurements_round_trips_and_the_current_hour_is_left_alone() {
    let h = hour(2024, 3, 5, 6);
    let env = Env::new(h + Span::minutes(125));
    let posts = hour_of_posts(h, 120, 1);
    let current = hour_of_posts(h + Span::hours(2), 5, 2);
    put_all(&env.incoming, &posts).await;
    put_all(&env.incoming, &current).await;
    env.assert_bodies(&posts).await;

    let report = env.uploader(UploaderConfig::default()).run().await.unwrap();
    assert_eq!(report.measurements, 120);
    assert_eq!(report.rows, 120);
    assert_eq!(report.hours, vec!["2024030506".to_owned()]);
    assert!(!report.stopped_early);

    let stored = stored(&env.data).await;
    assert_all_stored_once(&stored, &posts);
    assert!(stored
        .jsonl_files
        .iter()
        .all(|k| k.starts_with("raw/20240305/06/") && k.contains(".n1.0.")));
    env.assert_rows(&posts).await;
    env.assert_bodies(&posts).await;
    let left = keys(&env.incoming, "incoming/").await;
    let expected: Vec<String> = {
        let mut k: Vec<String> = current.iter().map(|p| p.key.clone()).collect();
        k.sort();
        k
    };
    assert_eq!(left, expected, "only the current hour stays in incoming");
    let lookup = env.lookup();
    for p in &current {
        assert_eq!(
            lookup.body_by_uid(&p.uid).await.unwrap().as_deref(),
            Some(&p.content[..])
        );
    }
}

#[tokio::test]
async fn bodies_are_found_by_report_id_and_input_and_missing_ones_are_none() {
    let h = hour(2024, 3, 5, 6);
    let env = Env::new(h + Span::days(3));
    let posts = hour_of_posts(h, 30, 1);
    put_all(&env.incoming, &posts).await;
    env.uploader(small_chunks()).run().await.unwrap();
    let lookup = env.lookup();
    for p in &posts {
        let body = lookup
            .body_by_report_input(&p.report_id, &p.input)
            .await
            .unwrap();
        assert_eq!(body.as_deref(), Some(&p.content[..]));
    }
    assert!(lookup
        .body_by_uid("20240305060708.123456_IT_webconnectivity_0123456789abcdef")
        .await
        .unwrap()
        .is_none());
    assert!(lookup.body_by_uid("not-a-uid").await.unwrap().is_none());
    assert!(lookup
        .body_by_report_input("nope", "")
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        lookup
            .require_by_uid("20240305060708.123456_IT_webconnectivity_0123456789abcdef")
            .await,
        Err(ooni_uploader::LookupError::NotFound)
    ));
}

#[tokio::test]
async fn a_large_group_is_split_into_numbered_chunks_and_members() {
    let h = hour(2024, 3, 5, 6);
    let env = Env::new(h + Span::hours(2));
    // One group: the same sample many times.
    let samples = samples();
    let (tn, m) = samples
        .iter()
        .find(|(tn, _)| tn == "web_connectivity")
        .unwrap();
    let posts: Vec<Post> = (0..200)
        .map(|i| post(tn, m, h + Span::seconds(i), i as u64))
        .collect();
    put_all(&env.incoming, &posts).await;
    let report = env.uploader(small_chunks()).run().await.unwrap();
    assert!(report.chunks >= 3, "{report:?}");
    let stored = stored(&env.data).await;
    assert_all_stored_once(&stored, &posts);
    let cnts: Vec<String> = stored
        .jsonl_files
        .iter()
        .map(|k| k.rsplit('/').next().unwrap().to_owned())
        .collect();
    for (i, name) in cnts.iter().enumerate() {
        assert!(name.ends_with(&format!(".n1.{i}.jsonl.gz")), "{cnts:?}");
    }
    let rows = env.table.final_rows();
    assert!(rows
        .iter()
        .any(|r| r.member_offset > 0 && r.member_line == 0));
    assert!(rows.iter().all(|r| r.member_length > 0));
    env.assert_bodies(&posts).await;
}

/// Fails once, after `step` of the `nth` chunk reaching it.
struct FailAt {
    step: Step,
    nth: usize,
    seen: Mutex<usize>,
}

impl FaultHook for FailAt {
    fn after(&self, step: Step, _key: &str) -> Result<(), String> {
        if step != self.step {
            return Ok(());
        }
        let mut seen = self.seen.lock().unwrap();
        *seen += 1;
        if *seen == self.nth {
            return Err("crash".into());
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_crash_after_any_step_then_a_rerun_loses_nothing_and_duplicates_nothing() {
    for step in Step::ALL {
        for nth in [1, 2] {
            let h = hour(2024, 3, 5, 6);
            let env = Env::new(h + Span::hours(2));
            let posts = hour_of_posts(h, 90, 7);
            put_all(&env.incoming, &posts).await;
            let crashing = env.uploader(small_chunks()).with_faults(Arc::new(FailAt {
                step,
                nth,
                seen: Mutex::new(0),
            }));
            let err = crashing.run().await.unwrap_err();
            assert!(
                matches!(err, UploadError::Fault { step: s, .. } if s == step),
                "{err}"
            );
            // Everything is still retrievable between the crash and the rerun.
            env.assert_bodies(&posts).await;

            let report = env.uploader(small_chunks()).run().await.unwrap();
            assert!(!report.stopped_early);
            let stored = stored(&env.data).await;
            assert_all_stored_once(&stored, &posts);
            env.assert_rows(&posts).await;
            env.assert_bodies(&posts).await;
            assert!(
                keys(&env.incoming, "incoming/").await.is_empty(),
                "{step:?} {nth}"
            );
            // A third run has nothing to do.
            let again = env.uploader(small_chunks()).run().await.unwrap();
            assert_eq!(again.measurements, 0);
            assert_eq!(stored_count(&env.data).await, stored.jsonl_files.len() * 2);
        }
    }
}

async fn stored_count(data: &MemoryObjectStore) -> usize {
    keys(data, "raw/").await.len()
}

#[tokio::test]
async fn a_failing_store_aborts_the_run_and_the_rerun_completes() {
    let h = hour(2024, 3, 5, 6);
    let env = Env::new(h + Span::hours(2));
    let posts = hour_of_posts(h, 40, 3);
    put_all(&env.incoming, &posts).await;
    env.table.fail_next_insert();
    assert!(matches!(
        env.uploader(small_chunks()).run().await,
        Err(UploadError::Index(_))
    ));
    env.data.fail_next_put();
    assert!(env.uploader(small_chunks()).run().await.is_err());
    env.uploader(small_chunks()).run().await.unwrap();
    assert_all_stored_once(&stored(&env.data).await, &posts);
    env.assert_rows(&posts).await;
    assert!(keys(&env.incoming, "incoming/").await.is_empty());
}

/// Sleeps at every committed chunk, so a short budget runs out part-way.
struct Slow;

impl FaultHook for Slow {
    fn after(&self, step: Step, _key: &str) -> Result<(), String> {
        if step == Step::AllDeleted {
            std::thread::sleep(Duration::from_millis(40));
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_backlog_of_hours_is_drained_across_runs_within_the_time_budget() {
    let first = hour(2024, 3, 5, 6);
    let env = Env::new(first + Span::hours(5));
    let mut posts = Vec::new();
    for i in 0..3 {
        posts.extend(hour_of_posts(first + Span::hours(i), 40, i as u64));
    }
    put_all(&env.incoming, &posts).await;
    let budget = UploaderConfig {
        time_budget: Some(Duration::from_millis(150)),
        ..small_chunks()
    };

    let mut runs = Vec::new();
    loop {
        let report = env
            .uploader(budget.clone())
            .with_faults(Arc::new(Slow))
            .run()
            .await
            .unwrap();
        let stopped = report.stopped_early;
        runs.push(report);
        if !stopped {
            break;
        }
        assert!(runs.len() < 100, "backlog never drained");
    }
    assert!(runs.len() >= 2, "the budget should stop the first run");
    assert!(runs[0].measurements > 0, "each run makes progress");
    let hours: Vec<String> = runs.iter().flat_map(|r| r.hours.clone()).collect();
    assert_eq!(hours, vec!["2024030506", "2024030507", "2024030508"]);
    assert_all_stored_once(&stored(&env.data).await, &posts);
    env.assert_rows(&posts).await;

    let none = UploaderConfig {
        time_budget: Some(Duration::ZERO),
        ..small_chunks()
    };
    env.incoming
        .insert(&posts[0].key, posts[0].body.clone(), "application/json");
    let idle = env.uploader(none).run().await.unwrap();
    assert!(idle.stopped_early && idle.measurements == 0);
}

#[tokio::test]
async fn an_object_arriving_after_its_hour_was_uploaded_goes_into_a_new_chunk() {
    let h = hour(2024, 3, 5, 6);
    let env = Env::new(h + Span::hours(2));
    let samples = samples();
    let (tn, m) = &samples[0];
    let early = post(tn, m, h + Span::minutes(10), 1);
    let late = post(tn, m, h + Span::minutes(5), 2);
    put_all(&env.incoming, std::slice::from_ref(&early)).await;
    env.uploader(UploaderConfig::default()).run().await.unwrap();
    put_all(&env.incoming, std::slice::from_ref(&late)).await;
    env.uploader(UploaderConfig::default()).run().await.unwrap();
    let stored = stored(&env.data).await;
    assert_all_stored_once(&stored, &[early.clone(), late.clone()]);
    assert_eq!(stored.jsonl_files.len(), 2);
    assert!(stored.jsonl_files[1].ends_with(".n1.1.jsonl.gz"));
    env.assert_bodies(&[early, late]).await;
}

#[tokio::test]
async fn without_trusted_markers_an_old_hour_never_reuses_a_stored_chunk_number() {
    let h = hour(2023, 1, 1, 0);
    let env = Env::new(h + Span::days(200));
    let samples = samples();
    let (tn, m) = &samples[0];
    let p = post(tn, m, h + Span::minutes(1), 1);
    let group = ooni_uploader::keys::IncomingObject::parse(&p.key, 0)
        .unwrap()
        .group;
    // chunks 0 and 1 exist from an earlier upload whose markers expired.
    for cnt in [0, 1] {
        env.data.insert(&group.jsonl_key("1", cnt), vec![1u8], "x");
        env.data
            .insert(&group.postcan_key("1", cnt), vec![1u8], "x");
    }
    put_all(&env.incoming, std::slice::from_ref(&p)).await;
    env.uploader(UploaderConfig::default()).run().await.unwrap();
    assert_eq!(
        env.data
            .object(&group.jsonl_key("1", 0))
            .unwrap()
            .body
            .as_ref(),
        &[1u8]
    );
    assert!(env.data.object(&group.jsonl_key("1", 2)).is_some());
    env.assert_bodies(std::slice::from_ref(&p)).await;
}

#[tokio::test]
async fn upload_hour_refuses_an_hour_that_is_not_over() {
    let h = hour(2024, 3, 5, 6);
    let env = Env::new(h + Span::minutes(61));
    let err = env
        .uploader(UploaderConfig::default())
        .upload_hour(Hour::parse("2024030506").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, UploadError::HourNotComplete(_)));
    env.clock.set(h + Span::minutes(70));
    let posts = hour_of_posts(h, 10, 1);
    let other = hour_of_posts(h - Span::hours(1), 4, 2);
    put_all(&env.incoming, &posts).await;
    put_all(&env.incoming, &other).await;
    let report = env
        .uploader(UploaderConfig::default())
        .upload_hour(Hour::parse("2024030506").unwrap())
        .await
        .unwrap();
    assert_eq!(report.measurements, 10);
    assert_eq!(
        keys(&env.incoming, "incoming/").await.len(),
        4,
        "other hours untouched"
    );
}

#[tokio::test]
async fn foreign_keys_and_unreadable_posts_do_not_stop_the_upload() {
    let h = hour(2024, 3, 5, 6);
    let env = Env::new(h + Span::hours(2));
    let mut posts = hour_of_posts(h, 5, 1);
    let samples = samples();
    let (tn, m) = &samples[1];
    let mut bad = post(tn, m, h + Span::minutes(59), 9);
    bad.body = bytes::Bytes::from_static(b"{\"format\":\"yaml\",\"content\":\"x\"}");
    env.incoming
        .insert("incoming/2024030506/README", b"x".to_vec(), "text/plain");
    put_all(&env.incoming, &posts).await;
    put_all(&env.incoming, std::slice::from_ref(&bad)).await;
    let report = env.uploader(UploaderConfig::default()).run().await.unwrap();
    assert_eq!(report.foreign_keys, 1);
    assert_eq!(report.measurements, 6);
    assert_eq!(report.rows, 5);
    assert!(env.lookup().body_by_uid(&bad.uid).await.unwrap().is_none());
    let stored = stored(&env.data).await;
    assert!(stored.lines.contains_key(&b"{}"[..]));
    assert_eq!(
        stored.entries.get(&bad.key).map(Vec::as_slice),
        Some(&bad.body[..])
    );
    bad.content = b"{}".to_vec();
    posts.push(bad);
    assert_all_stored_once(&stored, &posts);
    assert_eq!(
        keys(&env.incoming, "incoming/").await,
        vec!["incoming/2024030506/README".to_owned()]
    );
}

#[tokio::test]
async fn a_body_in_an_upstream_style_file_is_read_by_line_number() {
    use ooni_uploader::JsonlSink;
    let env = Env::new(hour(2024, 3, 5, 6));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, b"{\"a\":0}\n{\"a\":1}\n{\"a\":2}\n").unwrap();
    env.data.insert(
        "raw/20210709/00/MY/webconnectivity/old.jsonl.gz",
        gz.finish().unwrap(),
        "x",
    );
    env.table
        .insert(&[ooni_uploader::JsonlRow {
            report_id: "r".into(),
            input: "i".into(),
            s3path: "raw/20210709/00/MY/webconnectivity/old.jsonl.gz".into(),
            linenum: 2,
            measurement_uid: String::new(),
            date: chrono::NaiveDate::from_ymd_opt(2021, 7, 9).unwrap(),
            source: String::new(),
            member_offset: 0,
            member_length: 0,
            member_line: 0,
        }])
        .await
        .unwrap();
    let body = env.lookup().body_by_report_input("r", "i").await.unwrap();
    assert_eq!(body.as_deref(), Some(&b"{\"a\":2}"[..]));
}

#[tokio::test]
async fn a_row_pointing_at_a_missing_file_is_reported_as_dangling() {
    use ooni_uploader::JsonlSink;
    let env = Env::new(hour(2024, 3, 5, 6));
    env.table
        .insert(&[ooni_uploader::JsonlRow {
            report_id: "r".into(),
            input: String::new(),
            s3path: "raw/gone.jsonl.gz".into(),
            linenum: 0,
            measurement_uid: "u".into(),
            date: chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
            source: String::new(),
            member_offset: 0,
            member_length: 10,
            member_line: 0,
        }])
        .await
        .unwrap();
    let err = env
        .lookup()
        .body_by_report_input("r", "")
        .await
        .unwrap_err();
    assert!(matches!(err, ooni_uploader::LookupError::Dangling { .. }));
    assert!(!err.is_transient());
}

#[test]
fn the_seekable_file_costs_little_over_a_single_gzip_stream() {
    use std::io::Write;
    let posts = hour_of_posts(hour(2024, 3, 5, 6), 400, 1);
    let mut w =
        ooni_uploader::seekable::SeekableWriter::new(ooni_uploader::seekable::DEFAULT_MEMBER_BYTES);
    let mut multi = 0usize;
    let mut single = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    for p in &posts {
        if let (_, Some(m)) = w.push_line(&p.content).unwrap() {
            multi += m.bytes.len();
        }
        single.write_all(&p.content).unwrap();
        single.write_all(b"\n").unwrap();
    }
    multi += w.close_member().unwrap().map_or(0, |m| m.bytes.len());
    let single = single.finish().unwrap().len();
    let overhead = multi as f64 / single as f64 - 1.0;
    assert!(overhead < 0.05, "overhead {:.2}%", overhead * 100.0);
}
