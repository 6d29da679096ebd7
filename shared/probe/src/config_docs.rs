//! Documents the probe services read from the config bucket, their keys and formats, and
//! upstream's static fallbacks.
//!
//! | key | format | when absent |
//! | --- | --- | --- |
//! | `geoip/cc.mmdb`, `geoip/asn.mmdb` | MMDB, see [`crate::geoip`] | no GeoIP (`ZZ`/`AS0`) |
//! | `test-helpers.json` | [`TestHelpersDoc`] | upstream's static list |
//! | `feature-flags.json` | `ooni_domain::checkin::FeatureFlags` | upstream's defaults |
//! | `tor-targets.json` | any JSON object, served as is | 503 |
//! | `psiphon-config.json` | any JSON object, served as is | 503 |
//! | `vpn/riseupvpn.json` | [`VpnProviderDoc`] | 503 |
//!
//! `test-helpers.json` is what the helper-rotation job writes: the `/api/v1/test-helpers`
//! object (helper kind → list of `{address, type, front?}`) plus an optional `"canary"` rule
//! (`ooni_domain::checkin::CanaryRule`: `{helper, share_percent, salt, fallback_for_others}`).
//! In `web-connectivity`, helpers of type `https` are shuffled per answer and the others
//! (fronted ones) follow in their given order, as upstream does.

use ooni_domain::checkin::{CanaryRule, FeatureFlags, TestHelper};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;

pub const TEST_HELPERS_KEY: &str = "test-helpers.json";
pub const FEATURE_FLAGS_KEY: &str = "feature-flags.json";
pub const TOR_TARGETS_KEY: &str = "tor-targets.json";
pub const PSIPHON_CONFIG_KEY: &str = "psiphon-config.json";

/// Config-bucket key of a VPN provider's credentials.
pub fn vpn_key(provider: &str) -> String {
    format!("vpn/{provider}.json")
}

/// A config document that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    #[error("{key} is not valid: {source}")]
    Invalid {
        key: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("{key} must be a JSON object")]
    NotAnObject { key: &'static str },
    #[error("{key} is invalid: {reason}")]
    Semantics { key: &'static str, reason: String },
}

/// The test-helper document (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestHelpersDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryRule>,
    #[serde(flatten)]
    pub helpers: BTreeMap<String, Vec<TestHelper>>,
}

impl TestHelpersDoc {
    pub fn parse(bytes: &[u8]) -> Result<Self, DocError> {
        let doc: TestHelpersDoc =
            serde_json::from_slice(bytes).map_err(|source| DocError::Invalid {
                key: TEST_HELPERS_KEY,
                source,
            })?;
        if !doc.helpers.contains_key("web-connectivity") {
            return Err(DocError::Semantics {
                key: TEST_HELPERS_KEY,
                reason: "no web-connectivity helpers".into(),
            });
        }
        if let Some(c) = &doc.canary {
            if !(0.0..=100.0).contains(&c.share_percent) {
                return Err(DocError::Semantics {
                    key: TEST_HELPERS_KEY,
                    reason: format!("canary share {} is not within 0..=100", c.share_percent),
                });
            }
        }
        Ok(doc)
    }

    /// Upstream's static configuration (new service, contract §6), without a canary.
    pub fn upstream() -> Self {
        let legacy = |a: &str| TestHelper {
            address: a.into(),
            kind: "legacy".into(),
            front: None,
        };
        let mut helpers = BTreeMap::new();
        helpers.insert(
            "dns".into(),
            vec![legacy("37.218.241.93:57004"), legacy("37.218.241.93:57004")],
        );
        helpers.insert(
            "http-return-json-headers".into(),
            vec![
                legacy("http://206.81.31.205:80"),
                legacy("http://206.81.31.205:80"),
            ],
        );
        helpers.insert(
            "ssl".into(),
            vec![
                legacy("https://37.218.241.93"),
                legacy("https://37.218.241.93"),
            ],
        );
        helpers.insert(
            "tcp-echo".into(),
            vec![legacy("134.209.237.204"), legacy("134.209.237.204")],
        );
        helpers.insert(
            "traceroute".into(),
            vec![legacy("37.218.241.93"), legacy("37.218.241.93")],
        );
        let mut wc: Vec<TestHelper> = ["ooni.org", "prod.ooni.io"]
            .iter()
            .flat_map(|d| {
                (0..3).map(move |i| TestHelper::https(format!("https://wcth{i}.fra1.{d}")))
            })
            .collect();
        wc.push(cloudfront_helper());
        helpers.insert("web-connectivity".into(), wc);
        TestHelpersDoc {
            canary: None,
            helpers,
        }
    }
}

/// The fronted web-connectivity helper every upstream list ends with.
pub fn cloudfront_helper() -> TestHelper {
    TestHelper {
        address: "https://d33d1gs9kpq1c5.cloudfront.net".into(),
        kind: "cloudfront".into(),
        front: Some("d33d1gs9kpq1c5.cloudfront.net".into()),
    }
}

