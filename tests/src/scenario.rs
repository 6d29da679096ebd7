//! The zero-loss scenario: submissions under injected faults, without wiping state between
//! phases, then recovery and an audit of what API users see.
//!
//! Phases (each runs a share of the submissions while its fault is on): `baseline`; S3 refused /
//! delayed / dropped (toggling) / replies lost; the same four for SQS; `client-timeout` (the
//! probe gives up after 1 s while SQS is 1.2 s slow: the handler is cut mid-way, a held
//! SendMessage may still arrive); `duplicates` (every
//! received message is sent again once and every third delete is skipped);
//! `clickhouse-restart` (the private ClickHouse is stopped with SIGTERM while submissions
//! arrive and the scorer consumes, started again on the same data directory, then killed with
//! SIGKILL while the scorer catches up, and started again); `upload-during-backlog` (the
//! consumers pause, submissions arrive, the uploader runs and moves their bodies out of the
//! incoming bucket, the consumers resume and must score them from the uploaded copies; more
//! submissions follow in the same hour).
//!
//! Recovery: faults off; the DLQ is redriven and the queue drained until every accepted uid has
//! a row (bounded wait). Then the uploader is crashed after each of its steps in turn and rerun
//! until a clean run completes.
//!
//! Audit (the [`Audit`] counts are printed):
//! - every `measurement_uid` handed out is exactly one row in `fastpath FINAL` and through the
//!   list API (`/api/v1/measurements?report_id=`), and `/api/v1/raw_measurement` returns its
//!   body (the content that was submitted, after the uploader moved it to the data bucket);
//! - every submission answered with an error has no row (list API and table), except in the
//!   ambiguous phases ([`is_ambiguous`]: the upstream may have done the work while the project
//!   saw a failure), where it may be whole instead (a "ghost"); half-stored is never allowed;
//! - a submission without an answer (client timeout) is either whole (one row, body
//!   retrievable) or absent;
//! - orphan objects (a stored body whose submission got an error, so no queue message names
//!   it) are counted. They are invisible to API users (every read starts from a `fastpath`
//!   row), but the uploader publishes whatever is in the incoming bucket, so an orphan ends up
//!   in the public raw data; the count of those is printed (see the crate README).

use crate::consumer::{redrive, Consumers, VISIBILITY_SECS};
use crate::driver::{probe_client, submit_many, Outcome, Submission};
use crate::fault_proxy::{FaultProxy, Mode, ProxyStats};
use crate::stack::FaultStack;
use anyhow::{bail, ensure, Context as _};
use ooni_adapters::{FixedClock, MessageQueue, ObjectStore, Secret, SystemClock};
use ooni_fastpath::{FastpathService, ScorerConfig, ScorerSettings};
use ooni_measurements::quotas::QuotaConfig;
use ooni_measurements::{ApiOptions, ApiService};
use ooni_platform::devserver::{self, DevServer};
use ooni_platform::functions::Bucket;
use ooni_platform::Service;
use ooni_probe::db::ClickHouseTestListDb;
use ooni_probe::settings::Settings;
use ooni_probe::{Ports, ProbeService, State};
use ooni_uploader::{FaultHook, Step, Uploader, UploaderConfig};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Settings of a run.
#[derive(Debug, Clone)]
pub struct ScenarioConfig {
    /// Submissions over all phases (`OONI_FAULT_SUBMISSIONS`, default 180).
    pub submissions: usize,
    /// Concurrent emulated probes.
    pub concurrency: usize,
    /// Concurrent scorer consumers.
    pub consumers: usize,
    /// Bodies larger than this go through the incoming bucket instead of inline in the message
    /// (small, so both scorer paths are exercised).
    pub inline_limit: usize,
    /// Bound on the recovery (drain) wait.
    pub drain_timeout: Duration,
    /// The recovery fails when no accepted uid got its row for this long.
    pub drain_stall: Duration,
    /// The phases to run ([`PHASES`]).
    pub phases: Vec<&'static str>,
}

impl ScenarioConfig {
    pub fn from_env() -> anyhow::Result<ScenarioConfig> {
        let submissions = match std::env::var("OONI_FAULT_SUBMISSIONS") {
            Ok(v) => v
                .parse()
                .with_context(|| format!("OONI_FAULT_SUBMISSIONS={v} is not a number"))?,
            Err(_) => 180,
        };
        let phases = PHASES.to_vec();
        ensure!(
            submissions >= phases.len(),
            "OONI_FAULT_SUBMISSIONS must be at least {}",
            phases.len()
        );
        Ok(ScenarioConfig {
            submissions,
            concurrency: 12,
            consumers: if submissions >= 1000 { 4 } else { 2 },
            inline_limit: 8 * 1024,
            drain_timeout: Duration::from_secs(300 + (submissions as u64) / 5),
            drain_stall: Duration::from_secs(90),
            phases,
        })
    }
}

