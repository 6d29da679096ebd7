//! The uploader and body lookup against the real local services (moto S3, ClickHouse) through
//! `ooni-testkit`: an hour of real measurements round-trips; `zcat` and Python's `gzip` read
//! the seekable files; a crash after every step followed by a rerun leaves exactly what a
//! clean run leaves (same objects, same bytes, one row per measurement after dedup).
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::{Arc, Mutex};

use chrono::Duration as Span;
use common::*;
use ooni_adapters::{FixedClock, MemoryObjectStore, ObjectStore, S3ObjectStore};
use ooni_platform::functions::Bucket;
use ooni_testkit::TestStack;
use ooni_uploader::{
    BodyLookup, ClickHouseJsonl, FaultHook, Hour, MemoryJsonl, Step, Uploader, UploaderConfig,
};

struct Live {
    stack: TestStack,
    incoming: Arc<dyn ObjectStore>,
    data: Arc<dyn ObjectStore>,
    clock: Arc<FixedClock>,
}

impl Live {
    async fn start(now: chrono::DateTime<chrono::Utc>) -> Live {
        let stack = TestStack::start().await;
        // Small listing pages, to go through pagination.
        let incoming = Arc::new(
            S3ObjectStore::new(stack.aws.s3.clone(), stack.names.incoming_bucket.clone())
                .with_page_size(13),
        );
        let data = stack.ctx.object_store(Bucket::Data);
        Live {
            stack,
            incoming,
            data,
            clock: Arc::new(FixedClock::new(now)),
        }
    }

    fn uploader(&self, config: UploaderConfig) -> Uploader {
        Uploader::new(
            self.incoming.clone(),
            self.data.clone(),
            Arc::new(ClickHouseJsonl::new(self.stack.ch())),
            self.clock.clone(),
            config,
        )
    }

    fn lookup(&self) -> BodyLookup {
        BodyLookup::new(
            self.incoming.clone(),
            self.data.clone(),
            Arc::new(ClickHouseJsonl::new(self.stack.ch())),
            self.clock.clone(),
        )
    }

    async fn count(&self, sql: &str, like: &str) -> u64 {
        self.stack
            .ch()
            .query(sql)
            .bind(like)
            .fetch_one::<u64>()
            .await
            .unwrap()
    }

    /// Rows of the files under `prefix`: (dedup-aware with FINAL, distinct uids, raw after OPTIMIZE).
    async fn row_counts(&self, prefix: &str) -> (u64, u64, u64) {
        let like = format!("{prefix}%");
        let final_rows = self
            .count("SELECT count() FROM jsonl FINAL WHERE s3path LIKE ?", &like)
            .await;
        let uids = self
            .count(
                "SELECT uniqExact(measurement_uid) FROM jsonl WHERE s3path LIKE ?",
                &like,
            )
            .await;
        self.stack
            .ch()
            .query("OPTIMIZE TABLE jsonl FINAL")
            .execute()
            .await
            .unwrap();
        let raw = self
            .count("SELECT count() FROM jsonl WHERE s3path LIKE ?", &like)
            .await;
        (final_rows, uids, raw)
    }

    async fn assert_bodies(&self, posts: &[Post]) {
        let lookup = self.lookup();
        for p in posts {
            let body = lookup.body_by_uid(&p.uid).await.unwrap();
            assert_eq!(body.as_deref(), Some(&p.content[..]), "body of {}", p.uid);
        }
    }
}

/// The objects (key -> bytes) under `prefix`.
async fn objects(store: &dyn ObjectStore, prefix: &str) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for key in keys(store, prefix).await {
        let body = store.get(&key).await.unwrap().unwrap();
        out.insert(key, body.to_vec());
    }
    out
}

fn small_chunks() -> UploaderConfig {
    UploaderConfig {
        postcan_bytes: 20_000,
        member_bytes: 32 * 1024,
        ..UploaderConfig::default()
    }
}

