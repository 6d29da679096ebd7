//! Reading measurements out of the files the CLI reprocesses: JSONL (plain, gzip or zstd,
//! detected from the content's magic bytes) and postcans (tar, usually gzipped, of `.post`
//! files named `{measurement_uid}.post`).
//!
//! A JSONL line is either `{"measurement_uid": ..., "measurement": {...}}` (extra keys
//! ignored; the shape of the samples file) or a bare measurement, as in the uploader's
//! `jsonl.gz` cans. A bare measurement's uid is its own `measurement_uid` field when it has
//! one, else upstream's `trivial_id`: `"01" + YYYYMMDD(measurement_start_time) +
//! shake_128(line).hexdigest(15)`, hashing the raw line with its newline as upstream's Python
//! line iteration does.

use ooni_scoring::trivial_id;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::io::{BufRead, BufReader, Read};

/// Why an input could not be read (a whole file; single bad lines are items, not errors).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("reading {name}: {source}")]
    Io {
        name: String,
        #[source]
        source: std::io::Error,
    },
}

/// One thing read from an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawItem {
    /// A measurement body (bare, or the `{format, content}` POST envelope) and its uid.
    Measurement { uid: String, body: Vec<u8> },
    /// A line or archive member that holds no measurement.
    Skipped { reason: &'static str },
}

/// What kind of container a name denotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A tar of `.post` files (compression detected from the bytes).
    Postcan,
    /// JSON lines (compression detected from the bytes).
    Jsonl,
}

/// The kind of input `name` is, from its extension.
pub fn kind_of(name: &str) -> Kind {
    let n = name.to_ascii_lowercase();
    if n.ends_with(".tar.gz")
        || n.ends_with(".tgz")
        || n.ends_with(".tar")
        || n.ends_with(".tar.zst")
    {
        Kind::Postcan
    } else {
        Kind::Jsonl
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Wraps `reader` in the decompressor its first bytes call for (gzip, zstd, or none).
pub fn decompressed_reader<'a>(
    name: &str,
    reader: impl Read + 'a,
) -> Result<Box<dyn BufRead + 'a>, InputError> {
    let mut buf = BufReader::with_capacity(256 * 1024, reader);
    let head = buf.fill_buf().map_err(|source| InputError::Io {
        name: name.to_owned(),
        source,
    })?;
    if head.starts_with(&GZIP_MAGIC) {
        Ok(Box::new(BufReader::with_capacity(
            256 * 1024,
            flate2::bufread::MultiGzDecoder::new(buf),
        )))
    } else if head.starts_with(&ZSTD_MAGIC) {
        let dec =
            zstd::stream::read::Decoder::with_buffer(buf).map_err(|source| InputError::Io {
                name: name.to_owned(),
                source,
            })?;
        Ok(Box::new(BufReader::with_capacity(256 * 1024, dec)))
    } else {
        Ok(Box::new(buf))
    }
}

/// Reads every item of the input called `name` (its extension picks postcan vs JSONL),
/// handing each to `f`. Stops at the first I/O or decompression error.
pub fn read_items(
    name: &str,
    reader: impl Read,
    f: &mut dyn FnMut(RawItem),
) -> Result<(), InputError> {
    let reader = decompressed_reader(name, reader)?;
    match kind_of(name) {
        Kind::Postcan => read_postcan(name, reader, f),
        Kind::Jsonl => read_jsonl(name, reader, f),
    }
}

fn read_postcan(
    name: &str,
    reader: impl Read,
    f: &mut dyn FnMut(RawItem),
) -> Result<(), InputError> {
    let io = |source| InputError::Io {
        name: name.to_owned(),
        source,
    };
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().map_err(io)?.to_string_lossy().into_owned();
        let file = path.rsplit('/').next().unwrap_or(&path);
        let Some(uid) = file.strip_suffix(".post").filter(|u| !u.is_empty()) else {
            f(RawItem::Skipped {
                reason: "not_a_post_file",
            });
            continue;
        };
        let uid = uid.to_owned();
        let mut body = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0).min(64 << 20));
        entry.read_to_end(&mut body).map_err(io)?;
        f(RawItem::Measurement { uid, body });
    }
    Ok(())
}

#[derive(Deserialize)]
struct LinePeek<'a> {
    #[serde(borrow, default)]
    measurement_uid: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    measurement: Option<&'a RawValue>,
    #[serde(borrow, default)]
    measurement_start_time: Option<Cow<'a, str>>,
}

/// One JSONL line (with its newline, if any) to an item.
pub fn line_item(line: &[u8]) -> RawItem {
    let text = String::from_utf8_lossy(line);
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return RawItem::Skipped {
            reason: "empty_line",
        };
    }
    let Ok(peek) = serde_json::from_str::<LinePeek>(trimmed) else {
        return RawItem::Skipped {
            reason: "invalid_line",
        };
    };
    match peek.measurement {
        Some(m) => {
            let uid = match peek.measurement_uid {
                Some(u) => u.into_owned(),
                None => {
                    let start = serde_json::from_str::<LinePeek>(m.get())
                        .ok()
                        .and_then(|p| p.measurement_start_time.map(Cow::into_owned));
                    trivial_id(m.get().as_bytes(), start.as_deref())
                }
            };
            RawItem::Measurement {
                uid,
                body: m.get().as_bytes().to_vec(),
            }
        }
        None => {
            let uid = match peek.measurement_uid {
                Some(u) => u.into_owned(),
                None => trivial_id(line, peek.measurement_start_time.as_deref()),
            };
            RawItem::Measurement {
                uid,
                body: trimmed.as_bytes().to_vec(),
            }
        }
    }
}

