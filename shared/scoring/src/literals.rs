//! Many-literal substring search: which of a fixed set of byte strings occur in a text.
//!
//! This is how body fingerprints are found: ~1,300 patterns against every HTTP body. An
//! Aho-Corasick automaton that size walks a text with one dependent table load per byte and
//! ran at ~350 MB/s here; this search filters first and verifies rarely instead.
//!
//! The filter is a bucketed shift-or over 2-byte grams, after Hyperscan's FDR. Patterns are put
//! in 8 buckets; only the first [`WINDOW`] bytes of a pattern take part. For each of the 65,536
//! grams a `u64` mask holds, for every window offset `k` and every bucket `b`, one bit that is
//! set when no pattern of bucket `b` can have that gram at offset `k`. A text start `s` is a
//! candidate for bucket `b` when that bit is clear in the masks of the grams at `s..s+WINDOW`,
//! which costs one table load per text byte, with no dependency from one byte to the next: the
//! masks are ORed 8 positions at a time and tested once per 8 starts.
//!
//! A candidate is verified exactly: patterns of at least [`WINDOW`] bytes are looked up by their
//! first 8 bytes in a small open-addressing table, shorter ones (their own bucket) are compared
//! one by one; a hit compares bytes 8..16 as one word, then the whole pattern. The filter never
//! drops a real match, so the result is exactly the set of patterns `p` with `text.contains(p)`.

/// Bytes of each pattern that the filter looks at (one mask byte per offset).
const WINDOW: usize = 8;
/// Positions whose gram is looked up: all of them. A stride of 2 (grams at even offsets still
/// tile each window) halves the table loads but lets through enough extra candidates to be ~8%
/// slower on the samples.
const STRIDE: usize = 1;
/// Buckets, one bit each in a mask byte.
const BUCKETS: usize = 8;
/// Bucket of the patterns shorter than [`WINDOW`] (verified by direct comparison).
const SHORT_BUCKET: usize = BUCKETS - 1;
/// Gram used past the end of the text: no match reaches there, so any value is correct.
const PAD: u8 = 0;
/// Distinct 2-byte grams.
const GRAMS: usize = 1 << 16;
/// A block: the bytes of WINDOW grams.
type Block = [u8; WINDOW + 1];

/// A prepared set of non-empty literals.
#[derive(Debug, Clone)]
pub(crate) struct Literals {
    /// Per 2-byte gram (`text[i] | text[i+1] << 8`): byte `7 - k` holds, per bucket, "no
    /// pattern of this bucket has this gram at window offset `k`".
    masks: Box<[u64; GRAMS]>,
    patterns: Vec<Box<[u8]>>,
    /// Open-addressing table from the first 8 bytes of a long pattern to its slot in `groups`.
    slots: Box<[(u64, u32)]>,
    /// Pattern ids sharing one 8-byte prefix, one group per occupied slot.
    groups: Vec<Vec<u32>>,
    /// Ids of the patterns shorter than [`WINDOW`].
    short: Vec<u32>,
    /// Per pattern, (mask, value) of its bytes 8..16 as a word: a cheap first test before
    /// comparing the whole pattern, since many share their first 8 bytes (`<title>`, ...).
    tails: Vec<(u64, u64)>,
}

/// First 8 bytes of `b` as a little-endian word (`b` has at least 8).
fn word(b: &[u8]) -> Option<u64> {
    b.get(..8).and_then(|w| w.try_into().ok()).map(u64::from_le_bytes)
}

/// Slot index of a key in a table of `len` slots (a power of two).
fn slot_of(key: u64, len: usize) -> usize {
    // Fibonacci hashing: the high bits of the product mix every input byte.
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize & (len - 1)
}

/// Mask bit for bucket `b` at window offset `k`.
fn bit(k: usize, b: usize) -> u64 {
    1u64 << ((WINDOW - 1 - k) * 8 + b)
}

