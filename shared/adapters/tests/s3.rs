//! S3ObjectStore against the AWS emulator: put/get/head/range/list/delete,
//! conditional put and the streaming multipart upload.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use ooni_adapters::bootstrap::ensure_bucket;
use ooni_adapters::object_store::MIN_PART_SIZE;
use ooni_adapters::{ObjectStore, S3ObjectStore};

async fn store() -> (ooni_adapters::AwsClients, S3ObjectStore) {
    let aws = common::aws().await;
    let bucket = common::unique("ooni-t-s3");
    ensure_bucket(&aws, &bucket).await.expect("create bucket");
    let store = S3ObjectStore::new(aws.s3.clone(), bucket);
    (aws, store)
}

#[tokio::test]
async fn put_then_get_head_and_delete_round_trip_an_object() {
    let (aws, store) = store().await;
    let body = Bytes::from_static(b"{\"hello\":\"world\"}");
    store
        .put("a/b/c.json", body.clone(), "application/json")
        .await
        .expect("put");

    assert_eq!(
        store.get("a/b/c.json").await.expect("get"),
        Some(body.clone())
    );
    assert_eq!(
        store.head("a/b/c.json").await.expect("head"),
        Some(body.len() as u64)
    );
    let raw = aws
        .s3
        .head_object()
        .bucket(store.bucket())
        .key("a/b/c.json")
        .send()
        .await
        .expect("raw head");
    assert_eq!(raw.content_type(), Some("application/json"));

    store.delete("a/b/c.json").await.expect("delete");
    assert_eq!(
        store.get("a/b/c.json").await.expect("get after delete"),
        None
    );
    assert_eq!(
        store.head("a/b/c.json").await.expect("head after delete"),
        None
    );
    store
        .delete("a/b/c.json")
        .await
        .expect("deleting a missing object succeeds");
}

#[tokio::test]
async fn missing_objects_read_as_none() {
    let (_aws, store) = store().await;
    assert_eq!(store.get("nope").await.expect("get"), None);
    assert_eq!(store.get_range("nope", 0, 10).await.expect("range"), None);
    assert_eq!(store.head("nope").await.expect("head"), None);
}

#[tokio::test]
async fn ranges_are_cut_at_the_end_of_the_object() {
    let (_aws, store) = store().await;
    store
        .put("r", Bytes::from_static(b"0123456789"), "text/plain")
        .await
        .expect("put");
    assert_eq!(
        store.get_range("r", 2, 3).await.expect("mid"),
        Some(Bytes::from_static(b"234"))
    );
    assert_eq!(
        store.get_range("r", 8, 100).await.expect("tail"),
        Some(Bytes::from_static(b"89"))
    );
    assert_eq!(
        store.get_range("r", 10, 5).await.expect("past end"),
        Some(Bytes::new())
    );
    assert_eq!(
        store.get_range("r", 3, 0).await.expect("empty"),
        Some(Bytes::new())
    );
}

#[tokio::test]
async fn put_if_absent_does_not_overwrite() {
    let (_aws, store) = store().await;
    assert!(store
        .put_if_absent("once", Bytes::from_static(b"1"), "text/plain")
        .await
        .expect("first"));
    assert!(!store
        .put_if_absent("once", Bytes::from_static(b"2"), "text/plain")
        .await
        .expect("second"));
    assert_eq!(
        store.get("once").await.expect("get"),
        Some(Bytes::from_static(b"1"))
    );
}

#[tokio::test]
async fn listing_follows_pages_filters_by_prefix_and_honours_max() {
    let (_aws, store) = store().await;
    let store = store.with_page_size(2);
    for i in 0..5 {
        store
            .put(
                &format!("p/{i}"),
                Bytes::from(vec![b'x'; i + 1]),
                "text/plain",
            )
            .await
            .expect("put");
    }
    store
        .put("q/0", Bytes::from_static(b"x"), "text/plain")
        .await
        .expect("put");

    let first = store.list_page("p/", None).await.expect("page 1");
    assert_eq!(first.objects.len(), 2);
    let second = store
        .list_page("p/", first.next.clone())
        .await
        .expect("page 2");
    assert_eq!(second.objects.first().map(|o| o.key.as_str()), Some("p/2"));

    let all = store.list("p/", 100).await.expect("list");
    let keys: Vec<&str> = all.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, vec!["p/0", "p/1", "p/2", "p/3", "p/4"]);
    assert_eq!(
        all.iter().map(|o| o.size).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(store.list("p/", 3).await.expect("list max").len(), 3);
    assert!(store
        .list("none/", 10)
        .await
        .expect("list empty")
        .is_empty());
}

fn pattern(len: usize, seed: u8) -> Bytes {
    Bytes::from(
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect::<Vec<u8>>(),
    )
}

