//! Crash states built as the properties read them. With a cone of influence (see `cone.rs`),
//! the enumeration needs only what the read paths show ([`Reads::project`]): the walk of a
//! state's tree follows only the entry slots a read path can pass through or list, the key
//! holds only the read paths' nodes, only files whose content is read have choices, and the
//! state built for a new key is the projection itself. A downset then costs what the
//! properties read, not the size of the tree: a property over one path of a ten-thousand-file
//! program walks a handful of entries.
//!
//! Why the restricted walk finds the same nodes at the read paths as the whole walk: the
//! whole walk shows a directory at the first path (breadth first, names in order) that
//! reaches it, and the cone holds every slot that can name a directory it holds, and the
//! directory holding that slot, to a fixpoint. So every path that reaches a directory the
//! read paths pass through runs through followed slots only, and the restricted walk meets
//! those directories in the same relative order as the whole walk, at the same first paths.
//!
//! The state of such a class has a *partial* witness: its persisted effects, and choices only
//! for the chunks whose content is read. [`crate::ModelRun::whole`] builds the whole state it
//! stands for (every other chunk takes its first option), for a counterexample to show.

use super::downset::Scratch;
use super::Dense;
use crate::cone::{Cone, Reads};
use crate::graph::Graph;

/// A path id's role in the projection: shown (its node is read), its content read, listed (its
/// names are read), or a name in a listed directory.
pub(super) const SHOWN: u8 = 1;
pub(super) const CONTENT: u8 = 2;
pub(super) const LISTED: u8 = 4;
pub(super) const IN_LISTED: u8 = 8;

/// What the enumeration of one exploration follows and shows when it builds states as the
/// properties read them, and which effects its walk decides.
pub struct Projection {
    /// Per dense inode: the range of its followed slots in `follow` (name order).
    follow_of: Vec<(u32, u32)>,
    follow: Vec<u32>,
    /// Per effect: inside the cone (the walk of `downsets.rs` decides only these).
    pub(crate) inside: Vec<bool>,
    /// Per inside effect: its nearest inside ancestors (those it reaches through effects
    /// outside the cone only), a range of `anc`. Including an inside effect forces these, as
    /// including any effect forces its predecessors.
    anc_of: Vec<(u32, u32)>,
    anc: Vec<usize>,
    /// Per target (see `meta.rs`): the properties can read it (a followed entry slot, the
    /// kind or size of a relevant inode, the content of a chunk inside the cone).
    pub(crate) read_target: Vec<bool>,
}

impl Projection {
    /// The projection of `cone` over the interned program `d` and its graph `g`.
    pub fn new(d: &Dense, cone: &Cone, g: &Graph) -> Projection {
        let mut per_dir: Vec<Vec<u32>> = vec![Vec::new(); d.inos.len()];
        let mut read_target = vec![false; d.targets()];
        for (dir, name) in &cone.slots {
            if let Some((ix, slot)) = d.slot_of(*dir, name) {
                per_dir[ix as usize].push(slot);
                read_target[d.slot_target(slot) as usize] = true;
            }
        }
        for ino in &cone.inodes {
            if let Ok(ix) = d.inos.binary_search(ino) {
                read_target[d.kind_target(ix as u32) as usize] = true;
                read_target[d.size_target(ix as u32) as usize] = true;
            }
        }
        for (c, pinned) in cone.pinned.iter().enumerate() {
            read_target[d.content_target(c) as usize] = !pinned;
        }
        let mut follow = Vec::new();
        let follow_of = per_dir
            .into_iter()
            .map(|mut v| {
                v.sort_unstable();
                let start = follow.len() as u32;
                follow.extend(v);
                (start, follow.len() as u32 - start)
            })
            .collect();
        let inside: Vec<bool> = cone.outside.iter().map(|o| !o).collect();
        let (anc_of, anc) = nearest_inside_ancestors(g, &inside);
        Projection {
            follow_of,
            follow,
            inside,
            anc_of,
            anc,
            read_target,
        }
    }

    /// The followed entry slots of dense directory `ino`, in name order.
    pub(super) fn follows(&self, ino: u32) -> &[u32] {
        let (from, len) = self.follow_of[ino as usize];
        &self.follow[from as usize..(from + len) as usize]
    }

    /// The nearest inside ancestors of inside effect `e`.
    pub(crate) fn anc(&self, e: usize) -> &[usize] {
        let (from, len) = self.anc_of[e];
        &self.anc[from as usize..(from + len) as usize]
    }
}

/// Per inside effect, the inside effects it reaches through predecessors outside the cone only
/// (a depth-first search from each that stops at inside effects), flattened.
fn nearest_inside_ancestors(g: &Graph, inside: &[bool]) -> (Vec<(u32, u32)>, Vec<usize>) {
    let n = inside.len();
    let mut anc_of = vec![(0, 0); n];
    let mut anc = Vec::new();
    // The search from each effect marks what it visited with the effect's stamp.
    let mut seen = vec![usize::MAX; n];
    let mut stack = Vec::new();
    for e in (0..n).filter(|&e| inside[e]) {
        let start = anc.len();
        stack.extend_from_slice(g.pred_slice(e));
        while let Some(q) = stack.pop() {
            if seen[q] == e {
                continue;
            }
            seen[q] = e;
            if inside[q] {
                anc.push(q);
            } else {
                stack.extend_from_slice(g.pred_slice(q));
            }
        }
        anc[start..].sort_unstable();
        anc_of[e] = (start as u32, (anc.len() - start) as u32);
    }
    (anc_of, anc)
}

impl Dense {
    /// The dense index of directory `dir` (an inode number) and of its entry slot `name`, if
    /// the program has them.
    fn slot_of(&self, dir: usize, name: &str) -> Option<(u32, u32)> {
        let ix = self.inos.binary_search(&dir).ok()?;
        let (first, count) = self.children[ix];
        let name_of = |slot: u32| {
            let (at, len) = self.name_span[self.slot_name[slot as usize] as usize];
            &self.names[at as usize..(at + len) as usize]
        };
        // The first slot whose name is not before `name` (slots are in name order).
        let (mut lo, mut hi) = (first, first + count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if name_of(mid) < name {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        (lo < first + count && name_of(lo) == name).then_some((ix as u32, lo))
    }
}

impl Scratch {
    /// The roles (see [`SHOWN`] and the others) of every path id interned since the last
    /// call: path ids are interned parents first, so a parent's role is known before its
    /// children's.
    pub(super) fn flag_paths(&mut self, reads: &Reads) {
        for id in self.read_flags.len()..self.path_of.len() {
            let path = &self.path_of[id];
            let mut f = 0;
            if reads.shown.contains(path) {
                f |= SHOWN;
            }
            if reads.contents.contains(path) {
                f |= CONTENT;
            }
            if reads.listed.contains(path) {
                f |= LISTED;
            }
            if id != 0 && self.read_flags[self.parent_of[id] as usize] & LISTED != 0 {
                f |= IN_LISTED;
            }
            self.read_flags.push(f);
        }
    }
}
