//! The `ext4` model, for every data mode (ordered, writeback, journal) with or without delayed
//! allocation (docs/SEMANTICS.md sections 2, 3 and 7): the journal's metadata prefix, when blocks are
//! allocated and what that exposes, what fsync, fdatasync and msync commit, and the auto_da_alloc
//! heuristics. This module holds the rules and options; `build.rs` the builder's phases.

mod build;

use super::{Builder, FsModel, ModelSpec, RuleUse};
use crate::rules::{self, Rule};
use serde::Serialize;

crate::rules! {
    RULES;
    EXT4_JOURNAL_PREFIX = "ext4.journal-prefix", Implementation,
        "Journal transactions commit in order, so the durable metadata is always a prefix of the ops' metadata.",
        "fs/jbd2/journal.c jbd2_log_wait_commit; Documentation/filesystems/ext4/journal.rst; docs/SEMANTICS.md E2";
    EXT4_DELALLOC = "ext4.delalloc", Implementation,
        "With delalloc, blocks are allocated at writeback, in a transaction after the op that dirtied them and unordered with later ops: data (and an append's on-disk size) may persist after later metadata, or before it.",
        "fs/ext4/inode.c ext4_da_get_block_prep, ext4_writepages, ext4_da_do_write_end; docs/SEMANTICS.md E8, M6, E11";
    EXT4_ORDERED = "ext4.ordered", Documented,
        "data=ordered: a newly allocated block's data is written before the metadata that exposes it commits, so a visible block holds its data, never stale bytes.",
        "Documentation/admin-guide/ext4.rst data=ordered; fs/ext4/inode.c ext4_map_blocks; docs/SEMANTICS.md E1, E3, E4";
    EXT4_OVERWRITE = "ext4.overwrite-unordered", Implementation,
        "Overwrites of blocks allocated before crash point 0 are not on any ordered list: they may persist before or after any metadata.",
        "fs/ext4/inode.c ext4_map_blocks (only new blocks go on the ordered list); docs/SEMANTICS.md E4";
    EXT4_FSYNC = "ext4.fsync-commits-transaction", Implementation,
        "fsync(file) writes the file's dirty pages and commits the transaction that last changed the inode (i_sync_tid), and with it every earlier one: other files' renames and creates persist too.",
        "fs/ext4/fsync.c ext4_sync_file, ext4_fsync_journal; fs/ext4/ext4_jbd2.h ext4_update_inode_fsync_trans; docs/SEMANTICS.md E5, E7";
    EXT4_FSYNC_ALLOC = "ext4.fsync-allocates", Implementation,
        "Delayed-allocation blocks are allocated when they are written back (by the sync, or earlier by background writeback) and the allocation moves the inode's tids; the sync commits that transaction, so all metadata issued up to the op that first dirtied the blocks becomes durable, even if the inode had nothing else to commit. (Carried by the ext4.delalloc edges of the data the sync forces; not up to the sync itself, since writeback may have allocated earlier.)",
        "fs/ext4/fsync.c ext4_sync_file (file_write_and_wait_range first); fs/ext4/extents.c (allocation sets i_datasync_tid); docs/SEMANTICS.md E5, E7";
    EXT4_FDATASYNC = "ext4.fdatasync-datasync-tid", Implementation,
        "fdatasync and msync(MS_SYNC) commit only up to i_datasync_tid (creation, size changes, allocation): a later rename, link or unlink of the file is not made durable.",
        "fs/ext4/fsync.c ext4_fsync_journal (datasync ? i_datasync_tid : i_sync_tid); fs/ext4/ialloc.c __ext4_new_inode sets both tids; mm/msync.c datasync=1; docs/SEMANTICS.md E7, E14, M2";
    EXT4_MSYNC_SIZE = "ext4.msync-range-size", Implementation,
        "msync(MS_SYNC) writes back the range: its delayed blocks are allocated and the on-disk size moves to cover them (capped at the file size) in the writeback's handle, which moves i_datasync_tid, so the msync's commit makes that size durable: at least the end of the range's last new page, or the file size. (An append's writeback-time size is split there, since only the range is written back.)",
        "fs/ext4/inode.c mpage_map_and_submit_extent (i_disksize = min(i_size, end of the submitted pages), ext4_mark_inode_dirty), ext4_do_update_inode (need_datasync -> ext4_update_inode_fsync_trans); fs/ext4/fsync.c ext4_sync_file (file_write_and_wait_range, then ext4_fsync_journal with i_datasync_tid); mm/msync.c vfs_fsync_range(datasync=1); docs/SEMANTICS.md E7, E8, M1, M2";
    EXT4_WRITEBACK_PAGES = "ext4.writeback-page-sizes", Implementation,
        "delalloc writeback maps and submits an append one extent at a time and moves the on-disk size after each to the end of the pages submitted so far (capped at the file size), so a commit can make any page boundary inside the append the durable size, ahead of data still in flight (an overwritten page is not ordered).",
        "fs/ext4/inode.c mpage_map_and_submit_extent (disksize = first_page << PAGE_SHIFT, then ext4_mark_inode_dirty, after each extent); observed by unplug real: a truncate-then-append cut at a page boundary on Linux 6.18, and SQLite's WAL cut at 4 KiB on Debian's 6.1 (docs/REAL-APPS.md); litmus/ext4-writeback-page-size.up";
    EXT4_FSYNC_DIR = "ext4.fsync-dir-full-commit", Implementation,
        "fsync or fdatasync of a directory forces a full journal commit: every metadata change issued before it is durable.",
        "fs/ext4/fsync.c ext4_fsync_journal (non-regular inode -> ext4_force_commit); docs/SEMANTICS.md E5";
    EXT4_DATA_JOURNAL = "ext4.data-journal", Documented,
        "data=journal: data goes through the journal with the metadata, in the transaction of the op that wrote it, so data and metadata persist together, in op order (delayed allocation is off).",
        "Documentation/admin-guide/ext4.rst data=journal; fs/ext4/inode.c ext4_journalled_write_end, ext4_page_mkwrite (journals the page's buffers); docs/SEMANTICS.md E1, M6";
    EXT4_NODELALLOC_ORDERED = "ext4.nodelalloc-ordered", Implementation,
        "nodelalloc with data=ordered: blocks are allocated by the write itself (written extents), the inode goes on the ordered list of that transaction, and the commit waits for the data: a new block becomes visible with its data, together with the op's metadata (size included).",
        "fs/ext4/inode.c ext4_write_begin/ext4_get_block and ext4_map_blocks (ordered list for new, written blocks); ext4_should_dioread_nolock is off without delalloc (fs/ext4/ext4_jbd2.h); docs/SEMANTICS.md E4, E9";
    EXT4_PAGE_HANDLES = "ext4.page-handles", Implementation,
        "Without delalloc, write() and page faults take one journal handle per page: a write of several pages is not atomic; its on-disk size grows a page at a time. In data=journal each handle journals its page's data with that size, so the file is a prefix of pages; in the other modes its pages may persist separately (modelled as in any order after the metadata before the write: more states than the kernel's prefix of pages).",
        "fs/ext4/inode.c ext4_write_begin (ext4_journal_start per page, EXT4_HT_WRITE_PAGE), ext4_write_end and ext4_journalled_write_end (i_disksize per page; data=journal: the page's buffers journaled in the same handle), ext4_page_mkwrite; mm/filemap.c generic_perform_write; docs/SEMANTICS.md E9, M6, section 6 (ALICE: multi-block append)";
    EXT4_WRITEBACK_STALE = "ext4.writeback-stale", Documented,
        "data=writeback with nodelalloc: the write's allocation commits with its metadata but its data is not ordered before it, so after a crash a newly allocated block can show stale bytes from another file.",
        "Documentation/admin-guide/ext4.rst data=writeback; fs/ext4/ext4_jbd2.h ext4_should_dioread_nolock (no unwritten extents without delalloc); docs/SEMANTICS.md E1, E4, E9";
    EXT4_WRITEBACK_DELALLOC = "ext4.writeback-delalloc-unwritten", Implementation,
        "data=writeback with delalloc: since 5.6 dioread_nolock is the default, so writeback allocates unwritten extents and converts them after the data is written: new blocks read as zeros or their data, never stale bytes (the documented stale-data risk needs nodelalloc).",
        "fs/ext4/ext4_jbd2.h ext4_should_dioread_nolock (DIOREAD_NOLOCK and DELALLOC, not data=journal); commit 244adf6426ee (dioread_nolock default, v5.6); docs/SEMANTICS.md E8";
    EXT4_FAST_COMMIT = "ext4.fast-commit-same-guarantee", Implementation,
        "fast_commit changes no guarantee here: an fsync's fast commit writes everything queued since the last full commit (other files' creates and renames too), but the commit timer may empty that queue at any moment, so what an fsync guarantees is the same journal prefix as without it.",
        "fs/ext4/fast_commit.c ext4_fc_commit, ext4_fc_perform_commit; fs/ext4/fsync.c ext4_fsync_journal; docs/SEMANTICS.md E13";
    EXT4_AUTO_DA_ALLOC_RENAME = "ext4.auto-da-alloc-rename", Implementation,
        "auto_da_alloc: a rename over an existing file first starts writeback of the source's delayed blocks, so their allocation and on-disk size precede the rename; it does not wait for the data (unwritten extents since 5.6), so the file may still read as zeros.",
        "fs/ext4/namei.c ext4_rename -> ext4_alloc_da_blocks (filemap_flush, no wait); Jan Kara on lkml 2022-09-01; docs/SEMANTICS.md E10";
    EXT4_AUTO_DA_ALLOC_CLOSE = "ext4.auto-da-alloc-close", Implementation,
        "auto_da_alloc: after a truncate to size 0, releasing an open file description (close, and munmap of its mappings) starts writeback of the delayed blocks, so their allocation and on-disk size precede every later op; the data itself is not waited for.",
        "fs/ext4/inode.c ext4_truncate (EXT4_STATE_DA_ALLOC_CLOSE); fs/ext4/file.c ext4_release_file, which __fput calls for every open file description (despite its comment); docs/SEMANTICS.md E10";
}

