//! The cone of influence of the properties: the effects and chunks that can change what the
//! properties read. A property reads a few paths (`exists a`, `b == D`, `entries d == {..}`);
//! an effect that writes nothing those paths can show need not be branched on, and a chunk of a
//! file no read path can name need not have its choices enumerated.
//!
//! What a read path shows in a crash state (its kind, size, content, symlink target; for
//! `entries`, the names in it) depends on:
//! - the entry slots along it: `(d, c)` for every inode `d` the prefix before component `c` can
//!   name in some crash state (any target any assignment or the initial tree gives that slot);
//! - for `entries P`: every slot of every directory `P` can name, and the kinds of their targets
//!   (a name whose inode is not initialised is not shown);
//! - the kind and size of every inode those slots can name (the *relevant inodes*), and the
//!   chunks of those a path whose content is read (`==`, `prefix`) can name: `exists` and
//!   `size` do not tell a file's contents apart;
//! - where a directory appears: the walk of the tree shows a directory once, at the first path
//!   that reaches it, so every slot that can name a relevant directory is relevant, and its
//!   directory is a relevant inode too (to a fixpoint);
//! - the predecessors of the block versions of relevant chunks (a version is a candidate only
//!   when they are durable).
//!
//! Everything else is *outside* the cone. The enumeration includes an effect outside the cone
//! exactly when its predecessors are (see `explore/downsets.rs`), and
//! gives a chunk outside the cone one option. That loses no state the properties can tell
//! apart: for a downset S of the effects inside the cone (of the order the graph induces on
//! them, with the floor), D = S plus the outside effects whose predecessors D holds (in index
//! order) is a downset with D ∩ cone = S, and what the read paths show depends only on D ∩ cone
//! and the choices of the chunks inside. So a property holds on the cone's states exactly when
//! it holds on every state; counts of states are not those of the full enumeration (use the
//! cone only for verdicts and counterexamples). `links PATH` reads every entry that can name the
//! inode: a property that uses it has no cone (everything is inside).

use crate::graph::Graph;
use std::collections::{BTreeMap, BTreeSet};
use unplug_model::volatile::{Ino, Trace};
use unplug_model::{Assign, EffectKind, Expr, Kind, Path, Persistence};

/// The paths a property reads: shown (`exists`, kinds, sizes, targets; contents too when in
/// `contents`) and listed (`entries`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reads {
    pub shown: BTreeSet<Path>,
    /// The shown paths whose content is read (`==`, `prefix`): only their chunks' choices are
    /// told apart.
    pub contents: BTreeSet<Path>,
    pub listed: BTreeSet<Path>,
}

impl Reads {
    /// What `e` reads; `None` when it reads link counts (every entry of the tree).
    pub fn of(e: &Expr) -> Option<Reads> {
        let mut r = Reads::default();
        r.add(e).then_some(r)
    }

    /// What all of `exprs` read together.
    pub fn of_all<'a>(exprs: impl IntoIterator<Item = &'a Expr>) -> Option<Reads> {
        let mut r = Reads::default();
        for e in exprs {
            if !r.add(e) {
                return None;
            }
        }
        Some(r)
    }

    fn add(&mut self, e: &Expr) -> bool {
        match e {
            Expr::Exists(p) | Expr::Size(p, ..) | Expr::Readlink(p, _) => {
                self.shown.insert(p.clone());
                true
            }
            Expr::ContentEq(p, _) | Expr::PrefixOf(p, _) => {
                self.shown.insert(p.clone());
                self.contents.insert(p.clone());
                true
            }
            Expr::Entries(p, _) => {
                self.listed.insert(p.clone());
                true
            }
            // A checker reads what it names (each path's node and content), else the whole
            // tree; link counts are not told apart by projections.
            Expr::Checker(paths) if !paths.is_empty() => {
                for p in paths {
                    self.shown.insert(p.clone());
                    self.contents.insert(p.clone());
                }
                true
            }
            Expr::Links(..) | Expr::Checker(_) => false,
            Expr::Not(a) => self.add(a),
            Expr::And(a, b) | Expr::Or(a, b) | Expr::Implies(a, b) => self.add(a) && self.add(b),
        }
    }
}

/// What the enumeration of one program under one model need not branch on, for some reads.
#[derive(Clone, Debug)]
pub struct Cone {
    /// Per effect: outside the cone.
    pub outside: Vec<bool>,
    /// Per chunk (index into the layout): outside the cone (one option is enough).
    pub pinned: Vec<bool>,
    /// What the properties read: the enumeration builds each state as they read it
    /// ([`Reads::project`]), not whole.
    pub reads: Reads,
    /// The entry slots a read path can pass through or list, with those that can name a
    /// directory shown there (see above): the only ones the walk of a state's tree follows.
    pub slots: BTreeSet<(Ino, String)>,
    /// The relevant inodes (see above): only their kinds and sizes are read.
    pub inodes: BTreeSet<Ino>,
}

