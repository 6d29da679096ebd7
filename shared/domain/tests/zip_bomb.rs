//! Decompression bombs: 1 GiB of zeros, compressed, must be refused quickly and without the
//! process ever holding more than a small multiple of the limit in memory.
//!
//! This file is its own test binary, so its peak resident memory (VmHWM) reflects only what
//! these tests do.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::time::{Duration, Instant};

use ooni_domain::decompress::{decode_body, BodyError};
use ooni_domain::submission::{validate_submission, Rejected};

const GIB: usize = 1 << 30;
const CHUNK: usize = 1 << 20;
const LIMIT: usize = 2 << 20;

/// Peak resident set size of this process, in bytes (Linux).
fn peak_rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

fn zstd_bomb() -> Vec<u8> {
    let zeros = vec![0u8; CHUNK];
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    for _ in 0..GIB / CHUNK {
        enc.write_all(&zeros).unwrap();
    }
    enc.finish().unwrap()
}

fn gzip_bomb() -> Vec<u8> {
    // One member of 1 MiB of zeros, repeated: a valid multi-member gzip stream of 1 GiB.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(&vec![0u8; CHUNK]).unwrap();
    let member = enc.finish().unwrap();
    member.repeat(GIB / CHUNK)
}

#[test]
fn a_one_gib_zstd_bomb_is_refused_quickly_with_bounded_memory() {
    let bomb = zstd_bomb();
    assert!(bomb.len() < 1 << 20, "bomb is {} bytes", bomb.len());
    let start = Instant::now();
    let result = decode_body(Some("zstd"), &bomb, LIMIT);
    let elapsed = start.elapsed();
    eprintln!(
        "elapsed {elapsed:?} peak {} MiB bomb {} bytes",
        peak_rss() >> 20,
        bomb.len()
    );
    assert_eq!(result, Err(BodyError::TooLarge { limit: LIMIT }));
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    assert!(peak_rss() < 256 << 20, "peak RSS {} MiB", peak_rss() >> 20);
}

#[test]
fn a_one_gib_gzip_bomb_is_refused_quickly_with_bounded_memory() {
    let bomb = gzip_bomb();
    assert!(bomb.len() < 4 << 20, "bomb is {} bytes", bomb.len());
    let start = Instant::now();
    let result = decode_body(Some("gzip"), &bomb, LIMIT);
    let elapsed = start.elapsed();
    eprintln!(
        "elapsed {elapsed:?} peak {} MiB bomb {} bytes",
        peak_rss() >> 20,
        bomb.len()
    );
    assert_eq!(result, Err(BodyError::TooLarge { limit: LIMIT }));
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    assert!(peak_rss() < 256 << 20, "peak RSS {} MiB", peak_rss() >> 20);
}

#[test]
fn a_zstd_bomb_posted_as_a_measurement_is_a_413() {
    let bomb = zstd_bomb();
    let rid = "20230101T000000Z_webconnectivity_IT_30722_n1_abcdefghijklmnop";
    let err = validate_submission(rid, Some("zstd"), &bomb, LIMIT, chrono::Utc::now()).unwrap_err();
    assert_eq!(err, Rejected::TooLarge { limit: LIMIT });
    assert_eq!(err.status(), 413);
    assert!(peak_rss() < 256 << 20, "peak RSS {} MiB", peak_rss() >> 20);
}
