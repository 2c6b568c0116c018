//! Search over variants of a program (`unplug search`): which syncs can go, which fsyncs can be
//! fdatasyncs, whether a reordering of independent ops lets a further sync go, and, for each
//! property that needs a sync, the smallest program that breaks it when syncs are dropped.
//!
//! A variant is an [`Edit`] of the program as written: the ops kept, in their (possibly new)
//! order, and the fsyncs weakened to fdatasync. It is built as a [`Program`] value
//! ([`Edit::program`]: ops cloned or weakened, `after N` moved with its op), printed with
//! [`unplug_model::print`] and loaded again (parsed and executed) before it is checked, so what
//! is printed is exactly what was checked: `unplug check` on the printed text gives the same
//! verdict.
//!
//! Costs of calls ([`call_cost`]): `sync` 100, `syncfs` 50, `fsync` 10, `fdatasync` 6,
//! `msync MS_SYNC` 6 (a ranged fdatasync), plus 10 for an fsync or fdatasync of a directory; every
//! other op costs nothing. The numbers only rank calls: a whole-system sync over a file-system
//! sync over an fsync (inode and journal) over an fdatasync (data and size only).
//!
//! The cheapest variant ([`cheapest()`], in `search/cheapest.rs`) is found exactly (every
//! combination of keep / fdatasync / drop, in order of cost, stopping at the first cost at which
//! one keeps every property) when the program has at most [`MAX_EXHAUSTIVE_SYNCS`] sync calls,
//! and greedily otherwise (a local minimum, and said so). The smallest breaking program
//! ([`breaking()`], in `search/breaking.rs`) comes from proptest: a `TestRunner` with a fixed
//! seed generates variants (ops kept or dropped, syncs kept, weakened or dropped) and shrinks the
//! first one that breaks the property (while the same ops with every sync restored keep it) to
//! fewer ops; a final pass drops single ops until none can go, so the result is 1-minimal.

use crate::Analysis;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use unplug_model::volatile::{Ino, SyncReq, Trace};
use unplug_model::{ModelSpec, MsyncMode, OpKind, OpNo, Path, Program};

mod breaking;
mod cheapest;
mod edit;

pub use breaking::{breaking, Breaking, Broken};
pub use cheapest::{cheapest, Cheapest, SyncChoice, Treatment};
pub use edit::Edit;

/// Most sync calls for which every combination of keep / fdatasync / drop is tried.
pub const MAX_EXHAUSTIVE_SYNCS: usize = 10;
/// Most dependency-respecting orders tried when all of them are tried; past it, only the orders
/// that move one op.
pub(crate) const MAX_ORDERS: usize = 120;
/// The default seed of the breaking-program search.
pub(crate) const DEFAULT_SEED: u64 = 0x756e_706c_7567;
/// The default number of proptest cases per model and property.
pub const DEFAULT_CASES: u32 = 256;

/// The cost table, for documentation and output: (call, cost); `directory` is added for an fsync
/// or fdatasync of a directory.
pub const COSTS: &[(&str, u32)] = &[
    ("sync", 100),
    ("syncfs", 50),
    ("fsync", 10),
    ("fdatasync", 6),
    ("msync MS_SYNC", 6),
    ("directory", 10),
];

/// The cost of op `k` (1-based) of `a`, weakened to fdatasync when `datasync`.
pub fn call_cost(a: &Analysis, k: OpNo, datasync: bool) -> u32 {
    let dir = matches!(a.trace.facts(k).sync, Some(SyncReq::Dir { .. }));
    let extra = if dir { 10 } else { 0 };
    match &a.program.op(k).kind {
        OpKind::Sync => 100,
        OpKind::Syncfs { .. } => 50,
        OpKind::Fsync { .. } if !datasync => 10 + extra,
        OpKind::Fsync { .. } | OpKind::Fdatasync { .. } => 6 + extra,
        OpKind::Msync { mode, .. } => match mode {
            MsyncMode::Sync => 6,
            MsyncMode::Async => 0,
        },
        // Not sync calls: they cost nothing here.
        OpKind::Open { .. }
        | OpKind::Close { .. }
        | OpKind::Write { .. }
        | OpKind::Ftruncate { .. }
        | OpKind::Fallocate { .. }
        | OpKind::SyncFileRange { .. }
        | OpKind::Mmap { .. }
        | OpKind::Store { .. }
        | OpKind::Munmap { .. }
        | OpKind::Rename { .. }
        | OpKind::Link { .. }
        | OpKind::Flink { .. }
        | OpKind::Symlink { .. }
        | OpKind::Unlink { .. }
        | OpKind::Mkdir { .. }
        | OpKind::Rmdir { .. } => 0,
    }
}