/// Most messages moved from the DLQ per recovery step (so progress is reported in between).
const REDRIVE_STEP: u64 = 200;

/// The fault phases, in order.
pub const PHASES: [&str; 13] = [
    "baseline",
    "s3-refuse",
    "s3-delay",
    "s3-drop",
    "s3-lost-replies",
    "sqs-refuse",
    "sqs-delay",
    "sqs-drop",
    "sqs-lost-replies",
    "client-timeout",
    "duplicates",
    "clickhouse-restart",
    "upload-during-backlog",
];

/// Phases whose faults can hide a success: the upstream may have done the work while the
/// project saw a failure (a cut in-flight request, a lost reply).
pub fn is_ambiguous(phase: &str) -> bool {
    phase.ends_with("-drop") || phase.ends_with("-lost-replies")
}

/// What the run measured.
#[derive(Debug, Default, Clone)]
pub struct Audit {
    pub attempted: usize,
    pub open_failed: u64,
    pub accepted: usize,
    pub errored: usize,
    pub no_answer: usize,
    /// No-answer submissions that turned out whole (row + body).
    pub no_answer_stored: usize,
    /// Error-answered submissions in ambiguous phases that were nevertheless stored whole.
    pub ghosts: usize,
    /// Rows in `fastpath FINAL` (what API users see).
    pub rows: usize,
    /// Rows in `fastpath` without FINAL (physical copies not merged yet).
    pub physical_rows: usize,
    /// Physical duplicate rows that FINAL folds away.
    pub duplicate_rows_folded: usize,
    /// Redeliveries the scorer recognised as already stored.
    pub scorer_duplicates: u64,
    /// Messages delivered more than once (receive count > 1) or sent again on purpose.
    pub redelivered: u64,
    pub resent: u64,
    pub deletes_skipped: u64,
    pub delete_failed: u64,
    pub scorer_failed_items: u64,
    pub redriven_from_dlq: u64,
    /// Messages left parked in the DLQ at the end (none names an accepted uid).
    pub parked_left: usize,
    pub bodies_retrievable: usize,
    pub orphan_objects: usize,
    pub orphans_published: usize,
    pub clickhouse_starts: u32,
    pub uploader_crashes: usize,
    pub uploaded: u64,
    pub errors_by_phase: Vec<(String, usize, usize, usize)>,
    /// Seconds spent per phase (fault phases, recovery, uploader, audit).
    pub phase_secs: Vec<(String, f64)>,
    pub s3_proxy: ProxyStats,
    pub sqs_proxy: ProxyStats,
    pub clickhouse_proxy: ProxyStats,
    pub elapsed: Duration,
}

impl std::fmt::Display for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "zero-loss run in {:.1}s", self.elapsed.as_secs_f64())?;
        writeln!(
            f,
            "  submissions: attempted {}, accepted {}, errored {} ({} ghosts stored whole), no answer {} ({} stored whole), reports not opened {}",
            self.attempted, self.accepted, self.errored, self.ghosts, self.no_answer, self.no_answer_stored, self.open_failed
        )?;
        for (phase, acc, err, none) in &self.errors_by_phase {
            writeln!(
                f,
                "    {phase:<20} accepted {acc:>5}  errored {err:>5}  no answer {none:>3}"
            )?;
        }
        writeln!(
            f,
            "  rows: fastpath FINAL {}, physical {}, duplicate rows folded by FINAL {}, scorer-detected duplicates {}",
            self.rows, self.physical_rows, self.duplicate_rows_folded, self.scorer_duplicates
        )?;
        writeln!(
            f,
            "  queue: redelivered {}, resent {}, deletes skipped {}, deletes failed {}, failed items {}, redriven from DLQ {}, parked left {}",
            self.redelivered, self.resent, self.deletes_skipped, self.delete_failed, self.scorer_failed_items, self.redriven_from_dlq, self.parked_left
        )?;
        writeln!(
            f,
            "  bodies retrievable {} / {}; orphan objects {} (published to raw data by the uploader: {})",
            self.bodies_retrievable, self.accepted, self.orphan_objects, self.orphans_published
        )?;
        writeln!(
            f,
            "  ClickHouse starts {}; uploader crashes {} then {} measurements uploaded",
            self.clickhouse_starts, self.uploader_crashes, self.uploaded
        )?;
        let times: Vec<String> = self
            .phase_secs
            .iter()
            .map(|(p, t)| format!("{p} {t:.1}s"))
            .collect();
        writeln!(f, "  time: {}", times.join(", "))?;
        writeln!(f, "  proxies: s3 {:?}", self.s3_proxy)?;
        writeln!(f, "           sqs {:?}", self.sqs_proxy)?;
        write!(f, "           clickhouse {:?}", self.clickhouse_proxy)
    }
}

