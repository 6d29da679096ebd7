//! The collector routes: `POST /report` (open), `POST /report/{report_id}` (submit) and
//! `POST /report/{report_id}/close`.
//!
//! Submit validates exactly as upstream (contract §2, `ooni_domain::submission`), then makes
//! the measurement durable before answering: the stored body goes to the incoming bucket under
//! `incoming_object_key(uid)`, then a `SubmissionEnvelope` (with the client address's GeoIP
//! CC/ASN, and the body inline when it fits) goes on the submissions queue. If either write
//! fails the answer is 503, so the probe retries; there is no `{}` answer for accepted
//! measurements (upstream answered `{}` when its fastpath was unreachable). A bucket failure
//! enqueues nothing and removes whatever the failed PUT may have stored (best effort). A queue
//! failure keeps the stored body: the send's outcome is unknown (a lost reply or an SDK retry
//! may have delivered it, and the scorer may have written the row already), and a row must
//! never lose its body; a body without a message gets no row and stays invisible to API users. Report ids with `ZZ` or AS0 keep upstream's
//! answer, 200 `{}`, with nothing stored and a `submission_discarded` counter log line.

use crate::state::State;
use bytes::Bytes;
use http::StatusCode;
use lambda_http::Request;
use ooni_domain::envelope::{incoming_object_key, SubmissionEnvelope};
use ooni_domain::normalize::normalize_open_report;
use ooni_domain::submission::{
    check_report_id, validate_submission, Accepted, DiscardReason, Outcome, Rejected, ReportIdCheck,
};
use ooni_domain::MeasurementUid;
use ooni_platform::request::{body_bytes, header, path_param};
use ooni_platform::response::{json, raw};
use ooni_platform::{ApiError, Cache, ErrorBody, HttpResult};
use serde::Deserialize;
use std::sync::Arc;

