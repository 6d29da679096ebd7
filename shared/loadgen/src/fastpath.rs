//! Time to ClickHouse: waits until every accepted measurement uid is a row of `fastpath`,
//! polling while the load runs, and measures from the submit answer to the poll that first saw
//! the row (so the figures have the poll interval as their resolution).

use crate::stats::{Errors, Latency};
use async_trait::async_trait;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Most uids in one lookup query.
pub const LOOKUP_BATCH: usize = 1000;

/// Which of some measurement uids are rows of the `fastpath` table.
#[async_trait]
pub trait FastpathLookup: Send + Sync {
    /// The subset of `uids` that are present (any order).
    async fn present(&self, uids: &[String]) -> anyhow::Result<Vec<String>>;
}

#[async_trait]
impl FastpathLookup for clickhouse::Client {
    async fn present(&self, uids: &[String]) -> anyhow::Result<Vec<String>> {
        let found = self
            .query("SELECT DISTINCT measurement_uid FROM fastpath WHERE measurement_uid IN ?")
            .bind(uids)
            .with_setting("max_query_size", "10000000")
            .fetch_all::<String>()
            .await?;
        Ok(found)
    }
}

/// How the wait went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClickHouseReport {
    /// Uids handed to the waiter.
    pub expected: usize,
    /// Uids seen in `fastpath`.
    pub seen: usize,
    /// Uids still absent when the wait gave up.
    pub missing: usize,
    /// Submit answer to first poll that saw the row.
    pub time_to_row: Latency,
    /// The resolution of `time_to_row`.
    pub poll_interval_ms: f64,
    /// From the end of the submissions to the last row seen (or to giving up).
    pub drain_secs: f64,
    /// Failed lookups, by kind.
    pub errors: Errors,
    /// A few of the missing uids, for a look in the logs.
    pub missing_sample: Vec<String>,
}

/// Settings of the waiter.
#[derive(Clone)]
pub struct WaitOptions {
    pub lookup: Arc<dyn FastpathLookup>,
    pub poll_interval: Duration,
    /// How long to keep waiting after the last submission.
    pub timeout: Duration,
}

