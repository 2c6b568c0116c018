//! The persistence rules, as data: each rule has an id, what it says and where it comes from.
//! Effects, edges and floors built in [`crate::persist`] carry the rule that made them, so every
//! answer can say which rule (and which source) allowed a crash state.
//!
//! This module holds the [`Rule`] type, the [`rules!`](crate::rules!) macro and the rules several
//! models share; each file system's own rules sit beside its builder under `persist/`, and
//! [`crate::persist::all_rules`] lists them all from the registry of file systems.
//!
//! Tags follow docs/SEMANTICS.md: POSIX / man-page text, documented file-system behaviour, or the
//! implementation behaviour of the cited kernel code (checked in the kernel source), or an
//! assumption of the model stated as such.

use serde::Serialize;
use std::fmt;

/// What a rule rests on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Basis {
    /// Required by POSIX or the Linux man pages.
    Posix,
    /// Documented by the file system (kernel Documentation/).
    Documented,
    /// Behaviour of the cited kernel code, read in the source.
    Implementation,
    /// An assumption the model makes (stated, to be checked by realfs).
    Assumption,
}

impl fmt::Display for Basis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Basis::Posix => "required by POSIX",
            Basis::Documented => "documented",
            Basis::Implementation => "implementation behaviour",
            Basis::Assumption => "model assumption",
        })
    }
}

/// One persistence rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Rule {
    pub id: &'static str,
    pub summary: &'static str,
    pub source: &'static str,
    pub basis: Basis,
}

/// Defines rules as constants and a list of them: `rules! { LIST; NAME = "id", Basis, "summary",
/// "source"; ... }`. The file-system modules under `persist/` define their own lists with it.
#[macro_export]
macro_rules! rules {
    ($list:ident; $($name:ident = $id:literal, $basis:ident, $summary:literal, $source:literal;)*) => {
        $(pub const $name: $crate::rules::Rule = $crate::rules::Rule {
            id: $id, summary: $summary, source: $source, basis: $crate::rules::Basis::$basis,
        };)*
        /// The rules defined here.
        pub const $list: &[$crate::rules::Rule] = &[$($name),*];
    };
}

rules! {
    SHARED;
    // ---- used by several models ----
    SETUP_DURABLE = "setup-durable", Assumption,
        "The state after the setup block is durable before crash point 0.",
        "README.md (Setup: the ops between `setup` and `end` build the initial state); a model assumption, no kernel function";
    OP_ATOMIC = "op-atomic", Assumption,
        "Each op's metadata change reaches disk whole or not at all (a rename is never half done).",
        "docs/SEMANTICS.md P7 (assumption, not POSIX); journaled by ext4 in one handle (E2)";
    SYNC_ALL = "sync-all", Posix,
        "sync() and syncfs() return after everything issued before them is durable (Linux waits).",
        "sync(2) man page; fs/sync.c ksys_sync, sync_filesystem (syncfs); docs/SEMANTICS.md P5";
    MS_ASYNC_NOOP = "ms-async-noop", Implementation,
        "msync(MS_ASYNC) and MS_INVALIDATE persist nothing.",
        "mm/msync.c SYSCALL_DEFINE3(msync); docs/SEMANTICS.md M3, M4";
    POSIX_OSYNC = "posix.o-sync", Implementation,
        "A write through an O_SYNC (O_DSYNC) handle is followed by an fsync (fdatasync) of the range written.",
        "include/linux/fs.h generic_write_sync -> vfs_fsync_range; docs/SEMANTICS.md P6";
}

/// Shared rules that add no edge or floor to switch off, and why: what they say is the meaning of
/// the program, the shape of the effects, or an absence. Each model's own are
/// [`crate::persist::FsModel::descriptive`]; [`crate::persist::descriptive`] looks any up.
pub const DESCRIPTIVE: &[(&Rule, &str)] = &[
    (
        &SETUP_DURABLE,
        "it is the program's meaning: setup's state is crash point 0's, where every exploration starts",
    ),
    (
        &OP_ATOMIC,
        "it is the shape of the effects: an op's metadata is one effect, so it persists whole (the rename programs' `# expect` lines show it)",
    ),
    (
        &MS_ASYNC_NOOP,
        "it is an absence: msync(MS_ASYNC) and MS_INVALIDATE make no floor (msync-async shows it)",
    ),
];
