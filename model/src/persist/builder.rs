//! The builder every model fills: effects, edges and floors, and the helpers the file systems'
//! builders share (the chunks an op dirtied, a chunk's content before and after an op, the block
//! versions of a file).

use super::{Edge, Effect, EffectKind, Floor};
use crate::layout::{BlockValue, Chunk, Layout};
use crate::rules::Rule;
use crate::volatile::{Assign, Ino, Kind, OpFacts, SyncReq, Trace, BLOCK};
use crate::OpNo;
use std::collections::{BTreeMap, BTreeSet};

/// What a model's builder writes into: the effects, edges and floors of one trace.
pub struct Builder<'a> {
    pub(crate) trace: &'a Trace,
    pub(crate) drop: Option<&'a str>,
    pub(crate) layout: Layout,
    pub(crate) p_effects: Vec<Effect>,
    pub(crate) edges: Vec<Edge>,
    pub(crate) floors: Vec<Floor>,
    /// See [`super::Persistence::elided`].
    pub(crate) elided: Vec<usize>,
}

impl Builder<'_> {
    /// Pushes an effect of op `op`; `rule` is the rule that made it (and lets it be lost).
    pub(crate) fn push(
        &mut self,
        op: usize,
        kind: EffectKind,
        name: String,
        rule: &'static Rule,
    ) -> usize {
        self.p_effects.push(Effect {
            op,
            kind,
            name,
            blocks: Vec::new(),
            rule,
            carries: Vec::new(),
        });
        self.p_effects.len() - 1
    }

    /// Orders effect `to` after `from` (if any) by `rule`, and makes `rule` the rule `to` carries:
    /// a block version may be lost because of the rule that orders it. That holds without a
    /// predecessor too (an append's new block as the first op's write, under delalloc or one
    /// journal handle per page): the rule is still what lets the block be lost, where the rule
    /// it was made with (`ext4.overwrite-unordered`, about blocks that existed before) is not,
    /// and `explain` cites the rule an effect carries.
    pub(crate) fn order_after(&mut self, from: Option<usize>, to: usize, rule: &'static Rule) {
        if from == Some(to) || !self.enabled(rule) {
            return;
        }
        if let Some(from) = from {
            self.edges.push(Edge { from, to, rule });
        }
        self.p_effects[to].rule = rule;
    }

    /// Makes global effect `e` set chunk `chunk` (every block of it) to `value`, by `rule`.
    pub(crate) fn assign_blocks(
        &mut self,
        e: usize,
        chunk: usize,
        value: BlockValue,
        rule: &'static Rule,
    ) {
        self.p_effects[e].blocks.push((chunk, value));
        self.carry(e, rule);
    }

    /// Records that `rule` put part of effect `e`'s content in it.
    pub(crate) fn carry(&mut self, e: usize, rule: &'static Rule) {
        let eff = &mut self.p_effects[e];
        if eff.rule.id != rule.id && !eff.carries.iter().any(|r| r.id == rule.id) {
            eff.carries.push(rule);
        }
    }

    pub(crate) fn enabled(&self, rule: &Rule) -> bool {
        self.drop != Some(rule.id)
    }

    pub(crate) fn floor(&mut self, op: usize, effects: Vec<usize>, rule: &'static Rule) {
        if self.enabled(rule) {
            self.floors.push(Floor { op, effects, rule });
        }
    }

    pub(crate) fn edge(&mut self, from: usize, to: usize, rule: &'static Rule) {
        if from != to && self.enabled(rule) {
            self.edges.push(Edge { from, to, rule });
        }
    }

    /// The chunks op `k` dirtied, with their inodes, in order.
    pub(crate) fn dirtied_chunks(&self, facts: &OpFacts) -> Vec<(usize, Ino)> {
        let mut chunks = BTreeSet::new();
        for d in &facts.dirtied {
            chunks.extend(
                self.layout
                    .chunks_in(d.ino, d.start, d.end)
                    .map(|c| (c, d.ino)),
            );
        }
        chunks.into_iter().collect()
    }

    /// The content of chunk `c` right after op `k`.
    pub(crate) fn value_after(&self, k: usize, c: usize) -> BlockValue {
        let chunk = &self.layout.chunks[c];
        BlockValue::of(&self.trace.contents_after(OpNo::new(k))[&chunk.ino], chunk)
    }

    /// The content of chunk `c` just before op `k` (what the page held when it was faulted in).
    pub(crate) fn value_before(&self, k: usize, c: usize) -> BlockValue {
        let chunk = &self.layout.chunks[c];
        for j in (1..k).rev().map(OpNo::new) {
            if let Some(content) = self.trace.contents_after(j).get(&chunk.ino) {
                return BlockValue::of(content, chunk);
            }
        }
        match self.trace.initial.inodes.get(&chunk.ino) {
            Some((_, _, content)) => BlockValue::of(content, chunk),
            None => BlockValue::zero(chunk.unit),
        }
    }

    /// Whether op `k` dirtied chunk `c` through a mapping.
    pub(crate) fn mapped(&self, facts: &OpFacts, c: usize) -> bool {
        let ch = &self.layout.chunks[c];
        facts
            .dirtied
            .iter()
            .any(|d| d.mapped && d.ino == ch.ino && ch.overlaps(d.start, d.end))
    }

    /// The block version of chunk `c` written by op `k`.
    pub(crate) fn block_version(&mut self, k: usize, c: usize, rule: &'static Rule) -> usize {
        let value = self.value_after(k, c);
        self.push(
            k,
            EffectKind::Block { chunk: c, value },
            format!("d{k}"),
            rule,
        )
    }

    /// Block-version effects of op `k`'s dirtied ranges, one per chunk: (effect, chunk, ino).
    pub(crate) fn block_effects(
        &mut self,
        k: usize,
        facts: &OpFacts,
        rule: &'static Rule,
    ) -> Vec<(usize, usize, Ino)> {
        self.dirtied_chunks(facts)
            .into_iter()
            .map(|(c, ino)| (self.block_version(k, c, rule), c, ino))
            .collect()
    }

    pub(crate) fn block_effects_of(
        &self,
        ino: Ino,
        upto: usize,
        range: Option<(u64, u64)>,
    ) -> Vec<usize> {
        (0..self.p_effects.len())
            .filter(|&e| {
                let eff = &self.p_effects[e];
                match &eff.kind {
                    EffectKind::Block { chunk, .. } => {
                        let c: &Chunk = &self.layout.chunks[*chunk];
                        eff.op <= upto
                            && c.ino == ino
                            && range.is_none_or(|(s, t)| c.overlaps(s, t))
                    }
                    _ => false,
                }
            })
            .collect()
    }

    pub(crate) fn all_upto(&self, upto: usize) -> Vec<usize> {
        (0..self.p_effects.len())
            .filter(|&e| self.p_effects[e].op <= upto)
            .collect()
    }
}

