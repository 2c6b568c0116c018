//! What a running system sees: executes a program on an in-memory file system (the page cache and
//! dentry cache, never a disk) and records, for every op, the facts the persistence models need:
//! which metadata it changed, which byte ranges of which inode it dirtied, what it asks to sync.
//!
//! This is the one place that knows POSIX's *volatile* semantics (what `rename` or `ftruncate` do
//! to the namespace and to file contents). It is model-independent: `rules` decides what of it
//! can be durable when. It also finds every semantic error of a program (a handle used before
//! `open`, a rename of a missing file, a store past the end of the file) and reports them all.

use crate::diag::Diagnostic;
use crate::program::*;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The persistence granularity of file data (the page size and the file systems' block size).
pub const BLOCK: u64 = 4096;

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

/// Where a byte of a file comes from: zero (a hole, or bytes past an old end of file), or a named
/// data: the byte at file offset `x` is byte `x + delta` of the data.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Origin {
    Zero,
    Data {
        name: String,
        delta: i64,
    },
    /// Stale bytes: whatever the block held before it was allocated to this file (another
    /// file's old data). Only a crash can show these (ext4 data=writeback with nodelalloc).
    Stale,
    /// Garbage: a unit caught mid-write when the power failed (models with `garbage`).
    Garbage,
}

/// A byte range `[start, end)` of a file and where its bytes come from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Extent {
    pub start: u64,
    pub end: u64,
    pub origin: Origin,
}

/// A file's content as sorted, non-overlapping extents of named data; gaps read as zero.
/// Zero extents are never stored, and neighbours with the same origin are merged.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Content(pub Vec<Extent>);

impl Content {
    /// Writes `origin` over `[start, end)`.
    pub fn write(&mut self, start: u64, end: u64, origin: Origin) {
        if start >= end {
            return;
        }
        let mut out = Vec::with_capacity(self.0.len() + 2);
        for e in self.0.drain(..) {
            if e.end <= start || e.start >= end {
                out.push(e);
                continue;
            }
            if e.start < start {
                out.push(Extent {
                    start: e.start,
                    end: start,
                    origin: e.origin.clone(),
                });
            }
            if e.end > end {
                out.push(Extent {
                    start: end,
                    end: e.end,
                    origin: e.origin,
                });
            }
        }
        if origin != Origin::Zero {
            out.push(Extent { start, end, origin });
        }
        out.sort();
        self.0 = merge(out);
    }

    /// Drops everything at or past `size`.
    pub fn clip(&mut self, size: u64) {
        self.write(size, u64::MAX, Origin::Zero);
    }

    /// The extents inside `[start, end)`, zero gaps included, in absolute offsets.
    pub fn slice(&self, start: u64, end: u64) -> Vec<Extent> {
        let mut out = Vec::new();
        let mut at = start;
        for e in &self.0 {
            if e.end <= start || e.start >= end {
                continue;
            }
            let s = e.start.max(start);
            if s > at {
                out.push(Extent {
                    start: at,
                    end: s,
                    origin: Origin::Zero,
                });
            }
            let t = e.end.min(end);
            out.push(Extent {
                start: s,
                end: t,
                origin: e.origin.clone(),
            });
            at = t;
        }
        if at < end {
            out.push(Extent {
                start: at,
                end,
                origin: Origin::Zero,
            });
        }
        out
    }
}

/// Merges adjacent extents with the same origin (the input is sorted and non-overlapping).
pub fn merge(v: Vec<Extent>) -> Vec<Extent> {
    let mut out: Vec<Extent> = Vec::with_capacity(v.len());
    for e in v {
        if let Some(last) = out.last_mut() {
            if last.end == e.start && last.origin == e.origin {
                last.end = e.end;
                continue;
            }
        }
        out.push(e);
    }
    out
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
    /// `ops[i]` are the facts of op i + 1.
    pub ops: Vec<OpFacts>,
    /// `contents[i]`: every file's content and size right after op i + 1 (only inodes the op
    /// dirtied), used for the value of each block version.
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
    /// `paths_after[k]`: a path of every reachable inode after op k (0: after setup), the first
    /// in path order; for messages and repairs that name a file as it was called then.
    pub paths_after: Vec<BTreeMap<Ino, Path>>,
}

#[derive(Clone, Debug)]
struct Inode {
    kind: Kind,
    size: u64,
    content: Content,
}

#[derive(Clone, Debug)]
struct Handle {
    ino: Ino,
    /// The open file description (one per `open`); mappings made through the handle hold it too.
    desc: usize,
    pos: u64,
    flags: OpenFlags,
}

