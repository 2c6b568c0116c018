//! Exact enumeration of crash states.
//!
//! At crash point k (ops 1..=k have returned; op k+1 may have started) a crash state is the result
//! of a downward-closed set of effects issued by ops 1..=k+1 that contains the durability floor of
//! the syncs among ops 1..=k. The enumeration splits effects in two:
//! - *global* effects (metadata): every downward-closed set of them is enumerated;
//! - *block versions*: for a fixed set of global effects, every block chooses its own versions
//!   independently (block versions only depend on global effects), so for each chunk the explorer
//!   computes the set of values a block can end up with, and a crash-state class records which of
//!   them the chunk's blocks take. Counting the members of a class is combinatorics
//!   ([`crate::count::Count::surjections`]), not enumeration.
//!
//! The module's parts: `reference` is the reference code (a downset's metadata in ordered maps,
//! each chunk's candidates, the state of each combination of choices), `dense` the fast path the
//! enumeration runs (the same, over dense arrays, with a key per combination so that a class
//! found before costs no state), `chunk_values` what both use to turn a chunk's values into
//! segments and choices, `buffers` the fast path's reusable buffers and class tables, `fx` their
//! hasher. This file holds the results, the crash point, and the enumeration's driver.

mod buffers;
mod chunk_values;
mod dense;
mod downsets;
mod fx;
mod reference;

use crate::cone::Cone;
use crate::count::Count;
use crate::graph::Graph;
use crate::state::CrashState;
use buffers::{Buffers, Classes, Keys, Odometer};
use serde::Serialize;
use unplug_model::volatile::Trace;
use unplug_model::Persistence;

pub use chunk_values::MAX_OPTIONS;
pub use reference::volatile_state;

/// Limits that keep an exploration bounded. When one is hit the result says so and which crash
/// points are unproven; nothing is silently dropped.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Limits {
    /// Downward-closed sets of global effects per crash point.
    pub max_downsets: usize,
    /// Distinct crash-state classes per crash point.
    pub max_states: usize,
    /// Live bytes of the process (read from the meter installed with
    /// [`crate::budget::set_meter`]; `usize::MAX`: no budget). Past it, the crash point being
    /// explored and every later one are unproven.
    pub max_memory: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_downsets: 1 << 20,
            max_states: 200_000,
            max_memory: usize::MAX,
        }
    }
}

/// Which block values a class chose for one chunk: indices into the chunk's candidate list of
/// the downset that produced it (`None` = the base value: the latest durable metadata's, or the
/// initial content).
pub type Choice = Vec<Option<usize>>;

/// How to rebuild one crash state: the crash point, the global effects that persisted, and for
/// each visible chunk with more than one possible value, the versions its blocks hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Witness {
    pub at: usize,
    pub persisted: Vec<usize>,
    /// (chunk index, chosen sources): a source is `None` for the base value, or the effect index
    /// of a block version.
    pub chunks: Vec<(usize, Vec<Option<usize>>)>,
    /// The state was built as the properties read it (see `dense/project.rs`): `chunks` names
    /// only the chunks whose content they read, and every other chunk takes its first option;
    /// `persisted` is empty and `excluded` names the downset ([`crate::ModelRun::whole`]
    /// builds the whole state and its whole witness).
    #[serde(skip)]
    pub partial: bool,
    /// For a partial witness: the effects the walk decided to leave out (see
    /// `downsets.rs`). The downset holds every global effect issued by op `at`+1 that can be
    /// durable here and follows none of them: a few effects name it, not every persisted one.
    #[serde(skip)]
    pub excluded: Vec<usize>,
}

/// One distinct crash-state class at a crash point.
#[derive(Clone, Debug, Serialize)]
pub struct StateEntry {
    pub state: CrashState,
    /// How many concrete disk states the class stands for (JSON: its exact expression).
    #[serde(serialize_with = "count_expr")]
    pub count: Count,
    pub witness: Witness,
}