/// An error answer with an exact JSON body (FastAPI's `{"detail": ...}` from the domain).
fn rejected(r: &Rejected) -> ApiError {
    let status = StatusCode::from_u16(r.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let body = serde_json::from_str(&r.body_json())
        .unwrap_or_else(|_| serde_json::json!({"detail": "Incorrect format"}));
    ApiError::new(status, ErrorBody::Exact(body))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OpenReport {
    probe_asn: Option<String>,
    probe_cc: Option<String>,
    test_name: Option<String>,
    software_name: Option<String>,
    software_version: Option<String>,
}

/// `POST /report`: a new report id from the (normalised) probe metadata; nothing is stored.
pub async fn open_report(s: Arc<State>, req: Request) -> HttpResult {
    let body: serde_json::Value = ooni_platform::request::json_body_422(&req)?;
    if !body.is_object() {
        return Err(ApiError::unprocessable(
            "the request body must be a JSON object",
        ));
    }
    let r: OpenReport =
        serde_json::from_value(body).map_err(|e| ApiError::unprocessable(e.to_string()))?;
    let meta = normalize_open_report(
        r.probe_cc.as_deref().unwrap_or("ZZ"),
        r.probe_asn.as_deref().unwrap_or("AS0"),
        r.test_name.as_deref().unwrap_or(""),
    );
    let report_id = ooni_domain::generate_report_id(
        s.ports.clock.now(),
        &meta.test_name,
        &meta.cc,
        meta.asn,
        &s.settings.collector_id,
        &mut rand::rng(),
    );
    tracing::debug!(
        %report_id,
        software_name = r.software_name.as_deref().unwrap_or(""),
        software_version = r.software_version.as_deref().unwrap_or(""),
        "report opened"
    );
    json(
        &serde_json::json!({
            "backend_version": "1.3.5",
            "supported_formats": ["yaml", "json"],
            "report_id": report_id,
        }),
        Cache::NoCache,
    )
}

/// `POST /report/{report_id}/close`: `{}`, no effect.
pub async fn close_report(_s: Arc<State>, _req: Request) -> HttpResult {
    raw(StatusCode::OK, "application/json", "{}", Cache::NoCache)
}

/// Upstream's answer for ZZ/AS0 report ids: 200 `{}`, nothing stored, one counter line.
fn discarded(why: DiscardReason, report_id: &str) -> HttpResult {
    tracing::info!(counter = "submission_discarded", reason = why.reason(), %report_id, "submission discarded");
    raw(
        StatusCode::OK,
        "application/json",
        why.body_json(),
        Cache::NoCache,
    )
}

/// `POST /report/{report_id}`: validate, store, enqueue, answer the uid.
pub async fn submit(s: Arc<State>, req: Request) -> HttpResult {
    let report_id = path_param(&req, "report_id")?;
    // Steps 1-3 first, as upstream: a malformed or discarded report id is answered before the
    // body is looked at.
    match check_report_id(&report_id) {
        Ok(ReportIdCheck::Proceed(_)) => {}
        Ok(ReportIdCheck::Discard(why)) => return discarded(why, &report_id),
        Err(r) => {
            tracing::info!(counter = "submission_rejected", reason = r.reason(), %report_id, "submission rejected");
            return Err(rejected(&r));
        }
    }
    let body = body_bytes(&req);
    let limit = s.settings.max_submission_bytes;
    if body.len() > limit {
        // Refused before decompressing anything.
        tracing::info!(
            counter = "submission_rejected",
            reason = "too_large",
            raw_len = body.len(),
            "submission rejected"
        );
        return Err(rejected(&Rejected::TooLarge { limit }));
    }
    let now = s.ports.clock.now();
    let outcome = validate_submission(
        &report_id,
        header(&req, "content-encoding"),
        body,
        limit,
        now,
    );
    let accepted = match outcome {
        Ok(Outcome::Accepted(a)) => a,
        Ok(Outcome::Discarded(why)) => return discarded(why, &report_id),
        Err(r) => {
            tracing::info!(counter = "submission_rejected", reason = r.reason(), %report_id, "submission rejected");
            return Err(rejected(&r));
        }
    };
    let geo = match s.client_ip(&req) {
        Some(ip) => s.geoip().await.lookup(ip),
        None => Default::default(),
    };
    let uid = store_and_enqueue(&s, &report_id, *accepted, geo.cc, geo.asn).await?;
    let mut out = String::with_capacity(uid.as_str().len() + 22);
    out.push_str("{\"measurement_uid\":\"");
    out.push_str(uid.as_str());
    out.push_str("\"}");
    raw(StatusCode::OK, "application/json", out, Cache::NoCache)
}

/// The queue message for `accepted`, with the body inline when the message stays within
/// `inline_limit`. The body was validated as JSON by `validate_submission`, so it is appended
/// as the last field without being parsed again (the message parses back with
/// `SubmissionEnvelope::from_json`, see the tests).
pub fn envelope_message(
    env: &SubmissionEnvelope,
    body: &[u8],
    inline_limit: usize,
) -> Result<String, ApiError> {
    let head = env.to_json().map_err(ApiError::internal)?;
    let with_body = head.len() + 8 + body.len();
    if with_body > inline_limit || env.body.is_some() {
        return Ok(head);
    }
    let Ok(text) = std::str::from_utf8(body) else {
        return Ok(head);
    };
    let Some(open) = head.strip_suffix('}') else {
        return Err(ApiError::internal(anyhow::anyhow!(
            "envelope is not a JSON object"
        )));
    };
    let mut msg = String::with_capacity(with_body);
    msg.push_str(open);
    msg.push_str(",\"body\":");
    msg.push_str(text);
    msg.push('}');
    Ok(msg)
}

/// Stores the body and enqueues its envelope; 503 when either fails.
pub async fn store_and_enqueue(
    s: &State,
    report_id: &str,
    accepted: Accepted,
    client_cc: Option<String>,
    client_asn: Option<u32>,
) -> Result<MeasurementUid, ApiError> {
    let queue = s.ports.queue.as_ref().ok_or_else(|| {
        ApiError::unavailable(anyhow::anyhow!("the submissions queue is not configured"))
    })?;
    let uid = accepted.measurement_uid;
    let key = incoming_object_key(&uid);
    let body = Bytes::from(accepted.body);
    let env = SubmissionEnvelope::new(uid.clone(), report_id, client_cc, client_asn);
    let message = envelope_message(&env, &body, s.settings.inline_limit)?;

    if let Err(e) = s.ports.incoming.put(&key, body, "application/json").await {
        tracing::error!(counter = "submission_store_failed", measurement_uid = %uid, error = %e, "could not store measurement");
        // The PUT may have succeeded anyway (a lost reply): remove what may be there. No
        // message names this key yet, so nothing queued can lose its body.
        if let Err(del) = s.ports.incoming.delete(&key).await {
            tracing::warn!(measurement_uid = %uid, error = %del, "could not remove the body after the store failure");
        }
        return Err(ApiError::unavailable(e));
    }
    if let Err(e) = queue.send(message).await {
        // The body stays: the message may have been delivered anyway (a lost reply, or an SDK
        // retry after an earlier attempt got through) and scored already, and removing the
        // body would leave a visible row whose body is gone. A body nobody enqueued has no
        // row, so API users never see it.
        tracing::error!(counter = "submission_enqueue_failed", measurement_uid = %uid, error = %e, "could not enqueue measurement");
        return Err(ApiError::unavailable(e));
    }
    tracing::info!(counter = "submission_accepted", measurement_uid = %uid, %report_id, "measurement stored and enqueued");
    Ok(uid)
}
