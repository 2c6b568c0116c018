//! The fast path of the enumeration: the metadata of a downset over dense arrays (inodes,
//! directory entries and block values interned once per program and model), and a compact key
//! per crash state from which the state is a function. A key seen before names a class already
//! found, so the full [`CrashState`](crate::CrashState) (paths, segments, a tree) is built only
//! for a new key, by the reference code in `explore.rs`.

use super::{canonical, clip, subsets_masks, visible_units, Stamp, Witness, GARBAGE};
use crate::graph::Graph;
use crate::state::{build_tree_refs, CrashState, Segment};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use unplug_model::volatile::Trace;
use unplug_model::{Assign, BlockValue, EffectKind, Extent, Kind, Origin, Path, Persistence};

/// A small, fast, non-cryptographic hasher (the rustc "Fx" hash).
#[derive(Default, Clone, Copy)]
pub struct Fx(u64);

const K: u64 = 0xf135_7aea_2e62_a9c5;

impl Hasher for Fx {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.write_u64(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let r = chunks.remainder();
        if !r.is_empty() {
            let mut b = [0u8; 8];
            b[..r.len()].copy_from_slice(r);
            self.write_u64(u64::from_le_bytes(b) ^ (r.len() as u64) << 59);
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.write_u64(i as u64);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.write_u64(i as u64);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(26) ^ i).wrapping_mul(K);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }
}

pub type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

const NONE: u32 = u32::MAX;
const NO_KIND: u8 = 0;

fn kind_code(k: Kind) -> u8 {
    match k {
        Kind::File => 1,
        Kind::Dir => 2,
        Kind::Symlink => 3,
    }
}

/// A metadata assignment with inodes, entries and values as dense indices.
enum DAssign {
    Entry {
        slot: u32,
        target: u32,
    },
    Init {
        ino: u32,
        kind: u8,
    },
    Size {
        ino: u32,
        size: u64,
        holes_from: Option<u64>,
    },
}

/// A program under a model, interned for the fast path (built once per exploration).
pub struct Dense {
    /// Dense inode index -> inode number, sorted (so dense order is inode order).
    inos: Vec<usize>,
    root: u32,
    init_kind: Vec<u8>,
    init_size: Vec<u64>,
    init_entry: Vec<u32>,
    /// Per entry slot: its name's rank in string order.
    slot_name: Vec<u32>,
    /// Per directory inode: its entry slots in name order.
    children: Vec<Vec<u32>>,
    /// Per symlink inode: its target's id (NONE for other inodes).
    symlink: Vec<u32>,
    assigns: Vec<Vec<DAssign>>,
    /// Per effect: the chunk contents it sets, as (chunk, value id).
    blocks: Vec<Vec<(usize, u32)>>,
    /// Per block effect: its value's id.
    block_val: Vec<u32>,
    /// Per chunk: the initial value's id, the zero value's and the garbage value's.
    init_val: Vec<u32>,
    zero_val: Vec<u32>,
    garbage_val: Vec<u32>,
    /// Per chunk: its dense inode.
    chunk_ino: Vec<u32>,
    /// Per dense inode: the range of its chunks.
    chunks_of: Vec<(usize, usize)>,
    /// Value id -> value.
    values: Vec<BlockValue>,
    /// Name rank -> name.
    names: Vec<String>,
    /// Per dense inode: its symlink target if it is a symlink.
    targets: Vec<Option<String>>,
}

