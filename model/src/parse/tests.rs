//! Unit tests of the parser: one-line, data-driven checks of every op, flag and predicate, and
//! of the errors (line:col, message, hint).
use super::*;
use crate::diag::line_col;
use crate::program::ContentRef as C;

fn p(s: &str) -> Path {
    path_value(s).expect("test path")
}
fn s(x: &str) -> String {
    x.to_string()
}

/// Parses `src`, which must hold exactly one program op, and compares the op.
#[track_caller]
fn check_ok(src: &str, expected: OpKind) {
    let prog = parse(src).unwrap_or_else(|e| panic!("{src:?} failed: {e:#?}"));
    assert_eq!(prog.ops.len(), 1, "{src:?}");
    assert_eq!(prog.ops[0].kind, expected, "{src:?}");
    let span = prog.ops[0].span;
    assert_eq!(&src[span.start..span.end], prog.ops[0].text, "{src:?}");
}

/// Renders an expression as an s-expression, to compare trees in one line.
fn sx(e: &Expr) -> String {
    match e {
        Expr::Exists(p) => format!("(exists {p})"),
        Expr::Size(p, c, n) => format!("(size {p} {} {n})", c.symbol()),
        Expr::Links(p, c, n) => format!("(links {p} {} {n})", c.symbol()),
        Expr::Readlink(p, t) => format!("(readlink {p} {t})"),
        Expr::ContentEq(p, r) => {
            let r = match r {
                C::Data(d) => d.as_str(),
                C::Old => "old",
                C::New => "new",
                C::Empty => "empty",
            };
            format!("(== {p} {r})")
        }
        Expr::PrefixOf(p, d) => format!("(prefix-of {p} {d})"),
        Expr::Entries(p, names) => format!("(entries {p} {{{}}})", names.join(",")),
        Expr::Not(a) => format!("(not {})", sx(a)),
        Expr::And(a, b) => format!("(and {} {})", sx(a), sx(b)),
        Expr::Or(a, b) => format!("(or {} {})", sx(a), sx(b)),
        Expr::Implies(a, b) => format!("(implies {} {})", sx(a), sx(b)),
    }
}

/// Parses `property P: always EXPR` and compares the expression's s-expression.
#[track_caller]
fn check_expr(expr: &str, expected: &str) {
    let src = format!("property P: always {expr}");
    let prog = parse(&src).unwrap_or_else(|e| panic!("{src:?} failed: {e:#?}"));
    assert_eq!(sx(&prog.properties[0].expr), expected, "{src:?}");
    assert_eq!(prog.properties[0].text, format!("always {}", expr.trim()));
}

/// Parses `src`, which must fail with exactly the expected errors, each written
/// `"line:col: message substring"`. Every error must have a hint.
#[track_caller]
fn check_err(src: &str, expected: &[&str]) {
    let diags = match parse(src) {
        Ok(prog) => panic!("{src:?} parsed: {prog:#?}"),
        Err(d) => d,
    };
    let got: Vec<String> = diags
        .iter()
        .map(|d| {
            let (l, c) = line_col(src, d.span.start);
            format!("{l}:{c}: {}", d.message)
        })
        .collect();
    for d in &diags {
        assert!(d.hint.is_some(), "{src:?}: no hint for {d:?}");
        assert!(d.span.end <= src.len() && d.span.start <= d.span.end);
    }
    assert_eq!(got.len(), expected.len(), "{src:?}: got {got:#?}");
    for e in expected {
        let (loc, msg) = e.split_once(": ").expect("`line:col: message`");
        assert!(
            got.iter().any(|g| g
                .split_once(": ")
                .is_some_and(|(l, m)| l == loc && m.contains(msg))),
            "{src:?}: expected {e:?}, got {got:#?}"
        );
    }
}

fn write(h: &str, offset: Option<u64>, len: u64, data: &str, data_off: Option<u64>) -> OpKind {
    OpKind::Write {
        handle: s(h),
        offset,
        len,
        data: s(data),
        data_off,
    }
}
fn open(h: &str, path: &str, f: impl FnOnce(&mut OpenFlags)) -> OpKind {
    let mut flags = OpenFlags::default();
    f(&mut flags);
    OpKind::Open {
        handle: s(h),
        path: p(path),
        flags,
    }
}

