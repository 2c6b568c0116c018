//! One op of a program: its syntax tree (`OpKind`, `Op`, the flags and modes) and the
//! questions every later stage asks about an op (which handle, mapping, paths and data it uses,
//! whether it is a sync, its keyword).
//!
//! Each question is an exhaustive `match` with no wildcard arm, so that a new `OpKind` variant
//! makes the compiler point at every one of them; code elsewhere asks these accessors rather
//! than matching on `OpKind` with a catch-all arm that would silently take the new op in.

use super::{Path, Span};
use serde::Serialize;

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
    /// The op's keyword as written in a program (`pwrite` for a write at an explicit offset).
    pub fn name(&self) -> &'static str {
        match self {
            OpKind::Open { .. } => "open",
            OpKind::Close { .. } => "close",
            OpKind::Write { offset: None, .. } => "write",
            OpKind::Write {
                offset: Some(_), ..
            } => "pwrite",
            OpKind::Ftruncate { .. } => "ftruncate",
            OpKind::Fallocate { .. } => "fallocate",
            OpKind::SyncFileRange { .. } => "sync_file_range",
            OpKind::Mmap { .. } => "mmap",
            OpKind::Store { .. } => "store",
            OpKind::Msync { .. } => "msync",
            OpKind::Munmap { .. } => "munmap",
            OpKind::Fsync { .. } => "fsync",
            OpKind::Fdatasync { .. } => "fdatasync",
            OpKind::Sync => "sync",
            OpKind::Syncfs { .. } => "syncfs",
            OpKind::Rename { .. } => "rename",
            OpKind::Link { .. } => "link",
            OpKind::Flink { .. } => "flink",
            OpKind::Symlink { .. } => "symlink",
            OpKind::Unlink { .. } => "unlink",
            OpKind::Mkdir { .. } => "mkdir",
            OpKind::Rmdir { .. } => "rmdir",
        }
    }

    /// The file handle the op uses, or defines (`open`); `mmap` uses one to define a mapping.
    pub fn handle(&self) -> Option<&str> {
        match self {
            OpKind::Open { handle, .. }
            | OpKind::Close { handle }
            | OpKind::Write { handle, .. }
            | OpKind::Ftruncate { handle, .. }
            | OpKind::Fallocate { handle, .. }
            | OpKind::SyncFileRange { handle, .. }
            | OpKind::Mmap { handle, .. }
            | OpKind::Fsync { handle }
            | OpKind::Fdatasync { handle }
            | OpKind::Syncfs { handle }
            | OpKind::Flink { handle, .. } => Some(handle),
            OpKind::Store { .. }
            | OpKind::Msync { .. }
            | OpKind::Munmap { .. }
            | OpKind::Sync
            | OpKind::Rename { .. }
            | OpKind::Link { .. }
            | OpKind::Symlink { .. }
            | OpKind::Unlink { .. }
            | OpKind::Mkdir { .. }
            | OpKind::Rmdir { .. } => None,
        }
    }

    /// The mapping the op uses, or defines (`mmap`).
    pub fn map(&self) -> Option<&str> {
        match self {
            OpKind::Mmap { map, .. }
            | OpKind::Store { map, .. }
            | OpKind::Msync { map, .. }
            | OpKind::Munmap { map } => Some(map),
            OpKind::Open { .. }
            | OpKind::Close { .. }
            | OpKind::Write { .. }
            | OpKind::Ftruncate { .. }
            | OpKind::Fallocate { .. }
            | OpKind::SyncFileRange { .. }
            | OpKind::Fsync { .. }
            | OpKind::Fdatasync { .. }
            | OpKind::Sync
            | OpKind::Syncfs { .. }
            | OpKind::Rename { .. }
            | OpKind::Link { .. }
            | OpKind::Flink { .. }
            | OpKind::Symlink { .. }
            | OpKind::Unlink { .. }
            | OpKind::Mkdir { .. }
            | OpKind::Rmdir { .. } => None,
        }
    }

    /// The paths the op names, read or written, in the order written (`rename FROM TO`: FROM,
    /// then TO). An op on a handle or a mapping names no path: it reaches its file through the
    /// handle.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        let (first, second) = match self {
            OpKind::Open { path, .. }
            | OpKind::Flink { path, .. }
            | OpKind::Symlink { path, .. }
            | OpKind::Unlink { path }
            | OpKind::Mkdir { path }
            | OpKind::Rmdir { path } => (Some(path), None),
            OpKind::Rename { from, to, .. } | OpKind::Link { from, to } => (Some(from), Some(to)),
            OpKind::Close { .. }
            | OpKind::Write { .. }
            | OpKind::Ftruncate { .. }
            | OpKind::Fallocate { .. }
            | OpKind::SyncFileRange { .. }
            | OpKind::Mmap { .. }
            | OpKind::Store { .. }
            | OpKind::Msync { .. }
            | OpKind::Munmap { .. }
            | OpKind::Fsync { .. }
            | OpKind::Fdatasync { .. }
            | OpKind::Sync
            | OpKind::Syncfs { .. } => (None, None),
        };
        first.into_iter().chain(second)
    }

    /// The named data the op writes (`write`, `pwrite`, `store`).
    pub fn data(&self) -> Option<&str> {
        match self {
            OpKind::Write { data, .. } | OpKind::Store { data, .. } => Some(data),
            OpKind::Open { .. }
            | OpKind::Close { .. }
            | OpKind::Ftruncate { .. }
            | OpKind::Fallocate { .. }
            | OpKind::SyncFileRange { .. }
            | OpKind::Mmap { .. }
            | OpKind::Msync { .. }
            | OpKind::Munmap { .. }
            | OpKind::Fsync { .. }
            | OpKind::Fdatasync { .. }
            | OpKind::Sync
            | OpKind::Syncfs { .. }
            | OpKind::Rename { .. }
            | OpKind::Link { .. }
            | OpKind::Flink { .. }
            | OpKind::Symlink { .. }
            | OpKind::Unlink { .. }
            | OpKind::Mkdir { .. }
            | OpKind::Rmdir { .. } => None,
        }
    }

    /// The named data the op writes, to rename it (realfs salts data names per job).
    pub fn data_mut(&mut self) -> Option<&mut String> {
        match self {
            OpKind::Write { data, .. } | OpKind::Store { data, .. } => Some(data),
            OpKind::Open { .. }
            | OpKind::Close { .. }
            | OpKind::Ftruncate { .. }
            | OpKind::Fallocate { .. }
            | OpKind::SyncFileRange { .. }
            | OpKind::Mmap { .. }
            | OpKind::Msync { .. }
            | OpKind::Munmap { .. }
            | OpKind::Fsync { .. }
            | OpKind::Fdatasync { .. }
            | OpKind::Sync
            | OpKind::Syncfs { .. }
            | OpKind::Rename { .. }
            | OpKind::Link { .. }
            | OpKind::Flink { .. }
            | OpKind::Symlink { .. }
            | OpKind::Unlink { .. }
            | OpKind::Mkdir { .. }
            | OpKind::Rmdir { .. } => None,
        }
    }

    /// Whether this op is one of the sync calls that sync analysis asks about: fsync,
    /// fdatasync, sync, syncfs and msync MS_SYNC (not sync_file_range, which makes nothing
    /// durable, nor an O_SYNC write, whose sync cannot be removed on its own).
    pub fn is_sync(&self) -> bool {
        match self {
            OpKind::Fsync { .. }
            | OpKind::Fdatasync { .. }
            | OpKind::Sync
            | OpKind::Syncfs { .. } => true,
            OpKind::Msync { mode, .. } => *mode == MsyncMode::Sync,
            OpKind::Open { .. }
            | OpKind::Close { .. }
            | OpKind::Write { .. }
            | OpKind::Ftruncate { .. }
            | OpKind::Fallocate { .. }
            | OpKind::SyncFileRange { .. }
            | OpKind::Mmap { .. }
            | OpKind::Store { .. }
            | OpKind::Munmap { .. }
            | OpKind::Rename { .. }
            | OpKind::Link { .. }
            | OpKind::Flink { .. }
            | OpKind::Symlink { .. }
            | OpKind::Unlink { .. }
            | OpKind::Mkdir { .. }
            | OpKind::Rmdir { .. } => false,
        }
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
    /// Where an application made the call: a trailing `# at SITE` comment (what `unplug trace`
    /// writes: `function+0xOFF (object) < caller ...`). Outputs name the op by it.
    pub site: Option<String>,
}

