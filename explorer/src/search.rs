//! Search over variants of a program (`unplug search`): which syncs can go, which fsyncs can be
//! fdatasyncs, whether a reordering of independent ops lets a further sync go, and, for each
//! property that needs a sync, the smallest program that breaks it when syncs are dropped.
//!
//! A variant is an [`Edit`] of the program as written: the ops kept, in their (possibly new)
//! order, and the fsyncs weakened to fdatasync. Every variant that is shown as a program is
//! turned into `.up` text and loaded again (parsed and executed) before it is checked, so what is
//! printed is exactly what was checked: `unplug check` on the printed text gives the same verdict.
//!
//! Costs of calls ([`call_cost`]): `sync` 100, `syncfs` 50, `fsync` 10, `fdatasync` 6,
//! `msync MS_SYNC` 6 (a ranged fdatasync), plus 10 for an fsync or fdatasync of a directory; every
//! other op costs nothing. The numbers only rank calls: a whole-system sync over a file-system
//! sync over an fsync (inode and journal) over an fdatasync (data and size only).
//!
//! The cheapest variant is found exactly (every combination of keep / fdatasync / drop, in order
//! of cost, stopping at the first cost at which one keeps every property) when the program has at
//! most [`MAX_EXHAUSTIVE_SYNCS`] sync calls, and greedily otherwise (a local minimum, and said so).
//! The smallest breaking program comes from proptest: a [`TestRunner`] with a fixed seed
//! generates variants (ops kept or dropped, syncs kept, weakened or dropped) and shrinks the first
//! one that breaks the property (while the same ops with every sync restored keep it) to fewer
//! ops; a final pass drops single ops until none can go, so the result is 1-minimal.

use crate::syncs::{Counterexample, Variant};
use crate::Analysis;
use proptest::strategy::{BoxedStrategy, Strategy};
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use unplug_model::volatile::{Ino, SyncReq, Trace};
use unplug_model::{ModelSpec, MsyncMode, OpKind, Path, Program, When};

