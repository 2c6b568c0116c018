//! What a running system sees: executes a program on an in-memory file system (the page cache and
//! dentry cache, never a disk) and records, for every op, the facts the persistence models need:
//! which metadata it changed, which byte ranges of which inode it dirtied, what it asks to sync.
//!
//! This is the one place that knows POSIX's *volatile* semantics (what `rename` or `ftruncate` do
//! to the namespace and to file contents). It is model-independent: `rules` decides what of it
//! can be durable when. It also finds every semantic error of a program (a handle used before
//! `open`, a rename of a missing file, a store past the end of the file) and reports them all.
//!
//! The ops' semantics live in one file per family: `files` (open, close, write, ftruncate,
//! fallocate, sync_file_range), `dirs` (rename, link, flink, symlink, unlink, mkdir, rmdir),
//! `maps` (mmap, store, msync, munmap) and `syncs` (fsync, fdatasync, sync, syncfs); `fs` is the
//! in-memory file system they act on, and `step` sends each op to its family.

use crate::diag::Diagnostic;
use crate::program::*;
use crate::OpNo;
use fs::{err, Fs};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

mod content;
mod dirs;
mod files;
mod fs;
mod maps;
mod syncs;

pub use content::{merge, Content, Extent, Origin};

/// The persistence granularity of file data (the page size and the file systems' block size).
pub const BLOCK: u64 = 4096;

/// The largest file size Linux allows, `MAX_LFS_FILESIZE` (`i64::MAX` bytes: `loff_t` is
/// signed). A write, truncate, fallocate or mapping that ends past it fails (EFBIG, EINVAL,
/// EOVERFLOW), so the execution rejects it; every offset the models and the explorer handle then
/// fits in 63 bits, and block arithmetic on it cannot overflow. Each file system's own limit
/// (`s_maxbytes`) is lower (ext4: 16 TiB with 4 KiB blocks for extent files; xfs and btrfs:
/// 8 EiB); the models do not hold programs to it.
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;

/// An inode number. 0 is the root directory; setup and program inodes count up from 1 in creation
/// order.
pub type Ino = usize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Kind {
    File,
    Dir,
    /// A symbolic link: its target text is in [`Initial::symlinks`], set once at creation (with
    /// the inode: fast symlinks keep it in the inode itself). It has no size or blocks in the
    /// model, and the model never follows it.
    Symlink,
}

/// A metadata change, as a key and the value it gets. Applying the latest persisted assignment of
/// every key (in op order) to the durable initial state gives a crash state's metadata.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Assign {
    /// Directory `dir` maps `name` to `target` (None: the name is absent).
    Entry {
        dir: Ino,
        name: String,
        target: Option<Ino>,
    },
    /// Inode `ino` is allocated and initialised as `kind` (size 0, no blocks).
    Init { ino: Ino, kind: Kind },
    /// The inode's size becomes `size`; if `holes_from` is set, every block from that block
    /// index on is freed and reads as zero (a truncate).
    Size {
        ino: Ino,
        size: u64,
        holes_from: Option<u64>,
    },
}

impl Assign {
    /// The inode whose own metadata this assignment changes (an entry belongs to its directory).
    pub fn inode(&self) -> Ino {
        match self {
            Assign::Entry { dir, .. } => *dir,
            Assign::Init { ino, .. } | Assign::Size { ino, .. } => *ino,
        }
    }
}

/// What a sync op asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum SyncReq {
    /// fsync (datasync false) or fdatasync (true) of a file, over a byte range (None = whole file;
    /// O_SYNC/O_DSYNC writes sync exactly the range written).
    File {
        ino: Ino,
        datasync: bool,
        range: Option<(u64, u64)>,
    },
    /// msync(MS_SYNC) of a mapped file range: a ranged fdatasync.
    Msync { ino: Ino, start: u64, end: u64 },
    /// fsync or fdatasync of a directory.
    Dir { ino: Ino, datasync: bool },
    /// sync(), or syncfs() (one file system: the same here).
    All,
}

/// A byte range of an inode's page cache that an op dirtied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Dirty {
    pub ino: Ino,
    pub start: u64,
    pub end: u64,
    /// Dirtied by a store through a mapping (the page fault comes first, the store after it,
    /// with no handle around both), not by write() or a truncate.
    pub mapped: bool,
    /// Written through an O_DIRECT handle: the data goes to the device before the syscall
    /// returns (no page-cache writeback; an extending direct write updates the size at I/O
    /// completion, in the syscall). The models treat it like a buffered write, which allows
    /// every crash state a direct write allows and more: sound, not tight.
    pub direct: bool,
}

