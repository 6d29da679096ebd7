//! Per-client quotas for the metered (tier-1 query) functions: the [`Metered`] decorator, the
//! budget policy ([`Quotas`]), the [`QuotaStore`] port with its DynamoDB adapter and an
//! in-memory fake, and the admin summary `GET /api/_/quotas_summary`.
//!
//! - **Who is metered.** A client is its network: the /24 (IPv4) or /48 (IPv6) of its address
//!   (`ooni_platform::request::client_ip`, honouring only trusted proxy hops), hashed with a
//!   keyed BLAKE2b (secret `OONI_QUOTA_HASH_KEY`) so no address is stored. A request with a
//!   valid user session is metered by account instead, with a larger budget. Allow-listed
//!   networks and unmetered paths (configuration) are not metered.
//! - **What is counted.** Milliseconds of request processing (at least 1 per request), as
//!   upstream counted request time, against daily, weekly (ISO week) and monthly budgets.
//!   Windows are fixed calendar periods in UTC: a budget refills when its period ends.
//! - **Where.** DynamoDB table `Quotas`: one counter item per (window, client), updated with an
//!   atomic `ADD` (`DynamoTable::increment_with_ttl`) and expiring a week after its window.
//!   Partition keys are sharded 16 ways so one busy day is not one hot partition, and so the
//!   admin summary can list a window's clients with 16 queries.
//! - **Flow.** Before the handler runs, the client's usage is checked (from this container's
//!   memory of its last charge, else one read per window); a client over any budget gets 429
//!   `{"error":"quota exceeded"}` with `X-RateLimit-Remaining: 0` and the handler never runs.
//!   After it, the elapsed time is charged and `X-RateLimit-Remaining` (whole seconds left in
//!   the tightest window) is set on the response. DynamoDB trouble never fails a request: it
//!   is logged and the request is served (fail open).

use crate::State;
use async_trait::async_trait;
use blake2::digest::consts::U16;
use blake2::digest::{KeyInit, Mac};
use blake2::{Blake2b512, Blake2bMac, Digest};
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use lambda_http::Request;
use ooni_adapters::dynamo::{item_i64, item_str};
use ooni_adapters::{Clock, DynamoError, DynamoTable, Secret};
use ooni_platform::auth::{Role, UserAuth};
use ooni_platform::config::Env;
use ooni_platform::response::json;
use ooni_platform::{ApiError, Cache, HttpHandler, HttpResult};
use serde_json::json;
use std::collections::HashMap;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Header carrying the whole seconds left in the tightest window.
pub const REMAINING_HEADER: &str = "x-ratelimit-remaining";
/// How many shards each window's partition key is split into.
const SHARDS: usize = 16;
/// Counter attribute (milliseconds used).
const USED: &str = "used_ms";
/// Cached usage entries kept per container before the cache is reset.
const CACHE_MAX: usize = 50_000;

/// An address or a network in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl FromStr for IpNet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("not an IP address: {a}"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("bad prefix length in {s}"))?,
            None => max,
        };
        Ok(IpNet { addr, prefix })
    }
}

impl IpNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        fn masked(bits: u128, prefix: u8, width: u8) -> u128 {
            if prefix == 0 {
                0
            } else {
                bits >> (width - prefix)
            }
        }
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                masked(u128::from(u32::from(n)), self.prefix, 32)
                    == masked(u128::from(u32::from(a)), self.prefix, 32)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                masked(u128::from(n), self.prefix, 128) == masked(u128::from(a), self.prefix, 128)
            }
            (IpAddr::V4(_), IpAddr::V6(a)) => a
                .to_ipv4_mapped()
                .is_some_and(|v4| self.contains(IpAddr::V4(v4))),
            _ => false,
        }
    }
}

