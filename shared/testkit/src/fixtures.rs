//! Fixture data every crate's tests share, kept in one place: the seed files `ooni seed` loads
//! (sources in `infra/seed/SOURCES.md`).

/// 641 real citizenlab rows as `INSERT` statements (upstream measurements-service fixture).
pub const CITIZENLAB_SQL: &str = include_str!("../../../infra/seed/citizenlab.sql");
