//! The strength order of the models, checked on a program.
//!
//! `seq` (every op atomic, a prefix of the program survives) is the strongest model; each file
//! system model (ext4 in every configuration, xfs, btrfs) allows at least the crash states `seq`
//! allows, and `posix` (the weakest reading of POSIX) allows at least the crash states of every
//! file system model. Finer torn writes (`atomic=sector`) and garbage in torn units only add
//! states. [`pairs`] lists the (stronger, weaker) pairs this claims; [`violations`] checks one
//! pair on one program: every crash state of the stronger model at each crash point must be a
//! crash state of the weaker one at that crash point.
//!
//! Crash-state *classes* of two models are not comparable as they stand (a class with a
//! [`crate::Segment::Mixed`] chunk depends on the model's layout cuts), so the check explores
//! both models with the per-block layout ([`Analysis::set_per_block`]): every unit is its own chunk,
//! every class is one concrete state, and content is canonical ([`crate::state::exact_segments`]),
//! so equal bytes compare equal whatever the model's unit or cuts. That enumerates concrete
//! states: use it on small programs (files of a few blocks). A crash point where either model hit
//! a limit is reported as unproven, never as a violation.
//!
//! Where a model allows states its weaker partner lacks on purpose, a named [`Exception`] in
//! [`EXCEPTIONS`] says which pair, programs and states it covers and why (see `docs/ORDER.md`);
//! such a state is counted under the exception's name, not reported as a violation.
//!
//! A property test in a user's crate, with the strategies of [`unplug_model::strategy`]:
//!
//! ```
//! use proptest::prelude::*;
//! use unplug_explorer::{order, Analysis};
//! use unplug_model::ModelSpec;
//!
//! proptest!(ProptestConfig::with_cases(4), |(p in unplug_model::strategy::program(1..4))| {
//!     let analysis = Analysis::new(&p).unwrap();
//!     // ext4 (defaults) allows every crash state seq allows.
//!     let v = order::violations(&analysis, &ModelSpec::Seq, &ModelSpec::parse("ext4").unwrap());
//!     prop_assert!(v.is_empty(), "{}", v[0]);
//! });
//! ```

use crate::state::{CrashState, Node, Segment};
use crate::Analysis;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use unplug_model::{ModelSpec, OpKind, Origin, Program};

/// A crash state the stronger model allows and the weaker one does not.
#[derive(Clone, Debug, Serialize)]
pub struct OrderViolation {
    pub weaker: String,
    pub stronger: String,
    /// The crash point.
    pub at: usize,
    /// The state of the stronger model that the weaker does not allow.
    pub state: CrashState,
}

impl fmt::Display for OrderViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "crash point {}: {} allows a state {} does not: {}",
            self.at, self.stronger, self.weaker, self.state
        )
    }
}

/// A documented case where a model is knowingly not included in a weaker one.
#[derive(Clone, Copy, Debug)]
pub struct Exception {
    /// A short name, as `docs/ORDER.md` lists it.
    pub name: &'static str,
    /// The stronger model (as `--model` spells it; `ModelSpec`'s `Display`).
    pub stronger: &'static str,
    /// The weaker model.
    pub weaker: &'static str,
    /// Whether the exception covers a program (the pair is still checked on it, but a state
    /// [`Exception::state`] accepts is not a violation).
    pub program: fn(&Program) -> bool,
    /// Whether the exception covers a state of the stronger model the weaker one lacks.
    pub state: fn(&CrashState) -> bool,
    /// Why the stronger model allows states the weaker one does not.
    pub reason: &'static str,
}

impl Exception {
    /// Whether the exception covers this pair of models on this program.
    pub fn covers(&self, stronger: &ModelSpec, weaker: &ModelSpec, program: &Program) -> bool {
        self.stronger == stronger.to_string()
            && self.weaker == weaker.to_string()
            && (self.program)(program)
    }
}

/// Whether a program uses an op the predicate accepts (setup ops included).
pub fn uses(program: &Program, pred: fn(&OpKind) -> bool) -> bool {
    program
        .setup
        .iter()
        .chain(&program.ops)
        .any(|o| pred(&o.kind))
}

