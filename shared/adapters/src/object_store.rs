//! The `ObjectStore` port (whole-object and ranged reads, writes, listing, streaming
//! multipart upload) and its S3 adapter `S3ObjectStore`.

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier,
};
use bytes::{Bytes, BytesMut};

use crate::aws::sdk_failure;

/// Smallest part S3 accepts in a multipart upload, except for the last part (5 MiB).
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

/// Largest page `list_page` asks S3 for.
const LIST_PAGE_SIZE: i32 = 1000;

/// Most keys one S3 DeleteObjects request takes.
pub const MAX_DELETE_BATCH: usize = 1000;

/// One stored object as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
}

/// One page of a listing; `next` is the continuation token for the following page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    pub objects: Vec<ObjectInfo>,
    pub next: Option<String>,
}

/// Object store failures. `Unavailable` is worth retrying; the others are not.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Network failure, timeout, throttling or a 5xx: try again later.
    #[error("object store unavailable during {operation} {key}: {message}")]
    Unavailable {
        operation: &'static str,
        key: String,
        message: String,
    },
    /// The store refused the request (missing bucket, access denied, bad request, ...).
    #[error("object store rejected {operation} {key}: {message}")]
    Rejected {
        operation: &'static str,
        key: String,
        message: String,
    },
    /// The caller asked for something meaningless (e.g. a zero part size).
    #[error("invalid object store request: {0}")]
    Invalid(String),
}

impl StoreError {
    /// True when retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

/// A blob store keyed by string (S3 in production, memory in unit tests).
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// Stores `body` under `key`, replacing any existing object.
    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), StoreError>;

    /// Stores `body` under `key` only if no object exists there. Returns `false` (and
    /// writes nothing) when one already exists.
    async fn put_if_absent(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<bool, StoreError>;

    /// The whole object, or `None` when it does not exist.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError>;

    /// Bytes `[offset, offset + len)` of the object, cut short at its end (empty when
    /// `offset` is at or past the end or `len` is 0); `None` when the object does not exist.
    async fn get_range(
        &self,
        key: &str,
        offset: u64,
        len: u64,
    ) -> Result<Option<Bytes>, StoreError>;

    /// The object's size in bytes, or `None` when it does not exist.
    async fn head(&self, key: &str) -> Result<Option<u64>, StoreError>;

    /// Deletes the object; deleting a missing object succeeds.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// Deletes every object of `keys` (at most [`MAX_DELETE_BATCH`] per call is efficient;
    /// any number is accepted); missing objects are fine. On failure some of the keys may be
    /// deleted already. The default deletes one key at a time.
    async fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        for key in keys {
            self.delete(key).await?;
        }
        Ok(())
    }

    /// One page of objects whose key starts with `prefix`, in key order.
    async fn list_page(
        &self,
        prefix: &str,
        continuation: Option<String>,
    ) -> Result<ListPage, StoreError>;

    /// Up to `max` objects whose key starts with `prefix`, in key order, following pages.
    async fn list(&self, prefix: &str, max: usize) -> Result<Vec<ObjectInfo>, StoreError> {
        let mut out = Vec::new();
        let mut continuation = None;
        while out.len() < max {
            let page = self.list_page(prefix, continuation).await?;
            out.extend(page.objects);
            match page.next {
                Some(token) => continuation = Some(token),
                None => break,
            }
        }
        out.truncate(max);
        Ok(out)
    }

    /// Starts a streaming upload to `key`: bytes are buffered into parts of at least
    /// `part_size` (clamped up to [`MIN_PART_SIZE`]) so memory stays near one part.
    /// Nothing is visible under `key` until [`MultipartUpload::complete`].
    fn multipart(
        &self,
        key: &str,
        content_type: &str,
        part_size: usize,
    ) -> Box<dyn MultipartUpload>;
}

/// A streaming upload started by [`ObjectStore::multipart`]. Finish it with `complete` or
/// `abort`; an upload dropped after its first part leaves an incomplete upload behind
/// (cleaned by the bucket's lifecycle rule) and logs a warning.
#[async_trait]
pub trait MultipartUpload: Send {
    /// Appends `data`; uploads a part whenever at least a part's worth is buffered.
    async fn write_part(&mut self, data: Bytes) -> Result<(), StoreError>;
    /// Uploads what is left as the last part and makes the object visible. Returns the
    /// object's size. On failure the upload is aborted (best effort).
    async fn complete(self: Box<Self>) -> Result<u64, StoreError>;
    /// Discards everything written so far.
    async fn abort(self: Box<Self>) -> Result<(), StoreError>;
    /// Bytes accepted so far.
    fn bytes_written(&self) -> u64;
}

/// [`ObjectStore`] on one S3 bucket.
#[derive(Debug, Clone)]
pub struct S3ObjectStore {
    client: aws_sdk_s3::Client,
    bucket: String,
    page_size: i32,
}

