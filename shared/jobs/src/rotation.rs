//! `JobTestHelperRotation`: keeps `active_count` web-connectivity test helpers
//! (`<rdn>.<dns_zone>`, e.g. `0.th.ooni.org`) running on DigitalOcean and replaces the oldest one
//! once it is older than `max_age` (upstream `ooni/backend` `rotation.py`, made Lambda-shaped).
//!
//! Upstream spawned, waited (up to 20 minutes), configured over SSH and switched DNS in one long
//! run. Here each hourly run advances a small state machine whose state lives only in the
//! provider (droplets tagged `roaming-th`, named `roaming-th-<rdn>-<YYYYmmddHHMMSS>`) and in
//! `test_helper_instances` (CollapsingMergeTree; an update inserts the old row with `sign = -1`
//! and the new one with `sign = 1`). A run:
//!
//! 1. refuses to act when the provider lists more than `active_count + 5` droplets;
//! 2. destroys helpers drained for longer than `drain` (droplet first, then the row gets
//!    `destroyed_at`: a run killed in between finishes on the next run, and no droplet is
//!    ever left running without a row);
//! 3. looks at pending droplets (ours, not in the table): one that passes the end-to-end check
//!    becomes active — its row is inserted and the previous helper of that rdn is drained; one
//!    that is still not healthy after `spawn_timeout` is destroyed. The check (the upstream
//!    probe of `oohelperd`) connects to `https://<rdn>.<zone>/` resolved to the droplet's
//!    address only, verifies TLS for that name, and requires the leaf of the stored certificate;
//! 4. drains all but the newest active row of an rdn (repairs a run killed mid-activation);
//! 5. reconciles the DNS A/AAAA records of every active rdn (idempotent);
//! 6. when nothing is pending, spawns a droplet for a missing rdn, or to replace the oldest
//!    active helper once it is older than `max_age` — one at a time (no helper draining) and
//!    staggered (the newest helper at least `max_age / active_count` old). Before spawning, the
//!    TLS step ([`crate::rotation_tls`]) makes sure the wildcard certificate `*.<zone>` stored
//!    in the config bucket (`rotation/tls/<zone>.json`, this job's only) is valid for more than
//!    `renew_before`, else orders a new one from the ACME CA with a DNS-01 challenge whose TXT
//!    record goes through the [`Cloud`] port and is removed afterwards (upstream: certbot
//!    `--dns-digitalocean`). An ACME failure fails the run before any droplet exists; a run
//!    killed mid-order leaves the stored certificate as it was, and the rerun removes the stale
//!    TXT record and orders again. The first-boot script (`user_data`) writes the certificate
//!    and key to `/etc/ssl/private/th_fullchain.pem` and `th_privkey.pem` (mode 600), then runs
//!    the config-bucket object `setup_key` with its own `#!` interpreter (installs and configures
//!    `oohelperd`; upstream did both over SSH);
//! 7. publishes the helpers probes are given: in the config bucket's `test-helpers.json` (what
//!    check-in and `/api/v1/test-helpers` serve), the web-connectivity `https` helpers of the
//!    rotation's zone become exactly `https://<rdn>.<zone>` of the active rdns; every other
//!    helper and the canary rule are kept (a missing document starts from upstream's static
//!    list). Written only when it changes, never emptied, checked with the probe's parser.
//!
//! The provider is behind the [`Cloud`] port (DigitalOcean REST adapter: [`DigitalOcean`]) and
//! the end-to-end check behind [`HelperCheck`], so tests use local fakes.
//!
//! Settings: `OONI_ROTATION_API_URL` (`https://api.digitalocean.com`), token
//! `OONI_DIGITALOCEAN_TOKEN` (or `_SSM_PARAMETER`), `OONI_ROTATION_DNS_ZONE` (`th.ooni.org`),
//! `OONI_ROTATION_ACTIVE_COUNT` (4), `OONI_ROTATION_MAX_AGE_HOURS` (168),
//! `OONI_ROTATION_DRAIN_MINUTES` (240), `OONI_ROTATION_SPAWN_TIMEOUT_MINUTES` (60),
//! `OONI_ROTATION_SIZE` (`s-1vcpu-1gb`), `OONI_ROTATION_IMAGE` (`debian-12-x64`),
//! `OONI_ROTATION_REGIONS` (`ams3,fra1,lon1,nyc3,sfo3,tor1`), `OONI_ROTATION_SETUP_KEY`
//! (`rotation/setup.sh`), `OONI_ROTATION_CHECK_URL` (`https://{fqdn}/`; `{fqdn}` and `{ip}` are
//! replaced; `{fqdn}` resolves to the droplet), `OONI_ROTATION_CHECK_CA_PEM` (an extra trusted
//! root, tests only); TLS: `OONI_ROTATION_ACME_DIRECTORY` (Let's Encrypt production),
//! `OONI_ROTATION_ACME_EMAIL`, `OONI_ROTATION_TLS_RENEW_DAYS` (30),
//! `OONI_ROTATION_ACME_PROPAGATION_SECONDS` (30), `OONI_ROTATION_ACME_TIMEOUT_SECONDS` (180),
//! `OONI_ROTATION_ACME_CA_PEM` (an extra root for the ACME server, tests only).

