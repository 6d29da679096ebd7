//! Lambda entrypoint for the scheduled jobs (test lists, fingerprints, ASN metadata, GeoIP,
//! VPN credentials), the uploader and `Migrate` (OONI_FUNCTION selects the handler).

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), ooni_platform::lambda::Error> {
    ooni_platform::telemetry::init();
    let ctx = ooni_platform::context::shared().await?;
    let service = ooni_platform::Combined(vec![
        Arc::new(ooni_jobs::JobsService::new(ctx.clone())),
        Arc::new(ooni_uploader::UploaderService::new(ctx)),
    ]);
    ooni_platform::lambda::run(&service).await
}
