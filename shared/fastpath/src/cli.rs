//! The library behind `ooni fastpath score` and `ooni fastpath reprocess`.
//!
//! - [`score_file`]: one JSON line out per measurement line in: the `fastpath` row (table
//!   column names, `scores` as the column's string) or `{"measurement_uid", "discarded"}`.
//! - [`reprocess`]: upstream's `fastpath --start-day/--end-day [--stdout --no-write-to-db]`:
//!   score JSONL files, postcans or a prefix / day range of the data bucket, and write the rows
//!   to ClickHouse in inserts of up to 10k rows (or print them). Reprocessing is idempotent:
//!   each chunk only rewrites rows that differ from the stored ones (see the crate doc), so
//!   running a day twice leaves one row per measurement.

use crate::fingerprints::{load_dir, ClickHouseFingerprints, FingerprintSource, LoadError};
use crate::input::{kind_of, read_items, InputError, Kind, RawItem};
use crate::store::{RowStore, StoreError};
use crate::writer::{write, RowBatch, WriteMode, WriteReport};
use chrono::NaiveDate;
use indicatif::{ProgressBar, ProgressStyle};
use ooni_adapters::ObjectStore;
use ooni_scoring::{process, score_jsonl_line, FastpathRow, Fingerprints, ObsOpenvpnRow, Outcome};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Token prefix of reprocessing inserts.
pub const TOKEN_PREFIX: &str = "reprocess";
/// Rows per INSERT when reprocessing (upstream: 10k).
pub const DEFAULT_BATCH_SIZE: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("loading fingerprints: {0}")]
    Fingerprints(#[from] LoadError),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("writing to ClickHouse: {0}")]
    Store(#[from] StoreError),
    #[error("data bucket: {0}")]
    Bucket(#[from] ooni_adapters::StoreError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid day range: {0}")]
    DayRange(String),
    #[error("a reprocessing worker failed: {0}")]
    Worker(String),
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> CliError {
    let context = context.into();
    move |source| CliError::Io { context, source }
}

/// Fingerprints from `dir` (`fingerprints_dns.csv`, `fingerprints_http.csv`) when given, else
/// from the ClickHouse tables `client` points at.
pub async fn load_fingerprints(
    dir: Option<&Path>,
    clickhouse: &clickhouse::Client,
) -> Result<Fingerprints, CliError> {
    let fps = match dir {
        Some(d) => load_dir(d).await?,
        None => {
            ClickHouseFingerprints::new(clickhouse.clone())
                .load()
                .await?
        }
    };
    tracing::info!(
        dns = fps.dns().len(),
        http = fps.http().len(),
        "fingerprints loaded"
    );
    Ok(fps)
}

/// Lines scored by [`score_file`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScoreSummary {
    pub lines: u64,
    pub rows: u64,
    /// Discarded lines by reason.
    pub discarded: BTreeMap<String, u64>,
}

#[derive(Deserialize)]
struct DiscardPeek {
    #[serde(default)]
    discarded: Option<String>,
}

/// Scores every non-blank line of `reader` (see the module doc), writing one JSON line each.
pub fn score_lines(
    reader: impl BufRead,
    fps: &Fingerprints,
    out: &mut dyn Write,
) -> Result<ScoreSummary, CliError> {
    let mut summary = ScoreSummary::default();
    for line in reader.lines() {
        let line = line.map_err(io_err("reading input"))?;
        if line.trim().is_empty() {
            continue;
        }
        summary.lines += 1;
        let scored = score_jsonl_line(&line, fps);
        match serde_json::from_str::<DiscardPeek>(&scored)
            .ok()
            .and_then(|p| p.discarded)
        {
            Some(reason) => *summary.discarded.entry(reason).or_default() += 1,
            None => summary.rows += 1,
        }
        out.write_all(scored.as_bytes())
            .map_err(io_err("writing output"))?;
        out.write_all(b"\n").map_err(io_err("writing output"))?;
    }
    out.flush().map_err(io_err("writing output"))?;
    Ok(summary)
}

/// `ooni fastpath score FILE [--fingerprints DIR]`: FILE (`-` for stdin; gzip/zstd detected)
/// holds `{"measurement_uid", "measurement", ...}` lines. Without `fingerprints_dir` the
/// fingerprints come from ClickHouse.
pub async fn score_file(
    input: &Path,
    fingerprints_dir: Option<&Path>,
    clickhouse: &clickhouse::Client,
    out: &mut dyn Write,
) -> Result<ScoreSummary, CliError> {
    let fps = load_fingerprints(fingerprints_dir, clickhouse).await?;
    let name = input.to_string_lossy().into_owned();
    let reader: Box<dyn Read> = if name == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(input).map_err(io_err(format!("opening {name}")))?)
    };
    let reader = crate::input::decompressed_reader(&name, reader)?;
    score_lines(reader, &fps, out)
}

