//! [`FaultStack`]: a private slice of the local services with a fault proxy in front of each
//! dependency the project talks to. Like `ooni_testkit::TestStack` (unique buckets, queue + DLQ
//! and tables on the shared AWS emulator), but ClickHouse is a [`PrivateClickHouse`] this test
//! can stop and restart, and the project's [`Context`] reaches S3, SQS and ClickHouse through
//! three separate [`FaultProxy`]s. Provisioning, the final audit and the DLQ redrive use direct
//! clients that no fault touches.

use crate::clickhouse_process::{ClickHouseProcessError, PrivateClickHouse};
use crate::fault_proxy::FaultProxy;
use anyhow::Context as _;
use ooni_adapters::{
    ensure_resources, AwsClients, AwsOptions, ClickHouseConfig, Migrator, ResourceNames, SqsQueue,
};
use ooni_platform::config::HttpConfig;
use ooni_platform::Context;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// The private stack and its proxies.
pub struct FaultStack {
    pub prefix: String,
    pub names: ResourceNames,
    pub dlq_url: String,
    /// The project's view: S3, SQS and ClickHouse through the proxies.
    pub ctx: Arc<Context>,
    /// Fault-free clients on the emulator (provisioning, audit, redrive).
    pub direct_aws: AwsClients,
    /// Fault-free ClickHouse config (same database, straight to the server).
    pub direct_clickhouse: ClickHouseConfig,
    pub s3_proxy: Arc<FaultProxy>,
    pub sqs_proxy: Arc<FaultProxy>,
    pub clickhouse_proxy: Arc<FaultProxy>,
    pub clickhouse: PrivateClickHouse,
    dir: PathBuf,
}

/// The emulator's address from its URL (`http://127.0.0.1:5000`).
fn socket_addr(url: &str) -> anyhow::Result<SocketAddr> {
    let u = url::Url::parse(url).with_context(|| format!("bad URL {url}"))?;
    let host = u.host_str().context("URL without host")?;
    let port = u.port_or_known_default().context("URL without port")?;
    let host = if host == "localhost" {
        "127.0.0.1"
    } else {
        host
    };
    format!("{host}:{port}")
        .parse()
        .with_context(|| format!("{url} is not an IP address and port"))
}

impl FaultStack {
    /// Starts the private ClickHouse, migrates it, provisions the AWS resources and builds
    /// the proxied context.
    pub async fn start() -> anyhow::Result<FaultStack> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let prefix = format!("f{}", &id[..12]);
        let dir = std::env::temp_dir().join(format!("ooni-fault-{prefix}"));
        let clickhouse = PrivateClickHouse::start(dir.join("clickhouse"))
            .await
            .map_err(|e: ClickHouseProcessError| anyhow::anyhow!(e))
            .context("starting the private ClickHouse")?;
        let database = format!("fault_{prefix}");
        let direct_clickhouse = ClickHouseConfig::new(clickhouse.url(), database.clone());
        direct_clickhouse
            .ensure_database()
            .await
            .context("creating the test database")?;
        Migrator::embedded()?
            .migrate(&direct_clickhouse.client())
            .await
            .context("migrating the private ClickHouse")?;

        let endpoint = ooni_testkit::aws_endpoint();
        let direct_aws = AwsClients::load(AwsOptions::local(&endpoint)).await;
        let mut names = ResourceNames::with_prefix(&prefix);
        let queues = ensure_resources(&direct_aws, &names).await.with_context(|| {
            format!("the AWS emulator is not reachable at {endpoint}; start it with `infra/local/stack.sh start`")
        })?;
        names.submissions_queue_url = Some(queues.submissions_queue_url);

        let emulator = socket_addr(&endpoint)?;
        let s3_proxy = Arc::new(FaultProxy::start(emulator).await?);
        let sqs_proxy = Arc::new(FaultProxy::start(emulator).await?);
        let clickhouse_proxy = Arc::new(FaultProxy::start(clickhouse.addr()).await?);

        // The project's clients: SQS (and the rest) through one proxy, S3 through another,
        // DynamoDB straight (quotas of the read API; not under test here).
        let mut aws = AwsClients::load(AwsOptions::local(sqs_proxy.url())).await;
        aws.s3 = AwsClients::load(AwsOptions::local(s3_proxy.url())).await.s3;
        aws.dynamodb = direct_aws.dynamodb.clone();
        let ch = ClickHouseConfig::new(clickhouse_proxy.url(), database);
        let http = HttpConfig {
            base_url: "http://127.0.0.1:8080".into(),
            trusted_proxy_hops: 0,
            stage: "test".into(),
        };
        let ctx =
            Context::new(http, aws, names.clone(), ch).with_jwt_keys(ooni_testkit::jwt_keys());
        Ok(FaultStack {
            prefix,
            names,
            dlq_url: queues.submissions_dlq_url,
            ctx: Arc::new(ctx),
            direct_aws,
            direct_clickhouse,
            s3_proxy,
            sqs_proxy,
            clickhouse_proxy,
            clickhouse,
            dir,
        })
    }

    /// A fault-free ClickHouse client on the test database.
    pub fn ch(&self) -> clickhouse::Client {
        self.direct_clickhouse.client()
    }

    /// The submissions queue without faults.
    pub fn direct_queue(&self) -> anyhow::Result<SqsQueue> {
        let url = self
            .names
            .submissions_queue_url
            .clone()
            .context("no submissions queue URL")?;
        Ok(SqsQueue::new(self.direct_aws.sqs.clone(), url))
    }

    /// The dead-letter queue without faults.
    pub fn direct_dlq(&self) -> SqsQueue {
        SqsQueue::new(self.direct_aws.sqs.clone(), self.dlq_url.clone())
    }

    /// A fault-free object store on one of the stack's buckets.
    pub fn direct_bucket(&self, bucket: &str) -> ooni_adapters::S3ObjectStore {
        ooni_adapters::S3ObjectStore::new(self.direct_aws.s3.clone(), bucket)
    }

    /// Stops ClickHouse and removes its directory; the AWS resources stay (uniquely named,
    /// like every test stack's).
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.clickhouse
            .stop(false)
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            tracing::warn!(error = %e, dir = %self.dir.display(), "could not remove the test directory");
        }
        Ok(())
    }
}
