//! URL prioritization admin (upstream `testlists` `routers/admin.py` and legacy `prio.py`):
//!
//! - `GET /api/_/url-priorities/list` → `{rules: [{category_code, cc, domain, url, priority}]}`;
//! - `POST /api/_/url-priorities/update` (admin) `{old_entry?, new_entry?}` → `1`;
//! - `GET /api/_/debug_prioritization?probe_cc&category_codes&probe_asn&limit` →
//!   `{test_items, entries, prio_rules}`;
//! - `GET /api/_/show_countries_prioritization?format=JSON|CSV`.
//!
//! `url_priorities` is a CollapsingMergeTree: an edit inserts the old rule with `sign = -1` and
//! the new one with `sign = 1`; every read here uses `FINAL` and `sign = 1` (upstream's
//! prioritization read the table raw, a bug: deleted rules kept applying until a merge).
//! Beyond upstream: an `old_entry` that is not a live rule is refused (`err_rule_not_found`)
//! instead of inserting an orphan `-1` row, and a deletion cancels every live copy of the
//! rule (two concurrent seedings of an empty table would otherwise leave a copy alive).
//! The default rules (`ooni_domain::prio::default_prio_rules`) are seeded into an empty
//! table (no row at all, as upstream) on the first list or update.

use crate::errors::OoniError;
use crate::State;
use async_trait::async_trait;
use lambda_http::Request;
use ooni_adapters::prio::RuleRow;
use ooni_domain::prio::{
    compute_priorities, default_prio_rules, generate_test_list, CitizenlabEntry, PrioRule,
};
use ooni_platform::auth::Role;
use ooni_platform::request::{json_body_422, query};
use ooni_platform::response::{json, raw};
use ooni_platform::{ApiError, Cache, HttpResult};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;

/// The queries behind the prioritization routes.
#[async_trait]
pub trait PrioStore: Send + Sync {
    /// Rows in `url_priorities`, collapsed or not (0 only for a table never written).
    async fn raw_count(&self) -> anyhow::Result<u64>;
    /// Live rules, ordered by category, cc, domain, url, priority.
    async fn rules(&self) -> anyhow::Result<Vec<PrioRule>>;
    /// How many live copies of exactly this rule exist (sum of `sign`).
    async fn live_copies(&self, rule: &PrioRule) -> anyhow::Result<i64>;
    /// Live rules with the same category, cc, domain and url as `rule` (any priority).
    async fn same_target(&self, rule: &PrioRule) -> anyhow::Result<Vec<PrioRule>>;
    /// Inserts `(sign, rule)` rows in one INSERT.
    async fn insert(&self, rows: &[(i8, PrioRule)]) -> anyhow::Result<()>;
    /// Every citizenlab entry with its last-week measurement count and anomaly percentage.
    async fn country_entries(&self) -> anyhow::Result<Vec<(CitizenlabEntry, i8)>>;
}

#[derive(Debug, clickhouse::Row, Serialize)]
struct SignedRow {
    sign: i8,
    category_code: String,
    cc: String,
    domain: String,
    url: String,
    priority: i32,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct CountryRow {
    domain: String,
    url: String,
    cc: String,
    category_code: String,
    msmt_cnt: u64,
    anomaly_perc: i8,
}

/// Upstream `show_countries_prioritization`: citizenlab joined with the last week's fastpath
/// counts per (URL, country).
pub const COUNTRY_ENTRIES_SQL: &str = "
SELECT domain, url, toStringCutToZero(cc) AS cc, category_code, msmt_cnt, anomaly_perc
FROM citizenlab
LEFT JOIN (
    SELECT input, probe_cc, count() AS msmt_cnt,
        toInt8(countIf(anomaly = 't') / msmt_cnt * 100) AS anomaly_perc
    FROM fastpath
    WHERE measurement_start_time > now() - interval 1 week
    AND measurement_start_time < now()
    GROUP BY input, probe_cc
) AS x ON x.input = citizenlab.url AND x.probe_cc = upper(toStringCutToZero(citizenlab.cc))";

/// [`PrioStore`] on ClickHouse.
pub struct ClickHousePrio {
    client: clickhouse::Client,
}

impl ClickHousePrio {
    pub fn new(client: clickhouse::Client) -> Self {
        ClickHousePrio { client }
    }
}

#[async_trait]
impl PrioStore for ClickHousePrio {
    async fn raw_count(&self) -> anyhow::Result<u64> {
        Ok(self
            .client
            .query("SELECT count() FROM url_priorities")
            .fetch_one::<u64>()
            .await?)
    }

