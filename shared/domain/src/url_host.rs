//! The URL shape the test lists accept (upstream's `VALID_URL` / `check_url` patterns): an
//! optional or required `http(s)://`, a hostname or dotted IPv4, an optional numeric port.
//! Shared by the test-list loader (`JobCitizenlab`) and the test-list editor.

/// A DNS label: 1–63 alphanumerics or hyphens, not starting or ending with a hyphen.
fn is_label(l: &str) -> bool {
    let b = l.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

/// Four dot-separated groups of 1–3 digits (upstream does not range-check them).
pub fn is_ipv4_like(h: &str) -> bool {
    let parts: Vec<&str> = h.split('.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|c| c.is_ascii_digit()))
}

/// Labels plus a top-level domain of at least two characters (a trailing dot is allowed).
pub fn is_hostname(h: &str) -> bool {
    let h = h.strip_suffix('.').unwrap_or(h);
    let labels: Vec<&str> = h.split('.').collect();
    let Some((tld, rest)) = labels.split_last() else {
        return false;
    };
    !rest.is_empty()
        && rest.iter().all(|l| is_label(l))
        && tld.len() >= 2
        && tld.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
}

/// Splits `[http(s)://]host[:port]<tail>`: the host ends at the first of `host_ends`; returns
/// `(host, tail)` when the host is valid and a port, if any, has digits. `None` also for URLs
/// with `\r \n \t \` and, when `scheme_required`, for those without `http(s)://`.
pub fn split_host<'a>(
    url: &'a str,
    scheme_required: bool,
    host_ends: &[char],
) -> Option<(&'a str, &'a str)> {
    if url.contains(['\r', '\n', '\t', '\\']) {
        return None;
    }
    let lower = url
        .get(..8)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else if scheme_required {
        return None;
    } else {
        url
    };
    let host_end = rest.find(host_ends).unwrap_or(rest.len());
    let (host, tail) = rest.split_at(host_end);
    if !(is_ipv4_like(host) || is_hostname(host)) {
        return None;
    }
    match tail.strip_prefix(':') {
        Some(port_and_more) => {
            let digits = port_and_more.bytes().take_while(u8::is_ascii_digit).count();
            (digits > 0).then(|| (host, &port_and_more[digits..]))
        }
        None => Some((host, tail)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_ports_and_schemes() {
        assert_eq!(
            split_host("https://Example.org:8443/x", true, &[':', '/']),
            Some(("Example.org", "/x"))
        );
        assert_eq!(
            split_host("example.org/", false, &[':', '/']),
            Some(("example.org", "/"))
        );
        assert_eq!(split_host("example.org/", true, &[':', '/']), None);
        assert_eq!(split_host("http://1.2.3.4:/", true, &[':', '/']), None);
        assert_eq!(split_host("http://a..b/", true, &[':', '/']), None);
        assert_eq!(split_host("http://x.org/\t", true, &[':', '/']), None);
        assert!(is_ipv4_like("10.0.0.1") && !is_ipv4_like("10.0.0"));
        assert!(
            is_hostname("xn--80ak6aa92e.com.") && !is_hostname("-a.com") && !is_hostname("com")
        );
    }
}
