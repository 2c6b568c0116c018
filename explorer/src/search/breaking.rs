//! The smallest program that breaks a property when syncs are dropped: a proptest
//! [`TestRunner`] with a seeded RNG generates variants (ops kept or dropped, syncs kept,
//! weakened or dropped), shrinks the first that breaks the property, and a final pass drops
//! single ops until none can go (1-minimal).

use super::{sync_ops, weakenable, Edit, Options};
use crate::syncs::{Counterexample, Variant};
use crate::Analysis;
use proptest::strategy::{BoxedStrategy, Strategy};
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use unplug_model::{ModelSpec, OpNo};

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
        let k = OpNo::from_index(i);
        if x == 0 {
            continue;
        }
        e.order.push(k.get());
        if x == 1 && a.program.op(k).kind.is_sync() && weakenable(a, k) {
            e.datasync.insert(k.get());
        }
    }
    e
}

/// The search for a smallest program that breaks property `i` under `model` when syncs go.
pub fn breaking(a: &Analysis, model: &ModelSpec, i: usize, holds: bool, o: &Options) -> Breaking {
    if !holds {
        return Breaking::FailsAsWritten;
    }
    let syncs: Vec<usize> = sync_ops(a).into_iter().map(OpNo::get).collect();
    let none = Variant {
        removed: syncs.iter().copied().collect(),
        ..Variant::default()
    };
    if a.holds(model, &none.apply(&a.trace), &[], Some(i))[i] {
        return Breaking::NoSyncNeeded;
    }
    let oracle = Oracle {
        a,
        model,
        i,
        syncs,
        cache: Mutex::new(HashMap::new()),
    };
    match oracle.generate(o) {
        Some(g) => Breaking::Found(Box::new(oracle.report(oracle.minimize(g)))),
        None => Breaking::NotFound,
    }
}

/// Whether variants of `a` break property `i` under `model` (each variant loaded and checked
/// once).
struct Oracle<'a> {
    a: &'a Analysis,
    model: &'a ModelSpec,
    i: usize,
    syncs: Vec<usize>,
    cache: Mutex<HashMap<Edit, Option<bool>>>,
}

impl Oracle<'_> {
    /// Whether the property holds in the variant (None: the variant does not execute).
    fn holds_in(&self, e: &Edit) -> Option<bool> {
        if let Some(r) = self.cache.lock().expect("cache").get(e) {
            return *r;
        }
        let r = e
            .load(self.a)
            .map(|v| v.holds(self.model, &v.trace, &[], Some(self.i))[self.i]);
        self.cache.lock().expect("cache").insert(e.clone(), r);
        r
    }

    /// Broken: the variant executes and fails the property, while the same ops with every sync
    /// as written keep it (so the failure is the dropped syncs' doing, not a dropped write's).
    fn broken(&self, e: &Edit) -> bool {
        if self.holds_in(e) != Some(false) {
            return false;
        }
        let restored = Edit {
            order: (1..=self.a.program.ops.len())
                .filter(|k| e.order.contains(k) || self.syncs.contains(k))
                .collect(),
            datasync: BTreeSet::new(),
        };
        self.holds_in(&restored) == Some(true)
    }

    /// The first generated variant that breaks the property, shrunk by proptest.
    fn generate(&self, o: &Options) -> Option<Genome> {
        let a = self.a;
        let strategy: Vec<BoxedStrategy<u8>> = a
            .program
            .ops
            .iter()
            .map(|op| {
                if op.kind.is_sync() {
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
            // Set here rather than read from PROPTEST_* variables: the output depends only on
            // the program, the models, the seed and the cases.
            fork: false,
            timeout: 0,
            ..Config::default()
        };
        let name = &a.program.properties[self.i].name;
        let mut runner = TestRunner::new_with_rng(config, rng(o.seed, self.model, name));
        match runner.run(&strategy, |g| {
            if self.broken(&edit_of(a, &g)) {
                Err(TestCaseError::fail("the property breaks"))
            } else {
                Ok(())
            }
        }) {
            Err(TestError::Fail(_, g)) => Some(g),
            _ => None,
        }
    }

    /// Drops single ops (a weakened or kept sync too) while it stays broken: 1-minimal.
    fn minimize(&self, mut g: Genome) -> Genome {
        'outer: loop {
            for k in 0..g.len() {
                if g[k] != 0 {
                    let mut h = g.clone();
                    h[k] = 0;
                    if self.broken(&edit_of(self.a, &h)) {
                        g = h;
                        continue 'outer;
                    }
                }
            }
            return g;
        }
    }

    /// The broken variant of `g` with its counterexample, what it dropped, which dropped sync
    /// alone puts the property back, and its text with a header saying all that.
    fn report(&self, g: Genome) -> Broken {
        let (a, i, syncs) = (self.a, self.i, &self.syncs);
        let edit = edit_of(a, &g);
        let v = edit.load(a).expect("a broken variant loads");
        let run = v.run(self.model);
        let counterexample = run
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
                self.holds_in(&Edit {
                    order,
                    datasync: edit.datasync.clone(),
                }) == Some(true)
            })
            .collect();
        let weakened: Vec<usize> = edit.datasync.iter().copied().collect();
        let header = self.header(&edit, &dropped_syncs, &restores, &weakened);
        let source = edit.source(a, &header);
        Broken {
            edit,
            dropped_syncs,
            weakened,
            dropped_ops,
            restores,
            source,
            analysis: v,
            counterexample,
        }
    }

    /// The comment lines above a breaking program: where it comes from.
    fn header(
        &self,
        edit: &Edit,
        dropped_syncs: &[usize],
        restores: &[usize],
        weakened: &[usize],
    ) -> Vec<String> {
        let a = self.a;
        let name = &a.program.properties[self.i].name;
        let list = |v: &[usize]| {
            v.iter()
                .map(|k| k.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut header = vec![format!(
            "breaks property {name} under {}: ops {} of the program as written",
            self.model,
            list(&edit.order)
        )];
        if !dropped_syncs.is_empty() {
            header.push(format!(
                "sync calls dropped: {}; with them back, {name} holds",
                list(dropped_syncs),
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
                        .map(|&k| format!("{k} `{}`", a.program.op(OpNo::new(k)).text))
                        .collect::<Vec<_>>()
                        .join(", op ")
                ));
            }
        }
        if !weakened.is_empty() {
            header.push(format!("fsync weakened to fdatasync: {}", list(weakened)));
        }
        header
    }
}