use crate::checkpoint::{Point, Step};
use crate::job::{JobEnv, JobError, Loaded};
use crate::metrics::Outcome;
use crate::rotation_tls::{
    ensure_certificate, leaf_der, stored_certificate, CertSource, TlsError, TlsSettings,
};
use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use ooni_adapters::{AwsClients, Secret};
use ooni_domain::checkin::TestHelper;
use ooni_platform::config::{ConfigError, Env};
use ooni_probe::config_docs::{TestHelpersDoc, TEST_HELPERS_KEY};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use tokio::sync::OnceCell;

const WEB_CONNECTIVITY: &str = "web-connectivity";

pub const JOB: &str = "JobTestHelperRotation";
pub const TAG: &str = "roaming-th";
pub const PROVIDER: &str = "Digital Ocean";
/// Droplets beyond `active_count` tolerated before the job refuses to act (upstream: 5).
const MAX_EXTRA: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationSettings {
    pub api_url: String,
    pub dns_zone: String,
    pub active_count: usize,
    pub max_age: Duration,
    pub drain: Duration,
    pub spawn_timeout: Duration,
    pub size: String,
    pub image: String,
    pub regions: Vec<String>,
    pub setup_key: String,
    pub check_url: String,
    pub tls: TlsSettings,
}

impl RotationSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let active_count: usize = env.parse("OONI_ROTATION_ACTIVE_COUNT", 4usize)?;
        if active_count >= 20 {
            return Err(ConfigError::Invalid {
                name: "OONI_ROTATION_ACTIVE_COUNT".into(),
                reason: "must be below 20".into(),
            });
        }
        let regions = env.list("OONI_ROTATION_REGIONS");
        Ok(RotationSettings {
            api_url: env
                .string("OONI_ROTATION_API_URL", "https://api.digitalocean.com")
                .trim_end_matches('/')
                .to_owned(),
            dns_zone: env
                .string("OONI_ROTATION_DNS_ZONE", "th.ooni.org")
                .trim_matches('.')
                .to_owned(),
            active_count,
            max_age: Duration::hours(env.parse("OONI_ROTATION_MAX_AGE_HOURS", 168i64)?),
            drain: Duration::minutes(env.parse("OONI_ROTATION_DRAIN_MINUTES", 240i64)?.max(1)),
            spawn_timeout: Duration::minutes(
                env.parse("OONI_ROTATION_SPAWN_TIMEOUT_MINUTES", 60i64)?,
            ),
            size: env.string("OONI_ROTATION_SIZE", "s-1vcpu-1gb"),
            image: env.string("OONI_ROTATION_IMAGE", "debian-12-x64"),
            regions: if regions.is_empty() {
                ["ams3", "fra1", "lon1", "nyc3", "sfo3", "tor1"]
                    .map(String::from)
                    .to_vec()
            } else {
                regions
            },
            setup_key: env.string("OONI_ROTATION_SETUP_KEY", "rotation/setup.sh"),
            check_url: env.string("OONI_ROTATION_CHECK_URL", "https://{fqdn}/"),
            tls: TlsSettings::from_env(env)?,
        })
    }
}

// ---- Ports ------------------------------------------------------------------------------------

#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    #[error("cloud provider {op} failed: {message}")]
    Request { op: &'static str, message: String },
    #[error("cloud provider {op} answered HTTP {status}")]
    Status { op: &'static str, status: u16 },
    #[error("the cloud provider token is not available: {0}")]
    Token(String),
}

/// A VM at the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Droplet {
    pub id: u64,
    pub name: String,
    /// `new`, `active`, `off`, `archive`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub region: String,
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
}

/// What to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDroplet {
    pub name: String,
    pub region: String,
    pub size: String,
    pub image: String,
    pub user_data: String,
    pub tag: String,
}

/// A DNS record of the zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    pub id: u64,
    /// `A`, `AAAA`, ...
    pub kind: String,
    pub name: String,
    pub data: String,
}

#[async_trait]
pub trait Cloud: Send + Sync {
    async fn droplets(&self, tag: &str) -> Result<Vec<Droplet>, CloudError>;
    async fn create_droplet(&self, d: &NewDroplet) -> Result<Droplet, CloudError>;
    /// Destroys a droplet; a missing one is fine.
    async fn destroy_droplet(&self, id: u64) -> Result<(), CloudError>;
    async fn records(&self, zone: &str) -> Result<Vec<DnsRecord>, CloudError>;
    async fn create_record(
        &self,
        zone: &str,
        kind: &str,
        name: &str,
        data: &str,
    ) -> Result<(), CloudError>;
    async fn update_record(&self, zone: &str, id: u64, data: &str) -> Result<(), CloudError>;
    /// Deletes a record; a missing one is fine.
    async fn delete_record(&self, zone: &str, id: u64) -> Result<(), CloudError>;
}

/// The end-to-end test of a new helper at `ip`, reached as `fqdn`, which must present the leaf
/// of `cert_pem` (the stored certificate it was given).
#[async_trait]
pub trait HelperCheck: Send + Sync {
    async fn healthy(&self, ip: IpAddr, fqdn: &str, cert_pem: &str) -> bool;
}

