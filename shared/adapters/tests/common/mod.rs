//! Shared setup for the integration tests: endpoints from the environment, a reachability
//! check that fails loudly, and unique resource names so tests run in parallel and again.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use ooni_adapters::{AwsClients, AwsOptions, ClickHouseConfig};

pub fn aws_endpoint() -> String {
    std::env::var("OONI_TEST_AWS_ENDPOINT")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "http://127.0.0.1:5000".into())
}

pub fn clickhouse_url() -> String {
    std::env::var("OONI_TEST_CLICKHOUSE_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "http://127.0.0.1:8123".into())
}

/// `host:port` of an `http://host:port/...` URL.
fn authority(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host_port = rest.split('/').next().unwrap_or(rest);
    if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:80")
    }
}

async fn require_reachable(what: &str, url: &str, env: &str, hint: &str) {
    let addr = authority(url);
    let connect = tokio::time::timeout(
        Duration::from_secs(3),
        tokio::net::TcpStream::connect(&addr),
    )
    .await;
    match connect {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => panic!("{what} is not reachable at {url} ({e}). Start it ({hint}) or set {env}."),
        Err(_) => panic!("{what} did not accept a connection at {url} within 3 s. Start it ({hint}) or set {env}."),
    }
}

/// Clients pointed at the AWS emulator; panics with a clear message if it is not running.
pub async fn aws() -> AwsClients {
    let endpoint = aws_endpoint();
    require_reachable(
        "The AWS emulator (moto)",
        &endpoint,
        "OONI_TEST_AWS_ENDPOINT",
        "infra/local/stack.sh start",
    )
    .await;
    AwsClients::load(AwsOptions {
        endpoint_url: Some(endpoint),
        region: Some("us-east-1".into()),
    })
    .await
}

/// Settings for a fresh, uniquely named database on the test ClickHouse; panics with a
/// clear message if the server is not running. The database is not created.
pub async fn clickhouse(prefix: &str) -> ClickHouseConfig {
    let url = clickhouse_url();
    require_reachable(
        "ClickHouse",
        &url,
        "OONI_TEST_CLICKHOUSE_URL",
        ".venv/bin/python infra/local/clickhouse_server.py",
    )
    .await;
    ClickHouseConfig::new(url, unique(prefix).replace('-', "_"))
}

/// `<prefix>-<12 hex chars>`: lowercase, valid as a bucket, queue, table or (with `_`) database name.
pub fn unique(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..12])
}
