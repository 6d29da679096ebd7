//! Every accounts function has sample API Gateway events that parse as Lambda HTTP requests
//! and name one of the function's routes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ooni_platform::functions::{function, Trigger};

#[test]
fn each_function_has_parseable_sample_events_for_its_own_routes() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events");
    for name in ooni_accounts::FUNCTIONS {
        let spec = function(name).unwrap();
        let Trigger::Http(routes) = spec.trigger else {
            panic!("{name} is not HTTP")
        };
        let dir = root.join(name);
        let files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{dir:?}: {e}"))
            .map(|e| e.unwrap().path())
            .collect();
        assert!(!files.is_empty(), "{name} has no sample event");
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            let key = v["routeKey"].as_str().unwrap();
            assert!(
                routes
                    .iter()
                    .any(|(m, p)| format!("{} {}", m.as_str(), p) == key),
                "{f:?}: {key}"
            );
            lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{f:?}: {e}"));
        }
    }
}
