//! The persistence rules, as data: each rule has an id, the model it belongs to, what it says and
//! where it comes from. Edges and floors built in [`crate::persist`] carry the id of the rule that
//! made them, so every answer can say which rule (and which source) allowed a crash state.
//!
//! Tags follow SEMANTICS.md: POSIX / man-page text, documented file-system behaviour, or the
//! implementation behaviour of the cited kernel code (checked in the kernel source), or an
//! assumption of the model stated as such.

use serde::Serialize;
use std::fmt;

/// What a rule rests on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Basis {
    /// Required by POSIX or the Linux man pages.
    Posix,
    /// Documented by the file system (kernel Documentation/).
    Documented,
    /// Behaviour of the cited kernel code, read in the source.
    Implementation,
    /// An assumption the model makes (stated, to be checked by realfs).
    Assumption,
}

impl fmt::Display for Basis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Basis::Posix => "required by POSIX",
            Basis::Documented => "documented",
            Basis::Implementation => "implementation behaviour",
            Basis::Assumption => "model assumption",
        })
    }
}

/// One persistence rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Rule {
    pub id: &'static str,
    pub summary: &'static str,
    pub source: &'static str,
    pub basis: Basis,
}

/// Defines rules as constants and a list of them: `rules! { LIST; NAME = "id", Basis, "summary",
/// "source"; ... }`. The file-system modules under `persist/` define their own lists with it.
#[macro_export]
macro_rules! rules {
    ($list:ident; $($name:ident = $id:literal, $basis:ident, $summary:literal, $source:literal;)*) => {
        $(pub const $name: $crate::rules::Rule = $crate::rules::Rule {
            id: $id, summary: $summary, source: $source, basis: $crate::rules::Basis::$basis,
        };)*
        /// The rules defined here.
        pub const $list: &[$crate::rules::Rule] = &[$($name),*];
    };
}

