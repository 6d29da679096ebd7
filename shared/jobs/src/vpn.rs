//! `JobVpnCredentials`: refreshes the riseupvpn OpenVPN credentials and gateways the probe's
//! `GET /api/v2/ooniprobe/vpn-config/riseupvpn` serves, stored as `vpn/riseupvpn.json` in the
//! config bucket (shape: `ooni_probe::config_docs::VpnProviderDoc`).
//!
//! Sources (riseup's provider API, as upstream `ooniprobe/utils.py`):
//! - the CA certificate (PEM);
//! - a client certificate: one PEM document holding the private key and the certificate;
//! - `eip-service.json`: `gateways[].ip_address` and `capabilities.transport[]` entries of type
//!   `openvpn` with `protocols` × `ports` → endpoints `IP:PORT` over `tcp`/`udp`.
//!
//! The document is validated with the probe's own parser before it is written, in one PUT, so
//! a failed or killed run leaves the previous credentials in place.

use crate::checkpoint::{Point, Step};
use crate::job::{JobEnv, JobError, Loaded};
use crate::metrics::Outcome;
use bytes::Bytes;
use ooni_probe::config_docs::{vpn_key, OpenVpnCredentials, VpnEndpoint, VpnProviderDoc};
use serde::Deserialize;
use serde_json::json;
use std::net::IpAddr;

pub const JOB: &str = "JobVpnCredentials";
pub const PROVIDER: &str = "riseupvpn";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VpnError {
    #[error("{what} is not valid PEM: {message}")]
    Pem { what: &'static str, message: String },
    #[error("eip-service.json is not valid: {0}")]
    EipService(String),
    #[error("eip-service.json lists no OpenVPN endpoint")]
    NoEndpoints,
    #[error("the assembled VPN document is refused by the probe's parser: {0}")]
    Document(String),
}

/// One `-----BEGIN <label>-----` … `-----END <label>-----` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemBlock {
    pub label: String,
    /// The whole block, ending with a newline.
    pub text: String,
}

/// The PEM blocks of `text`, in order.
pub fn pem_blocks(what: &'static str, text: &str) -> Result<Vec<PemBlock>, VpnError> {
    let err = |message: String| VpnError::Pem { what, message };
    let mut blocks = Vec::new();
    let mut current: Option<(String, Vec<&str>)> = None;
    for line in text.lines().map(str::trim_end) {
        if let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            if current.is_some() {
                return Err(err(format!("BEGIN {label} inside another block")));
            }
            current = Some((label.to_owned(), vec![line]));
        } else if let Some(label) = line
            .strip_prefix("-----END ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            let (open, mut lines) = current
                .take()
                .ok_or_else(|| err(format!("END {label} without BEGIN")))?;
            if open != label {
                return Err(err(format!("BEGIN {open} closed by END {label}")));
            }
            lines.push(line);
            if lines.len() < 3 {
                return Err(err(format!("empty {label} block")));
            }
            blocks.push(PemBlock {
                label: open,
                text: lines.join("\n") + "\n",
            });
        } else if let Some((_, lines)) = current.as_mut() {
            let l = line.trim();
            let is_header = l.contains(':');
            if !is_header
                && !l
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=')
            {
                return Err(err("non-base64 content inside a block".into()));
            }
            lines.push(line);
        }
    }
    if let Some((label, _)) = current {
        return Err(err(format!("unterminated {label} block")));
    }
    Ok(blocks)
}

/// The CA document: at least one certificate.
pub fn parse_ca(text: &str) -> Result<String, VpnError> {
    let blocks = pem_blocks("the CA certificate", text)?;
    if blocks.is_empty() || blocks.iter().any(|b| b.label != "CERTIFICATE") {
        return Err(VpnError::Pem {
            what: "the CA certificate",
            message: "expected only CERTIFICATE blocks".into(),
        });
    }
    Ok(blocks
        .iter()
        .map(|b| b.text.as_str())
        .collect::<String>()
        .trim()
        .to_owned())
}

