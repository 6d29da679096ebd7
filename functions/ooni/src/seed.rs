//! `ooni seed`: loads local-development data — CitizenLab test list, production fingerprints,
//! URL priorities into ClickHouse, and the probe configuration documents into the config bucket.
//! Idempotent: tables that already hold rows are left alone; config objects are overwritten.

use anyhow::Context as _;
use ooni_platform::functions::Bucket;
use ooni_platform::Context;

const CITIZENLAB_SQL: &str = include_str!("../../../infra/seed/citizenlab.sql");
const FINGERPRINTS_DNS: &str = include_str!("../../../infra/seed/fingerprints_dns.csv");
const FINGERPRINTS_HTTP: &str = include_str!("../../../infra/seed/fingerprints_http.csv");
const URL_PRIORITIES: &str = include_str!("../../../infra/seed/url_priorities_us.json");
const TOR_TARGETS: &str = include_str!("../../../infra/seed/tor-targets.json");
const PSIPHON_CONFIG: &str = include_str!("../../../infra/seed/psiphon-config.json");
const RISEUPVPN: &str = include_str!("../../../infra/seed/riseupvpn.json");

#[derive(Debug, Default)]
pub struct SeedReport {
    pub citizenlab_rows: u64,
    pub fingerprints_dns_rows: u64,
    pub fingerprints_http_rows: u64,
    pub url_priorities_rows: u64,
    pub config_objects: usize,
}

async fn count(ch: &clickhouse::Client, table: &str) -> anyhow::Result<u64> {
    ch.query(&format!("SELECT count() FROM {table}"))
        .fetch_one::<u64>()
        .await
        .with_context(|| format!("count rows of {table}"))
}

/// Turns the fixture's one-INSERT-per-line file into one multi-row INSERT.
fn citizenlab_insert() -> anyhow::Result<String> {
    let mut values = Vec::new();
    let mut header = None;
    for line in CITIZENLAB_SQL
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        let (head, tuple) = line
            .split_once(" VALUES ")
            .context("citizenlab seed line without VALUES")?;
        header.get_or_insert(head.to_string());
        values.push(tuple.trim_end_matches(';').to_string());
    }
    let header = header.context("empty citizenlab seed")?;
    Ok(format!("{header} VALUES {}", values.join(",")))
}

pub async fn seed(ctx: &Context) -> anyhow::Result<SeedReport> {
    let ch = ctx.clickhouse();
    let mut report = SeedReport::default();
    if count(&ch, "citizenlab").await? == 0 {
        ch.query_raw(&citizenlab_insert()?)
            .execute()
            .await
            .context("insert citizenlab")?;
    }
    report.citizenlab_rows = count(&ch, "citizenlab").await?;
    for (table, csv) in [
        ("fingerprints_dns", FINGERPRINTS_DNS),
        ("fingerprints_http", FINGERPRINTS_HTTP),
    ] {
        if count(&ch, table).await? == 0 {
            ch.query_raw(&format!("INSERT INTO {table} FORMAT CSVWithNames\n{csv}"))
                .execute()
                .await
                .with_context(|| format!("insert {table}"))?;
        }
    }
    report.fingerprints_dns_rows = count(&ch, "fingerprints_dns").await?;
    report.fingerprints_http_rows = count(&ch, "fingerprints_http").await?;
    if count(&ch, "url_priorities").await? == 0 {
        let rules: Vec<serde_json::Value> = serde_json::from_str(URL_PRIORITIES)?;
        let mut lines = String::new();
        for mut r in rules {
            if let Some(obj) = r.as_object_mut() {
                obj.insert("sign".into(), 1.into());
            }
            lines.push_str(&r.to_string());
            lines.push('\n');
        }
        ch.query_raw(&format!(
            "INSERT INTO url_priorities FORMAT JSONEachRow\n{lines}"
        ))
        .execute()
        .await
        .context("insert url_priorities")?;
    }
    report.url_priorities_rows = count(&ch, "url_priorities").await?;
    let config = ctx.object_store(Bucket::Config);
    let objects = [
        ("tor-targets.json", TOR_TARGETS),
        ("psiphon-config.json", PSIPHON_CONFIG),
        ("vpn/riseupvpn.json", RISEUPVPN),
    ];
    for (key, body) in objects {
        config
            .put(
                key,
                bytes::Bytes::from_static(body.as_bytes()),
                "application/json",
            )
            .await
            .with_context(|| format!("put {key} into the config bucket"))?;
        report.config_objects += 1;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_citizenlab_seed_becomes_one_insert_with_every_row() {
        let sql = citizenlab_insert().unwrap();
        assert!(sql.starts_with("INSERT INTO citizenlab (domain,url,cc,category_code) VALUES ("));
        assert_eq!(
            sql.matches("),(").count() + 1,
            CITIZENLAB_SQL
                .lines()
                .filter(|l| !l.trim().is_empty())
                .count()
        );
    }
}
