//! The fast path of the enumeration: the metadata of a downset over dense arrays (inodes,
//! directory entries and block values interned once per program and model), and a compact key
//! per crash state from which the state is a function. A key seen before names a class already
//! found, so the full [`CrashState`](crate::CrashState) (paths, segments, a tree) is built only
//! for a new key, by the reference code in `explore.rs`.

use super::{
    canonical_in_place, clip, push_value, push_values, subsets_masks, visible_units, Stamp,
    Witness, GARBAGE,
};
use crate::graph::Graph;
use crate::state::{CrashState, Node, Segment};
use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use unplug_model::volatile::Trace;
use unplug_model::{Assign, BlockValue, EffectKind, Kind, Origin, Path, Persistence};

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
    /// Per directory inode: its entry slots in name order (a range: first, count).
    children: Vec<(u32, u32)>,
    /// Per symlink inode: its target's id (NONE for other inodes).
    symlink: Vec<u32>,
    /// Every effect's metadata assignments, one after another; effect e's start at
    /// `assigns_of[e]`.
    assigns: Vec<DAssign>,
    assigns_of: Vec<u32>,
    /// Every effect's chunk contents, as (chunk, value id), one after another.
    blocks: Vec<(usize, u32)>,
    blocks_of: Vec<u32>,
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
    /// Every name, one after another (in rank order).
    names: String,
    /// Name rank -> its range in `names` (start, length).
    name_span: Vec<(u32, u32)>,
    /// Per dense inode: its symlink target if it is a symlink.
    targets: Vec<Option<String>>,
}

/// Sorts and deduplicates a vector.
fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort_unstable();
    v.dedup();
    v
}

/// The index of `x` in a sorted vector that holds it.
fn rank<T: Ord>(v: &[T], x: &T) -> u32 {
    v.binary_search(x).expect("interned") as u32
}

