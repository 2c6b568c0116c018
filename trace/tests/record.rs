//! Each test traces a real command in a fresh temporary directory (the root) and checks the
//! recorded events.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use unplug_trace::{record, Call, Event, Options, Recording};

/// Runs `argv` with the working directory `dir` (via `sh -c 'cd DIR && exec "$@"'`), root `dir`.
fn trace_in(dir: &Path, argv: &[&str]) -> Recording {
    let mut cmd: Vec<OsString> = vec![
        "sh".into(),
        "-c".into(),
        "cd \"$0\" && exec \"$@\"".into(),
        dir.into(),
    ];
    cmd.extend(argv.iter().map(OsString::from));
    let opts = Options {
        roots: vec![dir.to_path_buf()],
        stack_depth: 4,
    };
    let rec = record(&cmd, &opts).expect("record");
    for e in &rec.events {
        eprintln!("{}", short(e));
    }
    rec
}

/// An event on one line, long data cut.
fn short(e: &Event) -> String {
    let mut call = format!("{:?}", e.call);
    if call.len() > 300 {
        call.truncate(300);
        call.push_str("...");
    }
    format!("#{} pid {} tid {}: {call}", e.seq, e.pid, e.tid)
}

fn tmp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = std::fs::canonicalize(dir.path()).expect("canonicalize");
    (dir, path)
}

fn sh(dir: &Path, script: &str) -> Recording {
    trace_in(dir, &["sh", "-c", script])
}

fn python(dir: &Path, script: &str) -> Recording {
    trace_in(dir, &["python3", "-c", script])
}

/// The index of the first event matching `f`, or a panic naming `what`.
fn find(rec: &Recording, what: &str, f: impl Fn(&Call) -> bool) -> usize {
    rec.events
        .iter()
        .position(|e| f(&e.call))
        .unwrap_or_else(|| panic!("no event: {what}"))
}

