//! `ooni invoke FUNCTION EVENT.json`: runs one function's handler in-process on a sample event,
//! exactly as the Lambda runtime would, and prints its response.

use anyhow::Context as _;
use aws_lambda_events::sqs::SqsEvent;
use lambda_http::Body;
use ooni_platform::dispatch::dispatch_http;
use ooni_platform::functions;
use ooni_platform::{Handler, Service};
use serde_json::{json, Value};

pub async fn invoke(service: &dyn Service, function: &str, event: &str) -> anyhow::Result<Value> {
    let spec =
        functions::function(function).with_context(|| format!("unknown function {function}"))?;
    let handler = service
        .build(spec.name)
        .await?
        .with_context(|| format!("no service builds {function}"))?;
    match handler {
        Handler::Http(h) => {
            let req =
                lambda_http::request::from_str(event).context("not an API Gateway HTTP event")?;
            let resp = dispatch_http(h, spec.name, req).await;
            let headers: serde_json::Map<String, Value> = resp
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()),
                    )
                })
                .collect();
            let body = match resp.body() {
                Body::Text(t) => t.clone(),
                Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
                _ => String::new(),
            };
            Ok(json!({"statusCode": resp.status().as_u16(), "headers": headers, "body": body}))
        }
        Handler::Sqs(h) => {
            let ev: SqsEvent = serde_json::from_str(event).context("not an SQS event")?;
            Ok(serde_json::to_value(h.handle(ev).await)?)
        }
        Handler::Job(h) => {
            let ev: Value = serde_json::from_str(event).context("event is not JSON")?;
            h.run(ev).await
        }
    }
}
