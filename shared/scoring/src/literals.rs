//! Many-literal substring search: which of a fixed set of byte strings occur in a text.
//!
//! This is how body fingerprints are found: ~1,300 patterns (~1,500 with their escaped
//! encodings) against every HTTP body. An Aho-Corasick automaton that size walks a text with
//! one dependent table load per byte (~350 MB/s here), and a shift-or filter over every 2-byte
//! gram (after Hyperscan's FDR, the previous version) still costs a table load per byte. Here
//! the text is sampled instead.
//!
//! **Sampling.** Only every [`STRIDE`]-th position `p` of the text is looked at: the word
//! starting there. An occurrence of a pattern of length `len` starting at `s` covers a sampled
//! position `p = s + k` for each offset `k ≡ -s (mod STRIDE)` with `k + g ≤ len` (`g` the gram
//! length); for each of the `STRIDE` residues one such `k` is registered (the one whose gram
//! looks rarest), so every occurrence puts a registered gram of its pattern at some sampled
//! position. Per sampled position: a multiplicative hash of the gram and a test in a blocked
//! Bloom filter of the registered grams (two bits in one word each). A gram that passes is
//! checked exactly: it is looked up in a table of its (pattern, offset) pairs and those patterns
//! compared in place. On the sample bodies about 0.2% of the sampled positions get that far.
//!
//! Patterns of at least [`STRIDE`]` + 7` bytes (nearly all) use 8-byte grams; shorter ones down
//! to [`STRIDE`]` + 3` bytes use 4-byte grams, tested at the same positions; the few shorter
//! still are searched one by one with `memmem`. The result is exactly the set of patterns that
//! occur in the text at a start `accept`ed.

use memchr::memmem;
use std::collections::HashMap;

/// Distance between the sampled text positions.
const STRIDE: usize = 4;
/// Gram lengths of the two tiers.
const LONG_GRAM: usize = 8;
const MID_GRAM: usize = 4;
/// Words of the tiers' filters: 16 KiB for a few thousand 8-byte grams (about 0.7% of the
/// other grams pass), 1 KiB for the few hundred 4-byte ones.
const LONG_WORDS: usize = 1 << 13;
const MID_WORDS: usize = 1 << 10;

/// A prepared set of non-empty literals.
#[derive(Debug, Clone)]
pub(crate) struct Literals {
    patterns: Vec<Box<[u8]>>,
    /// Patterns of at least `STRIDE + 7` bytes.
    long: Tier<LONG_WORDS>,
    /// Patterns of `STRIDE + 3` to `STRIDE + 6` bytes.
    mid: Tier<MID_WORDS>,
    /// Shorter patterns, searched one by one.
    tiny: Vec<(u32, memmem::Finder<'static>)>,
}

/// `b[at..at + 8]` as a little-endian word.
#[inline(always)]
fn word_at(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8)
        .and_then(|w| <[u8; 8]>::try_from(w).ok())
        .map(u64::from_le_bytes)
}

/// `b[at..at + len]` (`len` ≤ 8) as a little-endian word.
fn gram_at(b: &[u8], at: usize, len: usize) -> Option<u64> {
    let bytes = b.get(at..at + len)?;
    let mut w = [0u8; 8];
    w.get_mut(..len)?.copy_from_slice(bytes);
    Some(u64::from_le_bytes(w))
}

/// Every `len`-byte gram of `p`, with its offset.
fn grams_of(p: &[u8], len: usize) -> impl Iterator<Item = (u64, usize)> + '_ {
    (0..=p.len().saturating_sub(len)).filter_map(move |k| Some((gram_at(p, k, len)?, k)))
}

