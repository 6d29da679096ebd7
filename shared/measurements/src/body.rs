//! Where measurement bodies are read from: the [`BodyStore`] port, served in production by the
//! uploader's [`ooni_uploader::BodyLookup`] — the one implementation of the body layout, shared
//! with the Scorer's fallback for bodies already archived.
//!
//! A body lives in one of two places:
//! - **not yet uploaded**: the `.post` object the submit function wrote to the incoming bucket,
//!   a `{"format":"json","content":…}` wrapper whose `content` is the body;
//! - **uploaded**: a line of a gzip JSONL file in the data bucket, located by the `jsonl` table
//!   (one range GET of one gzip member for files this backend wrote; upstream files are read
//!   the upstream way, from the start up to `linenum`).
//!
//! Recent uids are looked up in the incoming bucket first (the uploader runs hourly), older ones
//! in `jsonl` first, with a second look when an upload races the lookup. Inflation is bounded.

use async_trait::async_trait;
use bytes::Bytes;
use ooni_uploader::{BodyLookup, LookupError};

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The store or the index is unreachable now (a retry may succeed).
    #[error("body lookup unavailable: {0}")]
    Unavailable(#[source] LookupError),
    /// A `jsonl` row points at a body that is not there or cannot be read.
    #[error("stored body is unreadable: {0}")]
    Corrupt(#[source] LookupError),
}

impl From<LookupError> for BodyError {
    fn from(e: LookupError) -> Self {
        if e.is_transient() {
            BodyError::Unavailable(e)
        } else {
            BodyError::Corrupt(e)
        }
    }
}

/// Finds measurement bodies (the JSON document a probe submitted, without the `.post` wrapper).
#[async_trait]
pub trait BodyStore: Send + Sync {
    /// The body of measurement `uid`, `None` when it is not stored anywhere.
    async fn body_by_uid(&self, uid: &str) -> Result<Option<Bytes>, BodyError>;
    /// The body of the measurement with `input` (`""` for none) in report `report_id`.
    async fn body_by_report_input(
        &self,
        report_id: &str,
        input: &str,
    ) -> Result<Option<Bytes>, BodyError>;
}

#[async_trait]
impl BodyStore for BodyLookup {
    async fn body_by_uid(&self, uid: &str) -> Result<Option<Bytes>, BodyError> {
        Ok(BodyLookup::body_by_uid(self, uid).await?)
    }

    async fn body_by_report_input(
        &self,
        report_id: &str,
        input: &str,
    ) -> Result<Option<Bytes>, BodyError> {
        Ok(BodyLookup::body_by_report_input(self, report_id, input).await?)
    }
}