/// Budgets and exemptions.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaConfig {
    /// Per-network budgets in milliseconds of processing time: day, ISO week, month.
    pub ip_budget_ms: [u64; 3],
    /// Per-account budgets (requests with a valid user session).
    pub account_budget_ms: [u64; 3],
    /// Paths never metered: exact, or a prefix when ending in `*`.
    pub unmetered_paths: Vec<String>,
    /// Client networks never metered.
    pub allow_list: Vec<IpNet>,
}

impl Default for QuotaConfig {
    /// Upstream's legacy budgets (4000 s/day, 20000 s/week, 60000 s/month of request time);
    /// accounts get ten times that.
    fn default() -> Self {
        let ip = [4_000_000, 20_000_000, 60_000_000];
        QuotaConfig {
            ip_budget_ms: ip,
            account_budget_ms: ip.map(|b| b * 10),
            unmetered_paths: vec!["/health".into()],
            allow_list: Vec::new(),
        }
    }
}

impl QuotaConfig {
    /// From `OONI_QUOTA_{DAILY,WEEKLY,MONTHLY}_SECS`, `OONI_QUOTA_ACCOUNT_{DAILY,WEEKLY,MONTHLY}_SECS`,
    /// `OONI_QUOTA_UNMETERED_PATHS` and `OONI_QUOTA_ALLOWLIST` (comma lists).
    pub fn from_env(env: &Env) -> anyhow::Result<Self> {
        let d = QuotaConfig::default();
        let secs = |name: &str, default_ms: u64| -> anyhow::Result<u64> {
            Ok(env.parse(name, default_ms / 1000)?.saturating_mul(1000))
        };
        let ip_budget_ms = [
            secs("OONI_QUOTA_DAILY_SECS", d.ip_budget_ms[0])?,
            secs("OONI_QUOTA_WEEKLY_SECS", d.ip_budget_ms[1])?,
            secs("OONI_QUOTA_MONTHLY_SECS", d.ip_budget_ms[2])?,
        ];
        let account_budget_ms = [
            secs("OONI_QUOTA_ACCOUNT_DAILY_SECS", ip_budget_ms[0] * 10)?,
            secs("OONI_QUOTA_ACCOUNT_WEEKLY_SECS", ip_budget_ms[1] * 10)?,
            secs("OONI_QUOTA_ACCOUNT_MONTHLY_SECS", ip_budget_ms[2] * 10)?,
        ];
        let unmetered = env.list("OONI_QUOTA_UNMETERED_PATHS");
        let allow_list = env
            .list("OONI_QUOTA_ALLOWLIST")
            .iter()
            .map(|s| {
                s.parse::<IpNet>()
                    .map_err(|e| anyhow::anyhow!("OONI_QUOTA_ALLOWLIST: {e}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(QuotaConfig {
            ip_budget_ms,
            account_budget_ms,
            unmetered_paths: if unmetered.is_empty() {
                d.unmetered_paths
            } else {
                unmetered
            },
            allow_list,
        })
    }

    pub fn is_unmetered_path(&self, path: &str) -> bool {
        self.unmetered_paths
            .iter()
            .any(|p| match p.strip_suffix('*') {
                Some(prefix) => path.starts_with(prefix),
                None => path == p,
            })
    }
}

/// Whose budget a request is charged to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QuotaKey {
    /// `ip:<32 hex>` or `account:<32 hex>`.
    pub id: String,
    pub account: bool,
}

impl QuotaKey {
    fn shard(&self) -> usize {
        let hex = self.id.rsplit(':').next().unwrap_or("");
        hex.chars()
            .next()
            .and_then(|c| c.to_digit(16))
            .map_or(0, |d| d as usize % SHARDS)
    }
}

/// One budget period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// `d2024-01-31`, `w2024-01-29` (the week's Monday) or `m2024-01`.
    pub id: String,
    pub ends: DateTime<Utc>,
}