/// Whether some file of a state holds stale bytes (another file's old blocks).
pub fn has_stale(state: &CrashState) -> bool {
    state.tree.values().any(|n| match n {
        Node::File { content, .. } => content.iter().any(|s| match s {
            Segment::Exact(e) => e.origin == Origin::Stale,
            Segment::Mixed { values, .. } => values
                .iter()
                .any(|v| v.0.iter().any(|(_, _, o)| *o == Origin::Stale)),
        }),
        _ => false,
    })
}

fn moves_a_name(k: &OpKind) -> bool {
    matches!(k, OpKind::Rename { .. } | OpKind::Link { .. })
}

fn opens_tmpfile(k: &OpKind) -> bool {
    matches!(k, OpKind::Open { flags, .. } if flags.tmpfile)
}

/// The documented exceptions to the strength order (see `docs/ORDER.md`).
pub const EXCEPTIONS: &[Exception] = &[
    Exception {
        name: "writeback-stale-data",
        stronger: "ext4:data=writeback,nodelalloc",
        weaker: "posix",
        program: |_| true,
        state: has_stale,
        reason: "data=writeback without delalloc commits a write's block allocation without \
                 ordering its data first, so a crash can expose another file's old bytes \
                 (ext4.writeback-stale, Documentation/admin-guide/ext4.rst). posix models \
                 which of the program's own writes persist; it has no stale bytes. A program \
                 that holds under posix is portable except to file systems that expose stale \
                 data, which this mount option does by documented design.",
    },
    Exception {
        name: "btrfs-unnamed-fsync",
        stronger: "btrfs",
        weaker: "posix",
        program: |p| uses(p, opens_tmpfile),
        state: |_| true,
        reason: "The btrfs model's fsync of a file with no name (O_TMPFILE before linkat) logs \
                 nothing (i_nlink == 0) and a fast fsync only waits for writeback, so a later \
                 linkat can commit the name with the inode's older size and extents: the fsync \
                 does not give POSIX's file integrity completion (P1) to the file it is about to \
                 name. [U], as litmus/tmpfile-link.up notes; a claim of the btrfs model, not \
                 of POSIX.",
    },
    Exception {
        name: "btrfs-half-rename",
        stronger: "btrfs",
        weaker: "posix",
        program: |p| uses(p, moves_a_name) && uses(p, OpKind::is_sync),
        state: |_| true,
        reason: "The btrfs model logs directories one at a time: an fsync of a directory \
                 logs the entries created, renamed or removed in it and not the other \
                 directory of a rename or link (btrfs.fsync-dir-log), and an fsync of a file \
                 after a rename or link may log its old parent in full, which the model makes \
                 optional as a whole ([U] over-approximation, btrfs.log-old-parents). A log \
                 replay can then show half of a cross-directory rename: both names, or \
                 neither. posix keeps rename(2) atomic; this is a documented claim of the \
                 btrfs model, found by `unplug workloads --ops 2` (every such state of seq-2).",
    },
];

/// The exception that covers a violating state of a pair on a program, if any.
pub fn exception(
    stronger: &ModelSpec,
    weaker: &ModelSpec,
    program: &Program,
    state: &CrashState,
) -> Option<&'static Exception> {
    EXCEPTIONS
        .iter()
        .find(|e| e.covers(stronger, weaker, program) && (e.state)(state))
}

/// The model a configuration refines (its base without torn writes), its unit and garbage.
fn parts(m: &ModelSpec) -> (&ModelSpec, u64, bool) {
    match m {
        ModelSpec::Torn { base, .. } => (base, m.unit(), m.garbage()),
        m => (m, m.unit(), false),
    }
}

fn is_fs(m: &ModelSpec) -> bool {
    !matches!(m, ModelSpec::Posix | ModelSpec::Seq)
}

/// Pairs (stronger, weaker) checked among `models`:
/// - `seq` -> each file-system model (every ext4 configuration, xfs, btrfs, and their torn
///   variants);
/// - each file-system model -> `posix` with the same unit and garbage (`ext4:atomic=sector` ->
///   `posix:atomic=sector`; a model with garbage has no posix partner unless one is given);
/// - each model -> the same model with a finer unit or garbage added (`ext4` ->
///   `ext4:atomic=sector` -> `ext4:atomic=sector,garbage`, `posix` -> `posix:atomic=sector`):
///   torn writes only add states.
pub fn pairs(models: &[ModelSpec]) -> Vec<(ModelSpec, ModelSpec)> {
    let mut out = Vec::new();
    for s in models {
        for w in models {
            if s == w {
                continue;
            }
            let (sb, su, sg) = parts(s);
            let (wb, wu, wg) = parts(w);
            let claimed = match (sb, wb) {
                (ModelSpec::Seq, b) if is_fs(b) => true,
                (b, ModelSpec::Posix) if is_fs(b) => su == wu && sg == wg,
                (a, b) if a == b => su >= wu && su % wu == 0 && (!sg || wg),
                _ => false,
            };
            if claimed {
                out.push((s.clone(), w.clone()));
            }
        }
    }
    out
}

