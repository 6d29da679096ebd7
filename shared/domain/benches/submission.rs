//! Throughput of `validate_submission` on one core for a real ~28 KB web_connectivity body:
//! report id checks, JSON parse of the metadata view, `is_verified` splice, uid (SHA-512).
//!
//! Run: `cargo bench -p ooni-domain --bench submission`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::Utc;
use ooni_domain::submission::{validate_submission, Outcome};
use sha2::Digest;

const BODY: &[u8] = include_bytes!("../tests/fixtures/web_connectivity_it_30722.post.json");
const RID: &str = "20240214T090617Z_webconnectivity_IT_30722_n1_1IvUiXNWHooB5rmD";
const LIMIT: usize = 10 << 20;

fn rate<F: FnMut()>(name: &str, bytes: usize, mut f: F) -> f64 {
    // Warm up, then run for about two seconds.
    for _ in 0..500 {
        f();
    }
    let mut n = 0u64;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        for _ in 0..100 {
            f();
        }
        n += 100;
    }
    let secs = start.elapsed().as_secs_f64();
    let per_s = n as f64 / secs;
    println!(
        "{name:<38} {per_s:>10.0} req/s  {:>7.2} µs/req  {:>7.0} MB/s",
        1e6 / per_s,
        per_s * bytes as f64 / 1e6
    );
    per_s
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
    rate("  sha512 of body", BODY.len(), || {
        black_box(sha2::Sha512::digest(black_box(BODY)));
    });
    rate("  (alternative) sha256 of body", BODY.len(), || {
        black_box(sha2::Sha256::digest(black_box(BODY)));
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
        "target >= {target:.0} req/s on one core: {}",
        if plain >= target { "met" } else { "NOT met" }
    );
}
