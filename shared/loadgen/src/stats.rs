//! Latency percentiles (exact, nearest-rank over a sorted vector) and error counts.

use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Nearest-rank percentile of an ascending slice: the smallest value with at least `p` percent
/// of the values at or below it. `None` for an empty slice; `p` is clamped to 0..=100.
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 100.0) };
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.saturating_sub(1).min(sorted.len() - 1))
        .copied()
}

/// A latency distribution, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Latency {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Latency {
    /// Summarises `samples` (sorted here).
    pub fn from_samples(mut samples: Vec<Duration>) -> Latency {
        samples.sort_unstable();
        let ms = |d: Option<Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        let total: Duration = samples.iter().sum();
        Latency {
            count: samples.len(),
            p50_ms: ms(percentile(&samples, 50.0)),
            p99_ms: ms(percentile(&samples, 99.0)),
            max_ms: ms(samples.last().copied()),
            mean_ms: if samples.is_empty() {
                0.0
            } else {
                total.as_secs_f64() * 1000.0 / samples.len() as f64
            },
        }
    }
}

impl std::fmt::Display for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "n={} p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, mean {:.1} ms",
            self.count, self.p50_ms, self.p99_ms, self.max_ms, self.mean_ms
        )
    }
}

/// Counts of failures by `"<step> <status>"` (e.g. `submit 503`, `open transport`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Errors(pub BTreeMap<String, u64>);

impl Errors {
    pub fn add(&mut self, step: &str, what: &str) {
        *self.0.entry(format!("{step} {what}")).or_insert(0) += 1;
    }

    pub fn merge(&mut self, other: Errors) {
        for (k, v) in other.0 {
            *self.0.entry(k).or_insert(0) += v;
        }
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles_of_one_to_a_hundred_are_the_ranks() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 99.5), Some(100));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert_eq!(percentile(&v, 1.0), Some(1));
        assert_eq!(percentile(&v, 1.5), Some(2));
    }

    #[test]
    fn percentiles_of_tiny_or_empty_sets_and_odd_p_are_defined() {
        assert_eq!(percentile::<u32>(&[], 50.0), None);
        assert_eq!(percentile(&[7], 50.0), Some(7));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[1, 2], 50.0), Some(1));
        assert_eq!(percentile(&[1, 2], 51.0), Some(2));
        assert_eq!(percentile(&[1, 2, 3], 150.0), Some(3));
        assert_eq!(percentile(&[1, 2, 3], -5.0), Some(1));
        assert_eq!(percentile(&[1, 2, 3], f64::NAN), Some(1));
    }

    #[test]
    fn a_p99_over_a_thousand_samples_ignores_the_ten_slowest() {
        let mut v: Vec<Duration> = (0..990).map(|_| Duration::from_millis(10)).collect();
        v.extend((0..10).map(|i| Duration::from_secs(1 + i)));
        let l = Latency::from_samples(v);
        assert_eq!(l.count, 1000);
        assert_eq!(l.p50_ms, 10.0);
        assert_eq!(l.p99_ms, 10.0);
        assert_eq!(l.max_ms, 10_000.0);
        assert!(
            (l.mean_ms - (9900.0 + 55_000.0) / 1000.0).abs() < 1e-9,
            "{}",
            l.mean_ms
        );
    }

    #[test]
    fn an_empty_latency_is_all_zero() {
        assert_eq!(Latency::from_samples(Vec::new()), Latency::default());
    }

    #[test]
    fn errors_count_by_step_and_status_and_merge() {
        let mut a = Errors::default();
        a.add("submit", "503");
        a.add("submit", "503");
        let mut b = Errors::default();
        b.add("submit", "503");
        b.add("open", "transport");
        a.merge(b);
        assert_eq!(a.0.get("submit 503"), Some(&3));
        assert_eq!(a.0.get("open transport"), Some(&1));
        assert_eq!(a.total(), 4);
    }
}
