//! The test helpers' TLS certificate (a step of `JobTestHelperRotation`, see [`crate::rotation`]).
//!
//! Upstream ran `certbot certonly --dns-digitalocean -d '*.<zone>'` and copied `fullchain.pem`
//! and `privkey.pem` to every new VM over SSH. Here the job itself is the ACME (RFC 8555)
//! client: one wildcard certificate `*.<zone>` obtained with a DNS-01 challenge, whose TXT
//! record `_acme-challenge.<zone>` is written (and removed) through the [`Cloud`] port, so no
//! VM ever holds a DNS token. The certificate, its private key and its expiry live in the
//! config bucket under [`cert_key`] (`rotation/tls/<zone>.json`, readable and writable by this
//! job only; the ACME account under [`ACCOUNT_KEY`]), and reach a new droplet in its first-boot
//! script ([`user_data`]) as `/etc/ssl/private/th_fullchain.pem` and `th_privkey.pem`.
//!
//! [`ensure_certificate`] reuses the stored certificate while it is valid for more than
//! `renew_before`, and otherwise orders a new one. It is idempotent: a run killed mid-order
//! leaves at most a stale TXT record (removed before the next order) and an abandoned order at
//! the CA; the rerun starts a new order (checkpoints: `Stored` of `_acme-challenge` once the
//! record is written, `Stored` of the certificate's key once stored). The stored document is replaced in one write, only
//! once the new certificate is complete, so a reader sees the old pair or the new one.
//! The private key is never logged.

use crate::checkpoint::{Point, Step};
use crate::job::{JobEnv, JobError};
use crate::rotation::{Cloud, CloudError};
use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use http_body_util::BodyExt;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, BodyWrapper, BytesResponse, ChallengeType,
    HttpClient, Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use ooni_platform::config::{ConfigError, Env};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;

/// Let's Encrypt's production directory.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Config-bucket prefix written only by `JobTestHelperRotation` (see the function table).
pub const TLS_PREFIX: &str = "rotation/tls/";
/// The ACME account of the job.
pub const ACCOUNT_KEY: &str = "rotation/tls/acme-account.json";
/// Where the certificate lands on a helper.
pub const CERT_PATH: &str = "/etc/ssl/private/th_fullchain.pem";
pub const KEY_PATH: &str = "/etc/ssl/private/th_privkey.pem";
/// The relative name of the DNS-01 record in the zone.
const CHALLENGE_NAME: &str = "_acme-challenge";

/// The config-bucket object holding the zone's certificate.
pub fn cert_key(zone: &str) -> String {
    format!("{TLS_PREFIX}{zone}.json")
}

#[derive(Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// `OONI_ROTATION_ACME_DIRECTORY` ([`LETS_ENCRYPT`]).
    pub acme_directory: String,
    /// `OONI_ROTATION_ACME_EMAIL` (none: an account without contact).
    pub acme_email: Option<String>,
    /// `OONI_ROTATION_ACME_CA_PEM`: an extra root trusted by the ACME HTTP client (tests with a
    /// local ACME server only).
    pub acme_ca_pem: Option<String>,
    /// `OONI_ROTATION_TLS_RENEW_DAYS` (30): renew when the stored certificate expires sooner.
    pub renew_before: Duration,
    /// `OONI_ROTATION_ACME_PROPAGATION_SECONDS` (30): wait between writing the TXT record and
    /// asking the CA to check it.
    pub propagation: std::time::Duration,
    /// `OONI_ROTATION_ACME_TIMEOUT_SECONDS` (180): how long to wait for the CA's validation and
    /// for the certificate.
    pub timeout: std::time::Duration,
    /// `OONI_ROTATION_CHECK_CA_PEM`: an extra root the end-to-end check trusts (tests only).
    pub check_ca_pem: Option<String>,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("acme_directory", &self.acme_directory)
            .field("acme_email", &self.acme_email)
            .field("acme_ca_pem", &self.acme_ca_pem.is_some())
            .field("renew_before", &self.renew_before)
            .field("propagation", &self.propagation)
            .field("timeout", &self.timeout)
            .field("check_ca_pem", &self.check_ca_pem.is_some())
            .finish()
    }
}

