//! Account identity rules: the keyed BLAKE2b account id, e-mail address validation, the
//! `redirect_to` allow-list and the login link format (upstream `ooniauth.utils`).

use blake2::digest::consts::U16;
use blake2::digest::{KeyInit, Mac};
use blake2::Blake2bMac;
use ooni_platform::config::Secret;

/// Hosts a login link may redirect to (upstream `VALID_REDIRECT_TO_FQDN`).
pub const VALID_REDIRECT_TO_FQDN: [&str; 9] = [
    "explorer.ooni.org",
    "explorer.test.ooni.org",
    "explorer.dev.ooni.org",
    "run.ooni.io",
    "run.ooni.org",
    "run.test.ooni.org",
    "run-v2.ooni.org",
    "test-lists.ooni.org",
    "test-lists.test.ooni.org",
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("the account id hashing key must be 1 to 64 bytes long")]
    BadLength,
}

/// Derives account ids: `blake2b(email, key=account_id_hashing_key, digest_size=16).hex()`.
#[derive(Clone)]
pub struct AccountHasher {
    key: Secret,
}

impl std::fmt::Debug for AccountHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccountHasher(<redacted>)")
    }
}

impl AccountHasher {
    pub fn new(key: Secret) -> Result<Self, KeyError> {
        let len = key.expose().len();
        if len == 0 || len > 64 {
            return Err(KeyError::BadLength);
        }
        Ok(AccountHasher { key })
    }

    /// The 32-hex-character account id of an (already lowercased) e-mail address.
    pub fn account_id(&self, email_address: &str) -> String {
        // The key length was checked in `new`, so keying cannot fail; fall back to an
        // unusable id rather than panic if it ever did.
        match <Blake2bMac<U16> as KeyInit>::new_from_slice(self.key.expose().as_bytes()) {
            Ok(mut mac) => {
                mac.update(email_address.as_bytes());
                hex::encode(mac.finalize().into_bytes())
            }
            Err(_) => String::new(),
        }
    }
}

/// Lowercases and trims an address, then checks it like upstream (`EmailStr`, 5–255 chars,
/// a dotted domain): `local@label.tld` with the legacy `EMAIL_RE` character sets.
pub fn normalize_email(raw: &str) -> Option<String> {
    let email = raw.trim().to_lowercase();
    let n = email.chars().count();
    if !(5..=255).contains(&n) {
        return None;
    }
    let (local, domain) = email.split_once('@')?;
    let local_ok = !local.is_empty()
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.+-".contains(c))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    let (first, rest) = domain.split_once('.')?;
    let label_ok =
        |l: &str| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let domain_ok = label_ok(first) && rest.split('.').all(label_ok);
    (local_ok && domain_ok).then_some(email)
}

/// Upstream `validate_redirect_to`: an `https` URL whose authority is exactly an allowed host.
pub fn valid_redirect_to(redirect_to: &str) -> bool {
    let Some(rest) = redirect_to.strip_prefix("https://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    VALID_REDIRECT_TO_FQDN.contains(&authority)
}

/// Upstream `format_login_url`: `https://<redirect host>/login?token=<token>`.
pub fn login_url(redirect_to: &str, token: &str) -> String {
    let rest = redirect_to.strip_prefix("https://").unwrap_or(redirect_to);
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let token: String = url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
    format!("https://{host}/login?token={token}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_match_python_hashlib_blake2b_with_a_key() {
        // python3 -c "import hashlib; print(hashlib.blake2b(b'x@example.org', key=b'key', digest_size=16).hexdigest())"
        let h = AccountHasher::new(Secret::new("key")).unwrap();
        assert_eq!(
            h.account_id("x@example.org"),
            "802d7c10e82b736560f99110b278a01e"
        );
        assert_eq!(h.account_id("x@example.org").len(), 32);
    }

    #[test]
    fn empty_or_overlong_hashing_keys_are_refused() {
        assert_eq!(
            AccountHasher::new(Secret::new("")).unwrap_err(),
            KeyError::BadLength
        );
        assert!(AccountHasher::new(Secret::new("k".repeat(65))).is_err());
    }

    #[test]
    fn addresses_are_lowercased_and_need_a_dotted_domain() {
        assert_eq!(
            normalize_email(" Nick@Example.ORG ").as_deref(),
            Some("nick@example.org")
        );
        assert_eq!(normalize_email("nick@localhost"), None);
        assert_eq!(normalize_email("a b@example.org"), None);
        assert_eq!(normalize_email("@example.org"), None);
        assert_eq!(normalize_email("x@y.z").as_deref(), Some("x@y.z"));
    }

    #[test]
    fn only_https_urls_on_allowed_hosts_are_valid_redirects() {
        assert!(valid_redirect_to("https://explorer.ooni.org/"));
        assert!(valid_redirect_to("https://run.ooni.org/v2/foo?x=1"));
        assert!(!valid_redirect_to("http://explorer.ooni.org/"));
        assert!(!valid_redirect_to("https://BOGUS.example.com"));
        assert!(!valid_redirect_to("https://explorer.ooni.org.evil.com/"));
        assert!(!valid_redirect_to("https://explorer.ooni.org:8443/"));
        assert!(!valid_redirect_to("https://user@explorer.ooni.org/"));
    }

    #[test]
    fn login_links_point_at_the_redirect_host() {
        assert_eq!(
            login_url("https://explorer.ooni.org/country/IT", "a.b.c"),
            "https://explorer.ooni.org/login?token=a.b.c"
        );
    }
}
