//! Programs built in Rust: [`ProgramBuilder`] and the property constructors of [`prop`].
//!
//! A built program is printed to `.up` text with [`unplug_model::print`] and loaded back with
//! [`unplug_model::load`], so it is exactly the program a `.up` file with that text would be
//! (spans and op texts included), its semantic errors are found by the same checks, and
//! [`Built::source`] can be saved and handed to the `unplug` command line.

use unplug_model::{
    print, Cmp, ContentRef, DataDecl, Diagnostic, Expr, MsyncMode, Op, OpKind, OpenFlags, Path,
    Program, ProgramErrors, Property, RenameMode, Span, Trace, When,
};

/// A path from its text: `dir/file`, or `.` for the root.
pub fn path(text: &str) -> Path {
    Path(
        text.split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .map(str::to_string)
            .collect(),
    )
}

/// The flags of [`ProgramBuilder::open`]: `Open::new().create().trunc()`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Open(OpenFlags);

macro_rules! open_flags {
    ($($(#[$doc:meta])* $name:ident),*) => {
        impl Open {
            /// No flags: an existing file, read-write.
            pub fn new() -> Open {
                Open::default()
            }
            $($(#[$doc])* pub fn $name(mut self) -> Open {
                self.0.$name = true;
                self
            })*
        }
    };
}

open_flags!(
    /// O_CREAT
    create,
    /// O_EXCL
    excl,
    /// O_TRUNC
    trunc,
    /// O_APPEND
    append,
    /// O_SYNC: each write is followed by an fsync of the range written.
    sync,
    /// O_DSYNC: each write is followed by an fdatasync of the range written.
    dsync,
    /// O_DIRECTORY: a directory handle (for fsync of a directory).
    directory,
    /// O_TMPFILE: an unnamed file in the directory the path names.
    tmpfile,
    /// O_DIRECT: writes bypass the page cache (offsets and lengths multiples of 512).
    direct
);

/// Builds a program op by op. Each method appends one op to the program (or, inside
/// [`ProgramBuilder::setup`], to its setup block) and returns the builder.
///
/// ```
/// use unplug::{prop, ProgramBuilder};
/// let built = ProgramBuilder::new()
///     .open("f", "a", unplug::Open::new().create())
///     .write("f", 4096, "D")
///     .fsync("f")
///     .property("P", unplug::after(3), prop::exists("a"))
///     .build()
///     .unwrap();
/// assert_eq!(built.program.ops.len(), 3);
/// assert!(built.source.contains("fsync f"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct ProgramBuilder {
    program: Program,
    in_setup: bool,
    /// Calls that named no op (a label before any op), reported by `build`.
    misuse: Vec<String>,
}

/// A built program: the program, its volatile trace (what a running system sees after each op),
/// and its `.up` text.
#[derive(Clone, Debug)]
pub struct Built {
    pub program: Program,
    pub trace: Trace,
    /// The program as `.up` text: save it to use the command line (`unplug check`, `explain`).
    pub source: String,
}

/// When a property must hold: at every crash point.
pub fn always() -> When {
    When::Always
}

/// When a property must hold: at every crash point from op `op` (1-based) on, that is once op
/// `op` has returned.
pub fn after(op: usize) -> When {
    When::After {
        op,
        written: op.to_string(),
    }
}

impl ProgramBuilder {
    pub fn new() -> ProgramBuilder {
        ProgramBuilder::default()
    }

    /// How many ops (not counting the setup block) the program has so far: the number of the
    /// op added last, for `after(b.len())`.
    pub fn len(&self) -> usize {
        self.program.ops.len()
    }

    /// Whether no op has been added yet (outside the setup block).
    pub fn is_empty(&self) -> bool {
        self.program.ops.is_empty()
    }

    /// Declares the length of a named data (without it, the largest end any write of it uses).
    pub fn data(mut self, name: &str, len: u64) -> ProgramBuilder {
        self.program.data.push(DataDecl {
            name: name.to_string(),
            len,
            source: None,
            span: Span::default(),
        });
        self
    }

    /// The ops `ops` adds go to the setup block: their result is durable before crash point 0.
    pub fn setup(mut self, ops: impl FnOnce(ProgramBuilder) -> ProgramBuilder) -> ProgramBuilder {
        let was = std::mem::replace(&mut self.in_setup, true);
        let mut b = ops(self);
        b.in_setup = was;
        b
    }

    /// Appends an op given as its [`OpKind`] (every op of the language has a method too).
    pub fn op(mut self, kind: OpKind) -> ProgramBuilder {
        let op = Op {
            kind,
            label: None,
            text: String::new(),
            span: Span::default(),
            site: None,
        };
        if self.in_setup {
            self.program.setup.push(op);
        } else {
            self.program.ops.push(op);
        }
        self
    }

    /// Labels the op added last (`publish: rename tmp final`); properties can then say
    /// `after publish` through [`ProgramBuilder::property_after_label`].
    pub fn label(mut self, label: &str) -> ProgramBuilder {
        let ops = if self.in_setup {
            &mut self.program.setup
        } else {
            &mut self.program.ops
        };
        match ops.last_mut() {
            Some(op) => op.label = Some(label.to_string()),
            None => self
                .misuse
                .push(format!("label `{label}` given before any op it could name")),
        }
        self
    }

    /// `property NAME: always EXPR` or `property NAME: after N: EXPR`.
    pub fn property(mut self, name: &str, when: When, expr: Expr) -> ProgramBuilder {
        self.program.properties.push(Property {
            name: name.to_string(),
            when,
            expr,
            text: String::new(),
            span: Span::default(),
        });
        self
    }

    /// `property NAME: after LABEL: EXPR`, the label of an op given with [`ProgramBuilder::label`].
    pub fn property_after_label(self, name: &str, label: &str, expr: Expr) -> ProgramBuilder {
        let op = self
            .program
            .ops
            .iter()
            .position(|o| o.label.as_deref() == Some(label))
            .map_or(0, |i| i + 1);
        self.property(
            name,
            When::After {
                op,
                written: label.to_string(),
            },
            expr,
        )
    }

    /// Prints the program and loads it back: every syntax and semantic error (a handle used
    /// before its open, a rename of a missing file...) comes back with the printed text, so that
    /// they render with `file:line:col` and a caret.
    pub fn build(self) -> Result<Built, ProgramErrors> {
        let source = print::program(&self.program);
        let mut errors: Vec<Diagnostic> = (self.misuse.iter())
            .map(|m| {
                Diagnostic::new(Span::default(), m.clone())
                    .with_hint("call `label` after the op it names")
            })
            .collect();
        match unplug_model::load(&source) {
            Ok((program, trace)) if errors.is_empty() => Ok(Built {
                program,
                trace,
                source,
            }),
            Ok(_) => Err(ProgramErrors::new("<built program>", &source, errors)),
            Err(more) => {
                errors.extend(more);
                Err(ProgramErrors::new("<built program>", &source, errors))
            }
        }
    }
}

/// One method per op of the language, each appending that op.
impl ProgramBuilder {
    /// `HANDLE = open PATH FLAGS`
    pub fn open(self, handle: &str, path_: &str, flags: Open) -> ProgramBuilder {
        self.op(OpKind::Open {
            handle: handle.into(),
            path: path(path_),
            flags: flags.0,
        })
    }
    /// `close HANDLE`
    pub fn close(self, handle: &str) -> ProgramBuilder {
        self.op(OpKind::Close {
            handle: handle.into(),
        })
    }
    /// `write HANDLE LEN DATA`: at the handle's position (at the end with `append`).
    pub fn write(self, handle: &str, len: u64, data: &str) -> ProgramBuilder {
        self.op(OpKind::Write {
            handle: handle.into(),
            offset: None,
            len,
            data: data.into(),
            data_off: None,
        })
    }
    /// `pwrite HANDLE OFF LEN DATA`
    pub fn pwrite(self, handle: &str, offset: u64, len: u64, data: &str) -> ProgramBuilder {
        self.op(OpKind::Write {
            handle: handle.into(),
            offset: Some(offset),
            len,
            data: data.into(),
            data_off: None,
        })
    }
    /// `ftruncate HANDLE SIZE`
    pub fn ftruncate(self, handle: &str, size: u64) -> ProgramBuilder {
        self.op(OpKind::Ftruncate {
            handle: handle.into(),
            size,
        })
    }
    /// `fallocate HANDLE OFF LEN [keep-size]`
    pub fn fallocate(self, handle: &str, offset: u64, len: u64, keep_size: bool) -> ProgramBuilder {
        self.op(OpKind::Fallocate {
            handle: handle.into(),
            offset,
            len,
            keep_size,
        })
    }
    /// `sync_file_range HANDLE OFF LEN` (SYNC_FILE_RANGE_WRITE: starts writeback, persists nothing)
    pub fn sync_file_range(self, handle: &str, offset: u64, len: u64) -> ProgramBuilder {
        self.op(OpKind::SyncFileRange {
            handle: handle.into(),
            offset,
            len,
        })
    }
    /// `MAP = mmap HANDLE OFF LEN` (MAP_SHARED)
    pub fn mmap(self, handle: &str, map: &str, offset: u64, len: u64) -> ProgramBuilder {
        self.op(OpKind::Mmap {
            handle: handle.into(),
            map: map.into(),
            offset,
            len,
        })
    }
    /// `store MAP OFF LEN DATA`
    pub fn store(self, map: &str, offset: u64, len: u64, data: &str) -> ProgramBuilder {
        self.op(OpKind::Store {
            map: map.into(),
            offset,
            len,
            data: data.into(),
            data_off: None,
        })
    }
    /// `msync MAP sync|async` over the whole mapping.
    pub fn msync(self, map: &str, mode: MsyncMode) -> ProgramBuilder {
        self.op(OpKind::Msync {
            map: map.into(),
            range: None,
            mode,
            invalidate: false,
        })
    }
    /// `munmap MAP`
    pub fn munmap(self, map: &str) -> ProgramBuilder {
        self.op(OpKind::Munmap { map: map.into() })
    }
    /// `fsync HANDLE` (a file or a directory handle)
    pub fn fsync(self, handle: &str) -> ProgramBuilder {
        self.op(OpKind::Fsync {
            handle: handle.into(),
        })
    }
    /// `fdatasync HANDLE`
    pub fn fdatasync(self, handle: &str) -> ProgramBuilder {
        self.op(OpKind::Fdatasync {
            handle: handle.into(),
        })
    }
    /// `sync`
    pub fn sync(self) -> ProgramBuilder {
        self.op(OpKind::Sync)
    }
    /// `syncfs HANDLE`
    pub fn syncfs(self, handle: &str) -> ProgramBuilder {
        self.op(OpKind::Syncfs {
            handle: handle.into(),
        })
    }
    /// `rename FROM TO` (replacing TO if it exists)
    pub fn rename(self, from: &str, to: &str) -> ProgramBuilder {
        self.rename_mode(from, to, RenameMode::Replace)
    }
    /// `rename FROM TO exchange|noreplace`
    pub fn rename_mode(self, from: &str, to: &str, mode: RenameMode) -> ProgramBuilder {
        self.op(OpKind::Rename {
            from: path(from),
            to: path(to),
            mode,
        })
    }
    /// `link EXISTING NEW`
    pub fn link(self, from: &str, to: &str) -> ProgramBuilder {
        self.op(OpKind::Link {
            from: path(from),
            to: path(to),
        })
    }
    /// `flink HANDLE PATH` (linkat with AT_EMPTY_PATH: names an O_TMPFILE file)
    pub fn flink(self, handle: &str, to: &str) -> ProgramBuilder {
        self.op(OpKind::Flink {
            handle: handle.into(),
            path: path(to),
        })
    }
    /// `symlink TARGET PATH`
    pub fn symlink(self, target: &str, at: &str) -> ProgramBuilder {
        self.op(OpKind::Symlink {
            target: target.into(),
            path: path(at),
        })
    }
    /// `unlink PATH`
    pub fn unlink(self, at: &str) -> ProgramBuilder {
        self.op(OpKind::Unlink { path: path(at) })
    }
    /// `mkdir PATH`
    pub fn mkdir(self, at: &str) -> ProgramBuilder {
        self.op(OpKind::Mkdir { path: path(at) })
    }
    /// `rmdir PATH`
    pub fn rmdir(self, at: &str) -> ProgramBuilder {
        self.op(OpKind::Rmdir { path: path(at) })
    }
}

/// Properties over one crash state, combined with [`Expr::and`]-style methods of [`PropExt`]:
/// `prop::exists("final").implies(prop::content("final", "D"))`.
pub mod prop {
    use super::{path, Cmp, ContentRef, Expr};

    /// `exists PATH`
    pub fn exists(p: &str) -> Expr {
        Expr::Exists(path(p))
    }
    /// `PATH == DATA`: the file holds all of the named data (false if it does not exist).
    pub fn content(p: &str, data: &str) -> Expr {
        Expr::ContentEq(path(p), ContentRef::Data(data.into()))
    }
    /// `PATH == old`: the content it had after the setup block (false if it does not exist).
    pub fn is_old(p: &str) -> Expr {
        Expr::ContentEq(path(p), ContentRef::Old)
    }
    /// `PATH == new`: the content after the last op, as a running system reads it.
    pub fn is_new(p: &str) -> Expr {
        Expr::ContentEq(path(p), ContentRef::New)
    }
    /// `PATH == empty`
    pub fn is_empty(p: &str) -> Expr {
        Expr::ContentEq(path(p), ContentRef::Empty)
    }
    /// `PATH prefix-of DATA`
    pub fn prefix_of(p: &str, data: &str) -> Expr {
        Expr::PrefixOf(path(p), data.into())
    }
    /// `size PATH CMP N`
    pub fn size(p: &str, cmp: Cmp, n: u64) -> Expr {
        Expr::Size(path(p), cmp, n)
    }
    /// `links PATH CMP N`
    pub fn links(p: &str, cmp: Cmp, n: u64) -> Expr {
        Expr::Links(path(p), cmp, n)
    }
    /// `entries PATH == {NAMES}`
    pub fn entries(p: &str, names: &[&str]) -> Expr {
        Expr::Entries(path(p), names.iter().map(|n| n.to_string()).collect())
    }
    /// `readlink PATH == TARGET`
    pub fn readlink(p: &str, target: &str) -> Expr {
        Expr::Readlink(path(p), target.into())
    }
    /// `not EXPR`
    pub fn not(e: Expr) -> Expr {
        Expr::Not(Box::new(e))
    }
}

/// `and`, `or` and `implies` as methods on [`Expr`].
pub trait PropExt {
    fn and(self, other: Expr) -> Expr;
    fn or(self, other: Expr) -> Expr;
    fn implies(self, other: Expr) -> Expr;
}

impl PropExt for Expr {
    fn and(self, other: Expr) -> Expr {
        Expr::And(Box::new(self), Box::new(other))
    }
    fn or(self, other: Expr) -> Expr {
        Expr::Or(Box::new(self), Box::new(other))
    }
    fn implies(self, other: Expr) -> Expr {
        Expr::Implies(Box::new(self), Box::new(other))
    }
}
