//! Models: how each file system turns a program's ops into *effects* (the units that reach disk
//! atomically), *edges* (if b is durable, a is durable) and *floors* (what a completed sync forces
//! to be durable). Every edge and floor names the [`Rule`] that made it.
//!
//! Effects are global (metadata: `m3` is op 3's metadata, `w4` op 4's writeback-time size) or
//! block versions (`d4` on a chunk: the content of the chunk's blocks right after op 4). A block
//! version stands for every block of its chunk at once (see [`crate::layout`]).

mod ext4;
mod posix;

use crate::layout::{BlockValue, Chunk, Layout};
use crate::rules::{self, Rule};
use crate::volatile::{Assign, Ino, OpFacts, Trace};
use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt;

/// A model: a file system and its options, as `--model` spells it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum ModelSpec {
    /// The weakest reading of POSIX plus the Linux man pages.
    Posix,
    /// ext4 with data=ordered and the given options.
    Ext4(Ext4Opts),
}

/// ext4 mount options. Only data=ordered is modelled so far; the others are values the parser
/// accepts and refuses with a clear message until their rules exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Ext4Opts {
    pub delalloc: bool,
    pub auto_da_alloc: bool,
}

impl Default for Ext4Opts {
    fn default() -> Self {
        Ext4Opts {
            delalloc: true,
            auto_da_alloc: true,
        }
    }
}

impl ModelSpec {
    /// Every model that exists, in the order output lists them (weakest first).
    pub fn all() -> Vec<ModelSpec> {
        vec![ModelSpec::Posix, ModelSpec::Ext4(Ext4Opts::default())]
    }

    /// Parses `posix`, `ext4`, `ext4:data=ordered,delalloc,auto_da_alloc`, `ext4:noauto_da_alloc`...
    pub fn parse(s: &str) -> Result<ModelSpec, String> {
        let (fs, opts) = match s.split_once(':') {
            Some((f, o)) => (f, Some(o)),
            None => (s, None),
        };
        match fs {
            "posix" => match opts {
                None | Some("") => Ok(ModelSpec::Posix),
                Some(o) => Err(format!("posix takes no options (got `{o}`)")),
            },
            "ext4" => {
                let mut e = Ext4Opts::default();
                for o in opts.unwrap_or("").split(',').filter(|o| !o.is_empty()) {
                    match o {
                        "data=ordered" => {}
                        "data=writeback" | "data=journal" => {
                            return Err(format!("ext4 `{o}` is not modelled yet; data=ordered is"))
                        }
                        "delalloc" => e.delalloc = true,
                        "nodelalloc" => return Err("ext4 `nodelalloc` is not modelled yet; delalloc is".into()),
                        "auto_da_alloc" => e.auto_da_alloc = true,
                        "noauto_da_alloc" => e.auto_da_alloc = false,
                        _ => {
                            return Err(format!(
                                "unknown ext4 option `{o}` (known: data=ordered, delalloc, auto_da_alloc, noauto_da_alloc)"
                            ))
                        }
                    }
                }
                Ok(ModelSpec::Ext4(e))
            }
            _ => Err(format!("unknown model `{fs}` (known: posix, ext4)")),
        }
    }

    /// The rules this model uses.
    pub fn rules(&self) -> Vec<&'static Rule> {
        let mut v = vec![
            &rules::SETUP_DURABLE,
            &rules::OP_ATOMIC,
            &rules::SYNC_ALL,
            &rules::MS_ASYNC_NOOP,
        ];
        match self {
            ModelSpec::Posix => v.extend([
                &rules::POSIX_UNORDERED,
                &rules::INODE_BEFORE_NAME,
                &rules::POSIX_FSYNC_FILE,
                &rules::POSIX_FDATASYNC,
                &rules::POSIX_MSYNC,
                &rules::POSIX_FSYNC_DIR,
                &rules::POSIX_OSYNC,
            ]),
            ModelSpec::Ext4(o) => {
                v.extend([
                    &rules::EXT4_JOURNAL_PREFIX,
                    &rules::EXT4_DELALLOC,
                    &rules::EXT4_ORDERED,
                    &rules::EXT4_OVERWRITE,
                    &rules::EXT4_FSYNC,
                    &rules::EXT4_FSYNC_ALLOC,
                    &rules::EXT4_FDATASYNC,
                    &rules::EXT4_FSYNC_DIR,
                    &rules::POSIX_OSYNC,
                ]);
                if o.auto_da_alloc {
                    v.extend([
                        &rules::EXT4_AUTO_DA_ALLOC_RENAME,
                        &rules::EXT4_AUTO_DA_ALLOC_CLOSE,
                    ]);
                }
            }
        }
        v
    }
}

