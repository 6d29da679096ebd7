//! Shared setup for the black-box tests: a test stack (real local ClickHouse + AWS emulator)
//! loaded with the upstream fixture rows plus bodies this file writes, served by the dev
//! server. One stack per test binary runs on its own runtime thread for the whole process, so
//! tests only talk HTTP to it; tests that change data start their own with [`start`].
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use flate2::write::GzEncoder;
use ooni_adapters::{ClickHouseConfig, FixedClock};
use ooni_domain::envelope::incoming_object_key;
use ooni_domain::ids::MeasurementUid;
use ooni_measurements::quotas::QuotaConfig;
use ooni_measurements::{ApiOptions, ApiService};
use ooni_platform::functions::Bucket;
use ooni_testkit::{TestServer, TestStack};
use serde_json::{json, Value};
use std::io::Write;
use std::sync::{Arc, OnceLock};

/// The clock of the shared stack: a few days after most fixture rows (2023-12-31/2024-01-01).
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 5, 12, 0, 0).unwrap()
}

const FIXTURES: [(&str, &str); 3] = [
    ("citizenlab", ooni_testkit::fixtures::CITIZENLAB_SQL),
    (
        "fastpath",
        include_str!("../fixtures/2_clickhouse_populate_fastpath.sql"),
    ),
    (
        "jsonl",
        include_str!("../fixtures/3_clickhouse_populate_jsonl.sql"),
    ),
];

/// Loads the upstream fixture rows, batching each file's `INSERT … VALUES (…);` statements
/// (one per line, `--` lines skipped) into a few multi-row INSERTs.
pub async fn load_fixtures(ch: &clickhouse::Client) {
    for (table, text) in FIXTURES {
        let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
        for stmt in text.split(";\n") {
            let stmt = stmt.trim();
            if !stmt.starts_with("INSERT") {
                continue;
            }
            let at = stmt.find(") VALUES").expect("an INSERT with a column list");
            let cols = stmt[stmt.find('(').unwrap()..=at].to_string();
            let values = stmt[at + ") VALUES".len()..].trim().trim_end_matches(';');
            match groups.iter_mut().find(|(c, _)| *c == cols) {
                Some((_, v)) => v.push(values),
                None => groups.push((cols, vec![values])),
            }
        }
        for (cols, values) in groups {
            for chunk in values.chunks(500) {
                let sql = format!("INSERT INTO {table} {cols} VALUES {}", chunk.join(","));
                ch.query_raw(&sql)
                    .execute()
                    .await
                    .unwrap_or_else(|e| panic!("loading {table}: {e}"));
            }
        }
    }
}

/// gzip of `text` as one member.
pub fn gz(text: &str) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(text.as_bytes()).unwrap();
    e.finish().unwrap()
}

/// A measurement body naming itself.
pub fn body(report_id: &str, input: &str, marker: &str) -> String {
    json!({"report_id": report_id, "input": input, "test_keys": {"marker": marker}, "probe_cc": "XX"}).to_string()
}

/// Inserts one fastpath row (the columns the API reads; the rest default).
#[allow(clippy::too_many_arguments)]
pub async fn insert_fastpath(
    ch: &clickhouse::Client,
    uid: &str,
    rid: &str,
    input: &str,
    cc: &str,
    asn: u32,
    test: &str,
    t: DateTime<Utc>,
    anomaly: &str,
) {
    let domain = input.split('/').nth(2).unwrap_or("").to_owned();
    ch.query(
        "INSERT INTO fastpath (measurement_uid, report_id, input, probe_cc, probe_asn, test_name, test_start_time, \
         measurement_start_time, scores, anomaly, confirmed, msm_failure, domain) \
         VALUES (?, ?, ?, ?, ?, ?, toDateTime(?), toDateTime(?), ?, ?, 'f', 'f', ?)",
    )
    .bind(uid)
    .bind(rid)
    .bind(input)
    .bind(cc)
    .bind(asn)
    .bind(test)
    .bind(t.timestamp() - 30)
    .bind(t.timestamp())
    .bind(r#"{"blocking_general":0.0}"#)
    .bind(anomaly)
    .bind(domain)
    .execute()
    .await
    .unwrap();
}

/// What the shared setup wrote besides the fixtures.
#[derive(Clone, Debug)]
pub struct Seeded {
    /// Bodies in a seekable (one member per line) JSONL file: (uid, report_id, input, body).
    pub seekable: Vec<(String, String, String, String)>,
    /// A fresh measurement whose body is only in the incoming bucket.
    pub incoming: (String, String, String, String),
    /// A measurement with a fastpath row but no body anywhere.
    pub bodiless: (String, String),
    /// The bodies of the fixture jsonl rows (upstream layout): (uid, report_id, input, body).
    pub upstream: Vec<(String, String, String, String)>,
}

/// A running API on a loaded stack.
pub struct Api {
    pub base_url: String,
    pub public_base_url: String,
    pub clickhouse: ClickHouseConfig,
    pub seeded: Seeded,
}

impl Api {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// GET `path`; returns status, headers and body text.
    pub async fn get(&self, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
        // A client per call: a pooled connection must not outlive the test runtime that made it.
        let resp = reqwest::Client::new()
            .get(self.url(path))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        (status, headers, resp.text().await.unwrap())
    }

    /// GET `path`, expecting 200 JSON.
    pub async fn json(&self, path: &str) -> Value {
        let (status, headers, text) = self.get(path).await;
        assert_eq!(status, 200, "{path}: {text}");
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{path}"
        );
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
    }

    pub fn ch(&self) -> clickhouse::Client {
        self.clickhouse.client()
    }
}