impl S3ObjectStore {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            page_size: LIST_PAGE_SIZE,
        }
    }

    /// Asks S3 for at most `page_size` keys per listing page (1..=1000; tests use small
    /// pages to exercise pagination).
    pub fn with_page_size(mut self, page_size: u16) -> Self {
        self.page_size = i32::from(page_size).clamp(1, LIST_PAGE_SIZE);
        self
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn list_page_sized(
        &self,
        prefix: &str,
        continuation: Option<String>,
        max_keys: i32,
    ) -> Result<ListPage, StoreError> {
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_continuation_token(continuation)
            .max_keys(max_keys)
            .send()
            .await
            .map_err(|e| classify("list", prefix, &e))?;
        let objects = out
            .contents()
            .iter()
            .filter_map(|o| {
                Some(ObjectInfo {
                    key: o.key()?.to_owned(),
                    size: o.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                })
            })
            .collect();
        let next = if out.is_truncated() == Some(true) {
            out.next_continuation_token().map(str::to_owned)
        } else {
            None
        };
        Ok(ListPage { objects, next })
    }
}

fn classify<E>(
    operation: &'static str,
    key: &str,
    err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> StoreError
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    let f = sdk_failure(err);
    if f.transient {
        StoreError::Unavailable {
            operation,
            key: key.to_owned(),
            message: f.message,
        }
    } else {
        StoreError::Rejected {
            operation,
            key: key.to_owned(),
            message: f.message,
        }
    }
}

async fn collect_body(key: &str, body: ByteStream) -> Result<Bytes, StoreError> {
    body.collect()
        .await
        .map(|d| d.into_bytes())
        .map_err(|e| StoreError::Unavailable {
            operation: "read body",
            key: key.to_owned(),
            message: e.to_string(),
        })
}

#[async_trait]
impl ObjectStore for S3ObjectStore {
    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| classify("put", key, &e))?;
        Ok(())
    }

    async fn put_if_absent(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .if_none_match("*")
            .body(ByteStream::from(body))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) => {
                let f = sdk_failure(&err);
                if f.code.as_deref() == Some("PreconditionFailed") {
                    Ok(false)
                } else {
                    Err(classify("put_if_absent", key, &err))
                }
            }
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let result = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        match result {
            Ok(out) => collect_body(key, out.body).await.map(Some),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => Ok(None),
            Err(err) => Err(classify("get", key, &err)),
        }
    }

    async fn get_range(
        &self,
        key: &str,
        offset: u64,
        len: u64,
    ) -> Result<Option<Bytes>, StoreError> {
        if len == 0 {
            return Ok(self.head(key).await?.map(|_| Bytes::new()));
        }
        let last = offset.saturating_add(len - 1);
        let result = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(format!("bytes={offset}-{last}"))
            .send()
            .await;
        match result {
            Ok(out) => collect_body(key, out.body).await.map(Some),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => Ok(None),
            Err(err) if sdk_failure(&err).code.as_deref() == Some("InvalidRange") => {
                // Offset at or past the end of an existing object.
                Ok(Some(Bytes::new()))
            }
            Err(err) => Err(classify("get_range", key, &err)),
        }
    }

    async fn head(&self, key: &str) -> Result<Option<u64>, StoreError> {
        let result = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Some(
                out.content_length()
                    .and_then(|s| u64::try_from(s).ok())
                    .unwrap_or(0),
            )),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            Err(err) => Err(classify("head", key, &err)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify("delete", key, &e))?;
        Ok(())
    }

    /// One DeleteObjects request per [`MAX_DELETE_BATCH`] keys (quiet mode: only failures
    /// are answered).
    async fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        for batch in keys.chunks(MAX_DELETE_BATCH) {
            let Some(first) = batch.first() else {
                continue;
            };
            let objects = batch
                .iter()
                .map(|k| ObjectIdentifier::builder().key(k).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| StoreError::Invalid(e.to_string()))?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| StoreError::Invalid(e.to_string()))?;
            let out = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| classify("delete_many", first, &e))?;
            if let Some(err) = out.errors().first() {
                let key = err.key().unwrap_or(first).to_owned();
                let code = err.code().unwrap_or("unknown");
                let message = format!("{code}: {}", err.message().unwrap_or(""));
                // Per-key failures are server-side (InternalError, SlowDown) or refusals.
                let transient = matches!(code, "InternalError" | "SlowDown" | "ServiceUnavailable");
                let operation = "delete_many";
                return Err(if transient {
                    StoreError::Unavailable {
                        operation,
                        key,
                        message,
                    }
                } else {
                    StoreError::Rejected {
                        operation,
                        key,
                        message,
                    }
                });
            }
        }
        Ok(())
    }

    async fn list_page(
        &self,
        prefix: &str,
        continuation: Option<String>,
    ) -> Result<ListPage, StoreError> {
        self.list_page_sized(prefix, continuation, self.page_size)
            .await
    }

    async fn list(&self, prefix: &str, max: usize) -> Result<Vec<ObjectInfo>, StoreError> {
        let mut out = Vec::new();
        let mut continuation = None;
        while out.len() < max {
            let want = i32::try_from(max - out.len())
                .unwrap_or(self.page_size)
                .min(self.page_size);
            let page = self.list_page_sized(prefix, continuation, want).await?;
            out.extend(page.objects);
            match page.next {
                Some(token) => continuation = Some(token),
                None => break,
            }
        }
        out.truncate(max);
        Ok(out)
    }

    fn multipart(
        &self,
        key: &str,
        content_type: &str,
        part_size: usize,
    ) -> Box<dyn MultipartUpload> {
        Box::new(S3MultipartUpload {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            content_type: content_type.to_owned(),
            part_size: part_size.max(MIN_PART_SIZE),
            upload_id: None,
            buffer: BytesMut::new(),
            parts: Vec::new(),
            written: 0,
            finished: false,
        })
    }
}

