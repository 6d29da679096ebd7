//! URL prioritisation for web_connectivity test lists (contract §6, upstream `prio.py`).
//!
//! * A rule matches an entry when each of its `category_code`, `domain` and `url` is `""`,
//!   `"*"` or equal to the entry's; and, unless the entry's cc is `ZZ`, its cc (uppercased) is
//!   `""`, `"*"` or the entry's cc uppercased. Global `ZZ` entries thus match country rules.
//! * An entry's priority is the sum of its matching rules' priorities; its weight is
//!   `priority / max(msmt_cnt, 0.1)`; entries are stably sorted by weight, descending.
//! * The test list keeps the requested categories and positive priorities, with `country_code`
//!   `XX` for `ZZ` entries and the uppercased cc otherwise, up to `limit` items.
//!
//! Work is O(entries × rules of the entry's category + wildcard-category rules): rules are
//! indexed by category once per call, and nothing is allocated per entry except the output.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// A citizenlab URL with its recent measurement count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CitizenlabEntry {
    pub category_code: String,
    pub domain: String,
    pub url: String,
    /// Lowercase country code as stored in citizenlab, or `ZZ` for the global list.
    pub cc: String,
    pub msmt_cnt: u64,
}

/// A prioritisation rule (`url_priorities` row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrioRule {
    pub category_code: String,
    pub cc: String,
    pub domain: String,
    pub url: String,
    pub priority: i64,
}

fn wildcard(v: &str) -> bool {
    v.is_empty() || v == "*"
}

fn field_matches(rule: &str, entry: &str) -> bool {
    wildcard(rule) || rule == entry
}

/// Upstream `match_prio_rule`.
pub fn match_prio_rule(entry: &CitizenlabEntry, rule: &PrioRule) -> bool {
    field_matches(&rule.category_code, &entry.category_code)
        && field_matches(&rule.domain, &entry.domain)
        && field_matches(&rule.url, &entry.url)
        && (entry.cc == "ZZ" || wildcard(&rule.cc) || unicode_upper_eq(&rule.cc, &entry.cc))
}

/// `a.upper() == b.upper()` without allocating for ASCII.
fn unicode_upper_eq(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        a.to_uppercase() == b.to_uppercase()
    }
}

/// An entry with its computed priority and weight.
#[derive(Debug, Clone, PartialEq)]
pub struct Prioritized<'a> {
    pub entry: &'a CitizenlabEntry,
    /// The entry's position in the input (ties in weight keep input order).
    pub index: usize,
    pub priority: i64,
    pub weight: f64,
}

/// FNV-1a: category codes are a few bytes long, where SipHash's setup dominates. The keys are
/// the rules' own categories (operator-controlled), so hash flooding is not a concern.
#[derive(Default)]
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type FnvMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<Fnv>>;

/// Rules grouped by category, so each entry is only tested against rules that can match it.
struct RuleIndex<'r> {
    by_category: FnvMap<&'r str, Vec<&'r PrioRule>>,
    any_category: Vec<&'r PrioRule>,
}

impl<'r> RuleIndex<'r> {
    fn new(rules: &'r [PrioRule]) -> Self {
        let mut by_category: FnvMap<&str, Vec<&PrioRule>> = FnvMap::default();
        let mut any_category = Vec::new();
        for r in rules {
            if wildcard(&r.category_code) {
                any_category.push(r);
            } else {
                by_category
                    .entry(r.category_code.as_str())
                    .or_default()
                    .push(r);
            }
        }
        RuleIndex {
            by_category,
            any_category,
        }
    }

    fn priority(&self, e: &CitizenlabEntry) -> i64 {
        let specific = self
            .by_category
            .get(e.category_code.as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        specific
            .iter()
            .chain(self.any_category.iter())
            .filter(|r| match_prio_rule(e, r))
            .fold(0i64, |acc, r| acc.saturating_add(r.priority))
    }
}

fn weight(priority: i64, msmt_cnt: u64) -> f64 {
    // Python: priority / max(msmt_cnt, 0.1)
    let cnt = msmt_cnt as f64;
    priority as f64 / if cnt > 0.1 { cnt } else { 0.1 }
}

/// Upstream `compute_priorities`: every entry with its priority and weight, stably sorted by
/// weight, highest first.
pub fn compute_priorities<'a>(
    entries: &'a [CitizenlabEntry],
    rules: &[PrioRule],
) -> Vec<Prioritized<'a>> {
    let index = RuleIndex::new(rules);
    let mut out: Vec<Prioritized<'a>> = entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let priority = index.priority(entry);
            Prioritized {
                entry,
                index: i,
                priority,
                weight: weight(priority, entry.msmt_cnt),
            }
        })
        .collect();
    out.sort_unstable_by(by_weight_then_position);
    out
}

