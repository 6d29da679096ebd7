//! Lazy, lenient JSON access over borrowed measurement text.
//!
//! Measurements are parsed in one pass into small typed structs whose leaves are
//! borrowed `&RawValue`s: nothing is decoded until a scorer asks for it, and a value
//! of an unexpected JSON type never fails the parse (it is recorded as `Other`).
//! Duplicate keys follow Python's `dict` semantics: the last value wins.

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

/// A borrowed, undecoded JSON value.
pub(crate) type Raw<'a> = &'a RawValue;

/// The JSON type of a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

/// JSON type of a raw value, from its first byte.
pub(crate) fn kind(raw: &RawValue) -> Kind {
    match raw.get().as_bytes().first() {
        Some(b'n') => Kind::Null,
        Some(b't') | Some(b'f') => Kind::Bool,
        Some(b'"') => Kind::String,
        Some(b'[') => Kind::Array,
        Some(b'{') => Kind::Object,
        _ => Kind::Number,
    }
}

pub(crate) fn is_null(raw: &RawValue) -> bool {
    kind(raw) == Kind::Null
}

/// Python's `v is None` for an optional field (missing counts as None for `.get`).
pub(crate) fn none_or_null(raw: Option<&RawValue>) -> bool {
    raw.is_none_or(is_null)
}

pub(crate) fn as_bool(raw: &RawValue) -> Option<bool> {
    match raw.get() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Python `v is True`.
pub(crate) fn is_true(raw: Option<&RawValue>) -> bool {
    raw.and_then(as_bool) == Some(true)
}

/// Python `v is False`.
pub(crate) fn is_false(raw: Option<&RawValue>) -> bool {
    raw.and_then(as_bool) == Some(false)
}

/// Numeric value of a JSON number (Python int or float).
pub(crate) fn as_f64(raw: &RawValue) -> Option<f64> {
    if kind(raw) == Kind::Number {
        raw.get().parse::<f64>().ok()
    } else {
        None
    }
}

/// Numeric value in Python's sense, where `True == 1` and `False == 0`.
pub(crate) fn as_py_number(raw: &RawValue) -> Option<f64> {
    match as_bool(raw) {
        Some(b) => Some(if b { 1.0 } else { 0.0 }),
        None => as_f64(raw),
    }
}

/// True when a JSON number literal is an integer (Python `int`).
pub(crate) fn is_int_literal(text: &str) -> bool {
    !text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'))
}

/// Decoded string value, or None if the value is not a string.
pub(crate) fn as_str<'a>(raw: &'a RawValue) -> Option<Cow<'a, str>> {
    let text = raw.get();
    if kind(raw) != Kind::String || text.len() < 2 {
        return None;
    }
    Some(unescape(&text[1..text.len() - 1]))
}

/// Python `v == s` for a JSON value and a string.
pub(crate) fn str_eq(raw: Option<&RawValue>, s: &str) -> bool {
    raw.filter(|r| may_decode_to(r.get().len().saturating_sub(2), s.len()))
        .and_then(as_str)
        .is_some_and(|v| v == s)
}

/// Whether the inside of a JSON string literal, `inner` bytes long, can decode to `decoded`
/// bytes of UTF-8: each byte or escape gives at least one byte and at most as many as it has
/// (at most 6 bytes per decoded byte, for `\u0000`). Saves decoding long strings only to find
/// them unequal.
fn may_decode_to(inner: usize, decoded: usize) -> bool {
    decoded <= inner && inner <= decoded.saturating_mul(6)
}

/// Python truthiness of a JSON value (`None`, `False`, `0`, `""`, `[]`, `{}` are false).
pub(crate) fn truthy(raw: &RawValue) -> bool {
    let text = raw.get();
    match kind(raw) {
        Kind::Null => false,
        Kind::Bool => text == "true",
        Kind::Number => text.parse::<f64>().map(|v| v != 0.0).unwrap_or(true),
        Kind::String => text.len() > 2,
        Kind::Array | Kind::Object => {
            let inner = text.get(1..text.len().saturating_sub(1)).unwrap_or("");
            !inner.trim().is_empty()
        }
    }
}

