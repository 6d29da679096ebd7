//! Pure helpers for `POST /api/v1/check-in`: URL limit, the tests that get report ids,
//! `utc_time`, the web-connectivity test-helper list with a canary helper for a stable share
//! of clients, and feature flags evaluated from a configuration document.
//!
//! Canary helper: upstream once sent about 10% of probes (chosen by `int(ip) % 100 < 10`) the
//! canary test helper `0.th.ooni.org` first. Here the share is configurable and the choice is a
//! keyed hash of the client's quota bucket (/24 or /48), so a client keeps its group when its
//! address changes within its network, and other deployments (other salts) choose differently.
//!
//! Feature flags: each flag has a default and an ordered list of rules; the first rule whose
//! conditions all hold decides. Conditions: countries, ASNs, software names, a software version
//! range, and a stable percentage of clients (keyed hash of the flag name and a client key,
//! e.g. the probe's client id or its address). Without configuration the flags are upstream's:
//! `torsf_enabled:false, vanilla_tor_enabled:false, openvpn_enabled:false, "webconnectivity_0.5":true`.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::net::IpAddr;

use blake2::digest::consts::U8;
use blake2::{Blake2b, Digest};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::client_addr::quota_bucket;
use crate::ids::generate_report_id;

/// URLs to hand out: `manual` runs get 9999, charging devices 100, others 20.
pub fn url_limit(run_type: &str, charging: bool) -> u32 {
    if run_type == "manual" {
        9999
    } else if charging {
        100
    } else {
        20
    }
}

/// The 21 tests that get a report id in the check-in answer.
pub const REPORT_ID_TEST_NAMES: [&str; 21] = [
    "bridge_reachability",
    "dash",
    "dns_consistency",
    "dnscheck",
    "facebook_messenger",
    "http_header_field_manipulation",
    "http_host",
    "http_invalid_request_line",
    "http_requests",
    "meek_fronted_requests_test",
    "multi_protocol_traceroute",
    "ndt",
    "psiphon",
    "riseupvpn",
    "tcp_connect",
    "telegram",
    "tor",
    "urlgetter",
    "vanilla_tor",
    "web_connectivity",
    "whatsapp",
];

/// A report id for each of [`REPORT_ID_TEST_NAMES`], in that order.
pub fn checkin_report_ids<R>(
    now: DateTime<Utc>,
    cc: &str,
    asn: u32,
    collector_id: &str,
    rng: &mut R,
) -> Vec<(&'static str, String)>
where
    R: rand::Rng + ?Sized,
{
    REPORT_ID_TEST_NAMES
        .iter()
        .map(|tn| (*tn, generate_report_id(now, tn, cc, asn, collector_id, rng)))
        .collect()
}

/// `%Y-%m-%dT%H:%M:%SZ`, 20 characters.
pub fn utc_time(now: DateTime<Utc>) -> String {
    now.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// One test helper as probes see it: `{address, type, front?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestHelper {
    pub address: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub front: Option<String>,
}

impl TestHelper {
    pub fn https(address: impl Into<String>) -> Self {
        TestHelper {
            address: address.into(),
            kind: "https".into(),
            front: None,
        }
    }
}

/// The canary test helper and who gets it first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanaryRule {
    pub helper: TestHelper,
    /// Share of clients, in percent (0–100), that get the canary first.
    pub share_percent: f64,
    /// Key of the stable selection; change it to pick a different set of clients.
    #[serde(default)]
    pub salt: String,
    /// Whether the other clients still get the canary, after the regular helpers (upstream's
    /// rotation gave every client `0.th` somewhere in its list).
    #[serde(default)]
    pub fallback_for_others: bool,
}

/// A number in `0..10_000` that depends only on the key and the data, stable across processes.
fn stable_bucket(key: &[u8], data: &[&[u8]]) -> u32 {
    let mut h = Blake2b::<U8>::new();
    h.update((key.len() as u64).to_le_bytes());
    h.update(key);
    for d in data {
        h.update((d.len() as u64).to_le_bytes());
        h.update(d);
    }
    let out = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&out);
    (u64::from_le_bytes(b) % 10_000) as u32
}

