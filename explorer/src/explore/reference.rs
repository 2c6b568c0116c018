//! The reference code of the enumeration: a downset's metadata in ordered maps ([`Meta`]), each
//! visible chunk's candidate values, the choices per chunk, and the crash state of each
//! combination of choices. It is written to be read; the fast path in `dense` computes the same
//! from dense arrays, and debug builds check every state it builds against this code.

use super::chunk_values::{canonical, clip, push_values, subsets, visible_units};
use super::{Choice, CrashPoint, Stamp, Witness, GARBAGE};
use crate::state::{build_tree_with, exact_segments, CrashState, Segment};
use std::collections::{BTreeMap, BTreeSet};
use unplug_model::volatile::Initial;
use unplug_model::{Assign, BlockValue, EffectKind, Ino, Kind, Origin, Path, Persistence};

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
    /// (ino, position in `files[ino]`, chunk) for every chunk with a choice.
    slots: Vec<(Ino, usize, usize)>,
    /// Per slot: every nonempty subset of its candidate values (no larger than its unit count).
    pub(crate) options: Vec<Vec<Choice>>,
    /// Every slot has all its options (see [`subsets`]).
    pub(crate) complete: bool,
}

impl CrashPoint<'_> {
    /// The crash-state classes of one downset of global effects: calls `emit` for each.
    /// False when a chunk had too many options to enumerate them all (see [`subsets`]).
    pub fn states(&self, inc: &[bool], emit: &mut dyn FnMut(CrashState, Witness)) -> bool {
        let d = self.downset(inc);
        let mut pick = vec![0usize; d.options.len()];
        loop {
            let (state, w) = self.state_for(inc, &d, &pick);
            emit(state, w);
            if !next_pick(&mut pick, &d.options) {
                return d.complete;
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
        let mut complete = true;
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
                let (opts, all) =
                    subsets(&vals, visible_units(&p.layout.chunks[*c], size) as usize);
                options.push(opts);
                complete &= all;
                slots.push((*ino, i, *c));
            }
        }
        Downset {
            m,
            paths,
            files,
            slots,
            options,
            complete,
        }
    }

    /// The combination of choices that picks, for each chunk `chunks` names, the option with
    /// those sources, and the first option for every other chunk (as the dense path's
    /// `picks_for`).
    pub(crate) fn picks_for(
        &self,
        d: &Downset,
        chunks: &[(usize, Vec<Option<usize>>)],
    ) -> Vec<usize> {
        d.slots
            .iter()
            .zip(&d.options)
            .map(|(&(_, _, c), options)| {
                chunks
                    .iter()
                    .find(|(x, _)| *x == c)
                    .and_then(|(_, want)| options.iter().position(|o| o == want))
                    .unwrap_or(0)
            })
            .collect()
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
            partial: false,
            excluded: Vec::new(),
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