/// The day, ISO week and month containing `now`.
pub fn windows(now: DateTime<Utc>) -> [Window; 3] {
    let day = now.date_naive();
    let monday = day - Duration::days(i64::from(day.weekday().num_days_from_monday()));
    let month = NaiveDate::from_ymd_opt(day.year(), day.month(), 1).unwrap_or(day);
    let next_month = month + chrono::Months::new(1);
    let at = |d: NaiveDate| Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default());
    [
        Window {
            id: format!("d{}", day.format("%Y-%m-%d")),
            ends: at(day + Duration::days(1)),
        },
        Window {
            id: format!("w{}", monday.format("%Y-%m-%d")),
            ends: at(monday + Duration::days(7)),
        },
        Window {
            id: format!("m{}", month.format("%Y-%m")),
            ends: at(next_month),
        },
    ]
}

#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    #[error("quota store: {0}")]
    Store(#[from] DynamoError),
}

/// Where usage counters live.
#[async_trait]
pub trait QuotaStore: Send + Sync {
    /// Milliseconds used by `key` in each window.
    async fn usage(&self, key: &QuotaKey, windows: &[Window; 3]) -> Result<[u64; 3], QuotaError>;
    /// Adds `ms` to each window's counter; returns the new totals.
    async fn charge(
        &self,
        key: &QuotaKey,
        windows: &[Window; 3],
        ms: u64,
    ) -> Result<[u64; 3], QuotaError>;
    /// Every client with usage in `window`: (key id, milliseconds used).
    async fn clients(&self, window: &Window) -> Result<Vec<(String, u64)>, QuotaError>;
}

/// [`QuotaStore`] on the DynamoDB `Quotas` table (`pk = quota#<window>#<shard>`, `sk = key`).
pub struct DynamoQuotaStore {
    table: DynamoTable,
}

impl DynamoQuotaStore {
    pub fn new(table: DynamoTable) -> Self {
        DynamoQuotaStore { table }
    }

    fn pk(window: &Window, shard: usize) -> String {
        format!("quota#{}#{shard:x}", window.id)
    }
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

#[async_trait]
impl QuotaStore for DynamoQuotaStore {
    async fn usage(&self, key: &QuotaKey, w: &[Window; 3]) -> Result<[u64; 3], QuotaError> {
        let shard = key.shard();
        let pks = [
            Self::pk(&w[0], shard),
            Self::pk(&w[1], shard),
            Self::pk(&w[2], shard),
        ];
        let (a, b, c) = tokio::join!(
            self.table.get(&pks[0], &key.id),
            self.table.get(&pks[1], &key.id),
            self.table.get(&pks[2], &key.id),
        );
        let used = |item: Option<ooni_adapters::Item>| {
            item.and_then(|i| item_i64(&i, USED)).map_or(0, to_u64)
        };
        Ok([used(a?), used(b?), used(c?)])
    }

    async fn charge(
        &self,
        key: &QuotaKey,
        w: &[Window; 3],
        ms: u64,
    ) -> Result<[u64; 3], QuotaError> {
        let shard = key.shard();
        let by = i64::try_from(ms).unwrap_or(i64::MAX);
        // Counters outlive their window by a week so the summary can still show them.
        let ttl = |win: &Window| (win.ends + Duration::days(7)).timestamp();
        let pks = [
            Self::pk(&w[0], shard),
            Self::pk(&w[1], shard),
            Self::pk(&w[2], shard),
        ];
        let (a, b, c) = tokio::join!(
            self.table
                .increment_with_ttl(&pks[0], &key.id, USED, by, ttl(&w[0])),
            self.table
                .increment_with_ttl(&pks[1], &key.id, USED, by, ttl(&w[1])),
            self.table
                .increment_with_ttl(&pks[2], &key.id, USED, by, ttl(&w[2])),
        );
        Ok([to_u64(a?), to_u64(b?), to_u64(c?)])
    }

