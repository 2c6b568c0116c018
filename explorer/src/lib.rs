//! The unplug explorer: builds the persistence graph of a program under a model, enumerates every
//! crash state at every crash point exactly, checks properties, and answers sync questions.
//!
//! It never touches a real file system: its input is a parsed [`Program`] and a [`ModelSpec`].
//!
//! ```
//! let src = "f = open a create\nwrite f 4KiB D\nfsync f\nproperty P: after 3: exists a\n";
//! let program = unplug_model::parse::parse(src).unwrap();
//! let analysis = unplug_explorer::Analysis::new(&program).unwrap();
//! let run = analysis.run(&unplug_model::ModelSpec::Posix);
//! // POSIX: fsync of a new file does not make its directory entry durable.
//! assert!(!run.check()[0].holds);
//! ```

pub mod budget;
pub mod cone;
pub mod count;
pub mod explore;
pub mod graph;
pub mod guarantee;
pub mod order;
pub mod perf;
pub mod replay;
pub mod search;
pub mod state;
pub mod syncs;
pub mod workloads;

pub use count::Count;
pub use explore::{Exploration, Limits, Point, StateEntry, Witness};
pub use state::{CrashState, Node, Segment};

use serde::Serialize;
use std::collections::BTreeMap;
use unplug_model::volatile::{OpFacts, SyncReq, Trace};
use unplug_model::{Diagnostic, Layout, ModelSpec, Persistence, Program, When};

/// A program made ready for exploration: parsed, executed on the volatile file system, with its
/// `old` and `new` states.
#[derive(Clone)]
pub struct Analysis {
    pub program: Program,
    pub trace: Trace,
    pub old: CrashState,
    pub new: CrashState,
    pub limits: Limits,
    /// The brute-force layout (every block its own chunk): see [`Analysis::set_per_block`].
    per_block: bool,
    /// One rule switched off (by id): see [`Analysis::set_dropped_rule`].
    drop_rule: Option<String>,
    /// Called once per exploration: see [`Analysis::set_on_explore`].
    on_explore: Option<std::sync::Arc<dyn Fn() + Send + Sync>>,
    /// What the properties read, when runs enumerate only that: see [`Analysis::set_cone`].
    cone: Option<cone::Reads>,
    /// What the `checker` predicate asks: see [`Analysis::set_judge`].
    judge: Option<std::sync::Arc<dyn state::Judge>>,
}

/// A program explored under one model.
pub struct ModelRun<'a> {
    pub analysis: &'a Analysis,
    pub model: ModelSpec,
    /// The trace explored: the analysis's own (borrowed), or a variant of it.
    pub trace: std::borrow::Cow<'a, Trace>,
    pub persistence: Persistence,
    pub graph: graph::Graph,
    pub exploration: Exploration,
}

/// The first violation of a property: where, and the state.
#[derive(Clone, Debug, Serialize)]
pub struct Violation {
    pub at: usize,
    pub state: StateEntry,
}

/// A property's result under one model.
#[derive(Clone, Debug, Serialize)]
pub struct PropertyResult {
    pub property: String,
    /// True when no crash state violates the property (and every crash point was explored).
    pub holds: bool,
    pub counterexample: Option<Violation>,
    /// Distinct violating crash-state classes, over all crash points.
    pub violating_classes: usize,
    /// Crash points where a bound was hit and the property is not proven.
    pub unproven: Vec<usize>,
}

impl Analysis {
    /// Executes the program's ops on the volatile file system; returns every semantic error.
    pub fn new(program: &Program) -> Result<Analysis, Vec<Diagnostic>> {
        Ok(Self::from_trace(
            program.clone(),
            unplug_model::execute(program)?,
        ))
    }

    /// An analysis of a program already executed (see [`unplug_model::load`]).
    pub fn from_trace(program: Program, trace: Trace) -> Analysis {
        Analysis {
            old: explore::volatile_state(&trace.initial),
            new: explore::volatile_state(&trace.last),
            program,
            trace,
            limits: Limits::default(),
            per_block: false,
            drop_rule: None,
            on_explore: None,
            cone: None,
            judge: None,
        }
    }

