//! `JobAsnmeta`: loads ASN metadata into `asnmeta` via `asnmeta_tmp` and `EXCHANGE TABLES`.
//!
//! Source format (upstream's `all_as_org_map.json` from ooni/historical-geoip, published on
//! archive.org): one JSON object mapping each ASN (decimal string) to its history, a list of
//! `[org_name, cc, changed (YYYYMMDD), aut_name, source]` string arrays:
//!
//! ```json
//! {"1": [["Level 3 Communications, Inc.", "US", "20040604", "LVLT-1", "ARIN"],
//!        ["Level 3 Parent, LLC", "US", "20180220", "LVLT-1", "ARIN"]]}
//! ```
//!
//! Each history entry is one row. The whole update is refused when the document is not such an
//! object, an ASN is not a `u32`, an entry does not have five strings, a date is not a valid
//! `YYYYMMDD`, or the row count is outside the configured bounds (upstream: 100 000..1 000 000).

use crate::job::{JobEnv, JobError, Loaded};
use crate::swap::{self, TablePair};
use chrono::NaiveDate;
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;

pub const JOB: &str = "JobAsnmeta";

pub const PAIR: TablePair = TablePair {
    live: "asnmeta",
    tmp: "asnmeta_tmp",
    columns: "(asn, org_name, cc, changed, aut_name, source)",
};

/// One `asnmeta` row (`changed` as `YYYY-MM-DD`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AsnmetaRow {
    pub asn: u32,
    pub org_name: String,
    pub cc: String,
    pub changed: String,
    pub aut_name: String,
    pub source: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AsnmetaError {
    #[error("the ASN metadata is not a JSON object of ASN → [[org_name, cc, YYYYMMDD, aut_name, source], …]: {0}")]
    Format(String),
    #[error("ASN key {0:?} is not a 32-bit unsigned integer")]
    Asn(String),
    #[error("ASN {asn}: date {date:?} is not a valid YYYYMMDD")]
    Date { asn: u32, date: String },
    #[error("{rows} ASN metadata rows is outside the accepted range {min}..{max}")]
    RowCount { rows: usize, min: usize, max: usize },
}

/// Parses and validates the document.
pub fn parse(data: &[u8]) -> Result<Vec<AsnmetaRow>, AsnmetaError> {
    type History = Vec<(String, String, String, String, String)>;
    let doc: BTreeMap<String, History> =
        serde_json::from_slice(data).map_err(|e| AsnmetaError::Format(e.to_string()))?;
    let mut rows = Vec::new();
    for (key, history) in doc {
        let asn: u32 = key
            .trim()
            .parse()
            .map_err(|_| AsnmetaError::Asn(key.clone()))?;
        for (org_name, cc, changed, aut_name, source) in history {
            let date = NaiveDate::parse_from_str(&changed, "%Y%m%d")
                .ok()
                .filter(|_| changed.len() == 8)
                .ok_or_else(|| AsnmetaError::Date {
                    asn,
                    date: changed.clone(),
                })?;
            rows.push(AsnmetaRow {
                asn,
                org_name,
                cc,
                changed: date.format("%Y-%m-%d").to_string(),
                aut_name,
                source,
            });
        }
    }
    Ok(rows)
}

/// Runs the job.
pub async fn run(env: &JobEnv) -> Result<Loaded, JobError> {
    let s = &env.settings;
    let data = env.fetch(&s.asnmeta_url).await?;
    let rows = tokio::task::spawn_blocking(move || parse(&data))
        .await
        .map_err(|e| anyhow::anyhow!("ASN metadata parser panicked: {e}"))??;
    if rows.len() < s.asnmeta_min_rows || rows.len() > s.asnmeta_max_rows {
        return Err(AsnmetaError::RowCount {
            rows: rows.len(),
            min: s.asnmeta_min_rows,
            max: s.asnmeta_max_rows,
        }
        .into());
    }
    env.validated(JOB).await?;
    let (loaded, outcome) =
        swap::replace(&env.ch, PAIR, &rows, JOB, env.checkpoints.as_ref()).await?;
    let asns = rows
        .iter()
        .map(|r| r.asn)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    Ok(Loaded {
        outcome,
        rows: loaded,
        details: json!({ "asns": asns }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_history_entry_becomes_a_row_with_an_iso_date() {
        let doc = br#"{"1": [["Level 3 Communications, Inc.", "US", "20040604", "LVLT-1", "ARIN"],
                             ["Level 3 Parent, LLC", "US", "20180220", "LVLT-1", "ARIN"]],
                       "3269": [["Telecom Italia", "IT", "20200101", "ASN-IBSNAZ", "RIPE"]]}"#;
        let rows = parse(doc).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].changed, "2004-06-04");
        assert_eq!(rows[1].org_name, "Level 3 Parent, LLC");
        assert_eq!(rows[2].asn, 3269);
    }

    #[test]
    fn bad_asns_dates_and_shapes_refuse_the_document() {
        assert_eq!(
            parse(br#"{"AS1": []}"#),
            Err(AsnmetaError::Asn("AS1".into()))
        );
        assert_eq!(
            parse(br#"{"99999999999": []}"#),
            Err(AsnmetaError::Asn("99999999999".into()))
        );
        assert!(matches!(
            parse(br#"{"1": [["a","US","20041304","b","c"]]}"#),
            Err(AsnmetaError::Date { asn: 1, .. })
        ));
        assert!(matches!(
            parse(br#"{"1": [["a","US","2004-06-04","b","c"]]}"#),
            Err(AsnmetaError::Date { .. })
        ));
        assert!(matches!(
            parse(br#"{"1": [["a","US","20040604","b"]]}"#),
            Err(AsnmetaError::Format(_))
        ));
        assert!(matches!(parse(br#"[1,2]"#), Err(AsnmetaError::Format(_))));
    }
}
