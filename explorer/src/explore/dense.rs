//! The fast path of the enumeration: the metadata of a downset over dense arrays (inodes,
//! directory entries and block values interned once per program and model), and a compact key
//! per crash state from which the state is a function. A key seen before names a class already
//! found, so the full [`CrashState`](crate::CrashState) (paths, segments, a tree) is built only
//! for a new key, as the reference code in `reference.rs` would build it.
//!
//! This file interns the program ([`Dense`], once per exploration); `downset.rs` computes a
//! downset's metadata, paths and choices and the key of each combination; `materialize.rs`
//! builds the state of a new key.

mod downset;
mod materialize;
mod meta;
mod project;

pub use downset::{view, DenseDownset, Scratch};
pub use project::Projection;

use super::fx::{Fx, FxMap};
use std::borrow::Cow;
use std::hash::Hasher;
use unplug_model::volatile::{Initial, Trace};
use unplug_model::{Assign, BlockValue, EffectKind, Kind, Origin, Persistence};

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
    /// Every effect's writes as (target, value) (see `meta.rs`), one after another; effect
    /// e's start at `writes_of[e]`.
    writes: Vec<(u32, u64)>,
    writes_of: Vec<u32>,
    /// Per effect: whether it opens a hole (a truncate's `holes_from`).
    opens_hole: Vec<bool>,
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

/// Every inode, name and directory entry slot the program and model mention, sorted (so dense
/// order is inode order, name order is string order, and a directory's slots are consecutive,
/// in name order).
struct Ids<'a> {
    inos: Vec<usize>,
    names: Vec<&'a str>,
    slots: Vec<(usize, &'a str)>,
    /// Inode number -> dense index, when inode numbers are small (they count the inodes made);
    /// empty otherwise, and `ix` searches `inos`.
    ix_of: Vec<u32>,
}

impl<'a> Ids<'a> {
    fn collect(trace: &'a Trace, p: &'a Persistence) -> Self {
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
        Ids {
            inos,
            names: sorted(names),
            slots: sorted(slots),
            ix_of,
        }
    }

    /// The dense index of inode number `n`.
    #[inline]
    fn ix(&self, n: usize) -> u32 {
        match self.ix_of.get(n) {
            Some(&i) if i != NONE => i,
            _ => rank(&self.inos, &n),
        }
    }

    /// The slot of entry `name` in directory `dir`.
    #[inline]
    fn slot(&self, dir: usize, name: &str) -> u32 {
        rank(&self.slots, &(dir, name))
    }

    /// Per directory inode, its slots (first, count); per slot, its name's rank.
    fn directories(&self) -> (Vec<(u32, u32)>, Vec<u32>) {
        let mut children = vec![(0, 0); self.inos.len()];
        let mut slot_name = Vec::with_capacity(self.slots.len());
        for (i, (d, name)) in self.slots.iter().enumerate() {
            let c = &mut children[self.ix(*d) as usize];
            if c.1 == 0 {
                c.0 = i as u32;
            }
            c.1 += 1;
            slot_name.push(rank(&self.names, name));
        }
        (children, slot_name)
    }

    /// The initial state: per inode its kind and size, per slot its target.
    fn initial(&self, init: &Initial) -> (Vec<u8>, Vec<u64>, Vec<u32>) {
        let n = self.inos.len();
        let mut init_entry = vec![NONE; self.slots.len()];
        for ((d, name), t) in &init.entries {
            init_entry[self.slot(*d, name) as usize] = self.ix(*t);
        }
        let mut init_kind = vec![NO_KIND; n];
        let mut init_size = vec![0; n];
        for (i, (k, s, _)) in &init.inodes {
            init_kind[self.ix(*i) as usize] = kind_code(*k);
            init_size[self.ix(*i) as usize] = *s;
        }
        (init_kind, init_size, init_entry)
    }

