//! File contents as extents of named data.

use serde::Serialize;

/// Where a byte of a file comes from: zero (a hole, or bytes past an old end of file), or a named
/// data: the byte at file offset `x` is byte `x + delta` of the data.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Origin {
    Zero,
    Data {
        name: String,
        delta: i64,
    },
    /// Stale bytes: whatever the block held before it was allocated to this file (another
    /// file's old data). Only a crash can show these (ext4 data=writeback with nodelalloc).
    Stale,
    /// Garbage: a unit caught mid-write when the power failed (models with `garbage`).
    Garbage,
}

/// A byte range `[start, end)` of a file and where its bytes come from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Extent {
    pub start: u64,
    pub end: u64,
    pub origin: Origin,
}

/// A file's content as sorted, non-overlapping extents of named data; gaps read as zero.
/// Zero extents are never stored, and neighbours with the same origin are merged.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Content(pub Vec<Extent>);

impl Content {
    /// Writes `origin` over `[start, end)`.
    pub fn write(&mut self, start: u64, end: u64, origin: Origin) {
        if start >= end {
            return;
        }
        let mut out = Vec::with_capacity(self.0.len() + 2);
        for e in self.0.drain(..) {
            if e.end <= start || e.start >= end {
                out.push(e);
                continue;
            }
            if e.start < start {
                out.push(Extent {
                    start: e.start,
                    end: start,
                    origin: e.origin.clone(),
                });
            }
            if e.end > end {
                out.push(Extent {
                    start: end,
                    end: e.end,
                    origin: e.origin,
                });
            }
        }
        if origin != Origin::Zero {
            out.push(Extent { start, end, origin });
        }
        out.sort();
        self.0 = merge(out);
    }

    /// Drops everything at or past `size`.
    pub fn clip(&mut self, size: u64) {
        self.write(size, u64::MAX, Origin::Zero);
    }

    /// The extents inside `[start, end)`, zero gaps included, in absolute offsets.
    pub fn slice(&self, start: u64, end: u64) -> Vec<Extent> {
        let mut out = Vec::new();
        let mut at = start;
        for e in &self.0 {
            if e.end <= start || e.start >= end {
                continue;
            }
            let s = e.start.max(start);
            if s > at {
                out.push(Extent {
                    start: at,
                    end: s,
                    origin: Origin::Zero,
                });
            }
            let t = e.end.min(end);
            out.push(Extent {
                start: s,
                end: t,
                origin: e.origin.clone(),
            });
            at = t;
        }
        if at < end {
            out.push(Extent {
                start: at,
                end,
                origin: Origin::Zero,
            });
        }
        out
    }
}

/// Merges adjacent extents with the same origin (the input is sorted and non-overlapping).
pub fn merge(v: Vec<Extent>) -> Vec<Extent> {
    let mut out: Vec<Extent> = Vec::with_capacity(v.len());
    for e in v {
        if let Some(last) = out.last_mut() {
            if last.end == e.start && last.origin == e.origin {
                last.end = e.end;
                continue;
            }
        }
        out.push(e);
    }
    out
}
