//! [`ProbeService`]: builds the handler of each probe-services function, sharing one
//! [`State`] per process.

use crate::db::ClickHouseTestListDb;
use crate::handlers::{auth, checkin, helpers, lists, misc, reports};
use crate::settings::Settings;
use crate::state::{Ports, State};
use async_trait::async_trait;
use ooni_adapters::SystemClock;
use ooni_platform::config::Env;
use ooni_platform::functions::Bucket;
use ooni_platform::{fn_handler, Context, Handler, Service};
use std::sync::Arc;
use tokio::sync::OnceCell;

/// The functions this service serves (every `Binary::Probe` function but `ApiSpec`).
pub const FUNCTIONS: &[&str] = &[
    "Health",
    "Version",
    "CheckIn",
    "ReportOpen",
    "ReportSubmit",
    "ReportClose",
    "TestHelpers",
    "Collectors",
    "BouncerNetTests",
    "VpnConfig",
    "TestListUrls",
    "TorTargets",
    "PsiphonConfig",
    "ProbeRegister",
    "ProbeLogin",
    "ProbeUpdate",
    "GeoLookup",
    "CheckReportId",
    "RobotsTxt",
];

/// The probe-services area.
pub struct ProbeService {
    ctx: Option<Arc<Context>>,
    state: OnceCell<Arc<State>>,
}

impl ProbeService {
    pub fn new(ctx: Arc<Context>) -> Self {
        ProbeService {
            ctx: Some(ctx),
            state: OnceCell::new(),
        }
    }

    /// A service over a ready-made state (tests, benches).
    pub fn with_state(state: Arc<State>) -> Self {
        ProbeService {
            ctx: None,
            state: OnceCell::new_with(Some(state)),
        }
    }

    async fn state(&self) -> anyhow::Result<Arc<State>> {
        self.state
            .get_or_try_init(|| async {
                let ctx = self
                    .ctx
                    .clone()
                    .ok_or_else(|| anyhow::anyhow!("no context to build the state from"))?;
                let settings = Settings::from_env(&Env::process(), &ctx.http)?;
                let ports = Ports {
                    config: ctx.object_store(Bucket::Config),
                    incoming: ctx.object_store(Bucket::Incoming),
                    queue: ctx.submissions_queue().ok(),
                    db: Arc::new(ClickHouseTestListDb::new(
                        ctx.clickhouse(),
                        settings.db_timeout,
                    )),
                    clock: Arc::new(SystemClock),
                };
                Ok(Arc::new(State::new(settings, ports, None, Some(ctx))))
            })
            .await
            .cloned()
    }
}

#[async_trait]
impl Service for ProbeService {
    fn functions(&self) -> Vec<&'static str> {
        FUNCTIONS.to_vec()
    }

    async fn build(&self, function: &str) -> anyhow::Result<Option<Handler>> {
        if !FUNCTIONS.contains(&function) {
            return Ok(None);
        }
        let s = self.state().await?;
        if function == "ReportSubmit" && s.ports.queue.is_none() {
            anyhow::bail!("ReportSubmit needs the submissions queue (OONI_SUBMISSIONS_QUEUE_URL)");
        }
        s.warm(function).await?;
        let h = match function {
            "Health" => fn_handler(s, misc::health),
            "Version" => fn_handler(s, misc::version),
            "CheckIn" => fn_handler(s, checkin::check_in),
            "ReportOpen" => fn_handler(s, reports::open_report),
            "ReportSubmit" => fn_handler(s, reports::submit),
            "ReportClose" => fn_handler(s, reports::close_report),
            "TestHelpers" => fn_handler(s, helpers::test_helpers),
            "Collectors" => fn_handler(s, helpers::collectors),
            "BouncerNetTests" => fn_handler(s, helpers::bouncer_net_tests),
            "VpnConfig" => fn_handler(s, misc::vpn_config),
            "TestListUrls" => fn_handler(s, lists::test_list_urls),
            "TorTargets" => fn_handler(s, lists::tor_targets),
            "PsiphonConfig" => fn_handler(s, lists::psiphon_config),
            "ProbeRegister" => fn_handler(s, auth::register),
            "ProbeLogin" => fn_handler(s, auth::login),
            "ProbeUpdate" => fn_handler(s, auth::update),
            "GeoLookup" => fn_handler(s, misc::geolookup),
            "CheckReportId" => fn_handler(s, misc::check_report_id),
            "RobotsTxt" => fn_handler(s, misc::robots_txt),
            _ => return Ok(None),
        };
        Ok(Some(h))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ooni_platform::functions::{Binary, FUNCTIONS as TABLE};

    #[test]
    fn every_probe_function_but_the_api_spec_is_served() {
        let mut expected: Vec<&str> = TABLE
            .iter()
            .filter(|f| f.binary == Binary::Probe && f.name != "ApiSpec")
            .map(|f| f.name)
            .collect();
        let mut ours = FUNCTIONS.to_vec();
        expected.sort_unstable();
        ours.sort_unstable();
        assert_eq!(ours, expected);
    }
}
