//! Command-line arguments of `ooni loadgen` (a `clap::Args` the CLI flattens into a
//! subcommand), and the run that prints the report.

use crate::{Limit, LoadConfig, LoadReport};
use std::time::Duration;

/// Emulated ooniprobes against a running API.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// Base URL of the API.
    #[arg(
        long,
        env = "OONI_LOADGEN_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: String,
    /// Concurrent probes.
    #[arg(long, default_value_t = 8)]
    pub probes: usize,
    /// Offered submissions per second over all probes (0: as fast as the probes go).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Stop after this many seconds (wins over --count).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Stop after this many submissions.
    #[arg(long, default_value_t = 500)]
    pub count: u64,
    /// Measurements per web_connectivity report.
    #[arg(long, default_value_t = 5)]
    pub per_report: u32,
    /// Reports between two check-ins.
    #[arg(long, default_value_t = 3)]
    pub reports_per_session: u32,
    /// Skip the check-ins.
    #[arg(long)]
    pub no_check_in: bool,
    /// Send zstd-compressed bodies.
    #[arg(long)]
    pub zstd: bool,
    /// Wait until every accepted measurement is a `fastpath` row (needs ClickHouse).
    #[arg(long)]
    pub wait_clickhouse: bool,
    /// Seconds to keep waiting for rows after the last submission.
    #[arg(long, default_value_t = 120.0)]
    pub clickhouse_timeout: f64,
    /// Milliseconds between two looks for the rows.
    #[arg(long, default_value_t = 250)]
    pub poll_ms: u64,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

impl LoadArgs {
    /// The run these arguments describe; `clickhouse` is used only with `--wait-clickhouse`.
    pub fn to_config(&self, clickhouse: Option<clickhouse::Client>) -> anyhow::Result<LoadConfig> {
        let mut cfg = LoadConfig::new(&self.url);
        cfg.probes = self.probes;
        cfg.rate = (self.rate > 0.0).then_some(self.rate);
        cfg.limit = match self.duration {
            Some(s) => Limit::Duration(positive_secs("--duration", s)?),
            None => Limit::Count(self.count),
        };
        cfg.measurements_per_report = self.per_report;
        cfg.reports_per_session = self.reports_per_session;
        cfg.check_in = !self.no_check_in;
        cfg.zstd = self.zstd;
        cfg.poll_interval = Duration::from_millis(self.poll_ms.max(10));
        cfg.fastpath_timeout = positive_secs("--clickhouse-timeout", self.clickhouse_timeout)?;
        if self.wait_clickhouse {
            let client = clickhouse
                .ok_or_else(|| anyhow::anyhow!("--wait-clickhouse needs a ClickHouse client"))?;
            cfg = cfg.with_clickhouse(client);
        }
        Ok(cfg)
    }

    /// Runs the load, prints the report (text or JSON) and returns it.
    pub async fn run(&self, clickhouse: Option<clickhouse::Client>) -> anyhow::Result<LoadReport> {
        let report = crate::run(self.to_config(clickhouse)?).await?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{report}");
        }
        Ok(report)
    }
}

fn positive_secs(name: &str, s: f64) -> anyhow::Result<Duration> {
    anyhow::ensure!(
        s.is_finite() && s > 0.0,
        "{name} must be a positive number of seconds, not {s}"
    );
    Ok(Duration::from_secs_f64(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: LoadArgs,
    }

    fn parse(argv: &[&str]) -> LoadArgs {
        Cli::try_parse_from(std::iter::once("ooni").chain(argv.iter().copied()))
            .unwrap()
            .args
    }

    #[test]
    fn the_defaults_describe_an_unpaced_count_run_with_check_ins() {
        let cfg = parse(&[]).to_config(None).unwrap();
        assert_eq!(cfg.limit, Limit::Count(500));
        assert_eq!(cfg.rate, None);
        assert!(cfg.check_in && !cfg.zstd && cfg.fastpath.is_none());
        assert_eq!(cfg.base_url, "http://127.0.0.1:8080");
    }

    #[test]
    fn a_duration_and_a_rate_are_taken_and_nonsense_is_refused() {
        let cfg = parse(&[
            "--rate",
            "50",
            "--duration",
            "2.5",
            "--url",
            "http://x:1/",
            "--no-check-in",
        ])
        .to_config(None)
        .unwrap();
        assert_eq!(cfg.rate, Some(50.0));
        assert_eq!(cfg.limit, Limit::Duration(Duration::from_millis(2500)));
        assert_eq!(cfg.base_url, "http://x:1");
        assert!(!cfg.check_in);
        assert!(parse(&["--duration", "0"]).to_config(None).is_err());
        assert!(parse(&["--wait-clickhouse"]).to_config(None).is_err());
    }
}