impl Dense {
    pub fn new(trace: &Trace, p: &Persistence) -> Dense {
        let init = &trace.initial;
        let mut inos: Vec<usize> = vec![0];
        inos.extend(init.inodes.keys());
        let mut names: Vec<&str> = Vec::new();
        let mut slots: Vec<(usize, &str)> = Vec::new();
        for ((d, n), t) in &init.entries {
            inos.push(*d);
            inos.push(*t);
            names.push(n);
            slots.push((*d, n));
        }
        for eff in &p.effects {
            for a in eff.assigns() {
                match a {
                    Assign::Entry { dir, name, target } => {
                        inos.push(*dir);
                        inos.extend(*target);
                        names.push(name);
                        slots.push((*dir, name));
                    }
                    Assign::Init { ino, .. } | Assign::Size { ino, .. } => inos.push(*ino),
                }
            }
        }
        inos.extend(p.layout.chunks.iter().map(|c| c.ino));
        let inos = sorted(inos);
        let names = sorted(names);
        let slots = sorted(slots);
        // Inode number -> dense index (inode numbers are small: they count the inodes made).
        let top = inos.last().copied().unwrap_or(0);
        let ix_of: Vec<u32> = if top < 1 << 20 {
            let mut v = vec![NONE; top + 1];
            for (i, n) in inos.iter().enumerate() {
                v[*n] = i as u32;
            }
            v
        } else {
            Vec::new()
        };
        let ix = |n: usize| -> u32 {
            match ix_of.get(n) {
                Some(&i) if i != NONE => i,
                _ => rank(&inos, &n),
            }
        };
        let n = inos.len();
        let mut children = vec![(0, 0); n];
        let mut slot_name = Vec::with_capacity(slots.len());
        // Sorted by (dir, name): a directory's slots are consecutive, in name order.
        for (i, (d, name)) in slots.iter().enumerate() {
            let c = &mut children[ix(*d) as usize];
            if c.1 == 0 {
                c.0 = i as u32;
            }
            c.1 += 1;
            slot_name.push(rank(&names, name));
        }
        let mut init_entry = vec![NONE; slots.len()];
        for ((d, name), t) in &init.entries {
            init_entry[rank(&slots, &(*d, name.as_str())) as usize] = ix(*t);
        }
        let mut init_kind = vec![NO_KIND; n];
        let mut init_size = vec![0; n];
        for (i, (k, s, _)) in &init.inodes {
            init_kind[ix(*i) as usize] = kind_code(*k);
            init_size[ix(*i) as usize] = *s;
        }
        let mut strings: Vec<&str> = Vec::new();
        let mut symlink = vec![NONE; n];
        let mut targets = vec![None; n];
        for (i, t) in &trace.last.symlinks {
            if inos.binary_search(i).is_ok() {
                let d = ix(*i) as usize;
                symlink[d] = match strings.iter().position(|x| *x == t.as_str()) {
                    Some(j) => j as u32,
                    None => {
                        strings.push(t);
                        strings.len() as u32 - 1
                    }
                };
                targets[d] = Some(t.clone());
            }
        }
        // Value hash -> the last id with it; `same_hash` chains the others.
        let mut values: FxMap<u64, u32> = FxMap::default();
        let mut same_hash: Vec<u32> = Vec::new();
        let mut by_id: Vec<BlockValue> = Vec::new();
        let mut intern = |v: std::borrow::Cow<BlockValue>| -> u32 {
            let mut h = Fx::default();
            std::hash::Hash::hash(&*v, &mut h);
            let h = h.finish();
            let last = values.get(&h).copied().unwrap_or(NONE);
            let mut i = last;
            while i != NONE {
                if by_id[i as usize] == *v {
                    return i;
                }
                i = same_hash[i as usize];
            }
            let i = by_id.len() as u32;
            by_id.push(v.into_owned());
            same_hash.push(last);
            values.insert(h, i);
            i
        };
        let mut assigns = Vec::new();
        let mut assigns_of = Vec::with_capacity(p.effects.len() + 1);
        let mut blocks = Vec::new();
        let mut blocks_of = Vec::with_capacity(p.effects.len() + 1);
        let mut block_val = Vec::with_capacity(p.effects.len());
        for eff in &p.effects {
            assigns_of.push(assigns.len() as u32);
            assigns.extend(eff.assigns().iter().map(|a| match a {
                Assign::Entry { dir, name, target } => DAssign::Entry {
                    slot: rank(&slots, &(*dir, name.as_str())),
                    target: target.map_or(NONE, ix),
                },
                Assign::Init { ino, kind } => DAssign::Init {
                    ino: ix(*ino),
                    kind: kind_code(*kind),
                },
                Assign::Size {
                    ino,
                    size,
                    holes_from,
                } => DAssign::Size {
                    ino: ix(*ino),
                    size: *size,
                    holes_from: *holes_from,
                },
            }));
            blocks_of.push(blocks.len() as u32);
            for (c, v) in &eff.blocks {
                blocks.push((*c, intern(std::borrow::Cow::Borrowed(v))));
            }
            block_val.push(match &eff.kind {
                EffectKind::Block { value, .. } => intern(std::borrow::Cow::Borrowed(value)),
                _ => NONE,
            });
        }
        assigns_of.push(assigns.len() as u32);
        blocks_of.push(blocks.len() as u32);
        let mut init_val = Vec::with_capacity(p.layout.chunks.len());
        let mut zero_val = Vec::with_capacity(p.layout.chunks.len());
        let mut garbage_val = Vec::with_capacity(p.layout.chunks.len());
        let mut chunk_ino = Vec::with_capacity(p.layout.chunks.len());
        // Per unit size: its zero and garbage values.
        let mut per_unit: Vec<(u64, u32, u32)> = Vec::new();
        for c in &p.layout.chunks {
            let (zero, garbage) = match per_unit.iter().find(|(u, _, _)| *u == c.unit) {
                Some(&(_, z, g)) => (z, g),
                None => {
                    let z = intern(std::borrow::Cow::Owned(BlockValue::zero(c.unit)));
                    let g = intern(std::borrow::Cow::Owned(BlockValue::whole(
                        c.unit,
                        Origin::Garbage,
                    )));
                    per_unit.push((c.unit, z, g));
                    (z, g)
                }
            };
            init_val.push(match init.inodes.get(&c.ino) {
                Some((_, _, content)) => {
                    intern(std::borrow::Cow::Owned(BlockValue::of(content, c)))
                }
                None => zero,
            });
            zero_val.push(zero);
            garbage_val.push(garbage);
            chunk_ino.push(ix(c.ino));
        }
        let chunks_of = inos
            .iter()
            .map(|i| {
                let r = p.layout.chunks_of(*i);
                (r.start, r.end)
            })
            .collect();
        Dense {
            values: by_id,
            names: names.concat(),
            name_span: names
                .iter()
                .scan(0u32, |at, n| {
                    let span = (*at, n.len() as u32);
                    *at += n.len() as u32;
                    Some(span)
                })
                .collect(),
            targets,
            root: ix(0),
            inos,
            init_kind,
            init_size,
            init_entry,
            slot_name,
            children,
            symlink,
            assigns,
            assigns_of,
            blocks,
            blocks_of,
            block_val,
            init_val,
            zero_val,
            garbage_val,
            chunk_ino,
            chunks_of,
        }
    }

