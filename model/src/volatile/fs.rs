//! The volatile file system a program runs on: the namespace, inodes and their contents, open
//! handles and mappings, and what every op needs to look them up (and to say what is wrong).

use super::{Assign, Content, Initial, Ino, Kind, OpFacts, MAX_FILE_SIZE};
use crate::diag::Diagnostic;
use crate::program::{Op, OpenFlags, Path, Program};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug)]
pub(super) struct Inode {
    pub(super) kind: Kind,
    pub(super) size: u64,
    pub(super) content: Content,
}

#[derive(Clone, Debug)]
pub(super) struct Handle {
    pub(super) ino: Ino,
    /// The open file description (one per `open`); mappings made through the handle hold it too.
    pub(super) desc: usize,
    pub(super) pos: u64,
    pub(super) flags: OpenFlags,
}

#[derive(Clone, Debug)]
pub(super) struct Mapping {
    pub(super) ino: Ino,
    pub(super) desc: usize,
    pub(super) offset: u64,
    pub(super) len: u64,
}

/// The in-memory file system: what a running system sees after each op (never a disk).
#[derive(Clone, Debug)]
pub(super) struct Fs {
    pub(super) entries: BTreeMap<(Ino, String), Ino>,
    pub(super) inodes: BTreeMap<Ino, Inode>,
    pub(super) next_ino: Ino,
    pub(super) handles: BTreeMap<String, Handle>,
    pub(super) maps: BTreeMap<String, Mapping>,
    /// References to each open file description (its handle and its mappings).
    pub(super) descs: Vec<usize>,
    pub(super) data_len: BTreeMap<String, u64>,
    pub(super) declared: BTreeMap<String, u64>,
    pub(super) cuts: BTreeMap<Ino, BTreeSet<u64>>,
    pub(super) last_blocks: BTreeMap<Ino, BTreeSet<u64>>,
    pub(super) names: BTreeMap<Ino, Path>,
    /// Symlink targets.
    pub(super) symlinks: BTreeMap<Ino, String>,
    /// O_TMPFILE inodes (opened without `excl`) that have never had a name: `flink` may give
    /// them one (the kernel's I_LINKABLE). Any other inode with no name cannot be linked.
    pub(super) linkable: BTreeSet<Ino>,
}

impl Fs {
    pub(super) fn new(program: &Program) -> Self {
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
    pub(super) fn through_symlink(&self, path: &Path) -> Option<Path> {
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
    pub(super) fn has_name(&self, ino: Ino) -> bool {
        self.entries.values().any(|&i| i == ino)
    }

    pub(super) fn lookup(&self, path: &Path) -> Option<Ino> {
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
    pub(super) fn parent(&self, path: &Path) -> Result<(Ino, String), String> {
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
    pub(super) fn create(
        &mut self,
        f: &mut OpFacts,
        dir: Ino,
        name: String,
        path: &Path,
        kind: Kind,
    ) -> Ino {
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
    pub(super) fn remove_entry(
        &mut self,
        f: &mut OpFacts,
        path: &Path,
        ino: Ino,
    ) -> Result<(), String> {
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
    pub(super) fn paths(&self) -> BTreeMap<Ino, Path> {
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
    pub(super) fn unref(&mut self, f: &mut OpFacts, desc: usize, ino: Ino) {
        self.descs[desc] -= 1;
        if self.descs[desc] == 0 {
            f.released = Some(ino);
        }
    }

    pub(super) fn cut(&mut self, ino: Ino, at: u64) {
        self.cuts.entry(ino).or_default().insert(at);
    }

    pub(super) fn use_data(&mut self, name: &str, data_off: u64, len: u64) -> Result<(), String> {
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

    pub(super) fn children(&self, dir: Ino) -> impl Iterator<Item = (&String, &Ino)> {
        self.entries
            .range((dir, String::new())..)
            .take_while(move |((d, _), _)| *d == dir)
            .map(|((_, n), i)| (n, i))
    }

    pub(super) fn snapshot(&self) -> Initial {
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

/// "PATH does not exist", with the paths that do exist as the hint.
pub(super) fn missing(fs: &Fs, op: &Op, path: &Path) -> Diagnostic {
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

pub(super) fn err(op: &Op, msg: impl Into<String>) -> Diagnostic {
    Diagnostic::new(op.span, msg)
}

/// An op whose byte range ends at `end`, past [`MAX_FILE_SIZE`], fails with `errno`.
pub(super) fn within_max_size(
    op: &Op,
    what: &str,
    end: u64,
    errno: &str,
) -> Result<(), Diagnostic> {
    if end <= MAX_FILE_SIZE {
        return Ok(());
    }
    Err(err(
        op,
        format!("{what} ends at byte {end}, past the largest file size (2^63 - 1 bytes): {errno}"),
    )
    .with_hint("a Linux file holds at most 2^63 - 1 bytes (MAX_LFS_FILESIZE); each file system's limit is lower (ext4: 16 TiB)"))
}

pub(super) fn handle<'a>(fs: &'a Fs, op: &Op, name: &str) -> Result<&'a Handle, Diagnostic> {
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

pub(super) fn file_handle(fs: &Fs, op: &Op, name: &str) -> Result<Handle, Diagnostic> {
    let h = handle(fs, op, name)?.clone();
    if fs.inodes[&h.ino].kind != Kind::File {
        return Err(err(
            op,
            format!("`{name}` is a directory handle; this op needs a regular file"),
        ));
    }
    Ok(h)
}
