//! Blocking fingerprints (ooni/blocking-fingerprints) and their matching.
//!
//! Semantics follow the upstream fastpath: DNS answers are compared for equality,
//! every `body` pattern is a plain substring whatever its `pattern_type`, `header.*`
//! patterns match `full` (equality) or `prefix`; header `contains`/`regexp` are
//! ignored. Fingerprints are walked in the order the ClickHouse EmbeddedRocksDB table
//! returns them (by byte length of `name`, then `name`), and all body patterns are
//! found in a single filtered pass over each body's escaped JSON text ([`crate::escaped`]),
//! or over its decoded bytes ([`crate::literals`]).

use crate::escaped::EscapedLiterals;
use crate::literals::Literals;
use std::collections::HashMap;
use thiserror::Error;

/// A fingerprint row as stored in `fingerprints_dns` / `fingerprints_http`.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct FingerprintRow {
    pub name: String,
    pub scope: String,
    pub other_names: String,
    pub location_found: String,
    pub pattern_type: String,
    pub pattern: String,
    pub confidence_no_fp: u8,
    pub expected_countries: String,
    pub source: String,
    pub exp_url: String,
    pub notes: String,
}

/// Which table a fingerprint comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FingerprintTable {
    Dns,
    Http,
}

impl FingerprintTable {
    fn as_str(self) -> &'static str {
        match self {
            FingerprintTable::Dns => "dns",
            FingerprintTable::Http => "http",
        }
    }
}

/// Why a fingerprint set could not be built.
#[derive(Debug, Error)]
pub enum FingerprintError {
    #[error("{table} fingerprint {name:?}: unknown scope {value:?}")]
    UnknownScope {
        table: &'static str,
        name: String,
        value: String,
    },
    #[error("{table} fingerprint {name:?}: unknown pattern_type {value:?}")]
    UnknownPatternType {
        table: &'static str,
        name: String,
        value: String,
    },
    #[error("{table} fingerprint CSV: {source}")]
    Csv {
        table: &'static str,
        #[source]
        source: csv::Error,
    },
}

/// Fingerprint scope (`Enum8` in the ClickHouse table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Nat,
    Isp,
    Prod,
    Inst,
    Vbw,
    Fp,
    Injb,
    Prov,
}

impl Scope {
    fn parse(s: &str, table: FingerprintTable) -> Option<Scope> {
        Some(match (s, table) {
            ("nat", _) => Scope::Nat,
            ("isp", _) => Scope::Isp,
            ("prod", _) => Scope::Prod,
            ("inst", _) => Scope::Inst,
            ("vbw", _) => Scope::Vbw,
            ("fp", _) => Scope::Fp,
            ("injb", FingerprintTable::Http) => Scope::Injb,
            ("prov", FingerprintTable::Http) => Scope::Prov,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Nat => "nat",
            Scope::Isp => "isp",
            Scope::Prod => "prod",
            Scope::Inst => "inst",
            Scope::Vbw => "vbw",
            Scope::Fp => "fp",
            Scope::Injb => "injb",
            Scope::Prov => "prov",
        }
    }

    /// The `blocking_*` score key a confirmed match sets.
    pub(crate) fn locality_key(self) -> &'static str {
        match self {
            Scope::Inst => "blocking_local",
            Scope::Isp => "blocking_isp",
            Scope::Nat => "blocking_country",
            _ => "blocking_general",
        }
    }
}

/// Fingerprint pattern type (`Enum8` in the ClickHouse table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternType {
    Full,
    Prefix,
    Contains,
    Regexp,
}

impl PatternType {
    fn parse(s: &str) -> Option<PatternType> {
        Some(match s {
            "full" => PatternType::Full,
            "prefix" => PatternType::Prefix,
            "contains" => PatternType::Contains,
            "regexp" => PatternType::Regexp,
            _ => return None,
        })
    }
}

/// A validated fingerprint.
#[derive(Debug, Clone)]
pub struct Fingerprint {
    pub name: String,
    pub scope: Scope,
    pub location_found: String,
    pub pattern_type: PatternType,
    pub pattern: String,
    pub confidence_no_fp: u8,
    /// Upper-cased, sorted, without "" and "ZZ".
    pub expected_countries: Vec<String>,
    /// `minifp(fp)` serialized like ujson, ready to splice into the scores.
    pub(crate) minified: String,
}

