//! One emulated probe: the ooniprobe collector dialogue over HTTP. A session is a check-in
//! (`POST /api/v1/check-in`) followed by a few reports; a report is opened (`POST /report`),
//! gets its measurements (`POST /report/{report_id}`: several for web_connectivity, one for
//! other tests, as a real probe does) and is closed (`POST /report/{report_id}/close`).

use crate::pacer::Pacer;
use crate::samples::{Sample, Stamp};
use crate::stats::Errors;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The networks the probes claim, by probe number (cycled).
pub const NETWORKS: &[(&str, &str)] = &[
    ("IT", "AS30722"),
    ("US", "AS7922"),
    ("IR", "AS197207"),
    ("RU", "AS12389"),
    ("BR", "AS28573"),
    ("IN", "AS55836"),
    ("CN", "AS4134"),
    ("DE", "AS3320"),
    ("ID", "AS23693"),
    ("TR", "AS9121"),
];

const SOFTWARE_NAME: &str = "ooniprobe-cli";
const SOFTWARE_VERSION: &str = "3.22.0";
/// Consecutive failed check-ins/opens after which a probe gives up (so a dead server ends the
/// run instead of spinning).
const MAX_CONSECUTIVE_FAILURES: u32 = 10;

/// What every probe shares.
pub struct Shared {
    pub http: reqwest::Client,
    pub base_url: String,
    pub samples: Vec<Sample>,
    pub next_sample: AtomicUsize,
    pub pacer: Pacer,
    pub measurements_per_report: u32,
    pub reports_per_session: u32,
    pub check_in: bool,
    pub zstd: bool,
    /// Accepted uids with their answer time, for the ClickHouse waiter.
    pub accepted_tx: Option<mpsc::UnboundedSender<(String, Instant)>>,
}

/// What one probe measured.
#[derive(Debug, Default)]
pub struct ProbeStats {
    pub attempted: u64,
    pub uids: Vec<String>,
    pub submit: Vec<Duration>,
    pub check_in: Vec<Duration>,
    pub open: Vec<Duration>,
    pub close: Vec<Duration>,
    pub errors: Errors,
    /// Discarded answers (`200 {}`) — should not happen with the probes' networks.
    pub discarded: u64,
}

/// Runs probe number `n` until the pacer says stop (or it gives up on a dead server).
pub async fn run_probe(n: usize, shared: Arc<Shared>) -> ProbeStats {
    let (cc, asn) = NETWORKS[n % NETWORKS.len()];
    let mut st = ProbeStats::default();
    let mut failures = 0u32;
    'sessions: while !shared.pacer.finished() {
        if failures >= MAX_CONSECUTIVE_FAILURES {
            st.errors.add("probe", "gave up");
            break;
        }
        if shared.check_in {
            let t = Instant::now();
            match post_json(&shared, "/api/v1/check-in", &check_in_body(cc, asn)).await {
                Ok(_) => {
                    st.check_in.push(t.elapsed());
                    failures = 0;
                }
                Err(what) => {
                    st.errors.add("check-in", &what);
                    failures += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            }
        }
        for _ in 0..shared.reports_per_session.max(1) {
            let i = shared.next_sample.fetch_add(1, Ordering::Relaxed);
            let sample = &shared.samples[i % shared.samples.len()];
            let opened_at = now_text();
            let t = Instant::now();
            let report_id = match post_json(
                &shared,
                "/report",
                &open_body(cc, asn, &sample.test_name, &opened_at),
            )
            .await
            {
                Ok(v) => match v.get("report_id").and_then(Value::as_str) {
                    Some(r) => r.to_owned(),
                    None => {
                        st.errors.add("open", "no report_id");
                        failures += 1;
                        continue 'sessions;
                    }
                },
                Err(what) => {
                    st.errors.add("open", &what);
                    failures += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue 'sessions;
                }
            };
            st.open.push(t.elapsed());
            failures = 0;
            let count = if sample.has_many_per_report() {
                shared.measurements_per_report.max(1)
            } else {
                1
            };
            for _ in 0..count {
                if shared.pacer.acquire().await.is_none() {
                    close(&shared, &report_id, &mut st).await;
                    break 'sessions;
                }
                submit(&shared, sample, &report_id, cc, asn, &opened_at, &mut st).await;
            }
            close(&shared, &report_id, &mut st).await;
        }
    }
    st
}