/// The model-independent facts of one op.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct OpFacts {
    /// Metadata changes made by the syscall itself (journaled at syscall time by ext4).
    pub assigns: Vec<Assign>,
    /// A write that extended the file: the size it set. Kept apart from `assigns` because with
    /// delayed allocation ext4 updates the on-disk size at writeback, not at the syscall.
    pub extends: Option<(Ino, u64)>,
    /// Page-cache ranges dirtied (writes, stores, the zeroed tail of a truncated page).
    pub dirtied: Vec<Dirty>,
    /// The sync the op asks for (fsync, msync MS_SYNC, O_SYNC write, ...).
    pub sync: Option<SyncReq>,
    /// Inodes whose metadata the op changed (ext4's i_sync_tid moves for these).
    pub touched: Vec<Ino>,
    /// Inodes whose data-relevant metadata (creation, size) the op changed (i_datasync_tid).
    pub datasync_touched: Vec<Ino>,
    /// An open file description of this inode was released: its handle closed and every mapping
    /// made through it unmapped (the file system's `release` runs, e.g. ext4_release_file).
    pub released: Option<Ino>,
    /// A rename replaced an existing file: (source inode, replaced inode).
    pub rename_over: Option<(Ino, Ino)>,
    /// The op truncated this inode to size 0 (ftruncate 0, or O_TRUNC of an existing file).
    pub trunc_to_zero: Option<Ino>,
    /// fallocate allocated `[start, end)` of this inode (unwritten extents, reading as zeros;
    /// with keep-size possibly past the end of the file). A size change it makes is an
    /// `Assign::Size` in `assigns`; nothing is dirtied. No model uses this range yet.
    pub allocated: Option<(Ino, u64, u64)>,
    /// sync_file_range(SYNC_FILE_RANGE_WRITE) started writeback of `[start, end)` of this inode
    /// (`end` is the file size for a length of 0). It persists nothing by itself and records no
    /// sync; a model may later order the range's writeback-time effects (e.g. ext4 delayed
    /// allocation, which happens at writeback) before the next ops' metadata. No model does yet.
    pub writeback: Option<(Ino, u64, u64)>,
    /// A sync the analysis inserted (a repair or a variant), not an op of the program: crash
    /// point k of such a trace is crash point [`Trace::program_point`] of the program.
    pub inserted: bool,
}

/// The durable state before crash point 0 (the result of setup).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Initial {
    pub entries: BTreeMap<(Ino, String), Ino>,
    pub inodes: BTreeMap<Ino, (Kind, u64, Content)>,
    /// The target of every symlink inode made so far (a symlink's target never changes).
    pub symlinks: BTreeMap<Ino, String>,
}

/// A program executed: the facts of every op, the initial durable state, and what a running
/// system would read after each op.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Trace {
    pub initial: Initial,
    /// `ops[i]` are the facts of op i + 1: [`Trace::facts`].
    pub ops: Vec<OpFacts>,
    /// `contents[i]`: every file's content and size right after op i + 1 (only inodes the op
    /// dirtied), used for the value of each block version: [`Trace::contents_after`].
    pub contents: Vec<BTreeMap<Ino, Content>>,
    /// Every inode's kind.
    pub kinds: BTreeMap<Ino, Kind>,
    /// The length of every named data.
    pub data_len: BTreeMap<String, u64>,
    /// Byte offsets of interest per inode (write and truncate boundaries, msync ranges): the
    /// block layout is cut there.
    pub cuts: BTreeMap<Ino, BTreeSet<u64>>,
    /// Per inode, where the last block of each write starts (extra cuts some models ask for).
    pub last_blocks: BTreeMap<Ino, BTreeSet<u64>>,
    /// The volatile state after the last op (what `new` means in properties).
    pub last: Initial,
    /// The path each inode was last known by (for messages).
    pub names: BTreeMap<Ino, Path>,
    /// A path of every reachable inode after each op, the first in path order; for messages
    /// and repairs that name a file as it was called then (see [`PathsAfter`]).
    pub paths_after: PathsAfter,
}

/// Applies one op's changes of paths.
fn apply(paths: &mut BTreeMap<Ino, Path>, changes: &[(Ino, Option<Path>)]) {
    for (i, p) in changes {
        match p {
            Some(p) => paths.insert(*i, p.clone()),
            None => paths.remove(i),
        };
    }
}

/// A path of every reachable inode after op k (0: after setup), kept as the changes each op
/// made: a program of n ops over m files holds O(n + m) paths, not O(n * m).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PathsAfter {
    /// After setup.
    start: BTreeMap<Ino, Path>,
    /// Per op: the inodes whose path it changed (None: no longer reachable).
    changes: Vec<Vec<(Ino, Option<Path>)>>,
}