/// The data-bucket prefixes `raw/YYYYMMDD/` of the days `start..end` (end excluded, as
/// upstream's `--end-day`).
pub fn day_prefixes(start: NaiveDate, end: NaiveDate) -> Result<Vec<String>, CliError> {
    if end <= start {
        return Err(CliError::DayRange(format!(
            "end day {end} must be after start day {start} (the end day is excluded)"
        )));
    }
    Ok(start
        .iter_days()
        .take_while(|d| *d < end)
        .map(|d| format!("raw/{}/", d.format("%Y%m%d")))
        .collect())
}

const JSONL_SUFFIXES: [&str; 3] = [".jsonl.gz", ".jsonl.zst", ".jsonl"];

/// The objects to reprocess under `prefixes`: every postcan, and each JSONL can whose postcan
/// twin (same name ending in `.tar.gz`, as the uploader writes them) is absent — the twin
/// holds the same measurements under their real uids, the JSONL can only under trivial ids.
pub async fn list_bucket_inputs(
    store: &dyn ObjectStore,
    prefixes: &[String],
) -> Result<Vec<String>, CliError> {
    let mut keys: Vec<String> = Vec::new();
    for prefix in prefixes {
        keys.extend(
            store
                .list(prefix, usize::MAX)
                .await?
                .into_iter()
                .map(|o| o.key),
        );
    }
    let all: HashSet<&str> = keys.iter().map(String::as_str).collect();
    let mut out = Vec::new();
    for key in &keys {
        if kind_of(key) == Kind::Postcan {
            out.push(key.clone());
            continue;
        }
        if let Some(stem) = JSONL_SUFFIXES.iter().find_map(|s| key.strip_suffix(s)) {
            if !all.contains(format!("{stem}.tar.gz").as_str()) {
                out.push(key.clone());
            }
        }
    }
    Ok(out)
}

/// What to reprocess.
pub enum ReprocessInput {
    /// Local JSONL files and postcans.
    Files(Vec<PathBuf>),
    /// Objects of the data bucket under these prefixes (see [`day_prefixes`],
    /// [`list_bucket_inputs`]).
    Bucket {
        store: Arc<dyn ObjectStore>,
        prefixes: Vec<String>,
    },
}

/// Where the rows go.
pub enum ReprocessOutput {
    ClickHouse(Arc<dyn RowStore>),
    /// One `fastpath` row per line, as [`score_file`] prints them.
    Print(Box<dyn Write + Send>),
}

/// Whether to draw a progress bar on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// When stderr is a terminal.
    Auto,
    Hidden,
}

pub struct ReprocessOptions {
    pub input: ReprocessInput,
    pub output: ReprocessOutput,
    pub fingerprints: Arc<Fingerprints>,
    /// Rows per INSERT ([`DEFAULT_BATCH_SIZE`]).
    pub batch_size: usize,
    /// Files scored in parallel (default: the available cores).
    pub workers: usize,
    pub progress: Progress,
}

impl ReprocessOptions {
    pub fn new(
        input: ReprocessInput,
        output: ReprocessOutput,
        fingerprints: Arc<Fingerprints>,
    ) -> Self {
        ReprocessOptions {
            input,
            output,
            fingerprints,
            batch_size: DEFAULT_BATCH_SIZE,
            workers: std::thread::available_parallelism().map_or(1, usize::from),
            progress: Progress::Auto,
        }
    }
}

/// What a reprocessing run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReprocessSummary {
    pub files: u64,
    /// Files that could not be read to the end (their readable part was processed).
    pub files_failed: u64,
    pub measurements: u64,
    /// Rows printed (`Print` output).
    pub rows_printed: u64,
    /// Rows written and rows left as they were (`ClickHouse` output).
    pub written: WriteReport,
    pub inserts: u64,
    /// Measurements without a row, by reason.
    pub discarded: BTreeMap<String, u64>,
    /// Lines or archive members without a measurement, by reason.
    pub skipped: BTreeMap<String, u64>,
}

