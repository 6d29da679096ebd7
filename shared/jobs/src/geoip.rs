//! `JobGeoip`: refreshes the country and ASN MMDB databases the probe services read from the
//! config bucket (`geoip/cc.mmdb`, `geoip/asn.mmdb`; check-in loads them at cold start).
//!
//! Both files are downloaded (gunzipped when compressed), opened with the same reader the probe
//! uses (`ooni_probe::geoip::GeoIp`) and must answer the configured probe address with the
//! configured country / ASN (upstream checks that `8.8.8.8` resolves). Only then are they
//! written, each with one PUT (atomic per object; the bucket is versioned, so a bad file can be
//! rolled back). A file identical to the stored one is not rewritten. A run killed between the
//! two PUTs leaves one new and one previous database, both valid; the rerun writes the other.

use crate::checkpoint::{Point, Step};
use crate::job::{JobEnv, JobError, Loaded};
use crate::metrics::Outcome;
use crate::settings::Expect;
use bytes::Bytes;
use ooni_probe::geoip::GeoIp;
use serde_json::{json, Value};
use std::net::IpAddr;

pub const JOB: &str = "JobGeoip";
const CONTENT_TYPE: &str = "application/octet-stream";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GeoipError {
    #[error("the {which} database is not a valid MMDB file: {message}")]
    Invalid {
        which: &'static str,
        message: String,
    },
    #[error("the {which} database has no answer for the probe address {ip}")]
    ProbeMiss { which: &'static str, ip: IpAddr },
    #[error("the {which} database maps the probe address {ip} to {got}, expected {expected}")]
    ProbeMismatch {
        which: &'static str,
        ip: IpAddr,
        expected: String,
        got: String,
    },
}

/// Metadata of a database that passed the checks.
fn metadata(which: &'static str, bytes: &[u8]) -> Result<Value, GeoipError> {
    let reader = maxminddb::Reader::from_source(bytes).map_err(|e| GeoipError::Invalid {
        which,
        message: e.to_string(),
    })?;
    let m = &reader.metadata;
    Ok(json!({
        "database_type": m.database_type,
        "build_epoch": m.build_epoch,
        "node_count": m.node_count,
        "size": bytes.len(),
    }))
}

/// Checks the country database answers `ip` as expected.
pub fn verify_cc(bytes: &[u8], ip: IpAddr, expect: &Expect<String>) -> Result<String, GeoipError> {
    let which = "country";
    let db = GeoIp::from_bytes(Some(bytes.to_vec()), None).map_err(|e| GeoipError::Invalid {
        which,
        message: e.to_string(),
    })?;
    let cc = db
        .lookup(ip)
        .cc
        .ok_or(GeoipError::ProbeMiss { which, ip })?;
    match expect {
        Expect::Exactly(want) if *want != cc => Err(GeoipError::ProbeMismatch {
            which,
            ip,
            expected: want.clone(),
            got: cc,
        }),
        _ => Ok(cc),
    }
}

/// Checks the ASN database answers `ip` as expected.
pub fn verify_asn(bytes: &[u8], ip: IpAddr, expect: &Expect<u32>) -> Result<u32, GeoipError> {
    let which = "ASN";
    let db = GeoIp::from_bytes(None, Some(bytes.to_vec())).map_err(|e| GeoipError::Invalid {
        which,
        message: e.to_string(),
    })?;
    let asn = db
        .lookup(ip)
        .asn
        .ok_or(GeoipError::ProbeMiss { which, ip })?;
    match expect {
        Expect::Exactly(want) if *want != asn => Err(GeoipError::ProbeMismatch {
            which,
            ip,
            expected: want.to_string(),
            got: asn.to_string(),
        }),
        _ => Ok(asn),
    }
}

/// Writes `body` at `key` unless it is already there; true when written.
async fn store_if_changed(env: &JobEnv, key: &str, body: Bytes) -> Result<bool, JobError> {
    if env.config_bucket.get(key).await?.as_deref() == Some(&body[..]) {
        tracing::info!(key, "database unchanged; not rewritten");
        return Ok(false);
    }
    env.config_bucket.put(key, body, CONTENT_TYPE).await?;
    tracing::info!(key, "database stored");
    env.checkpoints
        .reached(Point {
            job: JOB,
            step: Step::Stored,
            target: Some(key),
        })
        .await?;
    Ok(true)
}

/// Runs the job.
pub async fn run(env: &JobEnv) -> Result<Loaded, JobError> {
    let s = &env.settings;
    let (cc_db, asn_db) =
        tokio::try_join!(env.fetch(&s.geoip_cc_url), env.fetch(&s.geoip_asn_url))?;
    let ip = s.geoip_probe_ip;
    let (cc_check, asn_check) = (cc_db.clone(), asn_db.clone());
    let (expect_cc, expect_asn) = (s.geoip_probe_cc.clone(), s.geoip_probe_asn.clone());
    let checked = tokio::task::spawn_blocking(move || -> Result<_, GeoipError> {
        let cc = verify_cc(&cc_check, ip, &expect_cc)?;
        let asn = verify_asn(&asn_check, ip, &expect_asn)?;
        Ok((
            cc,
            asn,
            metadata("country", &cc_check)?,
            metadata("ASN", &asn_check)?,
        ))
    })
    .await
    .map_err(|e| anyhow::anyhow!("GeoIP verification panicked: {e}"))?;
    let (cc, asn, cc_meta, asn_meta) = checked?;
    env.validated(JOB).await?;
    let mut written = 0u64;
    for (key, body) in [(&s.geoip_cc_key, cc_db), (&s.geoip_asn_key, asn_db)] {
        written += u64::from(store_if_changed(env, key, body).await?);
    }
    Ok(Loaded {
        outcome: if written > 0 {
            Outcome::Updated
        } else {
            Outcome::Unchanged
        },
        rows: written,
        details: json!({
            "probe": {"ip": ip.to_string(), "cc": cc, "asn": asn},
            "cc_db": cc_meta,
            "asn_db": asn_meta,
        }),
    })
}
