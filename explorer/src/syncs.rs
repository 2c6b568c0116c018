//! Sync analysis: for each sync call of a program, each model and each property, is the sync
//! needed (the property holds with it and fails without it, or fails in more crash states without
//! it), with the crash state that breaks the property; the minimal sets of syncs that keep every
//! property; a cheaper call that does the same job (fsync -> fdatasync); and, where a property
//! fails as written, the sync that would repair it.
//!
//! A variant of the program is described by a [`Variant`] (syncs removed, fsyncs weakened) so
//! that a counterexample's replay string can name the variant it lives in.

use crate::{replay, Analysis, ModelRun, PropertyResult, Violation};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use unplug_model::volatile::{SyncReq, Trace};
use unplug_model::{ModelSpec, OpNo};

mod repairs;

use repairs::{find_repairs, why_no_repair};

/// Most syncs for which every subset is explored (minimal sufficient sets).
pub const MAX_SUBSET_SYNCS: usize = 10;

/// A variant of the program: syncs removed, fsyncs replaced by fdatasync.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Variant {
    pub removed: BTreeSet<usize>,
    pub datasync: BTreeSet<usize>,
}

impl Variant {
    pub fn apply(&self, trace: &Trace) -> Trace {
        let mut t = trace.clone();
        for &op in &self.removed {
            t.facts_mut(OpNo::new(op)).sync = None;
        }
        for &op in &self.datasync {
            if let Some(SyncReq::File { datasync, .. }) = &mut t.facts_mut(OpNo::new(op)).sync {
                *datasync = true;
            }
        }
        t
    }

    /// `no5+6@` / `fdatasync8@` / empty for the program as written.
    pub fn prefix(&self) -> String {
        let mut s = String::new();
        if !self.removed.is_empty() {
            s.push_str(&format!(
                "no{}@",
                self.removed
                    .iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join("+")
            ));
        }
        if !self.datasync.is_empty() {
            s.push_str(&format!(
                "fdatasync{}@",
                self.datasync
                    .iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join("+")
            ));
        }
        s
    }

    /// Splits a replay string into its variant and the rest.
    pub fn split(text: &str) -> Result<(Variant, &str), String> {
        let mut v = Variant::default();
        let mut rest = text.trim();
        while let Some((head, tail)) = rest.split_once('@') {
            let (set, nums) = if let Some(n) = head.strip_prefix("no") {
                (&mut v.removed, n)
            } else if let Some(n) = head.strip_prefix("fdatasync") {
                (&mut v.datasync, n)
            } else {
                return Err(format!(
                    "`{head}@` is not a variant (`noN+M@` or `fdatasyncN@`)"
                ));
            };
            for n in nums.split('+') {
                set.insert(
                    n.parse()
                        .map_err(|_| format!("`{n}` is not an op number"))?,
                );
            }
            rest = tail;
        }
        Ok((v, rest))
    }

    pub fn run<'a>(&self, a: &'a Analysis, model: &ModelSpec) -> Result<ModelRun<'a>, String> {
        for &op in self.removed.iter().chain(&self.datasync) {
            if op == 0 || op > a.trace.ops.len() || !a.program.op(OpNo::new(op)).kind.is_sync() {
                return Err(format!("op {op} is not a sync call of this program"));
            }
        }
        Ok(a.run_trace(model, self.apply(&a.trace)))
    }
}

/// A counterexample: a crash state that violates a property, and its replay string.
#[derive(Clone, Debug, Serialize)]
pub struct Counterexample {
    pub at: usize,
    pub replay: String,
    pub state: crate::CrashState,
}