async fn submit(
    shared: &Shared,
    sample: &Sample,
    report_id: &str,
    cc: &str,
    asn: &str,
    opened_at: &str,
    st: &mut ProbeStats,
) {
    st.attempted += 1;
    let now = now_text();
    let stamp = Stamp {
        report_id,
        probe_cc: cc,
        probe_asn: asn,
        test_start_time: opened_at,
        measurement_start_time: &now,
    };
    let body = match sample.render(&stamp) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "rendering a sample failed");
            st.errors.add("submit", "render");
            return;
        }
    };
    let mut req = shared
        .http
        .post(format!("{}/report/{report_id}", shared.base_url))
        .header("content-type", "application/json");
    let body = if shared.zstd {
        match zstd::encode_all(&body[..], 3) {
            Ok(z) => {
                req = req.header("content-encoding", "zstd");
                z
            }
            Err(_) => {
                st.errors.add("submit", "zstd");
                return;
            }
        }
    } else {
        body
    };
    let t = Instant::now();
    let answer = match req.body(body).send().await {
        Ok(resp) => {
            let status = resp.status();
            match resp.bytes().await {
                Ok(b) if status.is_success() => Ok(b),
                Ok(_) => Err(status.as_u16().to_string()),
                Err(e) => Err(transport_kind(&e)),
            }
        }
        Err(e) => Err(transport_kind(&e)),
    };
    let answered = Instant::now();
    st.submit.push(answered - t);
    match answer {
        Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(v) => match v.get("measurement_uid").and_then(Value::as_str) {
                Some(uid) => {
                    if let Some(tx) = &shared.accepted_tx {
                        // The waiter ends only after every sender is gone; a send fails only
                        // if it stopped early, and then nobody wants the uid.
                        if tx.send((uid.to_owned(), answered)).is_err() {
                            tracing::debug!("the ClickHouse waiter is gone");
                        }
                    }
                    st.uids.push(uid.to_owned());
                }
                None => st.discarded += 1,
            },
            Err(_) => st.errors.add("submit", "bad json"),
        },
        Err(what) => st.errors.add("submit", &what),
    }
}

async fn close(shared: &Shared, report_id: &str, st: &mut ProbeStats) {
    let t = Instant::now();
    match post_json(shared, &format!("/report/{report_id}/close"), &json!({})).await {
        Ok(_) => st.close.push(t.elapsed()),
        Err(what) => st.errors.add("close", &what),
    }
}

/// POSTs JSON and returns the JSON answer of a 2xx, or the failure's label (status or kind).
async fn post_json(shared: &Shared, path: &str, body: &Value) -> Result<Value, String> {
    let resp = shared
        .http
        .post(format!("{}{path}", shared.base_url))
        .json(body)
        .send()
        .await
        .map_err(|e| transport_kind(&e))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(status.as_u16().to_string());
    }
    resp.json::<Value>().await.map_err(|e| {
        if e.is_decode() {
            "bad json".to_owned()
        } else {
            transport_kind(&e)
        }
    })
}

fn transport_kind(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "transport"
    }
    .to_owned()
}

fn now_text() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string()
}

fn check_in_body(cc: &str, asn: &str) -> Value {
    json!({
        "probe_cc": cc,
        "probe_asn": asn,
        "run_type": "timed",
        "charging": true,
        "on_wifi": true,
        "platform": "linux",
        "software_name": SOFTWARE_NAME,
        "software_version": SOFTWARE_VERSION,
        "web_connectivity": {"category_codes": []},
    })
}

fn open_body(cc: &str, asn: &str, test_name: &str, test_start_time: &str) -> Value {
    json!({
        "data_format_version": "0.2.0",
        "format": "json",
        "probe_asn": asn,
        "probe_cc": cc,
        "software_name": SOFTWARE_NAME,
        "software_version": SOFTWARE_VERSION,
        "test_name": test_name,
        "test_start_time": test_start_time,
        "test_version": "0.4.3",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_network_passes_the_collectors_metadata_checks() {
        for (cc, asn) in NETWORKS {
            assert!(
                cc.len() == 2 && cc.bytes().all(|c| c.is_ascii_uppercase()) && *cc != "ZZ",
                "{cc}"
            );
            let digits = asn.strip_prefix("AS").unwrap();
            assert!(
                !digits.starts_with('0') && digits.parse::<u32>().unwrap() > 0,
                "{asn}"
            );
        }
    }

    #[test]
    fn the_open_and_check_in_bodies_carry_the_probes_network() {
        let o = open_body("IT", "AS30722", "web_connectivity", "2024-01-01 00:00:00");
        assert_eq!(
            (
                o["probe_cc"].as_str(),
                o["probe_asn"].as_str(),
                o["test_name"].as_str()
            ),
            (Some("IT"), Some("AS30722"), Some("web_connectivity"))
        );
        assert_eq!(o["format"], "json");
        let c = check_in_body("IT", "AS30722");
        assert_eq!(c["probe_asn"], "AS30722");
        assert!(c["web_connectivity"]["category_codes"].is_array());
        assert_eq!(now_text().len(), "2024-01-01 00:00:00".len());
    }
}
