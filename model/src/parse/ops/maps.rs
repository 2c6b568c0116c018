//! The ops on a shared mapping: `MAP = mmap HANDLE OFFSET LEN`, store, msync and munmap.

use super::super::args::{err, range_fits, size_of, Args};
use super::super::lexer::{show, size_value, Kind, SizeError, Tok};
use super::simple;
use crate::diag::Diagnostic;
use crate::program::{MsyncMode, OpKind};

pub(super) const U_MMAP: &str = "usage: MAP = mmap HANDLE OFFSET LEN";
const U_STORE: &str = "usage: store MAP OFFSET LEN DATA [at DATA_OFFSET]";
const U_MSYNC: &str = "usage: msync MAP [OFFSET LEN] sync|async [invalidate]";
const U_MUNMAP: &str = "usage: munmap MAP";

/// The op of `keyword`, if it is one of this family's.
pub(super) fn parse(keyword: &str, toks: &[Tok]) -> Option<Result<OpKind, Diagnostic>> {
    Some(match keyword {
        "store" => store(toks),
        "msync" => msync(toks),
        "munmap" => simple(toks, U_MUNMAP, "mapping name").map(|map| OpKind::Munmap { map }),
        _ => return None,
    })
}

/// `MAP = mmap HANDLE OFFSET LEN`
pub(super) fn mmap(toks: &[Tok]) -> Result<OpKind, Diagnostic> {
    let mut a = Args::new(toks, 0, U_MMAP);
    let map = a.ident("mapping name")?;
    a.pos = 3;
    let handle = a.ident("handle")?;
    let (offset, _) = a.size("offset")?;
    let (len, len_span) = a.size("length")?;
    range_fits(offset, len, len_span, "the mapping")?;
    a.finish()?;
    Ok(OpKind::Mmap {
        handle,
        map,
        offset,
        len,
    })
}

/// `store MAP OFFSET LEN DATA [at DATA_OFFSET]`
fn store(toks: &[Tok]) -> Result<OpKind, Diagnostic> {
    let mut a = Args::new(toks, 1, U_STORE);
    let map = a.ident("mapping name")?;
    let (offset, _) = a.size("offset")?;
    let (len, len_span) = a.size("length")?;
    range_fits(offset, len, len_span, "the store")?;
    let data = a.data()?;
    let data_off = a.at(len)?;
    a.finish()?;
    Ok(OpKind::Store {
        map,
        offset,
        len,
        data,
        data_off,
    })
}

/// `msync MAP [OFFSET LEN] sync|async [invalidate]`
fn msync(toks: &[Tok]) -> Result<OpKind, Diagnostic> {
    let mut a = Args::new(toks, 1, U_MSYNC);
    let map = a.ident("mapping name")?;
    let mode_of = |t: Tok| match (t.kind, t.text) {
        (Kind::Word, "sync") => Some(MsyncMode::Sync),
        (Kind::Word, "async") => Some(MsyncMode::Async),
        _ => None,
    };
    let bad_mode = |t: Tok| {
        err(
            t.span,
            format!("expected `sync` or `async`, found `{}`", show(t.text)),
            U_MSYNC,
        )
    };
    let first = a.next("msync mode `sync` or `async`")?;
    let (range, mode) = match mode_of(first) {
        Some(mode) => (None, mode),
        None => {
            if first.kind == Kind::Word && size_value(first.text) == Err(SizeError::NotNumber) {
                return Err(bad_mode(first));
            }
            let offset = size_of(first, "offset", false).map_err(|d| a.with_usage(d))?;
            let (len, len_span) = a.size("length")?;
            range_fits(offset, len, len_span, "the msync range")?;
            let t = a.next("msync mode `sync` or `async`")?;
            let mode = mode_of(t).ok_or_else(|| bad_mode(t))?;
            (Some((offset, len)), mode)
        }
    };
    let invalidate = match a.peek() {
        Some(t) if t.is_word("invalidate") => {
            a.pos += 1;
            true
        }
        _ => false,
    };
    a.finish()?;
    Ok(OpKind::Msync {
        map,
        range,
        mode,
        invalidate,
    })
}
