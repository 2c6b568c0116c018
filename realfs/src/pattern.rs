//! Self-describing data: the bytes a program writes say which data they are and from where.
//!
//! A named data (`D`) is an infinite byte stream defined by a pure function of its name. The
//! stream is cut into 512-byte *data sectors*; the data sector at data offset `o` (a multiple of
//! 512) is
//!
//! | bytes     | content                                                   |
//! |-----------|-----------------------------------------------------------|
//! | `0..8`    | the magic `b"UNPLUGv1"`                                   |
//! | `8..16`   | FNV-1a 64 of the name's bytes, little-endian              |
//! | `16..24`  | the data offset `o`, little-endian                        |
//! | `24..32`  | FNV-1a 64 of bytes `0..24`, little-endian (the checksum)  |
//! | `32..512` | a fill drawn from a xorshift64* seeded by (name hash, `o`) |
//!
//! The fill never contains a zero byte, so where written data meets a hole or zeroed blocks the
//! boundary is exact (except inside a tag, whose offset field holds zero bytes).
//!
//! After a crash, [`classify`] reads a file's content back and splits it into maximal extents of
//! zeros, of one data at one displacement (`byte at file offset x == data[x + delta]`), or of
//! unknown bytes (stale blocks, garbage, torn sectors that match nothing).

use serde::Serialize;
use std::fmt;

/// Size of a data sector, the unit a tag describes.
pub const SECTOR: usize = 512;
/// Size of the tag at the start of every data sector.
pub const TAG_LEN: usize = 32;
/// The magic every tag starts with.
pub const MAGIC: &[u8; 8] = b"UNPLUGv1";

/// Shortest run of bytes that [`classify`] attributes to a data (or to zeros) on the strength of
/// a byte comparison alone, when the run is not bounded on both sides by identified content.
/// Shorter coincidental matches inside garbage stay [`Origin::Unknown`].
pub const MIN_MATCH: usize = 8;

/// Shortest run of zeros that [`classify`] takes on its own strength. A data stream never holds
/// this many zeros in a row (the fill has none, a tag's offset field at most 8), so that a tag of
/// a data not asked about does not show up as a hole inside unknown bytes.
pub const MIN_ZEROS: usize = TAG_LEN;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 of `bytes`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h = FNV_OFFSET;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// The hash of a data's name that its tags carry.
pub fn name_hash(name: &str) -> u64 {
    fnv1a64(name.as_bytes())
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The whole data sector at data offset `sector_off` (a multiple of [`SECTOR`]) of the data
/// whose name hashes to `hash`.
pub fn sector_bytes(hash: u64, sector_off: u64) -> [u8; SECTOR] {
    debug_assert_eq!(sector_off % SECTOR as u64, 0);
    let mut s = [0u8; SECTOR];
    s[0..8].copy_from_slice(MAGIC);
    s[8..16].copy_from_slice(&hash.to_le_bytes());
    s[16..24].copy_from_slice(&sector_off.to_le_bytes());
    let sum = fnv1a64(&s[0..24]);
    s[24..32].copy_from_slice(&sum.to_le_bytes());
    // xorshift64*, seeded from (hash, offset); the state must not be zero.
    let mut x = splitmix64(hash ^ splitmix64(sector_off)) | 1;
    for chunk in s[TAG_LEN..].chunks_exact_mut(8) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let w = x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
        for (d, b) in chunk.iter_mut().zip(w) {
            // Never a zero byte in the fill (see the module doc).
            *d = if b == 0 { 0xa5 } else { b };
        }
    }
    s
}

/// `len` bytes of the data `name` from data offset `data_off` (any offset, aligned or not).
pub fn data_bytes(name: &str, data_off: u64, len: usize) -> Vec<u8> {
    let hash = name_hash(name);
    let mut out = Vec::with_capacity(len);
    let mut off = data_off;
    while out.len() < len {
        let sec = off - off % SECTOR as u64;
        let within = (off - sec) as usize;
        let take = (SECTOR - within).min(len - out.len());
        out.extend_from_slice(&sector_bytes(hash, sec)[within..within + take]);
        off += take as u64;
    }
    out
}

