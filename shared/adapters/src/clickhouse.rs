//! ClickHouse: connection settings (`ClickHouseConfig`), `ensure_database`, `health`, and a
//! `Migrator` that applies the `infra/migrations/*.sql` files embedded at compile time,
//! recording applied versions in `schema_migrations` so reruns are no-ops.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use clickhouse::Client;

use crate::aws::AwsClients;
use crate::secret::{Secret, SecretError};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_migrations.rs"));
}

/// Default ClickHouse HTTP endpoint (the local server).
pub const DEFAULT_URL: &str = "http://127.0.0.1:8123";
/// Default database holding the project's tables.
pub const DEFAULT_DATABASE: &str = "ooni";
/// Table recording applied migrations.
pub const MIGRATIONS_TABLE: &str = "schema_migrations";

/// ClickHouse failures.
#[derive(Debug, thiserror::Error)]
pub enum ClickHouseError {
    /// The server could not be reached or answered with an error.
    #[error("ClickHouse {operation} failed: {source}")]
    Query {
        operation: String,
        #[source]
        source: clickhouse::error::Error,
    },
    /// A database or table name that is not a plain identifier.
    #[error("invalid ClickHouse identifier {0:?}: use letters, digits and underscores")]
    InvalidIdentifier(String),
    /// A migration file that does not follow the naming rule, or two with one version.
    #[error("invalid migration {file}: {message}")]
    InvalidMigration { file: String, message: String },
    /// A statement of a migration failed; the migration is not recorded as applied.
    #[error("migration {version} ({name}) statement {statement} failed: {source}")]
    MigrationFailed {
        version: u32,
        name: String,
        statement: usize,
        #[source]
        source: clickhouse::error::Error,
    },
    /// The password could not be loaded.
    #[error(transparent)]
    Secret(#[from] SecretError),
}

fn query_err(
    operation: impl Into<String>,
) -> impl FnOnce(clickhouse::error::Error) -> ClickHouseError {
    let operation = operation.into();
    move |source| ClickHouseError::Query { operation, source }
}

/// How to reach ClickHouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickHouseConfig {
    /// HTTP(S) endpoint, e.g. `http://127.0.0.1:8123`.
    pub url: String,
    pub user: String,
    pub password: Secret,
    /// Database the project's tables live in.
    pub database: String,
}

