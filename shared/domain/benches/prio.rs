//! Latency of test-list generation for a check-in: 10,000 citizenlab entries, 40 rules.
//! Prints p50/p99 over many runs; the budget is 5 ms p99.
//!
//! Run: `cargo bench -p ooni-domain --bench prio`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use ooni_domain::prio::{
    compute_priorities, default_prio_rules, generate_test_list, CitizenlabEntry, PrioRule,
};
use rand::{Rng, SeedableRng};

const CATEGORIES: [&str; 31] = [
    "NEWS", "POLR", "HUMR", "LGBT", "ANON", "COMT", "GRP", "MMED", "SRCH", "PUBH", "REL", "XED",
    "HOST", "ENV", "FILE", "CULTR", "IGO", "GOVT", "DATE", "HATE", "MILX", "PROV", "PORN", "GMB",
    "ALDR", "GAME", "MISC", "HACK", "ECON", "COMM", "CTRL",
];

fn entries(n: usize) -> Vec<CitizenlabEntry> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(2024);
    (0..n)
        .map(|i| {
            let domain = format!("www.site{}.example", i / 2);
            CitizenlabEntry {
                category_code: CATEGORIES[rng.random_range(0..CATEGORIES.len())].to_owned(),
                url: format!("https://{domain}/{i}"),
                domain,
                // About 1 in 8 country-specific, the rest global.
                cc: if i % 8 == 0 {
                    "it".to_owned()
                } else {
                    "ZZ".to_owned()
                },
                msmt_cnt: rng.random_range(0..500),
            }
        })
        .collect()
}

fn rules() -> Vec<PrioRule> {
    let mut rules = default_prio_rules();
    let r = |cat: &str, cc: &str, domain: &str, url: &str, priority| PrioRule {
        category_code: cat.into(),
        cc: cc.into(),
        domain: domain.into(),
        url: url.into(),
        priority,
    };
    rules.extend([
        r("NEWS", "IT", "*", "*", 50),
        r("MISC", "IT", "*", "*", -20),
        r("*", "IT", "www.site10.example", "*", 200),
        r("*", "*", "www.site11.example", "*", -500),
        r("", "", "", "https://www.site12.example/24", 300),
        r("POLR", "IT", "*", "*", 30),
        r("GMB", "*", "*", "*", -30),
        r("*", "IT", "*", "*", 5),
        r("HUMR", "", "*", "", 10),
    ]);
    rules
}

fn percentiles(name: &str, mut samples: Vec<Duration>) {
    samples.sort_unstable();
    let p = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{name:<44} p50 {:>8.3} ms  p99 {:>8.3} ms  max {:>8.3} ms",
        p(0.50).as_secs_f64() * 1e3,
        p(0.99).as_secs_f64() * 1e3,
        p(1.0).as_secs_f64() * 1e3
    );
}

fn measure<F: FnMut()>(name: &str, runs: usize, mut f: F) {
    for _ in 0..50 {
        f();
    }
    let samples = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    percentiles(name, samples);
}

fn main() {
    let entries = entries(10_000);
    let rules = rules();
    println!("{} entries, {} rules", entries.len(), rules.len());
    let none: &[&str] = &[];
    measure("generate_test_list all categories, limit 20", 2000, || {
        black_box(
            generate_test_list(black_box(&entries), black_box(&rules), none, 20, false).len(),
        );
    });
    measure(
        "generate_test_list all categories, limit 9999",
        2000,
        || {
            black_box(
                generate_test_list(black_box(&entries), black_box(&rules), none, 9999, false).len(),
            );
        },
    );
    measure("generate_test_list NEWS,HUMR, limit 100", 2000, || {
        black_box(
            generate_test_list(
                black_box(&entries),
                black_box(&rules),
                &["NEWS", "HUMR"],
                100,
                false,
            )
            .len(),
        );
    });
    measure("generate_test_list debug, limit 9999", 2000, || {
        black_box(
            generate_test_list(black_box(&entries), black_box(&rules), none, 9999, true).len(),
        );
    });
    measure("compute_priorities (all entries)", 2000, || {
        black_box(compute_priorities(black_box(&entries), black_box(&rules)).len());
    });
}