/// Multiplicative (Fibonacci) hash of a gram to `bits` bits.
#[inline(always)]
fn hash(gram: u64, bits: u32) -> usize {
    (gram.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
}

/// How common a gram's bytes are in web pages (lower is rarer): lower-case letters, spaces and
/// markup punctuation are everywhere, digits and capitals less so, other bytes rarely.
fn byte_commonness(gram: u64, len: usize) -> u32 {
    gram.to_le_bytes()
        .iter()
        .take(len)
        .map(|b| match b {
            b'a'..=b'z' | b' ' | b'<' | b'>' | b'/' | b'"' | b'=' | b'.' | b':' | b'-' => 3,
            b'0'..=b'9' | b'A'..=b'Z' | b'\\' => 2,
            _ => 1,
        })
        .sum()
}

/// The patterns found through grams of one length, with a bit set of `WORDS` words.
#[derive(Debug, Clone)]
struct Tier<const WORDS: usize> {
    /// The mask that cuts a text word down to the tier's gram length.
    mask: u64,
    /// A blocked Bloom filter of the registered grams: each sets two bits in one word.
    filter: Box<[u64; WORDS]>,
    /// Registered gram -> its (pattern id, offset of the gram in the pattern) pairs.
    grams: GramTable,
}

impl<const WORDS: usize> Tier<WORDS> {
    /// Hash bits that pick a word.
    const WORD_BITS: u32 = WORDS.trailing_zeros();

    /// The filter word of a gram, and the two bits it sets there.
    #[inline(always)]
    fn bloom(gram: u64) -> (usize, u64) {
        let h = gram.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let word = (h >> (64 - Self::WORD_BITS)) as usize;
        (word, (1 << ((h >> 41) & 63)) | (1 << ((h >> 47) & 63)))
    }

    /// Registers `ids` (each at least `STRIDE + len - 1` bytes long).
    fn new(patterns: &[Box<[u8]>], ids: &[u32], len: usize) -> Self {
        // how many patterns contain each gram: a gram many share (`https://`, `<title>`) is a
        // common one in pages too, and would make a long group
        let mut shared: HashMap<u64, u32> = HashMap::new();
        for &id in ids {
            let mut grams: Vec<u64> = grams_of(&patterns[id as usize], len).map(|(g, _)| g).collect();
            grams.sort_unstable();
            grams.dedup();
            for g in grams {
                *shared.entry(g).or_default() += 1;
            }
        }
        let mut entries: Vec<Slot> = Vec::with_capacity(ids.len() * STRIDE);
        for &id in ids {
            for residue in 0..STRIDE {
                let best = grams_of(&patterns[id as usize], len)
                    .filter(|&(_, k)| k % STRIDE == residue)
                    .min_by_key(|&(g, _)| (shared.get(&g).copied().unwrap_or(0), byte_commonness(g, len)));
                if let Some((gram, k)) = best {
                    entries.push(Slot { gram, id, k: k as u32 });
                }
            }
        }
        let mut filter: Box<[u64; WORDS]> = vec![0u64; WORDS]
            .into_boxed_slice()
            .try_into()
            .unwrap_or_else(|_| Box::new([0u64; WORDS]));
        for e in &entries {
            let (word, bits) = Self::bloom(e.gram);
            if let Some(w) = filter.get_mut(word) {
                *w |= bits;
            }
        }
        Tier {
            mask: if len >= 8 { u64::MAX } else { (1 << (8 * len)) - 1 },
            filter,
            grams: GramTable::new(&entries),
        }
    }

    /// Whether `gram` (already cut to the tier's length) passes the filter.
    #[inline(always)]
    fn hit(&self, gram: u64) -> bool {
        let (word, bits) = Self::bloom(gram);
        self.filter.get(word).is_some_and(|w| w & bits == bits)
    }
}

/// Open-addressing multimap from a gram to its (pattern id, offset) pairs, stored inline so
/// that a lookup touches one or two cache lines.
#[derive(Debug, Clone)]
struct GramTable {
    /// A power of two long, at most half full: a probe always ends at a free slot.
    slots: Box<[Slot]>,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    gram: u64,
    /// Pattern id, [`FREE`] for a free slot.
    id: u32,
    /// Offset of the gram in the pattern.
    k: u32,
}

const FREE: u32 = u32::MAX;

/// Hash bits of a [`GramTable`] slot index (masked down to the table size).
const TABLE_BITS: u32 = 32;

impl GramTable {
    fn new(entries: &[Slot]) -> Self {
        let size = (entries.len() * 2).next_power_of_two().max(16);
        let mut slots = vec![
            Slot {
                gram: 0,
                id: FREE,
                k: 0
            };
            size
        ]
        .into_boxed_slice();
        for e in entries {
            let mut i = hash(e.gram, TABLE_BITS) & (size - 1);
            while slots[i].id != FREE {
                i = (i + 1) & (size - 1);
            }
            slots[i] = *e;
        }
        GramTable { slots }
    }

    /// The (pattern id, offset) pairs registered for `gram`.
    fn get(&self, gram: u64) -> impl Iterator<Item = (u32, u32)> + '_ {
        let mask = self.slots.len().saturating_sub(1);
        let start = hash(gram, TABLE_BITS);
        (0..self.slots.len())
            .map_while(move |j| self.slots.get((start + j) & mask).filter(|s| s.id != FREE))
            .filter(move |s| s.gram == gram)
            .map(|s| (s.id, s.k))
    }
}

impl Literals {
    /// Prepares `patterns` (all non-empty); ids are their indices.
    pub(crate) fn new(patterns: Vec<Box<[u8]>>) -> Self {
        let (mut long, mut mid, mut tiny) = (Vec::new(), Vec::new(), Vec::new());
        for (id, p) in patterns.iter().enumerate() {
            let tier = if p.len() >= STRIDE + LONG_GRAM - 1 {
                &mut long
            } else if p.len() >= STRIDE + MID_GRAM - 1 {
                &mut mid
            } else {
                &mut tiny
            };
            tier.push(id as u32);
        }
        let tiny = tiny
            .into_iter()
            .map(|id| (id, memmem::Finder::new(&patterns[id as usize]).into_owned()))
            .collect();
        Literals {
            long: Tier::new(&patterns, &long, LONG_GRAM),
            mid: Tier::new(&patterns, &mid, MID_GRAM),
            patterns,
            tiny,
        }
    }