// ---- DigitalOcean adapter -------------------------------------------------------------------

/// [`Cloud`] over the DigitalOcean v2 API.
pub struct DigitalOcean {
    http: reqwest::Client,
    api_url: String,
    aws: Option<AwsClients>,
    token: OnceCell<Secret>,
}

impl DigitalOcean {
    /// Token from `OONI_DIGITALOCEAN_TOKEN` (or its SSM parameter), loaded on first use.
    pub fn new(api_url: &str, aws: AwsClients) -> Self {
        Self::build(api_url, Some(aws), OnceCell::new())
    }

    pub fn with_token(api_url: &str, token: Secret) -> Self {
        Self::build(api_url, None, OnceCell::new_with(Some(token)))
    }

    fn build(api_url: &str, aws: Option<AwsClients>, token: OnceCell<Secret>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        DigitalOcean {
            http,
            api_url: api_url.trim_end_matches('/').to_owned(),
            aws,
            token,
        }
    }

    async fn token(&self) -> Result<&Secret, CloudError> {
        self.token
            .get_or_try_init(|| async {
                match &self.aws {
                    Some(aws) => aws
                        .load_secret("OONI_DIGITALOCEAN_TOKEN")
                        .await
                        .map_err(|e| CloudError::Token(e.to_string())),
                    None => Err(CloudError::Token("no token configured".into())),
                }
            })
            .await
    }

    async fn call(
        &self,
        op: &'static str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), CloudError> {
        let token = self.token().await?;
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.api_url))
            .bearer_auth(token.expose());
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| CloudError::Request {
            op,
            message: e.without_url().to_string(),
        })?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| CloudError::Request {
            op,
            message: e.without_url().to_string(),
        })?;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Ok((status, value))
    }

    async fn ok(
        &self,
        op: &'static str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CloudError> {
        let (status, value) = self.call(op, method, path, body).await?;
        if (200..300).contains(&status) {
            Ok(value)
        } else {
            Err(CloudError::Status { op, status })
        }
    }

    /// A successful call whose JSON answer is decoded as `T`.
    async fn fetch<T: serde::de::DeserializeOwned>(
        &self,
        op: &'static str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<T, CloudError> {
        let v = self.ok(op, method, path, body).await?;
        serde_json::from_value(v).map_err(|e| CloudError::Request {
            op,
            message: format!("unexpected answer: {e}"),
        })
    }

    /// A DELETE where 404 (already gone) is success.
    async fn delete(&self, op: &'static str, path: &str) -> Result<(), CloudError> {
        match self.call(op, reqwest::Method::DELETE, path, None).await? {
            (200..=299 | 404, _) => Ok(()),
            (status, _) => Err(CloudError::Status { op, status }),
        }
    }
}

#[derive(Deserialize)]
struct DoNetwork {
    ip_address: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize, Default)]
struct DoNetworks {
    #[serde(default)]
    v4: Vec<DoNetwork>,
    #[serde(default)]
    v6: Vec<DoNetwork>,
}

#[derive(Deserialize)]
struct DoRegion {
    slug: String,
}

#[derive(Deserialize)]
struct DoDroplet {
    id: u64,
    name: String,
    status: String,
    created_at: DateTime<Utc>,
    region: DoRegion,
    #[serde(default)]
    networks: DoNetworks,
}

impl From<DoDroplet> for Droplet {
    fn from(d: DoDroplet) -> Droplet {
        let public = |nets: &[DoNetwork]| {
            nets.iter()
                .find(|n| n.kind == "public")
                .map(|n| n.ip_address.clone())
        };
        Droplet {
            id: d.id,
            name: d.name,
            status: d.status,
            created_at: d.created_at,
            region: d.region.slug,
            ipv4: public(&d.networks.v4).and_then(|s| s.parse().ok()),
            ipv6: public(&d.networks.v6).and_then(|s| s.parse().ok()),
        }
    }
}

#[async_trait]
impl Cloud for DigitalOcean {
    async fn droplets(&self, tag: &str) -> Result<Vec<Droplet>, CloudError> {
        #[derive(Deserialize)]
        struct List {
            droplets: Vec<DoDroplet>,
        }
        let path = format!("/v2/droplets?tag_name={tag}&per_page=200");
        let list: List = self
            .fetch("list droplets", reqwest::Method::GET, &path, None)
            .await?;
        Ok(list.droplets.into_iter().map(Droplet::from).collect())
    }

    async fn create_droplet(&self, d: &NewDroplet) -> Result<Droplet, CloudError> {
        #[derive(Deserialize)]
        struct Created {
            droplet: DoDroplet,
        }
        let body = json!({
            "name": d.name, "region": d.region, "size": d.size, "image": d.image,
            "ipv6": true, "backups": false, "user_data": d.user_data, "tags": [d.tag],
        });
        let created: Created = self
            .fetch(
                "create droplet",
                reqwest::Method::POST,
                "/v2/droplets",
                Some(body),
            )
            .await?;
        Ok(created.droplet.into())
    }

    async fn destroy_droplet(&self, id: u64) -> Result<(), CloudError> {
        self.delete("destroy droplet", &format!("/v2/droplets/{id}"))
            .await
    }