#[test]
fn every_op() {
    check_ok("f = open tmp", open("f", "tmp", |_| {}));
    check_ok("close f", OpKind::Close { handle: s("f") });
    check_ok("write f 4KiB D", write("f", None, 4096, "D", None));
    check_ok("write f 4KiB D at 0", write("f", None, 4096, "D", Some(0)));
    check_ok(
        "write f 1 D at 8MiB",
        write("f", None, 1, "D", Some(8 << 20)),
    );
    check_ok(
        "pwrite f 4KiB 4KiB D",
        write("f", Some(4096), 4096, "D", None),
    );
    check_ok(
        "pwrite f 0 10 D at 5",
        write("f", Some(0), 10, "D", Some(5)),
    );
    check_ok(
        "ftruncate f 8MiB",
        OpKind::Ftruncate {
            handle: s("f"),
            size: 8 << 20,
        },
    );
    check_ok(
        "m = mmap f 0 8MiB",
        OpKind::Mmap {
            handle: s("f"),
            map: s("m"),
            offset: 0,
            len: 8 << 20,
        },
    );
    check_ok(
        "store m 0 8MiB D",
        OpKind::Store {
            map: s("m"),
            offset: 0,
            len: 8 << 20,
            data: s("D"),
            data_off: None,
        },
    );
    check_ok(
        "store m 4K 4K D at 8K",
        OpKind::Store {
            map: s("m"),
            offset: 4096,
            len: 4096,
            data: s("D"),
            data_off: Some(8192),
        },
    );
    check_ok(
        "msync m sync",
        OpKind::Msync {
            map: s("m"),
            range: None,
            mode: MsyncMode::Sync,
            invalidate: false,
        },
    );
    check_ok(
        "msync m async",
        OpKind::Msync {
            map: s("m"),
            range: None,
            mode: MsyncMode::Async,
            invalidate: false,
        },
    );
    check_ok(
        "msync m sync invalidate",
        OpKind::Msync {
            map: s("m"),
            range: None,
            mode: MsyncMode::Sync,
            invalidate: true,
        },
    );
    check_ok(
        "msync m 0 4KiB async invalidate",
        OpKind::Msync {
            map: s("m"),
            range: Some((0, 4096)),
            mode: MsyncMode::Async,
            invalidate: true,
        },
    );
    check_ok(
        "msync m 4096 1 sync",
        OpKind::Msync {
            map: s("m"),
            range: Some((4096, 1)),
            mode: MsyncMode::Sync,
            invalidate: false,
        },
    );
    check_ok("munmap m", OpKind::Munmap { map: s("m") });
    check_ok("fsync f", OpKind::Fsync { handle: s("f") });
    check_ok("fdatasync f", OpKind::Fdatasync { handle: s("f") });
    check_ok("sync", OpKind::Sync);
    check_ok("syncfs f", OpKind::Syncfs { handle: s("f") });
    check_ok(
        "rename tmp final",
        OpKind::Rename {
            from: p("tmp"),
            to: p("final"),
            mode: RenameMode::Replace,
        },
    );
    check_ok(
        "rename a/b.tmp c/d-e_f",
        OpKind::Rename {
            from: p("a/b.tmp"),
            to: p("c/d-e_f"),
            mode: RenameMode::Replace,
        },
    );
    check_ok(
        "link a b",
        OpKind::Link {
            from: p("a"),
            to: p("b"),
        },
    );
    check_ok("unlink a", OpKind::Unlink { path: p("a") });
    check_ok("mkdir dir", OpKind::Mkdir { path: p("dir") });
    check_ok("rmdir dir/sub", OpKind::Rmdir { path: p("dir/sub") });
    check_ok("d = open . dir", open("d", ".", |f| f.directory = true));
    check_ok("  close   f  ", OpKind::Close { handle: s("f") });
    check_ok("close f # a comment", OpKind::Close { handle: s("f") });
    check_ok("close f#comment", OpKind::Close { handle: s("f") });
    check_ok("f=open tmp", open("f", "tmp", |_| {}));
    check_ok(
        "my_handle.2-x = open tmp",
        open("my_handle.2-x", "tmp", |_| {}),
    );
    check_ok("close sync", OpKind::Close { handle: s("sync") });
    check_ok("property = open x", open("property", "x", |_| {}));
    check_ok("data = open x", open("data", "x", |_| {}));
    check_ok("end=open x", open("end", "x", |_| {}));
    check_ok(
        "setup = mmap f 0 1",
        OpKind::Mmap {
            handle: s("f"),
            map: s("setup"),
            offset: 0,
            len: 1,
        },
    );
    check_ok("write f 1 at", write("f", None, 1, "at", None));
    check_ok("write f 1 at at 2", write("f", None, 1, "at", Some(2)));
    check_ok("write f 1 OLD", write("f", None, 1, "OLD", None));
}

trait CloneWith {
    fn clone_with(&self, h: &str, f: impl FnOnce(&mut OpenFlags)) -> OpKind;
}
impl CloneWith for OpKind {
    /// The same open with handle `h` and its flags changed by `f`.
    fn clone_with(&self, h: &str, f: impl FnOnce(&mut OpenFlags)) -> OpKind {
        match self.clone() {
            OpKind::Open {
                path, mut flags, ..
            } => {
                f(&mut flags);
                OpKind::Open {
                    handle: s(h),
                    path,
                    flags,
                }
            }
            other => other,
        }
    }
}

#[test]
fn new_ops() {
    check_ok(
        "fallocate f 0 16KiB",
        OpKind::Fallocate {
            handle: s("f"),
            offset: 0,
            len: 16 << 10,
            keep_size: false,
        },
    );
    check_ok(
        "fallocate f 4K 1M keep-size",
        OpKind::Fallocate {
            handle: s("f"),
            offset: 4096,
            len: 1 << 20,
            keep_size: true,
        },
    );
    check_ok(
        "rename a b exchange",
        OpKind::Rename {
            from: p("a"),
            to: p("b"),
            mode: RenameMode::Exchange,
        },
    );
    check_ok(
        "rename d/a b noreplace",
        OpKind::Rename {
            from: p("d/a"),
            to: p("b"),
            mode: RenameMode::NoReplace,
        },
    );
    check_ok(
        "flink f d/name",
        OpKind::Flink {
            handle: s("f"),
            path: p("d/name"),
        },
    );
    check_ok(
        "symlink v2 cur",
        OpKind::Symlink {
            target: s("v2"),
            path: p("cur"),
        },
    );
    check_ok(
        "symlink ../data/v-2.x d/cur",
        OpKind::Symlink {
            target: s("../data/v-2.x"),
            path: p("d/cur"),
        },
    );
    check_ok(
        "symlink /abs/./x// l",
        OpKind::Symlink {
            target: s("/abs/./x//"),
            path: p("l"),
        },
    );
    check_ok(
        "sync_file_range f 0 8KiB",
        OpKind::SyncFileRange {
            handle: s("f"),
            offset: 0,
            len: 8192,
        },
    );
    check_ok(
        "sync_file_range f 4K 0",
        OpKind::SyncFileRange {
            handle: s("f"),
            offset: 4096,
            len: 0,
        },
    );
    // The new keywords are ordinary names elsewhere.
    check_ok(
        "exchange = open keep-size tmpfile",
        open("exchange", "keep-size", |f| f.tmpfile = true),
    );
    check_ok(
        "rename noreplace exchange",
        OpKind::Rename {
            from: p("noreplace"),
            to: p("exchange"),
            mode: RenameMode::Replace,
        },
    );
    check_ok(
        "symlink symlink readlink",
        OpKind::Symlink {
            target: s("symlink"),
            path: p("readlink"),
        },
    );
}

