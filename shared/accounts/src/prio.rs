//! The ClickHouse reads behind `websites_list_prioritized` targets (upstream `common/prio.py`):
//! citizenlab URLs for a country with their recent measurement counts, and the rules that
//! apply to it. The ranking itself is `ooni_domain::prio`.

use async_trait::async_trait;
use ooni_domain::prio::{CitizenlabEntry, PrioRule};

/// Where test-list candidates and prioritization rules come from.
#[async_trait]
pub trait TargetsSource: Send + Sync {
    async fn fetch(
        &self,
        probe_cc: &str,
        probe_asn: u32,
    ) -> anyhow::Result<(Vec<CitizenlabEntry>, Vec<PrioRule>)>;
}

#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct EntryRow {
    category_code: String,
    domain: String,
    url: String,
    cc: String,
    msmt_cnt: u64,
}

#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct RuleRow {
    category_code: String,
    cc: String,
    domain: String,
    url: String,
    priority: i32,
}

/// Upstream `fetch_reactive_url_list`: counts of the current and previous week, for the ASN
/// when one is given.
pub const ENTRIES_SQL: &str = "
SELECT category_code, domain, url, toStringCutToZero(cc) AS cc, COALESCE(msmt_cnt, 0) AS msmt_cnt
FROM (
    SELECT domain, url, cc, category_code FROM citizenlab
    WHERE citizenlab.cc = ? OR citizenlab.cc = ? OR citizenlab.cc = 'ZZ'
) AS citiz
LEFT OUTER JOIN (
    SELECT input, SUM(msmt_cnt) AS msmt_cnt
    FROM counters_asn_test_list
    WHERE probe_cc = ?
      AND week IN (toStartOfWeek(now()), toStartOfWeek(now() - interval 1 week))
      AND (? = 0 OR probe_asn = ?)
    GROUP BY input
) AS cnt ON (citiz.url = cnt.input)";

/// Upstream `fetch_prioritization_rules`, but collapsed (`FINAL`, live rows only): upstream
/// reads the CollapsingMergeTree raw and so also applies deleted rules until a merge.
pub const RULES_SQL: &str = "
SELECT category_code, cc, domain, url, priority
FROM url_priorities FINAL
WHERE sign = 1 AND (cc = ? OR cc = '*' OR cc = '')";

/// [`TargetsSource`] over ClickHouse.
#[derive(Clone)]
pub struct ClickHouseTargets {
    client: clickhouse::Client,
}

impl ClickHouseTargets {
    pub fn new(client: clickhouse::Client) -> Self {
        ClickHouseTargets { client }
    }
}

#[async_trait]
impl TargetsSource for ClickHouseTargets {
    async fn fetch(
        &self,
        probe_cc: &str,
        probe_asn: u32,
    ) -> anyhow::Result<(Vec<CitizenlabEntry>, Vec<PrioRule>)> {
        let cc_low = probe_cc.to_lowercase();
        let entries: Vec<EntryRow> = self
            .client
            .query(ENTRIES_SQL)
            .bind(&cc_low)
            .bind(probe_cc)
            .bind(probe_cc)
            .bind(probe_asn)
            .bind(probe_asn)
            .fetch_all()
            .await?;
        let rules: Vec<RuleRow> = self
            .client
            .query(RULES_SQL)
            .bind(probe_cc)
            .fetch_all()
            .await?;
        Ok((
            entries
                .into_iter()
                .map(|r| CitizenlabEntry {
                    category_code: r.category_code,
                    domain: r.domain,
                    url: r.url,
                    cc: r.cc,
                    msmt_cnt: r.msmt_cnt,
                })
                .collect(),
            rules
                .into_iter()
                .map(|r| PrioRule {
                    category_code: r.category_code,
                    cc: r.cc,
                    domain: r.domain,
                    url: r.url,
                    priority: i64::from(r.priority),
                })
                .collect(),
        ))
    }
}
