//! Programs as syntax: every form the parser accepts, built directly as a [`Program`] value.
//!
//! The strategies of the parent module write op text over a small vocabulary and keep only ops
//! that execute, which is what exploring needs. Printing needs the opposite: every form, valid
//! or not when run. [`program`] generates programs that parse but need not execute: every op
//! (all open flags, `write` and `pwrite` with and without `at DATA_OFFSET`, msync with and
//! without a range, both modes and `invalidate`, the three rename modes, `keep-size`...), sizes
//! from 0 to 2^64 - 1 (ranges that fit in 64 bits, as the parser requires), labels on ops,
//! data declarations (a size alone, `hex` content, a `file` source), a setup block, and
//! properties over every predicate (`exists`, `size` and `links` with every comparison, content against data / `old` / `new` / `empty`, `prefix-of`,
//! `entries` (empty or not), `readlink`) combined with `not`, `and`, `or` and `implies` to a
//! few levels, `always` or `after` an op number or label.
//!
//! Values carry no source text and default spans, like programs built as data; compare with
//! [`crate::print::normalized`].

use crate::program::{
    Cmp, ContentRef, DataDecl, DataSource, Expr, MsyncMode, Op, OpKind, OpenFlags, Path, Program,
    Property, RenameMode, Span, When,
};
use proptest::prelude::*;
use std::ops::Range;

const HANDLES: &[&str] = &["f", "g", "h_1", "x.y-z"];
const DATA: &[&str] = &["D", "E", "d.2"];
const LABELS: &[&str] = &["publish", "p2", "_l", "setup"];
const NAMES: &[&str] = &["a", "b1", "c.d", "-x", "_", "new", "7"];
const TARGETS: &[&str] = &["v2", "../data/v2", "/etc/x", "a//b", "."];

fn ident(names: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::sample::select(names).prop_map(str::to_string)
}

fn path() -> impl Strategy<Value = Path> {
    prop_oneof![
        1 => Just(Path::root()),
        6 => prop::collection::vec(ident(NAMES), 1..4).prop_map(|c| Path(c.into())),
    ]
}

/// A size: the small ones the corpus uses, or any 32- or 64-bit value.
fn size() -> impl Strategy<Value = u64> {
    prop_oneof![
        prop::sample::select(vec![0u64, 1, 512, 1536, 4096, 12288, 8 << 20, 1 << 30]),
        any::<u32>().prop_map(u64::from),
        any::<u64>(),
    ]
}

/// The path of a `file` data source: relative, components of path characters (`..` too).
fn data_file() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("prog.data".to_string()),
            Just("..".to_string()),
            "[0-9a-f]{1,16}",
            "[A-Za-z0-9_.-]{1,8}",
        ],
        1..4,
    )
    .prop_map(|c| c.join("/"))
}

/// An offset and a length whose sum fits in 64 bits.
fn range() -> impl Strategy<Value = (u64, u64)> {
    (size(), size()).prop_map(|(o, l)| (o, l.min(u64::MAX - o)))
}

/// A data range: the optional `at` offset of a `len`-byte write.
fn at(len: u64) -> impl Strategy<Value = Option<u64>> {
    prop::option::of(size().prop_map(move |o| o.min(u64::MAX - len)))
}

fn flags() -> impl Strategy<Value = OpenFlags> {
    prop::array::uniform9(any::<bool>()).prop_map(|b| OpenFlags {
        create: b[0],
        excl: b[1],
        trunc: b[2],
        append: b[3],
        sync: b[4],
        dsync: b[5],
        directory: b[6],
        tmpfile: b[7],
        direct: b[8],
    })
}