#[test]
fn new_op_errors() {
    check_err("fallocate f 0", &["1:14: missing length"]);
    check_err("fallocate f", &["1:12: missing offset"]);
    check_err("fallocate f 0 1 keep", &["1:17: unexpected `keep`"]);
    check_err("fallocate f 0 1 keep-size x", &["1:27: unexpected `x`"]);
    check_err("fallocate f 0 4KB", &["1:15: bad length `4KB`"]);
    check_err(
        "fallocate f 0xffffffffffffffff 1",
        &["1:32: the fallocate range ends past 2^64"],
    );
    check_err("fallocate 1f 0 1", &["1:11: bad handle `1f`"]);
    check_err("rename a b swap", &["1:12: unexpected `swap`"]);
    check_err(
        "rename a b exchange noreplace",
        &["1:21: unexpected `noreplace`"],
    );
    // `exchange` after one path is the target path; with none, the target is missing.
    check_err("rename exchange", &["1:16: missing target path"]);
    check_err("flink f", &["1:8: missing new path"]);
    check_err("flink f /x", &["1:9: bad new path `/x`"]);
    check_err("flink f a b", &["1:11: unexpected `b`"]);
    check_err("flink", &["1:6: missing handle"]);
    check_err("symlink", &["1:8: missing symlink target"]);
    check_err("symlink v2", &["1:11: missing path"]);
    check_err("symlink v2 a b", &["1:14: unexpected `b`"]);
    check_err(
        "symlink a*b c",
        &["1:9: bad symlink target `a*b`: invalid character `*`"],
    );
    check_err(
        "symlink ( c",
        &["1:9: expected a symlink target, found `(`"],
    );
    check_err("symlink v2 /c", &["1:12: bad path `/c`"]);
    let long = "x".repeat(4096);
    check_err(
        &format!("symlink {long} c"),
        &["1:9: symlink target of 4096 bytes is too long"],
    );
    check_err("sync_file_range f 0", &["1:20: missing length"]);
    check_err("sync_file_range f 0 1 2", &["1:23: unexpected `2`"]);
    check_err(
        "sync_file_range f 1 0xffffffffffffffff",
        &["1:21: the range ends past 2^64"],
    );
    check_err("f = open a tmp", &["1:12: unknown open flag `tmp`"]);
    check_err("f = open a odirect", &["1:12: unknown open flag `odirect`"]);
    check_err(
        "f = fallocate a 0 1",
        &["1:5: only `open` and `mmap` return"],
    );
    check_err(
        "property A: always readlink",
        &["1:28: missing path after `readlink`"],
    );
    check_err(
        "property A: always readlink l",
        &["1:30: missing `==` or `!=`"],
    );
    check_err(
        "property A: always readlink l < v",
        &["1:31: expected `==` or `!=`, found `<`"],
    );
    check_err(
        "property A: always readlink l ==",
        &["1:33: missing symlink target"],
    );
    check_err(
        "property A: always readlink l == a:b",
        &["1:35: unexpected `:`"],
    );
    check_err(
        "property A: always readlink l == (",
        &["1:34: expected a symlink target, found `(`"],
    );
    check_err(
        "property A: always readlink l == a*",
        &["1:34: bad symlink target `a*`"],
    );
    check_err(
        "property A: always readlink == v",
        &["1:29: expected path, found `==`"],
    );
}

#[test]
fn every_flag() {
    check_ok("f = open a create", open("f", "a", |f| f.create = true));
    check_ok("f = open a excl", open("f", "a", |f| f.excl = true));
    check_ok("f = open a trunc", open("f", "a", |f| f.trunc = true));
    check_ok("f = open a append", open("f", "a", |f| f.append = true));
    check_ok("f = open a sync", open("f", "a", |f| f.sync = true));
    check_ok("f = open a dsync", open("f", "a", |f| f.dsync = true));
    check_ok("f = open a dir", open("f", "a", |f| f.directory = true));
    check_ok("f = open a rdonly", open("f", "a", |_| {}));
    check_ok("f = open a wronly", open("f", "a", |_| {}));
    check_ok("f = open a rdwr", open("f", "a", |_| {}));
    check_ok(
        "f = open a create excl trunc append sync dsync dir rdwr",
        open("f", "a", |f| {
            *f = OpenFlags {
                create: true,
                excl: true,
                trunc: true,
                append: true,
                sync: true,
                dsync: true,
                directory: true,
                tmpfile: false,
                direct: false,
            }
        }),
    );
    check_ok("f = open d tmpfile", open("f", "d", |f| f.tmpfile = true));
    check_ok("f = open a direct", open("f", "a", |f| f.direct = true));
    check_ok(
        "f = open . tmpfile excl direct rdwr",
        open(".", ".", |_| {}).clone_with("f", |f| {
            f.tmpfile = true;
            f.excl = true;
            f.direct = true;
        }),
    );
    check_ok(
        "f = open a create create",
        open("f", "a", |f| f.create = true),
    );
}

