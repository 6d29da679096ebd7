//! The local HTTP server behind `ooni dev` and the black-box tests: every route of the function
//! table, each request turned into the API Gateway v2 event a Lambda would receive and passed
//! through the same `lambda_http` deserialisation and the same [`dispatch_http`] as in AWS.

use crate::dispatch::dispatch_http;
use crate::functions::{self, Method};
use crate::handler::{Handler, HttpHandler, Service};
use crate::router::{RouteMatch, Router};
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use lambda_http::Body;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// API Gateway's payload limit; larger requests get 413 before reaching a handler.
pub const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;

/// A running dev server. Dropping it stops accepting connections.
pub struct DevServer {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl DevServer {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting and waits for the accept loop to end.
    pub async fn shutdown(self) {
        if self.stop.send(true).is_err() {
            tracing::debug!("dev server already stopped");
        }
        let mut this = self;
        if let Some(task) = this.task.take() {
            if let Err(e) = task.await {
                tracing::warn!(error = %e, "dev server task ended abnormally");
            }
        }
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

struct Mounted {
    router: Router,
    handlers: HashMap<&'static str, Arc<dyn HttpHandler>>,
}

/// Builds the handler of every HTTP function `service` serves and starts serving on `listener`.
/// Routes whose function the service does not build answer 404 `function not served here`.
pub async fn serve(listener: TcpListener, service: Arc<dyn Service>) -> anyhow::Result<DevServer> {
    let mut handlers = HashMap::new();
    for f in functions::FUNCTIONS {
        if !matches!(f.trigger, functions::Trigger::Http(_)) {
            continue;
        }
        if let Some(Handler::Http(h)) = service.build(f.name).await? {
            handlers.insert(f.name, h);
        }
    }
    let mounted = Arc::new(Mounted {
        router: Router::default(),
        handlers,
    });
    let addr = listener.local_addr()?;
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(x) => x,
                        Err(e) => { tracing::warn!(error = %e, "accept failed"); continue; }
                    };
                    let mounted = mounted.clone();
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(move |req| {
                            let mounted = mounted.clone();
                            async move { Ok::<_, Infallible>(handle(mounted, peer, req).await) }
                        });
                        if let Err(e) = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                    });
                }
            }
        }
    });
    Ok(DevServer {
        addr,
        stop,
        task: Some(task),
    })
}

async fn handle(
    mounted: Arc<Mounted>,
    peer: SocketAddr,
    req: hyper::Request<Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return plain(413, r#"{"error":"request body too large"}"#),
    };
    let path = parts.uri.path().to_string();
    let Some(method) = Method::parse(parts.method.as_str()) else {
        return plain(405, r#"{"error":"method not allowed"}"#);
    };
    let (route, params) = match mounted.router.find(method, &path) {
        RouteMatch::Found { route, params } => (route, params),
        RouteMatch::MethodNotAllowed => return plain(405, r#"{"error":"method not allowed"}"#),
        RouteMatch::NotFound => return plain(404, r#"{"error":"not found"}"#),
    };
    let Some(handler) = mounted.handlers.get(route.function).cloned() else {
        return plain(404, r#"{"error":"function not served here"}"#);
    };
    let event = api_gateway_event(&parts, &body, peer, route.method, route.path, params);
    let request = match lambda_http::request::from_str(&event.to_string()) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "could not build the Lambda request");
            return plain(500, r#"{"error":"internal server error"}"#);
        }
    };
    let response = dispatch_http(handler, route.function, request).await;
    to_hyper(response)
}

/// The API Gateway HTTP API (payload 2.0) event for one request.
pub fn api_gateway_event(
    parts: &http::request::Parts,
    body: &[u8],
    peer: SocketAddr,
    method: Method,
    template: &str,
    params: HashMap<String, String>,
) -> Value {
    let mut headers = Map::new();
    for (name, value) in &parts.headers {
        let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match headers.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&v);
            }
            _ => {
                headers.insert(name.as_str().to_string(), Value::String(v));
            }
        }
    }
    let route_key = format!("{} {}", method.as_str(), template);
    let now = chrono::Utc::now();
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": parts.uri.path(),
        "rawQueryString": parts.uri.query().unwrap_or(""),
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
            "timeEpoch": now.timestamp_millis(),
            "http": {
                "method": method.as_str(),
                "path": parts.uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": peer.ip().to_string(),
                "userAgent": parts.headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or(""),
            }
        },
        "isBase64Encoded": !body.is_empty(),
    });
    if !params.is_empty() {
        event["pathParameters"] = json!(params);
    }
    if !body.is_empty() {
        event["body"] = Value::String(base64::engine::general_purpose::STANDARD.encode(body));
    }
    event
}

fn to_hyper(resp: http::Response<Body>) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = resp.into_parts();
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(s) => Bytes::from(s),
        Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    hyper::Response::from_parts(parts, Full::new(bytes))
}

fn plain(status: u16, body: &'static str) -> hyper::Response<Full<Bytes>> {
    let mut resp = hyper::Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handler::{fn_handler, HttpResult};
    use crate::request::{body_bytes, client_ip, path_param, query};
    use crate::response::{json as json_resp, Cache};
    use async_trait::async_trait;
    use lambda_http::Request;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn echo(_: Arc<()>, req: Request) -> HttpResult {
        json_resp(
            &json!({
                "rid": path_param(&req, "report_id")?,
                "q": query(&req, "x"),
                "ip": client_ip(&req, 0).map(|i| i.to_string()),
                "len": body_bytes(&req).len(),
            }),
            Cache::NoCache,
        )
    }

    struct Echo;
    #[async_trait]
    impl Service for Echo {
        fn functions(&self) -> Vec<&'static str> {
            vec!["ReportSubmit"]
        }
        async fn build(&self, f: &str) -> anyhow::Result<Option<Handler>> {
            Ok((f == "ReportSubmit").then(|| fn_handler(Arc::new(()), echo)))
        }
    }

    async fn raw_request(addr: SocketAddr, req: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn requests_reach_handlers_as_api_gateway_requests() {
        let server = serve(
            TcpListener::bind("127.0.0.1:0").await.unwrap(),
            Arc::new(Echo),
        )
        .await
        .unwrap();
        let resp = raw_request(
            server.addr,
            "POST /report/abc%20d?x=1 HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
        )
        .await;
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        assert!(resp.contains(r#""rid":"abc d""#), "{resp}");
        assert!(resp.contains(r#""q":"1""#), "{resp}");
        assert!(resp.contains(r#""ip":"127.0.0.1""#), "{resp}");
        assert!(resp.contains(r#""len":5"#), "{resp}");
        server.shutdown().await;
    }

    #[tokio::test]
    async fn unserved_and_unknown_routes_are_404_and_wrong_methods_405() {
        let server = serve(
            TcpListener::bind("127.0.0.1:0").await.unwrap(),
            Arc::new(Echo),
        )
        .await
        .unwrap();
        let r = raw_request(
            server.addr,
            "GET /nope HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        )
        .await;
        assert!(r.starts_with("HTTP/1.1 404"), "{r}");
        let r = raw_request(
            server.addr,
            "POST /report HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        )
        .await;
        assert!(r.contains("function not served here"), "{r}");
        let r = raw_request(
            server.addr,
            "GET /report HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        )
        .await;
        assert!(r.starts_with("HTTP/1.1 405"), "{r}");
    }
}