/// Most sync calls for which every combination of keep / fdatasync / drop is tried.
pub const MAX_EXHAUSTIVE_SYNCS: usize = 10;
/// Most dependency-respecting orders tried when all of them are tried; past it, only the orders
/// that move one op.
pub const MAX_ORDERS: usize = 120;
/// The default seed of the breaking-program search.
pub const DEFAULT_SEED: u64 = 0x756e_706c_7567;
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
pub fn call_cost(a: &Analysis, k: usize, datasync: bool) -> u32 {
    let dir = matches!(a.trace.ops[k - 1].sync, Some(SyncReq::Dir { .. }));
    let extra = if dir { 10 } else { 0 };
    match &a.program.ops[k - 1].kind {
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
pub fn weakenable(a: &Analysis, k: usize) -> bool {
    matches!(a.program.ops[k - 1].kind, OpKind::Fsync { .. })
        && matches!(
            a.trace.ops[k - 1].sync,
            Some(SyncReq::File {
                datasync: false,
                range: None,
                ..
            })
        )
}

/// The sync calls of the program (op numbers).
pub fn sync_ops(a: &Analysis) -> Vec<usize> {
    (1..=a.program.ops.len())
        .filter(|&k| a.program.ops[k - 1].kind.is_sync())
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

/// A variant of the program as written: the op numbers kept, in their new order, and the kept
/// fsyncs weakened to fdatasync.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Edit {
    pub order: Vec<usize>,
    pub datasync: BTreeSet<usize>,
}

impl Edit {
    /// The program as written.
    pub fn identity(n: usize) -> Edit {
        Edit {
            order: (1..=n).collect(),
            datasync: BTreeSet::new(),
        }
    }

    /// The crash point from which `after op` must hold in the variant: the new position of the
    /// op (the property means "once that op returned"); when the op was dropped, the position
    /// of the last kept op that came before it (a dropped op does nothing: the crash point after
    /// it is the one after the op before it). 0 when none.
    pub fn threshold(&self, op: usize) -> usize {
        if let Some(p) = self.order.iter().position(|&k| k == op) {
            return p + 1;
        }
        self.order
            .iter()
            .enumerate()
            .filter(|(_, &k)| k < op)
            .map(|(p, _)| p + 1)
            .max()
            .unwrap_or(0)
    }

    /// The variant as `.up` text: `header` lines as comments, every named data declared with
    /// its length in the program as written (so that `== D` keeps its meaning when a write is
    /// dropped), the setup, the kept ops as written (with their labels; `fdatasync` for a
    /// weakened fsync), and every property with `after N` renumbered.
    pub fn source(&self, a: &Analysis, header: &[String]) -> String {
        let p = &a.program;
        let mut s = String::new();
        for h in header {
            s.push_str(&format!("# {h}\n"));
        }
        for (name, len) in &a.trace.data_len {
            s.push_str(&format!("data {name} {}\n", size_text(*len)));
        }
        if !p.setup.is_empty() {
            s.push_str("setup\n");
            for op in &p.setup {
                s.push_str(&format!("  {}\n", op_line(op, false)));
            }
            s.push_str("end\n");
        }
        for &k in &self.order {
            s.push_str(&format!(
                "{}\n",
                op_line(&p.ops[k - 1], self.datasync.contains(&k))
            ));
        }
        for prop in &p.properties {
            let expr = match &prop.when {
                When::Always => prop.text.trim_start_matches("always").trim(),
                When::After { .. } => prop
                    .text
                    .split_once(':')
                    .map_or(prop.text.as_str(), |x| x.1)
                    .trim(),
            };
            let when = match &prop.when {
                When::Always => "always".to_string(),
                When::After { op, written } => {
                    let t = self.threshold(*op);
                    let labelled = written.parse::<usize>().is_err() && self.order.contains(op);
                    if t == 0 {
                        "always".to_string()
                    } else if labelled {
                        format!("after {written}:")
                    } else {
                        format!("after {t}:")
                    }
                }
            };
            s.push_str(&format!("property {}: {when} {expr}\n", prop.name));
        }
        s
    }

    /// Loads the variant's text (parse and execute): None when it does not execute (an op uses
    /// a handle whose open was dropped, a store past the end of a file no longer truncated).
    pub fn load(&self, a: &Analysis) -> Option<Analysis> {
        let (program, trace) = unplug_model::load(&self.source(a, &[])).ok()?;
        let mut v = Analysis::from_trace(program, trace);
        v.limits = a.limits;
        Some(v)
    }
}

fn op_line(op: &unplug_model::Op, datasync: bool) -> String {
    let text = match (&op.kind, datasync) {
        (OpKind::Fsync { handle }, true) => format!("fdatasync {handle}"),
        _ => op.text.clone(),
    };
    match &op.label {
        Some(l) => format!("{l}: {text}"),
        None => text,
    }
}

/// `8MiB`, `4KiB` or bytes.
pub fn size_text(n: u64) -> String {
    const KIB: u64 = 1024;
    if n > 0 && n.is_multiple_of(KIB * KIB) {
        format!("{}MiB", n / (KIB * KIB))
    } else if n > 0 && n.is_multiple_of(KIB) {
        format!("{}KiB", n / KIB)
    } else {
        n.to_string()
    }
}

/// What happens to one sync call in a variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Treatment {
    Drop,
    Fdatasync,
    Keep,
}

/// One sync call of a variant: its op number in the program as written, the call as written,
/// what happens to it, and its cost in the variant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SyncChoice {
    pub op: usize,
    pub call: String,
    pub treatment: Treatment,
    pub cost: u32,
}

/// The cheapest variants (by sync cost) that keep the target properties.
#[derive(Clone, Debug, Serialize)]
pub struct Cheapest {
    pub cost: u32,
    /// The cost of the sync calls as written.
    pub written_cost: u32,
    /// Every combination was tried (else: greedy, a local minimum).
    pub exhaustive: bool,
    /// How many variants were checked.
    pub explored: usize,
    /// Every variant of that cost that keeps the targets (ties), each as its sync calls.
    pub variants: Vec<Vec<SyncChoice>>,
}

