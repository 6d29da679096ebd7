//! `ooni smoketest`: starts the release artifacts built by `make build` under a minimal Lambda
//! Runtime API emulator (the same protocol the AWS runtime speaks) and feeds each function its
//! `events/` sample. Reports, per function, whether it answered correctly and its cold start
//! (process start → first response), which `make bench` also prints. A deploy-time function
//! (CloudFormation custom resource) gets its event's `ResponseURL` pointed at the emulator,
//! which records the answer CloudFormation would get: it passes only with `Status: SUCCESS`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use ooni_platform::functions::{FunctionSpec, Trigger, FUNCTIONS};
use serde_json::Value;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// What one function did with its sample event.
#[derive(Debug)]
pub enum Verdict {
    /// A response; for HTTP functions the status code.
    Answered { status: Option<u16> },
    /// The handler reported an error through the Runtime API.
    FunctionError(String),
    /// Init error, crash or timeout.
    Crashed(String),
}

#[derive(Debug)]
pub struct SmokeResult {
    pub function: &'static str,
    pub event: PathBuf,
    pub verdict: Verdict,
    pub cold_start: Duration,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Answered { status: Some(s) } => write!(f, "HTTP {s}"),
            Verdict::Answered { status: None } => f.write_str("answered"),
            Verdict::FunctionError(e) => write!(
                f,
                "function error: {}",
                e.chars().take(200).collect::<String>()
            ),
            Verdict::Crashed(e) => write!(f, "crashed: {e}"),
        }
    }
}

impl SmokeResult {
    pub fn ok(&self) -> bool {
        match &self.verdict {
            Verdict::Answered { status } => status.is_none_or(|s| s < 500),
            Verdict::FunctionError(_) | Verdict::Crashed(_) => false,
        }
    }
}

#[derive(Default)]
struct Exchange {
    event: String,
    handed_out: bool,
    response: Option<Result<String, String>>,
    /// What a custom resource PUT to its `ResponseURL`.
    cfn_response: Option<String>,
}

const CFN_RESPONSE_PATH: &str = "/cloudformation-response";

async fn runtime_api(
    state: Arc<(Mutex<Exchange>, Notify)>,
    req: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body).into_owned();
    let (lock, notify) = &*state;
    if path == CFN_RESPONSE_PATH {
        lock.lock().unwrap_or_else(|p| p.into_inner()).cfn_response = Some(text);
        return hyper::Response::new(Full::new(Bytes::new()));
    }
    if path.ends_with("/invocation/next") {
        let event = {
            let mut ex = lock.lock().unwrap_or_else(|p| p.into_inner());
            if ex.handed_out {
                None
            } else {
                ex.handed_out = true;
                Some(ex.event.clone())
            }
        };
        let Some(event) = event else {
            // One invocation per process: park the runtime until it is killed.
            std::future::pending::<()>().await;
            return hyper::Response::new(Full::new(Bytes::new()));
        };
        let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
        let mut resp = hyper::Response::new(Full::new(Bytes::from(event)));
        let h = resp.headers_mut();
        h.insert(
            "lambda-runtime-aws-request-id",
            http::HeaderValue::from_static("smoke-0001"),
        );
        h.insert(
            "lambda-runtime-deadline-ms",
            http::HeaderValue::from(deadline),
        );
        h.insert(
            "lambda-runtime-invoked-function-arn",
            http::HeaderValue::from_static("arn:aws:lambda:us-east-1:000000000000:function:smoke"),
        );
        h.insert(
            "lambda-runtime-trace-id",
            http::HeaderValue::from_static("Root=1-00000000-000000000000000000000000"),
        );
        return resp;
    }
    let outcome = if path.ends_with("/response") {
        Some(Ok(text))
    } else if path.ends_with("/error") {
        Some(Err(text))
    } else {
        None
    };
    if let Some(o) = outcome {
        lock.lock().unwrap_or_else(|p| p.into_inner()).response = Some(o);
        notify.notify_one();
    }
    let mut resp = hyper::Response::new(Full::new(Bytes::from_static(b"{}")));
    *resp.status_mut() = http::StatusCode::ACCEPTED;
    resp
}

/// A custom resource succeeded when it told CloudFormation `SUCCESS`.
fn cfn_verdict(cfn_response: Option<&str>) -> Verdict {
    let Some(body) = cfn_response else {
        return Verdict::FunctionError("returned without answering CloudFormation".into());
    };
    let v: Value = serde_json::from_str(body).unwrap_or_default();
    match v["Status"].as_str() {
        Some("SUCCESS") => Verdict::Answered { status: None },
        _ => Verdict::FunctionError(format!("CloudFormation was told {body}")),
    }
}

