//! Writing a batch of rows so that redelivery and reprocessing leave one row per measurement:
//! drop in-batch repeats, drop what is already stored, then one INSERT per table with a
//! deterministic `insert_deduplication_token`, side tables first and `fastpath` last.
//!
//! See the crate documentation for why each step exists.

use crate::records::{FastpathRecord, FaultyRecord, OpenvpnRecord};
use crate::store::{RowKey, RowStore, StoreError};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};

/// Rows of one batch, at most one measurement's worth per uid after [`write`] dedups them.
#[derive(Debug, Clone, Default)]
pub struct RowBatch {
    pub fastpath: Vec<FastpathRecord>,
    pub openvpn: Vec<OpenvpnRecord>,
    pub faulty: Vec<FaultyRecord>,
}

impl RowBatch {
    pub fn is_empty(&self) -> bool {
        self.fastpath.is_empty() && self.openvpn.is_empty() && self.faulty.is_empty()
    }
}

/// What to do with a measurement that already has a stored row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// The Scorer: a stored row means this is a redelivery; write nothing for it.
    SkipExisting,
    /// Reprocessing: rewrite a row only when it differs from the stored one (new scoring or
    /// fingerprints); the newer row wins through `ReplacingMergeTree(update_time)`.
    ReplaceChanged,
}

/// Rows written and rows left out because an equal (or, for the Scorer, any) row is stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteReport {
    pub fastpath_written: usize,
    pub fastpath_skipped: usize,
    pub openvpn_written: usize,
    pub openvpn_skipped: usize,
    pub faulty_written: usize,
    pub faulty_skipped: usize,
}

impl WriteReport {
    pub fn add(&mut self, o: &WriteReport) {
        self.fastpath_written += o.fastpath_written;
        self.fastpath_skipped += o.fastpath_skipped;
        self.openvpn_written += o.openvpn_written;
        self.openvpn_skipped += o.openvpn_skipped;
        self.faulty_written += o.faulty_written;
        self.faulty_skipped += o.faulty_skipped;
    }
}

/// Keeps the last row of each key, in first-seen order.
fn last_per_key<T, K: std::hash::Hash + Eq + Clone>(rows: Vec<T>, key: impl Fn(&T) -> K) -> Vec<T> {
    let mut index: HashMap<K, usize> = HashMap::with_capacity(rows.len());
    let mut out: Vec<T> = Vec::with_capacity(rows.len());
    for r in rows {
        match index.get(&key(&r)) {
            Some(&i) => out[i] = r,
            None => {
                index.insert(key(&r), out.len());
                out.push(r);
            }
        }
    }
    out
}

/// `insert_deduplication_token` of an insert: `prefix:table:` + hex sha256 over the sorted
/// uids, plus each row's content when `with_content` (so a changed row is never mistaken for
/// an already-inserted block).
pub fn dedup_token<T: Serialize>(
    prefix: &str,
    table: &str,
    rows: &[T],
    uid: impl Fn(&T) -> String,
    with_content: bool,
) -> String {
    let mut entries: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            let content = if with_content {
                serde_json::to_string(r).unwrap_or_default()
            } else {
                String::new()
            };
            (uid(r), content)
        })
        .collect();
    entries.sort();
    let mut h = Sha256::new();
    for (uid, content) in &entries {
        h.update(uid.as_bytes());
        h.update([0u8]);
        h.update(content.as_bytes());
        h.update([b'\n']);
    }
    format!("{prefix}:{table}:{}", hex::encode(h.finalize()))
}

fn keys_of<'a>(rows: impl Iterator<Item = (&'a str, chrono::NaiveDateTime)>) -> Vec<RowKey> {
    rows.map(|(uid, t)| RowKey {
        measurement_uid: uid.to_owned(),
        measurement_start_time: ooni_scoring::epoch_seconds(t),
    })
    .collect()
}

