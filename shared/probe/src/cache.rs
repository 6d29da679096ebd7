//! A value loaded from a slow source (a config-bucket document, a GeoIP database, a ClickHouse
//! list), kept for a time-to-live and refreshed by the first caller after it expires.
//!
//! On a failed refresh the previous value keeps being served (and the refresh is retried after
//! `retry_after`), so an S3 or ClickHouse hiccup never takes check-in down once a value was
//! loaded. Without any value yet, a failure is returned to the caller, and repeated for
//! `retry_after` without hitting the source again.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Why there is no value.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct LoadError(pub Arc<str>);

impl LoadError {
    fn from_anyhow(e: &anyhow::Error) -> Self {
        LoadError(format!("{e:#}").into())
    }
}

#[derive(Debug)]
struct Slot<T> {
    value: Option<(Arc<T>, Instant)>,
    /// The last failure and when it happened.
    failure: Option<(LoadError, Instant)>,
}

/// A cached value with a time-to-live. See the module docs.
#[derive(Debug)]
pub struct Cached<T> {
    ttl: Duration,
    retry_after: Duration,
    slot: Mutex<Slot<T>>,
    refresh: tokio::sync::Mutex<()>,
}

impl<T> Cached<T> {
    pub fn new(ttl: Duration) -> Self {
        Cached {
            ttl,
            retry_after: Duration::from_secs(30).min(ttl),
            slot: Mutex::new(Slot {
                value: None,
                failure: None,
            }),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    /// A cache that starts out holding `value` (tests, benches).
    pub fn with_value(ttl: Duration, value: T) -> Self {
        let c = Cached::new(ttl);
        c.lock().value = Some((Arc::new(value), Instant::now()));
        c
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slot<T>> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current value if it is fresh, or the last error if it is recent.
    fn peek(&self) -> Option<Result<Arc<T>, LoadError>> {
        let slot = self.lock();
        let now = Instant::now();
        match (&slot.value, &slot.failure) {
            (Some((v, at)), _) if now.duration_since(*at) < self.ttl => Some(Ok(v.clone())),
            // Stale, but a refresh failed recently: keep serving the old value.
            (Some((v, _)), Some((_, failed))) if now.duration_since(*failed) < self.retry_after => {
                Some(Ok(v.clone()))
            }
            (None, Some((e, failed))) if now.duration_since(*failed) < self.retry_after => {
                Some(Err(e.clone()))
            }
            _ => None,
        }
    }

    /// The value, loading it with `load` when absent or expired.
    pub async fn get<F, Fut>(&self, load: F) -> Result<Arc<T>, LoadError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = anyhow::Result<T>>,
    {
        if let Some(r) = self.peek() {
            return r;
        }
        let _guard = self.refresh.lock().await;
        // Another caller may have refreshed while we waited.
        if let Some(r) = self.peek() {
            return r;
        }
        match load().await {
            Ok(v) => {
                let v = Arc::new(v);
                let mut slot = self.lock();
                slot.value = Some((v.clone(), Instant::now()));
                slot.failure = None;
                Ok(v)
            }
            Err(e) => {
                let err = LoadError::from_anyhow(&e);
                let mut slot = self.lock();
                slot.failure = Some((err.clone(), Instant::now()));
                match &slot.value {
                    Some((v, _)) => {
                        tracing::warn!(error = %err, "refresh failed; serving the previous value");
                        Ok(v.clone())
                    }
                    None => Err(err),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn a_fresh_value_is_loaded_once() {
        let c: Cached<u32> = Cached::new(Duration::from_secs(60));
        let calls = AtomicU32::new(0);
        for _ in 0..3 {
            let v = c
                .get(|| async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Ok(7)
                })
                .await
                .unwrap();
            assert_eq!(*v, 7);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_expired_value_is_reloaded() {
        let c: Cached<u32> = Cached::new(Duration::ZERO);
        assert_eq!(*c.get(|| async { Ok(1) }).await.unwrap(), 1);
        assert_eq!(*c.get(|| async { Ok(2) }).await.unwrap(), 2);
    }

    #[tokio::test]
    async fn a_failed_refresh_keeps_serving_the_previous_value() {
        let c: Cached<u32> = Cached::new(Duration::ZERO);
        assert_eq!(*c.get(|| async { Ok(1) }).await.unwrap(), 1);
        let v = c
            .get(|| async { Err(anyhow::anyhow!("s3 down")) })
            .await
            .unwrap();
        assert_eq!(*v, 1);
    }

    #[tokio::test]
    async fn without_a_value_a_failure_is_returned_and_not_retried_at_once() {
        let c: Cached<u32> = Cached::new(Duration::from_secs(60));
        let err = c
            .get(|| async { Err(anyhow::anyhow!("s3 down")) })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("s3 down"));
        let calls = AtomicU32::new(0);
        let again = c
            .get(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok(3)
            })
            .await;
        assert!(again.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }
}