impl Literals {
    /// Prepares `patterns` (all non-empty); ids are their indices.
    pub(crate) fn new(patterns: Vec<Box<[u8]>>) -> Self {
        let mut masks: Box<[u64; GRAMS]> = vec![u64::MAX; GRAMS]
            .into_boxed_slice()
            .try_into()
            .unwrap_or_else(|_| Box::new([u64::MAX; GRAMS]));
        let mut short = Vec::new();
        // Long patterns sorted by their window go to the 7 long buckets in contiguous runs, so
        // a bucket holds patterns that share leading bytes and its masks stay selective.
        let mut long: Vec<u32> = Vec::new();
        for (id, p) in patterns.iter().enumerate() {
            if p.len() < WINDOW {
                short.push(id as u32);
            } else {
                long.push(id as u32);
            }
        }
        long.sort_by(|&a, &b| patterns[a as usize][..WINDOW].cmp(&patterns[b as usize][..WINDOW]));
        let per_bucket = long.len().div_ceil(SHORT_BUCKET).max(1);
        let assigned = long
            .iter()
            .enumerate()
            .map(|(i, &id)| (id, i / per_bucket))
            .chain(short.iter().map(|&id| (id, SHORT_BUCKET)));
        for (id, b) in assigned {
            let p = &patterns[id as usize];
            for k in 0..WINDOW {
                match (p.get(k), p.get(k + 1)) {
                    (Some(&lo), Some(&hi)) => masks[usize::from(lo) | usize::from(hi) << 8] &= !bit(k, b),
                    // past the pattern's end: any gram will do
                    _ => masks.iter_mut().for_each(|m| *m &= !bit(k, b)),
                }
            }
        }

        let size = (long.len() * 2).next_power_of_two().max(16);
        let mut slots = vec![(0u64, u32::MAX); size].into_boxed_slice();
        let mut groups: Vec<Vec<u32>> = Vec::new();
        for &id in &long {
            let Some(key) = word(&patterns[id as usize]) else {
                continue;
            };
            let mut i = slot_of(key, size);
            loop {
                let (k, g) = slots[i];
                if g == u32::MAX {
                    slots[i] = (key, groups.len() as u32);
                    groups.push(vec![id]);
                    break;
                }
                if k == key {
                    groups[g as usize].push(id);
                    break;
                }
                i = (i + 1) & (size - 1);
            }
        }
        let tails = patterns
            .iter()
            .map(|p| {
                let mut mask = [0u8; 8];
                let mut value = [0u8; 8];
                for (i, &b) in p.iter().skip(WINDOW).take(8).enumerate() {
                    mask[i] = 0xFF;
                    value[i] = b;
                }
                (u64::from_le_bytes(mask), u64::from_le_bytes(value))
            })
            .collect();
        Literals {
            masks,
            patterns,
            slots,
            groups,
            short,
            tails,
        }
    }

    /// Calls `found(id)` once for each pattern that occurs in `text` at a start `accept`s,
    /// in no particular order.
    pub(crate) fn find_all(&self, text: &[u8], mut accept: impl FnMut(usize) -> bool, mut found: impl FnMut(u32)) {
        let mut seen = vec![false; self.patterns.len()];
        let mut report = |start: usize, lanes: u64| {
            // byte j of `lanes`: the buckets still possible at `start + j`, as zero bits
            let mut open = !lanes;
            while open != 0 {
                let j = open.trailing_zeros() as usize / 8;
                let buckets = (open >> (j * 8)) as u8;
                open &= !(0xFF << (j * 8));
                self.verify(text, start + j, buckets, &mut seen, &mut accept, &mut found);
            }
        };
        // Blocks of WINDOW starts. A block's own positions give the lanes of its starts (`lo`)
        // and the end of the previous block's (`hi`); `prev` carries `lo` to the next block.
        let mut prev = u64::MAX;
        let mut s0 = 0usize;
        while let Some(block) = text.get(s0..s0 + WINDOW + 1).and_then(|b| <&Block>::try_from(b).ok()) {
            let (lo, hi) = self.block(block);
            if prev | hi != u64::MAX {
                report(s0.saturating_sub(WINDOW), prev | hi);
            }
            prev = lo;
            s0 += WINDOW;
        }
        // Fewer than WINDOW + 1 bytes are left: one block over them, padded, then one block of
        // padding to complete its starts. Later starts are past the end.
        let mut tail = [PAD; 2 * WINDOW + 1];
        let rest = text.get(s0..).unwrap_or_default();
        if let Some(dst) = tail.get_mut(..rest.len()) {
            dst.copy_from_slice(rest);
        }
        for t0 in [0, WINDOW] {
            let Some(block) = tail.get(t0..t0 + WINDOW + 1).and_then(|b| <&Block>::try_from(b).ok()) else {
                break;
            };
            let (lo, hi) = self.block(block);
            if prev | hi != u64::MAX {
                report((s0 + t0).saturating_sub(WINDOW), prev | hi);
            }
            prev = lo;
        }
    }

    /// Masks of the WINDOW grams starting in `b` (WINDOW + 1 bytes): the lanes they give the
    /// block's own starts, and the ones they give the previous block's starts.
    #[inline(always)]
    fn block(&self, b: &Block) -> (u64, u64) {
        let mut lo = 0u64;
        let mut hi = 0u64;
        for t in (0..WINDOW).step_by(STRIDE) {
            let m = self.masks[usize::from(b[t]) | usize::from(b[t + 1]) << 8];
            // the gram at block offset t is window offset k of start t - k: shifting by 8t
            // lines every start's lanes up in one byte (see the module comment)
            lo |= m >> (8 * (WINDOW - 1 - t));
            if t + 1 < WINDOW {
                hi |= m << (8 * (t + 1));
            }
        }
        (lo, hi)
    }

