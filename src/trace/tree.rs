//! The starting tree under the roots: what a traced program's setup recreates (durable before
//! the command ran).

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// One entry of a starting tree, by its path relative to its root (components).
#[derive(Debug)]
pub(crate) enum Entry {
    Dir,
    /// A regular file's content, and the first path of its inode when it is a hard link of one
    /// met before.
    File {
        content: Vec<u8>,
        link_of: Option<Vec<String>>,
    },
    Symlink(String),
    /// Anything else (sockets, fifos, devices): not expressible.
    Other,
}

/// A starting tree: each entry with its path below the root (components).
pub(crate) type Tree = Vec<(Vec<String>, Entry)>;

/// The entries under `root`, in path order (a directory before what it holds), each path as its
/// components below the root.
pub(crate) fn snapshot(root: &Path) -> std::io::Result<Tree> {
    let mut out = Vec::new();
    let mut inodes: BTreeMap<(u64, u64), Vec<String>> = BTreeMap::new();
    walk(root, &mut Vec::new(), &mut out, &mut inodes)?;
    Ok(out)
}

fn walk(
    dir: &Path,
    prefix: &mut Vec<String>,
    out: &mut Tree,
    inodes: &mut BTreeMap<(u64, u64), Vec<String>>,
) -> std::io::Result<()> {
    let mut names: Vec<(String, PathBuf)> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| (e.file_name().to_string_lossy().into_owned(), e.path())))
        .collect::<Result<_, _>>()?;
    names.sort();
    for (name, path) in names {
        prefix.push(name);
        let meta = std::fs::symlink_metadata(&path)?;
        let ft = meta.file_type();
        if ft.is_dir() {
            out.push((prefix.clone(), Entry::Dir));
            walk(&path, prefix, out, inodes)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&path)?.to_string_lossy().into_owned();
            out.push((prefix.clone(), Entry::Symlink(target)));
        } else if ft.is_file() {
            let key = (meta.dev(), meta.ino());
            let link_of = if meta.nlink() > 1 {
                inodes.get(&key).cloned()
            } else {
                None
            };
            if meta.nlink() > 1 && link_of.is_none() {
                inodes.insert(key, prefix.clone());
            }
            let content = if link_of.is_some() {
                Vec::new()
            } else {
                std::fs::read(&path)?
            };
            out.push((prefix.clone(), Entry::File { content, link_of }));
        } else {
            out.push((prefix.clone(), Entry::Other));
        }
        prefix.pop();
    }
    Ok(())
}
