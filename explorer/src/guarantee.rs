//! What a verdict rests on: a property that holds under a model holds because of some of the
//! model's rules; each rule is required by POSIX, documented, implementation behaviour of the
//! cited kernel code, or a model assumption. A rule is *load-bearing* for a property when
//! switching it off (the mutation [`Analysis::set_dropped_rule`] the rule tests use) makes the property
//! fail. The verdict rests on the least certain basis among its load-bearing rules; a property
//! that holds under `posix` is required by POSIX whatever the file system. When no single rule
//! is load-bearing (the property needs several rules together) and it fails under posix, the
//! verdict is counted as implementation behaviour: it is not a POSIX guarantee.

use crate::Analysis;
use serde::Serialize;
use unplug_model::{Basis, ModelSpec, Rule};

/// What a holding property rests on under one model.
#[derive(Clone, Debug, Serialize)]
pub struct Guarantee {
    /// The least certain basis among the load-bearing rules (POSIX when it holds under posix).
    pub basis: Basis,
    /// The rules whose removal makes the property fail, with their bases.
    pub load_bearing: Vec<&'static Rule>,
    /// The rules whose removal was not settled: no violation found before the mutation's
    /// bound ([`MUTATION_LIMITS`]) cut it short. They may be load-bearing too, so `basis` is
    /// only as certain as the settled ones make it.
    pub undetermined: Vec<&'static Rule>,
}

/// The bounds of one mutation. A switched-off ordering rule can make the state space
/// exponential in the program's length (every append of a log independent), and a rule that
/// is not load-bearing must be shown so by enumerating every state: past these bounds the rule
/// is reported as undetermined instead.
pub const MUTATION_LIMITS: crate::Limits = crate::Limits {
    max_downsets: 1 << 14,
    max_states: 20_000,
    max_memory: usize::MAX,
};

/// How certain a basis is: POSIX first, assumptions last.
fn rank(b: Basis) -> u8 {
    match b {
        Basis::Posix => 0,
        Basis::Documented => 1,
        Basis::Implementation => 2,
        Basis::Assumption => 3,
    }
}

/// What property `i` rests on under `model`, if it holds there. None too once the memory
/// budget was reached ([`crate::budget`]): a mutation cut short by it would count as
/// load-bearing, and each further one could fill the budget again.
pub fn guarantee(a: &Analysis, model: &ModelSpec, i: usize) -> Option<Guarantee> {
    if crate::budget::memory_hit() || !a.holds(model, &a.trace, &[], Some(i))[i] {
        return None;
    }
    let mut load_bearing = Vec::new();
    let mut undetermined = Vec::new();
    let mut bounded = a.clone();
    bounded.limits = crate::Limits {
        max_downsets: a.limits.max_downsets.min(MUTATION_LIMITS.max_downsets),
        max_states: a.limits.max_states.min(MUTATION_LIMITS.max_states),
        max_memory: a.limits.max_memory,
    };
    for r in model.rules() {
        let mut mutated = bounded.clone();
        mutated.set_dropped_rule(Some(r.id));
        match mutated.verdicts(model, &a.trace, &[], Some(i))[i] {
            Some(true) => {}
            Some(false) => load_bearing.push(r),
            None => undetermined.push(r),
        }
        if crate::budget::memory_hit() {
            return None;
        }
    }
    let holds_under_posix = *model == ModelSpec::Posix
        || bounded.verdicts(&ModelSpec::Posix, &a.trace, &[], Some(i))[i] == Some(true);
    if crate::budget::memory_hit() {
        return None;
    }
    let basis = if holds_under_posix {
        Basis::Posix
    } else {
        load_bearing
            .iter()
            .map(|r| r.basis)
            .max_by_key(|b| rank(*b))
            .unwrap_or(Basis::Implementation)
    };
    Some(Guarantee {
        basis,
        load_bearing,
        undetermined,
    })
}

/// Everything switching a rule off can change in a program's answer under `model`: each crash
/// point's count of distinct states, and each property's verdict.
pub fn outcome(a: &Analysis, model: &ModelSpec) -> String {
    let run = a.run(model);
    let counts: Vec<String> = run
        .exploration
        .points
        .iter()
        .map(|p| p.total.to_string())
        .collect();
    let verdicts: Vec<String> = run
        .check()
        .iter()
        .map(|r| format!("{}={}", r.property, r.holds))
        .collect();
    format!("{} | {}", counts.join(" "), verdicts.join(" "))
}

/// Whether the program shows rule `id` under `model`: switching the rule off
/// ([`Analysis::drop_rule`]) changes its [`outcome`].
pub fn shows(a: &Analysis, model: &ModelSpec, id: &str) -> bool {
    let mut mutated = a.clone();
    mutated.drop_rule = Some(id.to_string());
    outcome(&mutated, model) != outcome(a, model)
}