impl TlsSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let non_empty = |name: &str| env.get(name).filter(|v| !v.trim().is_empty());
        Ok(TlsSettings {
            acme_directory: env.string("OONI_ROTATION_ACME_DIRECTORY", LETS_ENCRYPT),
            acme_email: non_empty("OONI_ROTATION_ACME_EMAIL"),
            acme_ca_pem: non_empty("OONI_ROTATION_ACME_CA_PEM"),
            renew_before: Duration::days(env.parse("OONI_ROTATION_TLS_RENEW_DAYS", 30i64)?),
            propagation: std::time::Duration::from_secs(
                env.parse("OONI_ROTATION_ACME_PROPAGATION_SECONDS", 30u64)?,
            ),
            timeout: std::time::Duration::from_secs(
                env.parse("OONI_ROTATION_ACME_TIMEOUT_SECONDS", 180u64)?,
            ),
            check_ca_pem: non_empty("OONI_ROTATION_CHECK_CA_PEM"),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("ACME {step} failed: {message}")]
    Acme { step: &'static str, message: String },
    #[error("the certificate is unusable: {0}")]
    Certificate(String),
    #[error("the DNS-01 record could not be managed: {0}")]
    Dns(#[from] CloudError),
    #[error("the first-boot script cannot carry the certificate: {0}")]
    SetupScript(String),
}

impl From<TlsError> for JobError {
    fn from(e: TlsError) -> JobError {
        JobError::Rotation(crate::rotation::RotationError::Tls(e))
    }
}

fn acme(step: &'static str) -> impl FnOnce(instant_acme::Error) -> TlsError {
    move |e| TlsError::Acme {
        step,
        message: e.to_string(),
    }
}

/// The stored certificate of a zone (`rotation/tls/<zone>.json`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCert {
    pub zone: String,
    /// The chain, leaf first (`fullchain.pem`).
    pub cert_pem: String,
    /// PKCS#8 PEM (`privkey.pem`). Never logged.
    pub key_pem: String,
    pub not_after: DateTime<Utc>,
    pub issued_at: DateTime<Utc>,
}

impl std::fmt::Debug for StoredCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCert")
            .field("zone", &self.zone)
            .field("not_after", &self.not_after)
            .field("issued_at", &self.issued_at)
            .finish_non_exhaustive()
    }
}

impl StoredCert {
    /// Whether it can be handed to a new helper at `now`.
    pub fn fresh(&self, zone: &str, now: DateTime<Utc>, renew_before: Duration) -> bool {
        self.zone == zone
            && self.not_after - now > renew_before
            && leaf_der(&self.cert_pem).is_some()
            && self.key_pem.contains("PRIVATE KEY-----")
    }
}

/// The DER of every certificate of a PEM chain, in order.
pub fn chain_der(pem: &str) -> Vec<Vec<u8>> {
    x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes())
        .filter_map(Result::ok)
        .filter(|p| p.label == "CERTIFICATE")
        .map(|p| p.contents)
        .collect()
}

/// The DER of the leaf (first) certificate of a PEM chain.
pub fn leaf_der(pem: &str) -> Option<Vec<u8>> {
    chain_der(pem).into_iter().next()
}

/// Expiry and DNS names of a leaf certificate.
fn inspect_leaf(der: &[u8]) -> Result<(DateTime<Utc>, Vec<String>), TlsError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| TlsError::Certificate(format!("not an X.509 certificate: {e}")))?;
    let not_after = DateTime::from_timestamp(cert.validity().not_after.timestamp(), 0)
        .ok_or_else(|| TlsError::Certificate("expiry out of range".into()))?;
    let names = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                x509_parser::extensions::GeneralName::DNSName(d) => Some((*d).to_owned()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok((not_after, names))
}

/// How [`ensure_certificate`] got the certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertSource {
    Stored,
    Issued,
}

impl CertSource {
    pub fn as_str(self) -> &'static str {
        match self {
            CertSource::Stored => "stored",
            CertSource::Issued => "issued",
        }
    }
}

/// The stored certificate of `zone`, if any (an unreadable document counts as none).
pub async fn stored_certificate(env: &JobEnv, zone: &str) -> Result<Option<StoredCert>, JobError> {
    let Some(bytes) = env.config_bucket.get(&cert_key(zone)).await? else {
        return Ok(None);
    };
    match serde_json::from_slice::<StoredCert>(&bytes) {
        Ok(c) => Ok(Some(c)),
        Err(e) => {
            tracing::warn!(key = %cert_key(zone), error = %e, "stored TLS certificate unreadable; a new one will be ordered");
            Ok(None)
        }
    }
}