#[derive(Clone, Debug)]
struct Mapping {
    ino: Ino,
    desc: usize,
    offset: u64,
    len: u64,
}

#[derive(Clone, Debug)]
struct Fs {
    entries: BTreeMap<(Ino, String), Ino>,
    inodes: BTreeMap<Ino, Inode>,
    next_ino: Ino,
    handles: BTreeMap<String, Handle>,
    maps: BTreeMap<String, Mapping>,
    /// References to each open file description (its handle and its mappings).
    descs: Vec<usize>,
    data_len: BTreeMap<String, u64>,
    declared: BTreeMap<String, u64>,
    cuts: BTreeMap<Ino, BTreeSet<u64>>,
    last_blocks: BTreeMap<Ino, BTreeSet<u64>>,
    names: BTreeMap<Ino, Path>,
    /// Symlink targets.
    symlinks: BTreeMap<Ino, String>,
    /// O_TMPFILE inodes (opened without `excl`) that have never had a name: `flink` may give
    /// them one (the kernel's I_LINKABLE). Any other inode with no name cannot be linked.
    linkable: BTreeSet<Ino>,
}

impl Fs {
    fn new(program: &Program) -> Self {
        let mut inodes = BTreeMap::new();
        inodes.insert(
            0,
            Inode {
                kind: Kind::Dir,
                size: 0,
                content: Content::default(),
            },
        );
        let mut names = BTreeMap::new();
        names.insert(0, Path::root());
        Fs {
            entries: BTreeMap::new(),
            inodes,
            next_ino: 1,
            handles: BTreeMap::new(),
            maps: BTreeMap::new(),
            descs: Vec::new(),
            data_len: BTreeMap::new(),
            declared: program
                .data
                .iter()
                .map(|d| (d.name.clone(), d.len))
                .collect(),
            cuts: BTreeMap::new(),
            last_blocks: BTreeMap::new(),
            names,
            symlinks: BTreeMap::new(),
            linkable: BTreeSet::new(),
        }
    }

    /// The first directory component of `path` (a proper prefix) that is a symlink: the kernel
    /// would follow it, the model does not.
    fn through_symlink(&self, path: &Path) -> Option<Path> {
        let mut at = 0;
        for (i, c) in path.0.iter().enumerate() {
            if i + 1 == path.0.len() {
                return None;
            }
            at = *self.entries.get(&(at, c.clone()))?;
            match self.inodes.get(&at)?.kind {
                Kind::Dir => {}
                Kind::Symlink => return Some(Path(path.0[..=i].into())),
                Kind::File => return None,
            }
        }
        None
    }

    /// Whether `ino` has a name (a directory entry) now.
    fn has_name(&self, ino: Ino) -> bool {
        self.entries.values().any(|&i| i == ino)
    }

    fn lookup(&self, path: &Path) -> Option<Ino> {
        let mut at = 0;
        for c in path.0.iter() {
            if self.inodes.get(&at)?.kind != Kind::Dir {
                return None;
            }
            at = *self.entries.get(&(at, c.clone()))?;
        }
        Some(at)
    }

