//! Runs unplug programs on real file systems and reads back what they left.
//!
//! This is the only crate of unplug that touches real files, devices and (later) virtual
//! machines; `unplug-model` and `unplug-explorer` do no I/O. It has three parts:
//!
//! - [`pattern`]: self-describing data. Every 512-byte sector of a named data carries a tag
//!   (magic, name hash, data offset, checksum) and a deterministic fill, so that any byte read
//!   back from a disk says which data, and which offset of it, it is, or that it is zero or
//!   unknown.
//! - [`runner`]: executes a program's setup and ops as real system calls (rustix, memmap2) in an
//!   empty directory, timing each op, with a hook between ops.
//! - [`readback`]: walks a directory tree and classifies every file's content.
//! - [`observe`]: maps a tree read back into the model's crash-state type.
//! - [`compare`] and [`run_and_compare`]: run a program for real and compare what it left with
//!   the model's volatile state after the last op, which checks the model's volatile semantics
//!   against the kernel.
//!
//! The block-recording backends (qemu `blklogwrites`, on the host and in a VM), which record the
//! writes a run sends to a device and replay prefixes of them as crash states, come in a later
//! issue; the runner's [`runner::run_with`] hook is where they will put their marks.

// The system calls rustix 0.38 does not wrap (loop-device ioctls, umount2, sync_file_range,
// kill of a process group) and the mappings of memmap2 and rustix's msync are unsafe: this is
// the crate that touches the real system, so the workspace's `unsafe_code = "deny"` is lifted
// here, and only here among the libraries.
#![allow(unsafe_code)]

pub mod check;
pub mod child;
pub mod compare;
pub mod crash;
pub mod observe;
pub mod pattern;
pub mod readback;
pub mod record;
pub mod recover;
pub mod runner;
pub mod session;
pub mod vm;
pub mod wlog;

pub use compare::{differences, Comparison};
pub use observe::{to_state, Unmapped};
pub use pattern::{classify, classify_sector, data_bytes, Extent, Origin, SectorOrigin};
pub use readback::{read_tree, Entry, Kind, ObservedTree};
pub use runner::{run, run_with, run_with_data, DataBytes, OpRecord, RunError, RunLog, Step};

use std::collections::BTreeSet;
use std::io;
use std::path::{Path as StdPath, PathBuf};
use unplug_explorer::Analysis;
use unplug_model::{Diagnostic, Program};

/// Why [`run_and_compare`] could not compare.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model rejects the program (the volatile execution found errors); nothing was run.
    #[error("the program is invalid: {count} error(s)")]
    Invalid {
        count: usize,
        diagnostics: Vec<Diagnostic>,
    },
    /// The real run failed.
    #[error("running the program: {0}")]
    Run(#[from] RunError),
    /// The tree the run left could not be read back.
    #[error("reading back {}: {source}", root.display())]
    Read {
        root: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The tree the run left holds something no model state can (unknown bytes, a device):
    /// a finding in itself.
    #[error("the tree the run left is no model state: {0}")]
    Unmapped(#[from] Unmapped),
}

/// Every data name the program writes (setup and ops, `write`, `pwrite` and `store`), sorted.
pub fn data_names(program: &Program) -> Vec<String> {
    let names: BTreeSet<&str> = program
        .setup
        .iter()
        .chain(&program.ops)
        .filter_map(|op| op.kind.data())
        .collect();
    names.into_iter().map(str::to_string).collect()
}

/// Runs `program` for real in `root` (an existing, empty directory), reads back the tree it
/// leaves, and compares it with the model's prediction of the state after the last op
/// (`Analysis::new(program)?.new`).
///
/// The program is checked by the model first: an invalid program is not run.
pub fn run_and_compare(program: &Program, root: &StdPath) -> Result<Comparison, Error> {
    let predicted = Analysis::new(program)
        .map_err(|diagnostics| Error::Invalid {
            count: diagnostics.len(),
            diagnostics,
        })?
        .new;
    run(program, root)?;
    let names = data_names(program);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let tree = read_tree(root, &names).map_err(|source| Error::Read {
        root: root.to_path_buf(),
        source,
    })?;
    let observed = to_state(&tree)?;
    Ok(Comparison::new(observed, predicted))
}