    async fn rules(&self) -> anyhow::Result<Vec<PrioRule>> {
        let rows: Vec<RuleRow> = self
            .client
            .query(
                "SELECT category_code, cc, domain, url, priority FROM url_priorities FINAL WHERE sign = 1 \
                 ORDER BY category_code, cc, domain, url, priority",
            )
            .fetch_all()
            .await?;
        Ok(rows.into_iter().map(PrioRule::from).collect())
    }

    async fn live_copies(&self, r: &PrioRule) -> anyhow::Result<i64> {
        let n: i64 = self
            .client
            .query(
                "SELECT toInt64(sum(sign)) FROM url_priorities \
                 WHERE category_code = ? AND cc = ? AND domain = ? AND url = ? AND priority = ?",
            )
            .bind(&r.category_code)
            .bind(&r.cc)
            .bind(&r.domain)
            .bind(&r.url)
            .bind(r.priority)
            .fetch_one()
            .await?;
        Ok(n)
    }

    async fn same_target(&self, r: &PrioRule) -> anyhow::Result<Vec<PrioRule>> {
        let rows: Vec<RuleRow> = self
            .client
            .query(
                "SELECT category_code, cc, domain, url, priority FROM url_priorities FINAL \
                 WHERE sign = 1 AND category_code = ? AND cc = ? AND domain = ? AND url = ?",
            )
            .bind(&r.category_code)
            .bind(&r.cc)
            .bind(&r.domain)
            .bind(&r.url)
            .fetch_all()
            .await?;
        Ok(rows.into_iter().map(PrioRule::from).collect())
    }

    async fn insert(&self, rows: &[(i8, PrioRule)]) -> anyhow::Result<()> {
        let mut insert = self.client.insert::<SignedRow>("url_priorities").await?;
        for (sign, r) in rows {
            let priority = i32::try_from(r.priority)?;
            insert
                .write(&SignedRow {
                    sign: *sign,
                    category_code: r.category_code.clone(),
                    cc: r.cc.clone(),
                    domain: r.domain.clone(),
                    url: r.url.clone(),
                    priority,
                })
                .await?;
        }
        insert.end().await?;
        Ok(())
    }

    async fn country_entries(&self) -> anyhow::Result<Vec<(CitizenlabEntry, i8)>> {
        let rows: Vec<CountryRow> = self.client.query(COUNTRY_ENTRIES_SQL).fetch_all().await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let e = CitizenlabEntry {
                    category_code: r.category_code,
                    domain: r.domain,
                    url: r.url,
                    cc: r.cc,
                    msmt_cnt: r.msmt_cnt,
                };
                (e, r.anomaly_perc)
            })
            .collect())
    }
}

/// A rule as the API sends it (empty or missing fields mean "any").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UrlPriority {
    #[serde(default)]
    pub category_code: Option<String>,
    #[serde(default)]
    pub cc: Option<String>,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    pub priority: i64,
}

impl UrlPriority {
    /// Upstream `prepare_url_prio_rule_dict`: empty or missing fields become `*`.
    pub fn normalized(&self) -> Result<PrioRule, ApiError> {
        let star = |v: &Option<String>| match v.as_deref() {
            None | Some("") => "*".to_owned(),
            Some(s) => s.to_owned(),
        };
        if i32::try_from(self.priority).is_err() {
            return Err(ApiError::unprocessable(format!(
                "priority {} does not fit a 32-bit integer",
                self.priority
            )));
        }
        Ok(PrioRule {
            category_code: star(&self.category_code),
            cc: star(&self.cc),
            domain: star(&self.domain),
            url: star(&self.url),
            priority: self.priority,
        })
    }
}

#[derive(Debug, Deserialize)]
struct UpdateRequest {
    #[serde(default)]
    old_entry: Option<UrlPriority>,
    #[serde(default)]
    new_entry: Option<UrlPriority>,
}

/// Seeds the default rules into a table that has never held a row.
pub async fn ensure_seeded(store: &dyn PrioStore) -> anyhow::Result<()> {
    if store.raw_count().await? > 0 {
        return Ok(());
    }
    tracing::info!("url_priorities is empty: seeding the default rules");
    let rows: Vec<(i8, PrioRule)> = default_prio_rules().into_iter().map(|r| (1, r)).collect();
    store.insert(&rows).await
}

fn same_target(a: &PrioRule, b: &PrioRule) -> bool {
    a.category_code == b.category_code && a.cc == b.cc && a.domain == b.domain && a.url == b.url
}

