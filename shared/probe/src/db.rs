//! The ClickHouse queries of the probe services, behind the narrow [`TestListDb`] port, with
//! the real adapter ([`ClickHouseTestListDb`]) and an in-memory fake ([`MemoryTestListDb`]).
//!
//! Queries (contract §6):
//! * citizenlab URLs of the country (lowercase cc), of the uppercase cc and the global `ZZ`
//!   list, each with the measurements of the last two weeks from `counters_asn_test_list`
//!   (for one ASN unless the ASN is 0). Rows come in a fixed order (`url, cc, category_code`)
//!   so that equal weights keep a reproducible order (upstream had none);
//! * the prioritisation rules of the country: `url_priorities FINAL`, grouped, keeping only
//!   rules whose `sum(sign) > 0` (upstream read the collapsing table without `FINAL` and
//!   without looking at `sign`, so deleted and edited rules still counted);
//! * the global (`ZZ`) URLs for the failover list.

use async_trait::async_trait;
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

#[derive(clickhouse::Row, serde::Deserialize)]
struct CitizenlabRow {
    category_code: String,
    domain: String,
    url: String,
    cc: String,
    msmt_cnt: u64,
}

#[derive(clickhouse::Row, serde::Deserialize)]
struct RuleRow {
    category_code: String,
    cc: String,
    domain: String,
    url: String,
    priority: i32,
}

#[derive(clickhouse::Row, serde::Deserialize)]
struct GlobalRow {
    category_code: String,
    url: String,
}

const CITIZENLAB_SQL: &str = "\
SELECT category_code, domain, url, cc, toUInt64(COALESCE(cnt.msmt_cnt, 0)) AS msmt_cnt
FROM (
    SELECT DISTINCT category_code, domain, url, replaceAll(toString(cc), char(0), '') AS cc
    FROM citizenlab FINAL
    WHERE cc IN (?, ?, 'ZZ')
) AS citiz
LEFT JOIN (
    SELECT input, sum(msmt_cnt) AS msmt_cnt
    FROM counters_asn_test_list
    WHERE probe_cc = ?
      AND week IN (toStartOfWeek(now()), toStartOfWeek(now() - toIntervalWeek(1)))
      AND (? = 0 OR probe_asn = ?)
    GROUP BY input
) AS cnt ON citiz.url = cnt.input
ORDER BY url, cc, category_code";

const RULES_SQL: &str = "\
SELECT category_code, cc, domain, url, priority
FROM url_priorities FINAL
WHERE cc = ? OR cc = '*' OR cc = ''
GROUP BY category_code, cc, domain, url, priority
HAVING sum(sign) > 0
ORDER BY category_code, cc, domain, url, priority";

const GLOBAL_SQL: &str = "\
SELECT DISTINCT category_code, url FROM citizenlab FINAL WHERE cc = 'ZZ' ORDER BY category_code, url";

#[async_trait]
impl TestListDb for ClickHouseTestListDb {
    async fn citizenlab(&self, cc: &str, asn: u32) -> Result<Vec<CitizenlabEntry>, DbError> {
        let q = self
            .client
            .query(CITIZENLAB_SQL)
            .bind(cc.to_lowercase())
            .bind(cc)
            .bind(cc)
            .bind(asn)
            .bind(asn);
        let rows: Vec<CitizenlabRow> = self.run("citizenlab", q.fetch_all()).await?;
        Ok(rows
            .into_iter()
            .map(|r| CitizenlabEntry {
                category_code: r.category_code,
                domain: r.domain,
                url: r.url,
                cc: r.cc,
                msmt_cnt: r.msmt_cnt,
            })
            .collect())
    }

    async fn prio_rules(&self, cc: &str) -> Result<Vec<PrioRule>, DbError> {
        let q = self.client.query(RULES_SQL).bind(cc);
        let rows: Vec<RuleRow> = self.run("url_priorities", q.fetch_all()).await?;
        Ok(rows
            .into_iter()
            .map(|r| PrioRule {
                category_code: r.category_code,
                cc: r.cc,
                domain: r.domain,
                url: r.url,
                priority: i64::from(r.priority),
            })
            .collect())
    }

    async fn global_urls(&self) -> Result<Vec<(String, String)>, DbError> {
        let rows: Vec<GlobalRow> = self
            .run(
                "global citizenlab",
                self.client.query(GLOBAL_SQL).fetch_all(),
            )
            .await?;
        Ok(rows.into_iter().map(|r| (r.category_code, r.url)).collect())
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
