//! `ooni`: the operator and developer CLI. Admin processes run from the same build as the
//! Lambdas: the local dev server, migrations, seeding, local invocation, template generation.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod dev;
mod invoke;
mod loadgen;
mod local;
mod seed;
mod services;
mod smoke;
mod template;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use ooni_adapters::Migrator;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "ooni",
    version,
    about = "OONI backend: operator and developer commands"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every route locally, poll the submissions queue and run the timer jobs.
    Dev {
        #[arg(long, env = "OONI_API_ADDR", default_value = "127.0.0.1:8080")]
        addr: String,
        /// Do not feed the submissions queue to the scorer.
        #[arg(long)]
        no_poller: bool,
        /// Do not run timer jobs on their schedule.
        #[arg(long)]
        no_scheduler: bool,
    },
    /// Apply the ClickHouse migrations (idempotent, forward-only).
    Migrate,
    /// Create the AWS resources on the configured endpoint and load fixture data.
    Seed,
    /// Run one function's handler in-process with a sample event and print its response.
    Invoke { function: String, event: PathBuf },
    /// Write template.yaml from the function table (or check it is up to date).
    Template {
        #[arg(long, default_value = "template.yaml")]
        output: PathBuf,
        #[arg(long)]
        check: bool,
    },
    /// List every function with its trigger.
    Functions,
    /// Fastpath scoring from files, postcans or the data bucket.
    Fastpath {
        #[command(subcommand)]
        command: FastpathCommand,
    },
    /// Build postcans and JSONL files for one completed hour (what the hourly Uploader does).
    Upload {
        #[arg(long)]
        hour: String,
    },
    /// Run one timer job now (e.g. `ooni job JobFingerprints`).
    Job { name: String },
    /// ClickHouse backups (JobBackup) in the backup bucket.
    Backup {
        #[command(subcommand)]
        command: BackupCommand,
    },
    /// Add synthetic fastpath rows (realistic countries, networks, tests, anomalies over the last
    /// year) to the configured database, for the query benchmarks and load tests.
    GenerateFastpath {
        /// Rows to add.
        #[arg(long, default_value_t = 10_000_000)]
        rows: u64,
    },
    /// Emulated ooniprobes against a running API: throughput, latency, time to ClickHouse, CPU.
    Loadgen(loadgen::LoadgenArgs),
    /// Run the release artifacts under a Lambda Runtime API emulator on their sample events.
    Smoketest {
        #[arg(long, default_value = "target/lambda")]
        lambda_dir: PathBuf,
        #[arg(long, default_value = "events")]
        events_dir: PathBuf,
        /// Functions to leave out (e.g. jobs that fetch from the internet).
        #[arg(long)]
        skip: Vec<String>,
        /// Leave out functions whose binary was not built instead of failing.
        #[arg(long)]
        allow_missing: bool,
    },
}

#[derive(Subcommand)]
enum BackupCommand {
    /// Load a day's backup from the backup bucket into `<table><suffix>` (checksum-verified).
    Restore {
        /// Backup day, YYYY-MM-DD.
        date: String,
        /// Tables to restore (repeatable; default: every table of the day's manifest).
        #[arg(long = "table")]
        tables: Vec<String>,
        /// Suffix of the tables loaded (created like the live ones); "" appends to the live tables.
        #[arg(long, default_value = "_restored")]
        suffix: String,
    },
}