/// The rows an update inserts, after its checks.
pub async fn plan_update(
    store: &dyn PrioStore,
    old: Option<PrioRule>,
    new: Option<PrioRule>,
) -> Result<Vec<(i8, PrioRule)>, ApiError> {
    if old.is_none() && new.is_none() {
        return Err(OoniError::NoProposedChanges.api());
    }
    let mut rows = Vec::new();
    if let Some(old) = &old {
        let copies = store
            .live_copies(old)
            .await
            .map_err(ApiError::unavailable)?;
        if copies <= 0 {
            return Err(OoniError::RuleNotFound.with_args(Some(json!(old))));
        }
        for _ in 0..copies {
            rows.push((-1, old.clone()));
        }
    }
    if let Some(new) = new {
        let existing = store
            .same_target(&new)
            .await
            .map_err(ApiError::unavailable)?;
        let replaced = |r: &PrioRule| old.as_ref().is_some_and(|o| o == r);
        if existing
            .iter()
            .any(|r| same_target(r, &new) && !replaced(r))
        {
            return Err(OoniError::DuplicateRule.with_args(Some(json!(new))));
        }
        rows.push((1, new));
    }
    Ok(rows)
}

/// `GET /api/_/url-priorities/list` and `POST /api/_/url-priorities/update`.
pub async fn url_priorities(s: Arc<State>, req: Request) -> HttpResult {
    if req.method() == http::Method::POST {
        return update(s, req).await;
    }
    let store = s.prio.as_ref();
    ensure_seeded(store).await.map_err(ApiError::unavailable)?;
    let rules = store.rules().await.map_err(ApiError::unavailable)?;
    json(&json!({ "rules": rules }), Cache::NoCache)
}

async fn update(s: Arc<State>, req: Request) -> HttpResult {
    let claims = s.auth().await?.require(&req, Role::Admin).await?;
    let body: UpdateRequest = json_body_422(&req)?;
    let old = body
        .old_entry
        .as_ref()
        .map(UrlPriority::normalized)
        .transpose()?;
    let new = body
        .new_entry
        .as_ref()
        .map(UrlPriority::normalized)
        .transpose()?;
    let store = s.prio.as_ref();
    ensure_seeded(store).await.map_err(ApiError::unavailable)?;
    let rows = plan_update(store, old, new).await?;
    store.insert(&rows).await.map_err(ApiError::unavailable)?;
    tracing::info!(account_id = %claims.account_id, rows = rows.len(), "prioritization rule updated");
    json(&1, Cache::NoCache)
}

/// Upstream `param_category_codes`: comma-separated, trimmed, uppercased, deduplicated.
pub fn category_codes(param: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in param
        .unwrap_or("")
        .split(',')
        .map(|c| c.trim().to_uppercase())
        .filter(|c| !c.is_empty())
    {
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

/// `AS1234` or `1234`; anything else is 0 (no ASN filter), as upstream's `param_asn`.
pub fn parse_asn(param: Option<&str>) -> u32 {
    let p = param.unwrap_or("").trim();
    let digits = p
        .strip_prefix("AS")
        .or_else(|| p.strip_prefix("as"))
        .unwrap_or(p);
    digits.parse().unwrap_or(0)
}

/// `GET /api/_/debug_prioritization` and `GET /api/_/show_countries_prioritization`.
pub async fn debug_routes(s: Arc<State>, req: Request) -> HttpResult {
    if req.uri().path().ends_with("/show_countries_prioritization") {
        return show_countries(s, req).await;
    }
    let probe_cc = query(&req, "probe_cc")
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "ZZ".into())
        .to_uppercase();
    let cats = category_codes(query(&req, "category_codes").as_deref());
    let asn = parse_asn(query(&req, "probe_asn").as_deref());
    let limit = match query(&req, "limit").filter(|l| !l.is_empty()) {
        None => usize::MAX,
        Some(l) => match l.trim().parse::<i64>() {
            Ok(n) if n < 0 => usize::MAX,
            Ok(n) => usize::try_from(n).unwrap_or(usize::MAX),
            Err(_) => return Err(ApiError::bad_request(format!("invalid limit {l:?}"))),
        },
    };
    let (entries, rules) = s
        .targets
        .fetch(&probe_cc, asn)
        .await
        .map_err(ApiError::unavailable)?;
    let test_items = generate_test_list(&entries, &rules, &cats, limit, true);
    json(
        &json!({ "test_items": test_items, "entries": entries, "prio_rules": rules }),
        Cache::MaxAge(0),
    )
}

/// One row of `show_countries_prioritization`, in upstream's key order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CountryPriority {
    pub domain: String,
    pub url: String,
    pub cc: String,
    pub category_code: String,
    pub msmt_cnt: u64,
    pub anomaly_perc: i8,
    pub priority: i64,
}

