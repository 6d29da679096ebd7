//! Benchmark: five typical Explorer queries through the API handlers vs the same SQL sent to
//! ClickHouse directly, on a large synthetic `fastpath` table.
//!
//! `cargo bench -p ooni-measurements` (the local ClickHouse must run). Settings:
//! - `OONI_BENCH_ROWS` (default 10000000): rows wanted in the table; missing rows are
//!   generated with `ooni_measurements::generate_fastpath` (kept between runs).
//! - `OONI_BENCH_DB` (default `ooni_bench`): the ClickHouse database used.
//! - `OONI_BENCH_ITERS` (default 30): timed iterations per query (after 3 warm-ups).
//! - `OONI_TEST_CLICKHOUSE_URL` / `OONI_TEST_AWS_ENDPOINT`: the local services.
//!
//! "API" is the metered handler called in-process exactly as Lambda calls it (API Gateway
//! event in, full response body out; quota counters in memory, so no DynamoDB round trip).
//! "Direct" is the SQL text that handler sends, run with the same client and output format,
//! reading the whole result. Iterations alternate API and direct calls.

use chrono::{DateTime, Duration, TimeZone, Utc};
use ooni_adapters::{
    AwsClients, AwsOptions, ClickHouseConfig, FixedClock, Migrator, ResourceNames, Secret,
};
use ooni_measurements::aggregation::AggQuery;
use ooni_measurements::measurements::{category_sql, meta_sql, ListQuery, MeasurementRef};
use ooni_measurements::params::Params;
use ooni_measurements::quotas::{MemoryQuotaStore, QuotaConfig};
use ooni_measurements::{generate_fastpath, ApiOptions, ApiService};
use ooni_platform::config::HttpConfig;
use ooni_platform::{Context, Handler, HttpHandler, Service};
use std::sync::Arc;
use std::time::Instant;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

fn event(path: &str, query: &str) -> lambda_http::Request {
    let ev = serde_json::json!({
        "version": "2.0",
        "routeKey": format!("GET {path}"),
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"host": "api.ooni.io", "user-agent": "bench"},
        "requestContext": {
            "accountId": "1", "apiId": "bench", "domainName": "api.ooni.io", "domainPrefix": "api",
            "requestId": "bench", "routeKey": format!("GET {path}"), "stage": "$default",
            "time": "01/Jan/2024:00:00:00 +0000", "timeEpoch": 0,
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "bench"}
        },
        "isBase64Encoded": false
    });
    match lambda_http::request::from_str(&ev.to_string()) {
        Ok(r) => r,
        Err(e) => panic!("bad bench event: {e}"),
    }
}

struct Stats {
    p50: f64,
    p95: f64,
    mean: f64,
}

fn stats(mut ms: Vec<f64>) -> Stats {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    Stats {
        p50: at(0.5),
        p95: at(0.95),
        mean: ms.iter().sum::<f64>() / ms.len() as f64,
    }
}

/// The SQL text(s) a case runs and the output format the handler reads them in.
struct Direct {
    sqls: Vec<String>,
    format: &'static str,
}

async fn run_direct(client: &clickhouse::Client, d: &Direct) -> usize {
    let mut bytes = 0;
    for sql in &d.sqls {
        let mut cursor = match client.query_raw(sql).fetch_bytes(d.format) {
            Ok(c) => c,
            Err(e) => panic!("direct query failed: {e}"),
        };
        match cursor.collect().await {
            Ok(b) => bytes += b.len(),
            Err(e) => panic!("direct query failed: {e}"),
        }
    }
    bytes
}

