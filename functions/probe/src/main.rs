//! Lambda entrypoint for the probe-services functions (OONI_FUNCTION selects the handler).

use ooni_platform::{openapi::OpenApiService, Combined};
use std::sync::Arc;

// Lambda hands a container one event at a time, so one thread does the work: a multi-thread
// runtime only adds cross-thread wake-ups (the uploader benchmark spent ~20 % more CPU on them).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), ooni_platform::lambda::Error> {
    ooni_platform::telemetry::init();
    let ctx = ooni_platform::context::shared().await?;
    let service = Combined(vec![
        Arc::new(ooni_probe::ProbeService::new(ctx)),
        Arc::new(OpenApiService),
    ]);
    ooni_platform::lambda::run(&service).await
}