/// Crash states of one model at every crash point, with whether a limit was hit there.
pub struct Concrete {
    pub model: ModelSpec,
    pub points: Vec<(BTreeSet<CrashState>, bool)>,
}

/// Explores `model` with the per-block layout: every class is one concrete state.
pub fn concrete(a: &Analysis, model: &ModelSpec) -> Concrete {
    let mut a = a.clone();
    a.set_per_block(true);
    a.set_on_explore(None);
    Concrete::of(model, a.run(model).exploration)
}

impl Concrete {
    /// The states of an exploration made with the per-block layout, per crash point.
    pub fn of(model: &ModelSpec, exploration: crate::Exploration) -> Concrete {
        Concrete {
            model: model.clone(),
            points: exploration
                .points
                .into_iter()
                .map(|p| (p.states.into_iter().map(|s| s.state).collect(), p.bound_hit))
                .collect(),
        }
    }
}

/// The result of checking one pair on one program.
#[derive(Clone, Debug, Serialize)]
pub struct PairReport {
    pub stronger: String,
    pub weaker: String,
    /// States of the stronger model the weaker does not allow, and no exception covers.
    pub violations: Vec<OrderViolation>,
    /// Crash points where either model hit a limit: inclusion is not proven there.
    pub unproven: Vec<usize>,
    /// Exceptions that covered some state here (by name), and how many states each.
    pub excepted: BTreeMap<&'static str, usize>,
}

/// Compares explored states: every state of `s` at each crash point must be one of `w`'s,
/// unless an [`Exception`] covers it.
pub fn compare(program: &Program, s: &Concrete, w: &Concrete) -> PairReport {
    let mut r = PairReport {
        stronger: s.model.to_string(),
        weaker: w.model.to_string(),
        violations: Vec::new(),
        unproven: Vec::new(),
        excepted: BTreeMap::new(),
    };
    for (at, ((ss, sb), (ws, wb))) in s.points.iter().zip(&w.points).enumerate() {
        if *sb || *wb {
            r.unproven.push(at);
            continue;
        }
        for state in ss.difference(ws) {
            match exception(&s.model, &w.model, program, state) {
                Some(e) => *r.excepted.entry(e.name).or_default() += 1,
                None => r.violations.push(OrderViolation {
                    weaker: r.weaker.clone(),
                    stronger: r.stronger.clone(),
                    at,
                    state: state.clone(),
                }),
            }
        }
    }
    r
}

/// Checks one pair on one program.
pub fn check_pair(a: &Analysis, stronger: &ModelSpec, weaker: &ModelSpec) -> PairReport {
    compare(&a.program, &concrete(a, stronger), &concrete(a, weaker))
}

/// Every crash state of `stronger` at each crash point must be a crash state of `weaker` at that
/// crash point (or a documented [`Exception`] covers it). Crash points where a limit was hit
/// give no violation; [`check_pair`] lists them.
pub fn violations(a: &Analysis, stronger: &ModelSpec, weaker: &ModelSpec) -> Vec<OrderViolation> {
    check_pair(a, stronger, weaker).violations
}

/// Checks every pair of [`pairs`]`(models)` on one program, exploring each model once.
pub fn check(a: &Analysis, models: &[ModelSpec]) -> Vec<PairReport> {
    let mut explored: BTreeMap<ModelSpec, Concrete> = BTreeMap::new();
    let mut out = Vec::new();
    for (s, w) in pairs(models) {
        for m in [&s, &w] {
            if !explored.contains_key(m) {
                explored.insert(m.clone(), concrete(a, m));
            }
        }
        out.push(compare(&a.program, &explored[&s], &explored[&w]));
    }
    out
}
