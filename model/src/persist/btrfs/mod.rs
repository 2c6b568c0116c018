//! The `btrfs` model: btrfs with its defaults (copy-on-write data, the tree log, noflushoncommit;
//! docs/SEMANTICS.md section 4 "btrfs" B1r-B6r, with sections 1-3, 6 and 7). Every rule below names the
//! kernel function it was checked against (torvalds/linux 5.10 and 6.x snapshots unless said
//! otherwise).
//!
//! The shape of a durable state: *some committed prefix of all metadata* (a transaction commit
//! is atomic and commits everything issued before it, every 30 s or when anything forces one)
//! *plus what the fsyncs since that commit wrote to the log tree* (only the fsynced inode, its
//! names, new ancestors and, after a rename or unlink, its old parents). Effects:
//!
//! - `mK`: op K's syscall metadata, in one chain (`btrfs.transaction-prefix`): the commit prefix.
//! - `wK`: an append's on-disk size, written at ordered-extent completion: after the prefix up to
//!   K, unordered with later ops; it carries the appended page when that page's own completion is
//!   the only one that can write this size (`btrfs.append-size-with-data`).
//! - `dK`: the block versions op K wrote (overwrites, and appends not carried by `wK`); visible
//!   only with the prefix up to K (COW: their extent items commit at ordered-extent completion).
//! - `lK`: what fsync K logs, written by one log sync: the inode with its size, data and names
//!   (current ones set, removed ones cleared) and its new ancestor directories; for a directory,
//!   its changed entries. It has no predecessors: a log is durable without the commit prefix,
//!   which is exactly how btrfs reorders directory operations (B5r). Its values are those of op
//!   K; effects are applied in op order, so a commit of later ops overrides them, and a commit of
//!   earlier ops is overridden by them, as log replay does.
//! - `eK`: "the inode created by op K exists" (its Init alone), free, used where a log makes a
//!   new file or symlink exist without logging its size (a directory fsync logs the inodes of its
//!   new entries with LOG_INODE_EXISTS).
//! - Optional effects (no floor, no chain): `aK.D` a renamed new ancestor, `oK.D` an old parent
//!   directory logged in full, `sK.D` the entries of a new subdirectory of an fsynced directory,
//!   `rK` a rename/link/unlink that updates a log already holding the inode or directory. They say what btrfs *may* also make durable, depending on where the
//!   last transaction commit fell: [U] over-approximations, so that every real state is allowed.

mod log;
mod view;

use super::{Builder, EffectKind, FsModel, ModelSpec, RuleUse};
use crate::rules::{self, Rule};
use crate::volatile::{Assign, Ino, Kind, OpFacts, SyncReq, BLOCK};
use crate::OpNo;
use std::collections::{BTreeMap, BTreeSet};
use view::View;