enum Unit {
    File(PathBuf),
    Object(String),
}

impl Unit {
    fn name(&self) -> String {
        match self {
            Unit::File(p) => p.to_string_lossy().into_owned(),
            Unit::Object(k) => k.clone(),
        }
    }
}

enum Scored {
    Row(Box<FastpathRow>, Option<Box<ObsOpenvpnRow>>),
    Discarded(&'static str),
    Skipped(&'static str),
}

enum Msg {
    Chunk(Vec<Scored>),
    FileDone { name: String, error: Option<String> },
}

const CHUNK: usize = 1000;

/// Scores one unit, sending chunks of results; false when the receiver is gone.
fn score_unit(
    unit: &Unit,
    bucket: Option<&Arc<dyn ObjectStore>>,
    fps: &Fingerprints,
    tx: &tokio::sync::mpsc::Sender<Msg>,
    rt: &tokio::runtime::Handle,
) -> bool {
    let name = unit.name();
    let mut chunk: Vec<Scored> = Vec::with_capacity(CHUNK);
    let mut open = true;
    let mut on_item = |item: RawItem| {
        if !open {
            return;
        }
        chunk.push(match item {
            RawItem::Measurement { uid, body } => match process(&body, &uid, fps) {
                Outcome::Row { row, openvpn } => Scored::Row(row, openvpn),
                Outcome::Discard(r) => Scored::Discarded(r.as_str()),
            },
            RawItem::Skipped { reason } => Scored::Skipped(reason),
        });
        if chunk.len() >= CHUNK {
            open = tx
                .blocking_send(Msg::Chunk(std::mem::take(&mut chunk)))
                .is_ok();
        }
    };
    let result: Result<(), String> = match unit {
        Unit::File(path) => match std::fs::File::open(path) {
            Ok(f) => read_items(&name, f, &mut on_item).map_err(|e| e.to_string()),
            Err(e) => Err(format!("opening {name}: {e}")),
        },
        Unit::Object(key) => match bucket.map(|s| rt.block_on(s.get(key))) {
            Some(Ok(Some(bytes))) => {
                read_items(&name, &bytes[..], &mut on_item).map_err(|e| e.to_string())
            }
            Some(Ok(None)) => Err(format!("{name} disappeared from the bucket")),
            Some(Err(e)) => Err(e.to_string()),
            None => Err("no bucket configured".to_owned()),
        },
    };
    if !open {
        return false;
    }
    if !chunk.is_empty() && tx.blocking_send(Msg::Chunk(chunk)).is_err() {
        return false;
    }
    tx.blocking_send(Msg::FileDone {
        name,
        error: result.err(),
    })
    .is_ok()
}

fn progress_bar(progress: Progress, len: u64) -> ProgressBar {
    if progress == Progress::Hidden || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(
        "{elapsed_precise} [{wide_bar}] {pos}/{len} files, {msg} (eta {eta})",
    ) {
        bar.set_style(style);
    }
    bar
}

struct Sink {
    output: ReprocessOutput,
    batch: RowBatch,
    summary: ReprocessSummary,
    batch_size: usize,
}

impl Sink {
    async fn take(&mut self, scored: Scored) -> Result<(), CliError> {
        match scored {
            Scored::Row(row, openvpn) => {
                self.summary.measurements += 1;
                match &mut self.output {
                    ReprocessOutput::Print(out) => {
                        let line = serde_json::to_string(&row).map_err(|e| CliError::Io {
                            context: "serializing a row".into(),
                            source: e.into(),
                        })?;
                        out.write_all(line.as_bytes())
                            .map_err(io_err("writing output"))?;
                        out.write_all(b"\n").map_err(io_err("writing output"))?;
                        self.summary.rows_printed += 1;
                    }
                    ReprocessOutput::ClickHouse(_) => {
                        self.batch.fastpath.push(*row);
                        if let Some(ov) = openvpn {
                            self.batch.openvpn.push(*ov);
                        }
                        if self.batch.fastpath.len() >= self.batch_size {
                            self.flush().await?;
                        }
                    }
                }
            }
            Scored::Discarded(reason) => {
                self.summary.measurements += 1;
                *self.summary.discarded.entry(reason.to_owned()).or_default() += 1;
            }
            Scored::Skipped(reason) => {
                *self.summary.skipped.entry(reason.to_owned()).or_default() += 1
            }
        }
        Ok(())
    }

    /// Writes the pending rows; retries a failing insert three times (1, 2, 4 s) before giving up.
    async fn flush(&mut self) -> Result<(), CliError> {
        let batch = std::mem::take(&mut self.batch);
        match &mut self.output {
            ReprocessOutput::Print(out) => out.flush().map_err(io_err("writing output")),
            ReprocessOutput::ClickHouse(store) => {
                if batch.is_empty() {
                    return Ok(());
                }
                let mut delay = Duration::from_secs(1);
                let mut attempt = 1;
                loop {
                    match write(
                        store.as_ref(),
                        batch.clone(),
                        WriteMode::ReplaceChanged,
                        TOKEN_PREFIX,
                    )
                    .await
                    {
                        Ok(report) => {
                            self.summary.written.add(&report);
                            self.summary.inserts += 1;
                            return Ok(());
                        }
                        Err(e) if attempt < 4 => {
                            tracing::warn!(attempt, error = %e, rows = batch.fastpath.len(), "insert failed; retrying");
                            tokio::time::sleep(delay).await;
                            delay *= 2;
                            attempt += 1;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
    }
}

/// Runs a reprocessing job (see the module doc). Files are scored on `workers` blocking
/// threads; rows are written from this task. A file that cannot be read to the end is
/// logged and counted; a ClickHouse failure that outlasts the retries stops the run.
pub async fn reprocess(opts: ReprocessOptions) -> Result<ReprocessSummary, CliError> {
    let (units, bucket): (Vec<Unit>, Option<Arc<dyn ObjectStore>>) = match opts.input {
        ReprocessInput::Files(files) => (files.into_iter().map(Unit::File).collect(), None),
        ReprocessInput::Bucket { store, prefixes } => {
            let keys = list_bucket_inputs(store.as_ref(), &prefixes).await?;
            tracing::info!(
                objects = keys.len(),
                prefixes = prefixes.len(),
                "bucket objects to reprocess"
            );
            (keys.into_iter().map(Unit::Object).collect(), Some(store))
        }
    };
    let total = units.len();
    let bar = progress_bar(opts.progress, total as u64);
    let queue = Arc::new(Mutex::new(VecDeque::from(units)));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Msg>(opts.workers.max(1) * 4);
    let rt = tokio::runtime::Handle::current();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..opts.workers.max(1).min(total.max(1)) {
        let (queue, tx, rt, fps, bucket) = (
            queue.clone(),
            tx.clone(),
            rt.clone(),
            opts.fingerprints.clone(),
            bucket.clone(),
        );
        workers.spawn_blocking(move || loop {
            let next = queue
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .pop_front();
            let Some(unit) = next else { return };
            if !score_unit(&unit, bucket.as_ref(), &fps, &tx, &rt) {
                return;
            }
        });
    }
    drop(tx);

    let mut sink = Sink {
        output: opts.output,
        batch: RowBatch::default(),
        summary: ReprocessSummary::default(),
        batch_size: opts.batch_size.max(1),
    };
    let mut failure: Option<CliError> = None;
    while let Some(msg) = rx.recv().await {
        match msg {
            Msg::Chunk(items) => {
                for scored in items {
                    if let Err(e) = sink.take(scored).await {
                        failure = Some(e);
                        break;
                    }
                }
                if failure.is_some() {
                    break;
                }
                bar.set_message(format!("{} measurements", sink.summary.measurements));
            }
            Msg::FileDone { name, error } => {
                sink.summary.files += 1;
                if let Some(error) = error {
                    sink.summary.files_failed += 1;
                    tracing::error!(counter = "reprocess_file_failed", file = %name, %error, "file not read to the end");
                }
                bar.inc(1);
            }
        }
    }
    drop(rx);
    while let Some(joined) = workers.join_next().await {
        if let Err(e) = joined {
            failure.get_or_insert(CliError::Worker(e.to_string()));
        }
    }
    if let Some(e) = failure {
        bar.abandon();
        return Err(e);
    }
    sink.flush().await?;
    bar.finish_and_clear();
    let s = &sink.summary;
    tracing::info!(
        files = s.files,
        files_failed = s.files_failed,
        measurements = s.measurements,
        written = s.written.fastpath_written,
        unchanged = s.written.fastpath_skipped,
        printed = s.rows_printed,
        "reprocessing done"
    );
    Ok(sink.summary)
}
