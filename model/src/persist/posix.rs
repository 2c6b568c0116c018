//! The `posix` model: the weakest reading of POSIX and the Linux man pages (SEMANTICS.md
//! section 1). Nothing is ordered except by syncs; each op's inode metadata and its directory
//! entries are separate effects, so fsync of a file does not persist its name.

use super::{Builder, EffectKind};
use crate::rules;
use crate::volatile::{Assign, Ino, SyncReq};

impl Builder<'_> {
    pub(crate) fn posix(&mut self) {
        // Each op's inode metadata (creation, size) is one effect per inode; its directory-entry
        // changes are one effect (a rename is atomic). Nothing else is ordered (posix.unordered).
        let mut init_of: std::collections::BTreeMap<Ino, usize> = Default::default();
        for (i, facts) in self.trace.ops.iter().enumerate() {
            let k = i + 1;
            let mut per_inode: std::collections::BTreeMap<Ino, Vec<Assign>> = Default::default();
            let mut entries = Vec::new();
            for a in &facts.assigns {
                match a {
                    Assign::Entry { .. } => entries.push(a.clone()),
                    _ => per_inode.entry(a.inode()).or_default().push(a.clone()),
                }
            }
            if let Some((ino, size)) = facts.extends {
                per_inode.entry(ino).or_default().push(Assign::Size {
                    ino,
                    size,
                    holes_from: None,
                });
            }
            for (ino, assigns) in per_inode {
                let is_init = assigns.iter().any(|a| matches!(a, Assign::Init { .. }));
                let e = self.push(k, EffectKind::Meta(assigns), format!("m{k}.{ino}"));
                if is_init {
                    init_of.insert(ino, e);
                }
            }
            if !entries.is_empty() {
                let e = self.push(k, EffectKind::Meta(entries.clone()), format!("m{k}"));
                for a in &entries {
                    if let Assign::Entry { dir, target, .. } = a {
                        for ino in [Some(*dir), *target].into_iter().flatten() {
                            if let Some(&init) = init_of.get(&ino) {
                                self.edge(init, e, &rules::INODE_BEFORE_NAME);
                            }
                        }
                    }
                }
            }
            self.block_effects(k, facts);
            let floor = match &facts.sync {
                None => continue,
                Some(SyncReq::All) => (self.all_upto(k), &rules::SYNC_ALL),
                Some(SyncReq::File {
                    ino,
                    datasync,
                    range,
                }) => {
                    let mut v = self.inode_meta_of(*ino, k);
                    v.extend(self.block_effects_of(*ino, k, *range));
                    let rule = if range.is_some() && facts.dirtied.iter().any(|d| d.ino == *ino) {
                        &rules::POSIX_OSYNC
                    } else if *datasync {
                        &rules::POSIX_FDATASYNC
                    } else {
                        &rules::POSIX_FSYNC_FILE
                    };
                    (v, rule)
                }
                Some(SyncReq::Msync { ino, start, end }) => {
                    let mut v = self.inode_meta_of(*ino, k);
                    v.extend(self.block_effects_of(*ino, k, Some((*start, *end))));
                    (v, &rules::POSIX_MSYNC)
                }
                Some(SyncReq::Dir { ino, .. }) => {
                    let d = *ino;
                    let v = (0..self.p_effects.len())
                        .filter(|&e| {
                            let eff = &self.p_effects[e];
                            eff.op <= k
                                && eff.assigns().iter().any(|a| match a {
                                    Assign::Entry { dir, .. } => *dir == d,
                                    Assign::Init { ino, .. } => *ino == d,
                                    _ => false,
                                })
                        })
                        .collect();
                    (v, &rules::POSIX_FSYNC_DIR)
                }
            };
            self.floor(k, floor.0, floor.1);
        }
    }

    /// posix: the inode-metadata effects (creation, size) of `ino` issued up to op `upto`.
    fn inode_meta_of(&self, ino: Ino, upto: usize) -> Vec<usize> {
        (0..self.p_effects.len())
            .filter(|&e| {
                let eff = &self.p_effects[e];
                eff.op <= upto
                    && matches!(eff.kind, EffectKind::Meta(_))
                    && eff
                        .assigns()
                        .iter()
                        .any(|a| !matches!(a, Assign::Entry { .. }) && a.inode() == ino)
            })
            .collect()
    }
}
