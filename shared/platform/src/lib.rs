//! HTTP and Lambda plumbing shared by every function: the function/route table, the router,
//! the error model, request/response helpers, the auth extractor, config and tracing.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod auth;
pub mod config;
pub mod context;
pub mod devserver;
pub mod dispatch;
pub mod error;
pub mod functions;
pub mod handler;
pub mod lambda;
pub mod metrics;
pub mod openapi;
pub mod request;
pub mod response;
pub mod router;
pub mod telemetry;

pub use context::Context;
pub use error::{ApiError, ErrorBody};
pub use handler::{
    fn_handler, Combined, Handler, HttpHandler, HttpResult, JobHandler, Service, SqsHandler,
};
pub use response::Cache;