    async fn clients(&self, window: &Window) -> Result<Vec<(String, u64)>, QuotaError> {
        let pks: Vec<String> = (0..SHARDS).map(|s| Self::pk(window, s)).collect();
        let mut tasks = tokio::task::JoinSet::new();
        for pk in pks {
            let table = self.table.clone();
            tasks.spawn(async move { table.query_all(&pk, None).await });
        }
        let mut out = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            let items = joined.map_err(|e| {
                QuotaError::Store(DynamoError::Unavailable {
                    operation: "query",
                    table: self.table.table_name().to_owned(),
                    message: e.to_string(),
                })
            })??;
            out.extend(items.iter().filter_map(|i| {
                Some((
                    item_str(i, "sk")?.to_owned(),
                    item_i64(i, USED).map_or(0, to_u64),
                ))
            }));
        }
        Ok(out)
    }
}

/// In-memory [`QuotaStore`] for unit tests and the local dev server without DynamoDB.
#[derive(Default)]
pub struct MemoryQuotaStore {
    counters: Mutex<HashMap<(String, String), u64>>,
}

impl MemoryQuotaStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), u64>> {
        self.counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl QuotaStore for MemoryQuotaStore {
    async fn usage(&self, key: &QuotaKey, w: &[Window; 3]) -> Result<[u64; 3], QuotaError> {
        let m = self.lock();
        Ok(w.clone()
            .map(|win| m.get(&(win.id, key.id.clone())).copied().unwrap_or(0)))
    }

    async fn charge(
        &self,
        key: &QuotaKey,
        w: &[Window; 3],
        ms: u64,
    ) -> Result<[u64; 3], QuotaError> {
        let mut m = self.lock();
        Ok(w.clone().map(|win| {
            let c = m.entry((win.id, key.id.clone())).or_insert(0);
            *c += ms;
            *c
        }))
    }

    async fn clients(&self, window: &Window) -> Result<Vec<(String, u64)>, QuotaError> {
        Ok(self
            .lock()
            .iter()
            .filter(|((w, _), _)| *w == window.id)
            .map(|((_, k), v)| (k.clone(), *v))
            .collect())
    }
}

#[derive(Clone)]
struct Cached {
    window_ids: [String; 3],
    used: [u64; 3],
}

/// The quota policy shared by every metered function of a process.
pub struct Quotas {
    config: QuotaConfig,
    store: Arc<dyn QuotaStore>,
    /// `None` in processes that only read the summary (no metered function).
    hash_key: Option<[u8; 64]>,
    clock: Arc<dyn Clock>,
    auth: Option<UserAuth>,
    trusted_hops: usize,
    cache: Mutex<HashMap<String, Cached>>,
}

/// The outcome of the pre-request check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Within budget; milliseconds left in the tightest window (`None` if unknown).
    Allowed(Option<u64>),
    Exhausted,
}

