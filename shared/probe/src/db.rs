//! The ClickHouse queries of the probe services, behind the narrow [`TestListDb`] port, with
//! the real adapter ([`ClickHouseTestListDb`]) and an in-memory fake ([`MemoryTestListDb`]).
//!
//! The queries (contract §6) are `ooni_adapters::prio`'s, run here under a timeout.

use async_trait::async_trait;
use ooni_adapters::prio;
use ooni_domain::prio::{CitizenlabEntry, PrioRule};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// A failed query.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("ClickHouse query {query} failed: {source}")]
    Query {
        query: &'static str,
        #[source]
        source: clickhouse::error::Error,
    },
    #[error("ClickHouse query {query} timed out after {after:?}")]
    Timeout {
        query: &'static str,
        after: Duration,
    },
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

/// What the probe services read from ClickHouse.
#[async_trait]
pub trait TestListDb: Send + Sync {
    /// Citizenlab entries for `cc` (uppercase) with measurement counts (all ASNs when 0).
    async fn citizenlab(&self, cc: &str, asn: u32) -> Result<Vec<CitizenlabEntry>, DbError>;
    /// Live prioritisation rules that can apply to `cc`.
    async fn prio_rules(&self, cc: &str) -> Result<Vec<PrioRule>, DbError>;
    /// `(category_code, url)` of every global URL.
    async fn global_urls(&self) -> Result<Vec<(String, String)>, DbError>;
    /// Whether the database answers.
    async fn ping(&self) -> Result<(), DbError>;
}

/// [`TestListDb`] on ClickHouse, every query bounded by a timeout.
#[derive(Clone)]
pub struct ClickHouseTestListDb {
    client: clickhouse::Client,
    timeout: Duration,
}

impl ClickHouseTestListDb {
    pub fn new(client: clickhouse::Client, timeout: Duration) -> Self {
        ClickHouseTestListDb { client, timeout }
    }

    async fn run<T, F>(&self, query: &'static str, fut: F) -> Result<T, DbError>
    where
        F: std::future::Future<Output = clickhouse::error::Result<T>>,
    {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r.map_err(|source| DbError::Query { query, source }),
            Err(_) => Err(DbError::Timeout {
                query,
                after: self.timeout,
            }),
        }
    }
}

#[async_trait]
impl TestListDb for ClickHouseTestListDb {
    async fn citizenlab(&self, cc: &str, asn: u32) -> Result<Vec<CitizenlabEntry>, DbError> {
        self.run(
            "citizenlab",
            prio::citizenlab_entries(&self.client, cc, asn),
        )
        .await
    }

    async fn prio_rules(&self, cc: &str) -> Result<Vec<PrioRule>, DbError> {
        self.run("url_priorities", prio::prio_rules(&self.client, cc))
            .await
    }

    async fn global_urls(&self) -> Result<Vec<(String, String)>, DbError> {
        self.run("global citizenlab", prio::global_urls(&self.client))
            .await
    }

    async fn ping(&self) -> Result<(), DbError> {
        let one: u8 = self
            .run("ping", self.client.query("SELECT toUInt8(1)").fetch_one())
            .await?;
        if one == 1 {
            Ok(())
        } else {
            Err(DbError::Unavailable(format!("SELECT 1 returned {one}")))
        }
    }
}

#[derive(Debug, Default)]
struct MemoryData {
    citizenlab: Vec<CitizenlabEntry>,
    rules: Vec<PrioRule>,
}

/// [`TestListDb`] in memory, for handler tests and benches. `citizenlab` filters the stored
/// entries the way the real query does (lowercase cc, uppercase cc, `ZZ`).
#[derive(Debug, Clone, Default)]
pub struct MemoryTestListDb {
    data: Arc<Mutex<MemoryData>>,
    down: Arc<AtomicBool>,
}

impl MemoryTestListDb {
    pub fn new(citizenlab: Vec<CitizenlabEntry>, rules: Vec<PrioRule>) -> Self {
        MemoryTestListDb {
            data: Arc::new(Mutex::new(MemoryData { citizenlab, rules })),
            down: Arc::default(),
        }
    }

    /// While down, every query fails.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), DbError> {
        if self.down.load(Ordering::SeqCst) {
            Err(DbError::Unavailable(
                "database is down (fault injected)".into(),
            ))
        } else {
            Ok(())
        }
    }

    fn data(&self) -> std::sync::MutexGuard<'_, MemoryData> {
        self.data.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl TestListDb for MemoryTestListDb {
    async fn citizenlab(&self, cc: &str, _asn: u32) -> Result<Vec<CitizenlabEntry>, DbError> {
        self.check()?;
        let low = cc.to_lowercase();
        Ok(self
            .data()
            .citizenlab
            .iter()
            .filter(|e| e.cc == low || e.cc == cc || e.cc == "ZZ")
            .cloned()
            .collect())
    }

    async fn prio_rules(&self, cc: &str) -> Result<Vec<PrioRule>, DbError> {
        self.check()?;
        Ok(self
            .data()
            .rules
            .iter()
            .filter(|r| r.cc == cc || r.cc == "*" || r.cc.is_empty())
            .cloned()
            .collect())
    }

    async fn global_urls(&self) -> Result<Vec<(String, String)>, DbError> {
        self.check()?;
        Ok(self
            .data()
            .citizenlab
            .iter()
            .filter(|e| e.cc == "ZZ")
            .map(|e| (e.category_code.clone(), e.url.clone()))
            .collect())
    }

    async fn ping(&self) -> Result<(), DbError> {
        self.check()
    }
}
