//! Lambda entrypoint for the probe-services functions (OONI_FUNCTION selects the handler).

use ooni_platform::{openapi::OpenApiService, Combined};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), ooni_platform::lambda::Error> {
    ooni_platform::telemetry::init();
    let ctx = ooni_platform::context::shared().await?;
    let service = Combined(vec![
        Arc::new(ooni_probe::ProbeService::new(ctx)),
        Arc::new(OpenApiService),
    ]);
    ooni_platform::lambda::run(&service).await
}
