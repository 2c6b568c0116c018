//! The crash state of a key not seen before, built from the downset's dense view: the nodes of
//! the reachable paths (made once per downset, with the first new key), then each file's
//! content from the options picked.

use super::downset::{DenseDownset, Scratch};
use super::project::{CONTENT, LISTED, SHOWN};
use super::{Dense, NONE};
use crate::explore::chunk_values::{canonical_in_place, clip, push_value, push_values};
use crate::explore::Witness;
use crate::state::{CrashState, Node, Segment};
use std::collections::BTreeSet;
use unplug_model::{BlockValue, Persistence};

/// What one reachable path is, apart from a file's content.
#[derive(Clone, Copy)]
pub(super) enum Skel {
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

/// The nodes of the reachable paths (as `build_tree_with` makes them) and their path order,
/// in time linear in the paths (apart from the sort): link counts, subdirectory counts and
/// each inode's first and last name are found in one pass each.
fn skeleton(d: &Dense, s: &mut Scratch, inc: &[bool]) {
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
    // Per inode: its names and its first path in path order; per path id: its subdirectories.
    s.names_of.clear();
    s.names_of.resize(d.inos.len(), 0);
    s.first_of.clear();
    s.first_of.resize(d.inos.len(), NONE);
    s.subdirs.clear();
    s.subdirs.resize(s.path_of.len(), 0);
    for &(q, i) in out.iter().filter(|&&(q, _)| q != 0) {
        s.names_of[i as usize] += 1;
        if s.kinds[i as usize] == DIR {
            s.subdirs[s.parent_of[q as usize] as usize] += 1;
        }
    }
    // A file's content is moved into its last name in path order (the order `materialize`
    // builds nodes in) and cloned into the names before it.
    s.last_of.clear();
    s.last_of.resize(d.inos.len(), NONE);
    for &j in &s.order {
        let (q, i) = out[j as usize];
        if q != 0 && s.first_of[i as usize] == NONE {
            s.first_of[i as usize] = q;
        }
        s.last_of[i as usize] = j;
    }
    s.skel.clear();
    for (j, &(pid, ino)) in out.iter().enumerate() {
        let kind = s.kinds[ino as usize];
        let names = s.names_of[ino as usize] as u64;
        s.skel.push(match kind {
            DIR => Skel::Dir {
                links: 2 + s.subdirs[pid as usize] as u64,
            },
            SYMLINK => Skel::Symlink { ino, links: names },
            _ => {
                let first = match s.first_of[ino as usize] {
                    NONE => pid,
                    q => q,
                };
                Skel::File {
                    ino,
                    links: names,
                    same_as: (first != pid).then_some(first),
                    last: s.last_of[ino as usize] == j as u32,
                }
            }
        });
    }
}

impl DenseDownset<'_> {
    /// The crash state and witness of one combination of choices: what the reference code
    /// (`CrashPoint::state_for`) builds, from the dense view; for a projected view (see
    /// `project.rs`), the state as the properties read it, with a partial witness whose
    /// `persisted` is left to the caller.
    pub fn materialize(
        &mut self,
        d: &Dense,
        p: &Persistence,
        k: usize,
        inc: &[bool],
        pick: &[usize],
    ) -> (CrashState, Witness) {
        if !self.s.skeleton_made && !self.projected {
            skeleton(d, self.s, inc);
        }
        let s = &*self.s;
        let mut w = Witness {
            at: k,
            // A projected view's `inc` holds only the effects inside the cone: the caller
            // fills `persisted` from the whole downset when it keeps the witness.
            persisted: if self.projected {
                Vec::new()
            } else {
                s.persisted.clone()
            },
            chunks: Vec::with_capacity(s.slots.iter().filter(|x| x.opts.1 > 1).count()),
            partial: self.projected,
            excluded: Vec::new(),
        };
        let mut content_of = self.contents(d, p, pick, &mut w);
        let s = &*self.s;
        let mut tree = std::collections::BTreeMap::new();
        if self.projected {
            for &(pid, ino) in &s.out {
                let f = s.read_flags[pid as usize];
                if f == 0 {
                    continue;
                }
                let node = if f & (SHOWN | LISTED) == 0 {
                    // Only a name in a listed directory (as `Reads::project` shows it).
                    Node::Dir { links: 0 }
                } else {
                    match s.kinds[ino as usize] {
                        2 => Node::Dir { links: 0 },
                        3 => Node::Symlink {
                            target: d.targets[ino as usize].clone().unwrap_or_default(),
                            links: 0,
                        },
                        _ => Node::File {
                            size: s.sizes[ino as usize],
                            links: 0,
                            content: match content_of.iter().find(|(x, _)| *x == ino) {
                                Some((_, v)) if f & CONTENT != 0 => v.clone(),
                                _ => Vec::new(),
                            },
                            same_file_as: None,
                        },
                    }
                };
                tree.insert(s.path_of[pid as usize].clone(), node);
            }
            return (CrashState { tree }, w);
        }
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

    /// Each visible file's content (in inode order, as the slots) for one combination of
    /// choices; the choices of slots with more than one option go into `w`.
    fn contents(
        &self,
        d: &Dense,
        p: &Persistence,
        pick: &[usize],
        w: &mut Witness,
    ) -> Vec<(u32, Vec<Segment>)> {
        let s = &*self.s;
        let mut content_of: Vec<(u32, Vec<Segment>)> = Vec::with_capacity(s.files.len());
        for (n, (slot, &pk)) in s.slots.iter().zip(pick).enumerate() {
            let mask = s.opt_mask[slot.option(pk)];
            let ino = slot.ino;
            let size = s.sizes[ino as usize];
            let chunk = &p.layout.chunks[slot.chunk];
            let src = &s.src[slot.cands()];
            let vals = &s.vals[slot.cands()];
            if slot.opts.1 > 1 {
                let choice = (0..src.len().min(64))
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
            let values: BTreeSet<BlockValue> = (0..vals.len().min(64))
                .filter(|i| mask >> i & 1 == 1)
                .map(|i| clip(&d.values[vals[i] as usize], chunk, size))
                .collect();
            push_values(segs, values, chunk, size);
        }
        for (_, v) in &mut content_of {
            canonical_in_place(v);
        }
        content_of
    }

    /// The combination of choices that picks, for each chunk `chunks` names, the option with
    /// those sources, and the first option for every other chunk (see
    /// [`crate::ModelRun::whole`]); `None` if a chunk's sources are not among its options.
    pub fn picks_for(&self, chunks: &[(usize, Vec<Option<usize>>)]) -> Option<Vec<usize>> {
        let s = &*self.s;
        s.slots
            .iter()
            .map(|slot| {
                let Some((_, want)) = chunks.iter().find(|(c, _)| *c == slot.chunk) else {
                    return Some(0);
                };
                let src = &s.src[slot.cands()];
                (0..slot.opts.1 as usize).find(|&pk| {
                    let mask = s.opt_mask[slot.option(pk)];
                    (0..src.len().min(64))
                        .filter(|i| mask >> i & 1 == 1)
                        .map(|i| src[i])
                        .eq(want.iter().copied())
                })
            })
            .collect()
    }
}
