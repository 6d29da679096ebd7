//! Test support: a job environment on a private TestStack whose sources are served by a local
//! fake HTTP server, checkpoint hooks that interrupt a run, and fixture builders.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod pebble;

use async_trait::async_trait;
use ooni_jobs::checkpoint::{Checkpoints, NoCheckpoints, Point, Step};
use ooni_jobs::metrics::MetricsSink;
use ooni_jobs::settings::{Expect, JobSettings};
use ooni_jobs::{Job, JobEnv};
use ooni_testkit::fake_http::{FakeHttp, Reply};
use ooni_testkit::TestStack;
use serde_json::Value;
use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Paths the fake upstream serves.
pub const DNS: &str = "/fp/dns.csv";
pub const HTTP: &str = "/fp/http.csv";
pub const ARCHIVE: &str = "/test-lists/master.tar.gz";
pub const ASNMETA: &str = "/asnmeta.json";
pub const CC_DB: &str = "/geoip/cc.mmdb.gz";
pub const ASN_DB: &str = "/geoip/asn.mmdb";
pub const EIP: &str = "/riseup/eip-service.json";
pub const CA: &str = "/riseup/ca.crt";
pub const CERT: &str = "/riseup/cert";

/// A stack, a fake upstream with switchable content, and a job environment over both.
pub struct Harness {
    pub stack: TestStack,
    pub fake: FakeHttp,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
    pub metrics: Arc<Mutex<Vec<Value>>>,
    sink: MetricsSink,
    pub settings: JobSettings,
}

impl Harness {
    pub async fn start() -> Harness {
        let stack = TestStack::start().await;
        let routes: Arc<Mutex<HashMap<String, Reply>>> = Arc::default();
        let r = routes.clone();
        let fake = FakeHttp::start(move |req| {
            r.lock()
                .unwrap()
                .get(req.path())
                .cloned()
                .unwrap_or_else(Reply::not_found)
        })
        .await;
        let mut settings = JobSettings::defaults().unwrap();
        settings.fingerprints_dns_url = fake.url(DNS);
        settings.fingerprints_http_url = fake.url(HTTP);
        settings.citizenlab_archive_url = fake.url(ARCHIVE);
        settings.citizenlab_min_rows = 3;
        settings.asnmeta_url = fake.url(ASNMETA);
        settings.asnmeta_min_rows = 10;
        settings.geoip_cc_url = fake.url(CC_DB);
        settings.geoip_asn_url = fake.url(ASN_DB);
        settings.geoip_probe_ip = "93.57.1.1".parse().unwrap();
        settings.geoip_probe_cc = Expect::Exactly("IT".into());
        settings.geoip_probe_asn = Expect::Exactly(30722);
        settings.vpn_eip_service_url = fake.url(EIP);
        settings.vpn_ca_url = fake.url(CA);
        settings.vpn_cert_url = fake.url(CERT);
        let (sink, metrics) = MetricsSink::memory();
        Harness {
            stack,
            fake,
            routes,
            metrics,
            sink,
            settings,
        }
    }

    /// Serves `reply` at `path` from now on.
    pub fn serve(&self, path: &str, reply: Reply) {
        self.routes.lock().unwrap().insert(path.to_owned(), reply);
    }

    pub fn env(&self) -> JobEnv {
        self.env_with(Arc::new(NoCheckpoints))
    }

    pub fn env_with(&self, checkpoints: Arc<dyn Checkpoints>) -> JobEnv {
        let mut env = JobEnv::with_settings(&self.stack.ctx, self.settings.clone()).unwrap();
        env.checkpoints = checkpoints;
        env.metrics = self.sink.clone();
        env
    }

    /// Runs `job` to completion.
    pub async fn run(&self, job: Job) -> anyhow::Result<Value> {
        ooni_jobs::job::run_named(&self.env(), job).await
    }

    /// Runs `job` with a hook that fails at `at` (the run stops there, as if killed).
    pub async fn run_failing_at(&self, job: Job, at: Stop) -> anyhow::Result<Value> {
        let hook = Arc::new(StopAt::new(at, false));
        let r = ooni_jobs::job::run_named(&self.env_with(hook.clone()), job).await;
        assert!(hook.hit(), "the run never reached {at:?}: {r:?}");
        r
    }

    /// Runs `job` with a hook that never returns at `at`, then drops the run (a Lambda
    /// timeout or kill): returns once the future is dropped.
    pub async fn run_killed_at(&self, job: Job, at: Stop) {
        run_killed_with(|hook| self.env_with(hook), job, at).await;
    }

