//! Property tests of the parser: it never panics, its spans are always valid, and programs built
//! from the grammar always parse.

use proptest::prelude::*;
use unplug_model::diag::ProgramErrors;
use unplug_model::parse::{parse, parse_size};

/// Parses `src` and checks every invariant that holds whatever the input.
fn check(src: &str) {
    match parse(src) {
        Ok(prog) => {
            for op in prog.setup.iter().chain(&prog.ops) {
                assert_eq!(src.get(op.span.start..op.span.end), Some(op.text.as_str()));
                // An op's text parses on its own to the same op.
                let again = parse(&op.text).unwrap_or_else(|e| panic!("{:?}: {e:?}", op.text));
                assert_eq!(again.ops.len(), 1);
                assert_eq!(again.ops[0].kind, op.kind);
            }
            for p in &prog.properties {
                let text = src.get(p.span.start..p.span.end).expect("property span");
                assert!(text.ends_with(&p.text), "{text:?} / {:?}", p.text);
                if let unplug_model::When::After { op, .. } = p.when {
                    assert!(op >= 1 && op <= prog.ops.len());
                }
            }
            for d in &prog.data {
                assert!(src.get(d.span.start..d.span.end).is_some());
            }
        }
        Err(diags) => {
            assert!(!diags.is_empty());
            for d in &diags {
                assert!(d.span.start <= d.span.end, "{d:?}");
                assert!(d.span.end <= src.len(), "{d:?}");
                assert!(src.is_char_boundary(d.span.start), "{d:?}");
                assert!(src.is_char_boundary(d.span.end), "{d:?}");
                assert!(!d.message.is_empty());
                assert!(d.hint.is_some(), "{d:?}");
            }
            let starts: Vec<usize> = diags.iter().map(|d| d.span.start).collect();
            assert!(starts.windows(2).all(|w| w[0] <= w[1]), "errors not sorted");
            // The renderer copes with every span.
            let _ = ProgramErrors::new("p.up", src, diags).render_plain();
        }
    }
}

const TOKENS: &[&str] = &[
    "f",
    "m",
    "D",
    "OLD",
    "=",
    "open",
    "close",
    "write",
    "pwrite",
    "ftruncate",
    "mmap",
    "store",
    "msync",
    "munmap",
    "fsync",
    "fdatasync",
    "sync",
    "syncfs",
    "rename",
    "link",
    "unlink",
    "mkdir",
    "rmdir",
    "fallocate",
    "keep-size",
    "exchange",
    "noreplace",
    "flink",
    "symlink",
    "sync_file_range",
    "readlink",
    "tmpfile",
    "direct",
    "../x",
    "create",
    "excl",
    "trunc",
    "append",
    "dsync",
    "dir",
    "rdonly",
    "wronly",
    "rdwr",
    "at",
    "async",
    "invalidate",
    "data",
    "setup",
    "end",
    "property",
    "always",
    "after",
    "exists",
    "size",
    "links",
    "entries",
    "not",
    "and",
    "or",
    "implies",
    "prefix-of",
    "old",
    "new",
    "empty",
    "(",
    ")",
    "{",
    "}",
    ",",
    ":",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "!",
    "#",
    "0",
    "1",
    "8",
    "4KiB",
    "8MiB",
    "0x1000",
    "99999999999999TiB",
    "18446744073709551615",
    "18446744073709551616",
    "0x",
    "KiB",
    "4KB",
    "tmp",
    "final",
    "a/b",
    "/a",
    "a//b",
    "..",
    ".",
    "a/",
    "publish",
    "publish:",
    "é",
    "😀",
    "\u{0}",
    "\u{a0}",
    "\u{200b}",
    "\u{301}",
    "\t",
    "\r",
    "\r\n",
    "\n",
    "\n",
    "\n",
];
const SEPS: &[&str] = &[" ", " ", " ", "", "\n", "\t", "\r\n", "  ", "\u{3000}"];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (prop::sample::select(TOKENS), prop::sample::select(SEPS)),
        0..80,
    )
    .prop_map(|v| v.into_iter().flat_map(|(t, s)| [t, s]).collect())
}

