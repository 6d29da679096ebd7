//! `Migrate`: applies the ClickHouse migrations embedded in the binary
//! (`ooni_adapters::Migrator::embedded()`, forward-only, each at most once).
//!
//! Two ways in:
//! - a CloudFormation custom resource (`Custom::Migrations` in the template): the event has
//!   `RequestType` (`Create`/`Update`/`Delete`) and a pre-signed `ResponseURL`. Create and
//!   Update migrate; Delete does nothing (dropping data on stack deletion would be a disaster).
//!   The outcome is PUT to the URL as `{Status: SUCCESS|FAILED, Reason, PhysicalResourceId,
//!   StackId, RequestId, LogicalResourceId, Data}` with no content type (the URL is signed
//!   without one). The run is bounded by `OONI_MIGRATE_DEADLINE_S` so CloudFormation always
//!   gets an answer before the Lambda timeout instead of waiting an hour. The handler returns
//!   an error only when the answer could not be delivered (the Lambda retry then answers again).
//! - a plain invoke (`{}`, `ooni invoke Migrate`, `ooni job Migrate`): migrate and return the
//!   report `{applied, already_applied, database}`.

use crate::job::{finish, JobEnv, JobError, Loaded};
use crate::metrics::Outcome;
use ooni_adapters::Migrator;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

pub const FUNCTION: &str = "Migrate";

/// Runs the migrations.
pub async fn run_plain(env: &JobEnv) -> Result<Loaded, JobError> {
    let report = Migrator::embedded()?
        .migrate_config(&env.clickhouse)
        .await?;
    Ok(Loaded {
        outcome: if report.applied.is_empty() {
            Outcome::Unchanged
        } else {
            Outcome::Updated
        },
        rows: report.applied.len() as u64,
        details: json!({
            "applied": report.applied,
            "already_applied": report.already_applied,
            "database": env.clickhouse.database,
        }),
    })
}

/// The fields of a CloudFormation custom-resource request this function uses.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CfnRequest {
    pub request_type: String,
    #[serde(rename = "ResponseURL")]
    pub response_url: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    #[serde(default)]
    pub physical_resource_id: Option<String>,
}

/// The answer CloudFormation expects at `ResponseURL`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct CfnResponse {
    pub status: String,
    pub reason: String,
    pub physical_resource_id: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    pub data: Value,
}

/// True when `event` is a custom-resource request.
pub fn is_custom_resource(event: &Value) -> bool {
    event.get("RequestType").is_some() && event.get("ResponseURL").is_some()
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Handles an invocation of `Migrate`.
pub async fn handle(env: &JobEnv, http: &reqwest::Client, event: Value) -> anyhow::Result<Value> {
    if !is_custom_resource(&event) {
        let started = Instant::now();
        let result = run_plain(env).await;
        return finish(env, FUNCTION, started, result);
    }
    let req: CfnRequest = serde_json::from_value(event)?;
    let physical = req
        .physical_resource_id
        .clone()
        .unwrap_or_else(|| format!("ooni-clickhouse-migrations-{}", env.clickhouse.database));
    let (status, reason, data) = match req.request_type.as_str() {
        "Delete" => (
            "SUCCESS",
            "Delete: the schema is kept".to_owned(),
            json!({}),
        ),
        "Create" | "Update" => {
            let started = Instant::now();
            let deadline = env.settings.migrate_deadline;
            let result = match tokio::time::timeout(deadline, run_plain(env)).await {
                Ok(r) => r,
                Err(_) => Err(JobError::Other(anyhow::anyhow!(
                    "migrations did not finish within {}s",
                    deadline.as_secs()
                ))),
            };
            match finish(env, FUNCTION, started, result) {
                Ok(report) => (
                    "SUCCESS",
                    format!("{} migrations applied", report["rows"]),
                    report,
                ),
                Err(e) => ("FAILED", truncate(&format!("{e:#}"), 2000), json!({})),
            }
        }
        other => (
            "FAILED",
            format!("unknown RequestType {other:?}"),
            json!({}),
        ),
    };
    let response = CfnResponse {
        status: status.into(),
        reason,
        physical_resource_id: physical,
        stack_id: req.stack_id,
        request_id: req.request_id,
        logical_resource_id: req.logical_resource_id,
        data,
    };
    send_response(http, &req.response_url, &response).await?;
    tracing::info!(status, request_type = %req.request_type, "custom resource answered");
    Ok(serde_json::to_value(&response)?)
}

/// PUTs the answer, retrying transient failures a few times.
async fn send_response(
    http: &reqwest::Client,
    url: &str,
    response: &CfnResponse,
) -> anyhow::Result<()> {
    let body = serde_json::to_string(response)?;
    let mut last = String::new();
    for attempt in 0..4u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(250 * 2u64.pow(attempt))).await;
        }
        match http.put(url).body(body.clone()).send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => last = format!("HTTP {}", r.status()),
            Err(e) => last = e.without_url().to_string(),
        }
        tracing::warn!(attempt, error = %last, "answering CloudFormation failed");
    }
    anyhow::bail!("could not answer CloudFormation: {last}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_resource_events_are_told_apart_from_plain_invokes() {
        let ev: Value =
            serde_json::from_str(include_str!("../../../events/Migrate/create.json")).unwrap();
        assert!(is_custom_resource(&ev));
        let req: CfnRequest = serde_json::from_value(ev).unwrap();
        assert_eq!(req.request_type, "Create");
        assert_eq!(req.logical_resource_id, "SchemaMigrations");
        assert!(!is_custom_resource(&json!({})));
    }

    #[test]
    fn long_reasons_are_cut_on_a_character_boundary() {
        let s = "é".repeat(3000);
        let t = truncate(&s, 2001);
        assert!(t.len() <= 2004);
        assert!(t.ends_with('…'));
    }
}