    /// Explores with every block its own chunk (the brute-force layout) instead of runs of
    /// interchangeable blocks. Crash-state classes are then concrete states, so two models'
    /// classes compare as sets (the strength order, `unplug workloads`), and the chunk reduction
    /// is cross-checked against it. Exponentially slower on large writes.
    pub fn set_per_block(&mut self, on: bool) {
        self.per_block = on;
    }

    /// Switches one rule off (by id): its edges and floors are not made, and the code it gates
    /// does not run. The mutation behind "rests on" ([`guarantee`]) and the rule tests, which
    /// show that every rule changes some outcome.
    pub fn set_dropped_rule(&mut self, id: Option<&str>) {
        self.drop_rule = id.map(str::to_string);
    }

    /// Called once per exploration of the program or one of its variants (sync analysis runs
    /// many): the CLI shows progress with it.
    pub fn set_on_explore(&mut self, f: Option<std::sync::Arc<dyn Fn() + Send + Sync>>) {
        self.on_explore = f;
    }

    /// Makes every run enumerate only what the program's properties read (their cone of
    /// influence, see [`cone`]; nothing changes when a property reads link counts): verdicts
    /// are exact, and [`ModelRun::check`] counts violating states as the properties read
    /// them. Sync analysis runs this way.
    pub fn set_cone(&mut self, on: bool) {
        self.cone = if on {
            cone::Reads::of_all(self.program.properties.iter().map(|p| &p.expr))
        } else {
            None
        };
    }

    /// Gives the `checker` predicate its judge (the application's checker). A crash point
    /// where the judge was unsure of some state it accepted (see [`state::Judge::unsure`]) is
    /// reported as not proven.
    pub fn set_judge(&mut self, judge: Option<std::sync::Arc<dyn state::Judge>>) {
        self.judge = judge;
    }

    /// The judge of the `checker` predicate, if one is set.
    pub fn judge(&self) -> Option<&dyn state::Judge> {
        self.judge.as_deref()
    }

    /// How many unsure judgments the judge has made so far (0 without a judge).
    fn unsure(&self) -> usize {
        self.judge.as_ref().map_or(0, |j| j.unsure())
    }

    /// What runs enumerate, when not every state: see [`Analysis::set_cone`].
    pub fn cone(&self) -> Option<&cone::Reads> {
        self.cone.as_ref()
    }

