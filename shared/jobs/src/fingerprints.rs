//! `JobFingerprints`: loads the DNS and HTTP blocking fingerprints (ooni/blocking-fingerprints
//! CSVs) into `fingerprints_{dns,http}` via their `_tmp` twins and `EXCHANGE TABLES`.
//!
//! Validation (the whole update is refused on any failure, the live tables stay as they are):
//! the header has every column of the table; each file has more than 100 and fewer than 50 000
//! rows; `name` is non-empty and unique; `scope` and `pattern_type` are values of the table's
//! enums; `location_found` and `pattern` are non-empty; `confidence_no_fp` is 0..=255.
//! Both files are validated and both staging tables filled before either live table is swapped.

use crate::job::{JobEnv, JobError, Loaded};
use crate::metrics::Outcome;
use crate::swap::{self, TablePair};
use serde_json::json;

pub const JOB: &str = "JobFingerprints";

/// The CSV columns, in the table's order.
pub const COLUMNS: [&str; 11] = [
    "name",
    "scope",
    "other_names",
    "location_found",
    "pattern_type",
    "pattern",
    "confidence_no_fp",
    "expected_countries",
    "source",
    "exp_url",
    "notes",
];

const MIN_ROWS: usize = 100;
const MAX_ROWS: usize = 50_000;
const PATTERN_TYPES: [&str; 4] = ["full", "prefix", "contains", "regexp"];
const DNS_SCOPES: [&str; 6] = ["nat", "isp", "prod", "inst", "vbw", "fp"];
const HTTP_SCOPES: [&str; 8] = ["nat", "isp", "prod", "inst", "vbw", "fp", "injb", "prov"];

/// Which fingerprint file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dns,
    Http,
}

impl Kind {
    pub fn pair(self) -> TablePair {
        let columns = "(name, scope, other_names, location_found, pattern_type, pattern, confidence_no_fp, expected_countries, source, exp_url, notes)";
        match self {
            Kind::Dns => TablePair {
                live: "fingerprints_dns",
                tmp: "fingerprints_dns_tmp",
                columns,
            },
            Kind::Http => TablePair {
                live: "fingerprints_http",
                tmp: "fingerprints_http_tmp",
                columns,
            },
        }
    }

    fn scopes(self) -> &'static [&'static str] {
        match self {
            Kind::Dns => &DNS_SCOPES,
            Kind::Http => &HTTP_SCOPES,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Dns => "dns",
            Kind::Http => "http",
        }
    }
}

/// One fingerprint row: the scorer's own row type, so what the job loads is what it reads.
pub type Fingerprint = ooni_scoring::FingerprintRow;

/// Why a fingerprint file was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FingerprintError {
    #[error("{file}: missing column {column}")]
    MissingColumn {
        file: &'static str,
        column: &'static str,
    },
    #[error("{file}: line {line}: {message}")]
    Row {
        file: &'static str,
        line: u64,
        message: String,
    },
    #[error(
        "{file}: {rows} rows is outside the accepted range {MIN_ROWS}..{MAX_ROWS} (exclusive)"
    )]
    RowCount { file: &'static str, rows: usize },
    #[error("{file}: not a CSV file: {message}")]
    Csv { file: &'static str, message: String },
}

/// Parses and validates one fingerprint CSV.
pub fn parse(kind: Kind, data: &[u8]) -> Result<Vec<Fingerprint>, FingerprintError> {
    let file = kind.pair().live;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(data);
    let headers = reader
        .headers()
        .map_err(|e| FingerprintError::Csv {
            file,
            message: e.to_string(),
        })?
        .clone();
    let mut index = [0usize; 11];
    for (i, column) in COLUMNS.iter().enumerate() {
        index[i] = headers
            .iter()
            .position(|h| h.trim() == *column)
            .ok_or(FingerprintError::MissingColumn { file, column })?;
    }
    let mut out = Vec::new();
    let mut names = std::collections::HashSet::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            FingerprintError::Row {
                file,
                line,
                message: e.to_string(),
            }
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let row_err = |message: String| FingerprintError::Row {
            file,
            line,
            message,
        };
        let field = |i: usize| record.get(index[i]).unwrap_or("").to_owned();
        let fp = Fingerprint {
            name: field(0).trim().to_owned(),
            scope: field(1).trim().to_owned(),
            other_names: field(2),
            location_found: field(3).trim().to_owned(),
            pattern_type: field(4).trim().to_owned(),
            pattern: field(5),
            confidence_no_fp: field(6).trim().parse().map_err(|_| {
                row_err(format!(
                    "confidence_no_fp {:?} is not an integer 0..=255",
                    field(6)
                ))
            })?,
            expected_countries: field(7),
            source: field(8),
            exp_url: field(9),
            notes: field(10),
        };
        if fp.name.is_empty() {
            return Err(row_err("empty name".into()));
        }
        if !names.insert(fp.name.clone()) {
            return Err(row_err(format!("duplicate name {:?}", fp.name)));
        }
        if !kind.scopes().contains(&fp.scope.as_str()) {
            return Err(row_err(format!(
                "scope {:?} is not one of {:?}",
                fp.scope,
                kind.scopes()
            )));
        }
        if !PATTERN_TYPES.contains(&fp.pattern_type.as_str()) {
            return Err(row_err(format!(
                "pattern_type {:?} is not one of {PATTERN_TYPES:?}",
                fp.pattern_type
            )));
        }
        if fp.location_found.is_empty() {
            return Err(row_err("empty location_found".into()));
        }
        if fp.pattern.is_empty() {
            return Err(row_err("empty pattern".into()));
        }
        out.push(fp);
    }
    if out.len() <= MIN_ROWS || out.len() >= MAX_ROWS {
        return Err(FingerprintError::RowCount {
            file,
            rows: out.len(),
        });
    }
    Ok(out)
}

