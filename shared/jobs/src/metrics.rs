//! Job metrics as CloudWatch Embedded Metric Format (EMF) log lines, through the project's one
//! metric catalogue (`ooni_platform::metrics::Metric`, namespace `OONI`, dimensions `Stage` and
//! `job`). Every run emits three data points:
//!
//! | metric | unit | value |
//! | --- | --- | --- |
//! | `job_duration` | Milliseconds | wall-clock time of the run |
//! | `job_rows` | Count | rows (or objects) the run loaded; 0 when it failed |
//! | `job_failures` | Count | 1 when the run failed, else 0 |
//!
//! Each line also carries the non-metric properties `outcome` (`updated`, `unchanged`,
//! `failed`) and, on failure, a short `error` class, for Logs Insights queries. Lines go to
//! stdout (Lambda ships them to CloudWatch Logs) or, in tests, to memory ([`MetricsSink`]).

use ooni_platform::metrics::{emf, Metric};
use serde_json::Value;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// The dimension naming the job.
pub const DIMENSION_JOB: &str = "job";

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// New data was loaded / written.
    Updated,
    /// The source held what is already live; nothing was replaced.
    Unchanged,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Updated => "updated",
            Outcome::Unchanged => "unchanged",
            Outcome::Failed => "failed",
        }
    }
}

/// One finished run, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub job: String,
    pub duration_ms: f64,
    pub rows: u64,
    pub outcome: Outcome,
    /// A short error class on failure (never a payload or a secret).
    pub error: Option<String>,
    /// Epoch milliseconds of the end of the run.
    pub timestamp_ms: i64,
}

/// The EMF documents of a run: duration, rows, failures.
pub fn emf_documents(r: &RunRecord) -> Vec<Value> {
    let dims = [(DIMENSION_JOB, r.job.as_str())];
    let failed = f64::from(u8::from(r.outcome == Outcome::Failed));
    [
        (Metric::JobDuration, r.duration_ms),
        (Metric::JobRows, r.rows as f64),
        (Metric::JobFailures, failed),
    ]
    .into_iter()
    .map(|(metric, value)| {
        let mut doc = emf(metric, value, &dims, r.timestamp_ms);
        if let Some(obj) = doc.as_object_mut() {
            obj.insert("outcome".into(), Value::String(r.outcome.as_str().into()));
            if let Some(e) = &r.error {
                obj.insert("error".into(), Value::String(e.clone()));
            }
        }
        doc
    })
    .collect()
}

/// Where EMF lines go: stdout in Lambda and on the CLI, memory in tests.
#[derive(Clone, Default)]
pub enum MetricsSink {
    #[default]
    Stdout,
    Memory(Arc<Mutex<Vec<Value>>>),
}

impl MetricsSink {
    /// A sink that keeps documents in memory, and the handle to read them.
    pub fn memory() -> (Self, Arc<Mutex<Vec<Value>>>) {
        let store = Arc::new(Mutex::new(Vec::new()));
        (MetricsSink::Memory(store.clone()), store)
    }

    /// Emits the EMF documents of `record`.
    pub fn emit(&self, record: &RunRecord) {
        let docs = emf_documents(record);
        match self {
            MetricsSink::Stdout => {
                let mut out = std::io::stdout().lock();
                for doc in docs {
                    if let Err(e) = writeln!(out, "{doc}") {
                        tracing::warn!(error = %e, "could not write an EMF metrics line");
                    }
                }
            }
            MetricsSink::Memory(store) => {
                store
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .extend(docs);
            }
        }
    }
}

impl std::fmt::Debug for MetricsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MetricsSink::Stdout => "MetricsSink::Stdout",
            MetricsSink::Memory(_) => "MetricsSink::Memory",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(outcome: Outcome) -> RunRecord {
        RunRecord {
            job: "JobFingerprints".into(),
            duration_ms: 12.5,
            rows: 1955,
            outcome,
            error: (outcome == Outcome::Failed).then(|| "validation".into()),
            timestamp_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn a_run_emits_duration_rows_and_failures_under_the_job_dimension() {
        let docs = emf_documents(&record(Outcome::Updated));
        let names: Vec<&str> = docs
            .iter()
            .map(|d| {
                d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"]
                    .as_str()
                    .unwrap()
            })
            .collect();
        assert_eq!(names, ["job_duration", "job_rows", "job_failures"]);
        for d in &docs {
            assert_eq!(d["job"], "JobFingerprints");
            assert_eq!(d["outcome"], "updated");
            assert_eq!(d["_aws"]["CloudWatchMetrics"][0]["Namespace"], "OONI");
            assert_eq!(d["_aws"]["Timestamp"], 1_700_000_000_000i64);
            assert!(d.get("error").is_none());
        }
        assert_eq!(docs[0]["job_duration"], 12.5);
        assert_eq!(docs[1]["job_rows"], 1955.0);
        assert_eq!(docs[2]["job_failures"], 0.0);
    }

    #[test]
    fn a_failed_run_counts_one_failure_and_names_the_error_class() {
        let docs = emf_documents(&record(Outcome::Failed));
        assert_eq!(docs[2]["job_failures"], 1.0);
        assert!(docs
            .iter()
            .all(|d| d["outcome"] == "failed" && d["error"] == "validation"));
    }

    #[test]
    fn the_memory_sink_keeps_every_emitted_document() {
        let (sink, store) = MetricsSink::memory();
        sink.emit(&record(Outcome::Unchanged));
        sink.emit(&record(Outcome::Failed));
        let docs = store.lock().unwrap();
        assert_eq!(docs.len(), 6);
        assert_eq!(docs[0]["outcome"], "unchanged");
        assert_eq!(docs[5]["outcome"], "failed");
    }
}