#[test]
fn sizes() {
    for (text, v) in [
        ("0", Some(0)),
        ("100", Some(100)),
        ("100B", Some(100)),
        ("4KiB", Some(4096)),
        ("4K", Some(4096)),
        ("8MiB", Some(8 << 20)),
        ("8M", Some(8 << 20)),
        ("2GiB", Some(2 << 30)),
        ("2G", Some(2 << 30)),
        ("3TiB", Some(3 << 40)),
        ("0x1000", Some(0x1000)),
        ("0X10", Some(16)),
        ("0xff", Some(255)),
        ("0x1B", Some(0x1b)),
        ("0x10KiB", Some(16 << 10)),
        ("18446744073709551615", Some(u64::MAX)),
        ("0xffffffffffffffff", Some(u64::MAX)),
        ("16777215TiB", Some(16_777_215u64 << 40)),
        ("18446744073709551616", None),
        ("0x10000000000000000", None),
        ("99999999999999TiB", None),
        ("16777216TiB", None),
        ("17179869184GiB", None),
        ("", None),
        ("KiB", None),
        ("0x", None),
        ("4 KiB", None),
        ("4KB", None),
        ("4kib", None),
        ("4T", None),
        ("-1", None),
        ("+1", None),
        ("1.5K", None),
        ("1_000", None),
        ("４", None),
        ("4Ki", None),
        ("0xg", None),
    ] {
        assert_eq!(parse_size(text), v, "{text:?}");
    }
}

#[test]
fn predicates() {
    check_expr("exists final", "(exists final)");
    check_expr("exists .", "(exists .)");
    check_expr("exists size", "(exists size)");
    check_expr("exists a/b/c", "(exists a/b/c)");
    check_expr("size final == 8MiB", "(size final == 8388608)");
    check_expr("size f != 0", "(size f != 0)");
    check_expr("size f < 1", "(size f < 1)");
    check_expr("size f <= 0x10", "(size f <= 16)");
    check_expr("size f > 4K", "(size f > 4096)");
    check_expr("size f >= 2", "(size f >= 2)");
    check_expr("size f>=2", "(size f >= 2)");
    check_expr("links a == 2", "(links a == 2)");
    check_expr("readlink cur == v2", "(readlink cur v2)");
    check_expr("readlink d/l==../x/y", "(readlink d/l ../x/y)");
    check_expr("readlink l != /abs", "(not (readlink l /abs))");
    check_expr(
        "exists l and readlink l == v2",
        "(and (exists l) (readlink l v2))",
    );
    check_expr("links a<2", "(links a < 2)");
    check_expr("links a != 0x1", "(links a != 1)");
    check_expr("entries dir == {a, b}", "(entries dir {a,b})");
    check_expr("entries . == {}", "(entries . {})");
    check_expr("entries d=={x}", "(entries d {x})");
    check_expr(
        "entries d == { a.tmp , b-c , 1 }",
        "(entries d {a.tmp,b-c,1})",
    );
    check_expr("final == D", "(== final D)");
    check_expr("final==D", "(== final D)");
    check_expr("final == old", "(== final old)");
    check_expr("final == new", "(== final new)");
    check_expr("final == empty", "(== final empty)");
    check_expr("final != D", "(not (== final D))");
    check_expr("final != empty", "(not (== final empty))");
    check_expr("a/b prefix-of D", "(prefix-of a/b D)");
    check_expr("prefix-of prefix-of D", "(prefix-of prefix-of D)");
    check_expr("always == D", "(== always D)");
    check_expr("dir/size == D", "(== dir/size D)");
    check_expr("(exists a)", "(exists a)");
    check_expr("((exists a))", "(exists a)");
}

#[test]
fn precedence() {
    check_expr(
        "exists a or exists b and exists c",
        "(or (exists a) (and (exists b) (exists c)))",
    );
    check_expr(
        "exists a and exists b or exists c",
        "(or (and (exists a) (exists b)) (exists c))",
    );
    check_expr(
        "not exists x implies exists y",
        "(implies (not (exists x)) (exists y))",
    );
    check_expr(
        "not exists x and exists y",
        "(and (not (exists x)) (exists y))",
    );
    check_expr("not not exists x", "(not (not (exists x)))");
    check_expr(
        "not (exists x and exists y)",
        "(not (and (exists x) (exists y)))",
    );
    check_expr(
        "exists a implies exists b implies exists c",
        "(implies (exists a) (implies (exists b) (exists c)))",
    );
    check_expr(
        "exists a or exists b or exists c",
        "(or (or (exists a) (exists b)) (exists c))",
    );
    check_expr(
        "exists a and exists b and exists c",
        "(and (and (exists a) (exists b)) (exists c))",
    );
    check_expr(
        "exists a or exists b implies exists c and exists d",
        "(implies (or (exists a) (exists b)) (and (exists c) (exists d)))",
    );
    check_expr(
        "(exists a or exists b) and exists c",
        "(and (or (exists a) (exists b)) (exists c))",
    );
    check_expr(
        "(exists final implies final==D)",
        "(implies (exists final) (== final D))",
    );
    check_expr(
        "exists final implies final == D",
        "(implies (exists final) (== final D))",
    );
    check_expr(
        "a != D and not b == old",
        "(and (not (== a D)) (not (== b old)))",
    );
    check_expr(
        "(exists a implies exists b) implies exists c",
        "(implies (implies (exists a) (exists b)) (exists c))",
    );
}