impl fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelSpec::Posix => write!(f, "posix"),
            ModelSpec::Ext4(o) if *o == Ext4Opts::default() => write!(f, "ext4"),
            ModelSpec::Ext4(o) => {
                // Only the options that differ from the defaults, so the name stays short and
                // `--model` takes it back.
                let d = Ext4Opts::default();
                let mut opts = Vec::new();
                if o.delalloc != d.delalloc {
                    opts.push("nodelalloc");
                }
                if o.auto_da_alloc != d.auto_da_alloc {
                    opts.push("noauto_da_alloc");
                }
                write!(f, "ext4:{}", opts.join(","))
            }
        }
    }
}

/// What an effect changes when it is durable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum EffectKind {
    /// Metadata written by the op's syscall.
    Meta(Vec<Assign>),
    /// Metadata written when the op's dirty pages are written back (ext4 delalloc: the on-disk
    /// size of an append).
    Writeback(Vec<Assign>),
    /// The content of every block of `chunk` right after the op (index into `Layout::chunks`).
    Block { chunk: usize, value: BlockValue },
}

/// One effect: the op that issued it, what it changes, and a short name used in replay strings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Effect {
    pub op: usize,
    pub kind: EffectKind,
    pub name: String,
    /// Chunk contents this (global) effect sets atomically with its metadata: data journaled
    /// with it (ext4 data=journal, the allocation of nodelalloc ordered mode), stale bytes it
    /// exposes (a data=writeback allocation), or a whole op (seq). (chunk index, value).
    pub blocks: Vec<(usize, BlockValue)>,
}

impl Effect {
    pub fn is_block(&self) -> bool {
        matches!(self.kind, EffectKind::Block { .. })
    }
    pub fn assigns(&self) -> &[Assign] {
        match &self.kind {
            EffectKind::Meta(a) | EffectKind::Writeback(a) => a,
            EffectKind::Block { .. } => &[],
        }
    }
}

/// `from` is durable whenever `to` is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Edge {
    pub from: usize,
    pub to: usize,
    pub rule: &'static Rule,
}

/// Effects that are durable at every crash point at or after `op` (a completed sync).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Floor {
    pub op: usize,
    pub effects: Vec<usize>,
    pub rule: &'static Rule,
}

/// A program under a model: its effects, edges, floors and block layout.
#[derive(Clone, Debug, Serialize)]
pub struct Persistence {
    pub model: ModelSpec,
    pub effects: Vec<Effect>,
    pub edges: Vec<Edge>,
    pub floors: Vec<Floor>,
    pub layout: Layout,
}

/// Builds the effects, edges and floors of `trace` under `model`.
pub fn build(model: &ModelSpec, trace: &Trace, layout: Layout) -> Persistence {
    build_dropping(model, trace, layout, None)
}

/// [`build`] with one rule switched off (its edges and floors are not made): the mutation used
/// by the tests that show every rule changes some litmus outcome.
pub fn build_dropping(
    model: &ModelSpec,
    trace: &Trace,
    layout: Layout,
    drop: Option<&str>,
) -> Persistence {
    let mut b = Builder {
        trace,
        layout,
        drop,
        p_effects: Vec::new(),
        edges: Vec::new(),
        floors: Vec::new(),
    };
    match model {
        ModelSpec::Posix => b.posix(),
        ModelSpec::Ext4(o) => b.ext4(*o),
    }
    Persistence {
        model: model.clone(),
        effects: b.p_effects,
        edges: b.edges,
        floors: b.floors,
        layout: b.layout,
    }
}

pub(crate) struct Builder<'a> {
    pub(crate) trace: &'a Trace,
    pub(crate) drop: Option<&'a str>,
    pub(crate) layout: Layout,
    pub(crate) p_effects: Vec<Effect>,
    pub(crate) edges: Vec<Edge>,
    pub(crate) floors: Vec<Floor>,
}

impl Builder<'_> {
    pub(crate) fn push(&mut self, op: usize, kind: EffectKind, name: String) -> usize {
        self.p_effects.push(Effect {
            op,
            kind,
            name,
            blocks: Vec::new(),
        });
        self.p_effects.len() - 1
    }

    /// Makes global effect `e` set chunk `chunk` (every block of it) to `value`.
    pub(crate) fn assign_blocks(&mut self, e: usize, chunk: usize, value: BlockValue) {
        self.p_effects[e].blocks.push((chunk, value));
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

    /// Block-version effects of op `k`'s dirtied ranges, one per chunk: (effect, chunk, ino).
    pub(crate) fn block_effects(&mut self, k: usize, facts: &OpFacts) -> Vec<(usize, usize, Ino)> {
        let mut chunks = BTreeSet::new();
        for d in &facts.dirtied {
            chunks.extend(
                self.layout
                    .chunks_in(d.ino, d.start, d.end)
                    .map(|c| (c, d.ino)),
            );
        }
        let mut out = Vec::new();
        for (c, ino) in chunks {
            let content = &self.trace.contents[k - 1][&ino];
            let value = BlockValue::of(content, &self.layout.chunks[c]);
            let name = format!("d{k}");
            out.push((
                self.push(k, EffectKind::Block { chunk: c, value }, name),
                c,
                ino,
            ));
        }
        out
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
