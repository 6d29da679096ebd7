//! Lambda entrypoint for the admin functions: prioritization rules and the test-list editor
//! (OONI_FUNCTION selects the handler).

#[tokio::main]
async fn main() -> Result<(), ooni_platform::lambda::Error> {
    ooni_platform::telemetry::init();
    let ctx = ooni_platform::context::shared().await?;
    ooni_platform::lambda::run(&ooni_admin::AdminService::new(ctx)).await
}
