//! The `seq` model: sequential crash consistency, the strongest reference point. A crash leaves
//! the state after some prefix of the program, every op whole: each op is one effect holding its
//! metadata and the content of every chunk it dirtied, the effects form one chain, and a
//! completed sync makes its prefix durable.

use super::{Builder, EffectKind, FsModel, ModelSpec, RuleUse};
use crate::layout::BlockValue;
use crate::rules;
use crate::volatile::Assign;
use std::collections::BTreeSet;

crate::rules! {
    RULES;
    SEQ_PREFIX = "seq.prefix", Assumption,
        "seq: a crash leaves the state after some prefix of the ops, each op whole (its metadata and data together); a completed sync makes every op before it durable. The strongest model: every file system's crash states should include these.",
        "sequential crash consistency (e.g. Bornholt et al., Ferrite, ASPLOS 2016); docs/ORDER.md (seq within every file system)";
}

/// The `seq` model.
pub struct Seq;

impl FsModel for Seq {
    fn name(&self) -> &'static str {
        "seq"
    }
    fn default_model(&self) -> ModelSpec {
        ModelSpec::Seq
    }
    fn reference(&self) -> bool {
        true
    }
    fn rules(&self) -> &'static [RuleUse] {
        // No sync-all: every sync persists its prefix (seq.prefix).
        const USES: &[RuleUse] = &[
            RuleUse::always(&rules::SETUP_DURABLE),
            RuleUse::always(&rules::OP_ATOMIC),
            RuleUse::always(&rules::MS_ASYNC_NOOP),
            RuleUse::always(&SEQ_PREFIX),
        ];
        USES
    }
    fn build(&self, _model: &ModelSpec, b: &mut Builder<'_>) {
        b.seq();
    }
}

impl Builder<'_> {
    fn seq(&mut self) {
        let mut last: Option<usize> = None;
        for (i, facts) in self.trace.ops.iter().enumerate() {
            let k = i + 1;
            let mut assigns = facts.assigns.clone();
            if let Some((ino, size)) = facts.extends {
                assigns.push(Assign::Size {
                    ino,
                    size,
                    holes_from: None,
                });
            }
            let chunks: BTreeSet<usize> = facts
                .dirtied
                .iter()
                .flat_map(|d| self.layout.chunks_in(d.ino, d.start, d.end))
                .collect();
            if !assigns.is_empty() || !chunks.is_empty() {
                let e = self.push(k, EffectKind::Meta(assigns), format!("o{k}"), &SEQ_PREFIX);
                for c in chunks {
                    let ino = self.layout.chunks[c].ino;
                    let value =
                        BlockValue::of(&self.trace.contents[i][&ino], &self.layout.chunks[c]);
                    self.assign_blocks(e, c, value, &SEQ_PREFIX);
                }
                if let Some(prev) = last {
                    self.edge(prev, e, &SEQ_PREFIX);
                }
                last = Some(e);
            }
            if facts.sync.is_some() {
                if let Some(e) = last {
                    self.floor(k, vec![e], &SEQ_PREFIX);
                }
            }
        }
    }
}
