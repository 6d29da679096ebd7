//! Object key layout: incoming `.post` keys, the hour and (hour, cc, test name) group they
//! belong to, the data-bucket names of postcans and JSONL files, and commit-marker keys.
//!
//! * incoming: `incoming/{YYYYMMDDHH}/{YYYYMMDDHH}_{CC}_{testname}/{uid}.post`
//!   (written by the submit function, see `ooni_domain::envelope`);
//! * data: `raw/{YYYYMMDD}/{HH}/{CC}/{testname}/{YYYYMMDDHH}_{CC}_{testname}.n{collector}.{cnt}.{tar.gz|jsonl.gz}`
//!   (upstream layout, e.g. `raw/20210817/15/US/webconnectivity/2021081715_US_webconnectivity.n0.0.jsonl.gz`);
//! * commit markers (private, incoming bucket):
//!   `uploader/committed/{YYYYMMDDHH}/{YYYYMMDDHH}_{CC}_{testname}.n{collector}.{cnt}.json`.

use chrono::{DateTime, NaiveDateTime, TimeZone, Timelike, Utc};
use ooni_domain::envelope::{parse_incoming_object_key, INCOMING_PREFIX};

/// Prefix of the commit markers in the incoming bucket.
pub const MARKER_PREFIX: &str = "uploader/committed/";

/// A UTC hour (minute, second and fraction zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hour(DateTime<Utc>);

impl Hour {
    /// The hour holding `t`.
    pub fn containing(t: DateTime<Utc>) -> Hour {
        let secs = t.timestamp() - t.timestamp().rem_euclid(3600);
        Hour(
            Utc.timestamp_opt(secs, 0)
                .single()
                .unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
        )
    }

    /// Parses `YYYYMMDDHH`.
    pub fn parse(s: &str) -> Option<Hour> {
        if s.len() != 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let naive = NaiveDateTime::parse_from_str(&format!("{s}0000"), "%Y%m%d%H%M%S").ok()?;
        Some(Hour(Utc.from_utc_datetime(&naive)))
    }

    pub fn start(self) -> DateTime<Utc> {
        self.0
    }

    /// The first instant after this hour.
    pub fn end(self) -> DateTime<Utc> {
        self.0 + chrono::Duration::hours(1)
    }

    /// `YYYYMMDDHH`.
    pub fn label(self) -> String {
        self.0.format("%Y%m%d%H").to_string()
    }

    /// `incoming/{YYYYMMDDHH}/`.
    pub fn incoming_prefix(self) -> String {
        format!("{INCOMING_PREFIX}{}/", self.label())
    }

    /// `uploader/committed/{YYYYMMDDHH}/`.
    pub fn marker_prefix(self) -> String {
        format!("{MARKER_PREFIX}{}/", self.label())
    }
}

impl std::fmt::Display for Hour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label())
    }
}

/// The measurements of one hour, country and test: one incoming directory, one series of
/// postcans and JSONL files.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Group {
    pub hour: Hour,
    pub cc: String,
    /// Test name without underscores, as in the uid (`webconnectivity`).
    pub test_name: String,
}

/// One incoming object, parsed from its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingObject {
    pub key: String,
    pub size: u64,
    pub group: Group,
    pub uid: String,
}

impl IncomingObject {
    /// Parses an incoming key; `None` for anything not made by `incoming_object_key`.
    pub fn parse(key: &str, size: u64) -> Option<IncomingObject> {
        let parsed = parse_incoming_object_key(key).ok()?;
        let hour = Hour::containing(parsed.hour);
        Some(IncomingObject {
            key: key.to_owned(),
            size,
            group: Group {
                hour,
                cc: parsed.cc,
                test_name: parsed.test_name,
            },
            uid: parsed.uid.into_string(),
        })
    }
}

impl Group {
    /// `{YYYYMMDDHH}_{CC}_{testname}`, upstream's spool directory name.
    pub fn dir_name(&self) -> String {
        format!("{}_{}_{}", self.hour.label(), self.cc, self.test_name)
    }

    /// `{dir}.n{collector}`: the common stem of this group's file names.
    pub fn stem(&self, collector: &str) -> String {
        format!("{}.n{collector}", self.dir_name())
    }

    /// `raw/{YYYYMMDD}/{HH}/{CC}/{testname}/`.
    pub fn data_dir(&self) -> String {
        let label = self.hour.label();
        format!(
            "raw/{}/{}/{}/{}/",
            &label[..8],
            &label[8..10],
            self.cc,
            self.test_name
        )
    }

    /// Data-bucket key of chunk `cnt`'s postcan.
    pub fn postcan_key(&self, collector: &str, cnt: u32) -> String {
        format!("{}{}.{cnt}.tar.gz", self.data_dir(), self.stem(collector))
    }