/// Truthiness of an optional field; missing is false.
pub(crate) fn truthy_opt(raw: Option<&RawValue>) -> bool {
    raw.is_some_and(truthy)
}

/// Decode the inside of a JSON string literal (between the quotes).
///
/// Lone surrogates, which Python accepts but Rust strings cannot hold, become U+FFFD.
pub(crate) fn unescape(inner: &str) -> Cow<'_, str> {
    match unescape_bytes(inner) {
        Cow::Borrowed(_) => Cow::Borrowed(inner),
        // the decoder only ever emits whole UTF-8 sequences
        Cow::Owned(v) => {
            Cow::Owned(String::from_utf8(v).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
        }
    }
}

/// [`unescape`] to bytes.
pub(crate) fn unescape_bytes(inner: &str) -> Cow<'_, [u8]> {
    if !inner.contains('\\') {
        return Cow::Borrowed(inner.as_bytes());
    }
    let mut out = Vec::with_capacity(inner.len());
    unescape_into(inner, &mut out);
    Cow::Owned(out)
}

/// Append the decoded bytes of a JSON string literal's inside to `out`.
pub(crate) fn unescape_into(inner: &str, out: &mut Vec<u8>) {
    let bytes = inner.as_bytes();
    out.reserve(bytes.len() + 8);
    let mut i = 0usize;
    loop {
        i = copy_plain(bytes, i, out);
        // bytes[i] is a backslash, or i is the end
        let Some(esc) = escape_at(bytes, i) else {
            return; // end, or a lone trailing backslash (dropped)
        };
        i += esc.len;
        match esc.ch {
            Some(c) if c.is_ascii() => out.push(c as u8),
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.unwrap_or('\u{fffd}').encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

/// One escape sequence of a JSON string's inside, as [`unescape_into`] decodes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Escape {
    /// The character it stands for; `None` when it decodes to U+FFFD (an unknown escape,
    /// bad hex digits, a lone surrogate).
    pub(crate) ch: Option<char>,
    /// Its length in bytes (2, 6, or 12 for a surrogate pair).
    pub(crate) len: usize,
}

/// The escape sequence starting at `bytes[at]` (a backslash); None past the end or for a
/// lone trailing backslash.
pub(crate) fn escape_at(bytes: &[u8], at: usize) -> Option<Escape> {
    let esc = *bytes.get(at + 1)?;
    let simple = |c: u8| {
        Some(Escape {
            ch: Some(char::from(c)),
            len: 2,
        })
    };
    match esc {
        b'"' | b'\\' | b'/' => simple(esc),
        b'b' => simple(8),
        b'f' => simple(12),
        b'n' => simple(b'\n'),
        b'r' => simple(b'\r'),
        b't' => simple(b'\t'),
        b'u' => Some(match hex4(bytes, at + 2) {
            None => Escape { ch: None, len: 2 },
            Some(hi) if (0xD800..0xDC00).contains(&hi) => {
                let i = at + 6;
                let lo = if bytes.get(i) == Some(&b'\\') && bytes.get(i + 1) == Some(&b'u') {
                    hex4(bytes, i + 2).filter(|lo| (0xDC00..0xE000).contains(lo))
                } else {
                    None
                };
                match lo {
                    Some(lo) => Escape {
                        ch: char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)),
                        len: 12,
                    },
                    None => Escape { ch: None, len: 6 },
                }
            }
            Some(cp) => Escape {
                ch: char::from_u32(cp),
                len: 6,
            },
        }),
        _ => Some(Escape { ch: None, len: 2 }),
    }
}

