//! The block layout of each file: runs of interchangeable blocks ("chunks").
//!
//! Every op touches whole chunks: the layout is cut at every offset any op of the program (setup
//! included) uses on any file (write and store boundaries, truncate sizes, msync ranges), rounded to blocks;
//! a block that holds a cut strictly inside it is a chunk of its own. So within a chunk, every
//! write, truncate and sync covers all blocks or none, every block gets the same sequence of
//! versions, and the same edges: the blocks are interchangeable. The explorer then treats a chunk
//! of n blocks as one unit and counts the ways its blocks can differ instead of enumerating them.
//! This is why an 8 MiB write costs no more than a 4 KiB one.
//!
//! [`Layout::per_block`] builds the same layout with every block its own chunk: the brute-force
//! reference the reduction is tested against.

use crate::volatile::{Content, Extent, Ino, Kind, Origin, Trace};
use serde::Serialize;
use std::collections::BTreeMap;

/// A run of `blocks` interchangeable units of inode `ino`, starting at unit `first`. A unit is
/// what reaches disk atomically: a 4 KiB block, or a 512-byte sector when the model tears writes
/// at sector granularity.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Chunk {
    pub ino: Ino,
    pub first: u64,
    pub blocks: u64,
    /// The unit size in bytes.
    pub unit: u64,
}

impl Chunk {
    pub fn start(&self) -> u64 {
        self.first * self.unit
    }
    pub fn end(&self) -> u64 {
        (self.first + self.blocks) * self.unit
    }
    pub fn overlaps(&self, start: u64, end: u64) -> bool {
        start < self.end() && self.start() < end
    }
}

/// The content of one block of a chunk, relative to the block's start. Origins keep file-relative
/// deltas, so every block of a chunk that holds the same write has the same value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct BlockValue(pub Vec<(u64, u64, Origin)>);

impl BlockValue {
    /// A whole unit of `unit` bytes from one origin (zero, stale, garbage).
    pub fn whole(unit: u64, origin: Origin) -> Self {
        BlockValue(vec![(0, unit, origin)])
    }
    /// A unit of zeros.
    pub fn zero(unit: u64) -> Self {
        Self::whole(unit, Origin::Zero)
    }
    /// The value of the first unit of `chunk` in `content`.
    pub fn of(content: &Content, chunk: &Chunk) -> Self {
        let s = chunk.start();
        BlockValue(
            content
                .slice(s, s + chunk.unit)
                .into_iter()
                .map(|e| (e.start - s, e.end - s, e.origin))
                .collect(),
        )
    }
    /// The extents of block `i` of `chunk` with this value, clipped to `size`, in file offsets.
    pub fn extents(&self, chunk: &Chunk, i: u64, size: u64) -> Vec<Extent> {
        let base = (chunk.first + i) * chunk.unit;
        self.0
            .iter()
            .filter_map(|(s, e, o)| {
                let (s, e) = (base + s, (base + e).min(size));
                (s < e).then(|| Extent {
                    start: s,
                    end: e,
                    origin: o.clone(),
                })
            })
            .collect()
    }
}

/// The chunks of every file, sorted by inode and offset.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Layout {
    pub chunks: Vec<Chunk>,
    /// Index of the first chunk of each inode in `chunks`.
    by_ino: BTreeMap<Ino, (usize, usize)>,
}

impl Layout {
    /// The reduced layout: maximal runs of interchangeable blocks.
    pub fn new(trace: &Trace, unit: u64) -> Self {
        Self::build(trace, unit, false, false)
    }

    /// The reduced layout, also cut where each write's last block starts, for a model that
    /// treats that block apart (see [`crate::ModelSpec::splits_last_block`]).
    pub fn with_last_blocks(trace: &Trace, unit: u64) -> Self {
        Self::build(trace, unit, false, true)
    }

    /// The brute-force layout: every unit is its own chunk.
    pub fn per_block(trace: &Trace, unit: u64) -> Self {
        Self::build(trace, unit, true, true)
    }

    /// The reduced layout with the extra cuts a model asks for: where each write's last block
    /// starts, and at every page of a write of several pages (see
    /// [`crate::ModelSpec::splits_pages`]).
    pub fn for_model(trace: &Trace, unit: u64, last_blocks: bool, pages: bool) -> Self {
        Self::build_with(trace, unit, false, last_blocks, pages)
    }

    fn build(trace: &Trace, unit: u64, per_block: bool, last_blocks: bool) -> Self {
        Self::build_with(trace, unit, per_block, last_blocks, false)
    }

    fn build_with(
        trace: &Trace,
        unit: u64,
        per_block: bool,
        last_blocks: bool,
        pages: bool,
    ) -> Self {
        // The cuts of every file apply to every file: two inodes that may appear at one path
        // (the old and the new file of a replace-by-rename) then share a layout, so crash states
        // compare chunk by chunk.
        let mut all: std::collections::BTreeSet<u64> =
            trace.cuts.values().flatten().copied().collect();
        if last_blocks {
            all.extend(trace.last_blocks.values().flatten().copied());
        }
        if pages {
            for d in trace.ops.iter().flat_map(|o| &o.dirtied) {
                if let Some(r) = page_handled(d) {
                    all.extend(r.map(|p| p * crate::volatile::BLOCK));
                }
            }
        }
        let end_block = all.iter().max().copied().unwrap_or(0).div_ceil(unit);
        let mut block_cuts = std::collections::BTreeSet::new();
        block_cuts.insert(0);
        block_cuts.insert(end_block);
        for &c in &all {
            block_cuts.insert(c / unit);
            if c % unit != 0 {
                block_cuts.insert(c / unit + 1);
            }
        }
        if per_block {
            block_cuts.extend(0..end_block);
        }
        let v: Vec<u64> = block_cuts.into_iter().collect();
        let mut chunks = Vec::new();
        let mut by_ino = BTreeMap::new();
        for (ino, kind) in &trace.kinds {
            if *kind != Kind::File {
                continue;
            }
            let begin = chunks.len();
            for w in v.windows(2) {
                chunks.push(Chunk {
                    ino: *ino,
                    first: w[0],
                    blocks: w[1] - w[0],
                    unit,
                });
            }
            by_ino.insert(*ino, (begin, chunks.len()));
        }
        Layout { chunks, by_ino }
    }

    /// Indices (into `chunks`) of the chunks of `ino` that overlap `[start, end)`.
    pub fn chunks_in(&self, ino: Ino, start: u64, end: u64) -> impl Iterator<Item = usize> + '_ {
        let (b, e) = self.by_ino.get(&ino).copied().unwrap_or((0, 0));
        (b..e).filter(move |&i| self.chunks[i].overlaps(start, end))
    }

    /// Indices of all chunks of `ino`.
    pub fn chunks_of(&self, ino: Ino) -> std::ops::Range<usize> {
        let (b, e) = self.by_ino.get(&ino).copied().unwrap_or((0, 0));
        b..e
    }
}

/// The pages of a write that takes a journal handle per page (ext4 data=journal), each its own
/// chunk: a write() (not a store through a mapping) across 2 to
/// [`MAX_SIZE_STEPS`](crate::persist::posix::MAX_SIZE_STEPS) pages. Longer writes keep one
/// chunk per run (their page-by-page sizes are elided).
pub fn page_handled(d: &crate::volatile::Dirty) -> Option<std::ops::Range<u64>> {
    let block = crate::volatile::BLOCK;
    let (first, end) = (d.start / block, d.end.div_ceil(block));
    (!d.mapped && end - first >= 2 && end - first <= crate::persist::posix::MAX_SIZE_STEPS)
        .then_some(first..end + 1)
}