    /// Exact check of the candidate buckets at `s`; reports each pattern found the first time.
    fn verify(
        &self,
        text: &[u8],
        s: usize,
        buckets: u8,
        seen: &mut [bool],
        accept: &mut impl FnMut(usize) -> bool,
        found: &mut impl FnMut(u32),
    ) {
        let Some(rest) = text.get(s..) else { return };
        let second = rest.get(WINDOW..).and_then(word);
        let mut check = |id: u32| {
            let i = id as usize;
            if let (Some(w), Some(&(mask, value))) = (second, self.tails.get(i)) {
                if w & mask != value {
                    return;
                }
            }
            if !seen[i] && rest.starts_with(&self.patterns[i]) && accept(s) {
                seen[i] = true;
                found(id);
            }
        };
        if buckets & !(1 << SHORT_BUCKET) != 0 {
            if let Some(group) = word(rest).and_then(|key| self.group(key)) {
                group.iter().for_each(|&id| check(id));
            }
        }
        if buckets & (1 << SHORT_BUCKET) != 0 {
            self.short.iter().for_each(|&id| check(id));
        }
    }

    /// The long patterns whose first 8 bytes are `key`.
    fn group(&self, key: u64) -> Option<&[u32]> {
        let len = self.slots.len();
        let mut i = slot_of(key, len);
        loop {
            let (k, g) = self.slots[i];
            if g == u32::MAX {
                return None;
            }
            if k == key {
                return self.groups.get(g as usize).map(Vec::as_slice);
            }
            i = (i + 1) & (len - 1);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn naive(patterns: &[&[u8]], text: &[u8]) -> Vec<u32> {
        (0..patterns.len() as u32)
            .filter(|&i| {
                text.windows(patterns[i as usize].len())
                    .any(|w| w == patterns[i as usize])
            })
            .collect()
    }

    fn found(lits: &Literals, text: &[u8]) -> Vec<u32> {
        let mut v = Vec::new();
        lits.find_all(text, |_| true, |id| v.push(id));
        v.sort_unstable();
        v
    }

    fn lits(patterns: &[&[u8]]) -> Literals {
        Literals::new(patterns.iter().map(|p| Box::from(*p)).collect())
    }

    #[test]
    fn every_pattern_is_found_at_every_offset_and_text_length() {
        let patterns: Vec<&[u8]> = vec![
            b"a",
            b"xy",
            b"BUSY",
            b"Ray ID:",
            b"<title>Blocked",
            b"<title>Blocked by order",
            b"0123456789abcdef",
            b"\x00\x00zz",
            b"\x00\x00\x00\x00\x00\x00\x00\x00\x00",
        ];
        let l = lits(&patterns);
        for p in &patterns {
            for before in 0..20 {
                for after in 0..20 {
                    let mut text = vec![b'.'; before];
                    text.extend_from_slice(p);
                    text.extend(std::iter::repeat_n(b'.', after));
                    assert_eq!(found(&l, &text), naive(&patterns, &text), "{p:?} at {before}+{after}");
                }
            }
        }
    }

    #[test]
    fn texts_shorter_than_the_window_and_empty_texts_work() {
        let l = lits(&[b"ab", b"abcdefghij"]);
        assert_eq!(found(&l, b""), Vec::<u32>::new());
        assert_eq!(found(&l, b"a"), Vec::<u32>::new());
        assert_eq!(found(&l, b"ab"), vec![0]);
        assert_eq!(found(&l, b"abcdefghij"), vec![0, 1]);
        assert_eq!(found(&l, b"abcdefghi"), vec![0]);
    }

    #[test]
    fn a_pseudo_random_corpus_agrees_with_naive_search() {
        // many patterns sharing prefixes, and texts spliced from pieces of them, so that long
        // and short patterns really occur (and almost occur) at every alignment
        let mut x = 0x1234_5678_u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let owned: Vec<Vec<u8>> = (0..400)
            .map(|i| {
                let len = 3 + (next() % 24) as usize;
                let mut p: Vec<u8> = if i % 3 == 0 { b"<title>".to_vec() } else { Vec::new() };
                p.extend((0..len).map(|_| b"abcd<>"[(next() % 6) as usize]));
                p
            })
            .collect();
        let patterns: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
        let l = lits(&patterns);
        let mut long_found = 0;
        for _ in 0..300 {
            let mut text = Vec::new();
            while text.len() < (next() % 400) as usize {
                let p = &owned[(next() % owned.len() as u64) as usize];
                let cut = (next() % (p.len() as u64 + 1)) as usize;
                text.extend_from_slice(if next() % 2 == 0 { p } else { &p[..cut] });
                text.extend((0..next() % 3).map(|_| b"abcd<>e"[(next() % 7) as usize]));
            }
            let expected = naive(&patterns, &text);
            long_found += expected.iter().filter(|&&i| patterns[i as usize].len() >= 16).count();
            assert_eq!(found(&l, &text), expected);
        }
        assert!(long_found > 100, "the corpus exercises long patterns ({long_found})");
    }
}