impl Fingerprint {
    fn from_row(row: FingerprintRow, table: FingerprintTable) -> Result<Self, FingerprintError> {
        let scope = Scope::parse(&row.scope, table).ok_or_else(|| FingerprintError::UnknownScope {
            table: table.as_str(),
            name: row.name.clone(),
            value: row.scope.clone(),
        })?;
        let pattern_type =
            PatternType::parse(&row.pattern_type).ok_or_else(|| FingerprintError::UnknownPatternType {
                table: table.as_str(),
                name: row.name.clone(),
                value: row.pattern_type.clone(),
            })?;
        let expected_countries = extract_expected_countries(&row.expected_countries);
        let mut minified = String::with_capacity(128);
        minified.push_str("{\"name\":");
        crate::pyfmt::write_ujson_str(&mut minified, &row.name);
        minified.push_str(",\"scope\":");
        crate::pyfmt::write_ujson_str(&mut minified, scope.as_str());
        minified.push_str(",\"location_found\":");
        crate::pyfmt::write_ujson_str(&mut minified, &row.location_found);
        minified.push_str(",\"confidence_no_fp\":");
        minified.push_str(&row.confidence_no_fp.to_string());
        minified.push_str(",\"expected_countries\":[");
        for (i, cc) in expected_countries.iter().enumerate() {
            if i > 0 {
                minified.push(',');
            }
            crate::pyfmt::write_ujson_str(&mut minified, cc);
        }
        minified.push_str("]}");
        Ok(Fingerprint {
            name: row.name,
            scope,
            location_found: row.location_found,
            pattern_type,
            pattern: row.pattern,
            confidence_no_fp: row.confidence_no_fp,
            expected_countries,
            minified,
        })
    }

    /// Upstream `is_confirmed`: the probe country is expected, or the scope is isp/nat.
    pub fn is_confirmed(&self, probe_cc: &str) -> bool {
        (probe_cc != "ZZ" && self.expected_countries.iter().any(|c| c == probe_cc))
            || matches!(self.scope, Scope::Isp | Scope::Nat)
    }
}

/// Upstream `extract_expected_countries`.
fn extract_expected_countries(ec: &str) -> Vec<String> {
    let mut v: Vec<String> = ec
        .trim()
        .split(',')
        .map(|c| c.to_uppercase())
        .filter(|c| !c.is_empty() && c != "ZZ")
        .collect();
    v.sort();
    v.dedup();
    v
}

/// A header fingerprint that can match (`full` or `prefix`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeaderFp {
    pub(crate) fp: u32,
    pub(crate) prefix: bool,
}

/// A prepared fingerprint set.
#[derive(Debug, Clone, Default)]
pub struct Fingerprints {
    dns: Vec<Fingerprint>,
    http: Vec<Fingerprint>,
    dns_by_pattern: HashMap<String, Vec<u32>>,
    /// The distinct non-empty body patterns, searched together in decoded bytes...
    body_literals: Option<Literals>,
    /// ... and in escaped JSON string text.
    body_escaped: Option<EscapedLiterals>,
    /// Body pattern id -> http fingerprint indices (ascending).
    body_pattern_fps: Vec<Vec<u32>>,
    /// Body fingerprints with an empty pattern (`str.find("") == 0` always matches).
    body_empty: Vec<u32>,
    /// Lower-cased header name -> its full/prefix fingerprints in table order.
    pub(crate) headers: Vec<(String, Vec<HeaderFp>)>,
}

fn table_order(rows: Vec<FingerprintRow>) -> Vec<FingerprintRow> {
    // EmbeddedRocksDB keeps one row per primary key (last write wins) and returns
    // rows in key order: ClickHouse serializes String keys length-prefixed.
    let mut by_name: HashMap<String, FingerprintRow> = HashMap::with_capacity(rows.len());
    for r in rows {
        by_name.insert(r.name.clone(), r);
    }
    let mut v: Vec<FingerprintRow> = by_name.into_values().collect();
    v.sort_by(|a, b| {
        a.name
            .len()
            .cmp(&b.name.len())
            .then_with(|| a.name.as_bytes().cmp(b.name.as_bytes()))
    });
    v
}

impl Fingerprints {
    /// An empty set: nothing ever matches.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Build from the two ooni/blocking-fingerprints CSV files.
    pub fn from_csv(dns_csv: &str, http_csv: &str) -> Result<Self, FingerprintError> {
        Self::from_rows(
            read_csv(dns_csv, FingerprintTable::Dns)?,
            read_csv(http_csv, FingerprintTable::Http)?,
        )
    }

