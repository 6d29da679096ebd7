//! Tier-1 read API: measurement listing and lookup, aggregation, Explorer statistics and
//! per-client quotas, served by the `ooni-api-fn` binary (every function with
//! `binary: Binary::Api` in `ooni_platform::functions`).
//!
//! - [`measurements`]: `/api/v1/measurements`, `/measurement/{uid}`, `/raw_measurement`,
//!   `/measurement_meta`.
//! - [`aggregation`]: `/api/v1/aggregation`, `/api/v1/torsf_stats`.
//! - [`stats`]: Explorer's private statistics under `/api/_/`.
//! - [`quotas`]: the [`quotas::Metered`] decorator and `/api/_/quotas_summary`.
//! - [`body`]: the [`body::BodyStore`] port (incoming bucket, then `jsonl` + data bucket).
//! - [`dedup`]: why no read path shows a measurement twice.
//! - [`db`], [`sql`], [`params`]: ClickHouse access, bound-parameter SQL, query parsing.
//! - [`generate`]: a synthetic `fastpath` generator for benchmarks.

pub mod aggregation;
pub mod body;
pub mod countries;
pub mod db;
pub mod dedup;
pub mod generate;
pub mod measurements;
pub mod params;
pub mod quotas;
pub mod sql;
pub mod stats;

pub use generate::generate_fastpath;

use crate::body::BodyStore;
use crate::db::Db;
use crate::quotas::{DynamoQuotaStore, Metered, QuotaConfig, QuotaStore, Quotas};
use async_trait::async_trait;
use ooni_adapters::{Clock, Secret, SecretError, SystemClock};
use ooni_platform::auth::UserAuth;
use ooni_platform::config::Env;
use ooni_platform::functions::{Binary, Bucket, Table, FUNCTIONS};
use ooni_platform::{fn_handler, Context, Handler, Service};
use std::sync::Arc;
use tokio::sync::OnceCell;

/// Everything the handlers share, built once per process.
pub struct State {
    pub db: Db,
    pub bodies: Arc<dyn BodyStore>,
    pub clock: Arc<dyn Clock>,
    /// Public base URL (no trailing slash) for `measurement_url` and `next_url`.
    pub base_url: String,
    pub quotas: Arc<Quotas>,
    /// User-session verification; `None` when the keys are not configured.
    pub auth: Option<UserAuth>,
}

/// Overrides for tests and benchmarks; `Default` means "everything from the context and the
/// environment".
#[derive(Default, Clone)]
pub struct ApiOptions {
    pub clock: Option<Arc<dyn Clock>>,
    pub bodies: Option<Arc<dyn BodyStore>>,
    pub quota_config: Option<QuotaConfig>,
    pub quota_store: Option<Arc<dyn QuotaStore>>,
    /// The quota key-hashing secret (else `OONI_QUOTA_HASH_KEY`).
    pub quota_hash_key: Option<Secret>,
}

/// The read API's [`Service`].
pub struct ApiService {
    ctx: Arc<Context>,
    options: ApiOptions,
    state: OnceCell<Arc<State>>,
}

/// The functions served by the API binary.
pub fn api_functions() -> Vec<&'static str> {
    FUNCTIONS
        .iter()
        .filter(|f| f.binary == Binary::Api)
        .map(|f| f.name)
        .collect()
}

impl ApiService {
    pub fn new(ctx: Arc<Context>) -> Self {
        Self::with_options(ctx, ApiOptions::default())
    }

    pub fn with_options(ctx: Arc<Context>, options: ApiOptions) -> Self {
        ApiService {
            ctx,
            options,
            state: OnceCell::new(),
        }
    }

    /// The shared state (built on first use).
    pub async fn state(&self) -> anyhow::Result<Arc<State>> {
        self.state
            .get_or_try_init(|| async { self.build_state().await.map(Arc::new) })
            .await
            .cloned()
    }

