//! The fast path's buffers, kept from one crash point to the next and, per thread, from one
//! exploration to the next (many small programs are explored one after another), and the two
//! tables a crash point fills: the classes found (by state) and the keys seen (by key).

use super::fx::{Fx, FxMap};
use super::{dense, Point, StateEntry, Witness};
use crate::count::Count;
use crate::state::CrashState;

thread_local! {
    /// Buffers of the fast path kept between explorations on one thread (many small programs
    /// are explored one after another).
    static BUFFERS: std::cell::Cell<Option<Box<Buffers>>> = const { std::cell::Cell::new(None) };
}

impl Buffers {
    /// This thread's buffers, emptied of the last exploration (new ones if none are kept).
    pub(super) fn take() -> Buffers {
        match BUFFERS.with(|b| b.take()) {
            Some(mut b) => {
                b.scratch.reset();
                *b
            }
            None => Buffers::default(),
        }
    }

    /// Keeps the buffers for this thread's next exploration, unless they grew large.
    pub(super) fn give_back(self) {
        if self.keys.arena.capacity() <= 1 << 16
            && self.next.capacity() <= 1 << 16
            && !self.scratch.is_large()
        {
            BUFFERS.with(|b| b.set(Some(Box::new(self))));
        }
    }
}

/// The classes found so far at a crash point, in the order found.
pub(super) struct Classes<'b, 's> {
    pub(super) found: Vec<(CrashState, Witness)>,
    /// Hash of a state -> the first of its indices in `found`; `next` chains the others.
    by_hash: &'b mut FxMap<u64, u32>,
    next: &'b mut Vec<u32>,
    limits: crate::Limits,
    pub(super) bound_hit: bool,
    /// Asked of every new class: true ends the enumeration (the caller has its answer, e.g. a
    /// property it checks fails there). The classes found are then a part of the point's.
    stop: Option<&'s mut dyn FnMut(&CrashState) -> bool>,
    pub(super) stopped: bool,
    /// The first state found once `max` classes were kept: not a class of the point, but a
    /// property it violates fails (a violation found at the bound is a violation).
    beyond: Option<(CrashState, Witness)>,
    /// Verdicts only (a `stop` is given): each new key's state goes to `stop` and is dropped,
    /// not kept, sorted or told apart from the states of other keys (`stop` may see a state
    /// twice); `kept` counts them against the bound on classes.
    verdicts_only: bool,
    kept: usize,
}

const NO_CLASS: u32 = u32::MAX;

impl<'b, 's> Classes<'b, 's> {
    /// No class yet, with the tables of the last crash point emptied.
    pub(super) fn new(
        by_hash: &'b mut FxMap<u64, u32>,
        next: &'b mut Vec<u32>,
        limits: crate::Limits,
        stop: Option<&'s mut dyn FnMut(&CrashState) -> bool>,
    ) -> Self {
        by_hash.clear();
        next.clear();
        let verdicts_only = stop.is_some();
        Classes {
            verdicts_only,
            kept: 0,
            found: Vec::new(),
            by_hash,
            next,
            limits,
            bound_hit: false,
            stop,
            stopped: false,
            beyond: None,
        }
    }

    /// Whether the enumeration is over: a bound was hit or the caller has its answer.
    pub(super) fn done(&self) -> bool {
        self.bound_hit || self.stopped
    }

    /// The crash point's result: the classes sorted by state, each with its count.
    pub(super) fn into_point(self, k: usize) -> Point {
        // Sorted by indices first, so that each entry moves once (states are distinct).
        let found = self.found;
        let mut order: Vec<u32> = (0..found.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| found[a as usize].0.cmp(&found[b as usize].0));
        let mut found: Vec<Option<(CrashState, Witness)>> = found.into_iter().map(Some).collect();
        let mut total = Count::zero();
        let states: Vec<StateEntry> = order
            .iter()
            .map(|&i| {
                let (state, witness) = found[i as usize].take().expect("each index once");
                let count = state.concrete_count();
                total = total.add(&count);
                StateEntry {
                    count,
                    state,
                    witness,
                }
            })
            .collect();
        Point {
            at: k,
            states,
            total,
            bound_hit: self.bound_hit,
            stopped: self.stopped,
            beyond_bound: self.beyond.map(|(state, witness)| StateEntry {
                count: state.concrete_count(),
                state,
                witness,
            }),
        }
    }