/// Priorities of every citizenlab entry, sorted by cc then priority (highest first), ties in
/// weight order.
pub fn country_priorities(
    entries: &[(CitizenlabEntry, i8)],
    rules: &[PrioRule],
) -> Vec<CountryPriority> {
    let plain: Vec<CitizenlabEntry> = entries.iter().map(|(e, _)| e.clone()).collect();
    let mut out: Vec<CountryPriority> = compute_priorities(&plain, rules)
        .into_iter()
        .map(|p| CountryPriority {
            domain: p.entry.domain.clone(),
            url: p.entry.url.clone(),
            cc: p.entry.cc.to_uppercase(),
            category_code: p.entry.category_code.clone(),
            msmt_cnt: p.entry.msmt_cnt,
            anomaly_perc: entries.get(p.index).map_or(0, |(_, a)| *a),
            priority: p.priority,
        })
        .collect();
    out.sort_by(|a, b| a.cc.cmp(&b.cc).then(b.priority.cmp(&a.priority)));
    out
}

/// The rows as CSV with a header line.
pub fn to_csv(rows: &[CountryPriority]) -> Result<Vec<u8>, ApiError> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    w.write_record([
        "domain",
        "url",
        "cc",
        "category_code",
        "msmt_cnt",
        "anomaly_perc",
        "priority",
    ])
    .map_err(ApiError::internal)?;
    for r in rows {
        w.serialize((
            &r.domain,
            &r.url,
            &r.cc,
            &r.category_code,
            r.msmt_cnt,
            r.anomaly_perc,
            r.priority,
        ))
        .map_err(ApiError::internal)?;
    }
    w.into_inner()
        .map_err(|e| ApiError::internal(anyhow::anyhow!("CSV: {e}")))
}