/// Runs the job.
pub async fn run(env: &JobEnv) -> Result<Loaded, JobError> {
    let s = &env.settings;
    let (dns, http) = tokio::try_join!(
        env.fetch(&s.fingerprints_dns_url),
        env.fetch(&s.fingerprints_http_url)
    )?;
    let dns = parse(Kind::Dns, &dns)?;
    let http = parse(Kind::Http, &http)?;
    env.validated(JOB).await?;
    let mut rows = 0;
    let mut changed = Vec::new();
    for (kind, data) in [(Kind::Dns, &dns), (Kind::Http, &http)] {
        let (loaded, differs) =
            swap::stage(&env.ch, kind.pair(), data, JOB, env.checkpoints.as_ref()).await?;
        rows += loaded;
        if differs {
            changed.push(kind);
        }
    }
    for kind in &changed {
        swap::exchange(&env.ch, kind.pair(), JOB, env.checkpoints.as_ref()).await?;
    }
    let outcome = if changed.is_empty() {
        Outcome::Unchanged
    } else {
        Outcome::Updated
    };
    Ok(Loaded {
        outcome,
        rows,
        details: json!({
            "dns_rows": dns.len(),
            "http_rows": http.len(),
            "swapped": changed.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv_with(rows: usize, tweak: impl Fn(usize) -> Option<String>) -> String {
        let mut s = COLUMNS.join(",") + "\n";
        for i in 0..rows {
            s += &tweak(i).unwrap_or_else(|| {
                format!("fp.{i},isp,,dns,full,10.0.0.{},5,XX,ooni,,\n", i % 250)
            });
        }
        s
    }

    #[test]
    fn a_valid_file_parses_into_typed_rows() {
        let rows = parse(Kind::Dns, csv_with(150, |_| None).as_bytes()).unwrap();
        assert_eq!(rows.len(), 150);
        assert_eq!(rows[3].name, "fp.3");
        assert_eq!(rows[3].confidence_no_fp, 5);
    }

    #[test]
    fn quoted_fields_with_commas_are_kept_whole() {
        let data = csv_with(150, |i| {
            (i == 0).then(|| "q,nat,,body,contains,\"a, b\",5,\"AE,SA\",ooni,,\n".into())
        });
        let rows = parse(Kind::Http, data.as_bytes()).unwrap();
        assert_eq!(rows[0].pattern, "a, b");
        assert_eq!(rows[0].expected_countries, "AE,SA");
    }

    #[test]
    fn too_few_or_too_many_rows_are_refused() {
        assert!(matches!(
            parse(Kind::Dns, csv_with(100, |_| None).as_bytes()),
            Err(FingerprintError::RowCount { rows: 100, .. })
        ));
        assert!(matches!(
            parse(Kind::Dns, csv_with(50_000, |_| None).as_bytes()),
            Err(FingerprintError::RowCount { .. })
        ));
    }

    #[test]
    fn unknown_enum_values_are_refused_per_table() {
        let injb = csv_with(150, |i| {
            (i == 7).then(|| "x,injb,,body,contains,p,5,,,,\n".into())
        });
        assert!(parse(Kind::Http, injb.as_bytes()).is_ok());
        let err = parse(Kind::Dns, injb.as_bytes()).unwrap_err();
        assert!(
            matches!(err, FingerprintError::Row { line: 9, .. }),
            "{err}"
        );
        let bad_type = csv_with(150, |i| {
            (i == 0).then(|| "x,isp,,dns,glob,p,5,,,,\n".into())
        });
        assert!(parse(Kind::Dns, bad_type.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("pattern_type"));
    }

    #[test]
    fn duplicate_names_bad_confidence_and_missing_columns_are_refused() {
        let dup = csv_with(150, |i| {
            (i == 5).then(|| "fp.1,isp,,dns,full,p,5,,,,\n".into())
        });
        assert!(parse(Kind::Dns, dup.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("duplicate name"));
        let conf = csv_with(150, |i| {
            (i == 5).then(|| "z,isp,,dns,full,p,999,,,,\n".into())
        });
        assert!(parse(Kind::Dns, conf.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("confidence_no_fp"));
        let no_pattern =
            csv_with(150, |_| None).replace("pattern_type,pattern,", "pattern_type,patern,");
        assert_eq!(
            parse(Kind::Dns, no_pattern.as_bytes()).unwrap_err(),
            FingerprintError::MissingColumn {
                file: "fingerprints_dns",
                column: "pattern"
            }
        );
    }

    #[test]
    fn a_row_with_too_few_fields_is_refused() {
        let short = csv_with(150, |i| (i == 2).then(|| "x,isp,,dns\n".into()));
        assert!(matches!(
            parse(Kind::Dns, short.as_bytes()),
            Err(FingerprintError::Row { .. })
        ));
    }

    #[test]
    fn the_upstream_production_files_are_accepted() {
        let dns = parse(
            Kind::Dns,
            include_bytes!("../tests/fixtures/fingerprints_dns.csv"),
        )
        .unwrap();
        let http = parse(
            Kind::Http,
            include_bytes!("../tests/fixtures/fingerprints_http.csv"),
        )
        .unwrap();
        assert_eq!((dns.len(), http.len()), (226, 1729));
    }
}
