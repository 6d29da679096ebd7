//! The local environment: context from the environment with local defaults, AWS resources
//! bootstrapped on the emulator, and throwaway JWT keys when none are configured.

use ooni_adapters::{
    ensure_resources, AwsClients, AwsOptions, ClickHouseConfig, ResourceNames, Secret,
};
use ooni_platform::auth::JwtKeys;
use ooni_platform::config::{Env, HttpConfig};
use ooni_platform::Context;
use rand::distr::{Alphanumeric, SampleString};

/// Builds the context, creating buckets/queue/tables on the configured endpoint when `bootstrap`.
pub async fn context(bootstrap: bool) -> anyhow::Result<Context> {
    let aws = AwsClients::load(AwsOptions::from_env()).await;
    let mut names = ResourceNames::from_env();
    if bootstrap {
        let queues = ensure_resources(&aws, &names).await?;
        names.submissions_queue_url = Some(queues.submissions_queue_url);
    }
    let clickhouse = ClickHouseConfig::load(&aws).await?;
    let http = HttpConfig::from_env(&Env::process())?;
    let ctx = Context::new(http, aws, names, clickhouse);
    let have_keys = std::env::var("OONI_PROBE_JWT_KEY").is_ok()
        || std::env::var("OONI_PROBE_JWT_KEY_SSM_PARAMETER").is_ok();
    if have_keys {
        Ok(ctx)
    } else {
        // Local only: fresh random keys per process (tokens do not survive a restart).
        let mut rng = rand::rng();
        let probe = Secret::new(Alphanumeric.sample_string(&mut rng, 40));
        let user = Secret::new(Alphanumeric.sample_string(&mut rng, 40));
        Ok(ctx.with_jwt_keys(JwtKeys::new(&probe, &user)?))
    }
}
