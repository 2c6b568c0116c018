//! The `posix` model: the weakest reading of POSIX and the Linux man pages (docs/SEMANTICS.md
//! section 1). Nothing is ordered except by syncs; each op's inode metadata and its directory
//! entries are separate effects, so fsync of a file does not persist its name.

use super::{Builder, EffectKind, FsModel, ModelSpec, RuleUse};
use crate::rules::{self, Rule};
use crate::volatile::{Assign, Ino, OpFacts, SyncReq, BLOCK};
use std::collections::BTreeMap;

crate::rules! {
    RULES;
    POSIX_UNORDERED = "posix.unordered", Posix,
        "Nothing is ordered except by syncs: any subset of un-synced effects may be durable.",
        "POSIX fsync(), rename() say nothing of crashes; docs/SEMANTICS.md P7";
    INODE_BEFORE_NAME = "inode-before-name", Assumption,
        "A directory entry (or a child of a new directory) is durable only if the inode it names is: recovery never exposes a name for an unallocated inode.",
        "fsck/journal consistency; docs/SEMANTICS.md P7 (assumption)";
    POSIX_FSYNC_FILE = "posix.fsync-file", Posix,
        "fsync(file) makes the file's data and attributes (size, its existence as an inode) durable, not its directory entry.",
        "POSIX fsync(); fsync(2) man page; docs/SEMANTICS.md P1, P2";
    POSIX_FDATASYNC = "posix.fdatasync", Posix,
        "fdatasync(file) makes the data and the metadata needed to read it back (size, the inode) durable.",
        "fsync(2) man page; docs/SEMANTICS.md P3";
    POSIX_MSYNC = "posix.msync-range", Posix,
        "msync(MS_SYNC) is a ranged fdatasync: the mapped range's data, plus the size needed to read it back: at least the end of the range's last page written since it was allocated (or the file size), not the file's whole size; nothing if the file has covered that much since crash point 0.",
        "msync(3p); mm/msync.c vfs_fsync_range(datasync=1); docs/SEMANTICS.md P4, M1";
    POSIX_FSYNC_DIR = "posix.fsync-dir", Posix,
        "fsync(dir) makes the directory's entries (creates, renames, unlinks in it) durable.",
        "fsync(2) man page; docs/SEMANTICS.md P2";
}

/// The `posix` model.
pub struct Posix;

impl FsModel for Posix {
    fn name(&self) -> &'static str {
        "posix"
    }
    fn default_model(&self) -> ModelSpec {
        ModelSpec::Posix
    }
    fn rules(&self) -> &'static [RuleUse] {
        const USES: &[RuleUse] = &[
            RuleUse::always(&rules::SETUP_DURABLE),
            RuleUse::always(&rules::OP_ATOMIC),
            RuleUse::always(&rules::MS_ASYNC_NOOP),
            RuleUse::always(&rules::SYNC_ALL),
            RuleUse::always(&POSIX_UNORDERED),
            RuleUse::always(&INODE_BEFORE_NAME),
            RuleUse::always(&POSIX_FSYNC_FILE),
            RuleUse::always(&POSIX_FDATASYNC),
            RuleUse::always(&POSIX_MSYNC),
            RuleUse::always(&POSIX_FSYNC_DIR),
            RuleUse::always(&rules::POSIX_OSYNC),
        ];
        USES
    }
    fn descriptive(&self) -> &'static [(&'static Rule, &'static str)] {
        &[(
            &POSIX_UNORDERED,
            "it is an absence: what posix leaves unordered; every `# expect posix:` verdict that fails shows it",
        )]
    }
    fn build(&self, _model: &ModelSpec, b: &mut Builder<'_>) {
        b.posix();
    }
}

/// The most page-boundary size steps an extending write gets under posix (16 MiB): past it,
/// the steps are elided (see [`super::Persistence::elided`]). The corpus writes at most 8 MiB.
pub const MAX_SIZE_STEPS: u64 = 4096;

