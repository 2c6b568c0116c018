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

mod dense;

use crate::count::Count;
use crate::graph::Graph;
use crate::state::{build_tree_with, exact_segments, CrashState, Segment};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use unplug_model::volatile::{Initial, Trace};
use unplug_model::{Assign, BlockValue, EffectKind, Extent, Ino, Kind, Origin, Path, Persistence};

/// Limits that keep an exploration bounded. When one is hit the result says so and which crash
/// points are unproven; nothing is silently dropped.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Limits {
    /// Downward-closed sets of global effects per crash point.
    pub max_downsets: usize,
    /// Distinct crash-state classes per crash point.
    pub max_states: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_downsets: 1 << 20,
            max_states: 200_000,
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

/// The candidate values of one chunk for one downset.
struct Candidates {
    base: BlockValue,
    /// Whether the base value is possible (no required version is newer than it).
    base_ok: bool,
    /// Block versions that may be the latest durable one: (effect, value).
    versions: Vec<(usize, BlockValue)>,
    /// Whether a unit may hold garbage (a write to it is in flight; models with `garbage`).
    garbage: bool,
}

/// The source of a unit's value that stands for garbage in a [`Choice`] (`g` in replay strings).
pub const GARBAGE: usize = usize::MAX;

/// Explores every crash point of a program.
pub fn explore(trace: &Trace, p: &Persistence, g: &Graph, limits: Limits) -> Exploration {
    let n = trace.ops.len();
    let d = dense::Dense::new(trace, p);
    let mut bufs = Buffers::take();
    let points = (0..=n)
        .map(|k| explore_point_with(trace, p, g, k, limits, &d, &mut bufs).0)
        .collect();
    bufs.give_back();
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
}

impl<'a> CrashPoint<'a> {
    pub fn new(trace: &'a Trace, p: &'a Persistence, g: &'a Graph, k: usize) -> Self {
        CrashPoint {
            trace,
            p,
            g,
            k,
            floor: floor_at(p, g, k),
        }
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
    explore_point_with(trace, p, g, k, limits, &d, &mut Buffers::default())
}

/// Explores crash points of one program under one model, reusing the interned program and the
/// buffers between points: for callers that explore points one by one (`Analysis::holds`);
/// `point(k)` is [`explore_point`].
pub struct Explorer<'a> {
    trace: &'a Trace,
    p: &'a Persistence,
    g: &'a Graph,
    dense: dense::Dense,
    bufs: Buffers,
}

impl<'a> Explorer<'a> {
    pub fn new(trace: &'a Trace, p: &'a Persistence, g: &'a Graph) -> Self {
        Explorer {
            trace,
            p,
            g,
            dense: dense::Dense::new(trace, p),
            bufs: Buffers::take(),
        }
    }

    pub fn point(&mut self, k: usize, limits: Limits) -> Point {
        let (trace, p, g) = (self.trace, self.p, self.g);
        explore_point_with(trace, p, g, k, limits, &self.dense, &mut self.bufs).0
    }
}

impl Drop for Explorer<'_> {
    fn drop(&mut self) {
        std::mem::take(&mut self.bufs).give_back();
    }
}

thread_local! {
    /// Buffers of the fast path kept between explorations on one thread (many small programs
    /// are explored one after another).
    static BUFFERS: std::cell::Cell<Option<Box<Buffers>>> = const { std::cell::Cell::new(None) };
}

impl Buffers {
    /// This thread's buffers, emptied of the last exploration (new ones if none are kept).
    fn take() -> Buffers {
        match BUFFERS.with(|b| b.take()) {
            Some(mut b) => {
                b.scratch.reset();
                *b
            }
            None => Buffers::default(),
        }
    }

    /// Keeps the buffers for this thread's next exploration, unless they grew large.
    fn give_back(self) {
        if self.keys.arena.capacity() <= 1 << 16
            && self.next.capacity() <= 1 << 16
            && !self.scratch.is_large()
        {
            BUFFERS.with(|b| b.set(Some(Box::new(self))));
        }
    }
}

/// The classes found so far at a crash point, in the order found.
struct Classes<'b> {
    found: Vec<(CrashState, Witness)>,
    /// Hash of a state -> the first of its indices in `found`; `next` chains the others.
    by_hash: &'b mut dense::FxMap<u64, u32>,
    next: &'b mut Vec<u32>,
    max: usize,
    bound_hit: bool,
}

const NO_CLASS: u32 = u32::MAX;