/// The cheapest sync treatment of `a` (its own op numbering) that keeps every property in
/// `target` under `model`; with `below`, only variants cheaper than it are tried (None if none
/// keeps the targets).
pub fn cheapest(
    a: &Analysis,
    model: &ModelSpec,
    target: &[usize],
    below: Option<u32>,
) -> Option<Cheapest> {
    let syncs = sync_ops(a);
    let options: Vec<Vec<Treatment>> = syncs
        .iter()
        .map(|&k| {
            if weakenable(a, k) {
                vec![Treatment::Drop, Treatment::Fdatasync, Treatment::Keep]
            } else {
                vec![Treatment::Drop, Treatment::Keep]
            }
        })
        .collect();
    let one_cost = |k: usize, tr: Treatment| match tr {
        Treatment::Drop => 0,
        Treatment::Fdatasync => call_cost(a, k, true),
        Treatment::Keep => call_cost(a, k, false),
    };
    let cost_of =
        |t: &[Treatment]| -> u32 { syncs.iter().zip(t).map(|(&k, &tr)| one_cost(k, tr)).sum() };
    let keeps = |t: &[Treatment]| -> bool {
        let mut v = Variant::default();
        for (&k, tr) in syncs.iter().zip(t) {
            match tr {
                Treatment::Drop => {
                    v.removed.insert(k);
                }
                Treatment::Fdatasync => {
                    v.datasync.insert(k);
                }
                Treatment::Keep => {}
            }
        }
        let r = a.holds(model, &v.apply(&a.trace), &[], None);
        target.iter().all(|&i| r[i])
    };
    let written: Vec<Treatment> = vec![Treatment::Keep; syncs.len()];
    let written_cost = cost_of(&written);
    let choices = |t: &[Treatment]| -> Vec<SyncChoice> {
        syncs
            .iter()
            .zip(t)
            .map(|(&k, &tr)| SyncChoice {
                op: k,
                call: a.program.ops[k - 1].text.clone(),
                treatment: tr,
                cost: one_cost(k, tr),
            })
            .collect()
    };
    let limit = below.unwrap_or(u32::MAX);
    if syncs.len() <= MAX_EXHAUSTIVE_SYNCS {
        let mut all: Vec<(u32, Vec<Treatment>)> = vec![(0, Vec::new())];
        for opts in &options {
            all = all
                .into_iter()
                .flat_map(|(_, t)| {
                    opts.iter().map(move |o| {
                        let mut t = t.clone();
                        t.push(*o);
                        (0, t)
                    })
                })
                .collect();
        }
        for x in &mut all {
            x.0 = cost_of(&x.1);
        }
        all.retain(|x| x.0 < limit);
        all.sort();
        let mut explored = 0;
        let mut at = 0;
        while at < all.len() {
            let cost = all[at].0;
            let end = at + all[at..].iter().take_while(|x| x.0 == cost).count();
            let level = &all[at..end];
            explored += level.len();
            let good: Vec<&Vec<Treatment>> = level
                .par_iter()
                .filter(|x| keeps(&x.1))
                .map(|x| &x.1)
                .collect();
            if !good.is_empty() {
                // Most kept calls first: keep over fdatasync over drop, op by op.
                let mut variants: Vec<Vec<SyncChoice>> =
                    good.into_iter().map(|t| choices(t)).collect();
                variants.sort_by_key(|v| {
                    std::cmp::Reverse(v.iter().map(|c| c.treatment).collect::<Vec<_>>())
                });
                return Some(Cheapest {
                    cost,
                    written_cost,
                    exhaustive: true,
                    explored,
                    variants,
                });
            }
            at = end;
        }
        return None;
    }
    // Greedy: from the program as written, take the single change (drop, or fsync -> fdatasync)
    // that saves most and keeps the targets, until none does.
    let mut cur = written;
    let mut explored = 1;
    if !keeps(&cur) {
        return None;
    }
    loop {
        let mut moves: Vec<(u32, usize, Treatment)> = Vec::new();
        for (i, opts) in options.iter().enumerate() {
            for &o in opts {
                if o < cur[i] {
                    let mut t = cur.clone();
                    t[i] = o;
                    moves.push((cost_of(&t), i, o));
                }
            }
        }
        moves.sort();
        let found = moves.into_par_iter().find_first(|&(_, i, o)| {
            let mut t = cur.clone();
            t[i] = o;
            keeps(&t)
        });
        explored += 1;
        match found {
            Some((_, i, o)) => cur[i] = o,
            None => break,
        }
    }
    let cost = cost_of(&cur);
    (cost < limit).then(|| Cheapest {
        cost,
        written_cost,
        exhaustive: false,
        explored,
        variants: vec![choices(&cur)],
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
pub fn candidate_orders(n: usize, deps: &BTreeSet<(usize, usize)>) -> (Vec<Vec<usize>>, bool) {
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

/// The outcome of the breaking-program search for one property under one model.
#[derive(Clone)]
pub enum Breaking {
    /// The property fails as written: no variant is needed to break it.
    FailsAsWritten,
    /// The property holds with every sync dropped: no sync is needed for it.
    NoSyncNeeded,
    /// No breaking variant among the generated cases.
    NotFound,
    /// A smallest breaking variant.
    Found(Box<Broken>),
}

/// A 1-minimal program that breaks a property: dropping any further op makes it hold again or
/// stop executing, and with every sync of the program restored it holds.
#[derive(Clone)]
pub struct Broken {
    pub edit: Edit,
    /// Sync calls (as written) dropped, and fsyncs weakened, in the variant.
    pub dropped_syncs: Vec<usize>,
    pub weakened: Vec<usize>,
    /// Other ops dropped.
    pub dropped_ops: Vec<usize>,
    /// The dropped sync calls that, put back alone (as written), make the property hold again:
    /// the sync the property needs (several: any one of them does).
    pub restores: Vec<usize>,
    /// The variant as `.up` text (with a header naming where it came from).
    pub source: String,
    /// The variant loaded (its own op numbering), for rendering the counterexample.
    pub analysis: Analysis,
    /// The crash state that breaks the property in the variant (replay relative to it).
    pub counterexample: Option<Counterexample>,
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
                        s.op = order[s.op - 1];
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

/// A proptest RNG seeded from the user's seed, the model and the property, so that each search
/// is reproducible on its own (`--model M --seed S` gives the same answer for M as the full run).
fn rng(seed: u64, model: &ModelSpec, property: &str) -> TestRng {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let text = format!("{seed:x}/{model}/{property}");
    for b in text.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_mut(8) {
        // splitmix64
        h = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = h;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_le_bytes());
    }
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

/// Per op as written: 0 drop; for a sync 1 fdatasync (an fsync only) or keep, 2 keep.
type Genome = Vec<u8>;

fn edit_of(a: &Analysis, g: &[u8]) -> Edit {
    let mut e = Edit {
        order: Vec::new(),
        datasync: BTreeSet::new(),
    };
    for (i, &x) in g.iter().enumerate() {
        let k = i + 1;
        if x == 0 {
            continue;
        }
        e.order.push(k);
        if x == 1 && a.program.ops[i].kind.is_sync() && weakenable(a, k) {
            e.datasync.insert(k);
        }
    }
    e
}

/// The search for a smallest program that breaks property `i` under `model` when syncs go.
pub fn breaking(a: &Analysis, model: &ModelSpec, i: usize, holds: bool, o: &Options) -> Breaking {
    if !holds {
        return Breaking::FailsAsWritten;
    }
    let syncs = sync_ops(a);
    let none = Variant {
        removed: syncs.iter().copied().collect(),
        ..Variant::default()
    };
    if a.holds(model, &none.apply(&a.trace), &[], Some(i))[i] {
        return Breaking::NoSyncNeeded;
    }
    let cache: Mutex<HashMap<Edit, Option<bool>>> = Mutex::new(HashMap::new());
    let holds_in = |e: &Edit| -> Option<bool> {
        if let Some(r) = cache.lock().expect("cache").get(e) {
            return *r;
        }
        let r = e.load(a).map(|v| v.holds(model, &v.trace, &[], Some(i))[i]);
        cache.lock().expect("cache").insert(e.clone(), r);
        r
    };
    // Broken: the variant executes and fails the property, while the same ops with every sync
    // as written keep it (so the failure is the dropped syncs' doing, not a dropped write's).
    let broken = |e: &Edit| -> bool {
        if holds_in(e) != Some(false) {
            return false;
        }
        let restored = Edit {
            order: (1..=a.program.ops.len())
                .filter(|k| e.order.contains(k) || syncs.contains(k))
                .collect(),
            datasync: BTreeSet::new(),
        };
        holds_in(&restored) == Some(true)
    };
    let strategy: Vec<BoxedStrategy<u8>> = (1..=a.program.ops.len())
        .map(|k| {
            if a.program.ops[k - 1].kind.is_sync() {
                (0u8..=2).boxed()
            } else {
                proptest::bool::weighted(0.9).prop_map(u8::from).boxed()
            }
        })
        .collect();
    let config = Config {
        cases: o.cases,
        failure_persistence: None,
        source_file: None,
        verbose: 0,
        max_shrink_iters: 100_000,
        max_shrink_time: 0,
        max_local_rejects: 65_536,
        max_global_rejects: 1024,
        rng_algorithm: RngAlgorithm::ChaCha,
        // Set here rather than read from PROPTEST_* variables: the output depends only on the
        // program, the models, the seed and the cases.
        fork: false,
        timeout: 0,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, rng(o.seed, model, &a.program.properties[i].name));
    let found: Option<Genome> = match runner.run(&strategy, |g| {
        if broken(&edit_of(a, &g)) {
            Err(TestCaseError::fail("the property breaks"))
        } else {
            Ok(())
        }
    }) {
        Err(TestError::Fail(_, g)) => Some(g),
        _ => None,
    };
    let Some(mut g) = found else {
        return Breaking::NotFound;
    };
    // Drop single ops (a weakened or kept sync too) while it stays broken: 1-minimal.
    'outer: loop {
        for k in 0..g.len() {
            if g[k] != 0 {
                let mut h = g.clone();
                h[k] = 0;
                if broken(&edit_of(a, &h)) {
                    g = h;
                    continue 'outer;
                }
            }
        }
        break;
    }
    let edit = edit_of(a, &g);
    let v = edit.load(a).expect("a broken variant loads");
    let run = v.run(model);
    let cx = run
        .check_one(&v.program.properties[i])
        .counterexample
        .map(|x| Counterexample::of(&run, &Variant::default(), &x));
    let dropped_syncs: Vec<usize> = syncs
        .iter()
        .copied()
        .filter(|k| !edit.order.contains(k))
        .collect();
    let dropped_ops: Vec<usize> = (1..=a.program.ops.len())
        .filter(|k| !edit.order.contains(k) && !syncs.contains(k))
        .collect();
    let restores: Vec<usize> = dropped_syncs
        .iter()
        .copied()
        .filter(|&s| {
            let mut order = edit.order.clone();
            order.push(s);
            order.sort_unstable();
            holds_in(&Edit {
                order,
                datasync: edit.datasync.clone(),
            }) == Some(true)
        })
        .collect();
    let list = |v: &[usize]| {
        v.iter()
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut header = vec![format!(
        "breaks property {} under {model}: ops {} of the program as written",
        a.program.properties[i].name,
        list(&edit.order)
    )];
    if !dropped_syncs.is_empty() {
        header.push(format!(
            "sync calls dropped: {}; with them back, {} holds",
            list(&dropped_syncs),
            a.program.properties[i].name
        ));
        if !restores.is_empty() {
            header.push(format!(
                "{} alone puts it back: op {}",
                if restores.len() == 1 {
                    "this one"
                } else {
                    "any one of these"
                },
                restores
                    .iter()
                    .map(|k| format!("{k} `{}`", a.program.ops[k - 1].text))
                    .collect::<Vec<_>>()
                    .join(", op ")
            ));
        }
    }
    let weakened: Vec<usize> = edit.datasync.iter().copied().collect();
    if !weakened.is_empty() {
        header.push(format!("fsync weakened to fdatasync: {}", list(&weakened)));
    }
    let source = edit.source(a, &header);
    Breaking::Found(Box::new(Broken {
        edit,
        dropped_syncs,
        weakened,
        dropped_ops,
        restores,
        source,
        analysis: v,
        counterexample: cx,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analysis(src: &str) -> Analysis {
        Analysis::new(&unplug_model::parse::parse(src).expect("parses")).expect("executes")
    }

    const SEED: &str = include_str!("../../examples/mmap-rename.up");

    #[test]
    fn dependencies_follow_handles_paths_and_inodes() {
        let a = analysis(
            "f = open a create\ng = open b create\nwrite f 4KiB D\nwrite g 4KiB E\nfsync f\nfsync g\n\
             property P: always (exists a implies a == D)\n",
        );
        let d = dependencies(&a.program, &a.trace);
        // Both creates write entries of the root directory.
        assert!(d.contains(&(1, 2)));
        // The write to a needs its open; the fsync of a needs the write.
        assert!(d.contains(&(1, 3)) && d.contains(&(3, 5)));
        // Writes to different files, the fsync of one file and the write of the other: free.
        assert!(!d.contains(&(3, 4)));
        assert!(!d.contains(&(4, 5)));
        assert!(!d.contains(&(5, 6)));
        assert!(respects(&[1, 2, 4, 3, 6, 5], &d));
        assert!(!respects(&[1, 2, 5, 3, 4, 6], &d));
    }

    #[test]
    fn the_seed_is_a_chain() {
        let a = analysis(SEED);
        let d = dependencies(&a.program, &a.trace);
        for k in 1..8 {
            assert!(d.contains(&(k, k + 1)), "{k} -> {}", k + 1);
        }
        let (orders, exhaustive) = candidate_orders(8, &d);
        assert!(orders.is_empty() && exhaustive);
        // sync and syncfs depend on everything.
        let b =
            analysis("f = open a create\ng = open b create\nsync\nproperty P: always exists a\n");
        assert!(dependencies(&b.program, &b.trace).contains(&(1, 3)));
    }

    #[test]
    fn after_n_follows_its_op() {
        let e = Edit {
            order: vec![1, 2, 3, 4, 7],
            datasync: BTreeSet::new(),
        };
        // Op 8 dropped: the property holds from after op 7, now op 5.
        assert_eq!(e.threshold(8), 5);
        assert_eq!(e.threshold(7), 5);
        assert_eq!(e.threshold(2), 2);
        let moved = Edit {
            order: vec![1, 3, 2],
            datasync: BTreeSet::new(),
        };
        assert_eq!(moved.threshold(2), 3);
        assert_eq!(moved.threshold(3), 2);
        assert_eq!(Edit::identity(3).threshold(0), 0);

        let a = analysis(SEED);
        let src = e.source(&a, &["h".into()]);
        assert_eq!(
            src,
            "# h\ndata D 8MiB\nf = open tmp create rdwr\nftruncate f 8MiB\nm = mmap f 0 8MiB\n\
             store m 0 8MiB D\npublish: rename tmp final\n\
             property A: always (exists final implies final == D)\nproperty B: after 5: final == D\n"
        );
        // The program as written comes back as itself.
        let same = Edit::identity(8).load(&a).expect("loads");
        let shape = |p: &Program| -> Vec<(OpKind, Option<String>, String)> {
            p.ops
                .iter()
                .map(|o| (o.kind.clone(), o.label.clone(), o.text.clone()))
                .collect()
        };
        assert_eq!(shape(&same.program), shape(&a.program));
        assert_eq!(
            same.program.properties[1].when,
            a.program.properties[1].when
        );
        // A weakened fsync is written as fdatasync.
        let w = Edit {
            order: (1..=8).collect(),
            datasync: [6].into(),
        };
        assert!(w.source(&a, &[]).contains("\nfdatasync f\npublish:"));
    }

    #[test]
    fn cheapest_on_a_small_program() {
        // Checked by hand: under ext4, B needs the file's data and its name durable after op 6.
        // The fsync of the directory (op 6) commits the journal (with the create) but the data
        // needs op 3 or a full fsync; seq needs nothing but the last sync to make B durable.
        let a = analysis(
            "f = open a create\nwrite f 4KiB D\nfsync f\nd = open . dir\nfsync d\nfsync f\n\
             property B: after 6: a == D\n",
        );
        let seq = cheapest(&a, &ModelSpec::Seq, &[0], None).expect("holds as written");
        assert!(seq.exhaustive);
        // Seq: any one sync after the write keeps B; the cheapest is an fdatasync (6).
        assert_eq!(seq.cost, 6);
        assert_eq!(seq.written_cost, 10 + 20 + 10);
        let fdatasyncs: Vec<Vec<(usize, Treatment)>> = seq
            .variants
            .iter()
            .map(|v| v.iter().map(|c| (c.op, c.treatment)).collect())
            .collect();
        assert_eq!(
            fdatasyncs,
            [
                vec![
                    (3, Treatment::Fdatasync),
                    (5, Treatment::Drop),
                    (6, Treatment::Drop)
                ],
                vec![
                    (3, Treatment::Drop),
                    (5, Treatment::Drop),
                    (6, Treatment::Fdatasync)
                ],
            ]
        );
        // Under posix the directory fsync is needed for the name, and one file sync for the data.
        let posix = cheapest(&a, &ModelSpec::Posix, &[0], None).expect("holds as written");
        assert_eq!(posix.cost, 20 + 6);
        assert!(posix.variants.iter().all(|v| v
            .iter()
            .any(|c| c.op == 5 && c.treatment == Treatment::Keep)));
        // Nothing is cheaper than the cheapest.
        assert!(cheapest(&a, &ModelSpec::Posix, &[0], Some(26)).is_none());
    }

    #[test]
    fn a_declared_length_counts_when_a_write_is_dropped() {
        // Variants declare every data with its length as written, so that dropping the write
        // leaves `a == D` false (an empty file is not 4 KiB of D): the declared length wins
        // over what the remaining writes use (volatile.rs once kept only the latter).
        let a = analysis("data D 4KiB\nf = open a create\nfsync f\nproperty P: after 2: a == D\n");
        assert_eq!(a.holds(&ModelSpec::Seq, &a.trace, &[], None), [false]);
        assert_eq!(a.trace.data_len["D"], 4096);
    }

    #[test]
    fn greedy_past_ten_syncs() {
        // Eleven fsyncs after one write: under seq any one of them keeps P. Greedy drops them
        // one by one (lowest op first) and weakens the last to fdatasync.
        let mut src = "f = open a create\nwrite f 4KiB D\n".to_string();
        src.push_str(&"fsync f\n".repeat(11));
        src.push_str("property P: after 13: a == D\n");
        let a = analysis(&src);
        let c = cheapest(&a, &ModelSpec::Seq, &[0], None).expect("holds as written");
        assert!(!c.exhaustive);
        assert_eq!((c.cost, c.written_cost), (6, 110));
        let kept: Vec<(usize, Treatment)> = c.variants[0]
            .iter()
            .filter(|s| s.treatment != Treatment::Drop)
            .map(|s| (s.op, s.treatment))
            .collect();
        assert_eq!(kept, [(13, Treatment::Fdatasync)]);
    }

    #[test]
    fn a_reordering_lets_a_sync_go() {
        // Under seq a sync makes the whole prefix durable. As written, P needs op 3 and Q op 6;
        // with b's open and write moved before op 3 (they touch neither f nor a), op 3 covers
        // both and op 6 can go.
        let a = analysis(
            "f = open a create\nwrite f 4KiB D\nfsync f\ng = open b create\nwrite g 4KiB E\n\
             fsync g\nproperty P: after 3: a == D\nproperty Q: after 6: b == E\n",
        );
        let r = search(&a, &ModelSpec::Seq, &Options::default());
        assert_eq!(r.cheapest.as_ref().map(|c| c.cost), Some(12));
        assert!(r.reorders.exhaustive);
        let best = &r.reorders.better[0];
        assert_eq!(best.cheapest.cost, 6);
        assert_eq!(best.order, [1, 2, 4, 5, 3, 6]);
        let kept: Vec<(usize, Treatment)> = best.cheapest.variants[0]
            .iter()
            .map(|c| (c.op, c.treatment))
            .collect();
        assert_eq!(kept, [(3, Treatment::Fdatasync), (6, Treatment::Drop)]);
    }

    #[test]
    fn the_seed_under_ext4() {
        let a = analysis(SEED);
        let r = search(&a, &ModelSpec::parse("ext4").unwrap(), &Options::default());
        assert_eq!(r.holds, [true, true]);
        let c = r.cheapest.expect("both hold");
        let sets: Vec<Vec<(usize, Treatment)>> = c
            .variants
            .iter()
            .map(|v| v.iter().map(|c| (c.op, c.treatment)).collect())
            .collect();
        // {5, 8} or {6, 8}, op 6 as an fdatasync; op 8 stays an fsync on ext4.
        assert_eq!(
            sets,
            [
                vec![
                    (5, Treatment::Keep),
                    (6, Treatment::Drop),
                    (8, Treatment::Keep)
                ],
                vec![
                    (5, Treatment::Drop),
                    (6, Treatment::Fdatasync),
                    (8, Treatment::Keep)
                ],
            ]
        );
        assert_eq!((c.cost, c.written_cost), (16, 26));
        let restores: Vec<Vec<usize>> = r
            .breaking
            .iter()
            .map(|b| match b {
                Breaking::Found(b) => b.restores.clone(),
                _ => vec![],
            })
            .collect();
        // A needs op 5 or op 6; B needs op 8.
        assert_eq!(restores, [vec![5, 6], vec![8]]);
        for b in &r.breaking {
            let Breaking::Found(b) = b else {
                panic!("a breaking program")
            };
            // Open, ftruncate, mmap, store and rename are all it takes.
            assert_eq!(b.edit.order, [1, 2, 3, 4, 7]);
            assert_eq!(b.dropped_syncs, [5, 6, 8]);
            assert!(b.counterexample.is_some());
        }
    }
}