    pub fn run(&self, model: &ModelSpec) -> ModelRun<'_> {
        self.run_cow(model, std::borrow::Cow::Borrowed(&self.trace))
    }

    /// The program under `model`, not yet explored (`exploration` is empty): its crash points
    /// come one at a time from [`ModelRun::points`], so that a caller that prints each one and
    /// drops it (`unplug states`) holds one crash point's states at a time, not the program's.
    pub fn prepare(&self, model: &ModelSpec) -> ModelRun<'_> {
        self.prepare_cow(model, std::borrow::Cow::Borrowed(&self.trace))
    }

    fn prepare_cow<'a>(
        &'a self,
        model: &ModelSpec,
        trace: std::borrow::Cow<'a, Trace>,
    ) -> ModelRun<'a> {
        let (persistence, graph) = self.persistence(model, &trace);
        ModelRun {
            analysis: self,
            model: model.clone(),
            trace,
            persistence,
            graph,
            exploration: explore::Exploration { points: Vec::new() },
        }
    }

    /// Explores a variant of the program's trace (a sync removed, weakened or inserted).
    fn persistence(&self, model: &ModelSpec, trace: &Trace) -> (Persistence, graph::Graph) {
        if let Some(f) = &self.on_explore {
            f();
        }
        self.build(model, trace)
    }

    /// The persistence and graph of `trace` under `model`, with this analysis's layout and
    /// dropped rule.
    pub(crate) fn build(&self, model: &ModelSpec, trace: &Trace) -> (Persistence, graph::Graph) {
        let layout = if self.per_block {
            Layout::per_block(trace, model.unit())
        } else {
            model.layout(trace)
        };
        let persistence =
            unplug_model::persist::build_dropping(model, trace, layout, self.drop_rule.as_deref());
        let graph = graph::Graph::new(&persistence);
        (persistence, graph)
    }

    /// Whether each property holds on a variant of the trace, exploring only the crash points
    /// that matter and stopping as soon as every property has failed: the fast path of sync
    /// analysis, where only verdicts are needed. A bound hit counts as not holding.
    /// With `only`, just that property is checked (the others are reported as not holding).
    pub fn holds(
        &self,
        model: &ModelSpec,
        trace: &Trace,
        inserted: &[usize],
        only: Option<usize>,
    ) -> Vec<bool> {
        self.verdicts(model, trace, inserted, only)
            .into_iter()
            .map(|v| v == Some(true))
            .collect()
    }

    /// [`Self::holds`] with a bound hit told apart: per property `Some(true)` (holds),
    /// `Some(false)` (a violating state was found; with `only`, every other property) or `None`
    /// (no violation found before a bound cut the enumeration short).
    pub fn verdicts(
        &self,
        model: &ModelSpec,
        trace: &Trace,
        inserted: &[usize],
        only: Option<usize>,
    ) -> Vec<Option<bool>> {
        if crate::budget::interrupted() {
            // Nothing is settled once the user asked to stop.
            return vec![None; self.program.properties.len()];
        }
        let (p, g) = self.persistence(model, trace);
        let props = &self.program.properties;
        let from: Vec<usize> = props.iter().map(|x| threshold(&x.when, inserted)).collect();
        let mut ok: Vec<Option<bool>> = (0..props.len())
            .map(|i| Some(only.is_none_or(|o| o == i)))
            .collect();
        // Only what the properties read is told apart: verdicts are all this needs.
        let reads = cone::Reads::of_all(props.iter().map(|x| &x.expr));
        let mut explorer = explore::Explorer::new(trace, &p, &g).with_cone(reads.as_ref());
        for k in from.iter().copied().min().unwrap_or(0)..=trace.ops.len() {
            // Live: asked, from here on, and neither failed nor cut short by a bound yet.
            let live: Vec<usize> = (0..props.len())
                .filter(|&i| ok[i] == Some(true) && from[i] <= k)
                .collect();
            if live.is_empty() {
                if ok.iter().all(|x| *x != Some(true)) {
                    break;
                }
                continue;
            }
            // Each live property's verdict is settled by its first violating state: the
            // enumeration stops once every live property has one.
            let mut violated = vec![false; live.len()];
            let cx = state::EvalContext::of(self, trace, k);
            let unsure = self.unsure();
            let point = explorer.point_until(k, self.limits, &mut |s| {
                for (v, &i) in violated.iter_mut().zip(&live) {
                    *v = *v || !state::eval(&props[i].expr, s, &cx);
                }
                violated.iter().all(|v| *v)
            });
            for (v, &i) in violated.iter().zip(&live) {
                if *v {
                    ok[i] = Some(false);
                } else if point.bound_hit || self.unsure() > unsure {
                    if !point.bound_hit {
                        budget::note(budget::Bound::Checker);
                    }
                    ok[i] = None;
                }
            }
        }
        ok
    }

    pub(crate) fn run_trace(&self, model: &ModelSpec, trace: Trace) -> ModelRun<'_> {
        self.run_cow(model, std::borrow::Cow::Owned(trace))
    }

    fn run_cow<'a>(
        &'a self,
        model: &ModelSpec,
        trace: std::borrow::Cow<'a, Trace>,
    ) -> ModelRun<'a> {
        let mut run = self.prepare_cow(model, trace);
        let points = run
            .points_reading(0..=run.trace.ops.len(), self.cone.as_ref())
            .collect();
        run.exploration = explore::Exploration { points };
        run
    }

    /// The trace with syncs inserted after op `after` (0 = before the first op), in order.
    pub(crate) fn with_syncs(trace: &Trace, after: usize, reqs: Vec<SyncReq>) -> Trace {
        let mut t = trace.clone();
        for (i, req) in reqs.into_iter().enumerate() {
            t.ops.insert(
                after + i,
                OpFacts {
                    sync: Some(req),
                    inserted: true,
                    ..OpFacts::default()
                },
            );
            t.contents.insert(after + i, BTreeMap::new());
            t.paths_after.insert_unchanged(after + i);
        }
        t
    }
}

