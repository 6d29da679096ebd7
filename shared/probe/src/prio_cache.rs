//! Check-in's URL prioritisation, computed once per (country, ASN) and kept for a short time.
//!
//! Check-in is the most frequent probe call and upstream ran two ClickHouse queries and the
//! whole prioritisation for every one. Here the citizenlab list with its counts and the rules
//! of a (cc, asn) are fetched once, every entry's priority and weight computed and the entries
//! ordered (weight descending, then position: upstream's stable sort), and the result kept for
//! `ttl` (default 60 s; counts are weekly aggregates, so nothing is lost). A check-in then only
//! filters that order by category and takes the first `limit` entries — the same list
//! `ooni_domain::prio::generate_test_list` gives (tested below). The cache holds at most
//! `capacity` lists; expired ones are dropped first, then the oldest.

use crate::db::{DbError, TestListDb};
use ooni_domain::prio::{
    compute_priorities, country_code_for, CitizenlabEntry, DebugInfo, PrioRule, TestListItem,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A citizenlab list with its entries in priority order (positive priorities only).
#[derive(Debug)]
pub struct PrioritizedList {
    entries: Vec<CitizenlabEntry>,
    /// (entry index, priority, weight), weight descending then index ascending.
    order: Vec<(usize, i64, f64)>,
}

impl PrioritizedList {
    pub fn new(entries: Vec<CitizenlabEntry>, rules: &[PrioRule]) -> Self {
        let order = compute_priorities(&entries, rules)
            .into_iter()
            .filter(|p| p.priority > 0)
            .map(|p| (p.index, p.priority, p.weight))
            .collect();
        PrioritizedList { entries, order }
    }

    /// The first `limit` entries (at least one, as upstream) of the wanted categories (all
    /// when none are given).
    pub fn select<S: AsRef<str>>(
        &self,
        category_codes: &[S],
        limit: usize,
        debug: bool,
    ) -> Vec<TestListItem<'_>> {
        let wanted = |cat: &str| {
            category_codes.is_empty() || category_codes.iter().any(|c| c.as_ref() == cat)
        };
        self.order
            .iter()
            .filter_map(|&(i, priority, weight)| {
                let e = self.entries.get(i)?;
                wanted(&e.category_code).then(|| TestListItem {
                    category_code: &e.category_code,
                    url: &e.url,
                    country_code: country_code_for(&e.cc),
                    debug: debug.then_some(DebugInfo {
                        msmt_cnt: e.msmt_cnt,
                        priority,
                        weight,
                    }),
                })
            })
            .take(limit.max(1))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

type Key = (String, u32);

/// Prioritised lists by (cc, asn); see the module docs.
#[derive(Debug)]
pub struct PrioCache {
    ttl: Duration,
    capacity: usize,
    lists: Mutex<HashMap<Key, (Arc<PrioritizedList>, Instant)>>,
}

impl PrioCache {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        PrioCache {
            ttl,
            capacity: capacity.max(1),
            lists: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, (Arc<PrioritizedList>, Instant)>> {
        self.lists.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The list of (cc, asn), from the cache or fetched. A database failure is returned (the
    /// caller fails over); it is not cached.
    pub async fn get(
        &self,
        db: &dyn TestListDb,
        cc: &str,
        asn: u32,
    ) -> Result<Arc<PrioritizedList>, DbError> {
        let key = (cc.to_owned(), asn);
        if !self.ttl.is_zero() {
            if let Some((list, at)) = self.lock().get(&key) {
                if at.elapsed() < self.ttl {
                    return Ok(list.clone());
                }
            }
        }
        let (entries, rules) = tokio::join!(db.citizenlab(cc, asn), db.prio_rules(cc));
        let list = Arc::new(PrioritizedList::new(entries?, &rules?));
        if !self.ttl.is_zero() {
            let mut lists = self.lock();
            lists.retain(|_, (_, at)| at.elapsed() < self.ttl);
            while lists.len() >= self.capacity {
                let oldest = lists
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(k, _)| k.clone());
                match oldest {
                    Some(k) => lists.remove(&k),
                    None => break,
                };
            }
            lists.insert(key, (list.clone(), Instant::now()));
        }
        Ok(list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::MemoryTestListDb;
    use ooni_domain::prio::{default_prio_rules, generate_test_list};

    fn entries(n: usize) -> Vec<CitizenlabEntry> {
        let cats = ["NEWS", "HUMR", "MISC", "GAME", "XED", "POLR"];
        (0..n)
            .map(|i| CitizenlabEntry {
                category_code: cats[(i * 7) % cats.len()].into(),
                domain: format!("d{}.org", i % 50),
                url: format!("https://d{}.org/{i}", i % 50),
                cc: if i % 3 == 0 { "ZZ".into() } else { "it".into() },
                // Many ties in weight, to exercise the order of equal weights.
                msmt_cnt: (i % 4) as u64,
            })
            .collect()
    }

    fn rules() -> Vec<PrioRule> {
        let mut r = default_prio_rules();
        r.push(PrioRule {
            category_code: "MISC".into(),
            cc: "IT".into(),
            domain: "*".into(),
            url: "*".into(),
            priority: -200,
        });
        r.push(PrioRule {
            category_code: "*".into(),
            cc: "*".into(),
            domain: "d7.org".into(),
            url: "*".into(),
            priority: 55,
        });
        r
    }

    #[test]
    fn selection_matches_the_domain_generate_test_list_exactly() {
        let e = entries(600);
        let r = rules();
        let list = PrioritizedList::new(e.clone(), &r);
        let cases: [(&[&str], usize); 6] = [
            (&[], 9999),
            (&[], 20),
            (&["NEWS"], 100),
            (&["NEWS", "MISC"], 7),
            (&["MISC"], 50),
            (&[], 0),
        ];
        for (cats, limit) in cases {
            for debug in [false, true] {
                let want = generate_test_list(&e, &r, cats, limit, debug);
                let got = list.select(cats, limit, debug);
                assert_eq!(got, want, "categories {cats:?} limit {limit} debug {debug}");
            }
        }
    }

    #[tokio::test]
    async fn a_cached_list_is_served_without_the_database_until_it_expires() {
        let db = MemoryTestListDb::new(entries(30), rules());
        let cache = PrioCache::new(Duration::from_secs(60), 4);
        let first = cache.get(&db, "IT", 30722).await.unwrap();
        db.set_down(true);
        let again = cache.get(&db, "IT", 30722).await.unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert!(
            cache.get(&db, "IT", 1).await.is_err(),
            "another ASN is another list"
        );
        let uncached = PrioCache::new(Duration::ZERO, 4);
        assert!(uncached.get(&db, "IT", 30722).await.is_err());
    }

    #[tokio::test]
    async fn the_cache_never_holds_more_than_its_capacity() {
        let db = MemoryTestListDb::new(entries(10), rules());
        let cache = PrioCache::new(Duration::from_secs(60), 3);
        for asn in 1..=10 {
            cache.get(&db, "IT", asn).await.unwrap();
        }
        assert_eq!(cache.lock().len(), 3);
        assert!(cache.lock().contains_key(&("IT".to_string(), 10)));
    }
}
