//! The downsets of global effects a crash point enumerates: every downward-closed set of the
//! effects issued by op k+1 that holds the floor, up to effects that cannot change its states.
//!
//! The walk decides effects latest first (descending index, the reverse of a topological
//! order). Including an effect *forces* its predecessors, decided after it; an effect no
//! included one forces branches (out, then in) unless it is *deferred*:
//! - *overwritten*: every value it writes is written again by an included effect after it
//!   (decided already: the floor's, or one on the current path), and it opens no hole; or
//! - with a cone of influence of the properties asked about (see `cone.rs`), overwritten
//!   but for targets the properties cannot read (see `dense/project.rs`).
//!
//! With a cone, an effect outside it is not decided at all: the walk goes over the effects
//! inside only, including one forces its nearest inside ancestors (those it reaches through
//! outside effects), and an outside effect is in the downset exactly when its predecessors are
//! (as a deferred one; [`Leaf::whole`] adds them when a witness or the reference code needs
//! the whole downset). Its writes are never read, so the states as the properties read them
//! are the same; and no outside effect is decided out, so a leaf is named by the effects
//! decided out on its path (`explore::downset_excluding`).
//!
//! A deferred effect is included exactly when its predecessors are, decided at the leaf in
//! index order. That loses no state: take any downset D, and D* the leaf the walk reaches by
//! following D on every effect it branches on. D* agrees with D there and holds every deferred
//! effect D holds (by induction in index order: such an effect's predecessors are in D, hence
//! in D*), so D ⊆ D* and D* \ D is deferred effects only. An overwritten one writes nothing
//! that survives (its overwriter is on the path, in D and in D*), one outside the cone (or
//! overwritten but for unread contents) writes nothing the properties read, and a block version that is a candidate in D still is in D*
//! (D* only adds predecessors; the base values are the same), so every combination of choices
//! of D is one of D*'s. Each leaf is a downset, so each of its states is real.
//!
//! What this buys: n unsynced size updates of one file give n+1 leaves (the latest included
//! one overwrites the rest), not 2^n; an effect a later durable one overwrites (the old
//! effects of a synced program) is never branched on. The brute-force enumerator of
//! explorer/tests/it/reduction.rs checks it.

use super::dense::{Dense, Scratch};
use super::CrashPoint;

/// The walk of one crash point: the effects it decides and what it keeps per effect.
#[derive(Default)]
pub(super) struct Walk {
    /// The issued global effects outside the floor that can be durable here, latest first
    /// (with a projection, only those inside the cone).
    order: Vec<usize>,
    /// Per effect: how many included effects it precedes (more than 0: it must be included).
    need: Vec<u32>,
    /// Per effect: it cannot be durable here (it waits for a block version, or for such an
    /// effect).
    never: Vec<bool>,
    /// The effects deferred on the current path, latest first.
    deferred: Vec<usize>,
    /// Per effect: deferred because overwritten (a witness may leave it out, see
    /// `CrashPoint::minimize`).
    pub(super) overwritten: Vec<bool>,
    /// The effects decided out on the current path: they name the downset (see
    /// `explore::downset_excluding`).
    excluded: Vec<usize>,
}

/// One leaf of the walk: a downset. With a projection, `inc` holds only the floor and the
/// effects inside the cone ([`Leaf::whole`] gives the whole downset).
pub(super) struct Leaf<'l> {
    pub(super) inc: &'l mut [bool],
    /// What a witness may leave out (see `CrashPoint::minimize`).
    pub(super) overwritten: &'l [bool],
    /// The effects decided out: the downset is every effect that follows none of them.
    pub(super) excluded: &'l [usize],
    cp: &'l CrashPoint<'l>,
}

impl Leaf<'_> {
    /// The whole downset: with a projection, the one the effects decided out name (no
    /// outside effect is ever decided out, so one is in it exactly when its predecessors
    /// are); otherwise `inc`.
    pub(super) fn whole(&self) -> std::borrow::Cow<'_, [bool]> {
        match self.cp.proj {
            Some(_) => super::downset_excluding(self.cp, self.excluded).into(),
            None => (&*self.inc).into(),
        }
    }
}

/// A leaf's visitor: the scratch holds its metadata. Returns false to stop.
pub(super) type Visit<'v> = dyn FnMut(&mut Scratch, &mut Leaf) -> bool + 'v;

