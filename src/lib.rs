//! unplug as a library: build a program of file-system calls in Rust (or load `.up` text), pick
//! models, check its properties at every crash point, and assert in your own tests that they
//! hold, with the crash state that breaks one when it does not.
//!
//! ```
//! use unplug::{after, always, prop, Check, MsyncMode, Open, ProgramBuilder, PropExt};
//!
//! // The 2011 question: publish a file written through mmap under its final name.
//! let built = ProgramBuilder::new()
//!     .open("f", "tmp", Open::new().create())
//!     .ftruncate("f", 8192)
//!     .mmap("f", "m", 0, 8192)
//!     .store("m", 0, 8192, "D")
//!     .msync("m", MsyncMode::Sync)
//!     .fsync("f")
//!     .rename("tmp", "final")
//!     .fsync("f")
//!     .property("A", always(), prop::exists("final").implies(prop::content("final", "D")))
//!     .property("B", after(8), prop::content("final", "D"))
//!     .build()
//!     .unwrap();
//! let report = Check::new(&built).models(&["ext4"]).unwrap().run();
//! report.assert_holds();
//! // POSIX does not promise the rename without an fsync of the directory.
//! let posix = Check::new(&built).models(&["posix"]).unwrap().run();
//! assert_eq!(posix.holds("posix", "B"), Some(false));
//! ```
//!
//! The library is the `unplug_model` and `unplug_explorer` crates behind a small surface:
//! [`ProgramBuilder`] (or [`load`] for `.up` text), [`Check`], [`Report`]. Generated programs for
//! property tests come from [`strategy`] (proptest). The command-line tool is the `unplug`
//! binary of this package.

mod builder;
mod verdict;

pub use builder::{after, always, path, prop, Built, Open, ProgramBuilder, PropExt};
pub use unplug_model::strategy;
pub use unplug_model::{
    Cmp, Expr, ModelSpec, MsyncMode, OpKind, Program, ProgramErrors, RenameMode, When,
};
pub use verdict::{crash_point, op_str, Check, Outcome, Report, Verdict};

/// Loads a program from `.up` text: every syntax and semantic error, rendered with
/// `name:line:col` and a caret by [`ProgramErrors::render_plain`].
///
/// ```
/// let built = unplug::load("prog.up", "f = open a create\nfsync f\nproperty P: after 2: exists a\n").unwrap();
/// assert_eq!(built.program.ops.len(), 2);
/// let err = unplug::load("bad.up", "fsync g\n").unwrap_err();
/// assert!(err.render_plain().contains("bad.up:1:"));
/// ```
pub fn load(name: &str, source: &str) -> Result<Built, ProgramErrors> {
    match unplug_model::load(source) {
        Ok((program, trace)) => Ok(Built {
            program,
            trace,
            source: source.to_string(),
        }),
        Err(errors) => Err(ProgramErrors::new(name, source, errors)),
    }
}