async fn serve(service: Arc<dyn Service>) -> anyhow::Result<DevServer> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    devserver::serve(listener, service).await
}

/// Alternates `proxy` between Drop and Pass until `done`, ending in Pass.
fn toggle_drop(proxy: Arc<FaultProxy>, done: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !done.load(Ordering::Relaxed) {
            proxy.set_mode(Mode::Drop);
            tokio::time::sleep(Duration::from_millis(700)).await;
            proxy.set_mode(Mode::Pass);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        proxy.set_mode(Mode::Pass);
    })
}

/// The uploader on the project's context, with a clock two hours ahead so the hours of this
/// run count as complete.
fn uploader_ahead(ctx: &ooni_platform::Context) -> Uploader {
    let clock = Arc::new(FixedClock::new(
        chrono::Utc::now() + chrono::Duration::hours(2),
    ));
    let config = UploaderConfig {
        time_budget: None,
        ..UploaderConfig::default()
    };
    Uploader::new(
        ctx.object_store(Bucket::Incoming),
        ctx.object_store(Bucket::Data),
        Arc::new(ooni_uploader::ClickHouseJsonl::new(ctx.clickhouse())),
        clock,
        config,
    )
}

/// Crashes the uploader once, after `step` of the first chunk that reaches it.
struct CrashAfter {
    step: Step,
    fired: Mutex<bool>,
}

impl FaultHook for CrashAfter {
    fn after(&self, step: Step, _postcan_key: &str) -> Result<(), String> {
        let mut fired = match self.fired.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if step == self.step && !*fired {
            *fired = true;
            return Err(format!("injected crash after {step:?}"));
        }
        Ok(())
    }
}

#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct UidReport {
    measurement_uid: String,
    report_id: String,
    n: u64,
}

#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct Uid {
    measurement_uid: String,
}

#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct Count {
    n: u64,
}

async fn distinct_uids(ch: &clickhouse::Client) -> anyhow::Result<HashSet<String>> {
    let rows = ch
        .query("SELECT DISTINCT measurement_uid FROM fastpath")
        .fetch_all::<Uid>()
        .await?;
    Ok(rows.into_iter().map(|r| r.measurement_uid).collect())
}

/// Rows per (uid, report) in `fastpath`, with or without FINAL.
async fn rows_by_uid(ch: &clickhouse::Client, final_: bool) -> anyhow::Result<Vec<UidReport>> {
    let sql = format!(
        "SELECT measurement_uid, report_id, count() AS n FROM fastpath{} GROUP BY measurement_uid, report_id",
        if final_ { " FINAL" } else { "" }
    );
    Ok(ch.query(&sql).fetch_all::<UidReport>().await?)
}

