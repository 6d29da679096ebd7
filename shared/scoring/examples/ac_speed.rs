//! Raw Aho-Corasick throughput over the fixture bodies (development aid).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use std::time::Instant;

fn main() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/");
    let http = std::fs::read_to_string(format!("{dir}fingerprints_http.csv")).unwrap();
    let mut rdr = csv::Reader::from_reader(http.as_bytes());
    let mut pats: Vec<String> = Vec::new();
    for r in rdr.records() {
        let r = r.unwrap();
        if &r[3] == "body" && !pats.contains(&r[5].to_string()) {
            pats.push(r[5].to_string());
        }
    }
    let samples = std::fs::read_to_string(format!("{dir}samples.jsonl")).unwrap();
    let mut bodies: Vec<Vec<u8>> = Vec::new();
    for l in samples.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        if let Some(reqs) = v.pointer("/measurement/test_keys/requests").and_then(|r| r.as_array()) {
            for r in reqs {
                if let Some(b) = r.pointer("/response/body").and_then(|b| b.as_str()) {
                    bodies.push(b.as_bytes().to_vec());
                }
            }
        }
    }
    let total: usize = bodies.iter().map(Vec::len).sum();
    for k in [4usize, 6, 8, 12, 16] {
        let prefixes: Vec<&[u8]> = pats.iter().map(|p| &p.as_bytes()[..p.len().min(k)]).collect();
        let ac = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .prefilter(false)
            .build(&prefixes)
            .unwrap();
        let t = Instant::now();
        let mut n = 0usize;
        let mut hits = 0usize;
        for _ in 0..20 {
            for b in &bodies {
                for m in ac.find_overlapping_iter(b) {
                    hits += 1;
                    let p = pats[m.pattern().as_usize()].as_bytes();
                    if b[m.start()..].starts_with(p) {
                        n += 1;
                    }
                }
            }
        }
        let secs = t.elapsed().as_secs_f64() / 20.0;
        let acp = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .prefilter(true)
            .build(&prefixes)
            .unwrap();
        let t3 = Instant::now();
        let mut n3 = 0usize;
        for _ in 0..20 {
            for b in &bodies {
                n3 += acp.find_iter(b).count();
            }
        }
        let secs3 = t3.elapsed().as_secs_f64() / 20.0;
        println!(
            "prefix{k:<8} non-overlapping+prefilter {:>7.0} MB/s ({} matches)",
            total as f64 / secs3 / 1e6,
            n3 / 20
        );
        let t2 = Instant::now();
        let mut n2 = 0usize;
        for _ in 0..20 {
            for b in &bodies {
                n2 += ac.find_iter(b).count();
            }
        }
        let secs2 = t2.elapsed().as_secs_f64() / 20.0;
        println!(
            "prefix{k:<8} non-overlapping {:>7.0} MB/s ({} matches)",
            total as f64 / secs2 / 1e6,
            n2 / 20
        );
        println!(
            "prefix{k:<8} overlapping {:>7.0} MB/s  ({} matches, {} candidates, {} KB memory)",
            total as f64 / secs / 1e6,
            n / 20,
            hits / 20,
            ac.memory_usage() / 1024
        );
    }
    for (name, kind, classes) in [
        ("dfa", AhoCorasickKind::DFA, true),
        ("dfa-noclasses", AhoCorasickKind::DFA, false),
        ("contiguous", AhoCorasickKind::ContiguousNFA, true),
    ] {
        let ac = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .kind(Some(kind))
            .byte_classes(classes)
            .prefilter(false)
            .build(&pats)
            .unwrap();
        let t = Instant::now();
        let mut n = 0usize;
        for _ in 0..20 {
            for b in &bodies {
                n += ac.find_overlapping_iter(b).count();
            }
        }
        let secs = t.elapsed().as_secs_f64() / 20.0;
        println!(
            "{name:<14} overlapping {:>7.0} MB/s  ({} matches, {} KB memory)",
            total as f64 / secs / 1e6,
            n / 20,
            ac.memory_usage() / 1024
        );
    }
}
