//! Shared test helpers: the fixture measurements, `.post` bodies and keys in the incoming
//! layout, and checks over what the uploader left in the buckets.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Read;

use bytes::Bytes;
use chrono::{DateTime, Duration, TimeZone, Utc};
use ooni_adapters::ObjectStore;
use ooni_domain::envelope::incoming_object_key;
use ooni_domain::MeasurementUid;
use serde_json::Value;

/// The fixture measurements (`tests/fixtures/samples.jsonl`): (test_name, measurement).
pub fn samples() -> Vec<(String, Value)> {
    let text = include_str!("../fixtures/samples.jsonl");
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["test_name"].as_str().unwrap().to_owned(),
                v["measurement"].clone(),
            )
        })
        .collect()
}

/// One measurement as the submit function stores it.
#[derive(Debug, Clone)]
pub struct Post {
    pub uid: String,
    pub key: String,
    pub body: Bytes,
    /// The JSONL line the uploader must write for it.
    pub content: Vec<u8>,
    pub report_id: String,
    pub input: String,
}

/// A `.post` for `measurement` received at `at`; `salt` makes its body unique.
pub fn post(test_name: &str, measurement: &Value, at: DateTime<Utc>, salt: u64) -> Post {
    let mut m = measurement.clone();
    let report_id = format!("{}_{salt}", m["report_id"].as_str().unwrap_or("rid"));
    m["report_id"] = Value::String(report_id.clone());
    let cc = m["probe_cc"].as_str().unwrap_or("ZZ").to_owned();
    let cc = if cc.len() == 2 && cc.bytes().all(|b| b.is_ascii_uppercase()) {
        cc
    } else {
        "ZZ".into()
    };
    let content = serde_json::to_vec(&m).unwrap();
    let mut body = b"{\"format\":\"json\",\"content\":".to_vec();
    body.extend_from_slice(&content);
    body.extend_from_slice(b",\"is_verified\":\"u\"}");
    let tn: String = test_name.chars().filter(|c| *c != '_').collect();
    let uid = MeasurementUid::generate(at, &cc, &tn, &body).unwrap();
    let input = match &m["input"] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    Post {
        key: incoming_object_key(&uid),
        uid: uid.into_string(),
        body: Bytes::from(body),
        content,
        report_id,
        input,
    }
}

/// `n` posts cycling over the fixtures, received within `hour` (a UTC hour start).
pub fn hour_of_posts(hour: DateTime<Utc>, n: usize, salt: u64) -> Vec<Post> {
    let samples = samples();
    (0..n)
        .map(|i| {
            let (tn, m) = &samples[i % samples.len()];
            let at =
                hour + Duration::microseconds(((i as i64) * 3_599_000_000 / n.max(1) as i64) + 1);
            post(tn, m, at, salt * 1_000_000 + i as u64)
        })
        .collect()
}

pub fn hour(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
}

pub async fn put_all(store: &dyn ObjectStore, posts: &[Post]) {
    for p in posts {
        store
            .put(&p.key, p.body.clone(), "application/json")
            .await
            .unwrap();
    }
}

/// Every key of a store under `prefix`.
pub async fn keys(store: &dyn ObjectStore, prefix: &str) -> Vec<String> {
    store
        .list(prefix, usize::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect()
}

/// Inflates a whole (multi-member) gzip file.
pub fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// The entries of a `.tar.gz`: path -> body.
pub fn untar(data: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(data));
    let mut out = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut body = Vec::new();
        entry.read_to_end(&mut body).unwrap();
        assert!(out.insert(path, body).is_none(), "duplicate tar entry");
    }
    out
}

/// What the data bucket holds: every JSONL line and every postcan entry, each with the file
/// it is in, checking each measurement is stored exactly once.
pub struct Stored {
    pub jsonl_files: Vec<String>,
    pub postcans: Vec<String>,
    /// content line -> jsonl file
    pub lines: BTreeMap<Vec<u8>, String>,
    /// incoming key -> .post body
    pub entries: BTreeMap<String, Vec<u8>>,
}

pub async fn stored(data: &dyn ObjectStore) -> Stored {
    let all = keys(data, "raw/").await;
    let jsonl_files: Vec<String> = all
        .iter()
        .filter(|k| k.ends_with(".jsonl.gz"))
        .cloned()
        .collect();
    let postcans: Vec<String> = all
        .iter()
        .filter(|k| k.ends_with(".tar.gz"))
        .cloned()
        .collect();
    assert_eq!(
        all.len(),
        jsonl_files.len() + postcans.len(),
        "unexpected objects: {all:?}"
    );
    let mut lines = BTreeMap::new();
    for f in &jsonl_files {
        let text = gunzip(&data.get(f).await.unwrap().unwrap());
        assert!(text.ends_with(b"\n"));
        for line in text[..text.len() - 1].split(|b| *b == b'\n') {
            assert!(
                lines.insert(line.to_vec(), f.clone()).is_none(),
                "line stored twice (in {f})"
            );
        }
    }
    let mut entries = BTreeMap::new();
    for f in &postcans {
        for (path, body) in untar(&data.get(f).await.unwrap().unwrap()) {
            assert!(
                entries.insert(path, body).is_none(),
                "post stored twice (in {f})"
            );
        }
    }
    Stored {
        jsonl_files,
        postcans,
        lines,
        entries,
    }
}

/// Asserts every post is stored exactly once, with its body in a postcan and its content as
/// a JSONL line, and that each JSONL file has its postcan.
pub fn assert_all_stored_once(stored: &Stored, posts: &[Post]) {
    assert_eq!(stored.entries.len(), posts.len(), "postcan entries");
    assert_eq!(stored.lines.len(), posts.len(), "jsonl lines");
    for p in posts {
        assert_eq!(
            stored.entries.get(&p.key).map(Vec::as_slice),
            Some(&p.body[..]),
            "{}",
            p.key
        );
        assert!(
            stored.lines.contains_key(&p.content),
            "content of {} missing",
            p.uid
        );
    }
    let tars: Vec<String> = stored
        .postcans
        .iter()
        .map(|k| k.replace(".tar.gz", ""))
        .collect();
    let jsonls: Vec<String> = stored
        .jsonl_files
        .iter()
        .map(|k| k.replace(".jsonl.gz", ""))
        .collect();
    assert_eq!(tars, jsonls, "every chunk has both files");
}

/// `n` posts of one group (the first web_connectivity fixture) within `hour`, plus `mixed`
/// posts cycling over every fixture: one big group next to many small ones.
pub fn mixed_hour(hour: DateTime<Utc>, n: usize, mixed: usize, salt: u64) -> Vec<Post> {
    let samples = samples();
    let (tn, m) = samples
        .iter()
        .find(|(tn, _)| tn == "web_connectivity")
        .unwrap();
    let mut posts: Vec<Post> = (0..n)
        .map(|i| {
            post(
                tn,
                m,
                hour + Duration::seconds(i as i64 + 1),
                salt * 1_000_000 + 500_000 + i as u64,
            )
        })
        .collect();
    posts.extend(hour_of_posts(hour, mixed, salt));
    posts
}
