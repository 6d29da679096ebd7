//! The state shared by every probe-services handler of a process: settings, the I/O ports, the
//! JWT keys, and the cached config-bucket documents, GeoIP databases and failover test list.
//!
//! Everything slow is loaded lazily and cached (see [`crate::cache`]); `warm` loads what one
//! function needs at cold start so its first request does not pay for it.

use crate::cache::Cached;
use crate::config_docs::{self, TestHelpersDoc, VpnProviderDoc};
use crate::db::TestListDb;
use crate::geoip::GeoIp;
use crate::prio_cache::PrioCache;
use crate::settings::Settings;
use bytes::Bytes;
use lambda_http::Request;
use ooni_adapters::{Clock, MessageQueue, ObjectStore};
use ooni_domain::checkin::FeatureFlags;
use ooni_domain::prio::FailoverTestList;
use ooni_platform::auth::JwtKeys;
use ooni_platform::{ApiError, Context};
use serde_json::value::RawValue;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Timeout of one config-bucket read.
const CONFIG_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the failover list is kept before it is re-read.
const FAILOVER_TTL: Duration = Duration::from_secs(3600);

/// The I/O the handlers depend on.
#[derive(Clone)]
pub struct Ports {
    /// The config bucket.
    pub config: Arc<dyn ObjectStore>,
    /// The incoming-measurements bucket.
    pub incoming: Arc<dyn ObjectStore>,
    /// The submissions queue (only the submit function needs it).
    pub queue: Option<Arc<dyn MessageQueue>>,
    pub db: Arc<dyn TestListDb>,
    pub clock: Arc<dyn Clock>,
}

/// Handler state; see the module docs.
pub struct State {
    pub settings: Settings,
    pub ports: Ports,
    ctx: Option<Arc<Context>>,
    keys: tokio::sync::OnceCell<JwtKeys>,
    geoip: Cached<GeoIp>,
    helpers: Cached<TestHelpersDoc>,
    flags: Cached<FeatureFlags>,
    tor_targets: Cached<Box<RawValue>>,
    psiphon: Cached<Box<RawValue>>,
    riseupvpn: Cached<VpnProviderDoc>,
    failover: Cached<FailoverTestList>,
    /// Check-in's prioritised lists by (cc, asn).
    pub prio: PrioCache,
}

impl State {
    /// State over explicit ports. `keys` may be `None` when a `ctx` is given to load them from.
    pub fn new(
        settings: Settings,
        ports: Ports,
        keys: Option<JwtKeys>,
        ctx: Option<Arc<Context>>,
    ) -> Self {
        let ttl = settings.config_ttl;
        State {
            geoip: Cached::new(settings.geoip_ttl),
            helpers: Cached::new(ttl),
            flags: Cached::new(ttl),
            tor_targets: Cached::new(ttl),
            psiphon: Cached::new(ttl),
            riseupvpn: Cached::new(ttl),
            failover: Cached::new(FAILOVER_TTL),
            prio: PrioCache::new(settings.list_cache_ttl, settings.list_cache_size),
            settings,
            ports,
            ctx,
            keys: tokio::sync::OnceCell::new_with(keys),
        }
    }

    /// State with the GeoIP databases already in memory (tests, benches).
    pub fn with_geoip(mut self, geoip: GeoIp) -> Self {
        self.geoip = Cached::with_value(self.settings.geoip_ttl, geoip);
        self
    }

    /// The probe/user JWT keys (loaded from the context on first use).
    pub async fn jwt_keys(&self) -> Result<&JwtKeys, ApiError> {
        self.keys
            .get_or_try_init(|| async {
                match &self.ctx {
                    Some(ctx) => ctx.jwt_keys().await,
                    None => Err(anyhow::anyhow!("no JWT keys configured")),
                }
            })
            .await
            .map_err(ApiError::unavailable)
    }

    /// The client address, trusting only the configured proxy hops.
    pub fn client_ip(&self, req: &Request) -> Option<IpAddr> {
        ooni_platform::request::client_ip(req, self.settings.trusted_proxy_hops)
    }

    async fn read_config(&self, key: &str) -> anyhow::Result<Option<Bytes>> {
        match tokio::time::timeout(CONFIG_READ_TIMEOUT, self.ports.config.get(key)).await {
            Ok(r) => Ok(r?),
            Err(_) => anyhow::bail!("reading {key} from the config bucket timed out"),
        }
    }