/// Weight descending, then input position: the order of Python's stable
/// `sorted(key=weight, reverse=True)`, as a total order (so unstable sorts and selection give
/// the same result). Weights are never NaN: the divisor is at least 0.1.
fn by_weight_then_position(a: &Prioritized<'_>, b: &Prioritized<'_>) -> std::cmp::Ordering {
    b.weight.total_cmp(&a.weight).then(a.index.cmp(&b.index))
}

/// The first `limit` items in [`by_weight_then_position`] order, without sorting the rest.
fn top_by_weight(v: &mut Vec<Prioritized<'_>>, limit: usize) {
    if limit < v.len() {
        v.select_nth_unstable_by(limit, by_weight_then_position);
        v.truncate(limit);
    }
    v.sort_unstable_by(by_weight_then_position);
}

/// The extra fields of `debug=true` test-list items.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DebugInfo {
    pub msmt_cnt: u64,
    pub priority: i64,
    pub weight: f64,
}

/// One URL of a test list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestListItem<'a> {
    pub category_code: &'a str,
    pub url: &'a str,
    pub country_code: Cow<'a, str>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub debug: Option<DebugInfo>,
}

/// `XX` for the global list, else the uppercased cc.
pub fn country_code_for(cc: &str) -> Cow<'_, str> {
    if cc == "ZZ" {
        Cow::Borrowed("XX")
    } else if cc.chars().all(|c| !c.is_lowercase()) {
        Cow::Borrowed(cc)
    } else {
        Cow::Owned(cc.to_uppercase())
    }
}

/// Upstream `generate_test_list` after the database fetches: prioritise `entries` with
/// `rules`, keep the wanted categories (all when `category_codes` is empty) and positive
/// priorities, and return at most `limit` items (upstream appends before checking the limit,
/// so a limit of 0 still yields one item; this is kept).
pub fn generate_test_list<'a, S: AsRef<str>>(
    entries: &'a [CitizenlabEntry],
    rules: &[PrioRule],
    category_codes: &[S],
    limit: usize,
    debug: bool,
) -> Vec<TestListItem<'a>> {
    let index = RuleIndex::new(rules);
    let wanted =
        |cat: &str| category_codes.is_empty() || category_codes.iter().any(|c| c.as_ref() == cat);
    // Filtering before the stable sort keeps the same relative order as filtering after it.
    let mut kept: Vec<Prioritized<'a>> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| wanted(&e.category_code))
        .filter_map(|(i, entry)| {
            let priority = index.priority(entry);
            (priority > 0).then(|| Prioritized {
                entry,
                index: i,
                priority,
                weight: weight(priority, entry.msmt_cnt),
            })
        })
        .collect();
    top_by_weight(&mut kept, limit.max(1));
    kept.into_iter()
        .map(|p| TestListItem {
            category_code: &p.entry.category_code,
            url: &p.entry.url,
            country_code: country_code_for(&p.entry.cc),
            debug: debug.then_some(DebugInfo {
                msmt_cnt: p.entry.msmt_cnt,
                priority: p.priority,
                weight: p.weight,
            }),
        })
        .collect()
}

/// A global (`ZZ`) citizenlab URL kept in memory for when the database is unreachable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverEntry {
    pub category_code: String,
    pub url: String,
}

/// The failover list: global URLs grouped by category, in first-seen category order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailoverTestList {
    by_category: Vec<(String, Vec<FailoverEntry>)>,
}

impl FailoverTestList {
    /// Groups `(category_code, url)` rows (upstream loads `citizenlab WHERE cc='ZZ'`).
    pub fn from_rows<I, C, U>(rows: I) -> Self
    where
        I: IntoIterator<Item = (C, U)>,
        C: Into<String>,
        U: Into<String>,
    {
        let mut list = FailoverTestList::default();
        let mut pos: HashMap<String, usize> = HashMap::new();
        for (cat, url) in rows {
            let cat = cat.into();
            let i = *pos.entry(cat.clone()).or_insert_with(|| {
                list.by_category.push((cat.clone(), Vec::new()));
                list.by_category.len() - 1
            });
            list.by_category[i].1.push(FailoverEntry {
                category_code: cat,
                url: url.into(),
            });
        }
        list
    }