fn percent_selects(percent: f64, bucket: u32) -> bool {
    let threshold = (percent.clamp(0.0, 100.0) * 100.0).round() as u32;
    bucket < threshold
}

/// Whether this client is in the canary group. Without a known address, never.
pub fn in_canary(rule: &CanaryRule, client_ip: Option<IpAddr>) -> bool {
    match client_ip {
        Some(ip) => percent_selects(
            rule.share_percent,
            stable_bucket(rule.salt.as_bytes(), &[&quota_bucket(ip).key_bytes()]),
        ),
        None => false,
    }
}

/// The `web-connectivity` helper list: the `https` helpers shuffled (as upstream does), with
/// the canary first for the canary group (and last among them for the others when
/// `fallback_for_others`), followed by the fronted helpers in their given order.
pub fn web_connectivity_helpers<R>(
    https: &[TestHelper],
    fronted: &[TestHelper],
    canary: Option<&CanaryRule>,
    client_ip: Option<IpAddr>,
    rng: &mut R,
) -> Vec<TestHelper>
where
    R: rand::Rng + ?Sized,
{
    use rand::seq::SliceRandom;
    let mut shuffled: Vec<TestHelper> = https.to_vec();
    shuffled.shuffle(rng);
    let mut out = Vec::with_capacity(https.len() + fronted.len() + 1);
    if let Some(rule) = canary {
        shuffled.retain(|h| h.address != rule.helper.address);
        if in_canary(rule, client_ip) {
            out.push(rule.helper.clone());
            out.extend(shuffled);
        } else {
            out.extend(shuffled);
            if rule.fallback_for_others {
                out.push(rule.helper.clone());
            }
        }
    } else {
        out.extend(shuffled);
    }
    out.extend(fronted.iter().cloned());
    out
}

/// Who is asking, for feature-flag rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagContext<'a> {
    pub probe_cc: &'a str,
    pub probe_asn: u32,
    pub software_name: &'a str,
    pub software_version: &'a str,
    /// Stable per-client key for percentage rollouts (client id, or the address).
    pub client_key: &'a str,
}

/// One rule of a flag; every condition given must hold (an absent condition always holds).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagRule {
    pub enabled: bool,
    /// Country codes (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub countries: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asns: Option<Vec<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_names: Option<Vec<String>>,
    /// Inclusive lower bound, dotted numbers (`3.20.0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_software_version: Option<String>,
    /// Exclusive upper bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_software_version: Option<String>,
    /// Share of clients (0–100) for which the rule holds, chosen stably per flag and client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
}

/// A flag's default and rules.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagConfig {
    #[serde(default)]
    pub default: bool,
    #[serde(default)]
    pub rules: Vec<FlagRule>,
}

/// The feature-flag configuration document: `{"flags": {"<name>": {default, rules}}}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureFlags {
    #[serde(default)]
    pub flags: BTreeMap<String, FlagConfig>,
}

/// Upstream's `conf.features` defaults.
pub const DEFAULT_FEATURES: [(&str, bool); 4] = [
    ("torsf_enabled", false),
    ("vanilla_tor_enabled", false),
    ("openvpn_enabled", false),
    ("webconnectivity_0.5", true),
];

/// Why a flag document was refused.
#[derive(Debug, thiserror::Error)]
pub enum FlagConfigError {
    #[error("feature flag document is not valid: {0}")]
    Json(#[from] serde_json::Error),
    #[error("feature flag document must be a JSON object")]
    NotAnObject,
    #[error("flag {flag}: percent {percent} is not within 0..=100")]
    Percent { flag: String, percent: f64 },
}

impl FeatureFlags {
    /// Parses and checks a configuration document.
    pub fn from_json(s: &str) -> Result<Self, FlagConfigError> {
        // serde would also build a struct from a JSON array: insist on an object.
        let value: serde_json::Value = serde_json::from_str(s)?;
        if !value.is_object() {
            return Err(FlagConfigError::NotAnObject);
        }
        let flags: FeatureFlags = serde_json::from_value(value)?;
        for (name, cfg) in &flags.flags {
            for r in &cfg.rules {
                if let Some(p) = r.percent {
                    if !(0.0..=100.0).contains(&p) {
                        return Err(FlagConfigError::Percent {
                            flag: name.clone(),
                            percent: p,
                        });
                    }
                }
            }
        }
        Ok(flags)
    }