    /// The parent directory inode and the last component, if the parent exists and is a directory.
    fn parent(&self, path: &Path) -> Result<(Ino, String), String> {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err("the root directory cannot be used here".into());
        };
        match self.lookup(&parent) {
            Some(d) if self.inodes[&d].kind == Kind::Dir => Ok((d, name.to_string())),
            Some(_) => Err(format!("`{parent}` is not a directory")),
            None => Err(format!("directory `{parent}` does not exist at this point")),
        }
    }

    /// Creates an inode of `kind` named `name` in `dir`: its initialisation and its entry are
    /// the op's metadata (one ext4 handle), and its creation moves both fsync tids.
    fn create(&mut self, f: &mut OpFacts, dir: Ino, name: String, path: &Path, kind: Kind) -> Ino {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.inodes.insert(
            ino,
            Inode {
                kind,
                size: 0,
                content: Content::default(),
            },
        );
        self.entries.insert((dir, name.clone()), ino);
        self.names.insert(ino, path.clone());
        f.assigns.push(Assign::Init { ino, kind });
        f.assigns.push(Assign::Entry {
            dir,
            name,
            target: Some(ino),
        });
        f.touched.extend([ino, dir]);
        f.datasync_touched.push(ino);
        ino
    }

    /// Removes the entry `path` (which names `ino`): unlink and rmdir.
    fn remove_entry(&mut self, f: &mut OpFacts, path: &Path, ino: Ino) -> Result<(), String> {
        let (dir, name) = self.parent(path)?;
        self.entries.remove(&(dir, name.clone()));
        f.assigns.push(Assign::Entry {
            dir,
            name,
            target: None,
        });
        f.touched.extend([ino, dir]);
        Ok(())
    }

    /// A path of every reachable inode (the first in path order).
    fn paths(&self) -> BTreeMap<Ino, Path> {
        let mut out = BTreeMap::new();
        out.insert(0, Path::root());
        let mut todo = vec![(Path::root(), 0)];
        let mut all = Vec::new();
        while let Some((p, ino)) = todo.pop() {
            for (name, child) in self.children(ino) {
                let q = p.join(name);
                if self.inodes[child].kind == Kind::Dir {
                    todo.push((q.clone(), *child));
                }
                all.push((q, *child));
            }
        }
        all.sort();
        for (p, i) in all {
            out.entry(i).or_insert(p);
        }
        out
    }

    /// Drops a reference to an open file description; the last one releases it.
    fn unref(&mut self, f: &mut OpFacts, desc: usize, ino: Ino) {
        self.descs[desc] -= 1;
        if self.descs[desc] == 0 {
            f.released = Some(ino);
        }
    }

    fn cut(&mut self, ino: Ino, at: u64) {
        self.cuts.entry(ino).or_default().insert(at);
    }

    fn use_data(&mut self, name: &str, data_off: u64, len: u64) -> Result<(), String> {
        let end = data_off
            .checked_add(len)
            .ok_or("offset + length overflows")?;
        if let Some(&declared) = self.declared.get(name) {
            if end > declared {
                return Err(format!(
                    "this uses bytes up to {end} of `{name}`, which is declared as {declared} bytes long"
                ));
            }
        }
        let e = self.data_len.entry(name.to_string()).or_insert(0);
        *e = (*e).max(end);
        Ok(())
    }

    fn children(&self, dir: Ino) -> impl Iterator<Item = (&String, &Ino)> {
        self.entries
            .range((dir, String::new())..)
            .take_while(move |((d, _), _)| *d == dir)
            .map(|((_, n), i)| (n, i))
    }

    fn snapshot(&self) -> Initial {
        Initial {
            entries: self.entries.clone(),
            inodes: self
                .inodes
                .iter()
                .map(|(i, n)| (*i, (n.kind, n.size, n.content.clone())))
                .collect(),
            symlinks: self.symlinks.clone(),
        }
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
    let mut paths_after = vec![fs.paths()];
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
                paths_after.push(fs.paths());
                ops.push(facts);
            }
            Err(e) => {
                errors.push(e);
                contents.push(BTreeMap::new());
                paths_after.push(fs.paths());
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
            _ => {}
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

/// "PATH does not exist", with the paths that do exist as the hint.
fn missing(fs: &Fs, op: &Op, path: &Path) -> Diagnostic {
    let mut all = Vec::new();
    let mut todo = vec![(Path::root(), 0)];
    while let Some((p, ino)) = todo.pop() {
        for (name, child) in fs.children(ino) {
            let q = p.join(name);
            all.push(q.to_string());
            if fs.inodes[child].kind == Kind::Dir {
                todo.push((q, *child));
            }
        }
    }
    all.sort();
    let hint = if all.is_empty() {
        "the file system is empty here".to_string()
    } else {
        format!("paths that exist here: {}", all.join(", "))
    };
    err(op, format!("`{path}` does not exist at this point")).with_hint(hint)
}

fn err(op: &Op, msg: impl Into<String>) -> Diagnostic {
    Diagnostic::new(op.span, msg)
}

fn handle<'a>(fs: &'a Fs, op: &Op, name: &str) -> Result<&'a Handle, Diagnostic> {
    fs.handles.get(name).ok_or_else(|| {
        let open: Vec<_> = fs.handles.keys().map(String::as_str).collect();
        err(op, format!("handle `{name}` is not open at this point")).with_hint(
            if open.is_empty() {
                "open it first: `NAME = open PATH [create]`".to_string()
            } else {
                format!("open handles here: {}", open.join(", "))
            },
        )
    })
}

fn file_handle(fs: &Fs, op: &Op, name: &str) -> Result<Handle, Diagnostic> {
    let h = handle(fs, op, name)?.clone();
    if fs.inodes[&h.ino].kind != Kind::File {
        return Err(err(
            op,
            format!("`{name}` is a directory handle; this op needs a regular file"),
        ));
    }
    Ok(h)
}