impl Dense {
    pub fn new(trace: &Trace, p: &Persistence) -> Dense {
        let init = &trace.initial;
        let mut inos: BTreeSet<usize> = BTreeSet::new();
        inos.insert(0);
        inos.extend(init.inodes.keys());
        for ((d, _), t) in &init.entries {
            inos.insert(*d);
            inos.insert(*t);
        }
        let mut names: BTreeSet<&str> = BTreeSet::new();
        let mut slots: BTreeSet<(usize, &str)> = BTreeSet::new();
        for (d, n) in init.entries.keys() {
            names.insert(n);
            slots.insert((*d, n));
        }
        for eff in &p.effects {
            for a in eff.assigns() {
                match a {
                    Assign::Entry { dir, name, target } => {
                        inos.insert(*dir);
                        inos.extend(*target);
                        names.insert(name);
                        slots.insert((*dir, name));
                    }
                    Assign::Init { ino, .. } | Assign::Size { ino, .. } => {
                        inos.insert(*ino);
                    }
                }
            }
        }
        for c in &p.layout.chunks {
            inos.insert(c.ino);
        }
        let inos: Vec<usize> = inos.into_iter().collect();
        let ix: BTreeMap<usize, u32> = inos
            .iter()
            .enumerate()
            .map(|(i, n)| (*n, i as u32))
            .collect();
        let name_rank: BTreeMap<&str, u32> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (*n, i as u32))
            .collect();
        let slot_ix: BTreeMap<(usize, &str), u32> = slots
            .iter()
            .enumerate()
            .map(|(i, s)| (*s, i as u32))
            .collect();
        let n = inos.len();
        let mut children = vec![Vec::new(); n];
        let mut slot_name = Vec::with_capacity(slots.len());
        // BTreeSet order is (dir, name): each directory's slots come out in name order.
        for (i, (d, name)) in slots.iter().enumerate() {
            children[ix[d] as usize].push(i as u32);
            slot_name.push(name_rank[name]);
        }
        let mut init_entry = vec![NONE; slots.len()];
        for ((d, name), t) in &init.entries {
            init_entry[slot_ix[&(*d, name.as_str())] as usize] = ix[t];
        }
        let mut init_kind = vec![NO_KIND; n];
        let mut init_size = vec![0; n];
        for (i, (k, s, _)) in &init.inodes {
            init_kind[ix[i] as usize] = kind_code(*k);
            init_size[ix[i] as usize] = *s;
        }
        let mut strings: BTreeMap<&str, u32> = BTreeMap::new();
        let mut symlink = vec![NONE; n];
        for (i, t) in &trace.last.symlinks {
            if let Some(&d) = ix.get(i) {
                let next = strings.len() as u32;
                symlink[d as usize] = *strings.entry(t.as_str()).or_insert(next);
            }
        }
        let mut values: FxMap<BlockValue, u32> = FxMap::default();
        let mut by_id: Vec<BlockValue> = Vec::new();
        let mut intern = |v: &BlockValue| -> u32 {
            if let Some(&i) = values.get(v) {
                return i;
            }
            let i = by_id.len() as u32;
            by_id.push(v.clone());
            values.insert(v.clone(), i);
            i
        };
        let assigns = p
            .effects
            .iter()
            .map(|eff| {
                eff.assigns()
                    .iter()
                    .map(|a| match a {
                        Assign::Entry { dir, name, target } => DAssign::Entry {
                            slot: slot_ix[&(*dir, name.as_str())],
                            target: target.map_or(NONE, |t| ix[&t]),
                        },
                        Assign::Init { ino, kind } => DAssign::Init {
                            ino: ix[ino],
                            kind: kind_code(*kind),
                        },
                        Assign::Size {
                            ino,
                            size,
                            holes_from,
                        } => DAssign::Size {
                            ino: ix[ino],
                            size: *size,
                            holes_from: *holes_from,
                        },
                    })
                    .collect()
            })
            .collect();
        let blocks = p
            .effects
            .iter()
            .map(|eff| eff.blocks.iter().map(|(c, v)| (*c, intern(v))).collect())
            .collect();
        let block_val = p
            .effects
            .iter()
            .map(|eff| match &eff.kind {
                EffectKind::Block { value, .. } => intern(value),
                _ => NONE,
            })
            .collect();
        let mut init_val = Vec::new();
        let mut zero_val = Vec::new();
        let mut garbage_val = Vec::new();
        let mut chunk_ino = Vec::new();
        for c in &p.layout.chunks {
            init_val.push(intern(&match init.inodes.get(&c.ino) {
                Some((_, _, content)) => BlockValue::of(content, c),
                None => BlockValue::zero(c.unit),
            }));
            zero_val.push(intern(&BlockValue::zero(c.unit)));
            garbage_val.push(intern(&BlockValue::whole(c.unit, Origin::Garbage)));
            chunk_ino.push(ix[&c.ino]);
        }
        let chunks_of = inos
            .iter()
            .map(|i| {
                let r = p.layout.chunks_of(*i);
                (r.start, r.end)
            })
            .collect();
        let mut targets = vec![None; n];
        for (i, t) in &trace.last.symlinks {
            if let Some(&d) = ix.get(i) {
                targets[d as usize] = Some(t.clone());
            }
        }
        Dense {
            values: by_id,
            names: names.iter().map(|n| n.to_string()).collect(),
            targets,
            root: ix[&0],
            inos,
            init_kind,
            init_size,
            init_entry,
            slot_name,
            children,
            symlink,
            assigns,
            blocks,
            block_val,
            init_val,
            zero_val,
            garbage_val,
            chunk_ino,
            chunks_of,
        }
    }
}

