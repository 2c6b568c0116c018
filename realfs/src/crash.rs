//! Which crash images a block log allows, and building them.
//!
//! A run's log (see [`crate::wlog`]) is turned by the caller into [`Event`]s: writes, flushes and
//! marks (op `n` of the program had returned). [`plan`] chooses the disk states a power cut could
//! have left, each as a set of writes applied on the base image ([`CrashImage`]) with the window
//! of crash points it belongs to; [`write_image`] builds one as a sparse file.
//!
//! # The semantics
//!
//! The disk has a volatile write cache. A write is durable once a later flush has completed, or
//! at once if it was a FUA write. So at a crash, every write that completed before the last
//! completed flush is on disk, and of the writes that completed after it (the crash's
//! *interval*), any subset may be, with one constraint: a FUA write that completed before the
//! crash is on disk, so a state holding a write that completed after a FUA write holds that FUA
//! write too.
//!
//! The images are, for each interval between consecutive flushes (the first starts at the
//! beginning of the events, the last ends at the end of the log), the writes of every earlier
//! interval plus a subset of the interval's writes:
//!
//! - every subset when the interval has at most [`PlanOptions::exhaustive_up_to`] writes;
//! - otherwise every completion-order prefix of the interval (which includes the empty and the
//!   full set, so every flush-ended prefix is always there), for each write the subset with only
//!   it dropped and the one with only it kept, and [`PlanOptions::samples`] seeded random
//!   subsets. A subset that breaks the FUA constraint is repaired: a kept write keeps the FUA
//!   writes before it, a dropped FUA write drops the writes after it.
//!
//! With [`PlanOptions::torn`], each write of more than one sector also appears torn: the
//! interval's writes before it, and its first sector only, or the first half of its sectors.
//!
//! Identical images (same writes, same torn write) are produced once, with the union of their
//! crash-point windows; an image that is a flush-ended prefix (the empty or the full subset of an
//! interval) has kind [`ImageKind::Prefix`].
//!
//! # The crash-point window
//!
//! The crash happened after the last write in the image completed and after the flush that starts
//! the interval, and before the interval's end (the next flush completing, after which all the
//! interval's writes are durable) and before any FUA write of the interval that the image lacks
//! completed. With `b` the event index of that earliest time and `e` of the latest:
//! `lo` is the op number of the last mark at or before `b`, and `hi` is one more than the op
//! number of the last mark before `e` (the op after the last one that returned may have been in
//! flight), capped at `last_op`. If no mark is at or before `b`, the crash may still have been
//! after the first mark if that mark comes before `e`, and `lo` is that mark's op; if no mark
//! comes before `e` at all, the crash was before the first mark and the image is not produced.

use crate::wlog::Log;
use std::collections::HashMap;

mod image;
#[cfg(test)]
mod tests;

pub use image::{write_image, Base};

/// One event of a job's log, as the caller classified its entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A completed write: `entry` indexes [`Log::entries`]; `fua` when it was a FUA write.
    Write {
        /// The index of the entry in [`Log::entries`].
        entry: usize,
        /// Whether the write was durable on completion.
        fua: bool,
    },
    /// A completed cache flush.
    Flush,
    /// Op `n` of the program had returned here: crash point `n`.
    Mark(usize),
}

/// What kind of state an image is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImageKind {
    /// Every write up to a flush (or to the end of the log), and nothing after it.
    Prefix,
    /// A flush-ended prefix plus a proper, non-empty subset of the next interval's writes.
    Subset,
    /// A flush-ended prefix, the interval's writes before `entry`, and `entry` landed partly:
    /// only its first `sectors_kept` sectors.
    Torn {
        /// The torn entry (an index into [`Log::entries`]).
        entry: usize,
        /// How many of its first sectors are on disk.
        sectors_kept: u64,
    },
}

/// One crash state to build and check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrashImage {
    /// The entries applied on the base image, in log order (a torn entry included).
    pub writes: Vec<usize>,
    /// The first crash point (op number) the crash may be at.
    pub lo: usize,
    /// The last crash point the crash may be at, inclusive.
    pub hi: usize,
    /// What kind of state it is.
    pub kind: ImageKind,
}

/// How many images [`plan`] makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanOptions {
    /// Intervals with at most this many writes get every subset (capped at 20 whatever the
    /// value: 2^20 subsets).
    pub exhaustive_up_to: usize,
    /// Random subsets per larger interval.
    pub samples: usize,
    /// The seed of the random subsets and of the `max_images` choice.
    pub seed: u64,
    /// Also make torn-write images.
    pub torn: bool,
    /// Keep at most this many images: the flush-ended prefixes first, then a seeded sample of
    /// the others, in plan order.
    pub max_images: Option<usize>,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            exhaustive_up_to: 10,
            samples: 64,
            seed: 0,
            torn: false,
            max_images: None,
        }
    }
}

