//! Body fingerprints found in a body's JSON string text as it is, without decoding it.
//!
//! Decoding a body (`\"` every few dozen bytes of HTML) before searching it cost about as
//! much as the search itself. Here the patterns are encoded like JSON string text instead and
//! searched in the escaped text with the filtered many-literal search of [`crate::literals`];
//! a separate light pass parses the escapes that could encode a pattern character differently.
//!
//! **Encodings.** A pattern occurs in the decoded body exactly where its *encoding* occurs in
//! the escaped text at a character boundary, provided the body encodes every character a
//! pattern can contain the same way the pattern's encoding does. Two encoders are covered
//! (JSON allows others): `L`, characters as themselves except `"`, `\`, `\b \f \n \r \t` and
//! `\u00xx` for the other control characters (Go, most C++ and JS encoders); and `P`, like `L`
//! but every non-ASCII character as lower-case `\uxxxx` (surrogate pairs past the BMP), which
//! is Python's `json.dumps` default and what most stored measurements use. Every `\u` and `\/`
//! escape of a character that occurs in some pattern (and whether any byte is non-ASCII) is
//! checked against both; a body that fits neither is reported as such and the caller decodes
//! it and searches the decoded bytes instead, so the result is exact for any input.
//!
//! **Boundaries.** A candidate must not start inside an escape. In valid JSON a run of
//! backslashes starts at a character boundary and alternates escape starts and escaped
//! backslashes, so the parity of the runs just before a candidate decides (the last run looked
//! at is remembered, so a long run is walked once).

use crate::json::escape_at;
use crate::literals::Literals;
use memchr::memmem;
use std::collections::HashSet;

/// How a body may encode pattern characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    L,
    P,
}

/// The characters that occur in some pattern.
#[derive(Debug, Clone)]
struct CharSet {
    /// One bit per BMP code point.
    bmp: Box<[u64]>,
    astral: HashSet<char>,
}

impl CharSet {
    fn new<'p>(patterns: impl Iterator<Item = &'p str>) -> Self {
        let mut set = CharSet {
            bmp: vec![0u64; 0x10000 / 64].into_boxed_slice(),
            astral: HashSet::new(),
        };
        for c in patterns.flat_map(str::chars) {
            let cp = c as usize;
            match set.bmp.get_mut(cp / 64) {
                Some(w) => *w |= 1 << (cp % 64),
                None => {
                    set.astral.insert(c);
                }
            }
        }
        set
    }

    fn contains(&self, c: char) -> bool {
        let cp = c as usize;
        match self.bmp.get(cp / 64) {
            Some(w) => w & (1 << (cp % 64)) != 0,
            None => self.astral.contains(&c),
        }
    }
}