    async fn records(&self, zone: &str) -> Result<Vec<DnsRecord>, CloudError> {
        #[derive(Deserialize)]
        struct Rec {
            id: u64,
            #[serde(rename = "type")]
            kind: String,
            name: String,
            data: String,
        }
        #[derive(Deserialize)]
        struct List {
            domain_records: Vec<Rec>,
        }
        let path = format!("/v2/domains/{zone}/records?per_page=200");
        let list: List = self
            .fetch("list DNS records", reqwest::Method::GET, &path, None)
            .await?;
        Ok(list
            .domain_records
            .into_iter()
            .map(|r| DnsRecord {
                id: r.id,
                kind: r.kind,
                name: r.name,
                data: r.data,
            })
            .collect())
    }

    async fn create_record(
        &self,
        zone: &str,
        kind: &str,
        name: &str,
        data: &str,
    ) -> Result<(), CloudError> {
        let body = json!({"type": kind, "name": name, "data": data, "ttl": 60});
        self.ok(
            "create DNS record",
            reqwest::Method::POST,
            &format!("/v2/domains/{zone}/records"),
            Some(body),
        )
        .await
        .map(drop)
    }

    async fn update_record(&self, zone: &str, id: u64, data: &str) -> Result<(), CloudError> {
        self.ok(
            "update DNS record",
            reqwest::Method::PUT,
            &format!("/v2/domains/{zone}/records/{id}"),
            Some(json!({"data": data})),
        )
        .await
        .map(drop)
    }

    async fn delete_record(&self, zone: &str, id: u64) -> Result<(), CloudError> {
        self.delete(
            "delete DNS record",
            &format!("/v2/domains/{zone}/records/{id}"),
        )
        .await
    }
}

/// [`HelperCheck`] over HTTP(S): upstream's end-to-end test (`http_request` + `tcp_connect`
/// sent to the new helper). With `{fqdn}` in the URL template (the default `https://{fqdn}/`)
/// the name resolves to the helper's address only, so TLS is verified for that name against
/// the web PKI roots (plus `extra_root_pem`), and the presented leaf must be the stored one.
/// `{ip}` templates reach the address with `Host: <fqdn>` (plain-HTTP tests).
pub struct HttpHelperCheck {
    url_template: String,
    extra_root: Option<reqwest::Certificate>,
}

impl HttpHelperCheck {
    pub fn new(url_template: &str, extra_root_pem: Option<&str>) -> Self {
        let extra_root = extra_root_pem.and_then(|pem| {
            reqwest::Certificate::from_pem(pem.as_bytes())
                .map_err(|e| tracing::error!(error = %e, "OONI_ROTATION_CHECK_CA_PEM ignored"))
                .ok()
        });
        HttpHelperCheck {
            url_template: url_template.to_owned(),
            extra_root,
        }
    }

    fn client(&self, url: &url::Url, ip: IpAddr, fqdn: &str) -> reqwest::Result<reqwest::Client> {
        let mut b = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .tls_info(true);
        if url.host_str() == Some(fqdn) {
            b = b.resolve(fqdn, std::net::SocketAddr::new(ip, 0));
        }
        if let Some(root) = &self.extra_root {
            b = b.add_root_certificate(root.clone());
        }
        b.build()
    }
}

#[async_trait]
impl HelperCheck for HttpHelperCheck {
    async fn healthy(&self, ip: IpAddr, fqdn: &str, cert_pem: &str) -> bool {
        let host = match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        };
        let url = self
            .url_template
            .replace("{ip}", &host)
            .replace("{fqdn}", fqdn);
        let (Ok(parsed), Some(expected)) = (url::Url::parse(&url), leaf_der(cert_pem)) else {
            tracing::error!(%ip, "helper check: bad check URL or no stored certificate");
            return false;
        };
        let client = match self.client(&parsed, ip, fqdn) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "helper check: HTTP client");
                return false;
            }
        };
        let body = json!({"http_request": "https://google.com/", "http_request_headers": {}, "tcp_connect": ["8.8.8.8:443"]});
        let resp = match client
            .post(parsed.clone())
            .header("host", fqdn)
            .header("pragma", "no-cache")
            .json(&body)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                tracing::info!(%ip, status = r.status().as_u16(), "helper check: not ready");
                return false;
            }
            Err(e) => {
                tracing::info!(%ip, error = %e.without_url(), "helper check: not reachable");
                return false;
            }
        };
        if parsed.scheme() == "https" {
            let leaf = resp
                .extensions()
                .get::<reqwest::tls::TlsInfo>()
                .and_then(|t| t.peer_certificate());
            if leaf != Some(expected.as_slice()) {
                tracing::warn!(%ip, fqdn, "helper check: the helper does not present the stored certificate");
                return false;
            }
        }
        match resp.json::<Value>().await {
            Ok(v) => ["dns", "http_request", "tcp_connect"]
                .iter()
                .all(|k| v.get(k).is_some()),
            Err(_) => false,
        }
    }
}

// ---- The table --------------------------------------------------------------------------------

/// A row of `test_helper_instances` (dates as epoch seconds, 0 for NULL).
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct Instance {
    pub rdn: String,
    pub dns_zone: String,
    pub name: String,
    pub provider: String,
    pub region: String,
    pub ipaddr: String,
    pub ipv6addr: String,
    pub draining_at: i64,
    pub destroyed_at: i64,
}