/// S3 multipart upload, created lazily: an object smaller than one part is written with
/// a single PutObject when completed.
struct S3MultipartUpload {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    content_type: String,
    part_size: usize,
    upload_id: Option<String>,
    buffer: BytesMut,
    parts: Vec<CompletedPart>,
    written: u64,
    finished: bool,
}

impl S3MultipartUpload {
    async fn upload_id(&mut self) -> Result<String, StoreError> {
        if let Some(id) = &self.upload_id {
            return Ok(id.clone());
        }
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .content_type(&self.content_type)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .send()
            .await
            .map_err(|e| classify("create_multipart_upload", &self.key, &e))?;
        let id = out
            .upload_id()
            .map(str::to_owned)
            .ok_or_else(|| StoreError::Rejected {
                operation: "create_multipart_upload",
                key: self.key.clone(),
                message: "response carried no upload id".into(),
            })?;
        tracing::debug!(bucket = %self.bucket, key = %self.key, "multipart upload started");
        self.upload_id = Some(id.clone());
        Ok(id)
    }

    async fn flush_part(&mut self) -> Result<(), StoreError> {
        let upload_id = self.upload_id().await?;
        let part_number = i32::try_from(self.parts.len() + 1)
            .map_err(|_| StoreError::Invalid("too many parts".into()))?;
        let body = self.buffer.split().freeze();
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(upload_id)
            .part_number(part_number)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| classify("upload_part", &self.key, &e))?;
        let mut part = CompletedPart::builder()
            .part_number(part_number)
            .set_e_tag(out.e_tag().map(str::to_owned));
        if let Some(crc) = out.checksum_crc32() {
            part = part.checksum_crc32(crc);
        }
        self.parts.push(part.build());
        Ok(())
    }

    async fn finish(&mut self) -> Result<(), StoreError> {
        if self.upload_id.is_none() {
            // Never reached a full part: one plain PutObject.
            let body = self.buffer.split().freeze();
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(&self.key)
                .content_type(&self.content_type)
                .body(ByteStream::from(body))
                .send()
                .await
                .map_err(|e| classify("put", &self.key, &e))?;
            return Ok(());
        }
        if !self.buffer.is_empty() {
            self.flush_part().await?;
        }
        let upload_id = self.upload_id().await?;
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(self.parts.clone()))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| classify("complete_multipart_upload", &self.key, &e))?;
        Ok(())
    }

    async fn abort_upload(&mut self) -> Result<(), StoreError> {
        self.finished = true;
        self.buffer = BytesMut::new();
        if let Some(upload_id) = self.upload_id.take() {
            self.client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(&self.key)
                .upload_id(upload_id)
                .send()
                .await
                .map_err(|e| classify("abort_multipart_upload", &self.key, &e))?;
        }
        Ok(())
    }
}

#[async_trait]
impl MultipartUpload for S3MultipartUpload {
    async fn write_part(&mut self, data: Bytes) -> Result<(), StoreError> {
        if self.finished {
            return Err(StoreError::Invalid("write after complete/abort".into()));
        }
        self.written += data.len() as u64;
        self.buffer.extend_from_slice(&data);
        if self.buffer.len() >= self.part_size {
            self.flush_part().await?;
        }
        Ok(())
    }

    async fn complete(mut self: Box<Self>) -> Result<u64, StoreError> {
        if self.finished {
            return Err(StoreError::Invalid("complete after complete/abort".into()));
        }
        match self.finish().await {
            Ok(()) => {
                self.finished = true;
                Ok(self.written)
            }
            Err(err) => {
                if let Err(abort_err) = self.abort_upload().await {
                    tracing::warn!(key = %self.key, error = %abort_err, "aborting failed multipart upload failed");
                }
                Err(err)
            }
        }
    }

    async fn abort(mut self: Box<Self>) -> Result<(), StoreError> {
        self.abort_upload().await
    }

    fn bytes_written(&self) -> u64 {
        self.written
    }
}

impl Drop for S3MultipartUpload {
    fn drop(&mut self) {
        if !self.finished && self.upload_id.is_some() {
            tracing::warn!(bucket = %self.bucket, key = %self.key, "multipart upload dropped without complete or abort");
        }
    }
}