/// The crash states of one crash point.
#[derive(Clone, Debug, Serialize)]
pub struct Point {
    pub at: usize,
    /// Sorted by state, so output is deterministic.
    pub states: Vec<StateEntry>,
    /// Distinct concrete crash states (the sum of the classes' counts; JSON: its exact
    /// expression).
    #[serde(serialize_with = "count_expr")]
    pub total: Count,
    /// A limit was hit: `states` is incomplete.
    pub bound_hit: bool,
    /// The caller ended the enumeration early ([`Explorer::point_until`]): `states` is only a
    /// part of the point's.
    #[serde(skip)]
    pub stopped: bool,
    /// When the bound on classes was hit: the state found at the bound (the first one past it).
    /// It is not one of `states` (listings and counts stay within the bound), but properties are
    /// checked on it too, so that a violation found at the bound is reported as a failure.
    #[serde(skip)]
    pub beyond_bound: Option<StateEntry>,
}

impl Point {
    /// Every state found at this crash point: the classes, then the state at the bound.
    pub fn seen(&self) -> impl Iterator<Item = &StateEntry> {
        self.states.iter().chain(self.beyond_bound.iter())
    }
}

/// All crash points of one program under one model.
#[derive(Clone, Debug, Serialize)]
pub struct Exploration {
    pub points: Vec<Point>,
}

impl Exploration {
    pub fn unproven(&self) -> Vec<usize> {
        self.points
            .iter()
            .filter(|p| p.bound_hit)
            .map(|p| p.at)
            .collect()
    }
}

fn count_expr<S: serde::Serializer>(n: &Count, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&n.expression())
}

/// The source of a unit's value that stands for garbage in a [`Choice`] (`g` in replay strings).
pub const GARBAGE: usize = usize::MAX;

/// Explores every crash point of a program.
pub fn explore(trace: &Trace, p: &Persistence, g: &Graph, limits: Limits) -> Exploration {
    let mut explorer = Explorer::new(trace, p, g);
    let points = (0..=trace.ops.len())
        .map(|k| explorer.point(k, limits))
        .collect();
    Exploration { points }
}

/// The durable floor at crash point k, closed under edges.
pub fn floor_at(p: &Persistence, g: &Graph, k: usize) -> Vec<bool> {
    let mut in_floor = vec![false; p.effects.len()];
    let mut stack: Vec<usize> = p
        .floors
        .iter()
        .filter(|f| f.op <= k)
        .flat_map(|f| f.effects.iter().copied())
        .collect();
    while let Some(e) = stack.pop() {
        if !in_floor[e] {
            in_floor[e] = true;
            stack.extend(g.preds(e));
        }
    }
    in_floor
}

/// One crash point of one program under one model: what the enumeration of its states needs.
pub struct CrashPoint<'a> {
    pub trace: &'a Trace,
    pub p: &'a Persistence,
    pub g: &'a Graph,
    pub k: usize,
    /// The effects durable here (the floor of the completed syncs, closed under edges).
    pub floor: Vec<bool>,
    /// The cone of influence of the properties asked about (see `cone.rs`): what the
    /// enumeration need not branch on for them. None: every state is enumerated.
    pub cone: Option<&'a Cone>,
    /// With the cone: states are built as the properties read it (see `dense/project.rs`).
    pub proj: Option<&'a dense::Projection>,
}

impl<'a> CrashPoint<'a> {
    pub fn new(trace: &'a Trace, p: &'a Persistence, g: &'a Graph, k: usize) -> Self {
        CrashPoint {
            trace,
            p,
            g,
            k,
            floor: floor_at(p, g, k),
            cone: None,
            proj: None,
        }
    }

    /// This crash point, enumerating only what the cone's reads tell apart.
    fn reading(mut self, cone: Option<&'a Cone>, proj: Option<&'a dense::Projection>) -> Self {
        self.cone = cone;
        self.proj = proj;
        self
    }
}

