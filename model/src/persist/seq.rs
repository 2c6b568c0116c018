//! The `seq` model: sequential crash consistency, the strongest reference point. A crash leaves
//! the state after some prefix of the program, every op whole: each op is one effect holding its
//! metadata and the content of every chunk it dirtied, the effects form one chain, and a
//! completed sync makes its prefix durable.

use super::{Builder, EffectKind};
use crate::layout::BlockValue;
use crate::rules;
use crate::volatile::Assign;
use std::collections::BTreeSet;

impl Builder<'_> {
    pub(crate) fn seq(&mut self) {
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
                let e = self.push(k, EffectKind::Meta(assigns), format!("o{k}"));
                for c in chunks {
                    let ino = self.layout.chunks[c].ino;
                    let value =
                        BlockValue::of(&self.trace.contents[i][&ino], &self.layout.chunks[c]);
                    self.assign_blocks(e, c, value);
                }
                if let Some(prev) = last {
                    self.edge(prev, e, &rules::SEQ_PREFIX);
                }
                last = Some(e);
            }
            if facts.sync.is_some() {
                if let Some(e) = last {
                    self.floor(k, vec![e], &rules::SEQ_PREFIX);
                }
            }
        }
    }
}
