//! The ops on an open file: open, close, write and pwrite, ftruncate, fallocate and
//! sync_file_range (and the two helpers the mapping ops share: bytes written, a truncate).

use super::fs::{err, file_handle, handle, missing, within_max_size, Fs, Handle, Inode};
use super::{Assign, Content, Dirty, Ino, Kind, OpFacts, Origin, SyncReq, BLOCK};
use crate::diag::Diagnostic;
use crate::program::{Op, OpenFlags, Path, DIRECT_ALIGN};

/// `HANDLE = open PATH [FLAG...]`: an existing file (truncated with `trunc`), a new one
/// (`create`), or an O_TMPFILE file; the handle is a new open file description.
pub(super) fn open(
    fs: &mut Fs,
    op: &Op,
    handle: &str,
    path: &Path,
    flags: &OpenFlags,
) -> Result<OpFacts, Diagnostic> {
    let mut f = OpFacts::default();
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
                return Err(
                    err(op, "open cannot create a directory").with_hint("use `mkdir PATH` first")
                );
            }
            let (dir, name) = fs.parent(path).map_err(|m| err(op, m))?;
            fs.create(&mut f, dir, name, path, Kind::File)
        }
    };
    let desc = fs.descs.len();
    fs.descs.push(1);
    fs.handles.insert(
        handle.to_string(),
        Handle {
            ino,
            desc,
            pos: 0,
            flags: *flags,
        },
    );
    Ok(f)
}

/// `close HANDLE`: releases the open file description unless a mapping still holds it.
pub(super) fn close(fs: &mut Fs, op: &Op, name: &str) -> Result<OpFacts, Diagnostic> {
    let mut f = OpFacts::default();
    let h = handle(fs, op, name)?.clone();
    fs.handles.remove(name);
    fs.unref(&mut f, h.desc, h.ino);
    Ok(f)
}

/// `write` and `pwrite`: at the handle's position, at OFFSET, or at the end with O_APPEND;
/// O_SYNC and O_DSYNC make it a ranged sync of the bytes written.
pub(super) fn write(
    fs: &mut Fs,
    op: &Op,
    name: &str,
    offset: Option<u64>,
    len: u64,
    data: &str,
    data_off: Option<u64>,
) -> Result<OpFacts, Diagnostic> {
    let mut f = OpFacts::default();
    let h = file_handle(fs, op, name)?;
    // With O_APPEND every write lands at the end of the file, pwrite too (Linux ignores
    // pwrite's offset then: pwrite(2), BUGS).
    let at = match offset {
        _ if h.flags.append => fs.inodes[&h.ino].size,
        Some(o) => o,
        None => h.pos,
    };
    let end = at
        .checked_add(len)
        .ok_or_else(|| err(op, "offset + length overflows"))?;
    // Linux writes short to the limit, or fails with EFBIG at it (generic_write_check_limits);
    // either way the program's write does not happen as written.
    within_max_size(op, "the write", end, "EFBIG")?;
    if h.flags.direct && (!at.is_multiple_of(DIRECT_ALIGN) || !len.is_multiple_of(DIRECT_ALIGN)) {
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
    fs.use_data(data, doff, len).map_err(|m| err(op, m))?;
    write_bytes(fs, &mut f, h.ino, at, end, data, doff);
    if h.flags.direct {
        if let Some(d) = f.dirtied.last_mut() {
            d.direct = true;
        }
    }
    if offset.is_none() {
        fs.handles.get_mut(name).expect("open").pos = end;
    }
    if (h.flags.sync || h.flags.dsync) && len > 0 {
        f.sync = Some(SyncReq::File {
            ino: h.ino,
            datasync: !h.flags.sync,
            range: Some((at, end)),
        });
    }
    Ok(f)
}

/// `ftruncate HANDLE SIZE`.
pub(super) fn ftruncate(
    fs: &mut Fs,
    op: &Op,
    name: &str,
    size: u64,
) -> Result<OpFacts, Diagnostic> {
    let mut f = OpFacts::default();
    let h = file_handle(fs, op, name)?;
    // A size past i64::MAX is a negative loff_t: EINVAL (do_sys_ftruncate).
    within_max_size(op, "the truncate", size, "EINVAL")?;
    truncate(fs, &mut f, h.ino, size);
    Ok(f)
}

/// `fallocate HANDLE OFFSET LEN [keep-size]`.
pub(super) fn fallocate(
    fs: &mut Fs,
    op: &Op,
    name: &str,
    offset: u64,
    len: u64,
    keep_size: bool,
) -> Result<OpFacts, Diagnostic> {
    let mut f = OpFacts::default();
    let h = file_handle(fs, op, name)?;
    if len == 0 {
        return Err(err(op, "fallocate of length 0 fails with EINVAL"));
    }
    let end = offset
        .checked_add(len)
        .ok_or_else(|| err(op, "offset + length overflows"))?;
    within_max_size(op, "the fallocate range", end, "EFBIG")?;
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
        fs.cut(ino, offset);
    }
    f.allocated = Some((ino, offset, end));
    // The allocation moves both fsync tids (ext4_update_inode_fsync_trans(.., 1)).
    f.touched.push(ino);
    f.datasync_touched.push(ino);
    Ok(f)
}

/// `sync_file_range HANDLE OFFSET LEN`: records the range whose writeback starts; no sync.
pub(super) fn sync_file_range(
    fs: &mut Fs,
    op: &Op,
    name: &str,
    offset: u64,
    len: u64,
) -> Result<OpFacts, Diagnostic> {
    let mut f = OpFacts::default();
    let h = handle(fs, op, name)?.clone();
    let n = &fs.inodes[&h.ino];
    if n.kind == Kind::File {
        let end = if len == 0 {
            n.size.max(offset)
        } else {
            offset.saturating_add(len)
        };
        f.writeback = Some((h.ino, offset, end));
    }
    Ok(f)
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

pub(super) fn write_bytes(
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

pub(super) fn truncate(fs: &mut Fs, f: &mut OpFacts, ino: Ino, size: u64) {
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