/// What a tag (the first [`TAG_LEN`] bytes of `bytes`) says, if it is a valid tag: the name's
/// hash and the data offset. Valid means: the magic, a matching checksum and an aligned offset.
pub fn parse_tag(bytes: &[u8]) -> Option<(u64, u64)> {
    if bytes.len() < TAG_LEN || &bytes[0..8] != MAGIC {
        return None;
    }
    let word = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
    let (hash, off, sum) = (word(8), word(16), word(24));
    if sum != fnv1a64(&bytes[0..24]) || off % SECTOR as u64 != 0 {
        return None;
    }
    Some((hash, off))
}

/// Where one aligned 512-byte sector came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum SectorOrigin {
    /// All zero bytes.
    Zero,
    /// The whole data sector at `data_off` of data `name`: a valid tag and the whole fill.
    Data { name: String, data_off: u64 },
    /// Anything else: stale content, garbage, a torn or misaligned sector.
    Unknown,
}

/// Classifies one sector that is expected to hold exactly one whole data sector.
pub fn classify_sector(bytes: &[u8; SECTOR], names: &[&str]) -> SectorOrigin {
    if bytes.iter().all(|&b| b == 0) {
        return SectorOrigin::Zero;
    }
    if let Some((hash, off)) = parse_tag(bytes) {
        for name in names {
            if name_hash(name) == hash && sector_bytes(hash, off) == *bytes {
                return SectorOrigin::Data {
                    name: name.to_string(),
                    data_off: off,
                };
            }
        }
    }
    SectorOrigin::Unknown
}

/// Where a run of a file's bytes came from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Origin {
    /// Zero bytes (a hole, zeroed blocks, or written zeros).
    Zero,
    /// The byte at file offset `x` is byte `x + delta` of data `name`.
    Data { name: String, delta: i64 },
    /// Bytes that match neither zeros nor any of the data asked about.
    Unknown,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Zero => write!(f, "zero"),
            Origin::Unknown => write!(f, "unknown"),
            Origin::Data { name, delta } if *delta < 0 => write!(f, "{name}{delta}"),
            Origin::Data { name, delta } => write!(f, "{name}+{delta}"),
        }
    }
}

/// A maximal run `[start, end)` of file offsets with one origin.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Extent {
    pub start: u64,
    pub end: u64,
    pub origin: Origin,
}

impl Extent {
    pub fn len(&self) -> u64 {
        self.end - self.start
    }
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

impl fmt::Display for Extent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}..{}) {}", self.start, self.end, self.origin)
    }
}

/// One (name, delta) pair that some bytes of the content may come from.
struct Candidate {
    name_idx: usize,
    hash: u64,
    delta: i64,
    /// The last data sector generated for this candidate, to make byte probes cheap.
    cache: Option<(u64, [u8; SECTOR])>,
}

impl Candidate {
    fn sector(&mut self, sec: u64) -> &[u8; SECTOR] {
        if self.cache.as_ref().map(|c| c.0) != Some(sec) {
            self.cache = Some((sec, sector_bytes(self.hash, sec)));
        }
        &self.cache.as_ref().expect("just filled").1
    }

    /// The data offset of file offset `file_off`, if not negative.
    fn data_off(&self, file_off: u64) -> Option<u64> {
        let d = i128::from(file_off) + i128::from(self.delta);
        u64::try_from(d).ok()
    }

    fn byte_at(&mut self, data_off: u64) -> u8 {
        let sec = data_off - data_off % SECTOR as u64;
        self.sector(sec)[(data_off - sec) as usize]
    }

    /// How many leading bytes of `content` (at file offset `file_off`) match this candidate.
    ///
    /// A run that goes into a later tag of the data but stops inside it is cut back to the tag's
    /// start: every tag starts with the same magic, and tags at the same offset share their offset
    /// field, so a partial tag match proves nothing (it is most often another data's tag).
    fn match_len(&mut self, content: &[u8], file_off: u64) -> usize {
        let Some(start) = self.data_off(file_off) else {
            return 0;
        };
        let n = self.raw_match_len(content, start);
        let end = start + n as u64;
        let in_tag = end % SECTOR as u64;
        let tag_start = end - in_tag;
        if in_tag != 0 && in_tag < TAG_LEN as u64 && tag_start > start {
            (tag_start - start) as usize
        } else {
            n
        }
    }

    fn raw_match_len(&mut self, content: &[u8], mut off: u64) -> usize {
        let limit = content.len();
        let mut n = 0;
        while n < limit {
            let sec = off - off % SECTOR as u64;
            let within = (off - sec) as usize;
            let take = (SECTOR - within).min(limit - n);
            let data = &self.sector(sec)[within..within + take];
            let got = &content[n..n + take];
            if let Some(p) = data.iter().zip(got).position(|(a, b)| a != b) {
                return n + p;
            }
            n += take;
            off += take as u64;
        }
        n
    }
}