    /// The quota key-hashing secret; `None` when it is not configured (deployed functions that
    /// are not metered do not get it). Local stages fall back to a random per-process key.
    async fn quota_hash_key(&self) -> anyhow::Result<Option<Secret>> {
        if let Some(k) = &self.options.quota_hash_key {
            return Ok(Some(k.clone()));
        }
        match self.ctx.aws.load_secret("OONI_QUOTA_HASH_KEY").await {
            Ok(k) if k.expose().len() >= 16 => Ok(Some(k)),
            Ok(_) => anyhow::bail!("OONI_QUOTA_HASH_KEY must be at least 16 bytes"),
            Err(SecretError::Missing { .. })
                if matches!(self.ctx.http.stage.as_str(), "local" | "test" | "dev") =>
            {
                tracing::warn!("OONI_QUOTA_HASH_KEY is not set: using a random per-process key (local stage only)");
                Ok(Some(Secret::new(uuid_like())))
            }
            Err(SecretError::Missing { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn build_state(&self) -> anyhow::Result<State> {
        let ctx = &self.ctx;
        let db = Db::new(ctx.clickhouse());
        let clock: Arc<dyn Clock> = self
            .options
            .clock
            .clone()
            .unwrap_or_else(|| Arc::new(SystemClock));
        let bodies: Arc<dyn BodyStore> = match &self.options.bodies {
            Some(b) => b.clone(),
            None => Arc::new(ooni_uploader::BodyLookup::new(
                ctx.object_store(Bucket::Incoming),
                ctx.object_store(Bucket::Data),
                Arc::new(ooni_uploader::ClickHouseJsonl::new(ctx.clickhouse())),
                clock.clone(),
            )),
        };
        let auth = match ctx.jwt_keys().await {
            Ok(keys) => Some(UserAuth::new(&keys, None)),
            Err(e) => {
                tracing::warn!(error = %e, "user session keys unavailable: accounts are metered by address and quotas_summary is disabled");
                None
            }
        };
        let quota_config = match &self.options.quota_config {
            Some(c) => c.clone(),
            None => QuotaConfig::from_env(&Env::process())?,
        };
        let store: Arc<dyn QuotaStore> = match &self.options.quota_store {
            Some(s) => s.clone(),
            None => Arc::new(DynamoQuotaStore::new(ctx.table(Table::Quotas))),
        };
        let quotas = Arc::new(Quotas::new(
            quota_config,
            store,
            self.quota_hash_key().await?.as_ref(),
            clock.clone(),
            auth.clone(),
            ctx.http.trusted_proxy_hops,
        ));
        Ok(State {
            db,
            bodies,
            clock,
            base_url: ctx.http.base_url.trim_end_matches('/').to_owned(),
            quotas,
            auth,
        })
    }
}

/// 64 random hex characters.
fn uuid_like() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

#[async_trait]
impl Service for ApiService {
    fn functions(&self) -> Vec<&'static str> {
        api_functions()
    }

    async fn build(&self, function: &str) -> anyhow::Result<Option<Handler>> {
        let Some(spec) = FUNCTIONS
            .iter()
            .find(|f| f.name == function && f.binary == Binary::Api)
        else {
            return Ok(None);
        };
        let s = self.state().await?;
        use crate::{aggregation as agg, measurements as m, quotas as q, stats as st};
        let handler = match spec.name {
            "ListMeasurements" => fn_handler(s.clone(), m::list_measurements),
            "GetMeasurement" => fn_handler(s.clone(), m::get_measurement),
            "RawMeasurement" => fn_handler(s.clone(), m::raw_measurement),
            "MeasurementMeta" => fn_handler(s.clone(), m::measurement_meta),
            "Aggregation" => fn_handler(s.clone(), agg::aggregation),
            "TorsfStats" => fn_handler(s.clone(), agg::torsf_stats),
            "StatsAsnByMonth" => fn_handler(s.clone(), st::asn_by_month),
            "StatsCountriesByMonth" => fn_handler(s.clone(), st::countries_by_month),
            "StatsTestNames" => fn_handler(s.clone(), st::test_names),
            "StatsCountries" => fn_handler(s.clone(), st::countries),
            "StatsTestCoverage" => fn_handler(s.clone(), st::test_coverage),
            "StatsWebsiteNetworks" => fn_handler(s.clone(), st::website_networks),
            "StatsWebsiteStats" => fn_handler(s.clone(), st::website_stats),
            "StatsWebsiteUrls" => fn_handler(s.clone(), st::website_urls),
            "StatsVanillaTor" => fn_handler(s.clone(), st::vanilla_tor_stats),
            "StatsImNetworks" => fn_handler(s.clone(), st::im_networks),
            "StatsImStats" => fn_handler(s.clone(), st::im_stats),
            "StatsNetworkStats" => fn_handler(s.clone(), st::network_stats),
            "StatsCountryOverview" => fn_handler(s.clone(), st::country_overview),
            "StatsGlobalOverview" => fn_handler(s.clone(), st::global_overview),
            "StatsGlobalOverviewByMonth" => fn_handler(s.clone(), st::global_overview_by_month),
            "StatsCircumventionByCountry" => {
                fn_handler(s.clone(), st::circumvention_stats_by_country)
            }
            "StatsCircumventionRuntime" => fn_handler(s.clone(), st::circumvention_runtime_stats),
            "StatsDomainMetadata" => fn_handler(s.clone(), st::domain_metadata),
            "StatsAsnmeta" => fn_handler(s.clone(), st::asnmeta),
            "StatsNetworks" => fn_handler(s.clone(), st::networks),
            "StatsDomains" => fn_handler(s.clone(), st::domains),
            "QuotasSummary" => {
                if s.auth.is_none() {
                    anyhow::bail!("QuotasSummary needs the user session keys (OONI_USER_JWT_KEY)");
                }
                fn_handler(s.clone(), q::quotas_summary)
            }
            other => anyhow::bail!("the API binary has no handler for function {other}"),
        };
        if spec.metered && !s.quotas.can_meter() {
            anyhow::bail!(
                "{} is metered but OONI_QUOTA_HASH_KEY is not configured",
                spec.name
            );
        }
        Ok(Some(match (handler, spec.metered) {
            (Handler::Http(h), true) => Handler::Http(Arc::new(Metered::new(h, s.quotas.clone()))),
            (h, _) => h,
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn every_api_function_in_the_table_is_served() {
        let names = api_functions();
        assert!(names.contains(&"ListMeasurements") && names.contains(&"QuotasSummary"));
        assert_eq!(names.len(), 28);
    }

    #[test]
    fn random_keys_differ_between_calls() {
        let (a, b) = (uuid_like(), uuid_like());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
