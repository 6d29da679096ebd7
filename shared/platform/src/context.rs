//! Dependencies shared by every function in a process, built once at cold start from the
//! environment: AWS clients, resource names, ClickHouse, HTTP settings and (lazily) JWT keys.
//! Area crates build their handler state from a [`Context`]; tests build one pointed at the
//! local services with their own resource names.

use crate::auth::JwtKeys;
use crate::config::{Env, HttpConfig};
use crate::functions::{Bucket, Table};
use ooni_adapters::{
    AwsClients, AwsOptions, ClickHouseConfig, DynamoTable, MessageQueue, ObjectStore,
    ResourceNames, S3ObjectStore, SqsQueue,
};
use std::sync::Arc;
use tokio::sync::OnceCell;

pub struct Context {
    pub http: HttpConfig,
    pub aws: AwsClients,
    pub names: ResourceNames,
    pub clickhouse: ClickHouseConfig,
    jwt: OnceCell<JwtKeys>,
}

static SHARED: OnceCell<Arc<Context>> = OnceCell::const_new();

/// The process-wide context (built on first use).
pub async fn shared() -> anyhow::Result<Arc<Context>> {
    SHARED
        .get_or_try_init(|| async { Context::from_env().await.map(Arc::new) })
        .await
        .cloned()
}

impl Context {
    pub async fn from_env() -> anyhow::Result<Self> {
        let aws = AwsClients::load(AwsOptions::from_env()).await;
        let clickhouse = ClickHouseConfig::load(&aws).await?;
        Ok(Context {
            http: HttpConfig::from_env(&Env::process())?,
            aws,
            names: ResourceNames::from_env(),
            clickhouse,
            jwt: OnceCell::new(),
        })
    }

    /// A context from explicit parts (tests, the dev server).
    pub fn new(
        http: HttpConfig,
        aws: AwsClients,
        names: ResourceNames,
        clickhouse: ClickHouseConfig,
    ) -> Self {
        Context {
            http,
            aws,
            names,
            clickhouse,
            jwt: OnceCell::new(),
        }
    }

    pub fn bucket_name(&self, bucket: Bucket) -> &str {
        match bucket {
            Bucket::Incoming => &self.names.incoming_bucket,
            Bucket::Data => &self.names.data_bucket,
            Bucket::Config => &self.names.config_bucket,
            Bucket::Backup => &self.names.backup_bucket,
        }
    }

    pub fn object_store(&self, bucket: Bucket) -> Arc<dyn ObjectStore> {
        Arc::new(S3ObjectStore::new(
            self.aws.s3.clone(),
            self.bucket_name(bucket),
        ))
    }

    /// The submissions queue; its URL must be configured (`OONI_SUBMISSIONS_QUEUE_URL`).
    pub fn submissions_queue(&self) -> anyhow::Result<Arc<dyn MessageQueue>> {
        let url = self
            .names
            .submissions_queue_url
            .clone()
            .ok_or_else(|| anyhow::anyhow!("OONI_SUBMISSIONS_QUEUE_URL is not set"))?;
        Ok(Arc::new(SqsQueue::new(self.aws.sqs.clone(), url)))
    }

    pub fn table(&self, table: Table) -> DynamoTable {
        let name = match table {
            Table::Quotas => &self.names.table_quotas,
            Table::Oonirun => &self.names.table_oonirun,
            Table::Findings => &self.names.table_findings,
            Table::Accounts => &self.names.table_accounts,
            Table::Editor => &self.names.table_editor,
        };
        DynamoTable::new(self.aws.dynamodb.clone(), name.clone())
    }

    pub fn clickhouse(&self) -> clickhouse::Client {
        self.clickhouse.client()
    }

    /// Sets the JWT keys explicitly (tests, the dev server with generated keys).
    pub fn with_jwt_keys(self, keys: JwtKeys) -> Self {
        Context {
            jwt: OnceCell::new_with(Some(keys)),
            ..self
        }
    }

    /// The probe and user-session keys (`OONI_PROBE_JWT_KEY`, `OONI_USER_JWT_KEY`, each also
    /// as `*_SSM_PARAMETER`), loaded on first use and validated to differ.
    pub async fn jwt_keys(&self) -> anyhow::Result<JwtKeys> {
        self.jwt
            .get_or_try_init(|| async {
                let probe = self.aws.load_secret("OONI_PROBE_JWT_KEY").await?;
                let user = self.aws.load_secret("OONI_USER_JWT_KEY").await?;
                JwtKeys::new(&probe, &user)
            })
            .await
            .cloned()
    }
}