impl Cone {
    /// The cone of `reads` over `trace` under the persistence `p`. Even when every effect and
    /// chunk is inside, states are built as the reads see them (see `explore/dense/project.rs`).
    pub fn new(trace: &Trace, p: &Persistence, g: &Graph, reads: &Reads) -> Cone {
        let root: Ino = 0;
        // Every value each entry slot can take: the initial tree's and every assignment's.
        let mut slots: BTreeMap<(Ino, &str), BTreeSet<Ino>> = BTreeMap::new();
        for ((d, n), t) in &trace.initial.entries {
            slots.entry((*d, n.as_str())).or_default().insert(*t);
        }
        for eff in &p.effects {
            for a in eff.assigns() {
                if let Assign::Entry { dir, name, target } = a {
                    let s = slots.entry((*dir, name.as_str())).or_default();
                    s.extend(*target);
                }
            }
        }
        let is_dir = |i: Ino| {
            i == root
                || trace.kinds.get(&i) == Some(&Kind::Dir)
                || trace
                    .initial
                    .inodes
                    .get(&i)
                    .is_some_and(|(k, ..)| *k == Kind::Dir)
        };
        let mut inodes: BTreeSet<Ino> = [root].into();
        let mut relevant: BTreeSet<(Ino, String)> = BTreeSet::new();
        // The inodes whose content is read: only their chunks are inside.
        let mut content_inodes = BTreeSet::new();
        for path in &reads.shown {
            let named = resolve(&slots, path, &mut relevant, &mut inodes);
            if reads.contents.contains(path) {
                content_inodes.extend(named);
            }
        }
        let mut listed = BTreeSet::new();
        for path in &reads.listed {
            listed.extend(resolve(&slots, path, &mut relevant, &mut inodes));
        }
        for (&(d, n), ts) in &slots {
            if listed.contains(&d) {
                relevant.insert((d, n.to_string()));
                inodes.extend(ts.iter().copied());
            }
        }
        // A relevant directory is shown at the first path that reaches it: every slot that can
        // name it counts, and so does the directory holding that slot.
        loop {
            let mut grew = false;
            for (&(d, n), ts) in &slots {
                if ts.iter().any(|&t| is_dir(t) && inodes.contains(&t)) {
                    grew |= relevant.insert((d, n.to_string()));
                    grew |= inodes.insert(d);
                }
            }
            if !grew {
                break;
            }
        }
        let chunk_in: Vec<bool> = p
            .layout
            .chunks
            .iter()
            .map(|c| content_inodes.contains(&c.ino))
            .collect();
        let mut inside: Vec<bool> = p
            .effects
            .iter()
            .map(|eff| {
                eff.assigns().iter().any(|a| match a {
                    Assign::Entry { dir, name, .. } => relevant.contains(&(*dir, name.clone())),
                    Assign::Init { ino, .. } | Assign::Size { ino, .. } => inodes.contains(ino),
                }) || eff.blocks.iter().any(|&(c, _)| chunk_in[c])
                    || matches!(eff.kind, EffectKind::Block { chunk, .. } if chunk_in[chunk])
            })
            .collect();
        // A block version inside is a candidate only when its predecessors are durable.
        for e in 0..p.effects.len() {
            if let EffectKind::Block { chunk, .. } = p.effects[e].kind {
                if chunk_in[chunk] {
                    for q in g.preds(e) {
                        inside[q] = true;
                    }
                }
            }
        }
        let outside: Vec<bool> = inside.iter().map(|i| !i).collect();
        let pinned: Vec<bool> = chunk_in.iter().map(|i| !i).collect();
        Cone {
            outside,
            pinned,
            reads: reads.clone(),
            slots: relevant,
            inodes,
        }
    }
}

/// The inodes `path` can name in some crash state; adds the slots along it to `relevant` and
/// every inode it passes through or names to `inodes`.
fn resolve(
    slots: &BTreeMap<(Ino, &str), BTreeSet<Ino>>,
    path: &Path,
    relevant: &mut BTreeSet<(Ino, String)>,
    inodes: &mut BTreeSet<Ino>,
) -> BTreeSet<Ino> {
    let mut at: BTreeSet<Ino> = [0].into();
    for c in path.0.iter() {
        let mut next = BTreeSet::new();
        for &d in &at {
            if let Some(ts) = slots.get(&(d, c.as_str())) {
                relevant.insert((d, c.clone()));
                next.extend(ts.iter().copied());
            }
        }
        inodes.extend(next.iter().copied());
        at = next;
    }
    at
}

impl Reads {
    /// What these reads see of `s`: the nodes at the shown and listed paths (without link
    /// counts or other names, which they do not read, and without the content of a file whose
    /// content is not read), and the names in each listed directory (each as an empty
    /// directory: only the name is read). Two states with the same projection satisfy the same
    /// properties over these reads.
    pub fn project(&self, s: &crate::CrashState) -> crate::CrashState {
        use crate::Node;
        let bare = |p: &Path, n: &Node| match n {
            Node::Dir { .. } => Node::Dir { links: 0 },
            Node::File { size, content, .. } => Node::File {
                size: *size,
                links: 0,
                content: if self.contents.contains(p) {
                    content.clone()
                } else {
                    Vec::new()
                },
                same_file_as: None,
            },
            Node::Symlink { target, .. } => Node::Symlink {
                target: target.clone(),
                links: 0,
            },
        };
        let mut tree = BTreeMap::new();
        for p in self.shown.iter().chain(&self.listed) {
            if let Some(n) = s.tree.get(p) {
                tree.insert(p.clone(), bare(p, n));
            }
        }
        for (p, _) in s.tree.iter() {
            if p.parent().is_some_and(|q| self.listed.contains(&q)) {
                tree.entry(p.clone()).or_insert(Node::Dir { links: 0 });
            }
        }
        crate::CrashState { tree }
    }
}
