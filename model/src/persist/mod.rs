//! Models: how each file system turns a program's ops into *effects* (the units that reach disk
//! atomically), *edges* (if b is durable, a is durable) and *floors* (what a completed sync forces
//! to be durable). Every effect, edge and floor names the [`Rule`] that made it.
//!
//! Effects are global (metadata: `m3` is op 3's metadata, `w4` op 4's writeback-time size) or
//! block versions (`d4` on a chunk: the content of the chunk's blocks right after op 4). A block
//! version stands for every block of its chunk at once (see [`crate::layout`]).
//!
//! Each file system is one [`FsModel`] in its own module, with its rules beside its builder, and
//! one line in [`FILE_SYSTEMS`]; [`ModelSpec`] is the model as a value (a file system and its
//! options) and dispatches to it. `atomic=sector` and `garbage` wrap any of them ([`torn`]).

pub mod btrfs;
mod builder;
pub mod ext4;
pub mod posix;
pub mod seq;
pub mod torn;
pub mod xfs;

pub use builder::Builder;
pub use ext4::{DataMode, Ext4Opts};

use crate::layout::{BlockValue, Layout};
use crate::rules::Rule;
use crate::volatile::{Assign, Trace};
use serde::Serialize;
use std::fmt;

/// One rule a file system's builder uses, declared once, with the configurations that use it:
/// a configuration's rule list is computed from these (and a test holds it to what the builder
/// actually puts on effects, edges and floors).
#[derive(Clone, Copy)]
pub struct RuleUse {
    pub rule: &'static Rule,
    /// Whether the configuration (a model of this file system) uses the rule.
    pub when: fn(&ModelSpec) -> bool,
}

impl RuleUse {
    /// A rule the configurations `when` accepts use.
    pub const fn new(rule: &'static Rule, when: fn(&ModelSpec) -> bool) -> Self {
        RuleUse { rule, when }
    }

    /// A rule every configuration of the file system uses.
    pub const fn always(rule: &'static Rule) -> Self {
        RuleUse::new(rule, |_| true)
    }
}

/// A file system (or a reference model such as `seq`): its name and options, its rules and its
/// builder. Adding a file system is a module implementing this, a [`ModelSpec`] variant and a line
/// in [`FILE_SYSTEMS`].
pub trait FsModel: Sync {
    /// The name `--model` takes, before any `:`.
    fn name(&self) -> &'static str;
    /// The model with the file system's default options.
    fn default_model(&self) -> ModelSpec;
    /// The model its own options describe (comma-separated; the options every model takes,
    /// `atomic=` and `garbage`, are already taken out).
    fn parse(&self, opts: Option<&str>) -> Result<ModelSpec, String> {
        match opts {
            None | Some("") => Ok(self.default_model()),
            Some(o) => Err(format!("{} takes no options (got `{o}`)", self.name())),
        }
    }
    /// The options a model of this file system prints after `name:`: only those that differ from
    /// the defaults, in a fixed order, so the name stays short and `--model` takes it back.
    fn options(&self, _model: &ModelSpec) -> Vec<&'static str> {
        Vec::new()
    }
    /// Other option combinations with a distinct set of rules (the litmus corpus runs them all).
    fn variants(&self) -> Vec<ModelSpec> {
        Vec::new()
    }
    /// Whether this is a reference point rather than a file system (`seq`, the strongest): the
    /// default models list it after the file systems.
    fn reference(&self) -> bool {
        false
    }
    /// Every rule the builder uses, each once, in the order `unplug models` lists them.
    fn rules(&self) -> &'static [RuleUse];
    /// The file system's own rules that add no edge or floor to switch off (what they say is an
    /// absence of ordering, or why two configurations build alike), each with why and what shows
    /// it instead: the rule tests and docs/SEMANTICS.md give these reasons.
    fn descriptive(&self) -> &'static [(&'static Rule, &'static str)] {
        &[]
    }
    /// Whether the model treats the block holding a write's last byte apart from the rest of
    /// the write, so the layout must cut there.
    fn splits_last_block(&self) -> bool {
        false
    }
    /// Whether the model treats each page of a write of several pages apart (a journal handle
    /// per page that carries the page's data: ext4 data=journal), so the layout must cut at
    /// every page of such a write. `model` is this file system's spec.
    fn splits_pages(&self, model: &ModelSpec) -> bool {
        let _ = model;
        false
    }
    /// Builds the effects, edges and floors of the builder's trace under `model`.
    fn build(&self, model: &ModelSpec, b: &mut Builder<'_>);
}