pub fn explore_point(trace: &Trace, p: &Persistence, g: &Graph, k: usize, limits: Limits) -> Point {
    explore_point_counted(trace, p, g, k, limits).0
}

/// [`explore_point`], and how many downsets of global effects it visited (for [`crate::perf`]).
pub(crate) fn explore_point_counted(
    trace: &Trace,
    p: &Persistence,
    g: &Graph,
    k: usize,
    limits: Limits,
) -> (Point, usize) {
    let d = dense::Dense::new(trace, p);
    explore_point_with(
        CrashPoint::new(trace, p, g, k),
        limits,
        &d,
        &mut Buffers::default(),
        None,
    )
}

/// Explores crash points of one program under one model, reusing the interned program and the
/// buffers between points: for callers that explore points one by one (`Analysis::holds`);
/// `point(k)` is [`explore_point`].
pub(crate) struct Explorer<'a> {
    trace: &'a Trace,
    p: &'a Persistence,
    g: &'a Graph,
    dense: dense::Dense,
    bufs: Buffers,
    cone: Option<Cone>,
    proj: Option<dense::Projection>,
}

impl<'a> Explorer<'a> {
    pub fn new(trace: &'a Trace, p: &'a Persistence, g: &'a Graph) -> Self {
        Explorer {
            trace,
            p,
            g,
            dense: dense::Dense::new(trace, p),
            bufs: Buffers::take(),
            cone: None,
            proj: None,
        }
    }

    /// Enumerates only what `reads` can tell apart (see `cone.rs`), each state as they read it
    /// (see `dense/project.rs`; its witness is partial): the verdicts of the properties that
    /// read them are exact, the states and counts are not all of the point's.
    pub fn with_cone(mut self, reads: Option<&crate::cone::Reads>) -> Self {
        self.cone = reads.map(|r| Cone::new(self.trace, self.p, self.g, r));
        self.proj = self
            .cone
            .as_ref()
            .map(|c| dense::Projection::new(&self.dense, c, self.g));
        self
    }

    pub fn point(&mut self, k: usize, limits: Limits) -> Point {
        let cp = CrashPoint::new(self.trace, self.p, self.g, k)
            .reading(self.cone.as_ref(), self.proj.as_ref());
        explore_point_with(cp, limits, &self.dense, &mut self.bufs, None).0
    }

    /// Crash point `k` for verdicts: each new state goes to `stop` and is not kept (the point
    /// has no states), and the enumeration ends once `stop` returns true (the point's
    /// `stopped` then says so).
    pub fn point_until(
        &mut self,
        k: usize,
        limits: Limits,
        stop: &mut dyn FnMut(&CrashState) -> bool,
    ) -> Point {
        let cp = CrashPoint::new(self.trace, self.p, self.g, k)
            .reading(self.cone.as_ref(), self.proj.as_ref());
        explore_point_with(cp, limits, &self.dense, &mut self.bufs, Some(stop)).0
    }
}

impl Drop for Explorer<'_> {
    fn drop(&mut self) {
        std::mem::take(&mut self.bufs).give_back();
    }
}

impl CrashPoint<'_> {
    /// Drops from a witness the overwritten effects its state does not need (see
    /// `downsets.rs`; `overwritten` flags them): those that no other persisted effect requires
    /// and that no block version it lets be a candidate waits for. The state and the choices
    /// are the same: the overwritten effects write nothing that survives, and every chunk keeps
    /// its candidates.
    fn minimize(&self, w: &mut Witness, overwritten: &[bool]) {
        let dropped = |e: usize| overwritten.get(e).copied().unwrap_or(false);
        if !w.persisted.iter().any(|&e| dropped(e)) {
            return;
        }
        let mut inc = vec![false; self.p.effects.len()];
        for &e in &w.persisted {
            inc[e] = true;
        }
        let mut stack: Vec<usize> = w
            .persisted
            .iter()
            .copied()
            .filter(|&e| !dropped(e))
            .collect();
        for versions in &self.g.blocks_of_chunk {
            for &b in versions {
                if self.p.effects[b].op <= self.k + 1 && self.g.preds(b).all(|q| inc[q]) {
                    stack.extend(self.g.preds(b));
                }
            }
        }
        let mut keep = vec![false; self.p.effects.len()];
        while let Some(e) = stack.pop() {
            if !keep[e] {
                keep[e] = true;
                stack.extend(self.g.preds(e));
            }
        }
        w.persisted.retain(|&e| keep[e]);
    }
}