/// Receives `(uid, answered_at)` until the channel closes, then keeps polling until every uid
/// was seen or `timeout` passed since the close.
pub async fn wait_for_rows(
    opts: WaitOptions,
    mut rx: mpsc::UnboundedReceiver<(String, Instant)>,
) -> ClickHouseReport {
    let mut pending: HashMap<String, Instant> = HashMap::new();
    let mut seen: Vec<Duration> = Vec::new();
    let mut errors = Errors::default();
    let mut expected = 0usize;
    let mut closed_at: Option<Instant> = None;
    let mut last_seen_at: Option<Instant> = None;
    let mut tick = tokio::time::interval(opts.poll_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            msg = rx.recv(), if closed_at.is_none() => match msg {
                Some((uid, at)) => {
                    expected += 1;
                    pending.insert(uid, at);
                    continue;
                }
                None => closed_at = Some(Instant::now()),
            },
            _ = tick.tick() => {}
        }
        if !pending.is_empty() {
            let uids: Vec<String> = pending.keys().cloned().collect();
            for chunk in uids.chunks(LOOKUP_BATCH) {
                match opts.lookup.present(chunk).await {
                    Ok(found) => {
                        let now = Instant::now();
                        for uid in found {
                            if let Some(at) = pending.remove(&uid) {
                                seen.push(now.saturating_duration_since(at));
                                last_seen_at = Some(now);
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "fastpath lookup failed");
                        errors.add("lookup", "error");
                    }
                }
            }
        }
        if let Some(closed) = closed_at {
            if pending.is_empty() || closed.elapsed() >= opts.timeout {
                break;
            }
        }
    }
    let closed = closed_at.unwrap_or_else(Instant::now);
    let end = if pending.is_empty() {
        last_seen_at.unwrap_or(closed).max(closed)
    } else {
        Instant::now()
    };
    let mut missing_sample: Vec<String> = pending.keys().cloned().collect();
    missing_sample.sort();
    missing_sample.truncate(5);
    ClickHouseReport {
        expected,
        seen: seen.len(),
        missing: pending.len(),
        time_to_row: Latency::from_samples(seen),
        poll_interval_ms: opts.poll_interval.as_secs_f64() * 1000.0,
        drain_secs: end.saturating_duration_since(closed).as_secs_f64(),
        errors,
        missing_sample,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Mutex;

    /// Rows "appear" a fixed time after the uid is first looked up; one uid never appears;
    /// the first lookup fails.
    struct Fake {
        delay: Duration,
        first_asked: Mutex<HashMap<String, Instant>>,
        calls: Mutex<usize>,
        never: String,
        max_batch: Mutex<usize>,
    }

    #[async_trait]
    impl FastpathLookup for Fake {
        async fn present(&self, uids: &[String]) -> anyhow::Result<Vec<String>> {
            {
                let mut m = self.max_batch.lock().unwrap();
                *m = (*m).max(uids.len());
                let mut c = self.calls.lock().unwrap();
                *c += 1;
                if *c == 1 {
                    anyhow::bail!("connection refused");
                }
            }
            let now = Instant::now();
            let mut asked = self.first_asked.lock().unwrap();
            Ok(uids
                .iter()
                .filter(|u| **u != self.never)
                .filter(|u| now - *asked.entry((*u).clone()).or_insert(now) >= self.delay)
                .cloned()
                .collect())
        }
    }

    fn fake(delay: Duration, never: &str) -> Arc<Fake> {
        Arc::new(Fake {
            delay,
            first_asked: Mutex::new(HashMap::new()),
            calls: Mutex::new(0),
            never: never.into(),
            max_batch: Mutex::new(0),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn every_uid_is_timed_from_its_answer_to_the_poll_that_saw_it() {
        let lookup = fake(Duration::from_millis(300), "");
        let (tx, rx) = mpsc::unbounded_channel();
        let opts = WaitOptions {
            lookup: lookup.clone(),
            poll_interval: Duration::from_millis(100),
            timeout: Duration::from_secs(5),
        };
        let waiter = tokio::spawn(wait_for_rows(opts, rx));
        for i in 0..2500 {
            tx.send((format!("uid{i}"), Instant::now())).unwrap();
        }
        drop(tx);
        let r = waiter.await.unwrap();
        assert_eq!((r.expected, r.seen, r.missing), (2500, 2500, 0));
        assert!(
            r.time_to_row.p50_ms >= 300.0 && r.time_to_row.max_ms <= 600.0,
            "{:?}",
            r.time_to_row
        );
        assert_eq!(r.errors.0.get("lookup error"), Some(&1));
        assert_eq!(*lookup.max_batch.lock().unwrap(), LOOKUP_BATCH);
        assert!(r.missing_sample.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_row_that_never_appears_is_reported_missing_after_the_timeout() {
        let lookup = fake(Duration::ZERO, "lost");
        let (tx, rx) = mpsc::unbounded_channel();
        let opts = WaitOptions {
            lookup,
            poll_interval: Duration::from_millis(250),
            timeout: Duration::from_secs(3),
        };
        let start = Instant::now();
        let waiter = tokio::spawn(wait_for_rows(opts, rx));
        for uid in ["a", "lost", "b"] {
            tx.send((uid.to_owned(), Instant::now())).unwrap();
        }
        drop(tx);
        let r = waiter.await.unwrap();
        assert_eq!((r.expected, r.seen, r.missing), (3, 2, 1));
        assert_eq!(r.missing_sample, vec!["lost".to_owned()]);
        let waited = Instant::now() - start;
        assert!(
            waited >= Duration::from_secs(3) && waited < Duration::from_secs(4),
            "{waited:?}"
        );
        assert!(r.drain_secs >= 3.0);
        let uniq: HashSet<_> = r.missing_sample.iter().collect();
        assert_eq!(uniq.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_to_wait_for_ends_at_once() {
        let (tx, rx) = mpsc::unbounded_channel::<(String, Instant)>();
        drop(tx);
        let opts = WaitOptions {
            lookup: fake(Duration::ZERO, ""),
            poll_interval: Duration::from_millis(100),
            timeout: Duration::from_secs(60),
        };
        let start = Instant::now();
        let r = wait_for_rows(opts, rx).await;
        assert_eq!((r.expected, r.seen, r.missing), (0, 0, 0));
        assert!(Instant::now() - start < Duration::from_secs(1));
    }
}
