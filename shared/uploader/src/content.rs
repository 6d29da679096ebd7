//! From a stored `.post` object (`{"format":"json","content":{…},"is_verified":"u"}`) to the
//! JSONL line (the measurement `content`) and the fields the `jsonl` table is keyed by.
//!
//! As upstream: a body that does not parse, is not `format: "json"` or has no object
//! `content` becomes the line `{}` and gets no `jsonl` row. Unlike upstream (which
//! re-serialises with ujson), the content is kept byte for byte; only when it spans several
//! lines is the whitespace between its tokens removed, so each measurement stays one line.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

/// What goes into the JSONL file and the `jsonl` table for one `.post` object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted<'a> {
    /// The line, without a newline.
    pub line: Cow<'a, [u8]>,
    /// `report_id` and `input` of the content (`""` when absent or null), or `None` when the
    /// object could not be read (line `{}`, no row).
    pub key: Option<(String, String)>,
}

#[derive(Deserialize)]
struct Post<'a> {
    #[serde(borrow, default)]
    format: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow, default)]
    report_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    input: Option<&'a RawValue>,
}

const EMPTY: &[u8] = b"{}";

/// Reads one `.post` body.
pub fn extract(body: &[u8]) -> Extracted<'_> {
    let unreadable = Extracted {
        line: Cow::Borrowed(EMPTY),
        key: None,
    };
    let Ok(post) = serde_json::from_slice::<Post<'_>>(body) else {
        return unreadable;
    };
    if !post
        .format
        .as_deref()
        .is_some_and(|f| f.eq_ignore_ascii_case("json"))
    {
        return unreadable;
    }
    let Some(content) = post.content else {
        return unreadable;
    };
    let raw = content.get();
    if !raw.starts_with('{') {
        return unreadable;
    }
    let Ok(head) = serde_json::from_str::<Head<'_>>(raw) else {
        return unreadable;
    };
    let key = (text_of(head.report_id), text_of(head.input));
    let bytes = raw.as_bytes();
    let line = if bytes.iter().any(|b| *b == b'\n' || *b == b'\r') {
        Cow::Owned(minify(bytes))
    } else {
        Cow::Borrowed(bytes)
    };
    Extracted {
        line,
        key: Some(key),
    }
}

/// A string value as its text, null/absent as `""`, anything else as its JSON text.
fn text_of(value: Option<&RawValue>) -> String {
    match value {
        None => String::new(),
        Some(v) if v.get() == "null" => String::new(),
        Some(v) => serde_json::from_str::<String>(v.get()).unwrap_or_else(|_| v.get().to_owned()),
    }
}

/// Valid JSON without the whitespace between tokens (strings untouched).
pub fn minify(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for &b in json {
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else {
            match b {
                b' ' | b'\n' | b'\r' | b'\t' => {}
                b'"' => {
                    in_string = true;
                    out.push(b);
                }
                _ => out.push(b),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_content_is_kept_byte_for_byte_with_its_report_id_and_input() {
        let body = br#"{"format":"json","content":{"report_id":"r1","input":"https://x.org/","k":[1, 2]},"is_verified":"u"}"#;
        let e = extract(body);
        assert_eq!(
            &*e.line,
            br#"{"report_id":"r1","input":"https://x.org/","k":[1, 2]}"#
        );
        assert_eq!(e.key, Some(("r1".into(), "https://x.org/".into())));
    }

    #[test]
    fn a_multi_line_content_becomes_one_line_with_strings_untouched() {
        let body = b"{\"format\":\"JSON\",\n\"content\":{\n  \"report_id\": \"r 1\",\n  \"s\": \"a \\\" b\\n\"\r\n}}";
        let e = extract(body);
        assert_eq!(&*e.line, br#"{"report_id":"r 1","s":"a \" b\n"}"#);
        assert_eq!(e.key, Some(("r 1".into(), String::new())));
        let v: serde_json::Value = serde_json::from_slice(&e.line).unwrap();
        assert_eq!(v["s"], "a \" b\n");
    }

    #[test]
    fn null_missing_and_non_string_inputs_are_stored_as_text() {
        let e = extract(br#"{"format":"json","content":{"report_id":"r","input":null}}"#);
        assert_eq!(e.key, Some(("r".into(), String::new())));
        let e = extract(br#"{"format":"json","content":{"report_id":"r","input":["a","b"]}}"#);
        assert_eq!(e.key, Some(("r".into(), r#"["a","b"]"#.into())));
        let e = extract(br#"{"format":"json","content":{"input":"\u00e9"}}"#);
        assert_eq!(e.key, Some((String::new(), "é".into())));
    }

    #[test]
    fn unreadable_bodies_become_an_empty_object_without_a_row() {
        for body in [
            &b"not json"[..],
            br#"{"format":"yaml","content":"---"}"#,
            br#"{"content":{"report_id":"r"}}"#,
            br#"{"format":"json"}"#,
            br#"{"format":"json","content":null}"#,
            br#"{"format":"json","content":[1]}"#,
            br#"{"format":"json","content":{"report_id":1}"#,
        ] {
            let e = extract(body);
            assert_eq!(&*e.line, b"{}", "{}", String::from_utf8_lossy(body));
            assert_eq!(e.key, None);
        }
    }

    #[test]
    fn a_numeric_report_id_is_kept_as_its_text() {
        let e = extract(br#"{"format":"json","content":{"report_id":12}}"#);
        assert_eq!(e.key, Some(("12".into(), String::new())));
    }
}