/// The size an msync(MS_SYNC) needs durable: the op whose size effect gives it, and the size that
/// effect sets (see [`Builder::msync_size_need`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SizeNeed {
    /// The last op at or before the msync that took the file's size from below `size` to `size`
    /// or more.
    pub op: usize,
    /// The size its effect must set: `need` itself when the op is an extending write that went
    /// past it (a part-way size of the write), else the op's own size.
    pub size: u64,
}

/// The most part-way sizes [`Builder::writeback_sizes`] gives the rest of an append after an
/// msync's step (beyond it, the rest keeps only its whole size).
pub(crate) const MAX_PART_WAY: u64 = 4096;

impl Builder<'_> {
    /// The 4 KiB block holding chunk `c`'s first unit, as (inode, block index): allocation
    /// (delayed or not) is per block, so the sectors of one block share it (atomic=sector).
    pub(crate) fn block_of(&self, c: usize) -> (Ino, u64) {
        let ch = &self.layout.chunks[c];
        (ch.ino, ch.start() / BLOCK)
    }

    /// Whether the blocks holding chunk `c` were allocated on disk at crash point 0: inside the
    /// initial size and holding some of the initial content. Per block, not per chunk: a sector
    /// past the initial end of a block's data is in an allocated block (atomic=sector).
    pub(crate) fn allocated_initially(&self, c: usize) -> bool {
        let ch = &self.layout.chunks[c];
        let (start, end) = (ch.start() / BLOCK * BLOCK, ch.end().div_ceil(BLOCK) * BLOCK);
        match self.trace.initial.inodes.get(&ch.ino) {
            Some((Kind::File, size, content)) => {
                start < *size && content.0.iter().any(|e| e.start < end && start < e.end)
            }
            _ => false,
        }
    }

    /// An append's sizes at writeback (op `k`, file `ino`): first the part-way sizes an msync
    /// of a range of it needs (`steps[&k]`, [`Builder::msync_size_need`]), a chain made by
    /// `step_rule`, then the whole `size`, made by `rule`; each after the op's metadata `meta`
    /// (by `rule`). Returns the whole size's effect.
    #[allow(
        clippy::too_many_arguments,
        reason = "one call per model, each argument a model's own"
    )]
    pub(crate) fn writeback_sizes(
        &mut self,
        k: usize,
        ino: Ino,
        size: u64,
        steps: &BTreeMap<usize, BTreeSet<(Ino, u64)>>,
        meta: Option<usize>,
        rule: &'static Rule,
        step_rule: &'static Rule,
    ) -> usize {
        let mut part_way: Vec<u64> = steps
            .get(&k)
            .into_iter()
            .flatten()
            .filter(|(i, _)| *i == ino)
            .map(|&(_, s)| s)
            .collect();
        // The rest of an append an msync split is written back later, and the kernel may map
        // and submit it a few pages at a time, moving the on-disk size at each (observed by
        // `unplug real` on Linux 6.18 ext4: litmus/msync-append-size.up showed 8 KiB of a
        // 12 KiB append after an msync of page 0): a part-way size at every page boundary
        // above the last step, unless there are more than MAX_PART_WAY of them.
        if let Some(&last) = part_way.last() {
            let blocks = last / BLOCK + 1..size.div_ceil(BLOCK);
            if blocks.end.saturating_sub(blocks.start) <= MAX_PART_WAY {
                part_way.extend(blocks.map(|b| b * BLOCK));
            }
        }
        let sizes: Vec<(u64, String, &'static Rule)> = part_way
            .into_iter()
            .map(|s| (s, format!("w{k}s{s}"), step_rule))
            .chain([(size, format!("w{k}"), rule)])
            .collect();
        let mut prev = None;
        for (size, name, made_by) in sizes {
            let assign = Assign::Size {
                ino,
                size,
                holes_from: None,
            };
            let e = self.push(k, EffectKind::Writeback(vec![assign]), name, made_by);
            if let Some(m) = meta {
                self.edge(m, e, rule);
            }
            if let Some(p) = prev {
                self.edge(p, e, step_rule);
            }
            prev = Some(e);
        }
        prev.expect("the whole size is always pushed")
    }

    /// What an msync(MS_SYNC) of `[start, end)` of `ino` at op `k` makes durable of the file's
    /// size. msync is vfs_fsync_range(file, start, end, datasync=1) (mm/msync.c): the range's
    /// writeback allocates its new blocks and moves the on-disk size to cover them, capped at
    /// i_size (ext4: mpage_map_and_submit_extent sets i_disksize in the writeback's handle, which
    /// moves i_datasync_tid, and ext4_sync_file commits it; xfs: xfs_end_ioend ->
    /// xfs_setfilesize, which logs the inode core, and xfs_file_fsync forces it). So once it
    /// returns the durable size is at least `need` = min(i_size, the end of the page holding the
    /// last new chunk of the range that is dirty since it was last free). The size effects that
    /// give it: the last op that took the size from below `need` to `need` or more (latest wins:
    /// every later size effect is `need` or more, or is a truncate that a datasync commits
    /// anyway). `None`: nothing needed (no new chunk in the range, or the size was `need` or
    /// more since crash point 0).
    pub(crate) fn msync_size_need(
        &self,
        ino: Ino,
        k: usize,
        start: u64,
        end: u64,
    ) -> Option<SizeNeed> {
        let ops = &self.trace.ops;
        let frees = |t: usize, c: &Chunk| {
            ops[t - 1].assigns.iter().any(|a| {
                matches!(a, Assign::Size { ino: i, holes_from: Some(h), .. }
                    if *i == ino && c.start() >= *h * BLOCK)
            })
        };
        // The end of the range's last chunk that is dirty and new: written by an op since it
        // was last freed, and not allocated then (never on disk, or freed before).
        let last_new_end = self
            .layout
            .chunks_in(ino, start, end)
            .filter_map(|c| {
                let ch = &self.layout.chunks[c];
                let j = (1..=k).rev().find(|&j| {
                    ops[j - 1]
                        .dirtied
                        .iter()
                        .any(|d| d.ino == ino && ch.overlaps(d.start, d.end))
                })?;
                if ((j + 1)..=k).any(|t| frees(t, ch)) {
                    return None; // freed after its last write: a hole
                }
                let new = !self.allocated_initially(c) || (1..=j).any(|t| frees(t, ch));
                new.then(|| ch.end())
            })
            .max()?;
        // Every size change of the file up to op k: (op, size before, size after).
        let mut size = match self.trace.initial.inodes.get(&ino) {
            Some((_, s, _)) => *s,
            None => 0,
        };
        let mut changes = Vec::new();
        for (i, f) in ops[..k].iter().enumerate() {
            let j = i + 1;
            for a in &f.assigns {
                match a {
                    Assign::Init { ino: i, .. } if *i == ino => {
                        changes.push((j, size, 0, false));
                        size = 0;
                    }
                    Assign::Size {
                        ino: i, size: s, ..
                    } if *i == ino => {
                        changes.push((j, size, *s, false));
                        size = *s;
                    }
                    _ => {}
                }
            }
            if let Some((_, s)) = f.extends.filter(|(i, _)| *i == ino) {
                changes.push((j, size, s, true));
                size = s;
            }
        }
        let need = size.min(last_new_end.div_ceil(BLOCK) * BLOCK);
        if need == 0 {
            return None;
        }
        // Walk back while the size before each change was `need` or more: those changes are
        // not needed (latest wins, and none goes below `need`).
        changes
            .into_iter()
            .rev()
            .find(|&(_, before, _, _)| before < need)
            .map(|(op, _, after, write)| SizeNeed {
                op,
                size: if write && after > need { need } else { after },
            })
    }

    /// The part-way sizes the msyncs of the program need from extending writes (see
    /// [`Builder::msync_size_need`]): per op, (inode, size) pairs short of the write's own size.
    /// A model that keeps an append's size as one writeback-time effect splits it there.
    pub(crate) fn msync_size_steps(&self) -> BTreeMap<usize, BTreeSet<(Ino, u64)>> {
        let mut steps: BTreeMap<usize, BTreeSet<(Ino, u64)>> = BTreeMap::new();
        for (i, f) in self.trace.ops.iter().enumerate() {
            let Some(&SyncReq::Msync { ino, start, end }) = f.sync.as_ref() else {
                continue;
            };
            if let Some(n) = self.msync_size_need(ino, i + 1, start, end) {
                let write = self.trace.ops[n.op - 1].extends;
                if write.is_some_and(|(w, s)| w == ino && n.size < s) {
                    steps.entry(n.op).or_default().insert((ino, n.size));
                }
            }
        }
        steps
    }

    /// The effect of op `op` that sets `ino`'s size to `size` (a writeback-time one if
    /// `writeback`, else a syscall-time one).
    pub(crate) fn size_effect(
        &self,
        op: usize,
        ino: Ino,
        size: u64,
        writeback: bool,
    ) -> Option<usize> {
        (0..self.p_effects.len()).find(|&e| {
            let eff = &self.p_effects[e];
            eff.op == op
                && matches!(
                    (&eff.kind, writeback),
                    (super::EffectKind::Writeback(_), true) | (super::EffectKind::Meta(_), false)
                )
                && eff.assigns().iter().any(|a| {
                    matches!(a, Assign::Size { ino: i, size: s, .. } if *i == ino && *s == size)
                })
        })
    }
}
