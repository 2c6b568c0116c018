//! What kind of vulnerability a crash state the checker rejects shows, as ALICE (OSDI 2014)
//! grouped them, told from the state itself and the program's sequential states (what a running
//! system saw after each op), so the same classification holds under every model:
//!
//! - **durability**: the state is the sequential state after an earlier op `m`: the ops after
//!   it were lost whole, and the checker rejects that (work the application had acknowledged,
//!   by what it printed); named by the last op the application printed after, if lost.
//! - **atomicity**: some path holds what no sequential state held anywhere (a write seen in
//!   part, a size without its data, torn blocks); the report names the op that last changed
//!   that path (which may be a rename of the file whose write is torn).
//! - **ordering**: every path holds one of its sequential versions, but no one sequential state
//!   has them all: a later op's change is durable while an earlier op's change to another path
//!   is not; or a path holds what another path held earlier (a file renamed before its data
//!   was durable: the data's op lost, the rename durable).
//! - **other**: the state is the sequential state at its own crash point (the checker rejects
//!   what the application left with no crash at all), or a mix of versions that no one pair of
//!   ops explains.
//!
//! Paths are compared as the checker reads them (its `checker {PATHS}`), so a vulnerability
//! names only what the checker can see.

use unplug_explorer::cone::Reads;
use unplug_explorer::{Analysis, CrashState, Node};
use unplug_model::{Path, Program};

/// ALICE's kinds, in the order reports list them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    Atomicity,
    Ordering,
    Durability,
    Other,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Atomicity => "atomicity",
            Kind::Ordering => "ordering",
            Kind::Durability => "durability",
            Kind::Other => "other",
        }
    }
}

/// A vulnerability's kind and the ops it involves (1-based op numbers): for atomicity the op
/// seen in part; for ordering the earlier op not durable and the later one durable; for
/// durability the last op lost (the acknowledged one, when the application had printed after
/// it), then the first.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Class {
    pub(crate) kind: Kind,
    pub(crate) ops: Vec<usize>,
    /// The path that shows it (atomicity, ordering).
    pub(crate) path: Option<Path>,
}

/// The sequential states of a program: `states[m]` is what a running system saw after op `m`.
pub(crate) struct Sequential {
    states: Vec<CrashState>,
}

impl Sequential {
    pub(crate) fn of(program: &Program) -> Sequential {
        let states = (0..=program.ops.len())
            .map(|m| {
                let mut p = program.clone();
                p.ops.truncate(m);
                p.properties.clear();
                Analysis::new(&p).map(|a| a.new).unwrap_or_default()
            })
            .collect();
        Sequential { states }
    }

    /// `p` and, when it is a directory after some op, every path under it after any op: what a
    /// checker that reads the directory can see.
    pub(crate) fn with_descendants(&self, p: &Path) -> Vec<Path> {
        let mut out = std::collections::BTreeSet::new();
        out.insert(p.clone());
        for s in &self.states {
            if matches!(s.tree.get(p), Some(Node::Dir { .. })) {
                out.extend(
                    s.tree
                        .keys()
                        .filter(|q| q.0.len() > p.0.len() && q.0.starts_with(&p.0))
                        .cloned(),
                );
            }
        }
        out.into_iter().collect()
    }

