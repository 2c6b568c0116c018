//! What btrfs's fsync writes to the log tree: the fsynced file with its names and new ancestors,
//! a directory's changed entries, old parents after a rename, and the log updates of later
//! renames (btrfs.fsync-log-inode, btrfs.fsync-dir-log, btrfs.log-new-ancestors,
//! btrfs.log-old-parents, btrfs.rename-updates-log).

use super::view::View;
use super::*;
use crate::layout::BlockValue;
use crate::persist::EffectKind;

/// What logging a directory in full writes: its changed entries, recursively those of new
/// subdirectories (with their Init), and the new files its entries name (made to exist by their
/// `e` markers).
struct DirLog {
    assigns: Vec<Assign>,
    files: Vec<Ino>,
    dirs: Vec<Ino>,
    /// New subdirectories whose entries were not followed (`recurse` false).
    subdirs: Vec<Ino>,
}

/// What logging the new ancestors of some directories writes: ancestors whose names did not
/// change since their creation (logged whatever the commit point), and renamed ones (optional).
struct Ancestors {
    bundled: Vec<Assign>,
    optional: Vec<(Ino, Vec<Assign>)>,
    logged: Vec<Ino>,
}

impl Builder<'_> {
    /// fsync, fdatasync, msync(MS_SYNC) or an O_SYNC/O_DSYNC write of file `ino` at op `k`:
    /// btrfs_sync_file on the whole file, then btrfs_log_inode_parent.
    pub(super) fn btrfs_fsync_file(
        &mut self,
        k: usize,
        ino: Ino,
        rule: &'static Rule,
        view: &View,
        markers: &BTreeMap<Ino, usize>,
        logged: &mut BTreeSet<Ino>,
    ) {
        let names = view.names(ino);
        // i_nlink == 0: btrfs_log_inode_parent returns BTRFS_NO_LOG_SYNC.
        if names.is_empty() {
            return;
        }
        // The inode: item (size), extents (its data as of now), names (btrfs.fsync-log-inode).
        let mut assigns = Vec::new();
        if view.created.contains_key(&ino) {
            let kind = view.kinds.get(&ino).copied().unwrap_or(Kind::File);
            assigns.push(Assign::Init { ino, kind });
        }
        let size = view.size(ino);
        assigns.push(Assign::Size {
            ino,
            size,
            holes_from: None,
        });
        assigns.extend(names.iter().map(|(dir, name)| Assign::Entry {
            dir: *dir,
            name: name.clone(),
            target: Some(ino),
        }));
        // Its removed names (btrfs.log-old-parents), in the same log (one log sync writes it
        // all, so while the fsync is in flight it persists whole or not at all).
        let removed = view.removed_names(ino);
        let with_removed = !removed.is_empty() && self.enabled(&BTRFS_OLD_PARENTS);
        if with_removed {
            assigns.extend(removed.into_iter().map(|(dir, name)| Assign::Entry {
                dir,
                name,
                target: None,
            }));
        }
        // Its new ancestors (btrfs.log-new-ancestors), in the same log.
        let parents: Vec<Ino> = names.iter().map(|(d, _)| *d).collect();
        let anc = self.btrfs_ancestors(parents, None, view);
        let with_ancestors = !anc.bundled.is_empty() && self.enabled(&BTRFS_NEW_ANCESTORS);
        if with_ancestors {
            assigns.extend(anc.bundled.iter().cloned());
        }
        let l = self.push(k, EffectKind::Meta(assigns), format!("l{k}"), rule);
        if with_removed {
            self.carry(l, &BTRFS_OLD_PARENTS);
        }
        if with_ancestors {
            self.carry(l, &BTRFS_NEW_ANCESTORS);
        }
        let content = view.content.get(&ino).cloned().unwrap_or_default();
        for c in self.layout.chunks_of(ino) {
            let chunk = &self.layout.chunks[c];
            if chunk.start() < size {
                let value = BlockValue::of(&content, chunk);
                self.assign_blocks(l, c, value, rule);
            }
        }
        self.floor(k, vec![l], rule);
        logged.insert(ino);

        // Renamed new ancestors, optionally.
        self.btrfs_push_ancestors(k, anc, Some(l), &BTRFS_NEW_ANCESTORS, logged);

        // After a rename, link or unlink: the old parents logged in full, optionally
        // (btrfs.log-old-parents).
        if view.renamed(ino) && self.enabled(&BTRFS_OLD_PARENTS) {
            let parents: BTreeSet<Ino> = view
                .names_of
                .get(&ino)
                .into_iter()
                .flatten()
                .map(|(d, _)| *d)
                .collect();
            for p in parents {
                let log = self.btrfs_dir_log(p, view, true);
                let o = self.push(
                    k,
                    EffectKind::Meta(log.assigns),
                    format!("o{k}.{p}"),
                    &BTRFS_OLD_PARENTS,
                );
                self.edge(l, o, &BTRFS_OLD_PARENTS);
                for f in log.files {
                    if let Some(&m) = markers.get(&f) {
                        self.edge(m, o, &BTRFS_OLD_PARENTS);
                    }
                }
                logged.extend(log.dirs);
            }
        }
    }

    /// fsync or fdatasync of directory `dir` at op `k`.
    pub(super) fn btrfs_fsync_dir(
        &mut self,
        k: usize,
        dir: Ino,
        view: &View,
        markers: &BTreeMap<Ino, usize>,
        logged: &mut BTreeSet<Ino>,
    ) {
        let mut log = self.btrfs_dir_log(dir, view, false);
        // The directory's own names, if new, and its new ancestors, in the same log
        // (btrfs.log-new-ancestors).
        let anc = self.btrfs_ancestors(vec![dir], Some(dir), view);
        let with_ancestors = !anc.bundled.is_empty() && self.enabled(&BTRFS_NEW_ANCESTORS);
        if with_ancestors {
            log.assigns.extend(anc.bundled.iter().cloned());
        }
        let l = (!log.assigns.is_empty()).then(|| {
            self.push(
                k,
                EffectKind::Meta(log.assigns),
                format!("l{k}"),
                &BTRFS_FSYNC_DIR,
            )
        });
        if let (true, Some(l)) = (with_ancestors, l) {
            self.carry(l, &BTRFS_NEW_ANCESTORS);
        }
        if let Some(l) = l {
            // The new files its entries name exist (LOG_INODE_EXISTS), in the same log: their
            // markers.
            for f in &log.files {
                if let Some(&m) = markers.get(f) {
                    self.edge(m, l, &BTRFS_FSYNC_DIR);
                }
            }
            self.floor(k, vec![l], &BTRFS_FSYNC_DIR);
        }
        logged.extend(log.dirs);
        logged.extend(log.files);
        logged.insert(dir);
        // A new subdirectory is logged in full (log_new_dir_dentries) only if its creation is
        // not committed ("btrfs: stop trying to log subdirectories created in past
        // transactions", linux-btrfs 2021-12): its entries are optional ([U]).
        if self.enabled(&BTRFS_FSYNC_DIR) {
            for sub in log.subdirs {
                let inner = self.btrfs_dir_log(sub, view, true);
                if inner.assigns.is_empty() {
                    continue;
                }
                let s = self.push(
                    k,
                    EffectKind::Meta(inner.assigns),
                    format!("s{k}.{sub}"),
                    &BTRFS_FSYNC_DIR,
                );
                if let Some(l) = l {
                    self.edge(l, s, &BTRFS_FSYNC_DIR);
                }
                for f in &inner.files {
                    if let Some(&m) = markers.get(f) {
                        self.edge(m, s, &BTRFS_FSYNC_DIR);
                    }
                }
                logged.extend(inner.dirs);
                logged.extend(inner.files);
            }
        }
        self.btrfs_push_ancestors(k, anc, l, &BTRFS_NEW_ANCESTORS, logged);
    }

    /// Op `k` renames, links or unlinks an inode or in a directory that a log may hold: the log
    /// is updated and may become durable on its own (btrfs.rename-updates-log).
    pub(super) fn btrfs_relog(
        &mut self,
        k: usize,
        facts: &OpFacts,
        view: &View,
        markers: &BTreeMap<Ino, usize>,
        logged: &mut BTreeSet<Ino>,
    ) {
        let mut assigns = facts.assigns.clone();
        let mut files = Vec::new();
        let mut dests = Vec::new();
        for a in &facts.assigns {
            if let Assign::Entry {
                dir,
                target: Some(t),
                ..
            } = a
            {
                dests.push(*dir);
                if view.created.contains_key(t) {
                    if view.is_dir(*t) {
                        assigns.push(Assign::Init {
                            ino: *t,
                            kind: Kind::Dir,
                        });
                    } else {
                        files.push(*t);
                    }
                }
            }
        }
        let anc = self.btrfs_ancestors(dests, None, view);
        assigns.extend(anc.bundled.iter().cloned());
        let r = self.push(k, EffectKind::Meta(assigns), format!("r{k}"), &BTRFS_RELOG);
        for f in files {
            if let Some(&m) = markers.get(&f) {
                self.edge(m, r, &BTRFS_RELOG);
            }
        }
        self.btrfs_push_ancestors(k, anc, Some(r), &BTRFS_RELOG, logged);
    }

    /// Pushes each renamed new ancestor as an optional `aK.D` (gated on `rule`), durable only
    /// with `owner`, the log it is part of (the caller put the bundled part in that log).
    fn btrfs_push_ancestors(
        &mut self,
        k: usize,
        anc: Ancestors,
        owner: Option<usize>,
        rule: &'static Rule,
        logged: &mut BTreeSet<Ino>,
    ) {
        if self.enabled(rule) {
            for (d, assigns) in anc.optional {
                let a = self.push(k, EffectKind::Meta(assigns), format!("a{k}.{d}"), rule);
                if let Some(o) = owner {
                    self.edge(o, a, rule);
                }
            }
        }
        logged.extend(anc.logged);
    }

    /// The new ancestors of directories `start` (log_all_new_ancestors): walking up their
    /// current names to the root, every directory the program created is logged with its Init
    /// and names as of now; one whose names changed after its creation only optionally ([U]:
    /// btrfs logs it only if its creation is not committed). `fsynced`: the directory being
    /// fsynced, whose own names are logged (LOG_INODE_ALL logs its refs) even if it is old.
    fn btrfs_ancestors(&self, start: Vec<Ino>, fsynced: Option<Ino>, view: &View) -> Ancestors {
        let mut out = Ancestors {
            bundled: Vec::new(),
            optional: Vec::new(),
            logged: Vec::new(),
        };
        let mut seen = BTreeSet::new();
        let mut todo = start;
        while let Some(d) = todo.pop() {
            if !seen.insert(d) {
                continue;
            }
            let created = view.created.contains_key(&d);
            let renamed = view.renamed(d);
            if created && !renamed {
                out.bundled.push(Assign::Init {
                    ino: d,
                    kind: Kind::Dir,
                });
                out.bundled.extend(view.name_assigns(d));
                out.logged.push(d);
            } else if created || (renamed && fsynced == Some(d)) {
                let mut v = Vec::new();
                if created {
                    v.push(Assign::Init {
                        ino: d,
                        kind: Kind::Dir,
                    });
                    out.logged.push(d);
                }
                v.extend(view.name_assigns(d));
                out.optional.push((d, v));
            }
            todo.extend(view.names(d).into_iter().map(|(p, _)| p));
        }
        out
    }

    /// Directory `dir` logged in full (LOG_INODE_ALL): every entry an op changed in it, as of
    /// now; new subdirectories with their Init and, recursively, their entries
    /// (log_new_dir_dentries); the new files named (their markers make them exist).
    fn btrfs_dir_log(&self, dir: Ino, view: &View, recurse: bool) -> DirLog {
        let mut out = DirLog {
            assigns: Vec::new(),
            files: Vec::new(),
            dirs: vec![dir],
            subdirs: Vec::new(),
        };
        let mut todo = vec![dir];
        let mut seen = BTreeSet::new();
        while let Some(d) = todo.pop() {
            if !seen.insert(d) {
                continue;
            }
            for name in view.dir_keys.get(&d).into_iter().flatten() {
                let target = view.entries.get(&(d, name.clone())).copied().flatten();
                out.assigns.push(Assign::Entry {
                    dir: d,
                    name: name.clone(),
                    target,
                });
                let Some(t) = target else { continue };
                if !view.created.contains_key(&t) {
                    continue;
                }
                if view.is_dir(t) {
                    out.assigns.push(Assign::Init {
                        ino: t,
                        kind: Kind::Dir,
                    });
                    out.dirs.push(t);
                    if recurse {
                        todo.push(t);
                    } else {
                        out.subdirs.push(t);
                    }
                } else if !out.files.contains(&t) {
                    out.files.push(t);
                }
            }
        }
        out
    }
}
