//! Calls a handler the same way in Lambda and in the local server: a span with the request id
//! and function, panics contained as 500s, errors mapped once, 5xx logged at error, 4xx at debug.

use crate::error::ApiError;
use crate::handler::HttpHandler;
use crate::request::request_id;
use crate::response::error_response;
use http::Response;
use lambda_http::{Body, Request};
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// Runs one HTTP request through `handler` and always produces a response.
pub async fn dispatch_http(
    handler: Arc<dyn HttpHandler>,
    function: &'static str,
    req: Request,
) -> Response<Body> {
    let rid = request_id(&req);
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let span = tracing::info_span!("request", request_id = %rid, function, %method, %path);
    async move {
        let started = Instant::now();
        // A panic in a handler must not kill the container mid-batch: contain it as a 500.
        let joined = tokio::spawn(async move { handler.handle(req).await }).await;
        let result = match joined {
            Ok(r) => r,
            Err(e) => Err(ApiError::internal(anyhow::anyhow!("handler panicked: {e}"))),
        };
        let response = match result {
            Ok(resp) => resp,
            Err(err) => {
                log_error(&err);
                error_response(&err)
            }
        };
        tracing::info!(
            status = response.status().as_u16(),
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            "done"
        );
        response
    }
    .instrument(span)
    .await
}

fn log_error(err: &ApiError) {
    if err.is_server_error() {
        match &err.source {
            Some(src) => tracing::error!(
                status = err.status.as_u16(),
                error = format!("{src:#}"),
                "request failed"
            ),
            None => tracing::error!(status = err.status.as_u16(), "request failed"),
        }
    } else {
        tracing::debug!(status = err.status.as_u16(), body = %err.body.to_json(), "request rejected");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handler::{fn_handler, Handler};

    async fn boom(_: Arc<()>, _: Request) -> crate::handler::HttpResult {
        panic!("boom")
    }

    #[tokio::test]
    async fn a_panicking_handler_becomes_a_500_json_response() {
        let Handler::Http(h) = fn_handler(Arc::new(()), boom) else {
            unreachable!()
        };
        let req = http::Request::builder()
            .uri("/x")
            .body(Body::Empty)
            .unwrap();
        let resp = dispatch_http(h, "Test", req).await;
        assert_eq!(resp.status(), 500);
        match resp.body() {
            Body::Text(t) => assert!(t.contains("internal server error")),
            other => panic!("{other:?}"),
        }
    }
}
