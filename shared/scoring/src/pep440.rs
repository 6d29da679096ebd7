//! Just enough of `packaging.version.Version` (PEP 440) to compare probe versions.

use std::cmp::Ordering;

/// (epoch, release without trailing zeros, pre, post, dev) as packaging orders them.
type SortKey = (u64, Vec<u64>, (i8, u8, u64), (i8, u64), (i8, u64));

/// A parsed PEP 440 version, comparable like `packaging.version.Version`.
#[derive(Debug, Clone)]
pub(crate) struct Version {
    epoch: u64,
    release: Vec<u64>,
    /// (0=a, 1=b, 2=rc, number)
    pre: Option<(u8, u64)>,
    post: Option<u64>,
    dev: Option<u64>,
    local: Vec<LocalPart>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum LocalPart {
    // strings sort before numbers
    Str(String),
    Num(u64),
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn num(&mut self) -> Option<u64> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        if start == self.i {
            return None;
        }
        std::str::from_utf8(&self.s[start..self.i]).ok()?.parse().ok()
    }
    fn sep(&mut self) -> bool {
        if matches!(self.peek(), Some(b'-' | b'_' | b'.')) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn word(&mut self, words: &[&str]) -> Option<usize> {
        let rest = &self.s[self.i..];
        // longest match first
        let mut best: Option<(usize, usize)> = None;
        for (idx, w) in words.iter().enumerate() {
            if rest.starts_with(w.as_bytes()) && best.is_none_or(|(_, l)| w.len() > l) {
                best = Some((idx, w.len()));
            }
        }
        let (idx, len) = best?;
        self.i += len;
        Some(idx)
    }
}

impl Version {
    /// Parse like `Version(s)`; None where packaging raises `InvalidVersion`.
    pub(crate) fn parse(s: &str) -> Option<Version> {
        let lower = s.trim().to_ascii_lowercase();
        let mut c = Cursor {
            s: lower.as_bytes(),
            i: 0,
        };
        if c.peek() == Some(b'v') {
            c.i += 1;
        }
        let mut epoch = 0;
        let save = c.i;
        if let Some(n) = c.num() {
            if c.peek() == Some(b'!') {
                c.i += 1;
                epoch = n;
            } else {
                c.i = save;
            }
        }
        let mut release = vec![c.num()?];
        while c.peek() == Some(b'.') && c.s.get(c.i + 1).is_some_and(|d| d.is_ascii_digit()) {
            c.i += 1;
            release.push(c.num()?);
        }
        // pre-release
        let mut pre = None;
        let save = c.i;
        c.sep();
        const PRE: [&str; 7] = ["alpha", "a", "beta", "b", "preview", "pre", "rc"];
        if let Some(w) = c.word(&PRE).or_else(|| c.word(&["c"]).map(|_| 6)) {
            let kind = match PRE.get(w).copied().unwrap_or("rc") {
                "alpha" | "a" => 0,
                "beta" | "b" => 1,
                _ => 2,
            };
            let save2 = c.i;
            c.sep();
            let n = match c.num() {
                Some(n) => n,
                None => {
                    c.i = save2;
                    0
                }
            };
            pre = Some((kind, n));
        } else {
            c.i = save;
        }
        // post-release
        let mut post = None;
        let save = c.i;
        if c.peek() == Some(b'-') && c.s.get(c.i + 1).is_some_and(|d| d.is_ascii_digit()) {
            c.i += 1;
            post = c.num();
        } else {
            c.sep();
            if c.word(&["post", "rev", "r"]).is_some() {
                let save2 = c.i;
                c.sep();
                post = Some(c.num().unwrap_or_else(|| {
                    c.i = save2;
                    0
                }));
            } else {
                c.i = save;
            }
        }
        // dev release
        let mut dev = None;
        let save = c.i;
        c.sep();
        if c.word(&["dev"]).is_some() {
            let save2 = c.i;
            c.sep();
            dev = Some(c.num().unwrap_or_else(|| {
                c.i = save2;
                0
            }));
        } else {
            c.i = save;
        }
        // local version
        let mut local = Vec::new();
        if c.peek() == Some(b'+') {
            c.i += 1;
            let rest = std::str::from_utf8(&c.s[c.i..]).ok()?;
            for part in rest.split(['-', '_', '.']) {
                if part.is_empty() || !part.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return None;
                }
                local.push(match part.parse::<u64>() {
                    Ok(n) => LocalPart::Num(n),
                    Err(_) => LocalPart::Str(part.to_owned()),
                });
            }
            c.i = c.s.len();
        }
        if c.i != c.s.len() {
            return None;
        }
        Some(Version {
            epoch,
            release,
            pre,
            post,
            dev,
            local,
        })
    }

    fn key(&self) -> SortKey {
        let mut rel = self.release.clone();
        while rel.len() > 1 && rel.last() == Some(&0) {
            rel.pop();
        }
        let pre = match (self.pre, self.post, self.dev) {
            (None, None, Some(_)) => (-1, 0, 0),
            (None, _, _) => (1, 0, 0),
            (Some((k, n)), _, _) => (0, k, n),
        };
        let post = self.post.map_or((-1, 0), |n| (0, n));
        let dev = self.dev.map_or((1, 0), |n| (0, n));
        (self.epoch, rel, pre, post, dev)
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key()).then_with(|| self.local.cmp(&other.local))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn compares_like_packaging() {
        assert!(v("0.2.3") < v("0.2.4"));
        assert!(v("0.2") == v("0.2.0"));
        assert!(v("3.17.0-alpha") < v("3.17.0"));
        assert!(v("3.17.0-alpha.1") < v("3.17.2"));
        assert!(v("3.16.10") < v("3.17.2"));
        assert!(v("1.0.dev1") < v("1.0a1"));
        assert!(v("1.0") < v("1.0.post1"));
        assert!(v("3.18.0-beta.2") > v("3.17.2"));
    }

    #[test]
    fn rejects_what_packaging_rejects() {
        assert!(Version::parse("banana").is_none());
        assert!(Version::parse("1.2.x").is_none());
        assert!(Version::parse("").is_none());
    }
}