    /// Number of URLs.
    pub fn len(&self) -> usize {
        self.by_category.iter().map(|(_, v)| v.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Upstream `failover_generate_test_list`: a uniform random sample without replacement of
    /// `min(limit, candidates)` URLs from the wanted categories (all when none are given), in
    /// random order, each with `country_code` `XX`.
    pub fn sample<'a, S, R>(
        &'a self,
        category_codes: &[S],
        limit: usize,
        rng: &mut R,
    ) -> Vec<TestListItem<'a>>
    where
        S: AsRef<str>,
        R: rand::Rng + ?Sized,
    {
        let candidates: Vec<&FailoverEntry> = if category_codes.is_empty() {
            self.by_category
                .iter()
                .flat_map(|(_, v)| v.iter())
                .collect()
        } else {
            category_codes
                .iter()
                .filter_map(|c| self.by_category.iter().find(|(cat, _)| cat == c.as_ref()))
                .flat_map(|(_, v)| v.iter())
                .collect()
        };
        let k = limit.min(candidates.len());
        rand::seq::index::sample(rng, candidates.len(), k)
            .into_iter()
            .map(|i| {
                let e = candidates[i];
                TestListItem {
                    category_code: &e.category_code,
                    url: &e.url,
                    country_code: Cow::Borrowed("XX"),
                    debug: None,
                }
            })
            .collect()
    }
}

/// The rules `testlists` seeds into an empty `url_priorities` table: every one with
/// `cc = domain = url = "*"`.
pub fn default_prio_rules() -> Vec<PrioRule> {
    const TABLE: &[(i64, &[&str])] = &[
        (
            100,
            &["NEWS", "POLR", "HUMR", "LGBT", "ANON", "COMT", "GRP"],
        ),
        (80, &["MMED", "SRCH", "PUBH"]),
        (60, &["REL", "XED", "HOST", "ENV"]),
        (40, &["FILE", "CULTR", "IGO", "GOVT"]),
        (30, &["DATE", "HATE", "MILX", "PROV", "PORN", "GMB", "ALDR"]),
        (20, &["GAME", "MISC", "HACK", "ECON", "COMM", "CTRL"]),
    ];
    TABLE
        .iter()
        .flat_map(|(priority, cats)| {
            cats.iter().map(move |cat| PrioRule {
                category_code: (*cat).to_owned(),
                cc: "*".to_owned(),
                domain: "*".to_owned(),
                url: "*".to_owned(),
                priority: *priority,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn entry(cat: &str, domain: &str, url: &str, cc: &str, cnt: u64) -> CitizenlabEntry {
        CitizenlabEntry {
            category_code: cat.into(),
            domain: domain.into(),
            url: url.into(),
            cc: cc.into(),
            msmt_cnt: cnt,
        }
    }

    fn rule(cat: &str, cc: &str, domain: &str, url: &str, priority: i64) -> PrioRule {
        PrioRule {
            category_code: cat.into(),
            cc: cc.into(),
            domain: domain.into(),
            url: url.into(),
            priority,
        }
    }

    fn hidden_wiki() -> CitizenlabEntry {
        entry(
            "MISC",
            "thehiddenwiki.org",
            "https://thehiddenwiki.org/",
            "ZZ",
            38,
        )
    }

    #[test]
    fn upstream_test_prio_rule_matching() {
        let cz = hidden_wiki();
        assert!(match_prio_rule(&cz, &rule("MISC", "US", "*", "*", -200)));
        assert!(!match_prio_rule(&cz, &rule("BOGUS", "US", "*", "*", -200)));
        assert!(!match_prio_rule(
            &cz,
            &rule("MISC", "US", "BOGUS", "*", -200)
        ));
        assert!(!match_prio_rule(
            &cz,
            &rule("MISC", "US", "*", "BOGUS", -200)
        ));
    }

    #[test]
    fn upstream_test_prio_cc_cases() {
        let e = |cc| entry("", "", "", cc, 0);
        let r = |cc| rule("", cc, "", "", 0);
        assert!(match_prio_rule(&e("ZZ"), &r("US")));
        assert!(match_prio_rule(&e("US"), &r("US")));
        assert!(match_prio_rule(&e("US"), &r("*")));
        assert!(!match_prio_rule(&e("US"), &r("IE")));
        assert!(match_prio_rule(&e("us"), &r("US")));
        assert!(match_prio_rule(&e("US"), &r("us")));
    }

    #[test]
    fn upstream_test_compute_priorities_misc_plus_20_and_us_misc_minus_200() {
        let entries = vec![hidden_wiki()];
        let rules = vec![
            rule("MISC", "*", "*", "*", 20),
            rule("MISC", "US", "*", "*", -200),
        ];
        let out = compute_priorities(&entries, &rules);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].priority, -180);
        assert_eq!(out[0].weight, -4.7368421052631575);
        assert_eq!(out[0].entry, &entries[0]);
    }

    #[test]
    fn upstream_test_compute_priorities_country_list() {
        let entries = vec![entry("HUMR", "ooni.org", "https://ooni.org/", "it", 38)];
        let rules = vec![
            rule("*", "IT", "ooni.org", "*", 20),
            rule("*", "IT", "ooni.org", "*", 400),
        ];
        let out = compute_priorities(&entries, &rules);
        assert_eq!(out[0].priority, 420);
        assert_eq!(out[0].weight, 11.052631578947368);
    }

    #[test]
    fn unmeasured_urls_weigh_ten_times_their_priority() {
        assert_eq!(weight(100, 0), 1000.0);
        assert_eq!(weight(-5, 0), -50.0);
        assert_eq!(weight(100, 1), 100.0);
    }

    #[test]
    fn top_selection_equals_a_stable_sort_then_truncate() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        use rand::Rng;
        let entries: Vec<_> = (0..500)
            .map(|i| {
                entry(
                    ["NEWS", "MISC", "GAME"][i % 3],
                    "d",
                    &format!("https://{i}/"),
                    "ZZ",
                    rng.random_range(0..4),
                )
            })
            .collect();
        let rules = default_prio_rules();
        let mut stable: Vec<_> = compute_priorities(&entries, &rules);
        stable.sort_by_key(|p| p.index);
        stable.sort_by(|a, b| b.weight.total_cmp(&a.weight));
        let none: &[&str] = &[];
        for limit in [1, 7, 100, 499, 500, 10_000] {
            let got: Vec<_> = generate_test_list(&entries, &rules, none, limit, false)
                .iter()
                .map(|i| i.url)
                .collect();
            let want: Vec<_> = stable
                .iter()
                .take(limit)
                .map(|p| p.entry.url.as_str())
                .collect();
            assert_eq!(got, want, "limit {limit}");
        }
    }

    #[test]
    fn sorting_by_weight_is_stable_for_ties() {
        let entries: Vec<_> = (0..20)
            .map(|i| entry("NEWS", "d", &format!("https://{i}/"), "ZZ", 10))
            .collect();
        let out = compute_priorities(&entries, &default_prio_rules());
        let urls: Vec<_> = out.iter().map(|p| p.entry.url.clone()).collect();
        let expected: Vec<_> = (0..20).map(|i| format!("https://{i}/")).collect();
        assert_eq!(urls, expected);
    }

    #[test]
    fn sorting_puts_the_least_measured_high_priority_urls_first() {
        let entries = vec![
            entry("NEWS", "a", "https://a/", "ZZ", 100),
            entry("NEWS", "b", "https://b/", "ZZ", 1),
            entry("MISC", "c", "https://c/", "ZZ", 1),
        ];
        let out = compute_priorities(&entries, &default_prio_rules());
        let urls: Vec<_> = out.iter().map(|p| p.entry.url.as_str()).collect();
        assert_eq!(urls, ["https://b/", "https://c/", "https://a/"]);
    }

    #[test]
    fn test_list_filters_categories_drops_non_positive_priorities_and_maps_zz_to_xx() {
        let entries = vec![
            entry("NEWS", "a", "https://a/", "ZZ", 0),
            entry("NEWS", "b", "https://b/", "it", 0),
            entry("HUMR", "c", "https://c/", "ZZ", 0),
            entry("MISC", "d", "https://d/", "ZZ", 0),
        ];
        let mut rules = default_prio_rules();
        rules.push(rule("MISC", "IT", "*", "*", -20));
        let out = generate_test_list(&entries, &rules, &["NEWS", "MISC"], 100, false);
        let got: Vec<_> = out
            .iter()
            .map(|i| (i.url, i.country_code.as_ref()))
            .collect();
        assert_eq!(got, [("https://a/", "XX"), ("https://b/", "IT")]);
        assert!(out.iter().all(|i| i.debug.is_none()));
    }

    #[test]
    fn test_list_with_no_categories_keeps_every_category() {
        let entries = vec![
            entry("NEWS", "a", "https://a/", "ZZ", 0),
            entry("GAME", "b", "https://b/", "ZZ", 0),
        ];
        let none: &[&str] = &[];
        assert_eq!(
            generate_test_list(&entries, &default_prio_rules(), none, 100, false).len(),
            2
        );
    }

    #[test]
    fn test_list_respects_the_limit_and_upstream_limit_zero_quirk() {
        let entries: Vec<_> = (0..50)
            .map(|i| entry("NEWS", "d", &format!("https://{i}/"), "ZZ", i))
            .collect();
        let none: &[&str] = &[];
        assert_eq!(
            generate_test_list(&entries, &default_prio_rules(), none, 20, false).len(),
            20
        );
        assert_eq!(
            generate_test_list(&entries, &default_prio_rules(), none, 0, false).len(),
            1
        );
    }

    #[test]
    fn test_list_debug_items_carry_count_priority_and_weight() {
        let entries = vec![entry("NEWS", "a", "https://a/", "ZZ", 4)];
        let none: &[&str] = &[];
        let out = generate_test_list(&entries, &default_prio_rules(), none, 10, true);
        assert_eq!(
            out[0].debug,
            Some(DebugInfo {
                msmt_cnt: 4,
                priority: 100,
                weight: 25.0
            })
        );
        let json = serde_json::to_value(&out[0]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"category_code":"NEWS","url":"https://a/","country_code":"XX",
                                "msmt_cnt":4,"priority":100,"weight":25.0})
        );
        let plain = serde_json::to_value(
            &generate_test_list(&entries, &default_prio_rules(), none, 10, false)[0],
        )
        .unwrap();
        assert_eq!(
            plain,
            serde_json::json!({"category_code":"NEWS","url":"https://a/","country_code":"XX"})
        );
    }

