//! What every job shares: its environment ([`JobEnv`]: ClickHouse, the config bucket, the
//! fetcher, settings, clock, metrics sink, checkpoints), its error type, and [`run_named`],
//! which runs one job inside a tracing span and records its EMF metrics.

use crate::checkpoint::{Checkpoints, Point, Step};
use crate::fetch::{maybe_gunzip, FetchError, Fetcher};
use crate::metrics::{MetricsSink, Outcome, RunRecord};
use crate::settings::{expand_url, JobSettings};
use crate::swap::SwapError;
use crate::{asnmeta, backup, citizenlab, fingerprints, geoip, migrate, rotation, vpn};
use bytes::Bytes;
use chrono::Datelike;
use ooni_adapters::{ClickHouseConfig, Clock, ObjectStore, StoreError};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// Everything a job run may touch.
#[derive(Clone)]
pub struct JobEnv {
    pub ch: clickhouse::Client,
    pub clickhouse: ClickHouseConfig,
    pub config_bucket: Arc<dyn ObjectStore>,
    pub backup_bucket: Arc<dyn ObjectStore>,
    pub data_bucket: Arc<dyn ObjectStore>,
    pub cloud: Arc<dyn rotation::Cloud>,
    pub helper_check: Arc<dyn rotation::HelperCheck>,
    pub fetcher: Arc<dyn Fetcher>,
    pub checkpoints: Arc<dyn Checkpoints>,
    pub settings: JobSettings,
    pub clock: Arc<dyn Clock>,
    pub metrics: MetricsSink,
}

impl JobEnv {
    /// Records that `job`'s download passed validation (the kill point before any write).
    pub async fn validated(&self, job: &'static str) -> Result<(), JobError> {
        self.checkpoints
            .reached(Point {
                job,
                step: Step::Validated,
                target: None,
            })
            .await?;
        Ok(())
    }

    /// Downloads `url`, inflating gzip payloads. `{month}` is the current UTC month; when that
    /// file is not published yet (404, e.g. on the 1st), the previous month's is used.
    pub async fn fetch(&self, url: &str) -> Result<Bytes, FetchError> {
        let now = self.clock.now();
        let current = expand_url(url, &now.format("%Y-%m").to_string());
        let (url, body) = match self.fetcher.get(&current).await {
            Err(FetchError::Status { status: 404, .. }) if url.contains("{month}") => {
                let first = now.date_naive().with_day(1).unwrap_or(now.date_naive());
                let previous = first
                    .pred_opt()
                    .unwrap_or(first)
                    .format("%Y-%m")
                    .to_string();
                let older = expand_url(url, &previous);
                tracing::info!(url = %older, "this month's file is not published yet; using last month's");
                let body = self.fetcher.get(&older).await?;
                (older, body)
            }
            other => (current, other?),
        };
        maybe_gunzip(&url, body, self.settings.max_download_bytes)
    }
}