crate::rules! {
    RULES;
    // fs/btrfs/transaction.c btrfs_commit_transaction: waits for the previous transaction's
    // commit before its own (prev_trans, wait_for_commit), and the superblock write
    // (write_all_supers) switches every tree root at once (COW). One running transaction takes
    // every op's changes, so the committed metadata is a prefix of the ops' metadata.
    BTRFS_TRANSACTION_PREFIX = "btrfs.transaction-prefix", Implementation,
        "Every op's metadata joins the one running transaction; transactions commit in order and each commit is atomic (copy-on-write trees, one superblock write), every 30 s or when forced: without the log tree, the durable metadata is a prefix of the ops' metadata.",
        "fs/btrfs/transaction.c btrfs_commit_transaction (waits for the previous commit), join_transaction; fs/btrfs/disk-io.c write_all_supers; docs/SEMANTICS.md B1r";
    // fs/btrfs/inode.c btrfs_finish_ordered_io / btrfs_finish_one_ordered: after the data I/O,
    // btrfs_join_transaction + insert_reserved_file_extent; fs/btrfs/file.c btrfs_dirty_pages
    // only marks pages delalloc. fs/btrfs/transaction.c btrfs_start_delalloc_flush flushes dirty
    // data at commit only with FLUSHONCOMMIT.
    BTRFS_COW = "btrfs.cow-data", Implementation,
        "Data is copy-on-write: an overwrite is written to new blocks and becomes visible only when the transaction holding its new file extent items commits; that happens at ordered-extent completion, in a transaction after the op's own metadata. So a block holds its old or its new content (never stale or torn at block level), and new data is never durable before the metadata of earlier ops; commits do not wait for dirty data (noflushoncommit), so later ops may commit first.",
        "fs/btrfs/inode.c btrfs_finish_ordered_io (btrfs_join_transaction, insert_reserved_file_extent after the I/O); fs/btrfs/file.c btrfs_dirty_pages; fs/btrfs/transaction.c btrfs_start_delalloc_flush (FLUSHONCOMMIT only); docs/SEMANTICS.md B1r, section 6 (ALICE: single-block overwrite atomic on btrfs)";
    // fs/btrfs/file.c btrfs_dirty_pages: "we've only changed i_size in ram, and we haven't
    // updated the disk i_size"; fs/btrfs/inode.c btrfs_finish_ordered_io:
    // btrfs_inode_safe_disk_i_size_write(inode, 0) + btrfs_update_inode_fallback in the
    // transaction it joins after the data I/O; fs/btrfs/file-item.c
    // btrfs_inode_safe_disk_i_size_write: "With NO_HOLES set this simply sets the disk_i_size to
    // whatever i_size_read() returns" (NO_HOLES is the mkfs default since btrfs-progs 5.15).
    BTRFS_APPEND_AT_COMPLETION = "btrfs.append-at-completion", Implementation,
        "An append moves only the in-memory i_size; the on-disk size (disk_i_size) is written when an ordered extent of the file completes, in a transaction after the append and unordered with later ops: a committed rename may point at the file before the append. With NO_HOLES (the default) any of the file's ordered extents writes the whole in-memory i_size, so with other writes pending the size can persist before the append's data: the end reads as a hole (zeros), never stale data. [U] Sizes move at op granularity, as in every model.",
        "fs/btrfs/file.c btrfs_dirty_pages (i_size in memory only); fs/btrfs/inode.c btrfs_finish_ordered_io (btrfs_inode_safe_disk_i_size_write, btrfs_update_inode_fallback); fs/btrfs/file-item.c btrfs_inode_safe_disk_i_size_write (NO_HOLES: disk_i_size = i_size); docs/SEMANTICS.md B1r";
    // The same functions: btrfs_finish_ordered_io inserts the file extent items and writes
    // disk_i_size in one transaction handle, after the data I/O.
    BTRFS_APPEND_WITH_DATA = "btrfs.append-size-with-data", Implementation,
        "When an append dirties a single page and no other write of the file can complete while the in-memory size is the one it set (none pending since the last sync(), none after it before the size changes again), its data forms one ordered extent whose completion writes the on-disk size together with the extent items of the data (already on disk): the append persists whole or not at all (ALICE: single-block append atomic on btrfs). A longer append can be cut into several ordered extents (fragmented free space) and, with NO_HOLES, the first to complete writes the whole size: the rest reads as zeros.",
        "fs/btrfs/inode.c btrfs_finish_ordered_io (insert_reserved_file_extent and btrfs_inode_safe_disk_i_size_write in one transaction, after the I/O), cow_file_range (one ordered extent per allocated extent); docs/SEMANTICS.md B1r, section 6 (ALICE: single-block append)";
    // fs/btrfs/file.c btrfs_sync_file: start = 0, end = LLONG_MAX ("Always set the range to a
    // full range"), start_ordered_ops + btrfs_wait_ordered_range (full sync) or
    // filemap_fdatawait_range + logged ordered extents (fast), then btrfs_log_dentry_safe ->
    // fs/btrfs/tree-log.c btrfs_log_inode_parent -> btrfs_log_inode(LOG_INODE_ALL) (inode item
    // with i_size, extents, inode refs) and btrfs_sync_log. A new file (generation > last
    // committed) gets its name logged with it: its inode ref is replayed into the parent.
    BTRFS_FSYNC = "btrfs.fsync-log-inode", Implementation,
        "fsync(file) writes and waits on all the file's dirty pages and logs the inode in the log tree: its size, its data extents and its current names (a new file's directory entry included) are durable; nothing else issued before is, unless logged too (no metadata prefix: an earlier create or rename of another file may be lost).",
        "fs/btrfs/file.c btrfs_sync_file (full range, btrfs_log_dentry_safe, btrfs_sync_log); fs/btrfs/tree-log.c btrfs_log_inode_parent, btrfs_log_inode, add_inode_ref (replay); docs/SEMANTICS.md B2r, B5r";
    // fs/btrfs/file.c btrfs_sync_file: `datasync` is passed only to trace_btrfs_sync_file; the
    // logging path is the same.
    BTRFS_FDATASYNC = "btrfs.fdatasync-is-fsync", Implementation,
        "fdatasync does exactly what fsync does: btrfs_sync_file uses `datasync` only for its tracepoint, so it logs the inode with its names and persists a preceding rename (unlike ext4).",
        "fs/btrfs/file.c btrfs_sync_file (datasync only in trace_btrfs_sync_file); docs/SEMANTICS.md B6r, P3";
    // mm/msync.c: vfs_fsync_range(file, fstart, fend, 1) per shared file mapping; fs/btrfs/file.c
    // btrfs_sync_file then widens the range to the whole file.
    BTRFS_MSYNC = "btrfs.msync-whole-file", Implementation,
        "msync(MS_SYNC) is a ranged fdatasync (mm/msync.c), and btrfs_sync_file widens every range to the whole file (\"Always set the range to a full range\"): every dirty page of the file is written, not only the range, and the inode is logged as by fsync.",
        "mm/msync.c SYSCALL_DEFINE3(msync) -> vfs_fsync_range(datasync=1); fs/btrfs/file.c btrfs_sync_file (start = 0, end = LLONG_MAX); docs/SEMANTICS.md M1, M2";
    // fs/btrfs/tree-log.c btrfs_log_inode_parent -> log_all_new_ancestors ->
    // log_new_ancestors(_fast): every ancestor with generation > last_trans_committed is logged
    // with LOG_INODE_EXISTS (inode item and refs). Skipped only for a regular file created in an
    // earlier transaction and not renamed or unlinked since (last_unlink_trans).
    BTRFS_NEW_ANCESTORS = "btrfs.log-new-ancestors", Implementation,
        "fsync of a file created or renamed in the running transaction (or of a directory) also logs every ancestor directory created in it (log_all_new_ancestors): a new file in a new directory is durable under its path. The model treats every directory created by the program as possibly new; [U] one renamed after its creation is logged only optionally (it is logged only if its creation was not committed).",
        "fs/btrfs/tree-log.c btrfs_log_inode_parent, log_all_new_ancestors, log_new_ancestors_fast; docs/SEMANTICS.md B2r";
    // fs/btrfs/tree-log.c btrfs_log_new_name ("this will force the logging code to walk the
    // dentry chain up for the file": last_unlink_trans = transid), btrfs_record_unlink_dir;
    // btrfs_log_inode_parent: `if (inode->last_unlink_trans > last_committed)
    // btrfs_log_all_parents(...)`, which logs every parent found in the commit root (the old
    // ones) with LOG_INODE_ALL; add_inode_ref/unlink_old_inode_refs remove names of the same
    // parent that the log does not hold.
    BTRFS_OLD_PARENTS = "btrfs.log-old-parents", Implementation,
        "After a rename, link or unlink of a file, its fsync also removes its old names: the old parent directories are logged in full (btrfs_log_all_parents) and replay drops names the log does not hold. [U] Logging an old parent in full also logs every other change in it since the last commit; which ones depends on where that commit fell, so the model makes the whole directory's state optional (an over-approximation).",
        "fs/btrfs/tree-log.c btrfs_log_new_name, btrfs_record_unlink_dir, btrfs_log_inode_parent, btrfs_log_all_parents, unlink_old_inode_refs; fs/btrfs/inode.c btrfs_rename, btrfs_link; docs/SEMANTICS.md B2r, B3r";
    // fs/btrfs/file.c btrfs_sync_file on a directory -> btrfs_log_inode_parent(LOG_INODE_ALL):
    // log_directory_changes logs the dir items changed in the transaction (replay_dir_deletes
    // removes the others in the logged ranges) and log_new_dir_dentries logs the inodes of new
    // entries (LOG_INODE_EXISTS for files: size 0 unless logged before; LOG_INODE_ALL for
    // directories, recursively).
    BTRFS_FSYNC_DIR = "btrfs.fsync-dir-log", Implementation,
        "fsync or fdatasync of a directory logs the directory: every entry created, renamed or removed in it is durable, the inodes of new entries exist (a new file that was never fsynced may be empty), and new ancestors too; other directories are not (no full commit as on ext4). A new subdirectory's own entries are logged only if its creation is not committed yet: [U] the model makes them optional.",
        "fs/btrfs/file.c btrfs_sync_file; fs/btrfs/tree-log.c btrfs_log_inode_parent, btrfs_log_inode (log_directory_changes), log_new_dir_dentries, replay_dir_deletes; docs/SEMANTICS.md B2r, P2";
    // fs/btrfs/tree-log.c btrfs_log_new_name: if the inode or the old directory was logged in
    // the running transaction, the new name is logged (and the old one deleted from the log);
    // btrfs_del_dir_entries_in_log / btrfs_del_inode_ref_in_log on unlink. Since 5.18 ("btrfs:
    // stop doing unnecessary log updates during a rename") the log is not synced by the rename
    // itself but by the next btrfs_sync_log of any fsync in the subvolume; older kernels synced
    // it in the rename.
    BTRFS_RELOG = "btrfs.rename-updates-log", Implementation,
        "A rename, link or unlink of an inode, or in a directory, that a log of the running transaction already holds updates the log tree, and the next log sync (an fsync of any file, or the rename itself before 5.18) makes it durable without the ops issued before it. [U] Over-approximation: the model lets such an op persist this way at any time after an fsync logged the inode or directory.",
        "fs/btrfs/tree-log.c btrfs_log_new_name, btrfs_del_dir_entries_in_log, btrfs_del_inode_ref_in_log, btrfs_sync_log; fs/btrfs/inode.c btrfs_rename, btrfs_unlink; docs/SEMANTICS.md B3r";
    // fs/btrfs/inode.c btrfs_rename: `if (new_inode && S_ISREG(old_inode->i_mode) &&
    // new_inode->i_size) filemap_flush(old_inode->i_mapping);` (filemap_fdatawrite_kick in 6.x),
    // start I/O only. Commit 8d875f95da43 ("btrfs: disable strict file flushes for renames and
    // truncates", 3.17) removed the ordered-operations list the commit used to wait on.
    BTRFS_RENAME_FLUSH = "btrfs.rename-over-flush", Implementation,
        "A rename over an existing non-empty file starts writeback of the source (filemap_flush) and does not wait; since 3.17 no commit waits for it either, and the extent items and size are written at I/O completion: the rename can commit before the new file's data and size (empty or short file). Window-shrinking, no ordering; ALICE's 2014 \"[append, rename] -> any op\" result predates it.",
        "fs/btrfs/inode.c btrfs_rename (filemap_flush / filemap_fdatawrite_kick, no wait); commit 8d875f95da43 (cited by \"btrfs: Rename BTRFS_INODE_ORDERED_DATA_CLOSE flag\", linux-btrfs 2020-10-01); docs/SEMANTICS.md B4r";
    // fs/btrfs/inode.c btrfs_setsize: `if (newsize == 0) set_bit(BTRFS_INODE_FLUSH_ON_CLOSE,
    // ...)`; fs/btrfs/file.c btrfs_release_file: `if (test_and_clear_bit(
    // BTRFS_INODE_FLUSH_ON_CLOSE, ...)) filemap_flush(inode->i_mapping);`.
    BTRFS_TRUNCATE_CLOSE = "btrfs.truncate-zero-close-flush", Implementation,
        "After a truncate to size 0, releasing the open file description starts writeback of the file (filemap_flush, no wait); the extent items and size are written at I/O completion, so nothing is ordered before later ops: the file can persist empty after a later op (window-shrinking only, unlike ext4.auto-da-alloc-close).",
        "fs/btrfs/inode.c btrfs_setsize (BTRFS_INODE_FLUSH_ON_CLOSE when newsize == 0); fs/btrfs/file.c btrfs_release_file (filemap_flush); docs/SEMANTICS.md B4r";
}

