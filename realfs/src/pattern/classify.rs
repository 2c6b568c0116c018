//! Reading data back: a file's bytes split into maximal extents of zeros, of one data at one
//! displacement, or of unknown bytes (see the parent module's doc for the stream's format).

use super::{name_hash, parse_tag, sector_bytes, MAGIC, MIN_MATCH, MIN_ZEROS, SECTOR, TAG_LEN};
use serde::Serialize;
use std::fmt;

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
pub(super) fn fill_bytes(off: u64, len: usize) -> u64 {
    let s = SECTOR as u64;
    let t = TAG_LEN as u64;
    // Fill bytes in [0, x) of the stream.
    let upto = |x: u64| (x / s) * (s - t) + (x % s).saturating_sub(t);
    upto(off + len as u64) - upto(off)
}