    /// Build from table rows (e.g. read from ClickHouse).
    pub fn from_rows(dns: Vec<FingerprintRow>, http: Vec<FingerprintRow>) -> Result<Self, FingerprintError> {
        let dns = table_order(dns)
            .into_iter()
            .map(|r| Fingerprint::from_row(r, FingerprintTable::Dns))
            .collect::<Result<Vec<_>, _>>()?;
        let http = table_order(http)
            .into_iter()
            .map(|r| Fingerprint::from_row(r, FingerprintTable::Http))
            .collect::<Result<Vec<_>, _>>()?;

        let mut dns_by_pattern: HashMap<String, Vec<u32>> = HashMap::new();
        for (i, fp) in dns.iter().enumerate() {
            dns_by_pattern.entry(fp.pattern.clone()).or_default().push(i as u32);
        }

        let mut pattern_ids: HashMap<&str, usize> = HashMap::new();
        let mut patterns: Vec<&str> = Vec::new();
        let mut body_pattern_fps: Vec<Vec<u32>> = Vec::new();
        let mut body_empty = Vec::new();
        let mut headers: Vec<(String, Vec<HeaderFp>)> = Vec::new();
        for (i, fp) in http.iter().enumerate() {
            let i = i as u32;
            if fp.location_found == "body" {
                if fp.pattern.is_empty() {
                    body_empty.push(i);
                    continue;
                }
                let id = *pattern_ids.entry(fp.pattern.as_str()).or_insert_with(|| {
                    patterns.push(fp.pattern.as_str());
                    body_pattern_fps.push(Vec::new());
                    patterns.len() - 1
                });
                body_pattern_fps[id].push(i);
            } else if let Some(hname) = fp.location_found.strip_prefix("header.") {
                let prefix = match fp.pattern_type {
                    PatternType::Full => false,
                    PatternType::Prefix => true,
                    PatternType::Contains | PatternType::Regexp => continue,
                };
                let entry = HeaderFp { fp: i, prefix };
                match headers.iter_mut().find(|(n, _)| n == hname) {
                    Some((_, v)) => v.push(entry),
                    None => headers.push((hname.to_owned(), vec![entry])),
                }
            }
        }
        let body_literals =
            (!patterns.is_empty()).then(|| Literals::new(patterns.iter().map(|p| p.as_bytes().into()).collect()));
        let body_escaped = (!patterns.is_empty()).then(|| EscapedLiterals::new(&patterns));
        Ok(Fingerprints {
            dns,
            http,
            dns_by_pattern,
            body_literals,
            body_escaped,
            body_pattern_fps,
            body_empty,
            headers,
        })
    }

    pub fn dns(&self) -> &[Fingerprint] {
        &self.dns
    }

    pub fn http(&self) -> &[Fingerprint] {
        &self.http
    }

    pub(crate) fn http_fp(&self, i: u32) -> Option<&Fingerprint> {
        self.http.get(i as usize)
    }

    /// DNS fingerprints whose pattern equals `addr`, in table order.
    pub(crate) fn dns_matches(&self, addr: &str) -> impl Iterator<Item = &Fingerprint> {
        self.dns_by_pattern
            .get(addr)
            .into_iter()
            .flatten()
            .filter_map(|&i| self.dns.get(i as usize))
    }

    /// Body fingerprints found in `body` (decoded bytes), in table order, with one pass over it.
    pub(crate) fn body_matches(&self, body: &[u8], out: &mut Vec<u32>) {
        let mut ids = Vec::new();
        if let Some(lits) = &self.body_literals {
            lits.find_all(body, |_| true, |id| ids.push(id));
        }
        self.push_body_fps(&ids, out);
    }

    /// Body fingerprints found in a body given as the inside of its JSON string literal, in
    /// table order. The escaped text is searched as it is, unless it encodes pattern characters
    /// in a way the search does not follow: then it is decoded first.
    pub(crate) fn body_matches_escaped(&self, inner: &str, out: &mut Vec<u32>) {
        let mut ids = Vec::new();
        if self.body_escaped.as_ref().is_none_or(|e| e.find_all(inner, &mut ids)) {
            self.push_body_fps(&ids, out);
            return;
        }
        // decode into a per-thread scratch buffer: bodies can be large
        BODY_SCRATCH.with(|cell| {
            let mut buf = cell.borrow_mut();
            buf.clear();
            crate::json::unescape_into(inner, &mut buf);
            self.body_matches(&buf, out);
            if buf.capacity() > MAX_SCRATCH {
                *buf = Vec::new();
            }
        });
    }

