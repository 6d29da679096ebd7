//! One JSONL line in, one JSON line out: the helper behind the scoring CLI.

use crate::fingerprints::Fingerprints;
use crate::row::{process, Outcome};
use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(default)]
    measurement_uid: Option<String>,
    #[serde(borrow, default)]
    measurement: Option<&'a RawValue>,
}

fn discarded(uid: Option<&str>, reason: &str) -> String {
    serde_json::json!({ "measurement_uid": uid, "discarded": reason }).to_string()
}

/// Score one `{"measurement_uid": ..., "measurement": {...}}` line (extra keys ignored).
///
/// Returns the fastpath row as JSON (table column names, `scores` as the column's
/// string), or `{"measurement_uid": ..., "discarded": "<reason>"}`.
pub fn score_jsonl_line(line: &str, fps: &Fingerprints) -> String {
    let Ok(parsed) = serde_json::from_str::<Line>(line) else {
        return discarded(None, "invalid_line");
    };
    let Some(uid) = parsed.measurement_uid else {
        return discarded(None, "missing_measurement_uid");
    };
    let Some(msm) = parsed.measurement else {
        return discarded(Some(&uid), "missing_measurement");
    };
    match process(msm.get().as_bytes(), &uid, fps) {
        Outcome::Row { row, .. } => {
            serde_json::to_string(&row).unwrap_or_else(|_| discarded(Some(&uid), "unserializable_row"))
        }
        Outcome::Discard(reason) => discarded(Some(&uid), reason.as_str()),
    }
}
