//! Commit markers: the uploader's record, in the private incoming bucket, of which chunks
//! are committed (files stored and `jsonl` rows inserted) and which incoming objects they
//! hold. They make a rerun after a crash exact:
//!
//! * the next chunk number of a group is 1 + the highest committed one, so a chunk that was
//!   being written when the run died is rewritten under the same names (same inputs, same
//!   bytes) instead of being duplicated under a new number;
//! * a marker lists its chunk's incoming keys until they are all deleted; a rerun finishes
//!   those deletes before anything else, so committed measurements are never uploaded twice;
//!   then the marker is rewritten without the keys (`deleted: true`).
//!
//! Markers expire by a lifecycle rule (see the crate docs); for hours older than
//! `marker_trust` the next chunk number also skips any chunk number already in the data
//! bucket, so an expired marker can never lead to an overwrite.

use std::collections::BTreeMap;

use bytes::Bytes;
use ooni_adapters::{ObjectStore, StoreError};
use serde::{Deserialize, Serialize};

use crate::keys::{Group, Hour};

/// One committed chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    pub v: u8,
    pub cnt: u32,
    pub postcan: String,
    pub jsonl: String,
    pub measurements: u64,
    /// True once every key below was deleted (and the list dropped).
    pub deleted: bool,
    /// Incoming keys of the chunk, until they are deleted.
    #[serde(default)]
    pub keys: Vec<String>,
}

impl Marker {
    pub fn to_bytes(&self) -> Result<Bytes, serde_json::Error> {
        serde_json::to_vec(self).map(Bytes::from)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("commit marker {key} is unreadable: {reason}")]
    BadMarker { key: String, reason: String },
}

/// The marker keys of one hour, by group directory name, then chunk number.
#[derive(Debug, Clone, Default)]
pub struct HourMarkers {
    by_dir: BTreeMap<String, BTreeMap<u32, String>>,
}

impl HourMarkers {
    /// Lists the markers of `hour` written by `collector`.
    pub async fn load(
        store: &dyn ObjectStore,
        hour: Hour,
        collector: &str,
    ) -> Result<HourMarkers, LedgerError> {
        let prefix = hour.marker_prefix();
        let suffix = format!(".n{collector}.");
        let mut by_dir: BTreeMap<String, BTreeMap<u32, String>> = BTreeMap::new();
        let mut continuation = None;
        loop {
            let page = store.list_page(&prefix, continuation).await?;
            for o in page.objects {
                let Some(rest) = o.key.strip_prefix(&prefix) else {
                    continue;
                };
                let Some(stem) = rest.strip_suffix(".json") else {
                    continue;
                };
                let Some((dir, cnt)) = stem.rsplit_once('.') else {
                    continue;
                };
                let Some(dir) = dir.strip_suffix(suffix.trim_end_matches('.')) else {
                    continue;
                };
                let Ok(cnt) = cnt.parse::<u32>() else {
                    continue;
                };
                by_dir.entry(dir.to_owned()).or_default().insert(cnt, o.key);
            }
            match page.next {
                Some(token) => continuation = Some(token),
                None => break,
            }
        }
        Ok(HourMarkers { by_dir })
    }

    /// Marker keys of `group` by chunk number.
    pub fn of(&self, group: &Group) -> Option<&BTreeMap<u32, String>> {
        self.by_dir.get(&group.dir_name())
    }
}

/// Reads one marker.
pub async fn read_marker(
    store: &dyn ObjectStore,
    key: &str,
) -> Result<Option<Marker>, LedgerError> {
    let Some(body) = store.get(key).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| LedgerError::BadMarker {
            key: key.to_owned(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::IncomingObject;
    use ooni_adapters::MemoryObjectStore;

    #[tokio::test]
    async fn markers_are_listed_per_group_and_collector() {
        let store = MemoryObjectStore::with_page_size(2);
        let g = IncomingObject::parse(
            "incoming/2024030506/2024030506_IT_webconnectivity/20240305060708.123456_IT_webconnectivity_0123456789abcdef.post",
            0,
        )
        .unwrap()
        .group;
        for key in [
            g.marker_key("1", 0),
            g.marker_key("1", 2),
            g.marker_key("2", 5),
            "uploader/committed/2024030506/2024030506_IT_web.n1.0.json".to_owned(),
            "uploader/committed/2024030506/garbage".to_owned(),
        ] {
            store.insert(&key, Bytes::from_static(b"{}"), "application/json");
        }
        let m = HourMarkers::load(&store, g.hour, "1").await.unwrap();
        let mine: Vec<u32> = m.of(&g).unwrap().keys().copied().collect();
        assert_eq!(mine, vec![0, 2]);
        let other = Group {
            test_name: "web".into(),
            ..g.clone()
        };
        assert_eq!(m.of(&other).unwrap().len(), 1);
        let m2 = HourMarkers::load(&store, g.hour, "2").await.unwrap();
        assert_eq!(
            m2.of(&g).unwrap().keys().copied().collect::<Vec<_>>(),
            vec![5]
        );
    }

    #[tokio::test]
    async fn a_marker_round_trips_and_a_corrupt_one_is_an_error() {
        let store = MemoryObjectStore::new();
        let m = Marker {
            v: 1,
            cnt: 3,
            postcan: "p".into(),
            jsonl: "j".into(),
            measurements: 2,
            deleted: false,
            keys: vec!["a".into(), "b".into()],
        };
        store.insert("m", m.to_bytes().unwrap(), "application/json");
        assert_eq!(read_marker(&store, "m").await.unwrap(), Some(m));
        assert_eq!(read_marker(&store, "missing").await.unwrap(), None);
        store.insert("bad", Bytes::from_static(b"{"), "application/json");
        assert!(matches!(
            read_marker(&store, "bad").await,
            Err(LedgerError::BadMarker { .. })
        ));
    }
}