/// Ops with a handle and sizes: data and mapping calls.
fn data_op() -> impl Strategy<Value = OpKind> {
    let h = || ident(HANDLES);
    prop_oneof![
        (h(), path(), flags()).prop_map(|(handle, path, flags)| OpKind::Open {
            handle,
            path,
            flags
        }),
        (h(), prop::option::of(size()), range(), ident(DATA))
            .prop_flat_map(|(handle, pwrite, (a, len), data)| {
                // pwrite: the offset and the length must fit together.
                let offset = pwrite.map(|_| a);
                (at(len), Just((handle, offset, len, data)))
            })
            .prop_map(|(data_off, (handle, offset, len, data))| OpKind::Write {
                handle,
                offset,
                len,
                data,
                data_off
            }),
        (h(), size()).prop_map(|(handle, size)| OpKind::Ftruncate { handle, size }),
        (h(), range(), any::<bool>()).prop_map(|(handle, (offset, len), keep_size)| {
            OpKind::Fallocate {
                handle,
                offset,
                len,
                keep_size,
            }
        }),
        (h(), range()).prop_map(|(handle, (offset, len))| OpKind::SyncFileRange {
            handle,
            offset,
            len
        }),
        (h(), h(), range()).prop_map(|(handle, map, (offset, len))| OpKind::Mmap {
            handle,
            map,
            offset,
            len
        }),
        (h(), range(), ident(DATA))
            .prop_flat_map(|(map, (offset, len), data)| (at(len), Just((map, offset, len, data))))
            .prop_map(|(data_off, (map, offset, len, data))| OpKind::Store {
                map,
                offset,
                len,
                data,
                data_off
            }),
        (
            h(),
            prop::option::of(range()),
            prop::bool::ANY,
            any::<bool>()
        )
            .prop_map(|(map, range, sync, invalidate)| OpKind::Msync {
                map,
                range,
                mode: if sync {
                    MsyncMode::Sync
                } else {
                    MsyncMode::Async
                },
                invalidate
            }),
        h().prop_map(|map| OpKind::Munmap { map }),
    ]
}

/// Syncs, closes and the namespace ops.
fn other_op() -> impl Strategy<Value = OpKind> {
    let h = || ident(HANDLES);
    let mode = prop::sample::select(vec![
        RenameMode::Replace,
        RenameMode::Exchange,
        RenameMode::NoReplace,
    ]);
    prop_oneof![
        h().prop_map(|handle| OpKind::Close { handle }),
        h().prop_map(|handle| OpKind::Fsync { handle }),
        h().prop_map(|handle| OpKind::Fdatasync { handle }),
        Just(OpKind::Sync),
        h().prop_map(|handle| OpKind::Syncfs { handle }),
        (path(), path(), mode).prop_map(|(from, to, mode)| OpKind::Rename { from, to, mode }),
        (path(), path()).prop_map(|(from, to)| OpKind::Link { from, to }),
        (h(), path()).prop_map(|(handle, path)| OpKind::Flink { handle, path }),
        (ident(TARGETS), path()).prop_map(|(target, path)| OpKind::Symlink { target, path }),
        path().prop_map(|path| OpKind::Unlink { path }),
        path().prop_map(|path| OpKind::Mkdir { path }),
        path().prop_map(|path| OpKind::Rmdir { path }),
    ]
}

/// Any op's kind.
pub fn op_kind() -> impl Strategy<Value = OpKind> {
    prop_oneof![data_op(), other_op()]
}

fn cmp() -> impl Strategy<Value = Cmp> {
    prop::sample::select(vec![Cmp::Eq, Cmp::Ne, Cmp::Lt, Cmp::Le, Cmp::Gt, Cmp::Ge])
}

/// A predicate without connectives.
fn leaf() -> impl Strategy<Value = Expr> {
    let content = prop_oneof![
        ident(DATA).prop_map(ContentRef::Data),
        Just(ContentRef::Old),
        Just(ContentRef::New),
        Just(ContentRef::Empty),
    ];
    prop_oneof![
        path().prop_map(Expr::Exists),
        (path(), cmp(), size()).prop_map(|(p, c, n)| Expr::Size(p, c, n)),
        (path(), content).prop_map(|(p, r)| Expr::ContentEq(p, r)),
        (path(), ident(DATA)).prop_map(|(p, d)| Expr::PrefixOf(p, d)),
        (path(), prop::sample::subsequence(NAMES, 0..4))
            .prop_map(|(p, n)| Expr::Entries(p, n.into_iter().map(str::to_string).collect())),
        (path(), cmp(), any::<u64>()).prop_map(|(p, c, n)| Expr::Links(p, c, n)),
        (path(), ident(TARGETS)).prop_map(|(p, t)| Expr::Readlink(p, t)),
        prop::collection::btree_set(path(), 0..3)
            .prop_map(|p| Expr::Checker(p.into_iter().collect())),
    ]
}

