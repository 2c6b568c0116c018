//! The sync calls: fsync, fdatasync, sync and syncfs (msync is with the mappings, an O_SYNC
//! write with the writes).

use super::fs::{handle, Fs};
use super::{Kind, OpFacts, SyncReq};
use crate::diag::Diagnostic;
use crate::program::Op;

/// `fsync HANDLE` (`datasync` false) and `fdatasync HANDLE` (true), of a file or a directory.
pub(super) fn fsync(
    fs: &mut Fs,
    op: &Op,
    name: &str,
    datasync: bool,
) -> Result<OpFacts, Diagnostic> {
    let mut f = OpFacts::default();
    let h = handle(fs, op, name)?.clone();
    f.sync = Some(match fs.inodes[&h.ino].kind {
        Kind::File | Kind::Symlink => SyncReq::File {
            ino: h.ino,
            datasync,
            range: None,
        },
        Kind::Dir => SyncReq::Dir {
            ino: h.ino,
            datasync,
        },
    });
    Ok(f)
}

/// `sync`: every file system (here, the one).
pub(super) fn sync() -> Result<OpFacts, Diagnostic> {
    Ok(OpFacts {
        sync: Some(SyncReq::All),
        ..OpFacts::default()
    })
}

/// `syncfs HANDLE`: the handle's file system, which is the whole of the model's.
pub(super) fn syncfs(fs: &mut Fs, op: &Op, name: &str) -> Result<OpFacts, Diagnostic> {
    let mut f = OpFacts::default();
    handle(fs, op, name)?;
    f.sync = Some(SyncReq::All);
    Ok(f)
}