/// Whether op `k` is an fsync of a whole file that could be an fdatasync.
pub(crate) fn weakenable(a: &Analysis, k: OpNo) -> bool {
    matches!(a.program.op(k).kind, OpKind::Fsync { .. })
        && matches!(
            a.trace.facts(k).sync,
            Some(SyncReq::File {
                datasync: false,
                range: None,
                ..
            })
        )
}

/// The sync calls of the program (op numbers).
pub fn sync_ops(a: &Analysis) -> Vec<OpNo> {
    a.program
        .op_nos()
        .filter(|&k| a.program.op(k).kind.is_sync())
        .collect()
}

/// What one op uses: handle and mapping names, paths, inodes; `all` for sync and syncfs.
#[derive(Clone, Debug, Default)]
struct Uses {
    names: BTreeSet<String>,
    paths: Vec<Path>,
    inodes: BTreeSet<Ino>,
    all: bool,
}

fn uses(kind: &OpKind, f: &unplug_model::volatile::OpFacts) -> Uses {
    let mut u = Uses::default();
    if let Some(h) = kind.handle() {
        u.names.insert(format!("h:{h}"));
    }
    if let Some(m) = kind.map() {
        u.names.insert(format!("m:{m}"));
    }
    u.paths = kind.paths().cloned().collect();
    // `sync` and `syncfs` (the only ops that ask to sync everything) depend on every op.
    u.all = matches!(f.sync, Some(SyncReq::All));
    for a in &f.assigns {
        u.inodes.insert(a.inode());
        if let unplug_model::volatile::Assign::Entry {
            target: Some(t), ..
        } = a
        {
            u.inodes.insert(*t);
        }
    }
    u.inodes.extend(f.extends.map(|(i, _)| i));
    u.inodes.extend(f.dirtied.iter().map(|d| d.ino));
    match &f.sync {
        Some(SyncReq::File { ino, .. } | SyncReq::Msync { ino, .. } | SyncReq::Dir { ino, .. }) => {
            u.inodes.insert(*ino);
        }
        Some(SyncReq::All) | None => {}
    }
    u.inodes.extend(f.touched.iter().copied());
    u.inodes.extend(f.datasync_touched.iter().copied());
    u.inodes.extend(f.released);
    if let Some((x, y)) = f.rename_over {
        u.inodes.insert(x);
        u.inodes.insert(y);
    }
    u.inodes.extend(f.trunc_to_zero);
    u.inodes.extend(f.allocated.map(|(i, _, _)| i));
    u.inodes.extend(f.writeback.map(|(i, _, _)| i));
    u
}

fn prefix(a: &Path, b: &Path) -> bool {
    a.0.len() <= b.0.len() && *a.0 == b.0[..a.0.len()]
}

fn conflict(x: &Uses, y: &Uses) -> bool {
    x.all
        || y.all
        || !x.names.is_disjoint(&y.names)
        || !x.inodes.is_disjoint(&y.inodes)
        || x.paths
            .iter()
            .any(|p| y.paths.iter().any(|q| prefix(p, q) || prefix(q, p)))
}

/// The data dependencies of a program: pairs (i, j), i < j (op numbers), such that op j must stay
/// after op i. Two ops depend on each other when they share a handle or a mapping (by name), a
/// path (one a prefix of the other: `mkdir d` and `open d/f`), or an inode whose metadata, data or
/// sync either of them touches (from the trace's facts); `sync` and `syncfs` depend on every op.
/// Conservative: the ops that remain independent touch disjoint files and names.
pub fn dependencies(program: &Program, trace: &Trace) -> BTreeSet<(usize, usize)> {
    let u: Vec<Uses> = program
        .ops
        .iter()
        .zip(&trace.ops)
        .map(|(op, f)| uses(&op.kind, f))
        .collect();
    let mut out = BTreeSet::new();
    for j in 0..u.len() {
        for i in 0..j {
            if conflict(&u[i], &u[j]) {
                out.insert((i + 1, j + 1));
            }
        }
    }
    out
}

/// Whether an order of op numbers keeps every dependency.
pub fn respects(order: &[usize], deps: &BTreeSet<(usize, usize)>) -> bool {
    let pos: BTreeMap<usize, usize> = order.iter().enumerate().map(|(p, &k)| (k, p)).collect();
    deps.iter().all(|(i, j)| match (pos.get(i), pos.get(j)) {
        (Some(a), Some(b)) => a < b,
        _ => true,
    })
}

/// A reordering that lets syncs go further than the cheapest variant in program order.
#[derive(Clone, Debug, Serialize)]
pub struct Reordered {
    /// Op numbers as written, in the new order.
    pub order: Vec<usize>,
    /// Its cheapest variants, with op numbers as written.
    pub cheapest: Cheapest,
}