impl Quotas {
    pub fn new(
        config: QuotaConfig,
        store: Arc<dyn QuotaStore>,
        hash_secret: Option<&Secret>,
        clock: Arc<dyn Clock>,
        auth: Option<UserAuth>,
        trusted_hops: usize,
    ) -> Self {
        let hash_key = hash_secret.map(|secret| {
            // BLAKE2b keys are at most 64 bytes: longer secrets are hashed down first.
            let raw = secret.expose().as_bytes();
            let mut key = [0u8; 64];
            if raw.len() <= 64 {
                key[..raw.len()].copy_from_slice(raw);
            } else {
                key.copy_from_slice(&Blake2b512::digest(raw));
            }
            key
        });
        Quotas {
            config,
            store,
            hash_key,
            clock,
            auth,
            trusted_hops,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Whether requests can be metered (the key-hashing secret is configured).
    pub fn can_meter(&self) -> bool {
        self.hash_key.is_some()
    }

    pub fn config(&self) -> &QuotaConfig {
        &self.config
    }

    /// `prefix:` + 32 hex digits of the keyed BLAKE2b-128 of `data`.
    fn hashed(&self, prefix: &str, data: &[u8]) -> String {
        let key = self.hash_key.unwrap_or([0u8; 64]);
        let mut mac = <Blake2bMac<U16> as KeyInit>::new_from_slice(&key).unwrap_or_else(|_| {
            // Unreachable: a 64-byte key is within BLAKE2b's limit.
            <Blake2bMac<U16> as KeyInit>::new(&Default::default())
        });
        mac.update(prefix.as_bytes());
        mac.update(b"\0");
        mac.update(data);
        format!("{prefix}:{}", hex::encode(mac.finalize().into_bytes()))
    }

    /// The key a request is charged to; `None` when it is not metered (allow-listed client, or
    /// no key-hashing secret, which [`crate::ApiService`] refuses for metered functions).
    pub async fn key_for(&self, req: &Request) -> Option<QuotaKey> {
        self.hash_key?;
        if let Some(auth) = &self.auth {
            match auth.optional(req).await {
                Ok(Some(claims)) => {
                    return Some(QuotaKey {
                        id: self.hashed("account", claims.account_id.as_bytes()),
                        account: true,
                    })
                }
                Ok(None) => {}
                // A bad or expired token on a public route is metered as anonymous.
                Err(_) => {
                    tracing::debug!("invalid session token on a metered route; metering by address")
                }
            }
        }
        match ooni_platform::request::client_ip(req, self.trusted_hops) {
            Some(ip) if self.config.allow_list.iter().any(|n| n.contains(ip)) => None,
            Some(ip) => {
                let bucket = ooni_domain::client_addr::quota_bucket(ip);
                Some(QuotaKey {
                    id: self.hashed("ip", &bucket.key_bytes()),
                    account: false,
                })
            }
            None => {
                tracing::warn!("client address unknown; metering under a shared key");
                Some(QuotaKey {
                    id: self.hashed("ip", b"unknown"),
                    account: false,
                })
            }
        }
    }

    fn budget(&self, key: &QuotaKey) -> [u64; 3] {
        if key.account {
            self.config.account_budget_ms
        } else {
            self.config.ip_budget_ms
        }
    }

    fn remaining(&self, key: &QuotaKey, used: [u64; 3]) -> u64 {
        let budget = self.budget(key);
        (0..3)
            .map(|i| budget[i].saturating_sub(used[i]))
            .min()
            .unwrap_or(0)
    }

    fn cached(&self, key: &QuotaKey, w: &[Window; 3]) -> Option<[u64; 3]> {
        let cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .get(&key.id)
            .filter(|c| (0..3).all(|i| c.window_ids[i] == w[i].id))
            .map(|c| c.used)
    }

    fn remember(&self, key: &QuotaKey, w: &[Window; 3], used: [u64; 3]) {
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(
            key.id.clone(),
            Cached {
                window_ids: w.clone().map(|x| x.id),
                used,
            },
        );
    }

    /// Whether `key` may make a request now.
    pub async fn check(&self, key: &QuotaKey) -> Check {
        let w = windows(self.clock.now());
        let used = match self.cached(key, &w) {
            Some(used) => used,
            None => match self.store.usage(key, &w).await {
                Ok(used) => {
                    self.remember(key, &w, used);
                    used
                }
                Err(e) => {
                    tracing::error!(error = %e, "quota check failed; serving the request");
                    return Check::Allowed(None);
                }
            },
        };
        match self.remaining(key, used) {
            0 => Check::Exhausted,
            left => Check::Allowed(Some(left)),
        }
    }

    /// Charges `ms` to `key`; returns the milliseconds left (`None` if the store failed).
    pub async fn charge(&self, key: &QuotaKey, ms: u64) -> Option<u64> {
        let w = windows(self.clock.now());
        match self.store.charge(key, &w, ms.max(1)).await {
            Ok(used) => {
                self.remember(key, &w, used);
                Some(self.remaining(key, used))
            }
            Err(e) => {
                tracing::error!(error = %e, "quota charge failed");
                None
            }
        }
    }

    /// The 20 clients with the least daily budget left: `[key, seconds left]`.
    pub async fn summary(&self) -> Result<Vec<(String, f64)>, QuotaError> {
        let day = windows(self.clock.now())[0].clone();
        let mut rows: Vec<(String, f64)> = self
            .store
            .clients(&day)
            .await?
            .into_iter()
            .map(|(id, used)| {
                let budget = if id.starts_with("account:") {
                    self.config.account_budget_ms[0]
                } else {
                    self.config.ip_budget_ms[0]
                };
                // Milliseconds fit f64 exactly at these magnitudes.
                let left = budget.saturating_sub(used) as f64 / 1000.0;
                (id, left)
            })
            .collect();
        rows.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        rows.truncate(20);
        Ok(rows)
    }
}

/// Wraps a metered function's handler with the quota check and charge.
pub struct Metered<H: ?Sized> {
    inner: Arc<H>,
    quotas: Arc<Quotas>,
}

impl<H: HttpHandler + ?Sized> Metered<H> {
    pub fn new(inner: Arc<H>, quotas: Arc<Quotas>) -> Self {
        Metered { inner, quotas }
    }
}

fn seconds_header(ms: u64) -> String {
    (ms / 1000).to_string()
}

#[async_trait]
impl<H: HttpHandler + ?Sized> HttpHandler for Metered<H> {
    async fn handle(&self, req: Request) -> HttpResult {
        if self.quotas.config.is_unmetered_path(req.uri().path()) {
            return self.inner.handle(req).await;
        }
        let Some(key) = self.quotas.key_for(&req).await else {
            return self.inner.handle(req).await;
        };
        let before = match self.quotas.check(&key).await {
            Check::Exhausted => return Err(ApiError::too_many_requests()),
            Check::Allowed(left) => left,
        };
        let started = Instant::now();
        let result = self.inner.handle(req).await;
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let left = self
            .quotas
            .charge(&key, ms)
            .await
            .or(before)
            .unwrap_or_else(|| self.quotas.budget(&key)[0]);
        let value = seconds_header(left);
        match result {
            Ok(mut resp) => {
                if let Ok(v) = http::HeaderValue::from_str(&value) {
                    resp.headers_mut().insert(REMAINING_HEADER, v);
                }
                Ok(resp)
            }
            Err(e) => Err(e.with_header(REMAINING_HEADER, value)),
        }
    }
}

/// `GET /api/_/quotas_summary` (admin): the 20 clients closest to their daily budget.
pub async fn quotas_summary(s: Arc<State>, req: Request) -> HttpResult {
    let auth = s.auth.as_ref().ok_or_else(|| {
        ApiError::internal(anyhow::anyhow!("user session keys are not configured"))
    })?;
    auth.require(&req, Role::Admin).await?;
    let rows = s.quotas.summary().await.map_err(ApiError::unavailable)?;
    let body: Vec<serde_json::Value> = rows.into_iter().map(|(k, left)| json!([k, left])).collect();
    json(&body, Cache::NoCache)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use ooni_adapters::FixedClock;
    use ooni_platform::handler::{fn_handler, Handler};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 31, 12, 0, 0).unwrap()
    }