#[test]
fn deep_expressions_are_bounded() {
    let deep = format!("{}exists a{}", "(".repeat(5000), ")".repeat(5000));
    check_err(
        &format!("property A: always {deep}"),
        &["1:120: nested too deeply"],
    );
    let nots = "not ".repeat(100_000);
    check_err(
        &format!("property A: always {nots} exists a"),
        &["1:420: nested too deeply"],
    );
    let ors = "exists a or ".repeat(100_000);
    check_err(
        &format!("property A: always {ors} exists a"),
        &["1:1217: nested too deeply"],
    );
    let implies = "exists a implies ".repeat(100_000);
    check_err(
        &format!("property A: always {implies} exists a"),
        &["1:1698329: nested too deeply"],
    );
    // Moderate nesting is fine.
    let ok = format!("{}exists a{}", "(".repeat(50), ")".repeat(50));
    check_expr(&ok, "(exists a)");
    check_expr(
        &format!("{}exists a", "not ".repeat(50)),
        &format!("{}(exists a){}", "(not ".repeat(50), ")".repeat(50)),
    );
}

#[test]
fn whole_program() {
    let src = "\
# an atomic replace
data D 8MiB
data OLD 4KiB

setup
  f = open old create
  write f 4KiB OLD
  close f
end

f = open tmp create rdwr   # the new version
write f 8MiB D
fsync f
close f
publish: rename tmp final
property A: always (exists final implies final == D)
property B: after 5: final == D
property C: after publish: size final == 8MiB
property E: after publish: entries . == {final, old}
";
    let prog = parse(src).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(prog.data.len(), 2);
    assert_eq!(prog.data[0].name, "D");
    assert_eq!(prog.data[0].len, 8 << 20);
    assert_eq!(
        &src[prog.data[0].span.start..prog.data[0].span.end],
        "data D 8MiB"
    );
    assert_eq!(prog.setup.len(), 3);
    assert_eq!(prog.setup[1].text, "write f 4KiB OLD");
    assert_eq!(prog.ops.len(), 5);
    assert_eq!(prog.ops[0].text, "f = open tmp create rdwr");
    assert_eq!(prog.ops[4].text, "rename tmp final");
    assert_eq!(prog.ops[4].label.as_deref(), Some("publish"));
    assert_eq!(
        &src[prog.ops[4].span.start..prog.ops[4].span.end],
        "rename tmp final"
    );
    let props = &prog.properties;
    assert_eq!(props.len(), 4);
    assert_eq!(props[0].name, "A");
    assert_eq!(props[0].when, When::Always);
    assert_eq!(props[0].text, "always (exists final implies final == D)");
    assert_eq!(
        &src[props[0].span.start..props[0].span.end],
        "property A: always (exists final implies final == D)"
    );
    assert_eq!(
        props[1].when,
        When::After {
            op: 5,
            written: s("5")
        }
    );
    assert_eq!(props[1].text, "after 5: final == D");
    assert_eq!(
        props[2].when,
        When::After {
            op: 5,
            written: s("publish")
        }
    );
    assert_eq!(sx(&props[2].expr), "(size final == 8388608)");
    assert_eq!(sx(&props[3].expr), "(entries . {final,old})");
}

#[test]
fn labels_and_after() {
    let prog = parse("property P: after b: exists x\na: sync\nb: sync\nsync\nc:sync").unwrap();
    assert_eq!(
        prog.properties[0].when,
        When::After {
            op: 2,
            written: s("b")
        }
    );
    assert_eq!(prog.ops[3].label.as_deref(), Some("c"));
    assert_eq!(prog.ops[3].text, "sync");
    let prog =
        parse("sync\nsync\nproperty P: after 1: exists x\nproperty Q: after 2 : exists x").unwrap();
    assert_eq!(
        prog.properties[0].when,
        When::After {
            op: 1,
            written: s("1")
        }
    );
    assert_eq!(
        prog.properties[1].when,
        When::After {
            op: 2,
            written: s("2")
        }
    );
    // A label may be a statement keyword.
    let prog = parse("sync: sync\nend: close f\nproperty P: after end: exists x").unwrap();
    assert_eq!(
        prog.properties[0].when,
        When::After {
            op: 2,
            written: s("end")
        }
    );
}

#[test]
fn line_endings_and_comments() {
    let src = "f = open a create\r\nwrite f 1 D   \r\n# only a comment\r\n\r\nclose f\r\nproperty P: after 3: a == D\r\n";
    let prog = parse(src).unwrap();
    assert_eq!(prog.ops.len(), 3);
    assert_eq!(prog.ops[1].text, "write f 1 D");
    assert_eq!(prog.ops[2].text, "close f");
    assert_eq!(prog.properties[0].text, "after 3: a == D");
    check_err("sync\r\nfsync\r\n", &["2:6: missing handle"]);
    assert_eq!(parse("").unwrap(), Program::default());
    assert_eq!(parse("\n\n  # x\n\t\n").unwrap(), Program::default());
    assert_eq!(parse("\u{a0}sync\u{3000}").unwrap().ops[0].text, "sync");
}

