//! Generates `template.yaml` (AWS SAM) from the function table, so the deployed routes, triggers
//! and least-privilege policies can never drift from what the code serves. The static parts
//! (parameters, buckets, queue, tables, API, alarms) are written here too.
//! `ooni template --check` (run by the tests) fails when the committed file is stale.

use ooni_platform::functions::{
    private_prefixes_of_others, Access, Binary, Bucket, FunctionSpec, Table, Tier, Trigger,
    FUNCTIONS,
};
/// Appends one formatted line (writing to a String cannot fail).
macro_rules! wl {
    ($out:expr, $($arg:tt)*) => {{
        $out.push_str(&format!($($arg)*));
        $out.push('\n');
    }};
}

fn bucket_ref(b: Bucket) -> &'static str {
    match b {
        Bucket::Incoming => "IncomingBucket",
        Bucket::Data => "DataBucket",
        Bucket::Config => "ConfigBucket",
        Bucket::Backup => "BackupBucket",
    }
}

fn table_ref(t: Table) -> &'static str {
    match t {
        Table::Quotas => "QuotasTable",
        Table::Oonirun => "OonirunTable",
        Table::Findings => "FindingsTable",
        Table::Accounts => "AccountsTable",
        Table::Editor => "EditorTable",
    }
}

/// Whether a function loads the JWT keys (every HTTP function of the user- or probe-facing areas).
fn needs_jwt(f: &FunctionSpec) -> bool {
    matches!(
        f.binary,
        Binary::Probe | Binary::Api | Binary::Accounts | Binary::Admin
    ) && matches!(f.trigger, Trigger::Http(_))
}

fn needs_secret(f: &FunctionSpec, name: &str) -> bool {
    match name {
        "AccountIdHashingKey" => matches!(f.binary, Binary::Accounts | Binary::Admin | Binary::Api),
        "QuotaHashKey" => f.metered,
        _ => false,
    }
}

fn policies(f: &FunctionSpec) -> String {
    let mut out = String::new();
    let mut stmt = |actions: &[&str], resources: &[String]| {
        wl!(out, "            - Effect: Allow");
        wl!(out, "              Action: [{}]", actions.join(", "));
        wl!(out, "              Resource:");
        for r in resources {
            wl!(out, "                - {r}");
        }
    };
    let mut params: Vec<&str> = Vec::new();
    for a in f.access {
        match *a {
            Access::ClickHouse => params.push("ClickHousePasswordParameter"),
            Access::Read(b) => stmt(
                &["s3:GetObject", "s3:ListBucket"],
                &[
                    format!("!GetAtt {}.Arn", bucket_ref(b)),
                    format!("!Sub '${{{}.Arn}}/*'", bucket_ref(b)),
                ],
            ),
            Access::Write(b) => stmt(
                &["s3:PutObject", "s3:AbortMultipartUpload"],
                &[format!("!Sub '${{{}.Arn}}/*'", bucket_ref(b))],
            ),
            Access::Delete(b) => stmt(
                &["s3:DeleteObject"],
                &[format!("!Sub '${{{}.Arn}}/*'", bucket_ref(b))],
            ),
            Access::SendSubmission => stmt(
                &["sqs:SendMessage"],
                &["!GetAtt SubmissionsQueue.Arn".into()],
            ),
            Access::ConsumeSubmissions => stmt(
                &[
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "sqs:ChangeMessageVisibility",
                ],
                &["!GetAtt SubmissionsQueue.Arn".into()],
            ),
            Access::ReadTable(t) => stmt(
                &[
                    "dynamodb:GetItem",
                    "dynamodb:Query",
                    "dynamodb:BatchGetItem",
                ],
                &[format!("!GetAtt {}.Arn", table_ref(t))],
            ),
            Access::WriteTable(t) => stmt(
                &[
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                    "dynamodb:ConditionCheckItem",
                ],
                &[format!("!GetAtt {}.Arn", table_ref(t))],
            ),
            Access::SendEmail => stmt(&["ses:SendEmail"], &["'*'".into()]),
            Access::Private(b, prefix) => stmt(
                &["s3:GetObject", "s3:PutObject"],
                &[format!("!Sub '${{{}.Arn}}/{prefix}*'", bucket_ref(b))],
            ),
        }
    }
    if needs_jwt(f) {
        params.push("ProbeJwtKeyParameter");
        params.push("UserJwtKeyParameter");
    }
    for s in ["AccountIdHashingKey", "QuotaHashKey"] {
        if needs_secret(f, s) {
            params.push(if s == "AccountIdHashingKey" {
                "AccountIdHashingKeyParameter"
            } else {
                "QuotaHashKeyParameter"
            });
        }
    }
    if !params.is_empty() {
        let resources: Vec<String> = params
            .iter()
            .map(|p| format!("!Sub 'arn:${{AWS::Partition}}:ssm:${{AWS::Region}}:${{AWS::AccountId}}:parameter${{{p}}}'"))
            .collect();
        stmt(&["ssm:GetParameter"], &resources);
    }
    // Another function's private prefixes: denied (an explicit Deny beats the bucket-wide Allow).
    let mut buckets: Vec<Bucket> = f
        .access
        .iter()
        .filter_map(|a| match *a {
            Access::Read(b) | Access::Write(b) | Access::Delete(b) => Some(b),
            _ => None,
        })
        .collect();
    buckets.sort();
    buckets.dedup();
    for b in buckets {
        for prefix in private_prefixes_of_others(f.name, b) {
            wl!(out, "            - Effect: Deny");
            wl!(
                out,
                "              Action: [s3:GetObject, s3:PutObject, s3:DeleteObject]"
            );
            wl!(out, "              Resource:");
            wl!(
                out,
                "                - !Sub '${{{}.Arn}}/{prefix}*'",
                bucket_ref(b)
            );
        }
    }
    out
}

