//! The ops on an open file: `HANDLE = open PATH [FLAG...]`, close, write, pwrite, ftruncate,
//! fallocate and sync_file_range.

use super::super::args::{err, range_fits, Args};
use super::super::lexer::{show, Kind, Tok};
use super::simple;
use crate::diag::Diagnostic;
use crate::program::{OpKind, OpenFlags};

const FLAGS_HINT: &str = "expected one of: create, excl, trunc, append, sync, dsync, dir, \
                          tmpfile, direct (rdonly, wronly and rdwr are accepted and ignored)";
pub(super) const U_OPEN: &str =
    "usage: HANDLE = open PATH [FLAG...] with FLAG one of: create, excl, \
     trunc, append, sync, dsync, dir, tmpfile, direct, rdonly, wronly, rdwr";
const U_CLOSE: &str = "usage: close HANDLE";
const U_WRITE: &str = "usage: write HANDLE LEN DATA [at DATA_OFFSET]";
const U_PWRITE: &str = "usage: pwrite HANDLE OFFSET LEN DATA [at DATA_OFFSET]";
const U_FTRUNCATE: &str = "usage: ftruncate HANDLE SIZE";
const U_FALLOCATE: &str = "usage: fallocate HANDLE OFFSET LEN [keep-size]";
const U_SYNC_FILE_RANGE: &str = "usage: sync_file_range HANDLE OFFSET LEN (LEN 0: to the end of \
                                 the file)";

/// The op of `keyword`, if it is one of this family's.
pub(super) fn parse(keyword: &str, toks: &[Tok]) -> Option<Result<OpKind, Diagnostic>> {
    Some(match keyword {
        "close" => simple(toks, U_CLOSE, "handle").map(|handle| OpKind::Close { handle }),
        "write" => write(toks, false),
        "pwrite" => write(toks, true),
        "ftruncate" => ftruncate(toks),
        "fallocate" => fallocate(toks),
        "sync_file_range" => sync_file_range(toks),
        _ => return None,
    })
}

/// `HANDLE = open PATH [FLAG...]`
pub(super) fn open(toks: &[Tok]) -> Result<OpKind, Diagnostic> {
    let mut a = Args::new(toks, 0, U_OPEN);
    let handle = a.ident("handle name")?;
    a.pos = 3;
    let path = a.path("path")?;
    let mut flags = OpenFlags::default();
    while let Some(t) = a.peek() {
        a.pos += 1;
        let word = if t.kind == Kind::Word { t.text } else { "" };
        match word {
            "create" => flags.create = true,
            "excl" => flags.excl = true,
            "trunc" => flags.trunc = true,
            "append" => flags.append = true,
            "sync" => flags.sync = true,
            "dsync" => flags.dsync = true,
            "dir" => flags.directory = true,
            "tmpfile" => flags.tmpfile = true,
            "direct" => flags.direct = true,
            "rdonly" | "wronly" | "rdwr" => {}
            _ => {
                return Err(err(
                    t.span,
                    format!("unknown open flag `{}`", show(t.text)),
                    FLAGS_HINT,
                ))
            }
        }
    }
    Ok(OpKind::Open {
        handle,
        path,
        flags,
    })
}

/// `write HANDLE LEN DATA [at DATA_OFFSET]`, or with `pwrite` (`positioned`) an OFFSET first.
fn write(toks: &[Tok], positioned: bool) -> Result<OpKind, Diagnostic> {
    let usage = if positioned { U_PWRITE } else { U_WRITE };
    let mut a = Args::new(toks, 1, usage);
    let handle = a.ident("handle")?;
    let offset = if positioned {
        Some(a.size("offset")?.0)
    } else {
        None
    };
    let (len, len_span) = a.size("length")?;
    if let Some(off) = offset {
        range_fits(off, len, len_span, "the write")?;
    }
    let data = a.data()?;
    let data_off = a.at(len)?;
    a.finish()?;
    Ok(OpKind::Write {
        handle,
        offset,
        len,
        data,
        data_off,
    })
}

/// `ftruncate HANDLE SIZE`
fn ftruncate(toks: &[Tok]) -> Result<OpKind, Diagnostic> {
    let mut a = Args::new(toks, 1, U_FTRUNCATE);
    let handle = a.ident("handle")?;
    let (size, _) = a.size("size")?;
    a.finish()?;
    Ok(OpKind::Ftruncate { handle, size })
}

/// `fallocate HANDLE OFFSET LEN [keep-size]`
fn fallocate(toks: &[Tok]) -> Result<OpKind, Diagnostic> {
    let mut a = Args::new(toks, 1, U_FALLOCATE);
    let handle = a.ident("handle")?;
    let (offset, _) = a.size("offset")?;
    let (len, len_span) = a.size("length")?;
    range_fits(offset, len, len_span, "the fallocate range")?;
    let keep_size = match a.peek() {
        Some(t) if t.is_word("keep-size") => {
            a.pos += 1;
            true
        }
        _ => false,
    };
    a.finish()?;
    Ok(OpKind::Fallocate {
        handle,
        offset,
        len,
        keep_size,
    })
}

/// `sync_file_range HANDLE OFFSET LEN`
fn sync_file_range(toks: &[Tok]) -> Result<OpKind, Diagnostic> {
    let mut a = Args::new(toks, 1, U_SYNC_FILE_RANGE);
    let handle = a.ident("handle")?;
    let (offset, _) = a.size("offset")?;
    let (len, len_span) = a.size("length")?;
    range_fits(offset, len, len_span, "the range")?;
    a.finish()?;
    Ok(OpKind::SyncFileRange {
        handle,
        offset,
        len,
    })
}
