//! One downset through the fast path: its metadata over dense arrays, its reachable paths, the
//! candidate values and options of every visible chunk, and the key of each combination of
//! options.

use super::materialize::Skel;
use super::project::{Projection, CONTENT, LISTED, SHOWN};
use super::{Dense, NONE, NO_KIND};
use crate::explore::chunk_values::{subsets_masks, visible_units};
use crate::explore::fx::FxMap;
use crate::explore::{CrashPoint, Stamp, GARBAGE};
use unplug_model::{Path, Persistence};

/// The kind code of a directory (see `kind_code`).
const DIR: u8 = 2;

/// One slot (a visible chunk with a choice) of a downset: ranges into the flat buffers of
/// [`Scratch`].
#[derive(Clone, Copy)]
pub(super) struct Slot {
    pub(super) ino: u32,
    pub(super) chunk: usize,
    /// Its candidates in `Scratch::src` / `Scratch::vals`: the sources (None: the base value;
    /// Some(e): block version e; GARBAGE) and their value ids.
    pub(super) cand: (u32, u32),
    /// Its options in `Scratch::opt_mask` / `Scratch::opt_ids` (in [`subsets`](crate::explore::chunk_values::subsets)
    /// order): the subset of candidates as a bit mask, and the range of its sorted, distinct
    /// value ids in `Scratch::ids`.
    pub(super) opts: (u32, u32),
}

impl Slot {
    pub(super) fn cands(&self) -> std::ops::Range<usize> {
        self.cand.0 as usize..(self.cand.0 + self.cand.1) as usize
    }
    pub(super) fn option(&self, pick: usize) -> usize {
        self.opts.0 as usize + pick
    }
}

/// Reusable buffers and the path interner of one exploration.
#[derive(Default)]
pub struct Scratch {
    pub(super) kinds: Vec<u8>,
    pub(super) sizes: Vec<u64>,
    pub(super) entries: Vec<u32>,
    pub(super) holes: Vec<(u32, Stamp, u64)>,
    pub(super) blocks: Vec<Option<(Stamp, u32)>>,
    /// Per target (see `meta.rs`): the latest included effect that writes it (NONE: none).
    pub(super) top: Vec<u32>,
    pub(super) undo: Vec<super::meta::Undo>,
    pub(super) in_out: Vec<bool>,
    /// (path id, inode) in the order `reachable` finds them.
    pub(super) out: Vec<(u32, u32)>,
    /// Path ids: (parent path id, name rank) -> id; the root is 0.
    pub(super) paths: FxMap<(u32, u32), u32>,
    /// Path id -> path.
    pub(super) path_of: Vec<Path>,
    /// Path id -> its parent's id (the root: itself).
    pub(super) parent_of: Vec<u32>,
    /// Per entry of `out`: the node it becomes (metadata only; a file's content comes from the
    /// choices).
    pub(super) skel: Vec<Skel>,
    /// The entries of `out` in path order (the order of the state's tree).
    pub(super) order: Vec<u32>,
    /// Per inode: its names in `out`, its first path id in path order and the index in `out`
    /// of its last name in path order; per path id: its subdirectories in `out` (see
    /// `skeleton`).
    pub(super) names_of: Vec<u32>,
    pub(super) first_of: Vec<u32>,
    pub(super) last_of: Vec<u32>,
    pub(super) subdirs: Vec<u32>,
    /// The persisted global effects (the witness's `persisted`).
    pub(super) persisted: Vec<usize>,
    /// Whether `skel`, `order` and `persisted` are those of the current downset (made when
    /// its first state is).
    pub(super) skeleton_made: bool,
    /// Path id -> the name ranks of its components, in `ranks` (name ranks are in string
    /// order, so paths compare as their rank sequences).
    pub(super) rank_span: Vec<(u32, u32)>,
    pub(super) ranks: Vec<u32>,
    /// Path id -> its role when states are built as the properties read them (see
    /// `project.rs`).
    pub(super) read_flags: Vec<u8>,
    pub(super) files: Vec<u32>,
    pub(super) slots: Vec<Slot>,
    pub(super) src: Vec<Option<usize>>,
    pub(super) vals: Vec<u32>,
    pub(super) opt_mask: Vec<u64>,
    pub(super) opt_ids: Vec<(u32, u32)>,
    pub(super) ids: Vec<u32>,
    pub(super) vers: Vec<(Stamp, bool, u32)>,
    /// [`subsets_masks`] by (values, largest subset).
    pub(super) masks: FxMap<(usize, usize), (Vec<u64>, bool)>,
    /// Every slot of the current downset has all its options (see [`subsets_masks`]).
    pub(super) complete: bool,
    /// The part of the key that does not depend on the block choices.
    pub(super) head: Vec<u64>,
    pub(super) key: Vec<u64>,
}

