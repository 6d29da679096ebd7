//! Job metrics as CloudWatch Embedded Metric Format (EMF) log lines: one JSON object per job
//! run, written to stdout, which CloudWatch Logs turns into metrics without any API call.
//!
//! Every metric of every job is named here, in one place:
//!
//! | metric | unit | meaning |
//! | --- | --- | --- |
//! | `JobDuration` | Milliseconds | wall-clock time of the run |
//! | `JobRows` | Count | rows (or objects) the run loaded; 0 when it failed |
//! | `JobSuccess` | Count | 1 when the run finished (updated or unchanged), else 0 |
//! | `JobFailure` | Count | 1 when the run failed, else 0 |
//!
//! Namespace [`NAMESPACE`], one dimension `Job` (the function name, e.g. `JobFingerprints`).
//! Each line also carries the non-metric properties `outcome` (`updated`, `unchanged`,
//! `failed`) and, on failure, a short `error` class, for Logs Insights queries.

use serde_json::{json, Value};
use std::io::Write;
use std::sync::{Arc, Mutex};

/// CloudWatch namespace of every job metric.
pub const NAMESPACE: &str = "OONI/Jobs";
pub const METRIC_DURATION: &str = "JobDuration";
pub const METRIC_ROWS: &str = "JobRows";
pub const METRIC_SUCCESS: &str = "JobSuccess";
pub const METRIC_FAILURE: &str = "JobFailure";
/// The dimension naming the job.
pub const DIMENSION_JOB: &str = "Job";

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

/// The EMF document of a run.
pub fn emf_document(r: &RunRecord) -> Value {
    let success = u8::from(r.outcome != Outcome::Failed);
    let mut doc = json!({
        "_aws": {
            "Timestamp": r.timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[DIMENSION_JOB]],
                "Metrics": [
                    {"Name": METRIC_DURATION, "Unit": "Milliseconds"},
                    {"Name": METRIC_ROWS, "Unit": "Count"},
                    {"Name": METRIC_SUCCESS, "Unit": "Count"},
                    {"Name": METRIC_FAILURE, "Unit": "Count"},
                ],
            }],
        },
        DIMENSION_JOB: r.job,
        METRIC_DURATION: r.duration_ms,
        METRIC_ROWS: r.rows,
        METRIC_SUCCESS: success,
        METRIC_FAILURE: 1 - success,
        "outcome": r.outcome.as_str(),
    });
    if let (Some(e), Some(obj)) = (&r.error, doc.as_object_mut()) {
        obj.insert("error".into(), Value::String(e.clone()));
    }
    doc
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

    /// Emits the EMF document of `record`.
    pub fn emit(&self, record: &RunRecord) {
        let doc = emf_document(record);
        match self {
            MetricsSink::Stdout => {
                let line = doc.to_string();
                let mut out = std::io::stdout().lock();
                if let Err(e) = writeln!(out, "{line}") {
                    tracing::warn!(error = %e, "could not write the EMF metrics line");
                }
            }
            MetricsSink::Memory(store) => {
                store.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(doc);
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
    fn an_emf_document_declares_every_metric_it_carries_under_the_job_dimension() {
        let doc = emf_document(&record(Outcome::Updated));
        let decl = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(decl["Namespace"], NAMESPACE);
        assert_eq!(decl["Dimensions"][0][0], DIMENSION_JOB);
        for m in decl["Metrics"].as_array().unwrap() {
            let name = m["Name"].as_str().unwrap();
            assert!(doc[name].is_number(), "{name} is declared but not set");
        }
        assert_eq!(doc["Job"], "JobFingerprints");
        assert_eq!(doc["JobRows"], 1955);
        assert_eq!(doc["JobSuccess"], 1);
        assert_eq!(doc["JobFailure"], 0);
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000i64);
        assert!(doc.get("error").is_none());
    }

    #[test]
    fn a_failed_run_counts_one_failure_and_names_the_error_class() {
        let doc = emf_document(&record(Outcome::Failed));
        assert_eq!(doc["JobSuccess"], 0);
        assert_eq!(doc["JobFailure"], 1);
        assert_eq!(doc["outcome"], "failed");
        assert_eq!(doc["error"], "validation");
    }

    #[test]
    fn the_memory_sink_keeps_every_emitted_document() {
        let (sink, store) = MetricsSink::memory();
        sink.emit(&record(Outcome::Unchanged));
        sink.emit(&record(Outcome::Failed));
        let docs = store.lock().unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0]["outcome"], "unchanged");
    }
}