/// The hard cap on exhaustive enumeration.
const EXHAUSTIVE_CAP: usize = 20;

/// splitmix64: a small, seeded, portable generator, so that a plan is the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One interval's write: event index, entry index, FUA.
#[derive(Clone, Copy)]
struct IWrite {
    event: usize,
    entry: usize,
    fua: bool,
}

struct Interval {
    /// Event index of the flush that starts it (None: the start of the events).
    start: Option<usize>,
    /// Event index of the flush that ends it (None: the end of the log).
    end: Option<usize>,
    writes: Vec<IWrite>,
}

fn intervals(events: &[Event]) -> Vec<Interval> {
    let mut out = Vec::new();
    let mut cur = Interval {
        start: None,
        end: None,
        writes: Vec::new(),
    };
    for (i, ev) in events.iter().enumerate() {
        match *ev {
            Event::Write { entry, fua } => cur.writes.push(IWrite {
                event: i,
                entry,
                fua,
            }),
            Event::Flush => {
                cur.end = Some(i);
                let next = Interval {
                    start: Some(i),
                    end: None,
                    writes: Vec::new(),
                };
                out.push(std::mem::replace(&mut cur, next));
            }
            Event::Mark(_) => {}
        }
    }
    out.push(cur);
    out
}

/// Adds to `keep` every FUA write that a later kept write requires.
fn close_up(keep: &mut [bool], ws: &[IWrite]) {
    let mut later = false;
    for k in (0..ws.len()).rev() {
        if ws[k].fua && later {
            keep[k] = true;
        }
        later |= keep[k];
    }
}

fn is_closed(keep: &[bool], ws: &[IWrite]) -> bool {
    let mut probe = keep.to_vec();
    close_up(&mut probe, ws);
    probe == keep
}

/// The candidate subsets of one interval, in a deterministic order.
fn subsets(ws: &[IWrite], opts: &PlanOptions, rng: &mut Rng) -> Vec<Vec<bool>> {
    let n = ws.len();
    let mut out = Vec::new();
    if n <= opts.exhaustive_up_to.min(EXHAUSTIVE_CAP) {
        for m in 0u32..(1u32 << n) {
            let keep: Vec<bool> = (0..n).map(|i| m >> i & 1 == 1).collect();
            if is_closed(&keep, ws) {
                out.push(keep);
            }
        }
        return out;
    }
    for k in 0..=n {
        out.push((0..n).map(|i| i < k).collect());
    }
    for i in 0..n {
        // Only i dropped; a dropped FUA write means the crash came before it: drop what follows.
        let drop: Vec<bool> = (0..n).map(|j| j != i && (!ws[i].fua || j < i)).collect();
        out.push(drop);
        let mut only: Vec<bool> = (0..n).map(|j| j == i).collect();
        close_up(&mut only, ws);
        out.push(only);
    }
    for _ in 0..opts.samples {
        let mut keep = vec![false; n];
        for chunk in keep.chunks_mut(64) {
            let bits = rng.next();
            for (j, k) in chunk.iter_mut().enumerate() {
                *k = bits >> j & 1 == 1;
            }
        }
        close_up(&mut keep, ws);
        out.push(keep);
    }
    out
}

/// Op numbers of marks, for window lookups.
struct Marks {
    /// `(event index, op)` in event order.
    at: Vec<(usize, usize)>,
}

impl Marks {
    fn new(events: &[Event]) -> Marks {
        let at = events
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match e {
                Event::Mark(n) => Some((i, *n)),
                _ => None,
            })
            .collect();
        Marks { at }
    }

    /// The op of the last mark at an index `<= b`.
    fn at_or_before(&self, b: usize) -> Option<usize> {
        let k = self.at.partition_point(|&(i, _)| i <= b);
        k.checked_sub(1).map(|k| self.at[k].1)
    }

    /// The window for a crash after event `b` (inclusive) and before event `e` (exclusive).
    fn window(&self, b: usize, e: usize, last_op: usize) -> Option<(usize, usize)> {
        let last = self.at_or_before(e.checked_sub(1)?)?;
        let lo = match self.at_or_before(b) {
            Some(op) => op,
            // No mark yet at b: the first mark, which comes before e since `last` exists.
            None => self.at[0].1,
        };
        // Up to the op of the next mark: the next op, or several when one marked step made
        // several ops (`unplug real --exec`: a call that became several ops).
        let k = self.at.partition_point(|&(i, _)| i < e);
        let next = self.at.get(k).map_or(last + 1, |&(_, op)| op.max(last + 1));
        let hi = next.min(last_op);
        Some((lo.min(hi), hi))
    }
}