/// A statement, possibly broken: lines of the language with random edits.
fn mutated_lines() -> impl Strategy<Value = String> {
    let line = prop::sample::select(vec![
        "data D 8MiB",
        "setup",
        "end",
        "f = open tmp create rdwr",
        "write f 4KiB D at 0",
        "pwrite f 4KiB 4KiB D",
        "m = mmap f 0 8MiB",
        "store m 0 8MiB D at 4K",
        "msync m 0 4KiB async invalidate",
        "publish: rename tmp final",
        "property A: always (exists final implies final == D)",
        "property B: after 1: final == D",
        "property C: after publish: size final == 8MiB",
        "property E: always entries . == {a, b}",
        "fallocate f 0 16KiB keep-size",
        "rename a b exchange",
        "rename a b noreplace",
        "t = open . tmpfile direct",
        "flink t d/name",
        "symlink ../v2 cur",
        "sync_file_range f 0 8KiB",
        "property F: always readlink cur == ../v2",
    ]);
    prop::collection::vec((line, any::<usize>(), any::<usize>(), any::<char>()), 0..12).prop_map(
        |v| {
            let mut out = String::new();
            for (l, cut, at, c) in v {
                let mut l = l.to_string();
                match cut % 4 {
                    0 => {}
                    1 => {
                        // delete a char
                        let idx: Vec<usize> = l.char_indices().map(|(i, _)| i).collect();
                        if !idx.is_empty() {
                            l.remove(idx[at % idx.len()]);
                        }
                    }
                    2 => {
                        // insert a char
                        let idx: Vec<usize> = l.char_indices().map(|(i, _)| i).collect();
                        l.insert(idx[at % idx.len()], c);
                    }
                    _ => {
                        // truncate at a char boundary
                        let idx: Vec<usize> = l.char_indices().map(|(i, _)| i).collect();
                        l.truncate(idx[at % idx.len()]);
                    }
                }
                out.push_str(&l);
                out.push('\n');
            }
            out
        },
    )
}

fn path() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["a", "tmp", "final", "dir/x.tmp", "d-1/e_2/f.3", "."])
}
fn size() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "0", "1", "4096", "4KiB", "4K", "8MiB", "8M", "1G", "1GiB", "0x1000", "100B", "1TiB",
    ])
}
fn name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["f", "g", "h_1", "x.y", "m-2", "sync", "at"])
}
fn target() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["v2", "../a/b", "/abs", ".", "..", "a//b/", "sync"])
}
fn data() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["D", "OLD", "d.2", "_x"])
}

fn valid_op() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            name(),
            path(),
            prop::collection::vec(
                prop::sample::select(vec![
                    "create", "excl", "trunc", "append", "sync", "dsync", "dir", "rdonly",
                    "wronly", "rdwr", "tmpfile", "direct"
                ]),
                0..4,
            )
        )
            .prop_map(|(h, p, f)| format!("{h} = open {p} {}", f.join(" "))),
        name().prop_map(|h| format!("close {h}")),
        (name(), size(), data(), prop::option::of(size())).prop_map(|(h, l, d, at)| format!(
            "write {h} {l} {d}{}",
            at.map(|a| format!(" at {a}")).unwrap_or_default()
        )),
        (name(), size(), size(), data(), prop::option::of(size())).prop_map(
            |(h, o, l, d, at)| format!(
                "pwrite {h} {o} {l} {d}{}",
                at.map(|a| format!(" at {a}")).unwrap_or_default()
            )
        ),
        (name(), size()).prop_map(|(h, s)| format!("ftruncate {h} {s}")),
        (name(), name(), size(), size())
            .prop_map(|(m, h, o, l)| format!("{m}={h2}mmap {h} {o} {l}", h2 = " ")),
        (name(), size(), size(), data()).prop_map(|(m, o, l, d)| format!("store {m} {o} {l} {d}")),
        (
            name(),
            prop::option::of((size(), size())),
            prop::bool::ANY,
            prop::bool::ANY
        )
            .prop_map(|(m, r, s, inv)| {
                let r = r.map(|(o, l)| format!(" {o} {l}")).unwrap_or_default();
                format!(
                    "msync {m}{r} {}{}",
                    if s { "sync" } else { "async" },
                    if inv { " invalidate" } else { "" }
                )
            }),
        name().prop_map(|m| format!("munmap {m}")),
        name().prop_map(|h| format!("fsync {h}")),
        name().prop_map(|h| format!("fdatasync {h}")),
        Just("sync".to_string()),
        name().prop_map(|h| format!("syncfs {h}")),
        (path(), path()).prop_map(|(a, b)| format!("rename {a} {b}")),
        (
            path(),
            path(),
            prop::sample::select(vec!["exchange", "noreplace"])
        )
            .prop_map(|(a, b, m)| format!("rename {a} {b} {m}")),
        (name(), size(), size(), prop::bool::ANY).prop_map(|(h, o, l, k)| format!(
            "fallocate {h} {o} {l}{}",
            if k { " keep-size" } else { "" }
        )),
        (name(), size(), size()).prop_map(|(h, o, l)| format!("sync_file_range {h} {o} {l}")),
        (name(), path()).prop_map(|(h, p)| format!("flink {h} {p}")),
        (target(), path()).prop_map(|(t, p)| format!("symlink {t} {p}")),
        (path(), path()).prop_map(|(a, b)| format!("link {a} {b}")),
        path().prop_map(|p| format!("unlink {p}")),
        path().prop_map(|p| format!("mkdir {p}")),
        path().prop_map(|p| format!("rmdir {p}")),
    ]
}