fn tool_output(program: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[tokio::test]
async fn an_hour_of_real_measurements_round_trips_through_s3_and_clickhouse() {
    let h = hour(2024, 3, 5, 6);
    let live = Live::start(h + Span::hours(2)).await;
    let posts = hour_of_posts(h, 86, 1);
    put_all(live.incoming.as_ref(), &posts).await;
    live.assert_bodies(&posts).await;

    let config = UploaderConfig {
        postcan_bytes: 5_000,
        ..small_chunks()
    };
    let report = live.uploader(config).run().await.unwrap();
    assert_eq!(report.measurements, 86);
    assert_eq!(report.hours, vec!["2024030506".to_owned()]);
    assert!(keys(live.incoming.as_ref(), "incoming/").await.is_empty());

    let stored = stored(live.data.as_ref()).await;
    assert_all_stored_once(&stored, &posts);
    assert!(
        stored.jsonl_files.iter().any(|k| k.contains(".n1.1.")),
        "several chunks expected"
    );
    live.assert_bodies(&posts).await;
    let lookup = live.lookup();
    for p in posts.iter().step_by(5) {
        let body = lookup
            .body_by_report_input(&p.report_id, &p.input)
            .await
            .unwrap();
        assert_eq!(body.as_deref(), Some(&p.content[..]));
    }
    assert_eq!(live.row_counts("raw/20240305/06/").await, (86, 86, 86));

    // zcat and Python's gzip module read each file as the lines our own decoder reads.
    let dir = std::env::temp_dir().join(format!("ooni-uploader-{}", live.stack.prefix));
    std::fs::create_dir_all(&dir).unwrap();
    for key in &stored.jsonl_files {
        let bytes = live.data.get(key).await.unwrap().unwrap();
        let path = dir.join(key.replace('/', "_"));
        std::fs::write(&path, &bytes).unwrap();
        let path = path.to_str().unwrap();
        let expected = gunzip(&bytes);
        assert!(expected
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .all(|l| stored.lines.contains_key(l)));
        assert_eq!(tool_output("zcat", &[path]), expected, "zcat {key}");
        let py = "import gzip,sys; sys.stdout.buffer.write(b''.join(gzip.open(sys.argv[1]).readlines()))";
        assert_eq!(
            tool_output("python3", &["-c", py, path]),
            expected,
            "python gzip {key}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();

    // The job handler serves the same run through the platform service.
    let job = ooni_uploader::UploaderJob::new(Arc::new(live.uploader(small_chunks())));
    let answer = ooni_platform::JobHandler::run(&job, serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(answer["measurements"], 0);
}

/// Fails once, after `step` of the second chunk of the big (ID web_connectivity) group.
struct FailOnce {
    step: Step,
    fired: Mutex<bool>,
}

impl FaultHook for FailOnce {
    fn after(&self, step: Step, key: &str) -> Result<(), String> {
        let mut fired = self.fired.lock().unwrap();
        if step == self.step && key.contains("_ID_webconnectivity.n1.1.") && !*fired {
            *fired = true;
            return Err("crash".into());
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_crash_after_each_step_then_a_rerun_leaves_exactly_what_a_clean_run_leaves() {
    let first = hour(2024, 4, 1, 0);
    let live = Live::start(first + Span::days(1)).await;
    for (i, step) in Step::ALL.into_iter().enumerate() {
        let h = first + Span::hours(i as i64);
        let hour_label = Hour::containing(h).label();
        let posts = mixed_hour(h, 25, 20, i as u64);

        // What a clean run produces, on in-memory stores.
        let (ref_in, ref_data) = (MemoryObjectStore::new(), MemoryObjectStore::new());
        put_all(&ref_in, &posts).await;
        Uploader::new(
            Arc::new(ref_in),
            Arc::new(ref_data.clone()),
            Arc::new(MemoryJsonl::new()),
            live.clock.clone(),
            small_chunks(),
        )
        .upload_hour(Hour::containing(h))
        .await
        .unwrap();
        let prefix = format!("raw/{}/{}/", &hour_label[..8], &hour_label[8..]);
        let expected = objects(&ref_data, &prefix).await;
        assert!(
            expected.keys().any(|k| k.contains(".n1.1.")),
            "several chunks expected"
        );

        put_all(live.incoming.as_ref(), &posts).await;
        let crashing = live
            .uploader(small_chunks())
            .with_faults(Arc::new(FailOnce {
                step,
                fired: Mutex::new(false),
            }));
        assert!(
            crashing.upload_hour(Hour::containing(h)).await.is_err(),
            "{step:?}"
        );
        live.assert_bodies(&posts).await;

        live.uploader(small_chunks())
            .upload_hour(Hour::containing(h))
            .await
            .unwrap();
        assert_eq!(
            objects(live.data.as_ref(), &prefix).await,
            expected,
            "objects after a crash at {step:?}"
        );
        assert_all_stored_once(&stored_under(live.data.as_ref(), &prefix).await, &posts);
        assert!(keys(
            live.incoming.as_ref(),
            &Hour::containing(h).incoming_prefix()
        )
        .await
        .is_empty());
        let (final_rows, uids, raw) = live.row_counts(&prefix).await;
        assert_eq!(
            (final_rows, uids, raw),
            (45, 45, 45),
            "rows after a crash at {step:?}"
        );
        live.assert_bodies(&posts).await;
    }
}

async fn stored_under(data: &dyn ObjectStore, prefix: &str) -> Stored {
    let view = MemoryObjectStore::new();
    for (k, v) in objects(data, prefix).await {
        view.insert(&k, v, "application/gzip");
    }
    stored(&view).await
}
