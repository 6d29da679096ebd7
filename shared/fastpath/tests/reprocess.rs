//! Black-box tests of `score_file` and `reprocess` against the real local ClickHouse and AWS
//! emulator: JSONL (gzip, zstd), postcans (with a legacy YAML post), the data bucket's day
//! layout, idempotent reruns.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::*;
use ooni_fastpath::cli::{
    day_prefixes, list_bucket_inputs, score_file, Progress, ReprocessInput, ReprocessOptions,
    ReprocessOutput,
};
use ooni_fastpath::{reprocess, ClickHouseRowStore};
use ooni_platform::functions::Bucket;
use ooni_scoring::Fingerprints;
use ooni_testkit::TestStack;
use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// A fresh directory under the system temp dir.
fn temp_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "ooni-fastpath-test-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// A gzipped postcan holding `posts` (uid, body) under upstream's spool paths.
fn postcan(posts: &[(String, String)]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (uid, body) in posts {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        let path = format!("var/lib/ooniapi/measurements/incoming/2021081715_XX_test/{uid}.post");
        tar.append_data(&mut h, path, body.as_bytes()).unwrap();
    }
    gzip(&tar.into_inner().unwrap())
}

/// A legacy measurement as a `format: yaml` post (the report format before JSON).
const YAML_UID: &str = "20151105120000.000000_IS_httprequests_00112233445566aa";
const YAML_POST: &str = "{\"format\":\"yaml\",\"content\":\"---\\nreport_id: 20151105T120000Z_AS51896_legacyyamlreport\\ninput: http://example.org/\\nprobe_cc: IS\\nprobe_asn: AS51896\\ntest_name: http_requests\\ntest_version: 0.2.4\\nsoftware_name: ooniprobe\\nsoftware_version: 1.3.1\\nmeasurement_start_time: '2015-11-05 12:00:00'\\ntest_start_time: '2015-11-05 11:59:58'\\ntest_runtime: 1.2\\ntest_keys:\\n  body_length_match: true\\n  headers_match: true\\n  requests: []\\n\"}";

/// Inputs for the file tests: a gzipped JSONL of wrapper lines, a zstd JSONL of a bare
/// measurement without uid, and a postcan with two JSON posts and one YAML post.
struct Files {
    paths: Vec<PathBuf>,
    uids: Vec<String>,
}

fn files() -> Files {
    let dir = temp_dir();
    let mut uids = Vec::new();
    let wrapped: Vec<Sample> = [0, 4, 5, 17, 49].iter().map(|&i| sample(i)).collect();
    let jsonl: String = wrapped.iter().map(|s| format!("{}\n", s.line)).collect();
    uids.extend(
        wrapped
            .iter()
            .filter(|s| s.idx != 49)
            .map(|s| s.uid.clone()),
    );
    let a = dir.join("a.jsonl.gz");
    std::fs::write(&a, gzip(jsonl.as_bytes())).unwrap();

    // A bare old measurement without measurement_uid (the normalized sample carries one;
    // drop it): upstream's trivial id.
    let mut old: serde_json::Map<String, Value> =
        serde_json::from_str(&sample(1).measurement).unwrap();
    assert!(old.remove("measurement_uid").is_some());
    let bare = format!("{}\n", Value::Object(old));
    let b = dir.join("b.jsonl.zst");
    std::fs::write(&b, zstd::encode_all(bare.as_bytes(), 3).unwrap()).unwrap();
    let start = serde_json::from_str::<Value>(&sample(1).measurement).unwrap()
        ["measurement_start_time"]
        .as_str()
        .unwrap()
        .to_owned();
    uids.push(ooni_scoring::trivial_id(bare.as_bytes(), Some(&start)));

    let posts: Vec<(String, String)> = [18, 19]
        .iter()
        .map(|&i| (sample(i).uid, sample(i).stored_body()))
        .chain([(YAML_UID.to_owned(), YAML_POST.to_owned())])
        .collect();
    uids.extend(posts.iter().map(|p| p.0.clone()));
    let c = dir.join("2021081715_XX_test.n0.0.tar.gz");
    std::fs::write(&c, postcan(&posts)).unwrap();
    Files {
        paths: vec![a, b, c],
        uids,
    }
}

fn fingerprints() -> Arc<Fingerprints> {
    let dns = std::fs::read_to_string(fixture("fingerprints_dns.csv")).unwrap();
    let http = std::fs::read_to_string(fixture("fingerprints_http.csv")).unwrap();
    Arc::new(Fingerprints::from_csv(&dns, &http).unwrap())
}

fn to_clickhouse(
    stack: &TestStack,
    input: ReprocessInput,
    fps: Arc<Fingerprints>,
) -> ReprocessOptions {
    let mut o = ReprocessOptions::new(
        input,
        ReprocessOutput::ClickHouse(Arc::new(ClickHouseRowStore::new(stack.ch()))),
        fps,
    );
    o.progress = Progress::Hidden;
    o
}

