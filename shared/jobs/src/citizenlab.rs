//! `JobCitizenlab`: loads the Citizen Lab test lists into `citizenlab` via `citizenlab_flip` and
//! `EXCHANGE TABLES`.
//!
//! Source: a `.tar.gz` archive of the citizenlab/test-lists repository (GitHub's
//! `archive/refs/heads/master.tar.gz`), read in memory. Every `lists/<name>.csv` directly under
//! the archive's top directory (or at its root) is a list: `global.csv` is cc `ZZ`, `<xx>.csv`
//! with two ASCII letters is cc `xx` (lowercase); other files (the `00-LEGEND-*` files,
//! regional lists such as `cis.csv`) are skipped.
//!
//! Validation is strict, as upstream intends ("meant to be strict"), and stricter: one malformed
//! list refuses the whole update (upstream skipped bad rows). A list is malformed when it is not
//! UTF-8 CSV, lacks one of the columns `url, category_code, category_description, date_added,
//! source, notes`, has a row with a different number of fields, a URL that upstream's
//! `VALID_URL` rejects (or with `\r \n \t \`), or a category code that is not 1–10 uppercase
//! ASCII letters. The total row count must lie within the configured bounds.
//! Identical `(domain, url, cc, category_code)` rows are loaded once.

use crate::job::{JobEnv, JobError, Loaded};
use crate::swap::{self, TablePair};
use ooni_domain::url_host;
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeSet;
use std::io::Read;

pub const JOB: &str = "JobCitizenlab";

pub const PAIR: TablePair = TablePair {
    live: "citizenlab",
    tmp: "citizenlab_flip",
    columns: "(domain, url, cc, category_code)",
};

/// The columns every list must have.
pub const LIST_COLUMNS: [&str; 6] = [
    "url",
    "category_code",
    "category_description",
    "date_added",
    "source",
    "notes",
];

/// Largest single list file accepted (the biggest real one is well under 1 MB).
const MAX_LIST_BYTES: u64 = 32 * 1024 * 1024;

/// One `citizenlab` row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct CitizenlabRow {
    pub domain: String,
    pub url: String,
    pub cc: String,
    pub category_code: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CitizenlabError {
    #[error("the test-lists archive is not a readable .tar(.gz): {0}")]
    Archive(String),
    #[error("the test-lists archive holds no lists/*.csv file")]
    NoLists,
    #[error("{file}: {message}")]
    File { file: String, message: String },
    #[error("{file}: line {line}: {message}")]
    Row {
        file: String,
        line: u64,
        message: String,
    },
    #[error("{rows} test-list rows is outside the accepted range {min}..{max}")]
    RowCount { rows: usize, min: usize, max: usize },
}

/// The cc of a list file name (`global.csv` → `ZZ`, `it.csv` → `it`), or `None` for files
/// that are not country or global lists.
pub fn list_cc(file_name: &str) -> Option<String> {
    let stem = file_name.strip_suffix(".csv")?;
    if stem == "global" {
        return Some("ZZ".into());
    }
    (stem.len() == 2 && stem.bytes().all(|b| b.is_ascii_alphabetic()))
        .then(|| stem.to_ascii_lowercase())
}

/// The list file name of an archive path: `<top>/lists/<name>.csv` or `lists/<name>.csv`.
fn list_file(path: &str) -> Option<&str> {
    let parts: Vec<&str> = path.trim_start_matches("./").split('/').collect();
    match parts.as_slice() {
        ["lists", name] | [_, "lists", name] if name.ends_with(".csv") => Some(name),
        _ => None,
    }
}

/// Upstream's `_extract_domain`: the host of `url` when it matches `VALID_URL` (optional
/// `http(s)://`, a hostname or dotted IPv4, optional port, then nothing, `/`, or `/` or `?`
/// followed by non-space characters), else `None`.
pub fn extract_domain(url: &str) -> Option<&str> {
    let (host, tail) = url_host::split_host(url, false, &[':', '/', '?'])?;
    let ok_tail = tail.is_empty()
        || tail == "/"
        || ((tail.starts_with('/') || tail.starts_with('?'))
            && tail.len() > 1
            && !tail[1..].contains(char::is_whitespace));
    ok_tail.then_some(host)
}

