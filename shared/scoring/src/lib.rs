//! Pure fastpath scoring for OONI measurements.
//!
//! A Rust port of the upstream fastpath (`fastpath/core.py`, `db.py`): parse a
//! measurement (bare, inside a `{format, content}` POST envelope, or legacy YAML),
//! score it for every test type, and build the `fastpath` row (and the `obs_openvpn`
//! row for openvpn) with the `scores` column byte-identical to upstream's `ujson`
//! output. No I/O, no async: adapters feed it bytes and fingerprint rows.
//!
//! Parsing is a single borrowed pass with typed views ([`serde_json::value::RawValue`]
//! leaves, `IgnoredAny` for the rest); HTTP bodies are matched against all body
//! fingerprints with one filtered pass over their escaped JSON text ([`escaped`]), or over the
//! decoded bytes ([`literals`]) for bodies encoded in an unusual way and base64 bodies.

mod b64;
mod cli;
mod escaped;
mod fingerprints;
mod json;
mod literals;
mod model;
mod pep440;
mod pyfmt;
mod row;
mod scores;
mod scoring;

pub use cli::score_jsonl_line;
pub use fingerprints::{
    Fingerprint, FingerprintError, FingerprintRow, FingerprintTable, Fingerprints, PatternType, Scope,
};
pub use row::{
    epoch_seconds, parse_only, process, score_measurement, trivial_id, DiscardReason, FastpathRow, ObsOpenvpnRow,
    Outcome,
};
pub use scores::Scores;

/// A xorshift64 generator for the randomized tests (`seed` non-zero).
#[cfg(test)]
pub(crate) fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}