impl Scratch {
    /// Whether the buffers grew too large to keep for another exploration.
    pub(crate) fn is_large(&self) -> bool {
        const MAX: usize = 1 << 16;
        self.path_of.capacity() > MAX
            || self.out.capacity() > MAX
            || self.key.capacity() > MAX
            || self.ids.capacity() > MAX
            || self.masks.values().map(|m| m.0.len()).sum::<usize>() > MAX
    }

    /// Forgets what belongs to one exploration (the path interner, per-chunk and per-inode
    /// state), keeping the capacity of the buffers for the next.
    pub(crate) fn reset(&mut self) {
        self.blocks.clear();
        self.top.clear();
        self.undo.clear();
        self.in_out.clear();
        self.paths.clear();
        self.path_of.clear();
        self.parent_of.clear();
        self.rank_span.clear();
        self.ranks.clear();
        self.read_flags.clear();
        self.skeleton_made = false;
    }
}

/// The fast view of one downset: the key of each combination of choices.
pub struct DenseDownset<'s> {
    pub(super) s: &'s mut Scratch,
    /// Built as the properties read it (see `project.rs`).
    pub(super) projected: bool,
}

/// The dense view of the downset `inc` whose metadata `s` holds (see `meta.rs`): its reachable
/// paths, the head of its keys and its choices; `None` if a limit of `reachable` (100 000
/// paths) was hit, where the caller falls back to the reference code. With the crash point's
/// projection, only what the properties read (see `project.rs`).
pub fn view<'s>(
    d: &Dense,
    s: &'s mut Scratch,
    cp: &CrashPoint,
    inc: &[bool],
) -> Option<DenseDownset<'s>> {
    let projected = cp.proj.zip(cp.cone);
    if !walk_paths(d, s, projected.map(|(p, _)| p)) {
        return None;
    }
    s.skeleton_made = false;
    match projected {
        Some((_, cone)) => {
            s.flag_paths(&cone.reads);
            key_head_projected(d, s);
        }
        None => key_head(d, s),
    }
    choices(d, s, cp, inc);
    Some(DenseDownset {
        s,
        projected: projected.is_some(),
    })
}

/// The reachable paths into `s.out`, breadth first, children in name order (as `reachable`),
/// each path interned once per exploration; false if there are too many (100 000). With a
/// projection, only its followed slots.
#[inline]
fn walk_paths(d: &Dense, s: &mut Scratch, proj: Option<&Projection>) -> bool {
    let n = d.inos.len();
    if s.in_out.len() != n {
        s.in_out = vec![false; n];
    }
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
        // Every slot, or only the followed ones.
        let all = first..if proj.is_some() { first } else { first + count };
        let followed = proj.map(|p| p.follows(ino).iter().copied());
        let slots = followed.into_iter().flatten().chain(all);
        for slot in slots {
            let child = s.entries[slot as usize];
            if child == NONE || s.kinds[child as usize] == NO_KIND {
                continue;
            }
            if s.kinds[child as usize] == DIR && s.in_out[child as usize] {
                continue;
            }
            s.in_out[child as usize] = true;
            let id = path_id(d, s, pid, d.slot_name[slot as usize]);
            s.out.push((id, child));
        }
    }
    for &(_, ino) in &s.out {
        s.in_out[ino as usize] = false;
    }
    !too_many
}