/// One slot (a visible chunk with a choice) of a downset: per option, its value ids.
struct Slot {
    ino: u32,
    chunk: usize,
    /// The candidate sources (None: the base value; Some(e): block version e; GARBAGE) and
    /// their value ids.
    src: Vec<Option<usize>>,
    vals: Vec<u32>,
    /// Per option: the subset of candidates as a bit mask.
    masks: Vec<u64>,
    /// Per option (in [`subsets`](super::subsets) order): the sorted, distinct value ids.
    ids: Vec<Vec<u32>>,
}

/// Reusable buffers and the path interner of one exploration.
#[derive(Default)]
pub struct Scratch {
    kinds: Vec<u8>,
    sizes: Vec<u64>,
    entries: Vec<u32>,
    holes: Vec<(u32, Stamp, u64)>,
    blocks: Vec<Option<(Stamp, u32)>>,
    touched: Vec<usize>,
    in_out: Vec<bool>,
    /// (path id, inode) in the order `reachable` finds them.
    out: Vec<(u32, u32)>,
    /// Path ids: (parent path id, name rank) -> id; the root is 0.
    paths: FxMap<(u32, u32), u32>,
    /// Path id -> path.
    path_of: Vec<Path>,
    files: Vec<u32>,
    slots: Vec<Slot>,
    /// The part of the key that does not depend on the block choices.
    head: Vec<u64>,
    pub key: Vec<u64>,
}

/// The fast view of one downset: the key of each combination of choices.
pub struct DenseDownset<'s> {
    s: &'s mut Scratch,
}

