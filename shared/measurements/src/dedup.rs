//! How every read path avoids showing a measurement twice.
//!
//! The scorer consumes an at-least-once queue: after an SQS redelivery it may insert the same
//! `measurement_uid` twice. `fastpath` is a `ReplacingMergeTree(update_time)` ordered by
//! `(measurement_start_time, report_id, input, measurement_uid)`, so both copies share a
//! sorting key and a background merge eventually keeps only the newest. Until that merge runs
//! (minutes to hours, never guaranteed), plain `SELECT`s see both rows. Readers therefore:
//!
//! - **Lists, aggregations, Explorer statistics** read `fastpath FINAL`.
//!   ClickHouse (≥ 23.x) applies `FINAL` only where parts overlap in key range: merged,
//!   non-intersecting parts are read as-is, the rest are merged on the fly in parallel, and
//!   `WHERE`/`PREWHERE` on the sorting-key prefix (`measurement_start_time`) still prunes
//!   granules first. Because the table is time-ordered and old data is merged, only the recent
//!   few parts pay the merge, which keeps the overhead small on the typical (time-bounded)
//!   Explorer queries; the benchmark (`benches/queries.rs`) measures it. The alternatives were
//!   worse: `LIMIT 1 BY measurement_uid` and `uniqExact`/`argMax` need a hash table of every
//!   uid in range (memory grows with the range and they defeat read-in-order for listings),
//!   while `FINAL` keeps `ORDER BY measurement_start_time … LIMIT` streaming.
//! - **Point lookups** (`measurement_meta`, `raw_measurement`, `/measurement/{uid}`) read the
//!   matching rows and take the newest: `ORDER BY update_time DESC LIMIT 1` —
//!   the same row `FINAL` would keep, without merging anything.
//! - **`jsonl`** (body locations, also a `ReplacingMergeTree(update_time)`) is read the same
//!   way: newest matching row first.
//!
//! Tests insert a second copy of a row in its own part (a separate `INSERT`, so the engine
//! cannot collapse it on insert) and check every route still counts and lists it once.