/// What reordering the ops can do.
#[derive(Clone, Debug, Serialize)]
pub struct Reorders {
    /// Dependency pairs (i, j): op j must stay after op i.
    pub dependencies: usize,
    /// Orders other than the one as written that keep every dependency and execute.
    pub orders: usize,
    /// Every dependency-respecting order was tried (else: every order that moves one op).
    pub exhaustive: bool,
    /// Orders whose cheapest variant costs less than in the order as written (cheapest first).
    pub better: Vec<Reordered>,
}

/// The orders to try (other than the identity), and whether that is all of them.
pub(crate) fn candidate_orders(
    n: usize,
    deps: &BTreeSet<(usize, usize)>,
) -> (Vec<Vec<usize>>, bool) {
    // Every linear extension, if there are at most MAX_ORDERS.
    fn extend(
        n: usize,
        deps: &BTreeSet<(usize, usize)>,
        cur: &mut Vec<usize>,
        used: &mut Vec<bool>,
        out: &mut Vec<Vec<usize>>,
    ) -> bool {
        if out.len() > MAX_ORDERS {
            return false;
        }
        if cur.len() == n {
            out.push(cur.clone());
            return true;
        }
        for k in 1..=n {
            if !used[k] && (1..k).all(|i| used[i] || !deps.contains(&(i, k))) {
                used[k] = true;
                cur.push(k);
                extend(n, deps, cur, used, out);
                cur.pop();
                used[k] = false;
            }
        }
        true
    }
    let mut all = Vec::new();
    extend(n, deps, &mut Vec::new(), &mut vec![false; n + 1], &mut all);
    let identity: Vec<usize> = (1..=n).collect();
    if all.len() <= MAX_ORDERS {
        all.retain(|o| *o != identity);
        return (all, true);
    }
    let mut out = BTreeSet::new();
    for k in 1..=n {
        for p in 0..n {
            let mut o: Vec<usize> = identity.iter().copied().filter(|&x| x != k).collect();
            o.insert(p, k);
            if o != identity && respects(&o, deps) {
                out.insert(o);
            }
        }
    }
    (out.into_iter().collect(), false)
}

/// Options of the search.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub seed: u64,
    pub cases: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seed: DEFAULT_SEED,
            cases: DEFAULT_CASES,
        }
    }
}

/// The search under one model.
#[derive(Clone)]
pub struct SearchReport {
    pub model: ModelSpec,
    /// Whether each property holds as written.
    pub holds: Vec<bool>,
    /// The cheapest variants that keep every property that holds as written (None when none
    /// holds).
    pub cheapest: Option<Cheapest>,
    pub reorders: Reorders,
    /// Per property.
    pub breaking: Vec<Breaking>,
}

/// Runs the whole search of `a` under `model`.
pub fn search(a: &Analysis, model: &ModelSpec, opts: &Options) -> SearchReport {
    let n = a.program.ops.len();
    let holds = a.holds(model, &a.trace, &[], None);
    let target: Vec<usize> = (0..holds.len()).filter(|&i| holds[i]).collect();
    let cheapest = if target.is_empty() {
        None
    } else {
        cheapest(a, model, &target, None)
    };

    let deps = dependencies(&a.program, &a.trace);
    let (orders, exhaustive) = candidate_orders(n, &deps);
    let loaded: Vec<(Vec<usize>, Analysis)> = orders
        .into_iter()
        .filter_map(|order| {
            let e = Edit {
                order,
                datasync: BTreeSet::new(),
            };
            e.load(a).map(|v| (e.order, v))
        })
        .collect();
    let mut better: Vec<Reordered> = Vec::new();
    if let Some(best) = &cheapest {
        for (order, v) in &loaded {
            if let Some(mut c) = self::cheapest(v, model, &target, Some(best.cost)) {
                for var in &mut c.variants {
                    for s in var.iter_mut() {
                        s.op = OpNo::new(order[s.op.index()]);
                    }
                }
                better.push(Reordered {
                    order: order.clone(),
                    cheapest: c,
                });
            }
        }
    }
    better.sort_by_key(|r| (r.cheapest.cost, r.order.clone()));
    let reorders = Reorders {
        dependencies: deps.len(),
        orders: loaded.len(),
        exhaustive,
        better,
    };

    let breaking = (0..a.program.properties.len())
        .into_par_iter()
        .map(|i| breaking(a, model, i, holds[i], opts))
        .collect();
    SearchReport {
        model: model.clone(),
        holds,
        cheapest,
        reorders,
        breaking,
    }
}

#[cfg(test)]
mod tests;
