//! Ops: a line that is not `data`, `setup`, `end` or `property`. `parse_op` handles the two
//! ops that assign a name (`f = open ...`, `m = mmap ...`) and sends every other keyword to its
//! family: `files` (close, write, pwrite, ftruncate, fallocate, sync_file_range), `maps` (store,
//! msync, munmap), `syncs` (fsync, fdatasync, sync, syncfs) and `dirs` (rename, link, flink,
//! symlink, unlink, mkdir, rmdir). Each family answers `None` for a keyword that is not its own.

use super::args::{err, Args, STATEMENT_HINT};
use super::lexer::{show, Kind, Tok};
use crate::diag::Diagnostic;
use crate::program::{OpKind, Path, Span};

mod dirs;
mod files;
mod maps;
mod syncs;

/// Parses the op of one line (the tokens after the label).
pub(super) fn parse_op(toks: &[Tok]) -> Result<OpKind, Diagnostic> {
    let Some(&head) = toks.first() else {
        return Err(err(Span::default(), "missing op", STATEMENT_HINT));
    };
    if let Some(eq) = toks.get(1).filter(|t| t.kind == Kind::Assign) {
        return match toks.get(2) {
            Some(v) if v.is_word("open") => files::open(toks),
            Some(v) if v.is_word("mmap") => maps::mmap(toks),
            Some(&v) => Err(err(
                v.span,
                format!(
                    "only `open` and `mmap` return a handle, found `{}`",
                    show(v.text)
                ),
                "usage: `f = open PATH [FLAG...]` or `m = mmap f OFFSET LEN`",
            )),
            None => Err(err(
                Span::new(eq.span.end, eq.span.end),
                "missing `open` or `mmap` after `=`",
                "usage: `f = open PATH [FLAG...]` or `m = mmap f OFFSET LEN`",
            )),
        };
    }
    if head.kind != Kind::Word {
        return Err(err(
            head.span,
            format!("expected a statement, found `{}`", show(head.text)),
            STATEMENT_HINT,
        ));
    }
    if matches!(head.text, "open" | "mmap") {
        return Err(err(
            head.span,
            format!("`{}` must assign its result to a name", head.text),
            if head.text == "open" {
                files::U_OPEN
            } else {
                maps::U_MMAP
            },
        ));
    }
    files::parse(head.text, toks)
        .or_else(|| maps::parse(head.text, toks))
        .or_else(|| syncs::parse(head.text, toks))
        .or_else(|| dirs::parse(head.text, toks))
        .unwrap_or_else(|| {
            Err(err(
                head.span,
                format!("unknown statement `{}`", show(head.text)),
                STATEMENT_HINT,
            ))
        })
}

/// `KEYWORD NAME`: the one argument is a handle or a mapping name.
fn simple(toks: &[Tok], usage: &'static str, what: &str) -> Result<String, Diagnostic> {
    let mut a = Args::new(toks, 1, usage);
    let name = a.ident(what)?;
    a.finish()?;
    Ok(name)
}

/// `KEYWORD PATH`
fn one_path(toks: &[Tok], usage: &'static str) -> Result<Path, Diagnostic> {
    let mut a = Args::new(toks, 1, usage);
    let path = a.path("path")?;
    a.finish()?;
    Ok(path)
}

/// `KEYWORD PATH PATH`
fn two_paths(
    toks: &[Tok],
    usage: &'static str,
    first: &str,
    second: &str,
) -> Result<(Path, Path), Diagnostic> {
    let mut a = Args::new(toks, 1, usage);
    let from = a.path(first)?;
    let to = a.path(second)?;
    a.finish()?;
    Ok((from, to))
}