/// The `btrfs` model.
pub struct Btrfs;

impl FsModel for Btrfs {
    fn name(&self) -> &'static str {
        "btrfs"
    }
    fn default_model(&self) -> ModelSpec {
        ModelSpec::Btrfs
    }
    fn rules(&self) -> &'static [RuleUse] {
        const USES: &[RuleUse] = &[
            RuleUse::always(&rules::SETUP_DURABLE),
            RuleUse::always(&rules::OP_ATOMIC),
            RuleUse::always(&rules::MS_ASYNC_NOOP),
            RuleUse::always(&rules::SYNC_ALL),
            RuleUse::always(&rules::POSIX_OSYNC),
            RuleUse::always(&BTRFS_TRANSACTION_PREFIX),
            RuleUse::always(&BTRFS_COW),
            RuleUse::always(&BTRFS_APPEND_AT_COMPLETION),
            RuleUse::always(&BTRFS_APPEND_WITH_DATA),
            RuleUse::always(&BTRFS_FSYNC),
            RuleUse::always(&BTRFS_FDATASYNC),
            RuleUse::always(&BTRFS_MSYNC),
            RuleUse::always(&BTRFS_NEW_ANCESTORS),
            RuleUse::always(&BTRFS_OLD_PARENTS),
            RuleUse::always(&BTRFS_FSYNC_DIR),
            RuleUse::always(&BTRFS_RELOG),
            RuleUse::always(&BTRFS_RENAME_FLUSH),
            RuleUse::always(&BTRFS_TRUNCATE_CLOSE),
        ];
        USES
    }
    fn descriptive(&self) -> &'static [(&'static Rule, &'static str)] {
        &[
            (
                &BTRFS_RENAME_FLUSH,
                "it is an absence: the flush of a rename over a file only starts I/O and orders nothing; the `# expect btrfs:` lines of replace-rename-nofsync show it",
            ),
            (
                &BTRFS_TRUNCATE_CLOSE,
                "it is an absence: the flush at close after a truncate to 0 orders nothing; the `# expect btrfs:` lines of otrunc-replace show it",
            ),
        ]
    }
    fn build(&self, _model: &ModelSpec, b: &mut Builder<'_>) {
        b.btrfs();
    }
}

