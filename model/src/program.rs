//! The abstract syntax of an unplug program: ops, named data, properties.
//!
//! A program is what the parser produces from a `.up` file and what every other part of unplug
//! consumes. Ops are numbered from 1 in source order (setup ops are not numbered: they happen
//! before crash point 0 and their result is durable). Every node keeps the byte span it came from
//! so that later checks (the volatile execution in [`crate::volatile`]) can point at the source.

use serde::Serialize;
use std::fmt;
use std::sync::Arc;

/// A byte range `[start, end)` in the source text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }
}

/// A path relative to the root of the file system under test, e.g. `dir/file`.
/// Components are non-empty and never `.` or `..`; the root itself is the empty path, written `.`.
///
/// The components are shared (cloning a path is a reference count), since crash states hold
/// many copies of the same paths; a path compares, hashes, prints and serializes as its list of
/// components. Build one with `Path(vec.into())` or by collecting components.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Path(pub Arc<[String]>);

impl Ord for Path {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if Arc::ptr_eq(&self.0, &other.0) {
            return std::cmp::Ordering::Equal;
        }
        self.0.cmp(&other.0)
    }
}

impl PartialOrd for Path {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Serialize for Path {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_newtype_struct("Path", &*self.0)
    }
}

impl Path {
    pub fn root() -> Self {
        Path(Arc::from([]))
    }
    pub fn parent(&self) -> Option<Path> {
        if self.0.is_empty() {
            None
        } else {
            Some(Path(self.0[..self.0.len() - 1].into()))
        }
    }
    pub fn file_name(&self) -> Option<&str> {
        self.0.last().map(String::as_str)
    }
    pub fn join(&self, name: &str) -> Path {
        Path(
            self.0
                .iter()
                .cloned()
                .chain(std::iter::once(name.to_string()))
                .collect(),
        )
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            write!(f, ".")
        } else {
            write!(f, "{}", self.0.join("/"))
        }
    }
}

/// Flags of `open`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OpenFlags {
    /// O_CREAT
    pub create: bool,
    /// O_EXCL
    pub excl: bool,
    /// O_TRUNC
    pub trunc: bool,
    /// O_APPEND
    pub append: bool,
    /// O_SYNC: every write is followed by an fsync of the written range.
    pub sync: bool,
    /// O_DSYNC: every write is followed by an fdatasync of the written range.
    pub dsync: bool,
    /// O_DIRECTORY: the handle refers to a directory (for fsync of a directory).
    pub directory: bool,
    /// O_TMPFILE: the path names a directory, and the handle refers to a new unnamed regular
    /// file in it (`flink` gives it a name; with `excl` it can never get one).
    pub tmpfile: bool,
    /// O_DIRECT: writes bypass the page cache; their offset and length must be multiples of
    /// [`DIRECT_ALIGN`] (EINVAL otherwise).
    pub direct: bool,
}

/// The alignment O_DIRECT writes need (in file offset and length): the logical block size of the
/// device, 512 bytes on most disks (some need 4096).
pub const DIRECT_ALIGN: u64 = 512;

/// How `rename` treats the target (renameat2 flags).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum RenameMode {
    /// rename(2): the target is replaced if it exists.
    #[default]
    Replace,
    /// RENAME_EXCHANGE: both names must exist; they swap atomically.
    Exchange,
    /// RENAME_NOREPLACE: fails with EEXIST if the target exists.
    NoReplace,
}

/// How `msync` is asked to behave.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum MsyncMode {
    /// MS_SYNC: a ranged fdatasync of the mapped file (mm/msync.c).
    Sync,
    /// MS_ASYNC: a no-op on Linux since 2.6.17 (mm/msync.c).
    Async,
}

