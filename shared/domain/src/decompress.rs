//! Bounded decoding of request bodies by `Content-Encoding` (identity, `zstd`, `gzip`).
//!
//! The size limit applies to the decoded bytes and is enforced while decoding: the decoder is
//! read through `Read::take(limit + 1)`, so a decompression bomb costs at most `limit + 1`
//! bytes of output (plus the decoder's own bounded window) and stops as soon as it passes the
//! limit. The zstd window is capped too, so a frame cannot make the decoder allocate a large
//! window up front.

use std::borrow::Cow;
use std::io::Read;

/// Largest zstd window we accept, as a power of two: 2^23 = 8 MiB covers the encoders in use
/// (zstd CLI up to level 19, Go's klauspost encoder), or the limit itself when larger, never
/// above zstd's own default cap of 2^27.
const ZSTD_MIN_WINDOW_LOG: u32 = 23;
const ZSTD_MAX_WINDOW_LOG: u32 = 27;

/// Why a body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The decoded body would exceed the limit (HTTP 413).
    #[error("decoded body exceeds {limit} bytes")]
    TooLarge { limit: usize },
    /// The body is not valid data for its declared encoding (HTTP 400).
    #[error("body is not valid {encoding}: {detail}")]
    BadEncoding {
        encoding: &'static str,
        detail: String,
    },
    /// The `Content-Encoding` is not one we decode (HTTP 400).
    #[error("unsupported content encoding {0:?}")]
    UnsupportedEncoding(String),
}

impl BodyError {
    /// The HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            BodyError::TooLarge { .. } => 413,
            BodyError::BadEncoding { .. } | BodyError::UnsupportedEncoding(_) => 400,
        }
    }
}

/// A recognised `Content-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Zstd,
    Gzip,
}

impl Encoding {
    /// Parses a `Content-Encoding` header value (case-insensitive, surrounding blanks
    /// ignored). Absent, empty and `identity` mean no encoding.
    pub fn from_header(value: Option<&str>) -> Result<Self, BodyError> {
        let Some(raw) = value else {
            return Ok(Encoding::Identity);
        };
        let v = raw.trim();
        if v.is_empty() || v.eq_ignore_ascii_case("identity") {
            Ok(Encoding::Identity)
        } else if v.eq_ignore_ascii_case("zstd") {
            Ok(Encoding::Zstd)
        } else if v.eq_ignore_ascii_case("gzip") || v.eq_ignore_ascii_case("x-gzip") {
            Ok(Encoding::Gzip)
        } else {
            Err(BodyError::UnsupportedEncoding(v.chars().take(64).collect()))
        }
    }
}

/// Decodes `body` according to `encoding`, refusing to produce more than `limit` bytes.
pub fn decode_body(
    encoding: Option<&str>,
    body: &[u8],
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    decode_body_cow(encoding, body, limit).map(Cow::into_owned)
}

/// Like [`decode_body`], but borrows the input when there is nothing to decode.
pub fn decode_body_cow<'a>(
    encoding: Option<&str>,
    body: &'a [u8],
    limit: usize,
) -> Result<Cow<'a, [u8]>, BodyError> {
    match Encoding::from_header(encoding)? {
        Encoding::Identity => {
            if body.len() > limit {
                Err(BodyError::TooLarge { limit })
            } else {
                Ok(Cow::Borrowed(body))
            }
        }
        Encoding::Zstd => {
            let mut decoder =
                zstd::stream::read::Decoder::with_buffer(body).map_err(|e| bad("zstd", &e))?;
            decoder
                .window_log_max(zstd_window_log_for(limit))
                .map_err(|e| bad("zstd", &e))?;
            read_bounded(decoder, body.len(), limit, "zstd").map(Cow::Owned)
        }
        Encoding::Gzip => {
            let decoder = flate2::read::MultiGzDecoder::new(body);
            read_bounded(decoder, body.len(), limit, "gzip").map(Cow::Owned)
        }
    }
}

fn zstd_window_log_for(limit: usize) -> u32 {
    let needed = usize::BITS - limit.saturating_sub(1).leading_zeros();
    needed.clamp(ZSTD_MIN_WINDOW_LOG, ZSTD_MAX_WINDOW_LOG)
}

fn bad(encoding: &'static str, e: &dyn std::fmt::Display) -> BodyError {
    BodyError::BadEncoding {
        encoding,
        detail: e.to_string(),
    }
}