/// The id of the path `name` (a name rank) in the directory with path id `pid`, interned.
#[inline]
fn path_id(d: &Dense, s: &mut Scratch, pid: u32, name: u32) -> u32 {
    if let Some(&id) = s.paths.get(&(pid, name)) {
        return id;
    }
    let id = s.path_of.len() as u32;
    let (at, len) = d.name_span[name as usize];
    let path = s.path_of[pid as usize].join(&d.names[at as usize..(at + len) as usize]);
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

/// The head of the key: every path, its kind, and for a file or symlink its inode (names
/// sharing an inode) and size or target; and the visible files, in inode order.
#[inline]
fn key_head(d: &Dense, s: &mut Scratch) {
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
}

/// [`key_head`] of a state built as the properties read it (see `project.rs`): each read
/// path, its kind, and for a shown file its size and, when its content is read, its inode
/// (the files whose content is read are the visible files); for a symlink its target.
#[inline]
fn key_head_projected(d: &Dense, s: &mut Scratch) {
    s.head.clear();
    s.files.clear();
    for &(pid, ino) in &s.out {
        let f = s.read_flags[pid as usize];
        if f == 0 {
            continue;
        }
        if f & (SHOWN | LISTED) == 0 {
            // Only a name in a listed directory: its node is not read.
            s.head.push((pid as u64) << 8);
            continue;
        }
        let kind = s.kinds[ino as usize];
        s.head.push((pid as u64) << 8 | kind as u64);
        match kind {
            1 => {
                s.head.push(s.sizes[ino as usize]);
                if f & CONTENT != 0 {
                    // Which file's choices the content comes from (the choices are per file).
                    s.head.push(ino as u64);
                    s.files.push(ino);
                }
            }
            3 => s.head.push(d.symlink[ino as usize] as u64),
            _ => {}
        }
    }
    s.files.sort_unstable();
    s.files.dedup();
}

/// The choices of every visible chunk, in the reference code's slot order.
#[inline]
fn choices(d: &Dense, s: &mut Scratch, cp: &CrashPoint, inc: &[bool]) {
    s.slots.clear();
    s.src.clear();
    s.vals.clear();
    s.opt_mask.clear();
    s.opt_ids.clear();
    s.ids.clear();
    s.complete = true;
    let p = cp.p;
    for f in 0..s.files.len() {
        let ino = s.files[f];
        let size = s.sizes[ino as usize];
        let (b, e) = d.chunks_of[ino as usize];
        for c in b..e {
            let chunk = &p.layout.chunks[c];
            if chunk.start() >= size {
                break;
            }
            let start = s.vals.len();
            let n = candidates(d, s, cp, inc, c);
            let max = (visible_units(chunk, size) as usize).min(n);
            let opt_start = s.opt_mask.len();
            push_options(s, start, n, max);
            s.slots.push(Slot {
                ino,
                chunk: c,
                cand: (start as u32, n as u32),
                opts: (opt_start as u32, (s.opt_mask.len() - opt_start) as u32),
            });
        }
    }
}

/// Pushes the candidate values of chunk `c` (as `candidates` in the reference code) onto
/// `s.vals`, their sources onto `s.src`; how many.
#[inline]
fn candidates(d: &Dense, s: &mut Scratch, cp: &CrashPoint, inc: &[bool], c: usize) -> usize {
    let (p, g, floor) = (cp.p, cp.g, &cp.floor);
    let (base_at, base) = base_value(d, s, p, c);
    let mut required: Stamp = (0, 0);
    s.vers.clear();
    for &e in &g.blocks_of_chunk[c] {
        let eff = &p.effects[e];
        if !eff.is_block() || eff.op > cp.k + 1 {
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
    let garbage = p.model.garbage() && s.vers.iter().any(|(at, fl, _)| !*fl && *at > base_at);
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
    s.vals.len() - start
}

/// The base value of chunk `c` (as `candidates`): the latest of a durable truncate that freed
/// the chunk and a durable global assignment of its content, else the initial value.
#[inline]
fn base_value(d: &Dense, s: &Scratch, p: &Persistence, c: usize) -> (Stamp, u32) {
    let chunk = &p.layout.chunks[c];
    let hole = s
        .holes
        .iter()
        .filter(|(i, _, h)| *i == d.chunk_ino[c] && chunk.start() >= *h * unplug_model::BLOCK)
        .map(|(_, at, _)| *at)
        .max();
    match (hole, s.blocks[c]) {
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
    }
}

/// Pushes the options of the `n` candidates at `s.vals[start..]` (every nonempty subset of at
/// most `max` of them, in [`subsets`](crate::explore::chunk_values::subsets) order): each as a
/// bit mask and its sorted, distinct value ids.
#[inline]
fn push_options(s: &mut Scratch, start: usize, n: usize, max: usize) {
    let (masks, complete) = s
        .masks
        .entry((n, max))
        .or_insert_with(|| subsets_masks(n, max));
    s.complete &= *complete;
    for &mask in masks.iter() {
        let from = s.ids.len();
        s.ids.extend(
            (0..n.min(64))
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
}

impl DenseDownset<'_> {
    /// How many options each slot has (the reference code's `options[slot].len()`).
    pub(crate) fn option_counts(&self) -> impl Iterator<Item = usize> + '_ {
        self.s.slots.iter().map(|s| s.opts.1 as usize)
    }

    /// Whether every slot has all its options (see [`subsets_masks`]).
    pub(crate) fn complete(&self) -> bool {
        self.s.complete
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