impl Instance {
    pub fn is_active(&self) -> bool {
        self.draining_at == 0 && self.destroyed_at == 0
    }
}

#[derive(Serialize)]
struct InstanceRow<'a> {
    rdn: &'a str,
    dns_zone: &'a str,
    name: &'a str,
    provider: &'a str,
    region: &'a str,
    ipaddr: &'a str,
    ipv6addr: &'a str,
    draining_at: Option<String>,
    destroyed_at: Option<String>,
    sign: i8,
}

fn datetime(epoch: i64) -> Option<String> {
    (epoch > 0).then(|| {
        DateTime::from_timestamp(epoch, 0)
            .unwrap_or_default()
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    })
}

fn encode_row(i: &Instance, sign: i8, out: &mut Vec<u8>) -> Result<(), JobError> {
    let row = InstanceRow {
        rdn: &i.rdn,
        dns_zone: &i.dns_zone,
        name: &i.name,
        provider: &i.provider,
        region: &i.region,
        ipaddr: &i.ipaddr,
        ipv6addr: &i.ipv6addr,
        draining_at: datetime(i.draining_at),
        destroyed_at: datetime(i.destroyed_at),
        sign,
    };
    serde_json::to_writer(&mut *out, &row)
        .map_err(|e| anyhow::anyhow!("encoding a helper row: {e}"))?;
    out.push(b'\n');
    Ok(())
}

/// Writes `(sign, instance)` rows in one INSERT.
async fn write_rows(ch: &clickhouse::Client, rows: &[(i8, &Instance)]) -> Result<(), JobError> {
    let mut body = Vec::new();
    for (sign, i) in rows {
        encode_row(i, *sign, &mut body)?;
    }
    let mut insert = ch.insert_formatted_with(
        "INSERT INTO test_helper_instances (rdn, dns_zone, name, provider, region, ipaddr, ipv6addr, draining_at, destroyed_at, sign) FORMAT JSONEachRow",
    );
    let ch_err = |e: clickhouse::error::Error| {
        JobError::Other(anyhow::anyhow!("writing test_helper_instances: {e}"))
    };
    insert
        .send(bytes::Bytes::from(body))
        .await
        .map_err(ch_err)?;
    insert.end().await.map_err(ch_err)
}

/// Replaces `old` by `new` (same name).
async fn replace(ch: &clickhouse::Client, old: &Instance, new: &Instance) -> Result<(), JobError> {
    write_rows(ch, &[(-1, old), (1, new)]).await
}

/// The live rows (not collapsed away) of the zone's helpers.
pub async fn instances(ch: &clickhouse::Client, zone: &str) -> Result<Vec<Instance>, JobError> {
    ch.query(
        "SELECT rdn, dns_zone, name, provider, region, toString(ipaddr) AS ipaddr, toString(ipv6addr) AS ipv6addr, \
         ifNull(toInt64(toUnixTimestamp(draining_at)), 0) AS draining_at, \
         ifNull(toInt64(toUnixTimestamp(destroyed_at)), 0) AS destroyed_at \
         FROM test_helper_instances FINAL WHERE sign = 1 AND dns_zone = ? AND provider = ? ORDER BY name",
    )
    .bind(zone)
    .bind(PROVIDER)
    .fetch_all()
    .await
    .map_err(|e| JobError::Other(anyhow::anyhow!("reading test_helper_instances: {e}")))
}

// ---- The state machine ------------------------------------------------------------------------

/// The rdn of one of our droplet names (`roaming-th-<rdn>-<timestamp>`).
pub fn rdn_of(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("roaming-th-")?;
    let (rdn, ts) = rest.split_once('-')?;
    (!rdn.is_empty()
        && rdn.bytes().all(|b| b.is_ascii_digit())
        && ts.len() == 14
        && ts.bytes().all(|b| b.is_ascii_digit()))
    .then_some(rdn)
}

fn fqdn(rdn: &str, zone: &str) -> String {
    format!("{rdn}.{zone}")
}

#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error("{found} droplets tagged {TAG} exceed the expected {max}; refusing to act")]
    TooManyDroplets { found: usize, max: usize },
    #[error("the first-boot script {0} is missing from the config bucket")]
    NoSetupScript(String),
    #[error("test-helpers.json cannot be updated: {0}")]
    HelpersDoc(String),
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error("the TLS certificate step failed: {0}")]
    Tls(#[from] TlsError),
}