/// Writes `batch` through `store` (see the module doc). `token_prefix` namespaces the
/// deduplication tokens of one writer (e.g. `scorer`, `reprocess`).
///
/// On error nothing can be assumed about which tables were written: the caller retries the
/// whole batch, and the lookups make the retry write only what is missing.
pub async fn write(
    store: &dyn RowStore,
    batch: RowBatch,
    mode: WriteMode,
    token_prefix: &str,
) -> Result<WriteReport, StoreError> {
    let mut report = WriteReport::default();
    let fastpath = last_per_key(batch.fastpath, |r| r.measurement_uid.clone());
    let openvpn = last_per_key(batch.openvpn, |r| r.measurement_uid.clone());
    let faulty = last_per_key(batch.faulty, |r| r.uid);

    let fp_keys = keys_of(
        fastpath
            .iter()
            .map(|r| (r.measurement_uid.as_str(), r.measurement_start_time)),
    );
    let ov_keys = keys_of(
        openvpn
            .iter()
            .map(|r| (r.measurement_uid.as_str(), r.measurement_start_time)),
    );
    let (stored_fp, stored_ov, stored_faulty) = tokio::try_join!(
        store.current_fastpath(&fp_keys),
        store.current_openvpn(&ov_keys),
        store.present_faulty(&faulty),
    )?;

    let keep = |stored: Option<bool>| -> bool {
        // stored: None = absent, Some(equal)
        match (mode, stored) {
            (_, None) => true,
            (WriteMode::SkipExisting, Some(_)) => false,
            (WriteMode::ReplaceChanged, Some(equal)) => !equal,
        }
    };
    let fastpath: Vec<FastpathRecord> = fastpath
        .into_iter()
        .filter(|r| keep(stored_fp.get(&r.measurement_uid).map(|s| s == r)))
        .collect();
    let openvpn_total = openvpn.len();
    let openvpn: Vec<OpenvpnRecord> = openvpn
        .into_iter()
        .filter(|r| keep(stored_ov.get(&r.measurement_uid).map(|s| s == r)))
        .collect();
    let stored_faulty: HashSet<uuid::Uuid> = stored_faulty.into_iter().collect();
    let faulty_total = faulty.len();
    let faulty: Vec<FaultyRecord> = faulty
        .into_iter()
        .filter(|r| !stored_faulty.contains(&r.uid))
        .collect();

    let with_content = mode == WriteMode::ReplaceChanged;
    // Side tables first: `fastpath` is what a retry looks at first, so it is written last.
    if !faulty.is_empty() {
        let token = dedup_token(
            token_prefix,
            "faulty_measurements",
            &faulty,
            |r| r.uid.to_string(),
            with_content,
        );
        store.insert_faulty(&faulty, &token).await?;
    }
    if !openvpn.is_empty() {
        let token = dedup_token(
            token_prefix,
            "obs_openvpn",
            &openvpn,
            |r| r.measurement_uid.clone(),
            with_content,
        );
        store.insert_openvpn(&openvpn, &token).await?;
    }
    if !fastpath.is_empty() {
        let token = dedup_token(
            token_prefix,
            "fastpath",
            &fastpath,
            |r| r.measurement_uid.clone(),
            with_content,
        );
        store.insert_fastpath(&fastpath, &token).await?;
    }
    report.fastpath_written = fastpath.len();
    report.fastpath_skipped = fp_keys.len() - fastpath.len();
    report.openvpn_written = openvpn.len();
    report.openvpn_skipped = openvpn_total - openvpn.len();
    report.faulty_written = faulty.len();
    report.faulty_skipped = faulty_total - faulty.len();
    Ok(report)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::testing::{fastpath_record, MemoryRowStore};

    #[tokio::test]
    async fn a_repeated_uid_in_one_batch_is_written_once() {
        let store = MemoryRowStore::default();
        let batch = RowBatch {
            fastpath: vec![
                fastpath_record("a"),
                fastpath_record("b"),
                fastpath_record("a"),
            ],
            ..Default::default()
        };
        let report = write(&store, batch, WriteMode::SkipExisting, "t")
            .await
            .unwrap();
        assert_eq!(report.fastpath_written, 2);
        assert_eq!(store.fastpath_rows().len(), 2);
    }

    #[tokio::test]
    async fn skip_existing_writes_only_the_measurements_not_yet_stored() {
        let store = MemoryRowStore::default();
        write(
            &store,
            RowBatch {
                fastpath: vec![fastpath_record("a")],
                ..Default::default()
            },
            WriteMode::SkipExisting,
            "t",
        )
        .await
        .unwrap();
        let mut changed = fastpath_record("a");
        changed.scores = "{\"x\":1}".into();
        let report = write(
            &store,
            RowBatch {
                fastpath: vec![changed, fastpath_record("b")],
                ..Default::default()
            },
            WriteMode::SkipExisting,
            "t",
        )
        .await
        .unwrap();
        assert_eq!((report.fastpath_written, report.fastpath_skipped), (1, 1));
        assert_eq!(store.fastpath_rows().len(), 2);
        assert_eq!(store.inserts(), vec![("fastpath", 1), ("fastpath", 1)]);
    }

    #[tokio::test]
    async fn replace_changed_rewrites_only_rows_that_differ() {
        let store = MemoryRowStore::default();
        let batch = || RowBatch {
            fastpath: vec![fastpath_record("a"), fastpath_record("b")],
            ..Default::default()
        };
        write(&store, batch(), WriteMode::ReplaceChanged, "r")
            .await
            .unwrap();
        let again = write(&store, batch(), WriteMode::ReplaceChanged, "r")
            .await
            .unwrap();
        assert_eq!((again.fastpath_written, again.fastpath_skipped), (0, 2));
        let mut b = batch();
        b.fastpath[1].scores = "{\"changed\":true}".into();
        let third = write(&store, b, WriteMode::ReplaceChanged, "r")
            .await
            .unwrap();
        assert_eq!((third.fastpath_written, third.fastpath_skipped), (1, 1));
    }

    #[tokio::test]
    async fn side_tables_are_inserted_before_fastpath() {
        let store = MemoryRowStore::default();
        let geo = crate::records::ClientGeo {
            cc: Some("US".into()),
            asn: None,
        };
        let row = fastpath_record("a");
        let faulty = crate::records::geoip_mismatch(&row, &geo, chrono::Utc::now()).unwrap();
        write(
            &store,
            RowBatch {
                fastpath: vec![row],
                faulty: vec![faulty],
                ..Default::default()
            },
            WriteMode::SkipExisting,
            "t",
        )
        .await
        .unwrap();
        assert_eq!(
            store.inserts(),
            vec![("faulty_measurements", 1), ("fastpath", 1)]
        );
    }

    #[tokio::test]
    async fn a_failed_insert_is_reported_and_a_retry_writes_what_is_missing() {
        let store = MemoryRowStore::default();
        store.fail_next_inserts(1);
        let batch = || RowBatch {
            fastpath: vec![fastpath_record("a")],
            ..Default::default()
        };
        assert!(write(&store, batch(), WriteMode::SkipExisting, "t")
            .await
            .is_err());
        assert!(store.fastpath_rows().is_empty());
        let report = write(&store, batch(), WriteMode::SkipExisting, "t")
            .await
            .unwrap();
        assert_eq!(report.fastpath_written, 1);
    }

    #[test]
    fn tokens_depend_on_the_set_of_uids_not_their_order() {
        let a = [fastpath_record("a"), fastpath_record("b")];
        let b = [fastpath_record("b"), fastpath_record("a")];
        let uid = |r: &FastpathRecord| r.measurement_uid.clone();
        assert_eq!(
            dedup_token("s", "fastpath", &a, uid, false),
            dedup_token("s", "fastpath", &b, uid, false)
        );
        assert_ne!(
            dedup_token("s", "fastpath", &a, uid, false),
            dedup_token("s", "fastpath", &a[..1], uid, false)
        );
        let mut c = a.clone();
        c[0].scores = "{}x".into();
        assert_eq!(
            dedup_token("s", "fastpath", &a, uid, false),
            dedup_token("s", "fastpath", &c, uid, false)
        );
        assert_ne!(
            dedup_token("s", "fastpath", &a, uid, true),
            dedup_token("s", "fastpath", &c, uid, true)
        );
        assert!(dedup_token("s", "fastpath", &a, uid, false).starts_with("s:fastpath:"));
    }
}