/// A predicate: leaves combined with `not`, `and`, `or` and `implies`, a few levels deep.
pub fn expr() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::Or(Box::new(a), Box::new(b))),
            (inner.clone(), inner).prop_map(|(a, b)| Expr::Implies(Box::new(a), Box::new(b))),
        ]
    })
}

fn op(kind: OpKind, label: Option<String>) -> Op {
    Op {
        kind,
        label,
        text: String::new(),
        span: Span::default(),
        site: None,
    }
}

/// A program that parses (it need not execute): data declarations, a setup block, `ops` ops
/// (some labelled, each label once) and up to three properties (see the module docs).
pub fn program(ops: Range<usize>) -> impl Strategy<Value = Program> {
    let data = prop::sample::subsequence(DATA, 0..=DATA.len());
    let decl = prop_oneof![
        2 => size().prop_map(|len| (len, None)),
        1 => prop::collection::vec(any::<u8>(), 0..12)
            .prop_map(|b| (b.len() as u64, Some(DataSource::Hex(b)))),
        1 => (size(), data_file()).prop_map(|(len, f)| (len, Some(DataSource::File(f)))),
    ];
    let data = (data, prop::collection::vec(decl, DATA.len())).prop_map(|(names, decls)| {
        names
            .into_iter()
            .zip(decls)
            .map(|(name, (len, source))| DataDecl {
                name: name.to_string(),
                len,
                source,
                span: Span::default(),
            })
            .collect::<Vec<_>>()
    });
    let setup = prop::collection::vec(op_kind(), 0..3);
    let body = prop::collection::vec((op_kind(), prop::option::of(0..LABELS.len())), ops);
    let props = prop::collection::vec((expr(), any::<prop::sample::Index>(), any::<bool>()), 0..4);
    let outputs = prop::collection::vec(
        (
            any::<prop::sample::Index>(),
            prop::collection::vec(any::<u8>(), 1..8),
        ),
        0..3,
    );
    (data, setup, body, props, outputs).prop_map(|(data, setup, body, props, outputs)| {
        let mut used = std::collections::BTreeSet::new();
        let ops: Vec<Op> = body
            .into_iter()
            .map(|(kind, label)| {
                let label = label
                    .filter(|&l| used.insert(l))
                    .map(|l| LABELS[l].to_string());
                op(kind, label)
            })
            .collect();
        let properties = props
            .into_iter()
            .enumerate()
            .map(|(i, (expr, at, by_label))| {
                let when = if ops.is_empty() || i == 0 {
                    When::Always
                } else {
                    let k = at.index(ops.len());
                    let written = match &ops[k].label {
                        Some(l) if by_label => l.clone(),
                        _ => (k + 1).to_string(),
                    };
                    When::After { op: k + 1, written }
                };
                Property {
                    name: format!("P{i}"),
                    when,
                    expr,
                    text: String::new(),
                    span: Span::default(),
                }
            })
            .collect();
        // What the application printed, after some op (in op order, as the parser keeps it).
        let mut outputs: Vec<crate::program::Output> = outputs
            .into_iter()
            .map(|(at, bytes)| crate::program::Output {
                after: at.index(ops.len() + 1),
                bytes,
                span: Span::default(),
            })
            .collect();
        outputs.sort_by_key(|o| o.after);
        Program {
            setup: setup.into_iter().map(|k| op(k, None)).collect(),
            ops,
            data,
            properties,
            outputs,
        }
    })
}