/// Runs the job.
pub async fn run(env: &JobEnv) -> Result<Loaded, JobError> {
    let s = &env.settings.rotation;
    let cloud = env.cloud.as_ref();
    let now = env.clock.now();
    let zone = s.dns_zone.as_str();
    let mut actions: Vec<Value> = Vec::new();
    let droplets = cloud.droplets(TAG).await.map_err(RotationError::from)?;
    let max = s.active_count + MAX_EXTRA;
    if droplets.len() > max {
        return Err(RotationError::TooManyDroplets {
            found: droplets.len(),
            max,
        }
        .into());
    }
    let by_name: BTreeMap<&str, &Droplet> = droplets.iter().map(|d| (d.name.as_str(), d)).collect();
    let mut rows = instances(&env.ch, zone).await?;

    // 2. Destroy helpers drained long enough (droplet first, then the row).
    for row in rows
        .iter_mut()
        .filter(|r| r.draining_at > 0 && r.destroyed_at == 0)
    {
        if now.timestamp() - row.draining_at < s.drain.num_seconds() {
            continue;
        }
        if let Some(d) = by_name.get(row.name.as_str()) {
            cloud
                .destroy_droplet(d.id)
                .await
                .map_err(RotationError::from)?;
        }
        env.checkpoints
            .reached(Point {
                job: JOB,
                step: Step::Stored,
                target: Some(&row.name),
            })
            .await?;
        let destroyed = Instance {
            destroyed_at: now.timestamp(),
            ..row.clone()
        };
        replace(&env.ch, row, &destroyed).await?;
        tracing::info!(name = %row.name, rdn = %row.rdn, "drained test helper destroyed");
        actions.push(json!({"action": "destroyed", "name": row.name, "rdn": row.rdn}));
        *row = destroyed;
    }

    // A helper whose droplet disappeared (destroyed by hand): record it destroyed.
    for row in rows
        .iter_mut()
        .filter(|r| r.is_active() && !by_name.contains_key(r.name.as_str()))
    {
        let gone = Instance {
            destroyed_at: now.timestamp(),
            ..row.clone()
        };
        replace(&env.ch, row, &gone).await?;
        tracing::error!(name = %row.name, rdn = %row.rdn, "active test helper not found at the provider; recorded destroyed");
        actions.push(json!({"action": "vanished", "name": row.name, "rdn": row.rdn}));
        *row = gone;
    }

    // 3. Pending droplets: activate the healthy ones (serving the stored certificate), destroy
    //    the ones that never got healthy.
    let mut pending = 0;
    let stored_cert = stored_certificate(env, zone).await?;
    let served_pem = stored_cert.as_ref().map_or("", |c| c.cert_pem.as_str());
    for d in &droplets {
        if rows.iter().any(|r| r.name == d.name) {
            continue;
        }
        let Some(rdn) = rdn_of(&d.name) else {
            tracing::warn!(name = %d.name, "droplet tagged {TAG} with an unknown name; left alone");
            continue;
        };
        let host = fqdn(rdn, zone);
        let healthy = match (d.status.as_str(), d.ipv4) {
            ("active", Some(ip)) => {
                env.helper_check
                    .healthy(IpAddr::V4(ip), &host, served_pem)
                    .await
            }
            _ => false,
        };
        if !healthy {
            if now - d.created_at > s.spawn_timeout {
                cloud
                    .destroy_droplet(d.id)
                    .await
                    .map_err(RotationError::from)?;
                tracing::warn!(name = %d.name, "new helper never became healthy; destroyed");
                actions.push(json!({"action": "abandoned", "name": d.name, "rdn": rdn}));
            } else {
                pending += 1;
            }
            continue;
        }
        let (Some(ip), ipv6) = (d.ipv4, d.ipv6) else {
            continue;
        };
        let new = Instance {
            rdn: rdn.to_owned(),
            dns_zone: zone.to_owned(),
            name: d.name.clone(),
            provider: PROVIDER.into(),
            region: d.region.clone(),
            ipaddr: ip.to_string(),
            ipv6addr: ipv6.unwrap_or(Ipv6Addr::UNSPECIFIED).to_string(),
            draining_at: 0,
            destroyed_at: 0,
        };
        write_rows(&env.ch, &[(1, &new)]).await?;
        env.checkpoints
            .reached(Point {
                job: JOB,
                step: Step::Stored,
                target: Some(&d.name),
            })
            .await?;
        tracing::info!(name = %d.name, rdn, %ip, "new test helper active");
        actions.push(json!({"action": "activated", "name": d.name, "rdn": rdn}));
        rows.push(new);
    }

    // 4. One active helper per rdn: drain all but the newest (names sort by creation time).
    let mut active_by_rdn: BTreeMap<String, Vec<Instance>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.is_active()) {
        active_by_rdn
            .entry(r.rdn.clone())
            .or_default()
            .push(r.clone());
    }
    let mut draining = rows
        .iter()
        .any(|r| r.draining_at > 0 && r.destroyed_at == 0);
    for list in active_by_rdn.values_mut() {
        list.sort_by(|a, b| a.name.cmp(&b.name));
        while list.len() > 1 {
            draining = true;
            let old = list.remove(0);
            replace(
                &env.ch,
                &old,
                &Instance {
                    draining_at: now.timestamp(),
                    ..old.clone()
                },
            )
            .await?;
            tracing::info!(name = %old.name, rdn = %old.rdn, "test helper draining");
            actions.push(json!({"action": "draining", "name": old.name, "rdn": old.rdn}));
        }
    }

    // 5. DNS: every active rdn points at its helper.
    let records = cloud.records(zone).await.map_err(RotationError::from)?;
    for (rdn, list) in &active_by_rdn {
        let Some(helper) = list.first() else { continue };
        let mut wanted = vec![("A", helper.ipaddr.clone())];
        if helper.ipv6addr != "::" {
            wanted.push(("AAAA", helper.ipv6addr.clone()));
        }
        for (kind, data) in wanted {
            match records.iter().find(|r| r.kind == kind && r.name == *rdn) {
                Some(r) if r.data == data => {}
                Some(r) => {
                    cloud
                        .update_record(zone, r.id, &data)
                        .await
                        .map_err(RotationError::from)?;
                    actions.push(
                        json!({"action": "dns_updated", "rdn": rdn, "type": kind, "data": data}),
                    );
                }
                None => {
                    cloud
                        .create_record(zone, kind, rdn, &data)
                        .await
                        .map_err(RotationError::from)?;
                    actions.push(
                        json!({"action": "dns_created", "rdn": rdn, "type": kind, "data": data}),
                    );
                }
            }
        }
    }

    // 6. Spawn when nothing is pending: a missing rdn first; else replace the oldest helper once
    //    it is older than max_age, one at a time (none draining) and staggered (the newest
    //    helper at least max_age / active_count old), so probes never see several change at once.
    let mut certificate: Option<CertSource> = None;
    if pending == 0 {
        let active: Vec<&Instance> = active_by_rdn.values().filter_map(|l| l.first()).collect();
        let missing = (0..s.active_count)
            .map(|n| n.to_string())
            .find(|n| !active_by_rdn.contains_key(n));
        let ages: Vec<(DateTime<Utc>, String)> = active
            .iter()
            .filter(|i| i.rdn.parse::<usize>().is_ok_and(|n| n < s.active_count))
            .filter_map(|i| {
                by_name
                    .get(i.name.as_str())
                    .map(|d| (d.created_at, i.rdn.clone()))
            })
            .collect();
        let oldest = ages.iter().min().cloned();
        let newest = ages.iter().map(|(c, _)| *c).max();
        let gap = s.max_age / i32::try_from(s.active_count.max(1)).unwrap_or(1);
        let staggered = !draining && newest.is_none_or(|n| now - n >= gap);
        let target = match (missing, oldest) {
            (Some(rdn), _) => Some((rdn, "missing")),
            (None, Some((created, rdn))) if staggered && now - created >= s.max_age => {
                Some((rdn, "replacing the oldest"))
            }
            _ => None,
        };
        if let Some((rdn, why)) = target {
            let setup = env
                .config_bucket
                .get(&s.setup_key)
                .await?
                .ok_or_else(|| RotationError::NoSetupScript(s.setup_key.clone()))?;
            // A helper is only spawned with a certificate valid long enough (ordered now if
            // needed; an ACME failure stops the run before any droplet exists).
            let (cert, source) = ensure_certificate(env, zone, stored_cert).await?;
            certificate = Some(source);
            let user_data = crate::rotation_tls::user_data(&cert, &String::from_utf8_lossy(&setup))
                .map_err(RotationError::from)?;
            let live_regions: Vec<&str> = droplets.iter().map(|d| d.region.as_str()).collect();
            let region = s
                .regions
                .iter()
                .find(|r| !live_regions.contains(&r.as_str()))
                .or_else(|| s.regions.first())
                .cloned()
                .unwrap_or_default();
            let new = NewDroplet {
                name: format!("roaming-th-{rdn}-{}", now.format("%Y%m%d%H%M%S")),
                region,
                size: s.size.clone(),
                image: s.image.clone(),
                user_data,
                tag: TAG.into(),
            };
            let created = cloud
                .create_droplet(&new)
                .await
                .map_err(RotationError::from)?;
            tracing::info!(name = %created.name, rdn, region = %created.region, why, "test helper spawned");
            actions
                .push(json!({"action": "spawned", "name": created.name, "rdn": rdn, "why": why}));
            pending += 1;
        }
    }

    // 7. Publish the active helpers to the probes.
    let published = publish_helpers(env, zone, active_by_rdn.keys().map(String::as_str)).await?;

    let active = rows.iter().filter(|r| r.is_active()).count();
    Ok(Loaded {
        outcome: if actions.is_empty() && !published && certificate != Some(CertSource::Issued) {
            Outcome::Unchanged
        } else {
            Outcome::Updated
        },
        rows: actions.len() as u64,
        details: json!({ "actions": actions, "pending": pending, "active": active, "droplets": droplets.len(), "published": published, "certificate": certificate.map_or("not needed", CertSource::as_str) }),
    })
}

