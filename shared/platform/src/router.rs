//! Matches a request path against the route table's API Gateway path templates (`{param}`),
//! the way API Gateway does, so the local server hands handlers the same path parameters.

use crate::functions::{routes, Method, Route};
use std::collections::HashMap;

/// A compiled route table: exact segments win over parameters, as in API Gateway.
#[derive(Clone, Debug)]
pub struct Router {
    routes: Vec<Route>,
}

/// The result of routing one request.
#[derive(Debug, PartialEq, Eq)]
pub enum RouteMatch {
    Found {
        route: Route,
        params: HashMap<String, String>,
    },
    /// The path exists but not for this method.
    MethodNotAllowed,
    NotFound,
}

impl Default for Router {
    fn default() -> Self {
        Router::new(routes())
    }
}

impl Router {
    pub fn new(routes: Vec<Route>) -> Self {
        Router { routes }
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    pub fn find(&self, method: Method, path: &str) -> RouteMatch {
        let segments: Vec<&str> = split(path);
        let mut best: Option<(usize, Route, HashMap<String, String>)> = None;
        let mut path_matched = false;
        for route in &self.routes {
            let Some((exact, params)) = match_template(route.path, &segments) else {
                continue;
            };
            path_matched = true;
            if route.method != method {
                continue;
            }
            if best.as_ref().is_none_or(|(e, _, _)| exact > *e) {
                best = Some((exact, *route, params));
            }
        }
        match best {
            Some((_, route, params)) => RouteMatch::Found { route, params },
            None if path_matched => RouteMatch::MethodNotAllowed,
            None => RouteMatch::NotFound,
        }
    }
}

fn split(path: &str) -> Vec<&str> {
    path.trim_start_matches('/').split('/').collect()
}

/// Returns the number of literal segments matched and the captured parameters.
fn match_template(template: &str, segments: &[&str]) -> Option<(usize, HashMap<String, String>)> {
    let parts = split(template);
    if parts.len() != segments.len() {
        return None;
    }
    let mut params = HashMap::new();
    let mut exact = 0;
    for (part, seg) in parts.iter().zip(segments) {
        if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            if seg.is_empty() {
                return None;
            }
            let decoded = percent_encoding::percent_decode_str(seg)
                .decode_utf8_lossy()
                .into_owned();
            params.insert(name.to_string(), decoded);
        } else if part == seg {
            exact += 1;
        } else {
            return None;
        }
    }
    Some((exact, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_route_beats_parameter_route() {
        let router = Router::default();
        match router.find(Method::Post, "/api/v1/incidents/create") {
            RouteMatch::Found { route, .. } => assert_eq!(route.function, "IncidentsWrite"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parameters_are_captured_and_percent_decoded() {
        let router = Router::default();
        match router.find(Method::Get, "/api/v1/get_account_role/a%40b.org") {
            RouteMatch::Found { route, params } => {
                assert_eq!(route.function, "GetAccountRole");
                assert_eq!(
                    params.get("email_address").map(String::as_str),
                    Some("a@b.org")
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn submit_and_close_are_distinguished_by_segment_count() {
        let router = Router::default();
        let f = |p| match router.find(Method::Post, p) {
            RouteMatch::Found { route, .. } => route.function,
            _ => "none",
        };
        assert_eq!(f("/report"), "ReportOpen");
        assert_eq!(f("/report/abc"), "ReportSubmit");
        assert_eq!(f("/report/abc/close"), "ReportClose");
    }

    #[test]
    fn wrong_method_and_unknown_path_are_told_apart() {
        let router = Router::default();
        assert_eq!(
            router.find(Method::Get, "/report"),
            RouteMatch::MethodNotAllowed
        );
        assert_eq!(router.find(Method::Get, "/nope"), RouteMatch::NotFound);
    }
}