/// The whole crash state a partial witness names (see [`Witness::partial`]): the state of its
/// downset, with its choices for the chunks it names and the first option for every other
/// chunk, and the whole witness of that state (without the overwritten effects it need not
/// name, as the enumeration's witnesses).
pub fn whole(trace: &Trace, p: &Persistence, g: &Graph, w: &Witness) -> (CrashState, Witness) {
    let cp = CrashPoint::new(trace, p, g, w.at);
    let inc = downset_excluding(&cp, &w.excluded);
    let d = dense::Dense::new(trace, p);
    let mut s = dense::Scratch::default();
    s.meta_reset(&d);
    for e in (0..inc.len()).filter(|&e| inc[e]) {
        s.meta_include(&d, p, e);
    }
    // What the enumeration would have deferred as overwritten (never a floor effect).
    let overwritten: Vec<bool> = (0..inc.len())
        .map(|e| inc[e] && !cp.floor[e] && d.overwritten(&s, e, None).0)
        .collect();
    let (state, mut whole) = match dense::view(&d, &mut s, &cp, &inc) {
        Some(mut dd) => match dd.picks_for(&w.chunks) {
            Some(pick) => dd.materialize(&d, p, w.at, &inc, &pick),
            None => reference_state(&cp, &inc, w),
        },
        // Too many paths for the fast path: the reference code.
        None => reference_state(&cp, &inc, w),
    };
    cp.minimize(&mut whole, &overwritten);
    (state, whole)
}

/// ALICE's single-deviation states at crash point `k`, whole: first the state where everything
/// that can be durable there is, each chunk holding its newest version; then, for each op up to
/// the one in flight, that state without the op's metadata effects (and what follows them):
/// the op lost or reordered against the later ones; then, for each chunk with two versions or
/// more, that state with the chunk one version older (a write seen in part). Each comes with
/// what it deviates by (`None` for the first). Duplicates are left in.
pub fn deviations(
    trace: &Trace,
    p: &Persistence,
    g: &Graph,
    k: usize,
) -> Vec<(Deviation, CrashState, Witness)> {
    let cp = CrashPoint::new(trace, p, g, k);
    // Per chunk: its versions that can be durable with `inc`, oldest first.
    let versions = |inc: &[bool], c: usize| -> Vec<usize> {
        g.blocks_of_chunk[c]
            .iter()
            .copied()
            .filter(|&b| p.effects[b].op <= k + 1 && g.preds(b).all(|q| inc[q]))
            .collect()
    };
    let build = |excluded: Vec<usize>, older: Option<usize>| {
        let inc = downset_excluding(&cp, &excluded);
        let chunks = (0..g.blocks_of_chunk.len())
            .filter_map(|c| {
                let v = versions(&inc, c);
                let pick = if Some(c) == older {
                    v.len().checked_sub(2).map(|i| v[i])
                } else {
                    v.last().copied()
                };
                match pick {
                    Some(b) => Some((c, vec![Some(b)])),
                    // The base value: one version older than the only one.
                    None if Some(c) == older && !v.is_empty() => Some((c, vec![None])),
                    None => None,
                }
            })
            .collect();
        let w = Witness {
            at: k,
            persisted: Vec::new(),
            chunks,
            partial: true,
            excluded,
        };
        whole(trace, p, g, &w)
    };
    let mut out = Vec::new();
    let (s, w) = build(Vec::new(), None);
    out.push((Deviation::None, s, w));
    let last = (k + 1).min(trace.ops.len());
    for op in 1..=last {
        let mine: Vec<usize> = (0..p.effects.len())
            .filter(|&e| p.effects[e].op == op && !p.effects[e].is_block() && !cp.floor[e])
            .collect();
        if !mine.is_empty() {
            let (s, w) = build(mine, None);
            out.push((Deviation::Op(op), s, w));
        }
    }
    let full = downset_excluding(&cp, &[]);
    for c in 0..g.blocks_of_chunk.len() {
        let v = versions(&full, c);
        if let Some(&b) = v.last() {
            let (s, w) = build(Vec::new(), Some(c));
            out.push((Deviation::Part(p.effects[b].op), s, w));
        }
    }
    out
}