/// Copies `bytes[from..]` to `out` up to the next `\\`; returns its index (or `len`).
///
/// Eight bytes at a time: each word is appended whole and the tail past a backslash cut off
/// again, which is cheaper than finding the run first and copying it with `memcpy`.
fn copy_plain(bytes: &[u8], mut from: usize, out: &mut Vec<u8>) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const BS: u64 = LO * (b'\\' as u64);
    while let Some(word) = bytes.get(from..from + 8).and_then(|c| <[u8; 8]>::try_from(c).ok()) {
        out.extend_from_slice(&word);
        let x = u64::from_le_bytes(word) ^ BS;
        let found = x.wrapping_sub(LO) & !x & HI;
        if found != 0 {
            let at = (found.trailing_zeros() / 8) as usize;
            out.truncate(out.len() - 8 + at);
            return from + at;
        }
        from += 8;
    }
    while let Some(&b) = bytes.get(from) {
        if b == b'\\' {
            break;
        }
        out.push(b);
        from += 1;
    }
    from
}

fn hex4(bytes: &[u8], at: usize) -> Option<u32> {
    let s = bytes.get(at..at + 4)?;
    let mut v = 0u32;
    for &c in s {
        v = v * 16 + (c as char).to_digit(16)?;
    }
    Some(v)
}

/// An object key, borrowed when it has no escapes.
pub(crate) struct Key<'a>(pub(crate) Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// A type filled from the entries of a JSON object.
pub(crate) trait FromMap<'de>: Default {
    /// Consume the value of `key` (known keys are stored, others skipped).
    fn field<A: MapAccess<'de>>(&mut self, key: Cow<'de, str>, map: &mut A) -> Result<(), A::Error>;
}

/// A value expected to be a JSON object of shape `T`.
pub(crate) enum Obj<T> {
    Null,
    Val(T),
    /// Any other JSON type.
    Other,
}

impl<T> Obj<T> {
    pub(crate) fn val(&self) -> Option<&T> {
        match self {
            Obj::Val(v) => Some(v),
            _ => None,
        }
    }
}

/// A value expected to be a JSON array of `T`.
pub(crate) enum Arr<T> {
    Null,
    Val(Vec<T>),
    /// Any other JSON type; `bool` says whether it was truthy.
    Other(bool),
}

struct ShapeVisitor<T, const ARRAY: bool>(PhantomData<T>);

macro_rules! other_scalars {
    (Obj) => {
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Obj::Null)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Obj::Null)
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Obj::Other)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(Obj::Other)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Obj::Other)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Obj::Other)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok(Obj::Other)
        }
    };
    ($wrap:ident) => {
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($wrap::Null)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($wrap::Null)
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok($wrap::Other(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok($wrap::Other(v != 0))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok($wrap::Other(v != 0))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok($wrap::Other(v != 0.0))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok($wrap::Other(!v.is_empty()))
        }
    };
}

impl<'de, T: FromMap<'de>> Visitor<'de> for ShapeVisitor<T, false> {
    type Value = Obj<T>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    other_scalars!(Obj);
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Obj::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut t = T::default();
        while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
            t.field(k, &mut map)?;
        }
        Ok(Obj::Val(t))
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for ShapeVisitor<T, true> {
    type Value = Arr<T>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    other_scalars!(Arr);
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut v = Vec::new();
        while let Some(x) = seq.next_element::<T>()? {
            v.push(x);
        }
        Ok(Arr::Val(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut n = 0usize;
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {
            n += 1;
        }
        Ok(Arr::Other(n > 0))
    }
}

impl<'de, T: FromMap<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ShapeVisitor::<T, false>(PhantomData))
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Arr<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ShapeVisitor::<T, true>(PhantomData))
    }
}

