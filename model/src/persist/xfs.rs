//! The `xfs` model: XFS with its defaults (delayed allocation, the delayed-logging CIL; docs/SEMANTICS.md
//! section 4 "XFS", with sections 1-3 and 7): the log's metadata prefix, writeback-time allocation
//! into unwritten extents, the on-disk size of an append logged at I/O completion, and what fsync,
//! fdatasync, msync and a directory fsync force. Every rule below names the kernel function it
//! was checked against (torvalds/linux, 6.x snapshots unless said otherwise).

use super::{Builder, EffectKind, FsModel, ModelSpec, RuleUse};
use crate::rules::{self, Rule};
use crate::volatile::{Assign, Ino, OpFacts, SyncReq, BLOCK};
use std::collections::{BTreeMap, BTreeSet};

crate::rules! {
    RULES;
    // fs/xfs/xfs_log_cil.c xlog_cil_order_write ("Ensure that the order of log writes follows
    // checkpoint sequence order"), xlog_cil_force_seq; fs/xfs/xfs_log.c xlog_write_iclog
    // (REQ_PREFLUSH on commit iclogs). The CIL aggregates transactions into checkpoints; their
    // commit records are written in sequence order and a log force waits for every earlier
    // checkpoint, so the durable metadata is a prefix (docs/SEMANTICS.md X2, its [U] settled here).
    XFS_LOG_PREFIX = "xfs.log-prefix", Implementation,
        "Each op's metadata is one transaction; the CIL groups transactions into checkpoints whose commit records are written in sequence order, and a log force waits for every earlier checkpoint: the durable metadata is always a prefix of the ops' metadata.",
        "fs/xfs/xfs_log_cil.c xlog_cil_order_write, xlog_cil_force_seq; fs/xfs/xfs_log.c xlog_write_iclog (REQ_PREFLUSH); Documentation/filesystems/xfs-delayed-logging-design.rst (\"strictly order the commit records\"); docs/SEMANTICS.md X2";
    // fs/xfs/libxfs/xfs_bmap.c xfs_bmapi_convert_one_delalloc: "New data fork extents must be
    // mapped in as unwritten and converted to real extents after the write succeeds"
    // (bma.flags = XFS_BMAPI_PREALLOC); fs/xfs/xfs_aops.c xfs_end_ioend ->
    // xfs_iomap_write_unwritten after the data I/O. The conversion is a transaction logged after
    // the op that first dirtied the block.
    XFS_DELALLOC = "xfs.delalloc", Implementation,
        "Delayed allocation: writes and mmap stores only reserve blocks; writeback allocates them as unwritten extents and converts them to written at I/O completion, in a transaction after the op that first dirtied them: a new block's data persists only with the metadata issued before that op, and unordered with later ops.",
        "fs/xfs/libxfs/xfs_bmap.c xfs_bmapi_convert_one_delalloc (XFS_BMAPI_PREALLOC); fs/xfs/xfs_aops.c xfs_end_ioend -> xfs_iomap_write_unwritten; fs/xfs/xfs_iomap.c xfs_buffered_write_iomap_begin (delalloc reservation, page_mkwrite too); docs/SEMANTICS.md X1, M5";
    // The same functions: a block is visible only once its unwritten extent is converted, which
    // happens after its data is written. Descriptive: it is why the model has no stale data.
    XFS_UNWRITTEN = "xfs.unwritten-extents", Implementation,
        "A newly allocated block stays an unwritten extent (reads as zeros) until the I/O that wrote its data completes and converts it: after a crash it holds zeros or its data, never stale bytes.",
        "fs/xfs/libxfs/xfs_bmap.c xfs_bmapi_convert_one_delalloc (\"to avoid exposing stale disk contents if we crash\"); fs/xfs/xfs_aops.c xfs_end_ioend; docs/SEMANTICS.md X1";
    XFS_OVERWRITE = "xfs.overwrite-unordered", Implementation,
        "Overwrites of blocks allocated before crash point 0 need no transaction: their data may persist before or after any metadata.",
        "fs/xfs/xfs_aops.c xfs_end_ioend (no conversion or size update for an overwrite inside EOF); docs/SEMANTICS.md B2, section 6 (ALICE: \"overwrite -> any op\" fails on xfs)";
    // fs/xfs/xfs_aops.c xfs_end_ioend: `if (!error && xfs_ioend_is_append(ioend)) error =
    // xfs_setfilesize(ip, offset, size);` ("Update on-disk file size now that data has been
    // written to disk"). i_disk_size moves only there (and in setattr): logging the inode core
    // for anything else logs i_disk_size, not i_size.
    XFS_SIZE_AT_COMPLETION = "xfs.size-at-io-completion", Implementation,
        "An append's on-disk size (i_disk_size) is logged when its I/O completes (xfs_setfilesize), in a transaction after the op and unordered with later ops; ioends complete in any order, so a durable size can cover blocks of the append (or of an earlier one) that are still unwritten and read as zeros.",
        "fs/xfs/xfs_aops.c xfs_end_ioend, xfs_setfilesize, xfs_ioend_is_append; fs/xfs/xfs_inode.h xfs_new_eof; docs/SEMANTICS.md X4";
    // The same function, plus fs/iomap/buffered-io.c iomap_writepage_handle_eof: an ioend
    // covers only blocks inside EOF when it is submitted, so the ioend that moves i_disk_size to
    // an append's end was submitted after the append and holds its last block. The model can say
    // so only for a last block that the append itself started and that is its own chunk (a chunk
    // of several blocks is all or nothing; a block shared with an earlier write may have been in
    // flight with the earlier content).
    XFS_SIZE_AFTER_DATA = "xfs.size-after-data", Implementation,
        "The size update is logged only after the ioend's data is written (\"no NULL files\"): when an append's on-disk size is durable, the block holding its last byte holds its data. Only that block: the model applies this to a last block the append started, and other blocks of a multi-block append can still read as zeros.",
        "fs/xfs/xfs_aops.c xfs_end_ioend (xfs_setfilesize after the data I/O); fs/iomap/buffered-io.c iomap_writepage_handle_eof (an ioend stops at EOF); fs/xfs/xfs_log.c xlog_write_iclog (REQ_PREFLUSH: data completed before the log write is on media); docs/SEMANTICS.md X4, B1";
    // fs/xfs/xfs_iops.c xfs_setattr_size: `ip->i_disk_size = newsize; xfs_trans_log_inode(tp,
    // ip, XFS_ILOG_CORE);` for growth and shrink, in the truncate's own transaction.
    XFS_SETATTR_SIZE = "xfs.setattr-size-logged", Implementation,
        "ftruncate (and O_TRUNC) logs the new on-disk size in its own transaction, growing or shrinking: an extended file can persist at full size with holes (zeros) before any data written into it.",
        "fs/xfs/xfs_iops.c xfs_setattr_size (i_disk_size = newsize, XFS_ILOG_CORE); docs/SEMANTICS.md X4, E11";
    // fs/xfs/xfs_file.c xfs_file_fsync -> file_write_and_wait_range, xfs_fsync_flush_log ->
    // xfs_fsync_seq -> xfs_log_force_seq(ili_commit_seq). fs/xfs/xfs_inode.c xfs_rename:
    // xfs_trans_ichgtime(tp, src_ip, XFS_ICHGTIME_CHG); xfs_trans_log_inode(tp, src_ip,
    // XFS_ILOG_CORE) in the rename transaction (docs/SEMANTICS.md X1, X3).
    XFS_FSYNC = "xfs.fsync-log-force", Implementation,
        "fsync(file) writes and waits on the file's dirty pages, then forces the log up to the inode's last commit sequence (ili_commit_seq) and, with it, every earlier checkpoint: other files' creates and renames persist too. xfs_rename logs the renamed inode in the rename's transaction, so fsync of a renamed file persists the rename. The pages it writes back log their conversion and size after the ops that dirtied them, and the force covers those too, so the prefix reaches those ops (the edges of xfs.delalloc and xfs.size-at-io-completion). A write's mtime update is a timestamp-only transaction that a coarse clock can skip, so the model counts only the inode's last non-timestamp change.",
        "fs/xfs/xfs_file.c xfs_file_fsync, xfs_fsync_flush_log, xfs_fsync_seq; fs/xfs/xfs_inode.c xfs_rename (xfs_trans_log_inode(src_ip, XFS_ILOG_CORE)); fs/xfs/xfs_iops.c xfs_vn_update_time (XFS_ILOG_TIMESTAMP); docs/SEMANTICS.md X1, X3";
    // fs/xfs/xfs_file.c xfs_fsync_seq: `if (datasync && !(ip->i_itemp->ili_fsync_fields &
    // ~XFS_ILOG_TIMESTAMP)) return 0;` ili_fsync_fields collects the flags of every
    // xfs_trans_log_inode since the last sync (fs/xfs/libxfs/xfs_trans_inode.c). A rename, link,
    // unlink or create logs XFS_ILOG_CORE for the inode: it is not timestamp-only. The 2025 rework
    // (ili_datasync_seq, set by xfs_inode_item_committing when the flags include more than
    // XFS_ILOG_TIMESTAMP) gives the same answer. mm/msync.c: msync(MS_SYNC) is
    // vfs_fsync_range(datasync=1) over the mapped range.
    XFS_FDATASYNC = "xfs.fdatasync-log-force", Implementation,
        "fdatasync, msync(MS_SYNC) and O_DSYNC skip the log force only if the inode has logged nothing but timestamps since its last sync; a rename, link, unlink, create or size change logs the inode core (XFS_ILOG_CORE), so unlike ext4 an fdatasync after a rename persists the rename. The floor is the data (with its writeback's transactions, as for fsync) plus the log prefix up to the inode's last non-timestamp change.",
        "fs/xfs/xfs_file.c xfs_fsync_seq (ili_fsync_fields & ~XFS_ILOG_TIMESTAMP), xfs_file_fsync; fs/xfs/libxfs/xfs_trans_inode.c xfs_trans_log_inode; fs/xfs/xfs_inode.c xfs_rename; mm/msync.c (datasync=1); docs/SEMANTICS.md X1, X3, M1, B6r";
    // fs/xfs/xfs_file.c xfs_file_fsync: file_write_and_wait_range(file, start, end) waits for
    // the range's ioends; fs/xfs/xfs_aops.c xfs_end_ioend: an ioend past i_disk_size
    // (xfs_ioend_is_append) runs xfs_setfilesize(ip, offset, size) before the pages' writeback
    // ends, which sets i_disk_size = xfs_new_eof(ip, offset + size) (at most i_size) and logs the
    // inode core (XFS_ILOG_CORE), so xfs_fsync_seq's datasync check does not skip the log force.
    XFS_MSYNC_SIZE = "xfs.msync-range-size", Implementation,
        "msync(MS_SYNC) writes back and waits on the range: the I/O completion of its new blocks logs the on-disk size up to the end of the range's last new page (capped at the file size) in a transaction that logs the inode core, and the log force that follows makes it durable. (An append's size at completion is split there, since only the range is written back.)",
        "fs/xfs/xfs_aops.c xfs_end_ioend, xfs_setfilesize, xfs_ioend_is_append; fs/xfs/xfs_inode.h xfs_new_eof; fs/xfs/xfs_file.c xfs_file_fsync (file_write_and_wait_range), xfs_fsync_seq; mm/msync.c vfs_fsync_range(datasync=1); docs/SEMANTICS.md X4, M1";
    // fs/xfs/xfs_file.c xfs_dir_fsync -> xfs_log_force_inode: a log force up to the directory
    // inode's ili_commit_seq, datasync or not. Not a full commit as on ext4.
    XFS_FSYNC_DIR = "xfs.fsync-dir-log-force", Implementation,
        "fsync or fdatasync of a directory forces the log up to the directory's last change (its ili_commit_seq): every metadata change up to the last create, rename, link or unlink in it is durable, but not later ops elsewhere (no full commit as on ext4; a CIL push between them can separate them).",
        "fs/xfs/xfs_file.c xfs_dir_fsync; fs/xfs/xfs_inode.c xfs_log_force_inode; docs/SEMANTICS.md X3";
    // fs/xfs/xfs_inode.c xfs_rename: no flush of the source's delayed allocation (no
    // auto_da_alloc counterpart); checked by absence in every snapshot read.
    XFS_NO_RENAME_FLUSH = "xfs.no-rename-heuristic", Implementation,
        "A rename over an existing file starts no writeback of the source (no auto_da_alloc): the rename can persist before the new file's size and data, leaving it empty or short.",
        "fs/xfs/xfs_inode.c xfs_rename (no filemap_flush; by absence); docs/SEMANTICS.md X4";
    // fs/xfs/xfs_iops.c xfs_setattr_size: `if (newsize <= oldsize) { ... xfs_iflags_set(ip,
    // XFS_ITRUNCATED); }`; fs/xfs/xfs_file.c xfs_file_release: `if
    // (xfs_iflags_test_and_clear(ip, XFS_ITRUNCATED)) { ... if (ip->i_delayed_blks > 0)
    // filemap_flush(inode->i_mapping); }`. filemap_flush starts writeback and does not wait;
    // the conversion and size are logged at I/O completion, so unlike ext4's
    // auto_da_alloc close nothing is ordered before later ops.
    XFS_TRUNCATE_CLOSE = "xfs.truncate-close-flush", Implementation,
        "After a truncate down (XFS_ITRUNCATED), releasing an open file description starts writeback of the delayed blocks (filemap_flush, no wait). XFS logs the new blocks' conversion and the size at I/O completion, not at submission, so this only shortens the window: nothing is ordered before later ops (unlike ext4.auto-da-alloc-close).",
        "fs/xfs/xfs_iops.c xfs_setattr_size (XFS_ITRUNCATED when newsize <= oldsize); fs/xfs/xfs_file.c xfs_file_release (filemap_flush); fs/xfs/xfs_aops.c xfs_end_ioend; docs/SEMANTICS.md X4";
}