fn writes_to(rec: &Recording, path: &Path) -> Vec<(u64, Vec<u8>)> {
    rec.events
        .iter()
        .filter_map(|e| match &e.call {
            Call::Write {
                path: p,
                offset,
                data,
                ..
            } if p == path => Some((*offset, data.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn shell_redirect_then_mv() {
    let (_t, d) = tmp();
    let rec = sh(&d, "echo hi > f; mv f g");
    assert_eq!(rec.exit_status, 0);
    let f = d.join("f");
    let open = find(
        &rec,
        "open f created",
        |c| matches!(c, Call::Open { path, created: true, .. } if *path == f),
    );
    let write = find(
        &rec,
        "write hi",
        |c| matches!(c, Call::Write { path, offset: 0, data, .. } if *path == f && data == b"hi\n"),
    );
    let rename = find(
        &rec,
        "rename f g",
        |c| matches!(c, Call::Rename { from, to, .. } if *from == f && *to == d.join("g")),
    );
    assert!(open < write && write < rename);
    assert!(rec.events.iter().enumerate().all(|(i, e)| e.seq == i));
    assert!(rec.events.iter().all(|e| !e.site.is_empty()));
}

#[test]
fn python_atomic_write_fsyncs_the_directory() {
    let (_t, d) = tmp();
    let rec = python(
        &d,
        "import os\n\
         with open('tmp', 'wb') as f:\n    f.write(b'data'); f.flush(); os.fsync(f.fileno())\n\
         os.replace('tmp', 'final')\n\
         fd = os.open('.', os.O_RDONLY | os.O_DIRECTORY)\n\
         os.fsync(fd); os.close(fd)\n",
    );
    assert_eq!(rec.exit_status, 0);
    let tmp = d.join("tmp");
    assert_eq!(writes_to(&rec, &tmp), vec![(0, b"data".to_vec())]);
    let fsync_file = find(
        &rec,
        "fsync tmp",
        |c| matches!(c, Call::Fsync { path, data_only: false, .. } if *path == tmp),
    );
    let rename = find(
        &rec,
        "rename",
        |c| matches!(c, Call::Rename { from, to, .. } if *from == tmp && *to == d.join("final")),
    );
    let fsync_dir = find(
        &rec,
        "fsync dir",
        |c| matches!(c, Call::Fsync { path, .. } if *path == d),
    );
    assert!(fsync_file < rename && rename < fsync_dir);
}

#[test]
fn appends_land_at_the_end() {
    let (_t, d) = tmp();
    let rec = python(
        &d,
        "import os\n\
         fd = os.open('log', os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)\n\
         os.write(fd, b'first line\\n'); os.write(fd, b'second\\n')\n\
         os.pwrite(fd, b'!', 0)\n",
    );
    assert_eq!(rec.exit_status, 0);
    assert_eq!(
        writes_to(&rec, &d.join("log")),
        vec![
            (0, b"first line\n".to_vec()),
            (11, b"second\n".to_vec()),
            // Linux's pwrite on an O_APPEND descriptor appends.
            (18, b"!".to_vec()),
        ]
    );
    find(
        &rec,
        "close log",
        |c| matches!(c, Call::Close { path, .. } if *path == d.join("log")),
    );
}

#[test]
fn mmap_stores_come_before_msync() {
    let (_t, d) = tmp();
    let rec = python(
        &d,
        "import mmap, os\n\
         with open('m', 'wb') as f: f.write(bytes(8192))\n\
         f = open('m', 'r+b')\n\
         m = mmap.mmap(f.fileno(), 8192)\n\
         m[5000:5005] = b'hello'\n\
         m.flush()\n\
         m[10:12] = b'zz'\n\
         m.close()\n",
    );
    assert_eq!(rec.exit_status, 0);
    let path = d.join("m");
    let mmap = find(
        &rec,
        "mmap",
        |c| matches!(c, Call::Mmap { path: p, len: 8192, offset: 0, .. } if *p == path),
    );
    let store = find(
        &rec,
        "store hello",
        |c| matches!(c, Call::Store { path: p, file_offset: 5000, data, .. } if *p == path && data == b"hello"),
    );
    let msync = find(&rec, "msync", |c| matches!(c, Call::Msync { .. }));
    assert!(
        mmap < store && store + 1 == msync,
        "the store comes right before the msync"
    );
    let store2 = find(
        &rec,
        "store zz",
        |c| matches!(c, Call::Store { file_offset: 10, data, .. } if data == b"zz"),
    );
    let munmap = find(&rec, "munmap", |c| {
        matches!(c, Call::Munmap { len: 8192, .. })
    });
    assert!(msync < store2 && store2 + 1 == munmap);
}

#[test]
fn child_processes_are_followed() {
    let (_t, d) = tmp();
    let rec = sh(&d, "echo p > y; (echo a > x) & wait");
    assert_eq!(rec.exit_status, 0);
    let (x, y) = (d.join("x"), d.join("y"));
    assert_eq!(writes_to(&rec, &x), vec![(0, b"a\n".to_vec())]);
    let wx = find(
        &rec,
        "write x",
        |c| matches!(c, Call::Write { path, .. } if *path == x),
    );
    let wy = find(
        &rec,
        "write y",
        |c| matches!(c, Call::Write { path, .. } if *path == y),
    );
    // The subshell is a process of its own, and its exit closes x.
    let child = rec.events[wx].pid;
    assert_ne!(child, rec.events[wy].pid);
    assert!(rec.events[wx + 1..]
        .iter()
        .any(|e| e.pid == child && matches!(&e.call, Call::Close { path, .. } if *path == x)));
}

#[test]
fn writev_gathers_its_buffers() {
    let (_t, d) = tmp();
    let rec = python(
        &d,
        "import os\n\
         fd = os.open('v', os.O_WRONLY | os.O_CREAT, 0o644)\n\
         os.write(fd, b'0123')\n\
         os.writev(fd, [b'ab', b'', b'cde'])\n\
         os.pwritev(fd, [b'X', b'Y'], 1)\n",
    );
    assert_eq!(rec.exit_status, 0);
    assert_eq!(
        writes_to(&rec, &d.join("v")),
        vec![
            (0, b"0123".to_vec()),
            (4, b"abcde".to_vec()),
            (1, b"XY".to_vec())
        ]
    );
}

#[test]
fn writes_through_a_dup() {
    let (_t, d) = tmp();
    let rec = python(
        &d,
        "import os\n\
         fd = os.open('f', os.O_WRONLY | os.O_CREAT, 0o644)\n\
         os.dup2(fd, 10)\n\
         os.close(fd)\n\
         os.write(10, b'via dup')\n",
    );
    assert_eq!(rec.exit_status, 0);
    let f = d.join("f");
    find(
        &rec,
        "dup",
        |c| matches!(c, Call::Dup { new: 10, path, .. } if *path == f),
    );
    find(
        &rec,
        "write via 10",
        |c| matches!(c, Call::Write { fd: 10, path, offset: 0, data } if *path == f && data == b"via dup"),
    );
}

#[test]
fn calls_outside_the_root_are_not_recorded() {
    let (_t, d) = tmp();
    let (_o, outside) = tmp();
    let script = format!(
        "echo out > '{o}/a'; mv '{o}/a' '{o}/b'; rm '{o}/b'; echo in > inside",
        o = outside.display()
    );
    let rec = sh(&d, &script);
    assert_eq!(rec.exit_status, 0);
    for e in &rec.events {
        let text = format!("{:?}", e.call);
        assert!(!text.contains(outside.to_str().unwrap_or("?")), "{text}");
    }
    assert_eq!(
        writes_to(&rec, &d.join("inside")),
        vec![(0, b"in\n".to_vec())]
    );
    // A rename across the root's boundary is unsupported.
    let rec = sh(&d, &format!("mv inside '{}/moved'", outside.display()));
    assert_eq!(rec.unsupported.get("rename across root boundary"), Some(&1));
    assert!(rec.events.iter().any(|e| matches!(
        &e.call,
        Call::Unsupported { kind, path: Some(p) } if kind == "rename across root boundary" && *p == d.join("inside")
    )));
}

#[test]
fn sqlite_runs_under_the_tracer() {
    let (_t, d) = tmp();
    let rec = trace_in(
        &d,
        &[
            "sqlite3",
            "DB",
            "create table t(x); insert into t values(1);",
        ],
    );
    assert_eq!(rec.exit_status, 0);
    let db = d.join("DB");
    let journal = d.join("DB-journal");
    assert!(rec
        .events
        .iter()
        .any(|e| matches!(&e.call, Call::Fsync { .. })));
    assert!(!writes_to(&rec, &db).is_empty() || !writes_to(&rec, &journal).is_empty());
    // The database's file header.
    let header = writes_to(&rec, &db);
    assert!(header
        .iter()
        .any(|(o, data)| *o == 0 && data.starts_with(b"SQLite format 3\0")));
}

#[test]
fn exit_status_is_returned() {
    let (_t, d) = tmp();
    assert_eq!(sh(&d, "exit 7").exit_status, 7);
    assert_eq!(sh(&d, "kill -9 $$").exit_status, 128 + 9);
}