fn env_vars(f: &FunctionSpec) -> String {
    let mut out = format!("          OONI_FUNCTION: {}\n", f.name);
    if needs_jwt(f) {
        out.push_str("          OONI_PROBE_JWT_KEY_SSM_PARAMETER: !Ref ProbeJwtKeyParameter\n");
        out.push_str("          OONI_USER_JWT_KEY_SSM_PARAMETER: !Ref UserJwtKeyParameter\n");
    }
    if needs_secret(f, "AccountIdHashingKey") {
        out.push_str("          OONI_ACCOUNT_ID_HASHING_KEY_SSM_PARAMETER: !Ref AccountIdHashingKeyParameter\n");
    }
    if needs_secret(f, "QuotaHashKey") {
        out.push_str("          OONI_QUOTA_HASH_KEY_SSM_PARAMETER: !Ref QuotaHashKeyParameter\n");
    }
    out
}

fn function_yaml(f: &FunctionSpec) -> String {
    let mut y = String::new();
    let id = format!("{}Function", f.name);
    wl!(y, "  {id}:");
    wl!(y, "    Type: AWS::Serverless::Function");
    if !f.trigger_is_deploy() {
        wl!(y, "    DependsOn: SchemaMigrations");
    }
    wl!(y, "    Properties:");
    wl!(y, "      FunctionName: !Sub 'ooni-${{Stage}}-{}'", f.name);
    wl!(y, "      CodeUri: target/lambda/{}/", f.binary.bin_name());
    wl!(y, "      MemorySize: {}", f.memory_mb);
    wl!(y, "      Timeout: {}", f.timeout_s);
    if f.trigger_is_deploy() {
        // The migration function itself must exist before the custom resource that calls it.
    } else {
        // Gradual deployment with automatic rollback on the function's error alarm; migrations
        // are applied (custom resource) before any new code takes traffic.
        wl!(y, "      AutoPublishAlias: live");
        wl!(y, "      DeploymentPreference:");
        wl!(
            y,
            "        Type: !If [IsProd, Canary10Percent5Minutes, AllAtOnce]"
        );
        wl!(y, "        Alarms:");
        wl!(y, "          - !Ref {}ErrorsAlarm", f.name);
    }
    match f.tier {
        Tier::One => {
            wl!(
                y,
                "      ReservedConcurrentExecutions: !If [HasTier1Limit, !Ref Tier1ReservedConcurrency, !Ref 'AWS::NoValue']"
            );
        }
        Tier::Zero | Tier::Ops => {}
    }
    wl!(y, "      Environment:");
    wl!(y, "        Variables:");
    y.push_str(&env_vars(f));
    let pol = policies(f);
    if !pol.is_empty() {
        wl!(y, "      Policies:");
        wl!(y, "        - Version: '2012-10-17'");
        wl!(y, "          Statement:");
        y.push_str(&pol);
    }
    match f.trigger {
        Trigger::Http(routes) => {
            wl!(y, "      Events:");
            for (i, (method, path)) in routes.iter().enumerate() {
                wl!(y, "        Route{i}:");
                wl!(y, "          Type: HttpApi");
                wl!(y, "          Properties:");
                wl!(y, "            ApiId: !Ref HttpApi");
                wl!(y, "            Method: {}", method.as_str());
                wl!(y, "            Path: {path}");
            }
        }
        Trigger::SubmissionsQueue => {
            y.push_str(
                "      Events:\n        Submissions:\n          Type: SQS\n          Properties:\n            Queue: !GetAtt SubmissionsQueue.Arn\n            BatchSize: 10\n            MaximumBatchingWindowInSeconds: 1\n            FunctionResponseTypes:\n              - ReportBatchItemFailures\n",
            );
        }
        Trigger::Schedule(expr) => {
            wl!(y, "      Events:");
            wl!(y, "        Timer:");
            wl!(y, "          Type: Schedule");
            wl!(y, "          Properties:");
            wl!(y, "            Schedule: {expr}");
            wl!(y, "            Enabled: !If [SchedulesOn, true, false]");
        }
        Trigger::Deploy => {}
    }
    // Per-function error alarm, also the rollback trigger of gradual deployments.
    wl!(y, "  {}ErrorsAlarm:", f.name);
    wl!(y, "    Type: AWS::CloudWatch::Alarm");
    wl!(y, "    Properties:");
    wl!(
        y,
        "      AlarmDescription: !Sub 'ooni-${{Stage}} {} errors'",
        f.name
    );
    wl!(y, "      Namespace: AWS/Lambda");
    wl!(y, "      MetricName: Errors");
    wl!(y, "      Dimensions:");
    wl!(y, "        - Name: FunctionName");
    wl!(y, "          Value: !Ref {id}");
    wl!(y, "      Statistic: Sum");
    wl!(y, "      Period: 300");
    wl!(y, "      EvaluationPeriods: 1");
    wl!(y, "      Threshold: 5");
    wl!(y, "      ComparisonOperator: GreaterThanOrEqualToThreshold");
    wl!(y, "      TreatMissingData: notBreaching");
    wl!(y, "      AlarmActions: [!Ref AlarmTopic]");
    y
}