    /// Every flag's value for this client: upstream's defaults, overridden or extended by the
    /// configured flags.
    pub fn evaluate(&self, ctx: &FlagContext<'_>) -> BTreeMap<String, bool> {
        let mut out: BTreeMap<String, bool> = DEFAULT_FEATURES
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect();
        for (name, cfg) in &self.flags {
            out.insert(name.clone(), evaluate_flag(name, cfg, ctx));
        }
        out
    }
}

fn evaluate_flag(name: &str, cfg: &FlagConfig, ctx: &FlagContext<'_>) -> bool {
    cfg.rules
        .iter()
        .find(|r| rule_holds(name, r, ctx))
        .map(|r| r.enabled)
        .unwrap_or(cfg.default)
}

fn rule_holds(name: &str, r: &FlagRule, ctx: &FlagContext<'_>) -> bool {
    if let Some(ccs) = &r.countries {
        if !ccs.iter().any(|c| c.eq_ignore_ascii_case(ctx.probe_cc)) {
            return false;
        }
    }
    if let Some(asns) = &r.asns {
        if !asns.contains(&ctx.probe_asn) {
            return false;
        }
    }
    if let Some(names) = &r.software_names {
        if !names.iter().any(|n| n == ctx.software_name) {
            return false;
        }
    }
    if let Some(min) = &r.min_software_version {
        if compare_versions(ctx.software_version, min) == Ordering::Less {
            return false;
        }
    }
    if let Some(max) = &r.max_software_version {
        if compare_versions(ctx.software_version, max) != Ordering::Less {
            return false;
        }
    }
    if let Some(p) = r.percent {
        let bucket = stable_bucket(
            b"feature-flag",
            &[name.as_bytes(), ctx.client_key.as_bytes()],
        );
        if !percent_selects(p, bucket) {
            return false;
        }
    }
    true
}

/// Compares dotted versions numerically (`3.9.2 < 3.10.0`); a pre-release (`3.20.0-beta.1`)
/// sorts before its release; a missing component counts as 0; non-numeric components compare
/// as 0.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    fn split(v: &str) -> (&str, Option<&str>) {
        let v = v.trim().trim_start_matches(['v', 'V']);
        match v.split_once(['-', '+']) {
            Some((core, pre)) => (core, Some(pre)),
            None => (v, None),
        }
    }
    let (ca, pa) = split(a);
    let (cb, pb) = split(b);
    let mut ia = ca.split('.').map(|x| x.parse::<u64>().unwrap_or(0));
    let mut ib = cb.split('.').map(|x| x.parse::<u64>().unwrap_or(0));
    loop {
        match (ia.next(), ib.next()) {
            (None, None) => break,
            (x, y) => match x.unwrap_or(0).cmp(&y.unwrap_or(0)) {
                Ordering::Equal => {}
                other => return other,
            },
        }
    }
    match (pa, pb) {
        (None, None) => Ordering::Equal,
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (Some(x), Some(y)) => x.cmp(y),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn ctx<'a>(cc: &'a str, key: &'a str) -> FlagContext<'a> {
        FlagContext {
            probe_cc: cc,
            probe_asn: 30722,
            software_name: "ooniprobe-android",
            software_version: "3.20.1",
            client_key: key,
        }
    }

    #[test]
    fn url_limit_is_9999_for_manual_100_when_charging_else_20() {
        assert_eq!(url_limit("manual", false), 9999);
        assert_eq!(url_limit("manual", true), 9999);
        assert_eq!(url_limit("timed", true), 100);
        assert_eq!(url_limit("timed", false), 20);
    }

    #[test]
    fn twenty_one_distinct_tests_get_report_ids() {
        let mut names = REPORT_ID_TEST_NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 21);
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let now = DateTime::parse_from_rfc3339("2024-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let ids = checkin_report_ids(now, "IT", 30722, "1", &mut rng);
        assert_eq!(ids.len(), 21);
        let (tn, rid) = &ids[19];
        assert_eq!(*tn, "web_connectivity");
        let parts: Vec<_> = rid.split('_').collect();
        assert_eq!(parts.len(), 6);
        assert_eq!(&parts[1..5], ["webconnectivity", "IT", "30722", "n1"]);
    }

    #[test]
    fn utc_time_is_twenty_characters_ending_in_z() {
        let now = DateTime::parse_from_rfc3339("2024-01-02T03:04:05.999Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(utc_time(now), "2024-01-02T03:04:05Z");
    }

    fn helpers() -> (Vec<TestHelper>, Vec<TestHelper>) {
        let https = (0..3)
            .map(|i| TestHelper::https(format!("https://wcth{i}.fra1.ooni.org")))
            .collect();
        let fronted = vec![TestHelper {
            address: "https://d33d1gs9kpq1c5.cloudfront.net".into(),
            kind: "cloudfront".into(),
            front: Some("d33d1gs9kpq1c5.cloudfront.net".into()),
        }];
        (https, fronted)
    }

    fn canary(share: f64, fallback: bool) -> CanaryRule {
        CanaryRule {
            helper: TestHelper::https("https://0.th.ooni.org"),
            share_percent: share,
            salt: "test".into(),
            fallback_for_others: fallback,
        }
    }

    #[test]
    fn without_a_canary_helpers_are_the_shuffled_https_ones_then_the_fronted_ones() {
        let (https, fronted) = helpers();
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let out = web_connectivity_helpers(&https, &fronted, None, None, &mut rng);
        assert_eq!(out.len(), 4);
        assert_eq!(out[3].kind, "cloudfront");
        assert_eq!(
            serde_json::to_value(&out[3]).unwrap(),
            serde_json::json!({"address":"https://d33d1gs9kpq1c5.cloudfront.net","front":"d33d1gs9kpq1c5.cloudfront.net","type":"cloudfront"})
        );
        let mut addrs: Vec<_> = out[..3].iter().map(|h| h.address.clone()).collect();
        addrs.sort();
        assert_eq!(
            addrs,
            https.iter().map(|h| h.address.clone()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn canary_group_gets_the_canary_first_and_others_do_not_get_it() {
        let (https, fronted) = helpers();
        let rule = canary(50.0, false);
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let mut in_group = 0;
        for i in 0..=255u8 {
            let ip: IpAddr = format!("10.{i}.7.1").parse().unwrap();
            let out = web_connectivity_helpers(&https, &fronted, Some(&rule), Some(ip), &mut rng);
            if in_canary(&rule, Some(ip)) {
                in_group += 1;
                assert_eq!(out[0].address, "https://0.th.ooni.org");
                assert_eq!(out.len(), 5);
            } else {
                assert!(out.iter().all(|h| h.address != "https://0.th.ooni.org"));
                assert_eq!(out.len(), 4);
            }
        }
        assert!(
            (90..=166).contains(&in_group),
            "{in_group} of 256 picked at 50%"
        );
    }

    #[test]
    fn canary_selection_is_stable_within_a_slash_24() {
        let rule = canary(50.0, false);
        for i in 0..=255u8 {
            let a: IpAddr = format!("192.0.{i}.1").parse().unwrap();
            let b: IpAddr = format!("192.0.{i}.200").parse().unwrap();
            assert_eq!(in_canary(&rule, Some(a)), in_canary(&rule, Some(b)));
        }
    }

    #[test]
    fn canary_share_of_zero_and_hundred_pick_nobody_and_everybody() {
        let ip: IpAddr = "1.2.3.4".parse().unwrap();
        assert!(!in_canary(&canary(0.0, false), Some(ip)));
        assert!(in_canary(&canary(100.0, false), Some(ip)));
        assert!(!in_canary(&canary(100.0, false), None));
    }

    #[test]
    fn with_fallback_others_get_the_canary_after_the_regular_helpers() {
        let (https, fronted) = helpers();
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let ip: IpAddr = "1.2.3.4".parse().unwrap();
        let out = web_connectivity_helpers(
            &https,
            &fronted,
            Some(&canary(0.0, true)),
            Some(ip),
            &mut rng,
        );
        assert_eq!(out.len(), 5);
        assert_eq!(out[3].address, "https://0.th.ooni.org");
        assert_eq!(out[4].kind, "cloudfront");
    }

    #[test]
    fn flags_default_to_upstream_values() {
        let f = FeatureFlags::default().evaluate(&ctx("IT", "x"));
        assert_eq!(f.len(), 4);
        assert!(!f["torsf_enabled"]);
        assert!(!f["vanilla_tor_enabled"]);
        assert!(!f["openvpn_enabled"]);
        assert!(f["webconnectivity_0.5"]);
    }

    #[test]
    fn first_matching_rule_decides_a_flag() {
        let doc = r#"{"flags":{
            "torsf_enabled":{"default":false,"rules":[
                {"enabled":false,"countries":["RU"]},
                {"enabled":true,"countries":["it","IR"],"asns":[30722]}
            ]},
            "new_thing":{"default":true}
        }}"#;
        let flags = FeatureFlags::from_json(doc).unwrap();
        let it = flags.evaluate(&ctx("IT", "x"));
        assert!(it["torsf_enabled"]);
        assert!(it["new_thing"]);
        assert!(!flags.evaluate(&ctx("RU", "x"))["torsf_enabled"]);
        assert!(!flags.evaluate(&ctx("DE", "x"))["torsf_enabled"]);
        let mut other_asn = ctx("IT", "x");
        other_asn.probe_asn = 1;
        assert!(!flags.evaluate(&other_asn)["torsf_enabled"]);
    }

    #[test]
    fn software_name_and_version_range_restrict_a_rule() {
        let doc = r#"{"flags":{"openvpn_enabled":{"rules":[
            {"enabled":true,"software_names":["ooniprobe-android"],
             "min_software_version":"3.20.0","max_software_version":"3.21"}]}}}"#;
        let flags = FeatureFlags::from_json(doc).unwrap();
        let mut c = ctx("IT", "x");
        assert!(flags.evaluate(&c)["openvpn_enabled"]);
        c.software_version = "3.19.9";
        assert!(!flags.evaluate(&c)["openvpn_enabled"]);
        c.software_version = "3.21.0";
        assert!(!flags.evaluate(&c)["openvpn_enabled"]);
        c.software_version = "3.20.5";
        c.software_name = "ooniprobe-cli";
        assert!(!flags.evaluate(&c)["openvpn_enabled"]);
    }

    #[test]
    fn percentage_rollout_is_stable_per_client_and_roughly_proportional() {
        let doc = r#"{"flags":{"torsf_enabled":{"rules":[{"enabled":true,"percent":25}]}}}"#;
        let flags = FeatureFlags::from_json(doc).unwrap();
        let mut on = 0;
        for i in 0..4000 {
            let key = format!("client-{i}");
            let first = flags.evaluate(&ctx("IT", &key))["torsf_enabled"];
            assert_eq!(first, flags.evaluate(&ctx("DE", &key))["torsf_enabled"]);
            if first {
                on += 1;
            }
        }
        assert!((850..=1150).contains(&on), "{on} of 4000 at 25%");
    }

    #[test]
    fn bad_flag_documents_are_refused() {
        assert!(FeatureFlags::from_json(
            r#"{"flags":{"x":{"rules":[{"enabled":true,"percent":101}]}}}"#
        )
        .is_err());
        assert!(FeatureFlags::from_json(
            r#"{"flags":{"x":{"rules":[{"enabled":true,"country":["IT"]}]}}}"#
        )
        .is_err());
        assert!(FeatureFlags::from_json("[]").is_err());
    }

    #[test]
    fn versions_compare_numerically_with_prereleases_first() {
        assert_eq!(compare_versions("3.9.2", "3.10.0"), Ordering::Less);
        assert_eq!(compare_versions("3.10", "3.10.0"), Ordering::Equal);
        assert_eq!(compare_versions("3.20.0-beta.1", "3.20.0"), Ordering::Less);
        assert_eq!(compare_versions("v4.0.0", "3.99.99"), Ordering::Greater);
    }
}