/// What a single-deviation state deviates by (see [`deviations`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Deviation {
    None,
    /// The op's metadata effects left out.
    Op(usize),
    /// One chunk the op wrote one version older.
    Part(usize),
}

/// The state of downset `inc` with the choices of `w`, through the reference code.
fn reference_state(cp: &CrashPoint, inc: &[bool], w: &Witness) -> (CrashState, Witness) {
    let r = cp.downset(inc);
    let pick = cp.picks_for(&r, &w.chunks);
    cp.state_for(inc, &r, &pick)
}

/// The downset of crash point `cp` that holds every global effect that can be durable there
/// and follows none of `excluded` (in index order: an effect is in when its predecessors are,
/// it is not excluded, and it waits for no block version).
pub(crate) fn downset_excluding(cp: &CrashPoint, excluded: &[usize]) -> Vec<bool> {
    let (p, g, k) = (cp.p, cp.g, cp.k);
    let mut inc = vec![false; p.effects.len()];
    let mut out = vec![false; p.effects.len()];
    for &e in excluded {
        out[e] = true;
    }
    for (e, eff) in p.effects.iter().enumerate() {
        if eff.op > k + 1 {
            break;
        }
        inc[e] = !eff.is_block() && (cp.floor[e] || (!out[e] && g.preds(e).all(|q| inc[q])));
    }
    inc
}

/// When an assignment happened: (op, effect index). Effects are created in op order, so the
/// largest key among the durable assignments of a key is the one that wins.
type Stamp = (usize, usize);

/// [`explore_point`] with the interned program and reusable buffers of the fast path: every
/// downset of global effects (see [`enumerate`]) yields its classes, through the fast path unless
/// the downset is too large for it; the classes are then sorted into a [`Point`].
fn explore_point_with(
    cp: CrashPoint,
    limits: Limits,
    d: &dense::Dense,
    bufs: &mut Buffers,
    stop: Option<&mut dyn FnMut(&CrashState) -> bool>,
) -> (Point, usize) {
    let (p, k) = (cp.p, cp.k);
    let Buffers {
        scratch,
        keys,
        by_hash,
        next,
        included,
        picks,
        walk,
    } = bufs;
    keys.clear();
    let mut classes = Classes::new(by_hash, next, limits, stop);
    crate::budget::count_point();
    if crate::budget::must_stop(&limits) {
        // Out of memory or interrupted before this crash point: none of it is proven.
        classes.bound_hit = true;
        return (classes.into_point(k), 0);
    }
    let mut downsets = 0usize;
    walk.run(&cp, d, scratch, included, &mut |scratch, leaf| {
        downsets += 1;
        if downsets > limits.max_downsets {
            crate::budget::note(crate::budget::Bound::Downsets);
            classes.bound_hit = true;
            return false;
        }
        if crate::budget::must_stop(&limits) {
            classes.bound_hit = true;
            return false;
        }
        let complete = match dense::view(d, scratch, &cp, leaf.inc) {
            Some(dd) => {
                let complete = dd.complete();
                classes_of_dense(&cp, d, dd, leaf, keys, &mut classes, picks);
                complete
            }
            // Too many paths for the fast path: the reference code builds every state.
            None => {
                let overwritten = leaf.overwritten;
                cp.states(&leaf.whole(), &mut |state, mut w| {
                    classes.add(state, || {
                        cp.minimize(&mut w, overwritten);
                        w
                    });
                })
            }
        };
        if !complete {
            crate::budget::note(crate::budget::Bound::Choices);
            classes.bound_hit = true;
        }
        !classes.done()
    });
    // An effect whose steps the model elided, issued and not durable here: the states it
    // stands for are not all enumerated.
    if p.elided
        .iter()
        .any(|&e| p.effects[e].op <= k + 1 && !cp.floor[e])
    {
        crate::budget::note(crate::budget::Bound::Elided);
        classes.bound_hit = true;
    }
    (classes.into_point(k), downsets.min(limits.max_downsets))
}