/// The registry: every file system, in the order `--model` errors list them.
pub const FILE_SYSTEMS: &[&dyn FsModel] = &[
    &posix::Posix,
    &ext4::Ext4,
    &xfs::Xfs,
    &seq::Seq,
    &btrfs::Btrfs,
];

/// Every rule of every model, each once: the registry's, then the torn wrapper's.
pub fn all_rules() -> Vec<&'static Rule> {
    let mut v: Vec<&'static Rule> = Vec::new();
    let uses = FILE_SYSTEMS
        .iter()
        .flat_map(|fs| fs.rules().iter().map(|u| u.rule));
    for r in uses.chain(torn::RULES.iter()) {
        if !v.iter().any(|x| x.id == r.id) {
            v.push(r);
        }
    }
    v
}

/// Why switching rule `id` off changes nothing, if it is descriptive (see
/// [`FsModel::descriptive`]).
pub fn descriptive(id: &str) -> Option<&'static str> {
    let own = FILE_SYSTEMS.iter().flat_map(|fs| fs.descriptive().iter());
    crate::rules::DESCRIPTIVE
        .iter()
        .chain(own)
        .chain(torn::DESCRIPTIVE.iter())
        .find(|(r, _)| r.id == id)
        .map(|(_, why)| *why)
}

/// Looks a rule up by id.
pub fn rule(id: &str) -> Option<&'static Rule> {
    all_rules().into_iter().find(|r| r.id == id)
}

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

impl ModelSpec {
    /// The file system this model is of (a torn model's base's).
    pub fn fs(&self) -> &'static dyn FsModel {
        match self {
            ModelSpec::Posix => &posix::Posix,
            ModelSpec::Ext4(_) => &ext4::Ext4,
            ModelSpec::Xfs => &xfs::Xfs,
            ModelSpec::Seq => &seq::Seq,
            ModelSpec::Btrfs => &btrfs::Btrfs,
            ModelSpec::Torn { base, .. } => base.fs(),
        }
    }

    /// The models commands use by default: POSIX, each file system with its default options,
    /// and `seq`, weakest first.
    pub fn all() -> Vec<ModelSpec> {
        let (fs, reference): (Vec<&dyn FsModel>, Vec<&dyn FsModel>) =
            FILE_SYSTEMS.iter().partition(|f| !f.reference());
        fs.iter()
            .chain(reference.iter())
            .map(|f| f.default_model())
            .collect()
    }

    /// Every configuration that gives a distinct set of rules: the defaults of [`ModelSpec::all`],
    /// each other mount-option combination, and the torn ones (the litmus corpus runs them all).
    pub fn configurations() -> Vec<ModelSpec> {
        let mut v = ModelSpec::all();
        v.extend(FILE_SYSTEMS.iter().flat_map(|f| f.variants()));
        v.extend(torn::configurations());
        v
    }

    /// Parses `posix`, `ext4`, `ext4:data=ordered,delalloc,auto_da_alloc`, `ext4:noauto_da_alloc`...
    pub fn parse(s: &str) -> Result<ModelSpec, String> {
        let (name, opts) = match s.split_once(':') {
            Some((f, o)) => (f, Some(o)),
            None => (s, None),
        };
        // Every error is collected, so that one run reports them all.
        let (torn, own, mut errs) = torn::Torn::split(opts.unwrap_or(""));
        let fs = FILE_SYSTEMS.iter().find(|f| f.name() == name);
        if fs.is_none() {
            let known: Vec<&str> = FILE_SYSTEMS.iter().map(|f| f.name()).collect();
            errs.insert(
                0,
                format!("unknown model `{name}` (known: {})", known.join(", ")),
            );
        }
        let Some(fs) = fs else {
            return Err(errs.join("\n"));
        };
        // seq keeps every op whole by definition (seq.prefix): a torn unit or garbage in a unit
        // being written is exactly what it excludes, so the options would mean nothing.
        if fs.reference() && torn.tears() {
            errs.push(format!(
                "{name} keeps every op whole, so atomic=sector and garbage mean nothing there (hint: tear the writes of a file system model instead, e.g. `ext4:atomic=sector,garbage`)"
            ));
        }
        match fs.parse((!own.is_empty()).then(|| own.join(",")).as_deref()) {
            Ok(base) if errs.is_empty() => Ok(torn.wrap(base)),
            Ok(_) => Err(errs.join("\n")),
            Err(e) => {
                errs.push(e);
                Err(errs.join("\n"))
            }
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
        self.fs().splits_last_block()
    }

    /// Whether the layout must cut at every page of a write of several pages (see
    /// [`FsModel::splits_pages`]).
    pub fn splits_pages(&self) -> bool {
        match self {
            ModelSpec::Torn { base, .. } => base.splits_pages(),
            m => m.fs().splits_pages(m),
        }
    }

    /// The layout of `trace`'s files under this model: maximal runs of interchangeable blocks,
    /// cut where the model treats blocks apart.
    pub fn layout(&self, trace: &crate::volatile::Trace) -> crate::layout::Layout {
        crate::layout::Layout::for_model(
            trace,
            self.unit(),
            self.splits_last_block(),
            self.splits_pages(),
        )
    }

    /// Whether a unit being written when the power fails may hold garbage.
    pub fn garbage(&self) -> bool {
        matches!(self, ModelSpec::Torn { garbage: true, .. })
    }

    /// The rules this model uses: its file system's declared rules that apply to its options,
    /// then the torn wrapper's.
    pub fn rules(&self) -> Vec<&'static Rule> {
        match self {
            ModelSpec::Torn {
                base,
                unit,
                garbage,
            } => {
                let mut v = base.rules();
                v.extend(torn::Torn::new(*unit, *garbage).rules());
                v
            }
            _ => self
                .fs()
                .rules()
                .iter()
                .filter(|u| (u.when)(self))
                .map(|u| u.rule)
                .collect(),
        }
    }
}