/// A certificate for `*.<zone>` valid for more than `renew_before`: `stored` (what
/// [`stored_certificate`] read this run), or a new one ordered now (then stored).
pub async fn ensure_certificate(
    env: &JobEnv,
    zone: &str,
    stored: Option<StoredCert>,
) -> Result<(StoredCert, CertSource), JobError> {
    let tls = &env.settings.rotation.tls;
    let now = env.clock.now();
    if let Some(c) = stored {
        if c.fresh(zone, now, tls.renew_before) {
            return Ok((c, CertSource::Stored));
        }
        tracing::info!(zone, not_after = %c.not_after, "TLS certificate due for renewal");
    }
    let http = AcmeHttp::new(tls.acme_ca_pem.as_deref())?;
    let account = account(env, &http).await?;
    let issued = order(env, &account, zone).await;
    // The challenge record is removed whatever the outcome.
    let cleaned = remove_challenge_records(env.cloud.as_ref(), zone).await;
    let (cert_pem, key_pem) = issued?;
    cleaned?;
    let leaf = leaf_der(&cert_pem)
        .ok_or_else(|| TlsError::Certificate("the CA returned no certificate".into()))?;
    let (not_after, names) = inspect_leaf(&leaf)?;
    let wanted = format!("*.{zone}");
    if !names.iter().any(|n| n.eq_ignore_ascii_case(&wanted)) {
        return Err(
            TlsError::Certificate(format!("{wanted} is not among its names {names:?}")).into(),
        );
    }
    let cert = StoredCert {
        zone: zone.to_owned(),
        cert_pem,
        key_pem,
        not_after,
        issued_at: now,
    };
    let body = serde_json::to_vec(&cert)
        .map_err(|e| TlsError::Certificate(format!("encoding the stored certificate: {e}")))?;
    let key = cert_key(zone);
    env.config_bucket
        .put(&key, body.into(), "application/json")
        .await?;
    env.checkpoints
        .reached(Point {
            job: crate::rotation::JOB,
            step: Step::Stored,
            target: Some(&key),
        })
        .await?;
    tracing::info!(zone, %not_after, "TLS certificate issued and stored");
    if !cert.fresh(zone, now, tls.renew_before) {
        tracing::warn!(zone, %not_after, "the new certificate is already within OONI_ROTATION_TLS_RENEW_DAYS of its expiry; every spawn will renew it");
    }
    Ok((cert, CertSource::Issued))
}

#[derive(Serialize, Deserialize)]
struct StoredAccount {
    directory: String,
    credentials: AccountCredentials,
}

