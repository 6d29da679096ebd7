//! The test-list file model of the editor (upstream `testlists/manager.py`): entries and their
//! validation, reading and writing `lists/<cc>.csv`, applying a user's edits, and the
//! upstream-shaped changes log.

use crate::errors::OoniError;
use chrono::NaiveDate;
use ooni_domain::url_host;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// Upstream `CATEGORY_CODES`: code → description written to the CSV.
pub const CATEGORY_CODES: [(&str, &str); 31] = [
    ("ALDR", "Alcohol & Drugs"),
    ("REL", "Religion"),
    ("PORN", "Pornography"),
    ("PROV", "Provocative Attire"),
    ("POLR", "Political Criticism"),
    ("HUMR", "Human Rights Issues"),
    ("ENV", "Environment"),
    ("MILX", "Terrorism and Militants"),
    ("HATE", "Hate Speech"),
    ("NEWS", "News Media"),
    ("XED", "Sex Education"),
    ("PUBH", "Public Health"),
    ("GMB", "Gambling"),
    ("ANON", "Anonymization and circumvention tools"),
    ("DATE", "Online Dating"),
    ("GRP", "Social Networking"),
    ("LGBT", "LGBT"),
    ("FILE", "File-sharing"),
    ("HACK", "Hacking Tools"),
    ("COMT", "Communication Tools"),
    ("MMED", "Media sharing"),
    ("HOST", "Hosting and Blogging Platforms"),
    ("SRCH", "Search Engines"),
    ("GAME", "Gaming"),
    ("CULTR", "Culture"),
    ("ECON", "Economics"),
    ("GOVT", "Government"),
    ("COMM", "E-commerce"),
    ("CTRL", "Control content"),
    ("IGO", "Intergovernmental Organizations"),
    ("MISC", "Miscelaneous content"),
];

/// The columns of every list, in file order.
pub const CSV_HEADER: [&str; 6] = [
    "url",
    "category_code",
    "category_description",
    "date_added",
    "source",
    "notes",
];

pub fn category_description(code: &str) -> Option<&'static str> {
    CATEGORY_CODES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, d)| *d)
}

/// An entry as the API sends and returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub category_code: String,
    #[serde(default)]
    pub url: String,
    pub date_added: String,
    pub notes: String,
    pub source: String,
}

/// One CSV row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub url: String,
    pub category_code: String,
    pub category_description: String,
    pub date_added: String,
    pub source: String,
    pub notes: String,
}

impl Row {
    pub fn from_entry(e: &Entry) -> Row {
        Row {
            url: e.url.clone(),
            category_code: e.category_code.clone(),
            category_description: category_description(&e.category_code)
                .unwrap_or("")
                .to_owned(),
            date_added: e.date_added.clone(),
            source: e.source.clone(),
            notes: e.notes.clone(),
        }
    }

    pub fn entry(&self) -> Entry {
        Entry {
            category_code: self.category_code.clone(),
            url: self.url.clone(),
            date_added: self.date_added.clone(),
            notes: self.notes.clone(),
            source: self.source.clone(),
        }
    }

    /// Whether this row is `e` (the description is derived, so not compared).
    pub fn is(&self, e: &Entry) -> bool {
        self.url == e.url
            && self.category_code == e.category_code
            && self.date_added == e.date_added
            && self.source == e.source
            && self.notes == e.notes
    }
}

/// Upstream `check_url`: `http(s)://`, a hostname or dotted IPv4, an optional port and a
/// non-empty path without whitespace; no `\r \n \t \` and no surrounding whitespace.
pub fn check_url(url: &str) -> bool {
    if url.trim() != url {
        return false;
    }
    let Some((_, tail)) = url_host::split_host(url, true, &[':', '/', '?', '#']) else {
        return false;
    };
    tail.starts_with('/') && !tail.contains(char::is_whitespace)
}

/// Upstream `validate_entry`.
pub fn validate_entry(e: &Entry) -> Result<(), OoniError> {
    if !check_url(&e.url) {
        return Err(OoniError::BadUrl);
    }
    if category_description(&e.category_code).is_none() {
        return Err(OoniError::BadCategoryCode);
    }
    match NaiveDate::parse_from_str(&e.date_added, "%Y-%m-%d") {
        Ok(d) if d.format("%Y-%m-%d").to_string() == e.date_added => Ok(()),
        _ => Err(OoniError::BadDate),
    }
}

