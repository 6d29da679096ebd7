//! `UploaderService`: serves the scheduled `Uploader` job function. The job drains every
//! completed hour within its time budget; an event `{"hour": "YYYYMMDDHH"}` uploads that
//! hour only. The answer is the run's [`RunReport`] as JSON.

use std::sync::Arc;

use async_trait::async_trait;
use ooni_platform::config::Env;
use ooni_platform::functions::Bucket;
use ooni_platform::{Context, Handler, JobHandler, Service};
use tokio::sync::OnceCell;

use crate::config::UploaderConfig;
use crate::index::ClickHouseJsonl;
use crate::keys::Hour;
use crate::upload::{RunReport, Uploader};

/// The function this service serves.
pub const UPLOADER_FUNCTION: &str = "Uploader";

pub struct UploaderService {
    ctx: Arc<Context>,
    state: OnceCell<Arc<Uploader>>,
}

impl UploaderService {
    pub fn new(ctx: Arc<Context>) -> Self {
        UploaderService {
            ctx,
            state: OnceCell::new(),
        }
    }

    async fn uploader(&self) -> anyhow::Result<Arc<Uploader>> {
        self.state
            .get_or_try_init(|| async {
                let config = UploaderConfig::from_env(&Env::process())?;
                Ok::<_, anyhow::Error>(Arc::new(uploader_from_context(&self.ctx, config)))
            })
            .await
            .cloned()
    }
}

/// An [`Uploader`] on the context's incoming and data buckets and ClickHouse.
pub fn uploader_from_context(ctx: &Context, config: UploaderConfig) -> Uploader {
    Uploader::new(
        ctx.object_store(Bucket::Incoming),
        ctx.object_store(Bucket::Data),
        Arc::new(ClickHouseJsonl::new(ctx.clickhouse())),
        Arc::new(ooni_adapters::SystemClock),
        config,
    )
}

#[async_trait]
impl Service for UploaderService {
    fn functions(&self) -> Vec<&'static str> {
        vec![UPLOADER_FUNCTION]
    }

    async fn build(&self, function: &str) -> anyhow::Result<Option<Handler>> {
        if function != UPLOADER_FUNCTION {
            return Ok(None);
        }
        let uploader = self.uploader().await?;
        Ok(Some(Handler::Job(Arc::new(UploaderJob { uploader }))))
    }
}

/// The job handler.
pub struct UploaderJob {
    uploader: Arc<Uploader>,
}

impl UploaderJob {
    pub fn new(uploader: Arc<Uploader>) -> Self {
        UploaderJob { uploader }
    }
}

#[async_trait]
impl JobHandler for UploaderJob {
    async fn run(&self, event: serde_json::Value) -> anyhow::Result<serde_json::Value> {
        let report: RunReport = match event.get("hour").and_then(|h| h.as_str()) {
            Some(hour) => {
                let hour = Hour::parse(hour)
                    .ok_or_else(|| anyhow::anyhow!("hour must be YYYYMMDDHH, got {hour:?}"))?;
                self.uploader.upload_hour(hour).await?
            }
            None => self.uploader.run().await?,
        };
        tracing::info!(
            chunks = report.chunks,
            measurements = report.measurements,
            stopped_early = report.stopped_early,
            "upload run finished"
        );
        Ok(serde_json::to_value(report)?)
    }
}