impl ClickHouseConfig {
    /// Settings for `url` with user `default`, no password and database `database`.
    pub fn new(url: impl Into<String>, database: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            user: "default".into(),
            password: Secret::default(),
            database: database.into(),
        }
    }

    /// Settings from variables read through `lookup`: `OONI_CLICKHOUSE_URL`,
    /// `OONI_CLICKHOUSE_USER`, `OONI_CLICKHOUSE_PASSWORD`, `OONI_CLICKHOUSE_DATABASE`
    /// (defaults: local server, `default`, empty, `ooni`). Does not consult SSM.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |k: &str| lookup(k).filter(|v| !v.is_empty());
        Self {
            url: get("OONI_CLICKHOUSE_URL").unwrap_or_else(|| DEFAULT_URL.into()),
            user: get("OONI_CLICKHOUSE_USER").unwrap_or_else(|| "default".into()),
            password: get("OONI_CLICKHOUSE_PASSWORD")
                .map(Secret::from)
                .unwrap_or_default(),
            database: get("OONI_CLICKHOUSE_DATABASE").unwrap_or_else(|| DEFAULT_DATABASE.into()),
        }
    }

    /// Settings from the process environment, the password also from SSM when
    /// `OONI_CLICKHOUSE_PASSWORD_SSM_PARAMETER` is set. A password that is not configured
    /// at all is empty (the local server needs none).
    pub async fn load(aws: &AwsClients) -> Result<Self, ClickHouseError> {
        let mut config = Self::from_lookup(|k| std::env::var(k).ok());
        match aws.load_secret("OONI_CLICKHOUSE_PASSWORD").await {
            Ok(secret) => config.password = secret,
            Err(SecretError::Missing { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(config)
    }

    fn base_client(&self) -> Client {
        let client = Client::default().with_url(&self.url).with_user(&self.user);
        if self.password.is_empty() {
            client
        } else {
            client.with_password(self.password.expose())
        }
    }

    /// A client whose queries run in [`ClickHouseConfig::database`].
    pub fn client(&self) -> Client {
        self.base_client().with_database(&self.database)
    }

    /// A client on the always-present `default` database, for creating others.
    pub fn admin_client(&self) -> Client {
        self.base_client().with_database("default")
    }

    /// Creates [`ClickHouseConfig::database`] if it does not exist.
    pub async fn ensure_database(&self) -> Result<(), ClickHouseError> {
        ensure_database(&self.admin_client(), &self.database).await
    }
}

/// True when `name` is a plain identifier (letters, digits, `_`, not starting with a digit).
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Creates database `name` if it does not exist. `client` must point at an existing
/// database (see [`ClickHouseConfig::admin_client`]).
pub async fn ensure_database(client: &Client, name: &str) -> Result<(), ClickHouseError> {
    if !is_identifier(name) {
        return Err(ClickHouseError::InvalidIdentifier(name.to_owned()));
    }
    client
        .query_raw(&format!("CREATE DATABASE IF NOT EXISTS {name}"))
        .execute()
        .await
        .map_err(query_err(format!("CREATE DATABASE {name}")))
}

/// Checks the server answers `SELECT 1`.
pub async fn health(client: &Client) -> Result<(), ClickHouseError> {
    let one: u8 = client
        .query_raw("SELECT 1")
        .fetch_one()
        .await
        .map_err(query_err("health check"))?;
    if one == 1 {
        Ok(())
    } else {
        Err(ClickHouseError::Query {
            operation: "health check".into(),
            source: clickhouse::error::Error::Custom(format!("SELECT 1 returned {one}")),
        })
    }
}

/// One migration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// Leading digits of the file name.
    pub version: u32,
    /// File name without the version, the separating `_` and `.sql`.
    pub name: String,
    /// Statements, in order, without trailing `;`.
    pub statements: Vec<String>,
}

impl Migration {
    /// Parses `NNNN_name.sql` and its contents. Statements are separated by a line holding
    /// only `;`; a file without such a line is one statement. A trailing `;` is dropped and
    /// parts holding only blank lines and `--` comments are skipped.
    pub fn parse(file_name: &str, sql: &str) -> Result<Self, ClickHouseError> {
        let invalid = |message: &str| ClickHouseError::InvalidMigration {
            file: file_name.to_owned(),
            message: message.to_owned(),
        };
        let stem = file_name
            .strip_suffix(".sql")
            .ok_or_else(|| invalid("name must end in .sql"))?;
        let digits: String = stem.chars().take_while(char::is_ascii_digit).collect();
        if digits.is_empty() {
            return Err(invalid(
                "name must start with a version number, e.g. 0001_create.sql",
            ));
        }
        let version: u32 = digits
            .parse()
            .map_err(|_| invalid("version does not fit in u32"))?;
        let rest = &stem[digits.len()..];
        let name = rest.strip_prefix('_').unwrap_or(rest).to_owned();
        let statements = split_statements(sql);
        if statements.is_empty() {
            return Err(invalid("file holds no statement"));
        }
        Ok(Self {
            version,
            name,
            statements,
        })
    }
}

fn split_statements(sql: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    for line in sql.lines() {
        if line.trim() == ";" {
            parts.push(String::new());
        } else if let Some(current) = parts.last_mut() {
            current.push_str(line);
            current.push('\n');
        }
    }
    parts
        .into_iter()
        .map(|p| p.trim().trim_end_matches(';').trim_end().to_owned())
        .filter(|p| {
            p.lines().any(|l| {
                let l = l.trim();
                !l.is_empty() && !l.starts_with("--")
            })
        })
        .collect()
}

/// A row of `schema_migrations`.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, serde::Deserialize)]
pub struct AppliedMigration {
    pub version: u32,
    pub name: String,
    #[serde(with = "clickhouse::serde::chrono::datetime")]
    pub applied_at: DateTime<Utc>,
}

/// What a `migrate` run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// Versions applied by this run, in order.
    pub applied: Vec<u32>,
    /// Versions found already applied.
    pub already_applied: Vec<u32>,
}

