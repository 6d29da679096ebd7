//! A real local ACME server for the rotation tests: Debian's `pebble` (RFC 8555 CA, with real
//! DNS-01 validation) asking `pebble-challtestsrv` (a DNS server whose records are set over a
//! management API) for `_acme-challenge` TXT records. Both are killed when [`Pebble`] drops.

use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

pub struct Pebble {
    children: Vec<Child>,
    dir: PathBuf,
    /// The ACME directory URL.
    pub directory: String,
    /// The root that signed pebble's own HTTPS certificate (for the ACME client).
    pub https_ca_pem: String,
    /// challtestsrv's management API (`/set-txt`, `/clear-txt`).
    pub dns_api: String,
    management: String,
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A port free for both UDP and TCP (the DNS server binds both).
fn free_dns_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A CA and the `127.0.0.1`/`localhost` certificate it signed (PEM: ca, cert, key).
fn https_identity() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "rotation test CA");
    ca.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut leaf =
        rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

/// One HTTP/1.1 request over a plain socket (the fake DO handler is synchronous).
pub fn http_post(base: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, out)
}

impl Pebble {
    pub async fn start() -> Pebble {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ooni-pebble-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let (ca, cert, key) = https_identity();
        std::fs::write(dir.join("cert.pem"), cert).unwrap();
        std::fs::write(dir.join("key.pem"), key).unwrap();
        let (acme, management, dns, dns_api) = (
            free_tcp_port(),
            free_tcp_port(),
            free_dns_port(),
            free_tcp_port(),
        );
        let config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{acme}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": dir.join("cert.pem"),
            "privateKey": dir.join("key.pem"),
            "httpPort": 5002, "tlsPort": 5001, "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }});
        std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
        let log = |name: &str| Stdio::from(std::fs::File::create(dir.join(name)).unwrap());
        let challtestsrv = Command::new("pebble-challtestsrv")
            .args(["-dns01", &format!("127.0.0.1:{dns}")])
            .args(["-management", &format!("127.0.0.1:{dns_api}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .stdout(log("challtestsrv.log"))
            .stderr(log("challtestsrv.err"))
            .spawn()
            .expect("pebble-challtestsrv (apt-get install pebble)");
        let pebble = Command::new("pebble")
            .arg("-config")
            .arg(dir.join("config.json"))
            .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .env_remove("PEBBLE_VA_ALWAYS_VALID")
            .stdout(log("pebble.log"))
            .stderr(log("pebble.err"))
            .spawn()
            .expect("pebble (apt-get install pebble)");
        let p = Pebble {
            children: vec![challtestsrv, pebble],
            dir,
            directory: format!("https://127.0.0.1:{acme}/dir"),
            https_ca_pem: ca,
            dns_api: format!("http://127.0.0.1:{dns_api}"),
            management: format!("https://127.0.0.1:{management}"),
        };
        let client = p.client();
        for _ in 0..200 {
            let acme_up = client.get(&p.directory).send().await.is_ok();
            let dns_up = TcpStream::connect(p.dns_api.trim_start_matches("http://")).is_ok();
            if acme_up && dns_up {
                return p;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("pebble did not start; logs in {}", p.dir.display());
    }

    fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(self.https_ca_pem.as_bytes()).unwrap(),
            )
            .build()
            .unwrap()
    }

    /// The root of the certificates pebble issues (random per start).
    pub async fn issuing_root_pem(&self) -> String {
        let resp = self
            .client()
            .get(format!("{}/roots/0", self.management))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success());
        resp.text().await.unwrap()
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _killed = c.kill();
            let _reaped = c.wait();
        }
        let _removed = std::fs::remove_dir_all(&self.dir);
    }
}