impl Op {
    /// The innermost frame of the op's site, if it has one.
    pub fn site_short(&self) -> Option<&str> {
        self.site
            .as_deref()
            .map(|s| s.split(" < ").next().unwrap_or(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// One line per op (both forms of write), with what each accessor must answer:
    /// (text, name, handle, map, paths, data, is_sync).
    #[allow(clippy::type_complexity)]
    const CASES: &[(
        &str,
        &str,
        Option<&str>,
        Option<&str>,
        &[&str],
        Option<&str>,
        bool,
    )] = &[
        (
            "f = open d/a create",
            "open",
            Some("f"),
            None,
            &["d/a"],
            None,
            false,
        ),
        ("close f", "close", Some("f"), None, &[], None, false),
        (
            "write f 4KiB A",
            "write",
            Some("f"),
            None,
            &[],
            Some("A"),
            false,
        ),
        (
            "pwrite f 0 4KiB A at 8",
            "pwrite",
            Some("f"),
            None,
            &[],
            Some("A"),
            false,
        ),
        (
            "ftruncate f 0",
            "ftruncate",
            Some("f"),
            None,
            &[],
            None,
            false,
        ),
        (
            "fallocate f 0 4KiB",
            "fallocate",
            Some("f"),
            None,
            &[],
            None,
            false,
        ),
        (
            "sync_file_range f 0 0",
            "sync_file_range",
            Some("f"),
            None,
            &[],
            None,
            false,
        ),
        (
            "m = mmap f 0 4KiB",
            "mmap",
            Some("f"),
            Some("m"),
            &[],
            None,
            false,
        ),
        (
            "store m 0 10 B",
            "store",
            None,
            Some("m"),
            &[],
            Some("B"),
            false,
        ),
        ("msync m sync", "msync", None, Some("m"), &[], None, true),
        (
            "msync m 0 4KiB async",
            "msync",
            None,
            Some("m"),
            &[],
            None,
            false,
        ),
        ("munmap m", "munmap", None, Some("m"), &[], None, false),
        ("fsync f", "fsync", Some("f"), None, &[], None, true),
        ("fdatasync f", "fdatasync", Some("f"), None, &[], None, true),
        ("sync", "sync", None, None, &[], None, true),
        ("syncfs f", "syncfs", Some("f"), None, &[], None, true),
        (
            "rename a b exchange",
            "rename",
            None,
            None,
            &["a", "b"],
            None,
            false,
        ),
        ("link a b", "link", None, None, &["a", "b"], None, false),
        ("flink f c", "flink", Some("f"), None, &["c"], None, false),
        ("symlink ../t s", "symlink", None, None, &["s"], None, false),
        ("unlink a", "unlink", None, None, &["a"], None, false),
        ("mkdir d", "mkdir", None, None, &["d"], None, false),
        ("rmdir d", "rmdir", None, None, &["d"], None, false),
    ];

    #[test]
    fn accessors() {
        let mut variants = BTreeSet::new();
        for &(text, name, handle, map, paths, data, sync) in CASES {
            let program = crate::parse::parse(text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
            let mut kind = program.ops[0].kind.clone();
            assert_eq!(kind.name(), name, "{text}");
            assert!(text.contains(kind.name()), "{text}");
            assert_eq!(kind.handle(), handle, "{text}");
            assert_eq!(kind.map(), map, "{text}");
            let got: Vec<String> = kind.paths().map(Path::to_string).collect();
            assert_eq!(got, paths, "{text}");
            assert_eq!(kind.data(), data, "{text}");
            assert_eq!(kind.data_mut().map(|d| d.clone()), data.map(String::from));
            assert_eq!(kind.is_sync(), sync, "{text}");
            variants.insert(index(&kind));
        }
        assert_eq!(
            variants,
            (0..VARIANTS).collect(),
            "an op is missing from CASES"
        );
    }

    /// How many `OpKind` variants there are.
    const VARIANTS: usize = 21;

    /// A number per variant. The compiler flags this match when an op is added: give it the
    /// next number, raise `VARIANTS`, and add its line to `CASES`.
    fn index(kind: &OpKind) -> usize {
        match kind {
            OpKind::Open { .. } => 0,
            OpKind::Close { .. } => 1,
            OpKind::Write { .. } => 2,
            OpKind::Ftruncate { .. } => 3,
            OpKind::Fallocate { .. } => 4,
            OpKind::SyncFileRange { .. } => 5,
            OpKind::Mmap { .. } => 6,
            OpKind::Store { .. } => 7,
            OpKind::Msync { .. } => 8,
            OpKind::Munmap { .. } => 9,
            OpKind::Fsync { .. } => 10,
            OpKind::Fdatasync { .. } => 11,
            OpKind::Sync => 12,
            OpKind::Syncfs { .. } => 13,
            OpKind::Rename { .. } => 14,
            OpKind::Link { .. } => 15,
            OpKind::Flink { .. } => 16,
            OpKind::Symlink { .. } => 17,
            OpKind::Unlink { .. } => 18,
            OpKind::Mkdir { .. } => 19,
            OpKind::Rmdir { .. } => 20,
        }
    }
}
