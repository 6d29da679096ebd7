//! Tracing setup: JSON lines in Lambda (CloudWatch), compact text on a developer's terminal.
//! Level from `RUST_LOG`, else `AWS_LAMBDA_LOG_LEVEL`, else `info`.

use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global subscriber once; later calls are no-ops.
pub fn init() {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .or_else(|| {
            std::env::var("AWS_LAMBDA_LOG_LEVEL")
                .ok()
                .map(|l| l.to_lowercase())
        })
        .unwrap_or_else(|| "info".into());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let in_lambda = std::env::var("AWS_LAMBDA_FUNCTION_NAME").is_ok();
    let json = in_lambda || std::env::var("OONI_LOG_FORMAT").is_ok_and(|f| f == "json");
    let result = if json {
        fmt()
            .json()
            .with_env_filter(filter)
            .with_current_span(true)
            .with_span_list(false)
            .with_ansi(false)
            .without_time()
            .with_writer(std::io::stderr)
            .try_init()
    } else {
        fmt()
            .compact()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init()
    };
    if result.is_err() {
        tracing::debug!("tracing subscriber already installed");
    }
}
