//! The upload run: walk the incoming bucket oldest hour first, and for every completed hour
//! turn each (hour, cc, test name) group into chunks — a postcan, a seekable JSONL file, the
//! `jsonl` rows, a commit marker — then delete the chunk's incoming objects.
//!
//! Per chunk, in this order (a crash anywhere is repaired by the next run, see [`crate::ledger`]):
//! 1. stream the `.post` objects (bounded prefetch) into the `.tar.gz` and `.jsonl.gz`
//!    multipart uploads; complete the postcan, then the JSONL file;
//! 2. insert the chunk's `jsonl` rows (one INSERT);
//! 3. write the commit marker listing the chunk's incoming keys;
//! 4. delete those keys; rewrite the marker without them.
//!
//! Memory per run is bounded by the settings, not by the hour: the prefetch window
//! (`fetch_window_bytes`, or one object when a single object is larger), two multipart
//! buffers of about `part_size` each plus what one append produces, one open gzip member
//! (`member_bytes` or one line), the chunk's pending rows and keys (`chunk_max_row_bytes`,
//! `chunk_max_measurements`) and the deflate states. With the defaults that is about
//! 32 + 2×5 + 8 + a few MiB ≈ 55 MiB plus the largest `.post` object.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use ooni_adapters::object_store::MAX_DELETE_BATCH;
use ooni_adapters::{Clock, MultipartUpload, ObjectInfo, ObjectStore, StoreError};
use serde::Serialize;
use tokio::task::{JoinHandle, JoinSet};

use crate::config::UploaderConfig;
use crate::content::extract;
use crate::index::{IndexError, JsonlRow, JsonlSink};
use crate::keys::{hour_is_complete, Group, Hour, IncomingObject};
use crate::ledger::{read_marker, HourMarkers, LedgerError, Marker};
use crate::postcan::PostcanWriter;
use crate::seekable::SeekableWriter;

const GZIP: &str = "application/gzip";
const JSON: &str = "application/json";

/// A step of a chunk, for fault injection in tests ([`FaultHook`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Step {
    /// The postcan is stored; the JSONL file is not.
    PostcanStored,
    /// Both files are stored; no rows yet.
    JsonlStored,
    /// Rows inserted; no marker yet.
    RowsInserted,
    /// Marker written; nothing deleted yet.
    MarkerWritten,
    /// About half of the chunk's incoming objects are deleted.
    HalfDeleted,
    /// Every incoming object of the chunk is deleted; the marker still lists them.
    AllDeleted,
}

impl Step {
    pub const ALL: [Step; 6] = [
        Step::PostcanStored,
        Step::JsonlStored,
        Step::RowsInserted,
        Step::MarkerWritten,
        Step::HalfDeleted,
        Step::AllDeleted,
    ];
}

/// Called after each [`Step`]; an `Err` stops the run there, as a crash would.
pub trait FaultHook: Send + Sync {
    fn after(&self, step: Step, postcan_key: &str) -> Result<(), String>;
}

/// Receives progress (the CLI's progress bar).
pub trait Progress: Send + Sync {
    /// One incoming object was added to a chunk.
    fn measurement(&self, _bytes: u64) {}
    /// A chunk was committed.
    fn chunk(&self, _postcan_key: &str, _measurements: u64) {}
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("building {key}: {source}")]
    Encode {
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("hour {0} is not complete yet")]
    HourNotComplete(String),
    #[error("chunk {0} is too large")]
    ChunkTooLarge(String),
    #[error("fault injected after {step:?} of {key}: {message}")]
    Fault {
        step: Step,
        key: String,
        message: String,
    },
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunReport {
    /// Hours whose incoming objects were all uploaded by this run.
    pub hours: Vec<String>,
    pub chunks: u64,
    pub measurements: u64,
    /// Bytes of `.post` objects read.
    pub bytes_in: u64,
    pub postcan_bytes: u64,
    pub jsonl_bytes: u64,
    pub rows: u64,
    /// Incoming objects of earlier committed chunks deleted during recovery.
    pub recovered_deletes: u64,
    /// Listed objects that were gone when fetched.
    pub vanished: u64,
    /// Keys under `incoming/` that are not measurement objects (left in place).
    pub foreign_keys: u64,
    /// The time budget ran out before the backlog was drained.
    pub stopped_early: bool,
}