/// Applies migrations in version order, each at most once per database.
///
/// Not safe to run concurrently against one database (two runs may both apply a
/// migration): run it from one place (the CLI or a deploy step). A migration whose
/// statement fails is not recorded; statements before the failing one stay applied, so
/// write them idempotently (`IF NOT EXISTS`).
#[derive(Debug, Clone)]
pub struct Migrator {
    migrations: Vec<Migration>,
}

impl Migrator {
    /// The migrations compiled into this binary from `infra/migrations/`.
    pub fn embedded() -> Result<Self, ClickHouseError> {
        Self::from_files(embedded::EMBEDDED_MIGRATIONS.iter().copied())
    }

    /// Migrations from `(file name, contents)` pairs.
    pub fn from_files<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ClickHouseError> {
        let mut migrations = Vec::new();
        for (file, sql) in files {
            migrations.push(Migration::parse(file, sql)?);
        }
        migrations.sort_by_key(|m| m.version);
        for pair in migrations.windows(2) {
            if pair[0].version == pair[1].version {
                return Err(ClickHouseError::InvalidMigration {
                    file: format!("{}_{}", pair[1].version, pair[1].name),
                    message: format!("version {} is used twice", pair[1].version),
                });
            }
        }
        Ok(Self { migrations })
    }

    pub fn migrations(&self) -> &[Migration] {
        &self.migrations
    }

    /// Creates `schema_migrations` in the client's database if needed.
    async fn ensure_table(client: &Client) -> Result<(), ClickHouseError> {
        client
            .query_raw(&format!(
                "CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} \
                 (version UInt32, name String, applied_at DateTime) \
                 ENGINE = MergeTree ORDER BY version"
            ))
            .execute()
            .await
            .map_err(query_err(format!("CREATE TABLE {MIGRATIONS_TABLE}")))
    }

    /// The rows of `schema_migrations` in the client's database, by version.
    pub async fn applied(client: &Client) -> Result<Vec<AppliedMigration>, ClickHouseError> {
        Self::ensure_table(client).await?;
        client
            .query_raw(&format!(
                "SELECT version, name, applied_at FROM {MIGRATIONS_TABLE} ORDER BY version"
            ))
            .fetch_all::<AppliedMigration>()
            .await
            .map_err(query_err(format!("SELECT FROM {MIGRATIONS_TABLE}")))
    }

    /// Applies, in version order, every migration not yet recorded in the client's database.
    pub async fn migrate(&self, client: &Client) -> Result<MigrationReport, ClickHouseError> {
        let done: BTreeSet<u32> = Self::applied(client)
            .await?
            .iter()
            .map(|m| m.version)
            .collect();
        if let Some(newest) = done.last() {
            if self.migrations.last().is_none_or(|m| m.version < *newest) {
                tracing::warn!(
                    newest,
                    "database has migrations newer than this binary knows"
                );
            }
        }
        let mut report = MigrationReport::default();
        for migration in &self.migrations {
            if done.contains(&migration.version) {
                report.already_applied.push(migration.version);
                continue;
            }
            for (index, statement) in migration.statements.iter().enumerate() {
                client
                    .query_raw(statement)
                    .execute()
                    .await
                    .map_err(|source| ClickHouseError::MigrationFailed {
                        version: migration.version,
                        name: migration.name.clone(),
                        statement: index + 1,
                        source,
                    })?;
            }
            client
                .query(&format!(
                    "INSERT INTO {MIGRATIONS_TABLE} (version, name, applied_at) VALUES (?, ?, now())"
                ))
                .bind(migration.version)
                .bind(migration.name.as_str())
                .execute()
                .await
                .map_err(query_err(format!("record migration {}", migration.version)))?;
            tracing::info!(version = migration.version, name = %migration.name, "migration applied");
            report.applied.push(migration.version);
        }
        Ok(report)
    }

