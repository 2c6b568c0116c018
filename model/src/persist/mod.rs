//! Models: how each file system turns a program's ops into *effects* (the units that reach disk
//! atomically), *edges* (if b is durable, a is durable) and *floors* (what a completed sync forces
//! to be durable). Every edge and floor names the [`Rule`] that made it.
//!
//! Effects are global (metadata: `m3` is op 3's metadata, `w4` op 4's writeback-time size) or
//! block versions (`d4` on a chunk: the content of the chunk's blocks right after op 4). A block
//! version stands for every block of its chunk at once (see [`crate::layout`]).

pub mod btrfs;
mod ext4;
mod posix;
mod seq;
pub mod xfs;

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
    /// ext4 with the given mount options.
    Ext4(Ext4Opts),
    /// XFS with its defaults (delayed allocation, delayed logging); no options.
    Xfs,
    /// Sequential crash consistency: the state after some prefix of the program, every op
    /// atomic: the strongest reference point.
    Seq,
    /// btrfs with its defaults (COW data, the tree log, noflushoncommit); no options.
    Btrfs,
    /// Another model with writes torn at a finer unit than a 4 KiB block (`atomic=sector`:
    /// 512-byte sectors, each old or new), and optionally garbage in a unit being written when
    /// the power fails (`garbage`). Written `ext4:atomic=sector,garbage`.
    Torn {
        base: Box<ModelSpec>,
        unit: u64,
        garbage: bool,
    },
}

/// ext4's data journaling mode (`data=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum DataMode {
    Ordered,
    Writeback,
    Journal,
}

/// ext4 mount options (and the fast_commit feature).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Ext4Opts {
    pub data: DataMode,
    pub delalloc: bool,
    pub auto_da_alloc: bool,
    pub fast_commit: bool,
}

impl Default for Ext4Opts {
    fn default() -> Self {
        Ext4Opts {
            data: DataMode::Ordered,
            delalloc: true,
            auto_da_alloc: true,
            fast_commit: false,
        }
    }
}

impl Ext4Opts {
    /// Parses a comma-separated option list, e.g. `data=writeback,nodelalloc`.
    pub fn parse(opts: &str) -> Result<Ext4Opts, String> {
        let mut e = Ext4Opts::default();
        let mut delalloc_said = None;
        for o in opts.split(',').filter(|o| !o.is_empty()) {
            match o {
                "data=ordered" => e.data = DataMode::Ordered,
                "data=writeback" => e.data = DataMode::Writeback,
                "data=journal" => e.data = DataMode::Journal,
                "delalloc" => delalloc_said = Some(true),
                "nodelalloc" => delalloc_said = Some(false),
                "auto_da_alloc" => e.auto_da_alloc = true,
                "noauto_da_alloc" => e.auto_da_alloc = false,
                "fast_commit" => e.fast_commit = true,
                "nofast_commit" => e.fast_commit = false,
                _ => {
                    return Err(format!(
                        "unknown ext4 option `{o}` (known: data=ordered|writeback|journal, delalloc|nodelalloc, auto_da_alloc|noauto_da_alloc, fast_commit|nofast_commit)"
                    ))
                }
            }
        }
        // data=journal disables delayed allocation (Documentation/admin-guide/ext4.rst); ext4
        // refuses to mount with both.
        e.delalloc = match (e.data, delalloc_said) {
            (DataMode::Journal, Some(true)) => {
                return Err("ext4 refuses data=journal with delalloc (data=journal disables delayed allocation)".into())
            }
            (DataMode::Journal, _) => false,
            (_, said) => said.unwrap_or(true),
        };
        if e.fast_commit && e.data != DataMode::Ordered {
            return Err("ext4 fast commits are supported only with data=ordered (Documentation/filesystems/ext4/journal.rst)".into());
        }
        Ok(e)
    }
}

impl ModelSpec {
    /// The models commands use by default: POSIX, each file system with its default options,
    /// and `seq`, weakest first.
    pub fn all() -> Vec<ModelSpec> {
        vec![
            ModelSpec::Posix,
            ModelSpec::Ext4(Ext4Opts::default()),
            ModelSpec::Xfs,
            ModelSpec::Btrfs,
            ModelSpec::Seq,
        ]
    }