async fn uids_in_fastpath(stack: &TestStack) -> Vec<String> {
    let mut v: Vec<String> = stack
        .ch()
        .query("SELECT measurement_uid FROM fastpath")
        .fetch_all()
        .await
        .unwrap();
    v.sort();
    v
}

#[tokio::test]
async fn reprocessing_the_same_files_twice_leaves_one_row_per_measurement() {
    let stack = TestStack::start().await;
    let f = files();
    let first = reprocess(to_clickhouse(
        &stack,
        ReprocessInput::Files(f.paths.clone()),
        fingerprints(),
    ))
    .await
    .unwrap();
    assert_eq!((first.files, first.files_failed), (3, 0));
    assert_eq!(first.written.fastpath_written, f.uids.len());
    assert_eq!(
        first.discarded.get("no_report_id"),
        Some(&1),
        "the ZZ sample has no report_id: {:?}",
        first.discarded
    );
    assert_eq!(first.written.openvpn_written, 1);

    let second = reprocess(to_clickhouse(
        &stack,
        ReprocessInput::Files(f.paths.clone()),
        fingerprints(),
    ))
    .await
    .unwrap();
    assert_eq!(
        (
            second.written.fastpath_written,
            second.written.fastpath_skipped
        ),
        (0, f.uids.len())
    );
    assert_eq!(second.written.openvpn_written, 0);

    let mut want = f.uids.clone();
    want.sort();
    assert_eq!(
        uids_in_fastpath(&stack).await,
        want,
        "one physical row per measurement, no FINAL needed"
    );
    assert_eq!(raw_count(&stack, "obs_openvpn", &sample(17).uid).await, 1);
    // The legacy YAML post and the uid-less measurement were scored.
    assert_eq!(raw_count(&stack, "fastpath", YAML_UID).await, 1);
    assert!(f.uids.iter().any(|u| u.starts_with("0120151105")));
}

#[tokio::test]
async fn reprocessing_with_new_fingerprints_replaces_only_the_rows_that_change() {
    let stack = TestStack::start().await;
    let f = files();
    let before = reprocess(to_clickhouse(
        &stack,
        ReprocessInput::Files(f.paths.clone()),
        Arc::new(Fingerprints::empty()),
    ))
    .await
    .unwrap();
    assert_eq!(before.written.fastpath_written, f.uids.len());
    let after = reprocess(to_clickhouse(
        &stack,
        ReprocessInput::Files(f.paths.clone()),
        fingerprints(),
    ))
    .await
    .unwrap();
    // Exactly the measurements that now match a fingerprint were rewritten.
    let matched: u64 = stack
        .ch()
        .query("SELECT count() FROM fastpath FINAL WHERE position(scores, '\"fingerprints\"') > 0")
        .fetch_one()
        .await
        .unwrap();
    assert!(matched >= 1);
    assert_eq!(after.written.fastpath_written as u64, matched);
    assert_eq!(
        after.written.fastpath_written + after.written.fastpath_skipped,
        f.uids.len()
    );
    let (confirmed, n): (String, u64) = stack
        .ch()
        .query("SELECT any(confirmed), count() FROM fastpath FINAL WHERE measurement_uid = ?")
        .bind(sample(0).uid)
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(
        (confirmed.as_str(), n),
        ("t", 1),
        "FINAL shows the new row only"
    );
    let distinct: (u64, u64) = stack
        .ch()
        .query("SELECT count(), uniqExact(measurement_uid) FROM fastpath FINAL")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(distinct, (f.uids.len() as u64, f.uids.len() as u64));
}

#[tokio::test]
async fn a_day_range_of_the_data_bucket_is_reprocessed_without_the_jsonl_twins_of_postcans() {
    let stack = TestStack::start().await;
    let data = stack.ctx.object_store(Bucket::Data);
    let (s18, s19, s20) = (sample(18), sample(19), sample(20));
    let can = postcan(&[
        (s18.uid.clone(), s18.stored_body()),
        (s19.uid.clone(), s19.stored_body()),
    ]);
    let base = "raw/20210817/15/US/webconnectivity/2021081715_US_webconnectivity.n0.0";
    data.put(
        &format!("{base}.tar.gz"),
        Bytes::from(can),
        "application/gzip",
    )
    .await
    .unwrap();
    // Its twin: the same measurements as bare lines (they would get trivial ids).
    let twin = format!("{}\n{}\n", s18.measurement, s19.measurement);
    data.put(
        &format!("{base}.jsonl.gz"),
        Bytes::from(gzip(twin.as_bytes())),
        "application/gzip",
    )
    .await
    .unwrap();
    // A JSONL can without a postcan twin, on the next day.
    let lone = format!("{}\n", s20.line);
    data.put(
        "raw/20210818/00/US/webconnectivity/2021081800_US_webconnectivity.n0.0.jsonl.gz",
        Bytes::from(gzip(lone.as_bytes())),
        "application/gzip",
    )
    .await
    .unwrap();
    // Outside the range.
    data.put(
        "raw/20210819/00/US/webconnectivity/x.n0.0.jsonl.gz",
        Bytes::from(gzip(format!("{}\n", sample(4).line).as_bytes())),
        "application/gzip",
    )
    .await
    .unwrap();

    let days = day_prefixes(
        chrono::NaiveDate::from_ymd_opt(2021, 8, 17).unwrap(),
        chrono::NaiveDate::from_ymd_opt(2021, 8, 19).unwrap(),
    )
    .unwrap();
    assert_eq!(days, vec!["raw/20210817/", "raw/20210818/"]);
    let listed = list_bucket_inputs(data.as_ref(), &days).await.unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let summary = reprocess(to_clickhouse(
        &stack,
        ReprocessInput::Bucket {
            store: data.clone(),
            prefixes: days,
        },
        fingerprints(),
    ))
    .await
    .unwrap();
    assert_eq!(summary.files, 2);
    let mut want = vec![s18.uid, s19.uid, s20.uid];
    want.sort();
    assert_eq!(uids_in_fastpath(&stack).await, want);
}

