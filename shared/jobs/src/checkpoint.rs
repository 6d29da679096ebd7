//! Named points inside a job run. Production passes them silently ([`NoCheckpoints`]); kill-safety
//! tests install a [`Checkpoints`] that fails or never returns at a chosen point, which is how a
//! Lambda killed mid-run looks from the data's point of view.

use async_trait::async_trait;

/// A step a job has just completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// Sources downloaded and validated; nothing written yet.
    Validated,
    /// The staging table of `table` was emptied.
    TmpTruncated,
    /// The staging table of `table` holds the new rows (checked by count).
    TmpFilled,
    /// The staging table of `table` was exchanged with the live one.
    Exchanged,
    /// The object `table` (a bucket key here) was written.
    Stored,
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point<'a> {
    pub job: &'a str,
    pub step: Step,
    /// The live table (or object key) the step concerns, if any.
    pub target: Option<&'a str>,
}

#[async_trait]
pub trait Checkpoints: Send + Sync {
    /// Called after each step; an error aborts the run there.
    async fn reached(&self, point: Point<'_>) -> anyhow::Result<()>;
}

/// The production hook: every point passes.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCheckpoints;

#[async_trait]
impl Checkpoints for NoCheckpoints {
    async fn reached(&self, _point: Point<'_>) -> anyhow::Result<()> {
        Ok(())
    }
}