/// Computes a downset's metadata, reachable paths and choices; `None` if a limit of `reachable`
/// (100 000 paths) was hit, where the caller falls back to the reference code.
#[allow(clippy::too_many_arguments)]
pub fn downset<'s>(
    d: &Dense,
    s: &'s mut Scratch,
    trace: &Trace,
    p: &Persistence,
    g: &Graph,
    k: usize,
    floor: &[bool],
    globals: &[usize],
    inc: &[bool],
) -> Option<DenseDownset<'s>> {
    let _ = trace;
    let n = d.inos.len();
    s.kinds.clear();
    s.kinds.extend_from_slice(&d.init_kind);
    s.sizes.clear();
    s.sizes.extend_from_slice(&d.init_size);
    s.entries.clear();
    s.entries.extend_from_slice(&d.init_entry);
    s.holes.clear();
    if s.blocks.len() != p.layout.chunks.len() {
        s.blocks = vec![None; p.layout.chunks.len()];
    }
    for &c in &s.touched {
        s.blocks[c] = None;
    }
    s.touched.clear();
    if s.in_out.len() != n {
        s.in_out = vec![false; n];
    }
    for &e in globals {
        if !inc[e] {
            continue;
        }
        let at = (p.effects[e].op, e);
        for &(c, v) in &d.blocks[e] {
            if s.blocks[c].is_none() {
                s.touched.push(c);
            }
            s.blocks[c] = Some((at, v));
        }
        for a in &d.assigns[e] {
            match *a {
                DAssign::Entry { slot, target } => s.entries[slot as usize] = target,
                DAssign::Init { ino, kind } => {
                    s.kinds[ino as usize] = kind;
                    s.sizes[ino as usize] = 0;
                }
                DAssign::Size {
                    ino,
                    size,
                    holes_from,
                } => {
                    s.sizes[ino as usize] = size;
                    if let Some(h) = holes_from {
                        s.holes.push((ino, at, h));
                    }
                }
            }
        }
    }
    // Reachable paths, breadth first, children in name order (as `reachable`).
    const DIR: u8 = 2;
    if s.path_of.is_empty() {
        s.path_of.push(Path::root());
    }
    s.out.clear();
    s.out.push((0, d.root));
    s.in_out[d.root as usize] = true;
    let mut i = 0;
    let mut too_many = false;
    while i < s.out.len() {
        let (pid, ino) = s.out[i];
        i += 1;
        if s.kinds[ino as usize] != DIR {
            continue;
        }
        if s.out.len() > 100_000 {
            too_many = true;
            continue;
        }
        for &slot in &d.children[ino as usize] {
            let child = s.entries[slot as usize];
            if child == NONE || s.kinds[child as usize] == NO_KIND {
                continue;
            }
            if s.kinds[child as usize] == DIR && s.in_out[child as usize] {
                continue;
            }
            s.in_out[child as usize] = true;
            let name = d.slot_name[slot as usize];
            let id = match s.paths.get(&(pid, name)) {
                Some(&id) => id,
                None => {
                    let id = s.path_of.len() as u32;
                    let path = s.path_of[pid as usize].join(&d.names[name as usize]);
                    s.path_of.push(path);
                    s.paths.insert((pid, name), id);
                    id
                }
            };
            s.out.push((id, child));
        }
    }
    for &(_, ino) in &s.out {
        s.in_out[ino as usize] = false;
    }
    if too_many {
        return None;
    }
    // The head of the key: every path, its kind, and for a file or symlink its inode (names
    // sharing an inode) and size or target.
    s.head.clear();
    s.files.clear();
    for &(pid, ino) in &s.out {
        let kind = s.kinds[ino as usize];
        s.head.push((pid as u64) << 8 | kind as u64);
        match kind {
            1 => {
                s.head.push(ino as u64);
                s.head.push(s.sizes[ino as usize]);
                s.files.push(ino);
            }
            3 => {
                s.head.push(ino as u64);
                s.head.push(d.symlink[ino as usize] as u64);
            }
            _ => {}
        }
    }
    s.files.sort_unstable();
    s.files.dedup();
    // The choices of every visible chunk, in the reference code's slot order.
    s.slots.clear();
    let garbage_model = p.model.garbage();
    for &ino in &s.files {
        let size = s.sizes[ino as usize];
        let (b, e) = d.chunks_of[ino as usize];
        for c in b..e {
            let chunk = &p.layout.chunks[c];
            if chunk.start() >= size {
                break;
            }
            // The base value (as `candidates`): the latest of a durable truncate that freed
            // the chunk and a durable global assignment of its content, else the initial value.
            let hole = s
                .holes
                .iter()
                .filter(|(i, _, h)| *i == d.chunk_ino[c] && chunk.first >= *h)
                .map(|(_, at, _)| *at)
                .max();
            let (base_at, base) = match (hole, s.blocks[c]) {
                (Some(h), Some((at, v))) => {
                    if at >= h {
                        (at, v)
                    } else {
                        (h, d.zero_val[c])
                    }
                }
                (Some(h), None) => (h, d.zero_val[c]),
                (None, Some((at, v))) => (at, v),
                (None, None) => ((0, 0), d.init_val[c]),
            };
            let mut required: Stamp = (0, 0);
            let mut vals: Vec<u32> = Vec::new();
            let mut src: Vec<Option<usize>> = Vec::new();
            let mut vers: Vec<(Stamp, bool, u32)> = Vec::new();
            for &e in &g.blocks_of_chunk[c] {
                let eff = &p.effects[e];
                if !eff.is_block() || eff.op > k + 1 {
                    continue;
                }
                let at = (eff.op, e);
                if floor[e] {
                    required = required.max(at);
                }
                if g.preds(e).all(|q| inc[q]) {
                    vers.push((at, floor[e], d.block_val[e]));
                }
            }
            if base_at >= required {
                vals.push(base);
                src.push(None);
            }
            let garbage = garbage_model && vers.iter().any(|(at, fl, _)| !*fl && *at > base_at);
            for (at, _, v) in &vers {
                if *at > base_at && *at >= required {
                    vals.push(*v);
                    src.push(Some(at.1));
                }
            }
            if garbage {
                vals.push(d.garbage_val[c]);
                src.push(Some(GARBAGE));
            }
            let masks = subsets_masks(vals.len(), visible_units(chunk, size) as usize);
            let ids = masks
                .iter()
                .map(|&mask| {
                    let mut v: Vec<u32> = (0..vals.len())
                        .filter(|i| mask >> i & 1 == 1)
                        .map(|i| vals[i])
                        .collect();
                    v.sort_unstable();
                    v.dedup();
                    v
                })
                .collect();
            s.slots.push(Slot {
                ino,
                chunk: c,
                src,
                vals,
                masks,
                ids,
            });
        }
    }
    Some(DenseDownset { s })
}