async fn show_countries(s: Arc<State>, req: Request) -> HttpResult {
    let format = query(&req, "format")
        .unwrap_or_else(|| "JSON".into())
        .to_uppercase();
    if format != "JSON" && format != "CSV" {
        return Err(ApiError::bad_request(format!(
            "invalid format {format:?}: use JSON or CSV"
        )));
    }
    let store = s.prio.as_ref();
    let (entries, rules) =
        tokio::try_join!(store.country_entries(), store.rules()).map_err(ApiError::unavailable)?;
    let rows = country_priorities(&entries, &rules);
    if format == "CSV" {
        return raw(
            http::StatusCode::OK,
            "text/csv",
            to_csv(&rows)?,
            Cache::MaxAge(1),
        );
    }
    json(&rows, Cache::MaxAge(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn rule(cat: &str, cc: &str, prio: i64) -> PrioRule {
        PrioRule {
            category_code: cat.into(),
            cc: cc.into(),
            domain: "*".into(),
            url: "*".into(),
            priority: prio,
        }
    }

    /// Rows as CollapsingMergeTree FINAL would show them.
    #[derive(Default)]
    struct Fake(Mutex<Vec<(i8, PrioRule)>>);

    #[async_trait]
    impl PrioStore for Fake {
        async fn raw_count(&self) -> anyhow::Result<u64> {
            Ok(self.0.lock().unwrap().len() as u64)
        }
        async fn rules(&self) -> anyhow::Result<Vec<PrioRule>> {
            let rows = self.0.lock().unwrap();
            let mut live: Vec<PrioRule> = Vec::new();
            for (_, r) in rows.iter() {
                let net: i64 = rows
                    .iter()
                    .filter(|(_, x)| x == r)
                    .map(|(s, _)| i64::from(*s))
                    .sum();
                if net > 0 && !live.contains(r) {
                    live.push(r.clone());
                }
            }
            Ok(live)
        }
        async fn live_copies(&self, r: &PrioRule) -> anyhow::Result<i64> {
            Ok(self
                .0
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, x)| x == r)
                .map(|(s, _)| i64::from(*s))
                .sum())
        }
        async fn same_target(&self, r: &PrioRule) -> anyhow::Result<Vec<PrioRule>> {
            Ok(self
                .rules()
                .await?
                .into_iter()
                .filter(|x| same_target(x, r))
                .collect())
        }
        async fn insert(&self, rows: &[(i8, PrioRule)]) -> anyhow::Result<()> {
            self.0.lock().unwrap().extend_from_slice(rows);
            Ok(())
        }
        async fn country_entries(&self) -> anyhow::Result<Vec<(CitizenlabEntry, i8)>> {
            Ok(vec![])
        }
    }

    #[test]
    fn empty_and_missing_rule_fields_mean_any() {
        let p = UrlPriority {
            category_code: Some("NEWS".into()),
            cc: Some(String::new()),
            domain: None,
            url: None,
            priority: 5,
        };
        assert_eq!(
            p.normalized().unwrap(),
            PrioRule {
                domain: "*".into(),
                url: "*".into(),
                ..rule("NEWS", "*", 5)
            }
        );
        let huge = UrlPriority {
            priority: i64::from(i32::MAX) + 1,
            ..p
        };
        assert_eq!(huge.normalized().unwrap_err().status, 422);
    }

    #[tokio::test]
    async fn seeding_happens_only_on_a_table_that_never_held_a_row() {
        let f = Fake::default();
        ensure_seeded(&f).await.unwrap();
        assert_eq!(f.rules().await.unwrap().len(), default_prio_rules().len());
        ensure_seeded(&f).await.unwrap();
        assert_eq!(
            f.raw_count().await.unwrap() as usize,
            default_prio_rules().len()
        );
    }

    #[tokio::test]
    async fn an_update_cancels_every_live_copy_of_the_old_rule_and_refuses_duplicates_and_ghosts() {
        let f = Fake::default();
        f.insert(&[
            (1, rule("NEWS", "*", 100)),
            (1, rule("NEWS", "*", 100)),
            (1, rule("GRP", "*", 80)),
        ])
        .await
        .unwrap();
        let rows = plan_update(
            &f,
            Some(rule("NEWS", "*", 100)),
            Some(rule("NEWS", "*", 90)),
        )
        .await
        .unwrap();
        assert_eq!(
            rows,
            vec![
                (-1, rule("NEWS", "*", 100)),
                (-1, rule("NEWS", "*", 100)),
                (1, rule("NEWS", "*", 90))
            ]
        );
        f.insert(&rows).await.unwrap();
        assert_eq!(
            f.rules().await.unwrap(),
            vec![rule("GRP", "*", 80), rule("NEWS", "*", 90)]
        );

        let dup = plan_update(&f, None, Some(rule("GRP", "*", 10)))
            .await
            .unwrap_err();
        assert_eq!(
            dup.body.to_json()["detail"]["err_str"],
            "err_duplicate_rule"
        );
        let ghost = plan_update(&f, Some(rule("MISC", "*", 1)), None)
            .await
            .unwrap_err();
        assert_eq!(
            ghost.body.to_json()["detail"]["err_str"],
            "err_rule_not_found"
        );
        let nothing = plan_update(&f, None, None).await.unwrap_err();
        assert_eq!(
            nothing.body.to_json()["detail"]["err_str"],
            "err_no_proposed_changes"
        );
    }

    #[test]
    fn category_codes_and_asns_are_parsed_as_upstream() {
        assert_eq!(category_codes(Some("news, grp,NEWS,,")), ["NEWS", "GRP"]);
        assert!(category_codes(None).is_empty());
        assert_eq!(parse_asn(Some("AS30722")), 30722);
        assert_eq!(parse_asn(Some("30722")), 30722);
        assert_eq!(parse_asn(Some("ASX")), 0);
        assert_eq!(parse_asn(None), 0);
    }

    #[test]
    fn country_priorities_are_sorted_by_country_then_priority_with_anomaly_kept() {
        let e = |cat: &str, url: &str, cc: &str| CitizenlabEntry {
            category_code: cat.into(),
            domain: url
                .trim_start_matches("https://")
                .trim_end_matches('/')
                .into(),
            url: url.into(),
            cc: cc.into(),
            msmt_cnt: 0,
        };
        let entries = vec![
            (e("MISC", "https://a.it/", "it"), 0),
            (e("NEWS", "https://b.it/", "it"), 50),
            (e("NEWS", "https://g.org/", "ZZ"), 3),
        ];
        let rules = vec![
            rule("NEWS", "*", 100),
            rule("MISC", "*", 20),
            rule("MISC", "IT", 30),
        ];
        let rows = country_priorities(&entries, &rules);
        let got: Vec<(&str, &str, i64, i8)> = rows
            .iter()
            .map(|r| (r.cc.as_str(), r.url.as_str(), r.priority, r.anomaly_perc))
            .collect();
        assert_eq!(
            got,
            [
                ("IT", "https://b.it/", 100, 50),
                ("IT", "https://a.it/", 50, 0),
                ("ZZ", "https://g.org/", 100, 3)
            ]
        );
        let csv = String::from_utf8(to_csv(&rows).unwrap()).unwrap();
        assert!(
            csv.starts_with("domain,url,cc,category_code,msmt_cnt,anomaly_perc,priority\r\n"),
            "{csv}"
        );
        assert!(
            csv.contains("b.it,https://b.it/,IT,NEWS,0,50,100\r\n"),
            "{csv}"
        );
    }
}