#[test]
fn statement_errors() {
    check_err("frobnicate x", &["1:1: unknown statement `frobnicate`"]);
    check_err("  fsyn f", &["1:3: unknown statement `fsyn`"]);
    check_err("open tmp create", &["1:1: `open` must assign its result"]);
    check_err("mmap f 0 1", &["1:1: `mmap` must assign its result"]);
    check_err(
        "f = close g",
        &["1:5: only `open` and `mmap` return a handle"],
    );
    check_err("f =", &["1:4: missing `open` or `mmap`"]);
    check_err("( sync", &["1:1: expected a statement, found `(`"]);
    check_err("! sync", &["1:1: expected a statement"]);
    check_err("sync now", &["1:6: unexpected `now`"]);
}

#[test]
fn argument_errors() {
    check_err("f = open tmp creat", &["1:14: unknown open flag `creat`"]);
    check_err(
        "f = open tmp create O_SYNC",
        &["1:21: unknown open flag `O_SYNC`"],
    );
    check_err("f = open tmp (", &["1:14: unknown open flag `(`"]);
    check_err("f = open", &["1:9: missing path"]);
    check_err("1f = open tmp", &["1:1: bad handle name `1f`"]);
    check_err("close", &["1:6: missing handle"]);
    check_err("close f g", &["1:9: unexpected `g`"]);
    check_err("close 9", &["1:7: bad handle `9`"]);
    check_err("close (", &["1:7: expected handle, found `(`"]);
    check_err(
        "write f 4KB D",
        &["1:9: bad length `4KB`: unknown unit `KB`"],
    );
    check_err("write f D 4KiB", &["1:9: bad length `D`: not a size"]);
    check_err("write f 4KiB", &["1:13: missing data name"]);
    check_err("write f 4KiB old", &["1:14: `old` cannot be a data name"]);
    check_err("write f 4KiB new", &["1:14: `new` cannot be a data name"]);
    check_err("write f 4KiB 1D", &["1:14: bad data name `1D`"]);
    check_err("write f 4KiB D at", &["1:18: missing data offset"]);
    check_err("write f 4KiB D at x", &["1:19: bad data offset `x`"]);
    check_err("write f 4KiB D on 0", &["1:16: unexpected `on`"]);
    check_err(
        "write f 99999999999999TiB D",
        &["1:9: bad length `99999999999999TiB`: does not fit in 64 bits"],
    );
    check_err(
        "ftruncate f 18446744073709551616",
        &["1:13: does not fit in 64 bits"],
    );
    check_err("ftruncate f -1", &["1:13: bad size `-1`: not a size"]);
    check_err(
        "pwrite f 18446744073709551615 1 D",
        &["1:31: the write ends past 2^64"],
    );
    check_err(
        "write f 2 D at 18446744073709551615",
        &["1:16: the data range ends past 2^64"],
    );
    check_err(
        "store m 0xffffffffffffffff 1 D",
        &["1:28: the store ends past"],
    );
    check_err(
        "m = mmap f 1 0xffffffffffffffff",
        &["1:14: the mapping ends past"],
    );
    check_err(
        "msync m 1 0xffffffffffffffff sync",
        &["1:11: the msync range ends past"],
    );
    check_err("pwrite f 1 D", &["1:12: bad length `D`"]);
    check_err("m = mmap f 0", &["1:13: missing length"]);
    check_err("m = mmap f 0 1 2", &["1:16: unexpected `2`"]);
    check_err("store m 0 1", &["1:12: missing data name"]);
    check_err("msync m", &["1:8: missing msync mode"]);
    check_err(
        "msync m synch",
        &["1:9: expected `sync` or `async`, found `synch`"],
    );
    check_err("msync m 0 4KiB", &["1:15: missing msync mode"]);
    check_err(
        "msync m 0 4KiB invalidate",
        &["1:16: expected `sync` or `async`, found `invalidate`"],
    );
    check_err("msync m 0 sync", &["1:11: bad length `sync`"]);
    check_err("msync m sync invalidate now", &["1:25: unexpected `now`"]);
    check_err(
        "msync m 4KB 1 sync",
        &["1:9: bad offset `4KB`: unknown unit"],
    );
    check_err("munmap", &["1:7: missing mapping name"]);
    check_err("fdatasync f g", &["1:13: unexpected `g`"]);
    check_err("syncfs", &["1:7: missing handle"]);
    check_err("rename a", &["1:9: missing target path"]);
    check_err("link a", &["1:7: missing new path"]);
    check_err(
        "rename /a b",
        &["1:8: bad source path `/a`: paths are relative"],
    );
    check_err(
        "mkdir a//b",
        &["1:7: bad path `a//b`: empty path component"],
    );
    check_err("mkdir a/", &["1:7: empty path component"]);
    check_err("mkdir a/..", &["1:7: `..` is not allowed"]);
    check_err("unlink ./a", &["1:8: `.` is not allowed"]);
    check_err("unlink ..", &["1:8: `..` is not allowed"]);
    check_err("mkdir a*b", &["1:7: invalid character `*`"]);
    check_err("rmdir été", &["1:7: invalid character `é`"]);
    check_err("unlink a b", &["1:10: unexpected `b`"]);
    check_err("unlink a:b", &["1:9: unexpected `:`"]);
    check_err("é = open x", &["1:1: bad handle name `é`"]);
    check_err("x = open é cr", &["1:10: bad path `é`"]);
    check_err("ëë = open a b", &["1:1: bad handle name"]);
    check_err("f = open a ëcreate", &["1:12: unknown open flag `ëcreate`"]);
}

