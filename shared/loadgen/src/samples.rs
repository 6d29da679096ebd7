//! The real measurements the emulated probes submit (embedded from `fixtures/samples.jsonl`),
//! and their rendering into a submission body consistent with a probe's report id.

use serde::Deserialize;
use serde_json::{Map, Value};

const FIXTURE: &str = include_str!("../fixtures/samples.jsonl");

/// Why the embedded samples could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error("fixture line {line} is not a sample: {source}")]
    BadLine {
        line: usize,
        source: serde_json::Error,
    },
    #[error("fixture line {line}: the measurement is not an object with a test_name")]
    NotAMeasurement { line: usize },
    #[error("the fixture has no samples")]
    Empty,
    #[error("rendering a submission failed: {0}")]
    Render(#[from] serde_json::Error),
}

#[derive(Deserialize)]
struct Line {
    idx: u64,
    test_name: String,
    measurement: Value,
}

/// One real measurement, ready to be re-addressed to a probe's report.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Line number (`idx`) in the reference samples file.
    pub idx: u64,
    /// `test_name` with underscores, e.g. `web_connectivity`.
    pub test_name: String,
    measurement: Map<String, Value>,
}

/// Who a submission claims to come from, and when.
#[derive(Debug, Clone, Copy)]
pub struct Stamp<'a> {
    pub report_id: &'a str,
    pub probe_cc: &'a str,
    pub probe_asn: &'a str,
    /// `YYYY-MM-DD HH:MM:SS` (UTC), when the report was opened.
    pub test_start_time: &'a str,
    /// `YYYY-MM-DD HH:MM:SS` (UTC), now.
    pub measurement_start_time: &'a str,
}

impl Sample {
    /// The measurement as a probe submits it: `{"format":"json","content":{...}}`, with the
    /// report id, network and times of `stamp` written into the content.
    pub fn render(&self, stamp: &Stamp<'_>) -> Result<Vec<u8>, SampleError> {
        let mut content = self.measurement.clone();
        for (key, value) in [
            ("report_id", stamp.report_id),
            ("probe_cc", stamp.probe_cc),
            ("probe_asn", stamp.probe_asn),
            ("test_start_time", stamp.test_start_time),
            ("measurement_start_time", stamp.measurement_start_time),
        ] {
            content.insert(key.to_owned(), Value::String(value.to_owned()));
        }
        content.insert(
            "test_name".to_owned(),
            Value::String(self.test_name.clone()),
        );
        let envelope = Submission {
            format: "json",
            content: &content,
        };
        Ok(serde_json::to_vec(&envelope)?)
    }

    /// Whether a probe submits several of these per report (one per URL), as for
    /// web_connectivity; other tests submit one measurement per report.
    pub fn has_many_per_report(&self) -> bool {
        self.test_name == "web_connectivity"
    }
}

#[derive(serde::Serialize)]
struct Submission<'a> {
    format: &'static str,
    content: &'a Map<String, Value>,
}

/// The embedded samples, in file order.
pub fn embedded() -> Result<Vec<Sample>, SampleError> {
    parse(FIXTURE)
}

fn parse(text: &str) -> Result<Vec<Sample>, SampleError> {
    let mut out = Vec::new();
    for (i, raw) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let line: Line = serde_json::from_str(raw).map_err(|source| SampleError::BadLine {
            line: i + 1,
            source,
        })?;
        let Value::Object(measurement) = line.measurement else {
            return Err(SampleError::NotAMeasurement { line: i + 1 });
        };
        if line.test_name.is_empty() {
            return Err(SampleError::NotAMeasurement { line: i + 1 });
        }
        out.push(Sample {
            idx: line.idx,
            test_name: line.test_name,
            measurement,
        });
    }
    if out.is_empty() {
        return Err(SampleError::Empty);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp() -> Stamp<'static> {
        Stamp {
            report_id: "20240101T000000Z_webconnectivity_IT_30722_n1_abcdefghijklmnop",
            probe_cc: "IT",
            probe_asn: "AS30722",
            test_start_time: "2024-01-01 00:00:00",
            measurement_start_time: "2024-01-01 00:00:05",
        }
    }

    #[test]
    fn the_embedded_fixture_has_about_twenty_varied_samples_with_web_connectivity() {
        let samples = embedded().unwrap();
        assert!(samples.len() >= 20, "{}", samples.len());
        let wc = samples.iter().filter(|s| s.has_many_per_report()).count();
        assert!(wc >= 5, "{wc}");
        let kinds: std::collections::BTreeSet<_> =
            samples.iter().map(|s| s.test_name.as_str()).collect();
        assert!(kinds.len() >= 15, "{kinds:?}");
    }

    #[test]
    fn a_rendered_submission_is_an_envelope_whose_content_agrees_with_the_stamp() {
        for sample in embedded().unwrap() {
            let body = sample.render(&stamp()).unwrap();
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["format"], "json");
            let c = &v["content"];
            assert_eq!(c["report_id"], stamp().report_id);
            assert_eq!(c["probe_cc"], "IT");
            assert_eq!(c["probe_asn"], "AS30722");
            assert_eq!(c["test_name"], sample.test_name.as_str());
            assert_eq!(c["measurement_start_time"], "2024-01-01 00:00:05");
            assert!(
                c.get("test_keys").is_some(),
                "sample {} lost its test_keys",
                sample.idx
            );
        }
    }

    #[test]
    fn bad_fixture_lines_are_reported_with_their_line_number() {
        assert!(matches!(parse("\n"), Err(SampleError::Empty)));
        assert!(matches!(
            parse("{}\nnope"),
            Err(SampleError::BadLine { line: 1, .. })
        ));
        assert!(matches!(
            parse(r#"{"idx":1,"test_name":"x","measurement":[1]}"#),
            Err(SampleError::NotAMeasurement { line: 1 })
        ));
    }
}
