//! Handler traits for the three kinds of function (HTTP, queue, scheduled job) and the
//! [`Service`] trait through which each area crate builds the handler for a function name.

use crate::error::ApiError;
use async_trait::async_trait;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use http::Response;
use lambda_http::{Body, Request};
use std::future::Future;
use std::sync::Arc;

pub type HttpResult = Result<Response<Body>, ApiError>;

/// An HTTP function's handler. The same value serves API Gateway and the local dev server.
#[async_trait]
pub trait HttpHandler: Send + Sync {
    async fn handle(&self, req: Request) -> HttpResult;
}

/// A submissions-queue function's handler: returns the items that must be retried.
#[async_trait]
pub trait SqsHandler: Send + Sync {
    async fn handle(&self, event: SqsEvent) -> SqsBatchResponse;
}

/// A scheduled (or deploy-time) job. The input is the EventBridge event or a custom payload.
#[async_trait]
pub trait JobHandler: Send + Sync {
    async fn run(&self, event: serde_json::Value) -> anyhow::Result<serde_json::Value>;
}

#[derive(Clone)]
pub enum Handler {
    Http(Arc<dyn HttpHandler>),
    Sqs(Arc<dyn SqsHandler>),
    Job(Arc<dyn JobHandler>),
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Handler::Http(_) => "Handler::Http",
            Handler::Sqs(_) => "Handler::Sqs",
            Handler::Job(_) => "Handler::Job",
        })
    }
}

/// An area crate (probe, api, accounts, ...). `build` returns the handler for one of its
/// functions, building shared state (clients, caches) once per process.
#[async_trait]
pub trait Service: Send + Sync {
    /// Names of the functions this service serves.
    fn functions(&self) -> Vec<&'static str>;
    async fn build(&self, function: &str) -> anyhow::Result<Option<Handler>>;
}

/// An [`HttpHandler`] from shared state and an async function, e.g.
/// `fn_handler(state.clone(), check_in)` with `async fn check_in(s: Arc<State>, req: Request) -> HttpResult`.
pub struct FnHandler<S, F> {
    state: Arc<S>,
    f: F,
}

pub fn fn_handler<S, F, Fut>(state: Arc<S>, f: F) -> Handler
where
    S: Send + Sync + 'static,
    F: Fn(Arc<S>, Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HttpResult> + Send + 'static,
{
    Handler::Http(Arc::new(FnHandler { state, f }))
}

#[async_trait]
impl<S, F, Fut> HttpHandler for FnHandler<S, F>
where
    S: Send + Sync + 'static,
    F: Fn(Arc<S>, Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HttpResult> + Send + 'static,
{
    async fn handle(&self, req: Request) -> HttpResult {
        (self.f)(self.state.clone(), req).await
    }
}

/// Several services behind one binary or server: the first that builds a function serves it.
pub struct Combined(pub Vec<Arc<dyn Service>>);

#[async_trait]
impl Service for Combined {
    fn functions(&self) -> Vec<&'static str> {
        self.0.iter().flat_map(|s| s.functions()).collect()
    }

    async fn build(&self, function: &str) -> anyhow::Result<Option<Handler>> {
        for service in &self.0 {
            if let Some(h) = service.build(function).await? {
                return Ok(Some(h));
            }
        }
        Ok(None)
    }
}