    fn quotas(
        config: QuotaConfig,
        clock: Arc<FixedClock>,
        store: Arc<dyn QuotaStore>,
    ) -> Arc<Quotas> {
        Arc::new(Quotas::new(
            config,
            store,
            Some(&Secret::new("test-quota-key")),
            clock,
            None,
            0,
        ))
    }

    fn req(ip: &str, path: &str) -> Request {
        let mut ctx =
            lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext::default();
        ctx.http.source_ip = Some(ip.to_owned());
        http::Request::builder()
            .uri(path)
            .extension(lambda_http::request::RequestContext::ApiGatewayV2(ctx))
            .body(lambda_http::Body::Empty)
            .unwrap()
    }

    async fn ok(_: Arc<()>, _: Request) -> HttpResult {
        json(&json!({"ok": true}), Cache::NoCache)
    }

    async fn slow(_: Arc<()>, _: Request) -> HttpResult {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        Err(ApiError::bad_request("nope"))
    }

    fn metered(q: Arc<Quotas>, f: Handler) -> Metered<dyn HttpHandler> {
        let Handler::Http(h) = f else { unreachable!() };
        Metered::new(h, q)
    }

    #[test]
    fn windows_are_the_utc_day_iso_week_and_month() {
        let w = windows(now());
        assert_eq!(w[0].id, "d2024-01-31");
        assert_eq!(w[1].id, "w2024-01-29");
        assert_eq!(w[2].id, "m2024-01");
        assert_eq!(
            w[0].ends,
            Utc.with_ymd_and_hms(2024, 2, 1, 0, 0, 0).unwrap()
        );
        assert_eq!(
            w[1].ends,
            Utc.with_ymd_and_hms(2024, 2, 5, 0, 0, 0).unwrap()
        );
        assert_eq!(
            w[2].ends,
            Utc.with_ymd_and_hms(2024, 2, 1, 0, 0, 0).unwrap()
        );
    }