    /// Every configuration that gives a distinct set of rules: the defaults of [`ModelSpec::all`]
    /// and each other mount-option combination (the litmus corpus runs them all).
    pub fn configurations() -> Vec<ModelSpec> {
        let mut v = ModelSpec::all();
        for o in [
            "ext4:noauto_da_alloc",
            "ext4:nodelalloc",
            "ext4:data=writeback",
            "ext4:data=writeback,nodelalloc",
            "ext4:data=journal",
            "ext4:fast_commit",
            "posix:atomic=sector",
            "ext4:atomic=sector",
            "ext4:atomic=sector,garbage",
        ] {
            v.push(ModelSpec::parse(o).expect("a valid model"));
        }
        v
    }

    /// Parses `posix`, `ext4`, `ext4:data=ordered,delalloc,auto_da_alloc`, `ext4:noauto_da_alloc`...
    pub fn parse(s: &str) -> Result<ModelSpec, String> {
        let (fs, opts) = match s.split_once(':') {
            Some((f, o)) => (f, Some(o)),
            None => (s, None),
        };
        // Options every model takes: the unit of atomic writes and garbage in a torn unit.
        let (mut unit, mut garbage) = (crate::volatile::BLOCK, false);
        let mut own = Vec::new();
        for o in opts.unwrap_or("").split(',').filter(|o| !o.is_empty()) {
            match o {
                "atomic=sector" => unit = 512,
                "atomic=block" => unit = crate::volatile::BLOCK,
                "garbage" => garbage = true,
                o if o.starts_with("atomic=") => {
                    return Err(format!(
                        "unknown atomicity `{o}` (known: atomic=sector, atomic=block)"
                    ))
                }
                o => own.push(o),
            }
        }
        let base = Self::parse_base(fs, (!own.is_empty()).then(|| own.join(",")).as_deref())?;
        Ok(if unit == crate::volatile::BLOCK && !garbage {
            base
        } else {
            ModelSpec::Torn {
                base: Box::new(base),
                unit,
                garbage,
            }
        })
    }

    fn parse_base(fs: &str, opts: Option<&str>) -> Result<ModelSpec, String> {
        match fs {
            "posix" => match opts {
                None | Some("") => Ok(ModelSpec::Posix),
                Some(o) => Err(format!("posix takes no options (got `{o}`)")),
            },
            "ext4" => Ok(ModelSpec::Ext4(Ext4Opts::parse(opts.unwrap_or(""))?)),
            "xfs" => match opts {
                None | Some("") => Ok(ModelSpec::Xfs),
                Some(o) => Err(format!("xfs takes no options (got `{o}`)")),
            },
            "seq" => match opts {
                None | Some("") => Ok(ModelSpec::Seq),
                Some(o) => Err(format!("seq takes no options (got `{o}`)")),
            },
            "btrfs" => match opts {
                None | Some("") => Ok(ModelSpec::Btrfs),
                Some(o) => Err(format!("btrfs takes no options (got `{o}`)")),
            },
            _ => Err(format!(
                "unknown model `{fs}` (known: posix, ext4, xfs, seq, btrfs)"
            )),
        }
    }