/// The uploader: ports plus settings.
pub struct Uploader {
    incoming: Arc<dyn ObjectStore>,
    data: Arc<dyn ObjectStore>,
    sink: Arc<dyn JsonlSink>,
    clock: Arc<dyn Clock>,
    config: UploaderConfig,
    faults: Option<Arc<dyn FaultHook>>,
    progress: Option<Arc<dyn Progress>>,
}

impl Uploader {
    pub fn new(
        incoming: Arc<dyn ObjectStore>,
        data: Arc<dyn ObjectStore>,
        sink: Arc<dyn JsonlSink>,
        clock: Arc<dyn Clock>,
        config: UploaderConfig,
    ) -> Self {
        Uploader {
            incoming,
            data,
            sink,
            clock,
            config,
            faults: None,
            progress: None,
        }
    }

    pub fn with_faults(mut self, faults: Arc<dyn FaultHook>) -> Self {
        self.faults = Some(faults);
        self
    }

    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = Some(progress);
        self
    }

    pub fn config(&self) -> &UploaderConfig {
        &self.config
    }

    /// Uploads every completed hour, oldest first, until done or out of time budget.
    pub async fn run(&self) -> Result<RunReport, UploadError> {
        let deadline = self.config.time_budget.map(|b| Instant::now() + b);
        self.run_prefix(ooni_domain::envelope::INCOMING_PREFIX, deadline)
            .await
    }

    /// Uploads one hour (which must be complete), without a time budget.
    pub async fn upload_hour(&self, hour: Hour) -> Result<RunReport, UploadError> {
        if !hour_is_complete(hour, self.clock.now(), self.grace()) {
            return Err(UploadError::HourNotComplete(hour.label()));
        }
        self.run_prefix(&hour.incoming_prefix(), None).await
    }

    fn grace(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.config.grace).unwrap_or(chrono::Duration::MAX)
    }

    fn out_of_time(deadline: Option<Instant>) -> bool {
        deadline.is_some_and(|d| Instant::now() >= d)
    }

    async fn run_prefix(
        &self,
        prefix: &str,
        deadline: Option<Instant>,
    ) -> Result<RunReport, UploadError> {
        let now = self.clock.now();
        let mut report = RunReport::default();
        let mut stream = KeyStream::new(self.incoming.clone(), prefix);
        let mut markers: Option<(Hour, HourMarkers)> = None;
        let mut last_hour: Option<Hour> = None;
        loop {
            let Some(info) = stream.peek().await?.cloned() else {
                break;
            };
            let Some(object) = IncomingObject::parse(&info.key, info.size) else {
                tracing::warn!(key = %info.key, "not a measurement object; left in place");
                report.foreign_keys += 1;
                stream.next().await?;
                continue;
            };
            let hour = object.group.hour;
            if !hour_is_complete(hour, now, self.grace()) {
                break;
            }
            if last_hour.is_some_and(|h| h != hour) {
                report.hours.extend(last_hour.map(Hour::label));
            }
            last_hour = Some(hour);
            if Self::out_of_time(deadline) {
                report.stopped_early = true;
                last_hour = None;
                break;
            }
            if markers.as_ref().is_none_or(|(h, _)| *h != hour) {
                let loaded =
                    HourMarkers::load(self.incoming.as_ref(), hour, &self.config.collector_id)
                        .await?;
                markers = Some((hour, loaded));
            }
            let hour_markers = markers.as_ref().map(|(_, m)| m);
            let finished = self
                .upload_group(
                    &object.group,
                    hour_markers,
                    &mut stream,
                    deadline,
                    now,
                    &mut report,
                )
                .await?;
            if !finished {
                report.stopped_early = true;
                last_hour = None;
                break;
            }
        }
        report.hours.extend(last_hour.map(Hour::label));
        Ok(report)
    }

    /// Uploads the group at the head of `stream`. Returns false when it stopped for time.
    async fn upload_group(
        &self,
        group: &Group,
        markers: Option<&HourMarkers>,
        stream: &mut KeyStream,
        deadline: Option<Instant>,
        now: DateTime<Utc>,
        report: &mut RunReport,
    ) -> Result<bool, UploadError> {
        let collector = self.config.collector_id.as_str();
        let committed = markers.and_then(|m| m.of(group));
        // 1. Finish the deletes of committed chunks (a crash after their rows were written).
        if let Some(committed) = committed {
            for key in committed.values() {
                let Some(marker) = read_marker(self.incoming.as_ref(), key).await? else {
                    continue;
                };
                if marker.deleted {
                    continue;
                }
                tracing::info!(marker = %key, keys = marker.keys.len(), "finishing deletes of a committed chunk");
                report.recovered_deletes += marker.keys.len() as u64;
                self.delete_keys(&marker.keys).await?;
                self.write_marker(
                    key,
                    &Marker {
                        deleted: true,
                        keys: Vec::new(),
                        ..marker
                    },
                )
                .await?;
            }
        }
        // 2. The next chunk number.
        let mut cnt = match committed.and_then(|c| c.keys().next_back()) {
            Some(highest) => highest + 1,
            None => 0,
        };
        let trust =
            chrono::Duration::from_std(self.config.marker_trust).unwrap_or(chrono::Duration::MAX);
        if committed.is_none() && group.hour.end() + trust < now {
            // Markers of this hour may have expired: never reuse a stored chunk number.
            while self
                .data
                .head(&group.jsonl_key(collector, cnt))
                .await?
                .is_some()
                || self
                    .data
                    .head(&group.postcan_key(collector, cnt))
                    .await?
                    .is_some()
            {
                cnt += 1;
            }
        }
        // 3. Chunks.
        let mut fetcher =
            Fetcher::new(self.incoming.clone(), group.incoming_prefix(), &self.config);
        loop {
            if !fetcher.has_more(stream).await? {
                return Ok(true);
            }
            if Self::out_of_time(deadline) {
                fetcher.abort();
                return Ok(false);
            }
            self.upload_chunk(group, cnt, &mut fetcher, stream, report)
                .await?;
            cnt += 1;
        }
    }

    async fn upload_chunk(
        &self,
        group: &Group,
        cnt: u32,
        fetcher: &mut Fetcher,
        stream: &mut KeyStream,
        report: &mut RunReport,
    ) -> Result<(), UploadError> {
        let collector = self.config.collector_id.as_str();
        let postcan_key = group.postcan_key(collector, cnt);
        let jsonl_key = group.jsonl_key(collector, cnt);
        let mut postcan_up = Some(
            self.data
                .multipart(&postcan_key, GZIP, self.config.part_size),
        );
        let mut jsonl_up = Some(self.data.multipart(&jsonl_key, GZIP, self.config.part_size));
        let result = self
            .fill_chunk(
                group,
                &postcan_key,
                &jsonl_key,
                &mut postcan_up,
                &mut jsonl_up,
                fetcher,
                stream,
                report,
            )
            .await;
        let filled = match result {
            Ok(filled) => filled,
            Err(e) => {
                for up in [postcan_up.take(), jsonl_up.take()].into_iter().flatten() {
                    if let Err(abort) = up.abort().await {
                        tracing::warn!(error = %abort, "aborting an output upload failed");
                    }
                }
                return Err(e);
            }
        };
        let Some(filled) = filled else {
            return Ok(());
        };
        let marker_key = group.marker_key(collector, cnt);
        let rows = filled.rows.len() as u64;
        self.sink.insert(&filled.rows).await?;
        drop(filled.rows);
        self.fault(Step::RowsInserted, &postcan_key)?;
        let marker = Marker {
            v: 1,
            cnt,
            postcan: postcan_key.clone(),
            jsonl: jsonl_key.clone(),
            measurements: filled.keys.len() as u64,
            deleted: false,
            keys: filled.keys,
        };
        self.write_marker(&marker_key, &marker).await?;
        self.fault(Step::MarkerWritten, &postcan_key)?;
        let half = marker.keys.len() / 2;
        self.delete_keys(&marker.keys[..half]).await?;
        self.fault(Step::HalfDeleted, &postcan_key)?;
        self.delete_keys(&marker.keys[half..]).await?;
        self.fault(Step::AllDeleted, &postcan_key)?;
        let measurements = marker.measurements;
        self.write_marker(
            &marker_key,
            &Marker {
                deleted: true,
                keys: Vec::new(),
                ..marker
            },
        )
        .await?;
        report.chunks += 1;
        report.measurements += measurements;
        report.rows += rows;
        report.postcan_bytes += filled.postcan_bytes;
        report.jsonl_bytes += filled.jsonl_bytes;
        tracing::info!(postcan = %postcan_key, measurements, rows, "chunk committed");
        if let Some(p) = &self.progress {
            p.chunk(&postcan_key, measurements);
        }
        Ok(())
    }

    /// Streams inputs into both uploads and completes them. `None` when every input vanished.
    #[allow(clippy::too_many_arguments)]
    async fn fill_chunk(
        &self,
        group: &Group,
        postcan_key: &str,
        jsonl_key: &str,
        postcan_up: &mut Option<Box<dyn MultipartUpload>>,
        jsonl_up: &mut Option<Box<dyn MultipartUpload>>,
        fetcher: &mut Fetcher,
        stream: &mut KeyStream,
        report: &mut RunReport,
    ) -> Result<Option<Filled>, UploadError> {
        let encode = |key: &str| {
            let key = key.to_owned();
            move |source| UploadError::Encode { key, source }
        };
        let mtime = u64::try_from(group.hour.start().timestamp()).unwrap_or(0);
        let date = group.hour.start().date_naive();
        let source = format!("n{}", self.config.collector_id);
        let mut postcan = PostcanWriter::new(mtime);
        let mut jsonl = SeekableWriter::new(self.config.member_bytes);
        let mut rows: Vec<JsonlRow> = Vec::new();
        let mut keys: Vec<String> = Vec::new();
        let mut member_first_row = 0usize;
        let mut row_bytes = 0usize;
        let mut jsonl_bytes = 0u64;
        let mut postcan_bytes = 0u64;
        while let Some((object, body)) = fetcher.next(stream).await? {
            let Some(body) = body else {
                tracing::warn!(key = %object.key, "incoming object vanished before it was read");
                report.vanished += 1;
                continue;
            };
            report.bytes_in += body.len() as u64;
            postcan
                .append(&object.key, &body)
                .map_err(encode(postcan_key))?;
            let out = postcan.take_output();
            if !out.is_empty() {
                postcan_bytes += out.len() as u64;
                write(postcan_up, out).await?;
            }
            let extracted = extract(&body);
            let (pos, closed) = jsonl
                .push_line(&extracted.line)
                .map_err(encode(jsonl_key))?;
            if let Some(member) = closed {
                let len = u32::try_from(member.bytes.len())
                    .map_err(|_| UploadError::ChunkTooLarge(jsonl_key.to_owned()))?;
                for row in &mut rows[member_first_row..] {
                    row.member_length = len;
                }
                member_first_row = rows.len();
                jsonl_bytes += member.bytes.len() as u64;
                write(jsonl_up, member.bytes).await?;
            }
            if let Some((report_id, input)) = extracted.key {
                let linenum = i32::try_from(pos.linenum)
                    .map_err(|_| UploadError::ChunkTooLarge(jsonl_key.to_owned()))?;
                row_bytes += report_id.len() + input.len() + object.uid.len() + 64;
                rows.push(JsonlRow {
                    report_id,
                    input,
                    s3path: jsonl_key.to_owned(),
                    linenum,
                    measurement_uid: object.uid.clone(),
                    date,
                    source: source.clone(),
                    member_offset: pos.member_offset,
                    member_length: 0,
                    member_line: pos.member_line,
                });
            }
            row_bytes += object.key.len();
            keys.push(object.key);
            if let Some(p) = &self.progress {
                p.measurement(body.len() as u64);
            }
            if postcan.compressed_len() > self.config.postcan_bytes
                || keys.len() >= self.config.chunk_max_measurements
                || row_bytes >= self.config.chunk_max_row_bytes
            {
                break;
            }
        }
        if keys.is_empty() {
            for up in [postcan_up.take(), jsonl_up.take()].into_iter().flatten() {
                up.abort().await?;
            }
            return Ok(None);
        }
        let tail = postcan.finish().map_err(encode(postcan_key))?;
        postcan_bytes += tail.len() as u64;
        write(postcan_up, tail).await?;
        if let Some(member) = jsonl.close_member().map_err(encode(jsonl_key))? {
            let len = u32::try_from(member.bytes.len())
                .map_err(|_| UploadError::ChunkTooLarge(jsonl_key.to_owned()))?;
            for row in &mut rows[member_first_row..] {
                row.member_length = len;
            }
            jsonl_bytes += member.bytes.len() as u64;
            write(jsonl_up, member.bytes).await?;
        }
        if let Some(up) = postcan_up.take() {
            up.complete().await?;
        }
        self.fault(Step::PostcanStored, postcan_key)?;
        if let Some(up) = jsonl_up.take() {
            up.complete().await?;
        }
        self.fault(Step::JsonlStored, postcan_key)?;
        Ok(Some(Filled {
            rows,
            keys,
            postcan_bytes,
            jsonl_bytes,
        }))
    }

    fn fault(&self, step: Step, postcan_key: &str) -> Result<(), UploadError> {
        match &self.faults {
            Some(hook) => hook
                .after(step, postcan_key)
                .map_err(|message| UploadError::Fault {
                    step,
                    key: postcan_key.to_owned(),
                    message,
                }),
            None => Ok(()),
        }
    }

    async fn write_marker(&self, key: &str, marker: &Marker) -> Result<(), UploadError> {
        let body = marker.to_bytes().map_err(|e| UploadError::Encode {
            key: key.to_owned(),
            source: std::io::Error::other(e),
        })?;
        self.incoming.put(key, body, JSON).await?;
        Ok(())
    }

    /// Deletes `keys` in batches (one request per [`MAX_DELETE_BATCH`] keys on S3) with
    /// bounded concurrency (a missing key is fine).
    async fn delete_keys(&self, keys: &[String]) -> Result<(), UploadError> {
        let mut set = JoinSet::new();
        let mut first_error = None;
        for batch in keys.chunks(MAX_DELETE_BATCH) {
            while set.len() >= self.config.delete_concurrency {
                if let Some(done) = set.join_next().await {
                    note_error(&mut first_error, done);
                }
            }
            let store = self.incoming.clone();
            let batch = batch.to_vec();
            set.spawn(async move { store.delete_many(&batch).await });
        }
        while let Some(done) = set.join_next().await {
            note_error(&mut first_error, done);
        }
        match first_error {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }
}

