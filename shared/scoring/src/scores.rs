//! The scores blob: an insertion-ordered map serialized byte-for-byte like `ujson.dumps`.

use crate::pyfmt;

/// One value in the scores blob.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SVal {
    Float(f64),
    Int(i64),
    Bool(bool),
    Null,
    Str(String),
    /// Already serialized ujson text (echoed measurement values, fingerprint lists).
    Json(String),
    Map(ScoreMap),
}

/// An insertion-ordered map with Python `dict` assignment semantics.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ScoreMap {
    entries: Vec<(&'static str, SVal)>,
}

impl ScoreMap {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// `d[key] = value`: replaces in place, or appends a new key.
    pub(crate) fn set(&mut self, key: &'static str, value: SVal) {
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&SVal> {
        self.entries.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Numeric value of a key (Python bools count as 0/1).
    pub(crate) fn number(&self, key: &str) -> Option<f64> {
        match self.get(key)? {
            SVal::Float(f) => Some(*f),
            SVal::Int(i) => Some(*i as f64),
            SVal::Bool(b) => Some(f64::from(u8::from(*b))),
            _ => None,
        }
    }

    pub(crate) fn write(&self, out: &mut String) {
        out.push('{');
        for (i, (k, v)) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            pyfmt::write_ujson_str(out, k);
            out.push(':');
            v.write(out);
        }
        out.push('}');
    }
}

impl SVal {
    fn write(&self, out: &mut String) {
        match self {
            SVal::Float(f) => pyfmt::write_ujson_float(out, *f),
            SVal::Int(i) => out.push_str(&i.to_string()),
            SVal::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            SVal::Null => out.push_str("null"),
            SVal::Str(s) => pyfmt::write_ujson_str(out, s),
            SVal::Json(j) => out.push_str(j),
            SVal::Map(m) => m.write(out),
        }
    }

    /// Echo a measurement value (`None` when missing).
    pub(crate) fn echo(raw: Option<crate::json::Raw<'_>>) -> SVal {
        match raw {
            None => SVal::Null,
            Some(r) => {
                let mut s = String::new();
                pyfmt::write_ujson_raw(&mut s, r);
                SVal::Json(s)
            }
        }
    }
}

/// The five `blocking_*` keys every scorer starts from.
pub(crate) fn init_scores() -> ScoreMap {
    let mut m = ScoreMap::new();
    for k in [
        "blocking_general",
        "blocking_global",
        "blocking_country",
        "blocking_isp",
        "blocking_local",
    ] {
        m.set(k, SVal::Float(0.0));
    }
    m
}

/// Scores for one measurement, as the fastpath stores them.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    pub(crate) map: ScoreMap,
    json: String,
}

impl Scores {
    pub(crate) fn new(map: ScoreMap) -> Self {
        let mut json = String::with_capacity(256);
        map.write(&mut json);
        Scores { map, json }
    }

    /// The `scores` column: compact ujson text, insertion-ordered keys.
    pub fn as_json(&self) -> &str {
        &self.json
    }

    /// `scores.get("blocking_general", 0.0) > 0.5`
    pub fn anomaly(&self) -> bool {
        self.map.number("blocking_general").unwrap_or(0.0) > 0.5
    }

    /// `scores.get("accuracy", 1.0) < 0.5`
    pub fn msm_failure(&self) -> bool {
        self.map.number("accuracy").unwrap_or(1.0) < 0.5
    }

    /// `scores.get("confirmed", False)` (truthiness)
    pub fn confirmed(&self) -> bool {
        match self.map.get("confirmed") {
            Some(SVal::Bool(b)) => *b,
            Some(SVal::Float(f)) => *f != 0.0,
            Some(SVal::Int(i)) => *i != 0,
            Some(SVal::Null) | None => false,
            Some(_) => true,
        }
    }

    /// `scores["analysis"]["blocking_type"]`, or "" when absent.
    pub fn blocking_type(&self) -> String {
        match self.map.get("analysis") {
            Some(SVal::Map(m)) => match m.get("blocking_type") {
                Some(SVal::Str(s)) => s.clone(),
                _ => String::new(),
            },
            _ => String::new(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn initial_scores_serialize_like_upstream() {
        let s = Scores::new(init_scores());
        assert_eq!(
            s.as_json(),
            r#"{"blocking_general":0.0,"blocking_global":0.0,"blocking_country":0.0,"blocking_isp":0.0,"blocking_local":0.0}"#
        );
        assert!(!s.anomaly() && !s.msm_failure() && !s.confirmed());
    }

    #[test]
    fn assignment_keeps_the_first_insertion_position() {
        let mut m = init_scores();
        m.set("accuracy", SVal::Float(0.0));
        m.set("blocking_general", SVal::Float(2.0));
        let s = Scores::new(m);
        assert!(s.as_json().starts_with(r#"{"blocking_general":2.0,"#));
        assert!(s.as_json().ends_with(r#""accuracy":0.0}"#));
        assert!(s.anomaly() && s.msm_failure());
    }
}
