//! Uploader benchmark on the local stack (moto S3 + ClickHouse, through `ooni-testkit`): one
//! synthetic hour of `OONI_BENCH_MEASUREMENTS` measurements (default 100000, the hour) made from the
//! fixture samples, uploaded by one run. Prints the uploader's peak RSS, its own CPU time per
//! MB of `.post` bytes processed, the emulators' CPU time over the same window (from
//! /proc/<pid>/stat, pids from `.local/*.pid`), the seekable JSONL size overhead against one
//! gzip stream of the same lines at the same level, and body-lookup latency p50/p99.
#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Duration as Span;
use common::*;
use ooni_adapters::FixedClock;
use ooni_platform::functions::Bucket;
use ooni_testkit::TestStack;
use ooni_uploader::{BodyLookup, ClickHouseJsonl, Uploader, UploaderConfig};
use tokio::task::JoinSet;

fn ticks_of(stat: &str) -> Option<u64> {
    // Fields after the command name (which may hold spaces) start at state (field 3).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU seconds (user + system) of a process, all threads.
fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(ticks_of(&stat)? as f64 / 100.0)
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn pid_file(name: &str) -> Option<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.local");
    let port = match name {
        "moto" => std::env::var("OONI_AWS_PORT").unwrap_or_else(|_| "5000".into()),
        _ => std::env::var("OONI_CLICKHOUSE_PORT").unwrap_or_else(|_| "8123".into()),
    };
    std::fs::read_to_string(dir.join(format!("{name}.{port}.pid")))
        .ok()
        .map(|s| s.trim().to_owned())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

// The same runtime as the Lambda (functions/jobs/src/main.rs): what is measured is what runs.
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n: usize = std::env::var("OONI_BENCH_MEASUREMENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let lookups: usize = std::env::var("OONI_BENCH_LOOKUPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    let h = hour(2024, 3, 5, 6);
    let stack = TestStack::start().await;
    let incoming = stack.ctx.object_store(Bucket::Incoming);
    let data = stack.ctx.object_store(Bucket::Data);
    let clock = Arc::new(FixedClock::new(h + Span::hours(2)));

    // Setup: generate and PUT the hour (not measured), keeping only what lookups need.
    let samples = samples();
    let setup = Instant::now();
    let mut puts = JoinSet::new();
    let mut sampled = Vec::new();
    let mut input_bytes = 0u64;
    let mut fastpath = Vec::new();
    let every = (n / lookups.max(1)).max(1);
    for i in 0..n {
        let (tn, m) = &samples[i % samples.len()];
        let at = h + Span::microseconds((i as i64) * 3_599_000_000 / n as i64 + 1);
        let p = post(tn, m, at, i as u64);
        input_bytes += p.body.len() as u64;
        if i % every == 0 {
            fastpath.push(format!(
                "('{}','{}','{}')",
                p.uid,
                p.report_id.replace('\'', "\\'"),
                p.input.replace('\\', "\\\\").replace('\'', "\\'")
            ));
            sampled.push((
                p.uid.clone(),
                p.report_id.clone(),
                p.input.clone(),
                p.content.len(),
            ));
        }
        while puts.len() >= 32 {
            puts.join_next().await.unwrap().unwrap();
        }
        let store = incoming.clone();
        puts.spawn(async move { store.put(&p.key, p.body, "application/json").await.unwrap() });
    }
    while let Some(done) = puts.join_next().await {
        done.unwrap();
    }
    // fastpath rows for the sampled uids, so uid lookups take the production path.
    for batch in fastpath.chunks(500) {
        stack
            .ch()
            // Raw: inputs hold `?`, which `query` would take for bind placeholders.
            .query_raw(&format!(
                "INSERT INTO fastpath (measurement_uid, report_id, input) VALUES {}",
                batch.join(",")
            ))
            .execute()
            .await
            .unwrap();
    }
    let setup_secs = setup.elapsed().as_secs_f64();
    eprintln!(
        "setup: {n} objects, {:.1} MB in {setup_secs:.1} s",
        input_bytes as f64 / 1e6
    );

    // The measured run.
    let moto_pid = pid_file("moto");
    let ch_pid = pid_file("clickhouse");
    let uploader = Uploader::new(
        incoming.clone(),
        data.clone(),
        Arc::new(ClickHouseJsonl::new(stack.ch())),
        clock.clone(),
        UploaderConfig {
            time_budget: None,
            ..UploaderConfig::default()
        },
    );
    let peak_reset = reset_peak_rss();
    let rss_before = peak_rss_mib();
    let own0 = cpu_secs("self").unwrap_or(0.0);
    let moto0 = moto_pid.as_deref().and_then(cpu_secs);
    let ch0 = ch_pid.as_deref().and_then(cpu_secs);
    let wall = Instant::now();
    let report = uploader.run().await.unwrap();
    let wall = wall.elapsed().as_secs_f64();
    let own = cpu_secs("self").unwrap_or(0.0) - own0;
    let moto = moto_pid
        .as_deref()
        .and_then(cpu_secs)
        .zip(moto0)
        .map(|(a, b)| a - b);
    let ch = ch_pid
        .as_deref()
        .and_then(cpu_secs)
        .zip(ch0)
        .map(|(a, b)| a - b);
    let peak = peak_rss_mib();
    assert_eq!(report.measurements as usize, n);
    let mb = report.bytes_in as f64 / 1e6;

    // Size overhead: each JSONL file against one gzip stream of its lines at level 6.
    let (mut multi, mut single) = (0u64, 0u64);
    for key in keys(data.as_ref(), "raw/")
        .await
        .iter()
        .filter(|k| k.ends_with(".jsonl.gz"))
    {
        let bytes = data.get(key).await.unwrap().unwrap();
        let text = gunzip(&bytes);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        gz.write_all(&text).unwrap();
        multi += bytes.len() as u64;
        single += gz.finish().unwrap().len() as u64;
    }
    let overhead = (multi as f64 / single as f64 - 1.0) * 100.0;

    // Lookup latency (uploaded bodies): by uid (through fastpath) and by report_id + input.
    let lookup = BodyLookup::new(
        incoming,
        data,
        Arc::new(ClickHouseJsonl::new(stack.ch())),
        clock,
    );
    let mut by_uid = Vec::new();
    let mut by_rid = Vec::new();
    for (uid, rid, input, len) in &sampled {
        let t = Instant::now();
        let body = lookup.body_by_uid(uid).await.unwrap().unwrap();
        by_uid.push(t.elapsed());
        assert_eq!(body.len(), *len);
        let t = Instant::now();
        let body = lookup
            .body_by_report_input(rid, input)
            .await
            .unwrap()
            .unwrap();
        by_rid.push(t.elapsed());
        assert_eq!(body.len(), *len);
    }
    by_uid.sort();
    by_rid.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;

    println!("ooni-uploader bench: one hour of {n} measurements ({mb:.1} MB of .post bodies)");
    println!(
        "  run: {wall:.1} s wall, {} chunks, postcans {:.1} MB, jsonl {:.1} MB",
        report.chunks,
        report.postcan_bytes as f64 / 1e6,
        report.jsonl_bytes as f64 / 1e6
    );
    println!(
        "  uploader CPU (this process, user+sys): {own:.2} s = {:.1} ms/MB (target <= 30)",
        own * 1e3 / mb
    );
    match moto {
        Some(s) => println!(
            "  AWS emulator (moto) CPU over the run: {s:.2} s = {:.1} ms/MB",
            s * 1e3 / mb
        ),
        None => println!("  AWS emulator CPU: pid not found (.local/moto.<port>.pid)"),
    }
    match ch {
        Some(s) => println!("  ClickHouse CPU over the run: {s:.2} s"),
        None => println!("  ClickHouse CPU: pid not found"),
    }
    println!(
        "  peak RSS during the run: {peak:.0} MiB (process baseline before it {rss_before:.0} MiB{})",
        if peak_reset { "" } else { "; peak not reset, includes setup" }
    );
    println!(
        "  seekable jsonl.gz: {multi} B vs single-member {single} B at level 6: overhead {overhead:.2}% (goal <= 5%)"
    );
    println!(
        "  lookup by uid ({} samples): p50 {:.2} ms, p99 {:.2} ms (target p50 <= 20)",
        by_uid.len(),
        ms(percentile(&by_uid, 0.5)),
        ms(percentile(&by_uid, 0.99))
    );
    println!(
        "  lookup by report_id+input: p50 {:.2} ms, p99 {:.2} ms",
        ms(percentile(&by_rid, 0.5)),
        ms(percentile(&by_rid, 0.99))
    );
}