fn note_error(
    first: &mut Option<StoreError>,
    done: Result<Result<(), StoreError>, tokio::task::JoinError>,
) {
    let err = match done {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e,
        Err(join) => StoreError::Invalid(format!("delete task failed: {join}")),
    };
    if first.is_none() {
        *first = Some(err);
    }
}

async fn write(up: &mut Option<Box<dyn MultipartUpload>>, data: Vec<u8>) -> Result<(), StoreError> {
    match up {
        Some(up) => up.write_part(Bytes::from(data)).await,
        None => Err(StoreError::Invalid("write to a finished upload".into())),
    }
}

struct Filled {
    rows: Vec<JsonlRow>,
    keys: Vec<String>,
    postcan_bytes: u64,
    jsonl_bytes: u64,
}

/// The keys under a prefix, one listing page at a time, in key order.
pub(crate) struct KeyStream {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    buffer: VecDeque<ObjectInfo>,
    continuation: Option<String>,
    exhausted: bool,
}

impl KeyStream {
    pub(crate) fn new(store: Arc<dyn ObjectStore>, prefix: &str) -> Self {
        KeyStream {
            store,
            prefix: prefix.to_owned(),
            buffer: VecDeque::new(),
            continuation: None,
            exhausted: false,
        }
    }

    pub(crate) async fn peek(&mut self) -> Result<Option<&ObjectInfo>, StoreError> {
        while self.buffer.is_empty() && !self.exhausted {
            let page = self
                .store
                .list_page(&self.prefix, self.continuation.take())
                .await?;
            self.buffer.extend(page.objects);
            match page.next {
                Some(token) => self.continuation = Some(token),
                None => self.exhausted = true,
            }
        }
        Ok(self.buffer.front())
    }

