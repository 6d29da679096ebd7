//! Measurement body lookup, shared by the measurements API: by measurement uid (the incoming
//! object while it is not uploaded yet, then the JSONL file) or by report id and input
//! (through the `jsonl` table).
//!
//! A body in a JSONL file written by this uploader costs one ranged GET of its gzip member
//! (`member_offset`, `member_length`) and one inflate of at most one member. Rows written
//! upstream (`member_length = 0`) are served the upstream way: inflate the file from the
//! start up to line `linenum`.
//!
//! Order for a uid: a measurement received recently (within `fresh`) is looked for in the
//! incoming bucket and in `jsonl` at the same time, the incoming object winning; an older one
//! in `jsonl` first, then in the incoming bucket. Either way a second `jsonl` look follows
//! when the incoming object is gone and the first `jsonl` look missed, since the uploader
//! inserts rows before deleting incoming objects — so a lookup racing an upload never misses.

use std::sync::Arc;

use bytes::Bytes;
use ooni_adapters::{Clock, ObjectStore, StoreError};
use ooni_domain::envelope::incoming_object_key;
use ooni_domain::MeasurementUid;

use crate::content::extract;
use crate::index::{BodyLocation, IndexError, JsonlQuery};
use crate::seekable::{file_line, member_line, ReadError};

/// Largest body returned (and inflated).
pub const DEFAULT_MAX_BODY: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// Nothing is stored for this measurement (only from the `require_*` methods).
    #[error("measurement not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Index(#[from] IndexError),
    /// A `jsonl` row points at a file, member or line that does not hold a body.
    #[error("jsonl row points at a missing or corrupt body in {s3path}: {reason}")]
    Dangling { s3path: String, reason: String },
}

impl LookupError {
    /// True when retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            LookupError::Store(e) => e.is_transient(),
            LookupError::Index(_) => true,
            LookupError::NotFound | LookupError::Dangling { .. } => false,
        }
    }
}

/// Looks bodies up in the incoming bucket, the data bucket and the `jsonl` table.
#[derive(Clone)]
pub struct BodyLookup {
    incoming: Arc<dyn ObjectStore>,
    data: Arc<dyn ObjectStore>,
    index: Arc<dyn JsonlQuery>,
    clock: Arc<dyn Clock>,
    fresh: chrono::Duration,
    max_body: usize,
}

impl BodyLookup {
    pub fn new(
        incoming: Arc<dyn ObjectStore>,
        data: Arc<dyn ObjectStore>,
        index: Arc<dyn JsonlQuery>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        BodyLookup {
            incoming,
            data,
            index,
            clock,
            fresh: chrono::Duration::hours(3),
            max_body: DEFAULT_MAX_BODY,
        }
    }

    /// From a platform context: the incoming and data buckets and ClickHouse.
    pub fn from_context(ctx: &ooni_platform::Context) -> Self {
        use ooni_platform::functions::Bucket;
        BodyLookup::new(
            ctx.object_store(Bucket::Incoming),
            ctx.object_store(Bucket::Data),
            Arc::new(crate::index::ClickHouseJsonl::new(ctx.clickhouse())),
            Arc::new(ooni_adapters::SystemClock),
        )
    }

    /// Measurements younger than this are looked for in the incoming bucket first.
    pub fn with_fresh(mut self, fresh: chrono::Duration) -> Self {
        self.fresh = fresh;
        self
    }

    pub fn with_max_body(mut self, max_body: usize) -> Self {
        self.max_body = max_body.max(1);
        self
    }

    /// The measurement's `content` (one JSON document), or `None` when nothing is stored.
    pub async fn body_by_uid(&self, uid: &str) -> Result<Option<Bytes>, LookupError> {
        let Ok(parsed) = MeasurementUid::parse(uid) else {
            return self.read_located(self.index.by_uid(uid).await?).await;
        };
        let key = incoming_object_key(&parsed);
        if parsed.received_at() >= self.clock.now() - self.fresh {
            // Both looks at once (one round trip instead of two). The incoming object wins;
            // when it is gone, a row the index look missed was inserted before the object was
            // deleted, so a second index look (only on a miss) finds it.
            let (incoming, located) =
                tokio::join!(self.read_incoming(&key), self.index.by_uid(uid));
            if let Some(body) = incoming? {
                return Ok(Some(body));
            }
            let located = match located? {
                Some(found) => Some(found),
                None => self.index.by_uid(uid).await?,
            };
            return self.read_located(located).await;
        }
        if let Some(found) = self.read_located(self.index.by_uid(uid).await?).await? {
            return Ok(Some(found));
        }
        if let Some(body) = self.read_incoming(&key).await? {
            return Ok(Some(body));
        }
        // Uploaded between the two looks above.
        self.read_located(self.index.by_uid(uid).await?).await
    }

    /// The body of the measurement of `report_id` with `input` (`""` for none).
    pub async fn body_by_report_input(
        &self,
        report_id: &str,
        input: &str,
    ) -> Result<Option<Bytes>, LookupError> {
        self.read_located(self.index.by_report_input(report_id, input).await?)
            .await
    }

    /// [`BodyLookup::body_by_uid`] with a missing body as [`LookupError::NotFound`].
    pub async fn require_by_uid(&self, uid: &str) -> Result<Bytes, LookupError> {
        self.body_by_uid(uid).await?.ok_or(LookupError::NotFound)
    }

    /// [`BodyLookup::body_by_report_input`] with a missing body as [`LookupError::NotFound`].
    pub async fn require_by_report_input(
        &self,
        report_id: &str,
        input: &str,
    ) -> Result<Bytes, LookupError> {
        self.body_by_report_input(report_id, input)
            .await?
            .ok_or(LookupError::NotFound)
    }

    async fn read_incoming(&self, key: &str) -> Result<Option<Bytes>, LookupError> {
        let Some(post) = self.incoming.get(key).await? else {
            return Ok(None);
        };
        let extracted = extract(&post);
        if extracted.key.is_none() {
            // Unreadable: the uploader stores `{}` and no row for it, so it is not served
            // before the upload either.
            return Ok(None);
        }
        Ok(Some(Bytes::copy_from_slice(&extracted.line)))
    }

    async fn read_located(
        &self,
        location: Option<BodyLocation>,
    ) -> Result<Option<Bytes>, LookupError> {
        let Some(loc) = location else {
            return Ok(None);
        };
        let dangling = |reason: String| LookupError::Dangling {
            s3path: loc.s3path.clone(),
            reason,
        };
        let read = |e: ReadError| dangling(e.to_string());
        let line = if loc.member_length > 0 {
            let member = self
                .data
                .get_range(&loc.s3path, loc.member_offset, u64::from(loc.member_length))
                .await?
                .ok_or_else(|| dangling("object is missing".into()))?;
            member_line(&member, loc.member_line, self.max_body).map_err(read)?
        } else {
            let linenum =
                u64::try_from(loc.linenum).map_err(|_| dangling("negative linenum".into()))?;
            let file = self
                .data
                .get(&loc.s3path)
                .await?
                .ok_or_else(|| dangling("object is missing".into()))?;
            file_line(&file, linenum, self.max_body).map_err(read)?
        };
        let line = line.ok_or_else(|| dangling("no such line".into()))?;
        Ok(Some(Bytes::from(line)))
    }
}
