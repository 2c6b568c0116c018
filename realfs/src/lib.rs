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
//!
//! The block-recording backends (qemu `blklogwrites`, on the host and in a VM), which record the
//! writes a run sends to a device and replay prefixes of them as crash states, come in a later
//! issue; the runner's [`runner::run_with`] hook is where they will put their marks.

pub mod pattern;
pub mod readback;
pub mod runner;

pub use pattern::{classify, classify_sector, data_bytes, Extent, Origin, SectorOrigin};
pub use readback::{read_tree, Entry, Kind, ObservedTree};
pub use runner::{run, run_with, OpRecord, RunError, RunLog, Step};
