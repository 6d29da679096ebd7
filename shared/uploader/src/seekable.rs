//! Seekable JSONL.gz: a JSONL file written as a sequence of gzip members, each holding
//! consecutive whole lines up to a fixed uncompressed size, so that one line can be read
//! with one ranged GET of its member and one small inflate.
//!
//! The concatenation of gzip members is itself a valid gzip file (RFC 1952 §2.2): `zcat`,
//! Python's `gzip` module and pandas read it as the plain JSONL it holds. Members start a
//! fresh deflate stream, which costs a little compression at each boundary (the 32 KiB
//! window starts empty) plus an 18-byte header and trailer; with 256 KiB members that is
//! about 1–3 % on OONI measurements (see the crate benchmark). A line longer than the member
//! size gets a member of its own. Output is deterministic: same lines, same bytes (mtime 0,
//! no file name, fixed level).

use std::io::{BufRead, Read, Write};

use flate2::read::{GzDecoder, MultiGzDecoder};
use flate2::write::GzEncoder;
use flate2::Compression;

/// Default largest uncompressed size of a member (a single longer line is allowed).
pub const DEFAULT_MEMBER_BYTES: usize = 256 * 1024;

/// Compression level of both output files (fixed so output is reproducible).
pub const LEVEL: u32 = 6;

/// Where a line was placed: the member it is in and its index inside that member. The
/// member's compressed length is known once the member is closed ([`Member`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinePos {
    /// Index of the member in the file (0-based).
    pub member: u32,
    /// Byte offset of the member in the file.
    pub member_offset: u64,
    /// Line index inside the member (0-based).
    pub member_line: u32,
    /// Line index in the whole file (0-based), upstream's `linenum`.
    pub linenum: u64,
}

/// A finished member: its bytes and where they go in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub index: u32,
    pub offset: u64,
    pub bytes: Vec<u8>,
    pub lines: u32,
}

/// Writes lines into members. Pure: the caller ships each returned [`Member`] (in order)
/// to wherever the file goes.
pub struct SeekableWriter {
    target: usize,
    level: Compression,
    current: Option<GzEncoder<Vec<u8>>>,
    current_uncompressed: usize,
    current_lines: u32,
    member_index: u32,
    offset: u64,
    linenum: u64,
}

impl SeekableWriter {
    /// Members of at most `member_bytes` uncompressed bytes (at least 1) at [`LEVEL`].
    pub fn new(member_bytes: usize) -> Self {
        Self::with_level(member_bytes, LEVEL)
    }

    pub fn with_level(member_bytes: usize, level: u32) -> Self {
        SeekableWriter {
            target: member_bytes.max(1),
            level: Compression::new(level),
            current: None,
            current_uncompressed: 0,
            current_lines: 0,
            member_index: 0,
            offset: 0,
            linenum: 0,
        }
    }

    /// Appends `line` (without its newline; it must hold none). Returns where it went and the
    /// member that was closed to make room for it, if any.
    pub fn push_line(&mut self, line: &[u8]) -> std::io::Result<(LinePos, Option<Member>)> {
        let needed = line.len() + 1;
        let mut closed = None;
        if self.current.is_some() && self.current_uncompressed + needed > self.target {
            closed = self.close_member()?;
        }
        let level = self.level;
        let encoder = self
            .current
            .get_or_insert_with(|| GzEncoder::new(Vec::new(), level));
        encoder.write_all(line)?;
        encoder.write_all(b"\n")?;
        let pos = LinePos {
            member: self.member_index,
            member_offset: self.offset,
            member_line: self.current_lines,
            linenum: self.linenum,
        };
        self.current_uncompressed += needed;
        self.current_lines += 1;
        self.linenum += 1;
        Ok((pos, closed))
    }

    /// Closes the open member, if any.
    pub fn close_member(&mut self) -> std::io::Result<Option<Member>> {
        let Some(encoder) = self.current.take() else {
            return Ok(None);
        };
        let bytes = encoder.finish()?;
        let member = Member {
            index: self.member_index,
            offset: self.offset,
            lines: self.current_lines,
            bytes,
        };
        self.offset += member.bytes.len() as u64;
        self.member_index += 1;
        self.current_uncompressed = 0;
        self.current_lines = 0;
        Ok(Some(member))
    }

    /// Bytes of the members closed so far.
    pub fn compressed_len(&self) -> u64 {
        self.offset
    }

    /// Lines written so far.
    pub fn lines(&self) -> u64 {
        self.linenum
    }
}

/// Why a line could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("corrupt gzip data: {0}")]
    Corrupt(#[from] std::io::Error),
    #[error("line is larger than {0} bytes")]
    TooLarge(usize),
}

/// Line `line` (0-based, without its newline) of one gzip member, or `None` when the member
/// has fewer lines. Inflates the whole member (at most `limit` bytes), so its CRC and length
/// are checked: a wrong offset or length is an error, never a wrong line.
pub fn member_line(member: &[u8], line: u32, limit: usize) -> Result<Option<Vec<u8>>, ReadError> {
    let mut text = Vec::new();
    GzDecoder::new(member)
        .take(limit as u64 + 1)
        .read_to_end(&mut text)?;
    if text.len() > limit {
        return Err(ReadError::TooLarge(limit));
    }
    Ok(text
        .split_inclusive(|b| *b == b'\n')
        .nth(line as usize)
        .map(|l| l.strip_suffix(b"\n").unwrap_or(l).to_vec()))
}

/// Line `linenum` of a whole (single- or multi-member) gzip file, the upstream way: inflate
/// from the start. Inflates the file up to and including that line.
pub fn file_line(file: &[u8], linenum: u64, limit: usize) -> Result<Option<Vec<u8>>, ReadError> {
    nth_line(MultiGzDecoder::new(file), linenum, limit)
}