fn zero_run(content: &[u8]) -> usize {
    content
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(content.len())
}

/// Splits `content`, the bytes of a file from file offset `file_off_base`, into maximal extents
/// of zeros, of one of the data `names` at one displacement, and of unknown bytes.
///
/// How: every valid tag in the content (searched at every byte position, so unaligned writes are
/// found) names a data and a displacement; these, plus displacement 0 for every name (a write's
/// data offset defaults to its file offset), are the candidates. A scan from the left then takes,
/// at each position, the candidate (or zeros) that matches the longest run.
///
/// - A valid tag is authoritative: no other candidate's run may cover the position where it
///   starts, so two data written at the same aligned offsets (whose tags share the magic and the
///   offset field) split exactly at the tag.
/// - A run is *strong* when it starts with a whole valid tag, or holds at least [`MIN_MATCH`]
///   fill bytes (tag bytes are shared structure and prove little), or is a run of at least
///   [`MIN_ZEROS`] zeros. A weak run is only taken when a strong run follows it, or when it
///   reaches the end of the content and follows identified content (or is all of it); otherwise
///   its first byte is unknown. So coincidental matches inside garbage stay [`Origin::Unknown`].
///
/// The result is always sound: the bytes of every extent are exactly its origin's. Boundaries
/// can only be off where both sides hold the same bytes: by a byte or so where two data happen
/// to agree (about 1/256 per byte; the fill has no zero bytes, so a boundary between fill and
/// zeros is exact), and by up to a tag's length when a write starts or ends inside a tag (tags of
/// different data share the magic, and at the same offset the offset field). A run that ends
/// inside a tag next to unknown bytes leaves that piece of tag unknown.
pub fn classify(content: &[u8], file_off_base: u64, names: &[&str]) -> Vec<Extent> {
    let mut c = Classifier::new(content, file_off_base, names);
    let n = content.len();
    let mut extents: Vec<Extent> = Vec::new();
    let mut push = |start: usize, end: usize, origin: Origin| {
        let (start, end) = (file_off_base + start as u64, file_off_base + end as u64);
        match extents.last_mut() {
            Some(last) if last.origin == origin && last.end == start => last.end = end,
            _ => extents.push(Extent { start, end, origin }),
        }
    };
    let mut last_unknown = false;
    let mut i = 0;
    while i < n {
        let taken = match c.best_at(i) {
            Some(ch) if ch.strong => Some(ch),
            Some(ch) => {
                let end = i + ch.len;
                let ok = if end == n {
                    !last_unknown
                } else {
                    c.best_at(end).is_some_and(|r| r.strong)
                };
                ok.then_some(ch)
            }
            None => None,
        };
        match taken {
            Some(ch) => {
                let origin = match ch.cand {
                    None => Origin::Zero,
                    Some(ci) => Origin::Data {
                        name: names[c.cands[ci].name_idx].to_string(),
                        delta: c.cands[ci].delta,
                    },
                };
                push(i, i + ch.len, origin);
                i += ch.len;
                last_unknown = false;
            }
            None => {
                push(i, i + 1, Origin::Unknown);
                i += 1;
                last_unknown = true;
            }
        }
    }
    extents
}

/// The best run found at one position.
#[derive(Clone, Copy, Debug)]
struct Choice {
    /// At least 1.
    len: usize,
    /// The candidate, or `None` for zeros.
    cand: Option<usize>,
    strong: bool,
}

struct Classifier<'a> {
    content: &'a [u8],
    base: u64,
    cands: Vec<Candidate>,
    /// Valid tags: (content position, candidate index), sorted by position.
    tags: Vec<(usize, usize)>,
    /// For every tag index k, the first index > k whose candidate differs from tag k's, so that
    /// a run of one candidate's tags is skipped in one step when looking for the tag that cuts a
    /// run.
    next_diff: Vec<usize>,
}

