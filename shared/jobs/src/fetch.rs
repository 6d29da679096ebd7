//! Downloading job sources: the [`Fetcher`] port and its HTTP adapter (timeout, size cap,
//! non-2xx is an error), plus transparent gunzip of `.gz` payloads with the same cap.

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use std::io::Read;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("GET {url} failed: {message}")]
    Request { url: String, message: String },
    #[error("GET {url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("GET {url} is larger than the {limit}-byte limit")]
    TooLarge { url: String, limit: u64 },
    #[error("{url} is not a valid gzip stream: {message}")]
    Gzip { url: String, message: String },
}

/// Where jobs get their source documents from.
#[async_trait]
pub trait Fetcher: Send + Sync {
    /// The body of a successful (2xx) GET of `url`.
    async fn get(&self, url: &str) -> Result<Bytes, FetchError>;
}

/// [`Fetcher`] over HTTP(S).
#[derive(Debug, Clone)]
pub struct HttpFetcher {
    client: reqwest::Client,
    max_bytes: u64,
}

impl HttpFetcher {
    pub fn new(timeout: Duration, max_bytes: u64) -> Result<Self, FetchError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(15))
            // db-ip answers 403 without a user agent.
            .user_agent(concat!("ooni-backend-jobs/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FetchError::Request {
                url: String::new(),
                message: e.to_string(),
            })?;
        Ok(HttpFetcher { client, max_bytes })
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }
}

#[async_trait]
impl Fetcher for HttpFetcher {
    async fn get(&self, url: &str) -> Result<Bytes, FetchError> {
        let req_err = |e: reqwest::Error| FetchError::Request {
            url: url.to_owned(),
            message: e.without_url().to_string(),
        };
        let mut resp = self.client.get(url).send().await.map_err(req_err)?;
        let status = resp.status();
        if !status.is_success() {
            return Err(FetchError::Status {
                url: url.to_owned(),
                status: status.as_u16(),
            });
        }
        let too_large = || FetchError::TooLarge {
            url: url.to_owned(),
            limit: self.max_bytes,
        };
        if resp.content_length().is_some_and(|n| n > self.max_bytes) {
            return Err(too_large());
        }
        let mut buf = BytesMut::new();
        while let Some(chunk) = resp.chunk().await.map_err(req_err)? {
            if buf.len() as u64 + chunk.len() as u64 > self.max_bytes {
                return Err(too_large());
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    }
}

/// True when `bytes` start with the gzip magic number.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// `bytes` inflated when they are gzip, else unchanged; at most `limit` bytes of output.
pub fn maybe_gunzip(url: &str, bytes: Bytes, limit: u64) -> Result<Bytes, FetchError> {
    if !is_gzip(&bytes) {
        return Ok(bytes);
    }
    let mut out = Vec::new();
    let mut reader = flate2::read::MultiGzDecoder::new(&bytes[..]).take(limit.saturating_add(1));
    reader.read_to_end(&mut out).map_err(|e| FetchError::Gzip {
        url: url.to_owned(),
        message: e.to_string(),
    })?;
    if out.len() as u64 > limit {
        return Err(FetchError::TooLarge {
            url: url.to_owned(),
            limit,
        });
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Bytes {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        Bytes::from(e.finish().unwrap())
    }

    #[test]
    fn gzip_payloads_are_inflated_and_others_pass_through() {
        assert_eq!(
            maybe_gunzip("u", gz(b"hello"), 100).unwrap(),
            Bytes::from_static(b"hello")
        );
        assert_eq!(
            maybe_gunzip("u", Bytes::from_static(b"plain"), 100).unwrap(),
            Bytes::from_static(b"plain")
        );
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_limit() {
        let big = vec![0u8; 10_000];
        let err = maybe_gunzip("u", gz(&big), 1000).unwrap_err();
        assert!(
            matches!(err, FetchError::TooLarge { limit: 1000, .. }),
            "{err}"
        );
    }

    #[test]
    fn a_truncated_gzip_stream_is_an_error() {
        let full = gz(&vec![7u8; 5000]);
        let cut = full.slice(..full.len() / 2);
        assert!(matches!(
            maybe_gunzip("u", cut, 1 << 20),
            Err(FetchError::Gzip { .. })
        ));
    }
}