impl Classes<'_> {
    /// Adds a state found (keeping the first witness); its index, or None when the limit on
    /// classes was hit (the state is dropped and `bound_hit` set).
    fn add(&mut self, state: CrashState, w: impl FnOnce() -> Witness) -> Option<u32> {
        let mut h = dense::Fx::default();
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
        if self.found.len() < self.max {
            let i = self.found.len() as u32;
            self.by_hash.insert(h, i);
            self.next.push(first);
            self.found.push((state, w()));
            Some(i)
        } else {
            self.bound_hit = true;
            None
        }
    }
}

/// The keys of the combinations of choices seen at a crash point (see `dense`), each with its
/// class: keys stored one after another in `arena`.
#[derive(Default)]
struct Keys {
    arena: Vec<u64>,
    /// Per key: (start in `arena`, length, class, next key with the same hash).
    entries: Vec<(u32, u32, u32, u32)>,
    /// Hash of a key -> its last entry.
    by_hash: dense::FxMap<u64, u32>,
}

impl Keys {
    fn clear(&mut self) {
        self.arena.clear();
        self.entries.clear();
        self.by_hash.clear();
    }

    fn hash(key: &[u64]) -> u64 {
        let mut h = dense::Fx::default();
        for &x in key {
            std::hash::Hasher::write_u64(&mut h, x);
        }
        std::hash::Hasher::finish(&h)
    }

