//! Load generator for the OONI backend: N emulated ooniprobes against a base URL (check-in,
//! open report, submit real measurements, close), at an offered rate or as fast as they go, for
//! a count or a duration; optionally waits until every accepted measurement is a row of the
//! `fastpath` table. Reports submissions per second, submit latency, time to ClickHouse and
//! errors by status; [`procstat`] measures per-process CPU for the end-to-end bench.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use ooni_loadgen::{run, LoadConfig, Limit};
//! let mut cfg = LoadConfig::new("http://127.0.0.1:8080");
//! cfg.probes = 8;
//! cfg.rate = Some(200.0);
//! cfg.limit = Limit::Duration(std::time::Duration::from_secs(30));
//! let report = run(cfg).await?;
//! println!("{report}");
//! # Ok(()) }
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod cli;
pub mod fastpath;
pub mod pacer;
pub mod probe;
pub mod procstat;
pub mod samples;
pub mod stats;

pub use fastpath::{ClickHouseReport, FastpathLookup};
pub use pacer::Limit;
pub use stats::{Errors, Latency};

use anyhow::Context as _;
use serde::Serialize;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// What to run.
#[derive(Clone)]
pub struct LoadConfig {
    /// Base URL of the API, without a trailing slash, e.g. `http://127.0.0.1:8080`.
    pub base_url: String,
    /// Concurrent emulated probes (each has at most one request in flight).
    pub probes: usize,
    /// Offered submissions per second over all probes; `None`: as fast as the probes go.
    pub rate: Option<f64>,
    /// When to stop submitting.
    pub limit: Limit,
    /// Measurements in one web_connectivity report (other tests submit one per report).
    pub measurements_per_report: u32,
    /// Reports between two check-ins of one probe.
    pub reports_per_session: u32,
    /// Whether probes check in at the start of each session.
    pub check_in: bool,
    /// Send bodies zstd-compressed (`Content-Encoding: zstd`).
    pub zstd: bool,
    /// Timeout of one HTTP request.
    pub request_timeout: Duration,
    /// When set, wait until every accepted uid is a `fastpath` row.
    pub fastpath: Option<Arc<dyn FastpathLookup>>,
    /// How often to look for the rows (the resolution of time-to-ClickHouse).
    pub poll_interval: Duration,
    /// How long to keep waiting for rows after the last submission.
    pub fastpath_timeout: Duration,
}

impl LoadConfig {
    /// Defaults: 4 probes, unpaced, 100 submissions, 5 measurements per web_connectivity report,
    /// 3 reports per session, check-ins on, plain JSON bodies, 30 s request timeout, no
    /// ClickHouse wait (250 ms polls and a 120 s timeout once one is set).
    pub fn new(base_url: impl Into<String>) -> Self {
        LoadConfig {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            probes: 4,
            rate: None,
            limit: Limit::Count(100),
            measurements_per_report: 5,
            reports_per_session: 3,
            check_in: true,
            zstd: false,
            request_timeout: Duration::from_secs(30),
            fastpath: None,
            poll_interval: Duration::from_millis(250),
            fastpath_timeout: Duration::from_secs(120),
        }
    }

    /// Waits for the rows in the `fastpath` table of this ClickHouse client's database.
    pub fn with_clickhouse(mut self, client: clickhouse::Client) -> Self {
        self.fastpath = Some(Arc::new(client));
        self
    }
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub probes: usize,
    pub offered_rate: Option<f64>,
    /// From the first slot to the last answer.
    pub elapsed_secs: f64,
    /// Submissions sent.
    pub attempted: u64,
    /// Submissions answered with a measurement uid.
    pub accepted: u64,
    /// Submissions answered `200 {}` (discarded by the collector).
    pub discarded: u64,
    /// `accepted / elapsed_secs`.
    pub submissions_per_sec: f64,
    /// Every submit request that got an answer or failed, in ms.
    pub submit_latency: Latency,
    pub check_in_latency: Latency,
    pub open_latency: Latency,
    pub close_latency: Latency,
    /// Failures by `"<step> <status or kind>"`.
    pub errors: Errors,
    /// The accepted measurement uids.
    #[serde(skip)]
    pub uids: Vec<String>,
    /// Present when a ClickHouse wait was asked for.
    pub clickhouse: Option<ClickHouseReport>,
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rate = self
            .offered_rate
            .map_or("max speed".to_owned(), |r| format!("offered {r:.1}/s"));
        writeln!(
            f,
            "loadgen: {} probes, {rate}, {:.1} s",
            self.probes, self.elapsed_secs
        )?;
        writeln!(
            f,
            "  submissions: {} sent, {} accepted, {} discarded, {:.1} accepted/s",
            self.attempted, self.accepted, self.discarded, self.submissions_per_sec
        )?;
        writeln!(f, "  submit latency:   {}", self.submit_latency)?;
        writeln!(f, "  check-in latency: {}", self.check_in_latency)?;
        writeln!(f, "  open latency:     {}", self.open_latency)?;
        writeln!(f, "  close latency:    {}", self.close_latency)?;
        if self.errors.is_empty() {
            writeln!(f, "  errors: none")?;
        } else {
            writeln!(f, "  errors: {}", self.errors.total())?;
            for (k, v) in &self.errors.0 {
                writeln!(f, "    {k}: {v}")?;
            }
        }
        if let Some(ch) = &self.clickhouse {
            writeln!(
                f,
                "  fastpath rows: {}/{} seen, {} missing after {:.1} s of draining",
                ch.seen, ch.expected, ch.missing, ch.drain_secs
            )?;
            writeln!(
                f,
                "  time to ClickHouse (±{:.0} ms): {}",
                ch.poll_interval_ms, ch.time_to_row
            )?;
            if !ch.errors.is_empty() {
                writeln!(f, "    lookup errors: {}", ch.errors.total())?;
            }
            for uid in &ch.missing_sample {
                writeln!(f, "    missing: {uid}")?;
            }
        }
        Ok(())
    }
}

