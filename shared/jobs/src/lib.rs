//! Scheduled jobs and the deploy-time migration function: the `ooni-jobs` crate behind every
//! `Binary::Jobs` function except `Uploader` (crate `ooni-uploader`).
//!
//! | function | module | what it does |
//! | --- | --- | --- |
//! | `JobFingerprints` | [`fingerprints`] | blocking fingerprints CSVs → `fingerprints_{dns,http}` |
//! | `JobCitizenlab` | [`citizenlab`] | test-lists archive → `citizenlab` |
//! | `JobAsnmeta` | [`asnmeta`] | ASN history JSON → `asnmeta` |
//! | `JobGeoip` | [`geoip`] | country/ASN MMDB files → config bucket `geoip/*.mmdb` |
//! | `JobVpnCredentials` | [`vpn`] | riseup credentials → config bucket `vpn/riseupvpn.json` |
//! | `JobBackup` | [`backup`] | state tables → backup bucket; reference tables → public exports |
//! | `JobTestHelperRotation` | [`rotation`], [`rotation_tls`] | DigitalOcean test helpers, `test_helper_instances`, DNS, their ACME certificate |
//! | `Migrate` | [`migrate`] | embedded ClickHouse migrations (custom resource or plain invoke) |
//!
//! Every job is idempotent and safe to kill at any point: ClickHouse tables are replaced by
//! filling a staging twin and `EXCHANGE TABLES` ([`swap`]), bucket objects by single PUTs of
//! validated content; a failed run leaves live data untouched and a rerun finishes the work.
//! Sources are URLs from the environment ([`settings`]); runs emit EMF metrics ([`metrics`],
//! through `ooni_platform::metrics`) and structured logs. [`checkpoint`] is the hook
//! kill-safety tests use to stop a run.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod asnmeta;
pub mod backup;
pub mod checkpoint;
pub mod citizenlab;
pub mod fetch;
pub mod fingerprints;
pub mod geoip;
pub mod job;
pub mod metrics;
pub mod migrate;
pub mod rotation;
pub mod rotation_tls;
pub mod service;
pub mod settings;
pub mod swap;
pub mod vpn;

pub use job::{Job, JobEnv, JobError};
pub use service::{run_job, JobsService};