impl Counterexample {
    pub fn of(run: &ModelRun, variant: &Variant, v: &Violation) -> Self {
        let whole = run.whole(&v.state);
        Counterexample {
            at: v.at,
            replay: format!(
                "{}{}",
                variant.prefix(),
                replay::format(run, &whole.witness)
            ),
            state: whole.state,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Need {
    Needed,
    Redundant,
}

/// One sync call under one model.
#[derive(Clone, Debug, Serialize)]
pub struct SyncEntry {
    pub op: usize,
    pub call: String,
    pub verdicts: BTreeMap<String, Need>,
    /// For each property the sync is needed for: the crash state that breaks it without the sync.
    pub counterexamples: BTreeMap<String, Counterexample>,
    /// For an fsync of a file: whether fdatasync in its place keeps every property that holds.
    pub fdatasync_suffices: Option<bool>,
    /// When fdatasync does not suffice: the crash state that shows it.
    pub fdatasync_counterexample: Option<Counterexample>,
}

/// A sync to insert that makes a failing property hold.
#[derive(Clone, Debug, Serialize)]
pub struct Repair {
    /// Insert after this op (0 = before the first).
    pub after: usize,
    /// What to fsync there, in order.
    pub fsync: Vec<Target>,
    /// The lines to insert.
    pub code: String,
}

/// A file or directory to fsync.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Target {
    /// `file` or `directory`.
    pub kind: &'static str,
    pub path: String,
}

/// The sync analysis of one program under one model.
#[derive(Clone, Debug, Serialize)]
pub struct SyncReport {
    pub model: String,
    pub results: Vec<PropertyResult>,
    pub syncs: Vec<SyncEntry>,
    /// Minimal sets of sync ops that keep each holding property (key: property name) and all of
    /// them together (key: `*`). Empty when there are more than [`MAX_SUBSET_SYNCS`] syncs.
    pub minimal_sets: BTreeMap<String, Vec<Vec<usize>>>,
    pub minimal_sets_computed: bool,
    /// For each holding property whose minimal sets differ: the syncs that can stand in for each
    /// other (each redundant alone), and the crash state that breaks the property without all of
    /// them.
    pub alternatives: BTreeMap<String, Alternatives>,
    /// For each property that fails as written: single syncs whose insertion makes it hold.
    pub repairs: BTreeMap<String, Vec<Repair>>,
    /// For each failing property no one or two fsyncs repair: why.
    pub no_repair: BTreeMap<String, NoRepair>,
}

/// Why no added fsync repairs a failing property, found by adding a `sync` after every op (the
/// most any added syncs could do).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "why", rename_all = "snake_case")]
pub enum NoRepair {
    /// It fails at crash point `at` (the moment op `at` returns, or before any op) even with a
    /// sync after every op: the property asks for op `at`'s effects there, and an added sync
    /// can only run after op `at` returns. Its `after N` (or `always`) pins a crash point before
    /// any added sync could run.
    Pinned { at: usize },
    /// It fails at crash point `at` even with everything before it synced: the property is
    /// false of what the program has done there, durable or not.
    NotDurability { at: usize },
    /// A sync after every op makes it hold, but no one or two fsyncs do.
    MoreSyncs,
}

/// Syncs that are each redundant alone but not all together.
#[derive(Clone, Debug, Serialize)]
pub struct Alternatives {
    pub ops: Vec<usize>,
    pub counterexample: Option<Counterexample>,
}

/// Runs the whole sync analysis of `a` under `model`.
pub fn analyse(a: &Analysis, model: &ModelSpec) -> SyncReport {
    let syncs: Vec<usize> = a
        .program
        .op_nos()
        .filter(|&k| a.program.op(k).kind.is_sync())
        .map(OpNo::get)
        .collect();
    let props = &a.program.properties;
    if props.is_empty() {
        // No sync can be needed for anything: nothing to explore.
        return SyncReport {
            model: model.to_string(),
            results: Vec::new(),
            syncs: Vec::new(),
            minimal_sets: BTreeMap::new(),
            minimal_sets_computed: false,
            alternatives: BTreeMap::new(),
            repairs: BTreeMap::new(),
            no_repair: BTreeMap::new(),
        };
    }
    // Every run below enumerates only what the properties read.
    let coned = {
        let mut a = a.clone();
        a.set_cone(true);
        a
    };
    let a = &coned;
    let base_run = a.run(model);
    let results = base_run.check();

    // Every subset of syncs kept (when few), or just "all" and "all but one".
    let subset_ok = syncs.len() <= MAX_SUBSET_SYNCS;
    let mut by_kept: BTreeMap<Vec<usize>, Vec<bool>> = BTreeMap::new();
    by_kept.insert(syncs.clone(), results.iter().map(|r| r.holds).collect());
    let mut entries = Vec::new();
    for &s in &syncs {
        let variant = Variant {
            removed: [s].into(),
            ..Variant::default()
        };
        let run = a.run_trace(model, variant.apply(&a.trace));
        let without = run.check();
        let (verdicts, counterexamples) = needs(&base_run, &results, &run, &variant, &without);
        by_kept.insert(
            syncs.iter().copied().filter(|&x| x != s).collect(),
            without.iter().map(|r| r.holds).collect(),
        );
        let (fdatasync_suffices, fdatasync_counterexample) = match &a.trace.facts(OpNo::new(s)).sync
        {
            Some(SyncReq::File {
                datasync: false,
                range: None,
                ..
            }) => {
                let variant = Variant {
                    datasync: [s].into(),
                    ..Variant::default()
                };
                let run = a.run_trace(model, variant.apply(&a.trace));
                let r = run.check();
                let worse = (0..props.len())
                    .find(|&i| r[i].violating_classes > results[i].violating_classes);
                let cx = worse
                    .and_then(|i| first_new_violation(&base_run, &run, i))
                    .map(|v| Counterexample::of(&run, &variant, &v));
                (Some(worse.is_none()), cx)
            }
            _ => (None, None),
        };
        entries.push(SyncEntry {
            op: s,
            call: a.program.op(OpNo::new(s)).text.clone(),
            verdicts,
            counterexamples,
            fdatasync_suffices,
            fdatasync_counterexample,
        });
    }

    let minimal_sets = if subset_ok {
        minimal_sets(a, model, &syncs, &results, by_kept)
    } else {
        BTreeMap::new()
    };
    let alternatives = alternatives(a, model, &base_run, &syncs, &minimal_sets);
    let repairs = props
        .iter()
        .enumerate()
        .filter(|&(i, _)| !results[i].holds)
        .map(|(i, p)| {
            let first = results[i].counterexample.as_ref().map(|v| v.at);
            (p.name.clone(), find_repairs(a, model, i, first))
        })
        .collect::<BTreeMap<String, Vec<Repair>>>();
    let no_repair = props
        .iter()
        .enumerate()
        .filter(|(_, p)| repairs.get(&p.name).is_some_and(Vec::is_empty))
        .map(|(i, p)| (p.name.clone(), why_no_repair(a, model, i)))
        .collect();
    SyncReport {
        model: model.to_string(),
        results,
        syncs: entries,
        minimal_sets,
        minimal_sets_computed: subset_ok,
        alternatives,
        repairs,
        no_repair,
    }
}

/// Per property, whether the sync removed in `run` (the `variant`) is needed for it, and where
/// it is, the crash state that shows it.
fn needs(
    base_run: &ModelRun,
    results: &[PropertyResult],
    run: &ModelRun,
    variant: &Variant,
    without: &[PropertyResult],
) -> (BTreeMap<String, Need>, BTreeMap<String, Counterexample>) {
    let mut verdicts = BTreeMap::new();
    let mut counterexamples = BTreeMap::new();
    for (i, p) in run.analysis.program.properties.iter().enumerate() {
        let needed = without[i].violating_classes > results[i].violating_classes
            || (!without[i].unproven.is_empty() && results[i].holds);
        verdicts.insert(
            p.name.clone(),
            if needed {
                Need::Needed
            } else {
                Need::Redundant
            },
        );
        if needed {
            // The first violation without the sync that the program as written does not have.
            let v =
                first_new_violation(base_run, run, i).or_else(|| without[i].counterexample.clone());
            if let Some(v) = v {
                counterexamples.insert(p.name.clone(), Counterexample::of(run, variant, &v));
            }
        }
    }
    (verdicts, counterexamples)
}

/// The minimal sets of kept syncs per holding property and for all of them together (`*`):
/// every subset of the syncs not in `by_kept` yet is checked (in parallel), then the minimal
/// ones are picked.
fn minimal_sets(
    a: &Analysis,
    model: &ModelSpec,
    syncs: &[usize],
    results: &[PropertyResult],
    mut by_kept: BTreeMap<Vec<usize>, Vec<bool>>,
) -> BTreeMap<String, Vec<Vec<usize>>> {
    let props = &a.program.properties;
    let mut minimal_sets = BTreeMap::new();
    let todo: Vec<Vec<usize>> = (0u32..(1u32 << syncs.len()))
        .map(|mask| {
            (0..syncs.len())
                .filter(|i| mask >> i & 1 == 1)
                .map(|i| syncs[i])
                .collect()
        })
        .filter(|kept: &Vec<usize>| !by_kept.contains_key(kept))
        .collect();
    let done: Vec<(Vec<usize>, Vec<bool>)> = todo
        .into_par_iter()
        .map(|kept| {
            let removed = syncs
                .iter()
                .copied()
                .filter(|s| !kept.contains(s))
                .collect();
            let variant = Variant {
                removed,
                ..Variant::default()
            };
            let r = a.holds(model, &variant.apply(&a.trace), &[], None);
            (kept, r)
        })
        .collect();
    by_kept.extend(done);
    let holding: Vec<usize> = (0..props.len()).filter(|&i| results[i].holds).collect();
    for &i in &holding {
        minimal_sets.insert(props[i].name.clone(), minimal(&by_kept, |r| r[i]));
    }
    if !holding.is_empty() {
        minimal_sets.insert(
            "*".to_string(),
            minimal(&by_kept, |r| holding.iter().all(|&i| r[i])),
        );
    }
    minimal_sets
}

/// Per property with minimal sets: the syncs in some minimal set but not all (any one of them
/// can stand in for the others), when there are two or more, and the state that breaks the
/// property without all of them.
fn alternatives(
    a: &Analysis,
    model: &ModelSpec,
    base_run: &ModelRun,
    syncs: &[usize],
    minimal_sets: &BTreeMap<String, Vec<Vec<usize>>>,
) -> BTreeMap<String, Alternatives> {
    let mut alternatives = BTreeMap::new();
    for (i, p) in a.program.properties.iter().enumerate() {
        let Some(sets) = minimal_sets.get(&p.name) else {
            continue;
        };
        let in_all: BTreeSet<usize> = syncs
            .iter()
            .copied()
            .filter(|s| sets.iter().all(|m| m.contains(s)))
            .collect();
        let some: Vec<usize> = syncs
            .iter()
            .copied()
            .filter(|s| !in_all.contains(s) && sets.iter().any(|m| m.contains(s)))
            .collect();
        if some.len() < 2 {
            continue;
        }
        let variant = Variant {
            removed: some.iter().copied().collect(),
            ..Variant::default()
        };
        let run = a.run_trace(model, variant.apply(&a.trace));
        let cx =
            first_new_violation(base_run, &run, i).map(|v| Counterexample::of(&run, &variant, &v));
        alternatives.insert(
            p.name.clone(),
            Alternatives {
                ops: some,
                counterexample: cx,
            },
        );
    }
    alternatives
}

/// The minimal sets (by inclusion) among the kept-sync sets that satisfy `ok`.
fn minimal(
    by_kept: &BTreeMap<Vec<usize>, Vec<bool>>,
    ok: impl Fn(&[bool]) -> bool,
) -> Vec<Vec<usize>> {
    let mut good: Vec<&Vec<usize>> = by_kept
        .iter()
        .filter(|(_, r)| ok(r))
        .map(|(k, _)| k)
        .collect();
    good.sort_by_key(|k| (k.len(), (*k).clone()));
    let mut out: Vec<Vec<usize>> = Vec::new();
    for k in good {
        if !out.iter().any(|m| m.iter().all(|x| k.contains(x))) {
            out.push(k.clone());
        }
    }
    out
}

/// The first violation of property `i` in `run` that is not a violation in `base`.
fn first_new_violation(base: &ModelRun, run: &ModelRun, i: usize) -> Option<Violation> {
    let p = &run.analysis.program.properties[i];
    let from = run.threshold(&p.when);
    // In a cone, states compare as the properties read them.
    fn shown<'s>(
        cone: Option<&crate::cone::Reads>,
        s: &'s crate::CrashState,
    ) -> std::borrow::Cow<'s, crate::CrashState> {
        match cone {
            Some(r) => std::borrow::Cow::Owned(r.project(s)),
            None => std::borrow::Cow::Borrowed(s),
        }
    }
    let cone = run.analysis.cone();
    for point in run.exploration.points.iter().filter(|pt| pt.at >= from) {
        let base_states: BTreeSet<std::borrow::Cow<crate::CrashState>> = base.exploration.points
            [point.at]
            .states
            .iter()
            .map(|s| shown(cone, &s.state))
            .collect();
        let cx = crate::state::EvalContext::of(run.analysis, &run.trace, point.at);
        for s in &point.states {
            if !crate::state::eval(&p.expr, &s.state, &cx)
                && !base_states.contains(&shown(cone, &s.state))
            {
                return Some(Violation {
                    at: point.at,
                    state: s.clone(),
                });
            }
        }
    }
    None
}
