//! The ext4 builder, in phases over one state per program: each op's journaled metadata, the
//! per-page handles of a write without delayed allocation, its data (block versions, ordered or
//! not by the data mode), the writeback-time size of an append and the auto_da_alloc heuristics,
//! and the floor of its sync.

use super::*;
use crate::layout::BlockValue;
use crate::persist::builder::MAX_PART_WAY;
use crate::persist::posix::MAX_SIZE_STEPS;
use crate::persist::EffectKind;
use crate::rules::{self, Rule};
use crate::volatile::{Assign, Ino, OpFacts, Origin, SyncReq, BLOCK};
use crate::OpNo;
use std::collections::{BTreeMap, BTreeSet};

/// What the ext4 builder keeps between ops.
struct State {
    opts: Ext4Opts,
    /// meta_upto[k] = the latest metadata effect issued at or before op k (the journal prefix).
    meta_upto: Vec<Option<usize>>,
    last_meta: Option<usize>,
    /// For blocks (inode, block index) not allocated on disk at crash point 0: the op that first
    /// dirtied them since they were last free (their delayed allocation follows it). Per block,
    /// not per chunk: the sectors of one block are allocated together (atomic=sector).
    first_dirty: BTreeMap<(Ino, u64), usize>,
    /// Writeback-size effects per inode.
    writebacks: BTreeMap<Ino, Vec<usize>>,
    /// auto_da_alloc: the op of each inode's last truncate to 0 not yet followed by a release.
    da_alloc_close: BTreeMap<Ino, usize>,
    /// Writeback sizes the next metadata effect must follow (ext4.auto-da-alloc-close).
    pending_close_edges: Vec<usize>,
    /// Without delayed allocation, a write allocates its new blocks itself: the effect that
    /// allocated each chunk in the program (its data is visible only once that is durable).
    allocated_by: BTreeMap<usize, usize>,
    /// Chunks allocated by a multi-page write (ext4.page-handles): allocated, but by no single
    /// effect a later version could depend on (later versions are then unordered overwrites,
    /// which allows more states: sound).
    allocated_loose: BTreeSet<usize>,
    /// Each file's size as a running system sees it, before the op being built.
    vsize: BTreeMap<Ino, u64>,
    /// (op, inode) pairs where a write moved i_datasync_tid (allocation or size at the
    /// syscall, without delalloc), beyond OpFacts::datasync_touched.
    data_touched: BTreeSet<(usize, Ino)>,
    /// Part-way writeback sizes the program's msyncs need, per extending op
    /// (ext4.msync-range-size).
    msync_steps: BTreeMap<usize, BTreeSet<(Ino, u64)>>,
}

impl State {
    fn journal(&self) -> bool {
        self.opts.data == DataMode::Journal
    }
}