/// The `ext4` model.
pub struct Ext4;

/// The options of an ext4 model.
fn opts(m: &ModelSpec) -> Ext4Opts {
    match m {
        ModelSpec::Ext4(o) => *o,
        ModelSpec::Torn { base, .. } => opts(base),
        _ => unreachable!("an ext4 rule asked about {m:?}"),
    }
}

fn journal(m: &ModelSpec) -> bool {
    opts(m).data == DataMode::Journal
}
fn delalloc(m: &ModelSpec) -> bool {
    opts(m).delalloc
}
fn nodelalloc(m: &ModelSpec) -> bool {
    !opts(m).delalloc
}
fn ordered_delalloc(m: &ModelSpec) -> bool {
    opts(m).data == DataMode::Ordered && delalloc(m)
}
fn writeback_delalloc(m: &ModelSpec) -> bool {
    opts(m).data == DataMode::Writeback && delalloc(m)
}
fn ordered_nodelalloc(m: &ModelSpec) -> bool {
    opts(m).data == DataMode::Ordered && nodelalloc(m)
}
fn writeback_nodelalloc(m: &ModelSpec) -> bool {
    opts(m).data == DataMode::Writeback && nodelalloc(m)
}
fn auto_da_alloc(m: &ModelSpec) -> bool {
    opts(m).auto_da_alloc && delalloc(m)
}
fn fast_commit(m: &ModelSpec) -> bool {
    opts(m).fast_commit
}