fn valid_category(c: &str) -> bool {
    (1..=10).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_uppercase())
}

/// Parses and validates one list file.
pub fn parse_list(
    file: &str,
    cc: &str,
    data: &[u8],
    out: &mut BTreeSet<CitizenlabRow>,
) -> Result<usize, CitizenlabError> {
    let text = std::str::from_utf8(data).map_err(|e| CitizenlabError::File {
        file: file.into(),
        message: format!("not UTF-8: {e}"),
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| CitizenlabError::File {
            file: file.into(),
            message: e.to_string(),
        })?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    for c in LIST_COLUMNS {
        if col(c).is_none() {
            return Err(CitizenlabError::File {
                file: file.into(),
                message: format!("missing column {c}"),
            });
        }
    }
    let (url_i, cat_i) = (col("url").unwrap_or(0), col("category_code").unwrap_or(1));
    let mut n = 0;
    for record in reader.records() {
        let record = record.map_err(|e| CitizenlabError::Row {
            file: file.into(),
            line: e.position().map_or(0, |p| p.line()),
            message: e.to_string(),
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let row_err = |message: String| CitizenlabError::Row {
            file: file.into(),
            line,
            message,
        };
        let url = record.get(url_i).unwrap_or("");
        let category = record.get(cat_i).unwrap_or("");
        let domain = extract_domain(url).ok_or_else(|| row_err(format!("invalid URL {url:?}")))?;
        if !valid_category(category) {
            return Err(row_err(format!("invalid category code {category:?}")));
        }
        out.insert(CitizenlabRow {
            domain: domain.into(),
            url: url.into(),
            cc: cc.into(),
            category_code: category.into(),
        });
        n += 1;
    }
    Ok(n)
}

/// Every row of every list in a test-lists `.tar.gz` (or already inflated `.tar`) archive.
pub fn parse_archive(data: &[u8]) -> Result<Vec<CitizenlabRow>, CitizenlabError> {
    if data.starts_with(b"PK\x03\x04") {
        return Err(CitizenlabError::Archive(
            "got a zip archive; configure the .tar.gz archive URL".into(),
        ));
    }
    // The fetcher inflates gzip transfers already; a still-compressed archive is read too.
    let reader: Box<dyn Read + '_> = if crate::fetch::is_gzip(data) {
        Box::new(flate2::read::GzDecoder::new(data))
    } else {
        Box::new(data)
    };
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries()
        .map_err(|e| CitizenlabError::Archive(e.to_string()))?;
    let mut rows = BTreeSet::new();
    let mut lists = 0;
    for entry in entries {
        let mut entry = entry.map_err(|e| CitizenlabError::Archive(e.to_string()))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry
            .path()
            .map_err(|e| CitizenlabError::Archive(e.to_string()))?
            .to_string_lossy()
            .into_owned();
        let Some(name) = list_file(&path) else {
            continue;
        };
        let Some(cc) = list_cc(name) else {
            tracing::debug!(file = %path, "not a country or global list; skipped");
            continue;
        };
        let mut buf = Vec::new();
        (&mut entry)
            .take(MAX_LIST_BYTES + 1)
            .read_to_end(&mut buf)
            .map_err(|e| CitizenlabError::Archive(format!("{path}: {e}")))?;
        if buf.len() as u64 > MAX_LIST_BYTES {
            return Err(CitizenlabError::File {
                file: path,
                message: "larger than 32 MiB".into(),
            });
        }
        parse_list(&path, &cc, &buf, &mut rows)?;
        lists += 1;
    }
    if lists == 0 {
        return Err(CitizenlabError::NoLists);
    }
    Ok(rows.into_iter().collect())
}

/// Runs the job.
pub async fn run(env: &JobEnv) -> Result<Loaded, JobError> {
    let s = &env.settings;
    let archive = env.fetch(&s.citizenlab_archive_url).await?;
    let rows = tokio::task::spawn_blocking(move || parse_archive(&archive))
        .await
        .map_err(|e| anyhow::anyhow!("test-list parser panicked: {e}"))??;
    if rows.len() < s.citizenlab_min_rows || rows.len() > s.citizenlab_max_rows {
        return Err(CitizenlabError::RowCount {
            rows: rows.len(),
            min: s.citizenlab_min_rows,
            max: s.citizenlab_max_rows,
        }
        .into());
    }
    env.validated(JOB).await?;
    let (loaded, outcome) =
        swap::replace(&env.ch, PAIR, &rows, JOB, env.checkpoints.as_ref()).await?;
    let countries: BTreeSet<&str> = rows.iter().map(|r| r.cc.as_str()).collect();
    Ok(Loaded {
        outcome,
        rows: loaded,
        details: json!({ "lists": countries.len() }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_names_map_to_lowercase_countries_and_global_to_zz() {
        assert_eq!(list_cc("global.csv").as_deref(), Some("ZZ"));
        assert_eq!(list_cc("IT.csv").as_deref(), Some("it"));
        assert_eq!(list_cc("cis.csv"), None);
        assert_eq!(list_cc("00-LEGEND-category_codes.csv"), None);
        assert_eq!(list_cc("it.txt"), None);
    }

    #[test]
    fn only_files_in_the_top_level_lists_directory_are_lists() {
        assert_eq!(list_file("test-lists-master/lists/it.csv"), Some("it.csv"));
        assert_eq!(list_file("lists/global.csv"), Some("global.csv"));
        assert_eq!(list_file("test-lists-master/scripts/lists/it.csv"), None);
        assert_eq!(list_file("test-lists-master/lists/README.md"), None);
    }

    #[test]
    fn domains_are_extracted_as_upstream_valid_url_does() {
        assert_eq!(
            extract_domain("https://www.example.com/a?b=1"),
            Some("www.example.com")
        );
        assert_eq!(extract_domain("http://EXAMPLE.org"), Some("EXAMPLE.org"));
        assert_eq!(extract_domain("http://1.2.3.4:8080/x"), Some("1.2.3.4"));
        assert_eq!(extract_domain("example.com/"), Some("example.com"));
        assert_eq!(
            extract_domain("https://xn--80ak6aa92e.com/"),
            Some("xn--80ak6aa92e.com")
        );
        assert_eq!(
            extract_domain("https://a.b.c.d.museum/"),
            Some("a.b.c.d.museum")
        );
    }

    #[test]
    fn malformed_urls_are_rejected() {
        for bad in [
            "https://localhost/",
            "https://-bad.com/",
            "https://exa mple.com/",
            "https://example.com/a b",
            "https://example.com:/x",
            "https://example.com\\x",
            "ftp://example.com/",
            "",
            "https://example.c/",
        ] {
            assert_eq!(extract_domain(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_list_with_a_bad_row_or_missing_column_is_refused_whole() {
        let mut rows = BTreeSet::new();
        let good = "url,category_code,category_description,date_added,source,notes\nhttps://a.com/,NEWS,News,2020-01-01,,\n";
        assert_eq!(
            parse_list("lists/it.csv", "it", good.as_bytes(), &mut rows).unwrap(),
            1
        );
        let bad_cat = good.replace(",NEWS,", ",news,");
        assert!(matches!(
            parse_list("lists/it.csv", "it", bad_cat.as_bytes(), &mut rows),
            Err(CitizenlabError::Row { line: 2, .. })
        ));
        let no_notes = "url,category_code,category_description,date_added,source\nhttps://a.com/,NEWS,News,2020-01-01,\n";
        let err = parse_list("lists/it.csv", "it", no_notes.as_bytes(), &mut rows).unwrap_err();
        assert!(err.to_string().contains("missing column notes"), "{err}");
        let ragged = format!("{good}https://b.com/,NEWS\n");
        assert!(parse_list("lists/it.csv", "it", ragged.as_bytes(), &mut rows).is_err());
    }
}
