//! The ops on the namespace: rename, link, flink, symlink, unlink, mkdir and rmdir.

use super::super::args::{target_of, Args};
use super::super::lexer::Tok;
use super::{one_path, two_paths};
use crate::diag::Diagnostic;
use crate::program::{OpKind, RenameMode};

const U_RENAME: &str = "usage: rename FROM TO [exchange|noreplace]";
const U_LINK: &str = "usage: link EXISTING NEW";
const U_FLINK: &str = "usage: flink HANDLE NEW (gives the handle's file a name, e.g. a tmpfile)";
const U_SYMLINK: &str = "usage: symlink TARGET PATH";
const U_UNLINK: &str = "usage: unlink PATH";
const U_MKDIR: &str = "usage: mkdir PATH";
const U_RMDIR: &str = "usage: rmdir PATH";

/// The op of `keyword`, if it is one of this family's.
pub(super) fn parse(keyword: &str, toks: &[Tok]) -> Option<Result<OpKind, Diagnostic>> {
    Some(match keyword {
        "rename" => rename(toks),
        "link" => two_paths(toks, U_LINK, "existing path", "new path")
            .map(|(from, to)| OpKind::Link { from, to }),
        "flink" => flink(toks),
        "symlink" => symlink(toks),
        "unlink" => one_path(toks, U_UNLINK).map(|path| OpKind::Unlink { path }),
        "mkdir" => one_path(toks, U_MKDIR).map(|path| OpKind::Mkdir { path }),
        "rmdir" => one_path(toks, U_RMDIR).map(|path| OpKind::Rmdir { path }),
        _ => return None,
    })
}

/// `rename FROM TO [exchange|noreplace]`
fn rename(toks: &[Tok]) -> Result<OpKind, Diagnostic> {
    let mut a = Args::new(toks, 1, U_RENAME);
    let from = a.path("source path")?;
    let to = a.path("target path")?;
    let mode = match a.peek() {
        Some(t) if t.is_word("exchange") => RenameMode::Exchange,
        Some(t) if t.is_word("noreplace") => RenameMode::NoReplace,
        _ => RenameMode::Replace,
    };
    if mode != RenameMode::Replace {
        a.pos += 1;
    }
    a.finish()?;
    Ok(OpKind::Rename { from, to, mode })
}

/// `flink HANDLE NEW`
fn flink(toks: &[Tok]) -> Result<OpKind, Diagnostic> {
    let mut a = Args::new(toks, 1, U_FLINK);
    let handle = a.ident("handle")?;
    let path = a.path("new path")?;
    a.finish()?;
    Ok(OpKind::Flink { handle, path })
}

/// `symlink TARGET PATH`
fn symlink(toks: &[Tok]) -> Result<OpKind, Diagnostic> {
    let mut a = Args::new(toks, 1, U_SYMLINK);
    let t = a.next("symlink target")?;
    let target = target_of(t).map_err(|d| a.with_usage(d))?;
    let path = a.path("path")?;
    a.finish()?;
    Ok(OpKind::Symlink { target, path })
}