impl FsModel for Ext4 {
    fn splits_pages(&self, model: &ModelSpec) -> bool {
        journal(model) // ext4.data-journal: a handle per page carries the page's data
    }
    fn name(&self) -> &'static str {
        "ext4"
    }
    fn default_model(&self) -> ModelSpec {
        ModelSpec::Ext4(Ext4Opts::default())
    }
    fn parse(&self, opts: Option<&str>) -> Result<ModelSpec, String> {
        Ok(ModelSpec::Ext4(Ext4Opts::parse(opts.unwrap_or(""))?))
    }
    fn options(&self, model: &ModelSpec) -> Vec<&'static str> {
        let o = opts(model);
        let mut v = Vec::new();
        match o.data {
            DataMode::Ordered => {}
            DataMode::Writeback => v.push("data=writeback"),
            DataMode::Journal => v.push("data=journal"),
        }
        if !o.delalloc && o.data != DataMode::Journal {
            v.push("nodelalloc");
        }
        if !o.auto_da_alloc {
            v.push("noauto_da_alloc");
        }
        if o.fast_commit {
            v.push("fast_commit");
        }
        v
    }
    fn variants(&self) -> Vec<ModelSpec> {
        [
            "noauto_da_alloc",
            "nodelalloc",
            "data=writeback",
            "data=writeback,nodelalloc",
            "data=journal",
            "fast_commit",
        ]
        .into_iter()
        .map(|o| ModelSpec::Ext4(Ext4Opts::parse(o).expect("valid ext4 options")))
        .collect()
    }
    fn rules(&self) -> &'static [RuleUse] {
        const USES: &[RuleUse] = &[
            RuleUse::always(&rules::SETUP_DURABLE),
            RuleUse::always(&rules::OP_ATOMIC),
            RuleUse::always(&rules::MS_ASYNC_NOOP),
            RuleUse::always(&rules::SYNC_ALL),
            RuleUse::always(&EXT4_JOURNAL_PREFIX),
            RuleUse::always(&EXT4_OVERWRITE),
            RuleUse::always(&EXT4_FSYNC),
            RuleUse::always(&EXT4_FDATASYNC),
            RuleUse::always(&EXT4_FSYNC_DIR),
            RuleUse::always(&rules::POSIX_OSYNC),
            RuleUse::new(&EXT4_DATA_JOURNAL, journal),
            RuleUse::new(&EXT4_DELALLOC, delalloc),
            RuleUse::new(&EXT4_ORDERED, ordered_delalloc),
            RuleUse::new(&EXT4_WRITEBACK_DELALLOC, writeback_delalloc),
            RuleUse::new(&EXT4_NODELALLOC_ORDERED, ordered_nodelalloc),
            RuleUse::new(&EXT4_WRITEBACK_STALE, writeback_nodelalloc),
            RuleUse::new(&EXT4_PAGE_HANDLES, nodelalloc),
            RuleUse::new(&EXT4_FSYNC_ALLOC, delalloc),
            RuleUse::new(&EXT4_MSYNC_SIZE, delalloc),
            RuleUse::new(&EXT4_WRITEBACK_PAGES, delalloc),
            RuleUse::new(&EXT4_AUTO_DA_ALLOC_RENAME, auto_da_alloc),
            RuleUse::new(&EXT4_AUTO_DA_ALLOC_CLOSE, auto_da_alloc),
            RuleUse::new(&EXT4_FAST_COMMIT, fast_commit),
        ];
        USES
    }
    fn descriptive(&self) -> &'static [(&'static Rule, &'static str)] {
        &[
            (
                &EXT4_ORDERED,
                "it is an absence: with delalloc no new block becomes visible with stale bytes (no stale value is made); the `# expect ext4:` lines of the append programs show it",
            ),
            (
                &EXT4_OVERWRITE,
                "it is an absence: an overwrite gets no edge; overwrite-order and alice-o1 show it",
            ),
            (
                &EXT4_WRITEBACK_DELALLOC,
                "it says why data=writeback with delalloc builds as data=ordered does; the `# expect ext4:data=writeback:` lines that match the default's show it",
            ),
            (
                &EXT4_FAST_COMMIT,
                "it says why fast_commit builds as the default does; the `# expect ext4:fast_commit:` lines that match the default's show it",
            ),
            (
                &EXT4_FSYNC_ALLOC,
                "it has no code of its own: the ext4.delalloc edges of the data a sync forces carry it",
            ),
        ]
    }
    fn build(&self, model: &ModelSpec, b: &mut Builder<'_>) {
        b.ext4(opts(model));
    }
}