/// What the btrfs builder keeps between ops.
struct State {
    view: View,
    last_meta: Option<usize>,
    /// `eK` markers: the Init of each file or symlink the program created, by inode.
    markers: BTreeMap<Ino, usize>,
    /// Inodes some fsync may have logged (never forgotten: a commit in between is possible
    /// but not certain).
    logged: BTreeSet<Ino>,
}

impl Builder<'_> {
    fn btrfs(&mut self) {
        let trace = self.trace;
        let mut st = State {
            view: View::new(self),
            last_meta: None,
            markers: BTreeMap::new(),
            logged: BTreeSet::new(),
        };
        for (i, facts) in trace.ops.iter().enumerate() {
            let k = i + 1;
            self.btrfs_meta(&mut st, k, facts);
            st.view.apply(k, facts, &trace.contents[i]);
            // A namespace op on an inode or directory a log may hold updates that log
            // (btrfs.rename-updates-log).
            let namespace = facts
                .assigns
                .iter()
                .all(|a| matches!(a, Assign::Entry { .. }));
            if namespace
                && !facts.assigns.is_empty()
                && facts.touched.iter().any(|t| st.logged.contains(t))
                && self.enabled(&BTRFS_RELOG)
            {
                self.btrfs_relog(k, facts, &st.view, &st.markers, &mut st.logged);
            }
            self.btrfs_data(&st, k, facts);
            self.btrfs_sync(&mut st, k, facts);
        }
        // Markers nothing refers to would only slow the enumeration down.
        let unused: BTreeSet<usize> = st
            .markers
            .values()
            .copied()
            .filter(|&m| {
                !self.edges.iter().any(|e| e.from == m)
                    && !self.floors.iter().any(|f| f.effects.contains(&m))
            })
            .collect();
        self.btrfs_remove(&unused);
    }

    /// The op's metadata joins the running transaction (btrfs.transaction-prefix); a created
    /// file or symlink gets its `eK` marker.
    fn btrfs_meta(&mut self, st: &mut State, k: usize, facts: &OpFacts) {
        if facts.assigns.is_empty() {
            return;
        }
        let e = self.push(
            k,
            EffectKind::Meta(facts.assigns.clone()),
            format!("m{k}"),
            &BTRFS_TRANSACTION_PREFIX,
        );
        if let Some(prev) = st.last_meta {
            self.edge(prev, e, &BTRFS_TRANSACTION_PREFIX);
        }
        st.last_meta = Some(e);
        for a in &facts.assigns {
            if let Assign::Init {
                ino,
                kind: Kind::File | Kind::Symlink,
            } = a
            {
                let m = self.push(
                    k,
                    EffectKind::Meta(vec![a.clone()]),
                    format!("e{k}"),
                    &BTRFS_TRANSACTION_PREFIX,
                );
                st.markers.insert(*ino, m);
            }
        }
    }

    /// Data. Overwrites are COW block versions, visible with the prefix up to the op
    /// (btrfs.cow-data). An append's on-disk size is written at ordered-extent completion, after
    /// that prefix (btrfs.append-at-completion), with the appended data only if no other write
    /// of the file can complete first (btrfs.append-size-with-data).
    fn btrfs_data(&mut self, st: &State, k: usize, facts: &OpFacts) {
        let size_effect = facts.extends.map(|(ino, size)| {
            let x = self.push(
                k,
                EffectKind::Writeback(vec![Assign::Size {
                    ino,
                    size,
                    holes_from: None,
                }]),
                format!("w{k}"),
                &BTRFS_APPEND_AT_COMPLETION,
            );
            if let Some(m) = st.last_meta {
                self.edge(m, x, &BTRFS_APPEND_AT_COMPLETION);
            }
            x
        });
        let chunks = self.dirtied_chunks(facts);
        let with_data = facts
            .extends
            .is_some_and(|(ino, _)| btrfs_sole_writer(self.trace, k, ino))
            && self.btrfs_one_page(&chunks)
            && self.enabled(&BTRFS_APPEND_WITH_DATA);
        for (c, _) in chunks {
            let value = self.value_after(k, c);
            match size_effect {
                Some(x) if with_data => self.assign_blocks(x, c, value, &BTRFS_APPEND_WITH_DATA),
                _ => {
                    let d = self.push(
                        k,
                        EffectKind::Block { chunk: c, value },
                        format!("d{k}"),
                        &BTRFS_COW,
                    );
                    if let Some(m) = st.last_meta {
                        self.edge(m, d, &BTRFS_COW);
                    }
                }
            }
        }
    }

    /// Op `k`'s sync, if it asks for one.
    fn btrfs_sync(&mut self, st: &mut State, k: usize, facts: &OpFacts) {
        let Some(sync) = &facts.sync else { return };
        let (view, markers, logged) = (&st.view, &st.markers, &mut st.logged);
        match sync {
            // sync()/syncfs(): fs/btrfs/super.c btrfs_sync_fs waits for the ordered extents
            // (btrfs_wait_ordered_roots) and commits the transaction.
            SyncReq::All => {
                let mut v: Vec<usize> = st.last_meta.into_iter().collect();
                v.extend((0..self.p_effects.len()).filter(|&e| {
                    let eff = &self.p_effects[e];
                    eff.op <= k
                        && matches!(
                            eff.kind,
                            EffectKind::Writeback(_) | EffectKind::Block { .. }
                        )
                }));
                self.floor(k, v, &rules::SYNC_ALL);
            }
            SyncReq::File {
                ino,
                datasync,
                range,
            } => {
                let rule = if range.is_some() && facts.dirtied.iter().any(|d| d.ino == *ino) {
                    &rules::POSIX_OSYNC
                } else if *datasync {
                    &BTRFS_FDATASYNC
                } else {
                    &BTRFS_FSYNC
                };
                self.btrfs_fsync_file(k, *ino, rule, view, markers, logged);
            }
            SyncReq::Msync { ino, .. } => {
                self.btrfs_fsync_file(k, *ino, &BTRFS_MSYNC, view, markers, logged);
            }
            SyncReq::Dir { ino, .. } => {
                self.btrfs_fsync_dir(k, *ino, view, markers, logged);
            }
        }
    }

    /// Whether `chunks` lie in one page: written back, they form one ordered extent.
    fn btrfs_one_page(&self, chunks: &[(usize, Ino)]) -> bool {
        let ends = chunks.iter().map(|&(c, _)| {
            let ch = &self.layout.chunks[c];
            (ch.start() / BLOCK, (ch.end() - 1) / BLOCK)
        });
        let (lo, hi) = ends.fold((u64::MAX, 0), |(lo, hi), (s, e)| (lo.min(s), hi.max(e)));
        !chunks.is_empty() && lo == hi
    }

    /// Removes effects (unused markers) and renumbers the rest, their edges and floors.
    fn btrfs_remove(&mut self, gone: &BTreeSet<usize>) {
        if gone.is_empty() {
            return;
        }
        let mut new_index = Vec::with_capacity(self.p_effects.len());
        let mut n = 0;
        for e in 0..self.p_effects.len() {
            new_index.push(n);
            if !gone.contains(&e) {
                n += 1;
            }
        }
        let effects = std::mem::take(&mut self.p_effects);
        self.p_effects = effects
            .into_iter()
            .enumerate()
            .filter(|(e, _)| !gone.contains(e))
            .map(|(_, eff)| eff)
            .collect();
        for edge in &mut self.edges {
            edge.from = new_index[edge.from];
            edge.to = new_index[edge.to];
        }
        for f in &mut self.floors {
            for e in &mut f.effects {
                *e = new_index[*e];
            }
        }
    }
}

/// Whether the completion of op `k`'s own ordered extent is the only one that can write the
/// size `k` set on file `ino` (with NO_HOLES every completion writes the in-memory i_size): no
/// earlier write of the file since the last sync() (setup's writes are complete), which could
/// complete after `k`, and no later write before the file's size changes again (a completion
/// after a later change writes that size instead).
fn btrfs_sole_writer(trace: &crate::volatile::Trace, k: usize, ino: Ino) -> bool {
    let writes = |f: &OpFacts| f.dirtied.iter().any(|d| d.ino == ino);
    let since = (1..k)
        .rev()
        .find(|&j| matches!(trace.facts(OpNo::new(j)).sync, Some(SyncReq::All)))
        .unwrap_or(0);
    if (since + 1..k).any(|j| writes(trace.facts(OpNo::new(j)))) {
        return false;
    }
    for f in &trace.ops[k..] {
        let resizes = f.extends.is_some_and(|(i, _)| i == ino)
            || f.assigns
                .iter()
                .any(|a| matches!(a, Assign::Size { ino: i, .. } if *i == ino));
        if resizes {
            return true;
        }
        if writes(f) {
            return false;
        }
    }
    true
}