/// The job's ACME account at the configured directory: the stored one, or a new one (stored).
async fn account(env: &JobEnv, http: &AcmeHttp) -> Result<Account, JobError> {
    let tls = &env.settings.rotation.tls;
    let stored = env
        .config_bucket
        .get(ACCOUNT_KEY)
        .await?
        .and_then(|b| serde_json::from_slice::<StoredAccount>(&b).ok())
        .filter(|a| a.directory == tls.acme_directory);
    if let Some(a) = stored {
        match Account::builder_with_http(Box::new(http.clone()))
            .from_credentials(a.credentials)
            .await
        {
            Ok(account) => return Ok(account),
            Err(e) => {
                tracing::warn!(error = %e, "stored ACME account unusable; registering a new one")
            }
        }
    }
    let contact: Vec<String> = tls
        .acme_email
        .iter()
        .map(|m| format!("mailto:{m}"))
        .collect();
    let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
    let (account, credentials) = Account::builder_with_http(Box::new(http.clone()))
        .create(
            &NewAccount {
                contact: &contact,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            tls.acme_directory.clone(),
            None,
        )
        .await
        .map_err(acme("account registration"))?;
    let body = serde_json::to_vec(&StoredAccount {
        directory: tls.acme_directory.clone(),
        credentials,
    })
    .map_err(|e| TlsError::Certificate(format!("encoding the ACME account: {e}")))?;
    env.config_bucket
        .put(ACCOUNT_KEY, body.into(), "application/json")
        .await?;
    tracing::info!(directory = %tls.acme_directory, "ACME account registered");
    Ok(account)
}

/// Removes every `_acme-challenge` TXT record of the zone (ours, possibly left by a killed run).
async fn remove_challenge_records(cloud: &dyn Cloud, zone: &str) -> Result<(), TlsError> {
    for r in cloud.records(zone).await? {
        if r.kind == "TXT" && r.name == CHALLENGE_NAME {
            cloud.delete_record(zone, r.id).await?;
        }
    }
    Ok(())
}

/// One DNS-01 order for `*.<zone>`: returns the chain and the new private key (PEM).
async fn order(env: &JobEnv, account: &Account, zone: &str) -> Result<(String, String), JobError> {
    let (cloud, tls) = (env.cloud.as_ref(), &env.settings.rotation.tls);
    remove_challenge_records(cloud, zone).await?;
    let identifiers = [Identifier::Dns(format!("*.{zone}"))];
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .map_err(acme("new order"))?;
    // Publish the record of every pending authorization (one for `*.<zone>`), wait for it to
    // reach the zone's name servers, then ask the CA to check it.
    let mut ready = Vec::new();
    {
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz.map_err(acme("authorization"))?;
            match authz.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => {
                    return Err(TlsError::Acme {
                        step: "authorization",
                        message: format!("authorization is {other:?}"),
                    }
                    .into())
                }
            }
            let challenge =
                authz
                    .challenge(ChallengeType::Dns01)
                    .ok_or_else(|| TlsError::Acme {
                        step: "authorization",
                        message: "the CA offers no dns-01 challenge".into(),
                    })?;
            let value = challenge.key_authorization().dns_value();
            cloud
                .create_record(zone, "TXT", CHALLENGE_NAME, &value)
                .await
                .map_err(TlsError::from)?;
            env.checkpoints
                .reached(Point {
                    job: crate::rotation::JOB,
                    step: Step::Stored,
                    target: Some(CHALLENGE_NAME),
                })
                .await?;
            ready.push(challenge.url.clone());
        }
    }
    if !ready.is_empty() {
        tokio::time::sleep(tls.propagation).await;
    }
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz.map_err(acme("authorization"))?;
        if let Some(mut challenge) = authz.challenge(ChallengeType::Dns01) {
            if ready.contains(&challenge.url) {
                challenge.set_ready().await.map_err(acme("challenge"))?;
            }
        }
    }
    let retries = RetryPolicy::new()
        .initial_delay(std::time::Duration::from_millis(250))
        .timeout(tls.timeout);
    let status = order
        .poll_ready(&retries)
        .await
        .map_err(acme("validation"))?;
    if status != OrderStatus::Ready {
        return Err(TlsError::Acme {
            step: "validation",
            message: format!("the order is {status:?} (the DNS-01 record was not accepted)"),
        }
        .into());
    }
    let key = rcgen::KeyPair::generate()
        .map_err(|e| TlsError::Certificate(format!("generating the key: {e}")))?;
    let params = rcgen::CertificateParams::new(vec![format!("*.{zone}")])
        .map_err(|e| TlsError::Certificate(format!("CSR parameters: {e}")))?;
    let csr = params
        .serialize_request(&key)
        .map_err(|e| TlsError::Certificate(format!("CSR: {e}")))?;
    order
        .finalize_csr(csr.der())
        .await
        .map_err(acme("finalization"))?;
    let chain = order
        .poll_certificate(&retries)
        .await
        .map_err(acme("certificate download"))?;
    Ok((chain, key.serialize_pem()))
}

/// [`HttpClient`] over reqwest (the workspace's rustls + ring stack), trusting one extra root
/// when configured.
#[derive(Clone)]
struct AcmeHttp(reqwest::Client);

impl AcmeHttp {
    fn new(extra_root_pem: Option<&str>) -> Result<AcmeHttp, TlsError> {
        let mut builder = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30));
        if let Some(pem) = extra_root_pem {
            let cert = reqwest::Certificate::from_pem(pem.as_bytes())
                .map_err(|e| TlsError::Certificate(format!("OONI_ROTATION_ACME_CA_PEM: {e}")))?;
            builder = builder.add_root_certificate(cert);
        }
        builder
            .build()
            .map(AcmeHttp)
            .map_err(|e| TlsError::Certificate(format!("ACME HTTP client: {e}")))
    }
}

impl HttpClient for AcmeHttp {
    fn request(
        &self,
        req: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let client = self.0.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let body = match body.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(never) => match never {},
            };
            let resp = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await
                .map_err(|e| instant_acme::Error::Other(Box::new(e.without_url())))?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let bytes = resp
                .bytes()
                .await
                .map_err(|e| instant_acme::Error::Other(Box::new(e.without_url())))?;
            let mut out = http::Response::new(http_body_util::Full::new(bytes));
            *out.status_mut() = status;
            *out.headers_mut() = headers;
            Ok(BytesResponse::from(out))
        })
    }
}

