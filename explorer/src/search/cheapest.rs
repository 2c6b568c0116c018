//! The cheapest sync treatment that keeps the target properties: every combination of keep /
//! fdatasync / drop in order of cost up to [`MAX_EXHAUSTIVE_SYNCS`] sync calls, greedy past it.

use super::{call_cost, sync_ops, weakenable, MAX_EXHAUSTIVE_SYNCS};
use crate::syncs::Variant;
use crate::Analysis;
use rayon::prelude::*;
use serde::Serialize;
use unplug_model::{ModelSpec, OpNo};

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
    pub op: OpNo,
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
    let t = Treatments::new(a, model, target);
    let limit = below.unwrap_or(u32::MAX);
    if t.syncs.len() <= MAX_EXHAUSTIVE_SYNCS {
        t.exhaustive(limit)
    } else {
        t.greedy(limit)
    }
}

/// The sync calls of a program, what each can become, and the question asked of a treatment
/// (one [`Treatment`] per sync call, in op order).
struct Treatments<'a> {
    a: &'a Analysis,
    model: &'a ModelSpec,
    target: &'a [usize],
    syncs: Vec<OpNo>,
    options: Vec<Vec<Treatment>>,
}

impl<'a> Treatments<'a> {
    fn new(a: &'a Analysis, model: &'a ModelSpec, target: &'a [usize]) -> Self {
        let syncs = sync_ops(a);
        let options = syncs
            .iter()
            .map(|&k| {
                if weakenable(a, k) {
                    vec![Treatment::Drop, Treatment::Fdatasync, Treatment::Keep]
                } else {
                    vec![Treatment::Drop, Treatment::Keep]
                }
            })
            .collect();
        Treatments {
            a,
            model,
            target,
            syncs,
            options,
        }
    }

    fn one_cost(&self, k: OpNo, tr: Treatment) -> u32 {
        match tr {
            Treatment::Drop => 0,
            Treatment::Fdatasync => call_cost(self.a, k, true),
            Treatment::Keep => call_cost(self.a, k, false),
        }
    }

    fn cost_of(&self, t: &[Treatment]) -> u32 {
        self.syncs
            .iter()
            .zip(t)
            .map(|(&k, &tr)| self.one_cost(k, tr))
            .sum()
    }

    /// Whether the treatment keeps every target property.
    fn keeps(&self, t: &[Treatment]) -> bool {
        let mut v = Variant::default();
        for (&k, tr) in self.syncs.iter().zip(t) {
            match tr {
                Treatment::Drop => {
                    v.removed.insert(k.get());
                }
                Treatment::Fdatasync => {
                    v.datasync.insert(k.get());
                }
                Treatment::Keep => {}
            }
        }
        let r = self.a.holds(self.model, &v.apply(&self.a.trace), &[], None);
        self.target.iter().all(|&i| r[i])
    }

    /// Every sync as written.
    fn written(&self) -> Vec<Treatment> {
        vec![Treatment::Keep; self.syncs.len()]
    }

    fn choices(&self, t: &[Treatment]) -> Vec<SyncChoice> {
        self.syncs
            .iter()
            .zip(t)
            .map(|(&k, &tr)| SyncChoice {
                op: k,
                call: self.a.program.op(k).text.clone(),
                treatment: tr,
                cost: self.one_cost(k, tr),
            })
            .collect()
    }

    /// Every combination cheaper than `limit`, cost level by cost level (each level in
    /// parallel), up to the first level at which some keep the targets: all of those.
    fn exhaustive(&self, limit: u32) -> Option<Cheapest> {
        let mut all: Vec<(u32, Vec<Treatment>)> = vec![(0, Vec::new())];
        for opts in &self.options {
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
            x.0 = self.cost_of(&x.1);
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
                .filter(|x| self.keeps(&x.1))
                .map(|x| &x.1)
                .collect();
            if !good.is_empty() {
                // Most kept calls first: keep over fdatasync over drop, op by op.
                let mut variants: Vec<Vec<SyncChoice>> =
                    good.into_iter().map(|t| self.choices(t)).collect();
                variants.sort_by_key(|v| {
                    std::cmp::Reverse(v.iter().map(|c| c.treatment).collect::<Vec<_>>())
                });
                return Some(Cheapest {
                    cost,
                    written_cost: self.cost_of(&self.written()),
                    exhaustive: true,
                    explored,
                    variants,
                });
            }
            at = end;
        }
        None
    }

    /// Greedy: from the program as written, take the single change (drop, or fsync ->
    /// fdatasync) that saves most and keeps the targets, until none does.
    fn greedy(&self, limit: u32) -> Option<Cheapest> {
        let mut cur = self.written();
        let written_cost = self.cost_of(&cur);
        let mut explored = 1;
        if !self.keeps(&cur) {
            return None;
        }
        loop {
            let mut moves: Vec<(u32, usize, Treatment)> = Vec::new();
            for (i, opts) in self.options.iter().enumerate() {
                for &o in opts {
                    if o < cur[i] {
                        let mut t = cur.clone();
                        t[i] = o;
                        moves.push((self.cost_of(&t), i, o));
                    }
                }
            }
            moves.sort();
            let found = moves.into_par_iter().find_first(|&(_, i, o)| {
                let mut t = cur.clone();
                t[i] = o;
                self.keeps(&t)
            });
            explored += 1;
            match found {
                Some((_, i, o)) => cur[i] = o,
                None => break,
            }
        }
        let cost = self.cost_of(&cur);
        (cost < limit).then(|| Cheapest {
            cost,
            written_cost,
            exhaustive: false,
            explored,
            variants: vec![self.choices(&cur)],
        })
    }
}