#[test]
fn structure_errors() {
    check_err("setup\nsync", &["1:1: `setup` is not closed by `end`"]);
    check_err("end", &["1:1: `end` without `setup`"]);
    check_err("setup\nend\nsetup\nend", &["3:1: at most one setup block"]);
    check_err(
        "sync\nsetup\nsync\nend",
        &["2:1: setup must come before the program's ops"],
    );
    check_err("setup\nsetup\nend", &["2:1: setup blocks cannot be nested"]);
    check_err("setup now\nend", &["1:7: unexpected `now`"]);
    check_err("setup\nend now", &["2:5: unexpected `now`"]);
    check_err(
        "setup\n x: sync\nend",
        &["2:2: labels are not allowed inside setup"],
    );
    check_err(
        "setup\nproperty A: always exists a\nend",
        &["2:1: properties are not allowed inside setup"],
    );
    check_err("a: sync\na: sync", &["2:1: label `a` is defined twice"]);
    check_err("a:", &["1:1: label `a` is not followed by an op"]);
    check_err("a: data D 1", &["1:1: `data` cannot have a label"]);
    check_err("a: setup\nend", &["1:1: `setup` cannot have a label"]);
    check_err("1a: sync", &["1:1: bad label `1a`"]);
    check_err("data D 1\ndata D 2", &["2:6: data `D` is declared twice"]);
    check_err("data D", &["1:7: missing data length"]);
    check_err("data empty 1", &["1:6: `empty` cannot be a data name"]);
    check_err("data D 1 2", &["1:10: unexpected `2`"]);
    check_err(
        "data D 1x",
        &["1:8: bad data length `1x`: unknown unit `x`"],
    );
    // data declarations are allowed inside setup
    assert_eq!(parse("setup\ndata D 1\nend").unwrap().data.len(), 1);
}

#[test]
fn property_errors() {
    check_err(
        "property A: always",
        &["1:19: the property has no expression"],
    );
    check_err(
        "property A: always   # nothing",
        &["1:19: the property has no expression"],
    );
    check_err(
        "property A: after 1:",
        &[
            "1:19: there is no op 1",
            "1:21: the property has no expression",
        ],
    );
    check_err(
        "property A always exists a",
        &["1:12: expected `:`, found `always`"],
    );
    check_err("property", &["1:9: missing property name"]);
    check_err(
        "property: always exists a",
        &["1:9: expected property name, found `:`"],
    );
    check_err(
        "property 1A: always exists a",
        &["1:10: bad property name `1A`"],
    );
    check_err(
        "property A: sometimes exists a",
        &["1:13: expected `always` or `after`"],
    );
    check_err(
        "property A: always exists a\nproperty A: always exists b",
        &["2:10: property `A` is defined twice"],
    );
    check_err("property A: always (exists a", &["1:20: unclosed `(`"]);
    check_err("property A: always exists a)", &["1:28: unmatched `)`"]);
    check_err(
        "property A: always ((exists a) and exists b",
        &["1:20: unclosed `(`"],
    );
    check_err("property A: always (exists a b)", &["1:30: unexpected `b`"]);
    check_err(
        "property A: always ()",
        &["1:21: expected a predicate, found `)`"],
    );
    check_err(
        "property A: always exists a and",
        &["1:32: missing predicate"],
    );
    check_err(
        "property A: always exists a and or exists b",
        &["1:33: expected a predicate, found `or`"],
    );
    check_err(
        "property A: always exists",
        &["1:26: missing path after `exists`"],
    );
    check_err("property A: always exists /a", &["1:27: bad path `/a`"]);
    check_err("property A: always exists a b", &["1:29: unexpected `b`"]);
    check_err(
        "property A: always size a 4KiB",
        &["1:27: expected a comparison, found `4KiB`"],
    );
    check_err(
        "property A: always size a == 4KB",
        &["1:30: bad size `4KB`"],
    );
    check_err("property A: always size a ==", &["1:29: missing size"]);
    check_err(
        "property A: always size a == 99999999999TiB",
        &["1:30: does not fit in 64 bits"],
    );
    check_err(
        "property A: always links a == 1K",
        &["1:31: bad link count `1K`: not an integer"],
    );
    check_err(
        "property A: always entries d == {a,}",
        &["1:36: bad entry name `}`"],
    );
    check_err(
        "property A: always entries d == {a b}",
        &["1:36: expected `,` or `}`"],
    );
    check_err(
        "property A: always entries d == {a, a}",
        &["1:37: entry `a` is listed twice"],
    );
    check_err(
        "property A: always entries d == {a",
        &["1:33: unclosed `{`"],
    );
    check_err(
        "property A: always entries d != {a}",
        &["1:30: expected `==`, found `!=`"],
    );
    check_err(
        "property A: always entries d == a",
        &["1:33: expected `{`, found `a`"],
    );
    check_err(
        "property A: always entries d == {..}",
        &["1:34: bad entry name `..`"],
    );
    check_err(
        "property A: always final",
        &["1:25: missing `==`, `!=` or `prefix-of`"],
    );
    check_err(
        "property A: always final = D",
        &["1:26: expected `==`, `!=` or `prefix-of` after path `final`, found `=`"],
    );
    check_err(
        "property A: always final < D",
        &["1:26: `<` cannot compare a file's content"],
    );
    check_err(
        "property A: always exist final",
        &["1:26: expected `==`, `!=` or `prefix-of` after path `exist`"],
    );
    check_err(
        "property A: always final == 1D",
        &["1:29: expected a data name, `old`, `new` or `empty`"],
    );
    check_err("property A: always final ==", &["1:28: missing data name"]);
    check_err(
        "property A: always final prefix-of old",
        &["1:36: `old` cannot be a data name"],
    );
    check_err(
        "property A: always !exists a",
        &["1:20: expected a predicate, found `!`"],
    );
    check_err(
        "property A: always and",
        &["1:20: expected a predicate, found `and`"],
    );
    check_err("property A: always not", &["1:23: missing predicate"]);
    check_err(
        "property A: always size == 1",
        &["1:25: expected path, found `==`"],
    );
}

