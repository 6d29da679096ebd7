//! Lambda entrypoint for the scheduled jobs (test lists, fingerprints, ASN metadata, GeoIP,
//! VPN credentials), the uploader and `Migrate` (OONI_FUNCTION selects the handler).

use std::sync::Arc;

// Lambda hands a container one event at a time, so one thread does the work: a multi-thread
// runtime only adds cross-thread wake-ups (the uploader benchmark spent ~20 % more CPU on them).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), ooni_platform::lambda::Error> {
    ooni_platform::telemetry::init();
    let ctx = ooni_platform::context::shared().await?;
    let service = ooni_platform::Combined(vec![
        Arc::new(ooni_jobs::JobsService::new(ctx.clone())),
        Arc::new(ooni_uploader::UploaderService::new(ctx)),
    ]);
    ooni_platform::lambda::run(&service).await
}
