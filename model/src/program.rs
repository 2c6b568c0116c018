//! The abstract syntax of an unplug program: ops, named data, properties.
//!
//! A program is what the parser produces from a `.up` file and what every other part of unplug
//! consumes. Ops are numbered from 1 in source order (setup ops are not numbered: they happen
//! before crash point 0 and their result is durable). Every node keeps the byte span it came from
//! so that later checks (the volatile execution in [`crate::volatile`]) can point at the source.

use serde::Serialize;
use std::fmt;
use std::sync::Arc;

mod op;
pub use op::*;

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
    /// `checker`: the application's own checker (`--checker CMD`) accepts the crash state, run on
    /// it materialized as a directory tree. `checker {a, b/c}`: the checker reads only these
    /// paths (each one's existence, kind, size and content), so the tree it is given holds only
    /// them and states that differ elsewhere are one state to it; with no paths it reads the
    /// whole tree.
    Checker(Vec<Path>),
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

/// `data NAME SIZE [hex HEXDIGITS | file RELPATH]`: declares the length of a named data, and
/// optionally its real content. Without a declaration, a data's length is the largest end offset
/// (`data_off + len`) any write or store uses.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DataDecl {
    pub name: String,
    /// The length the model uses (a source holds exactly this many bytes).
    pub len: u64,
    /// Where the data's real bytes are, if the program carries them (`unplug trace` records
    /// them); without a source, real runs write self-describing patterns.
    pub source: Option<DataSource>,
    pub span: Span,
}

/// The real content of a data: inline, or in a file. The model never reads the file (it does no
/// I/O); the CLI does, and checks its length against the declared `SIZE`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum DataSource {
    /// `hex HEXDIGITS`: the bytes themselves (exactly `SIZE` of them).
    Hex(Vec<u8>),
    /// `file RELPATH`: a file of exactly `SIZE` bytes, its path relative to the directory of the
    /// `.up` file (letters, digits, `_`, `.`, `-` and `/`; no spaces, no leading `/`).
    File(String),
}

/// A whole parsed program.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Program {
    /// Ops of the `setup ... end` block: their result is durable before crash point 0.
    pub setup: Vec<Op>,
    /// The program's ops; op number k (1-based) is [`Program::op`]`(k)`, `ops[k.index()]`.
    pub ops: Vec<Op>,
    pub data: Vec<DataDecl>,
    pub properties: Vec<Property>,
    /// What the application wrote to its standard output, and when (`stdout hex HEX` lines,
    /// written by `unplug trace`): a checker learns what was printed before the crash.
    pub outputs: Vec<Output>,
}

/// `stdout hex HEXDIGITS`: bytes the application wrote to its standard output after op `after`
/// (the number of program ops before the line) and before the next op.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Output {
    pub after: usize,
    pub bytes: Vec<u8>,
    pub span: Span,
}

impl Program {
    /// What the application had printed by crash point `k`: every output written before op
    /// `k + 1` was issued (a crash just before op `k + 1` leaves the same disk states as one
    /// right after op `k`).
    pub fn output_before(&self, k: usize) -> Vec<u8> {
        self.outputs
            .iter()
            .filter(|o| o.after <= k)
            .flat_map(|o| o.bytes.iter().copied())
            .collect()
    }
}

impl Program {
    /// Op number `k`.
    pub fn op(&self, k: crate::OpNo) -> &Op {
        &self.ops[k.index()]
    }
    /// Op number `k`, or None past the last op.
    pub fn get_op(&self, k: crate::OpNo) -> Option<&Op> {
        self.ops.get(k.index())
    }
    /// The op numbers `1 ..= ops.len()`.
    pub fn op_nos(&self) -> impl DoubleEndedIterator<Item = crate::OpNo> + ExactSizeIterator {
        (0..self.ops.len()).map(crate::OpNo::from_index)
    }
}