    /// The metadata assignments of effect `e`.
    fn assigns(&self, e: usize) -> &[DAssign] {
        &self.assigns[self.assigns_of[e] as usize..self.assigns_of[e + 1] as usize]
    }

    /// The chunk contents effect `e` sets, as (chunk, value id).
    fn blocks(&self, e: usize) -> &[(usize, u32)] {
        &self.blocks[self.blocks_of[e] as usize..self.blocks_of[e + 1] as usize]
    }
}

/// One slot (a visible chunk with a choice) of a downset: ranges into the flat buffers of
/// [`Scratch`].
#[derive(Clone, Copy)]
struct Slot {
    ino: u32,
    chunk: usize,
    /// Its candidates in `Scratch::src` / `Scratch::vals`: the sources (None: the base value;
    /// Some(e): block version e; GARBAGE) and their value ids.
    cand: (u32, u32),
    /// Its options in `Scratch::opt_mask` / `Scratch::opt_ids` (in [`subsets`](super::subsets)
    /// order): the subset of candidates as a bit mask, and the range of its sorted, distinct
    /// value ids in `Scratch::ids`.
    opts: (u32, u32),
}

impl Slot {
    fn cands(&self) -> std::ops::Range<usize> {
        self.cand.0 as usize..(self.cand.0 + self.cand.1) as usize
    }
    fn option(&self, pick: usize) -> usize {
        self.opts.0 as usize + pick
    }
}

/// What one reachable path is, apart from a file's content.
#[derive(Clone, Copy)]
enum Skel {
    Dir {
        links: u64,
    },
    Symlink {
        ino: u32,
        links: u64,
    },
    File {
        ino: u32,
        links: u64,
        /// The first of its other names, when it comes before this one (a path id).
        same_as: Option<u32>,
        /// Whether this is the file's last name in `out` (its content is moved, not cloned).
        last: bool,
    },
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
    /// Path id -> its parent's id (the root: itself).
    parent_of: Vec<u32>,
    /// Per entry of `out`: the node it becomes (metadata only; a file's content comes from the
    /// choices).
    skel: Vec<Skel>,
    /// The entries of `out` in path order (the order of the state's tree).
    order: Vec<u32>,
    /// The persisted global effects (the witness's `persisted`).
    persisted: Vec<usize>,
    /// Whether `skel`, `order` and `persisted` are those of the current downset (made when
    /// its first state is).
    skeleton_made: bool,
    /// Path id -> the name ranks of its components, in `ranks` (name ranks are in string
    /// order, so paths compare as their rank sequences).
    rank_span: Vec<(u32, u32)>,
    ranks: Vec<u32>,
    files: Vec<u32>,
    slots: Vec<Slot>,
    src: Vec<Option<usize>>,
    vals: Vec<u32>,
    opt_mask: Vec<u64>,
    opt_ids: Vec<(u32, u32)>,
    ids: Vec<u32>,
    vers: Vec<(Stamp, bool, u32)>,
    /// [`subsets_masks`] by (values, largest subset).
    masks: FxMap<(usize, usize), Vec<u64>>,
    /// The part of the key that does not depend on the block choices.
    head: Vec<u64>,
    pub key: Vec<u64>,
}

impl Scratch {
    /// Whether the buffers grew too large to keep for another exploration.
    pub fn is_large(&self) -> bool {
        const MAX: usize = 1 << 16;
        self.path_of.capacity() > MAX
            || self.out.capacity() > MAX
            || self.key.capacity() > MAX
            || self.ids.capacity() > MAX
            || self.masks.values().map(Vec::len).sum::<usize>() > MAX
    }

    /// Forgets what belongs to one exploration (the path interner, per-chunk and per-inode
    /// state), keeping the capacity of the buffers for the next.
    pub fn reset(&mut self) {
        self.blocks.clear();
        self.touched.clear();
        self.in_out.clear();
        self.paths.clear();
        self.path_of.clear();
        self.parent_of.clear();
        self.rank_span.clear();
        self.ranks.clear();
        self.skeleton_made = false;
    }
}