    #[test]
    fn cidrs_match_their_networks_only() {
        let net: IpNet = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        let one: IpNet = "2001:db8::1".parse().unwrap();
        assert!(one.contains("2001:db8::1".parse().unwrap()));
        assert!(!one.contains("2001:db8::2".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
        assert!("0.0.0.0/0"
            .parse::<IpNet>()
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
    }

    #[test]
    fn unmetered_paths_match_exactly_or_by_prefix() {
        let c = QuotaConfig {
            unmetered_paths: vec!["/health".into(), "/api/_/test_*".into()],
            ..QuotaConfig::default()
        };
        assert!(c.is_unmetered_path("/health"));
        assert!(!c.is_unmetered_path("/healthz"));
        assert!(c.is_unmetered_path("/api/_/test_names"));
        assert!(!c.is_unmetered_path("/api/v1/measurements"));
    }

    #[test]
    fn config_reads_budgets_in_seconds_and_rejects_bad_networks() {
        let vars: HashMap<&str, &str> = [
            ("OONI_QUOTA_DAILY_SECS", "10"),
            ("OONI_QUOTA_ALLOWLIST", "1.2.3.4, 10.0.0.0/8"),
        ]
        .into();
        let c =
            QuotaConfig::from_env(&Env::from_fn(|k| vars.get(k).map(|v| v.to_string()))).unwrap();
        assert_eq!(c.ip_budget_ms[0], 10_000);
        assert_eq!(c.account_budget_ms[0], 100_000);
        assert_eq!(c.allow_list.len(), 2);
        let bad: HashMap<&str, &str> = [("OONI_QUOTA_ALLOWLIST", "nope")].into();
        assert!(
            QuotaConfig::from_env(&Env::from_fn(|k| bad.get(k).map(|v| v.to_string()))).is_err()
        );
    }

    #[tokio::test]
    async fn addresses_in_one_slash_24_share_a_key_that_reveals_no_address() {
        let q = quotas(
            QuotaConfig::default(),
            Arc::new(FixedClock::new(now())),
            Arc::new(MemoryQuotaStore::default()),
        );
        let a = q.key_for(&req("192.0.2.10", "/x")).await.unwrap();
        let b = q.key_for(&req("192.0.2.200", "/x")).await.unwrap();
        let c = q.key_for(&req("192.0.3.10", "/x")).await.unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.id.starts_with("ip:") && !a.id.contains("192"));
        assert_eq!(a.id.len(), "ip:".len() + 32);
        let other = Quotas::new(
            QuotaConfig::default(),
            Arc::new(MemoryQuotaStore::default()),
            Some(&Secret::new("another-key")),
            Arc::new(FixedClock::new(now())),
            None,
            0,
        );
        assert_ne!(
            other.key_for(&req("192.0.2.10", "/x")).await.unwrap(),
            a,
            "the key depends on the secret"
        );
    }

    #[tokio::test]
    async fn an_exhausted_budget_gets_429_until_the_window_rolls_over() {
        let clock = Arc::new(FixedClock::new(now()));
        let config = QuotaConfig {
            ip_budget_ms: [1, 1_000_000, 1_000_000],
            ..QuotaConfig::default()
        };
        let q = quotas(config, clock.clone(), Arc::new(MemoryQuotaStore::default()));
        let m = metered(q, fn_handler(Arc::new(()), ok));
        let first = m
            .handle(req("198.51.100.7", "/api/v1/measurements"))
            .await
            .unwrap();
        assert_eq!(first.headers()[REMAINING_HEADER], "0");
        let second = m
            .handle(req("198.51.100.8", "/api/v1/measurements"))
            .await
            .unwrap_err();
        assert_eq!(second.status, 429);
        assert!(second
            .headers
            .iter()
            .any(|(k, v)| *k == REMAINING_HEADER && v == "0"));
        // Another network is unaffected.
        assert!(m
            .handle(req("203.0.113.1", "/api/v1/measurements"))
            .await
            .is_ok());
        // The next day refills the daily budget.
        clock.advance(Duration::days(1));
        assert!(m
            .handle(req("198.51.100.7", "/api/v1/measurements"))
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn errors_are_charged_and_carry_the_remaining_header() {
        let store = Arc::new(MemoryQuotaStore::default());
        let q = quotas(
            QuotaConfig {
                ip_budget_ms: [10_000, 20_000, 30_000],
                ..QuotaConfig::default()
            },
            Arc::new(FixedClock::new(now())),
            store.clone(),
        );
        let m = metered(q.clone(), fn_handler(Arc::new(()), slow));
        let err = m.handle(req("198.51.100.7", "/x")).await.unwrap_err();
        assert_eq!(err.status, 400);
        let left: u64 = err
            .headers
            .iter()
            .find(|(k, _)| *k == REMAINING_HEADER)
            .unwrap()
            .1
            .parse()
            .unwrap();
        assert!(left <= 9, "{left}");
        let key = q.key_for(&req("198.51.100.7", "/x")).await.unwrap();
        let used = store.usage(&key, &windows(now())).await.unwrap();
        assert!(
            used[0] >= 5 && used[0] == used[1] && used[1] == used[2],
            "{used:?}"
        );
    }

    #[tokio::test]
    async fn allow_listed_clients_and_unmetered_paths_are_not_charged() {
        let store = Arc::new(MemoryQuotaStore::default());
        let config = QuotaConfig {
            allow_list: vec!["192.0.2.0/24".parse().unwrap()],
            ..QuotaConfig::default()
        };
        let q = quotas(config, Arc::new(FixedClock::new(now())), store.clone());
        let m = metered(q, fn_handler(Arc::new(()), ok));
        let resp = m
            .handle(req("192.0.2.9", "/api/v1/aggregation"))
            .await
            .unwrap();
        assert!(resp.headers().get(REMAINING_HEADER).is_none());
        let resp = m.handle(req("198.51.100.1", "/health")).await.unwrap();
        assert!(resp.headers().get(REMAINING_HEADER).is_none());
        assert!(store.clients(&windows(now())[0]).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_summary_lists_the_clients_with_least_daily_budget_first() {
        let store = Arc::new(MemoryQuotaStore::default());
        let q = quotas(
            QuotaConfig {
                ip_budget_ms: [10_000, 100_000, 100_000],
                ..QuotaConfig::default()
            },
            Arc::new(FixedClock::new(now())),
            store,
        );
        let a = q.key_for(&req("192.0.2.1", "/")).await.unwrap();
        let b = q.key_for(&req("198.51.100.1", "/")).await.unwrap();
        q.charge(&a, 1_000).await;
        q.charge(&b, 4_000).await;
        let rows = q.summary().await.unwrap();
        assert_eq!(rows, vec![(b.id, 6.0), (a.id, 9.0)]);
    }
}