impl DenseDownset<'_> {
    /// How many options each slot has (the reference code's `options[slot].len()`).
    pub fn option_counts(&self) -> impl Iterator<Item = usize> + '_ {
        self.s.slots.iter().map(|s| s.ids.len())
    }

    /// The key of one combination of choices, in `key()`.
    pub fn make_key(&mut self, pick: &[usize]) -> &[u64] {
        let s = &mut *self.s;
        s.key.clear();
        s.key.extend_from_slice(&s.head);
        for (slot, &p) in s.slots.iter().zip(pick) {
            let ids = &slot.ids[p];
            s.key.push(u64::MAX - ids.len() as u64);
            s.key.extend(ids.iter().map(|&v| v as u64));
        }
        &s.key
    }
}

impl DenseDownset<'_> {
    /// The crash state and witness of one combination of choices: what the reference code
    /// (`CrashPoint::state_for`) builds, from the dense view.
    pub fn materialize(
        &self,
        d: &Dense,
        p: &Persistence,
        k: usize,
        inc: &[bool],
        pick: &[usize],
    ) -> (CrashState, Witness) {
        let s = &*self.s;
        let mut w = Witness {
            at: k,
            persisted: (0..inc.len()).filter(|&e| inc[e]).collect(),
            chunks: Vec::new(),
        };
        // Per file (in inode order, as the slots): its segments.
        let mut content_of: Vec<(u32, Vec<Segment>)> = Vec::new();
        for (slot, &pk) in s.slots.iter().zip(pick) {
            let mask = slot.masks[pk];
            let ino = slot.ino;
            let size = s.sizes[ino as usize];
            let chunk = &p.layout.chunks[slot.chunk];
            if slot.masks.len() > 1 {
                let choice = (0..slot.src.len())
                    .filter(|i| mask >> i & 1 == 1)
                    .map(|i| slot.src[i])
                    .collect();
                w.chunks.push((slot.chunk, choice));
            }
            if content_of.last().is_none_or(|(i, _)| *i != ino) {
                content_of.push((ino, Vec::new()));
            }
            let segs = &mut content_of.last_mut().expect("pushed").1;
            let ids = &slot.ids[pk];
            let clipped = chunk.blocks == 1 && chunk.start() + chunk.unit > size;
            if ids.len() == 1 && !clipped {
                // One value, unclipped (what `clip` would return unchanged).
                let v = &d.values[ids[0] as usize];
                if let [(0, u, origin)] = v.0.as_slice() {
                    if *u == chunk.unit {
                        let end = chunk.end().min(size);
                        segs.push(Segment::Exact(Extent {
                            start: chunk.start(),
                            end,
                            origin: origin.clone(),
                        }));
                        continue;
                    }
                }
                for b in 0..chunk.blocks {
                    let base = chunk.start() + b * chunk.unit;
                    if base >= size {
                        break;
                    }
                    segs.extend(v.extents(chunk, b, size).into_iter().map(Segment::Exact));
                }
                continue;
            }
            let values: BTreeSet<BlockValue> = (0..slot.vals.len())
                .filter(|i| mask >> i & 1 == 1)
                .map(|i| clip(&d.values[slot.vals[i] as usize], chunk, size))
                .collect();
            if values.len() == 1 {
                let v = values.into_iter().next().expect("one value");
                if let [(0, u, origin)] = v.0.as_slice() {
                    if *u == chunk.unit {
                        // A whole-unit value: the chunk is one extent, whatever its length.
                        let end = chunk.end().min(size);
                        segs.push(Segment::Exact(Extent {
                            start: chunk.start(),
                            end,
                            origin: origin.clone(),
                        }));
                        continue;
                    }
                }
                for b in 0..chunk.blocks {
                    let base = chunk.start() + b * chunk.unit;
                    if base >= size {
                        break;
                    }
                    segs.extend(v.extents(chunk, b, size).into_iter().map(Segment::Exact));
                }
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
        let mut contents: Vec<(u32, Vec<Segment>)> = content_of
            .into_iter()
            .map(|(i, v)| (i, canonical(v)))
            .collect();
        let paths: Vec<(&Path, u32)> = s
            .out
            .iter()
            .map(|&(pid, ino)| (&s.path_of[pid as usize], ino))
            .collect();
        let state = build_tree_refs(
            &paths,
            |i| s.kinds[i as usize] == 2,
            |i| {
                (s.kinds[i as usize] == 3)
                    .then(|| d.targets[i as usize].clone().unwrap_or_default())
            },
            |i, last| {
                let content = match contents.iter_mut().find(|(x, _)| *x == i) {
                    Some((_, v)) if last => std::mem::take(v),
                    Some((_, v)) => v.clone(),
                    None => Vec::new(),
                };
                (s.sizes[i as usize], content)
            },
        );
        (state, w)
    }
}