    /// Per inode: its symlink target's id (NONE for other inodes) and the target itself.
    fn symlinks(&self, trace: &Trace) -> (Vec<u32>, Vec<Option<String>>) {
        let n = self.inos.len();
        let mut strings: Vec<&str> = Vec::new();
        let mut symlink = vec![NONE; n];
        let mut targets = vec![None; n];
        for (i, t) in &trace.last.symlinks {
            if self.inos.binary_search(i).is_ok() {
                let d = self.ix(*i) as usize;
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
        (symlink, targets)
    }

    /// Every effect's metadata assignments and chunk contents over dense indices, and each
    /// block version's value id.
    fn effects(&self, p: &Persistence, values: &mut ValueIds) -> Effects {
        let mut t = Effects {
            assigns: Vec::new(),
            assigns_of: Vec::with_capacity(p.effects.len() + 1),
            blocks: Vec::new(),
            blocks_of: Vec::with_capacity(p.effects.len() + 1),
            block_val: Vec::with_capacity(p.effects.len()),
        };
        for eff in &p.effects {
            t.assigns_of.push(t.assigns.len() as u32);
            t.assigns.extend(eff.assigns().iter().map(|a| match a {
                Assign::Entry { dir, name, target } => DAssign::Entry {
                    slot: self.slot(*dir, name),
                    target: target.map_or(NONE, |t| self.ix(t)),
                },
                Assign::Init { ino, kind } => DAssign::Init {
                    ino: self.ix(*ino),
                    kind: kind_code(*kind),
                },
                Assign::Size {
                    ino,
                    size,
                    holes_from,
                } => DAssign::Size {
                    ino: self.ix(*ino),
                    size: *size,
                    holes_from: *holes_from,
                },
            }));
            t.blocks_of.push(t.blocks.len() as u32);
            for (c, v) in &eff.blocks {
                t.blocks.push((*c, values.intern(Cow::Borrowed(v))));
            }
            t.block_val.push(match &eff.kind {
                EffectKind::Block { value, .. } => values.intern(Cow::Borrowed(value)),
                _ => NONE,
            });
        }
        t.assigns_of.push(t.assigns.len() as u32);
        t.blocks_of.push(t.blocks.len() as u32);
        t
    }

    /// Per chunk: its initial, zero and garbage values' ids and its inode; per inode, the
    /// range of its chunks.
    fn chunks(&self, p: &Persistence, init: &Initial, values: &mut ValueIds) -> Chunks {
        let n = p.layout.chunks.len();
        let mut t = Chunks {
            init_val: Vec::with_capacity(n),
            zero_val: Vec::with_capacity(n),
            garbage_val: Vec::with_capacity(n),
            chunk_ino: Vec::with_capacity(n),
            chunks_of: Vec::new(),
        };
        // Per unit size: its zero and garbage values.
        let mut per_unit: Vec<(u64, u32, u32)> = Vec::new();
        for c in &p.layout.chunks {
            let (zero, garbage) = match per_unit.iter().find(|(u, _, _)| *u == c.unit) {
                Some(&(_, z, g)) => (z, g),
                None => {
                    let z = values.intern(Cow::Owned(BlockValue::zero(c.unit)));
                    let g = values.intern(Cow::Owned(BlockValue::whole(c.unit, Origin::Garbage)));
                    per_unit.push((c.unit, z, g));
                    (z, g)
                }
            };
            t.init_val.push(match init.inodes.get(&c.ino) {
                Some((_, _, content)) => values.intern(Cow::Owned(BlockValue::of(content, c))),
                None => zero,
            });
            t.zero_val.push(zero);
            t.garbage_val.push(garbage);
            t.chunk_ino.push(self.ix(c.ino));
        }
        t.chunks_of = self
            .inos
            .iter()
            .map(|i| {
                let r = p.layout.chunks_of(*i);
                (r.start, r.end)
            })
            .collect();
        t
    }
}

/// The block values met so far, each with its id (the order first met).
#[derive(Default)]
struct ValueIds {
    /// Value hash -> the last id with it; `same_hash` chains the others.
    by_hash: FxMap<u64, u32>,
    same_hash: Vec<u32>,
    by_id: Vec<BlockValue>,
}

impl ValueIds {
    /// The id of `v`, a new one if it was not met before.
    fn intern(&mut self, v: Cow<BlockValue>) -> u32 {
        let mut h = Fx::default();
        std::hash::Hash::hash(&*v, &mut h);
        let h = h.finish();
        let last = self.by_hash.get(&h).copied().unwrap_or(NONE);
        let mut i = last;
        while i != NONE {
            if self.by_id[i as usize] == *v {
                return i;
            }
            i = self.same_hash[i as usize];
        }
        let i = self.by_id.len() as u32;
        self.by_id.push(v.into_owned());
        self.same_hash.push(last);
        self.by_hash.insert(h, i);
        i
    }
}

/// The effects' part of [`Dense`] (see its fields).
struct Effects {
    assigns: Vec<DAssign>,
    assigns_of: Vec<u32>,
    blocks: Vec<(usize, u32)>,
    blocks_of: Vec<u32>,
    block_val: Vec<u32>,
}

/// The chunks' part of [`Dense`] (see its fields).
struct Chunks {
    init_val: Vec<u32>,
    zero_val: Vec<u32>,
    garbage_val: Vec<u32>,
    chunk_ino: Vec<u32>,
    chunks_of: Vec<(usize, usize)>,
}

impl Dense {
    /// Interns a program under a model: its inodes, names and entry slots first, then the
    /// initial state, the symlinks, the effects and the chunks over them (block values are
    /// interned as they are met: effects first, then the chunks' own values).
    pub fn new(trace: &Trace, p: &Persistence) -> Dense {
        let ids = Ids::collect(trace, p);
        let (children, slot_name) = ids.directories();
        let (init_kind, init_size, init_entry) = ids.initial(&trace.initial);
        let (symlink, targets) = ids.symlinks(trace);
        let mut values = ValueIds::default();
        let Effects {
            assigns,
            assigns_of,
            blocks,
            blocks_of,
            block_val,
        } = ids.effects(p, &mut values);
        let Chunks {
            init_val,
            zero_val,
            garbage_val,
            chunk_ino,
            chunks_of,
        } = ids.chunks(p, &trace.initial, &mut values);
        let mut d = Dense {
            values: values.by_id,
            names: ids.names.concat(),
            name_span: ids
                .names
                .iter()
                .scan(0u32, |at, n| {
                    let span = (*at, n.len() as u32);
                    *at += n.len() as u32;
                    Some(span)
                })
                .collect(),
            targets,
            root: ids.ix(0),
            inos: ids.inos,
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
            writes: Vec::new(),
            writes_of: Vec::new(),
            opens_hole: Vec::new(),
        };
        d.index_writes(p.effects.len());
        d
    }

    /// Each effect's writes as targets (see `meta.rs`), and whether it opens a hole.
    fn index_writes(&mut self, effects: usize) {
        let mut writes = Vec::with_capacity(self.assigns.len() + self.blocks.len());
        let mut writes_of = Vec::with_capacity(effects + 1);
        let mut opens_hole = Vec::with_capacity(effects);
        for e in 0..effects {
            writes_of.push(writes.len() as u32);
            let mut hole = false;
            for a in self.assigns(e) {
                match *a {
                    DAssign::Entry { slot, target } => {
                        writes.push((self.slot_target(slot), target as u64))
                    }
                    DAssign::Init { ino, kind } => {
                        writes.push((self.kind_target(ino), kind as u64));
                        writes.push((self.size_target(ino), 0));
                    }
                    DAssign::Size {
                        ino,
                        size,
                        holes_from,
                    } => {
                        writes.push((self.size_target(ino), size));
                        hole |= holes_from.is_some();
                    }
                }
            }
            for &(c, v) in self.blocks(e) {
                writes.push((self.content_target(c), v as u64));
            }
            opens_hole.push(hole);
        }
        writes_of.push(writes.len() as u32);
        self.writes = writes;
        self.writes_of = writes_of;
        self.opens_hole = opens_hole;
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