/// The `xfs` model.
pub struct Xfs;

impl FsModel for Xfs {
    fn name(&self) -> &'static str {
        "xfs"
    }
    fn default_model(&self) -> ModelSpec {
        ModelSpec::Xfs
    }
    fn splits_last_block(&self) -> bool {
        true // xfs.size-after-data: the on-disk size follows the last block's data
    }
    fn rules(&self) -> &'static [RuleUse] {
        const USES: &[RuleUse] = &[
            RuleUse::always(&rules::SETUP_DURABLE),
            RuleUse::always(&rules::OP_ATOMIC),
            RuleUse::always(&rules::MS_ASYNC_NOOP),
            RuleUse::always(&rules::SYNC_ALL),
            RuleUse::always(&rules::POSIX_OSYNC),
            RuleUse::always(&XFS_LOG_PREFIX),
            RuleUse::always(&XFS_DELALLOC),
            RuleUse::always(&XFS_UNWRITTEN),
            RuleUse::always(&XFS_OVERWRITE),
            RuleUse::always(&XFS_SIZE_AT_COMPLETION),
            RuleUse::always(&XFS_SIZE_AFTER_DATA),
            RuleUse::always(&XFS_SETATTR_SIZE),
            RuleUse::always(&XFS_FSYNC),
            RuleUse::always(&XFS_FDATASYNC),
            RuleUse::always(&XFS_MSYNC_SIZE),
            RuleUse::always(&XFS_FSYNC_DIR),
            RuleUse::always(&XFS_NO_RENAME_FLUSH),
            RuleUse::always(&XFS_TRUNCATE_CLOSE),
        ];
        USES
    }
    fn descriptive(&self) -> &'static [(&'static Rule, &'static str)] {
        &[
            (
                &XFS_UNWRITTEN,
                "it is an absence: no new block becomes visible with stale bytes (no stale value is made); the `# expect xfs:` lines of the append programs show it",
            ),
            (
                &XFS_OVERWRITE,
                "it is an absence: an overwrite gets no edge; overwrite-order and alice-o1 show it",
            ),
            (
                &XFS_SETATTR_SIZE,
                "it is the content of an op's own transaction: ftruncate's size is in its m effect; fdatasync-size and otrunc-replace show it",
            ),
            (
                &XFS_NO_RENAME_FLUSH,
                "it is an absence: a rename over a file orders nothing; the `# expect xfs:` lines of replace-rename-nofsync and alice-o2 show it",
            ),
            (
                &XFS_TRUNCATE_CLOSE,
                "it is an absence: the flush at close after a truncate down orders nothing; the `# expect xfs:` lines of otrunc-replace show it",
            ),
        ]
    }
    fn build(&self, _model: &ModelSpec, b: &mut Builder<'_>) {
        b.xfs();
    }
}