impl PathsAfter {
    fn new(start: BTreeMap<Ino, Path>) -> Self {
        PathsAfter {
            start,
            changes: Vec::new(),
        }
    }

    /// Records the paths after the next op (`before`: the paths before it).
    fn push(&mut self, before: &BTreeMap<Ino, Path>, after: &BTreeMap<Ino, Path>) {
        let mut c: Vec<(Ino, Option<Path>)> = before
            .keys()
            .filter(|i| !after.contains_key(i))
            .map(|i| (*i, None))
            .collect();
        c.extend(
            after
                .iter()
                .filter(|(i, p)| before.get(i) != Some(p))
                .map(|(i, p)| (*i, Some(p.clone()))),
        );
        self.changes.push(c);
    }

    /// The paths after every op in turn: index 0 after setup, k after op k.
    pub fn each(&self) -> impl Iterator<Item = BTreeMap<Ino, Path>> + '_ {
        let mut cur = self.start.clone();
        std::iter::once(cur.clone()).chain(self.changes.iter().map(move |c| {
            apply(&mut cur, c);
            cur.clone()
        }))
    }

    /// The paths after op `k` (0: after setup).
    pub fn at(&self, k: usize) -> BTreeMap<Ino, Path> {
        let mut cur = self.start.clone();
        for c in &self.changes[..k] {
            apply(&mut cur, c);
        }
        cur
    }

    /// A sync inserted after op `k` changes no path.
    pub fn insert_unchanged(&mut self, k: usize) {
        self.changes.insert(k, Vec::new());
    }
}

impl Trace {
    /// The facts of op number `k`.
    /// The program's crash point that crash point `k` of this trace stands for: `k` less the
    /// syncs the analysis inserted among the first `k` ops.
    pub fn program_point(&self, k: usize) -> usize {
        k - self.ops.iter().take(k).filter(|f| f.inserted).count()
    }

    /// The program's crash point whose printed output a crash at crash point `k` of this
    /// trace follows: [`Trace::program_point`], except just before an inserted sync, where
    /// what the application printed after the op before it is not printed yet (a repair puts
    /// the sync between the op and the acknowledgement).
    pub fn printed_point(&self, k: usize) -> usize {
        let p = self.program_point(k);
        if self.ops.get(k).is_some_and(|f| f.inserted) {
            p.saturating_sub(1)
        } else {
            p
        }
    }

    pub fn facts(&self, k: OpNo) -> &OpFacts {
        &self.ops[k.index()]
    }
    /// The facts of op number `k`, to change (a what-if trace).
    pub fn facts_mut(&mut self, k: OpNo) -> &mut OpFacts {
        &mut self.ops[k.index()]
    }
    /// The content of every inode op number `k` dirtied, right after it.
    pub fn contents_after(&self, k: OpNo) -> &BTreeMap<Ino, Content> {
        &self.contents[k.index()]
    }
}