/// Runs one function's artifact on one event.
pub async fn run_one(
    bootstrap: &Path,
    spec: &'static FunctionSpec,
    event_path: &Path,
    timeout: Duration,
) -> anyhow::Result<SmokeResult> {
    let mut event = std::fs::read_to_string(event_path)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    if matches!(spec.trigger, Trigger::Deploy) {
        let mut v: Value = serde_json::from_str(&event)?;
        v["ResponseURL"] = Value::String(format!("http://{addr}{CFN_RESPONSE_PATH}"));
        event = v.to_string();
    }
    let state = Arc::new((
        Mutex::new(Exchange {
            event,
            ..Default::default()
        }),
        Notify::new(),
    ));
    let st = state.clone();
    let server = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let st = st.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let st = st.clone();
                    async move { Ok::<_, Infallible>(runtime_api(st, req).await) }
                });
                if let Err(e) = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await
                {
                    tracing::debug!(error = %e, "runtime API connection ended");
                }
            });
        }
    });
    let started = Instant::now();
    let mut child = tokio::process::Command::new(bootstrap)
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("OONI_FUNCTION", spec.name)
        .env(
            "AWS_LAMBDA_FUNCTION_NAME",
            format!("ooni-local-{}", spec.name),
        )
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env(
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            spec.memory_mb.to_string(),
        )
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/ooni-local-{}", spec.name),
        )
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "smoke")
        .env(
            "OONI_PROBE_JWT_KEY",
            std::env::var("OONI_PROBE_JWT_KEY")
                .unwrap_or_else(|_| "smoke-probe-key-0123456789".into()),
        )
        .env(
            "OONI_USER_JWT_KEY",
            std::env::var("OONI_USER_JWT_KEY")
                .unwrap_or_else(|_| "smoke-user-key-0123456789".into()),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let (lock, notify) = &*state;
    let verdict = tokio::select! {
        _ = notify.notified() => {
            let elapsed = started.elapsed();
            let (response, cfn_response) = {
                let mut ex = lock.lock().unwrap_or_else(|p| p.into_inner());
                (ex.response.take(), ex.cfn_response.take())
            };
            let verdict = match response {
                Some(Ok(_)) if matches!(spec.trigger, Trigger::Deploy) => cfn_verdict(cfn_response.as_deref()),
                Some(Ok(body)) => {
                    let status = match spec.trigger {
                        Trigger::Http(_) => serde_json::from_str::<Value>(&body).ok().and_then(|v| v["statusCode"].as_u64()).map(|s| s as u16),
                        _ => None,
                    };
                    Verdict::Answered { status }
                }
                Some(Err(e)) => Verdict::FunctionError(e),
                None => Verdict::Crashed("no response recorded".into()),
            };
            (verdict, elapsed)
        }
        status = child.wait() => (Verdict::Crashed(format!("process exited: {status:?}")), started.elapsed()),
        _ = tokio::time::sleep(timeout) => (Verdict::Crashed("timed out".into()), started.elapsed()),
    };
    if let Err(e) = child.kill().await {
        tracing::debug!(error = %e, "artifact already exited");
    }
    server.abort();
    Ok(SmokeResult {
        function: spec.name,
        event: event_path.to_path_buf(),
        verdict: verdict.0,
        cold_start: verdict.1,
    })
}

/// The first sample event of each function (sorted by file name).
pub fn first_event(events_dir: &Path, function: &str) -> Option<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(events_dir.join(function))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files.into_iter().next()
}

/// Runs every function that has an artifact and an event. Returns the results in table order.
pub async fn run_all(
    lambda_dir: &Path,
    events_dir: &Path,
    skip: &[String],
    allow_missing: bool,
) -> anyhow::Result<Vec<SmokeResult>> {
    let mut results = Vec::new();
    for spec in FUNCTIONS {
        if skip.iter().any(|s| s == spec.name) {
            continue;
        }
        let bootstrap = lambda_dir.join(spec.binary.bin_name()).join("bootstrap");
        let Some(event) = first_event(events_dir, spec.name) else {
            continue;
        };
        if !bootstrap.exists() && allow_missing {
            println!("skip   {:<28} {} not built", spec.name, bootstrap.display());
            continue;
        }
        if !bootstrap.exists() {
            anyhow::bail!(
                "{} is missing: run `make build ARCH=x86_64` first",
                bootstrap.display()
            );
        }
        results.push(run_one(&bootstrap, spec, &event, Duration::from_secs(20)).await?);
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_custom_resource_passes_only_when_it_told_cloudformation_success() {
        assert!(matches!(
            cfn_verdict(Some(r#"{"Status":"SUCCESS","PhysicalResourceId":"m"}"#)),
            Verdict::Answered { status: None }
        ));
        assert!(matches!(
            cfn_verdict(Some(r#"{"Status":"FAILED","Reason":"x"}"#)),
            Verdict::FunctionError(_)
        ));
        assert!(matches!(
            cfn_verdict(Some("not json")),
            Verdict::FunctionError(_)
        ));
        assert!(matches!(cfn_verdict(None), Verdict::FunctionError(_)));
    }
}