#[tokio::test]
async fn multipart_upload_streams_parts_and_reassembles_the_object() {
    let (aws, store) = store().await;
    let chunk = 1024 * 1024;
    let mut expected = Vec::new();
    let mut upload = store.multipart("big.jsonl.zst", "application/zstd", MIN_PART_SIZE);
    for i in 0..12u8 {
        let data = pattern(chunk, i);
        expected.extend_from_slice(&data);
        upload.write_part(data).await.expect("write");
    }
    upload
        .write_part(pattern(1234, 99))
        .await
        .expect("write tail");
    expected.extend_from_slice(&pattern(1234, 99));
    // Nothing is visible before completion, but parts are already uploaded.
    assert_eq!(
        store.head("big.jsonl.zst").await.expect("head before"),
        None
    );
    let pending = aws
        .s3
        .list_multipart_uploads()
        .bucket(store.bucket())
        .send()
        .await
        .expect("list uploads");
    assert_eq!(pending.uploads().len(), 1);

    let size = upload.complete().await.expect("complete");
    assert_eq!(size, expected.len() as u64);
    let got = store
        .get("big.jsonl.zst")
        .await
        .expect("get")
        .expect("object exists");
    assert_eq!(got.len(), expected.len());
    assert!(
        got == expected,
        "multipart object differs from what was written"
    );
    let boundary = MIN_PART_SIZE as u64 - 3;
    let range = store
        .get_range("big.jsonl.zst", boundary, 6)
        .await
        .expect("range")
        .expect("exists");
    assert_eq!(
        &range[..],
        &expected[boundary as usize..boundary as usize + 6]
    );
    // A multipart object's ETag ends in `-<number of parts>`: 5 MiB + 5 MiB + 2 MiB.
    let raw = aws
        .s3
        .head_object()
        .bucket(store.bucket())
        .key("big.jsonl.zst")
        .send()
        .await
        .expect("head");
    assert!(
        raw.e_tag()
            .is_some_and(|e| e.trim_matches('"').ends_with("-3")),
        "etag {:?}",
        raw.e_tag()
    );
    assert_eq!(raw.content_type(), Some("application/zstd"));
}

#[tokio::test]
async fn a_multipart_upload_smaller_than_a_part_is_written_in_one_request() {
    let (aws, store) = store().await;
    let mut upload = store.multipart("small", "text/plain", MIN_PART_SIZE);
    upload
        .write_part(Bytes::from_static(b"abc"))
        .await
        .expect("write");
    upload
        .write_part(Bytes::from_static(b"def"))
        .await
        .expect("write");
    assert_eq!(upload.complete().await.expect("complete"), 6);
    assert_eq!(
        store.get("small").await.expect("get"),
        Some(Bytes::from_static(b"abcdef"))
    );
    let raw = aws
        .s3
        .head_object()
        .bucket(store.bucket())
        .key("small")
        .send()
        .await
        .expect("head");
    assert_eq!(raw.content_type(), Some("text/plain"));

    let empty = store.multipart("empty", "text/plain", MIN_PART_SIZE);
    assert_eq!(empty.complete().await.expect("complete empty"), 0);
    assert_eq!(store.head("empty").await.expect("head"), Some(0));
}

#[tokio::test]
async fn an_aborted_multipart_upload_leaves_nothing_behind() {
    let (aws, store) = store().await;
    let mut upload = store.multipart("gone", "application/octet-stream", MIN_PART_SIZE);
    upload
        .write_part(pattern(MIN_PART_SIZE + 10, 1))
        .await
        .expect("write");
    upload.abort().await.expect("abort");
    assert_eq!(store.head("gone").await.expect("head"), None);
    let pending = aws
        .s3
        .list_multipart_uploads()
        .bucket(store.bucket())
        .send()
        .await
        .expect("list uploads");
    assert!(
        pending.uploads().is_empty(),
        "upload still pending after abort"
    );
}

#[tokio::test]
async fn a_missing_bucket_is_a_rejection_not_an_outage() {
    let aws = common::aws().await;
    let store = S3ObjectStore::new(aws.s3.clone(), common::unique("ooni-t-missing"));
    let err = store
        .put("k", Bytes::from_static(b"x"), "text/plain")
        .await
        .expect_err("no bucket");
    assert!(!err.is_transient(), "{err}");
    assert!(err.to_string().contains("NoSuchBucket"), "{err}");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_transient_failure() {
    let aws =
        ooni_adapters::AwsClients::load(ooni_adapters::AwsOptions::local("http://127.0.0.1:9"))
            .await;
    let store = S3ObjectStore::new(aws.s3.clone(), "whatever");
    let err = store.get("k").await.expect_err("nothing listens on port 9");
    assert!(err.is_transient(), "{err}");
}

#[tokio::test]
async fn delete_many_removes_every_key_across_batches_and_ignores_missing_ones() {
    let (_aws, store) = store().await;
    let n = ooni_adapters::object_store::MAX_DELETE_BATCH + 3;
    let keys: Vec<String> = (0..n).map(|i| format!("d/{i:05}")).collect();
    for k in &keys {
        store
            .put(k, Bytes::from_static(b"x"), "text/plain")
            .await
            .expect("put");
    }
    store
        .put("keep/0", Bytes::from_static(b"y"), "text/plain")
        .await
        .expect("put");

    // Two requests (1000 + 4 keys), one of the keys never existed.
    let mut doomed = keys.clone();
    doomed.push("d/never-written".into());
    store.delete_many(&doomed).await.expect("delete_many");

    let left = store.list_page("d/", None).await.expect("list");
    assert!(left.objects.is_empty(), "{:?}", left.objects.first());
    assert_eq!(
        store.get("keep/0").await.expect("get"),
        Some(Bytes::from_static(b"y"))
    );
    store.delete_many(&[]).await.expect("nothing to delete");
}
