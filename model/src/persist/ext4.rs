//! The `ext4` model: data=ordered with delayed allocation and auto_da_alloc (SEMANTICS.md
//! sections 2, 3 and 7): the journal's metadata prefix, writeback-time allocation, what fsync,
//! fdatasync and msync commit, and the auto_da_alloc heuristics.

use super::{Builder, EffectKind, Ext4Opts};
use crate::rules;
use crate::volatile::{Assign, Ino, Kind, OpFacts, SyncReq};
use std::collections::BTreeSet;

impl Builder<'_> {
    pub(crate) fn ext4(&mut self, opts: Ext4Opts) {
        let trace = self.trace;
        // meta[k] = the latest metadata effect issued at or before op k (the journal prefix).
        let mut meta_upto: Vec<Option<usize>> = vec![None; trace.ops.len() + 1];
        let mut last_meta: Option<usize> = None;
        // Blocks: which chunks hold blocks allocated on disk at crash point 0, and for the others
        // the op that first dirtied them since they were last free (their allocation follows it).
        let mut first_dirty: std::collections::BTreeMap<usize, usize> = Default::default();
        let mut floored: BTreeSet<usize> = BTreeSet::new();
        // Writeback-size effects per inode, and the truncate-to-0 flag of auto_da_alloc.
        let mut writebacks: std::collections::BTreeMap<Ino, Vec<usize>> = Default::default();
        let mut da_alloc_close: std::collections::BTreeMap<Ino, usize> = Default::default();
        let mut pending_close_edges: Vec<usize> = Vec::new();
        // Effects whose durability needs a block allocation (delalloc blocks, append sizes).
        let mut allocating: BTreeSet<usize> = BTreeSet::new();

        for (i, facts) in trace.ops.iter().enumerate() {
            let k = i + 1;
            // Syscall-time metadata: one effect per op, chained to the previous one.
            if !facts.assigns.is_empty() {
                let e = self.push(k, EffectKind::Meta(facts.assigns.clone()), format!("m{k}"));
                if let Some(prev) = last_meta {
                    self.edge(prev, e, &rules::EXT4_JOURNAL_PREFIX);
                }
                // auto_da_alloc on rename over an existing file: the source's delayed allocation
                // (and on-disk size) is started before the rename's transaction.
                if let (true, Some((src, _))) = (opts.auto_da_alloc, facts.rename_over) {
                    for &w in writebacks.get(&src).into_iter().flatten() {
                        self.edge(w, e, &rules::EXT4_AUTO_DA_ALLOC_RENAME);
                    }
                }
                for w in std::mem::take(&mut pending_close_edges) {
                    self.edge(w, e, &rules::EXT4_AUTO_DA_ALLOC_CLOSE);
                }
                last_meta = Some(e);
                // A truncate frees blocks: later writes to them allocate anew.
                for a in &facts.assigns {
                    if let Assign::Size {
                        ino,
                        holes_from: Some(h),
                        ..
                    } = a
                    {
                        let (ino, h) = (*ino, *h);
                        first_dirty.retain(|c, _| {
                            let ch = &self.layout.chunks[*c];
                            !(ch.ino == ino && ch.first >= h)
                        });
                    }
                }
            }
            meta_upto[k] = last_meta;
            if let Some(ino) = facts.trunc_to_zero {
                da_alloc_close.insert(ino, k);
            }
            // Data: block versions; new blocks are allocated at writeback (delalloc), after the
            // metadata issued up to the op that first dirtied them.
            for (e, c, ino) in self.block_effects(k, facts) {
                if self.allocated_initially(ino, c) && !self.freed_since_setup(c, k) {
                    continue; // ext4.overwrite-unordered: no edge
                }
                allocating.insert(e);
                let first = *first_dirty.entry(c).or_insert(k);
                if let Some(m) = meta_upto[first] {
                    self.edge(m, e, &rules::EXT4_DELALLOC);
                }
            }
            // An append's on-disk size moves at writeback (delalloc).
            if let Some((ino, size)) = facts.extends {
                let e = self.push(
                    k,
                    EffectKind::Writeback(vec![Assign::Size {
                        ino,
                        size,
                        holes_from: None,
                    }]),
                    format!("w{k}"),
                );
                if let Some(m) = meta_upto[k] {
                    self.edge(m, e, &rules::EXT4_DELALLOC);
                }
                writebacks.entry(ino).or_default().push(e);
                allocating.insert(e);
            }
            // auto_da_alloc: releasing an open file description after a truncate to 0 starts
            // writeback.
            if let (true, Some(ino)) = (opts.auto_da_alloc, facts.released) {
                if let Some(t) = da_alloc_close.remove(&ino) {
                    for &w in writebacks.get(&ino).into_iter().flatten() {
                        if self.p_effects[w].op >= t {
                            pending_close_edges.push(w);
                        }
                    }
                }
            }
            let Some(sync) = &facts.sync else { continue };
            // ext4.fsync-allocates (None when the rule is switched off by a mutation test).
            let alloc = self
                .enabled(&rules::EXT4_FSYNC_ALLOC)
                .then_some(&allocating);
            let (mut v, rule) = match sync {
                SyncReq::All => (self.all_upto(k), &rules::SYNC_ALL),
                SyncReq::Dir { .. } => (meta_upto[k].into_iter().collect(), &rules::EXT4_FSYNC_DIR),
                SyncReq::File {
                    ino,
                    datasync,
                    range,
                } => {
                    let (ino, datasync) = (*ino, *datasync);
                    let mut v = self.block_effects_of(ino, k, *range);
                    v.extend(writebacks.get(&ino).into_iter().flatten().copied());
                    let touched = |f: &OpFacts| {
                        if datasync {
                            f.datasync_touched.contains(&ino)
                        } else {
                            f.touched.contains(&ino)
                        }
                    };
                    let last_touch = (1..=k).rev().find(|&j| touched(&trace.ops[j - 1]));
                    let rule = if datasync {
                        &rules::EXT4_FDATASYNC
                    } else {
                        &rules::EXT4_FSYNC
                    };
                    let rule = if range.is_some() && facts.dirtied.iter().any(|d| d.ino == ino) {
                        &rules::POSIX_OSYNC
                    } else {
                        rule
                    };
                    let (v, allocated) =
                        ext4_sync_meta(v, &floored, alloc, last_touch, k, &meta_upto);
                    (
                        v,
                        if allocated {
                            &rules::EXT4_FSYNC_ALLOC
                        } else {
                            rule
                        },
                    )
                }
                SyncReq::Msync { ino, start, end } => {
                    let ino = *ino;
                    let v = self.block_effects_of(ino, k, Some((*start, *end)));
                    let last_touch = (1..=k)
                        .rev()
                        .find(|&j| trace.ops[j - 1].datasync_touched.contains(&ino));
                    let (v, allocated) =
                        ext4_sync_meta(v, &floored, alloc, last_touch, k, &meta_upto);
                    (
                        v,
                        if allocated {
                            &rules::EXT4_FSYNC_ALLOC
                        } else {
                            &rules::EXT4_FDATASYNC
                        },
                    )
                }
            };
            v.sort();
            v.dedup();
            floored.extend(v.iter().copied());
            self.floor(k, v, rule);
        }
    }

    fn allocated_initially(&self, ino: Ino, chunk: usize) -> bool {
        let c = &self.layout.chunks[chunk];
        match self.trace.initial.inodes.get(&ino) {
            Some((Kind::File, size, content)) => {
                c.start() < *size
                    && content
                        .0
                        .iter()
                        .any(|e| e.start < c.end() && c.start() < e.end)
            }
            _ => false,
        }
    }

    fn freed_since_setup(&self, chunk: usize, upto: usize) -> bool {
        let c = &self.layout.chunks[chunk];
        self.trace.ops[..upto].iter().any(|f| {
            f.assigns.iter().any(|a| matches!(a, Assign::Size { ino, holes_from: Some(h), .. } if *ino == c.ino && c.first >= *h))
        })
    }
}

/// ext4: a file sync's floor is its data plus the journal prefix up to the inode's tid; if it had
/// delayed blocks to allocate, the allocation joins the running transaction and the prefix extends
/// to the sync itself (ext4.fsync-allocates). Returns the floor and whether it allocated.
fn ext4_sync_meta(
    mut data: Vec<usize>,
    floored: &BTreeSet<usize>,
    allocating: Option<&BTreeSet<usize>>,
    last_touch: Option<usize>,
    k: usize,
    meta_upto: &[Option<usize>],
) -> (Vec<usize>, bool) {
    let allocates =
        allocating.is_some_and(|a| data.iter().any(|e| a.contains(e) && !floored.contains(e)));
    let upto = if allocates { Some(k) } else { last_touch };
    if let Some(m) = upto.and_then(|u| meta_upto[u]) {
        data.push(m);
    }
    (data, allocates)
}
