//! Black-box tests of the quotas on the real DynamoDB emulator: an exhausted budget is a 429,
//! budgets refill when their window ends, sessions get their own budget, and the admin summary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::Duration;
use ooni_adapters::{Clock, FixedClock};
use ooni_measurements::quotas::QuotaConfig;
use ooni_measurements::ApiOptions;
use ooni_platform::auth::{Role, UserClaims, AUD_USER_AUTH};
use ooni_platform::functions::Table;
use serde_json::{json, Value};
use std::sync::Arc;

const BIG: u64 = 1 << 50;

/// A user session (its times are real: token expiry is checked against the system clock).
fn token(role: Role) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = UserClaims {
        nbf: now - 10,
        iat: now - 10,
        exp: now + 3600,
        aud: AUD_USER_AUTH.into(),
        login_time: now - 10,
        role,
        account_id: "a".repeat(32),
        email_address: None,
    };
    ooni_testkit::jwt_keys().user.sign(&claims).unwrap()
}

async fn get(base: &str, path: &str, xff: &str, bearer: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .header("x-forwarded-for", xff);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

/// A stack whose per-network daily budget is a single millisecond.
async fn tight() -> (
    ooni_testkit::TestStack,
    ooni_testkit::TestServer,
    Arc<FixedClock>,
) {
    let clock = Arc::new(FixedClock::new(common::now()));
    let options = ApiOptions {
        clock: Some(clock.clone()),
        quota_config: Some(QuotaConfig {
            ip_budget_ms: [1, BIG, BIG],
            account_budget_ms: [BIG, BIG, BIG],
            ..QuotaConfig::default()
        }),
        ..ApiOptions::default()
    };
    let (stack, server, _) = common::start(options).await;
    (stack, server, clock)
}

const PATH: &str = "/api/v1/aggregation?since=2021-07-09&until=2021-07-10";

#[tokio::test]
async fn an_exhausted_budget_is_429_until_the_next_day_refills_it() {
    let (_stack, server, clock) = tight().await;
    let first = get(&server.base_url, PATH, "198.51.100.7", None).await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["x-ratelimit-remaining"], "0");

    // Same /24, different host: same budget.
    let second = get(&server.base_url, PATH, "198.51.100.99", None).await;
    assert_eq!(second.status(), 429);
    assert_eq!(second.headers()["x-ratelimit-remaining"], "0");
    assert_eq!(second.headers()["content-type"], "application/json");
    assert_eq!(
        second.json::<Value>().await.unwrap(),
        json!({"error": "quota exceeded"})
    );

    // Other routes share the budget; other networks have their own.
    assert_eq!(
        get(&server.base_url, "/api/_/test_names", "198.51.100.7", None)
            .await
            .status(),
        429
    );
    assert_eq!(
        get(&server.base_url, PATH, "203.0.113.5", None)
            .await
            .status(),
        200
    );

    clock.advance(Duration::days(1));
    let refilled = get(&server.base_url, PATH, "198.51.100.7", None).await;
    assert_eq!(refilled.status(), 200, "a new day refills the daily budget");
}

#[tokio::test]
async fn counters_are_kept_in_dynamodb_by_hashed_network() {
    let (stack, server, clock) = tight().await;
    assert_eq!(
        get(&server.base_url, PATH, "198.51.100.7", None)
            .await
            .status(),
        200
    );
    let table = stack.ctx.table(Table::Quotas);
    let day = format!("d{}", clock.now().format("%Y-%m-%d"));
    let mut items = Vec::new();
    for shard in 0..16 {
        items.extend(
            table
                .query_all(&format!("quota#{day}#{shard:x}"), None)
                .await
                .unwrap(),
        );
    }
    assert_eq!(items.len(), 1, "{items:?}");
    let sk = ooni_adapters::dynamo::item_str(&items[0], "sk")
        .unwrap()
        .to_owned();
    assert!(sk.starts_with("ip:") && !sk.contains("198.51"), "{sk}");
    assert!(ooni_adapters::dynamo::item_i64(&items[0], "used_ms").unwrap() >= 1);
    assert!(ooni_adapters::dynamo::item_i64(&items[0], "ttl").unwrap() > clock.now().timestamp());
}

#[tokio::test]
async fn a_valid_session_is_metered_by_account_with_its_own_budget() {
    let (_stack, server, _clock) = tight().await;
    assert_eq!(
        get(&server.base_url, PATH, "198.51.100.7", None)
            .await
            .status(),
        200
    );
    assert_eq!(
        get(&server.base_url, PATH, "198.51.100.7", None)
            .await
            .status(),
        429
    );
    let user = token(Role::User);
    let resp = get(&server.base_url, PATH, "198.51.100.7", Some(&user)).await;
    assert_eq!(resp.status(), 200);
    let left: u64 = resp.headers()["x-ratelimit-remaining"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(left > 1_000_000, "{left}");
    // A bad token on a public route is metered as anonymous, not rejected.
    assert_eq!(
        get(&server.base_url, PATH, "198.51.100.7", Some("not-a-token"))
            .await
            .status(),
        429
    );
}

#[tokio::test]
async fn the_quota_summary_is_for_admins_and_lists_hashed_clients() {
    let (_stack, server, _clock) = tight().await;
    assert_eq!(
        get(&server.base_url, PATH, "198.51.100.7", None)
            .await
            .status(),
        200
    );
    assert_eq!(
        get(&server.base_url, PATH, "203.0.113.5", None)
            .await
            .status(),
        200
    );
    assert_eq!(
        get(&server.base_url, "/api/_/quotas_summary", "192.0.2.1", None)
            .await
            .status(),
        401
    );
    let user = token(Role::User);
    assert_eq!(
        get(
            &server.base_url,
            "/api/_/quotas_summary",
            "192.0.2.1",
            Some(&user)
        )
        .await
        .status(),
        403
    );
    let admin = token(Role::Admin);
    let resp = get(
        &server.base_url,
        "/api/_/quotas_summary",
        "192.0.2.1",
        Some(&admin),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-cache");
    assert!(
        resp.headers().get("x-ratelimit-remaining").is_none(),
        "the admin summary is not metered"
    );
    let rows: Vec<(String, f64)> = resp.json().await.unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows.iter()
            .all(|(k, left)| k.starts_with("ip:") && *left == 0.0),
        "{rows:?}"
    );
}