/// Plans the crash images of a job's events: see the module documentation for the exact
/// semantics. `log` gives the writes' sizes (for torn images; an event whose entry is not in
/// `log` counts as one sector), `last_op` is the program's last op number (crash points run
/// from the first mark's op to `last_op`). The result is deterministic for given inputs.
pub fn plan(log: &Log, events: &[Event], last_op: usize, opts: &PlanOptions) -> Vec<CrashImage> {
    let marks = Marks::new(events);
    let mut rng = Rng(opts.seed);
    let mut out: Vec<CrashImage> = Vec::new();
    let mut seen: HashMap<(Vec<usize>, ImageKind), usize> = HashMap::new();
    let mut add = |writes: Vec<usize>, kind: ImageKind, window: Option<(usize, usize)>| {
        let Some((lo, hi)) = window else { return };
        // Prefix and Subset images with the same writes are one image.
        let key_kind = match kind {
            ImageKind::Torn { .. } => kind,
            _ => ImageKind::Subset,
        };
        let key = (writes, key_kind);
        if let Some(&at) = seen.get(&key) {
            let img: &mut CrashImage = &mut out[at];
            img.lo = img.lo.min(lo);
            img.hi = img.hi.max(hi);
            if kind == ImageKind::Prefix {
                img.kind = ImageKind::Prefix;
            }
        } else {
            seen.insert(key.clone(), out.len());
            out.push(CrashImage {
                writes: key.0,
                lo,
                hi,
                kind,
            });
        }
    };
    let mut base: Vec<usize> = Vec::new();
    for iv in intervals(events) {
        let ws = &iv.writes;
        let start = iv.start.unwrap_or(0);
        let end = iv.end.unwrap_or(events.len());
        // The first FUA write at or after position p of the interval that `keep` lacks.
        let fua_bound = |keep: &dyn Fn(usize) -> bool, from: usize| {
            (from..ws.len())
                .find(|&j| ws[j].fua && !keep(j))
                .map_or(end, |j| ws[j].event)
        };
        for keep in subsets(ws, opts, &mut rng) {
            let last = (0..ws.len()).rev().find(|&j| keep[j]);
            let b = last.map_or(start, |j| ws[j].event.max(start));
            let e = fua_bound(&|j| keep[j], 0);
            let full = keep.iter().all(|&k| k);
            let none = keep.iter().all(|&k| !k);
            let kind = if full || none {
                ImageKind::Prefix
            } else {
                ImageKind::Subset
            };
            let mut writes = base.clone();
            writes.extend((0..ws.len()).filter(|&j| keep[j]).map(|j| ws[j].entry));
            add(writes, kind, marks.window(b, e, last_op));
        }
        if opts.torn {
            for (p, w) in ws.iter().enumerate() {
                let sectors = log.entries.get(w.entry).map_or(1, |e| e.sectors);
                let mut kept = vec![1, sectors / 2];
                kept.dedup();
                for k in kept.into_iter().filter(|&k| k >= 1 && k < sectors) {
                    let b = if p == 0 {
                        start
                    } else {
                        ws[p - 1].event.max(start)
                    };
                    let e = fua_bound(&|j| j < p, p);
                    let mut writes = base.clone();
                    writes.extend(ws[..=p].iter().map(|w| w.entry));
                    let kind = ImageKind::Torn {
                        entry: w.entry,
                        sectors_kept: k,
                    };
                    add(writes, kind, marks.window(b, e, last_op));
                }
            }
        }
        base.extend(ws.iter().map(|w| w.entry));
    }
    if let Some(cap) = opts.max_images {
        cap_images(&mut out, cap, opts.seed);
    }
    out
}

/// Keeps `cap` images: the prefixes first, then a seeded sample; plan order is kept.
fn cap_images(out: &mut Vec<CrashImage>, cap: usize, seed: u64) {
    if out.len() <= cap {
        return;
    }
    let mut rng = Rng(seed ^ 0x5eed_cafe_f00d_d00d);
    let (prefix, other): (Vec<usize>, Vec<usize>) =
        (0..out.len()).partition(|&i| out[i].kind == ImageKind::Prefix);
    let mut chosen = Vec::with_capacity(cap);
    for mut pool in [prefix, other] {
        let want = (cap - chosen.len()).min(pool.len());
        // Partial Fisher-Yates.
        for i in 0..want {
            let j = i + rng.below(pool.len() - i);
            pool.swap(i, j);
        }
        chosen.extend_from_slice(&pool[..want]);
    }
    let mut keep = vec![false; out.len()];
    for i in chosen {
        keep[i] = true;
    }
    let mut i = 0;
    out.retain(|_| {
        i += 1;
        keep[i - 1]
    });
}
