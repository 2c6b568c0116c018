//! The sync calls: fsync, fdatasync, sync and syncfs (msync is with the mappings).

use super::super::args::Args;
use super::super::lexer::Tok;
use super::simple;
use crate::diag::Diagnostic;
use crate::program::OpKind;

const U_FSYNC: &str = "usage: fsync HANDLE";
const U_FDATASYNC: &str = "usage: fdatasync HANDLE";
const U_SYNC: &str = "usage: sync (no arguments)";
const U_SYNCFS: &str = "usage: syncfs HANDLE";

/// The op of `keyword`, if it is one of this family's.
pub(super) fn parse(keyword: &str, toks: &[Tok]) -> Option<Result<OpKind, Diagnostic>> {
    Some(match keyword {
        "fsync" => simple(toks, U_FSYNC, "handle").map(|handle| OpKind::Fsync { handle }),
        "fdatasync" => {
            simple(toks, U_FDATASYNC, "handle").map(|handle| OpKind::Fdatasync { handle })
        }
        "syncfs" => simple(toks, U_SYNCFS, "handle").map(|handle| OpKind::Syncfs { handle }),
        "sync" => Args::new(toks, 1, U_SYNC).finish().map(|()| OpKind::Sync),
        _ => return None,
    })
}