    pub fn metric_docs(&self) -> Vec<Value> {
        self.metrics.lock().unwrap().clone()
    }

    pub fn ch(&self) -> clickhouse::Client {
        self.stack.ch()
    }

    pub async fn count(&self, table: &str) -> u64 {
        self.ch()
            .query(&format!("SELECT count() FROM {table}"))
            .fetch_one::<u64>()
            .await
            .unwrap()
    }

    pub async fn strings(&self, sql: &str) -> Vec<String> {
        self.ch().query(sql).fetch_all::<String>().await.unwrap()
    }
}

/// Runs `job` in the environment `env_with` builds around a hook that never returns at `at`,
/// then drops the run (a Lambda timeout or kill): returns once the future is dropped.
pub async fn run_killed_with(
    env_with: impl FnOnce(Arc<dyn Checkpoints>) -> JobEnv,
    job: Job,
    at: Stop,
) {
    let hook = Arc::new(StopAt::new(at, true));
    let env = env_with(hook.clone());
    let run = ooni_jobs::job::run_named(&env, job);
    let r = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        tokio::select! {
            r = run => panic!("the run finished instead of being killed: {r:?}"),
            () = hook.wait_hit() => {}
        }
    })
    .await;
    assert!(r.is_ok(), "the run never reached {at:?}");
}

/// Where to stop a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stop {
    pub step: Step,
    pub target: Option<&'static str>,
}

pub const fn stop(step: Step, target: Option<&'static str>) -> Stop {
    Stop { step, target }
}

/// Fails (or hangs) at one point.
pub struct StopAt {
    at: Stop,
    hang: bool,
    hits: AtomicUsize,
    notify: tokio::sync::Notify,
}

impl StopAt {
    fn new(at: Stop, hang: bool) -> Self {
        StopAt {
            at,
            hang,
            hits: AtomicUsize::new(0),
            notify: tokio::sync::Notify::new(),
        }
    }

    fn hit(&self) -> bool {
        self.hits.load(Ordering::SeqCst) > 0
    }

    async fn wait_hit(&self) {
        loop {
            let notified = self.notify.notified();
            if self.hit() {
                return;
            }
            notified.await;
        }
    }
}

#[async_trait]
impl Checkpoints for StopAt {
    async fn reached(&self, p: Point<'_>) -> anyhow::Result<()> {
        if p.step == self.at.step && p.target == self.at.target {
            self.hits.fetch_add(1, Ordering::SeqCst);
            self.notify.notify_waiters();
            if self.hang {
                std::future::pending::<()>().await;
            }
            anyhow::bail!("injected crash at {:?} {:?}", p.step, p.target);
        }
        Ok(())
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A GitHub-style `.tar.gz` archive: every `(name, content)` under `test-lists-master/`.
pub fn tar_gz(files: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(
                &mut header,
                format!("test-lists-master/{name}"),
                content.as_bytes(),
            )
            .unwrap();
    }
    gzip(&builder.into_inner().unwrap())
}

pub const LIST_HEADER: &str = "url,category_code,category_description,date_added,source,notes\n";

/// A list file with `urls` as `(url, category)`.
pub fn list(urls: &[(&str, &str)]) -> String {
    let mut s = LIST_HEADER.to_owned();
    for (url, cat) in urls {
        s += &format!("{url},{cat},Description,2020-01-01,ooni,\"a note, with a comma\"\n");
    }
    s
}

pub const FP_DNS: &str = include_str!("../fixtures/fingerprints_dns.csv");
pub const FP_HTTP: &str = include_str!("../fixtures/fingerprints_http.csv");

/// The first `n` data rows of a fingerprint CSV (with its header).
pub fn first_rows(csv: &str, n: usize) -> String {
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(reader.headers().unwrap()).unwrap();
    for r in reader.records().take(n) {
        w.write_record(&r.unwrap()).unwrap();
    }
    String::from_utf8(w.into_inner().unwrap()).unwrap()
}

/// An `all_as_org_map.json`-style document with `asns` ASNs of two history entries each,
/// organisations named with `tag`.
pub fn asnmeta_doc(asns: u32, tag: &str) -> String {
    let mut m = serde_json::Map::new();
    for asn in 1..=asns {
        m.insert(
            asn.to_string(),
            serde_json::json!([
                [
                    format!("{tag} Org {asn}"),
                    "US",
                    "20040604",
                    format!("AS-{asn}"),
                    "ARIN"
                ],
                [
                    format!("{tag} Org {asn} LLC"),
                    "IT",
                    "20180220",
                    format!("AS-{asn}"),
                    "RIPE"
                ],
            ]),
        );
    }
    Value::Object(m).to_string()
}