/// What the xfs builder keeps between ops.
struct XfsState {
    /// meta_upto[k]: the latest metadata effect issued at or before op k (the log prefix).
    meta_upto: Vec<Option<usize>>,
    last_meta: Option<usize>,
    /// Per block (inode, block index), the op that first dirtied it since it was last free: its
    /// delayed allocation is converted (made visible) by a transaction after that op. Per
    /// block, not per chunk: the sectors of one block are allocated together (atomic=sector).
    first_dirty: BTreeMap<(Ino, u64), usize>,
    /// Each inode's append sizes (`w` effects).
    sizes_at_completion: BTreeMap<Ino, Vec<usize>>,
    /// Each inode's last op that logged its core (XFS_ILOG_CORE: creation, size, link count,
    /// rename, directory entries); a write's timestamp-only update is not counted.
    core_logged: BTreeMap<Ino, usize>,
    /// Each file's size as a running system sees it (does an append start a new block?).
    size: BTreeMap<Ino, u64>,
    /// Part-way sizes the program's msyncs need, per extending op (xfs.msync-range-size).
    msync_steps: BTreeMap<usize, BTreeSet<(Ino, u64)>>,
}

impl Builder<'_> {
    fn xfs(&mut self) {
        let trace = self.trace;
        let mut st = XfsState {
            meta_upto: vec![None; trace.ops.len() + 1],
            last_meta: None,
            first_dirty: BTreeMap::new(),
            sizes_at_completion: BTreeMap::new(),
            core_logged: BTreeMap::new(),
            size: trace
                .initial
                .inodes
                .iter()
                .map(|(i, (_, s, _))| (*i, *s))
                .collect(),
            msync_steps: if self.enabled(&XFS_MSYNC_SIZE) {
                self.msync_size_steps()
            } else {
                BTreeMap::new()
            },
        };
        for (i, facts) in trace.ops.iter().enumerate() {
            let k = i + 1;
            self.xfs_meta(&mut st, k, facts);
            st.meta_upto[k] = st.last_meta;
            self.xfs_data(&mut st, k, facts);
            if let Some((v, rule)) = self.xfs_floor(&st, k, facts) {
                self.floor(k, v, rule);
            }
            if let Some(&SyncReq::Msync { ino, start, end }) = facts.sync.as_ref() {
                let need = self.msync_size_need(ino, k, start, end);
                if let Some(e) = need.and_then(|n| self.size_effect(n.op, ino, n.size, true)) {
                    self.floor(k, vec![e], &XFS_MSYNC_SIZE);
                }
            }
        }
    }

    /// Syscall-time metadata: one transaction per op, chained to the previous one
    /// (xfs.log-prefix); ftruncate's size is in it (xfs.setattr-size-logged).
    fn xfs_meta(&mut self, st: &mut XfsState, k: usize, facts: &OpFacts) {
        if facts.assigns.is_empty() {
            return;
        }
        let e = self.push(
            k,
            EffectKind::Meta(facts.assigns.clone()),
            format!("m{k}"),
            &XFS_LOG_PREFIX,
        );
        if let Some(prev) = st.last_meta {
            self.edge(prev, e, &XFS_LOG_PREFIX);
        }
        st.last_meta = Some(e);
        for &ino in &facts.touched {
            st.core_logged.insert(ino, k);
        }
        for a in &facts.assigns {
            match a {
                Assign::Init { ino, .. } => {
                    st.size.insert(*ino, 0);
                }
                Assign::Size {
                    ino,
                    size: s,
                    holes_from,
                } => {
                    st.size.insert(*ino, *s);
                    // A truncate frees blocks: later writes to them allocate anew.
                    if let Some(h) = holes_from {
                        let (ino, h) = (*ino, *h);
                        st.first_dirty
                            .retain(|(i, b), _| !(*i == ino && *b * BLOCK >= h * BLOCK));
                    }
                }
                Assign::Entry { .. } => {}
            }
        }
    }

    /// Data: block versions and an append's on-disk size.
    fn xfs_data(&mut self, st: &mut XfsState, k: usize, facts: &OpFacts) {
        // New blocks are converted after the op that first dirtied them (xfs.delalloc);
        // overwrites of blocks on disk at crash point 0 are unordered (xfs.overwrite-unordered:
        // no edge).
        for (e, c, ino) in self.block_effects(k, facts, &XFS_OVERWRITE) {
            if self.xfs_on_disk_before(ino, c, k) {
                continue;
            }
            let first = *st.first_dirty.entry(self.block_of(c)).or_insert(k);
            self.order_after(st.meta_upto[first], e, &XFS_DELALLOC);
        }
        // An append's on-disk size is logged at I/O completion (xfs.size-at-io-completion),
        // after the data of its ioend (xfs.size-after-data).
        let Some((ino, new)) = facts.extends else {
            return;
        };
        let old = st.size.insert(ino, new).unwrap_or(0);
        // Part-way sizes an msync of a range of the append needs (xfs.msync-range-size): a
        // chain of sizes at completion before the whole one. They carry no block: a part-way
        // ioend's last block is in the msync's range, whose data its floor holds anyway.
        let e = self.writeback_sizes(
            k,
            ino,
            new,
            &st.msync_steps,
            st.meta_upto[k],
            &XFS_SIZE_AT_COMPLETION,
            &XFS_MSYNC_SIZE,
        );
        let last_block = (new - 1) / BLOCK * BLOCK;
        if self.enabled(&XFS_SIZE_AFTER_DATA) && last_block >= old {
            let last = self.layout.chunks_in(ino, new - 1, new).next();
            if let Some(c) = last.filter(|&c| self.layout.chunks[c].blocks == 1) {
                let v = self.value_after(k, c);
                self.assign_blocks(e, c, v, &XFS_SIZE_AFTER_DATA);
            }
        }
        st.sizes_at_completion.entry(ino).or_default().push(e);
    }

    /// The floor of op `k`'s sync, if it asks for one. A file sync's floor is its data (new
    /// blocks, append sizes) and the log prefix up to the inode's last core change; the data's
    /// own edges (xfs.delalloc, xfs.size-at-io-completion) extend the prefix to the ops that
    /// dirtied it, which is what the writeback's transactions, covered by the log force, make
    /// durable.
    fn xfs_floor(
        &self,
        st: &XfsState,
        k: usize,
        facts: &OpFacts,
    ) -> Option<(Vec<usize>, &'static Rule)> {
        let prefix = |ino: &Ino| st.core_logged.get(ino).and_then(|&j| st.meta_upto[j]);
        let (mut v, rule) = match facts.sync.as_ref()? {
            SyncReq::All => (self.all_upto(k), &rules::SYNC_ALL),
            SyncReq::Dir { ino, .. } => (prefix(ino).into_iter().collect(), &XFS_FSYNC_DIR),
            SyncReq::File {
                ino,
                datasync,
                range,
            } => {
                let mut v = self.block_effects_of(*ino, k, *range);
                // A whole-file sync writes back every append; an O_SYNC write's ranged sync
                // only its own.
                let sizes = st.sizes_at_completion.get(ino).into_iter().flatten();
                v.extend(
                    sizes
                        .copied()
                        .filter(|&w| range.is_none() || self.p_effects[w].op == k),
                );
                v.extend(prefix(ino));
                let rule = if range.is_some() && facts.dirtied.iter().any(|d| d.ino == *ino) {
                    &rules::POSIX_OSYNC
                } else if *datasync {
                    &XFS_FDATASYNC
                } else {
                    &XFS_FSYNC
                };
                (v, rule)
            }
            SyncReq::Msync { ino, start, end } => {
                let mut v = self.block_effects_of(*ino, k, Some((*start, *end)));
                v.extend(prefix(ino));
                (v, &XFS_FDATASYNC)
            }
        };
        v.sort();
        v.dedup();
        Some((v, rule))
    }

    /// Whether chunk `c` of `ino` was allocated on disk at crash point 0 and not freed before op
    /// `upto`: writing it again is an overwrite, with no transaction.
    fn xfs_on_disk_before(&self, ino: Ino, c: usize, upto: usize) -> bool {
        let ch = &self.layout.chunks[c];
        let on_disk = self.allocated_initially(c);
        on_disk
            && !self.trace.ops[..upto].iter().any(|f| {
                f.assigns.iter().any(|a| {
                    matches!(a, Assign::Size { ino: i, holes_from: Some(h), .. }
                        if *i == ino && ch.start() >= *h * BLOCK)
                })
            })
    }
}