    /// Adds a state found (keeping the first witness); its index, or None when the limit on
    /// classes was hit (the state is dropped and `bound_hit` set; the first state dropped is
    /// kept aside, for the properties to see).
    pub(super) fn add(&mut self, state: CrashState, w: impl FnOnce() -> Witness) -> Option<u32> {
        if self.verdicts_only {
            return self.judge(state);
        }
        let mut h = Fx::default();
        std::hash::Hash::hash(&state, &mut h);
        let h = std::hash::Hasher::finish(&h);
        let first = self.by_hash.get(&h).copied().unwrap_or(NO_CLASS);
        let mut i = first;
        while i != NO_CLASS {
            if self.found[i as usize].0 == state {
                return Some(i);
            }
            i = self.next[i as usize];
        }
        if self.admit(self.found.len()) {
            if let Some(f) = &mut self.stop {
                self.stopped |= f(&state);
            }
            let i = self.found.len() as u32;
            self.by_hash.insert(h, i);
            self.next.push(first);
            self.found.push((state, w()));
            Some(i)
        } else {
            if self.beyond.is_none() {
                self.beyond = Some((state, w()));
            }
            None
        }
    }

    /// Whether the `n`-th new class may be kept: under the bound on classes, and (polled every
    /// 64 new classes: one downset can have many) the memory budget and the interrupt. If not,
    /// the bound is hit.
    fn admit(&mut self, n: usize) -> bool {
        let stop = n % 64 == 63 && crate::budget::must_stop(&self.limits);
        if n < self.limits.max_states && !stop {
            return true;
        }
        if !stop {
            crate::budget::note(crate::budget::Bound::States);
        }
        self.bound_hit = true;
        false
    }
}

impl Classes<'_, '_> {
    /// [`Self::add`] when only verdicts are asked for: the state is judged and dropped.
    /// The state at the bound is judged too (a violation found there is a violation).
    fn judge(&mut self, state: CrashState) -> Option<u32> {
        let kept = self.admit(self.kept);
        if let Some(f) = &mut self.stop {
            self.stopped |= f(&state);
        }
        kept.then(|| {
            self.kept += 1;
            0
        })
    }
}

/// Every combination of choices of a downset, one after another: `pick[slot]` is the option
/// slot `slot` takes, in odometer order (slot 0 turns fastest).
#[derive(Default)]
pub(super) struct Odometer {
    pub(super) counts: Vec<usize>,
    pub(super) pick: Vec<usize>,
}

impl Odometer {
    /// The first combination over slots with these option counts.
    #[inline]
    pub(super) fn start(&mut self, counts: impl Iterator<Item = usize>) {
        self.counts.clear();
        self.counts.extend(counts);
        self.pick.clear();
        self.pick.resize(self.counts.len(), 0);
    }

    /// Turns to the next combination; false after the last.
    #[inline]
    pub(super) fn advance(&mut self) -> bool {
        for (p, &n) in self.pick.iter_mut().zip(&self.counts) {
            *p += 1;
            if *p < n {
                return true;
            }
            *p = 0;
        }
        false
    }
}

/// The keys of the combinations of choices seen at a crash point (see `dense`), each with its
/// class: keys stored one after another in `arena`.
#[derive(Default)]
pub(super) struct Keys {
    arena: Vec<u64>,
    /// Per key: (start in `arena`, length, class, next key with the same hash).
    entries: Vec<(u32, u32, u32, u32)>,
    /// Hash of a key -> its last entry.
    by_hash: FxMap<u64, u32>,
}

impl Keys {
    pub(super) fn clear(&mut self) {
        self.arena.clear();
        self.entries.clear();
        self.by_hash.clear();
    }

    pub(super) fn hash(key: &[u64]) -> u64 {
        let mut h = Fx::default();
        for &x in key {
            std::hash::Hasher::write_u64(&mut h, x);
        }
        std::hash::Hasher::finish(&h)
    }

    pub(super) fn get(&self, h: u64, key: &[u64]) -> Option<u32> {
        let mut i = self.by_hash.get(&h).copied().unwrap_or(NO_CLASS);
        while i != NO_CLASS {
            let (start, len, class, next) = self.entries[i as usize];
            if &self.arena[start as usize..(start + len) as usize] == key {
                return Some(class);
            }
            i = next;
        }
        None
    }

    pub(super) fn insert(&mut self, h: u64, key: &[u64], class: u32) {
        let next = self.by_hash.get(&h).copied().unwrap_or(NO_CLASS);
        let i = self.entries.len() as u32;
        self.entries
            .push((self.arena.len() as u32, key.len() as u32, class, next));
        self.arena.extend_from_slice(key);
        self.by_hash.insert(h, i);
    }
}

/// The buffers of the fast path, reused from one crash point to the next.
#[derive(Default)]
pub(super) struct Buffers {
    pub(super) scratch: dense::Scratch,
    pub(super) keys: Keys,
    pub(super) by_hash: FxMap<u64, u32>,
    pub(super) next: Vec<u32>,
    pub(super) included: Vec<bool>,
    pub(super) picks: Odometer,
    pub(super) walk: super::downsets::Walk,
}