    /// Data-bucket key of chunk `cnt`'s JSONL file.
    pub fn jsonl_key(&self, collector: &str, cnt: u32) -> String {
        format!("{}{}.{cnt}.jsonl.gz", self.data_dir(), self.stem(collector))
    }

    /// Prefix of this group's commit markers (ends with `.`, so `IT_web` never matches
    /// `IT_webconnectivity`).
    pub fn marker_prefix(&self, collector: &str) -> String {
        format!("{}{}.", self.hour.marker_prefix(), self.stem(collector))
    }

    pub fn marker_key(&self, collector: &str, cnt: u32) -> String {
        format!("{}{cnt}.json", self.marker_prefix(collector))
    }

    /// Chunk number of a marker key of this group.
    pub fn marker_cnt(&self, collector: &str, key: &str) -> Option<u32> {
        key.strip_prefix(&self.marker_prefix(collector))?
            .strip_suffix(".json")?
            .parse()
            .ok()
    }

    /// `incoming/{YYYYMMDDHH}/{dir}/`.
    pub fn incoming_prefix(&self) -> String {
        format!("{}{}/", self.hour.incoming_prefix(), self.dir_name())
    }
}

/// True when `t` is at least `grace` past the end of `hour` (nothing can still land in it).
pub fn hour_is_complete(hour: Hour, now: DateTime<Utc>, grace: chrono::Duration) -> bool {
    now >= hour.end() + grace
}

/// The hour part of an incoming key (`incoming/{YYYYMMDDHH}/...`), without full parsing.
pub fn hour_of_key(key: &str) -> Option<Hour> {
    let rest = key.strip_prefix(INCOMING_PREFIX)?;
    Hour::parse(rest.get(..10)?)
}

/// Minutes/seconds are zero (an hour boundary).
pub fn is_hour_start(t: DateTime<Utc>) -> bool {
    t.minute() == 0 && t.second() == 0 && t.nanosecond() == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "incoming/2024030506/2024030506_IT_webconnectivity/20240305060708.123456_IT_webconnectivity_0123456789abcdef.post";

    #[test]
    fn an_incoming_key_parses_into_its_group_and_uid() {
        let o = IncomingObject::parse(KEY, 42).unwrap();
        assert_eq!(o.group.hour.label(), "2024030506");
        assert!(is_hour_start(o.group.hour.start()));
        assert_eq!(o.group.cc, "IT");
        assert_eq!(o.group.test_name, "webconnectivity");
        assert_eq!(
            o.uid,
            "20240305060708.123456_IT_webconnectivity_0123456789abcdef"
        );
        assert_eq!(o.size, 42);
        assert_eq!(
            o.group.incoming_prefix(),
            "incoming/2024030506/2024030506_IT_webconnectivity/"
        );
        assert!(KEY.starts_with(&o.group.incoming_prefix()));
    }

    #[test]
    fn data_keys_follow_the_upstream_layout() {
        let g = IncomingObject::parse(KEY, 0).unwrap().group;
        assert_eq!(
            g.jsonl_key("0", 3),
            "raw/20240305/06/IT/webconnectivity/2024030506_IT_webconnectivity.n0.3.jsonl.gz"
        );
        assert_eq!(
            g.postcan_key("1", 0),
            "raw/20240305/06/IT/webconnectivity/2024030506_IT_webconnectivity.n1.0.tar.gz"
        );
    }

    #[test]
    fn marker_keys_round_trip_their_chunk_number() {
        let g = IncomingObject::parse(KEY, 0).unwrap().group;
        let k = g.marker_key("1", 12);
        assert_eq!(
            k,
            "uploader/committed/2024030506/2024030506_IT_webconnectivity.n1.12.json"
        );
        assert_eq!(g.marker_cnt("1", &k), Some(12));
        assert_eq!(g.marker_cnt("2", &k), None);
        let other = Group {
            test_name: "web".into(),
            ..g.clone()
        };
        assert_eq!(other.marker_cnt("1", &k), None);
    }

    #[test]
    fn hours_parse_and_complete_only_after_the_grace_period() {
        let h = Hour::parse("2024030506").unwrap();
        assert_eq!(h.label(), "2024030506");
        assert!(Hour::parse("2024030525").is_none());
        assert!(Hour::parse("202403050").is_none());
        assert!(Hour::parse("20240305a6").is_none());
        let grace = chrono::Duration::minutes(5);
        assert!(!hour_is_complete(h, h.end(), grace));
        assert!(!hour_is_complete(
            h,
            h.start() + chrono::Duration::minutes(30),
            grace
        ));
        assert!(hour_is_complete(h, h.end() + grace, grace));
        assert_eq!(hour_of_key(KEY), Some(h));
        assert_eq!(hour_of_key("incoming/x"), None);
    }

    #[test]
    fn foreign_keys_are_not_incoming_objects() {
        assert!(IncomingObject::parse("incoming/2024030506/junk", 0).is_none());
        assert!(IncomingObject::parse("uploader/committed/x", 0).is_none());
    }
}
