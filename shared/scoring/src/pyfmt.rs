//! Byte-exact reproductions of the Python formatting the upstream fastpath relies on:
//! `ujson.dumps` (floats via double-conversion, ASCII-only strings, escaped `/`),
//! Python `str()`/`repr()` of JSON values, and a few Python parsing functions.

use crate::json::{self, Kind, Raw};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt::{self, Write};

/// Shortest round-trip digits and decimal exponent of a finite, non-zero `|v|`.
fn shortest_digits(v: f64) -> (String, i32) {
    // `{:e}` prints the shortest representation that round-trips, e.g. "3.574e2".
    let s = format!("{:e}", v.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((s.as_str(), "0"));
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    (digits, exp.parse().unwrap_or(0))
}

/// `ujson.dumps(float)`: double-conversion shortest form, decimal notation for
/// exponents in [-4, 16), trailing `.0`, exponent written as `e+N`/`e-N`.
pub(crate) fn write_ujson_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "Inf" } else { "-Inf" });
        return;
    }
    if v.is_sign_negative() {
        out.push('-');
    }
    if v == 0.0 {
        out.push_str("0.0");
        return;
    }
    let (digits, exp) = shortest_digits(v);
    if (-4..16).contains(&exp) {
        write_decimal(out, &digits, exp + 1);
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _written = write!(out, "e{}{}", if exp >= 0 { "+" } else { "-" }, exp.abs());
    }
}

fn write_decimal(out: &mut String, digits: &str, point: i32) {
    let len = digits.len() as i32;
    if point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-point) as usize));
        out.push_str(digits);
    } else if point >= len {
        out.push_str(digits);
        out.extend(std::iter::repeat_n('0', (point - len) as usize));
        out.push_str(".0");
    } else {
        out.push_str(&digits[..point as usize]);
        out.push('.');
        out.push_str(&digits[point as usize..]);
    }
}

/// Python `repr(float)`: like ujson but with a two-digit minimum exponent.
pub(crate) fn write_py_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("nan");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "inf" } else { "-inf" });
        return;
    }
    if v.is_sign_negative() {
        out.push('-');
    }
    if v == 0.0 {
        out.push_str("0.0");
        return;
    }
    let (digits, exp) = shortest_digits(v);
    if (-4..16).contains(&exp) {
        write_decimal(out, &digits, exp + 1);
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _written = write!(out, "e{}{:02}", if exp >= 0 { "+" } else { "-" }, exp.abs());
    }
}

/// `ujson.dumps(str)` with the defaults `ensure_ascii=True`, `escape_forward_slashes=True`.
pub(crate) fn write_ujson_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _written = write!(out, "\\u{:04x}", c as u32);
            }
            c if c.is_ascii() => out.push(c),
            c => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _written = write!(out, "\\u{:04x}", unit);
                }
            }
        }
    }
    out.push('"');
}

/// Re-serialize a measurement value the way `ujson.dumps(ujson.loads(raw))` would.
pub(crate) fn write_ujson_raw(out: &mut String, raw: Raw<'_>) {
    let mut de = serde_json::Deserializer::from_str(raw.get());
    let mark = out.len();
    if (Transcode { out: &mut *out }).deserialize(&mut de).is_err() {
        // Only reachable for strings holding lone surrogates: fall back to a lossy copy.
        out.truncate(mark);
        match json::as_str(raw) {
            Some(s) => write_ujson_str(out, &s),
            None => out.push_str("null"),
        }
    }
}

/// Serializes a value to ujson text while it is being parsed.
struct Transcode<'o> {
    out: &'o mut String,
}

impl<'de> DeserializeSeed<'de> for Transcode<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Transcode<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.out.push_str("null");
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.out.push_str(if v { "true" } else { "false" });
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        let _written = write!(self.out, "{v}");
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        let _written = write!(self.out, "{v}");
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        write_ujson_float(self.out, v);
        Ok(())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        write_ujson_str(self.out, v);
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.out.push('[');
        let mut first = true;
        loop {
            let mark = self.out.len();
            if !first {
                self.out.push(',');
            }
            if seq.next_element_seed(Transcode { out: &mut *self.out })?.is_none() {
                self.out.truncate(mark);
                break;
            }
            first = false;
        }
        self.out.push(']');
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.out.push('{');
        let mut first = true;
        while let Some(json::Key(k)) = map.next_key::<json::Key>()? {
            if !first {
                self.out.push(',');
            }
            first = false;
            write_ujson_str(self.out, &k);
            self.out.push(':');
            map.next_value_seed(Transcode { out: &mut *self.out })?;
        }
        self.out.push('}');
        Ok(())
    }
}

/// Python `str(v)` of a JSON value (used for `"failure: {}".format(v)`).
pub(crate) fn py_str(raw: Raw<'_>) -> String {
    match json::kind(raw) {
        Kind::String => json::as_str(raw).map(|s| s.into_owned()).unwrap_or_default(),
        _ => py_repr(raw),
    }
}

