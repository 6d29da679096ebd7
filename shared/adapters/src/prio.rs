//! The ClickHouse reads behind URL prioritization (contract §6), shared by probe check-in
//! (`ooni_probe::db`) and the OONI Run / debug-prioritization targets (`ooni_accounts::prio`).
//! The ranking itself is `ooni_domain::prio`.
//!
//! * [`citizenlab_entries`]: citizenlab URLs of the country (lowercase cc), of the uppercase cc
//!   and the global `ZZ` list, each with the measurements of the current and previous week
//!   from `counters_asn_test_list` (for one ASN unless the ASN is 0). Rows come in a fixed
//!   order (`url, cc, category_code`) so that equal weights keep a reproducible order
//!   (upstream had none).
//! * [`prio_rules`]: the rules of the country: `url_priorities FINAL`, grouped, keeping only
//!   rules whose `sum(sign) > 0` (upstream read the collapsing table without `FINAL` and
//!   without looking at `sign`, so deleted and edited rules still counted).
//! * [`global_urls`]: the global (`ZZ`) URLs, for check-in's failover list.

use clickhouse::error::Result;
use clickhouse::Client;
use ooni_domain::prio::{CitizenlabEntry, PrioRule};

#[derive(clickhouse::Row, serde::Deserialize)]
struct CitizenlabRow {
    category_code: String,
    domain: String,
    url: String,
    cc: String,
    msmt_cnt: u64,
}

/// A `url_priorities` rule as ClickHouse stores it (`priority Int32`).
#[derive(Debug, clickhouse::Row, serde::Deserialize)]
pub struct RuleRow {
    pub category_code: String,
    pub cc: String,
    pub domain: String,
    pub url: String,
    pub priority: i32,
}

impl From<RuleRow> for PrioRule {
    fn from(r: RuleRow) -> PrioRule {
        PrioRule {
            category_code: r.category_code,
            cc: r.cc,
            domain: r.domain,
            url: r.url,
            priority: i64::from(r.priority),
        }
    }
}

#[derive(clickhouse::Row, serde::Deserialize)]
struct GlobalRow {
    category_code: String,
    url: String,
}

const CITIZENLAB_SQL: &str = "\
SELECT category_code, domain, url, cc, toUInt64(COALESCE(cnt.msmt_cnt, 0)) AS msmt_cnt
FROM (
    SELECT DISTINCT category_code, domain, url, replaceAll(toString(cc), char(0), '') AS cc
    FROM citizenlab FINAL
    WHERE cc IN (?, ?, 'ZZ')
) AS citiz
LEFT JOIN (
    SELECT input, sum(msmt_cnt) AS msmt_cnt
    FROM counters_asn_test_list
    WHERE probe_cc = ?
      AND week IN (toStartOfWeek(now()), toStartOfWeek(now() - toIntervalWeek(1)))
      AND (? = 0 OR probe_asn = ?)
    GROUP BY input
) AS cnt ON citiz.url = cnt.input
ORDER BY url, cc, category_code";

const RULES_SQL: &str = "\
SELECT category_code, cc, domain, url, priority
FROM url_priorities FINAL
WHERE cc = ? OR cc = '*' OR cc = ''
GROUP BY category_code, cc, domain, url, priority
HAVING sum(sign) > 0
ORDER BY category_code, cc, domain, url, priority";

const GLOBAL_SQL: &str = "\
SELECT DISTINCT category_code, url FROM citizenlab FINAL WHERE cc = 'ZZ' ORDER BY category_code, url";

/// Test-list candidates of country `cc` (uppercase) with their recent counts for `asn`
/// (0: the whole country).
pub async fn citizenlab_entries(
    client: &Client,
    cc: &str,
    asn: u32,
) -> Result<Vec<CitizenlabEntry>> {
    let rows: Vec<CitizenlabRow> = client
        .query(CITIZENLAB_SQL)
        .bind(cc.to_lowercase())
        .bind(cc)
        .bind(cc)
        .bind(asn)
        .bind(asn)
        .fetch_all()
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| CitizenlabEntry {
            category_code: r.category_code,
            domain: r.domain,
            url: r.url,
            cc: r.cc,
            msmt_cnt: r.msmt_cnt,
        })
        .collect())
}

/// The live prioritization rules that apply to country `cc`.
pub async fn prio_rules(client: &Client, cc: &str) -> Result<Vec<PrioRule>> {
    let rows: Vec<RuleRow> = client.query(RULES_SQL).bind(cc).fetch_all().await?;
    Ok(rows.into_iter().map(PrioRule::from).collect())
}

/// `(category_code, url)` of the global list.
pub async fn global_urls(client: &Client) -> Result<Vec<(String, String)>> {
    let rows: Vec<GlobalRow> = client.query(GLOBAL_SQL).fetch_all().await?;
    Ok(rows.into_iter().map(|r| (r.category_code, r.url)).collect())
}
