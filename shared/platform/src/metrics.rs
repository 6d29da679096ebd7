//! Metrics as CloudWatch Embedded Metric Format (EMF) log lines: one JSON object on stdout per
//! data point, turned into metrics by CloudWatch Logs with no agent and no API call on the hot
//! path. Every metric name the project emits is a variant of [`Metric`] (the one place they are
//! documented); the namespace is `OONI` and every point carries the `Stage` dimension.

use serde_json::{json, Map, Value};

/// Every metric the project emits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// A submission stored in the incoming bucket and enqueued (count).
    SubmissionsAccepted,
    /// A submission rejected by validation (count; dimension `reason`).
    SubmissionsRejected,
    /// A ZZ/AS0 submission answered `{}` without storage, as upstream (count).
    SubmissionsDiscarded,
    /// A measurement scored and written to ClickHouse (count).
    MeasurementsScored,
    /// A measurement the scorer discarded by rule (count; dimension `reason`).
    MeasurementsDiscarded,
    /// A message that failed on its last delivery and is parked in the DLQ (count).
    MeasurementsParked,
    /// A GeoIP mismatch recorded in faulty_measurements (count).
    GeoipMismatches,
    /// Duration of a timer job run (milliseconds; dimension `job`).
    JobDuration,
    /// Rows written by a timer job run (count; dimension `job`).
    JobRows,
    /// A timer job run that failed (count; dimension `job`).
    JobFailures,
    /// A request refused by quotas (count).
    QuotaRefusals,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::SubmissionsAccepted => "submissions_accepted",
            Metric::SubmissionsRejected => "submissions_rejected",
            Metric::SubmissionsDiscarded => "submissions_discarded",
            Metric::MeasurementsScored => "measurements_scored",
            Metric::MeasurementsDiscarded => "measurements_discarded",
            Metric::MeasurementsParked => "measurements_parked",
            Metric::GeoipMismatches => "geoip_mismatches",
            Metric::JobDuration => "job_duration",
            Metric::JobRows => "job_rows",
            Metric::JobFailures => "job_failures",
            Metric::QuotaRefusals => "quota_refusals",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            Metric::JobDuration => "Milliseconds",
            _ => "Count",
        }
    }
}

/// The EMF document for one data point.
pub fn emf(metric: Metric, value: f64, dimensions: &[(&str, &str)], timestamp_ms: i64) -> Value {
    let stage = std::env::var("OONI_STAGE").unwrap_or_else(|_| "local".into());
    let mut doc = Map::new();
    let mut dim_names = vec![Value::String("Stage".into())];
    doc.insert("Stage".into(), Value::String(stage));
    for (k, v) in dimensions {
        dim_names.push(Value::String((*k).into()));
        doc.insert((*k).into(), Value::String((*v).into()));
    }
    doc.insert(metric.name().into(), json!(value));
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": "OONI",
                "Dimensions": [dim_names],
                "Metrics": [{"Name": metric.name(), "Unit": metric.unit()}]
            }]
        }),
    );
    Value::Object(doc)
}

/// Emits one data point (a line on stdout, which Lambda ships to CloudWatch Logs).
pub fn emit(metric: Metric, value: f64, dimensions: &[(&str, &str)]) {
    let line = emf(
        metric,
        value,
        dimensions,
        chrono::Utc::now().timestamp_millis(),
    );
    println!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emf_document_declares_its_metric_namespace_and_dimensions() {
        let doc = emf(
            Metric::JobRows,
            12.0,
            &[("job", "JobFingerprints")],
            1_700_000_000_000,
        );
        assert_eq!(doc["job_rows"], 12.0);
        assert_eq!(doc["job"], "JobFingerprints");
        let cw = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "OONI");
        assert_eq!(cw["Dimensions"][0], json!(["Stage", "job"]));
        assert_eq!(cw["Metrics"][0]["Name"], "job_rows");
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000i64);
    }
}
