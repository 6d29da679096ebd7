//! Hourly uploader and measurement body lookup.
//!
//! The submit function stores each accepted measurement as
//! `incoming/{YYYYMMDDHH}/{YYYYMMDDHH}_{CC}_{testname}/{uid}.post` in the private incoming
//! bucket. Once an hour is over (plus a grace period), the `Uploader` job ([`service`])
//! packs each (hour, cc, test name) group into chunks and writes, per chunk, to the public
//! data bucket with upstream's layout ([`keys`]):
//!
//! * `raw/{YYYYMMDD}/{HH}/{CC}/{testname}/{YYYYMMDDHH}_{CC}_{testname}.n{collector}.{cnt}.tar.gz`:
//!   the postcan, a tar of the `.post` objects ([`postcan`]), closed at 20 MB compressed;
//! * `….{cnt}.jsonl.gz`: one measurement `content` per line ([`content`]), written as a
//!   *seekable* sequence of gzip members of ≤ 256 KiB uncompressed each ([`seekable`]);
//!
//! then inserts one `jsonl` row per measurement (upstream columns plus `member_offset`,
//! `member_length`, `member_line`), records a commit marker ([`ledger`]) and only then
//! deletes the incoming objects ([`upload`]). [`lookup::BodyLookup`] serves bodies by uid
//! or by report id and input with one ranged GET. [`cli::upload_hour`] is the CLI entry.
//!
//! # Crash safety and duplicates
//!
//! Names are deterministic and a chunk's bytes depend only on its inputs, so a rerun after a
//! crash rewrites an unfinished chunk under the same names; commit markers make the next
//! chunk number and the pending deletes exact ([`ledger`]); `jsonl` duplicates from a rerun
//! collapse in the `ReplacingMergeTree` and readers take the newest row per key ([`index`]).
//! The job assumes one writer per collector id at a time (reserved concurrency 1).
//!
//! # Buckets: policies and lifecycle (the template declares them)
//!
//! Incoming bucket (private):
//! * Block Public Access on; bucket policy denies non-TLS requests; SSE-S3.
//! * Writers: the submit function (`PutObject` on `incoming/*`); the uploader (`GetObject`,
//!   `DeleteObject` on `incoming/*`, `ListBucket`; `PutObject`/`GetObject` on `uploader/*`).
//!   Readers: the scorer and the measurements API (`GetObject` on `incoming/*`).
//! * Lifecycle: *no* expiration on `incoming/` — an object leaves only when its upload is
//!   committed (an alarm on the age of the oldest hour catches a stuck uploader instead);
//!   expire `uploader/` (commit markers) after 90 days (markers are trusted for 60,
//!   `OONI_UPLOADER_MARKER_TRUST_DAYS`); abort incomplete multipart uploads after 1 day.
//!
//! Data bucket, `raw/` (public, like upstream's `ooni-data-eu-fra`):
//! * Bucket policy grants `s3:GetObject` on `arn:aws:s3:::{bucket}/raw/*` to `*`
//!   (anonymous HTTPS downloads and ranged GETs); Block Public Access allows that policy
//!   (`BlockPublicPolicy`/`RestrictPublicBuckets` off, ACLs blocked). Listing stays private.
//! * Only the uploader writes `raw/` (`PutObject` and multipart on `raw/*`, `GetObject` for
//!   the stale-marker check); nobody deletes — no expiration, versioning off.
//! * Lifecycle: abort incomplete multipart uploads after 1 day (a crashed run's partial
//!   uploads); optionally transition `raw/` to Intelligent-Tiering after 30 days (ranged
//!   GETs still work).

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod cli;
pub mod config;
pub mod content;
pub mod index;
pub mod keys;
pub mod ledger;
pub mod lookup;
pub mod postcan;
pub mod seekable;
pub mod service;
pub mod upload;

pub use cli::upload_hour;
pub use config::UploaderConfig;
pub use index::{BodyLocation, ClickHouseJsonl, JsonlQuery, JsonlRow, JsonlSink, MemoryJsonl};
pub use keys::{Group, Hour};
pub use lookup::{BodyLookup, LookupError};
pub use service::{UploaderJob, UploaderService, UPLOADER_FUNCTION};
pub use upload::{FaultHook, Progress, RunReport, Step, UploadError, Uploader};