/// Applies one op to the volatile file system and returns its facts.
fn step(fs: &mut Fs, op: &Op) -> Result<OpFacts, Diagnostic> {
    let mut f = OpFacts::default();
    for path in op_paths(&op.kind) {
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
    match &op.kind {
        OpKind::Open {
            handle,
            path,
            flags,
        } => {
            if fs.handles.contains_key(handle) {
                return Err(err(op, format!("handle `{handle}` is already open"))
                    .with_hint("close it first, or use another name"));
            }
            let ino = match fs.lookup(path) {
                _ if flags.tmpfile => open_tmpfile(fs, &mut f, op, path, flags)?,
                Some(ino) => {
                    if flags.create && flags.excl {
                        return Err(err(op, format!("`{path}` already exists (create excl)")));
                    }
                    let kind = fs.inodes[&ino].kind;
                    if kind == Kind::Symlink {
                        return Err(err(
                            op,
                            format!(
                                "`{path}` is a symlink: open would follow it, the model does not \
                                 follow symlinks"
                            ),
                        )
                        .with_hint("open the path the symlink points to"));
                    }
                    if flags.directory && flags.direct {
                        return Err(err(
                            op,
                            format!("`{path}`: O_DIRECT on a directory fails with EINVAL"),
                        ));
                    }
                    if flags.directory && kind != Kind::Dir {
                        return Err(err(op, format!("`{path}` is not a directory")));
                    }
                    if !flags.directory && kind == Kind::Dir {
                        return Err(err(op, format!("`{path}` is a directory"))
                            .with_hint("add the `dir` flag to open a directory"));
                    }
                    if flags.trunc && kind == Kind::Dir {
                        return Err(err(
                            op,
                            format!("`{path}` is a directory: O_TRUNC fails with EISDIR"),
                        ));
                    }
                    if flags.trunc && kind == Kind::File {
                        truncate(fs, &mut f, ino, 0);
                    }
                    ino
                }
                None => {
                    if !flags.create {
                        return Err(err(op, format!("`{path}` does not exist at this point"))
                            .with_hint("add the `create` flag to create it"));
                    }
                    if flags.directory {
                        return Err(err(op, "open cannot create a directory")
                            .with_hint("use `mkdir PATH` first"));
                    }
                    let (dir, name) = fs.parent(path).map_err(|m| err(op, m))?;
                    fs.create(&mut f, dir, name, path, Kind::File)
                }
            };
            let desc = fs.descs.len();
            fs.descs.push(1);
            fs.handles.insert(
                handle.clone(),
                Handle {
                    ino,
                    desc,
                    pos: 0,
                    flags: *flags,
                },
            );
        }
        OpKind::Close { handle: name } => {
            let h = handle(fs, op, name)?.clone();
            fs.handles.remove(name);
            fs.unref(&mut f, h.desc, h.ino);
        }
        OpKind::Write {
            handle: name,
            offset,
            len,
            data,
            data_off,
        } => {
            let h = file_handle(fs, op, name)?;
            // With O_APPEND every write lands at the end of the file, pwrite too (Linux ignores
            // pwrite's offset then: pwrite(2), BUGS).
            let at = match offset {
                _ if h.flags.append => fs.inodes[&h.ino].size,
                Some(o) => *o,
                None => h.pos,
            };
            let end = at
                .checked_add(*len)
                .ok_or_else(|| err(op, "offset + length overflows"))?;
            if h.flags.direct && (at % DIRECT_ALIGN != 0 || *len % DIRECT_ALIGN != 0) {
                return Err(err(
                    op,
                    format!(
                        "O_DIRECT write of {len} bytes at offset {at}: the offset and the length \
                         must be multiples of {DIRECT_ALIGN} (EINVAL)"
                    ),
                )
                .with_hint("align the write, or open the file without `direct`"));
            }
            let doff = data_off.unwrap_or(at);
            fs.use_data(data, doff, *len).map_err(|m| err(op, m))?;
            write_bytes(fs, &mut f, h.ino, at, end, data, doff);
            if h.flags.direct {
                if let Some(d) = f.dirtied.last_mut() {
                    d.direct = true;
                }
            }
            if offset.is_none() {
                fs.handles.get_mut(name).expect("open").pos = end;
            }
            if (h.flags.sync || h.flags.dsync) && *len > 0 {
                f.sync = Some(SyncReq::File {
                    ino: h.ino,
                    datasync: !h.flags.sync,
                    range: Some((at, end)),
                });
            }
        }
        OpKind::Ftruncate { handle: name, size } => {
            let h = file_handle(fs, op, name)?;
            truncate(fs, &mut f, h.ino, *size);
        }
        OpKind::Fallocate {
            handle: name,
            offset,
            len,
            keep_size,
        } => {
            let h = file_handle(fs, op, name)?;
            if *len == 0 {
                return Err(err(op, "fallocate of length 0 fails with EINVAL"));
            }
            let end = offset
                .checked_add(*len)
                .ok_or_else(|| err(op, "offset + length overflows"))?;
            let ino = h.ino;
            let n = fs.inodes.get_mut(&ino).expect("handle's inode exists");
            let old = n.size;
            // Mode 0 grows the file at the syscall (ext4_alloc_file_blocks updates the size in
            // its handle): syscall-time metadata, not a writeback-time `extends`. The new range
            // reads as zeros (the content past the old end is already empty). Nothing is dirtied.
            if !keep_size && end > old {
                n.size = end;
                f.assigns.push(Assign::Size {
                    ino,
                    size: end,
                    holes_from: None,
                });
                fs.cut(ino, old);
                fs.cut(ino, end);
                fs.cut(ino, *offset);
            }
            f.allocated = Some((ino, *offset, end));
            // The allocation moves both fsync tids (ext4_update_inode_fsync_trans(.., 1)).
            f.touched.push(ino);
            f.datasync_touched.push(ino);
        }
        OpKind::SyncFileRange {
            handle: name,
            offset,
            len,
        } => {
            let h = handle(fs, op, name)?.clone();
            let n = &fs.inodes[&h.ino];
            if n.kind == Kind::File {
                let end = if *len == 0 {
                    n.size.max(*offset)
                } else {
                    offset.saturating_add(*len)
                };
                f.writeback = Some((h.ino, *offset, end));
            }
        }
        OpKind::Mmap {
            handle: name,
            map,
            offset,
            len,
        } => {
            let h = file_handle(fs, op, name)?;
            if fs.maps.contains_key(map) {
                return Err(err(op, format!("mapping `{map}` already exists"))
                    .with_hint("munmap it first, or use another name"));
            }
            if offset % BLOCK != 0 {
                return Err(err(
                    op,
                    format!("mmap offset {offset} is not a multiple of the page size ({BLOCK})"),
                ));
            }
            if *len == 0 {
                return Err(err(op, "mmap of length 0 fails with EINVAL"));
            }
            fs.descs[h.desc] += 1;
            fs.maps.insert(
                map.clone(),
                Mapping {
                    ino: h.ino,
                    desc: h.desc,
                    offset: *offset,
                    len: *len,
                },
            );
        }
        OpKind::Store {
            map,
            offset,
            len,
            data,
            data_off,
        } => {
            let m =
                fs.maps.get(map).cloned().ok_or_else(|| {
                    err(op, format!("mapping `{map}` does not exist at this point"))
                })?;
            let end = offset
                .checked_add(*len)
                .ok_or_else(|| err(op, "offset + length overflows"))?;
            if end > m.len {
                return Err(err(
                    op,
                    format!(
                        "store ends at {end}, past the end of the {}-byte mapping",
                        m.len
                    ),
                ));
            }
            let (fstart, fend) = (m.offset + offset, m.offset + end);
            let size = fs.inodes[&m.ino].size;
            if fend > size.div_ceil(BLOCK) * BLOCK {
                return Err(err(op, format!("store touches file offset {fend}, past the last page of the {size}-byte file: SIGBUS"))
                    .with_hint("ftruncate the file to its final size before storing through the mapping"));
            }
            if fend > size {
                return Err(err(
                    op,
                    format!("store past the end of the file ({size} bytes) is not written back"),
                )
                .with_hint("ftruncate the file to its final size first"));
            }
            let doff = data_off.unwrap_or(fstart);
            fs.use_data(data, doff, *len).map_err(|m| err(op, m))?;
            write_bytes(fs, &mut f, m.ino, fstart, fend, data, doff);
            if let Some(d) = f.dirtied.last_mut() {
                d.mapped = true;
            }
        }
        OpKind::Msync {
            map,
            range,
            mode,
            invalidate: _,
        } => {
            let m =
                fs.maps.get(map).cloned().ok_or_else(|| {
                    err(op, format!("mapping `{map}` does not exist at this point"))
                })?;
            let (off, len) = range.unwrap_or((0, m.len));
            if off % BLOCK != 0 {
                return Err(err(
                    op,
                    format!(
                        "msync offset {off} is not a multiple of the page size ({BLOCK}): EINVAL"
                    ),
                ));
            }
            let end = off
                .checked_add(len)
                .ok_or_else(|| err(op, "offset + length overflows"))?;
            if end > m.len {
                return Err(err(
                    op,
                    format!(
                        "msync range ends at {end}, past the {}-byte mapping: ENOMEM",
                        m.len
                    ),
                ));
            }
            if *mode == MsyncMode::Sync {
                let (s, e) = (m.offset + off, m.offset + end);
                fs.cut(m.ino, s);
                fs.cut(m.ino, e);
                f.sync = Some(SyncReq::Msync {
                    ino: m.ino,
                    start: s,
                    end: e,
                });
            }
        }
        OpKind::Munmap { map } => {
            let Some(m) = fs.maps.remove(map) else {
                return Err(err(
                    op,
                    format!("mapping `{map}` does not exist at this point"),
                ));
            };
            fs.unref(&mut f, m.desc, m.ino);
        }
        OpKind::Fsync { handle: name } | OpKind::Fdatasync { handle: name } => {
            let h = handle(fs, op, name)?.clone();
            let datasync = matches!(op.kind, OpKind::Fdatasync { .. });
            f.sync = Some(match fs.inodes[&h.ino].kind {
                Kind::File | Kind::Symlink => SyncReq::File {
                    ino: h.ino,
                    datasync,
                    range: None,
                },
                Kind::Dir => SyncReq::Dir {
                    ino: h.ino,
                    datasync,
                },
            });
        }
        OpKind::Sync => f.sync = Some(SyncReq::All),
        OpKind::Syncfs { handle: name } => {
            handle(fs, op, name)?;
            f.sync = Some(SyncReq::All);
        }
        OpKind::Rename { from, to, mode } => {
            let src = fs.lookup(from).ok_or_else(|| missing(fs, op, from))?;
            let (sdir, sname) = fs.parent(from).map_err(|m| err(op, m))?;
            let (ddir, dname) = fs.parent(to).map_err(|m| err(op, m))?;
            let kind = fs.inodes[&src].kind;
            match mode {
                RenameMode::Exchange => {
                    let dst = fs.lookup(to).ok_or_else(|| {
                        let d = missing(fs, op, to);
                        Diagnostic {
                            message: format!(
                                "{}: RENAME_EXCHANGE needs both names (ENOENT)",
                                d.message
                            ),
                            ..d
                        }
                    })?;
                    exchange(
                        fs,
                        &mut f,
                        op,
                        (src, sdir, sname, from),
                        (dst, ddir, dname, to),
                    )?;
                    f.touched.sort();
                    f.touched.dedup();
                    return Ok(f);
                }
                RenameMode::NoReplace if fs.lookup(to).is_some() => {
                    return Err(err(
                        op,
                        format!("`{to}` already exists: RENAME_NOREPLACE fails with EEXIST"),
                    ));
                }
                _ => {}
            }
            if let Some(dst) = fs.lookup(to) {
                if dst == src {
                    return Ok(f); // rename to itself (or a hard link of itself) does nothing
                }
                let dkind = fs.inodes[&dst].kind;
                match (kind, dkind) {
                    (Kind::File | Kind::Symlink, Kind::Dir) => {
                        return Err(err(op, format!("`{to}` is a directory: EISDIR")))
                    }
                    (Kind::Dir, Kind::File | Kind::Symlink) => {
                        return Err(err(op, format!("`{to}` is not a directory: ENOTDIR")))
                    }
                    (Kind::Dir, Kind::Dir) if fs.children(dst).next().is_some() => {
                        return Err(err(
                            op,
                            format!("`{to}` is a non-empty directory: ENOTEMPTY"),
                        ))
                    }
                    _ => {}
                }
                if kind == Kind::File {
                    f.rename_over = Some((src, dst));
                }
                f.touched.push(dst);
            }
            if kind == Kind::Dir && is_ancestor(fs, src, ddir) {
                return Err(err(op, format!("cannot move `{from}` into itself: EINVAL")));
            }
            fs.entries.remove(&(sdir, sname.clone()));
            fs.entries.insert((ddir, dname.clone()), src);
            fs.names.insert(src, to.clone());
            f.assigns.push(Assign::Entry {
                dir: sdir,
                name: sname,
                target: None,
            });
            f.assigns.push(Assign::Entry {
                dir: ddir,
                name: dname,
                target: Some(src),
            });
            f.touched.extend([src, sdir, ddir]);
        }
        OpKind::Link { from, to } => {
            let src = fs.lookup(from).ok_or_else(|| missing(fs, op, from))?;
            if fs.inodes[&src].kind == Kind::Dir {
                return Err(err(op, format!("`{from}` is a directory: hard links to directories are not allowed (EPERM)")));
            }
            if fs.lookup(to).is_some() {
                return Err(err(op, format!("`{to}` already exists: EEXIST")));
            }
            let (dir, name) = fs.parent(to).map_err(|m| err(op, m))?;
            fs.entries.insert((dir, name.clone()), src);
            f.assigns.push(Assign::Entry {
                dir,
                name,
                target: Some(src),
            });
            f.touched.extend([src, dir]);
        }
        OpKind::Flink { handle: name, path } => {
            let h = handle(fs, op, name)?.clone();
            let ino = h.ino;
            if fs.inodes[&ino].kind == Kind::Dir {
                return Err(err(op, format!("`{name}` is a directory handle: hard links to directories are not allowed (EPERM)")));
            }
            if !fs.has_name(ino) && !fs.linkable.contains(&ino) {
                return Err(err(
                    op,
                    format!("the file of `{name}` has no name left and cannot get one: ENOENT"),
                )
                .with_hint(
                    "only an O_TMPFILE file opened without `excl` and never linked can be given \
                     a name once it has none",
                ));
            }
            if fs.lookup(path).is_some() {
                return Err(err(op, format!("`{path}` already exists: EEXIST")));
            }
            let (dir, entry) = fs.parent(path).map_err(|m| err(op, m))?;
            fs.entries.insert((dir, entry.clone()), ino);
            fs.linkable.remove(&ino);
            fs.names.insert(ino, path.clone());
            f.assigns.push(Assign::Entry {
                dir,
                name: entry,
                target: Some(ino),
            });
            f.touched.extend([ino, dir]);
        }
        OpKind::Symlink { target, path } => {
            if fs.lookup(path).is_some() {
                return Err(err(op, format!("`{path}` already exists: EEXIST")));
            }
            let (dir, name) = fs.parent(path).map_err(|m| err(op, m))?;
            let ino = fs.create(&mut f, dir, name, path, Kind::Symlink);
            fs.symlinks.insert(ino, target.clone());
        }
        OpKind::Unlink { path } => {
            let ino = fs.lookup(path).ok_or_else(|| missing(fs, op, path))?;
            if fs.inodes[&ino].kind == Kind::Dir {
                return Err(err(op, format!("`{path}` is a directory")).with_hint("use `rmdir`"));
            }
            fs.remove_entry(&mut f, path, ino).map_err(|m| err(op, m))?;
        }
        OpKind::Mkdir { path } => {
            if fs.lookup(path).is_some() {
                return Err(err(op, format!("`{path}` already exists: EEXIST")));
            }
            let (dir, name) = fs.parent(path).map_err(|m| err(op, m))?;
            fs.create(&mut f, dir, name, path, Kind::Dir);
        }
        OpKind::Rmdir { path } => {
            let ino = fs.lookup(path).ok_or_else(|| missing(fs, op, path))?;
            if fs.inodes[&ino].kind != Kind::Dir {
                return Err(
                    err(op, format!("`{path}` is not a directory")).with_hint("use `unlink`")
                );
            }
            if fs.children(ino).next().is_some() {
                return Err(err(op, format!("`{path}` is not empty: ENOTEMPTY")));
            }
            fs.remove_entry(&mut f, path, ino).map_err(|m| err(op, m))?;
        }
    }
    f.touched.sort();
    f.touched.dedup();
    Ok(f)
}

/// The paths an op names (resolved in the volatile file system).
fn op_paths(kind: &OpKind) -> Vec<&Path> {
    match kind {
        OpKind::Open { path, .. }
        | OpKind::Unlink { path }
        | OpKind::Mkdir { path }
        | OpKind::Rmdir { path }
        | OpKind::Flink { path, .. }
        | OpKind::Symlink { path, .. } => vec![path],
        OpKind::Rename { from, to, .. } | OpKind::Link { from, to } => vec![from, to],
        _ => Vec::new(),
    }
}

/// `f = open DIR tmpfile`: a new regular file in directory DIR with no name (O_TMPFILE). Its
/// initialisation is the op's metadata, without any entry; `flink` names it later.
fn open_tmpfile(
    fs: &mut Fs,
    f: &mut OpFacts,
    op: &Op,
    path: &Path,
    flags: &OpenFlags,
) -> Result<Ino, Diagnostic> {
    if flags.create {
        return Err(err(op, "O_TMPFILE with O_CREAT fails with EINVAL")
            .with_hint("drop `create`: `tmpfile` always makes a new file"));
    }
    if flags.directory {
        return Err(err(
            op,
            "O_TMPFILE opens a new regular file for writing: `dir` does not go with it",
        )
        .with_hint("drop `dir`: the path of `tmpfile` is already the directory"));
    }
    let dir = fs.lookup(path).ok_or_else(|| missing(fs, op, path))?;
    match fs.inodes[&dir].kind {
        Kind::Dir => {}
        Kind::Symlink => {
            return Err(err(
                op,
                format!("`{path}` is a symlink: the model does not follow symlinks"),
            ))
        }
        Kind::File => {
            return Err(err(
                op,
                format!("`{path}` is not a directory: O_TMPFILE needs one (ENOTDIR)"),
            ))
        }
    }
    let ino = fs.next_ino;
    fs.next_ino += 1;
    fs.inodes.insert(
        ino,
        Inode {
            kind: Kind::File,
            size: 0,
            content: Content::default(),
        },
    );
    if !flags.excl {
        fs.linkable.insert(ino);
    }
    f.assigns.push(Assign::Init {
        ino,
        kind: Kind::File,
    });
    f.touched.push(ino);
    f.datasync_touched.push(ino);
    Ok(ino)
}

/// One side of a rename: its inode, parent directory, entry name and path.
type Side<'a> = (Ino, Ino, String, &'a Path);