    /// The rule that lets an effect be lost at a crash, when no completed sync forces it and no
    /// durable effect requires it (`has_preds`: the effect itself requires others). Used to
    /// explain crash states.
    pub fn why_lost(&self, eff: &Effect, has_preds: bool) -> &'static Rule {
        match (self, &eff.kind) {
            (ModelSpec::Torn { base, .. }, _) => base.why_lost(eff, has_preds),
            (ModelSpec::Posix, _) => &rules::POSIX_UNORDERED,
            (ModelSpec::Seq, _) => &rules::SEQ_PREFIX,
            (ModelSpec::Ext4(_), EffectKind::Meta(_)) => &rules::EXT4_JOURNAL_PREFIX,
            (ModelSpec::Ext4(_), EffectKind::Block { .. }) if !has_preds => &rules::EXT4_OVERWRITE,
            (ModelSpec::Ext4(o), _) if !o.delalloc && o.data == DataMode::Writeback => {
                &rules::EXT4_WRITEBACK_STALE
            }
            (ModelSpec::Ext4(o), _) if !o.delalloc => &rules::EXT4_NODELALLOC_ORDERED,
            (ModelSpec::Ext4(_), _) => &rules::EXT4_DELALLOC,
            (ModelSpec::Xfs, EffectKind::Meta(_)) => &xfs::XFS_LOG_PREFIX,
            (ModelSpec::Xfs, EffectKind::Writeback(_)) => &xfs::XFS_SIZE_AT_COMPLETION,
            (ModelSpec::Xfs, EffectKind::Block { .. }) if !has_preds => &xfs::XFS_OVERWRITE,
            (ModelSpec::Xfs, _) => &xfs::XFS_DELALLOC,
            (ModelSpec::Btrfs, _) => btrfs::why_lost(eff, has_preds),
        }
    }

    /// The unit of atomic writes, in bytes.
    pub fn unit(&self) -> u64 {
        match self {
            ModelSpec::Torn { unit, .. } => *unit,
            _ => crate::volatile::BLOCK,
        }
    }

    /// Whether the model treats the block holding a write's last byte apart from the rest of
    /// the write (xfs: the on-disk size follows that block's data), so the layout must cut there.
    pub fn splits_last_block(&self) -> bool {
        match self {
            ModelSpec::Xfs => true,
            ModelSpec::Torn { base, .. } => base.splits_last_block(),
            _ => false,
        }
    }

    /// Whether a unit being written when the power fails may hold garbage.
    pub fn garbage(&self) -> bool {
        matches!(self, ModelSpec::Torn { garbage: true, .. })
    }

    /// The rules this model uses.
    pub fn rules(&self) -> Vec<&'static Rule> {
        let mut v = vec![
            &rules::SETUP_DURABLE,
            &rules::OP_ATOMIC,
            &rules::MS_ASYNC_NOOP,
        ];
        if *self != ModelSpec::Seq {
            v.push(&rules::SYNC_ALL); // seq: every sync persists its prefix (seq.prefix)
        }
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
                    &rules::EXT4_OVERWRITE,
                    &rules::EXT4_FSYNC,
                    &rules::EXT4_FDATASYNC,
                    &rules::EXT4_FSYNC_DIR,
                    &rules::POSIX_OSYNC,
                ]);
                match (o.data, o.delalloc) {
                    (DataMode::Journal, _) => {
                        v.extend([&rules::EXT4_DATA_JOURNAL, &rules::EXT4_PAGE_HANDLES])
                    }
                    (DataMode::Ordered, true) => {
                        v.extend([&rules::EXT4_DELALLOC, &rules::EXT4_ORDERED])
                    }
                    (DataMode::Writeback, true) => {
                        v.extend([&rules::EXT4_DELALLOC, &rules::EXT4_WRITEBACK_DELALLOC])
                    }
                    (DataMode::Ordered, false) => {
                        v.extend([&rules::EXT4_NODELALLOC_ORDERED, &rules::EXT4_PAGE_HANDLES])
                    }
                    (DataMode::Writeback, false) => {
                        v.extend([&rules::EXT4_WRITEBACK_STALE, &rules::EXT4_PAGE_HANDLES])
                    }
                }
                if o.delalloc {
                    v.push(&rules::EXT4_FSYNC_ALLOC);
                }
                if o.auto_da_alloc && o.delalloc {
                    v.extend([
                        &rules::EXT4_AUTO_DA_ALLOC_RENAME,
                        &rules::EXT4_AUTO_DA_ALLOC_CLOSE,
                    ]);
                }
                if o.fast_commit {
                    v.push(&rules::EXT4_FAST_COMMIT);
                }
            }
            ModelSpec::Xfs => {
                v.push(&rules::POSIX_OSYNC);
                v.extend(xfs::RULES);
            }
            ModelSpec::Seq => v.push(&rules::SEQ_PREFIX),
            ModelSpec::Btrfs => {
                v.push(&rules::POSIX_OSYNC);
                v.extend(btrfs::RULES);
            }
            ModelSpec::Torn {
                base,
                unit,
                garbage,
            } => {
                let mut v = base.rules();
                if *unit < crate::volatile::BLOCK {
                    v.push(&rules::TORN_SECTOR);
                }
                if *garbage {
                    v.push(&rules::TORN_GARBAGE);
                }
                return v;
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
                // Only the options that differ from the defaults (in a fixed order), so the name
                // stays short and `--model` takes it back.
                let mut opts = Vec::new();
                match o.data {
                    DataMode::Ordered => {}
                    DataMode::Writeback => opts.push("data=writeback"),
                    DataMode::Journal => opts.push("data=journal"),
                }
                if !o.delalloc && o.data != DataMode::Journal {
                    opts.push("nodelalloc");
                }
                if !o.auto_da_alloc {
                    opts.push("noauto_da_alloc");
                }
                if o.fast_commit {
                    opts.push("fast_commit");
                }
                write!(f, "ext4:{}", opts.join(","))
            }
            ModelSpec::Xfs => write!(f, "xfs"),
            ModelSpec::Seq => write!(f, "seq"),
            ModelSpec::Btrfs => write!(f, "btrfs"),
            ModelSpec::Torn {
                base,
                unit,
                garbage,
            } => {
                let mut opts = Vec::new();
                if *unit < crate::volatile::BLOCK {
                    opts.push("atomic=sector");
                }
                if *garbage {
                    opts.push("garbage");
                }
                let b = base.to_string();
                write!(
                    f,
                    "{b}{}{}",
                    if b.contains(':') { "," } else { ":" },
                    opts.join(",")
                )
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

impl Persistence {
    fn with_model(mut self, model: &ModelSpec) -> Self {
        self.model = model.clone();
        self
    }
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
        ModelSpec::Xfs => b.xfs(),
        ModelSpec::Seq => b.seq(),
        ModelSpec::Btrfs => b.btrfs(),
        ModelSpec::Torn { base, .. } => {
            return build_dropping(base, trace, b.layout, drop).with_model(model)
        }
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
        BlockValue::of(&self.trace.contents[k - 1][&chunk.ino], chunk)
    }

    /// The content of chunk `c` just before op `k` (what the page held when it was faulted in).
    pub(crate) fn value_before(&self, k: usize, c: usize) -> BlockValue {
        let chunk = &self.layout.chunks[c];
        for j in (1..k).rev() {
            if let Some(content) = self.trace.contents[j - 1].get(&chunk.ino) {
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
    pub(crate) fn block_version(&mut self, k: usize, c: usize) -> usize {
        let value = self.value_after(k, c);
        self.push(k, EffectKind::Block { chunk: c, value }, format!("d{k}"))
    }

    /// Block-version effects of op `k`'s dirtied ranges, one per chunk: (effect, chunk, ino).
    pub(crate) fn block_effects(&mut self, k: usize, facts: &OpFacts) -> Vec<(usize, usize, Ino)> {
        self.dirtied_chunks(facts)
            .into_iter()
            .map(|(c, ino)| (self.block_version(k, c), c, ino))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every model's name is what `--model` takes back: output names models in replay commands.
    #[test]
    fn model_names_round_trip() {
        let mut models = ModelSpec::configurations();
        for s in [
            "ext4:data=journal,noauto_da_alloc,atomic=sector",
            "xfs:garbage",
            "btrfs:atomic=sector,garbage",
            "seq:atomic=sector",
        ] {
            models.push(ModelSpec::parse(s).expect(s));
        }
        for m in models {
            assert_eq!(ModelSpec::parse(&m.to_string()), Ok(m.clone()), "{m}");
        }
    }

    #[test]
    fn bad_model_names_say_why() {
        for (s, want) in [
            ("zfs", "unknown model `zfs`"),
            (
                "ext4:data=journal,delalloc",
                "refuses data=journal with delalloc",
            ),
            ("ext4:data=writeback,fast_commit", "only with data=ordered"),
            ("posix:atomic=page", "unknown atomicity"),
            ("posix:nodelalloc", "posix takes no options"),
        ] {
            let e = ModelSpec::parse(s).expect_err(s);
            assert!(e.contains(want), "{s}: {e}");
        }
    }
}
