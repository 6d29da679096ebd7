//! `ooni job JobBackup` then `ooni backup restore DATE`, as the runbook does it, against the
//! real local ClickHouse and AWS emulator: the restored table equals the live one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ooni_testkit::TestStack;
use std::process::Command;

/// The `ooni` CLI configured for `stack`'s database, buckets and tables.
fn ooni(stack: &TestStack, args: &[&str]) -> String {
    let n = &stack.names;
    let out = Command::new(env!("CARGO_BIN_EXE_ooni"))
        .args(args)
        .env("OONI_CLICKHOUSE_URL", &stack.clickhouse.url)
        .env("OONI_CLICKHOUSE_DATABASE", &stack.clickhouse.database)
        .env("AWS_ENDPOINT_URL", ooni_testkit::aws_endpoint())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("OONI_INCOMING_BUCKET", &n.incoming_bucket)
        .env("OONI_DATA_BUCKET", &n.data_bucket)
        .env("OONI_CONFIG_BUCKET", &n.config_bucket)
        .env("OONI_BACKUP_BUCKET", &n.backup_bucket)
        .env("OONI_SUBMISSIONS_QUEUE_NAME", &n.submissions_queue)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ooni {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn a_backup_made_by_the_job_is_restored_by_the_cli_into_an_equal_table() {
    let stack = TestStack::start().await;
    stack
        .ch()
        .query(
            "INSERT INTO url_priorities (sign, category_code, cc, domain, url, priority) VALUES \
             (1, 'NEWS', '*', '*', '*', 100), (1, 'NEWS', 'IT', '*', '*', 5), \
             (1, 'GRP', 'IR', 'x.org', 'https://x.org/\"a,b\"\n', 7)",
        )
        .execute()
        .await
        .unwrap();
    // stdout: the job's metric lines (one JSON object each), then its report, pretty-printed.
    let stdout = ooni(&stack, &["job", "JobBackup"]);
    let report_at = stdout.find("\n{\n").map_or(0, |i| i + 1);
    let report: serde_json::Value = serde_json::from_str(&stdout[report_at..]).unwrap();
    let date = report["details"]["date"]
        .as_str()
        .or_else(|| report["date"].as_str())
        .unwrap_or_else(|| panic!("no date in {report}"))
        .to_owned();

    let out = ooni(
        &stack,
        &["backup", "restore", &date, "--table", "url_priorities"],
    );
    assert_eq!(out.trim(), "url_priorities_restored: 3 rows");
    let hash = |t: &'static str| {
        let ch = stack.ch();
        async move { ooni_jobs::swap::content_hash(&ch, t).await.unwrap() }
    };
    assert_eq!(
        hash("url_priorities_restored").await,
        hash("url_priorities").await
    );
}
