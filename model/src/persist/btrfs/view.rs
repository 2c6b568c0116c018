//! What a running system sees after each op, as far as btrfs's logging needs it: the current
//! names of every inode, which were renamed or removed, sizes and contents.

use crate::persist::Builder;
use crate::volatile::{Assign, Content, Ino, Kind, OpFacts};
use std::collections::{BTreeMap, BTreeSet};

/// A directory entry's key: (directory, name).
pub(super) type Key = (Ino, String);

/// What a running system sees after each op, as far as btrfs's logging needs it.
pub(super) struct View {
    /// The current target of every key setup or an op used.
    pub(super) entries: BTreeMap<Key, Option<Ino>>,
    /// Every key that has named the inode (at setup or by an op so far).
    pub(super) names_of: BTreeMap<Ino, BTreeSet<Key>>,
    /// The ops that changed an inode's names (created, linked, renamed, unlinked it).
    pub(super) renamed_at: BTreeMap<Ino, BTreeSet<usize>>,
    /// Per directory, the names of its entries that ops changed.
    pub(super) dir_keys: BTreeMap<Ino, BTreeSet<String>>,
    /// Inodes the program created, with the creating op.
    pub(super) created: BTreeMap<Ino, usize>,
    pub(super) kinds: BTreeMap<Ino, Kind>,
    pub(super) size: BTreeMap<Ino, u64>,
    pub(super) content: BTreeMap<Ino, Content>,
}

impl View {
    pub(super) fn new(b: &Builder<'_>) -> Self {
        let t = b.trace;
        let mut v = View {
            entries: BTreeMap::new(),
            names_of: BTreeMap::new(),
            renamed_at: BTreeMap::new(),
            dir_keys: BTreeMap::new(),
            created: BTreeMap::new(),
            kinds: t.kinds.clone(),
            size: BTreeMap::new(),
            content: BTreeMap::new(),
        };
        for (key, ino) in &t.initial.entries {
            v.entries.insert(key.clone(), Some(*ino));
            v.names_of.entry(*ino).or_default().insert(key.clone());
        }
        for (ino, (_, size, content)) in &t.initial.inodes {
            v.size.insert(*ino, *size);
            v.content.insert(*ino, content.clone());
        }
        v
    }

    /// Applies op `k` (its facts, and the content of the inodes it dirtied).
    pub(super) fn apply(&mut self, k: usize, facts: &OpFacts, after: &BTreeMap<Ino, Content>) {
        for a in &facts.assigns {
            match a {
                Assign::Entry { dir, name, target } => {
                    let key = (*dir, name.clone());
                    if let Some(Some(old)) = self.entries.insert(key.clone(), *target) {
                        self.renamed_at.entry(old).or_default().insert(k);
                    }
                    if let Some(t) = target {
                        self.names_of.entry(*t).or_default().insert(key);
                        self.renamed_at.entry(*t).or_default().insert(k);
                    }
                    self.dir_keys.entry(*dir).or_default().insert(name.clone());
                }
                Assign::Init { ino, .. } => {
                    self.created.insert(*ino, k);
                    self.size.insert(*ino, 0);
                    self.content.insert(*ino, Content::default());
                }
                Assign::Size { ino, size, .. } => {
                    self.size.insert(*ino, *size);
                    self.content.entry(*ino).or_default().clip(*size);
                }
            }
        }
        if let Some((ino, size)) = facts.extends {
            self.size.insert(ino, size);
        }
        for (ino, c) in after {
            self.content.insert(*ino, c.clone());
        }
    }

    pub(super) fn size(&self, ino: Ino) -> u64 {
        self.size.get(&ino).copied().unwrap_or(0)
    }

    pub(super) fn is_dir(&self, ino: Ino) -> bool {
        self.kinds.get(&ino) == Some(&Kind::Dir)
    }

    /// The keys naming `ino` now.
    pub(super) fn names(&self, ino: Ino) -> Vec<Key> {
        self.names_of
            .get(&ino)
            .into_iter()
            .flatten()
            .filter(|k| self.entries.get(*k) == Some(&Some(ino)))
            .cloned()
            .collect()
    }

    /// Keys that named `ino` and name nothing now (its removed names).
    pub(super) fn removed_names(&self, ino: Ino) -> Vec<Key> {
        self.names_of
            .get(&ino)
            .into_iter()
            .flatten()
            .filter(|k| self.entries.get(*k) == Some(&None))
            .cloned()
            .collect()
    }

    /// Whether an op other than the one that created `ino` changed its names (btrfs's
    /// last_unlink_trans, taken as possibly in the running transaction).
    pub(super) fn renamed(&self, ino: Ino) -> bool {
        let created = self.created.get(&ino).copied();
        self.renamed_at
            .get(&ino)
            .is_some_and(|ops| ops.iter().any(|&op| Some(op) != created))
    }

    /// The entries naming `ino` now (target `ino`) and its removed names (target none).
    pub(super) fn name_assigns(&self, ino: Ino) -> Vec<Assign> {
        let now = self
            .names(ino)
            .into_iter()
            .map(|(dir, name)| Assign::Entry {
                dir,
                name,
                target: Some(ino),
            });
        let gone = self
            .removed_names(ino)
            .into_iter()
            .map(|(dir, name)| Assign::Entry {
                dir,
                name,
                target: None,
            });
        now.chain(gone).collect()
    }
}
