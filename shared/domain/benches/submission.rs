//! Throughput of `validate_submission` on one core for a real ~28 KB web_connectivity body:
//! report id checks, JSON parse of the metadata view, `is_verified` splice, uid (SHA-512).
//!
//! Run: `cargo bench -p ooni-domain --bench submission`. Each figure is per CPU-second of the
//! benchmarking thread (the machine is shared) and per wall-clock second; best of 5 rounds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../scoring/benches/support/cpu_clock.rs"]
mod cpu_clock;

use std::hint::black_box;
use std::time::Duration;

use chrono::Utc;
use ooni_domain::submission::{validate_submission, Outcome};
use sha2::Digest;

const BODY: &[u8] = include_bytes!("../tests/fixtures/web_connectivity_it_30722.post.json");
const RID: &str = "20240214T090617Z_webconnectivity_IT_30722_n1_1IvUiXNWHooB5rmD";
const LIMIT: usize = 10 << 20;

fn rate<F: FnMut()>(name: &str, bytes: usize, f: F) -> f64 {
    let r = cpu_clock::measure(5, Duration::from_millis(400), 1, f);
    println!(
        "{name:<38} {:>8.0} req/CPU-s {:>7.2} µs {:>6.0} MB/CPU-s | wall {:>8.0} req/s",
        r.cpu,
        1e6 / r.cpu,
        r.cpu * bytes as f64 / 1e6,
        r.wall
    );
    r.cpu
}

fn main() {
    println!(
        "body: {} bytes (real web_connectivity measurement)",
        BODY.len()
    );
    match validate_submission(RID, None, BODY, LIMIT, Utc::now()) {
        Ok(Outcome::Accepted(_)) => {}
        other => panic!("fixture not accepted: {other:?}"),
    }
    let zstd_body = zstd::encode_all(BODY, 3).unwrap_or_default();

    let plain = rate("validate_submission (identity)", BODY.len(), || {
        black_box(
            validate_submission(black_box(RID), None, black_box(BODY), LIMIT, Utc::now()).is_ok(),
        );
    });
    rate("validate_submission (zstd)", BODY.len(), || {
        black_box(
            validate_submission(
                black_box(RID),
                Some("zstd"),
                black_box(&zstd_body),
                LIMIT,
                Utc::now(),
            )
            .is_ok(),
        );
    });
    println!("breakdown:");
    rate("  serde_json IgnoredAny (full scan)", BODY.len(), || {
        black_box(serde_json::from_slice::<serde::de::IgnoredAny>(black_box(BODY)).is_ok());
    });
    rate("  UTF-8 check of the body", BODY.len(), || {
        black_box(std::str::from_utf8(black_box(BODY)).is_ok());
    });
    rate("  SHA-512 of body (ring, used)", BODY.len(), || {
        black_box(ring::digest::digest(&ring::digest::SHA512, black_box(BODY)));
    });
    rate("  SHA-512 of body (sha2, before)", BODY.len(), || {
        black_box(sha2::Sha512::digest(black_box(BODY)));
    });
    rate(
        "  (upstream-style) Value parse + to_vec",
        BODY.len(),
        || {
            let v: serde_json::Value = serde_json::from_slice(black_box(BODY)).unwrap_or_default();
            black_box(serde_json::to_vec(&v).map(|b| b.len()).unwrap_or(0));
        },
    );
    let target = 20_000.0;
    println!(
        "target >= {target:.0} req/s on one core (per CPU-second): {}",
        if plain >= target { "met" } else { "NOT met" }
    );
}
