//! The effects a crash point need not branch on. A global effect is *folded* at crash point k
//! when every value it writes (an entry, an inode's kind or size, a chunk's content) is written
//! again by a later effect of the floor, which every downset holds and which is applied after
//! it (latest wins), and it opens no hole (a hole's stamp competes with the chunk contents).
//!
//! The enumeration includes a folded effect exactly when its predecessors are included. That
//! loses no state: take any downset D, and D' = D plus the folded effects whose predecessors it
//! holds (added in index order, so D' is downward closed and is enumerated). D' has D's
//! metadata (the folded effects write nothing that survives), and the block versions that are
//! candidates in D still are in D' (a version is a candidate when its predecessors are durable
//! and it is newer than the base value and the floor's versions; D' only adds predecessors),
//! so every combination of choices of D is one of D'. Each state of D' is a real state, and
//! its witness a downset of the graph. A synced program's old effects fold away: under btrfs,
//! the ordered-extent completions of appends that a later fsync logged no longer double the
//! downsets each. The brute-force enumerator of explorer/tests/it/reduction.rs checks it.

use super::{DAssign, Dense};
use crate::explore::CrashPoint;

impl Dense {
    /// Per effect: whether the enumeration at `cp` folds it (see the module's documentation).
    pub fn fold(&self, cp: &CrashPoint) -> Vec<bool> {
        let p = cp.p;
        let n = p.effects.len();
        let mut folded = vec![false; n];
        // Before any sync (most crash points of most programs) nothing can be overwritten by a
        // durable effect: skip the tables.
        if !(0..n).any(|e| cp.floor[e] && !p.effects[e].is_block()) {
            return folded;
        }
        // The last floor effect that writes each entry slot, inode kind, inode size and chunk
        // content.
        let mut entry = vec![None; self.init_entry.len()];
        let mut kind = vec![None; self.inos.len()];
        let mut size = vec![None; self.inos.len()];
        let mut content = vec![None; self.chunk_ino.len()];
        for e in (0..n).filter(|&e| cp.floor[e] && !p.effects[e].is_block()) {
            for a in self.assigns(e) {
                match *a {
                    DAssign::Entry { slot, .. } => entry[slot as usize] = Some(e),
                    DAssign::Init { ino, .. } => {
                        kind[ino as usize] = Some(e);
                        size[ino as usize] = Some(e);
                    }
                    DAssign::Size { ino, .. } => size[ino as usize] = Some(e),
                }
            }
            for &(c, _) in self.blocks(e) {
                content[c] = Some(e);
            }
        }
        let later = |w: Option<usize>, e: usize| w.is_some_and(|w| w > e);
        for (e, folded) in folded.iter_mut().enumerate() {
            if cp.floor[e] || p.effects[e].op > cp.k + 1 || p.effects[e].is_block() {
                continue;
            }
            *folded = self.assigns(e).iter().all(|a| match *a {
                DAssign::Entry { slot, .. } => later(entry[slot as usize], e),
                DAssign::Init { ino, .. } => later(kind[ino as usize], e),
                DAssign::Size {
                    ino, holes_from, ..
                } => holes_from.is_none() && later(size[ino as usize], e),
            }) && self.blocks(e).iter().all(|&(c, _)| later(content[c], e));
        }
        folded
    }
}
