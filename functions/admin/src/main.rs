//! Lambda entrypoint for the admin functions: prioritization rules and the test-list editor
//! (OONI_FUNCTION selects the handler).

// Lambda hands a container one event at a time, so one thread does the work: a multi-thread
// runtime only adds cross-thread wake-ups (the uploader benchmark spent ~20 % more CPU on them).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), ooni_platform::lambda::Error> {
    ooni_platform::telemetry::init();
    let ctx = ooni_platform::context::shared().await?;
    ooni_platform::lambda::run(&ooni_admin::AdminService::new(ctx)).await
}
