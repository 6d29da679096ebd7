//! Bench support shared by the `ooni-scoring`, `ooni-domain` and `ooni-probe` benches: run a
//! closure for a few timed rounds on the calling thread and report its throughput both per
//! wall-clock second and per CPU-second of that thread.
//!
//! The machine is shared, so wall-clock figures move with everybody else's load; the thread's
//! own CPU time (`CLOCK_THREAD_CPUTIME_ID`, through `rustix`'s safe wrapper) does not count the
//! time the thread waited for a core. Each figure is the best round, the least disturbed one.
//! Included with `#[path]` (it is not a bench target of its own: it lives in a subfolder).

use std::time::{Duration, Instant};

/// CPU time used so far by the calling thread.
pub fn thread_cpu() -> Duration {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// Operations per second of the best round, by each clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rate {
    /// Per wall-clock second.
    pub wall: f64,
    /// Per CPU-second of the benchmarking thread.
    pub cpu: f64,
}

/// Calls `f` (each call doing `ops_per_call` operations) for `rounds` rounds of about `round`
/// of wall time each, after one warm-up round, and returns the best rate seen by each clock.
pub fn measure(rounds: usize, round: Duration, ops_per_call: u64, mut f: impl FnMut()) -> Rate {
    let mut best = Rate::default();
    for r in 0..=rounds {
        let (wall0, cpu0) = (Instant::now(), thread_cpu());
        let mut calls = 0u64;
        while wall0.elapsed() < round {
            f();
            calls += 1;
        }
        let ops = (calls * ops_per_call) as f64;
        let wall = wall0.elapsed().as_secs_f64();
        let cpu = thread_cpu().saturating_sub(cpu0).as_secs_f64();
        if r == 0 {
            continue; // warm-up: caches, allocator, lazily built state
        }
        best.wall = best.wall.max(ops / wall);
        if cpu > 0.0 {
            best.cpu = best.cpu.max(ops / cpu);
        }
    }
    best
}