/// The nodes of the reachable paths (as `build_tree_with` makes them) and their path order.
fn skeleton(s: &mut Scratch, inc: &[bool]) {
    const DIR: u8 = 2;
    const SYMLINK: u8 = 3;
    s.skeleton_made = true;
    s.persisted.clear();
    s.persisted.extend((0..inc.len()).filter(|&e| inc[e]));
    let out = &s.out;
    let (rank_span, ranks) = (&s.rank_span, &s.ranks);
    let path = |j: u32| {
        let (from, len) = rank_span[out[j as usize].0 as usize];
        &ranks[from as usize..(from + len) as usize]
    };
    s.order.clear();
    s.order.extend(0..out.len() as u32);
    s.order.sort_unstable_by(|&a, &b| path(a).cmp(path(b)));
    s.skel.clear();
    for &(pid, ino) in out.iter() {
        let kind = s.kinds[ino as usize];
        let names = || out.iter().filter(|&&(q, i)| i == ino && q != 0).count() as u64;
        s.skel.push(match kind {
            DIR => {
                // Children of a directory: the entries found from it (each reachable once).
                let subdirs = out
                    .iter()
                    .filter(|&&(q, i)| {
                        q != 0 && s.parent_of[q as usize] == pid && s.kinds[i as usize] == DIR
                    })
                    .count() as u64;
                Skel::Dir { links: 2 + subdirs }
            }
            SYMLINK => Skel::Symlink {
                ino,
                links: names(),
            },
            _ => {
                // The first name of the inode in path order.
                let first = s
                    .order
                    .iter()
                    .map(|&j| out[j as usize])
                    .find(|&(q, i)| i == ino && q != 0)
                    .map_or(pid, |(q, _)| q);
                Skel::File {
                    ino,
                    links: names(),
                    same_as: (first != pid).then_some(first),
                    // Set below, in path order (the order states are built in).
                    last: false,
                }
            }
        });
    }
    // A file's content is moved into its last name in path order (the order
    // `materialize` builds nodes in) and cloned into the names before it.
    let mut seen: Vec<u32> = Vec::new();
    for &j in s.order.iter().rev() {
        if let Skel::File { ino, last, .. } = &mut s.skel[j as usize] {
            if !seen.contains(ino) {
                seen.push(*ino);
                *last = true;
            }
        }
    }
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
        for &(c, v) in d.blocks(e) {
            if s.blocks[c].is_none() {
                s.touched.push(c);
            }
            s.blocks[c] = Some((at, v));
        }
        for a in d.assigns(e) {
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
        s.parent_of.push(0);
        s.rank_span.push((0, 0));
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
        let (first, count) = d.children[ino as usize];
        for slot in first..first + count {
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
                    let (at, len) = d.name_span[name as usize];
                    let path =
                        s.path_of[pid as usize].join(&d.names[at as usize..(at + len) as usize]);
                    s.path_of.push(path);
                    s.parent_of.push(pid);
                    let (from, len) = s.rank_span[pid as usize];
                    let start = s.ranks.len();
                    s.ranks
                        .extend_from_within(from as usize..(from + len) as usize);
                    s.ranks.push(name);
                    s.rank_span.push((start as u32, len + 1));
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
    s.skeleton_made = false;
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
    s.src.clear();
    s.vals.clear();
    s.opt_mask.clear();
    s.opt_ids.clear();
    s.ids.clear();
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
                .filter(|(i, _, h)| {
                    *i == d.chunk_ino[c] && chunk.start() >= *h * unplug_model::BLOCK
                })
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
            s.vers.clear();
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
                    s.vers.push((at, floor[e], d.block_val[e]));
                }
            }
            let start = s.vals.len();
            if base_at >= required {
                s.vals.push(base);
                s.src.push(None);
            }
            let garbage = garbage_model && s.vers.iter().any(|(at, fl, _)| !*fl && *at > base_at);
            for (at, _, v) in &s.vers {
                if *at > base_at && *at >= required {
                    s.vals.push(*v);
                    s.src.push(Some(at.1));
                }
            }
            if garbage {
                s.vals.push(d.garbage_val[c]);
                s.src.push(Some(GARBAGE));
            }
            let n = s.vals.len() - start;
            let max = (visible_units(chunk, size) as usize).min(n);
            let masks = s
                .masks
                .entry((n, max))
                .or_insert_with(|| subsets_masks(n, max));
            let opt_start = s.opt_mask.len();
            for &mask in masks.iter() {
                let from = s.ids.len();
                s.ids.extend(
                    (0..n)
                        .filter(|i| mask >> i & 1 == 1)
                        .map(|i| s.vals[start + i]),
                );
                s.ids[from..].sort_unstable();
                let mut len = 0;
                for i in from..s.ids.len() {
                    if len == 0 || s.ids[from + len - 1] != s.ids[i] {
                        s.ids[from + len] = s.ids[i];
                        len += 1;
                    }
                }
                s.ids.truncate(from + len);
                s.opt_mask.push(mask);
                s.opt_ids.push((from as u32, len as u32));
            }
            s.slots.push(Slot {
                ino,
                chunk: c,
                cand: (start as u32, n as u32),
                opts: (opt_start as u32, (s.opt_mask.len() - opt_start) as u32),
            });
        }
    }
    Some(DenseDownset { s })
}