fn nth_line<R: Read>(reader: R, n: u64, limit: usize) -> Result<Option<Vec<u8>>, ReadError> {
    let mut reader = std::io::BufReader::with_capacity(64 * 1024, reader);
    let mut index = 0u64;
    loop {
        if index == n {
            let mut out = Vec::new();
            let read = (&mut reader)
                .take(limit as u64 + 1)
                .read_until(b'\n', &mut out)?;
            if read == 0 {
                return Ok(None);
            }
            if out.last() == Some(&b'\n') {
                out.pop();
            } else if out.len() > limit {
                return Err(ReadError::TooLarge(limit));
            }
            return Ok(Some(out));
        }
        // Skip one line without keeping it.
        loop {
            let buf = reader.fill_buf()?;
            if buf.is_empty() {
                return Ok(None);
            }
            match buf.iter().position(|b| *b == b'\n') {
                Some(i) => {
                    reader.consume(i + 1);
                    break;
                }
                None => {
                    let len = buf.len();
                    reader.consume(len);
                }
            }
        }
        index += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_all(lines: &[Vec<u8>], member_bytes: usize) -> (Vec<u8>, Vec<(LinePos, u64)>) {
        let mut w = SeekableWriter::new(member_bytes);
        let mut file = Vec::new();
        let mut positions = Vec::new();
        let mut lengths = std::collections::HashMap::new();
        for line in lines {
            let (pos, closed) = w.push_line(line).unwrap();
            if let Some(m) = closed {
                assert_eq!(m.offset, file.len() as u64);
                lengths.insert(m.index, m.bytes.len() as u64);
                file.extend_from_slice(&m.bytes);
            }
            positions.push(pos);
        }
        if let Some(m) = w.close_member().unwrap() {
            lengths.insert(m.index, m.bytes.len() as u64);
            file.extend_from_slice(&m.bytes);
        }
        let with_len = positions
            .into_iter()
            .map(|p| (p, lengths[&p.member]))
            .collect();
        (file, with_len)
    }

    fn lines() -> Vec<Vec<u8>> {
        (0..500)
            .map(|i| format!("{{\"i\":{i},\"pad\":\"{}\"}}", "x".repeat(i * 7 % 3000)).into_bytes())
            .collect()
    }

    #[test]
    fn every_line_reads_back_from_its_member_alone() {
        let lines = lines();
        let (file, positions) = write_all(&lines, 16 * 1024);
        assert!(
            positions.last().unwrap().0.member > 10,
            "several members expected"
        );
        for (line, (pos, len)) in lines.iter().zip(&positions) {
            let start = usize::try_from(pos.member_offset).unwrap();
            let end = start + usize::try_from(*len).unwrap();
            let got = member_line(&file[start..end], pos.member_line, 1 << 20).unwrap();
            assert_eq!(got.as_ref(), Some(line));
        }
    }

    #[test]
    fn the_whole_file_is_one_gzip_stream_of_all_lines() {
        let lines = lines();
        let (file, positions) = write_all(&lines, 16 * 1024);
        let mut text = Vec::new();
        MultiGzDecoder::new(&file[..])
            .read_to_end(&mut text)
            .unwrap();
        let mut expected = lines.join(&b'\n');
        expected.push(b'\n');
        assert_eq!(text, expected);
        assert_eq!(
            file_line(&file, 123, 1 << 20).unwrap().as_ref(),
            Some(&lines[123])
        );
        assert_eq!(file_line(&file, 500, 1 << 20).unwrap(), None);
        for (i, (pos, _)) in positions.iter().enumerate() {
            assert_eq!(pos.linenum, i as u64);
        }
    }

    #[test]
    fn a_line_larger_than_the_member_size_gets_a_member_of_its_own() {
        let big = vec![b'a'; 10_000];
        let lines = vec![b"{}".to_vec(), big.clone(), b"[]".to_vec()];
        let (_, positions) = write_all(&lines, 100);
        let members: Vec<u32> = positions.iter().map(|(p, _)| p.member).collect();
        assert_eq!(members, vec![0, 1, 2]);
        assert!(positions.iter().all(|(p, _)| p.member_line == 0));
    }

    #[test]
    fn members_fill_up_to_the_target_size() {
        // 10 lines of 99 bytes + newline = 1000 bytes fit exactly in one member.
        let lines: Vec<Vec<u8>> = (0..11).map(|_| vec![b'b'; 99]).collect();
        let (_, positions) = write_all(&lines, 1000);
        assert_eq!(positions[9].0.member, 0);
        assert_eq!(positions[9].0.member_line, 9);
        assert_eq!(positions[10].0.member, 1);
        assert_eq!(positions[10].0.member_line, 0);
    }

    #[test]
    fn output_is_deterministic() {
        let lines = lines();
        assert_eq!(write_all(&lines, 8192).0, write_all(&lines, 8192).0);
    }

    #[test]
    fn reading_past_the_end_or_an_oversized_line_is_reported() {
        let (file, positions) = write_all(&[b"{\"a\":1}".to_vec()], 1024);
        let len = usize::try_from(positions[0].1).unwrap();
        assert_eq!(member_line(&file[..len], 1, 100).unwrap(), None);
        assert!(matches!(
            member_line(&file[..len], 0, 3),
            Err(ReadError::TooLarge(3))
        ));
        assert!(matches!(
            file_line(&file[..len], 0, 3),
            Err(ReadError::TooLarge(3))
        ));
        assert!(member_line(&file[..len - 4], 0, 100).is_err());
        assert!(member_line(b"not gzip", 0, 100).is_err());
    }
}