/// Every message of `dlq`, left in place (hidden for a while); their uids.
async fn parked_uids(dlq: &dyn MessageQueue) -> anyhow::Result<Vec<String>> {
    let mut uids = Vec::new();
    loop {
        let batch = dlq.receive(10, 0, 60).await?;
        if batch.is_empty() {
            return Ok(uids);
        }
        for m in batch {
            let uid = serde_json::from_str::<Value>(&m.body)
                .ok()
                .and_then(|v| {
                    v.get("measurement_uid")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .unwrap_or_default();
            uids.push(uid);
        }
    }
}

/// The wrapped `content` of a `.post` object.
fn post_report_id(post: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(post).ok()?;
    v.get("content")?
        .get("report_id")?
        .as_str()
        .map(str::to_owned)
}

/// GET `url` as JSON, retrying transient failures for a little while.
async fn get_json(http: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    let mut last = None;
    for _ in 0..5 {
        match http.get(url).send().await {
            Ok(r) if r.status().is_success() => return Ok(r.json().await?),
            Ok(r) => last = Some(anyhow::anyhow!("{url}: HTTP {}", r.status())),
            Err(e) => last = Some(anyhow::anyhow!("{url}: {e}")),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("{url}: no attempt")))
}

/// What API users see for one submission: list rows for its report and, if a uid is given,
/// the raw body.
struct Seen {
    listed: Vec<String>,
    body: Option<Value>,
}

async fn seen_by_api(
    http: &reqwest::Client,
    api: &str,
    report_id: &str,
    uid: Option<&str>,
) -> anyhow::Result<Seen> {
    let list = get_json(
        http,
        &format!("{api}/api/v1/measurements?report_id={report_id}&limit=10"),
    )
    .await?;
    let listed = list
        .get("results")
        .and_then(Value::as_array)
        .map(|rs| {
            rs.iter()
                .filter_map(|r| {
                    r.get("measurement_uid")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default();
    let body = match uid {
        Some(uid) => {
            let b = get_json(
                http,
                &format!("{api}/api/v1/raw_measurement?measurement_uid={uid}"),
            )
            .await?;
            (b != Value::Object(Default::default())).then_some(b)
        }
        None => None,
    };
    Ok(Seen { listed, body })
}

/// Runs the whole scenario on a fresh [`FaultStack`] and returns its counts; an `Err` names
/// every violation found.
pub async fn run(cfg: &ScenarioConfig) -> anyhow::Result<Audit> {
    let mut stack = FaultStack::start().await?;
    let result = run_on(&mut stack, cfg).await;
    if let Err(e) = stack.shutdown().await {
        tracing::warn!(error = %e, "fault stack shutdown failed");
    }
    result
}

async fn run_on(stack: &mut FaultStack, cfg: &ScenarioConfig) -> anyhow::Result<Audit> {
    let started = Instant::now();
    let ctx = stack.ctx.clone();
    let mut audit = Audit::default();

    // The services, built the way their Lambda entrypoints build them, on the proxied context.
    let settings = Settings {
        inline_limit: cfg.inline_limit,
        ..Settings::default()
    };
    let ports = Ports {
        config: ctx.object_store(Bucket::Config),
        incoming: ctx.object_store(Bucket::Incoming),
        queue: Some(ctx.submissions_queue()?),
        db: Arc::new(ClickHouseTestListDb::new(
            ctx.clickhouse(),
            settings.db_timeout,
        )),
        clock: Arc::new(SystemClock),
    };
    let probe = Arc::new(ProbeService::with_state(Arc::new(State::new(
        settings,
        ports,
        None,
        Some(ctx.clone()),
    ))));
    let probe_server = serve(probe).await?;
    let api_options = ApiOptions {
        quota_config: Some(QuotaConfig {
            unmetered_paths: vec!["/*".into()],
            ..QuotaConfig::default()
        }),
        quota_hash_key: Some(Secret::new("zero-loss-test-quota-key")),
        ..ApiOptions::default()
    };
    let api_server = serve(Arc::new(ApiService::with_options(ctx.clone(), api_options))).await?;
    let scorer_settings = ScorerSettings {
        scorer: ScorerConfig::default(),
        clickhouse_timeout: Duration::from_secs(20),
        fingerprints_dir: None,
    };
    let scorer = FastpathService::with_settings(ctx.clone(), scorer_settings)
        .scorer()
        .await?;
    let queue = ctx.submissions_queue()?;
    let consumers = Consumers::start(cfg.consumers, queue, scorer.clone());
    let control = consumers.control.clone();

    let http = probe_client(Duration::from_secs(30))?;
    let probe_url = probe_server.base_url();
    let samples = Arc::new(ooni_loadgen::samples::embedded()?);
    let next = Arc::new(AtomicUsize::new(0));
    let phases = &cfg.phases;
    let per_phase = cfg.submissions / phases.len();
    let mut all: Vec<Submission> = Vec::new();

    for (i, phase) in phases.iter().copied().enumerate() {
        let phase_started = Instant::now();
        let n = if i + 1 == phases.len() {
            cfg.submissions - per_phase * (phases.len() - 1)
        } else {
            per_phase
        };
        let submit = |n: usize| {
            submit_many(
                &http,
                &probe_url,
                samples.clone(),
                phase,
                n,
                cfg.concurrency,
                next.clone(),
            )
        };
        let (subs, open_failed) = match phase {
            "s3-refuse" | "sqs-refuse" | "s3-delay" | "sqs-delay" | "s3-lost-replies"
            | "sqs-lost-replies" => {
                let proxy = if phase.starts_with("s3") {
                    &stack.s3_proxy
                } else {
                    &stack.sqs_proxy
                };
                proxy.set_mode(if phase.ends_with("refuse") {
                    Mode::Refuse
                } else if phase.ends_with("lost-replies") {
                    Mode::LoseReplies
                } else {
                    Mode::Delay(Duration::from_millis(400))
                });
                let r = submit(n).await;
                proxy.set_mode(Mode::Pass);
                r
            }
            "s3-drop" | "sqs-drop" => {
                let proxy = if phase.starts_with("s3") {
                    stack.s3_proxy.clone()
                } else {
                    stack.sqs_proxy.clone()
                };
                let done = Arc::new(AtomicBool::new(false));
                let toggler = toggle_drop(proxy, done.clone());
                let r = submit(n).await;
                done.store(true, Ordering::Relaxed);
                toggler.await?;
                r
            }
            "client-timeout" => {
                // The probe gives up before the answer: the submit is cut wherever it is (the
                // dev server drops the handler, as a Lambda timeout would), while a delayed
                // SendMessage may still reach the queue after the client left.
                let impatient = probe_client(Duration::from_millis(1000))?;
                stack
                    .sqs_proxy
                    .set_mode(Mode::Delay(Duration::from_millis(1200)));
                let r = submit_many(
                    &impatient,
                    &probe_url,
                    samples.clone(),
                    phase,
                    n,
                    cfg.concurrency,
                    next.clone(),
                )
                .await;
                stack.sqs_proxy.set_mode(Mode::Pass);
                r
            }
            "duplicates" => {
                control.duplicate_all.store(true, Ordering::Relaxed);
                control.skip_delete_every.store(3, Ordering::Relaxed);
                let r = submit(n).await;
                // Keep misbehaving until the consumers went through this phase's messages.
                let until = Instant::now() + Duration::from_secs(10);
                while control.idle_ms() < 1500 && Instant::now() < until {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                control.duplicate_all.store(false, Ordering::Relaxed);
                control.skip_delete_every.store(0, Ordering::Relaxed);
                r
            }
            "clickhouse-restart" => {
                // Stopped cleanly while submissions arrive and the scorer consumes them...
                let failed_before = control.failed_items.load(Ordering::Relaxed);
                stack
                    .clickhouse
                    .stop(false)
                    .await
                    .map_err(|e| anyhow::anyhow!(e))?;
                let (mut subs, mut open_failed) = submit(n / 2).await;
                let until = Instant::now() + Duration::from_secs(10);
                while control.failed_items.load(Ordering::Relaxed) == failed_before
                    && Instant::now() < until
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                ensure!(
                    control.failed_items.load(Ordering::Relaxed) > failed_before,
                    "the scorer never failed an item while ClickHouse was down: the outage was not exercised"
                );
                stack
                    .clickhouse
                    .restart()
                    .await
                    .map_err(|e| anyhow::anyhow!(e))?;
                // ...then killed (a crash) while the scorer catches up and new submissions arrive.
                let (more, restarted) = tokio::join!(submit(n - n / 2), async {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    let stopped = stack.clickhouse.stop(true).await;
                    tokio::time::sleep(Duration::from_millis(1000)).await;
                    stopped.and(stack.clickhouse.restart().await)
                });
                restarted.map_err(|e| anyhow::anyhow!(e))?;
                subs.extend(more.0);
                open_failed.0 += (more.1).0;
                (subs, open_failed)
            }
            "upload-during-backlog" => {
                // The scorer falls behind (throttled, disabled, or messages parked in the DLQ
                // awaiting a redrive) for longer than the uploader's hour + grace: the hourly
                // upload moves the bodies out of the incoming bucket while messages that need
                // them are still queued.
                control.paused.store(true, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(1500)).await;
                let (mut subs, mut open_failed) = submit(n / 2).await;
                let report = uploader_ahead(&ctx).run().await?;
                tracing::info!(
                    measurements = report.measurements,
                    "uploaded while the queue held a backlog"
                );
                control.paused.store(false, Ordering::Relaxed);
                // Fresh submissions after that upload: a second pass of the uploader over the
                // same hour (the crash stage below) must add to it, not replace it.
                let more = submit(n - n / 2).await;
                subs.extend(more.0);
                open_failed.0 += (more.1).0;
                (subs, open_failed)
            }
            _ => submit(n).await,
        };
        audit.open_failed += open_failed.0;
        let acc = subs
            .iter()
            .filter(|s| matches!(s.outcome, Outcome::Accepted { .. }))
            .count();
        let err = subs
            .iter()
            .filter(|s| matches!(s.outcome, Outcome::Error { .. }))
            .count();
        let none = subs
            .iter()
            .filter(|s| matches!(s.outcome, Outcome::NoAnswer { .. }))
            .count();
        eprintln!(
            "phase {phase}: {n} submissions in {:.1?} (accepted {acc}, errored {err}, no answer {none}); {}",
            phase_started.elapsed(),
            control.summary()
        );
        audit
            .errors_by_phase
            .push((phase.to_owned(), acc, err, none));
        audit
            .phase_secs
            .push((phase.to_owned(), phase_started.elapsed().as_secs_f64()));
        all.extend(subs);
    }
    stack.s3_proxy.set_mode(Mode::Pass);
    stack.sqs_proxy.set_mode(Mode::Pass);
    stack.clickhouse_proxy.set_mode(Mode::Pass);

    // Recovery: redrive parked messages until every accepted uid has a row, then let the
    // consumers go quiet (messages that can never succeed end up parked again).
    let accepted: HashMap<&str, &Submission> = all
        .iter()
        .filter_map(|s| match &s.outcome {
            Outcome::Accepted { uid } => Some((uid.as_str(), s)),
            _ => None,
        })
        .collect();
    let phase_started = Instant::now();
    let ch = stack.ch();
    let main_queue = stack.direct_queue()?;
    let dlq_sqs = stack.direct_dlq();
    let dlq: Arc<dyn MessageQueue> = Arc::new(stack.direct_dlq());
    let deadline = Instant::now() + cfg.drain_timeout;
    let quiet_ms = u64::from(VISIBILITY_SECS) * 1000 + 1500;
    let mut fewest_missing = usize::MAX;
    let mut last_report = Instant::now();
    let mut last_progress = Instant::now();
    loop {
        let present = distinct_uids(&ch).await?;
        let missing: Vec<&str> = accepted
            .keys()
            .copied()
            .filter(|u| !present.contains(*u))
            .collect();
        if missing.is_empty() && control.idle_ms() >= quiet_ms {
            break;
        }
        if missing.len() < fewest_missing {
            fewest_missing = missing.len();
            last_progress = Instant::now();
        }
        if !missing.is_empty() {
            audit.redriven_from_dlq += redrive(dlq.clone(), &main_queue, REDRIVE_STEP).await?;
        }
        if last_report.elapsed() > Duration::from_secs(15) {
            last_report = Instant::now();
            eprintln!(
                "recovery {:.0?}: {} accepted uids without a row; queue ~{} visible, DLQ ~{}; {}; scorer {:?}",
                phase_started.elapsed(),
                missing.len(),
                main_queue.approximate_len().await.unwrap_or(u64::MAX),
                dlq_sqs.approximate_len().await.unwrap_or(u64::MAX),
                control.summary(),
                scorer.stats()
            );
        }
        if Instant::now() > deadline || last_progress.elapsed() > cfg.drain_stall {
            bail!(
                "after {:.0?} of recovery ({:.0?} without progress), {} of {} accepted uids still have no fastpath row (e.g. {:?}); consumers idle for {} ms; {}; scorer {:?}",
                phase_started.elapsed(),
                last_progress.elapsed(),
                missing.len(),
                accepted.len(),
                &missing[..missing.len().min(5)],
                control.idle_ms(),
                control.summary(),
                scorer.stats()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // A last redrive, as an operator would do: copies parked during the faults (duplicates of
    // measurements already stored) must now be recognised and acknowledged.
    let last = redrive(dlq.clone(), &main_queue, u64::MAX).await?;
    audit.redriven_from_dlq += last;
    if last > 0 {
        // Long enough for the consumers to pick the messages up, then until they are quiet
        // (a message that keeps failing comes back every VISIBILITY_SECS until it is parked).
        tokio::time::sleep(Duration::from_millis(quiet_ms)).await;
        while control.idle_ms() < quiet_ms {
            if Instant::now() > deadline {
                bail!(
                    "the consumers did not go quiet within {:?} after the last redrive",
                    cfg.drain_timeout
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    audit
        .phase_secs
        .push(("recovery".into(), phase_started.elapsed().as_secs_f64()));
    drop(consumers);
    let parked = parked_uids(dlq.as_ref()).await?;
    audit.parked_left = parked.len();
    let mut violations: Vec<String> = Vec::new();
    for uid in parked.iter().filter(|u| accepted.contains_key(u.as_str())) {
        violations.push(format!("accepted uid {uid} is still parked in the DLQ"));
    }

    // Orphans: stored bodies that no row names (the uploader is about to publish them).
    let with_rows = distinct_uids(&ch).await?;
    let incoming = stack.direct_bucket(&stack.names.incoming_bucket);
    let mut orphan_reports: HashSet<String> = HashSet::new();
    for o in incoming
        .list(ooni_domain::envelope::INCOMING_PREFIX, usize::MAX)
        .await?
    {
        let Some(obj) = ooni_uploader::keys::IncomingObject::parse(&o.key, o.size) else {
            continue;
        };
        if with_rows.contains(obj.uid.as_str()) {
            continue;
        }
        audit.orphan_objects += 1;
        if let Some(rid) = incoming
            .get(&o.key)
            .await?
            .as_deref()
            .and_then(post_report_id)
        {
            orphan_reports.insert(rid);
        }
    }

    let phase_started = Instant::now();
    // The uploader, crashed after each of its steps in turn, then run to completion. Its clock
    // is two hours ahead so the hours of this run count as complete.
    let uploader = || uploader_ahead(&ctx);
    for step in Step::ALL {
        let crashing = uploader().with_faults(Arc::new(CrashAfter {
            step,
            fired: Mutex::new(false),
        }));
        match crashing.run().await {
            Err(ooni_uploader::UploadError::Fault { .. }) => audit.uploader_crashes += 1,
            Err(e) => bail!("the uploader failed for another reason than the injected crash after {step:?}: {e}"),
            Ok(r) => tracing::info!(?step, measurements = r.measurements, "nothing left to crash on"),
        }
    }
    ensure!(
        audit.uploader_crashes > 0,
        "no uploader crash was injected (nothing to upload?)"
    );
    let report = uploader()
        .run()
        .await
        .context("the uploader rerun after the crashes")?;
    audit.uploaded = report.measurements;
    let left = incoming
        .list(ooni_domain::envelope::INCOMING_PREFIX, 10)
        .await?;
    ensure!(
        left.iter().all(|o| !o.key.ends_with(".post")),
        "the uploader left measurement objects behind: {:?}",
        left.iter().map(|o| &o.key).collect::<Vec<_>>()
    );

    audit
        .phase_secs
        .push(("uploader".into(), phase_started.elapsed().as_secs_f64()));
    let phase_started = Instant::now();
    // The audit.
    let final_rows = rows_by_uid(&ch, true).await?;
    let physical_rows = rows_by_uid(&ch, false).await?;
    audit.rows = final_rows.iter().map(|r| r.n as usize).sum();
    audit.physical_rows = physical_rows.iter().map(|r| r.n as usize).sum();
    audit.duplicate_rows_folded = audit.physical_rows.saturating_sub(audit.rows);
    let mut final_by_uid: HashMap<&str, u64> = HashMap::new();
    let mut physical_by_report: HashMap<&str, u64> = HashMap::new();
    for r in &final_rows {
        *final_by_uid.entry(r.measurement_uid.as_str()).or_default() += r.n;
    }
    for r in &physical_rows {
        *physical_by_report.entry(r.report_id.as_str()).or_default() += r.n;
    }
    let api = api_server.base_url();
    let reader = probe_client(Duration::from_secs(30))?;
    let known_uids: HashSet<&str> = accepted.keys().copied().collect();
    // Reports whose rows are explained (ghosts) or already reported as violations.
    let mut ghost_reports: HashSet<&str> = HashSet::new();
    for s in &all {
        match &s.outcome {
            Outcome::Accepted { uid } => {
                audit.accepted += 1;
                let n = final_by_uid.get(uid.as_str()).copied().unwrap_or(0);
                if n != 1 {
                    violations.push(format!(
                        "[{}] accepted uid {uid} is {n} rows in fastpath FINAL",
                        s.phase
                    ));
                }
                let seen = seen_by_api(&reader, &api, &s.report_id, Some(uid)).await?;
                if seen.listed != [uid.clone()] {
                    violations.push(format!(
                        "[{}] the list API shows {:?} for the report of accepted uid {uid}",
                        s.phase, seen.listed
                    ));
                }
                match seen.body {
                    Some(b) if b == s.content => audit.bodies_retrievable += 1,
                    Some(_) => violations.push(format!(
                        "[{}] raw_measurement of {uid} differs from what was submitted",
                        s.phase
                    )),
                    None => violations.push(format!(
                        "[{}] raw_measurement of accepted uid {uid} is empty",
                        s.phase
                    )),
                }
            }
            Outcome::Error { status } => {
                audit.errored += 1;
                let rows = physical_by_report
                    .get(s.report_id.as_str())
                    .copied()
                    .unwrap_or(0);
                let seen = seen_by_api(&reader, &api, &s.report_id, None).await?;
                if rows == 0 && seen.listed.is_empty() {
                    continue;
                }
                // Where the failure may have hidden a success, a whole measurement is allowed
                // (a "ghost": the probe retries, so it is stored twice); half is never.
                let whole = match seen.listed.as_slice() {
                    [uid] => {
                        rows == 1
                            && seen_by_api(&reader, &api, &s.report_id, Some(uid))
                                .await?
                                .body
                                .as_ref()
                                == Some(&s.content)
                    }
                    _ => false,
                };
                if is_ambiguous(s.phase) && whole {
                    audit.ghosts += 1;
                    ghost_reports.insert(s.report_id.as_str());
                } else {
                    ghost_reports.insert(s.report_id.as_str());
                    violations.push(format!(
                        "[{}] a submission answered {status} left {rows} fastpath rows (API lists {:?}, whole: {whole}) for report {}",
                        s.phase, seen.listed, s.report_id
                    ));
                }
            }
            Outcome::NoAnswer { reason } => {
                audit.no_answer += 1;
                let seen = seen_by_api(&reader, &api, &s.report_id, None).await?;
                match seen.listed.as_slice() {
                    [] => {}
                    [uid] => {
                        let whole = seen_by_api(&reader, &api, &s.report_id, Some(uid))
                            .await?
                            .body
                            .as_ref()
                            == Some(&s.content);
                        if whole {
                            audit.no_answer_stored += 1;
                        } else {
                            violations.push(format!("[{}] a submission without answer ({reason}) is half-stored: row {uid} without its body", s.phase));
                        }
                    }
                    many => violations.push(format!(
                        "[{}] a submission without answer ({reason}) is listed {} times",
                        s.phase,
                        many.len()
                    )),
                }
            }
        }
    }
    audit.attempted = all.len();
    // Rows nobody was told about: only no-answer submissions may have them.
    let no_answer_reports: HashSet<&str> = all
        .iter()
        .filter(|s| matches!(s.outcome, Outcome::NoAnswer { .. }))
        .map(|s| s.report_id.as_str())
        .collect();
    for r in &final_rows {
        if !known_uids.contains(r.measurement_uid.as_str())
            && !no_answer_reports.contains(r.report_id.as_str())
            && !ghost_reports.contains(r.report_id.as_str())
        {
            violations.push(format!(
                "fastpath row {} (report {}) belongs to no accepted submission",
                r.measurement_uid, r.report_id
            ));
        }
    }
    // Orphans published by the uploader (jsonl rows for bodies whose submission got an error).
    let published = ch
        .query("SELECT count() AS n FROM jsonl WHERE has(?, report_id)")
        .bind(orphan_reports.iter().cloned().collect::<Vec<_>>())
        .fetch_one::<Count>()
        .await?;
    audit.orphans_published = published.n as usize;

    let stats = scorer.stats();
    audit.scorer_duplicates = stats.duplicate;
    audit.redelivered = control.redelivered.load(Ordering::Relaxed);
    audit.resent = control.resent.load(Ordering::Relaxed);
    audit.deletes_skipped = control.deletes_skipped.load(Ordering::Relaxed);
    audit.delete_failed = control.delete_failed.load(Ordering::Relaxed);
    audit.scorer_failed_items = control.failed_items.load(Ordering::Relaxed);
    audit.clickhouse_starts = stack.clickhouse.starts();
    audit.s3_proxy = stack.s3_proxy.stats();
    audit.sqs_proxy = stack.sqs_proxy.stats();
    audit.clickhouse_proxy = stack.clickhouse_proxy.stats();
    audit
        .phase_secs
        .push(("audit".into(), phase_started.elapsed().as_secs_f64()));
    audit.elapsed = started.elapsed();
    probe_server.shutdown().await;
    api_server.shutdown().await;
    if !violations.is_empty() {
        let shown: Vec<&String> = violations.iter().take(20).collect();
        bail!(
            "{} zero-loss violations:\n{}\n{audit}",
            violations.len(),
            shown
                .iter()
                .map(|v| format!("  - {v}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    Ok(audit)
}