    pub(crate) async fn next(&mut self) -> Result<Option<ObjectInfo>, StoreError> {
        self.peek().await?;
        Ok(self.buffer.pop_front())
    }
}

type Fetch = JoinHandle<Result<Option<Bytes>, StoreError>>;

/// Fetches the objects of one group ahead of use: at most `fetch_concurrency` objects and
/// `fetch_window_bytes` bytes (or one object) in flight or waiting, in key order.
struct Fetcher {
    store: Arc<dyn ObjectStore>,
    group_prefix: String,
    queue: VecDeque<(IncomingObject, Fetch)>,
    queued_bytes: u64,
    concurrency: usize,
    window: u64,
}

impl Fetcher {
    fn new(store: Arc<dyn ObjectStore>, group_prefix: String, config: &UploaderConfig) -> Self {
        Fetcher {
            store,
            group_prefix,
            queue: VecDeque::new(),
            queued_bytes: 0,
            concurrency: config.fetch_concurrency.max(1),
            window: config.fetch_window_bytes,
        }
    }

    /// The next object of the group in `stream`, if any (not yet taken).
    async fn peek_group(
        &self,
        stream: &mut KeyStream,
    ) -> Result<Option<IncomingObject>, StoreError> {
        loop {
            let Some(info) = stream.peek().await? else {
                return Ok(None);
            };
            if !info.key.starts_with(&self.group_prefix) {
                return Ok(None);
            }
            match IncomingObject::parse(&info.key, info.size) {
                Some(o) => return Ok(Some(o)),
                None => {
                    tracing::warn!(key = %info.key, "not a measurement object; left in place");
                    stream.next().await?;
                }
            }
        }
    }