/// Python `repr(v)` of a JSON value.
pub(crate) fn py_repr(raw: Raw<'_>) -> String {
    let mut out = String::new();
    write_py_repr(&mut out, raw, 0);
    out
}

/// Nesting beyond this is elided (Python itself would hit its recursion limit).
const MAX_REPR_DEPTH: usize = 64;

fn write_py_repr(out: &mut String, raw: Raw<'_>, depth: usize) {
    if depth > MAX_REPR_DEPTH {
        out.push_str("...");
        return;
    }
    match json::kind(raw) {
        Kind::Null => out.push_str("None"),
        Kind::Bool => out.push_str(if raw.get() == "true" { "True" } else { "False" }),
        Kind::Number => {
            let text = raw.get();
            if json::is_int_literal(text) {
                let t = text
                    .strip_prefix("-0")
                    .map_or(text, |r| if r.is_empty() { "0" } else { text });
                out.push_str(t);
            } else {
                write_py_float(out, text.parse::<f64>().unwrap_or(f64::NAN));
            }
        }
        Kind::String => write_py_str_repr(out, &json::as_str(raw).unwrap_or_default()),
        Kind::Array => {
            out.push('[');
            let items: Vec<Raw> = serde_json::from_str(raw.get()).unwrap_or_default();
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_py_repr(out, item, depth + 1);
            }
            out.push(']');
        }
        Kind::Object => {
            out.push('{');
            if let Some(json::Obj::Val(json::RawMap(entries))) = json::parse_obj::<json::RawMap>(raw) {
                let mut seen: Vec<(String, Raw)> = Vec::new();
                for (k, v) in entries {
                    match seen.iter_mut().find(|(sk, _)| *sk == k) {
                        Some(slot) => slot.1 = v,
                        None => seen.push((k.into_owned(), v)),
                    }
                }
                for (i, (k, v)) in seen.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_py_str_repr(out, k);
                    out.push_str(": ");
                    write_py_repr(out, v, depth + 1);
                }
            }
            out.push('}');
        }
    }
}

fn write_py_str_repr(out: &mut String, s: &str) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _written = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