/// Declare a struct filled from a JSON object; every field is optional (missing = None).
macro_rules! json_object {
    ($(#[$m:meta])* $name:ident<$lt:lifetime> { $($key:literal => $field:ident : $ty:ty,)* }) => {
        $(#[$m])*
        #[derive(Default)]
        pub(crate) struct $name<$lt> {
            $(pub(crate) $field: Option<$ty>,)*
            /// Number of keys seen (duplicates included).
            pub(crate) key_count: usize,
            _lt: std::marker::PhantomData<&$lt ()>,
        }
        impl<$lt> $crate::json::FromMap<$lt> for $name<$lt> {
            fn field<A: serde::de::MapAccess<$lt>>(
                &mut self,
                key: std::borrow::Cow<$lt, str>,
                map: &mut A,
            ) -> Result<(), A::Error> {
                self.key_count += 1;
                match key.as_ref() {
                    $($key => { self.$field = Some(map.next_value()?); })*
                    _ => { map.next_value::<serde::de::IgnoredAny>()?; }
                }
                Ok(())
            }
        }
    };
}
pub(crate) use json_object;

/// A map of every key to its raw value, in document order (for HTTP headers).
#[derive(Default)]
pub(crate) struct RawMap<'a>(pub(crate) Vec<(Cow<'a, str>, Raw<'a>)>);

impl<'a> FromMap<'a> for RawMap<'a> {
    fn field<A: MapAccess<'a>>(&mut self, key: Cow<'a, str>, map: &mut A) -> Result<(), A::Error> {
        let v: Raw<'a> = map.next_value()?;
        self.0.push((key, v));
        Ok(())
    }
}

/// Parse a raw value as an object of shape `T` (for values captured lazily).
pub(crate) fn parse_obj<'a, T: FromMap<'a>>(raw: &'a RawValue) -> Option<Obj<T>> {
    serde_json::from_str::<Obj<T>>(raw.get()).ok()
}

/// Calls `f` on the elements of a JSON array (`raw` is one) in order until it returns false,
/// without reading further; false if `raw` is not an array after all.
pub(crate) fn array_items<'a>(raw: &'a RawValue, f: impl FnMut(Raw<'a>) -> bool) -> bool {
    struct Items<'v, F> {
        f: F,
        /// Set when `f` stopped the walk with elements left.
        stopped: &'v mut bool,
    }
    impl<'de, F: FnMut(Raw<'de>) -> bool> Visitor<'de> for Items<'_, F> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an array")
        }
        fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
            while let Some(x) = seq.next_element::<Raw<'de>>()? {
                if !(self.f)(x) {
                    *self.stopped = true;
                    break;
                }
            }
            Ok(())
        }
    }
    let mut stopped = false;
    let mut de = serde_json::Deserializer::from_str(raw.get());
    let read = de.deserialize_seq(Items {
        f,
        stopped: &mut stopped,
    });
    // stopping early leaves elements unread, which serde_json reports as an error
    read.is_ok() || stopped
}

/// Python equality of two JSON values (`1 == 1.0 == True`, key order irrelevant).
pub(crate) fn py_eq(a: &RawValue, b: &RawValue) -> bool {
    py_eq_depth(a, b, 0)
}

