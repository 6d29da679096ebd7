//! [`JobsService`]: builds the handler of each scheduled job function and of `Migrate`, and
//! [`run_job`], the library entry point behind `ooni job NAME`.

use crate::checkpoint::NoCheckpoints;
use crate::fetch::HttpFetcher;
use crate::job::{run_named, Job, JobEnv};
use crate::metrics::MetricsSink;
use crate::migrate;
use crate::rotation::{DigitalOcean, HttpHelperCheck};
use crate::settings::JobSettings;
use async_trait::async_trait;
use ooni_adapters::SystemClock;
use ooni_platform::config::Env;
use ooni_platform::functions::Bucket;
use ooni_platform::{Context, Handler, JobHandler, Service};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

impl JobEnv {
    /// The production environment of a context: its ClickHouse and config bucket, HTTP
    /// downloads, EMF metrics on stdout, no checkpoints, settings from the process environment.
    pub fn from_context(ctx: &Context) -> anyhow::Result<JobEnv> {
        let settings = JobSettings::from_env(&Env::process())?;
        Self::with_settings(ctx, settings)
    }

    /// Like [`JobEnv::from_context`] with explicit settings.
    pub fn with_settings(ctx: &Context, settings: JobSettings) -> anyhow::Result<JobEnv> {
        let fetcher = HttpFetcher::new(settings.http_timeout, settings.max_download_bytes)?;
        Ok(JobEnv {
            ch: ctx.clickhouse(),
            clickhouse: ctx.clickhouse.clone(),
            config_bucket: ctx.object_store(Bucket::Config),
            backup_bucket: ctx.object_store(Bucket::Backup),
            data_bucket: ctx.object_store(Bucket::Data),
            cloud: Arc::new(DigitalOcean::new(
                &settings.rotation.api_url,
                ctx.aws.clone(),
            )),
            helper_check: Arc::new(HttpHelperCheck::new(
                &settings.rotation.check_url,
                settings.rotation.tls.check_ca_pem.as_deref(),
            )),
            fetcher: Arc::new(fetcher),
            checkpoints: Arc::new(NoCheckpoints),
            settings,
            clock: Arc::new(SystemClock),
            metrics: MetricsSink::Stdout,
        })
    }
}

/// Serves `JobCitizenlab`, `JobFingerprints`, `JobAsnmeta`, `JobGeoip`, `JobVpnCredentials`,
/// `JobBackup`, `JobTestHelperRotation` and `Migrate`.
pub struct JobsService {
    ctx: Arc<Context>,
    env: OnceCell<Arc<JobEnv>>,
    http: reqwest::Client,
}

impl JobsService {
    pub fn new(ctx: Arc<Context>) -> Self {
        JobsService {
            ctx,
            env: OnceCell::new(),
            http: cfn_client(),
        }
    }

    /// A service over an explicit environment (tests: local sources, checkpoints, memory metrics).
    pub fn with_env(ctx: Arc<Context>, env: JobEnv) -> Self {
        JobsService {
            ctx,
            env: OnceCell::new_with(Some(Arc::new(env))),
            http: cfn_client(),
        }
    }

    async fn env(&self) -> anyhow::Result<Arc<JobEnv>> {
        self.env
            .get_or_try_init(|| async { JobEnv::from_context(&self.ctx).map(Arc::new) })
            .await
            .cloned()
    }
}

fn cfn_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap_or_default()
}

#[async_trait]
impl Service for JobsService {
    fn functions(&self) -> Vec<&'static str> {
        Job::ALL.iter().map(|j| j.name()).collect()
    }

    async fn build(&self, function: &str) -> anyhow::Result<Option<Handler>> {
        let Some(job) = Job::from_name(function) else {
            return Ok(None);
        };
        let env = self.env().await?;
        Ok(Some(Handler::Job(Arc::new(JobFn {
            env,
            job,
            http: self.http.clone(),
        }))))
    }
}

/// The handler of one job function.
struct JobFn {
    env: Arc<JobEnv>,
    job: Job,
    http: reqwest::Client,
}

#[async_trait]
impl JobHandler for JobFn {
    /// Scheduled jobs ignore the EventBridge event; `Migrate` reads it (custom resource or not).
    async fn run(&self, event: Value) -> anyhow::Result<Value> {
        match self.job {
            Job::Migrate => migrate::handle(&self.env, &self.http, event).await,
            job => run_named(&self.env, job).await,
        }
    }
}

/// Runs the job function `name` once, as its schedule would (for `ooni job NAME`), and returns
/// its report. `Migrate` runs as a plain invoke.
pub async fn run_job(ctx: Arc<Context>, name: &str) -> anyhow::Result<Value> {
    let service = JobsService::new(ctx);
    let Some(Handler::Job(handler)) = service.build(name).await? else {
        let known: Vec<&str> = Job::ALL.iter().map(|j| j.name()).collect();
        anyhow::bail!("unknown job {name:?}; jobs: {}", known.join(", "));
    };
    handler.run(Value::Object(Default::default())).await
}