/// A heredoc delimiter that is no line of `body`.
fn delimiter(base: &str, body: &str) -> String {
    let mut d = base.to_owned();
    while body.lines().any(|l| l == d) {
        d.push('_');
    }
    d
}

/// The first-boot script of a helper: writes the certificate and key (mode 600) where
/// `oohelperd` reads them, then runs the configured setup script with its own interpreter (it
/// must start with `#!`).
pub fn user_data(cert: &StoredCert, setup: &str) -> Result<String, TlsError> {
    if !setup.starts_with("#!") {
        return Err(TlsError::SetupScript(
            "it must start with #! (the certificate is written by a shell preamble)".into(),
        ));
    }
    let mut out = String::from("#!/bin/sh\nset -eu\numask 077\nmkdir -p /etc/ssl/private\n");
    for (path, body, base) in [
        (CERT_PATH, cert.cert_pem.as_str(), "OONI_TH_CERT"),
        (KEY_PATH, cert.key_pem.as_str(), "OONI_TH_KEY"),
        ("/root/ooni-th-setup", setup, "OONI_TH_SETUP"),
    ] {
        let d = delimiter(base, body);
        out.push_str(&format!("cat > {path} <<'{d}'\n{body}"));
        if !body.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("{d}\nchmod 600 {path}\n"));
    }
    out.push_str("chmod 700 /root/ooni-th-setup\nexec /root/ooni-th-setup\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(zone: &str, not_after: &str) -> StoredCert {
        StoredCert {
            zone: zone.into(),
            cert_pem: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into(),
            key_pem: "-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n".into(),
            not_after: not_after.parse().unwrap(),
            issued_at: "2026-01-01T00:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn user_data_writes_the_pair_with_quoted_heredocs_then_runs_the_setup_script() {
        let c = cert("th.test", "2027-01-01T00:00:00Z");
        let setup = "#!/bin/bash\necho $HOME\nOONI_TH_KEY\n";
        let ud = user_data(&c, setup).unwrap();
        assert!(ud.starts_with("#!/bin/sh\n"));
        assert!(ud.contains(
            "cat > /etc/ssl/private/th_fullchain.pem <<'OONI_TH_CERT'\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\nOONI_TH_CERT\nchmod 600 /etc/ssl/private/th_fullchain.pem\n"
        ));
        assert!(ud.contains("cat > /etc/ssl/private/th_privkey.pem <<'OONI_TH_KEY'\n"));
        assert!(ud.contains("chmod 600 /etc/ssl/private/th_privkey.pem\n"));
        assert!(
            ud.contains("<<'OONI_TH_SETUP'\n#!/bin/bash\necho $HOME\nOONI_TH_KEY\nOONI_TH_SETUP\n"),
            "the script keeps its own interpreter and is copied verbatim: {ud}"
        );
        assert!(ud.ends_with("exec /root/ooni-th-setup\n"));
        assert!(user_data(&c, "#cloud-config\n").is_err());
        assert_eq!(delimiter("D", "a\nD\nD_\n"), "D__");
    }

    #[test]
    fn a_stored_certificate_is_fresh_until_renew_before_its_expiry_and_never_shows_its_key() {
        let c = cert("th.test", "2027-01-31T00:00:00Z");
        let renew = Duration::days(30);
        assert!(c.fresh("th.test", "2026-12-31T00:00:00Z".parse().unwrap(), renew));
        assert!(!c.fresh("th.test", "2027-01-02T00:00:00Z".parse().unwrap(), renew));
        assert!(!c.fresh("other.test", "2026-12-01T00:00:00Z".parse().unwrap(), renew));
        assert!(!format!("{c:?}").contains("secret"));
        assert_eq!(cert_key("th.test"), "rotation/tls/th.test.json");
    }

    #[test]
    fn tls_settings_default_to_lets_encrypt_and_thirty_days() {
        let s = TlsSettings::from_env(&Env::from_fn(|_| None)).unwrap();
        assert_eq!(s.acme_directory, LETS_ENCRYPT);
        assert_eq!(s.renew_before, Duration::days(30));
        assert_eq!((s.acme_email, s.acme_ca_pem), (None, None));
    }
}