fn py_eq_depth(a: &RawValue, b: &RawValue, depth: usize) -> bool {
    if a.get() == b.get() {
        return true;
    }
    if depth > 64 {
        // absurdly deep and not byte-identical: treat as different
        return false;
    }
    match (kind(a), kind(b)) {
        (Kind::String, Kind::String) => {
            // each decodes to between a sixth of its inner length and all of it
            let (x, y) = (a.get().len().saturating_sub(2), b.get().len().saturating_sub(2));
            x <= y.saturating_mul(6) && y <= x.saturating_mul(6) && as_str(a) == as_str(b)
        }
        (Kind::Array, Kind::Array) => {
            let (Ok(x), Ok(y)) = (
                serde_json::from_str::<Vec<Raw>>(a.get()),
                serde_json::from_str::<Vec<Raw>>(b.get()),
            ) else {
                return false;
            };
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| py_eq_depth(p, q, depth + 1))
        }
        (Kind::Object, Kind::Object) => {
            let (Some(Obj::Val(RawMap(x))), Some(Obj::Val(RawMap(y)))) =
                (parse_obj::<RawMap>(a), parse_obj::<RawMap>(b))
            else {
                return false;
            };
            let dedup = |m: Vec<(Cow<'_, str>, Raw<'_>)>| {
                let mut out: Vec<(String, String)> = Vec::with_capacity(m.len());
                for (k, v) in m {
                    let k = k.into_owned();
                    let v = v.get().to_owned();
                    match out.iter_mut().find(|(ok, _)| *ok == k) {
                        Some(slot) => slot.1 = v,
                        None => out.push((k, v)),
                    }
                }
                out
            };
            let (x, y) = (dedup(x), dedup(y));
            x.len() == y.len()
                && x.iter().all(|(k, v)| {
                    y.iter().any(|(k2, v2)| {
                        k == k2
                            && match (serde_json::from_str::<Raw>(v), serde_json::from_str::<Raw>(v2)) {
                                (Ok(p), Ok(q)) => py_eq_depth(p, q, depth + 1),
                                _ => false,
                            }
                    })
                })
        }
        (ka, kb) if matches!(ka, Kind::Number | Kind::Bool) && matches!(kb, Kind::Number | Kind::Bool) => {
            as_py_number(a) == as_py_number(b)
        }
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn raw(s: &str) -> &RawValue {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn unescape_decodes_escapes_and_replaces_lone_surrogates() {
        assert_eq!(unescape(r#"a\"b\u00e9\ud83d\ude00\ud800x"#), "a\"bé😀\u{fffd}x");
        assert!(matches!(unescape("plain"), Cow::Borrowed("plain")));
    }

    #[test]
    fn truthiness_follows_python() {
        for (s, t) in [
            ("null", false),
            ("0", false),
            ("0.0", false),
            ("\"\"", false),
            ("[ ]", false),
            ("{}", false),
            ("1", true),
            ("\"x\"", true),
            ("[0]", true),
        ] {
            assert_eq!(truthy(raw(s)), t, "{s}");
        }
    }

    #[test]
    fn python_equality_treats_numbers_and_bools_alike() {
        assert!(py_eq(raw("1"), raw("1.0")));
        assert!(py_eq(raw("true"), raw("1")));
        assert!(py_eq(raw(r#""\u0061""#), raw(r#""a""#)));
        assert!(py_eq(raw(r#"{"a":1,"b":[2]}"#), raw(r#"{"b":[2.0],"a":1}"#)));
        assert!(!py_eq(raw("\"1\""), raw("1")));
    }

    #[test]
    fn array_walks_stop_when_told() {
        let walk = |text: &str, n: usize| {
            let mut seen = Vec::new();
            let ok = array_items(raw(text), |x| {
                seen.push(x.get().to_owned());
                seen.len() < n
            });
            ok.then_some(seen)
        };
        let a = r#"[1, "two", [3], {"4": 4}]"#;
        assert_eq!(walk(a, 1), Some(vec!["1".to_owned()]));
        assert_eq!(walk(a, 2), Some(vec!["1".to_owned(), "\"two\"".to_owned()]));
        assert_eq!(walk(a, 4).map(|v| v.len()), Some(4));
        assert_eq!(walk(a, usize::MAX).map(|v| v.len()), Some(4));
        assert_eq!(walk("[ ]", 3), Some(vec![]));
        assert_eq!(walk("{}", 3), None);
    }

    #[test]
    fn strings_of_incompatible_lengths_are_unequal_without_decoding() {
        let long = format!("\"{}\"", "\\u0041".repeat(10));
        assert!(py_eq(raw(&long), raw(&format!("\"{}\"", "A".repeat(10)))));
        assert!(!py_eq(raw(&long), raw(&format!("\"{}\"", "A".repeat(9)))));
        assert!(str_eq(Some(raw(&long)), &"A".repeat(10)));
        assert!(!str_eq(Some(raw(&long)), &"A".repeat(9)));
        assert!(!str_eq(Some(raw(&long)), &"A".repeat(61)));
        assert!(str_eq(Some(raw(r#""\ud83d\ude00""#)), "😀"));
        assert!(str_eq(Some(raw(r#""""#)), ""));
        assert!(!str_eq(Some(raw(r#""""#)), "x"));
        assert!(py_eq(raw(r#""\u00e9""#), raw(r#""é""#)));
    }

    #[test]
    fn shapes_record_unexpected_types_instead_of_failing() {
        let v: Arr<Raw> = serde_json::from_str(r#"{"a":1}"#).unwrap();
        assert!(matches!(v, Arr::Other(true)));
        let v: Obj<RawMap> = serde_json::from_str("[]").unwrap();
        assert!(matches!(v, Obj::Other));
    }
}
