//! The builder every model fills: effects, edges and floors, and the helpers the file systems'
//! builders share (the chunks an op dirtied, a chunk's content before and after an op, the block
//! versions of a file).

use super::{Edge, Effect, EffectKind, Floor};
use crate::layout::{BlockValue, Chunk, Layout};
use crate::rules::Rule;
use crate::volatile::{Ino, OpFacts, Trace};
use crate::OpNo;
use std::collections::BTreeSet;

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
    /// a block version with a predecessor may be lost because of the rule that orders it.
    pub(crate) fn order_after(&mut self, from: Option<usize>, to: usize, rule: &'static Rule) {
        if let Some(from) = from {
            if from != to && self.enabled(rule) {
                self.edges.push(Edge { from, to, rule });
                self.p_effects[to].rule = rule;
            }
        }
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