impl Builder<'_> {
    fn posix(&mut self) {
        // Each op's inode metadata (creation, size) is one effect per inode; its directory-entry
        // changes are one effect (a rename is atomic). Nothing else is ordered (posix.unordered).
        let mut init_of: BTreeMap<Ino, usize> = BTreeMap::new();
        // Each file's size as a running system sees it, before the op being built.
        let mut vsize: BTreeMap<Ino, u64> = self
            .trace
            .initial
            .inodes
            .iter()
            .map(|(i, (_, size, _))| (*i, *size))
            .collect();
        for (i, facts) in self.trace.ops.iter().enumerate() {
            let k = i + 1;
            self.posix_meta(k, facts, &mut init_of, &mut vsize);
            self.block_effects(k, facts, &POSIX_UNORDERED);
            if let Some((v, rule)) = self.posix_floor(k, facts) {
                self.floor(k, v, rule);
            }
        }
    }

    /// Op `k`'s metadata effects: an extending write's size steps, one effect per inode, and one
    /// for its directory entries (ordered after the inodes they name: inode-before-name).
    fn posix_meta(
        &mut self,
        k: usize,
        facts: &OpFacts,
        init_of: &mut BTreeMap<Ino, usize>,
        vsize: &mut BTreeMap<Ino, u64>,
    ) {
        let mut per_inode: BTreeMap<Ino, Vec<Assign>> = BTreeMap::new();
        let mut entries = Vec::new();
        // The last intermediate size effect of an extending write: (inode, effect).
        let mut size_step: Option<(Ino, usize)> = None;
        // The inode of an extending write whose steps were elided.
        let mut elided: Option<Ino> = None;
        for a in &facts.assigns {
            match a {
                Assign::Entry { .. } => entries.push(a.clone()),
                _ => per_inode.entry(a.inode()).or_default().push(a.clone()),
            }
        }
        if let Some((ino, size)) = facts.extends {
            // posix.unordered: POSIX promises nothing about a write's atomicity at a crash,
            // and Linux does not give it: generic_perform_write copies a write into the page
            // cache a page at a time, and a file system may move the on-disk size after each
            // page (ext4 without delalloc: ext4_write_end sets i_disksize per page,
            // ext4.page-handles). So an extending write's size may persist at any page
            // boundary it crosses: one size effect per boundary, before the effect with the
            // final size. Without them posix lacked states ext4:nodelalloc and
            // ext4:data=journal allow, found by the order check (explorer/src/order.rs,
            // docs/ORDER.md). The steps are chained: that removes no state (the latest
            // durable size wins whichever steps persist) and keeps the downsets linear in
            // the number of pages instead of exponential.
            // A write across more than MAX_SIZE_STEPS pages gets no steps: their number (and
            // the states they make) would grow with the bytes written. Its final size effect
            // is `elided`, and the explorer reports the crash points where the steps would
            // matter as unproven.
            let mut at = (vsize.get(&ino).copied().unwrap_or(0) / BLOCK + 1) * BLOCK;
            let elide = size.saturating_sub(at).div_ceil(BLOCK) > MAX_SIZE_STEPS;
            while at < size && !elide {
                let e = self.push(
                    k,
                    EffectKind::Meta(vec![Assign::Size {
                        ino,
                        size: at,
                        holes_from: None,
                    }]),
                    format!("m{k}.{ino}s{at}"),
                    &POSIX_UNORDERED,
                );
                if let Some((_, prev)) = size_step {
                    self.edge(prev, e, &POSIX_UNORDERED);
                }
                size_step = Some((ino, e));
                at += BLOCK;
            }
            if elide {
                elided = Some(ino);
            }
            per_inode.entry(ino).or_default().push(Assign::Size {
                ino,
                size,
                holes_from: None,
            });
            vsize.insert(ino, size);
        }
        for a in &facts.assigns {
            if let Assign::Size { ino, size, .. } = a {
                vsize.insert(*ino, *size);
            }
        }
        for (ino, assigns) in per_inode {
            let is_init = assigns.iter().any(|a| matches!(a, Assign::Init { .. }));
            let e = self.push(
                k,
                EffectKind::Meta(assigns),
                format!("m{k}.{ino}"),
                &POSIX_UNORDERED,
            );
            if elided == Some(ino) {
                self.elided.push(e);
            }
            if let Some((_, prev)) = size_step.filter(|(i, _)| *i == ino) {
                self.edge(prev, e, &POSIX_UNORDERED);
            }
            if is_init {
                init_of.insert(ino, e);
            }
        }
        if !entries.is_empty() {
            let e = self.push(
                k,
                EffectKind::Meta(entries.clone()),
                format!("m{k}"),
                &POSIX_UNORDERED,
            );
            for a in &entries {
                if let Assign::Entry { dir, target, .. } = a {
                    for ino in [Some(*dir), *target].into_iter().flatten() {
                        if let Some(&init) = init_of.get(&ino) {
                            self.edge(init, e, &INODE_BEFORE_NAME);
                        }
                    }
                }
            }
        }
    }

    /// The floor of op `k`'s sync, if it asks for one, and its rule.
    fn posix_floor(&self, k: usize, facts: &OpFacts) -> Option<(Vec<usize>, &'static Rule)> {
        Some(match facts.sync.as_ref()? {
            SyncReq::All => (self.all_upto(k), &rules::SYNC_ALL),
            SyncReq::File {
                ino,
                datasync,
                range,
            } => {
                let mut v = self.inode_meta_of(*ino, k);
                v.extend(self.block_effects_of(*ino, k, *range));
                let rule = if range.is_some() && facts.dirtied.iter().any(|d| d.ino == *ino) {
                    &rules::POSIX_OSYNC
                } else if *datasync {
                    &POSIX_FDATASYNC
                } else {
                    &POSIX_FSYNC_FILE
                };
                (v, rule)
            }
            SyncReq::Msync { ino, start, end } => {
                (self.posix_msync(k, *ino, *start, *end), &POSIX_MSYNC)
            }
            SyncReq::Dir { ino, .. } => {
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
                (v, &POSIX_FSYNC_DIR)
            }
        })
    }

    /// posix.msync-range: data integrity of the range only. The size needed to read the range
    /// back is the end of its last new page (or the file size), no more: the size effect that
    /// gives it (`Builder::msync_size_need`: a part-way size of an extending write, or the whole
    /// size of the write or truncate that reached it) is in the floor, with the inode's other
    /// metadata (its creation), and no other size. An earlier append's size is not data of the
    /// range: ext4 and xfs write back the range alone, whose writeback moves the on-disk size
    /// only to cover the range (found by `unplug workloads`, docs/ORDER.md).
    fn posix_msync(&self, k: usize, ino: Ino, start: u64, end: u64) -> Vec<usize> {
        let only_size = |e: usize| {
            self.p_effects[e]
                .assigns()
                .iter()
                .all(|a| matches!(a, Assign::Size { ino: i, .. } if *i == ino))
        };
        let mut v: Vec<usize> = self
            .inode_meta_of(ino, k)
            .into_iter()
            .filter(|&e| !only_size(e))
            .collect();
        if let Some(n) = self.msync_size_need(ino, k, start, end) {
            v.extend(self.size_effect(n.op, ino, n.size, false));
        }
        v.extend(self.block_effects_of(ino, k, Some((start, end))));
        v
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
