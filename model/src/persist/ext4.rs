//! The `ext4` model, for every data mode (ordered, writeback, journal) with or without delayed
//! allocation (SEMANTICS.md sections 2, 3 and 7): the journal's metadata prefix, when blocks are
//! allocated and what that exposes, what fsync, fdatasync and msync commit, and the auto_da_alloc
//! heuristics.

use super::{Builder, DataMode, EffectKind, Ext4Opts};
use crate::layout::BlockValue;
use crate::rules;
use crate::volatile::{Assign, Ino, Kind, OpFacts, Origin, SyncReq, BLOCK};
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
        // Writeback-size effects per inode, and the truncate-to-0 flag of auto_da_alloc.
        let mut writebacks: std::collections::BTreeMap<Ino, Vec<usize>> = Default::default();
        let mut da_alloc_close: std::collections::BTreeMap<Ino, usize> = Default::default();
        let mut pending_close_edges: Vec<usize> = Vec::new();

        // Without delayed allocation, a write allocates its new blocks itself: the effect that
        // allocated each chunk in the program (its data is visible only once that is durable).
        let mut allocated_by: std::collections::BTreeMap<usize, usize> = Default::default();
        // Chunks allocated by a multi-page write (ext4.page-handles): allocated, but by no single
        // effect a later version could depend on (later versions are then unordered overwrites,
        // which allows more states: sound).
        let mut allocated_loose: BTreeSet<usize> = BTreeSet::new();
        let journal = opts.data == DataMode::Journal;
        // Each file's size as a running system sees it, before the op being built.
        let mut vsize: std::collections::BTreeMap<Ino, u64> = trace
            .initial
            .inodes
            .iter()
            .map(|(i, (_, size, _))| (*i, *size))
            .collect();
        // (op, inode) pairs where a write moved i_datasync_tid (allocation or size at the
        // syscall, without delalloc), beyond OpFacts::datasync_touched.
        let mut data_touched: BTreeSet<(usize, Ino)> = BTreeSet::new();

        for (i, facts) in trace.ops.iter().enumerate() {
            let k = i + 1;
            let dirty = self.dirtied_chunks(facts);
            let is_new = |b: &Self, c: usize, ino: Ino| {
                !b.allocated_initially(ino, c) || b.freed_since_setup(c, k)
            };
            // Not allocated on disk, nor by an earlier write of the program (without delalloc).
            let unallocated = |b: &Self,
                               by: &std::collections::BTreeMap<usize, usize>,
                               loose: &BTreeSet<usize>,
                               c: usize,
                               ino: Ino| {
                is_new(b, c, ino) && !by.contains_key(&c) && !loose.contains(&c)
            };
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
                        let freed = |c: &usize| {
                            let ch = &self.layout.chunks[*c];
                            // `h` is a 4 KiB block index (the trace's), the chunk's
                            // `first` a unit index: compare byte offsets (atomic=sector).
                            ch.ino == ino && ch.start() >= h * BLOCK
                        };
                        first_dirty.retain(|c, _| !freed(c));
                        allocated_by.retain(|c, _| !freed(c));
                        allocated_loose.retain(|c| !freed(c));
                    }
                }
            }
            // Without delalloc, write() and page faults take one journal handle per page
            // (ext4_write_begin, ext4_page_mkwrite). A write of one page is one handle: its
            // allocation, size and (data=journal) data are one effect of the journal chain.
            // A longer write persists page by page: its on-disk size moves one page at a time
            // (a chain of size effects), and its pages' data are block versions that may persist
            // in any order after the metadata before the op: more states than the kernel's
            // prefix of pages (sound; ext4.page-handles).
            let old_size = facts
                .extends
                .map(|(ino, _)| vsize.get(&ino).copied().unwrap_or(0));
            let pages: u64 = facts
                .dirtied
                .iter()
                .map(|d| d.end.div_ceil(BLOCK) - d.start / BLOCK)
                .sum();
            let one_handle = pages <= 1;
            if !opts.delalloc && !one_handle {
                if let (Some((ino, new_size)), Some(old)) = (facts.extends, old_size) {
                    // i_disksize after each page of the write (ext4_write_end).
                    let mut at = (old / BLOCK + 1) * BLOCK;
                    let mut j = 0;
                    loop {
                        let size = at.min(new_size);
                        let e = self.push(
                            k,
                            EffectKind::Meta(vec![Assign::Size {
                                ino,
                                size,
                                holes_from: None,
                            }]),
                            format!("m{k}.s{j}"),
                        );
                        if let Some(prev) = last_meta {
                            self.edge(prev, e, &rules::EXT4_PAGE_HANDLES);
                        }
                        last_meta = Some(e);
                        j += 1;
                        if size >= new_size {
                            break;
                        }
                        at += BLOCK;
                    }
                    data_touched.insert((k, ino));
                }
                for &(c, ino) in &dirty {
                    if unallocated(self, &allocated_by, &allocated_loose, c, ino) {
                        data_touched.insert((k, ino));
                    }
                }
            }
            if !opts.delalloc && one_handle {
                for &(c, ino) in &dirty {
                    let fresh = unallocated(self, &allocated_by, &allocated_loose, c, ino);
                    // A store through a mapping faults the page in (allocating its block, in a
                    // handle) before the store lands: what the fault's commit writes may be the
                    // page's content before the store (ext4_page_mkwrite).
                    let mapped = self.mapped(facts, c);
                    let data = if mapped {
                        self.value_before(k, c)
                    } else {
                        self.value_after(k, c)
                    };
                    let mut assigns = Vec::new();
                    if let Some((eino, new_size)) = facts.extends {
                        if eino == ino {
                            assigns.push(Assign::Size {
                                ino,
                                size: new_size,
                                holes_from: None,
                            });
                        }
                    }
                    let block = if journal && self.enabled(&rules::EXT4_DATA_JOURNAL) {
                        (fresh || !mapped).then_some(data)
                    } else if fresh {
                        match opts.data {
                            DataMode::Ordered if self.enabled(&rules::EXT4_NODELALLOC_ORDERED) => {
                                Some(data)
                            }
                            DataMode::Writeback if self.enabled(&rules::EXT4_WRITEBACK_STALE) => {
                                Some(BlockValue::whole(self.layout.chunks[c].unit, Origin::Stale))
                            }
                            _ => None,
                        }
                    } else {
                        None
                    };
                    if assigns.is_empty() && block.is_none() && !fresh {
                        continue;
                    }
                    // Allocations and size changes made by the write itself move i_datasync_tid.
                    data_touched.insert((k, ino));
                    let e = self.push(k, EffectKind::Meta(assigns), format!("m{k}.p"));
                    if let Some(v) = block {
                        self.assign_blocks(e, c, v);
                    }
                    if fresh {
                        allocated_by.insert(c, e);
                    }
                    if let Some(prev) = last_meta {
                        self.edge(prev, e, &rules::EXT4_JOURNAL_PREFIX);
                    }
                    last_meta = Some(e);
                }
            }
            if let Some((ino, size)) = facts.extends {
                vsize.insert(ino, size);
            }
            for a in &facts.assigns {
                if let Assign::Size { ino, size, .. } = a {
                    vsize.insert(*ino, *size);
                }
            }
            meta_upto[k] = last_meta;
            if let Some(ino) = facts.trunc_to_zero {
                da_alloc_close.insert(ino, k);
            }
            // Data written in place: block versions.
            for (c, ino) in dirty {
                let mapped = self.mapped(facts, c);
                if !opts.delalloc && !one_handle {
                    // ext4.page-handles: each page of a long write may persist on its own, once
                    // the metadata before the op has (its allocation comes after that).
                    let fresh = unallocated(self, &allocated_by, &allocated_loose, c, ino);
                    if fresh {
                        allocated_loose.insert(c);
                    }
                    if fresh
                        && opts.data == DataMode::Writeback
                        && self.enabled(&rules::EXT4_WRITEBACK_STALE)
                    {
                        // The allocation alone exposes stale bytes; the data version is newer.
                        let unit = self.layout.chunks[c].unit;
                        let e = self.push(
                            k,
                            EffectKind::Block {
                                chunk: c,
                                value: BlockValue::whole(unit, Origin::Stale),
                            },
                            format!("a{k}"),
                        );
                        if let Some(m) = meta_upto[k - 1] {
                            self.edge(m, e, &rules::EXT4_WRITEBACK_STALE);
                        }
                    }
                    let e = self.block_version(k, c);
                    if let Some(m) = meta_upto[k - 1] {
                        self.edge(m, e, &rules::EXT4_PAGE_HANDLES);
                    }
                    continue;
                }
                if journal && self.enabled(&rules::EXT4_DATA_JOURNAL) {
                    if !mapped {
                        continue; // ext4.data-journal: the data is in the op's metadata effect
                    }
                    // A store lands after its fault's handle: it is journaled by a later
                    // writeback, in a transaction after this op's.
                    let e = self.block_version(k, c);
                    if let Some(m) = meta_upto[k] {
                        self.edge(m, e, &rules::EXT4_DATA_JOURNAL);
                    }
                    continue;
                }
                if opts.delalloc {
                    // New blocks are allocated at writeback, after the metadata issued up to
                    // the op that first dirtied them.
                    let e = self.block_version(k, c);
                    if !is_new(self, c, ino) {
                        continue; // ext4.overwrite-unordered: no edge
                    }
                    let first = *first_dirty.entry(c).or_insert(k);
                    if let Some(m) = meta_upto[first] {
                        self.edge(m, e, &rules::EXT4_DELALLOC);
                    }
                    continue;
                }
                // nodelalloc: the allocation is in the metadata of the write that made it.
                let alloc = allocated_by.get(&c).copied();
                let allocated_here = alloc.is_some_and(|a| self.p_effects[a].op == k);
                if allocated_here
                    && !mapped
                    && opts.data == DataMode::Ordered
                    && self.enabled(&rules::EXT4_NODELALLOC_ORDERED)
                {
                    continue; // ext4.nodelalloc-ordered: this op's data is in its allocating commit
                }
                let e = self.block_version(k, c);
                if let Some(a) = alloc {
                    let rule = match opts.data {
                        DataMode::Writeback => &rules::EXT4_WRITEBACK_STALE,
                        _ => &rules::EXT4_NODELALLOC_ORDERED,
                    };
                    self.edge(a, e, rule);
                }
            }
            // An append's on-disk size moves at writeback (delalloc).
            if let (true, Some((ino, size))) = (opts.delalloc, facts.extends) {
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
                    let touched = |j: usize| {
                        let f: &OpFacts = &trace.ops[j - 1];
                        if datasync {
                            f.datasync_touched.contains(&ino) || data_touched.contains(&(j, ino))
                        } else {
                            f.touched.contains(&ino)
                        }
                    };
                    let last_touch = (1..=k).rev().find(|&j| touched(j));
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
                    (sync_meta(v, last_touch, &meta_upto), rule)
                }
                SyncReq::Msync { ino, start, end } => {
                    let ino = *ino;
                    let v = self.block_effects_of(ino, k, Some((*start, *end)));
                    let last_touch = (1..=k).rev().find(|&j| {
                        trace.ops[j - 1].datasync_touched.contains(&ino)
                            || data_touched.contains(&(j, ino))
                    });
                    (sync_meta(v, last_touch, &meta_upto), &rules::EXT4_FDATASYNC)
                }
            };
            v.sort();
            v.dedup();
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
            f.assigns.iter().any(|a| matches!(a, Assign::Size { ino, holes_from: Some(h), .. } if *ino == c.ino && c.start() >= *h * BLOCK))
        })
    }
}

/// ext4: a file sync's floor is its data plus the journal prefix up to the inode's last tid.
/// Delayed blocks among the data are allocated (by the sync, or earlier by writeback) after the
/// op that first dirtied them, and their ext4.delalloc edge brings the prefix up to that op into
/// the floor: that is ext4.fsync-allocates, with no code of its own.
fn sync_meta(
    mut data: Vec<usize>,
    last_touch: Option<usize>,
    meta_upto: &[Option<usize>],
) -> Vec<usize> {
    if let Some(m) = last_touch.and_then(|u| meta_upto[u]) {
        data.push(m);
    }
    data
}