const HEADER: &str = include_str!("template_base.yaml");
const OUTPUTS: &str = include_str!("template_outputs.yaml");

trait DeployTrigger {
    fn trigger_is_deploy(&self) -> bool;
}

impl DeployTrigger for FunctionSpec {
    fn trigger_is_deploy(&self) -> bool {
        matches!(self.trigger, Trigger::Deploy)
    }
}

/// The custom resource that runs the forward-only ClickHouse migrations at deploy time; its
/// `MigrationsVersion` changes with every new migration, which makes CloudFormation call it again.
fn migrations_resource() -> String {
    let version = ooni_adapters::Migrator::embedded()
        .ok()
        .and_then(|m| m.migrations().iter().map(|x| x.version).max())
        .unwrap_or(0);
    format!(
        "  SchemaMigrations:\n    Type: Custom::Migrations\n    Properties:\n      ServiceToken: !GetAtt MigrateFunction.Arn\n      MigrationsVersion: '{version}'\n"
    )
}

/// The whole template.
pub fn render() -> String {
    let mut out = String::from(HEADER);
    out.push_str(&migrations_resource());
    out.push_str("\n  # ---- Functions (generated from shared/platform/src/functions.rs by `ooni template`) ----\n");
    for f in FUNCTIONS {
        out.push_str(&function_yaml(f));
    }
    out.push('\n');
    out.push_str(OUTPUTS);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_appears_once_with_its_binary() {
        let t = render();
        for f in FUNCTIONS {
            assert_eq!(
                t.matches(&format!("\n  {}Function:\n", f.name)).count(),
                1,
                "{}",
                f.name
            );
            assert!(t.contains(&format!("OONI_FUNCTION: {}\n", f.name)));
        }
    }

    /// The block of one function in the template.
    fn block(t: &str, name: &str) -> String {
        let start = t.find(&format!("\n  {name}Function:")).unwrap();
        let end = t[start + 1..]
            .find(&format!("\n  {name}ErrorsAlarm:"))
            .unwrap()
            + start;
        t[start..end].to_owned()
    }

    #[test]
    fn only_the_rotation_job_may_touch_the_helpers_tls_key() {
        let t = render();
        let deny = "- Effect: Deny\n              Action: [s3:GetObject, s3:PutObject, s3:DeleteObject]\n              Resource:\n                - !Sub '${ConfigBucket.Arn}/rotation/tls/*'";
        let rotation = block(&t, "JobTestHelperRotation");
        assert!(!rotation.contains("Effect: Deny"));
        assert!(rotation.contains("!Sub '${ConfigBucket.Arn}/rotation/tls/*'"));
        let readers = FUNCTIONS
            .iter()
            .filter(|f| f.name != "JobTestHelperRotation")
            .filter(|f| {
                f.access.iter().any(|a| {
                    matches!(
                        a,
                        Access::Read(Bucket::Config) | Access::Write(Bucket::Config)
                    )
                })
            });
        let mut n = 0;
        for f in readers {
            assert!(block(&t, f.name).contains(deny), "{}", f.name);
            n += 1;
        }
        assert!(
            n > 3,
            "the probe functions and the other config jobs read the config bucket"
        );
    }

    #[test]
    fn the_probe_submit_function_may_write_incoming_but_touch_no_table_or_data_bucket() {
        let t = render();
        let block = block(&t, "ReportSubmit");
        assert!(block.contains("s3:PutObject"));
        assert!(block.contains("sqs:SendMessage"));
        assert!(!block.contains("dynamodb:"));
        assert!(!block.contains("DataBucket"));
        assert!(!block.contains("ClickHousePasswordParameter"));
    }
}