    async fn fill(&mut self, stream: &mut KeyStream) -> Result<(), StoreError> {
        while self.queue.len() < self.concurrency {
            let Some(object) = self.peek_group(stream).await? else {
                break;
            };
            if !self.queue.is_empty() && self.queued_bytes + object.size > self.window {
                break;
            }
            stream.next().await?;
            let store = self.store.clone();
            let key = object.key.clone();
            self.queued_bytes += object.size;
            let task = tokio::spawn(async move { store.get(&key).await });
            self.queue.push_back((object, task));
        }
        Ok(())
    }

    async fn has_more(&mut self, stream: &mut KeyStream) -> Result<bool, StoreError> {
        Ok(!self.queue.is_empty() || self.peek_group(stream).await?.is_some())
    }

    /// The next object and its body (`None` when it vanished).
    async fn next(
        &mut self,
        stream: &mut KeyStream,
    ) -> Result<Option<(IncomingObject, Option<Bytes>)>, StoreError> {
        self.fill(stream).await?;
        let Some((object, task)) = self.queue.pop_front() else {
            return Ok(None);
        };
        self.queued_bytes = self.queued_bytes.saturating_sub(object.size);
        let body = task
            .await
            .map_err(|e| StoreError::Invalid(format!("fetch task failed: {e}")))??;
        self.fill(stream).await?;
        Ok(Some((object, body)))
    }

    fn abort(&mut self) {
        for (_, task) in self.queue.drain(..) {
            task.abort();
        }
        self.queued_bytes = 0;
    }
}

impl Drop for Fetcher {
    fn drop(&mut self) {
        self.abort();
    }
}