#[test]
fn after_errors() {
    check_err(
        "sync\nproperty A: after 2: exists a",
        &["2:19: there is no op 2"],
    );
    check_err(
        "sync\nproperty A: after 0: exists a",
        &["2:19: there is no op 0"],
    );
    check_err("property A: after 1: exists a", &["1:19: there is no op 1"]);
    check_err(
        "sync\nproperty A: after 99999999999999999999999: exists a",
        &["2:19: there is no op 99999999999999999999999"],
    );
    check_err(
        "property A: after nope: exists a\np: sync",
        &["1:19: unknown label `nope`"],
    );
    check_err(
        "property A: after 1x: exists a",
        &["1:19: bad op number `1x`"],
    );
    check_err(
        "property A: after (: exists a",
        &["1:19: expected an op number or a label"],
    );
    check_err("property A: after", &["1:18: missing op number or label"]);
    check_err(
        "sync\nproperty A: after 1 exists a",
        &["2:21: expected `:`, found `exists`"],
    );
    // The hint lists the labels and the range.
    let diags = parse("a: sync\nb: sync\nproperty A: after c: exists x").unwrap_err();
    assert_eq!(
        diags[0].hint.as_deref(),
        Some("defined labels: a, b (or an op number from 1 to 2)")
    );
    let many: String = (1..=25).map(|i| format!("l{i}: sync\r\n")).collect();
    let diags = parse(&format!("{many}property A: after x: exists x")).unwrap_err();
    let hint = diags[0].hint.as_deref().unwrap();
    assert!(hint.starts_with("defined labels: l1, l2, l3,"), "{hint}");
    assert!(
        hint.ends_with("l20, and 5 more (or an op number from 1 to 25)"),
        "{hint}"
    );
    let diags = parse(&format!("{many}l7: sync")).unwrap_err();
    assert_eq!(
        diags[0].hint.as_deref(),
        Some("it already names op 7 (line 7); labels must be unique")
    );
    let diags = parse("\n\r\n# c\ndata D 1\n\ndata D 2").unwrap_err();
    assert_eq!(diags[0].hint.as_deref(), Some("first declared on line 4"));
    let diags = parse("sync\nsync\nsync\nproperty A: after 4: exists x").unwrap_err();
    assert_eq!(
        diags[0].hint.as_deref(),
        Some("ops are numbered from 1 to 3")
    );
    // Setup ops are not numbered.
    check_err(
        "setup\nsync\nend\nproperty A: after 1: exists x",
        &["4:19: there is no op 1"],
    );
    // An op with an error still counts, and its label is still known.
    check_err(
        "sync\nl: fsyn f\nproperty A: after 2: exists x\nproperty B: after l: exists x",
        &["2:4: unknown statement"],
    );
    // A property with a bad expression still has its `after` checked.
    check_err(
        "property A: after x: exists",
        &["1:19: unknown label `x`", "1:28: missing path"],
    );
}

#[test]
fn many_errors_in_one_run() {
    let src = "\
data D 8MiB
data D 4KiB
f = open tmp creat
write f 4KB D
setup
end
frob
close f extra
publish: rename tmp final
publish: sync
property A: after nowhere: exists final
property B: always (exists final
property B: always exists final
end
";
    check_err(
        src,
        &[
            "2:6: data `D` is declared twice",
            "3:14: unknown open flag `creat`",
            "4:9: bad length `4KB`",
            "5:1: setup must come before",
            "7:1: unknown statement `frob`",
            "8:9: unexpected `extra`",
            "10:1: label `publish` is defined twice",
            "11:19: unknown label `nowhere`",
            "12:20: unclosed `(`",
            "13:10: property `B` is defined twice",
            "14:1: `end` without `setup`",
        ],
    );
}

#[test]
fn errors_sorted_and_within_source() {
    let src = "property A: after zz: exists a\nfrob\n\u{1F600} = open é\nsetup";
    let diags = parse(src).unwrap_err();
    let starts: Vec<usize> = diags.iter().map(|d| d.span.start).collect();
    let mut sorted = starts.clone();
    sorted.sort();
    assert_eq!(starts, sorted);
    for d in &diags {
        assert!(src.is_char_boundary(d.span.start) && src.is_char_boundary(d.span.end));
    }
    check_err(
        src,
        &[
            "1:19: unknown label",
            "2:1: unknown statement",
            "3:1: bad handle name",
            "4:1: setup must come before the program's ops",
            "4:1: `setup` is not closed",
        ],
    );
}
