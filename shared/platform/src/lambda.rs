//! The Lambda entrypoint shared by every binary: pick the handler named by `OONI_FUNCTION`
//! from the binary's service and hand it to the runtime.

use crate::dispatch::dispatch_http;
use crate::functions;
use crate::handler::{Handler, Service};
use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{service_fn, LambdaEvent};
use std::convert::Infallible;

pub type Error = lambda_runtime::Error;

/// Reads `OONI_FUNCTION`, builds that function's handler and runs the Lambda runtime loop.
pub async fn run(service: &dyn Service) -> Result<(), Error> {
    crate::telemetry::init();
    let name = std::env::var("OONI_FUNCTION").map_err(|_| "OONI_FUNCTION is not set")?;
    let spec = functions::function(&name).ok_or_else(|| format!("unknown function {name}"))?;
    let handler = service
        .build(spec.name)
        .await?
        .ok_or_else(|| format!("this binary does not serve function {name}"))?;
    tracing::info!(function = spec.name, "cold start complete");
    match handler {
        Handler::Http(h) => {
            let f = spec.name;
            lambda_http::run(lambda_http::service_fn(move |req| {
                let h = h.clone();
                async move { Ok::<_, Infallible>(dispatch_http(h, f, req).await) }
            }))
            .await
        }
        Handler::Sqs(h) => {
            lambda_runtime::run(service_fn(move |ev: LambdaEvent<SqsEvent>| {
                let h = h.clone();
                async move { Ok::<_, Infallible>(h.handle(ev.payload).await) }
            }))
            .await
        }
        Handler::Job(h) => {
            lambda_runtime::run(service_fn(move |ev: LambdaEvent<serde_json::Value>| {
                let h = h.clone();
                async move {
                    h.run(ev.payload)
                        .await
                        .map_err(|e| Error::from(format!("{e:#}")))
                }
            }))
            .await
        }
    }
}