/// The effects including `e` forces: its predecessors, or with a projection its nearest
/// ancestors inside the cone.
fn forced<'c>(cp: &'c CrashPoint, e: usize) -> &'c [usize] {
    match cp.proj {
        Some(proj) => proj.anc(e),
        None => cp.g.pred_slice(e),
    }
}

impl Walk {
    /// Walks every downset of crash point `cp` (see the module documentation), `inc` and the
    /// scratch's metadata set to each in turn; false if `visit` stopped it.
    pub(super) fn run(
        &mut self,
        cp: &CrashPoint,
        d: &Dense,
        s: &mut Scratch,
        inc: &mut Vec<bool>,
        visit: &mut Visit,
    ) -> bool {
        let (p, g, k) = (cp.p, cp.g, cp.k);
        let n = p.effects.len();
        inc.clear();
        inc.resize(n, false);
        self.need.clear();
        self.need.resize(n, 0);
        self.overwritten.clear();
        self.overwritten.resize(n, false);
        self.never.clear();
        self.never.resize(n, false);
        self.order.clear();
        self.deferred.clear();
        self.excluded.clear();
        s.meta_reset(d);
        let inside = |e: usize| cp.proj.is_none_or(|x| x.inside[e]);
        for (e, eff) in p.effects.iter().enumerate() {
            if eff.op > k + 1 {
                break;
            }
            if eff.is_block() {
                continue;
            }
            if cp.floor[e] {
                inc[e] = true;
                // An effect outside the cone writes nothing the properties read.
                if inside(e) {
                    s.meta_include(d, p, e);
                }
            } else if g.preds(e).any(|q| p.effects[q].is_block() || self.never[q]) {
                self.never[e] = true;
            } else if inside(e) {
                self.order.push(e);
            }
        }
        self.order.reverse();
        let mut at = Here {
            cp,
            d,
            s,
            inc,
            visit,
        };
        self.walk(&mut at, 0)
    }

    /// The walk on from effect `i` of `order` (descending index).
    fn walk(&mut self, at: &mut Here, i: usize) -> bool {
        let Some(&e) = self.order.get(i) else {
            return self.leaf(at);
        };
        if self.need[e] > 0 {
            return self.with(at, i, e);
        }
        let read = at.cp.proj.map(|x| &x.read_target[..]);
        let (overwritten, unread) = at.d.overwritten(at.s, e, read);
        if overwritten || unread {
            self.overwritten[e] = overwritten;
            self.deferred.push(e);
            let go_on = self.walk(at, i + 1);
            self.deferred.pop();
            self.overwritten[e] = false;
            return go_on;
        }
        self.excluded.push(e);
        let go_on = self.walk(at, i + 1);
        self.excluded.pop();
        go_on && self.with(at, i, e)
    }

    /// The walk on from effect `i` (`e`) included.
    fn with(&mut self, at: &mut Here, i: usize, e: usize) -> bool {
        let p = at.cp.p;
        let mark = at.s.meta_mark();
        at.s.meta_include(at.d, p, e);
        at.inc[e] = true;
        for &q in forced(at.cp, e) {
            self.need[q] += 1;
        }
        let go_on = self.walk(at, i + 1);
        for &q in forced(at.cp, e) {
            self.need[q] -= 1;
        }
        at.inc[e] = false;
        at.s.meta_undo(at.d, p, mark);
        go_on
    }

    /// A leaf: the deferred effects whose predecessors (with a projection: nearest inside
    /// ancestors) are included are included (in index order), the downset is visited, and
    /// they are taken out again.
    fn leaf(&mut self, at: &mut Here) -> bool {
        let p = at.cp.p;
        let mark = at.s.meta_mark();
        for &e in self.deferred.iter().rev() {
            if forced(at.cp, e).iter().all(|&q| at.inc[q]) {
                at.inc[e] = true;
                at.s.meta_include(at.d, p, e);
            }
        }
        let mut leaf = Leaf {
            inc: at.inc,
            overwritten: &self.overwritten,
            excluded: &self.excluded,
            cp: at.cp,
        };
        let go_on = (at.visit)(at.s, &mut leaf);
        for &e in &self.deferred {
            at.inc[e] = false;
        }
        at.s.meta_undo(at.d, p, mark);
        go_on
    }
}

/// What the walk of one crash point works on: the point, the interned program, the metadata
/// of the current downset, its effects, and the leaves' visitor.
struct Here<'h, 'v> {
    cp: &'h CrashPoint<'h>,
    d: &'h Dense,
    s: &'h mut Scratch,
    inc: &'h mut [bool],
    visit: &'h mut Visit<'v>,
}