/// `rename A B exchange` (RENAME_EXCHANGE): both entries swap their inodes in one op, so every
/// model makes them durable together.
fn exchange(fs: &mut Fs, f: &mut OpFacts, op: &Op, a: Side, b: Side) -> Result<(), Diagnostic> {
    let ((src, sdir, sname, from), (dst, ddir, dname, to)) = (a, b);
    if src == dst {
        return Ok(()); // two names of one inode: vfs_rename does nothing
    }
    for (moved, into, what) in [(src, ddir, from), (dst, sdir, to)] {
        if fs.inodes[&moved].kind == Kind::Dir && is_ancestor(fs, moved, into) {
            return Err(err(
                op,
                format!("cannot exchange `{what}` with a path inside it: EINVAL"),
            ));
        }
    }
    fs.entries.insert((sdir, sname.clone()), dst);
    fs.entries.insert((ddir, dname.clone()), src);
    fs.names.insert(src, to.clone());
    fs.names.insert(dst, from.clone());
    f.assigns.push(Assign::Entry {
        dir: sdir,
        name: sname,
        target: Some(dst),
    });
    f.assigns.push(Assign::Entry {
        dir: ddir,
        name: dname,
        target: Some(src),
    });
    f.touched.extend([src, dst, sdir, ddir]);
    Ok(())
}