fn valid_expr() -> impl Strategy<Value = String> {
    let cmp = prop::sample::select(vec!["==", "!=", "<", "<=", ">", ">="]);
    let leaf = prop_oneof![
        path().prop_map(|p| format!("exists {p}")),
        (path(), cmp.clone(), size()).prop_map(|(p, c, s)| format!("size {p} {c} {s}")),
        (path(), cmp, 0u64..5).prop_map(|(p, c, n)| format!("links {p}{c}{n}")),
        (
            path(),
            prop::collection::btree_set(prop::sample::select(vec!["a", "b.tmp", "c-1", "9"]), 0..4)
        )
            .prop_map(|(p, n)| format!(
                "entries {p} == {{{}}}",
                n.into_iter().collect::<Vec<_>>().join(", ")
            )),
        (
            path(),
            prop::sample::select(vec!["==", "!="]),
            prop::sample::select(vec!["D", "old", "new", "empty", "OLD"])
        )
            .prop_map(|(p, c, r)| format!("{p} {c} {r}")),
        (path(), data()).prop_map(|(p, d)| format!("{p} prefix-of {d}")),
        (path(), prop::sample::select(vec!["==", "!="]), target())
            .prop_map(|(p, c, t)| format!("readlink {p} {c} {t}")),
    ];
    leaf.prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| format!("not {e}")),
            inner.clone().prop_map(|e| format!("({e})")),
            (
                inner.clone(),
                prop::sample::select(vec!["and", "or", "implies"]),
                inner
            )
                .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        ]
    })
}

/// A valid program: setup, ops (some labelled), data declarations and properties.
fn valid_program() -> impl Strategy<Value = (String, usize)> {
    (
        prop::collection::vec(valid_op(), 0..4),
        prop::collection::vec((valid_op(), prop::bool::ANY), 1..10),
        prop::collection::vec((valid_expr(), any::<usize>(), 0u8..3), 0..5),
        prop::bool::ANY,
    )
        .prop_map(|(setup, ops, props, crlf)| {
            let nl = if crlf { "\r\n" } else { "\n" };
            let mut src = format!("data D 8MiB  # the new content{nl}{nl}");
            if !setup.is_empty() {
                src.push_str(&format!("setup{nl}"));
                for op in &setup {
                    src.push_str(&format!("  {op}{nl}"));
                }
                src.push_str(&format!("end{nl}"));
            }
            for (i, (op, labelled)) in ops.iter().enumerate() {
                if *labelled {
                    src.push_str(&format!("l{}: ", i + 1));
                }
                src.push_str(&format!("{op}   # op {}{nl}", i + 1));
            }
            for (j, (e, k, how)) in props.iter().enumerate() {
                let n = k % ops.len() + 1;
                let when = match how {
                    0 => "always".to_string(),
                    1 => format!("after {n}:"),
                    _ if ops[n - 1].1 => format!("after l{n}:"),
                    _ => format!("after {n}:"),
                };
                src.push_str(&format!("property P{j}: {when} {e}{nl}"));
            }
            (src, ops.len())
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>()) {
        check(&s);
    }

    #[test]
    fn arbitrary_lines_never_panic(lines in prop::collection::vec("\\PC{0,40}", 0..10)) {
        check(&lines.join("\n"));
    }

    #[test]
    fn token_soup_never_panics(s in token_soup()) {
        check(&s);
    }

    #[test]
    fn mutated_programs_never_panic(s in mutated_lines()) {
        check(&s);
    }

    #[test]
    fn valid_programs_parse((src, n) in valid_program()) {
        let prog = parse(&src).unwrap_or_else(|e| panic!("{src}\n{e:#?}"));
        prop_assert_eq!(prog.ops.len(), n);
        check(&src);
    }

    #[test]
    fn parse_size_never_panics(s in "(0x)?[0-9a-fA-F]{0,25}(B|KiB|MiB|GiB|TiB|K|M|G|T|x|)") {
        let _ = parse_size(&s);
    }

    #[test]
    fn parse_size_decimal(n in any::<u64>(), unit in 0usize..9) {
        let (suffix, mult): (&str, u64) = [("", 1), ("B", 1), ("K", 1 << 10), ("KiB", 1 << 10), ("M", 1 << 20),
            ("MiB", 1 << 20), ("G", 1 << 30), ("GiB", 1 << 30), ("TiB", 1 << 40)][unit];
        prop_assert_eq!(parse_size(&format!("{n}{suffix}")), n.checked_mul(mult));
        // In hex, a trailing `B` is a digit: `0x1B` is 27.
        if suffix != "B" {
            prop_assert_eq!(parse_size(&format!("{n:#x}{suffix}")), n.checked_mul(mult));
        }
    }
}