/// A list name: two lowercase letters or `global`.
pub fn normalize_cc(country_code: &str) -> Result<String, OoniError> {
    let cc = country_code.trim().to_ascii_lowercase();
    if cc == "global" || (cc.len() == 2 && cc.bytes().all(|b| b.is_ascii_lowercase())) {
        Ok(cc)
    } else {
        Err(OoniError::InvalidCountryCode)
    }
}

/// Reads a list file (columns by header name; missing values are empty).
pub fn parse_list(text: &str) -> Result<Vec<Row>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| e.to_string())?.clone();
    let idx = |name: &str| headers.iter().position(|h| h == name);
    let cols: Vec<Option<usize>> = CSV_HEADER.iter().map(|c| idx(c)).collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| e.to_string())?;
        let get = |i: usize| cols[i].and_then(|c| record.get(c)).unwrap_or("").to_owned();
        rows.push(Row {
            url: get(0),
            category_code: get(1),
            category_description: get(2),
            date_added: get(3),
            source: get(4),
            notes: get(5),
        });
    }
    Ok(rows)
}

/// Writes a list file as upstream does (header, minimal quoting, `\n` line ends).
pub fn render_list(rows: &[Row]) -> Result<String, String> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(Vec::new());
    w.write_record(CSV_HEADER).map_err(|e| e.to_string())?;
    for r in rows {
        w.write_record([
            &r.url,
            &r.category_code,
            &r.category_description,
            &r.date_added,
            &r.source,
            &r.notes,
        ])
        .map_err(|e| e.to_string())?;
    }
    let bytes = w.into_inner().map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

/// One change a user made to one list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edit {
    pub cc: String,
    pub old: Option<Entry>,
    pub new: Option<Entry>,
    pub comment: String,
}

/// Applies `edit` to a list: replaces (or deletes) the rows equal to `old`, or appends `new`.
/// `CannotUpdateList` when `old` is not in the list.
pub fn apply(rows: &mut Vec<Row>, edit: &Edit) -> Result<(), OoniError> {
    match (&edit.old, &edit.new) {
        (Some(old), new) => {
            let before = rows.len();
            let mut found = false;
            let mut out = Vec::with_capacity(before);
            for r in rows.drain(..) {
                if r.is(old) {
                    found = true;
                    if let Some(n) = new {
                        out.push(Row::from_entry(n));
                    }
                } else {
                    out.push(r);
                }
            }
            *rows = out;
            if found {
                Ok(())
            } else {
                Err(OoniError::CannotUpdateList)
            }
        }
        (None, Some(new)) => {
            rows.push(Row::from_entry(new));
            Ok(())
        }
        (None, None) => Err(OoniError::NoProposedChanges),
    }
}

fn logged(e: &Entry, action: &str) -> Value {
    json!({
        "url": e.url,
        "category_code": e.category_code,
        "category_description": category_description(&e.category_code).unwrap_or(""),
        "date_added": e.date_added,
        "source": e.source,
        "notes": e.notes,
        "action": action,
    })
}