/// ext4's data journaling mode (`data=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum DataMode {
    Ordered,
    Writeback,
    Journal,
}

/// ext4 mount options (and the fast_commit feature).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Ext4Opts {
    pub data: DataMode,
    pub delalloc: bool,
    pub auto_da_alloc: bool,
    pub fast_commit: bool,
}

impl Default for Ext4Opts {
    fn default() -> Self {
        Ext4Opts {
            data: DataMode::Ordered,
            delalloc: true,
            auto_da_alloc: true,
            fast_commit: false,
        }
    }
}

impl Ext4Opts {
    /// Parses a comma-separated option list, e.g. `data=writeback,nodelalloc`. Two values of
    /// one setting (`data=writeback,data=journal`, `delalloc,nodelalloc`) are an error rather
    /// than the last one winning: a model name that says two things would mislead whoever reads
    /// the verdicts. Every unknown or contradicting option is reported, one per line.
    pub fn parse(opts: &str) -> Result<Ext4Opts, String> {
        let mut e = Ext4Opts::default();
        let mut delalloc_said = None;
        let mut errs = Vec::new();
        // The option that set each setting first (data, delalloc, auto_da_alloc, fast_commit).
        let mut said: [Option<&str>; 4] = [None; 4];
        for o in opts.split(',').filter(|o| !o.is_empty()) {
            let setting = match o {
                "data=ordered" | "data=writeback" | "data=journal" => 0,
                "delalloc" | "nodelalloc" => 1,
                "auto_da_alloc" | "noauto_da_alloc" => 2,
                "fast_commit" | "nofast_commit" => 3,
                _ => {
                    errs.push(format!(
                        "unknown ext4 option `{o}` (known: data=ordered|writeback|journal, delalloc|nodelalloc, auto_da_alloc|noauto_da_alloc, fast_commit|nofast_commit)"
                    ));
                    continue;
                }
            };
            match said[setting] {
                Some(first) if first != o => {
                    errs.push(format!(
                        "ext4 options `{first}` and `{o}` contradict each other: give one of them"
                    ));
                    continue;
                }
                _ => said[setting] = Some(o),
            }
            match o {
                "data=ordered" => e.data = DataMode::Ordered,
                "data=writeback" => e.data = DataMode::Writeback,
                "data=journal" => e.data = DataMode::Journal,
                "delalloc" => delalloc_said = Some(true),
                "nodelalloc" => delalloc_said = Some(false),
                "auto_da_alloc" => e.auto_da_alloc = true,
                "noauto_da_alloc" => e.auto_da_alloc = false,
                "fast_commit" => e.fast_commit = true,
                _ => e.fast_commit = false,
            }
        }
        if !errs.is_empty() {
            return Err(errs.join("\n"));
        }
        // data=journal disables delayed allocation (Documentation/admin-guide/ext4.rst); ext4
        // refuses to mount with both.
        e.delalloc = match (e.data, delalloc_said) {
            (DataMode::Journal, Some(true)) => {
                return Err("ext4 refuses data=journal with delalloc (data=journal disables delayed allocation)".into())
            }
            (DataMode::Journal, _) => false,
            (_, said) => said.unwrap_or(true),
        };
        if e.fast_commit && e.data != DataMode::Ordered {
            return Err("ext4 fast commits are supported only with data=ordered (Documentation/filesystems/ext4/journal.rst)".into());
        }
        Ok(e)
    }
}
