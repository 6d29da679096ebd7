//! `ooni`: the operator and developer CLI. Admin processes run from the same build as the
//! Lambdas: the local dev server, migrations, seeding, local invocation, template generation.

mod dev;
mod invoke;
mod local;
mod seed;
mod services;
mod template;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use ooni_adapters::Migrator;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "ooni", version, about = "OONI backend: operator and developer commands")]
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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    ooni_platform::telemetry::init();
    let cli = Cli::parse();
    match cli.command {
        Command::Dev { addr, no_poller, no_scheduler } => {
            let ctx = Arc::new(local::context(true).await?);
            let service = Arc::new(services::all(ctx.clone()));
            dev::run(ctx, service, dev::DevOptions { addr, poller: !no_poller, scheduler: !no_scheduler }).await
        }
        Command::Migrate => {
            let ctx = local::context(false).await?;
            let report = Migrator::embedded()?.migrate_config(&ctx.clickhouse).await?;
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
            let text = std::fs::read_to_string(&event).with_context(|| format!("read {}", event.display()))?;
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
                anyhow::ensure!(current == rendered, "{} is stale: run `ooni template`", output.display());
                println!("{} is up to date", output.display());
            } else {
                std::fs::write(&output, rendered)?;
                println!("wrote {}", output.display());
            }
            Ok(())
        }
        Command::Functions => {
            for f in ooni_platform::functions::FUNCTIONS {
                println!("{:<28} {:<18} {:?}", f.name, f.binary.bin_name(), f.trigger);
            }
            Ok(())
        }
    }
}