/// Parses the feature-flag document.
pub fn parse_flags(bytes: &[u8]) -> Result<FeatureFlags, DocError> {
    let text = std::str::from_utf8(bytes).map_err(|_| DocError::NotAnObject {
        key: FEATURE_FLAGS_KEY,
    })?;
    FeatureFlags::from_json(text).map_err(|e| DocError::Semantics {
        key: FEATURE_FLAGS_KEY,
        reason: e.to_string(),
    })
}

/// A JSON object served verbatim (tor targets, psiphon config).
pub fn parse_object(key: &'static str, bytes: &[u8]) -> Result<Box<RawValue>, DocError> {
    let raw: Box<RawValue> =
        serde_json::from_slice(bytes).map_err(|source| DocError::Invalid { key, source })?;
    if !raw.get().trim_start().starts_with('{') {
        return Err(DocError::NotAnObject { key });
    }
    Ok(raw)
}

/// OpenVPN credentials of a provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenVpnCredentials {
    pub ca: String,
    pub cert: String,
    pub key: String,
}

/// One gateway of a provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpnEndpoint {
    /// `IP:PORT`.
    pub address: String,
    /// `tcp` or `udp`.
    pub transport: String,
}

/// `vpn/<provider>.json`, written by the VPN-credentials job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpnProviderDoc {
    pub config: OpenVpnCredentials,
    /// When the credentials were fetched, as the job wrote it (served as is).
    pub date_updated: String,
    pub endpoints: Vec<VpnEndpoint>,
}

impl VpnProviderDoc {
    pub fn parse(key: &'static str, bytes: &[u8]) -> Result<Self, DocError> {
        let doc: VpnProviderDoc =
            serde_json::from_slice(bytes).map_err(|source| DocError::Invalid { key, source })?;
        if doc.endpoints.is_empty() {
            return Err(DocError::Semantics {
                key,
                reason: "no endpoints".into(),
            });
        }
        Ok(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upstream_helper_list_has_the_six_kinds_and_ends_with_cloudfront() {
        let doc = TestHelpersDoc::upstream();
        let keys: Vec<&str> = doc.helpers.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "dns",
                "http-return-json-headers",
                "ssl",
                "tcp-echo",
                "traceroute",
                "web-connectivity"
            ]
        );
        let wc = &doc.helpers["web-connectivity"];
        assert_eq!(wc.len(), 7);
        assert_eq!(wc.last(), Some(&cloudfront_helper()));
    }

    #[test]
    fn a_helper_document_with_a_canary_parses_and_round_trips() {
        let text = r#"{"web-connectivity":[{"address":"https://1.th.ooni.org","type":"https"}],
            "dns":[{"address":"1.2.3.4:53","type":"legacy"}],
            "canary":{"helper":{"address":"https://0.th.ooni.org","type":"https"},"share_percent":10,"salt":"s"}}"#;
        let doc = TestHelpersDoc::parse(text.as_bytes()).unwrap();
        assert_eq!(doc.canary.as_ref().map(|c| c.share_percent), Some(10.0));
        assert_eq!(doc.helpers.len(), 2);
        let back = TestHelpersDoc::parse(&serde_json::to_vec(&doc).unwrap()).unwrap();
        assert_eq!(back, doc);
    }

    #[test]
    fn a_helper_document_without_web_connectivity_or_with_a_bad_share_is_refused() {
        assert!(TestHelpersDoc::parse(br#"{"dns":[]}"#).is_err());
        let bad = r#"{"web-connectivity":[],"canary":{"helper":{"address":"a","type":"https"},"share_percent":150}}"#;
        assert!(TestHelpersDoc::parse(bad.as_bytes()).is_err());
    }

    #[test]
    fn only_json_objects_are_served_verbatim() {
        assert!(parse_object(TOR_TARGETS_KEY, br#" {"a":1}"#).is_ok());
        assert!(parse_object(TOR_TARGETS_KEY, b"[1]").is_err());
        assert!(parse_object(TOR_TARGETS_KEY, b"{nope").is_err());
    }

    #[test]
    fn a_vpn_document_needs_endpoints() {
        let ok = r#"{"config":{"ca":"c","cert":"e","key":"k"},"date_updated":"2024-01-01T00:00:00Z",
            "endpoints":[{"address":"1.2.3.4:1194","transport":"tcp"}]}"#;
        assert_eq!(
            VpnProviderDoc::parse("vpn/riseupvpn.json", ok.as_bytes())
                .unwrap()
                .endpoints
                .len(),
            1
        );
        let none = ok.replace(r#"{"address":"1.2.3.4:1194","transport":"tcp"}"#, "");
        assert!(VpnProviderDoc::parse("vpn/riseupvpn.json", none.as_bytes()).is_err());
    }
}
