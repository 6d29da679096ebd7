//! Lambda entrypoint for the tier-1 read API functions (OONI_FUNCTION selects the handler).
#[tokio::main]
async fn main() -> Result<(), ooni_platform::lambda::Error> {
    ooni_platform::telemetry::init();
    let ctx = ooni_platform::context::shared().await?;
    ooni_platform::lambda::run(&ooni_measurements::ApiService::new(ctx)).await
}