#[derive(Subcommand)]
enum FastpathCommand {
    /// Score `{measurement_uid, measurement}` JSON lines and print one fastpath row per line.
    Score {
        #[arg(long)]
        input: PathBuf,
        /// Directory with fingerprints_dns.csv and fingerprints_http.csv (default: ClickHouse).
        #[arg(long)]
        fingerprints_dir: Option<PathBuf>,
    },
    /// Re-score JSONL(.gz/.zst) files, postcans, or days of the data bucket.
    Reprocess {
        /// Local files (JSONL, .jsonl.gz, .jsonl.zst, postcans .tar.gz).
        files: Vec<PathBuf>,
        /// First day (YYYY-MM-DD) to read from the data bucket's raw/ prefix.
        #[arg(long)]
        start_day: Option<chrono::NaiveDate>,
        /// Day after the last one (excluded, as upstream).
        #[arg(long)]
        end_day: Option<chrono::NaiveDate>,
        /// Print rows instead of writing them to ClickHouse.
        #[arg(long)]
        stdout: bool,
        #[arg(long)]
        fingerprints_dir: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    ooni_platform::telemetry::init();
    let cli = Cli::parse();
    match cli.command {
        Command::Dev {
            addr,
            no_poller,
            no_scheduler,
        } => {
            let ctx = Arc::new(local::context(true).await?);
            let service = Arc::new(services::all(ctx.clone()));
            dev::run(
                ctx,
                service,
                dev::DevOptions {
                    addr,
                    poller: !no_poller,
                    scheduler: !no_scheduler,
                },
            )
            .await
        }
        Command::Migrate => {
            let ctx = local::context(false).await?;
            let report = Migrator::embedded()?
                .migrate_config(&ctx.clickhouse)
                .await?;
            println!(
                "migrations: {} applied, {} already applied (database {})",
                report.applied.len(),
                report.already_applied.len(),
                ctx.clickhouse.database
            );
            Ok(())
        }
        Command::Seed => {
            let ctx = local::context(true).await?;
            let r = seed::seed(&ctx).await?;
            println!(
                "seeded: citizenlab {} rows, fingerprints dns {} / http {}, url_priorities {}, {} config objects",
                r.citizenlab_rows, r.fingerprints_dns_rows, r.fingerprints_http_rows, r.url_priorities_rows, r.config_objects
            );
            Ok(())
        }
        Command::Invoke { function, event } => {
            let text = std::fs::read_to_string(&event)
                .with_context(|| format!("read {}", event.display()))?;
            let ctx = Arc::new(local::context(false).await?);
            let service = services::all(ctx);
            let out = invoke::invoke(&service, &function, &text).await?;
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        Command::Template { output, check } => {
            let rendered = template::render();
            if check {
                let current = std::fs::read_to_string(&output).unwrap_or_default();
                anyhow::ensure!(
                    current == rendered,
                    "{} is stale: run `ooni template`",
                    output.display()
                );
                println!("{} is up to date", output.display());
            } else {
                std::fs::write(&output, rendered)?;
                println!("wrote {}", output.display());
            }
            Ok(())
        }
        Command::Smoketest {
            lambda_dir,
            events_dir,
            skip,
            allow_missing,
        } => {
            let results = smoke::run_all(&lambda_dir, &events_dir, &skip, allow_missing).await?;
            let mut cold: Vec<f64> = Vec::new();
            let mut failed = 0;
            for r in &results {
                cold.push(r.cold_start.as_secs_f64() * 1000.0);
                if !r.ok() {
                    failed += 1;
                }
                println!(
                    "{:<6} {:<28} cold start {:>7.1} ms  {}  ({})",
                    if r.ok() { "ok" } else { "FAIL" },
                    r.function,
                    r.cold_start.as_secs_f64() * 1000.0,
                    r.verdict,
                    r.event.display()
                );
            }
            cold.sort_by(f64::total_cmp);
            if let (Some(first), Some(last)) = (cold.first(), cold.last()) {
                println!(
                    "cold start over {} functions: min {first:.1} ms, p50 {:.1} ms, max {last:.1} ms",
                    cold.len(),
                    cold[cold.len() / 2]
                );
            }
            println!(
                "smoketest: {} passed, {failed} failed",
                results.len() - failed
            );
            anyhow::ensure!(failed == 0, "{failed} functions failed the smoke test");
            Ok(())
        }
        Command::Fastpath { command } => fastpath(command).await,
        Command::Upload { hour } => {
            let ctx = Arc::new(local::context(false).await?);
            let report = ooni_uploader::upload_hour(ctx, &hour).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Command::Job { name } => {
            let ctx = Arc::new(local::context(false).await?);
            let out = ooni_jobs::run_job(ctx, &name).await?;
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        Command::Backup {
            command:
                BackupCommand::Restore {
                    date,
                    tables,
                    suffix,
                },
        } => {
            let ctx = Arc::new(local::context(false).await?);
            let store = ctx.object_store(ooni_platform::functions::Bucket::Backup);
            for (table, rows) in ooni_jobs::backup::restore_day(
                &ctx.clickhouse(),
                store.as_ref(),
                &date,
                &tables,
                &suffix,
            )
            .await?
            {
                println!("{table}: {rows} rows");
            }
            Ok(())
        }
        Command::GenerateFastpath { rows } => {
            let ctx = local::context(false).await?;
            let bar = indicatif::ProgressBar::new(rows);
            bar.set_style(indicatif::ProgressStyle::with_template(
                "{bar:40} {human_pos}/{human_len} rows, {per_sec}, eta {eta}",
            )?);
            let mut done = 0;
            while done < rows {
                // Each call appends after the rows already there, so chunks add up.
                let chunk = (rows - done).min(1_000_000);
                ooni_measurements::generate_fastpath(&ctx.clickhouse(), chunk).await?;
                done += chunk;
                bar.set_position(done);
            }
            bar.finish();
            println!("fastpath: {rows} synthetic rows added");
            Ok(())
        }
        Command::Loadgen(args) => loadgen::run(args).await,
        Command::Functions => {
            for f in ooni_platform::functions::FUNCTIONS {
                println!("{:<28} {:<18} {:?}", f.name, f.binary.bin_name(), f.trigger);
            }
            Ok(())
        }
    }
}

async fn fastpath(command: FastpathCommand) -> anyhow::Result<()> {
    use ooni_fastpath::{ClickHouseRowStore, ReprocessInput, ReprocessOptions, ReprocessOutput};
    let ctx = local::context(false).await?;
    match command {
        FastpathCommand::Score {
            input,
            fingerprints_dir,
        } => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let summary = ooni_fastpath::score_file(
                &input,
                fingerprints_dir.as_deref(),
                &ctx.clickhouse(),
                &mut out,
            )
            .await?;
            eprintln!("{summary:?}");
            Ok(())
        }
        FastpathCommand::Reprocess {
            files,
            start_day,
            end_day,
            stdout,
            fingerprints_dir,
        } => {
            let fps = ooni_fastpath::cli::load_fingerprints(
                fingerprints_dir.as_deref(),
                &ctx.clickhouse(),
            )
            .await?;
            let input = match (start_day, end_day) {
                (Some(start), Some(end)) => ReprocessInput::Bucket {
                    store: ctx.object_store(ooni_platform::functions::Bucket::Data),
                    prefixes: ooni_fastpath::cli::day_prefixes(start, end)?,
                },
                (None, None) if !files.is_empty() => ReprocessInput::Files(files),
                _ => anyhow::bail!("give input files, or both --start-day and --end-day"),
            };
            let output = if stdout {
                ReprocessOutput::Print(Box::new(std::io::stdout()))
            } else {
                ReprocessOutput::ClickHouse(Arc::new(ClickHouseRowStore::new(ctx.clickhouse())))
            };
            let summary =
                ooni_fastpath::reprocess(ReprocessOptions::new(input, output, Arc::new(fps)))
                    .await?;
            eprintln!("{summary:?}");
            Ok(())
        }
    }
}
