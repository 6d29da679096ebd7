//! In-memory fakes for unit tests of the Scorer and the writer: a [`RowStore`] with fault
//! injection and a [`FingerprintSource`] whose answers tests script.

use crate::fingerprints::{FingerprintSource, LoadError};
use crate::records::{FastpathRecord, FaultyRecord, OpenvpnRecord};
use crate::store::{RowKey, RowStore, StoreError};
use async_trait::async_trait;
use ooni_scoring::Fingerprints;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Default)]
struct Tables {
    fastpath: Vec<FastpathRecord>,
    openvpn: Vec<OpenvpnRecord>,
    faulty: Vec<FaultyRecord>,
    inserts: Vec<(&'static str, usize)>,
    tokens: Vec<String>,
}

/// A [`RowStore`] in memory. Like ClickHouse with `non_replicated_deduplication_window`, an
/// insert whose token was seen before on the same table is dropped.
#[derive(Default)]
pub struct MemoryRowStore {
    tables: Mutex<Tables>,
    fail_inserts: AtomicUsize,
    fail_lookups: AtomicUsize,
}

fn lock(m: &Mutex<Tables>) -> MutexGuard<'_, Tables> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn injected() -> StoreError {
    StoreError::Timeout {
        operation: "injected failure",
        after: std::time::Duration::ZERO,
    }
}

fn take(counter: &AtomicUsize) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

impl MemoryRowStore {
    /// The next `n` inserts fail.
    pub fn fail_next_inserts(&self, n: usize) {
        self.fail_inserts.store(n, Ordering::SeqCst);
    }

    /// The next `n` lookups fail.
    pub fn fail_next_lookups(&self, n: usize) {
        self.fail_lookups.store(n, Ordering::SeqCst);
    }

    pub fn fastpath_rows(&self) -> Vec<FastpathRecord> {
        lock(&self.tables).fastpath.clone()
    }

    pub fn openvpn_rows(&self) -> Vec<OpenvpnRecord> {
        lock(&self.tables).openvpn.clone()
    }

    pub fn faulty_rows(&self) -> Vec<FaultyRecord> {
        lock(&self.tables).faulty.clone()
    }

    /// Accepted inserts, in order: (table, rows).
    pub fn inserts(&self) -> Vec<(&'static str, usize)> {
        lock(&self.tables).inserts.clone()
    }

    fn insert<T: Clone>(
        &self,
        table: &'static str,
        rows: &[T],
        token: &str,
        pick: impl FnOnce(&mut Tables) -> &mut Vec<T>,
    ) -> Result<(), StoreError> {
        if take(&self.fail_inserts) {
            return Err(injected());
        }
        let mut t = lock(&self.tables);
        let key = format!("{table}/{token}");
        if t.tokens.contains(&key) {
            return Ok(());
        }
        t.tokens.push(key);
        t.inserts.push((table, rows.len()));
        pick(&mut t).extend_from_slice(rows);
        Ok(())
    }

    fn lookup(&self) -> Result<MutexGuard<'_, Tables>, StoreError> {
        if take(&self.fail_lookups) {
            return Err(injected());
        }
        Ok(lock(&self.tables))
    }
}

#[async_trait]
impl RowStore for MemoryRowStore {
    async fn current_fastpath(
        &self,
        keys: &[RowKey],
    ) -> Result<HashMap<String, FastpathRecord>, StoreError> {
        let t = self.lookup()?;
        Ok(t.fastpath
            .iter()
            .filter(|r| keys.iter().any(|k| k.measurement_uid == r.measurement_uid))
            .map(|r| (r.measurement_uid.clone(), r.clone()))
            .collect())
    }

    async fn current_openvpn(
        &self,
        keys: &[RowKey],
    ) -> Result<HashMap<String, OpenvpnRecord>, StoreError> {
        let t = self.lookup()?;
        Ok(t.openvpn
            .iter()
            .filter(|r| keys.iter().any(|k| k.measurement_uid == r.measurement_uid))
            .map(|r| (r.measurement_uid.clone(), r.clone()))
            .collect())
    }

    async fn present_faulty(&self, rows: &[FaultyRecord]) -> Result<Vec<uuid::Uuid>, StoreError> {
        let t = self.lookup()?;
        Ok(t.faulty
            .iter()
            .filter(|f| rows.iter().any(|r| r.uid == f.uid))
            .map(|f| f.uid)
            .collect())
    }

    async fn insert_fastpath(
        &self,
        rows: &[FastpathRecord],
        token: &str,
    ) -> Result<(), StoreError> {
        self.insert("fastpath", rows, token, |t| &mut t.fastpath)
    }

    async fn insert_openvpn(&self, rows: &[OpenvpnRecord], token: &str) -> Result<(), StoreError> {
        self.insert("obs_openvpn", rows, token, |t| &mut t.openvpn)
    }

    async fn insert_faulty(&self, rows: &[FaultyRecord], token: &str) -> Result<(), StoreError> {
        self.insert("faulty_measurements", rows, token, |t| &mut t.faulty)
    }
}

/// A [`FingerprintSource`] answering from a script: each load pops the next answer; when the
/// script is empty every load fails.
#[derive(Default)]
pub struct ScriptedFingerprints {
    answers: Mutex<VecDeque<Result<Fingerprints, String>>>,
    loads: AtomicUsize,
}

impl ScriptedFingerprints {
    pub fn new(answers: Vec<Result<Fingerprints, String>>) -> Arc<Self> {
        Arc::new(Self {
            answers: Mutex::new(answers.into()),
            loads: AtomicUsize::new(0),
        })
    }

    /// Appends an answer.
    pub fn push(&self, answer: Result<Fingerprints, String>) {
        self.answers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push_back(answer);
    }

    /// How many loads were attempted.
    pub fn loads(&self) -> usize {
        self.loads.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl FingerprintSource for ScriptedFingerprints {
    async fn load(&self) -> Result<Fingerprints, LoadError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        let next = self
            .answers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop_front();
        match next {
            Some(Ok(f)) => Ok(f),
            Some(Err(e)) => Err(LoadError::Other(e)),
            None => Err(LoadError::Other("no scripted answer left".into())),
        }
    }

    fn describe(&self) -> String {
        "scripted".into()
    }
}

fn at_epoch(secs: i64) -> chrono::NaiveDateTime {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .naive_utc()
}

/// A plausible `fastpath` row for `uid` (tests of the writer).
pub fn fastpath_record(uid: &str) -> FastpathRecord {
    FastpathRecord {
        measurement_uid: uid.to_owned(),
        report_id: "20240305T060708Z_webconnectivity_IT_30722_n1_abcdefghijklmnop".into(),
        input: "https://example.org/".into(),
        probe_cc: "IT".into(),
        probe_asn: 30722,
        test_name: "web_connectivity".into(),
        test_start_time: at_epoch(1_709_618_828),
        measurement_start_time: at_epoch(1_709_618_828),
        scores: "{\"blocking_general\":0.0}".into(),
        platform: "linux".into(),
        anomaly: "f".into(),
        confirmed: "f".into(),
        msm_failure: "f".into(),
        blocking_type: String::new(),
        domain: "example.org".into(),
        software_name: "ooniprobe-cli".into(),
        software_version: "3.20.0".into(),
        test_version: "0.4.3".into(),
        test_runtime: 1.5,
        architecture: "amd64".into(),
        engine_name: "ooniprobe-engine".into(),
        engine_version: "3.20.0".into(),
        test_helper_address: "https://th.ooni.org".into(),
        test_helper_type: "https".into(),
        ooni_run_link_id: None,
        is_verified: "u".into(),
    }
}
