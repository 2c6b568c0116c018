//! The metadata of the downset being built, kept up to date as effects are included and taken
//! out again (the enumeration of `explore/downsets.rs` walks effects latest first and backs
//! out of each branch), instead of being recomputed from every included effect per downset.
//!
//! Every value an effect writes goes to a *target*: one entry slot, one inode's kind, one
//! inode's size, or one chunk's content (a global effect's own blocks). A target shows the
//! value of the latest included effect that writes it (index order, as `apply_metadata` of the
//! reference code: the latest assignment wins). `top[t]` is that effect; including `e` writes
//! `t` only when `e` comes after `top[t]`, and an undo log restores what it replaced. Holes
//! (truncates) are not targets: their stamps compete with chunk contents in `base_value`, so
//! they are kept as a list.

use super::downset::Scratch;
use super::{Dense, NONE};
use unplug_model::Persistence;

/// One change to the metadata, as the undo log records it: the target, its previous writer
/// and previous value (`HOLE`: a hole was pushed).
#[derive(Clone, Copy)]
pub(super) struct Undo {
    t: u32,
    top: u32,
    old: u64,
}

const HOLE: u32 = u32::MAX;

/// What kind of target an index names, and its position in its array.
enum Target {
    Slot(usize),
    Kind(usize),
    Size(usize),
    Content(usize),
}

impl Dense {
    /// The number of targets: entry slots, then inode kinds, inode sizes and chunk contents.
    pub(super) fn targets(&self) -> usize {
        self.init_entry.len() + 2 * self.inos.len() + self.chunk_ino.len()
    }

    pub(super) fn slot_target(&self, slot: u32) -> u32 {
        slot
    }
    pub(super) fn kind_target(&self, ino: u32) -> u32 {
        (self.init_entry.len() + ino as usize) as u32
    }
    pub(super) fn size_target(&self, ino: u32) -> u32 {
        (self.init_entry.len() + self.inos.len() + ino as usize) as u32
    }
    pub(super) fn content_target(&self, chunk: usize) -> u32 {
        (self.init_entry.len() + 2 * self.inos.len() + chunk) as u32
    }

    fn target(&self, t: u32) -> Target {
        let (s, n) = (self.init_entry.len(), self.inos.len());
        let t = t as usize;
        if t < s {
            Target::Slot(t)
        } else if t < s + n {
            Target::Kind(t - s)
        } else if t < s + 2 * n {
            Target::Size(t - s - n)
        } else {
            Target::Content(t - s - 2 * n)
        }
    }

    /// The (target, value) pairs effect `e` writes, in the order it writes them.
    fn writes(&self, e: usize) -> &[(u32, u64)] {
        &self.writes[self.writes_of[e] as usize..self.writes_of[e + 1] as usize]
    }

    /// Whether every value `e` writes is written again by an included effect after it, and it
    /// opens no hole: including it changes no metadata. With the projection's `read` targets
    /// (see `project.rs`), the second answer leaves out the targets the properties cannot read.
    pub(crate) fn overwritten(&self, s: &Scratch, e: usize, read: Option<&[bool]>) -> (bool, bool) {
        if self.opens_hole[e] {
            return (false, false);
        }
        let (mut all, mut read_all) = (true, true);
        for &(t, _) in self.writes(e) {
            let top = s.top[t as usize];
            if top != NONE && top as usize > e {
                continue;
            }
            all = false;
            if read.is_none_or(|r| r[t as usize]) {
                read_all = false;
                break;
            }
        }
        (all, read_all)
    }
}

impl Scratch {
    /// The initial state's metadata, nothing included.
    pub(crate) fn meta_reset(&mut self, d: &Dense) {
        self.kinds.clear();
        self.kinds.extend_from_slice(&d.init_kind);
        self.sizes.clear();
        self.sizes.extend_from_slice(&d.init_size);
        self.entries.clear();
        self.entries.extend_from_slice(&d.init_entry);
        self.holes.clear();
        self.blocks.clear();
        self.blocks.resize(d.chunk_ino.len(), None);
        self.top.clear();
        self.top.resize(d.targets(), NONE);
        self.undo.clear();
    }

    /// Where the undo log stands: [`Self::meta_undo`] to it takes back what was included since.
    pub(crate) fn meta_mark(&self) -> usize {
        self.undo.len()
    }

    /// Includes global effect `e`: each target it writes shows its value unless an included
    /// effect after it writes the target too.
    pub(crate) fn meta_include(&mut self, d: &Dense, p: &Persistence, e: usize) {
        let at = (p.effects[e].op, e);
        for &(t, v) in d.writes(e) {
            let top = self.top[t as usize];
            if top != NONE && top as usize > e {
                continue;
            }
            let old = match d.target(t) {
                Target::Slot(i) => std::mem::replace(&mut self.entries[i], v as u32) as u64,
                Target::Kind(i) => std::mem::replace(&mut self.kinds[i], v as u8) as u64,
                Target::Size(i) => std::mem::replace(&mut self.sizes[i], v),
                Target::Content(c) => self.blocks[c]
                    .replace((at, v as u32))
                    .map_or(NONE as u64, |(_, v)| v as u64),
            };
            self.undo.push(Undo { t, top, old });
            self.top[t as usize] = e as u32;
        }
        if d.opens_hole[e] {
            for a in d.assigns(e) {
                if let super::DAssign::Size {
                    ino,
                    holes_from: Some(h),
                    ..
                } = *a
                {
                    self.holes.push((ino, at, h));
                    self.undo.push(Undo {
                        t: HOLE,
                        top: NONE,
                        old: 0,
                    });
                }
            }
        }
    }

    /// Takes back every change made since `mark`, latest first.
    pub(crate) fn meta_undo(&mut self, d: &Dense, p: &Persistence, mark: usize) {
        while self.undo.len() > mark {
            let Undo { t, top, old } = self.undo.pop().expect("above the mark");
            if t == HOLE {
                self.holes.pop();
                continue;
            }
            match d.target(t) {
                Target::Slot(i) => self.entries[i] = old as u32,
                Target::Kind(i) => self.kinds[i] = old as u8,
                Target::Size(i) => self.sizes[i] = old,
                Target::Content(c) => {
                    self.blocks[c] = (top != NONE)
                        .then(|| ((p.effects[top as usize].op, top as usize), old as u32))
                }
            }
            self.top[t as usize] = top;
        }
    }
}