/// The client credentials document: exactly one private key and one certificate.
pub fn parse_client_cert(text: &str) -> Result<(String, String), VpnError> {
    let what = "the client certificate";
    let blocks = pem_blocks(what, text)?;
    let keys: Vec<&PemBlock> = blocks
        .iter()
        .filter(|b| b.label.ends_with("PRIVATE KEY"))
        .collect();
    let certs: Vec<&PemBlock> = blocks.iter().filter(|b| b.label == "CERTIFICATE").collect();
    match (keys.as_slice(), certs.as_slice(), blocks.len()) {
        ([key], [cert], 2) => Ok((key.text.clone(), cert.text.clone())),
        _ => Err(VpnError::Pem {
            what,
            message: "expected exactly one private key and one CERTIFICATE".into(),
        }),
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Port {
    Number(u16),
    Text(String),
}

#[derive(Deserialize)]
struct Transport {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    protocols: Vec<String>,
    #[serde(default)]
    ports: Vec<Port>,
}

#[derive(Deserialize)]
struct Capabilities {
    #[serde(default)]
    transport: Vec<Transport>,
}

#[derive(Deserialize)]
struct Gateway {
    ip_address: String,
    capabilities: Capabilities,
}

#[derive(Deserialize)]
struct EipService {
    gateways: Vec<Gateway>,
}

/// The OpenVPN endpoints of an `eip-service.json` document, deduplicated, in order.
pub fn parse_endpoints(data: &[u8]) -> Result<Vec<VpnEndpoint>, VpnError> {
    let doc: EipService =
        serde_json::from_slice(data).map_err(|e| VpnError::EipService(e.to_string()))?;
    let mut out: Vec<VpnEndpoint> = Vec::new();
    for gw in doc.gateways {
        let ip: IpAddr = gw.ip_address.trim().parse().map_err(|_| {
            VpnError::EipService(format!(
                "gateway address {:?} is not an IP address",
                gw.ip_address
            ))
        })?;
        for t in gw
            .capabilities
            .transport
            .iter()
            .filter(|t| t.kind == "openvpn")
        {
            for proto in &t.protocols {
                if proto != "tcp" && proto != "udp" {
                    return Err(VpnError::EipService(format!(
                        "unknown OpenVPN protocol {proto:?}"
                    )));
                }
                for port in &t.ports {
                    let port = match port {
                        Port::Number(n) => *n,
                        Port::Text(s) => s.trim().parse().map_err(|_| {
                            VpnError::EipService(format!("port {s:?} is not a number"))
                        })?,
                    };
                    if port == 0 {
                        return Err(VpnError::EipService("port 0".into()));
                    }
                    let address = match ip {
                        IpAddr::V4(v4) => format!("{v4}:{port}"),
                        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
                    };
                    let ep = VpnEndpoint {
                        address,
                        transport: proto.clone(),
                    };
                    if !out.contains(&ep) {
                        out.push(ep);
                    }
                }
            }
        }
    }
    if out.is_empty() {
        return Err(VpnError::NoEndpoints);
    }
    Ok(out)
}

fn text(what: &'static str, b: &Bytes) -> Result<String, VpnError> {
    String::from_utf8(b.to_vec()).map_err(|_| VpnError::Pem {
        what,
        message: "not UTF-8".into(),
    })
}

/// Runs the job.
pub async fn run(env: &JobEnv) -> Result<Loaded, JobError> {
    let s = &env.settings;
    let (eip, ca, cert) = tokio::try_join!(
        env.fetch(&s.vpn_eip_service_url),
        env.fetch(&s.vpn_ca_url),
        env.fetch(&s.vpn_cert_url)
    )?;
    let endpoints = parse_endpoints(&eip)?;
    let ca = parse_ca(&text("the CA certificate", &ca)?)?;
    let (key, cert) = parse_client_cert(&text("the client certificate", &cert)?)?;
    let doc = VpnProviderDoc {
        config: OpenVpnCredentials { ca, cert, key },
        date_updated: env.clock.now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        endpoints,
    };
    let body = serde_json::to_vec_pretty(&doc).map_err(|e| VpnError::Document(e.to_string()))?;
    let key = vpn_key(PROVIDER);
    VpnProviderDoc::parse("vpn/riseupvpn.json", &body)
        .map_err(|e| VpnError::Document(e.to_string()))?;
    env.validated(JOB).await?;
    env.config_bucket
        .put(&key, Bytes::from(body), "application/json")
        .await?;
    env.checkpoints
        .reached(Point {
            job: JOB,
            step: Step::Stored,
            target: Some(&key),
        })
        .await?;
    tracing::info!(key = %key, endpoints = doc.endpoints.len(), "VPN credentials stored");
    Ok(Loaded {
        outcome: Outcome::Updated,
        rows: 1,
        details: json!({ "provider": PROVIDER, "endpoints": doc.endpoints.len(), "date_updated": doc.date_updated }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str =
        "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIJ\nAAECAw==\n-----END CERTIFICATE-----\n";
    const KEY: &str =
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n";

    #[test]
    fn a_key_and_certificate_document_splits_into_its_two_blocks() {
        let (key, cert) = parse_client_cert(&format!("{KEY}{CERT}")).unwrap();
        assert_eq!(key, KEY);
        assert_eq!(cert, CERT);
        let (key2, _) = parse_client_cert(&format!("{CERT}\n{KEY}")).unwrap();
        assert_eq!(key2, KEY);
    }

    #[test]
    fn malformed_pem_is_refused() {
        assert!(parse_client_cert(CERT).is_err(), "no key");
        assert!(
            parse_client_cert(&format!("{KEY}{CERT}{CERT}")).is_err(),
            "two certificates"
        );
        assert!(
            parse_client_cert("-----BEGIN CERTIFICATE-----\nAAAA\n").is_err(),
            "unterminated"
        );
        assert!(
            parse_ca("-----BEGIN CERTIFICATE-----\n<html>\n-----END CERTIFICATE-----\n").is_err(),
            "not base64"
        );
        assert!(parse_ca("<html>error</html>").is_err(), "no block");
        assert!(parse_ca(KEY).is_err(), "a key is not a CA");
        assert_eq!(parse_ca(&format!("\n{CERT}\n")).unwrap(), CERT.trim());
    }

    #[test]
    fn endpoints_are_the_openvpn_protocol_and_port_product_of_each_gateway() {
        let eip = br#"{"gateways":[
            {"host":"a","ip_address":"1.2.3.4","capabilities":{"transport":[
                {"type":"openvpn","protocols":["tcp","udp"],"ports":["53","1194"]},
                {"type":"obfs4","protocols":["tcp"],"ports":["23042"]}]}},
            {"host":"b","ip_address":"2001:db8::1","capabilities":{"transport":[
                {"type":"openvpn","protocols":["udp"],"ports":[1194]}]}}]}"#;
        let eps = parse_endpoints(eip).unwrap();
        let got: Vec<(String, String)> =
            eps.into_iter().map(|e| (e.address, e.transport)).collect();
        assert_eq!(
            got,
            [
                ("1.2.3.4:53", "tcp"),
                ("1.2.3.4:1194", "tcp"),
                ("1.2.3.4:53", "udp"),
                ("1.2.3.4:1194", "udp"),
                ("[2001:db8::1]:1194", "udp")
            ]
            .map(|(a, t)| (a.to_string(), t.to_string()))
        );
    }

    #[test]
    fn an_eip_service_without_openvpn_gateways_or_with_bad_values_is_refused() {
        assert_eq!(
            parse_endpoints(br#"{"gateways":[]}"#),
            Err(VpnError::NoEndpoints)
        );
        let bad_ip = br#"{"gateways":[{"ip_address":"x","capabilities":{"transport":[]}}]}"#;
        assert!(matches!(
            parse_endpoints(bad_ip),
            Err(VpnError::EipService(_))
        ));
        let bad_port = br#"{"gateways":[{"ip_address":"1.2.3.4","capabilities":{"transport":[{"type":"openvpn","protocols":["tcp"],"ports":["http"]}]}}]}"#;
        assert!(matches!(
            parse_endpoints(bad_port),
            Err(VpnError::EipService(_))
        ));
    }
}