    fn get(&self, h: u64, key: &[u64]) -> Option<u32> {
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

    fn insert(&mut self, h: u64, key: &[u64], class: u32) {
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
pub(crate) struct Buffers {
    scratch: dense::Scratch,
    keys: Keys,
    by_hash: dense::FxMap<u64, u32>,
    next: Vec<u32>,
    included: Vec<bool>,
    counts: Vec<usize>,
    pick: Vec<usize>,
    globals: Vec<usize>,
}

/// [`explore_point`] with the interned program and reusable buffers of the fast path.
fn explore_point_with(
    trace: &Trace,
    p: &Persistence,
    g: &Graph,
    k: usize,
    limits: Limits,
    d: &dense::Dense,
    bufs: &mut Buffers,
) -> (Point, usize) {
    let cp = CrashPoint::new(trace, p, g, k);
    let floor = &cp.floor;
    let Buffers {
        scratch,
        keys,
        by_hash,
        next,
        included,
        counts,
        pick,
        globals,
    } = bufs;
    globals.clear();
    globals.extend(
        (0..p.effects.len()).filter(|&e| p.effects[e].op <= k + 1 && !p.effects[e].is_block()),
    );
    keys.clear();
    by_hash.clear();
    next.clear();
    let mut classes = Classes {
        found: Vec::new(),
        by_hash,
        next,
        max: limits.max_states,
        bound_hit: false,
    };
    included.clear();
    included.resize(p.effects.len(), false);
    let mut downsets = 0usize;
    enumerate(globals, 0, included, floor, g, &mut |inc| {
        downsets += 1;
        if downsets > limits.max_downsets {
            classes.bound_hit = true;
            return false;
        }
        let Some(mut dd) = dense::downset(d, scratch, trace, p, g, k, floor, globals, inc) else {
            cp.states(inc, &mut |state, w| {
                classes.add(state, || w);
            });
            return !classes.bound_hit;
        };
        counts.clear();
        counts.extend(dd.option_counts());
        pick.clear();
        pick.resize(counts.len(), 0);
        loop {
            let key = dd.make_key(pick);
            let h = Keys::hash(key);
            if let Some(_i) = keys.get(h, key) {
                #[cfg(debug_assertions)]
                {
                    // The key determines the state: check it.
                    let (state, _) = dd.materialize(d, p, k, inc, pick);
                    assert!(
                        state == classes.found[_i as usize].0,
                        "two states share a key"
                    );
                }
            } else {
                let (state, w) = dd.materialize(d, p, k, inc, pick);
                #[cfg(debug_assertions)]
                {
                    // The fast view agrees with the reference code.
                    let r = cp.downset(inc);
                    assert!(r.options.iter().map(Vec::len).eq(counts.iter().copied()));
                    let (rs, rw) = cp.state_for(inc, &r, pick);
                    assert!(
                        rs == state && rw == w,
                        "the fast path differs from the reference:\n{rs:?}\n{rw:?}\nfast:\n{state:?}\n{w:?}"
                    );
                }
                if let Some(i) = classes.add(state, || w) {
                    keys.insert(h, dd.key(), i);
                }
            }
            if !next_pick_counts(pick, counts) {
                break;
            }
        }
        !classes.bound_hit
    });
    let bound_hit = classes.bound_hit;
    // Sorted by state (indices are sorted, so that the entries move once; states are distinct).
    let found = classes.found;
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
    let point = Point {
        at: k,
        states,
        total,
        bound_hit,
    };
    (point, downsets.min(limits.max_downsets))
}

/// [`next_pick`] over option counts.
fn next_pick_counts(pick: &mut [usize], counts: &[usize]) -> bool {
    for (p, &n) in pick.iter_mut().zip(counts) {
        *p += 1;
        if *p < n {
            return true;
        }
        *p = 0;
    }
    false
}

/// Depth-first enumeration of the downward-closed subsets of `globals` (in index order, which is
/// a topological order: every edge goes from a lower to a higher index) that contain the floor.
/// `visit` returns false to stop.
fn enumerate(
    globals: &[usize],
    i: usize,
    inc: &mut Vec<bool>,
    floor: &[bool],
    g: &Graph,
    visit: &mut dyn FnMut(&[bool]) -> bool,
) -> bool {
    let Some(&e) = globals.get(i) else {
        return visit(inc);
    };
    if !floor[e] && !enumerate(globals, i + 1, inc, floor, g, visit) {
        return false;
    }
    if g.preds(e).all(|q| inc[q]) {
        inc[e] = true;
        let go_on = enumerate(globals, i + 1, inc, floor, g, visit);
        inc[e] = false;
        return go_on;
    }
    true
}

/// When an assignment happened: (op, effect index). Effects are created in op order, so the
/// largest key among the durable assignments of a key is the one that wins.
type Stamp = (usize, usize);

/// The metadata a set of global effects leaves: entries, initialised inodes, sizes, the
/// truncates that freed blocks, and chunk contents set by global effects.
struct Meta {
    entries: BTreeMap<(Ino, String), Ino>,
    kinds: BTreeMap<Ino, Kind>,
    sizes: BTreeMap<Ino, u64>,
    /// Per inode, the durable truncates: (when, first freed block).
    holes: BTreeMap<Ino, Vec<(Stamp, u64)>>,
    /// Per chunk, the latest durable global assignment of its content.
    blocks: BTreeMap<usize, (Stamp, BlockValue)>,
}

fn meta_of(initial: &Initial, p: &Persistence, inc: &[bool]) -> Meta {
    let mut m = Meta {
        entries: initial.entries.clone(),
        kinds: initial
            .inodes
            .iter()
            .map(|(i, (k, _, _))| (*i, *k))
            .collect(),
        sizes: initial
            .inodes
            .iter()
            .map(|(i, (_, s, _))| (*i, *s))
            .collect(),
        holes: BTreeMap::new(),
        blocks: BTreeMap::new(),
    };
    // Effects are stored in op order, so applying them in index order makes the latest win.
    for (e, eff) in p.effects.iter().enumerate() {
        if !inc[e] {
            continue;
        }
        for (c, v) in &eff.blocks {
            m.blocks.insert(*c, ((eff.op, e), v.clone()));
        }
        for a in eff.assigns() {
            match a {
                Assign::Entry { dir, name, target } => {
                    match target {
                        Some(t) => m.entries.insert((*dir, name.clone()), *t),
                        None => m.entries.remove(&(*dir, name.clone())),
                    };
                }
                Assign::Init { ino, kind } => {
                    m.kinds.insert(*ino, *kind);
                    m.sizes.insert(*ino, 0);
                }
                Assign::Size {
                    ino,
                    size,
                    holes_from,
                } => {
                    m.sizes.insert(*ino, *size);
                    if let Some(h) = holes_from {
                        m.holes.entry(*ino).or_default().push(((eff.op, e), *h));
                    }
                }
            }
        }
    }
    m
}

/// Walks the durable tree from the root: every reachable path and its inode.
fn reachable(m: &Meta) -> Vec<(Path, Ino)> {
    let mut out = vec![(Path::root(), 0)];
    let mut i = 0;
    while i < out.len() {
        let (path, ino) = out[i].clone();
        i += 1;
        if m.kinds.get(&ino) != Some(&Kind::Dir) || out.len() > 100_000 {
            continue;
        }
        for ((_, name), child) in m
            .entries
            .range((ino, String::new())..)
            .take_while(|((d, _), _)| *d == ino)
        {
            if m.kinds.contains_key(child)
                && !out
                    .iter()
                    .any(|(_, x)| *x == *child && m.kinds[child] == Kind::Dir)
            {
                out.push((path.join(name), *child));
            }
        }
    }
    out
}

/// What one downset of global effects leaves, before the block values are chosen: its
/// metadata, reachable paths, each visible file chunk's candidates, and the choices per chunk.
pub(crate) struct Downset {
    m: Meta,
    paths: Vec<(Path, Ino)>,
    /// Per visible file: (chunk, candidates) for each chunk inside its size.
    files: BTreeMap<Ino, Vec<(usize, Candidates)>>,
    /// (ino, position in files[ino], chunk) for every chunk with a choice.
    slots: Vec<(Ino, usize, usize)>,
    /// Per slot: every nonempty subset of its candidate values (no larger than its unit count).
    pub(crate) options: Vec<Vec<Choice>>,
}

impl CrashPoint<'_> {
    /// The crash-state classes of one downset of global effects: calls `emit` for each.
    pub fn states(&self, inc: &[bool], emit: &mut dyn FnMut(CrashState, Witness)) {
        let d = self.downset(inc);
        let mut pick = vec![0usize; d.options.len()];
        loop {
            let (state, w) = self.state_for(inc, &d, &pick);
            emit(state, w);
            if !next_pick(&mut pick, &d.options) {
                return;
            }
        }
    }

    pub(crate) fn downset(&self, inc: &[bool]) -> Downset {
        let (trace, p) = (self.trace, self.p);
        let m = meta_of(&trace.initial, p, inc);
        let paths = reachable(&m);
        // Per visible file chunk: its candidate values.
        let mut files: BTreeMap<Ino, Vec<(usize, Candidates)>> = BTreeMap::new();
        for (_, ino) in &paths {
            if m.kinds.get(ino) != Some(&Kind::File) || files.contains_key(ino) {
                continue;
            }
            let size = m.sizes.get(ino).copied().unwrap_or(0);
            let mut v = Vec::new();
            for c in p.layout.chunks_of(*ino) {
                if p.layout.chunks[c].start() >= size {
                    break;
                }
                v.push((c, self.candidates(inc, &m, c)));
            }
            files.insert(*ino, v);
        }
        // Choices: for every chunk with several candidate values, every nonempty subset of them
        // (no larger than its block count).
        let mut slots: Vec<(Ino, usize, usize)> = Vec::new(); // (ino, position in files[ino], chunk)
        let mut options: Vec<Vec<Choice>> = Vec::new();
        for (ino, chunks) in &files {
            for (i, (c, cand)) in chunks.iter().enumerate() {
                let mut vals: Vec<Option<usize>> = Vec::new();
                if cand.base_ok {
                    vals.push(None);
                }
                vals.extend(cand.versions.iter().map(|(e, _)| Some(*e)));
                if cand.garbage {
                    vals.push(Some(GARBAGE));
                }
                // Only the units inside the file count (a size inside a chunk hides the rest).
                let size = m.sizes.get(ino).copied().unwrap_or(0);
                options.push(subsets(
                    &vals,
                    visible_units(&p.layout.chunks[*c], size) as usize,
                ));
                slots.push((*ino, i, *c));
            }
        }
        Downset {
            m,
            paths,
            files,
            slots,
            options,
        }
    }

    /// The crash state and witness of one combination of choices (`pick[slot]` indexes
    /// `d.options[slot]`).
    pub(crate) fn state_for(
        &self,
        inc: &[bool],
        d: &Downset,
        pick: &[usize],
    ) -> (CrashState, Witness) {
        let (trace, p, k) = (self.trace, self.p, self.k);
        let (m, files) = (&d.m, &d.files);
        let mut w = Witness {
            at: k,
            persisted: (0..inc.len()).filter(|&e| inc[e]).collect(),
            chunks: Vec::new(),
        };
        let mut content_of: BTreeMap<Ino, Vec<Segment>> = BTreeMap::new();
        for (slot, &(ino, i, c)) in d.slots.iter().enumerate() {
            let choice = &d.options[slot][pick[slot]];
            let (_, cand) = &files[&ino][i];
            let size = m.sizes.get(&ino).copied().unwrap_or(0);
            let chunk = &p.layout.chunks[c];
            let value_of = |s: &Option<usize>| -> BlockValue {
                match s {
                    None => cand.base.clone(),
                    Some(GARBAGE) => BlockValue::whole(chunk.unit, Origin::Garbage),
                    Some(e) => cand
                        .versions
                        .iter()
                        .find(|(x, _)| x == e)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_else(|| BlockValue::zero(chunk.unit)),
                }
            };
            if d.options[slot].len() > 1 {
                w.chunks.push((c, choice.clone()));
            }
            let segs = content_of.entry(ino).or_default();
            let values: BTreeSet<BlockValue> = choice
                .iter()
                .map(value_of)
                .map(|v| clip(&v, chunk, size))
                .collect();
            push_values(segs, values, chunk, size);
        }
        let state = build_tree_with(
            &d.paths,
            |i| m.kinds[&i] == Kind::Dir,
            |i| symlink_target(m, &trace.last.symlinks, i),
            |i| {
                (
                    m.sizes.get(&i).copied().unwrap_or(0),
                    canonical(content_of.get(&i).cloned().unwrap_or_default()),
                )
            },
        );
        (state, w)
    }
}

/// The next combination of choices (odometer order, slot 0 fastest); false after the last.
fn next_pick(pick: &mut [usize], options: &[Vec<Choice>]) -> bool {
    for (i, p) in pick.iter_mut().enumerate() {
        *p += 1;
        if *p < options[i].len() {
            return true;
        }
        *p = 0;
    }
    false
}

/// The segments of a chunk whose every unit holds one value `v` (already clipped to the file):
/// one extent for a whole-unit value, whatever the chunk's length, else the value's extents
/// unit by unit.
pub(crate) fn push_value(
    segs: &mut Vec<Segment>,
    v: &BlockValue,
    chunk: &unplug_model::Chunk,
    size: u64,
) {
    if let [(0, u, origin)] = v.0.as_slice() {
        if *u == chunk.unit {
            segs.push(Segment::Exact(Extent {
                start: chunk.start(),
                end: chunk.end().min(size),
                origin: origin.clone(),
            }));
            return;
        }
    }
    for b in 0..chunk.blocks {
        if chunk.start() + b * chunk.unit >= size {
            break;
        }
        segs.extend(v.extents(chunk, b, size).into_iter().map(Segment::Exact));
    }
}

/// The segments of a chunk whose units take the (clipped) `values`: those of the one value, or
/// a mixed segment.
pub(crate) fn push_values(
    segs: &mut Vec<Segment>,
    values: BTreeSet<BlockValue>,
    chunk: &unplug_model::Chunk,
    size: u64,
) {
    if values.len() == 1 {
        let v = values.into_iter().next().expect("one value");
        push_value(segs, &v, chunk, size);
    } else {
        segs.push(Segment::Mixed {
            unit: chunk.unit,
            start: chunk.start(),
            end: chunk.end().min(size),
            blocks: visible_units(chunk, size),
            values,
        });
    }
}

/// How many units of a chunk lie (at least partly) inside a file of `size` bytes.
fn visible_units(chunk: &unplug_model::Chunk, size: u64) -> u64 {
    (chunk.end().min(size).saturating_sub(chunk.start())).div_ceil(chunk.unit)
}

/// Clips a block value to the file size (bytes past the end are not part of the file) and
/// normalises it so that equal bytes compare equal.
fn clip(v: &BlockValue, chunk: &unplug_model::Chunk, size: u64) -> BlockValue {
    let start = chunk.start();
    if chunk.blocks == 1 && start + chunk.unit > size {
        let lim = size.saturating_sub(start);
        BlockValue(
            v.0.iter()
                .filter(|(s, _, _)| *s < lim)
                .map(|(s, e, o)| (*s, (*e).min(lim), o.clone()))
                .collect(),
        )
    } else {
        v.clone()
    }
}

/// Merges exact extents into canonical form (mixed segments stay as they are): neighbouring
/// exact extents that touch and share an origin become one (as `volatile::merge`).
fn canonical(segs: Vec<Segment>) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::with_capacity(segs.len());
    for s in segs {
        if let (Segment::Exact(e), Some(Segment::Exact(last))) = (&s, out.last_mut()) {
            if last.end == e.start && last.origin == e.origin {
                last.end = e.end;
                continue;
            }
        }
        out.push(s);
    }
    out
}

/// [`canonical`] in place.
fn canonical_in_place(segs: &mut Vec<Segment>) {
    segs.dedup_by(|s, last| match (s, last) {
        (Segment::Exact(e), Segment::Exact(last))
            if last.end == e.start && last.origin == e.origin =>
        {
            last.end = e.end;
            true
        }
        _ => false,
    });
}

/// Nonempty subsets of `vals` with at most `max` elements, in a fixed order.
fn subsets(vals: &[Option<usize>], max: usize) -> Vec<Choice> {
    let n = vals.len();
    subsets_masks(n, max)
        .into_iter()
        .map(|mask| {
            (0..n)
                .filter(|i| mask >> i & 1 == 1)
                .map(|i| vals[i])
                .collect()
        })
        .collect()
}

/// The subsets of [`subsets`] as bit masks over the `n` values, in the same order.
fn subsets_masks(n: usize, max: usize) -> Vec<u64> {
    let mut out: Vec<u64> = (1u64..(1u64 << n.min(20)))
        .filter(|mask| (mask.count_ones() as usize) <= max)
        .collect();
    out.sort_by_key(|m| m.count_ones());
    out
}

impl CrashPoint<'_> {
    /// The values a block of chunk `c` may hold, given the durable global effects `inc`.
    fn candidates(&self, inc: &[bool], m: &Meta, c: usize) -> Candidates {
        let (trace, p, g, k, floor) = (self.trace, self.p, self.g, self.k, &self.floor);
        let chunk = &p.layout.chunks[c];
        // Base: the latest durable global assignment of this chunk (a truncate that freed it,
        // or content a global effect set), else the initial content.
        let hole = m.holes.get(&chunk.ino).and_then(|v| {
            v.iter()
                .filter(|(_, h)| chunk.start() >= *h * unplug_model::BLOCK)
                .map(|(at, _)| (*at, BlockValue::zero(chunk.unit)))
                .max_by_key(|(at, _)| *at)
        });
        let set = m.blocks.get(&c).cloned();
        let initial = match trace.initial.inodes.get(&chunk.ino) {
            Some((_, _, content)) => BlockValue::of(content, chunk),
            None => BlockValue::zero(chunk.unit),
        };
        let (base_at, base) = [hole, set]
            .into_iter()
            .flatten()
            .max_by_key(|(at, _)| *at)
            .unwrap_or(((0, 0), initial));
        // Block versions: the latest durable one wins over an older base; the floor's newest
        // version must be durable.
        let mut required: Stamp = (0, 0);
        let mut versions = Vec::new();
        for &e in &g.blocks_of_chunk[c] {
            let eff = &p.effects[e];
            let EffectKind::Block { value, .. } = &eff.kind else {
                continue;
            };
            if eff.op > k + 1 {
                continue;
            }
            let at = (eff.op, e);
            if floor[e] {
                required = required.max(at);
            }
            if g.preds(e).all(|q| inc[q]) {
                versions.push((e, at, value.clone()));
            }
        }
        let base_ok = base_at >= required;
        // torn-garbage: a unit with a write not yet durable may be caught mid-write.
        let garbage = p.model.garbage()
            && versions
                .iter()
                .any(|(e, at, _)| !floor[*e] && *at > base_at);
        let versions = versions
            .into_iter()
            .filter(|(_, at, _)| *at > base_at && *at >= required)
            .map(|(e, _, v)| (e, v))
            .collect();
        Candidates {
            base,
            base_ok,
            versions,
            garbage,
        }
    }
}

/// The target of inode `i` if it is a symlink (targets never change: the volatile state's map
/// holds every symlink made so far).
fn symlink_target(m: &Meta, targets: &BTreeMap<Ino, String>, i: Ino) -> Option<String> {
    (m.kinds.get(&i) == Some(&Kind::Symlink)).then(|| targets.get(&i).cloned().unwrap_or_default())
}

/// The state a running system sees: the initial state (`old`) or the last one (`new`).
pub fn volatile_state(v: &Initial) -> CrashState {
    let m = Meta {
        entries: v.entries.clone(),
        kinds: v.inodes.iter().map(|(i, (k, _, _))| (*i, *k)).collect(),
        sizes: v.inodes.iter().map(|(i, (_, s, _))| (*i, *s)).collect(),
        holes: BTreeMap::new(),
        blocks: BTreeMap::new(),
    };
    let paths = reachable(&m);
    build_tree_with(
        &paths,
        |i| m.kinds[&i] == Kind::Dir,
        |i| symlink_target(&m, &v.symlinks, i),
        |i| {
            let (_, size, content) = &v.inodes[&i];
            (*size, exact_segments(content.slice(0, *size)))
        },
    )
}