/// Adds the classes of one downset, seen through the fast path: every combination of choices
/// has a key, and only a key not seen before costs a state (debug builds check the key against
/// the state, and the state against the reference code's).
#[inline]
fn classes_of_dense(
    cp: &CrashPoint,
    d: &dense::Dense,
    mut dd: dense::DenseDownset,
    leaf: &mut downsets::Leaf,
    keys: &mut Keys,
    classes: &mut Classes,
    picks: &mut Odometer,
) {
    let (p, k) = (cp.p, cp.k);
    // With a cone, only the files whose content the properties read have slots (see
    // `dense/project.rs`): every slot has all its options.
    picks.start(dd.option_counts());
    loop {
        let pick = &picks.pick;
        let key = dd.make_key(pick);
        let h = Keys::hash(key);
        if let Some(_i) = keys.get(h, key) {
            #[cfg(debug_assertions)]
            {
                // The key determines the state: check it (verdicts only keep no states).
                let (state, _) = dd.materialize(d, p, k, leaf.inc, pick);
                if let Some((found, _)) = classes.found.get(_i as usize) {
                    assert!(state == *found, "two states share a key");
                }
            }
        } else {
            let (state, w) = dd.materialize(d, p, k, leaf.inc, pick);
            #[cfg(debug_assertions)]
            if let Some(c) = cp.cone.filter(|_| w.partial) {
                // A state built as the properties read it is what they read of the whole
                // state its witness names (the reference code's).
                let inc = &leaf.whole();
                let r = cp.downset(inc);
                let (rs, _) = cp.state_for(inc, &r, &cp.picks_for(&r, &w.chunks));
                assert_eq!(c.reads.project(&rs), state, "the projection differs");
            }
            #[cfg(debug_assertions)]
            if !w.partial {
                // The fast view agrees with the reference code.
                let inc = &*leaf.inc;
                let r = cp.downset(inc);
                assert!(r
                    .options
                    .iter()
                    .map(|o| o.len())
                    .eq(picks.counts.iter().copied()));
                let (rs, rw) = cp.state_for(inc, &r, pick);
                assert!(
                    rs == state && rw == w,
                    "the fast path differs from the reference:\n{rs:?}\n{rw:?}\nfast:\n{state:?}\n{w:?}"
                );
            }
            let w = || {
                let mut w = w;
                if w.partial {
                    // A partial witness names its downset by the effects left out.
                    w.excluded.extend_from_slice(leaf.excluded);
                    w.excluded.sort_unstable();
                } else {
                    cp.minimize(&mut w, leaf.overwritten);
                }
                w
            };
            if let Some(i) = classes.add(state, w) {
                keys.insert(h, dd.key(), i);
            }
        }
        // A bound hit (classes, memory, interrupt) ends the downset too: the combinations
        // left could be astronomically many.
        if classes.done() || !picks.advance() {
            break;
        }
    }
}