    #[test]
    fn indexed_priorities_equal_the_naive_sum_over_all_rules() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        use rand::Rng;
        let cats = ["NEWS", "MISC", "HUMR", "GAME"];
        let ccs = ["ZZ", "it", "us"];
        let entries: Vec<_> = (0..300)
            .map(|i| {
                entry(
                    cats[rng.random_range(0..4)],
                    &format!("d{}", i % 7),
                    &format!("https://{i}/"),
                    ccs[rng.random_range(0..3)],
                    rng.random_range(0..5),
                )
            })
            .collect();
        let mut rules = default_prio_rules();
        rules.push(rule("*", "IT", "d3", "*", 7));
        rules.push(rule("", "", "", "https://5/", -1000));
        rules.push(rule("NEWS", "us", "*", "", 13));
        let out = compute_priorities(&entries, &rules);
        for p in &out {
            let naive: i64 = rules
                .iter()
                .filter(|r| match_prio_rule(p.entry, r))
                .map(|r| r.priority)
                .sum();
            assert_eq!(p.priority, naive, "{:?}", p.entry);
        }
    }

    #[test]
    fn default_rules_match_the_seed_table() {
        let rules = default_prio_rules();
        assert_eq!(rules.len(), 31);
        let p = |c: &str| {
            rules
                .iter()
                .find(|r| r.category_code == c)
                .map(|r| r.priority)
        };
        assert_eq!(p("NEWS"), Some(100));
        assert_eq!(p("GRP"), Some(100));
        assert_eq!(p("PUBH"), Some(80));
        assert_eq!(p("ENV"), Some(60));
        assert_eq!(p("GOVT"), Some(40));
        assert_eq!(p("ALDR"), Some(30));
        assert_eq!(p("CTRL"), Some(20));
        assert!(rules
            .iter()
            .all(|r| r.cc == "*" && r.domain == "*" && r.url == "*"));
    }

    #[test]
    fn failover_sample_is_a_sample_without_replacement_from_wanted_categories() {
        let list = FailoverTestList::from_rows((0..30).map(|i| {
            (
                if i % 3 == 0 { "NEWS" } else { "MISC" },
                format!("https://{i}/"),
            )
        }));
        assert_eq!(list.len(), 30);
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let out = list.sample(&["NEWS"], 100, &mut rng);
        assert_eq!(out.len(), 10);
        assert!(out
            .iter()
            .all(|i| i.category_code == "NEWS" && i.country_code == "XX"));
        let mut urls: Vec<_> = out.iter().map(|i| i.url).collect();
        urls.sort_unstable();
        urls.dedup();
        assert_eq!(urls.len(), 10);
        let none: &[&str] = &[];
        assert_eq!(list.sample(none, 5, &mut rng).len(), 5);
        assert_eq!(list.sample(&["BOGUS"], 5, &mut rng).len(), 0);
    }

    #[test]
    fn country_code_is_uppercased_without_allocating_when_already_upper() {
        assert_eq!(country_code_for("ZZ"), "XX");
        assert_eq!(country_code_for("it"), "IT");
        assert!(matches!(country_code_for("IT"), Cow::Borrowed("IT")));
    }
}