fn read_bounded<R: Read>(
    decoder: R,
    compressed_len: usize,
    limit: usize,
    encoding: &'static str,
) -> Result<Vec<u8>, BodyError> {
    let cap = limit.saturating_add(1) as u64;
    // Measurements compress about 5-10x; start there but never above the limit.
    let mut out = Vec::with_capacity(
        compressed_len
            .saturating_mul(8)
            .min(limit.saturating_add(1)),
    );
    decoder
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| bad(encoding, &e))?;
    if out.len() > limit {
        return Err(BodyError::TooLarge { limit });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn identity_body_is_returned_unchanged() {
        assert_eq!(decode_body(None, b"{}", 10).unwrap(), b"{}");
        assert_eq!(decode_body(Some("identity"), b"{}", 2).unwrap(), b"{}");
        assert_eq!(decode_body(Some(""), b"{}", 2).unwrap(), b"{}");
        assert!(matches!(
            decode_body_cow(None, b"{}", 2).unwrap(),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn identity_body_over_the_limit_is_too_large() {
        assert_eq!(
            decode_body(None, b"{}", 1),
            Err(BodyError::TooLarge { limit: 1 })
        );
    }

    #[test]
    fn zstd_body_is_decoded() {
        let z = zstd::encode_all(&b"{\"format\":\"json\"}"[..], 3).unwrap();
        assert_eq!(
            decode_body(Some("zstd"), &z, 1000).unwrap(),
            b"{\"format\":\"json\"}"
        );
        assert_eq!(
            decode_body(Some(" ZSTD "), &z, 1000).unwrap(),
            b"{\"format\":\"json\"}"
        );
    }

    #[test]
    fn gzip_body_is_decoded() {
        let g = gzip(b"hello world");
        assert_eq!(decode_body(Some("gzip"), &g, 11).unwrap(), b"hello world");
        assert_eq!(decode_body(Some("x-gzip"), &g, 11).unwrap(), b"hello world");
    }

    #[test]
    fn decoded_body_exactly_at_the_limit_is_accepted_and_one_more_byte_is_not() {
        let data = vec![b'a'; 1000];
        let z = zstd::encode_all(&data[..], 3).unwrap();
        assert_eq!(decode_body(Some("zstd"), &z, 1000).unwrap().len(), 1000);
        assert_eq!(
            decode_body(Some("zstd"), &z, 999),
            Err(BodyError::TooLarge { limit: 999 })
        );
        let g = gzip(&data);
        assert_eq!(decode_body(Some("gzip"), &g, 1000).unwrap().len(), 1000);
        assert_eq!(
            decode_body(Some("gzip"), &g, 999),
            Err(BodyError::TooLarge { limit: 999 })
        );
    }

    #[test]
    fn garbage_declared_as_zstd_is_a_bad_encoding() {
        let err = decode_body(Some("zstd"), b"{\"not\":\"zstd\"}", 1000).unwrap_err();
        assert!(
            matches!(
                err,
                BodyError::BadEncoding {
                    encoding: "zstd",
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.status(), 400);
    }

    #[test]
    fn truncated_gzip_is_a_bad_encoding() {
        let g = gzip(&vec![b'x'; 5000]);
        let err = decode_body(Some("gzip"), &g[..g.len() / 2], 100_000).unwrap_err();
        assert!(
            matches!(
                err,
                BodyError::BadEncoding {
                    encoding: "gzip",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn unknown_encodings_are_unsupported() {
        for enc in ["br", "deflate", "gzip, zstd", "compress"] {
            let err = decode_body(Some(enc), b"{}", 100).unwrap_err();
            assert!(
                matches!(err, BodyError::UnsupportedEncoding(_)),
                "{enc}: {err:?}"
            );
            assert_eq!(err.status(), 400);
        }
    }

    #[test]
    fn too_large_maps_to_413() {
        assert_eq!(BodyError::TooLarge { limit: 1 }.status(), 413);
    }

    #[test]
    fn zstd_window_cap_grows_with_the_limit_within_bounds() {
        assert_eq!(zstd_window_log_for(0), 23);
        assert_eq!(zstd_window_log_for(1 << 20), 23);
        assert_eq!(zstd_window_log_for((1 << 24) + 1), 25);
        assert_eq!(zstd_window_log_for(usize::MAX), 27);
    }

    #[test]
    fn zstd_frame_demanding_a_window_above_the_cap_is_refused() {
        // A long-distance-matching frame with a 2^26 window: with a 1 MiB limit the decoder
        // must refuse it instead of allocating 64 MiB.
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
        enc.long_distance_matching(true).unwrap();
        enc.window_log(26).unwrap();
        enc.write_all(&vec![7u8; 1 << 16]).unwrap();
        let z = enc.finish().unwrap();
        let err = decode_body(Some("zstd"), &z, 1 << 20).unwrap_err();
        assert!(matches!(err, BodyError::BadEncoding { .. }), "{err:?}");
        // The same frame decodes when the limit itself justifies such a window.
        assert_eq!(
            decode_body(Some("zstd"), &z, 1 << 26).unwrap().len(),
            1 << 16
        );
    }
}