/// Append the encoding of `p` in `dialect` to `out`.
fn encode(p: &str, dialect: Dialect, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let u = |out: &mut Vec<u8>, unit: u16| {
        out.extend_from_slice(b"\\u");
        out.extend((0..4).rev().map(|k| HEX[usize::from((unit >> (4 * k)) & 15)]));
    };
    for c in p.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => u(out, c as u16),
            c if dialect == Dialect::P && !c.is_ascii() => {
                let mut units = [0u16; 2];
                for &unit in c.encode_utf16(&mut units).iter() {
                    u(out, unit);
                }
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

/// A prepared set of non-empty patterns, searched in escaped JSON string text.
#[derive(Debug, Clone)]
pub(crate) struct EscapedLiterals {
    patterns: usize,
    /// The distinct encodings of the patterns, searched together...
    encodings: Literals,
    /// ... and the pattern each one encodes.
    pattern_of: Vec<u32>,
    chars: CharSet,
}

impl EscapedLiterals {
    /// Prepares `patterns` (all non-empty); ids are their indices.
    pub(crate) fn new(patterns: &[&str]) -> Self {
        let mut encodings: Vec<Box<[u8]>> = Vec::new();
        let mut pattern_of = Vec::new();
        for (id, p) in patterns.iter().enumerate() {
            for dialect in [Dialect::L, Dialect::P] {
                let mut e = Vec::new();
                encode(p, dialect, &mut e);
                if dialect == Dialect::L || encodings.last().is_none_or(|l| **l != *e) {
                    encodings.push(e.into_boxed_slice());
                    pattern_of.push(id as u32);
                }
            }
        }
        EscapedLiterals {
            patterns: patterns.len(),
            encodings: Literals::new(encodings),
            pattern_of,
            chars: CharSet::new(patterns.iter().copied()),
        }
    }

    /// Appends to `out` the id of each pattern that occurs in the decoded form of `text` (the
    /// inside of a JSON string literal), once each. Returns false, with `out` unchanged, when
    /// the text encodes a pattern character in a way neither dialect does: the caller must then
    /// decode it and search the decoded bytes.
    pub(crate) fn find_all(&self, text: &str, out: &mut Vec<u32>) -> bool {
        let mut scan = Scan {
            chars: &self.chars,
            text: text.as_bytes(),
            run: (0, 0),
            next_free: 0,
            l_ok: true,
            p_ok: true,
        };
        scan.classify();
        if !(scan.l_ok || scan.p_ok) {
            return false;
        }
        let mut seen = vec![false; self.patterns];
        self.encodings.find_all(
            scan.text,
            |start| scan.aligned(start),
            |enc| {
                if let Some(&id) = self.pattern_of.get(enc as usize) {
                    if seen.get(id as usize) == Some(&false) {
                        seen[id as usize] = true;
                        out.push(id);
                    }
                }
            },
        );
        true
    }
}

/// The escapes of one body.
struct Scan<'l, 't> {
    chars: &'l CharSet,
    text: &'t [u8],
    /// The last backslash run looked at: (its start, a position in it).
    run: (usize, usize),
    /// End of the last escape parsed: a pair before it is inside it.
    next_free: usize,
    /// The body is consistent with dialect L / P.
    l_ok: bool,
    p_ok: bool,
}

impl Scan<'_, '_> {
    /// Checks every `\u` and `\/` escape (found with SIMD substring search: they are rare
    /// next to `\"`), then, if it matters, whether any byte is non-ASCII.
    fn classify(&mut self) {
        let text = self.text;
        if self.chars.contains('/') && memmem::find_iter(text, b"\\/").any(|at| self.escape_start(at)) {
            (self.l_ok, self.p_ok) = (false, false);
            return;
        }
        for at in memmem::find_iter(text, b"\\u") {
            self.escape(at);
            if !(self.l_ok || self.p_ok) {
                return;
            }
        }
        if !self.l_ok && !text.is_ascii() {
            self.p_ok = false; // a literal non-ASCII character
        }
    }

    /// Start of the run of backslashes that ends at `at` (a backslash).
    fn run_start(&mut self, at: usize) -> usize {
        let (start, seen) = self.run;
        if (start..=seen).contains(&at) {
            return start;
        }
        let run = self.text.get(..=at).unwrap_or_default();
        let start = at + 1 - run.iter().rev().take_while(|&&b| b == b'\\').count();
        self.run = (start, at);
        start
    }

    /// Whether the backslash at `at` starts an escape (in valid JSON, a run of backslashes
    /// starts at a character boundary and alternates escape starts and escaped backslashes).
    fn escape_start(&mut self, at: usize) -> bool {
        self.text.get(at) == Some(&b'\\') && (at - self.run_start(at)) % 2 == 0
    }

    /// A `\u` pair whose backslash is at `at`.
    fn escape(&mut self, at: usize) {
        if at < self.next_free || !self.escape_start(at) {
            return;
        }
        let Some(esc) = escape_at(self.text, at) else { return };
        self.next_free = at + esc.len;
        let c = esc.ch.unwrap_or('\u{fffd}');
        if !self.chars.contains(c) {
            return;
        }
        let seq = self.text.get(at..at + esc.len).unwrap_or_default();
        if esc.len == 2 {
            // `\u` without four hex digits (not valid JSON)
            if esc.ch.is_none() {
                (self.l_ok, self.p_ok) = (false, false);
            }
            return;
        }
        let control = (c as u32) < 0x20 && !matches!(c, '\u{8}' | '\u{c}' | '\n' | '\r' | '\t');
        let lower = !seq.iter().any(|b| matches!(b, b'A'..=b'F'));
        if esc.ch.is_none() || !lower || (c.is_ascii() && !control) {
            (self.l_ok, self.p_ok) = (false, false);
        } else if !control {
            self.l_ok = false; // a non-ASCII character escaped
        }
    }

    /// Whether `at` is a character boundary: no escape (at most 12 bytes) starts before it
    /// and ends after it.
    fn aligned(&mut self, at: usize) -> bool {
        (at.saturating_sub(11)..at)
            .all(|j| !self.escape_start(j) || escape_at(self.text, j).is_none_or(|e| j + e.len <= at))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// What the decoded search finds.
    fn naive(patterns: &[&str], text: &str) -> Vec<u32> {
        let decoded = crate::json::unescape_bytes(text);
        (0..patterns.len() as u32)
            .filter(|&i| {
                let p = patterns[i as usize].as_bytes();
                decoded.windows(p.len()).any(|w| w == p)
            })
            .collect()
    }

    fn found(lits: &EscapedLiterals, text: &str) -> Option<Vec<u32>> {
        let mut v = Vec::new();
        lits.find_all(text, &mut v).then(|| {
            v.sort_unstable();
            v
        })
    }

    /// JSON string inside for `s` as Python (`ascii`) or Go-like encoders write it.
    fn json_inner(s: &str, ascii: bool) -> String {
        let mut v = Vec::new();
        encode(s, if ascii { Dialect::P } else { Dialect::L }, &mut v);
        String::from_utf8(v).unwrap()
    }

    const PATTERNS: [&str; 9] = [
        "BUSY",
        "80.216",
        "Ray ID:",
        "<title>Доступ ограничен</title>",
        "禁止访问",
        "a \"quoted\" word\n",
        "back\\slash",
        "emoji 😀 here",
        "nu\u{1}ll",
    ];

    #[test]
    fn patterns_are_found_in_both_dialects_at_every_offset() {
        let lits = EscapedLiterals::new(&PATTERNS);
        for p in PATTERNS {
            for ascii in [false, true] {
                for before in 0..12 {
                    for after in 0..12 {
                        let body = format!(
                            "{}{p}{}",
                            "é\"x".repeat(before / 3) + &".".repeat(before % 3),
                            "\t".repeat(after)
                        );
                        let text = json_inner(&body, ascii);
                        let got = found(&lits, &text).expect("a dialect");
                        assert_eq!(got, naive(&PATTERNS, &text), "{p:?} {ascii} {before}+{after}");
                        assert!(!got.is_empty());
                    }
                }
            }
        }
    }

    #[test]
    fn matches_inside_escapes_are_not_matches() {
        let lits = EscapedLiterals::new(&["nBUSY", "u0041BUSY", "BUSY", "\\u0041", "d83d\\ude00"]);
        for text in [
            r"\nBUSY",
            r"\u0041BUSY",
            r"\\nBUSY",
            r"\\u0041BUSY",
            r"\ud83d\ude00",
            r"x\\ud83d\\ude00",
        ] {
            let got = found(&lits, text).expect("a dialect");
            assert_eq!(
                got,
                naive(&["nBUSY", "u0041BUSY", "BUSY", "\\u0041", "d83d\\ude00"], text),
                "{text}"
            );
        }
    }

    #[test]
    fn other_encodings_of_pattern_characters_fall_back() {
        let lits = EscapedLiterals::new(&PATTERNS);
        for (text, fits) in [
            (r"\u0042USY", false),      // an ASCII letter escaped
            (r"a\/b", false),           // `\/` for a slash
            (r"\u003CBUSY", false),     // `<` escaped
            (r"\u0022 \\", false),      // `"` as \u0022
            (r"\u043F", false),         // upper-case hex
            ("Д\\u0414", false),        // literal and escaped non-ASCII pattern characters
            (r"\u0414\u0434", true),    // all escaped: Python's default
            ("Д д", true),              // all literal
            (r"\ud83d x \u0001", true), // lone surrogate, but no pattern has U+FFFD
        ] {
            assert_eq!(found(&lits, text).is_some(), fits, "{text}");
        }
        // escapes of characters no pattern has are fine in either dialect
        assert_eq!(found(&lits, r"\u0027 \u00e9 BUSY"), Some(vec![0]));
        assert_eq!(found(&lits, "é \\u00e9 BUSY"), Some(vec![0]));
    }

    #[test]
    fn a_pseudo_random_corpus_agrees_with_the_decoded_search() {
        let mut next = crate::xorshift(0x9E37_79B9_u64);
        let alphabet = ["a", "b", "<", "\"", "\\", "/", "\n", "é", "д", "😀", "u", "0", "\u{1}"];
        let owned: Vec<String> = (0..150)
            .map(|_| (0..1 + next() % 14).map(|_| alphabet[(next() % 13) as usize]).collect())
            .collect();
        let patterns: Vec<&str> = owned.iter().map(String::as_str).collect();
        let lits = EscapedLiterals::new(&patterns);
        let mut hits = 0;
        for round in 0..400 {
            let mut body = String::new();
            while body.len() < (next() % 300) as usize {
                let p = &owned[(next() % owned.len() as u64) as usize];
                let cut = p
                    .char_indices()
                    .map(|(i, _)| i)
                    .nth((next() % 4) as usize)
                    .unwrap_or(p.len());
                body.push_str(if next() % 2 == 0 { p } else { &p[..cut] });
                body.push_str(alphabet[(next() % 13) as usize]);
            }
            let text = json_inner(&body, round % 2 == 0);
            let expected = naive(&patterns, &text);
            hits += expected.len();
            assert_eq!(found(&lits, &text).expect("one dialect"), expected, "{text:?}");
        }
        assert!(hits > 1000, "the corpus exercises matches ({hits})");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod sample_tests {
    use super::*;
    use crate::literals::Literals;

    /// The insides of every `"body": "..."` string literal in the sample measurements.
    fn sample_bodies(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let mut rest = text;
        while let Some(i) = rest.find("\"body\":") {
            rest = rest[i + 7..].trim_start();
            if let Some(s) = rest.strip_prefix('"') {
                let b = s.as_bytes();
                let mut j = 0;
                while j < b.len() && b[j] != b'"' {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
                out.push(&s[..j.min(s.len())]);
                rest = &s[j.min(s.len())..];
            }
        }
        out
    }

    pub(super) fn bodies_of(line: &str) -> Vec<&str> {
        #[derive(serde::Deserialize)]
        struct Line<'a> {
            #[serde(borrow)]
            measurement: &'a serde_json::value::RawValue,
        }
        let line: Line = serde_json::from_str(line).unwrap();
        sample_bodies(line.measurement.get())
    }

    /// The distinct non-empty body patterns of the production fingerprints.
    pub(super) fn body_patterns() -> Vec<String> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/");
        let csv = std::fs::read_to_string(format!("{dir}fingerprints_http.csv")).unwrap();
        let mut rdr = csv::Reader::from_reader(csv.as_bytes());
        let mut patterns: Vec<String> = rdr
            .deserialize::<crate::FingerprintRow>()
            .map(|r| r.unwrap())
            .filter(|r| r.location_found == "body" && !r.pattern.is_empty())
            .map(|r| r.pattern)
            .collect();
        patterns.sort();
        patterns.dedup();
        patterns
    }

    #[test]
    fn the_sample_bodies_give_what_the_decoded_search_gives() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/");
        let patterns = body_patterns();
        let refs: Vec<&str> = patterns.iter().map(String::as_str).collect();
        let escaped = EscapedLiterals::new(&refs);
        let decoded = Literals::new(refs.iter().map(|p| p.as_bytes().into()).collect());
        // the samples are JSON lines whose `measurement` is itself JSON: bodies are doubly
        // escaped there, so take each line's measurement text first
        let samples = std::fs::read_to_string(format!("{dir}samples.jsonl")).unwrap();
        let (mut bodies, mut fallbacks, mut matched) = (0, 0, 0);
        for line in samples.lines().filter(|l| !l.trim().is_empty()) {
            for body in bodies_of(line) {
                bodies += 1;
                let mut want = Vec::new();
                decoded.find_all(&crate::json::unescape_bytes(body), |_| true, |id| want.push(id));
                want.sort_unstable();
                let mut got = Vec::new();
                if escaped.find_all(body, &mut got) {
                    got.sort_unstable();
                    assert_eq!(got, want);
                    matched += got.len();
                } else {
                    fallbacks += 1;
                }
            }
        }
        eprintln!("{bodies} bodies, {fallbacks} decoded, {matched} matches");
        assert!(bodies > 300 && matched > 10);
    }
}