/// The test-helpers document with the zone's web-connectivity helpers set to `active_rdns`.
pub fn with_rotated_helpers<'a>(
    mut doc: TestHelpersDoc,
    zone: &str,
    active_rdns: impl Iterator<Item = &'a str>,
) -> TestHelpersDoc {
    let suffix = format!(".{zone}");
    let ours =
        |h: &TestHelper| h.kind == "https" && h.address.trim_end_matches('/').ends_with(&suffix);
    let mut wc: Vec<TestHelper> = active_rdns
        .map(|rdn| TestHelper::https(format!("https://{}", fqdn(rdn, zone))))
        .collect();
    if let Some(old) = doc.helpers.remove(WEB_CONNECTIVITY) {
        wc.extend(old.into_iter().filter(|h| !ours(h)));
    }
    doc.helpers.insert(WEB_CONNECTIVITY.into(), wc);
    doc
}

/// Step 7: writes `test-helpers.json` when the active set changed it. Returns whether it wrote.
async fn publish_helpers<'a>(
    env: &JobEnv,
    zone: &str,
    active_rdns: impl Iterator<Item = &'a str>,
) -> Result<bool, JobError> {
    let active: Vec<&str> = active_rdns.collect();
    if active.is_empty() {
        // Never leave probes without the zone's helpers: keep what they have.
        return Ok(false);
    }
    let current = env.config_bucket.get(TEST_HELPERS_KEY).await?;
    let doc = match &current {
        Some(bytes) => {
            TestHelpersDoc::parse(bytes).map_err(|e| RotationError::HelpersDoc(e.to_string()))?
        }
        None => TestHelpersDoc::upstream(),
    };
    let updated = with_rotated_helpers(doc.clone(), zone, active.iter().copied());
    if current.is_some() && updated == doc {
        return Ok(false);
    }
    let body = serde_json::to_vec_pretty(&updated)
        .map_err(|e| RotationError::HelpersDoc(e.to_string()))?;
    TestHelpersDoc::parse(&body).map_err(|e| RotationError::HelpersDoc(e.to_string()))?;
    env.config_bucket
        .put(TEST_HELPERS_KEY, body.into(), "application/json")
        .await?;
    tracing::info!(helpers = ?active, "test helpers published to the probes");
    Ok(true)
}

