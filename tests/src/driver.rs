//! Emulated probe submissions with their individual outcomes. Each submission opens its own
//! report (so the report id names the submission even when no `measurement_uid` came back)
//! and submits one of the loadgen crate's real sample measurements re-addressed to it; the
//! outcome is what the probe saw: a uid, an error answer, or no answer at all.

use ooni_loadgen::probe::NETWORKS;
use ooni_loadgen::samples::{Sample, Stamp};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// What the probe saw for one submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 200 with a `measurement_uid`.
    Accepted { uid: String },
    /// An error status (or a 200 without uid): the probe keeps the measurement and retries.
    Error { status: u16 },
    /// No answer (connection failure or client timeout): the probe cannot know.
    NoAnswer { reason: String },
}

/// One submission and its outcome.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The fault phase it ran in.
    pub phase: &'static str,
    pub report_id: String,
    pub test_name: String,
    /// `content` as submitted (for comparing with the body the API returns).
    pub content: Value,
    pub outcome: Outcome,
}

/// Reports that could not be opened (no submission was attempted for them).
#[derive(Debug, Default, Clone, Copy)]
pub struct OpenFailures(pub u64);

/// Submits `count` measurements to `base_url`, `concurrency` at a time.
pub async fn submit_many(
    http: &reqwest::Client,
    base_url: &str,
    samples: Arc<Vec<Sample>>,
    phase: &'static str,
    count: usize,
    concurrency: usize,
    next_sample: Arc<AtomicUsize>,
) -> (Vec<Submission>, OpenFailures) {
    let out = Arc::new(Mutex::new(Vec::with_capacity(count)));
    let open_failures = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let remaining = Arc::new(AtomicUsize::new(count));
    let mut tasks = Vec::new();
    for worker in 0..concurrency.max(1) {
        let (http, base, samples, out, remaining, next, open_failures) = (
            http.clone(),
            base_url.to_owned(),
            samples.clone(),
            out.clone(),
            remaining.clone(),
            next_sample.clone(),
            open_failures.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let (cc, asn) = NETWORKS[worker % NETWORKS.len()];
            while remaining
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |r| r.checked_sub(1))
                .is_ok()
            {
                let sample = &samples[next.fetch_add(1, Ordering::Relaxed) % samples.len()];
                match submit_one(&http, &base, sample, cc, asn, phase).await {
                    Some(s) => out.lock().await.push(s),
                    None => {
                        open_failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        if let Err(e) = t.await {
            tracing::error!(error = %e, "a submitter task panicked");
        }
    }
    let subs = std::mem::take(&mut *out.lock().await);
    (subs, OpenFailures(open_failures.load(Ordering::Relaxed)))
}

fn now_text() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Opens a report and submits one measurement to it; `None` when the report could not be
/// opened (nothing was submitted).
async fn submit_one(
    http: &reqwest::Client,
    base: &str,
    sample: &Sample,
    cc: &str,
    asn: &str,
    phase: &'static str,
) -> Option<Submission> {
    let opened_at = now_text();
    let open = json!({
        "data_format_version": "0.2.0",
        "format": "json",
        "probe_asn": asn,
        "probe_cc": cc,
        "software_name": "ooniprobe-cli",
        "software_version": "3.22.0",
        "test_name": sample.test_name,
        "test_start_time": opened_at,
        "test_version": "0.4.0",
    });
    let report_id = match http.post(format!("{base}/report")).json(&open).send().await {
        Ok(r) if r.status().is_success() => match r.json::<Value>().await {
            Ok(v) => v
                .get("report_id")
                .and_then(Value::as_str)
                .map(str::to_owned)?,
            Err(_) => return None,
        },
        _ => return None,
    };
    let stamp = Stamp {
        report_id: &report_id,
        probe_cc: cc,
        probe_asn: asn,
        test_start_time: &opened_at,
        measurement_start_time: &now_text(),
    };
    let body = sample.render(&stamp).ok()?;
    let content = serde_json::from_slice::<Value>(&body)
        .ok()?
        .get("content")
        .cloned()
        .unwrap_or(Value::Null);
    let outcome = match http
        .post(format!("{base}/report/{report_id}"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
    {
        Ok(r) => {
            let status = r.status().as_u16();
            let v: Option<Value> = r.json().await.ok();
            match v
                .as_ref()
                .and_then(|v| v.get("measurement_uid"))
                .and_then(Value::as_str)
            {
                Some(uid) if status == 200 => Outcome::Accepted {
                    uid: uid.to_owned(),
                },
                _ => Outcome::Error { status },
            }
        }
        Err(e) => Outcome::NoAnswer {
            reason: if e.is_timeout() {
                "timeout".into()
            } else {
                "connection".into()
            },
        },
    };
    Some(Submission {
        phase,
        report_id,
        test_name: sample.test_name.clone(),
        content,
        outcome,
    })
}

/// The HTTP client the emulated probes use: a bounded timeout per request.
pub fn probe_client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .pool_max_idle_per_host(32)
        .build()
}
