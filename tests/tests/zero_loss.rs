//! The zero-loss scenario on the real local AWS emulator and a private ClickHouse (see
//! `ooni_system_tests::scenario`). `make test` runs the short version (180 submissions);
//! `OONI_FAULT_SUBMISSIONS=5000 cargo test -p ooni-system-tests --test zero_loss -- --nocapture`
//! runs a longer one.

use ooni_system_tests::scenario::{run, ScenarioConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_measurement_is_one_row_with_its_body_and_no_failed_submission_is_half_stored(
) {
    let cfg = ScenarioConfig::from_env().unwrap_or_else(|e| panic!("{e:#}"));
    let audit = match run(&cfg).await {
        Ok(a) => a,
        Err(e) => panic!("{e:#}"),
    };
    println!("{audit}");
    assert_eq!(audit.accepted, audit.bodies_retrievable);
    assert_eq!(
        audit.rows,
        audit.accepted + audit.ghosts + audit.no_answer_stored
    );
    assert!(
        audit.accepted > 0 && audit.errored > 0,
        "faults must both let submissions through and refuse some: {audit}"
    );
    assert!(
        audit.redelivered + audit.resent > 0,
        "no message was delivered twice: {audit}"
    );
    assert!(
        audit.clickhouse_starts >= 3,
        "ClickHouse was not restarted twice: {audit}"
    );
}