fn is_ancestor(fs: &Fs, anc: Ino, mut d: Ino) -> bool {
    loop {
        if d == anc {
            return true;
        }
        if d == 0 {
            return false;
        }
        match fs.entries.iter().find(|(_, &i)| i == d) {
            Some(((p, _), _)) => d = *p,
            None => return false,
        }
    }
}

fn write_bytes(
    fs: &mut Fs,
    f: &mut OpFacts,
    ino: Ino,
    start: u64,
    end: u64,
    data: &str,
    doff: u64,
) {
    if start >= end {
        return;
    }
    let n = fs.inodes.get_mut(&ino).expect("handle's inode exists");
    n.content.write(
        start,
        end,
        Origin::Data {
            name: data.to_string(),
            delta: doff as i64 - start as i64,
        },
    );
    f.dirtied.push(Dirty {
        ino,
        start,
        end,
        mapped: false,
        direct: false,
    });
    f.touched.push(ino); // mtime
    let extends = end > n.size;
    if extends {
        n.size = end;
        f.extends = Some((ino, end));
    }
    fs.cut(ino, start);
    fs.cut(ino, end);
    if extends {
        // Where the block holding an append's last byte starts: a model that treats that block
        // apart from the rest of the append (xfs.size-after-data) cuts the layout there too.
        fs.last_blocks
            .entry(ino)
            .or_default()
            .insert((end - 1) / BLOCK * BLOCK);
    }
}

fn truncate(fs: &mut Fs, f: &mut OpFacts, ino: Ino, size: u64) {
    let n = fs.inodes.get_mut(&ino).expect("handle's inode exists");
    let old = n.size;
    n.size = size;
    n.content.clip(size);
    let holes_from = if size < old {
        Some(size.div_ceil(BLOCK))
    } else {
        None
    };
    if size < old && !size.is_multiple_of(BLOCK) {
        // The tail of the new last page is zeroed in the page cache and written back.
        f.dirtied.push(Dirty {
            ino,
            start: size,
            end: (size / BLOCK + 1) * BLOCK,
            mapped: false,
            direct: false,
        });
    }
    f.assigns.push(Assign::Size {
        ino,
        size,
        holes_from,
    });
    f.touched.push(ino);
    f.datasync_touched.push(ino);
    if size == 0 {
        f.trunc_to_zero = Some(ino);
    }
    fs.cut(ino, size);
    fs.cut(ino, old);
}
