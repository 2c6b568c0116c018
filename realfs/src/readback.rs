//! Reads a directory tree back after a run (or after a crash and a mount): every entry's path,
//! kind, size, link count and inode number, and for files where each byte came from
//! ([`crate::pattern::classify`]).

use crate::pattern::{classify, Extent, Origin};
use rustix::fs::SeekFrom;
use serde::Serialize;
use std::fmt;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path as StdPath;
use unplug_model::Path;

/// The kind of a directory entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Kind {
    File,
    Dir,
    /// A symbolic link (its target is in [`Entry::target`]; it is never followed).
    Symlink,
    /// Anything else (a device, a fifo, ...): unplug programs make none.
    Other,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::File => "file",
            Kind::Dir => "dir",
            Kind::Symlink => "symlink",
            Kind::Other => "other",
        })
    }
}

/// One entry of the tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Relative to the root; the root itself is the empty path.
    pub path: Path,
    pub kind: Kind,
    /// `st_size` (for a directory it depends on the file system).
    pub size: u64,
    /// `st_nlink`.
    pub links: u64,
    /// `st_ino`: names of one file share it (the whole tree is on one file system).
    pub ino: u64,
    /// For files: the classified content, tiling `[0, size)`. Empty for other kinds.
    pub extents: Vec<Extent>,
    /// For symlinks: the target (readlink). None for other kinds.
    pub target: Option<String>,
}

/// A whole tree, the root first, then every entry in path order (a directory's entries sorted
/// by name, each directory before its contents).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ObservedTree {
    pub entries: Vec<Entry>,
}

impl ObservedTree {
    /// The entry at `path`, if any.
    pub fn get(&self, path: &Path) -> Option<&Entry> {
        self.entries.iter().find(|e| &e.path == path)
    }
}

/// Walks `root` and classifies every file's content against the data `names`.
pub fn read_tree(root: &StdPath, names: &[&str]) -> io::Result<ObservedTree> {
    let mut entries = Vec::new();
    walk(root, Path::root(), names, &mut entries)?;
    Ok(ObservedTree { entries })
}

fn walk(dir_fs: &StdPath, dir: Path, names: &[&str], out: &mut Vec<Entry>) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(dir_fs)?;
    out.push(entry(dir_fs, dir.clone(), &meta, names)?);
    if !meta.is_dir() {
        return Ok(());
    }
    let mut children: Vec<(String, std::path::PathBuf)> = Vec::new();
    for e in std::fs::read_dir(dir_fs)? {
        let e = e?;
        let name = e.file_name().into_string().map_err(|n| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("file name {n:?} is not UTF-8"),
            )
        })?;
        children.push((name, e.path()));
    }
    children.sort();
    for (name, p) in children {
        let child = dir.join(&name);
        if std::fs::symlink_metadata(&p)?.is_dir() {
            walk(&p, child, names, out)?;
        } else {
            let meta = std::fs::symlink_metadata(&p)?;
            out.push(entry(&p, child, &meta, names)?);
        }
    }
    Ok(())
}

fn entry(p: &StdPath, path: Path, meta: &std::fs::Metadata, names: &[&str]) -> io::Result<Entry> {
    let ft = meta.file_type();
    let kind = if ft.is_file() {
        Kind::File
    } else if ft.is_dir() {
        Kind::Dir
    } else if ft.is_symlink() {
        Kind::Symlink
    } else {
        Kind::Other
    };
    let target = if kind == Kind::Symlink {
        let t = std::fs::read_link(p)?;
        Some(t.into_os_string().into_string().map_err(|t| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: symlink target {t:?} is not UTF-8", p.display()),
            )
        })?)
    } else {
        None
    };
    let extents = if kind == Kind::File {
        classify_file(p, meta.len(), names)?
    } else {
        Vec::new()
    };
    Ok(Entry {
        path,
        kind,
        size: meta.len(),
        links: meta.nlink(),
        ino: meta.ino(),
        extents,
        target,
    })
}

/// Classifies a file's content, `[0, size)`, skipping its holes: the data regions that
/// `SEEK_DATA`/`SEEK_HOLE` report are read and classified, the holes between them are zero
/// extents (a hole reads as zeros), so that a sparse file of any size reads back in the time its
/// data takes. Where the file system cannot say (the generic implementation reports the whole
/// file as data) the whole file is read.
fn classify_file(p: &StdPath, size: u64, names: &[&str]) -> io::Result<Vec<Extent>> {
    let file = std::fs::File::open(p)?;
    let mut extents: Vec<Extent> = Vec::new();
    let mut push = |x: Extent| match extents.last_mut() {
        Some(last) if last.origin == x.origin && last.end == x.start => last.end = x.end,
        _ => extents.push(x),
    };
    let mut at = 0u64;
    while at < size {
        let (data, hole) = match data_region(&file, at, size)? {
            Some(r) => r,
            None => (size, size),
        };
        if data > at {
            push(Extent {
                start: at,
                end: data,
                origin: Origin::Zero,
            });
        }
        if data < hole {
            let len = usize::try_from(hole - data).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::OutOfMemory,
                    format!("{}: a data region of {} bytes", p.display(), hole - data),
                )
            })?;
            let mut buf = vec![0u8; len];
            file.read_exact_at(&mut buf, data)?;
            for x in classify(&buf, data, names) {
                push(x);
            }
        }
        at = hole;
    }
    Ok(extents)
}

/// The first data region at or after `at` (below `size`): `Some((start, end))`, or `None` when
/// the rest of the file is a hole. A file system that does not support `SEEK_DATA` at all gets
/// one region, `[at, size)`.
fn data_region(file: &std::fs::File, at: u64, size: u64) -> io::Result<Option<(u64, u64)>> {
    let off = |x: u64| i64::try_from(x).map_err(|_| io::Error::other("offset past i64::MAX"));
    let data = match rustix::fs::seek(file, SeekFrom::Data(off(at)?)) {
        Ok(d) => d,
        Err(rustix::io::Errno::NXIO) => return Ok(None),
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::OPNOTSUPP) => {
            return Ok(Some((at, size)))
        }
        Err(e) => return Err(e.into()),
    };
    if data >= size {
        return Ok(None);
    }
    let hole = rustix::fs::seek(file, SeekFrom::Hole(off(data)?))?;
    Ok(Some((data, hole.clamp(data + 1, size))))
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_entry(f, self, 0)
    }
}

/// One line; `width` pads the path column.
fn write_entry(f: &mut fmt::Formatter<'_>, e: &Entry, width: usize) -> fmt::Result {
    let path = e.path.to_string();
    write!(f, "{path:<width$}  {:<4}", e.kind.to_string())?;
    match e.kind {
        // A directory's size is the file system's business: leave it out of the text.
        Kind::Dir => write!(f, "  links {}", e.links),
        Kind::Symlink => write!(
            f,
            "  -> {}  links {}",
            e.target.as_deref().unwrap_or(""),
            e.links
        ),
        _ => {
            write!(f, "  size {}  links {}", e.size, e.links)?;
            for (i, x) in e.extents.iter().enumerate() {
                write!(f, "{}{x}", if i == 0 { "  " } else { " " })?;
            }
            Ok(())
        }
    }
}

impl fmt::Display for ObservedTree {
    /// One line per entry, e.g. `final  file  size 8388608  links 1  [0..8388608) D+0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .entries
            .iter()
            .map(|e| e.path.to_string().len())
            .max()
            .unwrap_or(0);
        for e in &self.entries {
            write_entry(f, e, width)?;
            writeln!(f)?;
        }
        Ok(())
    }
}