    /// The class of a rejected state `s` at crash point `k` (op `k + 1` may have started),
    /// compared as `reads` see it; `acked` is the last op after which the application printed
    /// something by then (a durability vulnerability is named by the acknowledged op lost).
    pub(crate) fn classify(
        &self,
        s: &CrashState,
        k: usize,
        reads: Option<&Reads>,
        acked: Option<usize>,
    ) -> Class {
        let last = self.states.len() - 1;
        let k = k.min(last);
        let view = |x: &CrashState| match reads {
            Some(r) => r.project(x),
            None => x.clone(),
        };
        let s = view(s);
        // Up to op k + 1, which may have started.
        let top = (k + 1).min(last);
        let seq: Vec<CrashState> = self.states[..=top].iter().map(view).collect();
        if let Some(m) = (0..=top).rev().find(|&m| seq[m] == s) {
            return if m >= k {
                Class {
                    kind: Kind::Other,
                    ops: vec![k],
                    path: None,
                }
            } else {
                // The acknowledged op lost (else the last op lost), then the first op lost.
                let op = acked.filter(|&a| a > m).unwrap_or(k);
                Class {
                    kind: Kind::Durability,
                    ops: vec![op, m + 1],
                    path: None,
                }
            };
        }
        let k = top;
        // Per path: the sequential versions it matches.
        let mut paths: Vec<&Path> = s.tree.keys().collect();
        for v in &seq {
            paths.extend(v.tree.keys());
        }
        paths.sort();
        paths.dedup();
        let same = |p: &Path, m: usize| node_eq(s.tree.get(p), seq[m].tree.get(p));
        // The last op at or before `m` that changed `p`.
        let changed_by = |p: &Path, m: usize| {
            (1..=m)
                .rev()
                .find(|&j| !node_eq(seq[j].tree.get(p), seq[j - 1].tree.get(p)))
        };
        for p in &paths {
            if (0..=k).any(|m| same(p, m)) {
                continue;
            }
            // What another path (or this one) held after some op: an older version of the
            // file under a newer name (a rename durable before the data it publishes).
            let older = (0..=k).find_map(|m| {
                seq[m]
                    .tree
                    .iter()
                    .find(|(_, n)| node_eq(s.tree.get(*p), Some(n)))
                    .map(|(q, _)| (m, q.clone()))
            });
            if let Some((m, q)) = older {
                let lost =
                    (m + 1..=k).find(|&j| !node_eq(seq[j].tree.get(&q), seq[j - 1].tree.get(&q)));
                return Class {
                    kind: Kind::Ordering,
                    ops: lost.into_iter().chain(changed_by(p, k)).collect(),
                    path: Some((*p).clone()),
                };
            }
            return Class {
                kind: Kind::Atomicity,
                ops: changed_by(p, k).into_iter().collect(),
                path: Some((*p).clone()),
            };
        }
        // Each path's newest matching version; the one that is oldest lost a change that a
        // path with a newer version got after.
        let newest = |p: &Path| (0..=k).rev().find(|&m| same(p, m)).unwrap_or(0);
        let oldest_match = |p: &Path| (0..=k).find(|&m| same(p, m)).unwrap_or(0);
        let behind = paths.iter().min_by_key(|p| (newest(p), **p));
        let ahead = paths.iter().max_by_key(|p| (oldest_match(p), **p));
        match (behind, ahead) {
            (Some(b), Some(a)) if oldest_match(a) > newest(b) => {
                // The change `b` lost: the first op after its newest version that changed it.
                let lost = (newest(b) + 1..=k)
                    .find(|&j| !node_eq(seq[j].tree.get(b), seq[j - 1].tree.get(b)));
                let made = changed_by(a, oldest_match(a));
                Class {
                    kind: Kind::Ordering,
                    ops: lost.into_iter().chain(made).collect(),
                    path: Some((*b).clone()),
                }
            }
            // Each path holds a version some sequential state had, no one state has them all,
            // and no path is strictly behind another: not tied to one pair of ops.
            _ => Class {
                kind: Kind::Other,
                ops: Vec::new(),
                path: None,
            },
        }
    }
}

/// Nodes equal as a reader sees them (link counts aside: a projection drops them).
fn node_eq(a: Option<&Node>, b: Option<&Node>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(Node::Dir { .. }), Some(Node::Dir { .. })) => true,
        (
            Some(Node::File {
                size: s1,
                content: c1,
                ..
            }),
            Some(Node::File {
                size: s2,
                content: c2,
                ..
            }),
        ) => s1 == s2 && c1 == c2,
        (Some(Node::Symlink { target: t1, .. }), Some(Node::Symlink { target: t2, .. })) => {
            t1 == t2
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(src: &str) -> (Sequential, Analysis) {
        let p = unplug_model::parse::parse(src).expect("parses");
        (Sequential::of(&p), Analysis::new(&p).expect("runs"))
    }

    #[test]
    fn a_prefix_state_is_durability_and_a_mixed_one_ordering() {
        let (s, a) = seq("f = open a create\nwrite f 4KiB D\ng = open b create\n");
        // At crash point 3, the state after op 1: ops 2 and 3 lost.
        let c = s.classify(&s.states[1], 3, None, None);
        assert_eq!((c.kind, c.ops), (Kind::Durability, vec![3, 2]));
        // Named by the op acknowledged: the application printed after op 2.
        let c = s.classify(&s.states[1], 3, None, Some(2));
        assert_eq!((c.kind, c.ops), (Kind::Durability, vec![2, 2]));
        // b created (op 3) while a's data (op 2) is lost.
        let mut mixed = s.states[1].clone();
        mixed.tree.extend(
            a.new
                .tree
                .iter()
                .filter(|(p, _)| p.to_string() == "b")
                .map(|(p, n)| (p.clone(), n.clone())),
        );
        let c = s.classify(&mixed, 3, None, None);
        assert_eq!((c.kind, c.ops), (Kind::Ordering, vec![2, 3]));
        assert_eq!(s.classify(&a.new, 3, None, None).kind, Kind::Other);
    }

    #[test]
    fn a_size_without_its_data_is_atomicity() {
        let (s, _) = seq("f = open a create\nwrite f 4KiB D\n");
        let mut torn = s.states[2].clone();
        for n in torn.tree.values_mut() {
            if let Node::File { content, .. } = n {
                content.clear();
            }
        }
        let c = s.classify(&torn, 2, None, None);
        assert_eq!((c.kind, c.ops), (Kind::Atomicity, vec![2]));
    }

    #[test]
    fn a_rename_durable_before_the_data_is_ordering() {
        let (s, _) =
            seq("f = open tmp create\nftruncate f 4KiB\nwrite f 4KiB D\nrename tmp final\n");
        // final holds the zeros of the ftruncate: the write (op 3) lost, the rename (op 4) not.
        let mut st = s.states[2].clone();
        let node = st.tree.remove(&Path::root().join("tmp")).expect("tmp");
        st.tree.insert(Path::root().join("final"), node);
        let c = s.classify(&st, 4, None, None);
        assert_eq!((c.kind, c.ops), (Kind::Ordering, vec![3, 4]));
    }
}