impl LoadReport {
    /// Whether every submission was accepted without error and (when waited for) every row
    /// reached ClickHouse.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
            && self.discarded == 0
            && self.accepted == self.attempted
            && self
                .clickhouse
                .as_ref()
                .is_none_or(|c| c.missing == 0 && c.errors.is_empty())
    }
}

/// Runs the load described by `cfg` and reports what it measured.
pub async fn run(cfg: LoadConfig) -> anyhow::Result<LoadReport> {
    anyhow::ensure!(cfg.probes > 0, "at least one probe is needed");
    let samples = samples::embedded().context("loading the embedded samples")?;
    let http = reqwest::Client::builder()
        .timeout(cfg.request_timeout)
        .pool_max_idle_per_host(cfg.probes)
        .user_agent("ooniprobe-cli/3.22.0 ooni-loadgen")
        .build()
        .context("building the HTTP client")?;
    let (tx, waiter) = match &cfg.fastpath {
        Some(lookup) => {
            let (tx, rx) = mpsc::unbounded_channel();
            let opts = fastpath::WaitOptions {
                lookup: lookup.clone(),
                poll_interval: cfg.poll_interval,
                timeout: cfg.fastpath_timeout,
            };
            (
                Some(tx),
                Some(tokio::spawn(fastpath::wait_for_rows(opts, rx))),
            )
        }
        None => (None, None),
    };
    let start = Instant::now();
    let shared = Arc::new(probe::Shared {
        http,
        base_url: cfg.base_url.clone(),
        samples,
        next_sample: AtomicUsize::new(0),
        pacer: pacer::Pacer::new(start, cfg.rate, cfg.limit),
        measurements_per_report: cfg.measurements_per_report,
        reports_per_session: cfg.reports_per_session,
        check_in: cfg.check_in,
        zstd: cfg.zstd,
        accepted_tx: tx,
    });
    let tasks: Vec<_> = (0..cfg.probes)
        .map(|n| tokio::spawn(probe::run_probe(n, shared.clone())))
        .collect();
    drop(shared);
    let mut all = probe::ProbeStats::default();
    for t in tasks {
        let st = t.await.context("a probe task panicked")?;
        all.attempted += st.attempted;
        all.discarded += st.discarded;
        all.uids.extend(st.uids);
        all.submit.extend(st.submit);
        all.check_in.extend(st.check_in);
        all.open.extend(st.open);
        all.close.extend(st.close);
        all.errors.merge(st.errors);
    }
    let elapsed = start.elapsed().as_secs_f64();
    // Every sender was in `shared`, dropped with the last probe: the waiter now drains.
    let clickhouse = match waiter {
        Some(w) => Some(w.await.context("the ClickHouse waiter panicked")?),
        None => None,
    };
    let accepted = all.uids.len() as u64;
    Ok(LoadReport {
        probes: cfg.probes,
        offered_rate: cfg.rate,
        elapsed_secs: elapsed,
        attempted: all.attempted,
        accepted,
        discarded: all.discarded,
        submissions_per_sec: if elapsed > 0.0 {
            accepted as f64 / elapsed
        } else {
            0.0
        },
        submit_latency: Latency::from_samples(all.submit),
        check_in_latency: Latency::from_samples(all.check_in),
        open_latency: Latency::from_samples(all.open),
        close_latency: Latency::from_samples(all.close),
        errors: all.errors,
        uids: all.uids,
        clickhouse,
    })
}