impl<'a> Classifier<'a> {
    fn new(content: &'a [u8], base: u64, names: &[&str]) -> Self {
        let n = content.len();
        let hashes: Vec<u64> = names.iter().map(|s| name_hash(s)).collect();
        // Displacement 0 for every name, then one per distinct (name, delta) of a tag.
        let mut cands: Vec<Candidate> = (0..names.len())
            .map(|i| Candidate {
                name_idx: i,
                hash: hashes[i],
                delta: 0,
                cache: None,
            })
            .collect();
        let mut tags: Vec<(usize, usize)> = Vec::new();
        let mut p = 0;
        while p + TAG_LEN <= n {
            let Some(q) = content[p..=n - TAG_LEN].iter().position(|&b| b == MAGIC[0]) else {
                break;
            };
            p += q;
            if let Some((hash, off)) = parse_tag(&content[p..]) {
                if let Some(name_idx) = hashes.iter().position(|&h| h == hash) {
                    let delta = (i128::from(off) - i128::from(base + p as u64)) as i64;
                    let ci = cands
                        .iter()
                        .position(|c| c.name_idx == name_idx && c.delta == delta)
                        .unwrap_or_else(|| {
                            cands.push(Candidate {
                                name_idx,
                                hash,
                                delta,
                                cache: None,
                            });
                            cands.len() - 1
                        });
                    tags.push((p, ci));
                }
            }
            p += 1;
        }
        let mut next_diff = vec![tags.len(); tags.len()];
        for k in (0..tags.len().saturating_sub(1)).rev() {
            next_diff[k] = if tags[k + 1].1 != tags[k].1 {
                k + 1
            } else {
                next_diff[k + 1]
            };
        }
        Classifier {
            content,
            base,
            cands,
            tags,
            next_diff,
        }
    }

    /// The end (exclusive) that a run of candidate `ci` (`None`: zeros) may reach when `k` is
    /// the index of the first tag after the run's start: the first valid tag of another
    /// candidate, else the end of the content.
    fn cut_limit(&self, k: usize, ci: Option<usize>) -> usize {
        let k = match self.tags.get(k) {
            Some(t) if Some(t.1) == ci => self.next_diff[k],
            _ => k,
        };
        self.tags.get(k).map_or(self.content.len(), |t| t.0)
    }

    /// The longest run at content position `i`, whether strong or weak.
    fn best_at(&mut self, i: usize) -> Option<Choice> {
        let content = self.content;
        let file_off = self.base + i as u64;
        let k = self.tags.partition_point(|t| t.0 < i);
        if let Some(&(_, ci)) = self.tags.get(k).filter(|t| t.0 == i) {
            // A valid tag starts here: only its own candidate may cover it.
            let limit = self.cut_limit(k + 1, Some(ci));
            let len = self.cands[ci].match_len(&content[i..limit], file_off);
            return Some(Choice {
                len,
                cand: Some(ci),
                strong: true,
            });
        }
        let mut best: Option<Choice> = None;
        let z = zero_run(&content[i..self.cut_limit(k, None)]);
        if z > 0 {
            best = Some(Choice {
                len: z,
                cand: None,
                strong: z >= MIN_ZEROS,
            });
        }
        for ci in 0..self.cands.len() {
            let Some(off) = self.cands[ci].data_off(file_off) else {
                continue;
            };
            // A cheap probe of the first byte before the full comparison.
            if self.cands[ci].byte_at(off) != content[i] {
                continue;
            }
            let limit = self.cut_limit(k, Some(ci));
            let len = self.cands[ci].match_len(&content[i..limit], file_off);
            let longer = match best {
                Some(b) => len > b.len,
                None => true,
            };
            if longer {
                let strong = fill_bytes(off, len) >= MIN_MATCH as u64;
                best = Some(Choice {
                    len,
                    cand: Some(ci),
                    strong,
                });
            }
        }
        best
    }
}