impl Builder<'_> {
    pub(super) fn ext4(&mut self, opts: Ext4Opts) {
        let trace = self.trace;
        let mut st = State {
            opts,
            meta_upto: vec![None; trace.ops.len() + 1],
            last_meta: None,
            first_dirty: BTreeMap::new(),
            writebacks: BTreeMap::new(),
            da_alloc_close: BTreeMap::new(),
            pending_close_edges: Vec::new(),
            allocated_by: BTreeMap::new(),
            allocated_loose: BTreeSet::new(),
            vsize: trace
                .initial
                .inodes
                .iter()
                .map(|(i, (_, size, _))| (*i, *size))
                .collect(),
            data_touched: BTreeSet::new(),
            msync_steps: if opts.delalloc && self.enabled(&EXT4_MSYNC_SIZE) {
                self.msync_size_steps()
            } else {
                BTreeMap::new()
            },
        };
        for (i, facts) in trace.ops.iter().enumerate() {
            let k = i + 1;
            let dirty = self.dirtied_chunks(facts);
            self.ext4_meta(&mut st, k, facts);
            // Without delalloc, write() and page faults take one journal handle per page
            // (ext4_write_begin, ext4_page_mkwrite). A write of one page is one handle: its
            // allocation, size and (data=journal) data are one effect of the journal chain.
            // A longer write persists page by page: its on-disk size moves one page at a time
            // (a chain of size effects), and its pages' data are block versions that may persist
            // in any order after the metadata before the op: more states than the kernel's
            // prefix of pages (sound; ext4.page-handles).
            let pages: u64 = facts
                .dirtied
                .iter()
                .map(|d| d.end.div_ceil(BLOCK) - d.start / BLOCK)
                .sum();
            let one_handle = pages <= 1;
            // The size before the op, of the file it extends (for the writeback's page sizes).
            let old_size = facts
                .extends
                .map(|(ino, _)| st.vsize.get(&ino).copied().unwrap_or(0));
            // data=journal: each page's handle carries the page's data with its size.
            let mut carried = BTreeSet::new();
            if !opts.delalloc && !one_handle && st.journal() && self.enabled(&EXT4_DATA_JOURNAL) {
                if let Some(c) = self.ext4_journal_pages(&mut st, k, facts, &dirty) {
                    carried = c;
                }
            }
            if !opts.delalloc && !one_handle && carried.is_empty() {
                self.ext4_page_sizes(&mut st, k, facts, &dirty);
            }
            if !opts.delalloc && one_handle {
                self.ext4_page_handles(&mut st, k, facts, &dirty);
            }
            if let Some((ino, size)) = facts.extends {
                st.vsize.insert(ino, size);
            }
            for a in &facts.assigns {
                if let Assign::Size { ino, size, .. } = a {
                    st.vsize.insert(*ino, *size);
                }
            }
            st.meta_upto[k] = st.last_meta;
            if let Some(ino) = facts.trunc_to_zero {
                st.da_alloc_close.insert(ino, k);
            }
            for (c, _) in dirty {
                if !carried.contains(&c) {
                    self.ext4_block(&mut st, k, facts, c, one_handle);
                }
            }
            self.ext4_writeback(&mut st, k, facts, old_size.unwrap_or(0));
            if let Some((v, rule)) = self.ext4_floor(&st, k, facts) {
                self.floor(k, v, rule);
            }
            if let Some(e) = self.ext4_msync_size(&st, k, facts) {
                self.floor(k, vec![e], &EXT4_MSYNC_SIZE);
            }
        }
    }

    /// ext4.msync-range-size: the writeback-time size effect an msync(MS_SYNC) makes durable
    /// (with delalloc; without it the size is in the write's handle, which the datasync commit
    /// covers).
    fn ext4_msync_size(&self, st: &State, k: usize, facts: &OpFacts) -> Option<usize> {
        let &SyncReq::Msync { ino, start, end } = facts.sync.as_ref()? else {
            return None;
        };
        if !st.opts.delalloc {
            return None;
        }
        let need = self.msync_size_need(ino, k, start, end)?;
        self.size_effect(need.op, ino, need.size, true)
    }

    /// Whether chunk `c` is not allocated on disk as of op `k` (never was, or was freed
    /// by a truncate since setup).
    fn ext4_is_new(&self, c: usize, k: usize) -> bool {
        !self.allocated_initially(c) || self.freed_since_setup(c, k)
    }

    /// Not allocated on disk, nor by an earlier write of the program (without delalloc).
    fn ext4_unallocated(&self, st: &State, c: usize, k: usize) -> bool {
        self.ext4_is_new(c, k)
            && !st.allocated_by.contains_key(&c)
            && !st.allocated_loose.contains(&c)
    }

    /// Syscall-time metadata: one effect per op, chained to the previous one (the journal
    /// prefix), after the writeback sizes auto_da_alloc started.
    fn ext4_meta(&mut self, st: &mut State, k: usize, facts: &OpFacts) {
        if facts.assigns.is_empty() {
            return;
        }
        let e = self.push(
            k,
            EffectKind::Meta(facts.assigns.clone()),
            format!("m{k}"),
            &EXT4_JOURNAL_PREFIX,
        );
        if let Some(prev) = st.last_meta {
            self.edge(prev, e, &EXT4_JOURNAL_PREFIX);
        }
        // auto_da_alloc on rename over an existing file: the source's delayed allocation
        // (and on-disk size) is started before the rename's transaction.
        if let (true, Some((src, _))) = (st.opts.auto_da_alloc, facts.rename_over) {
            for &w in st.writebacks.get(&src).into_iter().flatten() {
                self.edge(w, e, &EXT4_AUTO_DA_ALLOC_RENAME);
            }
        }
        for w in std::mem::take(&mut st.pending_close_edges) {
            self.edge(w, e, &EXT4_AUTO_DA_ALLOC_CLOSE);
        }
        st.last_meta = Some(e);
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
                    // `h` is a 4 KiB block index (the trace's), the chunk's `first` a unit
                    // index: compare byte offsets (atomic=sector).
                    ch.ino == ino && ch.start() >= h * BLOCK
                };
                st.first_dirty
                    .retain(|(i, b), _| !(*i == ino && *b * BLOCK >= h * BLOCK));
                st.allocated_by.retain(|c, _| !freed(c));
                st.allocated_loose.retain(|c| !freed(c));
            }
        }
    }

    /// A write of several pages without delalloc: i_disksize after each page of the write
    /// (ext4_write_end), a chain of size effects; its allocations move i_datasync_tid.
    fn ext4_page_sizes(
        &mut self,
        st: &mut State,
        k: usize,
        facts: &OpFacts,
        dirty: &[(usize, Ino)],
    ) {
        if let Some((ino, new_size)) = facts.extends {
            let old = st.vsize.get(&ino).copied().unwrap_or(0);
            let mut at = (old / BLOCK + 1) * BLOCK;
            // A write across more than MAX_SIZE_STEPS pages gets only its final size, `elided`
            // (as posix's steps): the states of its page-by-page sizes are reported unproven
            // where they matter, and the cost does not grow with the bytes written.
            let elide = new_size.saturating_sub(at).div_ceil(BLOCK) > MAX_SIZE_STEPS;
            if elide {
                at = new_size;
            }
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
                    &EXT4_JOURNAL_PREFIX,
                );
                if let Some(prev) = st.last_meta {
                    self.edge(prev, e, &EXT4_PAGE_HANDLES);
                }
                st.last_meta = Some(e);
                j += 1;
                if size >= new_size {
                    if elide {
                        self.elided.push(e);
                    }
                    break;
                }
                at += BLOCK;
            }
            st.data_touched.insert((k, ino));
        }
        for &(c, ino) in dirty {
            if self.ext4_unallocated(st, c, k) {
                st.data_touched.insert((k, ino));
            }
        }
    }

    /// data=journal, a write of several pages: one handle per page (ext4_write_begin and
    /// ext4_journalled_write_end), each journaling the page's data, its allocation and
    /// i_disksize up to the page's end, committed in page order: a chain of effects, each
    /// carrying its page's chunks (the layout cuts every page of such a write, see
    /// `Layout::for_model`). The chunks carried; None (nothing built) when the write is not
    /// cut per page (a store, or more pages than the size steps allow).
    fn ext4_journal_pages(
        &mut self,
        st: &mut State,
        k: usize,
        facts: &OpFacts,
        dirty: &[(usize, Ino)],
    ) -> Option<BTreeSet<usize>> {
        if facts
            .dirtied
            .iter()
            .any(|d| crate::layout::page_handled(d).is_none())
        {
            return None;
        }
        let mut pages: BTreeMap<(Ino, u64), Vec<usize>> = BTreeMap::new();
        for &(c, ino) in dirty {
            let chunk = &self.layout.chunks[c];
            let page = chunk.start() / BLOCK;
            if (chunk.end() - 1) / BLOCK != page || self.mapped(facts, c) {
                return None;
            }
            pages.entry((ino, page)).or_default().push(c);
        }
        let mut carried = BTreeSet::new();
        for (j, ((ino, page), chunks)) in pages.into_iter().enumerate() {
            let mut assigns = Vec::new();
            if let Some((eino, new_size)) = facts.extends {
                let old = st.vsize.get(&ino).copied().unwrap_or(0);
                let size = ((page + 1) * BLOCK).min(new_size);
                if eino == ino && size > old {
                    assigns.push(Assign::Size {
                        ino,
                        size,
                        holes_from: None,
                    });
                }
            }
            let e = self.push(
                k,
                EffectKind::Meta(assigns),
                format!("m{k}.s{j}"),
                &EXT4_JOURNAL_PREFIX,
            );
            for c in chunks {
                if self.ext4_unallocated(st, c, k) {
                    st.allocated_by.insert(c, e);
                }
                let v = self.value_after(k, c);
                self.assign_blocks(e, c, v, &EXT4_DATA_JOURNAL);
                carried.insert(c);
            }
            if let Some(prev) = st.last_meta {
                self.edge(prev, e, &EXT4_PAGE_HANDLES);
            }
            st.last_meta = Some(e);
            st.data_touched.insert((k, ino));
        }
        Some(carried)
    }

    /// A write (or store) of one page without delalloc is one handle: per chunk, an effect of
    /// the journal chain with its allocation, size and (data=journal, or a new block in ordered
    /// mode) data, or the stale bytes a data=writeback allocation exposes.
    fn ext4_page_handles(
        &mut self,
        st: &mut State,
        k: usize,
        facts: &OpFacts,
        dirty: &[(usize, Ino)],
    ) {
        for &(c, ino) in dirty {
            let fresh = self.ext4_unallocated(st, c, k);
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
            // What the handle's commit writes into the block, and by which rule.
            let block = if st.journal() && self.enabled(&EXT4_DATA_JOURNAL) {
                (fresh || !mapped).then_some((data, &EXT4_DATA_JOURNAL))
            } else if fresh {
                match st.opts.data {
                    DataMode::Ordered if self.enabled(&EXT4_NODELALLOC_ORDERED) => {
                        Some((data, &EXT4_NODELALLOC_ORDERED))
                    }
                    DataMode::Writeback if self.enabled(&EXT4_WRITEBACK_STALE) => {
                        let unit = self.layout.chunks[c].unit;
                        Some((
                            BlockValue::whole(unit, Origin::Stale),
                            &EXT4_WRITEBACK_STALE,
                        ))
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
            st.data_touched.insert((k, ino));
            let e = self.push(
                k,
                EffectKind::Meta(assigns),
                format!("m{k}.p"),
                &EXT4_JOURNAL_PREFIX,
            );
            if let Some((v, rule)) = block {
                self.assign_blocks(e, c, v, rule);
            }
            if fresh {
                st.allocated_by.insert(c, e);
            }
            if let Some(prev) = st.last_meta {
                self.edge(prev, e, &EXT4_JOURNAL_PREFIX);
            }
            st.last_meta = Some(e);
        }
    }

    /// The data op `k` wrote into chunk `c` of `ino`: a block version ordered (or not) by the
    /// mode's rule, unless the op's metadata effect already carries it.
    fn ext4_block(
        &mut self,
        st: &mut State,
        k: usize,
        facts: &OpFacts,
        c: usize,
        one_handle: bool,
    ) {
        let mapped = self.mapped(facts, c);
        if !st.opts.delalloc && !one_handle {
            // ext4.page-handles: each page of a long write may persist on its own, once the
            // metadata before the op has (its allocation comes after that).
            let fresh = self.ext4_unallocated(st, c, k);
            if fresh {
                st.allocated_loose.insert(c);
            }
            if fresh && st.opts.data == DataMode::Writeback && self.enabled(&EXT4_WRITEBACK_STALE) {
                // The allocation alone exposes stale bytes; the data version is newer.
                let unit = self.layout.chunks[c].unit;
                let e = self.push(
                    k,
                    EffectKind::Block {
                        chunk: c,
                        value: BlockValue::whole(unit, Origin::Stale),
                    },
                    format!("a{k}"),
                    &EXT4_OVERWRITE,
                );
                self.order_after(st.meta_upto[k - 1], e, &EXT4_WRITEBACK_STALE);
            }
            let e = self.block_version(k, c, &EXT4_OVERWRITE);
            self.order_after(st.meta_upto[k - 1], e, &EXT4_PAGE_HANDLES);
            return;
        }
        if st.journal() && self.enabled(&EXT4_DATA_JOURNAL) {
            if !mapped {
                return; // ext4.data-journal: the data is in the op's metadata effect
            }
            // A store lands after its fault's handle: it is journaled by a later writeback, in a
            // transaction after this op's.
            let e = self.block_version(k, c, &EXT4_OVERWRITE);
            self.order_after(st.meta_upto[k], e, &EXT4_DATA_JOURNAL);
            return;
        }
        if st.opts.delalloc {
            // New blocks are allocated at writeback, after the metadata issued up to the op
            // that first dirtied them.
            let e = self.block_version(k, c, &EXT4_OVERWRITE);
            if !self.ext4_is_new(c, k) {
                return; // ext4.overwrite-unordered: no edge
            }
            let first = *st.first_dirty.entry(self.block_of(c)).or_insert(k);
            self.order_after(st.meta_upto[first], e, &EXT4_DELALLOC);
            return;
        }
        // nodelalloc: the allocation is in the metadata of the write that made it.
        let alloc = st.allocated_by.get(&c).copied();
        let allocated_here = alloc.is_some_and(|a| self.p_effects[a].op == k);
        if allocated_here
            && !mapped
            && st.opts.data == DataMode::Ordered
            && self.enabled(&EXT4_NODELALLOC_ORDERED)
        {
            return; // ext4.nodelalloc-ordered: this op's data is in its allocating commit
        }
        let e = self.block_version(k, c, &EXT4_OVERWRITE);
        let rule = match st.opts.data {
            DataMode::Writeback => &EXT4_WRITEBACK_STALE,
            _ => &EXT4_NODELALLOC_ORDERED,
        };
        self.order_after(alloc, e, rule);
    }

    /// delalloc: an append's on-disk size moves at writeback, after the op; auto_da_alloc:
    /// releasing an open file description after a truncate to 0 starts that writeback, so the
    /// next metadata follows it.
    fn ext4_writeback(&mut self, st: &mut State, k: usize, facts: &OpFacts, old_size: u64) {
        if let (true, Some((ino, size))) = (st.opts.delalloc, facts.extends) {
            let msync = st
                .msync_steps
                .get(&k)
                .is_some_and(|s| s.iter().any(|(i, _)| *i == ino));
            let e = if !msync && self.enabled(&EXT4_WRITEBACK_PAGES) {
                // ext4.writeback-page-sizes: the size may stop at any page boundary inside
                // the append (one mapped extent at a time), up to MAX_PART_WAY of them.
                let first = old_size / BLOCK + 1;
                let last = size.div_ceil(BLOCK);
                let mut steps: BTreeMap<usize, BTreeSet<(Ino, u64)>> = BTreeMap::new();
                if last.saturating_sub(first) <= MAX_PART_WAY {
                    steps.insert(k, (first..last).map(|b| (ino, b * BLOCK)).collect());
                }
                self.writeback_sizes(
                    k,
                    ino,
                    size,
                    &steps,
                    st.meta_upto[k],
                    &EXT4_DELALLOC,
                    &EXT4_WRITEBACK_PAGES,
                )
            } else {
                // Part-way sizes an msync of a range of the append needs
                // (ext4.msync-range-size): a chain of writeback sizes before the whole one.
                self.writeback_sizes(
                    k,
                    ino,
                    size,
                    &st.msync_steps,
                    st.meta_upto[k],
                    &EXT4_DELALLOC,
                    &EXT4_MSYNC_SIZE,
                )
            };
            st.writebacks.entry(ino).or_default().push(e);
        }
        if let (true, Some(ino)) = (st.opts.auto_da_alloc, facts.released) {
            if let Some(t) = st.da_alloc_close.remove(&ino) {
                for &w in st.writebacks.get(&ino).into_iter().flatten() {
                    if self.p_effects[w].op >= t {
                        st.pending_close_edges.push(w);
                    }
                }
            }
        }
    }

    /// The floor of op `k`'s sync, if it asks for one, and its rule.
    fn ext4_floor(
        &self,
        st: &State,
        k: usize,
        facts: &OpFacts,
    ) -> Option<(Vec<usize>, &'static Rule)> {
        let trace = self.trace;
        let (mut v, rule) = match facts.sync.as_ref()? {
            SyncReq::All => (self.all_upto(k), &rules::SYNC_ALL),
            SyncReq::Dir { .. } => (st.meta_upto[k].into_iter().collect(), &EXT4_FSYNC_DIR),
            SyncReq::File {
                ino,
                datasync,
                range,
            } => {
                let (ino, datasync) = (*ino, *datasync);
                let mut v = self.block_effects_of(ino, k, *range);
                v.extend(st.writebacks.get(&ino).into_iter().flatten().copied());
                let touched = |j: usize| {
                    let f: &OpFacts = trace.facts(OpNo::new(j));
                    if datasync {
                        f.datasync_touched.contains(&ino) || st.data_touched.contains(&(j, ino))
                    } else {
                        f.touched.contains(&ino)
                    }
                };
                let last_touch = (1..=k).rev().find(|&j| touched(j));
                let rule = if range.is_some() && facts.dirtied.iter().any(|d| d.ino == ino) {
                    &rules::POSIX_OSYNC
                } else if datasync {
                    &EXT4_FDATASYNC
                } else {
                    &EXT4_FSYNC
                };
                (sync_meta(v, last_touch, &st.meta_upto), rule)
            }
            SyncReq::Msync { ino, start, end } => {
                let ino = *ino;
                let v = self.block_effects_of(ino, k, Some((*start, *end)));
                let last_touch = (1..=k).rev().find(|&j| {
                    trace.facts(OpNo::new(j)).datasync_touched.contains(&ino)
                        || st.data_touched.contains(&(j, ino))
                });
                (sync_meta(v, last_touch, &st.meta_upto), &EXT4_FDATASYNC)
            }
        };
        v.sort();
        v.dedup();
        Some((v, rule))
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