/// Python `float(v)` for a JSON value: numbers, bools and numeric strings.
pub(crate) fn py_float(raw: Raw<'_>) -> Option<f64> {
    match json::kind(raw) {
        Kind::Number | Kind::Bool => json::as_py_number(raw),
        Kind::String => {
            let s = json::as_str(raw)?;
            let t = s.trim();
            if t.contains("__") || t.starts_with('_') || t.ends_with('_') {
                return None;
            }
            let cleaned: String = t.chars().filter(|&c| c != '_').collect();
            let lower = cleaned.to_ascii_lowercase();
            let body = lower.trim_start_matches(['+', '-']);
            if matches!(body, "inf" | "infinity" | "nan")
                || body
                    .bytes()
                    .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'+' | b'-'))
            {
                cleaned.parse::<f64>().ok()
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Python `int(v)` for a JSON value, keeping only results that fit an unsigned 64-bit id.
pub(crate) fn py_int_u64(raw: Raw<'_>) -> Option<u64> {
    match json::kind(raw) {
        Kind::Bool => json::as_bool(raw).map(u64::from),
        Kind::Number => {
            let text = raw.get();
            if json::is_int_literal(text) {
                text.parse::<u64>().ok()
            } else {
                let f = text.parse::<f64>().ok()?.trunc();
                (0.0..1.8e19).contains(&f).then_some(f as u64)
            }
        }
        Kind::String => {
            let s = json::as_str(raw)?;
            let t = s.trim();
            let t = t.strip_prefix('+').unwrap_or(t);
            if t.is_empty() || t.starts_with('_') || t.ends_with('_') || t.contains("__") {
                return None;
            }
            let digits: String = t.chars().filter(|&c| c != '_').collect();
            if !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            digits.parse::<u64>().ok()
        }
        _ => None,
    }
}

/// Python `datetime.strptime(s, "%Y-%m-%d %H:%M:%S")`.
pub(crate) fn py_strptime(s: &str) -> Option<chrono::NaiveDateTime> {
    let b = s.as_bytes();
    let mut i = 0usize;
    let year = take_digits(b, &mut i, 4, 4)?;
    expect(b, &mut i, b'-')?;
    let month = take_digits(b, &mut i, 1, 2)?;
    expect(b, &mut i, b'-')?;
    let day = take_digits(b, &mut i, 1, 2)?;
    let ws = b[i..].iter().take_while(|c| c.is_ascii_whitespace()).count();
    if ws == 0 {
        return None;
    }
    i += ws;
    let hour = take_digits(b, &mut i, 1, 2)?;
    expect(b, &mut i, b':')?;
    let minute = take_digits(b, &mut i, 1, 2)?;
    expect(b, &mut i, b':')?;
    let second = take_digits(b, &mut i, 1, 2)?;
    if i != b.len() {
        return None;
    }
    let date = chrono::NaiveDate::from_ymd_opt(year as i32, month, day)?;
    let time = chrono::NaiveTime::from_hms_opt(hour, minute, second)?;
    Some(chrono::NaiveDateTime::new(date, time))
}

fn take_digits(b: &[u8], i: &mut usize, min: usize, max: usize) -> Option<u32> {
    let n = b[*i..].iter().take(max).take_while(|c| c.is_ascii_digit()).count();
    if n < min {
        return None;
    }
    let v = std::str::from_utf8(&b[*i..*i + n]).ok()?.parse().ok()?;
    *i += n;
    Some(v)
}

fn expect(b: &[u8], i: &mut usize, c: u8) -> Option<()> {
    (b.get(*i) == Some(&c)).then(|| *i += 1)
}

/// `urllib.parse.urlparse(url).netloc`.
pub(crate) fn url_netloc(url: &str) -> String {
    let url = url
        .trim_start_matches(|c: char| c <= ' ')
        .trim_end_matches(|c: char| c <= ' ');
    let cleaned: String;
    let url = if url.contains(['\t', '\r', '\n']) {
        cleaned = url.chars().filter(|c| !matches!(c, '\t' | '\r' | '\n')).collect();
        cleaned.as_str()
    } else {
        url
    };
    let mut rest = url;
    if let Some(i) = url.find(':') {
        let scheme = &url[..i];
        let valid = i > 0
            && scheme.as_bytes()[0].is_ascii_alphabetic()
            && scheme
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'));
        if valid {
            rest = &url[i + 1..];
        }
    }
    match rest.strip_prefix("//") {
        Some(after) => {
            let end = after.find(['/', '?', '#']).unwrap_or(after.len());
            after[..end].to_owned()
        }
        None => String::new(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn uj(v: f64) -> String {
        let mut s = String::new();
        write_ujson_float(&mut s, v);
        s
    }

    #[test]
    fn ujson_floats_match_double_conversion_shortest_form() {
        assert_eq!(uj(1.0), "1.0");
        assert_eq!(uj(0.0), "0.0");
        assert_eq!(uj(0.98), "0.98");
        assert_eq!(uj(357.40000000037253), "357.40000000037253");
        assert_eq!(uj(1.7608076929999998), "1.7608076929999998");
        assert_eq!(uj(1e16), "1e+16");
        assert_eq!(uj(1234567890123456.0), "1234567890123456.0");
        assert_eq!(uj(0.0001), "0.0001");
        assert_eq!(uj(0.00001), "1e-5");
        assert_eq!(uj(-2.5e-7), "-2.5e-7");
    }

    #[test]
    fn ujson_strings_are_ascii_with_escaped_slashes() {
        let mut s = String::new();
        write_ujson_str(&mut s, "a/b\"é😀\u{1}");
        assert_eq!(s, r#""a\/b\"\u00e9\ud83d\ude00\u0001""#);
    }

    #[test]
    fn raw_values_are_reserialized_like_ujson() {
        let raw: Raw = serde_json::from_str(r#"{ "a" : [1, 2.50, "x/y", null, true], "b": -0.0 }"#).unwrap();
        let mut s = String::new();
        write_ujson_raw(&mut s, raw);
        assert_eq!(s, r#"{"a":[1,2.5,"x\/y",null,true],"b":-0.0}"#);
    }

    #[test]
    fn python_str_of_values() {
        let r = |s: &str| -> String { py_str(serde_json::from_str::<Raw>(s).unwrap()) };
        assert_eq!(r(r#""generic_timeout_error""#), "generic_timeout_error");
        assert_eq!(r("1e20"), "1e+20");
        assert_eq!(r(r#"{"a": [true, null, "it's"]}"#), r#"{'a': [True, None, "it's"]}"#);
    }

    #[test]
    fn strptime_accepts_python_shapes_only() {
        assert!(py_strptime("2021-02-03 10:11:12").is_some());
        assert!(py_strptime("2021-2-3 1:1:1").is_some());
        assert!(py_strptime("2021-02-03T10:11:12").is_none());
        assert!(py_strptime("2021-02-30 10:11:12").is_none());
        assert!(py_strptime("").is_none());
    }

    #[test]
    fn netloc_follows_urlparse() {
        assert_eq!(url_netloc("http://x.org/a?b"), "x.org");
        assert_eq!(url_netloc("google.com"), "");
        assert_eq!(url_netloc("vpn://openvpn.riseup/?addr=1"), "openvpn.riseup");
        assert_eq!(url_netloc("//host:1/x"), "host:1");
        assert_eq!(url_netloc(""), "");
    }
}
