//! `ooni loadgen`: emulated ooniprobes against a running API (the `ooni-loadgen` crate), with
//! the ClickHouse client of the local configuration for `--wait-clickhouse`, and the CPU each
//! named group of processes (`--meter "ooni dev=PID"`) used from the first submission to the
//! last `fastpath` row, per accepted measurement. Exits non-zero when the run was not clean
//! (errors, discarded or lost submissions, rows missing), after printing the report.

use ooni_loadgen::cli::LoadArgs;
use ooni_loadgen::procstat::{self, CpuMeter, GroupCpu};
use ooni_loadgen::LoadReport;
use serde_json::json;

#[derive(Debug, Clone, clap::Args)]
pub struct LoadgenArgs {
    #[command(flatten)]
    pub load: LoadArgs,
    /// Meter the CPU of a group of processes over the run: `NAME=PID[,PID...]` (repeatable).
    #[arg(long = "meter", value_name = "NAME=PIDS")]
    pub meters: Vec<String>,
}

/// Why a `--meter` value was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MeterError {
    #[error("--meter {0:?}: expected NAME=PID[,PID...]")]
    Shape(String),
    #[error("--meter {0:?}: {1:?} is not a process id")]
    Pid(String, String),
}

/// Parses `NAME=PID[,PID...]`.
pub fn parse_meter(text: &str) -> Result<(String, Vec<u32>), MeterError> {
    let (name, pids) = text
        .split_once('=')
        .filter(|(n, p)| !n.trim().is_empty() && !p.trim().is_empty())
        .ok_or_else(|| MeterError::Shape(text.to_owned()))?;
    let pids = pids
        .split(',')
        .map(|p| {
            p.trim()
                .parse::<u32>()
                .map_err(|_| MeterError::Pid(text.to_owned(), p.to_owned()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((name.trim().to_owned(), pids))
}

/// CPU milliseconds per accepted measurement (0 when nothing was accepted).
pub fn ms_per_measurement(cpu_seconds: f64, accepted: u64) -> f64 {
    if accepted == 0 {
        0.0
    } else {
        cpu_seconds * 1000.0 / accepted as f64
    }
}

pub async fn run(args: LoadgenArgs) -> anyhow::Result<()> {
    let groups = args
        .meters
        .iter()
        .map(|m| parse_meter(m))
        .collect::<Result<Vec<_>, _>>()?;
    let clickhouse = if args.load.wait_clickhouse {
        Some(crate::local::context(false).await?.clickhouse())
    } else {
        None
    };
    let cfg = args.load.to_config(clickhouse)?;
    let meter = CpuMeter::start(groups);
    let self_before = procstat::self_cpu_seconds()?;
    let report = ooni_loadgen::run(cfg).await?;
    let cpu = meter.read();
    let self_cpu = procstat::self_cpu_seconds()? - self_before;
    if args.load.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json_report(&report, &cpu, self_cpu)?)?
        );
    } else {
        print!("{report}");
        for g in &cpu {
            println!(
                "{}",
                cpu_line(&g.name, g.cpu_seconds, report.accepted, &g.vanished)
            );
        }
        println!(
            "{}",
            cpu_line("loadgen (this process)", self_cpu, report.accepted, &[])
        );
    }
    anyhow::ensure!(
        report.is_clean(),
        "the run was not clean (errors, discarded or lost submissions, or missing rows)"
    );
    Ok(())
}

fn cpu_line(name: &str, seconds: f64, accepted: u64, vanished: &[u32]) -> String {
    let gone = if vanished.is_empty() {
        String::new()
    } else {
        format!(" (exited, not counted: {vanished:?})")
    };
    format!(
        "  cpu {name}: {seconds:.2} s, {:.3} ms per measurement{gone}",
        ms_per_measurement(seconds, accepted)
    )
}

fn json_report(
    report: &LoadReport,
    cpu: &[GroupCpu],
    self_cpu: f64,
) -> anyhow::Result<serde_json::Value> {
    let mut v = serde_json::to_value(report)?;
    let groups: Vec<_> = cpu
        .iter()
        .map(|g| {
            json!({
                "name": g.name,
                "pids": g.pids,
                "cpu_seconds": g.cpu_seconds,
                "ms_per_measurement": ms_per_measurement(g.cpu_seconds, report.accepted),
                "vanished": g.vanished,
            })
        })
        .collect();
    if let Some(obj) = v.as_object_mut() {
        obj.insert("cpu".into(), json!(groups));
        obj.insert(
            "loadgen_cpu".into(),
            json!({"cpu_seconds": self_cpu, "ms_per_measurement": ms_per_measurement(self_cpu, report.accepted)}),
        );
        obj.insert("clean".into(), json!(report.is_clean()));
    }
    Ok(v)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: LoadgenArgs,
    }

    #[test]
    fn a_meter_names_a_group_of_one_or_more_pids_and_nonsense_is_refused() {
        assert_eq!(
            parse_meter("ooni dev=12"),
            Ok(("ooni dev".to_owned(), vec![12]))
        );
        assert_eq!(
            parse_meter(" ch = 1, 2 ,3"),
            Ok(("ch".to_owned(), vec![1, 2, 3]))
        );
        assert!(matches!(parse_meter("noequals"), Err(MeterError::Shape(_))));
        assert!(matches!(parse_meter("=12"), Err(MeterError::Shape(_))));
        assert!(matches!(parse_meter("x="), Err(MeterError::Shape(_))));
        assert!(matches!(parse_meter("x=1,abc"), Err(MeterError::Pid(_, p)) if p == "abc"));
    }

    #[test]
    fn the_loadgen_flags_and_the_meters_parse_together() {
        let cli = Cli::try_parse_from([
            "ooni", "--probes", "3", "--rate", "200", "--meter", "a=1", "--meter", "b=2,3",
            "--json",
        ])
        .unwrap();
        assert_eq!(cli.args.load.probes, 3);
        assert!(cli.args.load.json);
        assert_eq!(cli.args.meters, vec!["a=1".to_owned(), "b=2,3".to_owned()]);
        assert_eq!(cli.args.load.to_config(None).unwrap().rate, Some(200.0));
    }

    #[test]
    fn cpu_per_measurement_is_in_milliseconds_and_zero_without_measurements() {
        assert!((ms_per_measurement(1.5, 3000) - 0.5).abs() < 1e-12);
        assert_eq!(ms_per_measurement(1.0, 0), 0.0);
        assert!(cpu_line("x", 2.0, 1000, &[7])
            .contains("2.000 ms per measurement (exited, not counted: [7])"));
    }

    #[test]
    fn the_json_report_carries_each_group_with_its_cost_per_measurement() {
        let report = LoadReport {
            probes: 1,
            offered_rate: None,
            elapsed_secs: 1.0,
            attempted: 4,
            accepted: 4,
            discarded: 0,
            submissions_per_sec: 4.0,
            submit_latency: Default::default(),
            check_in_latency: Default::default(),
            open_latency: Default::default(),
            close_latency: Default::default(),
            errors: Default::default(),
            uids: vec![],
            clickhouse: None,
        };
        let cpu = vec![GroupCpu {
            name: "ooni dev".into(),
            pids: vec![9],
            cpu_seconds: 0.002,
            vanished: vec![],
        }];
        let v = json_report(&report, &cpu, 0.004).unwrap();
        assert_eq!(v["cpu"][0]["name"], "ooni dev");
        assert!((v["cpu"][0]["ms_per_measurement"].as_f64().unwrap() - 0.5).abs() < 1e-9);
        assert!((v["loadgen_cpu"]["ms_per_measurement"].as_f64().unwrap() - 1.0).abs() < 1e-9);
        assert_eq!(v["clean"], true);
        assert_eq!(v["accepted"], 4);
    }
}