/// Executes `program` and returns its trace, or every semantic error it has.
pub fn execute(program: &Program) -> Result<Trace, Vec<Diagnostic>> {
    let mut fs = Fs::new(program);
    let mut errors = Vec::new();
    for op in &program.setup {
        if let Err(e) = step(&mut fs, op) {
            errors.push(e);
        }
    }
    // Setup's open handles stay open: they may be used by the program.
    let initial = fs.snapshot();
    let mut paths = fs.paths();
    let mut paths_after = PathsAfter::new(paths.clone());
    let mut ops = Vec::new();
    let mut contents = Vec::new();
    for op in &program.ops {
        match step(&mut fs, op) {
            Ok(facts) => {
                let snap = facts
                    .dirtied
                    .iter()
                    .map(|d| (d.ino, fs.inodes[&d.ino].content.clone()))
                    .collect::<BTreeMap<_, _>>();
                contents.push(snap);
                // Only an op that changes an entry can change the paths.
                if facts
                    .assigns
                    .iter()
                    .any(|a| matches!(a, Assign::Entry { .. }))
                {
                    let after = fs.paths();
                    paths_after.push(&paths, &after);
                    paths = after;
                } else {
                    paths_after.push(&paths, &paths);
                }
                ops.push(facts);
            }
            Err(e) => {
                errors.push(e);
                contents.push(BTreeMap::new());
                paths_after.push(&paths, &paths);
                ops.push(OpFacts::default());
            }
        }
    }
    check_properties(program, &fs, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let sizes: Vec<(Ino, u64)> = fs
        .inodes
        .iter()
        .filter(|(_, n)| n.kind == Kind::File)
        .map(|(i, n)| (*i, n.size))
        .collect();
    for (ino, size) in sizes {
        fs.cut(ino, size);
    }
    Ok(Trace {
        kinds: fs.inodes.iter().map(|(i, n)| (*i, n.kind)).collect(),
        last: fs.snapshot(),
        initial,
        ops,
        contents,
        // A declared length wins over the largest end written (no write goes past it), and a
        // declared data that no op writes still has its length: `== D` compares with all of it.
        data_len: fs
            .data_len
            .iter()
            .chain(&fs.declared)
            .map(|(n, l)| (n.clone(), *l))
            .collect(),
        cuts: fs.cuts.clone(),
        last_blocks: fs.last_blocks.clone(),
        names: fs.names.clone(),
        paths_after,
    })
}

fn check_properties(program: &Program, fs: &Fs, errors: &mut Vec<Diagnostic>) {
    fn walk(e: &Expr, f: &mut dyn FnMut(&str)) {
        match e {
            Expr::ContentEq(_, ContentRef::Data(d)) | Expr::PrefixOf(_, d) => f(d),
            Expr::Not(a) => walk(a, f),
            Expr::And(a, b) | Expr::Or(a, b) | Expr::Implies(a, b) => {
                walk(a, f);
                walk(b, f)
            }
            Expr::ContentEq(_, ContentRef::Old | ContentRef::New | ContentRef::Empty)
            | Expr::Exists(_)
            | Expr::Size(..)
            | Expr::Entries(..)
            | Expr::Links(..)
            | Expr::Readlink(..)
            | Expr::Checker(_) => {}
        }
    }
    for p in &program.properties {
        walk(&p.expr, &mut |d| {
            if !fs.data_len.contains_key(d) && !fs.declared.contains_key(d) {
                errors.push(
                    Diagnostic::new(p.span, format!("property `{}` names data `{d}`, which no write uses", p.name))
                        .with_hint("declare it with `data NAME SIZE`, or write it with `write`/`pwrite`/`store`"),
                );
            }
        });
    }
}

/// Applies one op to the volatile file system and returns its facts.
fn step(fs: &mut Fs, op: &Op) -> Result<OpFacts, Diagnostic> {
    for path in op.kind.paths() {
        if let Some(link) = fs.through_symlink(path) {
            return Err(err(
                op,
                format!(
                    "`{path}` goes through the symlink `{link}`: the kernel would follow it, \
                     the model does not follow symlinks"
                ),
            )
            .with_hint("use the path the symlink points to"));
        }
    }
    let mut f = match &op.kind {
        OpKind::Open {
            handle,
            path,
            flags,
        } => files::open(fs, op, handle, path, flags),
        OpKind::Close { handle } => files::close(fs, op, handle),
        OpKind::Write {
            handle,
            offset,
            len,
            data,
            data_off,
        } => files::write(fs, op, handle, *offset, *len, data, *data_off),
        OpKind::Ftruncate { handle, size } => files::ftruncate(fs, op, handle, *size),
        OpKind::Fallocate {
            handle,
            offset,
            len,
            keep_size,
        } => files::fallocate(fs, op, handle, *offset, *len, *keep_size),
        OpKind::SyncFileRange {
            handle,
            offset,
            len,
        } => files::sync_file_range(fs, op, handle, *offset, *len),
        OpKind::Mmap {
            handle,
            map,
            offset,
            len,
        } => maps::mmap(fs, op, handle, map, *offset, *len),
        OpKind::Store {
            map,
            offset,
            len,
            data,
            data_off,
        } => maps::store(fs, op, map, *offset, *len, data, *data_off),
        // `invalidate` changes nothing the models see: the page cache is the file.
        OpKind::Msync {
            map,
            range,
            mode,
            invalidate: _,
        } => maps::msync(fs, op, map, *range, *mode),
        OpKind::Munmap { map } => maps::munmap(fs, op, map),
        OpKind::Fsync { handle } => syncs::fsync(fs, op, handle, false),
        OpKind::Fdatasync { handle } => syncs::fsync(fs, op, handle, true),
        OpKind::Sync => syncs::sync(),
        OpKind::Syncfs { handle } => syncs::syncfs(fs, op, handle),
        OpKind::Rename { from, to, mode } => dirs::rename(fs, op, from, to, *mode),
        OpKind::Link { from, to } => dirs::link(fs, op, from, to),
        OpKind::Flink { handle, path } => dirs::flink(fs, op, handle, path),
        OpKind::Symlink { target, path } => dirs::symlink(fs, op, target, path),
        OpKind::Unlink { path } => dirs::unlink(fs, op, path),
        OpKind::Mkdir { path } => dirs::mkdir(fs, op, path),
        OpKind::Rmdir { path } => dirs::rmdir(fs, op, path),
    }?;
    f.touched.sort();
    f.touched.dedup();
    Ok(f)
}
