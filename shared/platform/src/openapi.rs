//! The OpenAPI 3 document of every HTTP route, generated from the function table (so it cannot
//! drift from what is served), and the `ApiSpec` function that serves it at `/apispec_1.json`
//! (upstream's path) and `/apispec.json`.

use crate::functions::{routes, Binary, FUNCTIONS};
use crate::handler::{fn_handler, Handler, HttpResult, Service};
use crate::response::{json, Cache};
use async_trait::async_trait;
use lambda_http::Request;
use serde_json::{json, Map, Value};
use std::sync::Arc;

fn tag(binary: Binary) -> &'static str {
    match binary {
        Binary::Probe => "probe services",
        Binary::Api => "measurements",
        Binary::Accounts => "accounts, OONI Run, findings",
        Binary::Admin => "admin",
        Binary::Fastpath | Binary::Jobs => "internal",
    }
}

/// Builds the document.
pub fn document(version: &str) -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for route in routes() {
        let binary = FUNCTIONS
            .iter()
            .find(|f| f.name == route.function)
            .map(|f| f.binary)
            .unwrap_or(Binary::Probe);
        let params: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let method = route.method.as_str().to_lowercase();
        let mut op = json!({
            "operationId": format!("{}_{}", route.function, method),
            "tags": [tag(binary)],
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {}}},
                "400": {"description": "Bad request", "content": {"application/json": {}}},
            }
        });
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        let entry = paths
            .entry(route.path.to_string())
            .or_insert_with(|| json!({}));
        entry[method] = op;
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "OONI API", "version": version, "description": "OONI backend (Rust, AWS Lambda)"},
        "paths": paths,
    })
}

async fn serve_spec(doc: Arc<Value>, _: Request) -> HttpResult {
    json(doc.as_ref(), Cache::MaxAge(3600))
}

/// Serves the `ApiSpec` function.
pub struct OpenApiService;

#[async_trait]
impl Service for OpenApiService {
    fn functions(&self) -> Vec<&'static str> {
        vec!["ApiSpec"]
    }

    async fn build(&self, function: &str) -> anyhow::Result<Option<Handler>> {
        if function != "ApiSpec" {
            return Ok(None);
        }
        let doc = Arc::new(document(env!("CARGO_PKG_VERSION")));
        Ok(Some(fn_handler(doc, serve_spec)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn the_spec_lists_exactly_the_routes_of_the_function_table() {
        let doc = document("test");
        let mut in_spec = BTreeSet::new();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for method in ops.as_object().unwrap().keys() {
                in_spec.insert((method.to_uppercase(), path.clone()));
            }
        }
        let table: BTreeSet<_> = routes()
            .iter()
            .map(|r| (r.method.as_str().to_string(), r.path.to_string()))
            .collect();
        assert_eq!(in_spec, table);
    }

    #[test]
    fn path_parameters_are_declared() {
        let doc = document("test");
        let op = &doc["paths"]["/report/{report_id}"]["post"];
        assert_eq!(op["parameters"][0]["name"], "report_id");
        assert_eq!(op["parameters"][0]["in"], "path");
    }
}
