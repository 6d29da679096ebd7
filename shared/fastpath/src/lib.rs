//! Fastpath (tier 0): the SQS-triggered `Scorer` function ([`FastpathService`]) and the
//! library behind `ooni fastpath score` / `ooni fastpath reprocess` ([`cli`]).
//!
//! Scoring itself is the pure `ooni-scoring` crate; this crate moves bytes: SQS envelopes and
//! the incoming bucket in, `fastpath` / `obs_openvpn` / `faulty_measurements` rows out.
//!
//! # No duplicates that users can see
//!
//! SQS delivers at least once. A message comes back when the function fails or times out
//! after its INSERT reached ClickHouse, and Lambda does not keep batches together: a message
//! can come back alone or next to different messages. `ReplacingMergeTree` (keyed to include
//! the uid) only folds the copies at some later merge, so the write path itself avoids them,
//! in three layers, each covering what the one before cannot:
//!
//! 1. **Look before writing** ([`writer::write`]). Before inserting, one lookup per table
//!    fetches the rows already stored for the batch's uids (`fastpath` and `obs_openvpn` by
//!    `measurement_start_time IN .. AND measurement_uid IN ..`, which uses the primary key;
//!    `faulty_measurements` by its `ts` range and `uid`). The Scorer drops every measurement
//!    already stored: a redelivery writes nothing, whatever batch it comes in. `fastpath` is
//!    inserted **last**, after the side tables, so a batch that failed half-way is seen as
//!    not stored and its retry completes the missing tables. GeoIP-mismatch rows get a
//!    deterministic key (`ts` = the envelope's receive time, `uid` = a UUID derived from the
//!    measurement uid) so they can be looked up too, and so two copies would share a sort key.
//! 2. **Insert deduplication tokens** ([`writer::dedup_token`]). Each INSERT carries
//!    `insert_deduplicate=1` and `insert_deduplication_token = "scorer:<table>:" +
//!    sha256(sorted uids of the rows inserted)`. ClickHouse drops an insert whose token it has
//!    seen within the table's deduplication window. This closes the race the lookup cannot:
//!    two copies of the same batch processed at the same time, or an INSERT that succeeded
//!    but whose answer was lost and is sent again. On a non-replicated `MergeTree` this works
//!    only with `non_replicated_deduplication_window` set on the table: migration
//!    `0013_insert_dedup_window` sets it to 10000 inserts on the three tables (Replicated
//!    tables deduplicate by default, `replicated_deduplication_window`).
//! 3. **Dedup-aware reads** (the measurements API's part). What neither layer covers is two
//!    *different* batches carrying the same message, processed concurrently (both look, both
//!    find nothing, tokens differ). Readers therefore use `FINAL` (or `LIMIT 1 BY
//!    measurement_uid`), which also hides the older row after a reprocess changed a score.
//!
//! Reprocessing ([`cli::reprocess`]) uses the same writer in [`writer::WriteMode::ReplaceChanged`]:
//! a row is rewritten only when it differs from the stored one, and its token also hashes the
//! rows' content, so running the same day twice writes nothing the second time, and a day
//! rescored with new fingerprints replaces only what changed (`ReplacingMergeTree(update_time)`
//! keeps the newer row; `FINAL` shows only it).

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod cli;
pub mod fingerprints;
pub mod input;
pub mod records;
pub mod scorer;
pub mod service;
pub mod store;
pub mod testing;
pub mod writer;

pub use cli::{
    reprocess, score_file, ReprocessInput, ReprocessOptions, ReprocessOutput, ReprocessSummary,
};
pub use records::{FastpathRecord, FaultyRecord, OpenvpnRecord};
pub use scorer::{Scorer, ScorerConfig};
pub use service::{FastpathService, ScorerSettings, SCORER};
pub use store::{ClickHouseRowStore, RowStore};