fn read_jsonl(
    name: &str,
    mut reader: impl BufRead,
    f: &mut dyn FnMut(RawItem),
) -> Result<(), InputError> {
    let mut line = Vec::with_capacity(64 * 1024);
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|source| InputError::Io {
                name: name.to_owned(),
                source,
            })?;
        if n == 0 {
            return Ok(());
        }
        f(line_item(&line));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::io::Write;

    fn collect(name: &str, bytes: &[u8]) -> Vec<RawItem> {
        let mut out = Vec::new();
        read_items(name, bytes, &mut |i| out.push(i)).unwrap();
        out
    }

    const BARE: &str =
        r#"{"report_id":"r","measurement_start_time":"2021-02-03 10:11:12","test_name":"x"}"#;

    #[test]
    fn wrapper_lines_keep_their_uid_and_body() {
        let line = format!("{{\"idx\":1,\"measurement_uid\":\"u1\",\"measurement\":{BARE}}}\n");
        assert_eq!(
            collect("a.jsonl", line.as_bytes()),
            vec![RawItem::Measurement {
                uid: "u1".into(),
                body: BARE.as_bytes().to_vec()
            }]
        );
    }

    #[test]
    fn bare_lines_without_a_uid_get_upstreams_trivial_id_over_the_raw_line() {
        let line = format!("{BARE}\n");
        let items = collect("a.jsonl", line.as_bytes());
        let expected = trivial_id(line.as_bytes(), Some("2021-02-03 10:11:12"));
        assert!(expected.starts_with("0120210203"));
        assert_eq!(
            items,
            vec![RawItem::Measurement {
                uid: expected,
                body: BARE.as_bytes().to_vec()
            }]
        );
    }

    #[test]
    fn bare_lines_with_a_uid_field_use_it() {
        let line =
            r#"{"measurement_uid":"20210203101112.123456_IT_x_0123456789abcdef","report_id":"r"}"#;
        match &collect("a.jsonl", line.as_bytes())[0] {
            RawItem::Measurement { uid, .. } => {
                assert_eq!(uid, "20210203101112.123456_IT_x_0123456789abcdef")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn gzip_and_zstd_are_detected_from_the_bytes_and_blank_or_broken_lines_are_skipped() {
        let text = format!("{BARE}\n\nnot json\n{BARE}");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(text.as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(text.as_bytes(), 1).unwrap();
        for (name, bytes) in [
            ("x.jsonl.gz", gz),
            ("x.jsonl.zst", zst),
            ("x.jsonl", text.clone().into_bytes()),
        ] {
            let items = collect(name, &bytes);
            let kinds: Vec<&str> = items
                .iter()
                .map(|i| match i {
                    RawItem::Measurement { .. } => "m",
                    RawItem::Skipped { reason } => reason,
                })
                .collect();
            assert_eq!(
                kinds,
                vec!["m", "empty_line", "invalid_line", "m"],
                "{name}"
            );
        }
    }

    #[test]
    fn postcans_yield_each_post_file_under_its_uid() {
        let mut tar = tar::Builder::new(Vec::new());
        for (path, body) in [
            ("var/spool/incoming/2021081715_US_webconnectivity/20210817151530.123456_US_webconnectivity_0123456789abcdef.post", "{\"format\":\"json\",\"content\":{}}"),
            ("var/spool/incoming/README", "x"),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            tar.append_data(&mut h, path, body.as_bytes()).unwrap();
        }
        let raw = tar.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&raw).unwrap();
        let gz = gz.finish().unwrap();
        // A postcan that was never gzipped is read as well (upstream: "minican with missing gzipping").
        for bytes in [gz, raw] {
            let items = collect("2021081715_US_webconnectivity.n0.0.tar.gz", &bytes);
            assert_eq!(
                items,
                vec![
                    RawItem::Measurement {
                        uid: "20210817151530.123456_US_webconnectivity_0123456789abcdef".into(),
                        body: b"{\"format\":\"json\",\"content\":{}}".to_vec()
                    },
                    RawItem::Skipped {
                        reason: "not_a_post_file"
                    },
                ]
            );
        }
    }

    #[test]
    fn a_truncated_gzip_file_is_an_error() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(format!("{BARE}\n").repeat(1000).as_bytes())
            .unwrap();
        let gz = gz.finish().unwrap();
        let mut n = 0;
        let r = read_items("x.jsonl.gz", &gz[..gz.len() / 2], &mut |_| n += 1);
        assert!(r.is_err());
    }
}
