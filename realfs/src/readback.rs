//! Reads a directory tree back after a run (or after a crash and a mount): every entry's path,
//! kind, size, link count and inode number, and for files where each byte came from
//! ([`crate::pattern::classify`]).

use crate::pattern::{classify, Extent};
use serde::Serialize;
use std::fmt;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path as StdPath;
use unplug_model::Path;

/// The kind of a directory entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Kind {
    File,
    Dir,
    /// Anything else (a symlink, a device, ...): unplug programs make none.
    Other,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::File => "file",
            Kind::Dir => "dir",
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
    } else {
        Kind::Other
    };
    let extents = if kind == Kind::File {
        classify(&std::fs::read(p)?, 0, names)
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
    })
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
