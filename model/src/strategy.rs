//! [proptest] strategies for programs: generate and shrink file-system workloads in your own
//! `cargo test`.
//!
//! [`op`] is one op's text over a small vocabulary (a few paths, handles, sizes of a few 4 KiB
//! blocks, two named data): opens (create, trunc, append, O_SYNC, O_DSYNC, directories, O_TMPFILE),
//! write, pwrite, ftruncate, fallocate, sync_file_range, mmap, store, msync, munmap, fsync,
//! fdatasync, sync, syncfs, rename (plain, exchange, noreplace), link, flink, symlink, unlink,
//! mkdir, rmdir and close. [`source`] assembles ops into the text of a whole program, keeping an
//! op only if the program with it still executes ([`crate::execute`]): a rename of a missing file
//! is dropped rather than making the program invalid, so every generated program is valid and
//! shrinking (proptest removes and simplifies elements of the op vector) stays valid too.
//! [`program`] parses that text.
//!
//! Every program declares the data `D` and `E` (16 KiB each) and a setup block that leaves a
//! durable file `old` (4 KiB of `OLD`); ops then open `a` as `f` and `b` as `g`. With
//! [`Shape::properties`], the program also carries a few properties over those names.
//!
//! ```
//! use proptest::prelude::*;
//! use unplug_model::strategy;
//!
//! proptest!(ProptestConfig::with_cases(16), |(p in strategy::program(1..6))| {
//!     // Every generated program executes, op for op, after the two opens of the head.
//!     let trace = unplug_model::execute(&p).unwrap();
//!     prop_assert_eq!(trace.ops.len(), p.ops.len());
//!     prop_assert!(p.ops.len() >= 2);
//! });
//! ```
//!
//! [`syntax::program`] is the other kind: programs built as values over every form of the
//! language, that parse but need not execute (for the printer's round trip).
//!
//! For properties over crash states, explore the program with `unplug_explorer` (see the
//! example in `unplug_explorer::order`). [`source`] gives the program's text, which is what a
//! failing case prints and what `unplug check` reads.

use crate::program::Program;
use proptest::prelude::*;
use std::ops::Range;

pub mod syntax;

/// The head every generated program starts with: its data, a setup file `old`, and two open
/// handles (`f` on `a`, `g` on `b`).
pub const HEAD: &str = "data D 16KiB\ndata E 16KiB\nsetup\nf = open old create\nwrite f 4KiB OLD\nclose f\nend\nf = open a create\ng = open b create\n";

/// Properties [`Shape::properties`] appends: over `a` (only `D` or `E` is written), `b` and the
/// setup file `old`.
pub const PROPERTIES: &str = "property P: always (exists a implies a prefix-of D)\nproperty Q: after 2: exists b\nproperty R: always (old == OLD or not exists old)\n";

/// The number of ops of [`HEAD`] (the two opens) that every program starts with.
pub const HEAD_OPS: usize = 2;

/// What a generated program looks like.
#[derive(Clone, Debug)]
pub struct Shape {
    /// How many generated ops to try (each is kept only if the program still executes).
    pub ops: Range<usize>,
    /// Append [`PROPERTIES`].
    pub properties: bool,
    /// The sizes ops use (offsets, lengths, truncate sizes), as the language writes them.
    pub sizes: Vec<&'static str>,
}

impl Shape {
    /// `ops` generated ops, sizes of up to two 4 KiB blocks (files of up to four), with
    /// properties.
    pub fn new(ops: Range<usize>) -> Shape {
        Shape {
            ops,
            properties: true,
            sizes: SIZES.to_vec(),
        }
    }
}

/// The default sizes: 0, half a block, one, one and a half, two blocks.
pub const SIZES: &[&str] = &["0", "2KiB", "4KiB", "6KiB", "8KiB"];

/// Sizes in 512-byte sectors (for models with `atomic=sector`, where every sector is a unit).
pub const SECTOR_SIZES: &[&str] = &["0", "512", "1KiB", "1536", "2KiB"];

/// One op's text over the default vocabulary (see the module docs).
pub fn op() -> impl Strategy<Value = String> {
    op_with(SIZES)
}

