//! The ops on the namespace: rename (plain, RENAME_EXCHANGE, RENAME_NOREPLACE), link, flink,
//! symlink, unlink, mkdir and rmdir.

use super::fs::{err, handle, missing, Fs};
use super::{Assign, Ino, Kind, OpFacts};
use crate::diag::Diagnostic;
use crate::program::{Op, Path, RenameMode};

/// `rename FROM TO [exchange|noreplace]`.
pub(super) fn rename(
    fs: &mut Fs,
    op: &Op,
    from: &Path,
    to: &Path,
    mode: RenameMode,
) -> Result<OpFacts, Diagnostic> {
    let mut f = OpFacts::default();
    let src = fs.lookup(from).ok_or_else(|| missing(fs, op, from))?;
    let (sdir, sname) = fs.parent(from).map_err(|m| err(op, m))?;
    let (ddir, dname) = fs.parent(to).map_err(|m| err(op, m))?;
    let kind = fs.inodes[&src].kind;
    match mode {
        RenameMode::Exchange => {
            let dst = fs.lookup(to).ok_or_else(|| {
                let d = missing(fs, op, to);
                Diagnostic {
                    message: format!("{}: RENAME_EXCHANGE needs both names (ENOENT)", d.message),
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
    Ok(f)
}

/// `link EXISTING NEW`: a second name for a file.
pub(super) fn link(fs: &mut Fs, op: &Op, from: &Path, to: &Path) -> Result<OpFacts, Diagnostic> {
    let mut f = OpFacts::default();
    let src = fs.lookup(from).ok_or_else(|| missing(fs, op, from))?;
    if fs.inodes[&src].kind == Kind::Dir {
        return Err(err(
            op,
            format!("`{from}` is a directory: hard links to directories are not allowed (EPERM)"),
        ));
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
    Ok(f)
}

/// `flink HANDLE PATH`: a name for the handle's file (linkat with AT_EMPTY_PATH).
pub(super) fn flink(fs: &mut Fs, op: &Op, name: &str, path: &Path) -> Result<OpFacts, Diagnostic> {
    let mut f = OpFacts::default();
    let h = handle(fs, op, name)?.clone();
    let ino = h.ino;
    if fs.inodes[&ino].kind == Kind::Dir {
        return Err(err(
            op,
            format!(
                "`{name}` is a directory handle: hard links to directories are not allowed (EPERM)"
            ),
        ));
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
    Ok(f)
}

/// `symlink TARGET PATH`.
pub(super) fn symlink(
    fs: &mut Fs,
    op: &Op,
    target: &str,
    path: &Path,
) -> Result<OpFacts, Diagnostic> {
    let mut f = OpFacts::default();
    if fs.lookup(path).is_some() {
        return Err(err(op, format!("`{path}` already exists: EEXIST")));
    }
    let (dir, name) = fs.parent(path).map_err(|m| err(op, m))?;
    let ino = fs.create(&mut f, dir, name, path, Kind::Symlink);
    fs.symlinks.insert(ino, target.to_string());
    Ok(f)
}

/// `unlink PATH`: removes a name of a file or symlink.
pub(super) fn unlink(fs: &mut Fs, op: &Op, path: &Path) -> Result<OpFacts, Diagnostic> {
    let mut f = OpFacts::default();
    let ino = fs.lookup(path).ok_or_else(|| missing(fs, op, path))?;
    if fs.inodes[&ino].kind == Kind::Dir {
        return Err(err(op, format!("`{path}` is a directory")).with_hint("use `rmdir`"));
    }
    fs.remove_entry(&mut f, path, ino).map_err(|m| err(op, m))?;
    Ok(f)
}

/// `mkdir PATH`.
pub(super) fn mkdir(fs: &mut Fs, op: &Op, path: &Path) -> Result<OpFacts, Diagnostic> {
    let mut f = OpFacts::default();
    if fs.lookup(path).is_some() {
        return Err(err(op, format!("`{path}` already exists: EEXIST")));
    }
    let (dir, name) = fs.parent(path).map_err(|m| err(op, m))?;
    fs.create(&mut f, dir, name, path, Kind::Dir);
    Ok(f)
}

/// `rmdir PATH`: removes an empty directory.
pub(super) fn rmdir(fs: &mut Fs, op: &Op, path: &Path) -> Result<OpFacts, Diagnostic> {
    let mut f = OpFacts::default();
    let ino = fs.lookup(path).ok_or_else(|| missing(fs, op, path))?;
    if fs.inodes[&ino].kind != Kind::Dir {
        return Err(err(op, format!("`{path}` is not a directory")).with_hint("use `unlink`"));
    }
    if fs.children(ino).next().is_some() {
        return Err(err(op, format!("`{path}` is not empty: ENOTEMPTY")));
    }
    fs.remove_entry(&mut f, path, ino).map_err(|m| err(op, m))?;
    Ok(f)
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
