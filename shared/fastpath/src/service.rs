//! `FastpathService`: builds the `Scorer` function's handler from the process [`Context`]
//! (ClickHouse rows and fingerprints, the incoming bucket) and its settings from the
//! environment.

use crate::fingerprints::{
    ClickHouseFingerprints, DirFingerprints, FingerprintCache, FingerprintSource, RefreshPolicy,
};
use crate::scorer::{Scorer, ScorerConfig};
use crate::store::ClickHouseRowStore;
use async_trait::async_trait;
use ooni_adapters::SystemClock;
use ooni_platform::config::Env;
use ooni_platform::functions::Bucket;
use ooni_platform::{Context, Handler, Service};
use std::sync::Arc;
use tokio::sync::OnceCell;

/// The function this service serves.
pub const SCORER: &str = "Scorer";

/// Settings read at cold start:
/// - `OONI_SUBMISSIONS_MAX_RECEIVE_COUNT`: the queue's `maxReceiveCount` (default 5, as
///   provisioned), so the last attempt is logged as parked;
/// - `OONI_CLICKHOUSE_TIMEOUT_SECS`: bound on each lookup/insert (default 20, under the
///   function's 60 s timeout);
/// - `OONI_FINGERPRINTS_DIR`: read the two CSV files from this directory instead of ClickHouse
///   (local development).
#[derive(Debug, Clone)]
pub struct ScorerSettings {
    pub scorer: ScorerConfig,
    pub clickhouse_timeout: std::time::Duration,
    pub fingerprints_dir: Option<std::path::PathBuf>,
}

impl ScorerSettings {
    pub fn from_env(env: &Env) -> anyhow::Result<Self> {
        let max_receive_count = env.parse(
            "OONI_SUBMISSIONS_MAX_RECEIVE_COUNT",
            ScorerConfig::default().max_receive_count,
        )?;
        let timeout_s: u64 = env.parse("OONI_CLICKHOUSE_TIMEOUT_SECS", 20)?;
        Ok(ScorerSettings {
            scorer: ScorerConfig { max_receive_count },
            clickhouse_timeout: std::time::Duration::from_secs(timeout_s.max(1)),
            fingerprints_dir: env.get("OONI_FINGERPRINTS_DIR").map(Into::into),
        })
    }
}

pub struct FastpathService {
    ctx: Arc<Context>,
    settings: Option<ScorerSettings>,
    scorer: OnceCell<Arc<Scorer>>,
}

impl FastpathService {
    /// Settings from the process environment (read when the handler is built).
    pub fn new(ctx: Arc<Context>) -> Self {
        FastpathService {
            ctx,
            settings: None,
            scorer: OnceCell::new(),
        }
    }

    /// Explicit settings (tests).
    pub fn with_settings(ctx: Arc<Context>, settings: ScorerSettings) -> Self {
        FastpathService {
            ctx,
            settings: Some(settings),
            scorer: OnceCell::new(),
        }
    }

    /// The Scorer, built on first use (its counters are visible to tests).
    pub async fn scorer(&self) -> anyhow::Result<Arc<Scorer>> {
        self.scorer
            .get_or_try_init(|| async {
                let settings = match &self.settings {
                    Some(s) => s.clone(),
                    None => ScorerSettings::from_env(&Env::process())?,
                };
                let client = self.ctx.clickhouse();
                let source: Arc<dyn FingerprintSource> = match &settings.fingerprints_dir {
                    Some(dir) => Arc::new(DirFingerprints::new(dir.clone())),
                    None => Arc::new(ClickHouseFingerprints::new(client.clone())),
                };
                let cache =
                    FingerprintCache::new(source, Arc::new(SystemClock), RefreshPolicy::hourly());
                let store =
                    ClickHouseRowStore::new(client).with_timeout(settings.clickhouse_timeout);
                let archive = Arc::new(ooni_uploader::BodyLookup::from_context(&self.ctx));
                let scorer = Scorer::new(
                    cache,
                    self.ctx.object_store(Bucket::Incoming),
                    Arc::new(store),
                    settings.scorer,
                );
                Ok(Arc::new(scorer.with_archive(archive)))
            })
            .await
            .cloned()
    }
}

#[async_trait]
impl Service for FastpathService {
    fn functions(&self) -> Vec<&'static str> {
        vec![SCORER]
    }

    async fn build(&self, function: &str) -> anyhow::Result<Option<Handler>> {
        if function != SCORER {
            return Ok(None);
        }
        Ok(Some(Handler::Sqs(self.scorer().await?)))
    }
}