    /// Calls `found(id)` once for each pattern that occurs in `text` at a start `accept`s,
    /// in no particular order.
    pub(crate) fn find_all(&self, text: &[u8], mut accept: impl FnMut(usize) -> bool, mut found: impl FnMut(u32)) {
        let mut seen = vec![false; self.patterns.len()];
        let mut report = |id: u32, start: usize, seen: &mut Vec<bool>| {
            if seen.get(id as usize) == Some(&false) && accept(start) {
                seen[id as usize] = true;
                found(id);
            }
        };
        for (id, finder) in &self.tiny {
            for start in finder.find_iter(text) {
                report(*id, start, &mut seen);
            }
        }
        // a sampled position whose gram's bit is set in a tier: compare the patterns there
        let mut check = |grams: &GramTable, p: usize, gram: u64, seen: &mut Vec<bool>| {
            for (id, k) in grams.get(gram) {
                let i = id as usize;
                if seen.get(i) != Some(&false) {
                    continue;
                }
                let Some(s) = p.checked_sub(k as usize) else { continue };
                if text.get(s..).is_some_and(|rest| rest.starts_with(&self.patterns[i])) {
                    report(id, s, seen);
                }
            }
        };
        let (long, mid) = (&self.long, &self.mid);
        // four sampled positions per step, their bits tested together (a hit is rare: the
        // positions are then gone through one by one)
        let mut p = 0;
        while let Some(block) = text.get(p..p + 3 * STRIDE + 8) {
            let w = |j: usize| word_at(block, j * STRIDE).unwrap_or_default();
            let (w0, w1, w2, w3) = (w(0), w(1), w(2), w(3));
            let long_hit = long.hit(w0) | long.hit(w1) | long.hit(w2) | long.hit(w3);
            let m = mid.mask;
            let mid_hit = mid.hit(w0 & m) | mid.hit(w1 & m) | mid.hit(w2 & m) | mid.hit(w3 & m);
            if long_hit | mid_hit {
                for q in (p..p + 4 * STRIDE).step_by(STRIDE) {
                    let gram = word_at(text, q).unwrap_or_default();
                    if long.hit(gram) {
                        check(&long.grams, q, gram, &mut seen);
                    }
                    if mid.hit(gram & m) {
                        check(&mid.grams, q, gram & m, &mut seen);
                    }
                }
            }
            p += 4 * STRIDE;
        }
        // the last positions, where fewer than 8 bytes may be left
        while let Some(gram) = gram_at(text, p, MID_GRAM) {
            if let Some(gram) = word_at(text, p).filter(|&g| long.hit(g)) {
                check(&long.grams, p, gram, &mut seen);
            }
            if mid.hit(gram) {
                check(&mid.grams, p, gram, &mut seen);
            }
            p += STRIDE;
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

    /// Checks every pattern with up to `pad` bytes before and after it; returns the searcher.
    fn each_pattern_at_every_offset(patterns: &[&[u8]], pad: usize) -> Literals {
        let l = lits(patterns);
        for p in patterns {
            for before in 0..pad {
                for after in 0..pad {
                    let mut text = vec![b'.'; before];
                    text.extend_from_slice(p);
                    text.extend(std::iter::repeat_n(b'.', after));
                    assert_eq!(found(&l, &text), naive(patterns, &text), "{p:?} at {before}+{after}");
                }
            }
        }
        l
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
        each_pattern_at_every_offset(&patterns, 20);
    }

    #[test]
    fn patterns_of_every_length_around_the_tier_bounds_are_found_at_every_offset() {
        // 1..=6 bytes: memmem; 7..=10: 4-byte grams; 11 and more: 8-byte grams. Distinct
        // patterns of each length, and repetitive ones whose grams are all the same (no rare
        // gram to register) or shared with many others.
        let owned: Vec<Vec<u8>> = (1..=20)
            .flat_map(|n| {
                [
                    (0..n).map(|i| b"0123456789ABCDEFGHIJ"[i]).collect::<Vec<u8>>(),
                    vec![b'a'; n],
                    (0..n).map(|i| if i + 1 == n { b'b' } else { b'a' }).collect(),
                ]
            })
            .collect();
        let patterns: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
        let l = each_pattern_at_every_offset(&patterns, 12);
        // runs of `a` of every length, alone and followed by `b`
        for n in 0..48 {
            let mut text = vec![b'a'; n];
            assert_eq!(found(&l, &text), naive(&patterns, &text), "a x {n}");
            text.push(b'b');
            assert_eq!(found(&l, &text), naive(&patterns, &text), "a x {n} b");
        }
    }

    #[test]
    fn a_start_that_is_not_accepted_is_not_a_match_but_a_later_one_is() {
        let l = lits(&[b"BUSY", b"abcdefgh", b"0123456789abcdef"]);
        for text in [
            &b"BUSY..BUSY"[..],
            b"abcdefgh..abcdefgh",
            b"0123456789abcdef..0123456789abcdef",
        ] {
            let mut got = Vec::new();
            let mut starts = Vec::new();
            l.find_all(
                text,
                |s| {
                    starts.push(s);
                    s > 0
                },
                |id| got.push(id),
            );
            assert_eq!(got.len(), 1, "{text:?}");
            assert_eq!(starts.first(), Some(&0), "{text:?}");
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
        let mut next = crate::xorshift(0x1234_5678_u64);
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
