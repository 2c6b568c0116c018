//! The model crate's integration tests, in one binary: the parser's property tests and the
//! volatile execution of every op.

mod parse;
mod print;
mod volatile;
