//! Admission of submissions, shared by all emulated probes: the offered rate (the k-th
//! submission may start at `start + k / rate`, an open-loop schedule that does not slow down
//! when the server does, so queueing shows up as latency) and the stop rule (a count or a
//! duration).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// When the run ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    /// After this many submissions have been started.
    Count(u64),
    /// When no submission may start any more this long after the start.
    Duration(Duration),
}

/// Hands out submission slots.
#[derive(Debug)]
pub struct Pacer {
    start: Instant,
    rate: Option<f64>,
    limit: Limit,
    issued: AtomicU64,
}

/// What a caller may do now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Slot {
    /// Submission number `k`; wait until `at` before starting it.
    Go { k: u64, at: Instant },
    /// The run is over.
    Stop,
}

impl Pacer {
    /// `rate` in submissions per second (`None`: as fast as the probes go). A rate that is not
    /// a positive finite number counts as `None`.
    pub fn new(start: Instant, rate: Option<f64>, limit: Limit) -> Self {
        let rate = rate.filter(|r| r.is_finite() && *r > 0.0);
        Pacer {
            start,
            rate,
            limit,
            issued: AtomicU64::new(0),
        }
    }

    /// The offset from the start at which submission `k` may begin.
    pub fn offset_of(&self, k: u64) -> Duration {
        match self.rate {
            Some(r) => Duration::from_secs_f64(k as f64 / r),
            None => Duration::ZERO,
        }
    }

    /// Decides slot `k` given the current time (pure: the scheduling rule).
    pub fn decide(&self, k: u64, now: Instant) -> Slot {
        let at = self.start + self.offset_of(k);
        match self.limit {
            Limit::Count(n) if k >= n => Slot::Stop,
            Limit::Duration(d) if now.max(at) >= self.start + d => Slot::Stop,
            _ => Slot::Go { k, at },
        }
    }

    /// Takes the next slot and sleeps until it may start; `None` when the run is over.
    pub async fn acquire(&self) -> Option<u64> {
        let k = self.issued.fetch_add(1, Ordering::Relaxed);
        match self.decide(k, Instant::now()) {
            Slot::Stop => None,
            Slot::Go { k, at } => {
                tokio::time::sleep_until(at).await;
                Some(k)
            }
        }
    }

    /// Whether the run is over for a caller that is not about to submit (e.g. before a
    /// check-in): the count is used up or the duration has passed.
    pub fn finished(&self) -> bool {
        let next = self.issued.load(Ordering::Relaxed);
        matches!(self.decide(next, Instant::now()), Slot::Stop)
    }

    pub fn start(&self) -> Instant {
        self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_a_rate_slot_k_starts_k_over_rate_seconds_after_the_start() {
        let start = Instant::now();
        let p = Pacer::new(start, Some(4.0), Limit::Count(100));
        assert_eq!(p.offset_of(0), Duration::ZERO);
        assert_eq!(p.offset_of(2), Duration::from_millis(500));
        assert_eq!(p.offset_of(40), Duration::from_secs(10));
        assert_eq!(
            p.decide(8, start),
            Slot::Go {
                k: 8,
                at: start + Duration::from_secs(2)
            }
        );
    }

    #[test]
    fn without_a_rate_every_slot_may_start_at_once() {
        let start = Instant::now();
        for rate in [
            None,
            Some(0.0),
            Some(-1.0),
            Some(f64::NAN),
            Some(f64::INFINITY),
        ] {
            let p = Pacer::new(start, rate, Limit::Count(10));
            assert_eq!(p.decide(9, start), Slot::Go { k: 9, at: start }, "{rate:?}");
        }
    }

    #[test]
    fn a_count_limit_stops_at_exactly_n_slots() {
        let start = Instant::now();
        let p = Pacer::new(start, None, Limit::Count(3));
        assert!(matches!(p.decide(2, start), Slot::Go { .. }));
        assert_eq!(p.decide(3, start), Slot::Stop);
    }

    #[test]
    fn a_duration_limit_stops_slots_scheduled_or_asked_for_after_the_end() {
        let start = Instant::now();
        let p = Pacer::new(start, Some(10.0), Limit::Duration(Duration::from_secs(2)));
        // slot 19 is due at 1.9 s, slot 20 at 2.0 s
        assert!(matches!(p.decide(19, start), Slot::Go { .. }));
        assert_eq!(p.decide(20, start), Slot::Stop);
        // asked for late: stop even if it was due earlier
        assert_eq!(p.decide(5, start + Duration::from_secs(3)), Slot::Stop);
        let unpaced = Pacer::new(start, None, Limit::Duration(Duration::from_secs(2)));
        assert!(matches!(
            unpaced.decide(1_000_000, start + Duration::from_secs(1)),
            Slot::Go { .. }
        ));
        assert_eq!(
            unpaced.decide(0, start + Duration::from_secs(2)),
            Slot::Stop
        );
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_hands_out_each_slot_once_and_paces_them() {
        let start = Instant::now();
        let p = Pacer::new(start, Some(2.0), Limit::Count(4));
        let mut got = Vec::new();
        while let Some(k) = p.acquire().await {
            got.push((k, Instant::now() - start));
        }
        assert_eq!(
            got,
            vec![
                (0, Duration::ZERO),
                (1, Duration::from_millis(500)),
                (2, Duration::from_secs(1)),
                (3, Duration::from_millis(1500)),
            ]
        );
        assert!(p.finished());
    }
}