    /// Appends the fingerprints of the body patterns `ids` (and of the empty patterns).
    fn push_body_fps(&self, ids: &[u32], out: &mut Vec<u32>) {
        let start = out.len();
        out.extend_from_slice(&self.body_empty);
        for &id in ids {
            if let Some(fps) = self.body_pattern_fps.get(id as usize) {
                out.extend_from_slice(fps);
            }
        }
        out[start..].sort_unstable();
    }
}

thread_local! {
    static BODY_SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Scratch buffers above this size are released after use.
const MAX_SCRATCH: usize = 16 << 20;

fn read_csv(text: &str, table: FingerprintTable) -> Result<Vec<FingerprintRow>, FingerprintError> {
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).from_reader(text.as_bytes());
    rdr.deserialize::<FingerprintRow>()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| FingerprintError::Csv {
            table: table.as_str(),
            source,
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn row(name: &str, scope: &str, loc: &str, ptype: &str, pattern: &str, cc: &str) -> FingerprintRow {
        FingerprintRow {
            name: name.into(),
            scope: scope.into(),
            location_found: loc.into(),
            pattern_type: ptype.into(),
            pattern: pattern.into(),
            confidence_no_fp: 5,
            expected_countries: cc.into(),
            ..Default::default()
        }
    }

    #[test]
    fn unknown_enum_values_are_rejected_with_a_typed_error() {
        let e = Fingerprints::from_rows(vec![], vec![row("a", "bogus", "body", "contains", "x", "")]).unwrap_err();
        assert!(matches!(e, FingerprintError::UnknownScope { .. }));
        let e = Fingerprints::from_rows(vec![], vec![row("a", "isp", "body", "glob", "x", "")]).unwrap_err();
        assert!(matches!(e, FingerprintError::UnknownPatternType { .. }));
        let e = Fingerprints::from_rows(vec![row("a", "injb", "dns", "full", "1.1.1.1", "")], vec![]).unwrap_err();
        assert!(matches!(e, FingerprintError::UnknownScope { .. }));
    }

    #[test]
    fn table_order_is_name_length_then_name_and_last_row_wins() {
        let fps = Fingerprints::from_rows(
            vec![],
            vec![
                row("ooni.zz_10", "isp", "body", "contains", "a", ""),
                row("ooni.b", "isp", "body", "contains", "b", ""),
                row("ooni.a", "isp", "body", "contains", "c", ""),
                row("ooni.b", "nat", "body", "contains", "d", ""),
            ],
        )
        .unwrap();
        let names: Vec<&str> = fps.http().iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["ooni.a", "ooni.b", "ooni.zz_10"]);
        assert_eq!(fps.http()[1].pattern, "d");
    }

    #[test]
    fn body_matching_finds_overlapping_patterns_in_table_order() {
        let fps = Fingerprints::from_rows(
            vec![],
            vec![
                row("b", "isp", "body", "contains", "blocked page", ""),
                row("a", "isp", "body", "regexp", "page", ""),
                row("c", "isp", "body", "contains", "absent", ""),
            ],
        )
        .unwrap();
        let mut out = vec![];
        fps.body_matches(b"this is a blocked page", &mut out);
        let names: Vec<&str> = out.iter().map(|&i| fps.http()[i as usize].name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn patterns_sharing_a_long_prefix_are_told_apart() {
        let fps = Fingerprints::from_rows(
            vec![],
            vec![
                row("x1", "isp", "body", "contains", "0123456789abcdefXYZ", ""),
                row("x2", "isp", "body", "contains", "0123456789abcdefQRS", ""),
                row("x3", "isp", "body", "contains", "0123456789abcdef", ""),
                row("x4", "isp", "body", "contains", "89abcdefQR", ""),
            ],
        )
        .unwrap();
        let mut out = vec![];
        fps.body_matches(b"..0123456789abcdef0123456789abcdefQRS..", &mut out);
        let names: Vec<&str> = out.iter().map(|&i| fps.http()[i as usize].name.as_str()).collect();
        assert_eq!(names, ["x2", "x3", "x4"]);
    }

    #[test]
    fn expected_countries_are_split_uppercased_and_cleaned() {
        assert_eq!(extract_expected_countries(" gr,ZZ,ae,,"), ["AE", "GR"]);
    }
}