/// Upstream's changes log (`write_changes_log` replayed over the edits): per list, entries
/// added (`action: add`) and deleted (`action: delete`). Re-adding a deleted entry drops its
/// `delete`; deleting an added entry drops its `add` and logs a `delete`; an edit of an
/// existing entry logs only the new one — all as upstream.
pub fn changes_log(edits: &[Edit]) -> Map<String, Value> {
    let mut log: Map<String, Value> = Map::new();
    for e in edits {
        let Value::Array(list) = log
            .entry(e.cc.clone())
            .or_insert_with(|| Value::Array(Vec::new()))
        else {
            continue;
        };
        let remove = |list: &mut Vec<Value>, item: &Value| {
            if let Some(i) = list.iter().position(|x| x == item) {
                list.remove(i);
            }
        };
        if let Some(old) = &e.old {
            remove(list, &logged(old, "add"));
        }
        if let Some(new) = &e.new {
            remove(list, &logged(new, "delete"));
            list.push(logged(new, "add"));
        } else if let Some(old) = &e.old {
            list.push(logged(old, "delete"));
        }
    }
    log
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn entry(url: &str, cat: &str) -> Entry {
        Entry {
            category_code: cat.into(),
            url: url.into(),
            date_added: "2024-01-02".into(),
            notes: "n".into(),
            source: "s".into(),
        }
    }

    #[test]
    fn urls_are_checked_as_upstream_check_url() {
        for ok in [
            "https://example.com/",
            "http://www.example.org/a?b=c",
            "https://1.2.3.4:8080/x",
            "HTTPS://EXAMPLE.COM/",
        ] {
            assert!(check_url(ok), "{ok}");
        }
        for bad in [
            "https://example.com",
            "https://example.com?x=1",
            "example.com/",
            "ftp://example.com/",
            " https://example.com/",
            "https://exa mple.com/",
            "https://example.com/a b",
            "https://example.com/\\",
            "https://localhost/",
            "https://example.com:x/",
        ] {
            assert!(!check_url(bad), "{bad}");
        }
    }

    #[test]
    fn entries_need_a_known_category_and_a_canonical_date() {
        assert_eq!(validate_entry(&entry("https://a.org/", "NEWS")), Ok(()));
        assert_eq!(
            validate_entry(&entry("https://a.org/", "XXXX")),
            Err(OoniError::BadCategoryCode)
        );
        assert_eq!(
            validate_entry(&entry("a.org", "NEWS")),
            Err(OoniError::BadUrl)
        );
        for date in ["2024-1-02", "2024-02-30", "yesterday", "2024-01-02T00:00"] {
            let e = Entry {
                date_added: date.into(),
                ..entry("https://a.org/", "NEWS")
            };
            assert_eq!(validate_entry(&e), Err(OoniError::BadDate), "{date}");
        }
    }

    #[test]
    fn list_names_are_two_letters_or_global() {
        assert_eq!(normalize_cc("IT").unwrap(), "it");
        assert_eq!(normalize_cc("global").unwrap(), "global");
        for bad in ["ita", "i", "../", "1t", ""] {
            assert_eq!(
                normalize_cc(bad),
                Err(OoniError::InvalidCountryCode),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_list_round_trips_and_edits_replace_delete_and_append_rows() {
        let text = "url,category_code,category_description,date_added,source,notes\n\
                    https://a.org/,NEWS,News Media,2024-01-02,s,n\n\
                    https://b.org/,GRP,Social Networking,2020-05-05,,\"x, y\"\n";
        let mut rows = parse_list(text).unwrap();
        assert_eq!(render_list(&rows).unwrap(), text);
        assert_eq!(rows[1].notes, "x, y");
        let edit = |old: Option<Entry>, new: Option<Entry>| Edit {
            cc: "it".into(),
            old,
            new,
            comment: "c".into(),
        };
        apply(
            &mut rows,
            &edit(
                Some(entry("https://a.org/", "NEWS")),
                Some(entry("https://a2.org/", "HUMR")),
            ),
        )
        .unwrap();
        assert_eq!(rows[0].url, "https://a2.org/");
        assert_eq!(rows[0].category_description, "Human Rights Issues");
        apply(
            &mut rows,
            &edit(None, Some(entry("https://c.org/", "MISC"))),
        )
        .unwrap();
        assert_eq!(rows.last().unwrap().url, "https://c.org/");
        apply(
            &mut rows,
            &edit(Some(entry("https://c.org/", "MISC")), None),
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            apply(
                &mut rows,
                &edit(Some(entry("https://zzz.org/", "MISC")), None)
            ),
            Err(OoniError::CannotUpdateList)
        );
    }

    #[test]
    fn the_changes_log_cancels_an_added_then_deleted_entry_as_upstream() {
        let e = |old: Option<Entry>, new: Option<Entry>| Edit {
            cc: "it".into(),
            old,
            new,
            comment: String::new(),
        };
        let a = entry("https://a.org/", "NEWS");
        let b = entry("https://b.org/", "NEWS");
        let log = changes_log(&[e(None, Some(a.clone())), e(Some(b.clone()), None)]);
        let actions: Vec<(&str, &str)> = log["it"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| (v["url"].as_str().unwrap(), v["action"].as_str().unwrap()))
            .collect();
        assert_eq!(
            actions,
            [("https://a.org/", "add"), ("https://b.org/", "delete")]
        );
        assert_eq!(log["it"][0]["category_description"], "News Media");
        let log = changes_log(&[e(None, Some(a.clone())), e(Some(a.clone()), None)]);
        assert_eq!(
            log["it"],
            json!([{"url": "https://a.org/", "category_code": "NEWS", "category_description": "News Media", "date_added": "2024-01-02", "source": "s", "notes": "n", "action": "delete"}])
        );
        let log = changes_log(&[e(Some(b.clone()), None), e(None, Some(b))]);
        assert_eq!(log["it"].as_array().unwrap().len(), 1);
        assert_eq!(log["it"][0]["action"], "add");
    }
}