#[tokio::test]
async fn an_empty_or_reversed_day_range_is_refused() {
    let d = |day| chrono::NaiveDate::from_ymd_opt(2021, 8, day).unwrap();
    assert!(day_prefixes(d(17), d(17)).is_err());
    assert!(day_prefixes(d(18), d(17)).is_err());
    assert_eq!(day_prefixes(d(17), d(18)).unwrap(), vec!["raw/20210817/"]);
}

/// A `Write` whose bytes the test can read afterwards.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn printing_writes_one_row_per_measurement_and_nothing_to_clickhouse() {
    let stack = TestStack::start().await;
    let f = files();
    let out = Shared::default();
    let mut opts = ReprocessOptions::new(
        ReprocessInput::Files(f.paths.clone()),
        ReprocessOutput::Print(Box::new(out.clone())),
        fingerprints(),
    );
    opts.progress = Progress::Hidden;
    let summary = reprocess(opts).await.unwrap();
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    let mut uids: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["measurement_uid"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    uids.sort();
    let mut want = f.uids.clone();
    want.sort();
    assert_eq!(uids, want);
    assert_eq!(summary.rows_printed, want.len() as u64);
    assert_eq!(fastpath_counts(&stack).await, (0, 0));
}

/// Every column equal; `test_runtime` (Float32 in the table, a Python float upstream) to f32.
fn assert_same_row(got: &Value, want: &Value) {
    let (g, w) = (got.as_object().unwrap(), want.as_object().unwrap());
    let mut gk: Vec<&String> = g.keys().collect();
    let mut wk: Vec<&String> = w.keys().collect();
    gk.sort();
    wk.sort();
    assert_eq!(gk, wk);
    for (k, v) in w {
        if k == "test_runtime" {
            assert_eq!(g[k].as_f64().unwrap() as f32, v.as_f64().unwrap() as f32);
        } else {
            assert_eq!(&g[k], v, "column {k}");
        }
    }
}

#[tokio::test]
async fn score_file_prints_upstreams_row_or_a_discard_for_each_line() {
    let stack = TestStack::start().await;
    let dir = temp_dir();
    let input = dir.join("in.jsonl");
    let lines: String = [0, 17, 49]
        .iter()
        .map(|&i| format!("{}\n", sample(i).line))
        .collect();
    std::fs::write(&input, lines).unwrap();
    let mut out = Vec::new();
    let summary = score_file(&input, Some(&fixture("")), &stack.ch(), &mut out)
        .await
        .unwrap();
    let got: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), 3);
    assert_same_row(&got[0], &expected(0)["row"]);
    assert_same_row(&got[1], &expected(17)["row"]);
    assert_eq!(
        got[2],
        serde_json::json!({"measurement_uid": sample(49).uid, "discarded": "no_report_id"})
    );
    assert_eq!((summary.lines, summary.rows), (3, 2));
}

#[tokio::test]
async fn score_file_without_a_directory_reads_the_fingerprints_from_clickhouse() {
    let stack = TestStack::start().await;
    load_fingerprints(&stack).await;
    let from_db = ooni_fastpath::cli::load_fingerprints(None, &stack.ch())
        .await
        .unwrap();
    assert_eq!(
        (from_db.dns().len(), from_db.http().len()),
        (fingerprints().dns().len(), fingerprints().http().len())
    );
    let dir = temp_dir();
    let input = dir.join("in.jsonl.gz");
    std::fs::write(&input, gzip(format!("{}\n", sample(0).line).as_bytes())).unwrap();
    let mut out = Vec::new();
    score_file(&input, None, &stack.ch(), &mut out)
        .await
        .unwrap();
    let got: Value = serde_json::from_slice(out.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_same_row(&got, &expected(0)["row"]);
    assert_eq!(
        got["confirmed"], "t",
        "the fingerprint match needs the ClickHouse tables"
    );
}