    /// The GeoIP databases; empty (every lookup a miss) when they cannot be loaded.
    pub async fn geoip(&self) -> Arc<GeoIp> {
        let r = self
            .geoip
            .get(|| async {
                let (cc, asn) = tokio::join!(
                    self.read_config(&self.settings.geoip_cc_key),
                    self.read_config(&self.settings.geoip_asn_key)
                );
                let (cc, asn) = (cc?, asn?);
                if cc.is_none() || asn.is_none() {
                    tracing::warn!(
                        cc_key = %self.settings.geoip_cc_key,
                        cc_found = cc.is_some(),
                        asn_key = %self.settings.geoip_asn_key,
                        asn_found = asn.is_some(),
                        "GeoIP database missing from the config bucket"
                    );
                }
                Ok(GeoIp::from_bytes(
                    cc.map(|b| b.to_vec()),
                    asn.map(|b| b.to_vec()),
                )?)
            })
            .await;
        r.unwrap_or_else(|e| {
            tracing::error!(error = %e, "GeoIP databases unavailable");
            Arc::new(GeoIp::default())
        })
    }

    /// The test-helper document; upstream's static list when absent or unreadable.
    pub async fn test_helpers(&self) -> Arc<TestHelpersDoc> {
        let r = self
            .helpers
            .get(|| async {
                Ok(
                    match self.read_config(config_docs::TEST_HELPERS_KEY).await? {
                        Some(b) => TestHelpersDoc::parse(&b)?,
                        None => TestHelpersDoc::upstream(),
                    },
                )
            })
            .await;
        r.unwrap_or_else(|e| {
            tracing::error!(error = %e, "test-helper document unavailable; using the static list");
            Arc::new(TestHelpersDoc::upstream())
        })
    }

    /// The feature-flag document; upstream's defaults when absent or unreadable.
    pub async fn feature_flags(&self) -> Arc<FeatureFlags> {
        let r = self
            .flags
            .get(|| async {
                Ok(
                    match self.read_config(config_docs::FEATURE_FLAGS_KEY).await? {
                        Some(b) => config_docs::parse_flags(&b)?,
                        None => FeatureFlags::default(),
                    },
                )
            })
            .await;
        r.unwrap_or_else(|e| {
            tracing::error!(error = %e, "feature flags unavailable; using the defaults");
            Arc::new(FeatureFlags::default())
        })
    }

    async fn required_object(
        &self,
        cache: &Cached<Box<RawValue>>,
        key: &'static str,
    ) -> Result<Arc<Box<RawValue>>, ApiError> {
        cache
            .get(|| async {
                match self.read_config(key).await? {
                    Some(b) => Ok(config_docs::parse_object(key, &b)?),
                    None => anyhow::bail!("{key} is not in the config bucket"),
                }
            })
            .await
            .map_err(ApiError::unavailable)
    }

    pub async fn tor_targets(&self) -> Result<Arc<Box<RawValue>>, ApiError> {
        self.required_object(&self.tor_targets, config_docs::TOR_TARGETS_KEY)
            .await
    }

    pub async fn psiphon_config(&self) -> Result<Arc<Box<RawValue>>, ApiError> {
        self.required_object(&self.psiphon, config_docs::PSIPHON_CONFIG_KEY)
            .await
    }

    /// RiseupVPN's credentials (the only provider served).
    pub async fn riseupvpn(&self) -> Result<Arc<VpnProviderDoc>, ApiError> {
        const KEY: &str = "vpn/riseupvpn.json";
        debug_assert_eq!(KEY, config_docs::vpn_key("riseupvpn"));
        self.riseupvpn
            .get(|| async {
                match self.read_config(KEY).await? {
                    Some(b) => Ok(VpnProviderDoc::parse(KEY, &b)?),
                    None => anyhow::bail!("{KEY} is not in the config bucket"),
                }
            })
            .await
            .map_err(ApiError::unavailable)
    }

    /// The global URLs for when ClickHouse fails; empty when they could not be loaded either.
    pub async fn failover_list(&self) -> Arc<FailoverTestList> {
        let r = self
            .failover
            .get(|| async {
                Ok(FailoverTestList::from_rows(
                    self.ports.db.global_urls().await?,
                ))
            })
            .await;
        r.unwrap_or_else(|e| {
            tracing::error!(error = %e, "failover test list unavailable");
            Arc::new(FailoverTestList::default())
        })
    }

    /// Loads at cold start what `function` needs. Missing optional documents are not errors;
    /// missing JWT keys are, for the functions that sign or verify tokens.
    pub async fn warm(&self, function: &str) -> anyhow::Result<()> {
        match function {
            "CheckIn" => {
                tokio::join!(
                    self.geoip(),
                    self.test_helpers(),
                    self.feature_flags(),
                    self.failover_list()
                );
            }
            "ReportSubmit" | "GeoLookup" => {
                self.geoip().await;
            }
            "TestHelpers" => {
                self.test_helpers().await;
            }
            "TestListUrls" => {
                self.failover_list().await;
            }
            "ProbeRegister" | "ProbeLogin" | "TorTargets" | "PsiphonConfig" => {
                self.jwt_keys()
                    .await
                    .map_err(|e| anyhow::anyhow!("JWT keys unavailable: {e}"))?;
            }
            _ => {}
        }
        Ok(())
    }
}