/// One operation of the program.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum OpKind {
    /// `f = open PATH [create] [excl] [trunc] [append] [sync] [dsync] [dir] [tmpfile] [direct]`
    Open {
        handle: String,
        path: Path,
        flags: OpenFlags,
    },
    /// `close f`
    Close { handle: String },
    /// `write f LEN DATA` (at the handle's position, or at the end with `append`)
    /// and `pwrite f OFF LEN DATA`. The bytes written are `DATA[data_off .. data_off + len]`;
    /// `data_off` defaults to the file offset, so `DATA` names the intended whole-file content.
    Write {
        handle: String,
        offset: Option<u64>,
        len: u64,
        data: String,
        data_off: Option<u64>,
    },
    /// `ftruncate f SIZE`
    Ftruncate { handle: String, size: u64 },
    /// `fallocate f OFF LEN [keep-size]`: fallocate(2) mode 0 (allocates the range; the file
    /// grows to `OFF + LEN` if that is past its end) or FALLOC_FL_KEEP_SIZE (the size stays).
    Fallocate {
        handle: String,
        offset: u64,
        len: u64,
        keep_size: bool,
    },
    /// `sync_file_range f OFF LEN`: sync_file_range(2) with SYNC_FILE_RANGE_WRITE only: starts
    /// writeback of the dirty pages of the range (LEN 0: to the end of the file) and waits for
    /// nothing. It is not a sync: it makes nothing durable.
    SyncFileRange {
        handle: String,
        offset: u64,
        len: u64,
    },
    /// `m = mmap f OFF LEN` (a MAP_SHARED mapping of the file range)
    Mmap {
        handle: String,
        map: String,
        offset: u64,
        len: u64,
    },
    /// `store m OFF LEN DATA`: stores through the mapping at mapping offset OFF.
    Store {
        map: String,
        offset: u64,
        len: u64,
        data: String,
        data_off: Option<u64>,
    },
    /// `msync m [OFF LEN] sync|async [invalidate]`; no range means the whole mapping.
    Msync {
        map: String,
        range: Option<(u64, u64)>,
        mode: MsyncMode,
        invalidate: bool,
    },
    /// `munmap m`
    Munmap { map: String },
    /// `fsync f` (file or directory handle)
    Fsync { handle: String },
    /// `fdatasync f`
    Fdatasync { handle: String },
    /// `sync`
    Sync,
    /// `syncfs f`
    Syncfs { handle: String },
    /// `rename FROM TO [exchange|noreplace]`
    Rename {
        from: Path,
        to: Path,
        mode: RenameMode,
    },
    /// `link EXISTING NEW`
    Link { from: Path, to: Path },
    /// `flink f PATH`: gives the file of handle `f` the name PATH (linkat(2) of the descriptor
    /// with AT_EMPTY_PATH): how an O_TMPFILE file gets a name.
    Flink { handle: String, path: Path },
    /// `symlink TARGET PATH`: a new symbolic link at PATH holding the text TARGET. The model never
    /// follows symlinks.
    Symlink { target: String, path: Path },
    /// `unlink PATH`
    Unlink { path: Path },
    /// `mkdir PATH`
    Mkdir { path: Path },
    /// `rmdir PATH`
    Rmdir { path: Path },
}

impl OpKind {
    /// Whether this op is one of the sync calls that sync analysis asks about.
    pub fn is_sync(&self) -> bool {
        matches!(
            self,
            OpKind::Fsync { .. }
                | OpKind::Fdatasync { .. }
                | OpKind::Sync
                | OpKind::Syncfs { .. }
                | OpKind::Msync {
                    mode: MsyncMode::Sync,
                    ..
                }
        )
    }
}

/// An op as written, with its optional label and source location.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Op {
    pub kind: OpKind,
    /// `publish: rename tmp final` gives the label `publish`.
    pub label: Option<String>,
    /// The op's text as written in the source (trimmed, without label or comment).
    pub text: String,
    pub span: Span,
}

/// What content a path is compared with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum ContentRef {
    /// A named data (`D`): the whole of it, `[0, len(D))`.
    Data(String),
    /// `old`: the path's content in the durable state before crash point 0 (after setup).
    Old,
    /// `new`: the path's content after the last op, as a running system would read it.
    New,
    /// `empty`: zero bytes.
    Empty,
}

/// Comparison operators for sizes and link counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    pub fn eval(self, a: u64, b: u64) -> bool {
        match self {
            Cmp::Eq => a == b,
            Cmp::Ne => a != b,
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
        }
    }
    pub fn symbol(self) -> &'static str {
        match self {
            Cmp::Eq => "==",
            Cmp::Ne => "!=",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
        }
    }
}

/// A predicate over one crash state.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Expr {
    /// `exists PATH`
    Exists(Path),
    /// `size PATH CMP SIZE` (false if PATH does not exist or is a directory)
    Size(Path, Cmp, u64),
    /// `PATH == D | old | new | empty` (false if PATH does not exist)
    ContentEq(Path, ContentRef),
    /// `PATH prefix-of D`: the content is `D[0..size]` (false if it does not exist)
    PrefixOf(Path, String),
    /// `entries PATH == {a, b}`: the directory holds exactly these names
    Entries(Path, Vec<String>),
    /// `links PATH CMP N`: the link count of what PATH names
    Links(Path, Cmp, u64),
    /// `readlink PATH == TARGET`: PATH is a symlink whose target is TARGET (false if PATH does
    /// not exist or is not a symlink)
    Readlink(Path, String),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Implies(Box<Expr>, Box<Expr>),
}

/// When a property must hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum When {
    /// `always`: at every crash point, 0 ..= number of ops.
    Always,
    /// `after N` / `after LABEL`: at every crash point k >= N (durability once op N returned).
    /// Resolved by the parser: `op` is the 1-based op number.
    After { op: usize, written: String },
}

/// `property NAME: always EXPR` or `property NAME: after N: EXPR`
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Property {
    pub name: String,
    pub when: When,
    pub expr: Expr,
    /// The property's text as written (after `property NAME:`).
    pub text: String,
    pub span: Span,
}

/// `data NAME SIZE`: declares the length of a named data. Without a declaration, a data's length
/// is the largest end offset (`data_off + len`) any write or store uses.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DataDecl {
    pub name: String,
    pub len: u64,
    pub span: Span,
}

/// A whole parsed program.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Program {
    /// Ops of the `setup ... end` block: their result is durable before crash point 0.
    pub setup: Vec<Op>,
    /// The program's ops; op number i (1-based) is `ops[i - 1]`.
    pub ops: Vec<Op>,
    pub data: Vec<DataDecl>,
    pub properties: Vec<Property>,
}