impl DenseDownset<'_> {
    /// How many options each slot has (the reference code's `options[slot].len()`).
    pub fn option_counts(&self) -> impl Iterator<Item = usize> + '_ {
        self.s.slots.iter().map(|s| s.opts.1 as usize)
    }

    /// The key made last by [`Self::make_key`].
    pub fn key(&self) -> &[u64] {
        &self.s.key
    }

    /// The key of one combination of choices.
    pub fn make_key(&mut self, pick: &[usize]) -> &[u64] {
        let s = &mut *self.s;
        s.key.clear();
        s.key.extend_from_slice(&s.head);
        for (slot, &p) in s.slots.iter().zip(pick) {
            let (from, len) = s.opt_ids[slot.option(p)];
            let ids = &s.ids[from as usize..(from + len) as usize];
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
        &mut self,
        d: &Dense,
        p: &Persistence,
        k: usize,
        inc: &[bool],
        pick: &[usize],
    ) -> (CrashState, Witness) {
        if !self.s.skeleton_made {
            skeleton(self.s, inc);
        }
        let s = &*self.s;
        let mut w = Witness {
            at: k,
            persisted: s.persisted.clone(),
            chunks: Vec::with_capacity(s.slots.iter().filter(|x| x.opts.1 > 1).count()),
        };
        // Per file (in inode order, as the slots): its segments.
        let mut content_of: Vec<(u32, Vec<Segment>)> = Vec::with_capacity(s.files.len());
        for (n, (slot, &pk)) in s.slots.iter().zip(pick).enumerate() {
            let mask = s.opt_mask[slot.option(pk)];
            let ino = slot.ino;
            let size = s.sizes[ino as usize];
            let chunk = &p.layout.chunks[slot.chunk];
            let src = &s.src[slot.cands()];
            let vals = &s.vals[slot.cands()];
            if slot.opts.1 > 1 {
                let choice = (0..src.len())
                    .filter(|i| mask >> i & 1 == 1)
                    .map(|i| src[i])
                    .collect();
                w.chunks.push((slot.chunk, choice));
            }
            if content_of.last().is_none_or(|(i, _)| *i != ino) {
                let chunks = s.slots[n..].iter().take_while(|x| x.ino == ino).count();
                content_of.push((ino, Vec::with_capacity(chunks)));
            }
            let segs = &mut content_of.last_mut().expect("pushed").1;
            let (from, len) = s.opt_ids[slot.option(pk)];
            let ids = &s.ids[from as usize..(from + len) as usize];
            let clipped = chunk.blocks == 1 && chunk.start() + chunk.unit > size;
            if ids.len() == 1 && !clipped {
                // One value, unclipped (what `clip` would return unchanged).
                push_value(segs, &d.values[ids[0] as usize], chunk, size);
                continue;
            }
            let values: BTreeSet<BlockValue> = (0..vals.len())
                .filter(|i| mask >> i & 1 == 1)
                .map(|i| clip(&d.values[vals[i] as usize], chunk, size))
                .collect();
            push_values(segs, values, chunk, size);
        }
        for (_, v) in &mut content_of {
            canonical_in_place(v);
        }
        let mut tree = std::collections::BTreeMap::new();
        for &j in &s.order {
            let pid = s.out[j as usize].0;
            let node = match s.skel[j as usize] {
                Skel::Dir { links } => Node::Dir { links },
                Skel::Symlink { ino, links } => Node::Symlink {
                    target: d.targets[ino as usize].clone().unwrap_or_default(),
                    links,
                },
                Skel::File {
                    ino,
                    links,
                    same_as,
                    last,
                } => {
                    let content = match content_of.iter_mut().find(|(x, _)| *x == ino) {
                        Some((_, v)) if last => std::mem::take(v),
                        Some((_, v)) => v.clone(),
                        None => Vec::new(),
                    };
                    Node::File {
                        size: s.sizes[ino as usize],
                        links,
                        content,
                        same_file_as: same_as.map(|q| s.path_of[q as usize].clone()),
                    }
                }
            };
            tree.insert(s.path_of[pid as usize].clone(), node);
        }
        let state = CrashState { tree };
        (state, w)
    }
}
