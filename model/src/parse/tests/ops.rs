//! Every op and open flag, parsed.
use super::*;

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "a flat table of cases, one per op form; splitting it would only scatter the table"
)]
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
