//! Measurement feedback (legacy `measurement_feedback` routes) over ClickHouse
//! `msmt_feedback`: one status per (measurement, account), the last write wins; reads use
//! `FINAL` so duplicates that have not been merged yet are never counted twice.

use crate::State;
use async_trait::async_trait;
use lambda_http::Request;
use ooni_platform::auth::Role;
use ooni_platform::request::{json_body, path_param};
use ooni_platform::response::{json, Cache};
use ooni_platform::{ApiError, HttpResult};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Statuses a user may report (upstream `valid_feedback_status`).
pub const VALID_STATUSES: [&str; 15] = [
    "blocked",
    "blocked.blockpage",
    "blocked.blockpage.http",
    "blocked.blockpage.dns",
    "blocked.blockpage.server_side",
    "blocked.blockpage.server_side.captcha",
    "blocked.dns",
    "blocked.dns.inconsistent",
    "blocked.dns.nxdomain",
    "blocked.tcp",
    "blocked.tls",
    "ok",
    "down",
    "down.unreachable",
    "down.misconfigured",
];

/// One row of the per-measurement summary.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, serde::Deserialize)]
pub struct StatusCount {
    pub status: String,
    pub is_mine: u8,
    pub cnt: u64,
}

/// Where feedback lives.
#[async_trait]
pub trait FeedbackStore: Send + Sync {
    async fn summary(
        &self,
        measurement_uid: &str,
        account_id: &str,
    ) -> anyhow::Result<Vec<StatusCount>>;
    async fn submit(
        &self,
        measurement_uid: &str,
        account_id: &str,
        status: &str,
    ) -> anyhow::Result<()>;
}

/// [`FeedbackStore`] over ClickHouse.
#[derive(Clone)]
pub struct ClickHouseFeedback {
    client: clickhouse::Client,
}

impl ClickHouseFeedback {
    pub fn new(client: clickhouse::Client) -> Self {
        ClickHouseFeedback { client }
    }
}

#[async_trait]
impl FeedbackStore for ClickHouseFeedback {
    async fn summary(
        &self,
        measurement_uid: &str,
        account_id: &str,
    ) -> anyhow::Result<Vec<StatusCount>> {
        Ok(self
            .client
            .query(
                "SELECT status, toUInt8(account_id = ?) AS is_mine, count() AS cnt \
                 FROM msmt_feedback FINAL WHERE measurement_uid = ? GROUP BY status, is_mine",
            )
            .bind(account_id)
            .bind(measurement_uid)
            .fetch_all()
            .await?)
    }

    async fn submit(
        &self,
        measurement_uid: &str,
        account_id: &str,
        status: &str,
    ) -> anyhow::Result<()> {
        Ok(self
            .client
            .query(
                "INSERT INTO msmt_feedback (measurement_uid, account_id, status) VALUES (?, ?, ?)",
            )
            .bind(measurement_uid)
            .bind(account_id)
            .bind(status)
            .execute()
            .await?)
    }
}

/// `{summary: {status: count}, user_feedback?: status}` from the grouped rows.
pub fn summarize(rows: &[StatusCount]) -> Value {
    let mut summary = Map::new();
    let mut mine = None;
    for r in rows {
        let prev = summary.get(&r.status).and_then(Value::as_u64).unwrap_or(0);
        summary.insert(r.status.clone(), json!(prev + r.cnt));
        if r.is_mine == 1 {
            mine = Some(r.status.clone());
        }
    }
    let mut out = json!({ "summary": summary });
    if let (Some(m), Some(o)) = (mine, out.as_object_mut()) {
        o.insert("user_feedback".into(), json!(m));
    }
    out
}

/// Measurement uids are `\d{14}\.\d+_[A-Z]{2}_\w+_[0-9a-f]{16}`-like; accept the safe charset.
fn valid_uid(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= 100
        && uid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

/// `GET /api/_/measurement_feedback/{measurement_uid}`.
pub async fn get(s: Arc<State>, req: Request) -> HttpResult {
    let uid = path_param(&req, "measurement_uid")?;
    if !valid_uid(&uid) {
        return Err(ApiError::bad_request("Invalid measurement_uid"));
    }
    let account = crate::util::optional_user(&s.auth, &req)
        .await?
        .map(|c| c.account_id);
    // An anonymous caller matches no account (account ids are 32 hex characters).
    let rows = s
        .feedback
        .summary(&uid, account.as_deref().unwrap_or("-"))
        .await
        .map_err(ApiError::unavailable)?;
    json(&summarize(&rows), Cache::MaxAge(0))
}

#[derive(Debug, Deserialize)]
struct FeedbackRequest {
    #[serde(default)]
    measurement_uid: String,
    #[serde(default)]
    status: String,
}

/// `POST /api/_/measurement_feedback` (user or admin): `{measurement_uid, status}` → `{}`.
pub async fn submit(s: Arc<State>, req: Request) -> HttpResult {
    let claims = s.auth.require(&req, Role::User).await?;
    let body: FeedbackRequest = json_body(&req)?;
    let status = body.status.trim();
    if !VALID_STATUSES.contains(&status) {
        return Err(ApiError::bad_request("Invalid status"));
    }
    let uid = body.measurement_uid.trim();
    if !valid_uid(uid) {
        return Err(ApiError::bad_request("Invalid measurement_uid"));
    }
    s.feedback
        .submit(uid, &claims.account_id, status)
        .await
        .map_err(ApiError::unavailable)?;
    json(&json!({}), Cache::MaxAge(0))
}

/// The `MeasurementFeedback` function serves both methods.
pub async fn route(s: Arc<State>, req: Request) -> HttpResult {
    if req.method() == http::Method::POST {
        submit(s, req).await
    } else {
        get(s, req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_adds_up_statuses_and_names_the_callers_own() {
        let rows = vec![
            StatusCount {
                status: "ok".into(),
                is_mine: 0,
                cnt: 2,
            },
            StatusCount {
                status: "ok".into(),
                is_mine: 1,
                cnt: 1,
            },
            StatusCount {
                status: "blocked".into(),
                is_mine: 0,
                cnt: 4,
            },
        ];
        assert_eq!(
            summarize(&rows),
            json!({"summary": {"ok": 3, "blocked": 4}, "user_feedback": "ok"})
        );
        assert_eq!(summarize(&[]), json!({"summary": {}}));
    }

    #[test]
    fn the_status_list_is_the_upstream_tree() {
        assert!(VALID_STATUSES.contains(&"blocked.blockpage.server_side.captcha"));
        assert!(VALID_STATUSES.contains(&"down.misconfigured"));
        assert!(!VALID_STATUSES.contains(&"blocked.captcha"));
    }
}
