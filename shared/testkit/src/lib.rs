//! Test support for black-box tests: [`TestStack`] provisions a private slice of the REAL local
//! services (its own ClickHouse database, migrated; its own buckets, queue + DLQ and DynamoDB
//! tables on the AWS emulator) and [`TestStack::serve`] runs the same dev server as `ooni dev`.
//!
//! Endpoints: `OONI_TEST_CLICKHOUSE_URL` (default `http://127.0.0.1:8123`) and
//! `OONI_TEST_AWS_ENDPOINT` (default `http://127.0.0.1:5000`). A missing service fails the test
//! with a message saying how to start it; nothing is skipped.
//!
//! Also: [`fake_http`], a recording HTTP server for fake upstreams, and [`mmdb`], a tiny MMDB
//! writer for GeoIP test databases.

pub mod fake_http;
pub mod fixtures;
pub mod mmdb;

use ooni_adapters::{
    ensure_resources, AwsClients, AwsOptions, ClickHouseConfig, Migrator, ResourceNames, Secret,
};
use ooni_platform::auth::JwtKeys;
use ooni_platform::config::HttpConfig;
use ooni_platform::devserver::{self, DevServer};
use ooni_platform::{Context, Service};
use std::sync::Arc;

pub const PROBE_KEY: &str = "test-probe-key-0123456789";
pub const USER_KEY: &str = "test-user-key-0123456789";

pub fn clickhouse_url() -> String {
    std::env::var("OONI_TEST_CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:8123".into())
}

pub fn aws_endpoint() -> String {
    std::env::var("OONI_TEST_AWS_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:5000".into())
}

/// The JWT keys every test stack uses (so tests can mint tokens).
pub fn jwt_keys() -> JwtKeys {
    match JwtKeys::new(&Secret::new(PROBE_KEY), &Secret::new(USER_KEY)) {
        Ok(k) => k,
        Err(e) => panic!("test keys are valid by construction: {e}"),
    }
}

/// Test databases older than this are dropped by the next stack that starts: a test run
/// leaves its databases behind (shared fixtures live for the whole process), and a long-lived
/// dev server that collects thousands of them runs out of file descriptors.
const STALE_AFTER_SECS: u64 = 6 * 3600;

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `test_<prefix>_<created, unix seconds>`.
fn database_name(prefix: &str, created: u64) -> String {
    format!("test_{prefix}_{created}")
}

/// When a test database was created, from its name (`None`: not one of ours).
fn created_at(database: &str) -> Option<u64> {
    let rest = database.strip_prefix("test_t")?;
    let (id, created) = rest.split_once('_')?;
    (id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| created.parse().ok())
        .flatten()
}

/// Drops the test databases older than [`STALE_AFTER_SECS`], once per process; best effort.
async fn drop_stale_databases(ch_url: &str) {
    static ONCE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    ONCE.get_or_init(|| async {
        let client = ClickHouseConfig::new(ch_url, "default").client();
        let names: Vec<String> = match client
            .query("SELECT name FROM system.databases WHERE name LIKE 'test\\_t%'")
            .fetch_all()
            .await
        {
            Ok(n) => n,
            Err(_) => return,
        };
        let now = unix_now();
        for name in names {
            if created_at(&name).is_some_and(|c| now.saturating_sub(c) > STALE_AFTER_SECS) {
                let dropped = client
                    .query(&format!("DROP DATABASE IF EXISTS `{name}` SYNC"))
                    .execute()
                    .await;
                if let Err(e) = dropped {
                    eprintln!("testkit: could not drop the stale database {name}: {e}");
                }
            }
        }
    })
    .await;
}

/// A private slice of the local services.
pub struct TestStack {
    /// Unique prefix of every resource name (and the ClickHouse database name).
    pub prefix: String,
    pub ctx: Arc<Context>,
    pub aws: AwsClients,
    pub names: ResourceNames,
    pub clickhouse: ClickHouseConfig,
}

impl TestStack {
    /// Provisions a fresh stack. Panics with a clear message when a local service is down.
    pub async fn start() -> TestStack {
        Self::start_with(|h| h).await
    }

    /// Like [`TestStack::start`], adjusting the HTTP config (e.g. trusted proxy hops).
    pub async fn start_with(adjust: impl FnOnce(HttpConfig) -> HttpConfig) -> TestStack {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let prefix = format!("t{}", &id[..12]);
        let ch_url = clickhouse_url();
        drop_stale_databases(&ch_url).await;
        let clickhouse = ClickHouseConfig::new(&ch_url, database_name(&prefix, unix_now()));
        if let Err(e) = clickhouse.ensure_database().await {
            panic!("ClickHouse is not reachable at {ch_url} ({e}). Start it with `infra/local/stack.sh start` or set OONI_TEST_CLICKHOUSE_URL");
        }
        let migrator = match Migrator::embedded() {
            Ok(m) => m,
            Err(e) => panic!("embedded migrations are invalid: {e}"),
        };
        if let Err(e) = migrator.migrate(&clickhouse.client()).await {
            panic!("migrations failed on {ch_url}: {e}");
        }
        let endpoint = aws_endpoint();
        let aws = AwsClients::load(AwsOptions::local(&endpoint)).await;
        let mut names = ResourceNames::with_prefix(&prefix);
        let queues = match ensure_resources(&aws, &names).await {
            Ok(q) => q,
            Err(e) => panic!("the AWS emulator is not reachable at {endpoint} ({e}). Start it with `infra/local/stack.sh start` or set OONI_TEST_AWS_ENDPOINT"),
        };
        names.submissions_queue_url = Some(queues.submissions_queue_url);
        let http = adjust(HttpConfig {
            base_url: "http://127.0.0.1:8080".into(),
            trusted_proxy_hops: 0,
            stage: "test".into(),
        });
        let ctx = Context::new(http, aws.clone(), names.clone(), clickhouse.clone())
            .with_jwt_keys(jwt_keys());
        TestStack {
            prefix,
            ctx: Arc::new(ctx),
            aws,
            names,
            clickhouse,
        }
    }

    /// A ClickHouse client on this stack's database.
    pub fn ch(&self) -> clickhouse::Client {
        self.clickhouse.client()
    }

    /// Runs the dev server for `service` on an ephemeral loopback port.
    pub async fn serve(&self, service: Arc<dyn Service>) -> TestServer {
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => panic!("cannot bind a loopback port: {e}"),
        };
        match devserver::serve(listener, service).await {
            Ok(server) => TestServer {
                base_url: server.base_url(),
                server,
            },
            Err(e) => panic!("could not build the service's handlers: {e:#}"),
        }
    }
}

/// A dev server running for one test.
pub struct TestServer {
    pub base_url: String,
    pub server: DevServer,
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_database_names_carry_a_creation_time() {
        let name = database_name("t0123456789ab", 1_795_000_000);
        assert_eq!(name, "test_t0123456789ab_1795000000");
        assert_eq!(created_at(&name), Some(1_795_000_000));
        assert_eq!(created_at("test_t0123456789ab"), None);
        assert_eq!(created_at("test_tnothexnothex_1"), None);
        assert_eq!(created_at("ooni"), None);
    }
}