/// Writes the bodies the routes read: an upstream-layout file for each fixture jsonl row, a
/// seekable file with `jsonl` rows for three new measurements, and an incoming `.post`.
pub async fn seed(stack: &TestStack, clock_now: DateTime<Utc>) -> Seeded {
    let ch = stack.ch();
    let data = stack.ctx.object_store(Bucket::Data);
    let incoming = stack.ctx.object_store(Bucket::Incoming);

    // Upstream layout: whole-file gzip (here two members), the body at line `linenum`.
    let upstream_rows = [
        (
            "20210709005529.664022_MY_webconnectivity_68e5bea1060d1874",
            "20210709T004340Z_webconnectivity_MY_4818_n1_YCM7J9mGcEHds2K3",
            "https://www.backtrack-linux.org/",
            "raw/20210709/00/MY/webconnectivity/2021070900_MY_webconnectivity.n0.2.jsonl.gz",
            35usize,
        ),
        (
            "20250709075147.833477_US_webconnectivity_8f0e0b49950f2592",
            "20250709T074913Z_webconnectivity_US_10796_n1_XDgk16bsGyJbx6Jl",
            "https://freenetproject.org/",
            "raw/20250709/07/US/webconnectivity/2025070907_US_webconnectivity.n1.7.jsonl.gz",
            623,
        ),
        (
            "20250709074932.361231_US_webconnectivity_52be70d41f91a6cc",
            "20250709T074749Z_webconnectivity_US_10796_n1_oljUoi3ZVNHUzjdp",
            "https://www.quora.com/",
            "raw/20250709/07/US/webconnectivity/2025070907_US_webconnectivity.n1.7.jsonl.gz",
            187,
        ),
    ];
    let mut files: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    let mut upstream = Vec::new();
    for (uid, rid, input, path, line) in upstream_rows {
        let lines = files.entry(path).or_default();
        if lines.len() <= line {
            lines.resize(line + 1, r#"{"filler":true}"#.to_string());
        }
        let b = body(rid, input, uid);
        lines[line] = b.clone();
        upstream.push((uid.to_string(), rid.to_string(), input.to_string(), b));
    }
    for (path, lines) in files {
        let half = lines.len() / 2;
        let mut bytes = gz(&(lines[..half].join("\n") + "\n"));
        bytes.extend(gz(&(lines[half..].join("\n") + "\n")));
        data.put(path, bytes.into(), "application/gzip")
            .await
            .unwrap();
    }

    // Our uploader's layout: one gzip member per measurement, located by member offset/line.
    let day = clock_now - Duration::days(1);
    let path = "raw/20240104/10/IT/webconnectivity/2024010410_IT_webconnectivity.n0.0.jsonl.gz";
    let mut file = Vec::new();
    let mut seekable = Vec::new();
    for i in 0..3u32 {
        let t = day + Duration::minutes(i64::from(i));
        let rid = format!("20240104T10000{i}Z_webconnectivity_IT_30722_n1_seekable000000{i}");
        let input = format!("https://seekable{i}.example.org/");
        // Two lines per member: the body is member_line 1 (line 0 is another measurement).
        let b = body(&rid, &input, &format!("seekable-{i}"));
        let member = gz(&format!("{{\"other\":{i}}}\n{b}\n"));
        let uid = MeasurementUid::generate(t, "IT", "webconnectivity", b.as_bytes())
            .unwrap()
            .into_string();
        insert_fastpath(
            &ch,
            &uid,
            &rid,
            &input,
            "IT",
            30722,
            "web_connectivity",
            t,
            "f",
        )
        .await;
        ch.query(
            "INSERT INTO jsonl (report_id, input, s3path, linenum, measurement_uid, member_offset, member_length, member_line) \
             VALUES (?, ?, ?, ?, ?, ?, ?, 1)",
        )
        .bind(rid.as_str())
        .bind(input.as_str())
        .bind(path)
        .bind(i * 2 + 1)
        .bind(uid.as_str())
        .bind(file.len() as u64)
        .bind(member.len() as u32)
        .execute()
        .await
        .unwrap();
        file.extend(member);
        seekable.push((uid, rid, input, b));
    }
    data.put(path, file.into(), "application/gzip")
        .await
        .unwrap();

    // Not uploaded yet: the `.post` in the incoming bucket.
    let t = clock_now - Duration::minutes(10);
    let rid = "20240105T114500Z_webconnectivity_DE_3320_n1_incoming00000001".to_string();
    let input = "https://fresh.example.org/".to_string();
    let b = body(&rid, &input, "incoming");
    let uid = MeasurementUid::generate(t, "DE", "webconnectivity", b.as_bytes()).unwrap();
    let post = format!(r#"{{"format":"json","content":{b},"is_verified":"u"}}"#);
    incoming
        .put(
            &incoming_object_key(&uid),
            post.into_bytes().into(),
            "application/json",
        )
        .await
        .unwrap();
    insert_fastpath(
        &ch,
        uid.as_str(),
        &rid,
        &input,
        "DE",
        3320,
        "web_connectivity",
        t,
        "f",
    )
    .await;

    // A row whose body is nowhere.
    let t2 = clock_now - Duration::minutes(5);
    let rid2 = "20240105T115500Z_webconnectivity_DE_3320_n1_bodiless00000001".to_string();
    let uid2 = MeasurementUid::generate(t2, "DE", "webconnectivity", b"nothing")
        .unwrap()
        .into_string();
    insert_fastpath(
        &ch,
        &uid2,
        &rid2,
        "https://nobody.example.org/",
        "DE",
        3320,
        "web_connectivity",
        t2,
        "f",
    )
    .await;

    Seeded {
        seekable,
        incoming: (uid.into_string(), rid, input, b),
        bodiless: (uid2, rid2),
        upstream,
    }
}

/// Generous budgets so the functional tests never hit a quota.
pub fn roomy_quotas() -> QuotaConfig {
    QuotaConfig {
        ip_budget_ms: [u64::MAX / 4; 3],
        account_budget_ms: [u64::MAX / 4; 3],
        ..QuotaConfig::default()
    }
}

/// A new stack with the fixtures and seeded bodies, served with `options` (the clock defaults
/// to [`now`]). The caller's runtime must outlive the server.
pub async fn start(mut options: ApiOptions) -> (TestStack, TestServer, Seeded) {
    let stack = TestStack::start_with(|h| ooni_platform::config::HttpConfig {
        trusted_proxy_hops: 1,
        ..h
    })
    .await;
    load_fixtures(&stack.ch()).await;
    let clock_now = options.clock.as_ref().map(|c| c.now()).unwrap_or_else(now);
    if options.clock.is_none() {
        options.clock = Some(Arc::new(FixedClock::new(clock_now)));
    }
    if options.quota_config.is_none() {
        options.quota_config = Some(roomy_quotas());
    }
    let seeded = seed(&stack, clock_now).await;
    let service = Arc::new(ApiService::with_options(stack.ctx.clone(), options));
    let server = stack.serve(service).await;
    (stack, server, seeded)
}

static SHARED: OnceLock<Api> = OnceLock::new();

/// The stack shared by this test binary (started on first use, on its own runtime thread).
pub fn shared() -> &'static Api {
    SHARED.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let (stack, server, seeded) = start(ApiOptions::default()).await;
                let api = Api {
                    base_url: server.base_url.clone(),
                    public_base_url: stack.ctx.http.base_url.clone(),
                    clickhouse: stack.clickhouse.clone(),
                    seeded,
                };
                if tx.send(api).is_err() {
                    panic!("the test binary went away");
                }
                // Keep the stack and the server alive for the rest of the process.
                let _keep = (stack, server);
                std::future::pending::<()>().await;
            });
        });
        rx.recv().expect("the shared stack failed to start")
    })
}
