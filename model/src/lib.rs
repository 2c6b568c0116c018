//! The unplug program language and the persistence rules of POSIX and Linux file systems.
//!
//! **This crate does no I/O.** It is pure data and functions: a program ([`program`]), its parser
//! ([`parse`]), what a running system sees after each op ([`volatile`]), and each model's rules
//! ([`rules`]) that turn ops into effects, ordering edges and sync floors.

pub mod diag;
pub mod ids;
pub mod parse;
pub mod print;
pub mod program;

pub use diag::{Diagnostic, ProgramErrors};
pub use ids::OpNo;
pub use program::*;
pub mod layout;
pub mod persist;
pub mod rules;
pub mod strategy;
pub mod volatile;

pub use layout::{BlockValue, Chunk, Layout};
pub use persist::{build, Edge, Effect, EffectKind, Ext4Opts, Floor, ModelSpec, Persistence};
pub use rules::{Basis, Rule};
pub use volatile::{execute, Assign, Content, Extent, Ino, Kind, Origin, Trace, BLOCK};

/// Parses and checks a program: every syntax error, and every semantic error (a handle used before
/// `open`, a rename of a missing file...) of the ops before the first syntax error, so that
/// checking them cannot cascade from a broken line.
pub fn load(source: &str) -> Result<(Program, Trace), Vec<Diagnostic>> {
    let (program, mut errors) = parse::parse_partial(source);
    if errors.is_empty() {
        return execute(&program).map(|t| (program, t));
    }
    let first = errors.iter().map(|d| d.span.start).min().unwrap_or(0);
    let mut before = program;
    before.setup.retain(|op| op.span.start < first);
    before.ops.retain(|op| op.span.start < first);
    before.properties.clear();
    if let Err(more) = execute(&before) {
        errors.extend(more);
    }
    errors.sort_by_key(|d| (d.span.start, d.span.end));
    Err(errors)
}