async fn run_api(h: &Arc<dyn HttpHandler>, path: &str, query: &str) -> usize {
    match h.handle(event(path, query)).await {
        Ok(resp) => {
            assert_eq!(resp.status(), 200, "{path}?{query}");
            match resp.body() {
                lambda_http::Body::Text(t) => t.len(),
                lambda_http::Body::Binary(b) => b.len(),
                _ => 0,
            }
        }
        Err(e) => panic!("{path}?{query}: {e}"),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rows: u64 = env_or("OONI_BENCH_ROWS", "10000000")
        .parse()
        .unwrap_or(10_000_000);
    let iters: usize = env_or("OONI_BENCH_ITERS", "30").parse().unwrap_or(30);
    let db = env_or("OONI_BENCH_DB", "ooni_bench");
    let ch_url = env_or("OONI_TEST_CLICKHOUSE_URL", "http://127.0.0.1:8123");
    let aws_url = env_or("OONI_TEST_AWS_ENDPOINT", "http://127.0.0.1:5000");

    let config = ClickHouseConfig::new(&ch_url, &db);
    let migrator = Migrator::embedded().unwrap_or_else(|e| panic!("migrations: {e}"));
    if let Err(e) = migrator.migrate_config(&config).await {
        panic!("cannot prepare {db} on {ch_url}: {e}");
    }
    let client = config
        .client()
        .with_setting("session_timezone", "UTC")
        .with_setting("max_execution_time", "28");
    let have: u64 = client
        .query("SELECT count() FROM fastpath")
        .fetch_one()
        .await
        .unwrap_or(0);
    if have < rows {
        let started = Instant::now();
        if let Err(e) = generate_fastpath(&client, rows - have).await {
            panic!("generating rows: {e}");
        }
        println!(
            "generated {} fastpath rows in {:.1} s",
            rows - have,
            started.elapsed().as_secs_f64()
        );
    }
    let total: u64 = client
        .query("SELECT count() FROM fastpath")
        .fetch_one()
        .await
        .unwrap_or(0);
    let parts: u64 = client
        .query("SELECT count() FROM system.parts WHERE database = currentDatabase() AND table = 'fastpath' AND active")
        .fetch_one()
        .await
        .unwrap_or(0);
    let newest: u32 = client
        .query("SELECT toUInt32(max(measurement_start_time)) FROM fastpath")
        .fetch_one()
        .await
        .unwrap_or(0);
    let anchor: DateTime<Utc> = Utc
        .timestamp_opt(i64::from(newest), 0)
        .single()
        .unwrap_or_else(Utc::now);
    println!("fastpath: {total} rows in {parts} active parts, newest measurement {anchor}");

    let aws = AwsClients::load(AwsOptions::local(&aws_url)).await;
    let http = HttpConfig {
        base_url: "https://api.ooni.io".into(),
        trusted_proxy_hops: 0,
        stage: "bench".into(),
    };
    let ctx = Arc::new(Context::new(
        http,
        aws,
        ResourceNames::with_prefix("bench"),
        config.clone(),
    ));
    let service = ApiService::with_options(
        ctx,
        ApiOptions {
            clock: Some(Arc::new(FixedClock::new(anchor))),
            quota_store: Some(Arc::new(MemoryQuotaStore::default())),
            quota_config: Some(QuotaConfig {
                ip_budget_ms: [u64::MAX / 4; 3],
                account_budget_ms: [u64::MAX / 4; 3],
                ..QuotaConfig::default()
            }),
            quota_hash_key: Some(Secret::new("bench-quota-key-0123456789")),
            ..ApiOptions::default()
        },
    );
    let handler = |name: &'static str| {
        let service = &service;
        async move {
            match service.build(name).await {
                Ok(Some(Handler::Http(h))) => h,
                other => panic!("{name}: {other:?}"),
            }
        }
    };
    let list = handler("ListMeasurements").await;
    let aggregation = handler("Aggregation").await;
    let meta = handler("MeasurementMeta").await;

    let day = |d: i64| {
        (anchor - Duration::days(d))
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string()
    };
    let until = anchor.format("%Y-%m-%dT%H:%M:%S").to_string();
    let agg_cases = [
        ("country x day, 30 days", format!("axis_x=measurement_start_day&axis_y=probe_cc&time_grain=day&since={}&until={until}", day(30))),
        ("test_name x probe_cc, 1 year", format!("axis_x=test_name&axis_y=probe_cc&since={}&until={until}", day(365))),
        ("one domain by day, 6 months", format!("domain=www.d42.example&axis_x=measurement_start_day&time_grain=day&since={}&until={until}", day(180))),
    ];
    let list_query = format!(
        "probe_cc=IT&test_name=web_connectivity&anomaly=true&since={}&until={until}&limit=50",
        day(30)
    );

    let uids: Vec<String> = client
        .query("SELECT measurement_uid FROM fastpath WHERE cityHash64(measurement_uid) % 100000 = 7 LIMIT ?")
        .bind(iters as u64 + 3)
        .fetch_all()
        .await
        .unwrap_or_default();
    assert!(!uids.is_empty(), "no uids sampled");

    println!();
    println!(
        "{:<32} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>9}",
        "query",
        "api p50",
        "api p95",
        "api mean",
        "sql p50",
        "sql p95",
        "sql mean",
        "p50 x",
        "bytes"
    );
    let report = |name: &str, api: Vec<f64>, sql: Vec<f64>, bytes: usize| {
        let (a, d) = (stats(api), stats(sql));
        println!(
            "{:<32} {:>7.1}ms {:>7.1}ms {:>7.1}ms {:>7.1}ms {:>7.1}ms {:>7.1}ms {:>6.2}x {:>9}",
            name,
            a.p50,
            a.p95,
            a.mean,
            d.p50,
            d.p95,
            d.mean,
            a.p50 / d.p50,
            bytes
        );
    };

    for (name, q) in &agg_cases {
        let parsed =
            AggQuery::parse(&Params::parse(q), anchor).unwrap_or_else(|e| panic!("{name}: {e}"));
        let direct = Direct {
            sqls: vec![parsed.to_sql().render()],
            format: "JSON",
        };
        let (mut api_ms, mut sql_ms, mut size) = (Vec::new(), Vec::new(), 0);
        for i in 0..iters + 3 {
            let t = Instant::now();
            size = run_api(&aggregation, "/api/v1/aggregation", q).await;
            let a = t.elapsed().as_secs_f64() * 1000.0;
            let t = Instant::now();
            run_direct(&client, &direct).await;
            let d = t.elapsed().as_secs_f64() * 1000.0;
            if i >= 3 {
                api_ms.push(a);
                sql_ms.push(d);
            }
        }
        report(name, api_ms, sql_ms, size);
    }

    {
        let parsed = ListQuery::parse(&Params::parse(&list_query), anchor)
            .unwrap_or_else(|e| panic!("list: {e}"));
        let direct = Direct {
            sqls: vec![parsed.to_sql().render()],
            format: "RowBinaryWithNamesAndTypes",
        };
        let (mut api_ms, mut sql_ms, mut size) = (Vec::new(), Vec::new(), 0);
        for i in 0..iters + 3 {
            let t = Instant::now();
            size = run_api(&list, "/api/v1/measurements", &list_query).await;
            let a = t.elapsed().as_secs_f64() * 1000.0;
            let t = Instant::now();
            run_direct(&client, &direct).await;
            let d = t.elapsed().as_secs_f64() * 1000.0;
            if i >= 3 {
                api_ms.push(a);
                sql_ms.push(d);
            }
        }
        report("measurements list, filtered", api_ms, sql_ms, size);
    }

    {
        let (mut api_ms, mut sql_ms, mut size) = (Vec::new(), Vec::new(), 0);
        for i in 0..iters + 3 {
            let uid = &uids[i % uids.len()];
            let q = format!("measurement_uid={uid}");
            let t = Instant::now();
            size = run_api(&meta, "/api/v1/measurement_meta", &q).await;
            let a = t.elapsed().as_secs_f64() * 1000.0;
            let input: String = client
                .query("SELECT input FROM fastpath WHERE measurement_uid = ? LIMIT 1")
                .bind(uid.as_str())
                .fetch_one()
                .await
                .unwrap_or_default();
            let mut sqls = vec![meta_sql(&MeasurementRef::Uid(uid.clone())).render()];
            if !input.is_empty() {
                sqls.push(category_sql(&input).render());
            }
            let direct = Direct {
                sqls,
                format: "RowBinaryWithNamesAndTypes",
            };
            let t = Instant::now();
            run_direct(&client, &direct).await;
            let d = t.elapsed().as_secs_f64() * 1000.0;
            if i >= 3 {
                api_ms.push(a);
                sql_ms.push(d);
            }
        }
        report("measurement_meta by uid", api_ms, sql_ms, size);
    }
}