/// Parses a timestamp of a droplet name (for diagnostics).
pub fn spawned_at(name: &str) -> Option<DateTime<Utc>> {
    let ts = name.rsplit('-').next()?;
    NaiveDateTime::parse_from_str(ts, "%Y%m%d%H%M%S")
        .ok()
        .map(|n| n.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_zones_helpers_become_the_active_rdns_and_every_other_helper_is_kept() {
        let mut doc = TestHelpersDoc::upstream();
        let wc = doc.helpers.get_mut(WEB_CONNECTIVITY).unwrap();
        wc.insert(0, TestHelper::https("https://5.th.ooni.org"));
        wc.insert(1, TestHelper::https("https://2.th.ooni.org/"));
        let before = doc.helpers[WEB_CONNECTIVITY].len();
        let out = with_rotated_helpers(doc.clone(), "th.ooni.org", ["0", "1"].into_iter());
        let addrs: Vec<&str> = out.helpers[WEB_CONNECTIVITY]
            .iter()
            .map(|h| h.address.as_str())
            .collect();
        assert_eq!(
            addrs[..2],
            ["https://0.th.ooni.org", "https://1.th.ooni.org"]
        );
        assert!(
            !addrs.contains(&"https://5.th.ooni.org") && !addrs.contains(&"https://2.th.ooni.org/")
        );
        assert_eq!(
            addrs.len(),
            before,
            "two rotated in, two rotated out, the static ones kept"
        );
        assert!(addrs.contains(&"https://wcth0.fra1.ooni.org"));
        assert_eq!(out.helpers["dns"], doc.helpers["dns"]);
        assert_eq!(
            with_rotated_helpers(out.clone(), "th.ooni.org", ["0", "1"].into_iter()),
            out,
            "idempotent"
        );
    }

    #[test]
    fn our_droplet_names_carry_the_rdn_and_the_spawn_time() {
        assert_eq!(rdn_of("roaming-th-3-20261126101500"), Some("3"));
        assert_eq!(
            rdn_of("roaming-th-20261126101500"),
            None,
            "upstream names have no rdn"
        );
        assert_eq!(rdn_of("other-3-20261126101500"), None);
        assert_eq!(rdn_of("roaming-th-x-20261126101500"), None);
        assert_eq!(
            spawned_at("roaming-th-3-20261126101500")
                .unwrap()
                .to_rfc3339(),
            "2026-11-26T10:15:00+00:00"
        );
    }

    #[test]
    fn settings_have_upstream_defaults_and_refuse_absurd_counts() {
        let s = RotationSettings::from_env(&Env::from_fn(|_| None)).unwrap();
        assert_eq!((s.active_count, s.dns_zone.as_str()), (4, "th.ooni.org"));
        assert_eq!(s.drain, Duration::minutes(240));
        assert_eq!(s.regions.len(), 6);
        let bad = Env::from_fn(|k| (k == "OONI_ROTATION_ACTIVE_COUNT").then(|| "50".to_string()));
        assert!(RotationSettings::from_env(&bad).is_err());
    }

    #[test]
    fn helper_rows_encode_nulls_and_times_for_clickhouse() {
        let i = Instance {
            rdn: "0".into(),
            dns_zone: "th.ooni.org".into(),
            name: "roaming-th-0-20261126101500".into(),
            provider: PROVIDER.into(),
            region: "fra1".into(),
            ipaddr: "192.0.2.1".into(),
            ipv6addr: "::".into(),
            draining_at: 1_795_000_000,
            destroyed_at: 0,
        };
        let mut out = Vec::new();
        encode_row(&i, -1, &mut out).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["draining_at"], "2026-11-18 11:06:40");
        assert_eq!(v["destroyed_at"], Value::Null);
        assert_eq!(v["sign"], -1);
    }
}
