//! The unplug program language and the persistence rules of POSIX and Linux file systems.
//!
//! **This crate does no I/O.** It is pure data and functions: a program ([`program`]), its parser
//! ([`parse`]), what a running system sees after each op ([`volatile`]), and each model's rules
//! ([`rules`]) that turn ops into effects, ordering edges and sync floors.

pub mod diag;
pub mod parse;
pub mod program;

pub use diag::{Diagnostic, ProgramErrors};
pub use program::*;
pub mod layout;
pub mod persist;
pub mod rules;
pub mod volatile;

pub use layout::{BlockValue, Chunk, Layout};
pub use persist::{build, Edge, Effect, EffectKind, Ext4Opts, Floor, ModelSpec, Persistence};
pub use rules::{Basis, Rule};
pub use volatile::{execute, Assign, Content, Extent, Ino, Kind, Origin, Trace, BLOCK};
