//! Postcans: `.tar.gz` archives of the raw `.post` objects, written incrementally so the
//! caller can ship the compressed bytes as they are produced (no whole-archive buffering).
//!
//! Each entry is named by its incoming key (`incoming/{hour}/{hour}_{cc}_{tn}/{uid}.post`,
//! like upstream's spool path), mode 0644, owner 0/0, mtime the start of the hour, so the
//! same inputs give the same bytes on a rerun. GNU long names are used when a key exceeds
//! 100 bytes (GNU tar, Python's `tarfile` and libarchive read them).

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;

use crate::seekable::LEVEL;

/// Upstream closes a postcan once it exceeds this many compressed bytes.
pub const DEFAULT_POSTCAN_BYTES: u64 = 20 * 1000 * 1000;

/// A `.tar.gz` being written. Call [`PostcanWriter::take_output`] after appends to collect
/// the compressed bytes produced so far.
pub struct PostcanWriter {
    tar: tar::Builder<GzEncoder<Vec<u8>>>,
    mtime: u64,
    taken: u64,
    entries: u64,
}

impl PostcanWriter {
    /// A new archive whose entries carry `mtime` (seconds since the epoch).
    pub fn new(mtime: u64) -> Self {
        let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::new(LEVEL)));
        tar.mode(tar::HeaderMode::Deterministic);
        PostcanWriter {
            tar,
            mtime,
            taken: 0,
            entries: 0,
        }
    }

    /// Adds one file.
    pub fn append(&mut self, path: &str, body: &[u8]) -> std::io::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(self.mtime);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        self.tar.append_data(&mut header, path, body)?;
        self.entries += 1;
        Ok(())
    }

    /// The compressed bytes produced since the last call.
    pub fn take_output(&mut self) -> Vec<u8> {
        let out = std::mem::take(self.tar.get_mut().get_mut());
        self.taken += out.len() as u64;
        out
    }

    /// Compressed bytes produced so far (taken or not). Deflate holds back some input, so
    /// this trails the final size by at most a few hundred KiB.
    pub fn compressed_len(&self) -> u64 {
        self.taken + self.tar.get_ref().get_ref().len() as u64
    }

    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Ends the archive; returns the remaining compressed bytes.
    pub fn finish(self) -> std::io::Result<Vec<u8>> {
        let mut gz = self.tar.into_inner()?;
        gz.flush()?;
        gz.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn build(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = PostcanWriter::new(1_700_000_000);
        let mut out = Vec::new();
        for (path, body) in files {
            w.append(path, body).unwrap();
            out.extend(w.take_output());
        }
        assert_eq!(w.entries(), files.len() as u64);
        assert!(w.compressed_len() >= out.len() as u64);
        out.extend(w.finish().unwrap());
        out
    }

    #[test]
    fn the_archive_holds_every_file_under_its_key() {
        let long = format!(
            "incoming/2024030506/2024030506_IT_webconnectivity/{}.post",
            "a".repeat(80)
        );
        let files: Vec<(&str, &[u8])> = vec![
            ("incoming/2024030506/x/1.post", b"{\"format\":\"json\"}"),
            (long.as_str(), b"second"),
        ];
        let tgz = build(&files);
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&tgz[..]));
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            assert_eq!(entry.header().mtime().unwrap(), 1_700_000_000);
            assert_eq!(entry.header().mode().unwrap(), 0o644);
            let mut body = Vec::new();
            entry.read_to_end(&mut body).unwrap();
            seen.push((path, body));
        }
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].0, files[0].0);
        assert_eq!(seen[0].1, files[0].1);
        assert_eq!(seen[1].0, long);
        assert_eq!(seen[1].1, b"second");
    }

    #[test]
    fn the_same_files_give_the_same_bytes() {
        let files: Vec<(&str, &[u8])> = vec![("a.post", b"1"), ("b.post", b"2")];
        assert_eq!(build(&files), build(&files));
    }
}
