//! Contracts between the code and the deployment: `template.yaml` is generated from the function
//! table and declares exactly its routes; every sample event parses as its function's input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sqs::SqsEvent;
use ooni_platform::functions::{routes, Trigger, FUNCTIONS};
use serde_yaml::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn template() -> Value {
    let text = std::fs::read_to_string(repo().join("template.yaml")).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => &t.value,
        other => other,
    }
}

#[test]
fn template_yaml_is_generated_from_the_current_function_table() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ooni"))
        .args(["template", "--check", "--output"])
        .arg(repo().join("template.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn template_routes_equal_the_route_table() {
    let t = template();
    let mut declared = BTreeSet::new();
    let resources = t["Resources"].as_mapping().unwrap();
    for (_, res) in resources {
        if res["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let props = &res["Properties"];
        let function = props["Environment"]["Variables"]["OONI_FUNCTION"]
            .as_str()
            .unwrap()
            .to_string();
        let Some(events) = props["Events"].as_mapping() else {
            continue;
        };
        for (_, ev) in events {
            if ev["Type"].as_str() == Some("HttpApi") {
                let method = ev["Properties"]["Method"].as_str().unwrap().to_string();
                let path = ev["Properties"]["Path"].as_str().unwrap().to_string();
                declared.insert((method, path, function.clone()));
            }
        }
    }
    let table: BTreeSet<_> = routes()
        .into_iter()
        .map(|r| {
            (
                r.method.as_str().to_string(),
                r.path.to_string(),
                r.function.to_string(),
            )
        })
        .collect();
    assert_eq!(declared, table);
    assert!(table.len() > 70, "{}", table.len());
}

#[test]
fn every_function_in_the_template_runs_on_provided_al2023_with_the_architecture_parameter() {
    let t = template();
    let globals = &t["Globals"]["Function"];
    assert_eq!(globals["Runtime"].as_str(), Some("provided.al2023"));
    let arch = &globals["Architectures"][0];
    assert_eq!(untag(arch).as_str(), Some("Architecture"));
    let count = t["Resources"]
        .as_mapping()
        .unwrap()
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .count();
    assert_eq!(count, FUNCTIONS.len());
}

#[test]
fn the_scorer_reports_partial_batch_failures_and_the_queue_has_a_dlq() {
    let t = template();
    let scorer =
        &t["Resources"]["ScorerFunction"]["Properties"]["Events"]["Submissions"]["Properties"];
    assert_eq!(
        scorer["FunctionResponseTypes"][0].as_str(),
        Some("ReportBatchItemFailures")
    );
    let redrive = &t["Resources"]["SubmissionsQueue"]["Properties"]["RedrivePolicy"];
    assert_eq!(redrive["maxReceiveCount"].as_u64(), Some(5));
}

fn event_files() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for dir in std::fs::read_dir(repo().join("events")).unwrap() {
        let dir = dir.unwrap();
        let name = dir.file_name().to_string_lossy().into_owned();
        for f in std::fs::read_dir(dir.path()).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|e| e == "json") {
                out.push((name.clone(), p));
            }
        }
    }
    out
}

#[test]
fn every_sample_event_parses_as_its_functions_input() {
    let files = event_files();
    assert!(!files.is_empty());
    for (function, path) in files {
        let spec = ooni_platform::functions::function(&function)
            .unwrap_or_else(|| panic!("events/{function} names no function"));
        let text = std::fs::read_to_string(&path).unwrap();
        match spec.trigger {
            Trigger::Http(routes) => {
                let req = lambda_http::request::from_str(&text)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let method = req.method().as_str().to_string();
                assert!(
                    routes.iter().any(|(m, _)| m.as_str() == method),
                    "{}: method {method} is not a route of {function}",
                    path.display()
                );
            }
            Trigger::SubmissionsQueue => {
                let ev: SqsEvent = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert!(!ev.records.is_empty());
            }
            Trigger::Schedule(_) => {
                let ev: EventBridgeEvent = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert_eq!(ev.detail_type, "Scheduled Event");
            }
            Trigger::Deploy => {
                let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                assert!(v["RequestType"].is_string(), "{}", path.display());
            }
        }
    }
}

#[test]
fn every_function_has_a_sample_event() {
    let have: BTreeSet<String> = event_files().into_iter().map(|(f, _)| f).collect();
    let missing: Vec<&str> = FUNCTIONS
        .iter()
        .map(|f| f.name)
        .filter(|n| !have.contains(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "events/<function>/ missing for {missing:?}"
    );
}
