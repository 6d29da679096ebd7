//! Python `base64.b64decode` (non-strict `binascii.a2b_base64`) semantics.

/// Why a base64 payload could not be decoded (Python raises `binascii.Error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum B64Error {
    /// One data character more than a multiple of four.
    InvalidLength,
    /// Missing `=` padding.
    IncorrectPadding,
    /// Non-ASCII text (Python raises `ValueError` before decoding).
    NonAscii,
}

/// Value of each base64 alphabet byte; [`NOT_B64`] for the others.
const SEXTETS: [u8; 256] = {
    let mut t = [NOT_B64; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut i = 0;
    while i < alphabet.len() {
        t[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    t
};
const NOT_B64: u8 = 0xFF;

fn sextet(c: u8) -> Option<u8> {
    Some(SEXTETS[usize::from(c)]).filter(|&v| v != NOT_B64)
}

/// Decode like CPython: characters outside the alphabet are skipped, a complete
/// `=` padding sequence ends the input, a dangling partial quantum is an error.
pub(crate) fn py_b64decode(s: &str) -> Result<Vec<u8>, B64Error> {
    decode(s, true)
}

/// [`py_b64decode`], with whole quads decoded at once when `quads` (tests compare the two).
fn decode(s: &str, quads: bool) -> Result<Vec<u8>, B64Error> {
    if !s.is_ascii() {
        return Err(B64Error::NonAscii);
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3 + 3);
    let mut quad_pos = 0u8;
    let mut left: u8 = 0;
    let mut pads = 0u8;
    let bytes = s.as_bytes();
    let mut i = 0;
    loop {
        if quads && quad_pos == 0 {
            // whole quads of alphabet characters, as the loop below would decode them
            let start = i;
            while let Some(&[a, b, c, d]) = bytes.get(i..i + 4).and_then(|q| <&[u8; 4]>::try_from(q).ok()) {
                let [a, b, c, d] = [a, b, c, d].map(|x| SEXTETS[usize::from(x)]);
                // alphabet values are below 64; NOT_B64 has the top bit set
                if (a | b | c | d) & 0x80 != 0 {
                    break;
                }
                out.extend_from_slice(&[(a << 2) | (b >> 4), (b << 4) | (c >> 2), (c << 6) | d]);
                i += 4;
            }
            if i > start {
                pads = 0;
            }
        }
        let Some(&c) = bytes.get(i) else { break };
        i += 1;
        if c == b'=' {
            if quad_pos >= 2 {
                pads += 1;
                if quad_pos + pads >= 4 {
                    return Ok(out);
                }
            }
            continue;
        }
        let Some(v) = sextet(c) else { continue };
        pads = 0;
        match quad_pos {
            0 => {
                quad_pos = 1;
                left = v;
            }
            1 => {
                quad_pos = 2;
                out.push((left << 2) | (v >> 4));
                left = v & 0x0f;
            }
            2 => {
                quad_pos = 3;
                out.push((left << 4) | (v >> 2));
                left = v & 0x03;
            }
            _ => {
                quad_pos = 0;
                out.push((left << 6) | v);
                left = 0;
            }
        }
    }
    match quad_pos {
        0 => Ok(out),
        1 => Err(B64Error::InvalidLength),
        _ => Err(B64Error::IncorrectPadding),
    }
}

/// Python `bytes.decode("latin1")`.
pub(crate) fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn decodes_like_cpython_non_strict_mode() {
        assert_eq!(py_b64decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(py_b64decode("aGVs\nbG8=").unwrap(), b"hello");
        assert_eq!(py_b64decode("aGVsbG8=trailing").unwrap(), b"hello");
        assert_eq!(py_b64decode("").unwrap(), b"");
        assert_eq!(py_b64decode("aGVsbG8"), Err(B64Error::IncorrectPadding));
        assert_eq!(py_b64decode("a"), Err(B64Error::InvalidLength));
        assert_eq!(py_b64decode("é"), Err(B64Error::NonAscii));
    }

    #[test]
    fn the_table_holds_the_alphabet() {
        for c in 0..=255u8 {
            let want = match c {
                b'A'..=b'Z' => Some(c - b'A'),
                b'a'..=b'z' => Some(c - b'a' + 26),
                b'0'..=b'9' => Some(c - b'0' + 52),
                b'+' => Some(62),
                b'/' => Some(63),
                _ => None,
            };
            assert_eq!(sextet(c), want, "{c}");
        }
    }

    #[test]
    fn the_quad_fast_path_agrees_with_the_per_character_decoder() {
        let mut next = crate::xorshift(0x2545_F491_u64);
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for _ in 0..20_000 {
            let len = (next() % 24) as usize;
            let text: String = (0..len)
                .map(|_| match next() % 10 {
                    0 => '=',
                    1 => ['\n', ' ', '-', '.'][(next() % 4) as usize],
                    _ => char::from(alphabet[(next() % 64) as usize]),
                })
                .collect();
            assert_eq!(decode(&text, true), decode(&text, false), "{text:?}");
        }
    }
}