/// One op's text, with offsets, lengths and truncate sizes drawn from `sizes`.
pub fn op_with(sizes: &[&'static str]) -> impl Strategy<Value = String> {
    let size = prop::sample::select(sizes.to_vec());
    let handle = prop::sample::select(vec!["f", "g", "h"]);
    let data = prop::sample::select(vec!["D", "E"]);
    let path = prop::sample::select(vec!["a", "b", "c", "old", "d/x"]);
    let flags = prop::sample::select(vec![
        "create",
        "trunc",
        "create trunc",
        "append",
        "sync",
        "dsync",
        "create dsync",
    ]);
    let namespace = prop_oneof![
        (path.clone(), path.clone()).prop_map(|(a, b)| format!("rename {a} {b}")),
        (
            path.clone(),
            path.clone(),
            prop::sample::select(vec!["exchange", "noreplace"])
        )
            .prop_map(|(a, b, m)| format!("rename {a} {b} {m}")),
        (path.clone(), path.clone()).prop_map(|(a, b)| format!("link {a} {b}")),
        path.clone().prop_map(|p| format!("unlink {p}")),
        Just("mkdir d".to_string()),
        Just("rmdir d".to_string()),
        (prop::sample::select(vec!["a", "v2"]), path.clone())
            .prop_map(|(t, p)| format!("symlink {t} {p}")),
        (handle.clone(), path.clone()).prop_map(|(h, p)| format!("flink {h} {p}")),
    ];
    let data_ops = prop_oneof![
        (handle.clone(), size.clone(), data.clone())
            .prop_map(|(h, s, d)| format!("write {h} {s} {d}")),
        (handle.clone(), size.clone(), size.clone(), data.clone())
            .prop_map(|(h, o, s, d)| format!("pwrite {h} {o} {s} {d}")),
        (handle.clone(), size.clone()).prop_map(|(h, s)| format!("ftruncate {h} {s}")),
        (handle.clone(), size.clone(), size.clone(), any::<bool>()).prop_map(|(h, o, l, k)| {
            format!("fallocate {h} {o} {l}{}", if k { " keep-size" } else { "" })
        }),
        (handle.clone(), size.clone()).prop_map(|(h, o)| format!("sync_file_range {h} {o} 0")),
        handle.clone().prop_map(|h| format!("m = mmap {h} 0 8KiB")),
        (size.clone(), data.clone()).prop_map(|(s, d)| format!("store m 0 {s} {d}")),
        (size.clone(), data).prop_map(|(o, d)| format!("store m {o} 2KiB {d}")),
        prop::sample::select(vec![
            "msync m sync",
            "msync m 0 4KiB sync",
            "msync m async",
            "munmap m"
        ])
        .prop_map(str::to_string),
    ];
    let syncs = prop_oneof![
        handle.clone().prop_map(|h| format!("fsync {h}")),
        handle.clone().prop_map(|h| format!("fdatasync {h}")),
        handle.clone().prop_map(|h| format!("syncfs {h}")),
        Just("sync".to_string()),
    ];
    let handles = prop_oneof![
        (handle.clone(), path, flags).prop_map(|(h, p, f)| format!("{h} = open {p} {f}")),
        prop::sample::select(vec![
            "h = open d dir",
            "h = open . dir",
            "h = open . tmpfile"
        ])
        .prop_map(str::to_string),
        handle.prop_map(|h| format!("close {h}")),
    ];
    prop_oneof![4 => data_ops, 3 => namespace, 2 => syncs, 2 => handles]
}

/// Assembles the text of a program from generated ops: [`HEAD`], each op kept only if the
/// program with it still parses and executes, then (with `properties`) [`PROPERTIES`].
pub fn assemble(ops: &[String], properties: bool) -> String {
    let mut body = String::from(HEAD);
    for o in ops {
        let len = body.len();
        body.push_str(o);
        body.push('\n');
        let ok = crate::parse::parse(&body)
            .ok()
            .is_some_and(|p| crate::execute(&p).is_ok());
        if !ok {
            body.truncate(len);
        }
    }
    if properties {
        body.push_str(PROPERTIES);
    }
    body
}

/// The text of a valid program of the given shape (see [`assemble`]).
pub fn source_of(shape: Shape) -> impl Strategy<Value = String> {
    let Shape {
        ops,
        properties,
        sizes,
    } = shape;
    prop::collection::vec(op_with(&sizes), ops).prop_map(move |v| assemble(&v, properties))
}

/// The text of a valid program: [`HEAD`], up to `ops` generated ops, [`PROPERTIES`].
pub fn source(ops: Range<usize>) -> impl Strategy<Value = String> {
    source_of(Shape::new(ops))
}

/// A valid program (parsed, and [`crate::execute`] accepts it): [`HEAD`], up to `ops`
/// generated ops, [`PROPERTIES`]. `op.text` of each op is its source line.
pub fn program(ops: Range<usize>) -> impl Strategy<Value = Program> {
    source(ops).prop_map(|s| parse_valid(&s))
}

/// A valid program of the given shape.
pub fn program_of(shape: Shape) -> impl Strategy<Value = Program> {
    source_of(shape).prop_map(|s| parse_valid(&s))
}

fn parse_valid(s: &str) -> Program {
    crate::parse::parse(s).unwrap_or_else(|e| panic!("a generated program parses: {e:?}\n{s}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRunner};

    #[test]
    fn generated_programs_execute_and_use_most_ops() {
        let mut runner = TestRunner::new(Config::default());
        let mut kept = 0;
        let mut tried = 0;
        let strategy = prop::collection::vec(op(), 1..12);
        for _ in 0..200 {
            let ops = strategy.new_tree(&mut runner).expect("a value").current();
            let src = assemble(&ops, true);
            let p = crate::parse::parse(&src).expect("parses");
            crate::execute(&p).expect("executes");
            kept += p.ops.len() - HEAD_OPS;
            tried += ops.len();
        }
        // Not a guarantee, a smoke check that the vocabulary is not mostly invalid.
        assert!(kept * 3 > tried, "kept {kept} of {tried} generated ops");
    }
}