impl fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelSpec::Torn {
                base,
                unit,
                garbage,
            } => torn::Torn::new(*unit, *garbage).fmt_wrapping(base, f),
            _ => {
                let fs = self.fs();
                let opts = fs.options(self);
                if opts.is_empty() {
                    f.write_str(fs.name())
                } else {
                    write!(f, "{}:{}", fs.name(), opts.join(","))
                }
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
    /// The rule that made the effect: the one that lets it be lost at a crash when no completed
    /// sync forces it and no durable effect requires it (explanations say so).
    pub rule: &'static Rule,
    /// Other rules that put part of the effect's content in it (data journaled with metadata,
    /// a log's new ancestors): the rule lists are checked against these too.
    pub carries: Vec<&'static Rule>,
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
    /// Effects whose intermediate steps were not made because there would be too many (posix:
    /// an extending write across more than [`posix::MAX_SIZE_STEPS`] pages has only its final
    /// size). The states are exact where such an effect is durable (its steps would be too) or
    /// not yet issued; elsewhere the explorer marks the crash point unproven (`bound_hit`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub elided: Vec<usize>,
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
    if let ModelSpec::Torn { base, .. } = model {
        // The torn wrapper changes the layout's unit and the explorer's candidates, not the
        // effects: the base model builds them.
        return build_dropping(base, trace, layout, drop).with_model(model);
    }
    let mut b = Builder {
        trace,
        layout,
        drop,
        p_effects: Vec::new(),
        edges: Vec::new(),
        floors: Vec::new(),
        elided: Vec::new(),
    };
    model.fs().build(model, &mut b);
    Persistence {
        model: model.clone(),
        effects: b.p_effects,
        edges: b.edges,
        floors: b.floors,
        layout: b.layout,
        elided: b.elided,
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
            ("seq:atomic=sector", "seq keeps every op whole"),
            ("seq:garbage", "seq keeps every op whole"),
            (
                "ext4:data=writeback,data=journal",
                "`data=writeback` and `data=journal` contradict each other",
            ),
            (
                "ext4:delalloc,nodelalloc",
                "`delalloc` and `nodelalloc` contradict",
            ),
            (
                "xfs:atomic=sector,atomic=block",
                "`atomic=sector` and `atomic=block` contradict",
            ),
        ] {
            let e = ModelSpec::parse(s).expect_err(s);
            assert!(e.contains(want), "{s}: {e}");
        }
        // Repeating an option is not a contradiction.
        assert!(ModelSpec::parse("ext4:nodelalloc,nodelalloc").is_ok());
    }

    /// Every error of one model name is reported, not just the first.
    #[test]
    fn every_error_of_a_model_name_is_reported() {
        let e = ModelSpec::parse("seq:atomic=sector,atomic=page,foo").expect_err("bad");
        for want in [
            "unknown atomicity `atomic=page`",
            "seq keeps every op whole",
            "seq takes no options",
        ] {
            assert!(e.contains(want), "{want}: {e}");
        }
        let e = ModelSpec::parse("ext4:data=writeback,data=journal,bogus").expect_err("bad");
        assert!(
            e.contains("contradict") && e.contains("unknown ext4 option `bogus`"),
            "{e}"
        );
        let e = ModelSpec::parse("zfs:atomic=page").expect_err("bad");
        assert!(
            e.contains("unknown model") && e.contains("unknown atomicity"),
            "{e}"
        );
    }
}