/// The first crash point at which a property must hold, when syncs were inserted after the ops
/// in `inserted` (each shifts the later op numbers by one).
pub fn threshold(when: &When, inserted: &[usize]) -> usize {
    match when {
        When::Always => 0,
        When::After { op, .. } => op + inserted.iter().filter(|&&a| a < *op).count(),
    }
}

impl ModelRun<'_> {
    /// The crash points `ks` of the run, each explored when the iterator reaches it (under the
    /// analysis's limits): the points [`Analysis::run`] collects into `exploration`.
    pub fn points(
        &self,
        ks: std::ops::RangeInclusive<usize>,
    ) -> impl Iterator<Item = explore::Point> + '_ {
        self.points_reading(ks, None)
    }

    /// [`ModelRun::points`], enumerating only what `reads` can tell apart (see [`cone`]):
    /// properties over those reads have the same verdicts on these states as on all states.
    pub fn points_reading(
        &self,
        ks: std::ops::RangeInclusive<usize>,
        reads: Option<&cone::Reads>,
    ) -> impl Iterator<Item = explore::Point> + '_ {
        let mut explorer =
            explore::Explorer::new(&self.trace, &self.persistence, &self.graph).with_cone(reads);
        let limits = self.analysis.limits;
        ks.map(move |k| explorer.point(k, limits))
    }

    /// Checks property `i` without enumerating what it cannot read (its cone of influence, see
    /// [`cone`]): the verdict and the unproven crash points are those of [`ModelRun::check`];
    /// the counterexample is the first violating state found at the first crash point that
    /// has one; `violating_classes` counts the distinct violating states *as the property
    /// reads them* (the paths it names), summed over crash points. Needs no `exploration`
    /// ([`Analysis::prepare`]).
    pub fn check_in_cone(&self, i: usize) -> PropertyResult {
        let p = &self.analysis.program.properties[i];
        let reads = cone::Reads::of(&p.expr);
        let from = self.threshold(&p.when);
        let points = self.points_reading(from..=self.trace.ops.len(), reads.as_ref());
        self.judge(p, reads.as_ref(), points)
    }

    /// The whole crash state of `e` when it was built as the properties read it (its witness
    /// is partial, see [`explore::Witness::partial`]): the state of the same persisted effects
    /// with the same choices for the chunks it names, the first option for every other chunk.
    /// A whole state comes back as it is.
    pub fn whole(&self, e: &explore::StateEntry) -> explore::StateEntry {
        if !e.witness.partial {
            return e.clone();
        }
        let (state, witness) =
            explore::whole(&self.trace, &self.persistence, &self.graph, &e.witness);
        explore::StateEntry {
            count: state.concrete_count(),
            state,
            witness,
        }
    }

    /// The first crash point at which a property must hold.
    pub fn threshold(&self, when: &When) -> usize {
        threshold(when, &[])
    }

    /// Checks every property of the program.
    pub fn check(&self) -> Vec<PropertyResult> {
        self.analysis
            .program
            .properties
            .iter()
            .map(|p| self.check_one(p))
            .collect()
    }

    pub(crate) fn check_one(&self, p: &unplug_model::Property) -> PropertyResult {
        let from = self.threshold(&p.when);
        let points = self.exploration.points.iter().filter(|pt| pt.at >= from);
        self.judge(p, self.analysis.cone.as_ref(), points)
    }

    /// Property `p` over `points`: a point cut short is unproven, and the state found at the
    /// bound is judged too (a violation found is a violation, bound or not). With `reads` (a
    /// cone), violating states count as the property reads them.
    fn judge<P: std::borrow::Borrow<explore::Point>>(
        &self,
        p: &unplug_model::Property,
        reads: Option<&cone::Reads>,
        points: impl Iterator<Item = P>,
    ) -> PropertyResult {
        let mut counterexample = None;
        let mut violating = 0;
        let mut unproven = Vec::new();
        for point in points {
            let point = point.borrow();
            let cx = state::EvalContext::of(self.analysis, &self.trace, point.at);
            let unsure = self.analysis.unsure();
            let mut shown = std::collections::BTreeSet::new();
            let before = violating;
            for s in point.seen() {
                if !state::eval(&p.expr, &s.state, &cx)
                    && reads.is_none_or(|r| shown.insert(r.project(&s.state)))
                {
                    violating += 1;
                    if counterexample.is_none() {
                        counterexample = Some(Violation {
                            at: point.at,
                            state: s.clone(),
                        });
                    }
                }
            }
            // A point where the judge accepted a state it did not check fully is unproven,
            // unless it found a violation there.
            if point.bound_hit {
                unproven.push(point.at);
            } else if self.analysis.unsure() > unsure && violating == before {
                budget::note(budget::Bound::Checker);
                unproven.push(point.at);
            }
        }
        PropertyResult {
            property: p.name.clone(),
            holds: violating == 0 && unproven.is_empty(),
            counterexample: counterexample.map(|v| Violation {
                at: v.at,
                state: self.whole(&v.state),
            }),
            violating_classes: violating,
            unproven,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ALICE's single deviations: everything durable is the running system's state; leaving
    /// the rename out keeps the old name; the write one version older leaves zeros under the
    /// new name (its size durable). Each is a crash state the enumeration finds too.
    #[test]
    fn single_deviations_are_crash_states() {
        let src = "f = open a create\nftruncate f 4KiB\nwrite f 4KiB D\nrename a b\n";
        let program = unplug_model::parse::parse(src).expect("parses");
        let a = Analysis::new(&program).expect("runs");
        let m = ModelSpec::Posix;
        let run = a.run(&m);
        let devs = explore::deviations(&run.trace, &run.persistence, &run.graph, 4);
        let shown: Vec<String> = devs
            .iter()
            .map(|(d, s, _)| format!("{d:?}: {}", s.to_string().replace('\n', "; ")))
            .collect();
        assert_eq!(devs[0].1, a.new, "{shown:#?}");
        let states: Vec<&CrashState> = run.exploration.points[4]
            .states
            .iter()
            .map(|s| &s.state)
            .collect();
        for (d, s, _) in &devs {
            assert!(states.contains(&s), "{d:?} is no crash state: {s}");
        }
        let text = |d: explore::Deviation| {
            devs.iter()
                .find(|x| x.0 == d)
                .map(|x| x.1.to_string())
                .unwrap_or_default()
        };
        assert!(
            text(explore::Deviation::Op(4)).starts_with("a "),
            "{shown:#?}"
        );
        assert!(
            text(explore::Deviation::Part(3)).contains("zero"),
            "{shown:#?}"
        );
    }

    /// Sync analysis and "rests on" ask only whether properties hold: a crash point's
    /// enumeration ends at the first state that violates every live property, instead of
    /// enumerating (or running into a bound on) all of them.
    #[test]
    fn a_verdict_stops_at_the_first_violating_state() {
        let mut src = String::from("f = open a create\n");
        for _ in 0..10 {
            src.push_str("write f 4KiB D\n");
        }
        src.push_str("property P: after 11: size a == 40KiB\n");
        let program = unplug_model::parse::parse(&src).expect("parses");
        let a = Analysis::new(&program).expect("runs");
        let (p, g) = a.build(&ModelSpec::Ext4(Default::default()), &a.trace);
        let mut explorer = explore::Explorer::new(&a.trace, &p, &g);
        let all = explorer.point(11, a.limits);
        assert!(all.states.len() > 10, "{}", all.states.len());
        let mut seen = 0;
        let first = explorer.point_until(11, a.limits, &mut |_| {
            seen += 1;
            true
        });
        assert!(first.stopped && !first.bound_hit);
        assert_eq!((seen, first.states.len()), (1, 0));
        assert_eq!(a.holds(&p.model, &a.trace, &[], None), [false]);
    }
}
