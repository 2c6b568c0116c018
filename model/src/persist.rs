//! Models: how each file system turns a program's ops into *effects* (the units that reach disk
//! atomically), *edges* (if b is durable, a is durable) and *floors* (what a completed sync forces
//! to be durable). Every edge and floor names the [`Rule`] that made it.
//!
//! Effects are global (metadata: `m3` is op 3's metadata, `w4` op 4's writeback-time size) or
//! block versions (`d4` on a chunk: the content of the chunk's blocks right after op 4). A block
//! version stands for every block of its chunk at once (see [`crate::layout`]).

use crate::layout::{BlockValue, Chunk, Layout};
use crate::rules::{self, Rule};
use crate::volatile::{Assign, Ino, Kind, OpFacts, SyncReq, Trace};
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

struct Builder<'a> {
    trace: &'a Trace,
    drop: Option<&'a str>,
    layout: Layout,
    p_effects: Vec<Effect>,
    edges: Vec<Edge>,
    floors: Vec<Floor>,
}

impl Builder<'_> {
    fn push(&mut self, op: usize, kind: EffectKind, name: String) -> usize {
        self.p_effects.push(Effect { op, kind, name });
        self.p_effects.len() - 1
    }

    fn enabled(&self, rule: &Rule) -> bool {
        self.drop != Some(rule.id)
    }

    fn floor(&mut self, op: usize, effects: Vec<usize>, rule: &'static Rule) {
        if self.enabled(rule) {
            self.floors.push(Floor { op, effects, rule });
        }
    }

    fn edge(&mut self, from: usize, to: usize, rule: &'static Rule) {
        if from != to && self.enabled(rule) {
            self.edges.push(Edge { from, to, rule });
        }
    }

    /// Block-version effects of op `k`'s dirtied ranges, one per chunk: (effect, chunk, ino).
    fn block_effects(&mut self, k: usize, facts: &OpFacts) -> Vec<(usize, usize, Ino)> {
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

    fn block_effects_of(&self, ino: Ino, upto: usize, range: Option<(u64, u64)>) -> Vec<usize> {
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

    fn all_upto(&self, upto: usize) -> Vec<usize> {
        (0..self.p_effects.len())
            .filter(|&e| self.p_effects[e].op <= upto)
            .collect()
    }

    // ------------------------------------------------------------------ posix

    fn posix(&mut self) {
        // Each op's inode metadata (creation, size) is one effect per inode; its directory-entry
        // changes are one effect (a rename is atomic). Nothing else is ordered (posix.unordered).
        let mut init_of: std::collections::BTreeMap<Ino, usize> = Default::default();
        for (i, facts) in self.trace.ops.iter().enumerate() {
            let k = i + 1;
            let mut per_inode: std::collections::BTreeMap<Ino, Vec<Assign>> = Default::default();
            let mut entries = Vec::new();
            for a in &facts.assigns {
                match a {
                    Assign::Entry { .. } => entries.push(a.clone()),
                    _ => per_inode.entry(a.inode()).or_default().push(a.clone()),
                }
            }
            if let Some((ino, size)) = facts.extends {
                per_inode.entry(ino).or_default().push(Assign::Size {
                    ino,
                    size,
                    holes_from: None,
                });
            }
            for (ino, assigns) in per_inode {
                let is_init = assigns.iter().any(|a| matches!(a, Assign::Init { .. }));
                let e = self.push(k, EffectKind::Meta(assigns), format!("m{k}.{ino}"));
                if is_init {
                    init_of.insert(ino, e);
                }
            }
            if !entries.is_empty() {
                let e = self.push(k, EffectKind::Meta(entries.clone()), format!("m{k}"));
                for a in &entries {
                    if let Assign::Entry { dir, target, .. } = a {
                        for ino in [Some(*dir), *target].into_iter().flatten() {
                            if let Some(&init) = init_of.get(&ino) {
                                self.edge(init, e, &rules::INODE_BEFORE_NAME);
                            }
                        }
                    }
                }
            }
            self.block_effects(k, facts);
            let floor = match &facts.sync {
                None => continue,
                Some(SyncReq::All) => (self.all_upto(k), &rules::SYNC_ALL),
                Some(SyncReq::File {
                    ino,
                    datasync,
                    range,
                }) => {
                    let mut v = self.inode_meta_of(*ino, k);
                    v.extend(self.block_effects_of(*ino, k, *range));
                    let rule = if range.is_some() && facts.dirtied.iter().any(|d| d.ino == *ino) {
                        &rules::POSIX_OSYNC
                    } else if *datasync {
                        &rules::POSIX_FDATASYNC
                    } else {
                        &rules::POSIX_FSYNC_FILE
                    };
                    (v, rule)
                }
                Some(SyncReq::Msync { ino, start, end }) => {
                    let mut v = self.inode_meta_of(*ino, k);
                    v.extend(self.block_effects_of(*ino, k, Some((*start, *end))));
                    (v, &rules::POSIX_MSYNC)
                }
                Some(SyncReq::Dir { ino, .. }) => {
                    let d = *ino;
                    let v = (0..self.p_effects.len())
                        .filter(|&e| {
                            let eff = &self.p_effects[e];
                            eff.op <= k
                                && eff.assigns().iter().any(|a| match a {
                                    Assign::Entry { dir, .. } => *dir == d,
                                    Assign::Init { ino, .. } => *ino == d,
                                    _ => false,
                                })
                        })
                        .collect();
                    (v, &rules::POSIX_FSYNC_DIR)
                }
            };
            self.floor(k, floor.0, floor.1);
        }
    }

    /// posix: the inode-metadata effects (creation, size) of `ino` issued up to op `upto`.
    fn inode_meta_of(&self, ino: Ino, upto: usize) -> Vec<usize> {
        (0..self.p_effects.len())
            .filter(|&e| {
                let eff = &self.p_effects[e];
                eff.op <= upto
                    && matches!(eff.kind, EffectKind::Meta(_))
                    && eff
                        .assigns()
                        .iter()
                        .any(|a| !matches!(a, Assign::Entry { .. }) && a.inode() == ino)
            })
            .collect()
    }

    // ------------------------------------------------------------------ ext4

    fn ext4(&mut self, opts: Ext4Opts) {
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