/// Why a job failed. Every variant leaves live data as it was before the run.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Swap(#[from] SwapError),
    #[error(transparent)]
    Fingerprints(#[from] fingerprints::FingerprintError),
    #[error(transparent)]
    Citizenlab(#[from] citizenlab::CitizenlabError),
    #[error(transparent)]
    Asnmeta(#[from] asnmeta::AsnmetaError),
    #[error(transparent)]
    Geoip(#[from] geoip::GeoipError),
    #[error(transparent)]
    Vpn(#[from] vpn::VpnError),
    #[error(transparent)]
    Backup(#[from] backup::BackupError),
    #[error(transparent)]
    Rotation(#[from] rotation::RotationError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Migration(#[from] ooni_adapters::ClickHouseError),
    /// A checkpoint stopped the run (tests), or another unexpected failure.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl JobError {
    /// A short class for metrics and alarms (no payload, no secret).
    pub fn class(&self) -> &'static str {
        match self {
            JobError::Fetch(_) => "fetch",
            JobError::Swap(_) | JobError::Migration(_) => "clickhouse",
            JobError::Fingerprints(_)
            | JobError::Citizenlab(_)
            | JobError::Asnmeta(_)
            | JobError::Geoip(_)
            | JobError::Vpn(_) => "validation",
            JobError::Backup(_) => "backup",
            JobError::Rotation(_) => "provider",
            JobError::Store(_) => "object_store",
            JobError::Other(_) => "other",
        }
    }
}

/// What a successful run did.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub outcome: Outcome,
    /// Rows (or objects) loaded.
    pub rows: u64,
    /// Job-specific facts for the report.
    pub details: Value,
}

/// The jobs of this crate, by function name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    Fingerprints,
    Citizenlab,
    Asnmeta,
    Geoip,
    VpnCredentials,
    Backup,
    TestHelperRotation,
    Migrate,
}

impl Job {
    pub const ALL: [Job; 8] = [
        Job::Citizenlab,
        Job::Fingerprints,
        Job::Asnmeta,
        Job::Geoip,
        Job::VpnCredentials,
        Job::Backup,
        Job::TestHelperRotation,
        Job::Migrate,
    ];

    /// The function name (`functions.rs`).
    pub fn name(self) -> &'static str {
        match self {
            Job::Fingerprints => fingerprints::JOB,
            Job::Citizenlab => citizenlab::JOB,
            Job::Asnmeta => asnmeta::JOB,
            Job::Geoip => geoip::JOB,
            Job::VpnCredentials => vpn::JOB,
            Job::Backup => backup::JOB,
            Job::TestHelperRotation => rotation::JOB,
            Job::Migrate => migrate::FUNCTION,
        }
    }

    pub fn from_name(name: &str) -> Option<Job> {
        Job::ALL.into_iter().find(|j| j.name() == name)
    }
}

/// Runs one job (not `Migrate`, which answers CloudFormation itself) and returns its report:
/// `{job, outcome, rows, duration_ms, ...details}`. Metrics are emitted either way.
pub async fn run_named(env: &JobEnv, job: Job) -> anyhow::Result<Value> {
    let name = job.name();
    let span = tracing::info_span!("job", job = name);
    async move {
        tracing::info!("job started");
        let started = Instant::now();
        let result = match job {
            Job::Fingerprints => fingerprints::run(env).await,
            Job::Citizenlab => citizenlab::run(env).await,
            Job::Asnmeta => asnmeta::run(env).await,
            Job::Geoip => geoip::run(env).await,
            Job::VpnCredentials => vpn::run(env).await,
            Job::Backup => backup::run(env).await,
            Job::TestHelperRotation => rotation::run(env).await,
            Job::Migrate => migrate::run_plain(env).await,
        };
        finish(env, name, started, result)
    }
    .instrument(span)
    .await
}

/// Logs and records the end of a run.
pub(crate) fn finish(
    env: &JobEnv,
    name: &str,
    started: Instant,
    result: Result<Loaded, JobError>,
) -> anyhow::Result<Value> {
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    let record = |outcome, rows, error: Option<&str>| RunRecord {
        job: name.to_owned(),
        duration_ms,
        rows,
        outcome,
        error: error.map(str::to_owned),
        timestamp_ms: env.clock.now().timestamp_millis(),
    };
    match result {
        Ok(loaded) => {
            env.metrics.emit(&record(loaded.outcome, loaded.rows, None));
            tracing::info!(
                outcome = loaded.outcome.as_str(),
                rows = loaded.rows,
                duration_ms,
                "job finished"
            );
            let mut report = json!({
                "job": name,
                "outcome": loaded.outcome.as_str(),
                "rows": loaded.rows,
                "duration_ms": duration_ms,
            });
            if let (Some(r), Value::Object(details)) = (report.as_object_mut(), loaded.details) {
                r.extend(details);
            }
            Ok(report)
        }
        Err(e) => {
            env.metrics
                .emit(&record(Outcome::Failed, 0, Some(e.class())));
            tracing::error!(
                error = format!("{e:#}"),
                class = e.class(),
                duration_ms,
                "job failed; live data unchanged"
            );
            Err(anyhow::Error::new(e).context(format!("{name} failed")))
        }
    }
}