    /// Creates the configured database if needed, then migrates it.
    pub async fn migrate_config(
        &self,
        config: &ClickHouseConfig,
    ) -> Result<MigrationReport, ClickHouseError> {
        config.ensure_database().await?;
        self.migrate(&config.client()).await
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn embedded_migrations_parse_with_unique_versions() {
        let migrator = Migrator::embedded();
        assert!(migrator.is_ok(), "{:?}", migrator.err());
        let count = migrator.map(|m| m.migrations().len()).unwrap_or_default();
        assert_eq!(count, embedded::EMBEDDED_MIGRATIONS.len());
    }

    #[test]
    fn every_sql_file_in_infra_migrations_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/migrations");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                    .filter(|n| n.ends_with(".sql"))
                    .collect()
            })
            .unwrap_or_default();
        on_disk.sort();
        let embedded: Vec<&str> = embedded::EMBEDDED_MIGRATIONS
            .iter()
            .map(|(n, _)| *n)
            .collect();
        assert_eq!(embedded, on_disk);
    }

    #[test]
    fn file_name_gives_version_and_name() {
        let m = Migration::parse(
            "0007_create_fastpath.sql",
            "CREATE TABLE t (a UInt8) ENGINE = Memory;\n",
        );
        let m = m.ok();
        assert_eq!(m.as_ref().map(|m| m.version), Some(7));
        assert_eq!(m.as_ref().map(|m| m.name.as_str()), Some("create_fastpath"));
        assert_eq!(
            m.map(|m| m.statements),
            Some(vec!["CREATE TABLE t (a UInt8) ENGINE = Memory".to_owned()])
        );
    }

    #[test]
    fn statements_are_split_on_lines_holding_only_a_semicolon() {
        let sql = "-- header comment\nCREATE TABLE a (x UInt8)\nENGINE = Memory\n;\n\n  ;  \nCREATE TABLE b (s String DEFAULT ';') ENGINE = Memory;\n;\n-- trailing comment only\n";
        assert_eq!(
            split_statements(sql),
            vec![
                "-- header comment\nCREATE TABLE a (x UInt8)\nENGINE = Memory".to_owned(),
                "CREATE TABLE b (s String DEFAULT ';') ENGINE = Memory".to_owned(),
            ]
        );
    }

    #[test]
    fn badly_named_or_duplicate_migrations_are_rejected() {
        assert!(Migration::parse("create.sql", "SELECT 1").is_err());
        assert!(Migration::parse("0001_a.txt", "SELECT 1").is_err());
        assert!(Migration::parse("0001_a.sql", "-- nothing\n").is_err());
        let dup = Migrator::from_files([("0001_a.sql", "SELECT 1"), ("1_b.sql", "SELECT 2")]);
        assert!(matches!(dup, Err(ClickHouseError::InvalidMigration { .. })));
    }

    #[test]
    fn migrations_are_ordered_by_numeric_version_not_file_name() {
        let m = Migrator::from_files([("10_b.sql", "SELECT 1"), ("9_a.sql", "SELECT 1")]);
        let versions: Vec<u32> = m
            .map(|m| m.migrations().iter().map(|x| x.version).collect())
            .unwrap_or_default();
        assert_eq!(versions, vec![9, 10]);
    }

    #[test]
    fn config_from_lookup_uses_defaults_and_redacts_the_password() {
        let c = ClickHouseConfig::from_lookup(|k| {
            (k == "OONI_CLICKHOUSE_PASSWORD").then(|| "pw".into())
        });
        assert_eq!(c.url, DEFAULT_URL);
        assert_eq!(c.database, DEFAULT_DATABASE);
        assert_eq!(c.password.expose(), "pw");
        assert!(!format!("{c:?}").contains("pw\""));
    }

    #[test]
    fn identifiers_exclude_quotes_and_spaces() {
        assert!(is_identifier("ooni_test_1"));
        assert!(!is_identifier("1abc"));
        assert!(!is_identifier("a b"));
        assert!(!is_identifier("a`; DROP"));
        assert!(!is_identifier(""));
    }
}