/// How many of the data bytes `[off, off + len)` are fill (not tag) bytes.
fn fill_bytes(off: u64, len: usize) -> u64 {
    let s = SECTOR as u64;
    let t = TAG_LEN as u64;
    // Fill bytes in [0, x) of the stream.
    let upto = |x: u64| (x / s) * (s - t) + (x % s).saturating_sub(t);
    upto(off + len as u64) - upto(off)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(name: &str, delta: i64) -> Origin {
        Origin::Data {
            name: name.to_string(),
            delta,
        }
    }
    fn ext(start: u64, end: u64, origin: Origin) -> Extent {
        Extent { start, end, origin }
    }

    #[test]
    fn fnv_known_values() {
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
    }

    #[test]
    fn sector_layout() {
        let s = sector_bytes(name_hash("D"), 4096);
        assert_eq!(&s[0..8], MAGIC);
        assert_eq!(parse_tag(&s), Some((name_hash("D"), 4096)));
        assert!(s[TAG_LEN..].iter().all(|&b| b != 0));
        assert_eq!(data_bytes("D", 4096, 512), s.to_vec());
        // Deterministic, and different for other names and offsets.
        assert_eq!(sector_bytes(name_hash("D"), 4096), s);
        assert_ne!(sector_bytes(name_hash("E"), 4096)[TAG_LEN..], s[TAG_LEN..]);
        assert_ne!(sector_bytes(name_hash("D"), 4608)[TAG_LEN..], s[TAG_LEN..]);
    }

    #[test]
    fn data_bytes_any_offset_is_a_window_of_the_stream() {
        let whole = data_bytes("D", 0, 4096);
        for (off, len) in [
            (0, 0),
            (1, 10),
            (500, 30),
            (511, 513),
            (1000, 2000),
            (3, 4093),
        ] {
            assert_eq!(
                data_bytes("D", off as u64, len),
                whole[off..off + len],
                "{off} {len}"
            );
        }
    }

    #[test]
    fn classify_sector_cases() {
        let names = ["D", "E"];
        let s = sector_bytes(name_hash("E"), 1024);
        assert_eq!(
            classify_sector(&s, &names),
            SectorOrigin::Data {
                name: "E".into(),
                data_off: 1024
            }
        );
        assert_eq!(classify_sector(&s, &["D"]), SectorOrigin::Unknown);
        assert_eq!(classify_sector(&[0; SECTOR], &names), SectorOrigin::Zero);
        let mut torn = s;
        torn[300] ^= 1;
        assert_eq!(classify_sector(&torn, &names), SectorOrigin::Unknown);
        let mut bad_tag = s;
        bad_tag[16] ^= 2; // offset changed, checksum no longer matches
        assert_eq!(classify_sector(&bad_tag, &names), SectorOrigin::Unknown);
        let garbage: [u8; SECTOR] = std::array::from_fn(|i| (i * 7 + 3) as u8);
        assert_eq!(classify_sector(&garbage, &names), SectorOrigin::Unknown);
    }

    #[test]
    fn aligned_write_roundtrip() {
        let content = data_bytes("D", 0, 8192);
        assert_eq!(
            classify(&content, 0, &["D"]),
            vec![ext(0, 8192, data("D", 0))]
        );
        // The same bytes read from file offset 4096: delta -4096.
        assert_eq!(
            classify(&content, 4096, &["D"]),
            vec![ext(4096, 12288, data("D", -4096))]
        );
    }

    #[test]
    fn unaligned_writes_roundtrip() {
        // File: zeros, then D[100..2100) written at file offset 100 (data_off = file offset).
        let mut content = vec![0u8; 3000];
        content[100..2100].copy_from_slice(&data_bytes("D", 100, 2000));
        assert_eq!(
            classify(&content, 0, &["D"]),
            vec![
                ext(0, 100, Origin::Zero),
                ext(100, 2100, data("D", 0)),
                ext(2100, 3000, Origin::Zero)
            ]
        );
        // D[0..2000) written at file offset 777: found by its tags at 777, 1289, ...
        let mut content = vec![0u8; 3000];
        content[777..2777].copy_from_slice(&data_bytes("D", 0, 2000));
        assert_eq!(
            classify(&content, 0, &["D"]),
            vec![
                ext(0, 777, Origin::Zero),
                ext(777, 2777, data("D", -777)),
                ext(2777, 3000, Origin::Zero)
            ]
        );
        // D[1000..1300) at file offset 5: crosses a data-sector boundary at data offset 1024.
        let mut content = vec![0u8; 400];
        content[5..305].copy_from_slice(&data_bytes("D", 1000, 300));
        assert_eq!(
            classify(&content, 0, &["D"]),
            vec![
                ext(0, 5, Origin::Zero),
                ext(5, 305, data("D", 995)),
                ext(305, 400, Origin::Zero)
            ]
        );
    }

    #[test]
    fn two_data_in_one_file() {
        // D over the whole file, then E overwrites [4096, 6144) at the same offsets: their tags
        // share the magic, but the split is exact.
        let mut content = data_bytes("D", 0, 8192);
        content[4096..6144].copy_from_slice(&data_bytes("E", 4096, 2048));
        assert_eq!(
            classify(&content, 0, &["D", "E"]),
            vec![
                ext(0, 4096, data("D", 0)),
                ext(4096, 6144, data("E", 0)),
                ext(6144, 8192, data("D", 0))
            ]
        );
        // E at an unaligned file offset with its own data offset.
        let mut content = data_bytes("D", 0, 8192);
        content[1000..2024].copy_from_slice(&data_bytes("E", 0, 1024));
        assert_eq!(
            classify(&content, 0, &["D", "E"]),
            vec![
                ext(0, 1000, data("D", 0)),
                ext(1000, 2024, data("E", -1000)),
                ext(2024, 8192, data("D", 0))
            ]
        );
        // A name not asked about is unknown.
        let content = data_bytes("E", 0, 1024);
        assert_eq!(
            classify(&content, 0, &["D"]),
            vec![ext(0, 1024, Origin::Unknown)]
        );
    }

    #[test]
    fn unknown_data_over_known_data_splits_at_its_tag() {
        // E (not asked about) over the middle of D at the same offsets: D's run must not take
        // the magic of E's first tag.
        let mut content = data_bytes("D", 0, 8192);
        content[4096..6144].copy_from_slice(&data_bytes("E", 4096, 2048));
        assert_eq!(
            classify(&content, 0, &["D"]),
            vec![
                ext(0, 4096, data("D", 0)),
                ext(4096, 6144, Origin::Unknown),
                ext(6144, 8192, data("D", 0))
            ]
        );
        // A write that legitimately ends inside a tag keeps its last bytes.
        let mut content = data_bytes("D", 0, 4100);
        content.extend_from_slice(&[0; 100]);
        assert_eq!(
            classify(&content, 0, &["D"]),
            vec![ext(0, 4100, data("D", 0)), ext(4100, 4200, Origin::Zero)]
        );
        let content = data_bytes("D", 0, 4100);
        assert_eq!(
            classify(&content, 0, &["D"]),
            vec![ext(0, 4100, data("D", 0))]
        );
    }

    #[test]
    fn zeros_and_empty() {
        assert_eq!(classify(&[], 0, &["D"]), vec![]);
        assert_eq!(
            classify(&[0; 5000], 0, &["D"]),
            vec![ext(0, 5000, Origin::Zero)]
        );
        assert_eq!(classify(&[0; 3], 10, &[]), vec![ext(10, 13, Origin::Zero)]);
    }

    #[test]
    fn garbage_is_unknown() {
        let garbage: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8 | 1)
            .collect();
        assert_eq!(
            classify(&garbage, 0, &["D"]),
            vec![ext(0, 4096, Origin::Unknown)]
        );
        // Garbage, then zeros, then D: three extents.
        let mut content = garbage[..1000].to_vec();
        content.extend_from_slice(&[0; 24]);
        content.extend_from_slice(&data_bytes("D", 1024, 1024));
        assert_eq!(
            classify(&content, 0, &["D"]),
            vec![
                ext(0, 1000, Origin::Unknown),
                ext(1000, 1024, Origin::Zero),
                ext(1024, 2048, data("D", 0))
            ]
        );
        // A torn sector: the middle of a D sector replaced by garbage.
        let mut content = data_bytes("D", 0, 1536);
        content[600..700].copy_from_slice(&garbage[..100]);
        assert_eq!(
            classify(&content, 0, &["D"]),
            vec![
                ext(0, 600, data("D", 0)),
                ext(600, 700, Origin::Unknown),
                ext(700, 1536, data("D", 0))
            ]
        );
    }

    #[test]
    fn untagged_partial_write_in_garbage_is_found_by_default_delta() {
        let garbage: Vec<u8> = (0..1024u32)
            .map(|i| (i.wrapping_mul(2246822519) >> 11) as u8 | 1)
            .collect();
        let mut content = garbage.clone();
        content[100..400].copy_from_slice(&data_bytes("D", 100, 300));
        assert_eq!(
            classify(&content, 0, &["D"]),
            vec![
                ext(0, 100, Origin::Unknown),
                ext(100, 400, data("D", 0)),
                ext(400, 1024, Origin::Unknown)
            ]
        );
    }

    /// Every extent is true to its origin, and the extents tile the content.
    fn check_sound(content: &[u8], base: u64, names: &[&str]) -> Vec<Extent> {
        let ext = classify(content, base, names);
        let mut at = base;
        for e in &ext {
            assert_eq!(e.start, at, "{ext:?}");
            assert!(e.end > e.start);
            let bytes = &content[(e.start - base) as usize..(e.end - base) as usize];
            match &e.origin {
                Origin::Zero => assert!(bytes.iter().all(|&b| b == 0), "{e}"),
                Origin::Data { name, delta } => {
                    let off = (e.start as i64 + delta) as u64;
                    assert_eq!(bytes, &data_bytes(name, off, bytes.len())[..], "{e}");
                }
                Origin::Unknown => {}
            }
            at = e.end;
        }
        assert_eq!(at, base + content.len() as u64);
        ext
    }

    #[test]
    fn random_writes_are_classified_soundly() {
        let mut x = 0x1234_5678_9abc_def1u64;
        let mut rnd = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        for round in 0..300 {
            let mut content = vec![0u8; 16384];
            let mut written = 0;
            for _ in 0..6 {
                let name = ["D", "E", "F"][rnd(3) as usize];
                let off = if round % 2 == 0 {
                    rnd(32) * 512
                } else {
                    rnd(16384)
                };
                let len = (rnd(6000) + 1).min(16384 - off);
                let data_off = if rnd(2) == 0 { off } else { rnd(100_000) };
                content[off as usize..(off + len) as usize].copy_from_slice(&data_bytes(
                    name,
                    data_off,
                    len as usize,
                ));
                written += len;
            }
            let ext = check_sound(&content, 4096, &["D", "E"]);
            assert!(written == 0 || !ext.is_empty());
        }
    }

    #[test]
    fn aligned_writes_are_classified_exactly() {
        // Whole-sector writes at sector-aligned offsets with default data offsets: the extents
        // are exactly the last writer of each sector, merged (F is not asked about: unknown).
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        for _ in 0..300 {
            let mut content = vec![0u8; 32 * 512];
            let mut owner: Vec<Origin> = vec![Origin::Zero; 32];
            for _ in 0..5 {
                let name = ["D", "E", "F"][rnd(3) as usize];
                let first = rnd(32) as usize;
                let count = 1 + rnd((32 - first) as u64) as usize;
                let (a, b) = (first * 512, (first + count) * 512);
                content[a..b].copy_from_slice(&data_bytes(name, a as u64, b - a));
                for o in &mut owner[first..first + count] {
                    *o = match name {
                        "F" => Origin::Unknown,
                        _ => data(name, 0),
                    };
                }
            }
            let mut want: Vec<Extent> = Vec::new();
            for (s, o) in owner.into_iter().enumerate() {
                let (start, end) = (s as u64 * 512, s as u64 * 512 + 512);
                match want.last_mut() {
                    Some(l) if l.origin == o => l.end = end,
                    _ => want.push(Extent {
                        start,
                        end,
                        origin: o,
                    }),
                }
            }
            assert_eq!(check_sound(&content, 0, &["D", "E"]), want);
        }
    }

    #[test]
    fn eight_mib_is_fast_enough() {
        let mut content = data_bytes("D", 0, 8 << 20);
        let garbage: Vec<u8> = (0..(1u32 << 20))
            .map(|i| (i.wrapping_mul(2654435761) >> 7) as u8)
            .collect();
        content[1 << 20..2 << 20].copy_from_slice(&garbage);
        let t = std::time::Instant::now();
        let ext = classify(&content, 0, &["D", "E"]);
        assert_eq!(ext.len(), 3, "{ext:?}");
        assert!(t.elapsed().as_secs() < 20, "{:?}", t.elapsed());
    }

    #[test]
    fn fill_bytes_counts_only_fill() {
        assert_eq!(fill_bytes(0, 32), 0);
        assert_eq!(fill_bytes(0, 512), 480);
        assert_eq!(fill_bytes(30, 10), 8);
        assert_eq!(fill_bytes(500, 600), 12 + 480 + (1100 - 1024 - 32));
    }

    #[test]
    fn display() {
        assert_eq!(ext(0, 8, data("D", 0)).to_string(), "[0..8) D+0");
        assert_eq!(ext(8, 16, data("D", -8)).to_string(), "[8..16) D-8");
        assert_eq!(ext(8, 16, Origin::Zero).to_string(), "[8..16) zero");
        assert_eq!(ext(8, 16, Origin::Unknown).to_string(), "[8..16) unknown");
    }
}
