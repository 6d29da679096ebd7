//! ClickHouse against the local server: health, ensure_database, and the Migrator applying
//! migrations once (a second run is a no-op) and recording them in schema_migrations.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use ooni_adapters::clickhouse::{ensure_database, health, MIGRATIONS_TABLE};
use ooni_adapters::{ClickHouseConfig, ClickHouseError, Migrator};

const FIRST: &str = "-- two statements separated by a line holding only ;\n\
CREATE TABLE IF NOT EXISTS widgets (id UInt32, name String) ENGINE = MergeTree ORDER BY id\n\
;\n\
INSERT INTO widgets VALUES (1, 'a?b'), (2, 'c;d')\n";
const SECOND: &str = "ALTER TABLE widgets ADD COLUMN IF NOT EXISTS colour String DEFAULT 'red';\n";

async fn count(config: &ClickHouseConfig, sql: &str) -> u64 {
    config
        .client()
        .query_raw(sql)
        .fetch_one::<u64>()
        .await
        .expect("count query")
}

async fn drop_database(config: &ClickHouseConfig) {
    config
        .admin_client()
        .query_raw(&format!("DROP DATABASE IF EXISTS {}", config.database))
        .execute()
        .await
        .expect("drop test database");
}

#[tokio::test]
async fn health_check_answers_on_the_running_server() {
    let config = common::clickhouse("ooni_t_health").await;
    health(&config.admin_client()).await.expect("SELECT 1");
}

#[tokio::test]
async fn health_check_fails_when_nothing_listens() {
    let config = ClickHouseConfig::new("http://127.0.0.1:9", "default");
    let err = health(&config.admin_client())
        .await
        .expect_err("no server on port 9");
    assert!(matches!(err, ClickHouseError::Query { .. }), "{err}");
}

#[tokio::test]
async fn ensure_database_creates_once_and_tolerates_reruns() {
    let config = common::clickhouse("ooni_t_db").await;
    config.ensure_database().await.expect("create");
    ensure_database(&config.admin_client(), &config.database)
        .await
        .expect("rerun");
    let exists = count(
        &config,
        &format!(
            "SELECT count() FROM system.databases WHERE name = '{}'",
            config.database
        ),
    )
    .await;
    assert_eq!(exists, 1);
    let bad = ensure_database(&config.admin_client(), "x; DROP DATABASE default").await;
    assert!(matches!(bad, Err(ClickHouseError::InvalidIdentifier(_))));
    drop_database(&config).await;
}

#[tokio::test]
async fn migrating_twice_applies_each_migration_once_and_records_it() {
    let config = common::clickhouse("ooni_t_mig").await;
    let migrator =
        Migrator::from_files([("0002_add_colour.sql", SECOND), ("0001_widgets.sql", FIRST)])
            .expect("parse");

    let first = migrator.migrate_config(&config).await.expect("first run");
    assert_eq!(first.applied, vec![1, 2]);
    assert!(first.already_applied.is_empty());

    let second = migrator.migrate_config(&config).await.expect("second run");
    assert!(
        second.applied.is_empty(),
        "second run applied {:?}",
        second.applied
    );
    assert_eq!(second.already_applied, vec![1, 2]);

    // The INSERT ran once, with its `?` and `;` inside literals intact.
    assert_eq!(count(&config, "SELECT count() FROM widgets").await, 2);
    assert_eq!(
        count(
            &config,
            "SELECT count() FROM widgets WHERE name = 'a?b' AND colour = 'red'"
        )
        .await,
        1
    );
    assert_eq!(
        count(&config, "SELECT count() FROM widgets WHERE name = 'c;d'").await,
        1
    );

    let rows = Migrator::applied(&config.client())
        .await
        .expect("applied rows");
    let summary: Vec<(u32, &str)> = rows.iter().map(|r| (r.version, r.name.as_str())).collect();
    assert_eq!(summary, vec![(1, "widgets"), (2, "add_colour")]);
    let age = chrono::Utc::now() - rows[0].applied_at;
    assert!(
        age.num_seconds().abs() < 300,
        "applied_at is now-ish: {}",
        rows[0].applied_at
    );
    assert_eq!(
        count(&config, &format!("SELECT count() FROM {MIGRATIONS_TABLE}")).await,
        2
    );

    // A later migration is picked up by a later run.
    let more = Migrator::from_files([
        ("0001_widgets.sql", FIRST),
        ("0002_add_colour.sql", SECOND),
        (
            "0003_gadgets.sql",
            "CREATE TABLE IF NOT EXISTS gadgets (id UInt32) ENGINE = MergeTree ORDER BY id",
        ),
    ])
    .expect("parse");
    let third = more.migrate(&config.client()).await.expect("third run");
    assert_eq!(third.applied, vec![3]);
    drop_database(&config).await;
}

#[tokio::test]
async fn a_failing_migration_is_not_recorded_and_stops_the_run() {
    let config = common::clickhouse("ooni_t_fail").await;
    let migrator = Migrator::from_files([
        (
            "1_ok.sql",
            "CREATE TABLE IF NOT EXISTS ok (id UInt32) ENGINE = MergeTree ORDER BY id",
        ),
        (
            "2_broken.sql",
            "CREATE TABLE broken (id NoSuchType) ENGINE = MergeTree ORDER BY id",
        ),
        (
            "3_never.sql",
            "CREATE TABLE never (id UInt32) ENGINE = MergeTree ORDER BY id",
        ),
    ])
    .expect("parse");
    let err = migrator
        .migrate_config(&config)
        .await
        .expect_err("migration 2 fails");
    assert!(
        matches!(
            err,
            ClickHouseError::MigrationFailed {
                version: 2,
                statement: 1,
                ..
            }
        ),
        "{err}"
    );
    let versions: Vec<u32> = Migrator::applied(&config.client())
        .await
        .expect("rows")
        .iter()
        .map(|r| r.version)
        .collect();
    assert_eq!(versions, vec![1]);
    let never = count(
        &config,
        &format!(
            "SELECT count() FROM system.tables WHERE database = '{}' AND name = 'never'",
            config.database
        ),
    )
    .await;
    assert_eq!(never, 0);
    drop_database(&config).await;
}

#[tokio::test]
async fn the_embedded_migrations_apply_to_a_fresh_database_and_rerun_as_no_ops() {
    let config = common::clickhouse("ooni_t_embedded").await;
    let migrator = Migrator::embedded().expect("embedded migrations parse");
    let total = migrator.migrations().len();
    let first = migrator.migrate_config(&config).await.expect("first run");
    assert_eq!(first.applied.len(), total);
    let second = migrator.migrate_config(&config).await.expect("second run");
    assert!(second.applied.is_empty());
    assert_eq!(second.already_applied.len(), total);
    let recorded: Vec<(u32, String)> = Migrator::applied(&config.client())
        .await
        .expect("rows")
        .into_iter()
        .map(|r| (r.version, r.name))
        .collect();
    let expected: Vec<(u32, String)> = migrator
        .migrations()
        .iter()
        .map(|m| (m.version, m.name.clone()))
        .collect();
    assert_eq!(recorded, expected);
    // Every migration created something: more tables than the bookkeeping one.
    let tables = count(
        &config,
        &format!(
            "SELECT count() FROM system.tables WHERE database = '{}'",
            config.database
        ),
    )
    .await;
    assert!(
        total == 0 || tables > 1,
        "{tables} tables after {total} migrations"
    );
    drop_database(&config).await;
}