rules! {
    ALL;
    // ---- shared by every model ----
    SETUP_DURABLE = "setup-durable", Assumption,
        "The state after the setup block is durable before crash point 0.",
        "unplug program semantics (DESIGN.md: Concepts)";
    OP_ATOMIC = "op-atomic", Assumption,
        "Each op's metadata change reaches disk whole or not at all (a rename is never half done).",
        "SEMANTICS.md P7 (assumption, not POSIX); journaled by ext4 in one handle (E2)";
    INODE_BEFORE_NAME = "inode-before-name", Assumption,
        "A directory entry (or a child of a new directory) is durable only if the inode it names is: recovery never exposes a name for an unallocated inode.",
        "fsck/journal consistency; SEMANTICS.md P7 (assumption)";
    SYNC_ALL = "sync-all", Posix,
        "sync() and syncfs() return after everything issued before them is durable (Linux waits).",
        "sync(2) man page; SEMANTICS.md P5";
    MS_ASYNC_NOOP = "ms-async-noop", Implementation,
        "msync(MS_ASYNC) and MS_INVALIDATE persist nothing.",
        "mm/msync.c SYSCALL_DEFINE3(msync); SEMANTICS.md M3, M4";

    SEQ_PREFIX = "seq.prefix", Assumption,
        "seq: a crash leaves the state after some prefix of the ops, each op whole (its metadata and data together); a completed sync makes every op before it durable. The strongest model: every file system's crash states should include these.",
        "sequential crash consistency (e.g. Bornholt et al., Ferrite, ASPLOS 2016); issue 3";

    TORN_SECTOR = "torn-sector", Assumption,
        "atomic=sector: a write reaches the disk in 512-byte sectors, each of which holds its old or its new content after a crash; the block layer promises no more.",
        "Documentation/block/writeback_cache_control.rst; SEMANTICS.md B3 (sector atomicity is a device property ALICE relies on)";
    TORN_GARBAGE = "torn-garbage", Assumption,
        "garbage: a unit with a write not yet durable may hold garbage after a crash (the write in flight when the power failed); over-approximated as any such unit.",
        "SEMANTICS.md B3 (the stricter mode); ALICE sector-garbage model";

    // ---- posix ----
    POSIX_UNORDERED = "posix.unordered", Posix,
        "Nothing is ordered except by syncs: any subset of un-synced effects may be durable.",
        "POSIX fsync(), rename() say nothing of crashes; SEMANTICS.md P7";
    POSIX_FSYNC_FILE = "posix.fsync-file", Posix,
        "fsync(file) makes the file's data and attributes (size, its existence as an inode) durable, not its directory entry.",
        "POSIX fsync(); fsync(2) man page; SEMANTICS.md P1, P2";
    POSIX_FDATASYNC = "posix.fdatasync", Posix,
        "fdatasync(file) makes the data and the metadata needed to read it back (size, the inode) durable.",
        "fsync(2) man page; SEMANTICS.md P3";
    POSIX_MSYNC = "posix.msync-range", Posix,
        "msync(MS_SYNC) is a ranged fdatasync: the mapped range's data, plus the file's size unless the file has covered the whole range since crash point 0 (then no size is needed to read the range back, and an earlier extension's size is not synced).",
        "msync(3p); mm/msync.c vfs_fsync_range(datasync=1); SEMANTICS.md P4, M1";
    POSIX_FSYNC_DIR = "posix.fsync-dir", Posix,
        "fsync(dir) makes the directory's entries (creates, renames, unlinks in it) durable.",
        "fsync(2) man page; SEMANTICS.md P2";
    POSIX_OSYNC = "posix.o-sync", Implementation,
        "A write through an O_SYNC (O_DSYNC) handle is followed by an fsync (fdatasync) of the range written.",
        "include/linux/fs.h generic_write_sync -> vfs_fsync_range; SEMANTICS.md P6";

    // ---- ext4 ----
    EXT4_JOURNAL_PREFIX = "ext4.journal-prefix", Implementation,
        "Journal transactions commit in order, so the durable metadata is always a prefix of the ops' metadata.",
        "fs/jbd2/journal.c jbd2_log_wait_commit; Documentation/filesystems/ext4/journal.rst; SEMANTICS.md E2";
    EXT4_DELALLOC = "ext4.delalloc", Implementation,
        "With delalloc, blocks are allocated at writeback, in a transaction after the op that dirtied them and unordered with later ops: data (and an append's on-disk size) may persist after later metadata, or before it.",
        "fs/ext4/inode.c ext4_da_get_block_prep, ext4_writepages, ext4_da_do_write_end; SEMANTICS.md E8, M6, E11";
    EXT4_ORDERED = "ext4.ordered", Documented,
        "data=ordered: a newly allocated block's data is written before the metadata that exposes it commits, so a visible block holds its data, never stale bytes.",
        "Documentation/admin-guide/ext4.rst data=ordered; fs/ext4/inode.c ext4_map_blocks; SEMANTICS.md E1, E3, E4";
    EXT4_OVERWRITE = "ext4.overwrite-unordered", Implementation,
        "Overwrites of blocks allocated before crash point 0 are not on any ordered list: they may persist before or after any metadata.",
        "fs/ext4/inode.c ext4_map_blocks (only new blocks go on the ordered list); SEMANTICS.md E4";
    EXT4_FSYNC = "ext4.fsync-commits-transaction", Implementation,
        "fsync(file) writes the file's dirty pages and commits the transaction that last changed the inode (i_sync_tid), and with it every earlier one: other files' renames and creates persist too.",
        "fs/ext4/fsync.c ext4_sync_file, ext4_fsync_journal; fs/ext4/ext4_jbd2.h ext4_update_inode_fsync_trans; SEMANTICS.md E5, E7";
    EXT4_FSYNC_ALLOC = "ext4.fsync-allocates", Implementation,
        "Delayed-allocation blocks are allocated when they are written back (by the sync, or earlier by background writeback) and the allocation moves the inode's tids; the sync commits that transaction, so all metadata issued up to the op that first dirtied the blocks becomes durable, even if the inode had nothing else to commit. (Carried by the ext4.delalloc edges of the data the sync forces; not up to the sync itself, since writeback may have allocated earlier.)",
        "fs/ext4/fsync.c ext4_sync_file (file_write_and_wait_range first); fs/ext4/extents.c (allocation sets i_datasync_tid); SEMANTICS.md E5, E7";
    EXT4_FDATASYNC = "ext4.fdatasync-datasync-tid", Implementation,
        "fdatasync and msync(MS_SYNC) commit only up to i_datasync_tid (creation, size changes, allocation): a later rename, link or unlink of the file is not made durable.",
        "fs/ext4/fsync.c ext4_fsync_journal (datasync ? i_datasync_tid : i_sync_tid); fs/ext4/ialloc.c __ext4_new_inode sets both tids; mm/msync.c datasync=1; SEMANTICS.md E7, E14, M2";
    EXT4_FSYNC_DIR = "ext4.fsync-dir-full-commit", Implementation,
        "fsync or fdatasync of a directory forces a full journal commit: every metadata change issued before it is durable.",
        "fs/ext4/fsync.c ext4_fsync_journal (non-regular inode -> ext4_force_commit); SEMANTICS.md E5";
    EXT4_DATA_JOURNAL = "ext4.data-journal", Documented,
        "data=journal: data goes through the journal with the metadata, in the transaction of the op that wrote it, so data and metadata persist together, in op order (delayed allocation is off).",
        "Documentation/admin-guide/ext4.rst data=journal; fs/ext4/inode.c ext4_journalled_write_end, ext4_page_mkwrite (journals the page's buffers); SEMANTICS.md E1, M6";
    EXT4_NODELALLOC_ORDERED = "ext4.nodelalloc-ordered", Implementation,
        "nodelalloc with data=ordered: blocks are allocated by the write itself (written extents), the inode goes on the ordered list of that transaction, and the commit waits for the data: a new block becomes visible with its data, together with the op's metadata (size included).",
        "fs/ext4/inode.c ext4_write_begin/ext4_get_block and ext4_map_blocks (ordered list for new, written blocks); ext4_should_dioread_nolock is off without delalloc (fs/ext4/ext4_jbd2.h); SEMANTICS.md E4, E9";
    EXT4_PAGE_HANDLES = "ext4.page-handles", Implementation,
        "Without delalloc, write() and page faults take one journal handle per page: a write of several pages is not atomic; its on-disk size grows a page at a time, and its pages may persist separately (modelled as in any order after the metadata before the write: more states than the kernel's prefix of pages).",
        "fs/ext4/inode.c ext4_write_begin (ext4_journal_start per page, EXT4_HT_WRITE_PAGE), ext4_write_end (i_disksize per page), ext4_page_mkwrite; generic_perform_write; ALICE multi-block append";
    EXT4_WRITEBACK_STALE = "ext4.writeback-stale", Documented,
        "data=writeback with nodelalloc: the write's allocation commits with its metadata but its data is not ordered before it, so after a crash a newly allocated block can show stale bytes from another file.",
        "Documentation/admin-guide/ext4.rst data=writeback; fs/ext4/ext4_jbd2.h ext4_should_dioread_nolock (no unwritten extents without delalloc); SEMANTICS.md E1, E4, E9";
    EXT4_WRITEBACK_DELALLOC = "ext4.writeback-delalloc-unwritten", Implementation,
        "data=writeback with delalloc: since 5.6 dioread_nolock is the default, so writeback allocates unwritten extents and converts them after the data is written: new blocks read as zeros or their data, never stale bytes (the documented stale-data risk needs nodelalloc).",
        "fs/ext4/ext4_jbd2.h ext4_should_dioread_nolock (DIOREAD_NOLOCK and DELALLOC, not data=journal); commit 244adf6426ee (dioread_nolock default, v5.6); SEMANTICS.md E8";
    EXT4_FAST_COMMIT = "ext4.fast-commit-same-guarantee", Implementation,
        "fast_commit changes no guarantee here: an fsync's fast commit writes everything queued since the last full commit (other files' creates and renames too), but the commit timer may empty that queue at any moment, so what an fsync guarantees is the same journal prefix as without it.",
        "fs/ext4/fast_commit.c ext4_fc_commit, ext4_fc_perform_commit; fs/ext4/fsync.c ext4_fsync_journal; SEMANTICS.md E13";
    EXT4_AUTO_DA_ALLOC_RENAME = "ext4.auto-da-alloc-rename", Implementation,
        "auto_da_alloc: a rename over an existing file first starts writeback of the source's delayed blocks, so their allocation and on-disk size precede the rename; it does not wait for the data (unwritten extents since 5.6), so the file may still read as zeros.",
        "fs/ext4/namei.c ext4_rename -> ext4_alloc_da_blocks (filemap_flush, no wait); Jan Kara on lkml 2022-09-01; SEMANTICS.md E10";
    EXT4_AUTO_DA_ALLOC_CLOSE = "ext4.auto-da-alloc-close", Implementation,
        "auto_da_alloc: after a truncate to size 0, releasing an open file description (close, and munmap of its mappings) starts writeback of the delayed blocks, so their allocation and on-disk size precede every later op; the data itself is not waited for.",
        "fs/ext4/inode.c ext4_truncate (EXT4_STATE_DA_ALLOC_CLOSE); fs/ext4/file.c ext4_release_file, which __fput calls for every open file description (despite its comment); SEMANTICS.md E10";
}

/// Every rule of every model: the shared, posix and ext4 rules above, and each other file
/// system's list (defined beside its model in `persist/`).
pub fn all() -> impl Iterator<Item = &'static Rule> {
    let lists: &[&'static [Rule]] = &[
        ALL,
        crate::persist::xfs::RULES,
        crate::persist::btrfs::RULES,
    ];
    lists.iter().flat_map(|l| l.iter())
}

/// Looks a rule up by id.
pub fn rule(id: &str) -> Option<&'static Rule> {
    all().find(|r| r.id == id)
}
